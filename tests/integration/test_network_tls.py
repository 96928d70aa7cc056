"""External HTTPS calls named by ServiceEntry in the network position, on a real Envoy: a
sidecar's outbound listeners for apps that speak TLS themselves (`0.0.0.0_443` with SNI chains
and `PassthroughFilterChain`, `virtualOutbound`, a VIP listener), tracejoin placed as the Istio
kit places it (tracejoin_tools.envoy.sidecar_tls, which says how), one local TLS server behind
every cluster, the kit's access-log format. Clients: Python's ssl (whole and in pieces) and
curl.
"""

import hashlib
import os
import subprocess
import time

import pytest
import yaml

from tracejoin_tools.common import free_port
from tracejoin_tools.envoy import harness
from tracejoin_tools.envoy.sidecar_tls import CALLS, LISTENERS, SERVICES, UNREGISTERED, bootstrap, kit_plugin_config, upstream_hosts
from tracejoin_tools.envoy.tls_upstream import TlsUpstream, request


@pytest.fixture(scope="module")
def upstream():
    with TlsUpstream(upstream_hosts("other.example.org", "split.example.org")) as up:
        yield up


@pytest.fixture(scope="module")
def envoy(wasm, upstream, tmp_path_factory):
    log_path = str(tmp_path_factory.mktemp("tls") / "access.log")
    ports = {name: free_port() for name in LISTENERS}
    assert kit_plugin_config()["external_services"] == SERVICES
    config = bootstrap(wasm, upstream.port, log_path, ports)
    with harness.Envoy(config, component_log_level="wasm:info") as e:
        e.access_log = log_path
        e.ports = ports
        yield e


def access_log_line(envoy, host):
    """The access log line of the last connection to `host` (the log is flushed every 0.1 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.path.exists(envoy.access_log):
            with open(envoy.access_log) as f:
                lines = [line.strip() for line in f if f"external_host={host} " in line]
            if lines:
                return lines[-1]
        time.sleep(0.05)
    raise AssertionError(f"no access log line for {host}")


def call(envoy, upstream, listener, host, **kwargs):
    body = os.urandom(4096)
    answer = request(envoy.ports[listener], host, upstream.client_context(), body, **kwargs)
    # The server's hash of what it received, and the name the client asked for: the TLS
    # session completed, with the client's bytes.
    assert answer == f"{hashlib.sha256(body).hexdigest()} {host}"


def stat(envoy, name):
    return envoy.stats("tracejoin").get(f"wasmcustom.tracejoin.{name}", 0)


@pytest.mark.parametrize("entry", list(CALLS))
def test_each_service_entry_of_the_kit_is_named(envoy, upstream, entry):
    host = CALLS[entry]
    before = stat(envoy, f"external.service_entry.{entry}.namespace.default.tls_connections")
    call(envoy, upstream, "0.0.0.0_443", host)
    assert stat(envoy, f"external.service_entry.{entry}.namespace.default.tls_connections") == before + 1
    line = access_log_line(envoy, host)
    assert f"service_entry={entry} " in line
    assert "tls_alpn=h2,http/1.1" in line


def test_an_unregistered_host_is_counted_logged_and_named_unregistered(envoy, upstream):
    for _ in range(3):
        call(envoy, upstream, "0.0.0.0_443", UNREGISTERED)
    port = envoy.ports["0.0.0.0_443"]
    assert stat(envoy, f"external.unregistered_host.{UNREGISTERED}.port.{port}.tls_connections") == 3
    assert stat(envoy, "external.unregistered.tls_connections") >= 3
    assert "service_entry=unregistered" in access_log_line(envoy, UNREGISTERED)
    log = envoy.log()
    # Logged once per host, at info.
    line = f"tracejoin: TLS connections to {UNREGISTERED}:{port} (ALPN h2,http/1.1) leave the mesh with no ServiceEntry"
    assert log.count(line) == 1, log[-3000:]


def test_the_virtual_outbound_catch_all_is_unregistered_without_a_tls_inspector(envoy, upstream):
    host = "other.example.org"
    port = envoy.ports["virtualOutbound"]
    call(envoy, upstream, "virtualOutbound", host)
    assert stat(envoy, f"external.unregistered_host.{host}.port.{port}.tls_connections") == 1
    assert "service_entry=unregistered" in access_log_line(envoy, host)


def test_a_vip_listener_names_by_the_client_hello_alone(envoy, upstream):
    # No tls_inspector: the name comes from tracejoin's own read of the ClientHello. The
    # port is the listener's (not 443), which the kit's entries list only as 80 and 443:
    # an in-mesh name, or a listed one on another port, is not named.
    before = stat(envoy, "network.tls.client_hellos")
    call(envoy, upstream, "10.96.0.10_443", "vip.default.svc")
    assert stat(envoy, "network.tls.client_hellos") == before + 1
    assert "unregistered_host.vip" not in str(envoy.stats("tracejoin"))


def test_a_client_hello_written_byte_by_byte_is_named(envoy, upstream):
    # Where tls_inspector runs (0.0.0.0_443) it waits for the whole ClientHello before the
    # chain starts; on virtualOutbound and a VIP listener tracejoin holds the pieces itself.
    host = "split.example.org"
    port = envoy.ports["virtualOutbound"]
    for writes in (1, 7, 100, 700):
        call(envoy, upstream, "virtualOutbound", host, writes=writes)
    assert stat(envoy, f"external.unregistered_host.{host}.port.{port}.tls_connections") == 4
    before = stat(envoy, "network.tls.client_hellos")
    call(envoy, upstream, "10.96.0.10_443", "vip.default.svc", writes=1)
    assert stat(envoy, "network.tls.client_hellos") == before + 1
    entry = "external.service_entry.openai-external.namespace.default.tls_connections"
    before = stat(envoy, entry)
    call(envoy, upstream, "0.0.0.0_443", "api.openai.com", writes=1)
    assert stat(envoy, entry) == before + 1


def test_curl_over_https(envoy, upstream):
    host = CALLS["kakao-external"]
    port = envoy.ports["0.0.0.0_443"]
    name = "external.service_entry.kakao-external.namespace.default.tls_connections"
    before = stat(envoy, name)
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "10", "--cacert", upstream.ca_path,
         "--resolve", f"{host}:{port}:127.0.0.1", "--data-binary", "curl body", f"https://{host}:{port}/hash"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{hashlib.sha256(b'curl body').hexdigest()} {host}"
    assert stat(envoy, name) == before + 1


def test_bytes_that_are_not_tls_pass_at_once(envoy, upstream):
    import socket

    before = stat(envoy, "network.left.tls")
    with socket.create_connection(("127.0.0.1", envoy.ports["virtualOutbound"]), timeout=10) as s:
        # A handshake record that is not a ClientHello: left, and passed on (the TLS server
        # answers with an alert or closes).
        s.sendall(bytes([22, 3, 3, 0, 4, 2, 0, 0, 0]))
        s.recv(100)
    deadline = time.monotonic() + 10
    while stat(envoy, "network.left.tls") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stat(envoy, "network.left.tls") == before + 1


def test_names_and_hosts_become_prometheus_labels(envoy, upstream):
    """docs/external-services.md's stats_tags: the ServiceEntry name and namespace, and an
    unregistered host and its port, as labels of one metric each (Envoy drops the
    `wasmcustom` namespace in Prometheus names)."""
    import urllib.request

    call(envoy, upstream, "0.0.0.0_443", CALLS["openai-external"])
    call(envoy, upstream, "0.0.0.0_443", UNREGISTERED)
    with urllib.request.urlopen(envoy.admin + "/stats/prometheus", timeout=5) as r:
        text = r.read().decode()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    named = [line for line in lines if line.startswith("tracejoin_external_tls_connections{")]
    assert any('service_entry="openai-external"' in line and 'service_entry_namespace="default"' in line for line in named), named
    port = envoy.ports["0.0.0.0_443"]
    hosts = [line for line in lines if line.startswith("tracejoin_external_unregistered_host_tls_connections{")]
    assert any(f'unregistered_host="{UNREGISTERED}"' in line and f'destination_port="{port}"' in line for line in hosts), hosts


def test_unregistered_hosts_become_service_entry_suggestions(envoy, upstream):
    """The loop closed: an unregistered host's counter on the proxy's admin endpoint becomes
    a ServiceEntry the kit's config generator takes."""
    import sys

    port = envoy.ports["0.0.0.0_443"]
    call(envoy, upstream, "0.0.0.0_443", UNREGISTERED)
    out = subprocess.run(
        [sys.executable, "-m", "tracejoin_tools.istio.suggest_service_entries", "--admin", envoy.admin],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    entries = [d for d in yaml.safe_load_all(out) if d]
    entry = next(e for e in entries if UNREGISTERED in e["spec"]["hosts"])
    assert entry["metadata"]["name"] == "example-external"
    assert entry["spec"]["resolution"] == "DNS" and entry["spec"]["location"] == "MESH_EXTERNAL"
    assert {"number": port, "name": f"tls-{port}", "protocol": "TLS"} in entry["spec"]["ports"]


def test_the_load_line_says_tls_connections_are_named(envoy):
    assert "tracejoin: network position: TLS connections named by their server name against 6 external services" in envoy.log()


def test_a_tls_1_2_client_is_named(envoy, upstream):
    """A client that offers TLS 1.2 only (no supported_versions extension, the TLS 1.2
    ClientHello layout) is read the same way."""
    import ssl

    ctx = upstream.client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    entry = "external.service_entry.naver-external.namespace.default.tls_connections"
    before = stat(envoy, entry)
    body = os.urandom(1000)
    answer = request(envoy.ports["0.0.0.0_443"], "nid.naver.com", ctx, body)
    assert answer == f"{hashlib.sha256(body).hexdigest()} nid.naver.com"
    assert stat(envoy, entry) == before + 1
