"""The Istio deployment kit (istio/): every manifest validates against Istio's CRD schemas
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

from tracejoin_tools.common import ROOT, T, traceparent
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import header_values

ISTIO = ROOT / "istio"
MANIFESTS = sorted(p for p in ISTIO.glob("*.yaml") if p.name != "kustomization.yaml")
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


@pytest.fixture(scope="module")
def crd_schemas():
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


def documents():
    for path in MANIFESTS:
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc and "kind" in doc:  # istiod-values.yaml is Helm values, not a resource
                yield pytest.param(doc, id=f"{path.name}#{i}-{doc['kind']}-{doc['metadata']['name']}")


@pytest.mark.parametrize("doc", list(documents()))
def test_manifest_validates(doc, crd_schemas):
    assert doc["metadata"].get("name")
    if ".istio.io/" in doc["apiVersion"]:
        schema = crd_schemas.get((doc["apiVersion"], doc["kind"]))
        assert schema, f"no CRD serves {doc['apiVersion']} {doc['kind']}"
        jsonschema.validate(doc, schema)
    else:
        import kubernetes_validate

        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validation_catches_mistakes(crd_schemas):
    import kubernetes_validate

    plugin = yaml.safe_load((ISTIO / "wasmplugin-gateway.yaml").read_text())
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
    service = [d for d in yaml.safe_load_all((ISTIO / "jaeger.yaml").read_text()) if d["kind"] == "Service"][0]
    service["spec"]["ports"][0]["port"] = "zipkin"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)


def test_istiod_values_name_what_the_kit_uses():
    values = yaml.safe_load((ISTIO / "istiod-values.yaml").read_text())["meshConfig"]
    telemetry = yaml.safe_load((ISTIO / "telemetry.yaml").read_text())
    provider = telemetry["spec"]["tracing"][0]["providers"][0]["name"]
    assert provider in [p["name"] for p in values["extensionProviders"]]
    jaeger = [d for d in yaml.safe_load_all((ISTIO / "jaeger.yaml").read_text()) if d["kind"] == "Service"][0]
    zipkin = values["extensionProviders"][0]["zipkin"]
    assert zipkin["service"] == f"{jaeger['metadata']['name']}.{jaeger['metadata']['namespace']}.svc.cluster.local"
    assert zipkin["port"] in [p["port"] for p in jaeger["spec"]["ports"]]
    assert "wasm.tracejoin.service_entry" in values["accessLogFormat"]
    assert values["defaultConfig"]["proxyStatsMatcher"]["inclusionPrefixes"] == ["wasmcustom.tracejoin"]


def test_kustomization_lists_existing_manifests():
    kustomization = yaml.safe_load((ISTIO / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (ISTIO / resource).exists(), resource


def plugin_configs():
    """(manifest, position, pluginConfig) for every place the kit configures tracejoin."""
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or "kind" not in doc:
                continue
            name = f"{path.name}:{doc['metadata']['name']}"
            if doc["kind"] == "WasmPlugin":
                yield pytest.param("downstream", doc["spec"].get("pluginConfig", {}), id=name)
            elif doc["kind"] == "TrafficExtension":
                yield pytest.param("downstream", doc["spec"]["wasm"].get("pluginConfig", {}), id=name)
            elif doc["kind"] == "EnvoyFilter":
                for patch in doc["spec"]["configPatches"]:
                    for f in patch["patch"]["value"]["typed_config"]["upstream_http_filters"]:
                        if f["name"] == "envoy.filters.http.wasm":
                            value = json.loads(f["typed_config"]["config"]["configuration"]["value"])
                            yield pytest.param("upstream", value, id=name)


@pytest.mark.parametrize("position,plugin_config", list(plugin_configs()))
def test_plugin_config_loads_in_envoy(upstream_port, wasm, position, plugin_config):
    jsonschema.validate(plugin_config, CONFIG_SCHEMA)
    assert plugin_config.get("position", "downstream") == position
    tracer = plugin_config.get("tracer", "zipkin")
    config = envoy_harness.render_config(upstream_port, tracer=tracer, position=position, wasm_path=wasm, plugin_config=plugin_config)
    with envoy_harness.Envoy(config) as envoy:
        status, _, got = send(envoy.port, [("traceparent", traceparent())])
        assert status == 200
        assert "tracejoin: configured" in envoy.log()


ENVOYFILTERS = [d for d in yaml.safe_load_all((ISTIO / "envoyfilter-upstream.yaml").read_text()) if d]


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


def test_service_entries_are_the_single_source():
    tool = [sys.executable, "-m", "tracejoin_tools.istio.serviceentries_to_config", str(ISTIO / "service-entries.yaml")]
    manifests = [str(ISTIO / n) for n in ("wasmplugin-sidecar.yaml", "trafficextension.yaml", "envoyfilter-upstream.yaml")]
    check = subprocess.run(tool + ["--check", *manifests], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    generated = json.loads(subprocess.run(tool, capture_output=True, text=True, check=True).stdout)["external_services"]
    names = {s["name"] for s in generated}
    assert names == {"google-external", "kakao-external", "naver-external", "openai-external", "s3-external", "cloudfront-external"}
    outbound = [d for d in yaml.safe_load_all((ISTIO / "wasmplugin-sidecar.yaml").read_text()) if d["metadata"]["name"] == "tracejoin-outbound"][0]
    assert outbound["spec"]["pluginConfig"]["external_services"] == generated
    upstream = [c for _, c in (p.values for p in plugin_configs()) if c.get("position") == "upstream" and "external_services" in c]
    assert upstream and all(c["external_services"] == generated for c in upstream)


def test_a_stale_block_is_caught(tmp_path):
    stale = tmp_path / "wasmplugin.yaml"
    stale.write_text((ISTIO / "wasmplugin-sidecar.yaml").read_text().replace("api.openai.com", "api.example.com"))
    tool = [sys.executable, "-m", "tracejoin_tools.istio.serviceentries_to_config", str(ISTIO / "service-entries.yaml")]
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
    for path in tmp_path.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] in ("WasmPlugin", "TrafficExtension"):
                jsonschema.validate(doc, crd_schemas[(doc["apiVersion"], doc["kind"])])
                spec = doc["spec"].get("wasm", doc["spec"])
                assert spec["sha256"] == expected
                assert spec["url"].startswith("oci://" if variant == "oci" else "file://")


def test_generated_external_services_tag_calls_in_envoy(upstream_port, wasm, tmp_path):
    """The sidecar's outbound pluginConfig, as shipped, names a TLS-originated OpenAI call."""
    from test_external import external_config

    outbound = [d for d in yaml.safe_load_all((ISTIO / "wasmplugin-sidecar.yaml").read_text()) if d["metadata"]["name"] == "tracejoin-outbound"][0]
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
