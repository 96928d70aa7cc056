"""The Istio deployment kit (istio/: base, components, extras, ambient): every manifest validates against Istio's CRD schemas
or Kubernetes' own, every pluginConfig against tracejoin's schema and in the real filter
under Envoy, and the ServiceEntries stay the single source of `external_services`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from tracejoin_tools.common import ROOT, S, T, traceparent
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import header_values

ISTIO = ROOT / "istio"


def kit_manifests():
    """The kit's manifest files (istio/README.md's layout): every file a kustomization or
    component outside ambient/ lists as a resource, the standalone files in extras/, and the
    Helm values. Patches (mount-module.yaml, selector.yaml) are not manifests."""
    found = {ISTIO / "istiod-values.yaml", *(ISTIO / "extras").glob("*.yaml")}
    for kustomization in ISTIO.glob("**/kustomization.yaml"):
        if "ambient" in kustomization.relative_to(ISTIO).parts:
            continue
        for resource in yaml.safe_load(kustomization.read_text()).get("resources", []):
            path = (kustomization.parent / resource).resolve()
            if path.is_file():
                found.add(path)
    return sorted(found)


MANIFESTS = kit_manifests()
BASE = ISTIO / "base"
COMPONENTS = ISTIO / "components"
SERVICE_ENTRIES = COMPONENTS / "service-entries" / "service-entries.yaml"
SIDECAR_PLUGINS = COMPONENTS / "sidecars" / "wasmplugin-sidecar.yaml"
TRACING = COMPONENTS / "tracing-backend"
# The ambient waypoint kit (istio/ambient/): validated and loaded like the rest.
AMBIENT = ISTIO / "ambient"
AMBIENT_MANIFESTS = sorted(p for p in AMBIENT.glob("*.yaml") if p.name != "kustomization.yaml")
CONFIG_SCHEMA = json.loads((ROOT / "schema" / "tracejoin-config.schema.json").read_text())
KUBERNETES_VERSION = "1.33"


def crd_file():
    """The vendored CRDs (istio/crds/README.md), or another copy of Istio's bundle in ISTIO_CRDS."""
    path = Path(os.environ.get("ISTIO_CRDS", ISTIO / "crds" / "istio-crds.yaml"))
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Istio CRDs not found at {path}")
        pytest.skip(f"Istio CRDs not found at {path}: set ISTIO_CRDS to istio/api's customresourcedefinitions.gen.yaml")
    return path


def strict(schema):
    """The API server prunes unknown fields silently; here they are errors, so a misspelt or
    misplaced field (`failStratgy`, `pluginConfig` one level off) fails the test."""
    if isinstance(schema, dict):
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        for key, value in schema.items():
            if key not in ("enum", "default", "example"):
                strict(value)
    elif isinstance(schema, list):
        for item in schema:
            strict(item)
    return schema


def load_crd_schemas():
    """(apiVersion, kind) -> the CRD's openAPIV3Schema, strict below the top level."""
    schemas = {}
    for crd in yaml.safe_load_all(crd_file().read_text()):
        if not crd:
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            root = version["schema"]["openAPIV3Schema"]
            # Strict below the top level (apiVersion, kind and metadata are not described).
            for key in ("spec", "status"):
                if key in root.get("properties", {}):
                    strict(root["properties"][key])
            schemas[(f"{group}/{version['name']}", kind)] = root
    return schemas


@pytest.fixture(scope="module")
def crd_schemas():
    return load_crd_schemas()


def documents():
    for path in MANIFESTS + AMBIENT_MANIFESTS:
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc and "kind" in doc:  # istiod-values.yaml is Helm values, not a resource
                yield pytest.param(doc, id=f"{path.relative_to(ISTIO)}#{i}-{doc['kind']}-{doc['metadata']['name']}")


def validate_resource(doc, crd_schemas):
    """An Istio resource against its CRD (strict), anything else against Kubernetes' schemas."""
    if ".istio.io/" in doc["apiVersion"]:
        schema = crd_schemas.get((doc["apiVersion"], doc["kind"]))
        assert schema, f"no CRD serves {doc['apiVersion']} {doc['kind']}"
        jsonschema.validate(doc, schema)
    else:
        import kubernetes_validate

        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("doc", list(documents()))
def test_manifest_validates(doc, crd_schemas):
    assert doc["metadata"].get("name")
    validate_resource(doc, crd_schemas)


def test_validation_catches_mistakes(crd_schemas):
    import kubernetes_validate

    plugin = yaml.safe_load((BASE / "wasmplugin-gateway.yaml").read_text())
    plugin["spec"]["phase"] = "LATE"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plugin, crd_schemas[(plugin["apiVersion"], plugin["kind"])])
    plugin["spec"]["phase"] = "AUTHN"
    plugin["spec"]["failStratgy"] = plugin["spec"].pop("failStrategy")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plugin, crd_schemas[(plugin["apiVersion"], plugin["kind"])])
    plugin["spec"]["failStrategy"] = plugin["spec"].pop("failStratgy")
    plugin["spec"]["sha256"] = "not-a-digest"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plugin, crd_schemas[(plugin["apiVersion"], plugin["kind"])])
    service = [d for d in yaml.safe_load_all((TRACING / "collector.yaml").read_text()) if d["kind"] == "Service"][0]
    service["spec"]["ports"][0]["port"] = "zipkin"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)


def test_istiod_values_name_what_the_kit_uses():
    values = yaml.safe_load((ISTIO / "istiod-values.yaml").read_text())["meshConfig"]
    telemetry = yaml.safe_load((TRACING / "telemetry.yaml").read_text())
    provider = telemetry["spec"]["tracing"][0]["providers"][0]["name"]
    assert provider in [p["name"] for p in values["extensionProviders"]]
    jaeger = [d for d in yaml.safe_load_all((TRACING / "collector.yaml").read_text()) if d["kind"] == "Service"][0]
    zipkin = values["extensionProviders"][0]["zipkin"]
    assert zipkin["service"] == f"{jaeger['metadata']['name']}.{jaeger['metadata']['namespace']}.svc.cluster.local"
    assert zipkin["port"] in [p["port"] for p in jaeger["spec"]["ports"]]
    assert "wasm.tracejoin.service_entry" in values["accessLogFormat"]
    # No proxyStatsMatcher: pilot-agent always includes the prefix `wasm` (istio/istio
    # pkg/bootstrap/config.go, requiredEnvoyStatsMatcherInclusionPrefixes; test_monitoring
    # scrapes tracejoin's stats under that list), and a list given with Helm replaces the
    # operator's own inclusionPrefixes.
    assert "proxyStatsMatcher" not in json.dumps(values)


def test_istiod_values_header_names_every_value_that_replaces_the_operators():
    """Helm merges maps, but a scalar or list in the file replaces the operator's value even
    with --reuse-values: the header must name each one the file sets."""
    text = (ISTIO / "istiod-values.yaml").read_text()
    header = text.split("\nmeshConfig:")[0]

    def leaves(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from leaves(value, f"{path}.{key}" if path else key)
        else:
            yield path

    replaced = list(leaves(yaml.safe_load(text)["meshConfig"], ""))
    assert "extensionProviders" in replaced and "accessLogFormat" in replaced
    for path in replaced:
        assert f"`{path}`" in header, path


KUSTOMIZATIONS = sorted(ISTIO.glob("**/kustomization.yaml"))


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=[str(k.parent.relative_to(ROOT)) for k in KUSTOMIZATIONS])
def test_kustomization_lists_existing_manifests(kustomization):
    folder = kustomization.parent
    doc = yaml.safe_load(kustomization.read_text())
    listed = doc.get("resources", []) + doc.get("components", []) + [p["path"] for p in doc.get("patches", []) if "path" in p]
    # components/image lists nothing: it is replacements only.
    assert listed or doc.get("replacements")
    for resource in listed:
        assert (folder / resource).exists(), resource


def test_kustomization_is_the_all_wasmplugin_deployment():
    """`kubectl apply -k istio/` gives deployment 2: every HTTP WasmPlugin with its NETWORK
    twin in front of the tracer, and no EnvoyFilter or TrafficExtension beside them."""
    from tracejoin_tools.istio.placement import render

    docs = render(ISTIO)
    kinds = {d["kind"] for d in docs}
    assert "WasmPlugin" in kinds and not kinds & {"EnvoyFilter", "TrafficExtension"}
    plugins = {d["metadata"]["name"]: d for d in docs if d["kind"] == "WasmPlugin"}
    assert {p["spec"]["type"] for p in plugins.values()} == {"HTTP", "NETWORK"}
    assert {n for n, p in plugins.items() if p["spec"]["type"] == "NETWORK"} == {
        f"{n}-network" for n, p in plugins.items() if p["spec"]["type"] == "HTTP"
    }


def plugin_type(doc):
    spec = doc["spec"].get("wasm", doc["spec"])
    return spec.get("type", "HTTP")


def extensions(kind, manifests=MANIFESTS):
    """The kit's WasmPlugins or TrafficExtensions (or any kind) by name."""
    return {
        d["metadata"]["name"]: d
        for path in manifests
        for d in yaml.safe_load_all(path.read_text())
        if d and d.get("kind") == kind
    }


@pytest.mark.parametrize("kind", ["WasmPlugin", "TrafficExtension"])
def test_every_http_plugin_has_a_network_twin(kind):
    """The NETWORK plugin reaches the same proxies and listeners as the HTTP one it fronts:
    same namespace, selector and `match` (which istiod applies to NETWORK plugins too), and
    it fails open."""
    found = extensions(kind)
    http = {n: d for n, d in found.items() if plugin_type(d) == "HTTP"}
    network = {n: d for n, d in found.items() if plugin_type(d) == "NETWORK"}
    assert http and set(network) == {f"{n}-network" for n in http}
    for name, doc in http.items():
        twin = network[f"{name}-network"]
        assert twin["metadata"]["namespace"] == doc["metadata"]["namespace"]
        for field in ("selector", "match", "targetRefs"):
            assert twin["spec"].get(field) == doc["spec"].get(field), (name, field)
        wasm = twin["spec"].get("wasm", twin["spec"])
        assert wasm["failStrategy"] == "FAIL_OPEN"
        config = dict(wasm["pluginConfig"])
        # Sidecar outbound also names the apps' own TLS connections by ServiceEntry.
        assert ("external_services" in config) == (name == "tracejoin-outbound")
        config.pop("external_services", None)
        assert config == {"position": "network", "tracer": "zipkin"}


def plugin_configs():
    """(position, pluginConfig) for every place the kit configures tracejoin: a NETWORK plugin
    is a network filter (position network), an HTTP one a listener filter (downstream)."""
    for path in MANIFESTS + AMBIENT_MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or "kind" not in doc:
                continue
            name = f"{path.relative_to(ISTIO)}:{doc['metadata']['name']}"
            position = "network" if doc["kind"] in ("WasmPlugin", "TrafficExtension") and plugin_type(doc) == "NETWORK" else "downstream"
            if doc["kind"] == "WasmPlugin":
                yield pytest.param(position, doc["spec"].get("pluginConfig", {}), id=name)
            elif doc["kind"] == "TrafficExtension":
                yield pytest.param(position, doc["spec"]["wasm"].get("pluginConfig", {}), id=name)
            elif doc["kind"] == "EnvoyFilter":
                for patch in doc["spec"]["configPatches"]:
                    typed = patch["patch"]["value"]["typed_config"]
                    if patch["applyTo"] == "NETWORK_FILTER":
                        # A network filter in front of tcp_proxy (envoyfilter-passthrough.yaml).
                        value = json.loads(typed["config"]["configuration"]["value"])
                        yield pytest.param("network", value, id=name)
                        continue
                    for f in typed["upstream_http_filters"]:
                        if f["name"] == "envoy.filters.http.wasm":
                            value = json.loads(f["typed_config"]["config"]["configuration"]["value"])
                            yield pytest.param("upstream", value, id=name)


@pytest.mark.parametrize("position,plugin_config", list(plugin_configs()))
def test_plugin_config_loads_in_envoy(upstream_port, wasm, position, plugin_config):
    """Each pluginConfig in the filter type its manifest gives it: `type: NETWORK` as
    envoy.filters.network.wasm in front of the HCM, as istiod places it."""
    jsonschema.validate(plugin_config, CONFIG_SCHEMA)
    assert plugin_config.get("position", "downstream") == position
    tracer = plugin_config.get("tracer", "zipkin")
    config = envoy_harness.render_config(upstream_port, tracer=tracer, position=position, wasm_path=wasm, plugin_config=plugin_config)
    filters = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
    assert [f["name"] for f in filters][0] == ("envoy.filters.network.wasm" if position == "network" else "envoy.filters.network.http_connection_manager")
    with envoy_harness.Envoy(config) as envoy:
        status, _, got = send(envoy.port, [("traceparent", traceparent())])
        assert status == 200
        assert f"tracejoin: configured: position {position.capitalize()}," in envoy.log()
        rewritten = envoy.stats("tracejoin").get("wasmcustom.tracejoin.network.rewritten", 0)
    if position == "network":
        # In front of the tracer: Envoy's Zipkin span continued the app's W3C context.
        assert rewritten == 1
        assert header_values(got, "x-b3-traceid") == [T] and header_values(got, "x-b3-parentspanid") == [S]


ENVOYFILTERS = [
    d
    for path in (COMPONENTS / "upstream" / "envoyfilter-upstream.yaml", COMPONENTS / "upstream-gateway" / "envoyfilter-upstream-gateway.yaml")
    for d in yaml.safe_load_all(path.read_text())
    if d
]


@pytest.mark.parametrize("doc", ENVOYFILTERS, ids=[d["metadata"]["name"] for d in ENVOYFILTERS])
def test_envoyfilter_patch_runs_in_envoy(tmp_path, upstream_port, wasm, doc):
    """The router config each EnvoyFilter merges, with the module path pointed at the build."""
    router = doc["spec"]["configPatches"][0]["patch"]["value"]
    for f in router["typed_config"]["upstream_http_filters"]:
        if f["name"] == "envoy.filters.http.wasm":
            f["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = wasm
    config = envoy_harness.render_config(upstream_port, tracer="zipkin")
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"] = [router]
    with envoy_harness.Envoy(config) as envoy:
        status, _, got = send(envoy.port, [("traceparent", traceparent())])
    assert status == 200
    # Upstream position: Envoy's fresh B3 trace replaced by the app's.
    assert header_values(got, "x-b3-traceid") == [T]


def envoyfilter_router(name, wasm):
    """The router config an EnvoyFilter of the kit merges, the module path pointed at the build."""
    doc = next(d for d in ENVOYFILTERS if d["metadata"]["name"] == name)
    router = json.loads(json.dumps(doc["spec"]["configPatches"][0]["patch"]["value"]))
    for f in router["typed_config"]["upstream_http_filters"]:
        if f["name"] == "envoy.filters.http.wasm":
            f["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = wasm
    return router


# The proxies each deployment covers: (NETWORK WasmPlugin, what runs behind it: an HTTP
# WasmPlugin for deployment 2, an EnvoyFilter for deployment 3).
DEPLOYMENTS = [
    ("tracejoin-gateway-network", "WasmPlugin", "tracejoin-gateway"),
    ("tracejoin-inbound-network", "WasmPlugin", "tracejoin-inbound"),
    ("tracejoin-outbound-network", "WasmPlugin", "tracejoin-outbound"),
    ("tracejoin-gateway-network", "EnvoyFilter", "tracejoin-upstream-gateway"),
    ("tracejoin-inbound-network", "EnvoyFilter", "tracejoin-upstream-inbound"),
    ("tracejoin-outbound-network", "EnvoyFilter", "tracejoin-upstream"),
]


@pytest.mark.parametrize("network,kind,behind", DEPLOYMENTS, ids=[f"{n}+{b}" for n, _, b in DEPLOYMENTS])
def test_deployments_run_in_envoy(upstream_port, wasm, network, kind, behind):
    """Deployments 2 and 3 as one proxy gets them: the NETWORK plugin's pluginConfig in front
    of the HCM, the HTTP plugin or the EnvoyFilter's upstream filter behind. A W3C-only app's
    context reaches the upstream in every format in one trace, Envoy's span its child."""
    network_config = extensions("WasmPlugin")[network]["spec"]["pluginConfig"]
    if kind == "WasmPlugin":
        http_config = extensions("WasmPlugin")[behind]["spec"]["pluginConfig"]
        config = envoy_harness.render_config(
            upstream_port, tracer="zipkin", position="network+downstream", wasm_path=wasm,
            plugin_config=http_config, network_config=network_config,
        )
    else:
        config = envoy_harness.render_config(upstream_port, tracer="zipkin", position="network", wasm_path=wasm, plugin_config=network_config)
        filters = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
        filters[-1]["typed_config"]["http_filters"] = [envoyfilter_router(behind, wasm)]
    with envoy_harness.Envoy(config) as envoy:
        status, _, got = send(envoy.port, [("traceparent", traceparent())])
        log = envoy.log()
    assert status == 200
    assert "position Network," in log and ("position Upstream," if kind == "EnvoyFilter" else "position Downstream,") in log
    assert header_values(got, "x-b3-traceid") == [T] and header_values(got, "x-b3-parentspanid") == [S]
    envoys_span = header_values(got, "x-b3-spanid")[0]
    # Deployment 3 names Envoy's span in traceparent too (exact parent); deployment 2 leaves
    # the app's own (its caller's span: one hop coarser).
    assert header_values(got, "traceparent") == [traceparent(T, envoys_span if kind == "EnvoyFilter" else S)]


def test_service_entries_are_the_single_source():
    tool = [sys.executable, "-m", "tracejoin_tools.istio.serviceentries_to_config", str(SERVICE_ENTRIES)]
    manifests = [
        str(SIDECAR_PLUGINS),
        str(COMPONENTS / "sidecars" / "wasmplugin-sidecar-network.yaml"),
        str(ISTIO / "extras" / "trafficextension.yaml"),
        str(COMPONENTS / "upstream" / "envoyfilter-upstream.yaml"),
    ]
    manifests += [str(p) for p in AMBIENT_MANIFESTS if "external_services" in p.read_text()]
    check = subprocess.run(tool + ["--check", *manifests], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    generated = json.loads(subprocess.run(tool, capture_output=True, text=True, check=True).stdout)["external_services"]
    names = {s["name"] for s in generated}
    assert names == {"google-external", "kakao-external", "naver-external", "openai-external", "aws-s3-external", "aws-cloudfront"}
    outbound = [d for d in yaml.safe_load_all(SIDECAR_PLUGINS.read_text()) if d["metadata"]["name"] == "tracejoin-outbound"][0]
    assert outbound["spec"]["pluginConfig"]["external_services"] == generated
    upstream = [c for _, c in (p.values for p in plugin_configs()) if c.get("position") == "upstream" and "external_services" in c]
    assert upstream and all(c["external_services"] == generated for c in upstream)
    # Every plugin of the kit that names external calls, the waypoints' and the sidecar's
    # NETWORK plugins (TLS connections) included; the passthrough chains' filter names every
    # connection `unregistered` and lists no entry.
    configs = [c for _, c in (p.values for p in plugin_configs()) if "external_services" in c]
    named = [c for c in configs if c["external_services"]]
    assert len(named) == 10 and all(c["external_services"] == generated for c in named)
    assert len(configs) - len(named) == 2


def test_a_stale_block_is_caught(tmp_path):
    stale = tmp_path / "wasmplugin.yaml"
    stale.write_text(SIDECAR_PLUGINS.read_text().replace("api.openai.com", "api.example.com"))
    tool = [sys.executable, "-m", "tracejoin_tools.istio.serviceentries_to_config", str(SERVICE_ENTRIES)]
    assert subprocess.run(tool + ["--check", str(stale)], capture_output=True).returncode == 1
    assert subprocess.run(tool + ["--write", str(stale)], capture_output=True).returncode == 0
    assert subprocess.run(tool + ["--check", str(stale)], capture_output=True).returncode == 0


@pytest.mark.parametrize("variant", ["oci", "file"])
def test_pinned_manifests_validate(tmp_path, wasm, crd_schemas, variant):
    pin = [sys.executable, "-m", "tracejoin_tools.istio.pin", "--out", str(tmp_path)]
    if variant == "oci":
        pin += ["--image", "registry.example.com/tracejoin:0.1.0", "--digest", "sha256:" + "ab" * 32]
    else:
        pin += ["--file-url", "file:///var/local/lib/wasm/tracejoin.wasm", "--wasm", wasm]
    subprocess.run(pin, check=True, capture_output=True)
    import hashlib

    expected = "ab" * 32 if variant == "oci" else hashlib.sha256(Path(wasm).read_bytes()).hexdigest()
    pinned = []
    for path in tmp_path.glob("**/*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            # Patches (a JSON patch is a list) and Helm values sit beside the manifests.
            if isinstance(doc, dict) and doc.get("kind") in ("WasmPlugin", "TrafficExtension"):
                jsonschema.validate(doc, crd_schemas[(doc["apiVersion"], doc["kind"])])
                spec = doc["spec"].get("wasm", doc["spec"])
                assert spec["sha256"] == expected
                assert spec["url"].startswith("oci://" if variant == "oci" else "file://")
                pinned.append((doc["kind"], doc["metadata"]["name"]))
    # Every plugin of the kit, HTTP and NETWORK, the ambient ones too, is pinned...
    kit = [(kind, name) for kind in ("WasmPlugin", "TrafficExtension") for name in extensions(kind, MANIFESTS + AMBIENT_MANIFESTS)]
    assert sorted(pinned) == sorted(kit)
    # ...and `kubectl apply -k` on the output renders it pinned; the EnvoyFilters for
    # deployment 3 (a mounted file, no url to pin) are there unchanged.
    from tracejoin_tools.istio.placement import render

    rendered = [d for d in render(tmp_path) if d["kind"] == "WasmPlugin"]
    assert rendered and all(d["spec"]["sha256"] == expected for d in rendered)
    upstream = Path("components") / "upstream" / "envoyfilter-upstream.yaml"
    assert (tmp_path / upstream).read_text() == (ISTIO / upstream).read_text()


def test_pin_replaces_only_a_folder_it_wrote(tmp_path):
    """pin deletes an earlier copy before writing (no stale files), but never a folder it did
    not write: not the kit (`--out istio`), not a folder inside or around it, not a folder
    with other files."""
    pin = [sys.executable, "-m", "tracejoin_tools.istio.pin", "--image", "registry.example.com/tracejoin:0.1.0", "--digest", "ab" * 32, "--out"]
    before = sorted(p for p in ISTIO.rglob("*") if p.is_file())
    for out in (ISTIO, ISTIO / "overlays", ISTIO / "new", ISTIO.parent):
        run = subprocess.run(pin + [str(out)], capture_output=True, text=True, cwd=ISTIO.parent)
        assert run.returncode == 1 and "would overwrite the kit" in run.stderr, (out, run.stderr)
    run = subprocess.run(pin + ["istio"], capture_output=True, text=True, cwd=ISTIO.parent)
    assert run.returncode == 1 and "would overwrite the kit" in run.stderr
    assert sorted(p for p in ISTIO.rglob("*") if p.is_file()) == before and not (ISTIO / "new").exists()
    # Someone's folder that happens to hold a kustomization: left alone.
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "kustomization.yaml").write_text("resources: []\n")
    run = subprocess.run(pin + [str(theirs)], capture_output=True, text=True)
    assert run.returncode == 1 and "not written by this tool" in run.stderr
    assert [p.name for p in theirs.iterdir()] == ["kustomization.yaml"]
    # An earlier copy is replaced: a file it held that the kit does not is gone.
    ours = tmp_path / "ours"
    assert subprocess.run(pin + [str(ours)], capture_output=True).returncode == 0
    assert (ours / ".tracejoin-pinned").is_file() and (ours / "kustomization.yaml").is_file()
    (ours / "stale.yaml").write_text("{}\n")
    assert subprocess.run(pin + [str(ours)], capture_output=True).returncode == 0
    assert not (ours / "stale.yaml").exists() and (ours / "kustomization.yaml").is_file()


def test_generated_external_services_tag_calls_in_envoy(upstream_port, wasm, tmp_path):
    """The sidecar's outbound pluginConfig, as shipped, names a TLS-originated OpenAI call."""
    from test_external import external_config

    outbound = [d for d in yaml.safe_load_all(SIDECAR_PLUGINS.read_text()) if d["metadata"]["name"] == "tracejoin-outbound"][0]
    access_log = tmp_path / "access.log"
    config = external_config(upstream_port, wasm, "downstream", access_log)
    for f in config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]:
        if f["name"] == "envoy.filters.http.wasm":
            f["typed_config"]["config"]["configuration"]["value"] = json.dumps(outbound["spec"]["pluginConfig"])
    # The app calls http://api.openai.com; Istio's cluster for the ServiceEntry's port 80.
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["cluster"] = "outbound|80||api.openai.com"
    clusters = config["static_resources"]["clusters"]
    clusters.append(dict(json.loads(json.dumps(clusters[0])), name="outbound|80||api.openai.com"))
    with envoy_harness.Envoy(config) as envoy:
        status, _, got = send(envoy.port, [("host", "api.openai.com"), ("traceparent", traceparent())])
        stats = envoy.stats("tracejoin.external")
    assert status == 200
    assert header_values(got, "traceparent") == []
    assert stats["wasmcustom.tracejoin.external.service_entry.openai-external.namespace.default.rq_2xx"] == 1


# Ambient waypoints (istio/ambient/README.md). What istiod 1.30.3 does with them, read in its
# source: a waypoint takes a policy only through targetRefs (`ShouldAttachPolicy`,
# pilot/pkg/model/policyattachment.go), builds its listeners as the SERVER class
# (`buildWaypointHTTPFilters`, listener_waypoint.go; `workloadModeForListenerClass`), and
# places NETWORK plugins only on its TCP chains.
WAYPOINT_KINDS = {("gateway.networking.k8s.io", "Gateway"), ("networking.istio.io", "ServiceEntry"), ("", "Service")}


def ambient_policies():
    return [
        d
        for path in AMBIENT_MANIFESTS
        for d in yaml.safe_load_all(path.read_text())
        if d and d["kind"] in ("WasmPlugin", "TrafficExtension", "EnvoyFilter", "Telemetry")
    ]


@pytest.mark.parametrize("doc", ambient_policies(), ids=lambda d: f"{d['kind']}-{d['metadata']['name']}")
def test_waypoint_policies_attach_by_target_refs(doc):
    spec = doc["spec"]
    # CEL rules the schema validation above does not evaluate: targetRefs or selector, and no
    # cross-namespace reference. A waypoint ignores selectors altogether.
    assert spec.get("targetRefs") and not spec.get("selector") and not spec.get("workloadSelector")
    for ref in spec["targetRefs"]:
        assert (ref.get("group", ""), ref["kind"]) in WAYPOINT_KINDS and "namespace" not in ref, ref
    # A waypoint's listeners are SERVER: a CLIENT match would never attach.
    for selector in spec.get("match", []):
        assert selector.get("mode", "CLIENT_AND_SERVER") in ("SERVER", "CLIENT_AND_SERVER")
    if doc["kind"] in ("WasmPlugin", "TrafficExtension"):
        assert plugin_type(doc) == "HTTP", "NETWORK plugins never run in front of a waypoint's HCM"
        assert spec.get("wasm", spec)["failStrategy"] == "FAIL_OPEN"
    if doc["kind"] == "EnvoyFilter":
        for patch in spec["configPatches"]:
            # The per-service HCMs that trace; not connect_terminate, whose router carries
            # ztunnel's HBONE CONNECT requests.
            assert patch["match"]["context"] == "SIDECAR_INBOUND"
            assert patch["match"]["listener"]["name"] == "main_internal"


def test_egress_plugins_name_the_kits_service_entries():
    """The ServiceEntry-targeted variant names exactly the ServiceEntries the cluster has, in
    their namespace (istiod matches a ServiceEntry reference only there)."""
    entries = {(d["metadata"]["name"], d["metadata"]["namespace"]) for d in yaml.safe_load_all(SERVICE_ENTRIES.read_text()) if d and d["kind"] == "ServiceEntry"}
    assert {n for n, _ in entries} == {"google-external", "kakao-external", "naver-external", "openai-external", "aws-s3-external", "aws-cloudfront"}
    for kind in ("WasmPlugin", "TrafficExtension"):
        egress = extensions(kind, AMBIENT_MANIFESTS)["tracejoin-egress"]
        refs = {(r["name"], egress["metadata"]["namespace"]) for r in egress["spec"]["targetRefs"] if r["kind"] == "ServiceEntry"}
        assert refs == entries, kind


@pytest.mark.parametrize("manifests", [MANIFESTS, AMBIENT_MANIFESTS], ids=["istio", "ambient"])
def test_trafficextensions_mirror_the_wasmplugins(manifests):
    """TrafficExtension kept in step with WasmPlugin: one per WasmPlugin, same name, placement
    (selector or targetRefs, match, phase, priority) and module settings, same pluginConfig."""
    plugins, extensions_ = extensions("WasmPlugin", manifests), extensions("TrafficExtension", manifests)
    assert plugins and set(plugins) == set(extensions_)
    for name, plugin in plugins.items():
        extension = extensions_[name]
        assert extension["metadata"]["namespace"] == plugin["metadata"]["namespace"]
        for field in ("selector", "targetRefs", "match", "phase", "priority"):
            assert extension["spec"].get(field) == plugin["spec"].get(field), (name, field)
        for field in ("url", "imagePullPolicy", "type", "failStrategy", "pluginConfig"):
            assert extension["spec"]["wasm"].get(field) == plugin["spec"].get(field), (name, field)


def test_waypoint_tracer_is_the_one_the_plugins_expect():
    """telemetry-waypoint.yaml gives the waypoint the `zipkin-w3c` provider, which the mesh
    config defines with traceparent on; the waypoint plugins are configured for that tracer."""
    providers = {p["name"]: p for p in yaml.safe_load((ISTIO / "istiod-values.yaml").read_text())["meshConfig"]["extensionProviders"]}
    telemetry = extensions("Telemetry", AMBIENT_MANIFESTS)["tracejoin-waypoint-tracing"]
    assert telemetry["spec"]["targetRefs"] == extensions("WasmPlugin", AMBIENT_MANIFESTS)["tracejoin-waypoint"]["spec"]["targetRefs"]
    provider = providers[telemetry["spec"]["tracing"][0]["providers"][0]["name"]]
    assert provider["zipkin"]["traceContextOption"] == "USE_B3_WITH_W3C_PROPAGATION"
    assert provider["zipkin"]["service"] == providers["zipkin"]["zipkin"]["service"]
    configs = [p.values[1] for p in plugin_configs() if p.id.startswith("ambient/")]
    assert len(configs) == 5 and {c["tracer"] for c in configs} == {"zipkin_w3c"}


def test_waypoint_options_mount_the_module_where_the_envoyfilter_reads_it():
    options = next(yaml.safe_load_all((AMBIENT / "waypoint-options.yaml").read_text()))
    overlay = yaml.safe_load(options["data"]["deployment"])["spec"]["template"]["spec"]
    proxy = next(c for c in overlay["containers"] if c["name"] == "istio-proxy")
    mount = proxy["volumeMounts"][0]
    volume = next(v for v in overlay["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == "tracejoin-wasm"
    doc = extensions("EnvoyFilter", AMBIENT_MANIFESTS)["tracejoin-waypoint-upstream"]
    wasm_filter = doc["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["upstream_http_filters"][0]
    filename = wasm_filter["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"]
    assert Path(filename).parent == Path(mount["mountPath"])




def waypoint_envoy(upstream_port, wasm, tracer, deployment, no_context_propagation=False):
    """One waypoint HCM as istiod builds it for a service chain, run natively: the waypoint's
    tracer (with `no_context_propagation` as a Telemetry's `disableContextPropagation` sets
    it), and tracejoin either as the HTTP plugin (`plugin`) or as the EnvoyFilter's router
    patch (`envoyfilter`). The routes go to the waypoint's cluster names."""
    if deployment == "plugin":
        plugin_config = extensions("WasmPlugin", AMBIENT_MANIFESTS)["tracejoin-waypoint"]["spec"]["pluginConfig"]
        config = envoy_harness.render_config(upstream_port, tracer=tracer, position="downstream", wasm_path=wasm, plugin_config=plugin_config)
    else:
        doc = extensions("EnvoyFilter", AMBIENT_MANIFESTS)["tracejoin-waypoint-upstream"]
        router = json.loads(json.dumps(doc["spec"]["configPatches"][0]["patch"]["value"]))
        for f in router["typed_config"]["upstream_http_filters"]:
            if f["name"] == "envoy.filters.http.wasm":
                f["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = wasm
        config = envoy_harness.render_config(upstream_port, tracer=tracer)
        config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"] = [router]
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    if no_context_propagation:
        # Envoy 1.36 has no such field (docs/envoy-versions.md): set it only when asked.
        if envoy_harness.envoy_release() < envoy_harness.NO_CONTEXT_PROPAGATION_SINCE:
            pytest.skip("no_context_propagation: Envoy 1.38 and later")
        hcm["tracing"]["no_context_propagation"] = True
    # The waypoint's main_internal listener is INBOUND: its spans are server spans.
    config["static_resources"]["listeners"][0]["traffic_direction"] = "INBOUND"
    hcm["route_config"]["virtual_hosts"] = [
        {"name": "openai", "domains": ["api.openai.com"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "inbound-vip|80|http|api.openai.com"}}]},
        {"name": "mesh", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "inbound-vip|8080|http|character-api.default.svc.cluster.local"}}]},
    ]
    clusters = config["static_resources"]["clusters"]
    for name in ("inbound-vip|80|http|api.openai.com", "inbound-vip|8080|http|character-api.default.svc.cluster.local"):
        clusters.append(dict(json.loads(json.dumps(clusters[0])), name=name))
        clusters[-1]["load_assignment"]["cluster_name"] = name
    return envoy_harness.Envoy(config)


@pytest.mark.parametrize("deployment", ["plugin", "envoyfilter"])
def test_waypoint_continues_a_w3c_apps_trace(upstream_port, wasm, deployment):
    """The ambient recommendation, measured: under the zipkin-w3c provider the waypoint's span
    is a child of the calling app's span (which only wrote traceparent), and the destination
    app gets that trace with the waypoint's span as parent, in traceparent and x-b3-* (the
    tracer writes both; with either tracejoin deployment, the same)."""
    with waypoint_envoy(upstream_port, wasm, "zipkin_w3c", deployment) as envoy:
        status, _, got = send(envoy.port, [("host", "character-api:8080"), ("traceparent", traceparent())])
        log = envoy.log()
    assert status == 200
    assert ("position Upstream," if deployment == "envoyfilter" else "position Downstream,") in log
    assert header_values(got, "x-b3-traceid") == [T] and header_values(got, "x-b3-parentspanid") == [S]
    waypoints_span = header_values(got, "x-b3-spanid")[0]
    assert waypoints_span != S
    assert header_values(got, "traceparent") == [traceparent(T, waypoints_span)]


@pytest.mark.parametrize("deployment", ["plugin", "envoyfilter"])
def test_waypoint_and_a_jaeger_app(upstream_port, wasm, deployment):
    """A format the waypoint's tracer does not read (Jaeger): its span starts a fresh trace
    and, behind it, the plugin cannot keep the tracer from writing that trace into traceparent
    and x-b3-* (nothing runs in front of a waypoint's tracer); it adds the `b3` bridge with the
    app's trace, which B3 readers take first. The EnvoyFilter, after the injection, carries the
    app's trace on in every format, so the destination app joins its caller whatever it reads
    (the waypoint's span stays outside)."""
    with waypoint_envoy(upstream_port, wasm, "zipkin_w3c", deployment) as envoy:
        status, _, got = send(envoy.port, [("host", "character-api:8080"), ("uber-trace-id", f"{T}:{S}:0:1")])
    assert status == 200
    if deployment == "envoyfilter":
        assert header_values(got, "x-b3-traceid") == [T] and header_values(got, "traceparent") == [traceparent()]
        assert header_values(got, "uber-trace-id") == [f"{T}:{S}:0:1"]
    else:
        assert header_values(got, "x-b3-traceid") != [T] and header_values(got, "x-b3-parentspanid") == []
        assert header_values(got, "traceparent")[0].split("-")[1] != T
        assert header_values(got, "b3") == [f"{T}-{S}-1"]


def test_waypoint_under_the_b3_only_provider_starts_a_fresh_trace(upstream_port, wasm):
    """Why the waypoint gets the zipkin-w3c provider: with the sidecars' B3-only `zipkin` and
    no network filter in front (none runs before a waypoint's HCM), the waypoint's span is
    not in the app's trace; tracejoin behind it only keeps the next app in it."""
    plugin_config = dict(extensions("WasmPlugin", AMBIENT_MANIFESTS)["tracejoin-waypoint"]["spec"]["pluginConfig"], tracer="zipkin")
    config = envoy_harness.render_config(upstream_port, tracer="zipkin", position="downstream", wasm_path=wasm, plugin_config=plugin_config)
    with envoy_harness.Envoy(config) as envoy:
        status, _, got = send(envoy.port, [("traceparent", traceparent())])
    assert status == 200
    assert header_values(got, "x-b3-traceid") != [T] and header_values(got, "x-b3-parentspanid") == []
    # The next app still joins the caller's trace: the b3 bridge and the app's traceparent.
    assert header_values(got, "b3")[0].startswith(f"{T}-{S}")
    assert header_values(got, "traceparent") == [traceparent()]


def propagation_disabled_for(service_entry):
    """Whether the ambient kit's Telemetry turns the waypoint's propagation off on this
    ServiceEntry's chain."""
    return any(
        ref["kind"] == "ServiceEntry" and ref["name"] == service_entry and any(t.get("disableContextPropagation") for t in doc["spec"]["tracing"])
        for doc in extensions("Telemetry", AMBIENT_MANIFESTS).values()
        for ref in doc["spec"]["targetRefs"]
    )


@pytest.mark.parametrize("deployment", ["plugin", "plugin-without-telemetry", "envoyfilter"])
def test_waypoint_names_and_strips_service_entry_calls(upstream_port, wasm, deployment):
    """A ServiceEntry bound to the waypoint: its cluster there is `inbound-vip|80|http|HOST`,
    which tracejoin reads as it reads a sidecar's `outbound|80||HOST`, and the call is counted
    under the ServiceEntry's name. The plugin removes the app's trace headers and
    telemetry-egress.yaml stops the tracer's injection on that chain: nothing leaves (without
    that Telemetry the waypoint's own x-b3-* and traceparent do). The EnvoyFilter removes
    everything by itself."""
    plugin = deployment.startswith("plugin")
    no_propagation = deployment == "plugin" and propagation_disabled_for("openai-external")
    assert no_propagation or deployment != "plugin", "telemetry-egress.yaml covers openai-external"
    with waypoint_envoy(upstream_port, wasm, "zipkin_w3c", "plugin" if plugin else "envoyfilter", no_propagation) as envoy:
        status, _, got = send(envoy.port, [("host", "api.openai.com"), ("traceparent", traceparent()), ("baggage", "user=42")])
        stats = envoy.stats("tracejoin.external")
    assert status == 200
    assert stats["wasmcustom.tracejoin.external.service_entry.openai-external.namespace.default.rq_2xx"] == 1
    sent = {name for name, _ in got}
    if deployment == "plugin-without-telemetry":
        # Injected by the waypoint's tracer after every listener filter: its own span, the
        # mesh's trace id.
        assert sent & TRACE_HEADERS == {"traceparent", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled"}, got
        assert header_values(got, "x-b3-traceid") == [T]
    else:
        assert not sent & TRACE_HEADERS, got


TRACE_HEADERS = {"traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "baggage", "uber-trace-id"}
