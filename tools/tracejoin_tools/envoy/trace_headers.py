"""Reads trace headers the way the apps behind Envoy do, for assertions.

Each "reader" stands for an app SDK configured with one propagator: what trace would it
join? A W3C reader uses traceparent; a B3 reader uses the `b3` single header if present,
else the `x-b3-*` headers (OpenTelemetry's B3 propagator and Envoy's Zipkin tracer both
prefer the single header); a Jaeger reader uses `uber-trace-id`.
"""

import re

from tracejoin_tools.common import B3_MULTI_HEADERS, TRACE_HEADERS

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


READERS = {"w3c": w3c, "b3": b3, "jaeger": jaeger}


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
