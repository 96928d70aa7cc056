"""traceparent: malformed values, versions, every flags byte."""

from tracejoin_tools.common import TRACESTATE, XS, S, T, X
from tracejoin_tools.common import traceparent as tp


def traceparent_malformed():
    cases = {
        "uppercase-trace": tp(trace=T.upper()), "uppercase-span": tp(span=S.upper()), "uppercase-all": tp().upper(),
        "zero-trace": tp(trace="0" * 32), "zero-span": tp(span="0" * 16), "zero-both": tp(trace="0" * 32, span="0" * 16),
        "trace-31": tp(trace=T[:31]), "trace-33": tp(trace=T + "a"), "trace-30": tp(trace=T[:30]), "trace-64": tp(trace=T + T),
        "span-15": tp(span=S[:15]), "span-17": tp(span=S + "a"), "span-8": tp(span=S[:8]), "flags-1": tp(flags="1"),
        "flags-3": tp(flags="001"), "version-1": tp(version="0"), "version-3": tp(version="000"), "trace-16": tp(trace=T[16:]),
        "non-hex-trace": tp(trace="g" + T[1:]), "non-hex-span": tp(span=S[:-1] + "z"), "non-hex-flags": tp(flags="0x"),
        "underscores": tp().replace("-", "_"), "no-dashes": tp().replace("-", ""), "extra-dash": tp().replace("-", "--", 1),
        "trailing-dash": tp() + "-", "leading-dash": "-" + tp(), "spaces-inside": tp().replace("-", " - "),
        "padded": "  " + tp() + "  ", "tab-padded": "\t" + tp() + "\t", "empty": "", "just-version": "00",
        "dashes-only": "---", "garbage-1000": "x" * 1000, "hex-1000": "a" * 1000, "swapped-ids": f"00-{S}-{T}-01",
        "b3-shaped": f"{T}-{S}-1", "jaeger-shaped": f"{T}:{S}:0:1", "v00-suffix": tp() + "-extra",
        "v00-suffix-dash": tp() + "-", "plus-sign": tp(flags="+1"), "minus-flags": tp(flags="-1"),
        "unicode-digit": tp(trace=T[:-1] + "\xd9"), "null-word": "null", "comma-list": tp() + "," + tp(trace=X),
        "semicolon": tp() + ";", "quoted": '"' + tp() + '"',
    }
    for label, value in cases.items():
        yield label, [("traceparent", value)]
    yield "valid-with-invalid-b3", [("traceparent", tp()), ("b3", "garbage")]
    yield "invalid-with-valid-b3", [("traceparent", tp(trace="0" * 32)), ("b3", f"{X}-{XS}-1")]


def traceparent_version():
    versions = ("00", "01", "02", "09", "0a", "10", "7f", "80", "cc", "fe", "ff", "FF", "0A", "0g", "g0", "zz")
    suffixes = {"": "", "dash": "-", "field": "-00", "word": "-abc", "long": "-" + "x" * 100, "no-dash": "abc", "digit": "0"}
    for i, version in enumerate(versions):
        for label, suffix in suffixes.items():
            headers = [("traceparent", tp(version=version) + suffix)]
            if i % 2:
                headers.append(("tracestate", TRACESTATE))
            yield f"{version}{'-' + label if label else ''}", headers


def traceparent_flags():
    for flags in range(256):
        yield f"{flags:02x}", [("traceparent", tp(flags=f"{flags:02x}"))]
    for flags in (0x0A, 0x0B, 0x0F, 0x1F, 0x3C, 0x7E, 0x80, 0xA1, 0xCD, 0xFF):
        yield f"upper-{flags:02X}", [("traceparent", tp(flags=f"{flags:02X}"))]
    for flags in ("0g", "g0", "zz", "--", "0 ", " 1", "1", "001", "0x1", "\xff\xff"):
        yield f"bad-{flags.encode('latin-1').hex()}", [("traceparent", tp(flags=flags))]
