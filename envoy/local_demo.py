"""The local demo: tracejoin on its embedded default under a real Envoy, no Docker.

An app whose OpenTelemetry SDK speaks only W3C (`traceparent`, the SDK default) calls another
service through its sidecar. Both sidecars run Envoy's Zipkin tracer, as Istio does by
default. Without tracejoin the next hop starts a new trace; with it, the app's trace goes on.
Everything listens on loopback and stops when the demo ends.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "envoy"))

import echo_server  # noqa: E402
import envoy_harness  # noqa: E402
import localize  # noqa: E402
from conftest import send  # noqa: E402
from trace_headers import b3  # noqa: E402

APP_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
APP_SPAN = "00f067aa0ba902b7"


def trace_headers(headers):
    return [(k, v) for k, v in headers if k in ("traceparent", "tracestate", "b3") or k.startswith("x-b3-")]


def run(wasm):
    server, app_port = echo_server.start()
    request = [("traceparent", f"00-{APP_TRACE}-{APP_SPAN}-01")]
    print("tracejoin local demo: Envoy", envoy_harness.envoy_version(), "with the Zipkin tracer (Istio's default)")
    print(f"The app sends only   traceparent: {request[0][1]}\n")
    rows = []
    try:
        with envoy_harness.Envoy(envoy_harness.render_config(app_port, tracer="zipkin")) as next_hop:
            sidecars = {
                "no filter": envoy_harness.render_config(next_hop.port, tracer="zipkin"),
                "tracejoin, default {} (downstream)": localize.localize(
                    localize.load(ROOT / "envoy" / "envoy-downstream.yaml"),
                    {"app": next_hop.port, "zipkin": app_port},
                    wasm,
                ),
                "tracejoin, upstream position": localize.localize(
                    localize.load(ROOT / "envoy" / "envoy-upstream.yaml"),
                    {"app": next_hop.port, "zipkin": app_port},
                    wasm,
                ),
            }
            for label, config in sidecars.items():
                with envoy_harness.Envoy(config) as sidecar:
                    status, _, received = send(sidecar.port, request)
                if status != 200:
                    raise SystemExit(f"{label}: HTTP {status}")
                # The next hop's own span, as its Zipkin tracer injected it (a `b3` single
                # header when it continued one, else x-b3-*); B3 readers prefer `b3`.
                next_trace = (b3(received) or {}).get("trace") or ""
                rows.append((label, next_trace, next_trace == APP_TRACE, received))
    finally:
        server.shutdown()

    width = max(len(r[0]) for r in rows)
    print(f"{'app sidecar':<{width}}  next hop's span is in trace       app's trace continued")
    for label, trace, joined, _ in rows:
        print(f"{label:<{width}}  {trace:<32}  {'yes' if joined else 'NO: a second trace'}")
    print("\nHeaders the next service received through tracejoin (default config); its own")
    print("sidecar's tracejoin would also rewrite the stale x-b3-* the first sidecar's tracer left:")
    for name, value in trace_headers(rows[1][3]):
        print(f"  {name}: {value}")
    ok = [joined for _, _, joined, _ in rows] == [False, True, True]
    print("\nverdict:", "tracejoin joins the app's trace at the next hop" if ok else "UNEXPECTED: see the table")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm", default=str(ROOT / "tracejoin.wasm"))
    sys.exit(run(parser.parse_args().wasm))
