"""What every answer to a hostile request must be (the oracle), and the known exceptions:
Envoy's own behaviour, explained, left out of the checks header by header."""

import re
from dataclasses import dataclass

from tracejoin_tools.envoy.trace_headers import (
    assert_tracestate_well_formed,
    assert_well_formed,
    control_characters,
    disagreements,
    header_values,
    read_all,
)

W3C_VALID = re.compile(r"^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


def sent(case, name):
    """The one value of `name` the filter saw, or None (absent or repeated)."""
    values = [v for n, v in case.seen() if n == name]
    return values[0] if len(values) == 1 else None


def strict_traceparent(case):
    """The traceparent of a forwarded case when it is valid by W3C as the filter sees it and
    of version 00's length (what Envoy's OpenTelemetry tracer continues), else None."""
    value = sent(case, "traceparent")
    return value if value and W3C_VALID.match(value) else None


@dataclass(frozen=True)
class Known:
    """An answer the checks would reject, explained: Envoy's own behaviour, not fixable from
    a listener filter (the three tracejoin bugs the corpus found are fixed). `applies`
    says whether a received header is exactly that symptom; only that header is then left
    out of the checks, everything else in the answer is still checked."""

    id: str
    header: str
    reason: str
    applies: object  # (scenario, case, header name, received value) -> bool


def _tracestate_ok(value):
    try:
        assert_tracestate_well_formed([("tracestate", value)])
    except AssertionError:
        return False
    return not control_characters([("tracestate", value)])


def _downstream(scenario, tracer):
    """The HTTP filter runs downstream (alone, or behind the network filter, which repairs
    what it can read before the tracer and leaves the rest to it)."""
    return scenario.position in ("downstream", "network+downstream") and scenario.tracer == tracer


KNOWN = (
    Known(
        "envoy-otel-tracestate", "tracestate",
        "Downstream, Envoy's OpenTelemetry tracer writes back the tracestate it extracted, as it "
        "arrived (joined), after every listener filter (measured: also when a filter or the route "
        "removed it), so no listener filter can repair or drop it. In front of the tracer the "
        "network filter repairs it, but not in a head whose framing it leaves alone.",
        lambda sc, case, name, got: _downstream(sc, "opentelemetry") and not _tracestate_ok(got)
        and got == ",".join(v for n, v in case.seen() if n == name),
    ),
    Known(
        "envoy-datadog-tracestate", "tracestate",
        "Downstream, Envoy's Datadog tracer (dd-trace-cpp) writes the tracestate back after every "
        "listener filter with its own `dd=` member in front, without the truncation W3C asks of a "
        "vendor adding one: a tracestate tracejoin left at 32 members or 512 characters arrives "
        "with 33, or longer (measured on 1.36.4, 1.38.2, 1.40.0). The upstream position repairs it.",
        lambda sc, case, name, got: _downstream(sc, "datadog") and not _tracestate_ok(got)
        and got.startswith("dd=") and "," in got and _tracestate_ok(got.partition(",")[2]),
    ),
)


def known_hits(scenario, case, received):
    """The known symptoms in an answer: [(Known, header name)]."""
    hits = []
    for known in KNOWN:
        for name in known.header.split("|"):
            values = header_values(received, name)
            if len(values) == 1 and known.applies(scenario, case, name, values[0]):
                hits.append((known, name))
    return hits


def check(scenario, result):
    """What is wrong with one answer, and which known symptoms it shows (left out of the
    checks): (problems, [Known]); ([], []) when it is right."""
    case, status = result.case, result.status
    if status >= 500:
        return [f"{status} from Envoy"], []
    if case.expect is not None:
        if status != case.expect or result.upstream_reached:
            return [f"expected Envoy's codec to answer {case.expect}, got {status} (upstream reached: {result.upstream_reached})"], []
        return [], []
    if status != 200 or result.received is None:
        return [f"expected the upstream to answer, got {status}"], []
    hits = known_hits(scenario, case, result.received)
    excused = {name for _, name in hits}
    if "traceparent" in excused:
        excused.add("tracestate")  # it belongs to its traceparent: left out with it
    got = [(k, v) for k, v in result.received if k not in excused]
    problems = []
    controls = control_characters(got)
    if controls:
        problems.append(f"control characters forwarded: {controls}")
    try:
        assert_well_formed(got)
    except AssertionError as e:
        return problems + [f"malformed: {e}"], [k for k, _ in hits]
    if scenario.writes_every_format:
        seen = read_all(got)
        missing = [r for r in ("w3c", "b3") if not (seen[r] and seen[r]["trace"])]
        if missing:
            problems.append(f"no context for the {missing} reader(s): {seen}")
        problems += disagreements(got)
    else:
        # Envoy's tracer writes traceparent after the filter (its own span; a fresh trace when
        # it could not read the request's context): the formats tracejoin keeps must agree with
        # each other, and with Envoy's when Envoy continued a valid traceparent.
        # (Envoy's Datadog tracer writes x-datadog-* too, after the filter.)
        kept = tuple(r for r in ("b3", "jaeger", "datadog", "xray", "ottrace") if r != scenario.tracer)
        problems += disagreements(got, readers=kept, spans=False)
        if strict_traceparent(case):
            if not (read_all(got)["b3"] or {}).get("trace"):
                problems.append("a valid traceparent arrived but no B3 context was written")
            problems += disagreements(got, readers=("w3c", "b3"), spans=False, sampling=False)
    return problems, [k for k, _ in hits]
