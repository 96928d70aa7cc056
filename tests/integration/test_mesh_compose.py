"""docker-compose cannot run here (no Docker engine), so it is kept in step with the native
runner by construction (generated from the same topology) and checked: the committed files
equal a fresh generation, and Envoy validates every config they mount."""

import json
import subprocess

import pytest
import yaml

from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.mesh import compose

MESH = compose.MESH


def test_committed_compose_files_are_generated_from_the_topology():
    for rel, text in compose.render().items():
        assert (MESH / rel).read_text() == text, f"{rel} is stale: run `make mesh-compose`"


@pytest.mark.parametrize("name", ["istio-ingressgateway", "auth-api-sidecar", "character-api-sidecar"])
def test_envoy_validates_every_compose_config(tmp_path, wasm, name):
    config = yaml.safe_load((MESH / "compose" / f"{name}.yaml").read_text())
    text = json.dumps(config).replace(compose.WASM_IN_CONTAINER, wasm)
    path = tmp_path / f"{name}.json"
    path.write_text(text)
    result = subprocess.run(
        [envoy_harness.envoy_binary(), "--mode", "validate", "-c", str(path), "--use-dynamic-base-id", "-l", "error"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_mounts_the_generated_configs_and_the_build():
    services = yaml.safe_load((MESH / "docker-compose.yaml").read_text())["services"]
    for name in ["istio-ingressgateway", "auth-api-sidecar", "character-api-sidecar"]:
        volumes = services[name]["volumes"]
        assert f"./compose/{name}.yaml:/etc/envoy/{name}.yaml:ro" in volumes
        assert f"../../tracejoin.wasm:{compose.WASM_IN_CONTAINER}:ro" in volumes
    build = services["auth-api"]["build"]
    assert (MESH / build["context"] / build["dockerfile"]).exists()
    assert services["auth-api"]["environment"]["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == "http://jaeger:4318/v1/traces"
