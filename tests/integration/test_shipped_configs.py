"""The Envoy configs users run (envoy/*.yaml, docker-compose) are the ones tested: validated
with `envoy --mode validate` and served for real on loopback."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tracejoin_tools.common import ROOT, S, T
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy import localize
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import assert_well_formed, one

SHIPPED = ["envoy-downstream.yaml", "envoy-upstream.yaml"]


def local(name, upstream_port, wasm):
    config = localize.load(ROOT / "envoy" / name)
    return localize.localize(config, {"app": upstream_port, "zipkin": upstream_port}, wasm)


@pytest.mark.parametrize("name", SHIPPED)
def test_envoy_validates_shipped_config(tmp_path, upstream_port, wasm, name):
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(local(name, upstream_port, wasm)))
    result = subprocess.run(
        [envoy_harness.envoy_binary(), "--mode", "validate", "-c", str(path), "--use-dynamic-base-id", "-l", "error"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_joins_a_w3c_only_app(upstream_port, wasm, name):
    with envoy_harness.Envoy(local(name, upstream_port, wasm)) as envoy:
        status, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01")])
    assert status == 200
    assert_well_formed(got)
    if name == "envoy-downstream.yaml":
        # Zipkin started a fresh B3 trace; tracejoin bridged the app's trace in `b3`.
        assert one(got, "b3") == f"{T}-{S}-1" and one(got, "traceparent") == f"00-{T}-{S}-01"
    else:
        # Upstream: every format carries the app's trace.
        assert one(got, "x-b3-traceid") == T and one(got, "traceparent") == f"00-{T}-{S}-01"


def test_docker_compose_mounts_the_tested_configs():
    compose = yaml.safe_load((ROOT / "envoy" / "docker-compose.yaml").read_text())
    envoy_services = {name: svc for name, svc in compose["services"].items() if "envoy" in svc["image"]}
    mounted = set()
    for svc in envoy_services.values():
        mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in svc["volumes"])
        config_file = next(src for src, dst in mounts.items() if dst == "/etc/envoy/envoy.yaml")
        mounted.add(Path(config_file).name)
        assert (ROOT / "envoy" / config_file).resolve().exists()
        wasm_target = next(dst for src, dst in mounts.items() if src.endswith("tracejoin.wasm"))
        config_text = (ROOT / "envoy" / config_file).read_text()
        assert f"filename: {wasm_target}" in config_text
    assert mounted == set(SHIPPED)
    app = compose["services"]["app"]
    assert any("echo_server.py" in v for v in app["volumes"])
