"""istio/monitoring/ held to a real Envoy: every metric name the Grafana dashboard and the
Prometheus alert rules query exists in Envoy's `/stats/prometheus`, scraped from a proxy
configured as an Istio sidecar's bootstrap configures stats (Istio's own `stats_tags`,
`use_all_default_tags: false`, its default stats inclusion list, and the README's
ServiceEntry tag recipe appended, as `sidecar.istio.io/bootstrapOverride`
appends it); the dashboard and rule files' structure; the recipe's labels.

The proxy runs tracejoin at the downstream and network positions on one listener (HTTP
external calls named by ServiceEntry) and at the network position on a TLS listener (HTTPS
calls named by server name), and is sent what makes each counter family non-zero: valid and
invalid headers, conflicting formats, calls to ServiceEntries and to an unregistered host,
TLS connections.
"""

import json
import re
import shutil
import subprocess
import urllib.request

import pytest
import yaml

from tracejoin_tools.common import ROOT, XS, S, T, X, free_port, loopback
from tracejoin_tools.envoy import harness
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.tls_upstream import TlsUpstream, request

MONITORING = ROOT / "istio" / "monitoring"

# Istio's sidecar bootstrap (istio/istio tools/packaging/common/envoy_bootstrap.json): the
# tag extractors it always sets (the `extraStatTags` ones are per mesh and of the form
# `(TAG=\.=(.*?);\.;)`, which no tracejoin name contains), with `use_all_default_tags: false`.
ISTIO_STATS_TAGS = [
    {"tag_name": "cluster_name", "regex": r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"},
    {"tag_name": "tcp_prefix", "regex": r"^tcp\.((.*?)\.)\w+?$"},
    {"tag_name": "response_code", "regex": r"_rq(_(\d{3}))$"},
    {"tag_name": "response_code_class", "regex": r"_rq(_(\dxx))$"},
    {
        "tag_name": "http_conn_manager_listener_prefix",
        "regex": r"^listener(?=\.).*?\.http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)",
    },
    {"tag_name": "http_conn_manager_prefix", "regex": r"^http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"},
    {"tag_name": "listener_address", "regex": r"^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"},
    {"tag_name": "mongo_prefix", "regex": r"^mongo\.(.+?)\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$"},
    {"tag_name": "cache", "regex": r"(cache\.(.+?)\.)"},
    {"tag_name": "component", "regex": r"(component\.(.+?)\.)"},
    {"tag_name": "tag", "regex": r"(tag\.(.+?);\.)"},
    {"tag_name": "wasm_filter", "regex": r"(wasm_filter\.(.+?)\.)"},
    {"tag_name": "authz_enforce_result", "regex": r"rbac(\.(allowed|denied))"},
    {"tag_name": "authz_dry_run_action", "regex": r"(\.istio_dry_run_(allow|deny)_)"},
    {"tag_name": "authz_dry_run_result", "regex": r"(\.shadow_(allowed|denied))"},
]
# The same bootstrap's stats inclusion list: `reporter=`, pilot-agent's required prefixes
# (istio/istio pkg/bootstrap/config.go, requiredEnvoyStatsMatcherInclusionPrefixes), what
# proxyStatsMatcher.inclusionPrefixes adds (`included`), `component`, `istio`.
ISTIO_INCLUDED_PREFIXES = ["reporter=", "cluster_manager", "listener_manager", "server", "cluster.xds-grpc", "wasm"]

HTTP_SERVICES = [
    {"name": "payments-external", "namespace": "egress", "hosts": ["pay.example.com"], "ports": [443]},
    {"name": "maps-external", "hosts": ["maps.example.com"], "ports": [443]},
    # A name Istio's unanchored `cache` extractor also matches (README: a stray label).
    {"name": "redis-cache", "hosts": ["cache.example.com"], "ports": [443]},
]
TLS_SERVICES = [{"name": "openai-external", "hosts": ["api.openai.com"]}]
UNREGISTERED_TLS = "api.example.org"
ROUTES = [
    ("pay", ["pay.example.com"], "outbound|443||pay.example.com"),
    ("maps", ["maps.example.com"], "outbound|443||maps.example.com"),
    ("cache", ["cache.example.com"], "outbound|443||cache.example.com"),
    ("mesh", ["reviews", "reviews:*"], "outbound|9080||reviews.default.svc.cluster.local"),
    ("passthrough", ["unknown.example.net"], "PassthroughCluster"),
    ("app", ["*"], "echo"),
]


def http_listener(wasm):
    """The HTTP sidecar listener: network position in front of the HCM, downstream position
    in it, Istio-named clusters behind its routes."""
    plugin = {"position": "downstream", "tracer": "zipkin", "external_services": HTTP_SERVICES}
    listener = harness.render_listener(
        "zipkin", "network+downstream", wasm, plugin, name="http", network_config={"position": "network", "tracer": "zipkin"}
    )
    hcm = listener["filter_chains"][0]["filters"][1]["typed_config"]
    hcm["route_config"]["virtual_hosts"] = [
        {"name": name, "domains": domains, "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}]}
        for name, domains, cluster in ROUTES
    ]
    return listener


def bootstrap(wasm, upstream_port, tls_port, tls_listener_port, recipe_tags, included):
    network = harness.network_wasm_filter(
        wasm, {"position": "network", "tracer": "zipkin", "external_services": TLS_SERVICES}
    )
    tls = harness.outbound_tls_listener(
        loopback(tls_listener_port),
        [(h, f"outbound|443||{h}") for s in TLS_SERVICES for h in s["hosts"]],
        front=network,
        passthrough_front=network,
    )
    # Istio's TLS passthrough chain leads to PassthroughCluster too; here to the TLS server,
    # while the HTTP calls' PassthroughCluster leads to the echo server.
    tls["default_filter_chain"]["filters"][-1]["typed_config"]["cluster"] = "PassthroughCluster-tls"
    config = harness.render_bootstrap([http_listener(wasm), tls], upstream_port)
    clusters = config["static_resources"]["clusters"]
    clusters += [harness._cluster(cluster, upstream_port) for _, _, cluster in ROUTES if cluster != "echo"]
    tls_clusters = [f"outbound|443||{h}" for s in TLS_SERVICES for h in s["hosts"]] + ["PassthroughCluster-tls"]
    clusters += [harness._cluster(c, tls_port) for c in tls_clusters]
    stats = {"use_all_default_tags": False, "stats_tags": ISTIO_STATS_TAGS + recipe_tags}
    if included is not None:
        patterns = [{"prefix": p} for p in ISTIO_INCLUDED_PREFIXES + included + ["component", "istio"]]
        stats["stats_matcher"] = {"inclusion_list": {"patterns": patterns}}
    config["stats_config"] = stats
    return config


def scrape(envoy):
    with urllib.request.urlopen(envoy.admin + "/stats/prometheus", timeout=10) as r:
        return r.read().decode()


def recipe_tags():
    """The stats_tags of istio/monitoring/stats-tags-bootstrap.yaml's custom bootstrap."""
    doc = yaml.safe_load((MONITORING / "stats-tags-bootstrap.yaml").read_text())
    return json.loads(doc["data"]["custom_bootstrap.json"])["stats_config"]["stats_tags"]


def drive(envoy, tls_upstream):
    """Traffic that makes each counter family non-zero (the response classes 2xx to 5xx, for
    ServiceEntries and unregistered hosts: the dashboard queries each)."""
    port = envoy.port
    send(port, [("traceparent", f"00-{T}-{S}-01")])
    send(port, [("b3", f"{T}-{S}-1")])
    send(port, [("traceparent", "00-zz-nothex-01")])
    send(port, [("traceparent", f"00-{T}-{S}-01"), ("x-b3-traceid", X), ("x-b3-spanid", XS), ("x-b3-sampled", "1")])
    send(port, [])
    for status in (200, 302, 404, 503):
        send(port, [("host", "pay.example.com")], path=f"/status/{status}")
    send(port, [("host", "cache.example.com")])
    send(port, [("host", "reviews:9080")])
    for status in (200, 302, 404, 503):
        send(port, [("host", "unknown.example.net")], path=f"/status/{status}")
    for host in ("api.openai.com", UNREGISTERED_TLS):
        request(envoy.tls_port, host, tls_upstream.client_context(), b"x")


def istio_like_envoy(wasm, upstream_port, tls_upstream, recipe, included):
    listener_port = free_port()
    envoy = harness.Envoy(bootstrap(wasm, upstream_port, tls_upstream.port, listener_port, recipe, included))
    envoy.tls_port = listener_port
    return envoy


@pytest.fixture(scope="module")
def tls_upstream():
    with TlsUpstream(["api.openai.com", UNREGISTERED_TLS]) as up:
        yield up


@pytest.fixture(scope="module")
def scraped(wasm, upstream_port, tls_upstream):
    """/stats/prometheus of the Istio-like proxy with the recipe, after the traffic."""
    with istio_like_envoy(wasm, upstream_port, tls_upstream, recipe_tags(), []) as envoy:
        drive(envoy, tls_upstream)
        return scrape(envoy)


# --- reading PromQL ---------------------------------------------------------------------------
# Words in an expression that are not metric names: functions, aggregations, keywords.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev", "stdvar", "group",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "rate", "irate", "increase", "delta", "idelta", "deriv", "absent", "label_replace", "label_values",
    "sum_over_time", "max_over_time", "min_over_time", "avg_over_time", "histogram_quantile", "clamp_min",
    "vector", "scalar", "time", "inf", "nan",
}


def metric_selectors(expr):
    """(metric names, `__name__` regexes) an expression selects. Label matchers, label lists
    after by/without, strings and durations are cut first, so what is left of each identifier
    is a function, a keyword or a metric name."""
    regexes = re.findall(r'__name__\s*=~\s*"([^"]*)"', expr)
    names = set(re.findall(r'__name__\s*=\s*"([^"]*)"', expr))
    text = re.sub(r"\{[^}]*\}", " ", expr)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r'"[^"]*"', " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    for word in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        if word.lower() not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]", word):
            names.add(word)
    return names, regexes


def test_metric_selectors_reads_names_regexes_and_skips_the_rest():
    names, regexes = metric_selectors(
        'sum by (service_entry, pod) (rate(tracejoin_external_rq_2xx{namespace=~"$namespace"}[$__rate_interval]))'
        ' / on (pod) sum(rate({__name__=~"tracejoin_network_left_.+"}[5m])) > 16 * 1024'
    )
    assert names == {"tracejoin_external_rq_2xx"}
    assert regexes == ["tracejoin_network_left_.+"]


def dashboard():
    return json.loads((MONITORING / "grafana-dashboard.json").read_text())


def dashboard_exprs():
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def rules():
    return [rule for group in yaml.safe_load((MONITORING / "alerts.yaml").read_text())["groups"] for rule in group["rules"]]


def scraped_names(text):
    return {re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0) for line in text.splitlines() if line and not line.startswith("#")}


# The one name not yet checked live: the dry_run counter lands with the dry_run mode (issue
# 23); its name follows the rule every other name follows (`wasmcustom.tracejoin.X.Y` ->
# `tracejoin_X_Y`). test_dry_run_counter_name checks it once the build has dry_run.
NOT_YET_LIVE = {"tracejoin_dry_run_would_change"}


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_queried_metric_exists_in_a_real_scrape(scraped, source):
    exprs = dashboard_exprs() if source == "dashboard" else [r["expr"] for r in rules()]
    present = scraped_names(scraped)
    missing, unmatched, seen = [], [], set()
    for expr in exprs:
        names, regexes = metric_selectors(expr)
        seen |= names
        missing += [(n, expr) for n in names - present - NOT_YET_LIVE]
        unmatched += [(r, expr) for r in regexes if not any(re.fullmatch(r, n) for n in present)]
    assert not missing, missing
    assert not unmatched, unmatched
    assert seen, "no metric names read"


def test_the_scrape_carries_every_counter_family_non_zero(scraped):
    """The scrape the names are checked against had traffic in each family the dashboard
    shows (a name defined but never counted would pass the check above)."""
    values = {}
    for line in scraped.splitlines():
        if line.startswith("tracejoin_"):
            name = line.split("{")[0]
            values[name] = values.get(name, 0) + float(line.rsplit(" ", 1)[1])
    for name in (
        "tracejoin_context_tracecontext", "tracejoin_context_b3", "tracejoin_context_left_to_tracer",
        "tracejoin_invalid_tracecontext", "tracejoin_conflict", "tracejoin_network_heads", "tracejoin_network_rewritten",
        "tracejoin_network_tls_client_hellos", "tracejoin_external_rq_2xx", "tracejoin_external_rq_3xx",
        "tracejoin_external_rq_4xx", "tracejoin_external_rq_5xx", "tracejoin_external_unregistered_rq_5xx",
        "tracejoin_external_stripped", "tracejoin_external_tls_connections", "tracejoin_external_unregistered_tls_connections",
        "tracejoin_external_unregistered_host_tls_connections", "tracejoin_vm_memory_bytes",
    ):
        assert values.get(name, 0) > 0, (name, values.get(name))
    assert re.search(r"^envoy_wasm_envoy_wasm_runtime_v8_active\{\} [1-9]", scraped, re.M)


def test_the_recipe_makes_service_entry_labels_under_istios_tags(scraped):
    lines = scraped.splitlines()
    assert any(
        line.startswith("tracejoin_external_rq_2xx{")
        and 'service_entry="payments-external"' in line and 'service_entry_namespace="egress"' in line
        for line in lines
    ), [line for line in lines if "external" in line]
    assert any(
        line.startswith("tracejoin_external_tls_connections{") and 'service_entry="openai-external"' in line for line in lines
    )
    assert any(
        line.startswith("tracejoin_external_unregistered_host_tls_connections{") and f'unregistered_host="{UNREGISTERED_TLS}"' in line
        for line in lines
    )
    # Istio's own extractor `(cache\.(.+?)\.)` is unanchored: a ServiceEntry named *-cache
    # gets a stray `cache` label, its service_entry label intact (README).
    cached = [line for line in lines if 'service_entry="redis-cache"' in line]
    assert cached and all('cache="namespace"' in line for line in cached), cached


def test_the_configmap_is_the_tested_recipe():
    assert recipe_tags() == harness.EXTERNAL_STATS_TAGS


def test_without_the_recipe_each_service_entry_is_a_metric_name(wasm, upstream_port, tls_upstream):
    with istio_like_envoy(wasm, upstream_port, tls_upstream, [], []) as envoy:
        drive(envoy, tls_upstream)
        names = scraped_names(scrape(envoy))
    assert "tracejoin_external_service_entry_payments_external_namespace_egress_rq_2xx" in names
    assert "tracejoin_external_service_entry_openai_external_namespace_default_tls_connections" in names
    assert "tracejoin_external_rq_2xx" not in names


def test_istios_own_inclusion_list_exports_tracejoin(wasm, upstream_port, tls_upstream):
    """pilot-agent always includes the prefix `wasm` (for its readiness checks), and Envoy
    matches prefixes on the whole name, so `wasmcustom.tracejoin.*` is exported with no
    proxyStatsMatcher at all; an inclusion list without `wasm` shows the matcher is in force."""
    with istio_like_envoy(wasm, upstream_port, tls_upstream, recipe_tags(), []) as envoy:
        drive(envoy, tls_upstream)
        names = scraped_names(scrape(envoy))
    assert "tracejoin_external_rq_2xx" in names and "tracejoin_vm_memory_bytes" in names
    config = bootstrap(wasm, upstream_port, tls_upstream.port, free_port(), recipe_tags(), None)
    config["stats_config"]["stats_matcher"] = {"inclusion_list": {"patterns": [{"prefix": "reporter="}, {"prefix": "istio"}]}}
    with harness.Envoy(config) as envoy:
        send(envoy.port, [("traceparent", f"00-{T}-{S}-01")])
        names = scraped_names(scrape(envoy))
    assert not {n for n in names if n.startswith("tracejoin_")}, names


def test_dry_run_counter_name(wasm, upstream_port):
    """The dashboard's dry_run panel, once the build has dry_run: a proxy in dry run that sees
    a request it would change exports `tracejoin_dry_run_would_change`."""
    plugin = {"position": "downstream", "tracer": "zipkin", "dry_run": True}
    config = harness.render_config(upstream_port, tracer="zipkin", position="downstream", wasm_path=wasm, plugin_config=plugin)
    try:
        envoy = harness.Envoy(config).__enter__()
    except RuntimeError as e:
        if "dry_run" in str(e):
            pytest.skip("this build has no dry_run field: tracejoin_dry_run_would_change not checked live")
        raise
    try:
        if "dry_run" in envoy.log() and "unknown field" in envoy.log():
            pytest.skip("this build has no dry_run field: tracejoin_dry_run_would_change not checked live")
        send(envoy.port, [("traceparent", "00-zz-nothex-01")])
        assert "tracejoin_dry_run_would_change" in scraped_names(scrape(envoy))
    finally:
        envoy.__exit__(None, None, None)


# --- the files' structure ---------------------------------------------------------------------
def test_the_dashboard_is_well_formed():
    d = dashboard()
    assert d["schemaVersion"] >= 39
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "pod"):
        assert variables[name]["datasource"]["uid"] == "${datasource}"
        assert name in variables[name]["definition"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), ids
    panels = [p for p in d["panels"] if p["type"] != "row"]
    assert len(panels) >= 14
    for panel in panels:
        assert panel["title"] and panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"]["uid"] == "${datasource}", panel["title"]
            # Every query is narrowed to the chosen namespaces and pods.
            assert 'namespace=~"$namespace"' in target["expr"] and 'pod=~"$pod"' in target["expr"], target["expr"]


def github_anchors(markdown):
    """The anchors GitHub gives a page's headings (lower case, punctuation but - and _ dropped,
    spaces to -)."""
    anchors = set()
    for line in markdown.splitlines():
        found = re.match(r"#+\s+(.*)", line)
        if found:
            anchors.add(re.sub(r"[^\w\- ]", "", found.group(1).strip().lower()).replace(" ", "-"))
    return anchors


def test_the_alert_rules_are_well_formed():
    anchors = github_anchors((ROOT / "docs" / "troubleshooting.md").read_text())
    names = [r["alert"] for r in rules()]
    assert len(names) == len(set(names)) and len(names) >= 7
    for rule in rules():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        linked = re.findall(r"docs/troubleshooting\.md#([\w-]+)", rule["annotations"]["description"])
        assert linked and set(linked) <= anchors, (rule["alert"], linked)


def test_promtool_accepts_the_rules():
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (Debian package prometheus); the rules' structure is checked above")
    result = subprocess.run([promtool, "check", "rules", str(MONITORING / "alerts.yaml")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "SUCCESS: 8 rules found" in result.stdout, result.stdout + result.stderr
