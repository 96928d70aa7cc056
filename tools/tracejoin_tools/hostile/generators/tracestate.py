"""tracestate: member counts, lengths, duplicate keys, invalid keys and values, repeats."""

from tracejoin_tools.common import TRACESTATE, S, T
from tracejoin_tools.common import traceparent as tp


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


def tracestate_of_length(total, member_len, long_at=None):
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
            yield f"{total}-chars-members-of-{member_len}", [("traceparent", tp()), ("tracestate", tracestate_of_length(total, member_len))]
        if total >= 512:
            yield f"{total}-chars-long-member-first", [("traceparent", tp()), ("tracestate", tracestate_of_length(total, 40, long_at=0))]
            yield f"{total}-chars-long-member-fourth", [("traceparent", tp()), ("tracestate", tracestate_of_length(total, 40, long_at=3))]
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
