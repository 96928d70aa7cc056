import http.client
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import echo_server  # noqa: E402
import envoy_harness  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def wasm_path():
    path = Path(os.environ.get("TRACEJOIN_WASM", ROOT / "tracejoin.wasm"))
    if not path.exists():
        pytest.exit(f"{path} not found: run `make build` first", returncode=2)
    return str(path)


class EnvoyPool:
    """Envoys keyed by (position, tracer, plugin config); the two most recent stay up."""

    def __init__(self, upstream_port, wasm):
        self.upstream_port = upstream_port
        self.wasm = wasm
        self.running = {}

    def get(self, position, tracer, plugin_config=None, upstream_port=None):
        if plugin_config is None:
            plugin_config = {"position": position, "tracer": tracer}
        config_key = plugin_config if isinstance(plugin_config, str) else json.dumps(plugin_config, sort_keys=True)
        key = (position, tracer, config_key, upstream_port)
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
        )
        envoy = envoy_harness.Envoy(config).__enter__()
        self.running[key] = envoy
        return envoy

    def close(self):
        for envoy in self.running.values():
            envoy.__exit__(None, None, None)
        self.running.clear()


_ECHO = {}


def echo_collected():
    """What the session's echo server received on collector paths (exported spans)."""
    return list(_ECHO["server"].collected)


@pytest.fixture(scope="session")
def upstream_port():
    server, port = echo_server.start()
    _ECHO["server"] = server
    yield port
    server.shutdown()


@pytest.fixture(scope="session")
def envoys(upstream_port):
    pool = EnvoyPool(upstream_port, wasm_path())
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def wasm():
    return wasm_path()


def send(port, headers=(), path="/"):
    """Sends a GET with the given (name, value) pairs, repeats allowed; returns
    (status, response headers, headers the upstream received)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        # A test that names the host sends it alone (http.client would add its own).
        conn.putrequest("GET", path, skip_host=any(n.lower() == "host" for n, _ in headers))
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        received = json.loads(body)["headers"] if response.status == 200 else None
        return response.status, [(k.lower(), v) for k, v in response.getheaders()], received
    finally:
        conn.close()
