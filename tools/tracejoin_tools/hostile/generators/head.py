"""The request head: header name case, header counts and head sizes at Envoy's limits, and
framing that cannot be said as name/value pairs."""

from tracejoin_tools.common import TRACESTATE, XS, S, T, X
from tracejoin_tools.common import traceparent as tp
from tracejoin_tools.hostile.cases import HOST, Case, as_bytes, make_case
from tracejoin_tools.hostile.generators.combined import FORMATS
from tracejoin_tools.hostile.generators.tracestate import tracestate_of_length


def header_name_case():
    for name in ("TRACEPARENT", "Traceparent", "TraceParent", "tRaCePaReNt"):
        yield name, [(name, tp())]
    yield "TraceState", [("traceparent", tp()), ("TraceState", TRACESTATE)]
    yield "B3", [("B3", f"{T}-{S}-1")]
    yield "X-B3-Multi", [("X-B3-TraceId", T), ("X-B3-SpanId", S), ("X-B3-Sampled", "1")]
    yield "X-B3-MULTI-upper", [("X-B3-TRACEID", T), ("X-B3-SPANID", S), ("X-B3-FLAGS", "1")]
    yield "Uber-Trace-Id", [("Uber-Trace-Id", f"{T}:{S}:0:1")]
    yield "traceparent-twice-in-two-cases", [("Traceparent", tp()), ("traceparent", tp())]
    yield "traceparent-two-cases-disagree", [("TRACEPARENT", tp(trace=X, span=XS)), ("traceparent", tp())]
    yield "tracestate-two-cases", [("traceparent", tp()), ("TRACESTATE", "a=1"), ("tracestate", "b=2")]
    yield "b3-two-cases", [("B3", f"{T}-{S}-1"), ("b3", f"{X}-{XS}-1")]
    yield "x-b3-spanid-two-cases", [("x-b3-traceid", T), ("X-B3-SPANID", S), ("x-b3-spanid", XS)]
    yield "near-miss-names", [("traceparent_", tp()), ("trace-parent", tp()), ("b3-", "x"), ("x-b3-trace-id", T)]


def fill(headers, total, filler):
    """Headers grown to `total` header fields (host included) with `filler(i)` pairs."""
    headers = list(headers)
    i = 0
    while len(headers) + 1 < total:
        headers.append(filler(i))
        i += 1
    return headers


def header_count():
    fillers = {
        "filler": ([("traceparent", tp())], lambda i: (f"x-filler-{i}", f"v{i}")),
        "tracestate": ([("traceparent", tp())], lambda i: ("tracestate", f"k{i}=v{i}")),
        "x-b3-sampled": ([("x-b3-traceid", T), ("x-b3-spanid", S)], lambda i: ("x-b3-sampled", "1")),
        "traceparent": ([], lambda i: ("traceparent", tp())),
        "b3": ([], lambda i: ("b3", f"{T}-{S}-1")),
        "baggage": ([("b3", f"{T}-{S}-1")], lambda i: ("baggage", f"k{i}=v")),
        "mixed-formats": ([], lambda i: list(FORMATS.values())[i % 4](*[(T, S), (X, XS)][i % 2], True)[0]),
    }
    for label, (start, filler) in fillers.items():
        for total in (50, 99, 100, 101, 102, 150, 300):
            yield f"{label}-{total}", fill(start, total, filler)


def header_size():
    carriers = {
        "tracestate": ([("traceparent", tp())], "tracestate", lambda n: tracestate_of_length(n, 250)),
        "filler": ([("traceparent", tp())], "x-filler", lambda n: "f" * n),
        "baggage": ([("traceparent", tp())], "baggage", lambda n: "k=" + "v" * (n - 2)),
        "b3": ([], "b3", lambda n: (f"{T}-{S}-1-" * (n // 36 + 1))[:n]),
        "traceparent": ([], "traceparent", lambda n: (tp() + "-") * (n // 56) + "x" * (n % 56)),
        "uber-trace-id": ([], "uber-trace-id", lambda n: "f" * n),
    }
    for label, (start, name, make) in carriers.items():
        for size in (32768, 61439, 61440, 61441, 61500, 65536, 80000):
            base = len(Case("", "", tuple((as_bytes(n), as_bytes(v)) for n, v in start + [(name, "")])).head())
            yield f"{label}-head-{size}", start + [(name, make(size - base))]
    # Many 1 KiB tracestate headers: joined, far over 32 members.
    for size in (32768, 61440, 61441):
        headers = [("traceparent", tp())]
        base = len(Case("", "", tuple((as_bytes(n), as_bytes(v)) for n, v in headers)).head())
        line = len(b"tracestate: \r\n")
        n, rest = divmod(size - base, 1024 + line)
        headers += [("tracestate", f"k{i}=" + "v" * (1024 - len(f"k{i}="))) for i in range(n)]
        headers.append(("tracestate", "z=" + "v" * max(1, rest - line - 2)))
        yield f"tracestate-1k-headers-head-{size}", headers


def raw_framing():
    """Heads http.client cannot send. Measured: folds are joined, bare line feeds end lines,
    anything that is not `token ":" value` is a 400."""
    start = b"GET / HTTP/1.1\r\nhost: " + HOST + b"\r\n"
    valid = tp().encode()
    heads = {
        "folded-traceparent": start + b"traceparent: " + valid[:36] + b"\r\n " + valid[36:] + b"\r\n\r\n",
        "folded-tracestate": start + b"traceparent: " + valid + b"\r\ntracestate: a=1,\r\n b=2\r\n\r\n",
        "folded-tab-b3": start + f"b3: {T}-{S}\r\n\t-1\r\n\r\n".encode(),
        "folded-empty-first-line": start + b"traceparent:\r\n " + valid + b"\r\n\r\n",
        "lf-line-endings": b"GET / HTTP/1.1\nhost: x\ntraceparent: " + valid + b"\ntracestate: a=1\n\n",
        "mixed-line-endings": start + b"traceparent: " + valid + b"\nb3: " + f"{X}-{XS}-1".encode() + b"\r\n\r\n",
        "space-before-colon": start + b"traceparent : " + valid + b"\r\n\r\n",
        "tab-before-colon": start + b"traceparent\t: " + valid + b"\r\n\r\n",
        "no-colon": start + b"traceparent " + valid + b"\r\n\r\n",
        "empty-name": start + b": " + valid + b"\r\n\r\n",
        "high-byte-in-name": start + b"tracepar\xe9nt: " + valid + b"\r\n\r\n",
        "nul-in-name": start + b"trace\x00parent: " + valid + b"\r\n\r\n",
        "fold-after-request-line": b"GET / HTTP/1.1\r\n traceparent: " + valid + b"\r\nhost: x\r\n\r\n",
        "bare-cr-between-fields": start + b"traceparent: " + valid + b"\rb3: 1\r\n\r\n",
        "colon-in-value": start + b"traceparent: " + valid + b":" + valid + b"\r\n\r\n",
        "no-space-after-colon": start + b"traceparent:" + valid + b"\r\n\r\n",
        "lf-splits-tracestate": start + b"traceparent: " + valid + b"\r\ntracestate: a=1\nb=2\r\n\r\n",
        "lf-splits-into-b3": start + b"x-note: a\nb3: " + f"{X}-{XS}-1".encode() + b"\r\ntraceparent: " + valid + b"\r\n\r\n",
    }
    for label, raw in heads.items():
        yield make_case("raw-framing", label, raw=raw)
