"""The Envoy configs users run (envoy/*.yaml, docker-compose) are the ones tested: validated
with `envoy --mode validate` and served for real on loopback."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from tracejoin_tools.common import ROOT, S, T
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy import localize
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import assert_well_formed, one

# Each shipped config and the positions its tracejoin plugins run in, in filter order. The
# network ones are the three deployments: network alone, network + downstream, network + upstream.
SHIPPED = {
    "envoy-downstream.yaml": ["downstream"],
    "envoy-upstream.yaml": ["upstream"],
    "envoy-network.yaml": ["network"],
    "envoy-network-downstream.yaml": ["network", "downstream"],
    "envoy-network-upstream.yaml": ["network", "upstream"],
}
CONFIG_SCHEMA = json.loads((ROOT / "schema" / "tracejoin-config.schema.json").read_text())
NETWORK_FILTER = "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm"
HTTP_FILTER = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"


def local(name, upstream_port, wasm):
    config = localize.load(ROOT / "envoy" / name)
    return localize.localize(config, {"app": upstream_port, "zipkin": upstream_port}, wasm)


def plugins(config):
    """(filter type, plugin configuration) of every tracejoin wasm filter, in config order."""
    found = []
    for node in localize._walk(config):
        typed = node.get("typed_config", {})
        if typed.get("@type") in (NETWORK_FILTER, HTTP_FILTER) and typed["config"]["name"] == "tracejoin":
            found.append((typed["@type"], json.loads(typed["config"]["configuration"]["value"])))
    return found


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_plugins_are_where_their_position_says(name):
    """A network position is loaded as a network filter in front of the HCM, the HTTP ones as
    HTTP filters; every configuration passes the schema."""
    config = localize.load(ROOT / "envoy" / name)
    found = plugins(config)
    assert [c.get("position", "downstream") for _, c in found] == SHIPPED[name]
    for filter_type, plugin_config in found:
        jsonschema.validate(plugin_config, CONFIG_SCHEMA)
        network = plugin_config.get("position") == "network"
        assert filter_type == (NETWORK_FILTER if network else HTTP_FILTER)
    filters = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
    names = [f["name"] for f in filters]
    assert names[-1] == "envoy.filters.network.http_connection_manager"
    assert names[:-1] == (["envoy.filters.network.wasm"] if "network" in SHIPPED[name] else [])


@pytest.mark.parametrize("name", SHIPPED)
def test_envoy_validates_shipped_config(tmp_path, upstream_port, wasm, name):
    passed, output = envoy_harness.validate(local(name, upstream_port, wasm), tmp_path)
    assert passed, output


def configured_positions(log):
    return {m.lower() for m in re.findall(r"tracejoin: configured: position (\w+)", log)}


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_joins_a_w3c_only_app(upstream_port, wasm, name):
    with envoy_harness.Envoy(local(name, upstream_port, wasm)) as envoy:
        status, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01")])
        rewritten = envoy.stats("tracejoin").get("wasmcustom.tracejoin.network.rewritten", 0)
        positions = configured_positions(envoy.log())
    assert status == 200
    assert_well_formed(got)
    assert positions == set(SHIPPED[name]), "every plugin in the file loaded"
    if name == "envoy-downstream.yaml":
        # Zipkin started a fresh B3 trace; tracejoin bridged the app's trace in `b3`.
        assert one(got, "b3") == f"{T}-{S}-1" and one(got, "traceparent") == f"00-{T}-{S}-01"
    elif name == "envoy-upstream.yaml":
        # Upstream: every format carries the app's trace.
        assert one(got, "x-b3-traceid") == T and one(got, "traceparent") == f"00-{T}-{S}-01"
    else:
        # The network filter gave Envoy's Zipkin tracer the app's context in B3: Envoy's own
        # span continued the app's trace, as a child of the app's span.
        assert rewritten == 1
        assert one(got, "x-b3-traceid") == T and one(got, "x-b3-parentspanid") == S
        envoys_span = one(got, "x-b3-spanid")
        assert envoys_span != S
        if name == "envoy-network-upstream.yaml":
            # Deployment 3: the upstream filter names Envoy's span in every format.
            assert one(got, "traceparent") == f"00-{T}-{envoys_span}-01"
        else:
            # Deployments 1 and 2: a W3C reader's parent is the caller's span (one hop coarser).
            assert one(got, "traceparent") == f"00-{T}-{S}-01"


def test_docker_compose_mounts_the_tested_configs():
    compose = yaml.safe_load((ROOT / "envoy" / "docker-compose.yaml").read_text())
    envoy_services = {name: svc for name, svc in compose["services"].items() if "envoy" in svc["image"]}
    mounted = set()
    host_ports, base_ids = [], []
    for svc in envoy_services.values():
        mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in svc["volumes"])
        config_file = next(src for src, dst in mounts.items() if dst == "/etc/envoy/envoy.yaml")
        mounted.add(Path(config_file).name)
        assert (ROOT / "envoy" / config_file).resolve().exists()
        wasm_target = next(dst for src, dst in mounts.items() if src.endswith("tracejoin.wasm"))
        config_text = (ROOT / "envoy" / config_file).read_text()
        assert f"filename: {wasm_target}" in config_text
        host_ports += [p.split(":")[0] for p in svc["ports"]]
        command = svc["command"]
        base_ids.append(command[command.index("--base-id") + 1] if "--base-id" in command else "0")
    assert mounted == set(SHIPPED)
    assert len(host_ports) == len(set(host_ports)), "every Envoy publishes its own host ports"
    assert len(base_ids) == len(set(base_ids))
    app = compose["services"]["app"]
    assert any("echo_server.py" in v for v in app["volumes"])
