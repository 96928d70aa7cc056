"""Datadog's x-datadog-*, AWS X-Ray's X-Amzn-Trace-Id and OpenTracing's ot-tracer-*:
valid values, what each carries besides ids, and malformed ones."""

from tracejoin_tools.common import S, T, X, datadog_ids
from tracejoin_tools.common import xray as amzn

LOW, SPAN, TAGS = datadog_ids()


def datadog():
    def dd(trace=LOW, span=SPAN, priority="1", origin=None, tags=TAGS):
        values = (("x-datadog-trace-id", trace), ("x-datadog-parent-id", span), ("x-datadog-sampling-priority", priority),
                  ("x-datadog-origin", origin), ("x-datadog-tags", tags))
        return [(k, v) for k, v in values if v is not None]

    cases = {
        "valid-128": dd(), "valid-64": dd(tags=None), "no-priority": dd(priority=None),
        "with-origin": dd(origin="synthetics"), "other-tags": dd(tags=f"_dd.p.dm=-4,{TAGS},_dd.p.usr.id=baz64"),
        "empty-tags": dd(tags=""), "padded": dd(trace=f" {LOW} ", span=f"\t{SPAN}"), "leading-zeros": dd(trace="000" + LOW),
        "max-uint64": dd(trace=str(2**64 - 1), tags=None), "over-uint64": dd(trace=str(2**64), tags=None),
        "zero-trace": dd(trace="0"), "zero-span": dd(span="0"), "negative": dd(trace="-" + LOW), "plus": dd(trace="+" + LOW),
        "hex-trace": dd(trace=T[16:]), "float": dd(trace="1.5"), "space-inside": dd(trace="12 34"), "empty-trace": dd(trace=""),
        "no-parent": dd(span=None), "parent-alone": dd(trace=None, tags=None), "origin-alone": [("x-datadog-origin", "rum")],
        "tags-alone": [("x-datadog-tags", TAGS)], "priority-alone": [("x-datadog-sampling-priority", "2")],
        **{f"priority-{p}": dd(priority=p) for p in ("-1", "0", "2", "3", "-2", "true", "", "01")},
        "tid-upper": dd(tags=TAGS.upper().replace("_DD.P.TID", "_dd.p.tid")), "tid-short": dd(tags="_dd.p.tid=4bf92f35"),
        "tid-zero": dd(tags="_dd.p.tid=" + "0" * 16), "tid-twice": dd(tags=f"{TAGS},_dd.p.tid={X[:16]}"),
        "tags-no-equals": dd(tags="_dd.p.dm"), "tags-empty-member": dd(tags=f"{TAGS},,"), "tags-space-key": dd(tags="a b=1"),
        "tags-513": dd(tags=f"_dd.p.x={'a' * 506}"), "tags-control": dd(tags="_dd.p.x=a\x01b"), "origin-control": dd(origin="syn\x7fthetics"),
        "origin-unicode": dd(origin="synth\xe9tics"), "long-trace": dd(trace="9" * 1000),
    }
    yield from cases.items()


def xray():
    valid = amzn()
    cases = {
        "valid": valid, "not-sampled": amzn(sampled="0"), "deferred": amzn(sampled="?"), "no-sampled": valid.rsplit(";", 1)[0],
        "reordered": f"Sampled=1;Parent={S};Root=1-{T[:8]}-{T[8:]}", "spaces": " Root = 1-" + f"{T[:8]}-{T[8:]} ; Parent = {S} ; Sampled = 1 ",
        "with-self": f"Self=1-67891234-12456789abcdef012345678;{valid}", "with-lineage": f"{valid};Lineage=a87bd80c:1|68fd508a:5",
        "many-fields": valid + "".join(f";F{i}={'v' * 20}" for i in range(10)), "root-alone": f"Root=1-{T[:8]}-{T[8:]}",
        "alb-root-self": f"Self=1-67891234-12456789abcdef012345678;Root=1-{T[:8]}-{T[8:]}", "parent-alone": f"Parent={S};Sampled=1",
        "version-2": valid.replace("Root=1-", "Root=2-"), "root-upper": valid.replace(T[:8], T[:8].upper()), "root-short": valid.replace(T[8:], T[9:]),
        "root-no-dash": valid.replace(f"{T[:8]}-", T[:8]), "root-zero": amzn(trace="0" * 32), "parent-zero": amzn(span="0" * 16),
        "parent-17": valid.replace(S, S + "a"), "parent-upper": valid.replace(S, S.upper()), "sampled-2": amzn(sampled="2"),
        "sampled-11": amzn(sampled="11"), "sampled-empty": amzn(sampled=""), "trailing-semicolon": valid + ";", "empty-field": valid.replace(";", ";;", 1),
        "no-equals": valid + ";Foo", "lowercase-keys": valid.lower(), "root-twice": f"{valid};Root=1-{X[:8]}-{X[8:]}",
        "control": valid + ";Foo=B\x01r", "unicode": valid + ";Foo=\xe9", "empty": "", "garbage": "not-an-x-ray-header",
        "long": valid + ";Foo=" + "x" * 4000,
    }
    for label, value in cases.items():
        yield label, [("x-amzn-trace-id", value)]


def ottrace():
    def ot(trace=T, span=S, sampled="true"):
        values = (("ot-tracer-traceid", trace), ("ot-tracer-spanid", span), ("ot-tracer-sampled", sampled))
        return [(k, v) for k, v in values if v is not None]

    cases = {
        "valid-128": ot(), "valid-64": ot(trace=T[16:]), "sampled-1": ot(sampled="1"), "sampled-0": ot(sampled="0"),
        "sampled-false": ot(sampled="false"), "sampled-upper": ot(sampled="TRUE"), "no-sampled": ot(sampled=None),
        "sampled-yes": ot(sampled="yes"), "sampled-empty": ot(sampled=""), "sampled-alone": ot(trace=None, span=None),
        "trace-alone": ot(span=None), "span-alone": ot(trace=None), "trace-upper": ot(trace=T.upper()), "trace-15": ot(trace=T[:15]),
        "trace-31": ot(trace=T[:31]), "trace-33": ot(trace=T + "a"), "span-15": ot(span=S[:15]), "zero-trace": ot(trace="0" * 32),
        "zero-span": ot(span="0" * 16), "padded": ot(trace=f" {T} "), "non-hex": ot(trace=T[:-1] + "g"),
        "with-baggage": ot() + [("ot-baggage-user", "alice"), ("ot-baggage-k", "v")],
    }
    yield from cases.items()
