"""Jaeger's uber-trace-id: valid, shortened, url-encoded and malformed values."""

from tracejoin_tools.common import P, S, T


def jaeger():
    cases = {
        "valid-128": f"{T}:{S}:0:1", "valid-64": f"{T[16:]}:{S}:0:1", "shortened": "1:1:0:1", "shortened-hex": "abc:def:0:1",
        "with-parent": f"{T}:{S}:{P}:1", "url-encoded": f"{T}%3A{S}%3A0%3A1", "url-encoded-lower": f"{T}%3a{S}%3a0%3a1",
        "url-encoded-mixed": f"{T}%3A{S}:0%3a1", "flags-0": f"{T}:{S}:0:0", "flags-2": f"{T}:{S}:0:2", "flags-3": f"{T}:{S}:0:3",
        "flags-ff": f"{T}:{S}:0:ff", "flags-7": f"{T}:{S}:0:7", "flags-01": f"{T}:{S}:0:01", "upper": f"{T.upper()}:{S.upper()}:0:1",
        "mixed-case": f"{T[:16].upper()}{T[16:]}:{S}:0:1", "zero-trace": f"0:{S}:0:1", "zero-span": f"{T}:0:0:1",
        "zero-both": "0:0:0:1", "zero-parent-long": f"{T}:{S}:{'0' * 16}:1", "trace-33": f"{T}a:{S}:0:1",
        "span-17": f"{T}:{S}a:0:1", "parent-17": f"{T}:{S}:{P}a:1", "flags-3-digits": f"{T}:{S}:0:001", "flags-x": f"{T}:{S}:0:x",
        "three-fields": f"{T}:{S}:1", "five-fields": f"{T}:{S}:0:1:0", "empty-fields": ":::", "empty-trace": f":{S}:0:1",
        "empty-span": f"{T}::0:1", "empty-parent": f"{T}:{S}::1", "empty-flags": f"{T}:{S}:0:", "padded": f"  {T}:{S}:0:1  ",
        "space-inside": f"{T} :{S}:0:1", "dangling-percent": f"{T}%3{S}:0:1", "percent-3b": f"{T}%3B{S}%3B0%3B1",
        "double-percent": f"{T}%%3A{S}:0:1", "trailing-colon": f"{T}:{S}:0:1:", "colon-only": ":", "empty": "",
        "long": "f" * 1000 + f":{S}:0:1", "dashes": f"{T}-{S}-0-1", "negative": f"-1:{S}:0:1", "plus": f"+1:{S}:0:1",
        "unicode": f"{T}:{S}:0:\xb9",
    }
    for label, value in cases.items():
        yield label, [("uber-trace-id", value)]
    yield "with-baggage-headers", [("uber-trace-id", f"{T}:{S}:0:1"), ("uberctx-user", "alice"), ("jaeger-debug-id", "x")]
