import json
import os
from pathlib import Path

import pytest

from tracejoin_tools.common import WASM
from tracejoin_tools.envoy import echo_server
from tracejoin_tools.envoy import harness as envoy_harness


def wasm_path():
    path = Path(os.environ.get("TRACEJOIN_WASM", WASM))
    if not path.exists():
        pytest.exit(f"{path} not found: run `make build` first", returncode=2)
    return str(path)


class EnvoyPool:
    """Envoys keyed by (position, tracer, plugin config); the two most recent stay up."""

    def __init__(self, upstream_port, wasm):
        self.upstream_port = upstream_port
        self.wasm = wasm
        self.running = {}

    def get(self, position, tracer, plugin_config=None, upstream_port=None, network_config=None):
        """`position` is an HTTP position, `network`, or `network+<HTTP position>`; the plugin
        config defaults to the position and tracer (for the network filter too)."""
        http_position = position.partition("+")[2] if position.startswith("network") else position
        if plugin_config is None:
            plugin_config = {"position": http_position or "network", "tracer": tracer}
        config_key = plugin_config if isinstance(plugin_config, str) else json.dumps(plugin_config, sort_keys=True)
        key = (position, tracer, config_key, upstream_port, json.dumps(network_config, sort_keys=True))
        if key in self.running:
            return self.running[key]
        while len(self.running) >= 2:
            oldest = next(iter(self.running))
            self.running.pop(oldest).__exit__(None, None, None)
        config = envoy_harness.render_config(
            upstream_port or self.upstream_port,
            tracer=tracer,
            position=position,
            wasm_path=self.wasm,
            plugin_config=plugin_config,
            network_config=network_config,
        )
        envoy = envoy_harness.Envoy(config).__enter__()
        self.running[key] = envoy
        return envoy

    def close(self):
        for envoy in self.running.values():
            envoy.__exit__(None, None, None)
        self.running.clear()


def pytest_terminal_summary(terminalreporter):
    # Which Envoy the session ran (`make test` runs the suite once per release).
    terminalreporter.write_line(f"real Envoy: {envoy_harness.envoy_version()} ({envoy_harness.envoy_binary()})")


@pytest.fixture(scope="session")
def echo():
    server, port = echo_server.start()
    yield server, port
    server.shutdown()


@pytest.fixture(scope="session")
def upstream_port(echo):
    return echo[1]


@pytest.fixture(scope="session")
def echo_collected(echo):
    """What the session's echo server received on collector paths (exported spans), as a
    function to call for the latest."""
    return lambda: list(echo[0].collected)


@pytest.fixture(scope="session")
def envoys(upstream_port):
    pool = EnvoyPool(upstream_port, wasm_path())
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def wasm():
    return wasm_path()
