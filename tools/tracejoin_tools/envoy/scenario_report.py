"""Prints what an app behind Envoy + tracejoin receives for each scenario, position and
tracer: the trace each kind of app would join, and the raw trace headers. Run with
`make scenarios` (after `make build`); the integration tests assert the same cases."""

from tracejoin_tools.common import WASM, S, T, X
from tracejoin_tools.envoy import echo_server
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import read_all

SCENARIOS = {
    "no headers": [],
    "traceparent": [("traceparent", f"00-{T}-{S}-01"), ("tracestate", "congo=t61rcWkgMzE")],
    "b3": [("b3", f"{T}-{S}-1")],
    "b3multi": [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "1")],
    "jaeger": [("uber-trace-id", f"{T}:{S}:0:1")],
    "conflict b3multi X + traceparent T": [("traceparent", f"00-{T}-{S}-01"), ("x-b3-traceid", X), ("x-b3-spanid", S)],
    "invalid traceparent (uppercase)": [("traceparent", f"00-{T.upper()}-{S}-01")],
    "64-bit b3multi": [("x-b3-traceid", T[16:]), ("x-b3-spanid", S), ("x-b3-sampled", "1")],
    "debug x-b3-flags: 1": [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-flags", "1")],
    "b3: 0": [("b3", "0")],
}
NAMES = {T: "T", X: "X", T[16:].rjust(32, "0"): "T64"}


def short(ctx):
    if not ctx:
        return "-"
    trace = NAMES.get(ctx["trace"], (ctx["trace"] or "")[:8] + "..")
    return f"{trace}/{'s' if ctx['sampled'] else ('u' if ctx['sampled'] is False else '?')}"


def main():
    wasm = str(WASM)
    server, port = echo_server.start()
    print(f"T = {T[:8]}.., X = {X[:8]}..; reader shows trace/sampled (s, u, ?) or '-'")
    print(f"{'position':<10} {'tracer':<13} {'scenario':<36} {'W3C app':<13} {'B3 app':<13} {'Jaeger app':<13} trace headers received")
    try:
        for position in ("downstream", "upstream"):
            for tracer in ("none", "zipkin", "zipkin_w3c", "opentelemetry"):
                plugin = {"position": position, "tracer": tracer, "propagate": ["tracecontext", "b3multi", "jaeger"]}
                config = envoy_harness.render_config(port, tracer=tracer, position=position, wasm_path=wasm, plugin_config=plugin)
                with envoy_harness.Envoy(config) as envoy:
                    for name, headers in SCENARIOS.items():
                        status, _, got = send(envoy.port, headers)
                        seen = read_all(got) if status == 200 else {}
                        raw = "; ".join(f"{k}={v}" for k, v in got or [] if k in ("traceparent", "tracestate", "b3", "uber-trace-id") or k.startswith("x-b3-"))
                        print(f"{position:<10} {tracer:<13} {name:<36} {short(seen.get('w3c')):<13} {short(seen.get('b3')):<13} {short(seen.get('jaeger')):<13} {raw}")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
