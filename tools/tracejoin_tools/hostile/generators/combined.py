"""Formats together: repeated headers, formats that disagree, baggage beside them; FORMATS
builds one valid context in each format (also for the other generators)."""

from tracejoin_tools.common import BAGGAGE, TRACESTATE, XS, YS, ZS, P, S, T, X, Y, Z, datadog_ids
from tracejoin_tools.common import traceparent as tp
from tracejoin_tools.common import xray as amzn


def repeated_headers():
    valid = {
        "traceparent": (tp(), tp(trace=X, span=XS)), "tracestate": ("a=1", "b=2"), "b3": (f"{T}-{S}-1", f"{X}-{XS}-1"),
        "x-b3-traceid": (T, X), "x-b3-spanid": (S, XS), "x-b3-parentspanid": (P, S), "x-b3-sampled": ("1", "0"),
        "x-b3-flags": ("1", "1"), "uber-trace-id": (f"{T}:{S}:0:1", f"{X}:{XS}:0:1"),
        "x-amzn-trace-id": (amzn(), amzn(X, XS)), "x-datadog-trace-id": (datadog_ids(T[16:])[0], datadog_ids(X[16:])[0]),
        "ot-tracer-traceid": (T, X),
    }
    base = {"x-b3-traceid": [("x-b3-spanid", S)], "x-b3-spanid": [("x-b3-traceid", T)], "x-b3-parentspanid": [("x-b3-traceid", T), ("x-b3-spanid", S)],
            "x-b3-sampled": [("x-b3-traceid", T), ("x-b3-spanid", S)], "x-b3-flags": [("x-b3-traceid", T), ("x-b3-spanid", S)],
            "tracestate": [("traceparent", tp())], "x-datadog-trace-id": [("x-datadog-parent-id", "1")],
            "ot-tracer-traceid": [("ot-tracer-spanid", S)]}
    for name, (a, b) in valid.items():
        rest = base.get(name, [])
        yield f"{name}-twice-same", rest + [(name, a), (name, a)]
        yield f"{name}-twice-different", rest + [(name, a), (name, b)]
        yield f"{name}-valid-then-invalid", rest + [(name, a), (name, "garbage")]
        yield f"{name}-invalid-then-valid", rest + [(name, "garbage"), (name, a)]
        yield f"{name}-10-times", rest + [(name, a)] * 10
        yield f"{name}-90-times", rest + [(name, a)] * 90


FORMATS = {
    "tp": lambda t, s, smp: [("traceparent", tp(trace=t, span=s, flags="01" if smp else "00"))],
    "b3": lambda t, s, smp: [("b3", f"{t}-{s}-{1 if smp else 0}")],
    "multi": lambda t, s, smp: [("x-b3-traceid", t), ("x-b3-spanid", s), ("x-b3-sampled", "1" if smp else "0")],
    "jaeger": lambda t, s, smp: [("uber-trace-id", f"{t}:{s}:0:{1 if smp else 0}")],
    "datadog": lambda t, s, smp: [
        (k, v) for k, v in zip(("x-datadog-trace-id", "x-datadog-parent-id", "x-datadog-tags"), datadog_ids(t, s), strict=True) if v
    ] + [("x-datadog-sampling-priority", "1" if smp else "0")],
    "xray": lambda t, s, smp: [("x-amzn-trace-id", amzn(t, s, "1" if smp else "0"))],
    "ottrace": lambda t, s, smp: [("ot-tracer-traceid", t), ("ot-tracer-spanid", s), ("ot-tracer-sampled", "true" if smp else "false")],
}
INVALID = {
    "tp": [("traceparent", tp(trace=T.upper()))],
    "b3": [("b3", f"{T}-{S}-x")],
    "multi": [("x-b3-traceid", T), ("x-b3-sampled", "1")],
    "jaeger": [("uber-trace-id", "zz:1:0:1")],
    "datadog": [("x-datadog-trace-id", "0"), ("x-datadog-parent-id", "1")],
    "xray": [("x-amzn-trace-id", "Root=1-zz")],
    "ottrace": [("ot-tracer-traceid", T), ("ot-tracer-sampled", "1")],
}


def mixed_disagree():
    names = list(FORMATS)
    traces = [(T, S), (X, XS), (Y, YS), (Z, ZS), (P + S, P), (S + P, YS), (XS + ZS, S)]
    for mask in range(1, 16):
        chosen = [n for i, n in enumerate(names) if mask & (1 << i)]
        if len(chosen) < 2:
            continue
        label = "+".join(chosen)
        yield f"{label}-all-different", [h for i, n in enumerate(chosen) for h in FORMATS[n](*traces[i], True)]
        yield f"{label}-same-trace-other-spans", [h for i, n in enumerate(chosen) for h in FORMATS[n](T, traces[i][1], True)]
        yield f"{label}-first-differs", [h for i, n in enumerate(chosen) for h in FORMATS[n](*(traces[1] if i == 0 else traces[0]), True)]
        yield f"{label}-sampling-differs", [h for i, n in enumerate(chosen) for h in FORMATS[n](T, S, i % 2 == 0)]
        yield f"{label}-reversed-order", [h for i, n in reversed(list(enumerate(chosen))) for h in FORMATS[n](*traces[i], True)]
    # The formats added later, each against each of the first four.
    for new in names[4:]:
        for i, old in enumerate(names[:4]):
            pair = [(new, traces[4]), (old, traces[i])]
            yield f"{new}+{old}-all-different", [h for n, ids in pair for h in FORMATS[n](*ids, True)]
            yield f"{new}+{old}-same-trace-other-spans", [h for n, ids in pair for h in FORMATS[n](T, ids[1], True)]
            yield f"{new}+{old}-sampling-differs", FORMATS[new](T, S, True) + FORMATS[old](T, S, False)
    for valid in names:
        for invalid in names:
            if valid != invalid:
                yield f"valid-{valid}-invalid-{invalid}", FORMATS[valid](X, XS, True) + INVALID[invalid]
    yield "b3-64-vs-tp-128-same-low-half", [("b3", f"{T[16:]}-{S}-1"), ("traceparent", tp())]
    yield "b3-64-vs-tp-padded", [("b3", f"{T[16:]}-{S}-1"), ("traceparent", tp(trace="0" * 16 + T[16:]))]
    yield "multi-64-vs-jaeger-short", [("x-b3-traceid", T[16:]), ("x-b3-spanid", S), ("uber-trace-id", f"{T[16:].lstrip('0')}:{S.lstrip('0')}:0:1")]
    for decision in ("0", "1", "d"):
        yield f"b3-decision-{decision}-with-tp", [("b3", decision), ("traceparent", tp())]
        yield f"b3-decision-{decision}-with-multi", [("b3", decision), ("x-b3-traceid", X), ("x-b3-spanid", XS)]
        yield f"b3-decision-{decision}-with-jaeger", [("b3", decision), ("uber-trace-id", f"{Y}:{YS}:0:1")]
    yield "sampled-only-with-tp", [("x-b3-sampled", "0"), ("traceparent", tp())]
    yield "jaeger-debug-tp-unsampled", [("uber-trace-id", f"{T}:{S}:0:3"), ("traceparent", tp(flags="00"))]
    yield "b3-debug-multi-unsampled", [("b3", f"{T}-{S}-d"), ("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "0")]
    yield "everything-different-plus-tracestate", [h for i, n in enumerate(names) for h in FORMATS[n](*traces[i], True)] + [("tracestate", TRACESTATE)]
    yield "tracestate-with-other-trace", [("traceparent", tp(trace=X, span=XS)), ("b3", f"{T}-{S}-1"), ("tracestate", TRACESTATE)]


def baggage():
    yield "small", [("traceparent", tp()), ("baggage", BAGGAGE)]
    yield "alone", [("baggage", BAGGAGE)]
    yield "8k", [("traceparent", tp()), ("baggage", ",".join(f"k{i}=" + "v" * 60 for i in range(128)))]
    yield "invalid", [("traceparent", tp()), ("baggage", "=,;;==,\xff")]
    yield "repeated", [("traceparent", tp()), ("baggage", "a=1"), ("baggage", "b=2")]
    yield "with-b3-and-bad-traceparent", [("b3", f"{T}-{S}-1"), ("traceparent", "bad"), ("baggage", BAGGAGE)]
    yield "uppercase-name", [("traceparent", tp()), ("Baggage", BAGGAGE)]
    yield "with-all-formats", [h for n in FORMATS for h in FORMATS[n](T, S, True)] + [("baggage", BAGGAGE), ("tracestate", TRACESTATE)]
