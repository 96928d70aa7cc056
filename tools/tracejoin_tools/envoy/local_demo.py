"""The local demo: tracejoin on its embedded default under a real Envoy, no Docker.

An app whose OpenTelemetry SDK speaks only W3C (`traceparent`, the SDK default) calls another
service through its sidecar. Both sidecars run Envoy's Zipkin tracer, as Istio does by
default. Without tracejoin the next hop starts a new trace; with it, the app's trace goes on.
Everything listens on loopback and stops when the demo ends.
"""

import argparse
import sys

from tracejoin_tools.common import ROOT, WASM, S, T, traceparent
from tracejoin_tools.envoy import echo_server, localize
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import b3


def trace_headers(headers):
    return [(k, v) for k, v in headers if k in ("traceparent", "tracestate", "b3") or k.startswith("x-b3-")]


def run(wasm):
    server, app_port = echo_server.start()
    request = [("traceparent", traceparent(T, S))]
    print("tracejoin local demo: Envoy", envoy_harness.envoy_version(), "with the Zipkin tracer (Istio's default)")
    print(f"The app sends only   traceparent: {request[0][1]}\n")
    rows = []

    def shipped(name, app_port_for_hop):
        return localize.localize(
            localize.load(ROOT / "envoy" / name), {"app": app_port_for_hop, "zipkin": app_port}, wasm
        )

    # (label, config of the next hop given the app's port, config of the app's sidecar given
    # the next hop's port). With tracejoin, both sidecars run it, as a mesh-wide WasmPlugin does.
    setups = [
        ("no filter", lambda p: envoy_harness.render_config(p, tracer="zipkin"),
         lambda p: envoy_harness.render_config(p, tracer="zipkin")),
        ("tracejoin, default {} (downstream)", lambda p: shipped("envoy-downstream.yaml", p),
         lambda p: shipped("envoy-downstream.yaml", p)),
        ("tracejoin, upstream position", lambda p: shipped("envoy-upstream.yaml", p),
         lambda p: shipped("envoy-upstream.yaml", p)),
    ]
    try:
        for label, next_hop_config, sidecar_config in setups:
            with envoy_harness.Envoy(next_hop_config(app_port)) as next_hop:
                with envoy_harness.Envoy(sidecar_config(next_hop.port)) as sidecar:
                    status, _, received = send(sidecar.port, request)
            if status != 200:
                raise SystemExit(f"{label}: HTTP {status}")
            # The next hop's own span, as its Zipkin tracer injected it (a `b3` single header
            # when it continued one, else x-b3-*); B3 readers prefer `b3`.
            next_trace = (b3(received) or {}).get("trace") or ""
            rows.append((label, next_trace, next_trace == T, received))
    finally:
        server.shutdown()

    width = max(len(r[0]) for r in rows)
    print(f"{'app sidecar':<{width}}  next hop's span is in trace       app's trace continued")
    for label, trace, joined, _ in rows:
        print(f"{label:<{width}}  {trace:<32}  {'yes' if joined else 'NO: a second trace'}")
    for label, _, _, received in rows:
        print(f"\nHeaders the next service received ({label}):")
        for name, value in trace_headers(received):
            print(f"  {name}: {value}")
    ok = [joined for _, _, joined, _ in rows] == [False, True, True]
    print("\nverdict:", "tracejoin joins the app's trace at the next hop" if ok else "UNEXPECTED: see the table")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm", default=str(WASM))
    sys.exit(run(parser.parse_args().wasm))
