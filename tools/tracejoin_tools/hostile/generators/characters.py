"""Bytes in values: every control character, and obs-text (bytes 0x80-0xFF, UTF-8)."""

from tracejoin_tools.common import BAGGAGE, TRACESTATE, S, T
from tracejoin_tools.common import traceparent as tp
from tracejoin_tools.hostile.cases import as_bytes

CONTROL_TARGETS = {
    "traceparent": [("traceparent", tp())],
    "tracestate": [("traceparent", tp()), ("tracestate", TRACESTATE)],
    "b3": [("b3", f"{T}-{S}-1")],
    "x-b3-traceid": [("x-b3-traceid", T), ("x-b3-spanid", S)],
    "uber-trace-id": [("uber-trace-id", f"{T}:{S}:0:1")],
    "baggage": [("traceparent", tp()), ("baggage", BAGGAGE)],
}


def insert_byte(headers, target, byte, at=None):
    out = []
    for name, value in headers:
        if name == target:
            value = as_bytes(value)
            i = len(value) // 2 if at is None else at
            value = value[:i] + bytes([byte]) + value[i:]
        out.append((name, value))
    return out


def control_chars():
    for target, headers in CONTROL_TARGETS.items():
        for byte in list(range(0x20)) + [0x7F]:
            yield f"{target}-{byte:02x}", insert_byte(headers, target, byte)
        yield f"{target}-leading-tab", insert_byte(headers, target, 0x09, at=0)
        yield f"{target}-cr-at-end", insert_byte(headers, target, 0x0D, at=len(dict(headers)[target]))


def obs_text():
    for byte in range(0x80, 0x100):
        yield f"traceparent-{byte:02x}", insert_byte(CONTROL_TARGETS["traceparent"], "traceparent", byte)
    for target in ("tracestate", "b3", "x-b3-traceid", "uber-trace-id", "baggage"):
        for byte in range(0x80, 0x100, 8):
            yield f"{target}-{byte:02x}", insert_byte(CONTROL_TARGETS[target], target, byte)
    for label, seq in {"utf8-e-acute": "\xc3\xa9", "utf8-euro": "\xe2\x82\xac", "utf8-emoji": "\xf0\x9f\x98\x80",
                       "bom": "\xef\xbb\xbf", "overlong-slash": "\xc0\xaf", "lone-continuation": "\x80"}.items():
        yield f"traceparent-prefix-{label}", [("traceparent", seq + tp())]
        yield f"tracestate-value-{label}", [("traceparent", tp()), ("tracestate", f"a={seq},b=1")]
        yield f"b3-suffix-{label}", [("b3", f"{T}-{S}-1{seq}")]
