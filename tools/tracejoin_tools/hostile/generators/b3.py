"""B3: single-header values, and every subset of the x-b3-* headers."""

from tracejoin_tools.common import B3_MULTI_HEADERS, P, S, T
from tracejoin_tools.common import traceparent as tp


def b3_single():
    for value in ("0", "1", "d", "D", "2", "x", "t", "true", "false", "01", "00", "10", "-", "0-", "-0", " 1 ", "\t1", "dd", "1d", "", "0x1"):
        yield f"sampling-only-{value.encode().hex() or 'empty'}", [("b3", value)]
    for trace, tlabel in ((T, "128"), (T[16:], "64")):
        for sampling in (None, "0", "1", "d", "D", "2", "true", "x", ""):
            value = f"{trace}-{S}" + ("" if sampling is None else f"-{sampling}")
            yield f"{tlabel}-sampling-{'none' if sampling is None else (sampling or 'empty')}", [("b3", value)]
        for plabel, parent in (("valid", P), ("zero", "0" * 16), ("short", P[:8]), ("upper", P.upper()), ("long", P + "a"), ("empty", "")):
            yield f"{tlabel}-parent-{plabel}", [("b3", f"{trace}-{S}-1-{parent}")]
    cases = {
        "upper-trace": f"{T.upper()}-{S}-1", "upper-span": f"{T}-{S.upper()}-1", "zero-trace": f"{'0' * 32}-{S}-1",
        "zero-span": f"{T}-{'0' * 16}-1", "zero-trace-64": f"{'0' * 16}-{S}-1", "trace-15": f"{T[:15]}-{S}-1",
        "trace-17": f"{T[:17]}-{S}-1", "trace-31": f"{T[:31]}-{S}-1", "trace-33": f"{T}a-{S}-1", "trace-48": f"{T}{S}-{S}-1",
        "trace-64": f"{T}{T}-{S}-1", "span-15": f"{T}-{S[:15]}-1", "span-17": f"{T}-{S}a-1", "non-hex": f"{T[:-1]}g-{S}-1",
        "extra-field": f"{T}-{S}-1-{P}-extra", "empty-sampling-with-parent": f"{T}-{S}--{P}", "no-span": f"{T}--1",
        "no-trace": f"-{S}-1", "trailing-dash": f"{T}-{S}-1-", "padded": f"  {T}-{S}-1  ", "space-inside": f"{T} -{S}-1",
        "underscores": f"{T}_{S}_1", "colons": f"{T}:{S}:1", "semicolon": f"{T}-{S}-1;", "traceparent-shaped": tp(),
        "garbage": "not-a-b3-value", "long": "a" * 2000, "unicode": f"{T}-{S}-\xb9",
    }
    for label, value in cases.items():
        yield label, [("b3", value)]


def b3_multi_partial():
    variants = {"128": (T, S, P, "1", "1"), "64": (T[16:], S, P, "1", "1"), "unsampled": (T, S, P, "0", "0")}
    for label, values in variants.items():
        for mask in range(1, 32):
            headers = [(name, value) for bit, (name, value) in enumerate(zip(B3_MULTI_HEADERS, values, strict=True)) if mask & (1 << bit)]
            yield f"{label}-{'+'.join(n[5:] for n, _ in headers)}", headers
    for sampled in ("0", "1", "true", "false", "TRUE", "True", "yes", "2", "-1", "", " 1 ", "d"):
        yield f"sampled-{sampled.strip() or 'empty'}{'-padded' if sampled.startswith(' ') else ''}", [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", sampled)]
        yield f"sampled-only-{sampled.strip() or 'empty'}{'-padded' if sampled.startswith(' ') else ''}", [("x-b3-sampled", sampled)]
    for flags in ("0", "1", "2", "d", "true", "", "01"):
        yield f"flags-{flags or 'empty'}", [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-flags", flags)]
        yield f"flags-{flags or 'empty'}-with-sampled-0", [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "0"), ("x-b3-flags", flags)]
    bad = {
        "upper-trace": (T.upper(), S), "upper-span": (T, S.upper()), "zero-trace": ("0" * 32, S), "zero-span": (T, "0" * 16),
        "short-span": (T, S[:12]), "span-17": (T, S + "0"), "trace-24": (T[:24], S), "trace-33": (T + "0", S),
        "non-hex": ("x" * 32, S), "empty-trace": ("", S), "empty-span": (T, ""), "padded": (f" {T} ", f"\t{S}\t"),
    }
    for label, (trace, span) in bad.items():
        yield f"bad-{label}", [("x-b3-traceid", trace), ("x-b3-spanid", span), ("x-b3-sampled", "1")]
    yield "bad-parent-zero", [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-parentspanid", "0" * 16)]
    yield "bad-parent-upper", [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-parentspanid", P.upper())]
    yield "parent-equals-span", [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-parentspanid", S), ("x-b3-sampled", "1")]
