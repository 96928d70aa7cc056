"""Instructions per TLS connection in the network position (callgrind, as `instructions`):
what naming an app's own HTTPS call by its ServiceEntry costs over the floor of any wasm
network filter, and what a connection costs once the ClientHello is read.

Each case is a listener like a sidecar's `0.0.0.0_443` (tls_inspector, an SNI chain to one
host, the `PassthroughFilterChain` default) with `tcp_proxy` to a local TLS server:
- `none`: tcp_proxy alone;
- `noop-network`: the no-op module in front of tcp_proxy (every callback continues at once);
- `tracejoin`: tracejoin with `external_services`, the SNI chain (a registered host);
- `tracejoin-unregistered`: the same module on the passthrough chain (an unregistered host:
  the per-host counter and, once, the log line).
Two shapes: `connection` (a handshake and one 4 KiB request and answer per connection) and
`bulk` (one connection then 256 writes of 4 KiB: the reads after the ClientHello).

    python -m tracejoin_tools.bench.tls --tracejoin tracejoin.wasm --noop noop.wasm
"""

import argparse
import shutil
import socket
import ssl
import sys
import tempfile
from pathlib import Path

from tracejoin_tools.bench.instructions import callgrind_wrapper, counted
from tracejoin_tools.common import BUILD, LOOPBACK, free_port, loopback
from tracejoin_tools.envoy.harness import Envoy, _cluster, network_wasm_filter, outbound_tls_listener, render_bootstrap
from tracejoin_tools.envoy.tls_upstream import TlsUpstream, request

REGISTERED = "api.openai.com"
UNREGISTERED = "api.example.org"
CASES = ("none", "noop-network", "tracejoin", "tracejoin-unregistered")
FLOOR = "noop-network"
BULK_WRITES = 256
BULK_WRITE = 4096


def case_config(case, port, upstream_port, tracejoin, noop):
    if case == "none":
        front = None
    elif case == "noop-network":
        front = network_wasm_filter(noop, "network")
    else:
        services = [{"name": "openai-external", "hosts": [REGISTERED], "ports": [port]}]
        front = network_wasm_filter(tracejoin, {"position": "network", "external_services": services})
    listener = outbound_tls_listener(loopback(port), [(REGISTERED, f"outbound|443||{REGISTERED}")], front, front)
    config = render_bootstrap([listener], upstream_port)
    config["static_resources"]["clusters"] = [
        _cluster(c, upstream_port) for c in (f"outbound|443||{REGISTERED}", "PassthroughCluster")
    ]
    return config


def host_of(case):
    return UNREGISTERED if case == "tracejoin-unregistered" else REGISTERED


def connections(port, upstream, host, n):
    body = b"x" * 4096
    for _ in range(n):
        answer = request(port, host, upstream.client_context(), body)
        if not answer.endswith(host):
            raise RuntimeError(f"unexpected answer {answer!r}")


def bulk(port, upstream, host):
    """One connection, then BULK_WRITES writes (the server hashes them)."""
    raw = socket.create_connection((LOOPBACK, port), timeout=60)
    with upstream.client_context().wrap_socket(raw, server_hostname=host) as tls:
        length = BULK_WRITES * BULK_WRITE
        tls.sendall(f"POST /hash HTTP/1.1\r\nhost: {host}\r\ncontent-length: {length}\r\n\r\n".encode())
        chunk = b"y" * BULK_WRITE
        for _ in range(BULK_WRITES):
            tls.sendall(chunk)
        answer = b""
        while True:
            try:
                data = tls.recv(65536)
            except ssl.SSLError:
                break
            if not data:
                break
            answer += data
    if not answer.endswith(host.encode()):
        raise RuntimeError(f"unexpected answer {answer[-200:]!r}")


def measure(case, args, upstream):
    outdir = tempfile.mkdtemp(prefix="tracejoin-callgrind-")
    wrapper = callgrind_wrapper(outdir)
    port = free_port()
    config = case_config(case, port, upstream.port, args.tracejoin, args.noop)
    host = host_of(case)
    counts = {}
    try:
        with Envoy(config, component_log_level="wasm:warning", wrapper=wrapper, ready_timeout=600) as envoy:
            connections(port, upstream, host, 20)  # warm: V8's tiers, the counters defined
            for shape, run, per in (
                ("connection", lambda: connections(port, upstream, host, args.connections), args.connections),
                ("bulk", lambda: bulk(port, upstream, host), 1),
            ):
                counts[shape] = counted(outdir, envoy.proc.pid, run) / per
                print(f"{case} {shape}: {counts[shape]:.0f} instructions", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    return counts


def render(counts, args):
    lines = [
        f"Instructions per TLS connection through tcp_proxy (callgrind; `connection`: "
        f"{args.connections} connections, each a handshake and one 4 KiB request; `bulk`: one "
        f"connection, {BULK_WRITES} writes of {BULK_WRITE} B)",
        "",
        "| case | connection | over no-op network | bulk | over no-op network |",
        "|---|---|---|---|---|",
    ]
    for case in CASES:
        cells = []
        for shape in ("connection", "bulk"):
            n = counts[case][shape]
            over = n - counts[FLOOR][shape] if case.startswith("tracejoin") else None
            cells += [f"{n:,.0f}", "-" if over is None else f"{over:+,.0f}"]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracejoin", required=True)
    parser.add_argument("--noop", required=True)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--out", default=str(BUILD / "bench-tls.md"))
    args = parser.parse_args()
    counts = {}
    with TlsUpstream([REGISTERED, UNREGISTERED]) as upstream:
        for case in CASES:
            counts[case] = measure(case, args, upstream)
    text = render(counts, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
