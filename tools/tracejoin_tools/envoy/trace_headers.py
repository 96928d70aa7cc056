"""Reads trace headers the way the apps behind Envoy do, for assertions.

Each "reader" stands for an app SDK configured with one propagator: what trace would it
join? A W3C reader uses traceparent; a B3 reader uses the `b3` single header if present,
else the `x-b3-*` headers (OpenTelemetry's B3 propagator and Envoy's Zipkin tracer both
prefer the single header); a Jaeger reader uses `uber-trace-id`; the Datadog, X-Ray and
OpenTracing readers use their headers as dd-trace and OpenTelemetry's `xray` and `ottrace`
propagators do.
"""

import re

from tracejoin_tools.common import B3_MULTI_HEADERS, DATADOG_HEADERS, OT_HEADERS, TRACE_HEADERS

HEX = re.compile(r"^[0-9a-f]+$")


def header_values(headers, name):
    return [v for k, v in headers if k == name]


def one(headers, name):
    values = header_values(headers, name)
    assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
    return values[0] if values else None


def pad(trace_id):
    return trace_id.rjust(32, "0")


def w3c(headers):
    tp = one(headers, "traceparent")
    if tp is None:
        return None
    version, trace_id, span_id, flags = tp.split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16 and len(flags) == 2, tp
    assert HEX.match(trace_id + span_id + flags), tp
    return {"trace": trace_id, "span": span_id, "sampled": int(flags, 16) & 1 == 1}


def b3(headers):
    single = one(headers, "b3")
    if single is not None:
        parts = single.split("-")
        if len(parts) == 1:
            return {"trace": None, "span": None, "sampled": parts[0] in ("1", "d")}
        assert len(parts[0]) in (16, 32) and len(parts[1]) == 16, single
        sampled = None if len(parts) < 3 else parts[2] in ("1", "d")
        return {"trace": pad(parts[0]), "span": parts[1], "sampled": sampled}
    trace_id = one(headers, "x-b3-traceid")
    if trace_id is None:
        return None
    span_id = one(headers, "x-b3-spanid")
    assert len(trace_id) in (16, 32) and span_id and len(span_id) == 16, (trace_id, span_id)
    flags = one(headers, "x-b3-flags")
    sampled = one(headers, "x-b3-sampled")
    return {
        "trace": pad(trace_id),
        "span": span_id,
        "sampled": True if flags == "1" else (None if sampled is None else sampled in ("1", "true")),
    }


def jaeger(headers):
    value = one(headers, "uber-trace-id")
    if value is None:
        return None
    trace_id, span_id, _parent, flags = value.split(":")
    return {"trace": pad(trace_id), "span": span_id.rjust(16, "0"), "sampled": int(flags, 16) & 1 == 1}


def datadog(headers):
    trace_id = one(headers, "x-datadog-trace-id")
    if trace_id is None:
        return None
    span_id = one(headers, "x-datadog-parent-id")
    tags = dict(t.split("=", 1) for t in (one(headers, "x-datadog-tags") or "").split(",") if t)
    high = tags.get("_dd.p.tid", "0" * 16)
    priority = one(headers, "x-datadog-sampling-priority")
    return {
        "trace": high + f"{int(trace_id):016x}",
        "span": f"{int(span_id):016x}",
        "sampled": None if priority is None else int(priority) > 0,
    }


def xray(headers):
    value = one(headers, "x-amzn-trace-id")
    if value is None:
        return None
    fields = dict(f.strip().split("=", 1) for f in value.split(";"))
    root = fields["Root"]
    sampled = fields.get("Sampled")
    return {
        "trace": root[2:10] + root[11:],
        "span": fields["Parent"],
        "sampled": None if sampled in (None, "?") else sampled == "1",
    }


def ottrace(headers):
    trace_id = one(headers, "ot-tracer-traceid")
    if trace_id is None:
        return None
    sampled = one(headers, "ot-tracer-sampled")
    return {
        "trace": pad(trace_id),
        "span": one(headers, "ot-tracer-spanid"),
        "sampled": None if sampled is None else sampled.lower() in ("true", "1"),
    }


READERS = {"w3c": w3c, "b3": b3, "jaeger": jaeger, "datadog": datadog, "xray": xray, "ottrace": ottrace}


def read_all(headers):
    """What each kind of app would join: {reader: context or None}."""
    return {name: reader(headers) for name, reader in READERS.items()}


def traces_seen(headers):
    """The distinct trace ids the readers would join."""
    return {c["trace"] for c in read_all(headers).values() if c and c["trace"]}


TRACEPARENT_RE = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-0[0-3]$")
B3_RE = re.compile(r"^([0-9a-f]{16}|[0-9a-f]{32})-[0-9a-f]{16}(-[01d](-[0-9a-f]{16})?)?$|^[01d]$")
UBER_RE = re.compile(r"^[0-9a-f]{1,32}:[0-9a-f]{1,16}:[0-9a-f]{1,16}:[0-9a-f]{1,2}$")
ID16 = re.compile(r"^[0-9a-f]{16}$")
DECIMAL_ID = re.compile(r"^[1-9][0-9]{0,19}$")
XRAY_RE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=(?!0{16})[0-9a-f]{16};Sampled=[01?](;[\x21-\x3a\x3c-\x7e]+=[\x21-\x3a\x3c-\x7e]*)*$")
TRACE_ID = re.compile(r"^([0-9a-f]{16}|[0-9a-f]{32})$")


def assert_well_formed(headers):
    """Every trace header present is valid by its spec; the x-b3 set is complete."""
    tp = header_values(headers, "traceparent")
    assert len(tp) <= 1 and all(TRACEPARENT_RE.match(v) for v in tp), tp
    single = header_values(headers, "b3")
    assert len(single) <= 1 and all(B3_RE.match(v) for v in single), single
    uber = header_values(headers, "uber-trace-id")
    assert len(uber) <= 1 and all(UBER_RE.match(v) for v in uber), uber
    multi = {k: header_values(headers, k) for k in B3_MULTI_HEADERS}
    assert all(len(v) <= 1 for v in multi.values()), multi
    trace_id, span_id = multi["x-b3-traceid"], multi["x-b3-spanid"]
    assert bool(trace_id) == bool(span_id), multi
    assert all(TRACE_ID.match(v) for v in trace_id) and all(ID16.match(v) for v in span_id), multi
    assert all(ID16.match(v) for v in multi["x-b3-parentspanid"]), multi
    assert all(v in ("0", "1") for v in multi["x-b3-sampled"]) and all(v == "1" for v in multi["x-b3-flags"]), multi
    dd = {k: header_values(headers, k) for k in DATADOG_HEADERS}
    assert all(len(v) <= 1 for v in dd.values()), dd
    assert all(DECIMAL_ID.match(v) and int(v) < 2**64 for k in DATADOG_HEADERS[:2] for v in dd[k]), dd
    assert bool(dd["x-datadog-trace-id"]) == bool(dd["x-datadog-parent-id"]), dd
    assert all(v in ("-1", "0", "1", "2") for v in dd["x-datadog-sampling-priority"]), dd
    if not dd["x-datadog-trace-id"]:
        assert not any(dd.values()), f"x-datadog-* without a trace id: {dd}"
    amzn = header_values(headers, "x-amzn-trace-id")
    assert len(amzn) <= 1 and all(XRAY_RE.match(v) for v in amzn), amzn
    ot = {k: header_values(headers, k) for k in OT_HEADERS}
    assert all(len(v) <= 1 for v in ot.values()), ot
    assert bool(ot["ot-tracer-traceid"]) == bool(ot["ot-tracer-spanid"]), ot
    assert all(TRACE_ID.match(v) for v in ot["ot-tracer-traceid"]) and all(ID16.match(v) for v in ot["ot-tracer-spanid"]), ot
    assert all(v in ("true", "false") for v in ot["ot-tracer-sampled"]), ot
    if not tp:
        assert not header_values(headers, "tracestate"), "tracestate without traceparent"
    assert_tracestate_well_formed(headers)


CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def control_characters(headers, names=TRACE_HEADERS):
    """The (name, value) pairs among `names` whose value holds a control character (C0,
    horizontal tab included, or DEL)."""
    return [(k, v) for k, v in headers if k in names and CONTROL.search(v)]


# W3C Trace Context (current text): a key is a lowercase letter or digit, then up to 255 of
# lowercase letters, digits, `_-*/@`; a value of 1 to 256 printable characters but `,` and
# `=`, not ending in a space.
TRACESTATE_KEY = re.compile(r"^[a-z0-9][a-z0-9_\-*/@]{0,255}$")
TRACESTATE_VALUE = re.compile(r"^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$")


def assert_tracestate_well_formed(headers):
    """tracestate valid by W3C Level 2's grammar: at most 32 list members (empty ones, which
    the grammar allows, included) and 512 characters, valid keys and values, unique keys.
    Repeated headers are read as their combination (W3C: "MUST be handled as specified by
    RFC9110 Section 5.3"), which is what tracejoin forwards beside a traceparent it does not
    change (docs/conformance.md, item 10). An empty value (what Envoy's OpenTelemetry
    tracer sends when none arrived) carries nothing and passes."""
    values = header_values(headers, "tracestate")
    if not values:
        return
    value = ",".join(values)
    assert len(value) <= 512, f"tracestate of {len(value)} characters"
    members = value.split(",")
    assert len(members) <= 32, f"tracestate with {len(members)} members"
    keys = []
    for member in (m.strip(" \t") for m in members):
        if not member:
            continue
        key, eq, val = member.partition("=")
        assert eq and TRACESTATE_KEY.match(key) and TRACESTATE_VALUE.match(val), f"tracestate member {member!r}"
        keys.append(key)
    assert len(set(keys)) == len(keys), f"tracestate with a repeated key: {value}"


def disagreements(headers, readers=tuple(READERS), spans=True, sampling=True):
    """How the contexts these readers find differ: [] when every reader that finds ids agrees
    on the trace id and, when asked, on the span id and every decided sampling state."""
    found = {name: READERS[name](headers) for name in readers}
    found = {name: ctx for name, ctx in found.items() if ctx}
    problems = []
    keys = ["trace"] + (["span"] if spans else []) + (["sampled"] if sampling else [])
    for key in keys:
        values = {name: ctx[key] for name, ctx in found.items() if ctx[key] is not None}
        if len(set(values.values())) > 1:
            problems.append(f"readers disagree on {key}: {values}")
    return problems


def envoys_span(tracer, got):
    """(trace id, span id, parent id or None) of the span Envoy's tracer injected into the
    request headers `got` (what the upstream received)."""
    if tracer == "opentelemetry":
        _, trace, span, _ = one(got, "traceparent").split("-")
        return trace, span, None
    b3 = one(got, "b3")
    if b3 is not None:
        parts = b3.split("-")
        return parts[0], parts[1], parts[3] if len(parts) > 3 else None
    return one(got, "x-b3-traceid"), one(got, "x-b3-spanid"), one(got, "x-b3-parentspanid")
