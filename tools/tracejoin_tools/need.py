"""Do you need tracejoin? Measured per Envoy tracer and app propagator (README.md's table,
tests/integration/test_need.py).

One hop of a mesh: an app injects a fresh sampled context with its propagator (the real SDK
one, tracejoin_tools.interop) and calls through an Envoy that traces with the tracer under
test, with no tracejoin or with tracejoin as Istio's WasmPlugins install it (deployment 2:
the network filter in front of the tracer and the listener HTTP filter behind it), first as
the kit ships them (`{"tracer": ...}`: the default `extract` and `propagate`), then with
every format named in both. The cell joins when the request reaches the
next app with the caller's trace in both places that make one trace in a tracing UI: the
tracer's own headers (Envoy's span is in the app's trace) and the app's format (the next app
continues it). The parent links are the e2e matrix's matter (docs/local-mesh.md).
"""

from tracejoin_tools import interop

TRACERS = ("zipkin", "zipkin_w3c", "opentelemetry", "datadog")
TRACER_TITLES = {
    "zipkin": "Zipkin (B3, Istio's classic default)",
    "zipkin_w3c": "Zipkin with `USE_B3_WITH_W3C_PROPAGATION` (Istio 1.28+)",
    "opentelemetry": "OpenTelemetry (W3C)",
    "datadog": "Datadog",
}
MODES = ("off", "tracejoin", "tracejoin_every_format")
# The tracer's own headers, read with the SDK propagator of that format.
_BY_FORMAT = {p.format: p for p in interop.PROPAGATORS}
TRACER_READERS = {
    "zipkin": ("b3multi", "b3"),
    "zipkin_w3c": ("b3multi", "b3"),
    "opentelemetry": ("tracecontext",),
    "datadog": ("datadog",),
}
TABLE_START = "<!-- need-table: tests/integration/test_need.py holds it to the measurement -->"
TABLE_END = "<!-- /need-table -->"


def plugin_configs(tracer, mode):
    """The two plugin configs of deployment 2: as the Istio kit ships them, or with every
    format read and written (for apps on a format the defaults leave out)."""
    common = {"tracer": tracer}
    if mode == "tracejoin_every_format":
        common.update(extract=list(interop.FORMATS), propagate=list(interop.FORMATS))
    return {"position": "downstream", **common}, {"position": "network", **common}


def in_trace(headers, fmt, trace_id, bits):
    """Whether the headers carry `trace_id` in `fmt`, compared at `bits`."""
    got = _BY_FORMAT[fmt].extract(headers)
    return got is not None and interop.same_trace(got.trace_id, trace_id, bits)


def joined(tracer, fmt, received, trace_id):
    """One trace: the tracer's span and the next app both continue the caller's (at the
    bits the caller's format carries: ot-trace's 64)."""
    bits = _BY_FORMAT[fmt].trace_bits
    tracer_in = any(in_trace(received, f, trace_id, bits) for f in TRACER_READERS[tracer])
    return tracer_in and in_trace(received, fmt, trace_id, bits)


def measure(send_through):
    """{(propagator name, tracer): {mode: joined}}; `send_through(tracer, mode, headers)`
    returns the headers the next app received."""
    cells = {}
    for tracer in TRACERS:
        for mode in MODES:
            for propagator in interop.PROPAGATORS:
                trace_id, span_id = interop.fresh_ids()
                received = send_through(tracer, mode, propagator.inject(trace_id, span_id, True))
                ok = received is not None and joined(tracer, propagator.format, received, trace_id)
                cells.setdefault((propagator.name, tracer), {})[mode] = ok
    return cells


def cell_text(cell, fmt):
    if cell["off"]:
        return "joined by Envoy alone"
    if cell["tracejoin"]:
        return "**split**; joined with tracejoin"
    if cell["tracejoin_every_format"]:
        return f"**split**; joined with tracejoin configured for `{fmt}`"
    return "**split**, with tracejoin too"


def render(cells):
    """README.md's table, between its markers."""
    lines = [
        TABLE_START,
        "| app propagator | " + " | ".join(TRACER_TITLES[t] for t in TRACERS) + " |",
        "|---|" + "---|" * len(TRACERS),
    ]
    for propagator in interop.PROPAGATORS:
        row = [cell_text(cells[(propagator.name, t)], propagator.format) for t in TRACERS]
        lines.append(f"| {propagator.name} (`{propagator.format}`) | " + " | ".join(row) + " |")
    lines.append(TABLE_END)
    return "\n".join(lines)


def table_in(text):
    """The table between the markers in a document, or None."""
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(TABLE_END)]
