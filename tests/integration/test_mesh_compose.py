"""docker-compose cannot run here (no Docker engine), so it is kept in step with the native
runner by construction (generated from the same topology) and checked: the committed files
equal a fresh generation, and Envoy validates every config they mount."""

import json

import pytest
import yaml

from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.mesh import compose, topology

MESH = compose.MESH
SIDECARS = [f"{app}-sidecar" for app in topology.APPS]


def test_committed_compose_files_are_generated_from_the_topology():
    for rel, text in compose.render().items():
        assert (MESH / rel).read_text() == text, f"{rel} is stale: run `make mesh-compose`"


def validate(tmp_path, config, wasm):
    """Envoy validates the compose config with the module's path in the container replaced."""
    return envoy_harness.validate(json.loads(json.dumps(config).replace(compose.WASM_IN_CONTAINER, wasm)), tmp_path)


def without_formatter_tags(node):
    """The config with the tracing custom tags that use a formatter `value` left out."""
    if isinstance(node, dict):
        return {k: without_formatter_tags(v) for k, v in node.items() if not (k == "custom_tags" and any("value" in t for t in v))}
    if isinstance(node, list):
        return [without_formatter_tags(v) for v in node]
    return node


@pytest.mark.parametrize("name", ["istio-ingressgateway", *SIDECARS])
def test_envoy_validates_every_compose_config(tmp_path, wasm, name):
    config = yaml.safe_load((MESH / "compose" / f"{name}.yaml").read_text())
    passed, output = validate(tmp_path, config, wasm)
    if envoy_harness.envoy_release() >= envoy_harness.FORMATTER_TAGS_SINCE:
        assert passed, output
        return
    # The compose files run Envoy 1.40 images; an older Envoy refuses only their formatter
    # span tags (docs/envoy-versions.md), and takes the rest.
    assert not passed and "CustomTag" in output and "no such field: 'value'" in output, output
    passed, output = validate(tmp_path, without_formatter_tags(config), wasm)
    assert passed, output


def test_compose_mounts_the_generated_configs_and_the_build():
    services = yaml.safe_load((MESH / "docker-compose.yaml").read_text())["services"]
    for name in ["istio-ingressgateway", *SIDECARS]:
        volumes = services[name]["volumes"]
        assert f"./compose/{name}.yaml:/etc/envoy/{name}.yaml:ro" in volumes
        assert f"../../tracejoin.wasm:{compose.WASM_IN_CONTAINER}:ro" in volumes
    for app in topology.APPS:
        build = services[app]["build"]
        assert (MESH / build["context"] / build["dockerfile"]).exists()
        env = services[app]["environment"]
        assert env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "http://jaeger:4318/v1/traces"
        # Each app calls out through its own sidecar's outbound listener.
        assert env["EGRESS_URL"] == f"http://{app}-sidecar:15001"
        assert env["APP_NAME"] == app


def test_the_node_service_is_built_from_its_lockfile():
    """profile-api runs the Node.js app on the OpenTelemetry JavaScript SDK, installed in its
    image by `npm ci` from the committed lockfile (what `make setup` installs natively)."""
    services = yaml.safe_load((MESH / "docker-compose.yaml").read_text())["services"]
    assert topology.APP_SDKS["profile-api"] == "node"
    build = services["profile-api"]["build"]
    assert build["dockerfile"] == "Dockerfile.mesh-node"
    context = MESH / build["context"]
    dockerfile = (context / build["dockerfile"]).read_text()
    assert "COPY mesh-node/package.json mesh-node/package-lock.json ./" in dockerfile
    assert "RUN npm ci" in dockerfile and "COPY mesh-node/app.js" in dockerfile
    lock = json.loads((context / "mesh-node" / "package-lock.json").read_text())
    manifest = json.loads((context / "mesh-node" / "package.json").read_text())
    # The lockfile pins exactly what package.json asks for.
    assert lock["packages"][""]["dependencies"] == manifest["dependencies"]
    for name, version in manifest["dependencies"].items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, name
    # The local install stays out of the build context.
    assert "mesh-node/node_modules" in (context / ".dockerignore").read_text().split()
