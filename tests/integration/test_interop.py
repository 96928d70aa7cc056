"""The interop matrix through real SDK propagators (docs/interop.md, issue 11).

Every propagator PyPI ships (tracejoin_tools.interop: OpenTelemetry's tracecontext, B3 single
and multi, Jaeger, AWS X-Ray, OT trace; ddtrace's Datadog style) injects a fresh sampled and a
fresh not-sampled context; the request goes through Envoy with tracejoin extracting and
propagating every format; every propagator then extracts from what the echo upstream
received. A cell agrees when the reader gets the writer's trace id (compared at the low 64
bits when either side carries only those), a parent that is a real span (the writer's, or
Envoy's span as its tracer wrote it in its own headers) and the writer's sampling decision.
The "tracejoin" writer sends no trace headers: the readers must find the context tracejoin
(or Envoy's tracer) started, sampled, in every format.

One Envoy for the whole file: every (tracer, position) is a listener of one LDS update. A
format the built filter does not know (it refuses the config at load, so Envoy rejects the
listener) is found by probing; its row and column are skipped as "filter lacks format", never
passed. The cells that cannot agree are `cannot_agree` below, with their reason; the test holds
the measured matrix to it both ways, and writes the table to build/interop-matrix-<release>.md.
"""

import json
import urllib.request

import pytest

from tracejoin_tools import interop
from tracejoin_tools.common import BUILD, free_port, loopback
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.harness import send

PROPAGATORS = {p.name: p for p in interop.PROPAGATORS}
READERS = list(PROPAGATORS)
WRITERS = [*READERS, "tracejoin"]
POSITIONS = ("downstream", "upstream", "network")
CONFIGS = [(tracer, position) for position in POSITIONS for tracer in envoy_harness.TRACERS]
# The formats Envoy's tracer reads and writes itself (docs/design.md: measured behaviour).
TRACER_FORMATS = {"none": (), "zipkin": ("b3", "b3multi"), "zipkin_w3c": ("b3", "b3multi", "tracecontext"), "opentelemetry": ("tracecontext",),
                  "datadog": ("datadog", "tracecontext")}
# OpenTelemetry's B3 propagators both read the single header first (test_mesh_sdks.py).
B3_READERS = ("b3", "b3multi")

FRESH_AFTER = (
    "Envoy's tracer cannot read the writer's format, starts a new trace in its own headers "
    "after the listener filters, and this reader reads those headers (docs/design.md: the "
    "bold cells); the network or upstream position joins it"
)
UNFED = (
    "no context arrived and Envoy's tracer starts the trace after tracejoin ran (downstream: "
    "after the listener filters; network: in the HCM, behind the network filter), so only the "
    "tracer's own headers carry it; the next hop's tracejoin, or the upstream position, writes "
    "it in every format"
)


def cannot_agree(config, writer, reader):
    """Why the cell (tracer, position) x writer x reader cannot agree, or None when it must.
    The one place these are listed; docs/interop.md gives the same reasons."""
    tracer, position = config
    own = TRACER_FORMATS[tracer]
    reader_format = PROPAGATORS[reader].format
    if tracer == "none" or position == "upstream":
        return None
    if writer == "tracejoin":
        return None if reader_format in own else UNFED
    if position == "network":
        return None
    writer_format = PROPAGATORS[writer].format
    tracer_reads = writer_format in own
    if tracer_reads:
        return None
    # The Zipkin tracers leave a `b3` header alone and the B3 readers take it first: the bridge.
    if tracer.startswith("zipkin") and reader_format in B3_READERS:
        return None
    return FRESH_AFTER if reader_format in own else None


PROBE = ("none", "upstream")


def _name(config):
    return "-".join(config)


def _listener(wasm, config, formats):
    tracer, position = config
    plugin = {"position": position, "tracer": tracer, "extract": formats, "propagate": formats}
    listener = envoy_harness.render_listener(tracer, position, wasm_path=wasm, plugin_config=plugin, name=_name(config))
    # Listeners of one update on port 0 would share one socket (Envoy reuses it for the same
    # address): each gets its own port.
    listener["address"] = {"socket_address": loopback(free_port())}
    return listener


def _ports(envoy):
    with urllib.request.urlopen(envoy.admin + "/listeners?format=json", timeout=5) as r:
        statuses = json.load(r)["listener_statuses"]
    return {s["name"]: s["local_address"]["socket_address"]["port_value"] for s in statuses}


def _known_formats(envoy, lds, wasm):
    """The formats the built filter knows. A config naming one it does not know is refused at
    load (`unknown format` in Envoy's log), which Envoy reports as a rejected listener update:
    all formats are tried at once, then (only when refused) one by one."""
    everything = [p.format for p in interop.PROPAGATORS]
    if envoy_harness.update_listeners(envoy, lds, [_listener(wasm, PROBE, everything)]):
        return everything
    known = []
    for fmt in everything:
        logged = len(envoy.log())
        if envoy_harness.update_listeners(envoy, lds, [_listener(wasm, PROBE, [fmt])]):
            known.append(fmt)
        else:
            # Any other refusal is a broken test, not a missing format.
            assert "unknown format" in envoy.log()[logged:], envoy.log()[logged:]
    return known


def _judge_all(config, readers, received, sent):
    """{reader: what it got wrong or None} for one request; `sent`: (trace, span, sampled,
    bits) of the writer, None for the tracejoin row."""
    tracer, _ = config
    reads = {r.name: r.extract(received) for r in readers}
    by_format = {r.format: reads[r.name] for r in readers}
    # Envoy's span: what its tracer wrote in its own headers.
    envoy_spans = {by_format[f].span_id for f in TRACER_FORMATS[tracer] if by_format.get(f)}
    if sent is None:
        # No writer: the context is the one in the tracer's headers (tracejoin's own with none).
        reference = next((by_format[f] for f in (*TRACER_FORMATS[tracer], "tracecontext") if by_format.get(f)), None)
        if reference is None:
            return {r.name: "no context at all" for r in readers}
        trace_id, parents, sampled, bits = reference.trace_id, {reference.span_id} | envoy_spans, True, 128
    else:
        trace_id, span_id, sampled, bits = sent
        parents = {span_id} | envoy_spans
    return {r.name: interop.judge(r, reads[r.name], trace_id, parents, sampled, min(bits, r.trace_bits)) for r in readers}


@pytest.fixture(scope="module")
def matrix(upstream_port, wasm, tmp_path_factory):
    """cells[(config, writer, reader)]: the list of what went wrong (empty: agrees), or None
    when the filter lacks a format of the cell; and the formats the filter knows."""
    lds = str(tmp_path_factory.mktemp("interop") / "lds.json")
    # Envoy is ready once a listener runs; one without tracejoin, so every probe is a change
    # (Envoy ignores an update that repeats the listener it runs).
    envoy_harness.write_lds(lds, [envoy_harness.render_listener(name="ready")], 0)
    cells = {}
    with envoy_harness.Envoy(envoy_harness.render_lds_config(upstream_port, lds)) as envoy:
        known = _known_formats(envoy, lds, wasm)
        assert envoy_harness.update_listeners(envoy, lds, [_listener(wasm, c, known) for c in CONFIGS]), envoy.log()[-3000:]
        ports = _ports(envoy)
        readers = [p for p in interop.PROPAGATORS if p.format in known]
        for config in CONFIGS:
            for writer in WRITERS:
                if writer != "tracejoin" and PROPAGATORS[writer].format not in known:
                    continue
                wrong = {r.name: [] for r in readers}
                for sampled in (True, False) if writer != "tracejoin" else (True,):
                    if writer == "tracejoin":
                        headers, sent = [], None
                    else:
                        w = PROPAGATORS[writer]
                        trace_id, span_id = interop.fresh_ids()
                        headers, sent = w.inject(trace_id, span_id, sampled), (trace_id, span_id, sampled, w.trace_bits)
                    status, _, received = send(ports[_name(config)], headers)
                    assert status == 200, (config, writer, status)
                    label = "" if writer == "tracejoin" else (" when sampled" if sampled else " when not sampled")
                    for reader, what in _judge_all(config, readers, [tuple(h) for h in received], sent).items():
                        if what:
                            wrong[reader].append(what + label)
                for reader, whats in wrong.items():
                    cells[(config, writer, reader)] = whats
    for config in CONFIGS:
        for writer in WRITERS:
            for reader in READERS:
                cells.setdefault((config, writer, reader), None)
    release = envoy_harness.envoy_version()
    lacking = [p.format for p in interop.PROPAGATORS if p.format not in known]
    head = f"# Interop matrix on Envoy {release}\n\nThe filter ({wasm}) knows {', '.join(known)}"
    head += f"; it lacks {', '.join(lacking)}.\n\n" if lacking else ".\n\n"
    BUILD.mkdir(exist_ok=True)
    (BUILD / f"interop-matrix-{release}.md").write_text(head + render(cells, known))
    return cells, known


def _bits(writer, reader):
    return min(PROPAGATORS[reader].trace_bits, 128 if writer == "tracejoin" else PROPAGATORS[writer].trace_bits)


def render(cells, known):
    """The matrix as Markdown: one table (writer rows, reader columns) over every tracer and
    position, a cell's exceptions as footnotes naming where and why."""
    notes = []

    def note(text):
        if text not in notes:
            notes.append(text)
        return len(notes)

    short = {"downstream": "d", "upstream": "u", "network": "n", "opentelemetry": "otel"}
    lines = [
        "| writer \\ reader | " + " | ".join(READERS) + " |",
        "|---|" + "---|" * len(READERS),
    ]
    for writer in WRITERS:
        row = []
        for reader in READERS:
            measured = {c: cells[(c, writer, reader)] for c in CONFIGS}
            if any(v is None for v in measured.values()):
                lacking = sorted({PROPAGATORS[n].format for n in (writer, reader) if n in PROPAGATORS} - set(known))
                row.append(f"skip: filter lacks {', '.join(lacking)}")
                continue
            failing = {}
            for config, whats in measured.items():
                if whats:
                    reason = cannot_agree(config, writer, reader) or "UNEXPECTED: " + "; ".join(whats)
                    failing.setdefault(reason, []).append(config)
            text = "✓" if not failing else "✓ except " + "; ".join(
                ", ".join("/".join(short.get(part, part) for part in config) for config in configs) + f" [{note(reason)}]"
                for reason, configs in failing.items()
            )
            if _bits(writer, reader) == 64:
                text += " (64)"
            row.append(text)
        lines.append(f"| {writer} | " + " | ".join(row) + " |")
    lines.append("")
    lines.append(
        "✓: agrees under every tracer (none, zipkin, zipkin_w3c, otel = opentelemetry, datadog) in every position "
        "(d = downstream, u = upstream, n = network); \"except\" lists where it cannot, and why. "
        "(64): trace ids compared at the low 64 bits, all that ot-trace carries (OTTracePropagator writes at most 16 hex digits)."
    )
    lines.append("")
    lines += [f"[{i}] {text}" for i, text in enumerate(notes, 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("writer", WRITERS)
def test_cell(matrix, writer, reader):
    """Under every tracer and position, the cell agrees exactly when `cannot_agree` says it must."""
    cells, known = matrix
    for name in (writer, reader):
        if name in PROPAGATORS and PROPAGATORS[name].format not in known:
            pytest.skip(f"filter lacks format {PROPAGATORS[name].format}")
    wrong = {}
    for config in CONFIGS:
        whats = cells[(config, writer, reader)]
        reason = cannot_agree(config, writer, reader)
        if bool(whats) != bool(reason):
            wrong[_name(config)] = f"measured: {'; '.join(whats) or 'agrees'}; documented: {reason or 'agrees'}"
    assert not wrong, wrong
