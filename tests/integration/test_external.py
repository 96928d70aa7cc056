"""External calls tagged with ServiceEntry names in a real Envoy: access logs, stats, span
tags, and trace headers kept from third parties. Clusters carry Istio's names
(`outbound|PORT||HOST`, `PassthroughCluster`) and all point at the loopback echo server."""

import json
import time

import pytest

from tracejoin_tools.common import S, T
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import header_values

TRACE_HEADERS = ("traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "baggage")

PLUGIN = {
    "tracer": "zipkin",
    "external_services": [
        {"name": "openai-external", "namespace": "egress", "hosts": ["api.openai.com"], "ports": [443]},
        {"name": "aws-s3-external", "hosts": ["*.s3.amazonaws.com"], "ports": [443]},
        {"name": "kakao-external", "hosts": ["kauth.kakao.com"], "ports": [443], "propagate": True},
        {"name": "down-external", "hosts": ["down.example.com"]},
    ],
}
ROUTES = [
    ("openai", ["api.openai.com", "api.openai.com:*"], "outbound|443||api.openai.com"),
    ("s3", ["*.s3.amazonaws.com"], "outbound|443||*.s3.amazonaws.com"),
    ("kakao", ["kauth.kakao.com"], "outbound|443||kauth.kakao.com"),
    ("mesh", ["character-api", "character-api:*"], "outbound|8080||character-api.default.svc.cluster.local"),
    # Nothing listens there: Envoy answers 503 itself (connect failure).
    ("down", ["down.example.com"], "outbound|443||down.example.com"),
    ("passthrough", ["*"], "PassthroughCluster"),
]
FORMATTER_TAGS = [
    {"tag": "istio.service_entry", "value": "%FILTER_STATE(wasm.tracejoin.service_entry:PLAIN)%"},
    {"tag": "external.host", "value": "%FILTER_STATE(wasm.tracejoin.external_host:PLAIN)%"},
]
ACCESS_LOG_FORMAT = (
    "entry=%FILTER_STATE(wasm.tracejoin.service_entry:PLAIN)% "
    "ns=%FILTER_STATE(wasm.tracejoin.service_entry_namespace:PLAIN)% "
    "host=%FILTER_STATE(wasm.tracejoin.external_host:PLAIN)% code=%RESPONSE_CODE%\n"
)


def external_config(upstream_port, wasm, position, access_log):
    plugin = dict(PLUGIN, position=position)
    config = envoy_harness.render_config(upstream_port, tracer="zipkin", position=position, wasm_path=wasm, plugin_config=plugin)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["route_config"]["virtual_hosts"] = [
        {"name": name, "domains": domains, "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}]}
        for name, domains, cluster in ROUTES
    ]
    hcm["access_log"] = [
        {
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": str(access_log),
                "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
            },
        }
    ]
    # Span tags from filter state (formatter custom tags: Envoy >= 1.37 only, which
    # test_formatter_span_tags_need_envoy_1_37 measures).
    if envoy_harness.envoy_release() >= envoy_harness.FORMATTER_TAGS_SINCE:
        hcm["tracing"]["custom_tags"] = FORMATTER_TAGS
    clusters = config["static_resources"]["clusters"]
    template = clusters[0]
    for _, _, cluster in ROUTES:
        clusters.append(dict(json.loads(json.dumps(template)), name=cluster))
        clusters[-1]["load_assignment"]["cluster_name"] = cluster
    for cluster in clusters:
        if cluster["name"] == "outbound|443||down.example.com":
            cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = 1
    # The README's tag extraction: the ServiceEntry name and namespace as Prometheus labels.
    config["stats_config"] = {"stats_tags": envoy_harness.EXTERNAL_STATS_TAGS}
    # Export spans at once instead of every 5 s.
    config["layered_runtime"] = {
        "layers": [{"name": "static", "static_layer": {"tracing.zipkin.min_flush_spans": 1, "tracing.zipkin.flush_interval_ms": 100}}]
    }
    return config


@pytest.fixture(params=["downstream", "upstream"])
def mesh(request, upstream_port, wasm, tmp_path):
    access_log = tmp_path / "access.log"
    with envoy_harness.Envoy(external_config(upstream_port, wasm, request.param, access_log)) as envoy:
        yield request.param, envoy, access_log


def call(envoy, host, path="/"):
    headers = [("host", host), ("traceparent", f"00-{T}-{S}-01"), ("tracestate", "vendor=1"), ("baggage", "user=42")]
    return send(envoy.port, headers, path=path)


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def test_external_calls_are_named_in_access_logs_and_stats(mesh):
    position, envoy, access_log = mesh
    call(envoy, "api.openai.com")
    call(envoy, "photos.s3.amazonaws.com", path="/status/503")
    call(envoy, "character-api:8080")
    call(envoy, "example.org", path="/status/404")
    lines = wait_for(lambda: access_log.exists() and len(access_log.read_text().splitlines()) >= 4 and access_log.read_text().splitlines())
    assert lines == [
        "entry=openai-external ns=egress host=api.openai.com code=200",
        "entry=aws-s3-external ns=default host=photos.s3.amazonaws.com code=503",
        "entry=- ns=- host=- code=200",
        "entry=unregistered ns=- host=example.org code=404",
    ]
    stats = envoy.stats("tracejoin.external")
    prefix = "wasmcustom.tracejoin.external."
    assert stats[prefix + "service_entry.openai-external.namespace.egress.rq_2xx"] == 1
    assert stats[prefix + "service_entry.aws-s3-external.namespace.default.rq_5xx"] == 1
    assert stats[prefix + "unregistered.rq_4xx"] == 1
    assert "tracejoin: calls to example.org leave the mesh with no ServiceEntry" in envoy.log()


def test_formatter_span_tags_need_envoy_1_37(tmp_path, upstream_port):
    """The span tags the Istio kit reads from tracejoin's filter state are formatter custom
    tags (`value`), which Envoy accepts from 1.37 on; older releases refuse the config."""
    config = envoy_harness.render_config(upstream_port, tracer="zipkin")
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["tracing"]["custom_tags"] = FORMATTER_TAGS
    passed, output = envoy_harness.validate(config, tmp_path)
    if envoy_harness.envoy_release() >= envoy_harness.FORMATTER_TAGS_SINCE:
        assert passed, output
    else:
        assert not passed and "CustomTag" in output and "no such field: 'value'" in output, output


def test_external_calls_are_tagged_in_spans(mesh, upstream_port, echo_collected):
    position, envoy, _ = mesh
    if envoy_harness.envoy_release() < envoy_harness.FORMATTER_TAGS_SINCE:
        pytest.skip("formatter span tags need Envoy 1.37 (test_formatter_span_tags_need_envoy_1_37)")
    # Only the spans of this test's calls: earlier tests' calls carried the same tags.
    before = len(echo_collected())
    call(envoy, "api.openai.com")
    call(envoy, "example.org")

    def tags_seen():
        zipkin = [body for path, _, body in echo_collected()[before:] if path == "/api/v2/spans"]
        spans = [span for body in zipkin for span in json.loads(body or b"[]")]
        return {(s.get("tags", {}).get("istio.service_entry"), s.get("tags", {}).get("external.host")) for s in spans}

    tags = wait_for(lambda: {("openai-external", "api.openai.com"), ("unregistered", "example.org")} <= tags_seen())
    assert tags, tags_seen()


def test_third_parties_get_no_trace_headers(mesh):
    position, envoy, _ = mesh
    _, _, openai = call(envoy, "api.openai.com")
    _, _, kakao = call(envoy, "kauth.kakao.com")
    _, _, internal = call(envoy, "character-api:8080")
    sent = {name for name, _ in openai}
    if position == "upstream":
        # After Envoy's tracer injected: nothing of the trace leaves.
        assert not sent & set(TRACE_HEADERS), openai
    else:
        # A listener filter removes what the app sent; Envoy's Zipkin tracer still injects
        # its own x-b3-* afterwards (the README says to use the upstream position).
        assert not sent & {"traceparent", "tracestate", "b3", "baggage"}, openai
        assert len(header_values(openai, "x-b3-traceid")) == 1, "Envoy's own injection, after the filter"
    # Services allowed to see traces, and in-mesh calls, keep them.
    assert header_values(kakao, "traceparent") and header_values(kakao, "baggage") == ["user=42"]
    assert header_values(internal, "baggage") == ["user=42"]
    assert envoy.stats("tracejoin.external.stripped")["wasmcustom.tracejoin.external.stripped"] >= 1


def test_service_entry_names_become_prometheus_labels(mesh):
    position, envoy, _ = mesh
    call(envoy, "api.openai.com")
    import urllib.request

    with urllib.request.urlopen(envoy.admin + "/stats/prometheus", timeout=5) as r:
        text = r.read().decode()
    line = next(row for row in text.splitlines() if "openai-external" in row and not row.startswith("#"))
    # Envoy drops its `wasmcustom` namespace (and its own `envoy_` prefix) for custom stats.
    assert line.startswith("tracejoin_external_rq_2xx{"), line
    assert any(row.startswith("tracejoin_context_tracecontext{") for row in text.splitlines())
    assert 'service_entry="openai-external"' in line and 'service_entry_namespace="egress"' in line, line


def test_header_span_tags_vanish_with_the_header(upstream_port, echo_collected):
    """Why tracejoin offers no tag header: Envoy reads `request_header` span tags from the
    request's header map when the span ends, so a header removed before the request leaves
    (here by the route, as a filter would) is gone from the span too."""

    def zipkin_spans():
        return [s for p, _, b in echo_collected() if p == "/api/v2/spans" for s in json.loads(b or b"[]")]

    tags = {}
    for remove in (False, True):
        config = envoy_harness.render_config(upstream_port, tracer="zipkin")
        hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["tracing"]["custom_tags"] = [{"tag": "probe.tag", "request_header": {"name": "x-probe-tag"}}]
        if remove:
            hcm["route_config"]["virtual_hosts"][0]["request_headers_to_remove"] = ["x-probe-tag"]
        config["layered_runtime"] = {"layers": [{"name": "static", "static_layer": {"tracing.zipkin.min_flush_spans": 1}}]}
        before = len(zipkin_spans())
        with envoy_harness.Envoy(config) as envoy:
            _, _, got = send(envoy.port, [("x-probe-tag", "openai-external")])
            # This request's span only: a span an earlier test's Envoy flushed late may
            # arrive in the same window.
            trace_id = header_values(got, "x-b3-traceid")[0]
            new = wait_for(lambda before=before, trace_id=trace_id: [s for s in zipkin_spans()[before:] if s.get("traceId") == trace_id])
        assert len(new) == 1, new
        assert bool(header_values(got, "x-probe-tag")) is not remove
        tags[remove] = new[0].get("tags", {}).get("probe.tag")
    assert tags == {False: "openai-external", True: None}


def test_envoys_own_replies_are_counted_downstream(mesh):
    """A connect failure's 503 comes from Envoy, not the service. A listener filter counts it
    at stream end; a router upstream filter sees neither its response headers nor the end of
    the stream (measured), so there it goes uncounted (README)."""
    position, envoy, _ = mesh
    status, _, _ = call(envoy, "down.example.com")
    assert status == 503
    name = "wasmcustom.tracejoin.external.service_entry.down-external.namespace.default.rq_5xx"
    if position == "downstream":
        assert wait_for(lambda: envoy.stats("tracejoin.external.service_entry.down-external").get(name)) == 1
    else:
        assert envoy.stats("tracejoin.external.service_entry.down-external").get(name, 0) == 0
