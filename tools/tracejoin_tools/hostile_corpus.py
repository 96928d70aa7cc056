"""Hostile input for tracejoin through a real Envoy.

A deterministic corpus (fixed seed) of malformed and adversarial trace-header sets, each with
a category, the client that sends them byte for byte over kept-alive connections, the checks
every answer must pass, and a CLI that runs the corpus through Envoys with tracejoin and
prints a summary per category:

    python -m tracejoin_tools.hostile_corpus --wasm tracejoin.wasm

Envoy 1.40's HTTP/1 codec (Balsa) answers some requests itself before any filter runs,
measured: 400 for a control character in a header value (C0 but horizontal tab and carriage
return, or DEL) or a name that is not a token; 431 for more than 100 header fields (host
included, `max_headers_count`) or a request head (request line, header lines and the blank
line) over 60 KiB (`max_request_headers_kb`). A bare carriage return in a value is dropped,
optional whitespace around a value is trimmed and an obs-fold continuation is joined with one
space before the filter sees the value. Every case states what the codec is expected to
answer (`Case.expect`, None when the request is forwarded); the checks compare.
"""

import argparse
import json
import random
import re
import socket
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from tracejoin_tools.common import BAGGAGE, LOOPBACK, TRACESTATE, XS, YS, ZS, P, S, T, X, Y, Z
from tracejoin_tools.common import B3_MULTI_HEADERS as B3_MULTI
from tracejoin_tools.common import traceparent as tp
from tracejoin_tools.envoy import echo_server
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.trace_headers import (
    assert_tracestate_well_formed,
    assert_well_formed,
    control_characters,
    disagreements,
    header_values,
    read_all,
)

SEED = 20261125
PATH = b"/"
HOST = b"tracejoin.test"
MAX_HEAD_BYTES = 60 * 1024
MAX_HEADERS = 100
# Header-value bytes Envoy's codec refuses with 400.
REJECTED_VALUE_BYTES = frozenset(set(range(0x00, 0x20)) - {0x09, 0x0D} | {0x7F})
TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

def _bytes(v):
    return v if isinstance(v, bytes) else v.encode("latin-1")


@dataclass(frozen=True)
class Case:
    """One request: header lines after `host`, or (`raw`) a whole request head that cannot be
    said as name/value pairs. `expect` is the status Envoy's codec answers with, None when
    the request reaches the upstream."""

    category: str
    name: str
    headers: tuple = ()
    raw: bytes = None
    expect: int = None

    def head(self):
        if self.raw is not None:
            return self.raw
        lines = b"".join(n + b": " + v + b"\r\n" for n, v in self.headers)
        return b"GET " + PATH + b" HTTP/1.1\r\nhost: " + HOST + b"\r\n" + lines + b"\r\n"

    def seen(self):
        """The headers (host aside) as Envoy's codec hands them on, for a forwarded case:
        lowercase names, folds joined, bare carriage returns dropped, whitespace trimmed."""
        return [
            (n.lower().decode("latin-1"), v.replace(b"\r", b"").strip(b" \t").decode("latin-1"))
            for n, v in header_fields(self.head())
            if n.lower() != b"host"
        ]


def header_fields(head):
    """The header fields of a request head as Envoy's HTTP/1 codec splits them (a line feed
    ends a line, an optional carriage return before it is dropped, a line starting with
    whitespace continues the previous field), or None when a line is not a field."""
    fields = []
    for line in head.split(b"\n")[1:]:
        line = line[:-1] if line.endswith(b"\r") else line
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if not fields:
                return None
            name, value = fields[-1]
            fields[-1] = (name, value.rstrip(b" \t") + b" " + line.strip(b" \t"))
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            return None
        fields.append((name, value.strip(b" \t")))
    return fields


def codec_verdict(head):
    """What Envoy 1.40's HTTP/1 codec answers for this request head (None: forwarded)."""
    fields = header_fields(head)
    if fields is None:
        return 400
    for name, value in fields:
        if not name or any(b not in TOKEN for b in name) or any(b in REJECTED_VALUE_BYTES for b in value):
            return 400
    if len(fields) > MAX_HEADERS or len(head) > MAX_HEAD_BYTES:
        return 431
    return None


def _case(category, name, headers=(), raw=None):
    headers = tuple((_bytes(n), _bytes(v)) for n, v in headers)
    for _, value in headers:
        # A line feed at the end of a value (or before a carriage return) would end the head
        # early: the rest would be read as a second request on the connection.
        for at in (i for i, b in enumerate(value) if b == 0x0A):
            assert 0 < at < len(value) - 1 and value[at + 1] not in b"\r\n", (name, value)
    case = Case(category, name, headers, raw)
    return Case(category, name, headers, raw, codec_verdict(case.head()))


# --- generators, one per category -------------------------------------------------------


def tracestate_members():
    for n in (0, 1, 2, 8, 16, 31, 32, 33, 34, 40, 64, 100, 256, 512):
        simple = ",".join(f"k{i}=v{i}" for i in range(n))
        tenant = ",".join(f"t{i}@sys=v{i}" for i in range(n))
        mixed = ",".join((f"k{i}=v{i}" if i % 2 else f"{i}t@vendor{i % 7}=opaque{i}") for i in range(n))
        for style, value in (("simple", simple), ("tenant", tenant), ("mixed", mixed)):
            yield f"{n}-members-{style}", [("traceparent", tp()), ("tracestate", value)]
    yield "only-commas", [("traceparent", tp()), ("tracestate", ",,,,")]
    yield "empty-members", [("traceparent", tp()), ("tracestate", "a=1,,b=2,")]
    yield "padded-members", [("traceparent", tp()), ("tracestate", " a=1 ,\tb=2\t, c=3")]
    yield "32-members-with-empties", [("traceparent", tp()), ("tracestate", ",".join(f"k{i}=v" for i in range(32)) + ",,,")]
    yield "without-traceparent", [("tracestate", TRACESTATE)]
    yield "with-invalid-traceparent", [("traceparent", tp(trace=T.upper())), ("tracestate", TRACESTATE)]
    yield "with-b3-only", [("b3", f"{T}-{S}-1"), ("tracestate", TRACESTATE)]


def _tracestate_of_length(total, member_len, long_at=None):
    """Members `kNN=vvvv` of `member_len` characters joined to exactly `total` characters (the
    last member absorbs the rest); with `long_at`, the member there is 200 characters."""
    members, length, i = [], 0, 0
    while True:
        size = 200 if i == long_at else member_len
        key = f"k{i}="
        remaining = total - length - (1 if members else 0)
        if remaining <= size + member_len // 2 + 1 and i != long_at:
            members.append(key + "v" * max(1, remaining - len(key)))
            break
        members.append(key + "v" * (size - len(key)))
        length += size + (1 if len(members) > 1 else 0)
        i += 1
    return ",".join(members)


def tracestate_oversized():
    for total in (256, 511, 512, 513, 600, 1024, 2048, 4096, 8192, 16384, 32768, 60000):
        for member_len in (16, 64, 130, 260):
            yield f"{total}-chars-members-of-{member_len}", [("traceparent", tp()), ("tracestate", _tracestate_of_length(total, member_len))]
        if total >= 512:
            yield f"{total}-chars-long-member-first", [("traceparent", tp()), ("tracestate", _tracestate_of_length(total, 40, long_at=0))]
            yield f"{total}-chars-long-member-fourth", [("traceparent", tp()), ("tracestate", _tracestate_of_length(total, 40, long_at=3))]
    yield "value-256", [("traceparent", tp()), ("tracestate", "a=" + "v" * 256)]
    yield "value-257", [("traceparent", tp()), ("tracestate", "a=" + "v" * 257)]
    yield "key-256", [("traceparent", tp()), ("tracestate", "k" * 256 + "=v")]
    yield "key-257", [("traceparent", tp()), ("tracestate", "k" * 257 + "=v")]
    yield "32-members-of-256", [("traceparent", tp()), ("tracestate", ",".join(f"k{i:02d}=" + "v" * 256 for i in range(32)))]
    yield "one-member-over-512", [("traceparent", tp()), ("tracestate", "a=" + "v" * 256 + ",b=" + "v" * 256 + ",c=" + "v" * 10)]


def tracestate_duplicate_keys():
    yield "adjacent", [("traceparent", tp()), ("tracestate", "a=1,a=2")]
    yield "same-value", [("traceparent", tp()), ("tracestate", "a=1,a=1")]
    yield "apart", [("traceparent", tp()), ("tracestate", "a=1,b=2,c=3,a=4")]
    yield "first-and-32nd", [("traceparent", tp()), ("tracestate", ",".join(["dup=0"] + [f"k{i}=v" for i in range(30)] + ["dup=1"]))]
    yield "tenant", [("traceparent", tp()), ("tracestate", "t@s=1,t@s=2")]
    yield "tenant-vs-simple", [("traceparent", tp()), ("tracestate", "t@s=1,t=2,s=3")]
    yield "prefix-not-duplicate", [("traceparent", tp()), ("tracestate", "ab=1,a=2,abc=3")]
    yield "padded", [("traceparent", tp()), ("tracestate", " a=1 , a=2 ")]
    yield "across-headers", [("traceparent", tp()), ("tracestate", "a=1"), ("tracestate", "a=2")]
    yield "across-many-headers", [("traceparent", tp())] + [("tracestate", f"k{i % 3}=v{i}") for i in range(6)]
    yield "case-variant", [("traceparent", tp()), ("tracestate", "a=1,A=2")]
    yield "restart-key", [("traceparent", tp()), ("tracestate", "tracejoin=1,tracejoin=2")]


def tracestate_invalid():
    keys = {
        "uppercase": "A", "digit-first": "1a", "dot": "a.b", "space": "a b", "empty": "", "tenant-empty-system": "a@",
        "empty-tenant": "@b", "uppercase-system": "a@B", "two-ats": "a@b@c", "tenant-241": "t" * 241 + "@s",
        "tenant-242": "t" * 242 + "@s", "system-14": "t@" + "s" * 14, "system-15": "t@" + "s" * 15, "bang": "a!",
        "colon": "a:b", "percent": "a%20", "unicode": "caf\xe9",
    }
    for label, key in keys.items():
        yield f"key-{label}", [("traceparent", tp()), ("tracestate", f"{key}=1,ok=2")]
    values = {
        "empty": "", "space": " ", "trailing-space": "1 ", "equals": "a=b", "semicolon-list": "1;b=2",
        "tab": "1\t2", "obs-text": "caf\xe9", "unicode-bytes": "\xe2\x82\xac", "quote": '"x"', "only-space-inside": "a  b",
    }
    for label, value in values.items():
        yield f"value-{label}", [("traceparent", tp()), ("tracestate", f"a={value},ok=2")]
    for label, ts in {
        "no-equals": "a", "no-equals-among-valid": "a=1,b,c=3", "only-equals": "=", "double-equals": "a==1",
        "whitespace-only": "   ", "json": '{"a":1}', "url": "https://example.com/?a=1", "garbage": "%%%%",
    }.items():
        yield f"member-{label}", [("traceparent", tp()), ("tracestate", ts)]


def tracestate_repeated():
    for n in (2, 3, 7, 8, 9, 12, 40):
        yield f"{n}-headers", [("traceparent", tp())] + [("tracestate", f"k{i}=v{i}") for i in range(n)]
    yield "17-plus-17-members", [("traceparent", tp()), ("tracestate", ",".join(f"a{i}=v" for i in range(17))), ("tracestate", ",".join(f"b{i}=v" for i in range(17)))]
    yield "empty-headers", [("traceparent", tp()), ("tracestate", ""), ("tracestate", "a=1"), ("tracestate", "")]
    yield "invalid-second", [("traceparent", tp()), ("tracestate", "a=1"), ("tracestate", "B=2")]
    yield "before-traceparent", [("tracestate", "a=1"), ("traceparent", tp()), ("tracestate", "b=2")]
    yield "two-over-512", [("traceparent", tp()), ("tracestate", "a=" + "v" * 256), ("tracestate", "b=" + "v" * 256)]


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
            headers = [(name, value) for bit, (name, value) in enumerate(zip(B3_MULTI, values)) if mask & (1 << bit)]
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


def repeated_headers():
    valid = {
        "traceparent": (tp(), tp(trace=X, span=XS)), "tracestate": ("a=1", "b=2"), "b3": (f"{T}-{S}-1", f"{X}-{XS}-1"),
        "x-b3-traceid": (T, X), "x-b3-spanid": (S, XS), "x-b3-parentspanid": (P, S), "x-b3-sampled": ("1", "0"),
        "x-b3-flags": ("1", "1"), "uber-trace-id": (f"{T}:{S}:0:1", f"{X}:{XS}:0:1"),
    }
    base = {"x-b3-traceid": [("x-b3-spanid", S)], "x-b3-spanid": [("x-b3-traceid", T)], "x-b3-parentspanid": [("x-b3-traceid", T), ("x-b3-spanid", S)],
            "x-b3-sampled": [("x-b3-traceid", T), ("x-b3-spanid", S)], "x-b3-flags": [("x-b3-traceid", T), ("x-b3-spanid", S)],
            "tracestate": [("traceparent", tp())]}
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
}
INVALID = {
    "tp": [("traceparent", tp(trace=T.upper()))],
    "b3": [("b3", f"{T}-{S}-x")],
    "multi": [("x-b3-traceid", T), ("x-b3-sampled", "1")],
    "jaeger": [("uber-trace-id", "zz:1:0:1")],
}


def mixed_disagree():
    names = list(FORMATS)
    traces = [(T, S), (X, XS), (Y, YS), (Z, ZS)]
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


CONTROL_TARGETS = {
    "traceparent": [("traceparent", tp())],
    "tracestate": [("traceparent", tp()), ("tracestate", TRACESTATE)],
    "b3": [("b3", f"{T}-{S}-1")],
    "x-b3-traceid": [("x-b3-traceid", T), ("x-b3-spanid", S)],
    "uber-trace-id": [("uber-trace-id", f"{T}:{S}:0:1")],
    "baggage": [("traceparent", tp()), ("baggage", BAGGAGE)],
}


def _insert(headers, target, byte, at=None):
    out = []
    for name, value in headers:
        if name == target:
            value = _bytes(value)
            i = len(value) // 2 if at is None else at
            value = value[:i] + bytes([byte]) + value[i:]
        out.append((name, value))
    return out


def control_chars():
    for target, headers in CONTROL_TARGETS.items():
        for byte in list(range(0x20)) + [0x7F]:
            yield f"{target}-{byte:02x}", _insert(headers, target, byte)
        yield f"{target}-leading-tab", _insert(headers, target, 0x09, at=0)
        yield f"{target}-cr-at-end", _insert(headers, target, 0x0D, at=len(dict(headers)[target]))


def obs_text():
    for byte in range(0x80, 0x100):
        yield f"traceparent-{byte:02x}", _insert(CONTROL_TARGETS["traceparent"], "traceparent", byte)
    for target in ("tracestate", "b3", "x-b3-traceid", "uber-trace-id", "baggage"):
        for byte in range(0x80, 0x100, 8):
            yield f"{target}-{byte:02x}", _insert(CONTROL_TARGETS[target], target, byte)
    for label, seq in {"utf8-e-acute": "\xc3\xa9", "utf8-euro": "\xe2\x82\xac", "utf8-emoji": "\xf0\x9f\x98\x80",
                       "bom": "\xef\xbb\xbf", "overlong-slash": "\xc0\xaf", "lone-continuation": "\x80"}.items():
        yield f"traceparent-prefix-{label}", [("traceparent", seq + tp())]
        yield f"tracestate-value-{label}", [("traceparent", tp()), ("tracestate", f"a={seq},b=1")]
        yield f"b3-suffix-{label}", [("b3", f"{T}-{S}-1{seq}")]


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


def _fill(headers, total, filler):
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
            yield f"{label}-{total}", _fill(start, total, filler)


def header_size():
    carriers = {
        "tracestate": ([("traceparent", tp())], "tracestate", lambda n: _tracestate_of_length(n, 250)),
        "filler": ([("traceparent", tp())], "x-filler", lambda n: "f" * n),
        "baggage": ([("traceparent", tp())], "baggage", lambda n: "k=" + "v" * (n - 2)),
        "b3": ([], "b3", lambda n: (f"{T}-{S}-1-" * (n // 36 + 1))[:n]),
        "traceparent": ([], "traceparent", lambda n: (tp() + "-") * (n // 56) + "x" * (n % 56)),
        "uber-trace-id": ([], "uber-trace-id", lambda n: "f" * n),
    }
    for label, (start, name, make) in carriers.items():
        for size in (32768, 61439, 61440, 61441, 61500, 65536, 80000):
            base = len(Case("", "", tuple((_bytes(n), _bytes(v)) for n, v in start + [(name, "")])).head())
            yield f"{label}-head-{size}", start + [(name, make(size - base))]
    # Many 1 KiB tracestate headers: joined, far over 32 members.
    for size in (32768, 61440, 61441):
        headers = [("traceparent", tp())]
        base = len(Case("", "", tuple((_bytes(n), _bytes(v)) for n, v in headers)).head())
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
        yield _case("raw-framing", label, raw=raw)


def baggage():
    yield "small", [("traceparent", tp()), ("baggage", BAGGAGE)]
    yield "alone", [("baggage", BAGGAGE)]
    yield "8k", [("traceparent", tp()), ("baggage", ",".join(f"k{i}=" + "v" * 60 for i in range(128)))]
    yield "invalid", [("traceparent", tp()), ("baggage", "=,;;==,\xff")]
    yield "repeated", [("traceparent", tp()), ("baggage", "a=1"), ("baggage", "b=2")]
    yield "with-b3-and-bad-traceparent", [("b3", f"{T}-{S}-1"), ("traceparent", "bad"), ("baggage", BAGGAGE)]
    yield "uppercase-name", [("traceparent", tp()), ("Baggage", BAGGAGE)]
    yield "with-all-formats", [h for n in FORMATS for h in FORMATS[n](T, S, True)] + [("baggage", BAGGAGE), ("tracestate", TRACESTATE)]


def _random_hex(rng, n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


MUTATION_BYTES = b"0123456789abcdefABCDEF-:%3A \tgxz_.,=;" + bytes([0x0D, 0x00, 0x01, 0x1F, 0x7F, 0x80, 0xC3, 0xFF])


def fuzz(rng, count=320):
    """Valid header sets with one to three random mutations each."""
    for i in range(count):
        trace = _random_hex(rng, rng.choice((16, 32)))
        span = _random_hex(rng, 16)
        chosen = rng.sample(list(FORMATS), rng.randint(1, 4))
        headers = []
        for name in chosen:
            t = trace if name != "tp" else trace.rjust(32, "0")
            if rng.random() < 0.3:
                t, span = _random_hex(rng, 32), _random_hex(rng, 16)
            headers += FORMATS[name](t, span, rng.random() < 0.7)
        if "tp" in chosen and rng.random() < 0.4:
            headers.append(("tracestate", ",".join(f"{_random_hex(rng, 3).replace('0', 'a')}=v{j}" for j in range(rng.randint(1, 40)))))
        headers = [(n, _bytes(v)) for n, v in headers]
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(headers))
            name, value = headers[k]
            op = rng.choice(("replace", "insert", "delete", "truncate", "duplicate-header", "drop-header", "swap-case", "repeat-value"))
            pos = rng.randrange(len(value) + 1)
            byte = bytes([rng.choice(MUTATION_BYTES)])
            if op == "replace" and value:
                value = value[: min(pos, len(value) - 1)] + byte + value[min(pos, len(value) - 1) + 1 :]
            elif op == "insert":
                value = value[:pos] + byte + value[pos:]
            elif op == "delete" and value:
                value = value[: min(pos, len(value) - 1)] + value[min(pos, len(value) - 1) + 1 :]
            elif op == "truncate":
                value = value[:pos]
            elif op == "swap-case":
                value = value.swapcase()
            elif op == "repeat-value":
                value = value + value
            headers[k] = (name, value)
            if op == "duplicate-header":
                headers.insert(rng.randrange(len(headers) + 1), headers[k])
            elif op == "drop-header" and len(headers) > 1:
                headers.pop(k)
        yield f"{i:03d}", headers


GENERATORS = {
    "tracestate-members": tracestate_members,
    "tracestate-oversized": tracestate_oversized,
    "tracestate-duplicate-keys": tracestate_duplicate_keys,
    "tracestate-invalid": tracestate_invalid,
    "tracestate-repeated": tracestate_repeated,
    "traceparent-malformed": traceparent_malformed,
    "traceparent-version": traceparent_version,
    "traceparent-flags": traceparent_flags,
    "b3-single": b3_single,
    "b3-multi-partial": b3_multi_partial,
    "jaeger": jaeger,
    "repeated-headers": repeated_headers,
    "mixed-disagree": mixed_disagree,
    "control-chars": control_chars,
    "obs-text": obs_text,
    "header-name-case": header_name_case,
    "header-count": header_count,
    "header-size": header_size,
    "raw-framing": raw_framing,
    "baggage": baggage,
    "fuzz": None,
}


def corpus(seed=SEED):
    """Every case, in a fixed order; the same seed gives the same bytes."""
    rng = random.Random(seed)
    cases = []
    for category, generate in GENERATORS.items():
        produced = fuzz(rng) if generate is None else generate()
        for item in produced:
            cases.append(item if isinstance(item, Case) else _case(category, *item))
    names = Counter((c.category, c.name) for c in cases)
    duplicates = [n for n, k in names.items() if k > 1]
    assert not duplicates, f"duplicate case names: {duplicates}"
    return cases


# --- sending ----------------------------------------------------------------------------


class Connection:
    """A kept-alive HTTP/1.1 client connection that sends a request head byte for byte
    (http.client refuses control bytes, folds and odd names) and reads one response. It
    reconnects after a response that closes the connection (Envoy's codec errors do)."""

    def __init__(self, port, timeout=10):
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.reader = None

    def close(self):
        if self.sock:
            self.reader.close()
            self.sock.close()
        self.sock = self.reader = None

    def request(self, head):
        """Sends one request; returns (status, [(name, value)] lowercase names, body)."""
        for attempt in (0, 1):
            reused = self.sock is not None
            if not reused:
                self.sock = socket.create_connection((LOOPBACK, self.port), timeout=self.timeout)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.reader = self.sock.makefile("rb")
            try:
                self.sock.sendall(head)
                status_line = self.reader.readline()
                if not status_line:
                    raise ConnectionResetError("closed before a response")
            except (ConnectionError, BrokenPipeError):
                self.close()
                if reused and attempt == 0:
                    continue  # a kept-alive connection the server had closed
                raise
            status = int(status_line.split()[1])
            headers = []
            while True:
                line = self.reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers.append((name.strip().lower(), value.strip()))
            fields = dict(headers)
            if "content-length" in fields:
                body = self.reader.read(int(fields["content-length"]))
            else:
                body = self.reader.read()
            if fields.get("connection", "").lower() == "close" or "content-length" not in fields:
                self.close()
            return status, headers, body
        raise AssertionError("unreachable")


@dataclass
class Result:
    case: Case
    status: int
    response_headers: list
    received: list  # the headers the echo upstream received, None when it was not reached

    @property
    def upstream_reached(self):
        return self.received is not None or any(k == "x-envoy-upstream-service-time" for k, _ in self.response_headers)


def send_all(port, cases):
    """Sends every case over one kept-alive connection (reopened after codec errors)."""
    conn = Connection(port)
    results = []
    try:
        for case in cases:
            status, headers, body = conn.request(case.head())
            received = None
            if status == 200:
                try:
                    received = json.loads(body)["headers"]
                except (ValueError, KeyError):
                    received = None
            results.append(Result(case, status, headers, [tuple(h) for h in received] if received is not None else None))
    finally:
        conn.close()
    return results


# --- checking ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    position: str
    tracer: str
    plugin_config: dict

    @property
    def writes_every_format(self):
        """tracejoin writes (or Envoy injects, then tracejoin copies) every format present:
        no tracer, or the upstream position."""
        return self.tracer == "none" or self.position == "upstream"


SCENARIOS = (
    # Every format written, so every renderer meets the corpus.
    Scenario("downstream-none", "downstream", "none",
             {"position": "downstream", "tracer": "none", "propagate": ["tracecontext", "b3", "b3multi", "jaeger"]}),
    Scenario("upstream-zipkin", "upstream", "zipkin", {"position": "upstream", "tracer": "zipkin"}),
    Scenario("downstream-opentelemetry", "downstream", "opentelemetry", {"position": "downstream", "tracer": "opentelemetry"}),
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
    return scenario.position == "downstream" and scenario.tracer == tracer


KNOWN = (
    Known(
        "envoy-otel-tracestate", "tracestate",
        "Downstream, Envoy's OpenTelemetry tracer writes back the tracestate it extracted, as it "
        "arrived (joined), after every listener filter (measured: also when a filter or the route "
        "removed it), so no listener filter can repair or drop it.",
        lambda sc, case, name, got: _downstream(sc, "opentelemetry") and not _tracestate_ok(got)
        and got == ",".join(v for n, v in case.seen() if n == name),
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
        problems += disagreements(got, readers=("b3", "jaeger"), spans=False)
        if strict_traceparent(case):
            if not (read_all(got)["b3"] or {}).get("trace"):
                problems.append("a valid traceparent arrived but no B3 context was written")
            problems += disagreements(got, readers=("w3c", "b3"), spans=False, sampling=False)
    return problems, [k for k, _ in hits]


# --- Envoy ------------------------------------------------------------------------------

# Envoy 1.40's wasm stats. With `failure_policy: FAIL_RELOAD` a VM that fails (a trap, a
# panic) is replaced on the next request: `wasm.<plugin>.vm_reload*` count that and
# `wasm.envoy.wasm.runtime.v8.created` one more VM. Under FAIL_CLOSED and FAIL_OPEN no wasm
# stat moves when the VM fails (measured with a module that traps): the failing request gets
# a 503 and Envoy logs `Function: proxy_on_request_headers failed: ...` at error level.
FAILURE_POLICY = "FAIL_RELOAD"
VM_CREATED = "wasm.envoy.wasm.runtime.v8.created"
VM_RELOAD = re.compile(r"^wasm\.[^.]+\.vm_reload")
LOG_PROBLEM = re.compile(r"panicked|\]\[critical\]|\]\[error\]\[wasm\]|Wasm VM failed|wasm_vm\.cc")


def render(scenario, upstream_port, wasm):
    listener = envoy_harness.render_listener(
        scenario.tracer, scenario.position, wasm, scenario.plugin_config, failure_policy=FAILURE_POLICY
    )
    return envoy_harness.render_bootstrap([listener], upstream_port)


def vm_failures(stats, created_at_start):
    """Signs in Envoy's stats that a wasm VM failed: {} when there are none."""
    signs = {name: value for name, value in stats.items() if VM_RELOAD.match(name) and value}
    if stats.get(VM_CREATED) != created_at_start:
        signs[VM_CREATED] = f"{created_at_start} -> {stats.get(VM_CREATED)}"
    return signs


def log_problems(log):
    """Lines of Envoy's log that tell of a failing plugin (a panic, a trap, a critical line)."""
    return [line for line in log.splitlines() if LOG_PROBLEM.search(line)]


STAT_NAMES = ("http.ingress.downstream_cx_protocol_error", "http.ingress.downstream_rq_5xx", "cluster.echo.upstream_rq_total")


def run_scenario(scenario, upstream_port, wasm, cases):
    """Runs every case through one Envoy (tracejoin with `failure_policy: FAIL_RELOAD`) over
    a kept-alive connection; returns the results, the deltas of STAT_NAMES, the signs of a
    failed VM in stats and log, tracejoin's counters, and whether Envoy was still running and
    what it answered a plain request at the end."""
    with envoy_harness.Envoy(render(scenario, upstream_port, wasm)) as envoy:
        before = envoy.stats()
        results = send_all(envoy.port, cases)
        after = envoy.stats()
        plain = Connection(envoy.port)
        try:
            final = plain.request(Case("", "plain").head())[0]
        finally:
            plain.close()
        alive = envoy.proc.poll() is None
        delta = {name: after.get(name, 0) - before.get(name, 0) for name in STAT_NAMES}
        counters = {k[len("wasmcustom.tracejoin."):]: v for k, v in after.items() if k.startswith("wasmcustom.tracejoin.")}
        return {
            "results": results,
            "delta": delta,
            "vm_failures": vm_failures(envoy.stats(), before.get(VM_CREATED)),
            "log_problems": log_problems(envoy.log()),
            "counters": counters,
            "final_status": final,
            "alive": alive,
        }


def summary(checked):
    """Rows per category from [(result, problems, known)]: sent, upstream reached, codec
    rejections by status, 5xx, answers with problems, answers with a known symptom."""
    rows = defaultdict(lambda: {"sent": 0, "reached": 0, "rejected": Counter(), "5xx": 0, "bad": 0, "known": 0})
    for result, problems, known in checked:
        row = rows[result.case.category]
        row["sent"] += 1
        row["reached"] += result.upstream_reached
        if 400 <= result.status < 500 and not result.upstream_reached:
            row["rejected"][result.status] += 1
        row["5xx"] += result.status >= 500
        row["bad"] += bool(problems)
        row["known"] += bool(known)
    return rows


def format_table(scenario, rows):
    lines = [f"== {scenario.name}: tracejoin {scenario.position}, tracer {scenario.tracer}",
             f"{'category':<27} {'sent':>5} {'reached':>8} {'codec rejected':<20} {'5xx':>4} {'malformed':>9} {'known':>5}"]
    total = {"sent": 0, "reached": 0, "rejected": Counter(), "5xx": 0, "bad": 0, "known": 0}
    for category in list(GENERATORS):
        row = rows.get(category)
        if not row:
            continue
        for key in total:
            total[key] += row[key]
        lines.append(_row(category, row))
    lines.append(_row("total", total))
    return "\n".join(lines)


def _row(label, row):
    rejected = ", ".join(f"{n}x{status}" for status, n in sorted(row["rejected"].items())) or "-"
    return f"{label:<27} {row['sent']:>5} {row['reached']:>8} {rejected:<20} {row['5xx']:>4} {row['bad']:>9} {row['known']:>5}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wasm", required=True, help="the tracejoin module")
    parser.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS], help="run only these (repeatable)")
    parser.add_argument("--show", type=int, default=5, help="problems to print per scenario")
    args = parser.parse_args(argv)
    cases = corpus()
    print(f"{len(cases)} header sets, seed {SEED}, Envoy {envoy_harness.envoy_version()}")
    server, upstream_port = echo_server.start()
    failed = False
    try:
        for scenario in SCENARIOS:
            if args.scenario and scenario.name not in args.scenario:
                continue
            run = run_scenario(scenario, upstream_port, str(Path(args.wasm).resolve()), cases)
            checked = [(r, *check(scenario, r)) for r in run["results"]]
            problems = [(r.case, p) for r, found, _ in checked for p in found]
            known = Counter(k.id for _, _, hits in checked for k in hits)
            print()
            print(format_table(scenario, summary(checked)))
            print(f"wasm VM failures: {run['vm_failures'] or 'none'}; log problems: {len(run['log_problems'])}; "
                  f"Envoy alive: {run['alive']}, plain request: {run['final_status']}")
            print("tracejoin counters: " + ", ".join(f"{k}={v}" for k, v in sorted(run["counters"].items()) if v))
            if known:
                print("known (left out of the checks): " + ", ".join(f"{k} x{n}" for k, n in sorted(known.items())))
            for case, problem in problems[: args.show]:
                print(f"  {case.category}/{case.name}: {problem}")
            if len(problems) > args.show:
                print(f"  ... {len(problems) - args.show} more")
            failed |= bool(problems or run["vm_failures"] or run["log_problems"] or not run["alive"])
    finally:
        server.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
