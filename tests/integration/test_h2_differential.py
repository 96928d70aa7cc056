"""HTTP/2 in the network position against python-hyper's HPACK decoder.

Random client HTTP/2 byte streams (the preface, SETTINGS, WINDOW_UPDATE, PING, PRIORITY,
frames of unknown types, many interleaved streams; request HEADERS with trace headers in
every format, valid and not, among ordinary fields; blocks cut into CONTINUATION frames,
PADDED and PRIORITY flags, Huffman and raw strings, every HPACK representation, dynamic
table size updates at block starts, entries referenced from later blocks; DATA, trailers,
RST_STREAM; and malformed or cut-short streams) go through the crate's connection filter
in one run of `examples/stream_rewrite.rs`, cut into client writes. What the simulated
Envoy codec received is then split into frames and its header blocks decoded with a fresh
`hpack.Decoder` (Envoy's view: a 4096-octet table), the input's with another (the client's
view), and:

(a) every frame other than HEADERS and CONTINUATION (DATA included) is the input's, byte
    for byte, in the same order among themselves and among the header blocks;
(b) a stream's first header block (the request head) decodes to the input's fields but
    for trace headers (added, replaced or removed): every other field (name, value, and
    whether it was "never indexed", RFC 7541 7.1.3) in its original relative order, no
    field moved in front of a pseudo-header, same stream, END_STREAM and priority;
(c) later blocks on a stream (trailers) decode to exactly the input's fields;
(d) the trace headers of a rewritten head are well-formed, each at most once, and every
    format in it carries the same trace id (readers of `tracejoin_tools.envoy.
    trace_headers`); and a head sent with only a valid traceparent, under a config writing
    four formats, leaves with the four, all on the client's trace;
(e) from the first thing that is not well-formed HTTP/2 (no preface; a connection error
    a server sees in a frame: size over 16,384, stream 0 or not, an even or idle stream,
    padding, a frame inside a block, a CONTINUATION with none open; an HPACK decoding
    error in a block: from that block's HEADERS frame) to the end, the output is the
    input byte for byte; so is a stream's unfinished tail (cut short inside a frame or a
    block), unless the filter holds it.

What the filter holds (`held`) is a paused read: whole frames and blocks of the last
reads (written back or not) and the cut-off frame header or block at its end; it may
hold only while the input ends inside a frame header or a block, and the checks then
stop where the output ends (so they do when the filter closed the connection, `trust`).

Envoy's SETTINGS_HEADER_TABLE_SIZE is taken to be 4,096: the generator's size updates
stay within it, and the broken ones go past 65,536 (the filter follows a client up to
that, for an Envoy whose `hpack_table_size` is set higher, so sizes between are not
tested).

The oracle is tested on its own first (no example needed): the generator's valid streams
are accepted by h2's server-side state machine and decode to the fields generated; the
oracle accepts each input compared with itself and with a model rewrite (trace headers
dropped and re-added, every block re-encoded with another table), and rejects the model
rewrite with one non-trace thing changed.

`test_h2_dry_run` sends the same streams under each config with `dry_run`: every byte
reaches the HCM as it came and nothing is closed.

`TRACEJOIN_H2_STREAMS` and `TRACEJOIN_H2_SEED` run more or other streams; a failure
names its case, and `python tests/integration/test_h2_differential.py <case>` prints the
example's input line for it. `test_h2_differential` is an expected failure (xfail) while
the example passes HTTP/2 through untouched (`network.left.http2` on a plain request).

PYTEST_DONT_REWRITE: the oracle's assertions say what differs themselves.
"""

import base64
import collections
import json
import os
import random
import re
import struct
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hpack
import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable
from hyperframe.frame import Frame as HyperFrame

from tracejoin_tools.common import TRACE_HEADERS, S, T, xray
from tracejoin_tools.envoy.trace_headers import assert_well_formed, disagreements, traces_seen

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
EXAMPLE = TARGET / "release" / "examples" / "stream_rewrite"
STREAMS = int(os.environ.get("TRACEJOIN_H2_STREAMS", "600"))
SEED = int(os.environ.get("TRACEJOIN_H2_SEED", "7541"))

# Envoy's SETTINGS_HEADER_TABLE_SIZE and SETTINGS_MAX_FRAME_SIZE (the protocol defaults).
TABLE_SIZE = 4096
MAX_FRAME = 16384
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

# Config 0 writes four formats with tracer none: a head with only a valid traceparent
# must leave with all four on the client's trace (the check that the filter did its job).
JOB_CONFIG = 0
CONFIGS = [
    {"position": "network", "tracer": "none", "propagate": ["tracecontext", "b3multi", "jaeger", "datadog"]},
    {"position": "network", "tracer": "zipkin"},
    {"position": "network", "tracer": "opentelemetry", "propagate": ["tracecontext", "b3", "b3multi", "jaeger"]},
    {"position": "network", "tracer": "none", "trust": "restart"},
    {"position": "network", "tracer": "zipkin_w3c", "trust": "resample", "sampling_ratio": 0},
    {"position": "network", "tracer": "datadog", "extract": ["datadog", "tracecontext", "b3multi"], "propagate": ["tracecontext", "datadog"]},
    {
        "position": "network",
        "tracer": "none",
        "extract": ["tracecontext", "b3", "b3multi", "jaeger", "datadog", "xray", "ottrace"],
        "propagate": ["tracecontext", "b3", "b3multi", "jaeger", "datadog", "xray", "ottrace"],
    },
    {"position": "network", "tracer": "zipkin", "max_request_headers_kb": 1, "max_request_headers_count": 8, "per_connection_buffer_limit_bytes": 1024},
]


TRACEPARENT = re.compile(rb"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-0[0-3]$")


def is_trace(name):
    return name.lower().decode("latin-1") in TRACE_HEADERS


# --- HPACK encoding: a tiny encoder with every representation ---------------------------

HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
STATIC = HeaderTable.STATIC_TABLE


def hpack_int(value, prefix, pattern):
    """RFC 7541 5.1: `value` with a `prefix`-bit prefix under the high bits `pattern`."""
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([pattern | value])
    out = bytearray([pattern | limit])
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_str(data, huffman):
    if huffman:
        coded = HUFFMAN.encode(data)
        return hpack_int(len(coded), 7, 0x80) + coded
    return hpack_int(len(data), 7, 0) + data


@dataclass(frozen=True)
class F:
    """A header field as decoded: name, value, and whether it came "never indexed"."""

    name: bytes
    value: bytes
    never: bool = False


class Encoder:
    """Chooses among indexed, literal with incremental indexing, without indexing and never
    indexed; a name by index or literal; each string Huffman-coded or raw; mirrors its
    dynamic table as the peer's decoder keeps it."""

    def __init__(self, rng, size=TABLE_SIZE):
        self.rng = rng
        self.table = []  # newest first
        self.max_size = size
        self.limit = size

    def size(self):
        return sum(len(n) + len(v) + 32 for n, v in self.table)

    def evict(self, room=0):
        while self.table and self.size() + room > self.max_size:
            self.table.pop()

    def insert(self, name, value):
        entry = len(name) + len(value) + 32
        if entry > self.max_size:
            self.table.clear()
            return
        self.evict(entry)
        self.table.insert(0, (name, value))

    def lookup(self, name, value):
        """(an index of the whole field or None, the indexes holding the name)."""
        full, names = [], []
        for i, (n, v) in enumerate(list(STATIC) + self.table, 1):
            if n == name:
                names.append(i)
                if v == value:
                    full.append(i)
        return (self.rng.choice(full) if full else None), names

    def size_update(self, size):
        self.max_size = size
        self.evict()
        return hpack_int(size, 5, 0x20)

    def field(self, f, kind=None):
        """One representation of `f`; `kind` forces one ("indexed" needs a match)."""
        rng = self.rng
        full, names = self.lookup(f.name, f.value)
        if kind is None:
            if f.never:
                kind = "never"
            elif full is not None and rng.random() < 0.6:
                kind = "indexed"
            else:
                kind = rng.choices(["incremental", "without"], [2, 1])[0]
        if kind == "indexed":
            return hpack_int(full, 7, 0x80)
        prefix, pattern = {"incremental": (6, 0x40), "without": (4, 0x00), "never": (4, 0x10)}[kind]
        if names and rng.random() < 0.75:
            out = hpack_int(rng.choice(names), prefix, pattern)
        else:
            out = bytes([pattern]) + hpack_str(f.name, rng.random() < 0.5)
        out += hpack_str(f.value, rng.random() < 0.5)
        if kind == "incremental":
            self.insert(f.name, f.value)
        return out

    def block(self, fields, updates=()):
        out = b"".join(self.size_update(u) for u in updates)
        return out + b"".join(self.field(f) for f in fields)


# --- frames -----------------------------------------------------------------------------


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def header_frames(rng, stream, fragment, end_stream, priority=None, pieces=None):
    """A header block as HEADERS (maybe PADDED, PRIORITY) and CONTINUATION frames."""
    room = MAX_FRAME - 6 - 255
    if pieces is None:
        pieces = 1 if rng.random() < 0.6 else rng.randrange(2, 5)
    cuts = sorted(rng.randrange(0, len(fragment) + 1) for _ in range(pieces - 1))
    parts = [fragment[a:b] for a, b in zip([0, *cuts], [*cuts, len(fragment)], strict=True)]
    # No frame over the maximum size.
    parts = [p[i : i + room] for p in parts for i in range(0, max(len(p), 1), room)]
    flags = END_STREAM if end_stream else 0
    payload = parts[0]
    if priority is not None:
        exclusive, dependency, weight = priority
        payload = struct.pack(">IB", dependency | (0x80000000 if exclusive else 0), weight) + payload
        flags |= PRIORITY_FLAG
    # (Padding beside an empty fragment is valid HTTP/2 but refused by hyperframe, which
    # h2's self-test below uses: not generated.)
    if rng.random() < 0.2 and payload:
        pad = rng.randrange(0, 40)
        payload = bytes([pad]) + payload + b"\0" * pad
        flags |= PADDED
    out = []
    out.append(frame(HEADERS, flags | (END_HEADERS if len(parts) == 1 else 0), stream, payload))
    for i, p in enumerate(parts[1:], 2):
        out.append(frame(CONTINUATION, END_HEADERS if i == len(parts) else 0, stream, p))
    return out


# --- generation -------------------------------------------------------------------------


def hexid(rng, n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def trace_formats(rng, t, s, valid):
    """Trace fields of one random format for trace `t`, span `s` (valid or some malformed
    spelling of it)."""
    fmt = rng.choice(["tracecontext", "b3", "b3multi", "jaeger", "datadog", "xray", "ottrace"])
    flags = rng.choice(["00", "01", "01"])
    sampled = rng.choice(["0", "1", "1"])
    short = t[16:] if rng.random() < 0.3 else t
    if fmt == "tracecontext":
        out = [("traceparent", f"00-{t}-{s}-{flags}")]
        if not valid:
            out = [("traceparent", rng.choice([f"00-{t.upper()}-{s}-{flags}", f"00-{'0' * 32}-{s}-01", f"ff-{t}-{s}-01", f"00-{t}-{s}", f"00-{t}-{s}-01-extra", "garbage"]))]
        if rng.random() < 0.5:
            out.append(("tracestate", rng.choice(["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "a=1", "a=1,,b=2", "bad key=1", "x=" + "y" * 300])))
        if rng.random() < 0.1:
            out.append(("tracestate", "second=1"))
        return out
    if fmt == "b3":
        if not valid:
            return [("b3", rng.choice(["zz", f"{t}-{s}-x", f"{t}", f"{t}-{s}-1-{s}-extra", "2"]))]
        return [("b3", rng.choice([f"{short}-{s}", f"{short}-{s}-{rng.choice('01d')}", f"{short}-{s}-1-{hexid(rng, 16)}", rng.choice("01d")]))]
    if fmt == "b3multi":
        out = [("x-b3-traceid", short), ("x-b3-spanid", s)]
        if rng.random() < 0.4:
            out.append(("x-b3-parentspanid", hexid(rng, 16)))
        out.append(("x-b3-sampled", rng.choice([sampled, "true"])))
        if rng.random() < 0.1:
            out.append(("x-b3-flags", "1"))
        if not valid:
            out[rng.randrange(len(out))] = rng.choice([("x-b3-traceid", "xyz"), ("x-b3-spanid", ""), ("x-b3-sampled", "maybe")])
        rng.shuffle(out)
        return out
    if fmt == "jaeger":
        if not valid:
            return [("uber-trace-id", rng.choice(["a:b", "0:0:0:0", f"{t}:{s}", f"{t}:{s}:0:zz"]))]
        return [("uber-trace-id", rng.choice([f"{short}:{s}:0:{sampled}", f"{t}%3A{s}%3A0%3A1", f"{short.lstrip('0')}:{s}:{hexid(rng, 16)}:3"]))]
    if fmt == "datadog":
        out = [("x-datadog-trace-id", str(int(t[16:], 16) or 1)), ("x-datadog-parent-id", str(int(s, 16) or 1))]
        if rng.random() < 0.7:
            out.append(("x-datadog-sampling-priority", rng.choice(["-1", "0", "1", "2"])))
        if rng.random() < 0.5:
            out.append(("x-datadog-tags", f"_dd.p.tid={t[:16]}"))
        if rng.random() < 0.2:
            out.append(("x-datadog-origin", "synthetics"))
        if not valid:
            out[0] = ("x-datadog-trace-id", rng.choice(["abc", "0", "-5", "99999999999999999999999"]))
        return out
    if fmt == "xray":
        value = xray(t, s, sampled)
        return [("x-amzn-trace-id", value if valid else rng.choice(["Root=bad", value.replace("Root=1-", "Root=2-"), "Self=1-a;Root="]))]
    out = [("ot-tracer-traceid", short), ("ot-tracer-spanid", s), ("ot-tracer-sampled", rng.choice(["true", "false"]))]
    if not valid:
        out[0] = ("ot-tracer-traceid", "nothex")
    return out


OTHER = [
    ("user-agent", "grpc-go/1.60.1"),
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"),
    ("accept", "*/*"),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", "en-US,en;q=0.9"),
    ("cookie", "a=b"),
    ("cookie", "traceparent=not-a-header"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
    ("baggage", "userId=alice,serverNode=DF%2028"),
    ("uberctx-user", "alice"),
    ("x-b3-debug", "1"),
    ("traceparent-like", "x"),
    ("x-empty", ""),
    ("x-spaces", "a  b"),
    ("x-bin", "caf\xe9"),
    ("grpc-timeout", "10S"),
]


def request_fields(rng, sentinel):
    """A request head: pseudo-header fields, then ordinary and trace fields mixed."""
    pseudo = [
        (":method", rng.choice(["GET", "POST", "PUT", "DELETE", "OPTIONS"])),
        (":scheme", rng.choice(["http", "https"])),
        (":authority", rng.choice(["api.example", "www.example.com", "svc.ns.svc.cluster.local:8080"])),
        (":path", rng.choice(["/", "/index.html", "/api/v1/items?id=7", "/helloworld.Greeter/SayHello", f"/x/{hexid(rng, 8)}"])),
    ]
    rng.shuffle(pseudo)
    regular = [rng.choice(OTHER) for _ in range(rng.randrange(0, 7))]
    if rng.random() < 0.3:
        regular.append(("x-request-id", hexid(rng, 32)))
    if rng.random() < 0.15:
        regular.append(("authorization", "Bearer " + hexid(rng, 40)))
    if rng.random() < 0.04 and not sentinel:
        regular.append(("x-big", "v" * rng.choice([3000, 9000, 20000])))
    if sentinel:
        trace = [("traceparent", f"00-{T}-{S}-01")]
    else:
        trace = []
        t, s = hexid(rng, 32), hexid(rng, 16)
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            if rng.random() < 0.3:
                t, s = hexid(rng, 32), hexid(rng, 16)  # another trace: a conflict
            trace += trace_formats(rng, t, s, valid=rng.random() < 0.8)
    mixed = regular + trace
    if rng.random() < 0.5:
        rng.shuffle(mixed)
    fields = []
    for name, value in pseudo + mixed:
        never = name in ("authorization", "cookie") and rng.random() < 0.5 or rng.random() < 0.03
        fields.append(F(name.encode(), value.encode("latin-1"), never))
    return fields


def trailer_fields(rng):
    fields = [F(b"grpc-status", b"0"), F(b"grpc-message", rng.choice([b"", b"ok"]))]
    if rng.random() < 0.3:
        # A trace header in trailers: not a request head's, never rewritten.
        fields.append(F(b"traceparent", f"00-{hexid(rng, 32)}-{hexid(rng, 16)}-01".encode()))
    if rng.random() < 0.3:
        fields.append(F(b"x-checksum", hexid(rng, 16).encode()))
    return fields


def payload_bytes(rng):
    """A DATA payload, often holding bytes that look like frames or header fields."""
    look = [
        PREFACE,
        frame(HEADERS, END_HEADERS, 1, b"\x82\x86\x84"),
        frame(CONTINUATION, END_HEADERS, 3, b"\x40\x0btraceparent\x01x"),
        b"traceparent: 00-00000000000000000000000000000001-0000000000000001-01\r\n",
    ]
    out = bytearray()
    for _ in range(rng.randrange(0, 4)):
        out += rng.choice(look) if rng.random() < 0.5 else bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))
    return bytes(out)


def noise_frame(rng, highest):
    """A frame outside any request: connection-level, PRIORITY, or an unknown type."""
    roll = rng.randrange(6)
    if roll == 0:
        return frame(PING, rng.choice([0, ACK]), 0, bytes(rng.randrange(256) for _ in range(8)))
    if roll == 1:
        return frame(WINDOW_UPDATE, 0, rng.choice([0, highest]) if highest else 0, struct.pack(">I", rng.randrange(1, 1 << 20)))
    if roll == 2:
        return frame(SETTINGS, ACK, 0, b"")
    if roll == 3:
        stream = rng.randrange(1, highest + 20, 2)
        dep = rng.randrange(0, 40)
        dep = 0 if dep == stream else dep
        return frame(PRIORITY, 0, stream, struct.pack(">IB", dep | (0x80000000 if rng.random() < 0.2 else 0), rng.randrange(256)))
    if roll == 4:
        settings = [(1, rng.randrange(0, 8192)), (2, 0), (3, 100), (4, 65535), (5, 16384), (6, 1 << 16), (0x99, 7)]
        return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in rng.sample(settings, rng.randrange(0, 4))))
    # An unknown type, any flags and stream, payload that looks like a block.
    return frame(rng.randrange(0x0B, 0x100), rng.randrange(256), rng.randrange(0, 50), rng.choice([b"", b"\x82\x86\x84", b"\x40\x0btraceparent\x01x", bytes(rng.randrange(256) for _ in range(20))]))


@dataclass
class Plan:
    """A generated stream: its bytes, what each complete block means, how it is broken."""

    kind: str
    data: bytes
    blocks: list = field(default_factory=list)  # (stream, first, fields) in wire order
    sentinels: set = field(default_factory=set)  # indexes into blocks
    writes: list = field(default_factory=list)
    eos: bool = False


BREAKS = [
    "preface",
    "truncated",
    "frame_too_large",
    "frame_in_block",
    "orphan_continuation",
    "headers_on_stream_0",
    "even_stream",
    "data_on_idle_stream",
    "bad_padding",
    "hpack_index",
    "hpack_late_size_update",
    "hpack_size_update_too_large",
    "hpack_huffman_eos",
    "hpack_huffman_padding",
    "hpack_truncated",
]


def h2_stream(rng):
    """A client stream: (frames as a list of (bytes, block index or None), Plan)."""
    enc = Encoder(rng)
    plan = Plan("valid", b"")
    units = []  # (bytes, block index or None): a block is one unit (its frames joined)
    settings = [(1, rng.choice([0, 4096, 65536])), (2, 0), (4, rng.randrange(65535, 1 << 20)), (3, 100)]
    units.append((frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in rng.sample(settings, rng.randrange(0, 5)))), None))
    if rng.random() < 0.5:
        units.append((frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 24)), None))
    n_streams = rng.choice([1, 1, 2, 3, 5, 8, 14])
    # Each stream's remaining actions, opened in id order, advanced in random turns.
    pending = []
    next_id = 1
    opened = 0
    highest = 0
    data_budget = 60000  # below h2's initial connection window (its self-test)

    def block_unit(stream, first, fields, end_stream, sentinel=False):
        updates = ()
        if rng.random() < 0.12:
            updates = rng.choice([(rng.randrange(0, TABLE_SIZE + 1),), (0, TABLE_SIZE), (rng.randrange(0, 200), rng.randrange(200, TABLE_SIZE + 1))])
        fragment = enc.block(fields, updates)
        priority = None
        if rng.random() < 0.15:
            dep = rng.randrange(0, stream + 6, 2) + 1 if rng.random() < 0.5 else 0
            priority = (rng.random() < 0.3, 0 if dep == stream else dep, rng.randrange(256))
        frames = header_frames(rng, stream, fragment, end_stream, priority, pieces=rng.randrange(2, 6) if rng.random() < 0.2 else None)
        plan.blocks.append((stream, first, fields))
        if sentinel:
            plan.sentinels.add(len(plan.blocks) - 1)
        units.append((b"".join(frames), len(plan.blocks) - 1))

    while opened < n_streams or pending:
        roll = rng.random()
        if roll < 0.1:
            units.append((noise_frame(rng, highest), None))
            continue
        if opened < n_streams and (not pending or roll < 0.4):
            stream = next_id
            next_id += rng.choice([2, 2, 2, 4])  # skipping ids is allowed
            opened += 1
            highest = stream
            body = rng.random() < 0.4
            trailers = body and rng.random() < 0.5 or rng.random() < 0.05
            reset = rng.random() < 0.08
            sentinel = rng.random() < 0.15
            block_unit(stream, True, request_fields(rng, sentinel), end_stream=not body and not trailers, sentinel=sentinel)
            actions = []
            if body:
                actions += ["data"] * rng.randrange(1, 4)
            if trailers:
                actions.append("trailers")
            if reset:
                actions.insert(rng.randrange(len(actions) + 1), "reset")
            if actions:
                pending.append([stream, actions, trailers])
            continue
        entry = rng.choice(pending)
        stream, actions, trailers = entry
        action = actions.pop(0)
        if action == "data":
            payload = payload_bytes(rng)[: max(0, data_budget)]
            data_budget -= len(payload) + 40
            last = not trailers and not any(a == "data" for a in actions)
            flags = END_STREAM if last else 0
            if rng.random() < 0.2:
                pad = rng.randrange(0, 20)
                payload = bytes([pad]) + payload + b"\0" * pad
                flags |= PADDED
            units.append((frame(DATA, flags, stream, payload), None))
        elif action == "trailers":
            block_unit(stream, False, trailer_fields(rng), end_stream=True)
        else:
            units.append((frame(RST_STREAM, 0, stream, struct.pack(">I", rng.choice([0, 8]))), None))
            actions.clear()
        if not actions:
            pending.remove(entry)
    if rng.random() < 0.05:
        units.append((frame(GOAWAY, 0, 0, struct.pack(">II", highest, 0)), None))
    return units, plan, enc, highest


def bad_block(rng, how):
    """HPACK bytes a decoder must refuse, to append to a block."""
    if how == "hpack_index":
        return hpack_int(20000, 7, 0x80)
    if how == "hpack_late_size_update":
        return hpack_int(100, 5, 0x20)
    if how == "hpack_size_update_too_large":
        # Above what any Envoy announces (the filter follows up to 65,536: Envoy's
        # `hpack_table_size` may be set above 4,096, so sizes between are not tested).
        return hpack_int(65536 + rng.randrange(1, 5000), 5, 0x20)
    if how == "hpack_huffman_eos":
        return b"\x00\x01x\x84\xff\xff\xff\xff"
    if how == "hpack_huffman_padding":
        return b"\x00\x01x" + rng.choice([b"\x81\xff", b"\x81\x18", b"\x82\x1f\xff"])
    return b"\x40\x05ab"  # hpack_truncated: a literal longer than the block


def generate(rng):
    """A Plan: valid most of the time, else broken in one of BREAKS."""
    units, plan, enc, highest = h2_stream(rng)
    kind = "valid" if rng.random() < 0.72 else rng.choice(BREAKS)
    at = rng.randrange(0, len(units) + 1)
    if kind.startswith("hpack_"):
        if kind in ("hpack_size_update_too_large",):
            extra = bad_block(rng, kind)
            fields = []
        else:
            fields = [F(b"x-before", b"1")]
            extra = Encoder(random.Random(0)).block(fields) + bad_block(rng, kind)
        # A new stream above every other (streams opened after it follow the break).
        units.insert(at, (b"".join(header_frames(rng, highest + 2, extra, end_stream=True)), None))
    elif kind == "frame_too_large":
        units.insert(at, (frame(0x20, 0, 0, b"\0" * (MAX_FRAME + rng.randrange(1, 100))), None))
    elif kind == "frame_in_block":
        fields = [F(b":method", b"GET"), F(b":path", b"/"), F(b":scheme", b"http"), F(b"x-a", b"b" * 50)]
        frames = header_frames(rng, highest + 2, enc.block(fields), True, pieces=3)
        cut = rng.randrange(1, len(frames))
        stray = rng.choice([frame(PING, 0, 0, b"\0" * 8), frame(RST_STREAM, 0, highest + 2, b"\0\0\0\x08"), frame(0x33, 0, 0, b""), frame(HEADERS, END_HEADERS, highest + 4, b"\x82")])
        units.insert(at, (b"".join(frames[:cut]) + stray + b"".join(frames[cut:]), None))
    elif kind == "orphan_continuation":
        units.insert(at, (frame(CONTINUATION, END_HEADERS, max(highest, 1), b"\x82"), None))
    elif kind == "headers_on_stream_0":
        units.insert(at, (frame(HEADERS, END_HEADERS | END_STREAM, 0, b"\x82\x86\x84"), None))
    elif kind == "even_stream":
        units.insert(at, (frame(HEADERS, END_HEADERS | END_STREAM, highest + 1 if highest % 2 else highest + 2, b"\x82\x86\x84"), None))
    elif kind == "data_on_idle_stream":
        units.insert(at, (frame(DATA, 0, highest + 10, b"x"), None))
    elif kind == "bad_padding":
        units.insert(at, (frame(DATA if highest and rng.random() < 0.5 else HEADERS, PADDED | END_HEADERS | END_STREAM, highest if highest and rng.random() < 0.5 else highest + 2, b"\x09abc"), None))
    if kind not in ("valid", "truncated", "preface"):
        # The blocks after the break are not read (units before `at` hold blocks 0..n-1).
        n = sum(1 for _, i in units[:at] if i is not None)
        plan.blocks = plan.blocks[:n]
        plan.sentinels = {i for i in plan.sentinels if i < n}
    data = PREFACE + b"".join(u for u, _ in units)
    if kind == "preface":
        i = rng.randrange(len(PREFACE))
        data = data[:i] + bytes([data[i] ^ rng.choice([0x01, 0x20, 0x80])]) + data[i + 1 :]
        plan.blocks, plan.sentinels = [], set()
    elif kind == "truncated":
        data = data[: rng.randrange(len(data) + 1)]
    plan.kind = kind
    plan.data = data
    # Client writes: one, a byte each (short streams), small, frame-sized, or large.
    how = rng.randrange(5)
    if how == 0:
        plan.writes = []
    elif how == 1 and len(data) < 3000:
        plan.writes = [1]
    elif how == 2:
        plan.writes = [rng.randrange(1, 17) for _ in range(rng.randrange(1, 6))]
    elif how == 3:
        plan.writes = [9, rng.randrange(1, 30), rng.randrange(24, 200)]
    else:
        plan.writes = [rng.randrange(1, 3000) for _ in range(rng.randrange(1, 6))]
    plan.eos = rng.random() < 0.1
    return plan


# --- the oracle: splitting and decoding -------------------------------------------------


@dataclass(frozen=True)
class Block:
    stream: int
    first: bool
    end_stream: bool
    priority: tuple | None
    fields: tuple
    start: int
    end: int


@dataclass(frozen=True)
class Other:
    """A frame other than HEADERS and CONTINUATION."""

    raw: bytes
    kind: int
    stream: int
    start: int
    end: int


@dataclass
class Analysis:
    events: list  # Block and Other, in order, up to the stop
    rest: int  # where the events end: the tail from here is compared byte for byte
    stop: str  # "end", "incomplete", "no preface", "malformed"
    why: str = ""


def split(data, decode=True):
    """The stream as a server reads it (the same rules as fuzz/src/h2.rs), each complete
    header block decoded with one hpack.Decoder (Envoy's table size) when `decode`."""
    if len(data) < len(PREFACE):
        return Analysis([], 0, "incomplete" if PREFACE.startswith(data) else "no preface")
    if not data.startswith(PREFACE):
        return Analysis([], 0, "no preface")
    decoder = hpack.Decoder(max_header_list_size=1 << 24)
    decoder.max_allowed_table_size = TABLE_SIZE
    events = []
    at = len(PREFACE)
    highest = 0
    block = None  # [start, stream, first, end_stream, priority, fragment]

    def stop(how, why=""):
        rest = block[0] if block else at
        return Analysis(events, rest, how, why)

    while True:
        if len(data) - at < 9:
            return stop("end" if at == len(data) and block is None else "incomplete")
        length = int.from_bytes(data[at : at + 3], "big")
        kind, flags = data[at + 3], data[at + 4]
        stream = int.from_bytes(data[at + 5 : at + 9], "big") & 0x7FFFFFFF
        if length > MAX_FRAME:
            return stop("malformed", "frame over the maximum size")
        if block is not None and (kind != CONTINUATION or stream != block[1]):
            return stop("malformed", "another frame inside a header block")
        why = None
        if kind in (DATA, HEADERS, PRIORITY, RST_STREAM, CONTINUATION) and stream == 0:
            why = "a stream frame on stream 0"
        elif kind in (SETTINGS, PING, GOAWAY) and stream != 0:
            why = "a connection frame on a stream"
        elif kind == SETTINGS and (flags & ACK and length or length % 6):
            why = "SETTINGS size"
        elif kind == PING and length != 8 or kind == PRIORITY and length != 5 or kind in (RST_STREAM, WINDOW_UPDATE) and length != 4 or kind == GOAWAY and length < 8:
            why = "a fixed-size frame of another size"
        elif kind == PUSH_PROMISE:
            why = "PUSH_PROMISE from a client"
        elif kind == CONTINUATION and block is None:
            why = "CONTINUATION with no block open"
        elif kind == HEADERS and stream > highest and stream % 2 == 0:
            why = "a new stream with an even id"
        elif kind in (DATA, RST_STREAM, WINDOW_UPDATE) and stream > highest:
            why = "a frame on an idle stream"
        if why:
            return stop("malformed", why)
        end = at + 9 + length
        if end > len(data):
            return stop("incomplete")
        payload = data[at + 9 : end]
        if kind == HEADERS:
            p, pad, priority = payload, 0, None
            if flags & PADDED:
                if not p:
                    return stop("malformed", "PADDED without a pad length")
                pad, p = p[0], p[1:]
            if flags & PRIORITY_FLAG:
                if len(p) < 5:
                    return stop("malformed", "PRIORITY flag without its fields")
                dep, weight = struct.unpack(">IB", p[:5])
                priority = (bool(dep >> 31), dep & 0x7FFFFFFF, weight)
                p = p[5:]
            if pad > len(p):
                return stop("malformed", "padding past the payload")
            first = stream > highest
            highest = max(highest, stream)
            block = [at, stream, first, bool(flags & END_STREAM), priority, p[: len(p) - pad]]
        elif kind == CONTINUATION:
            block[5] += payload
        else:
            if kind == DATA and flags & PADDED and (not payload or payload[0] >= len(payload)):
                return stop("malformed", "padding past the payload")
            events.append(Other(data[at:end], kind, stream, at, end))
        if kind in (HEADERS, CONTINUATION) and flags & END_HEADERS:
            start, stream_, first, end_stream, priority, fragment = block
            fields = ()
            if decode:
                try:
                    fields = tuple(F(bytes(h[0]), bytes(h[1]), not h.indexable) for h in decoder.decode(bytes(fragment), raw=True))
                except hpack.HPACKError as e:
                    block = None
                    at = start
                    return stop("malformed", f"hpack: {type(e).__name__}: {e}")
            events.append(Block(stream_, first, end_stream, priority, fields, start, end))
            block = None
        at = end


def show(fields):
    return [(f.name.decode("latin-1"), f.value.decode("latin-1")[:80]) + (("never",) if f.never else ()) for f in fields]


def as_str(fields):
    return [(f.name.decode("latin-1").lower(), f.value.decode("latin-1")) for f in fields]


def non_trace(fields):
    return [f for f in fields if not is_trace(f.name)]


def check_head(i, a, b, stats):
    """(b), (d): a request head in and out."""
    assert non_trace(a.fields) == non_trace(b.fields), f"block {i} (stream {a.stream}): fields other than trace headers:\n  in:  {show(a.fields)}\n  out: {show(b.fields)}"

    # Nothing moved in front of a pseudo-header (a request Envoy would refuse).
    def misplaced(fields):
        seen_regular = False
        bad = 0
        for f in fields:
            if f.name.startswith(b":"):
                bad += seen_regular
            else:
                seen_regular = True
        return bad

    assert misplaced(b.fields) <= misplaced(a.fields), f"block {i}: a field before a pseudo-header:\n  {show(b.fields)}"
    if a.fields == b.fields:
        return False
    trace = [(k, v) for k, v in as_str(b.fields) if k in TRACE_HEADERS]
    sent = [(k, v) for k, v in as_str(a.fields) if k in TRACE_HEADERS]
    try:
        # A tracestate repeated exactly as sent is carried beside a traceparent left alone.
        got_ts = [v for k, v in trace if k == "tracestate"]
        if len(got_ts) > 1 and got_ts == [v for k, v in sent if k == "tracestate"]:
            trace = [(k, v) for k, v in trace if k != "tracestate"]
        assert_well_formed(trace)
        for k, v in trace:
            assert (v or k == "tracestate") and all(0x20 <= ord(c) <= 0x7E for c in v), (k, v)
        problems = disagreements(trace, spans=False, sampling=False)
        assert not problems, problems
    except AssertionError as e:
        raise AssertionError(f"block {i} (stream {a.stream}): the trace headers written: {e}\n  in:  {show(a.fields)}\n  out: {show(b.fields)}") from None
    stats["heads rewritten"] += 1
    return True


def check(data, out, held=0, closed=False, job=None, stats=None):
    """Every assertion of the module docstring. `out`: what Envoy's codec received; `held`:
    bytes the filter still holds (a paused read: whole frames and blocks of the last reads,
    written back or not, then the cut-off one); `closed`: the filter closed the connection.
    Either makes `out` a prefix: the checks stop where it ends. `job`: indexes (among the
    input's blocks) of heads that must leave with four formats on trace T."""
    stats = collections.Counter() if stats is None else stats
    a = split(data)
    stats[f"input {a.stop}"] += 1
    prefix = closed or held > 0
    if a.stop == "no preface":
        assert data.startswith(out) if prefix else out == data, "not HTTP/2: the output is not the input"
        return stats
    if a.rest == 0 or len(out) < len(PREFACE):  # cut inside the preface
        assert data.startswith(out) if prefix else out == data, "the preface changed"
        return stats
    if held and not closed:
        # A read is held only while it ends inside a frame header or a header block.
        tail = data[a.rest :]
        assert a.stop == "incomplete" and (len(tail) < 9 or tail[3] == HEADERS), f"{held} bytes held, the input ending {a.stop} ({a.why}) with {tail[:12]!r}"
    assert out.startswith(PREFACE), "the preface changed"
    b = split(out)
    if not prefix:
        assert len(b.events) >= len(a.events), f"the output has {len(b.events)} complete frames and blocks ({b.stop}: {b.why}), the input {len(a.events)} before its {a.stop} ({a.why})"
    k = min(len(a.events), len(b.events))
    blocks = 0
    for i in range(k):
        x, y = a.events[i], b.events[i]
        assert type(x) is type(y), f"unit {i}: {type(x).__name__} in, {type(y).__name__} out"
        if isinstance(x, Other):
            assert x.raw == y.raw, f"unit {i}: frame {x.kind} changed:\n  in:  {x.raw[:120]!r}\n  out: {y.raw[:120]!r}"
            stats["frames"] += 1
            continue
        got, want = (y.stream, y.first, y.end_stream), (x.stream, x.first, x.end_stream)
        assert got == want, f"unit {i}: a block's (stream, first on it, END_STREAM): {want} in, {got} out"
        assert x.priority == y.priority, f"unit {i}: priority {x.priority} in, {y.priority} out"
        if x.first:
            rewritten = check_head(blocks, x, y, stats)
            if job is not None and blocks in job:
                ctx = traces_seen(as_str(y.fields))
                names = {k for k, _ in as_str(y.fields)}
                four = {"traceparent", "x-b3-traceid", "uber-trace-id", "x-datadog-trace-id"}
                assert rewritten and ctx == {T} and four <= names, f"block {blocks}: a head with only the traceparent of trace {T} leaves as {show(y.fields)}"
                stats["job heads"] += 1
        else:
            assert x.fields == y.fields, f"block {blocks} (stream {x.stream}): trailers changed:\n  in:  {show(x.fields)}\n  out: {show(y.fields)}"
            stats["trailers"] += 1
        blocks += 1
    stats["blocks"] += blocks
    rest_in = a.events[k - 1].end if k else len(PREFACE)
    rest_out = b.events[k - 1].end if k else len(PREFACE)
    if prefix:
        assert data[rest_in:].startswith(out[rest_out:]), f"what follows the last whole unit passed on is not the input's:\n  in:  {data[rest_in:][:200]!r}\n  out: {out[rest_out:][:200]!r}"
    else:
        assert rest_in == a.rest
        assert out[rest_out:] == data[rest_in:], f"after the last whole unit ({a.stop}: {a.why}), the output is not the input's:\n  in:  {data[rest_in:][:200]!r}\n  out: {out[rest_out:][:200]!r}"
    return stats


# --- the oracle's self-tests ------------------------------------------------------------


def plans(n, seed):
    rng = random.Random(seed)
    return [generate(rng) for _ in range(n)]


def h2_server_accepts(data):
    """Feeds the stream to python-hyper's h2 as a server: its events, or the error."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, validate_inbound_headers=True))
    conn.initiate_connection()
    try:
        return conn.receive_data(data), None
    except h2.exceptions.ProtocolError as e:
        return None, e


def test_generator_valid_streams_are_http2():
    """The valid streams are HTTP/2 to h2's server, to hyperframe, and decode to the fields
    generated; the broken ones stop where the oracle says, of the kind they were made."""
    stats = collections.Counter()
    for plan in plans(150, SEED + 1):
        a = split(plan.data)
        stats[plan.kind] += 1
        if plan.kind == "valid":
            assert a.stop == "end", (a.stop, a.why)
            events, error = h2_server_accepts(plan.data)
            assert error is None, f"h2 refuses a generated stream: {error!r}"
            assert sum(isinstance(e, h2.events.RequestReceived) for e in events) == sum(1 for _, first, _ in plan.blocks if first)
            # hyperframe reads the same frames.
            at, seen = len(PREFACE), []
            while at < len(plan.data):
                f, length = HyperFrame.parse_frame_header(memoryview(plan.data[at : at + 9]))
                seen.append((at, f.type if f.type is not None else plan.data[at + 3], f.stream_id))
                at += 9 + length
            units = [(e.start, e.kind, e.stream) for e in a.events if isinstance(e, Other)]
            assert set(units) <= set(seen) and len(seen) >= len(a.events)
        if plan.kind != "preface":
            decoded = [(e.stream, e.first, list(e.fields)) for e in a.events if isinstance(e, Block)]
            want = [(s, first, list(fields)) for s, first, fields in plan.blocks][: len(decoded)]
            assert decoded == want, f"{plan.kind}: the blocks decode to other fields than generated"
        if plan.kind == "preface":
            assert a.stop == "no preface"
        elif plan.kind not in ("valid", "truncated"):
            assert a.stop == "malformed", f"{plan.kind}: {a.stop}"
            if plan.kind.startswith("hpack_"):
                assert a.why.startswith("hpack:"), (plan.kind, a.why)
            # h2 refuses it too.
            _, error = h2_server_accepts(plan.data)
            assert error is not None, f"h2 takes a stream broken by {plan.kind}"
    assert stats["valid"] > 80 and len(stats) > 10, stats


def model_rewrite(data, seed, mutate=None):
    """What the filter should do, by other means: every request head's trace headers
    dropped, four formats of one trace appended, every block re-encoded with a fresh
    encoder into other frames; `mutate` breaks one thing."""
    rng = random.Random(seed)
    a = split(data)
    if a.stop == "no preface":
        return data if mutate is None else None
    enc = Encoder(rng)
    out = bytearray(PREFACE)
    done = False
    for e in a.events:
        if isinstance(e, Other):
            raw = e.raw
            if mutate == "data" and not done and e.kind == DATA and len(raw) > 10:
                raw = raw[:-1] + bytes([raw[-1] ^ 1])
                done = True
            out += raw
            continue
        fields = list(e.fields)
        end_stream, priority = e.end_stream, e.priority
        if e.first:
            t, s = hexid(rng, 31) + "1", hexid(rng, 15) + "1"
            sent = [f for f in fields if is_trace(f.name)]
            if len(sent) == 1 and sent[0].name == b"traceparent" and TRACEPARENT.match(sent[0].value):
                t = sent[0].value[3:35].decode()  # continued
            added = [
                ("traceparent", f"00-{t}-{s}-01"),
                ("x-b3-traceid", t),
                ("x-b3-spanid", s),
                ("x-b3-sampled", "1"),
                ("uber-trace-id", f"{t}:{s}:0:1"),
                ("x-datadog-trace-id", str(int(t[16:], 16))),
                ("x-datadog-parent-id", str(int(s, 16))),
                ("x-datadog-sampling-priority", "1"),
                ("x-datadog-tags", f"_dd.p.tid={t[:16]}"),
            ]
            fields = [f for f in fields if not is_trace(f.name)] + [F(k.encode(), v.encode()) for k, v in added]
            regular = [i for i, f in enumerate(fields) if not f.name.startswith(b":") and not is_trace(f.name)]
            if not done and mutate == "value" and regular:
                i = rng.choice(regular)
                fields[i] = replace(fields[i], value=fields[i].value + b"!")
                done = True
            elif not done and mutate == "order" and (pairs := [i for i in regular if i + 1 in regular and fields[i] != fields[i + 1]]):
                i = rng.choice(pairs)
                fields[i], fields[i + 1] = fields[i + 1], fields[i]
                done = True
            elif not done and mutate == "drop" and regular:
                del fields[rng.choice(regular)]
                done = True
            elif not done and mutate == "never" and regular:
                i = rng.choice(regular)
                fields[i] = replace(fields[i], never=not fields[i].never)
                done = True
            elif not done and mutate == "ids":
                i = next(i for i, f in enumerate(fields) if f.name == b"x-b3-traceid")
                fields[i] = F(b"x-b3-traceid", (hexid(rng, 31) + "2").encode())
                done = True
            elif not done and mutate == "pseudo":
                fields.insert(0, F(b"b3", f"{t}-{s}-1".encode()))
                done = True
            elif not done and mutate == "priority" and priority is not None:
                priority = (priority[0], priority[1], (priority[2] + 1) % 256)
                done = True
            elif not done and mutate == "end_stream":
                end_stream = not end_stream
                done = True
        elif not done and mutate == "trailer":
            fields = [F(b"traceparent", f"00-{t}-{s}-01".encode()), *fields] if not any(f.name == b"traceparent" for f in fields) else [f for f in fields if f.name != b"traceparent"]
            done = True
        for f in header_frames(rng, e.stream, enc.block(fields), end_stream, priority):
            out += f
    tail = data[a.rest :]
    if mutate == "tail" and not done and a.stop == "malformed" and len(tail) > 9:
        tail = tail[:9] + bytes([tail[9] ^ 1]) + tail[10:]
        done = True
    return bytes(out) + tail if done or mutate is None else None


MUTATIONS = ["value", "order", "drop", "never", "ids", "pseudo", "priority", "end_stream", "trailer", "data", "tail"]


def test_oracle_accepts_identity_and_a_model_rewrite():
    stats = collections.Counter()
    for i, plan in enumerate(plans(120, SEED + 2)):
        check(plan.data, plan.data, stats=stats)
        # Holding a read cut off inside a frame header or a block is allowed (with whole
        # frames before it); holding a complete stream, or one cut inside DATA, is not.
        a = split(plan.data)
        tail = plan.data[a.rest :]
        if a.stop == "incomplete" and (len(tail) < 9 or tail[3] == HEADERS):
            cut = a.events[len(a.events) // 2].start if a.events else a.rest
            check(plan.data, plan.data[:cut], held=len(plan.data) - cut, stats=stats)
            stats["held checked"] += 1
        elif a.events:
            with pytest.raises(AssertionError):
                check(plan.data, plan.data[: a.events[-1].start], held=len(plan.data) - a.events[-1].start)
        model = model_rewrite(plan.data, i)
        job = {j for j in plan.sentinels}
        check(plan.data, model, job=job, stats=stats)
    assert stats["heads rewritten"] > 100 and stats["job heads"] > 10 and stats["trailers"] > 10, stats


def test_oracle_rejects_a_changed_stream():
    stats = collections.Counter()
    for i, plan in enumerate(plans(120, SEED + 3)):
        for mutate in MUTATIONS:
            broken = model_rewrite(plan.data, i, mutate)
            if broken is None:
                continue
            with pytest.raises(AssertionError):
                check(plan.data, broken)
                pytest.fail(f"case {i} ({plan.kind}): the oracle takes a stream changed by {mutate!r}")
            stats[mutate] += 1
    assert all(stats[m] > 3 for m in MUTATIONS), stats


def test_oracle_rejects_a_lost_or_reordered_frame():
    for plan in plans(60, SEED + 4):
        a = split(plan.data)
        others = [e for e in a.events if isinstance(e, Other)]
        if a.stop != "end" or len(others) < 2:
            continue
        x, y = others[0], others[-1]
        if x.raw == y.raw:
            continue
        dropped = plan.data[: x.start] + plan.data[x.end :]
        with pytest.raises(AssertionError):
            check(plan.data, dropped)
        swapped = plan.data[: x.start] + y.raw + plan.data[x.end : y.start] + x.raw + plan.data[y.end :]
        with pytest.raises(AssertionError):
            check(plan.data, swapped)


# --- the filter -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "stream_rewrite"], cwd=ROOT, check=True)
    return EXAMPLE


def request_line(plan, config, delayed=False):
    """The example's input line for one stream (`delayed`: the simulated HCM answers only
    after later writes; over HTTP/2 Envoy hands nothing back, so this must change nothing)."""
    return json.dumps({"config": json.dumps(config), "stream": base64.b64encode(plan.data).decode(), "writes": plan.writes, "eos": plan.eos, "delayed": delayed})


def run_example(example, cases):
    lines = "".join(request_line(p, c, delayed=i % 2 == 1) + "\n" for i, (p, c) in enumerate(cases))
    run = subprocess.run([str(example)], input=lines, capture_output=True, text=True, check=True)
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(answers) == len(cases)
    return answers


def probe():
    """One small valid request with a traceparent, under the job config."""
    enc = Encoder(random.Random(1))
    fields = [F(b":method", b"GET"), F(b":scheme", b"http"), F(b":authority", b"a"), F(b":path", b"/"), F(b"traceparent", f"00-{T}-{S}-01".encode())]
    data = PREFACE + frame(SETTINGS, 0, 0, b"") + frame(HEADERS, END_HEADERS | END_STREAM, 1, enc.block(fields))
    return Plan("valid", data, [(1, True, tuple(fields))], {0})


def all_cases(streams=STREAMS, seed=SEED):
    """(plan, config) for the run: the probe, then the generated streams."""
    rng = random.Random(seed)
    return [(probe(), CONFIGS[JOB_CONFIG])] + [(generate(rng), CONFIGS[i % len(CONFIGS)]) for i in range(streams)]


def xfail_without_h2(example):
    p = probe()
    (answer,) = run_example(example, [(p, CONFIGS[JOB_CONFIG])])
    if base64.b64decode(answer["output"]) == p.data and any(r.endswith("left.http2") for r in answer["left"]):
        pytest.xfail("the example passes HTTP/2 through untouched (network.left.http2): the filter does not follow h2 yet")


def test_h2_differential(example, capsys):
    xfail_without_h2(example)
    cases = all_cases()
    answers = run_example(example, cases)
    stats = collections.Counter()
    failures = []
    failed_kinds = collections.Counter()
    for i, ((plan, config), answer) in enumerate(zip(cases, answers, strict=True)):
        assert "error" not in answer, answer
        out = base64.b64decode(answer["output"])
        stats[f"kind {plan.kind}"] += 1
        for reason in answer["left"]:
            stats[reason.removeprefix("tracejoin.network.")] += 1
        job = plan.sentinels if config is CONFIGS[JOB_CONFIG] and not answer["left"] and not answer["closed"] else None
        try:
            if answer["closed"]:
                # Closed where `trust` is set, or where the filter stopped following once
                # Envoy's HPACK table differed from the client's (a dropped indexed literal):
                # blocks passed on as sent would then decode into other fields.
                diverged = answer["diverged"]
                assert config.get("trust") in ("restart", "resample") or diverged, "closed without trust"
                stats["closed"] += 1
            check(plan.data, out, answer["held"], answer["closed"], job, stats)
        except AssertionError as e:
            failed_kinds[plan.kind] += 1
            # The most telling first: valid streams, then changes before a stream breaks.
            rank = (plan.kind != "valid", str(e).startswith("after the last whole unit"))
            failures.append(
                (
                    rank,
                    f"case {i} ({plan.kind}, writes {plan.writes}, eos {plan.eos}; held {answer['held']}, closed {answer['closed']}, left {answer['left']}) {json.dumps(config)}\n  {e}\n"
                    f"  (the example's input: python {Path(__file__).relative_to(ROOT)} {i})",
                )
            )
    summary = (
        f"h2 differential: {len(cases)} streams, {stats['blocks']} blocks ({stats['heads rewritten']} heads rewritten, {stats['job heads']} checked for the four formats, "
        f"{stats['trailers']} trailers), {stats['frames']} other frames, {stats['closed']} closed; "
        + ", ".join(f"{k} {v}" for k, v in sorted(stats.items()) if k.startswith(("input ", "left.", "kind ")))
    )
    with capsys.disabled():
        print("\n" + summary)
    by_kind = ", ".join(f"{k} {v}" for k, v in failed_kinds.most_common())
    failures = [f for _, f in sorted(failures, key=lambda r: r[0])]
    assert not failures, f"{len(failures)} of {len(cases)} streams ({by_kind}):\n\n" + "\n\n".join(failures[:5])


def test_h2_dry_run(example, capsys):
    """The same streams under each config with `dry_run`: the HCM receives the client's
    bytes as they came (all of them, but for a frame or block still held at the end), no
    connection is closed (not for `trust`, and never for tables apart: a dry run encodes
    nothing, so Envoy's table stays the client's; the simulation's clock never reaches the
    held-head timeout), and where the live and the dry run both followed a connection to
    its end, the dry run read the same request blocks and counted as rewritten no more than
    the live run rewrote (equal, but that a live run whose table left the client's writes
    every later block back)."""
    xfail_without_h2(example)
    live_cases = all_cases()
    dry_cases = [(p, {**c, "dry_run": True}) for p, c in live_cases]
    live_answers = run_example(example, live_cases)
    dry_answers = run_example(example, dry_cases)
    stats = collections.Counter()
    failures = []
    for i, ((plan, config), live, dry) in enumerate(zip(dry_cases, live_answers, dry_answers, strict=True)):
        assert "error" not in dry, dry
        out = base64.b64decode(dry["output"])
        try:
            assert not dry["closed"], "a dry run closed the connection"
            assert plan.data.startswith(out), "a dry run passed bytes the client did not send"
            assert len(out) + dry["held"] == len(plan.data), f"{len(out)} bytes passed and {dry['held']} held of {len(plan.data)}"
            stats["heads"] += dry["heads"]
            stats["would rewrite"] += dry["rewritten"]
            if not (live["left"] or live["closed"] or dry["left"]):
                assert dry["heads"] == live["heads"], f"request blocks read: dry {dry['heads']}, live {live['heads']}"
                assert dry["rewritten"] <= live["rewritten"], f"would rewrite {dry['rewritten']}, rewritten live {live['rewritten']}"
                stats["compared with live"] += 1
            if live["closed"]:
                stats["closed live, not dry"] += 1
        except AssertionError as e:
            failures.append(
                f"case {i} ({plan.kind}, writes {plan.writes}, eos {plan.eos}; held {dry['held']}, left {dry['left']}) {json.dumps(config)}\n  {e}\n"
                f"  (the live run's input: python {Path(__file__).relative_to(ROOT)} {i})"
            )
    with capsys.disabled():
        print(
            f"\nh2 dry run: {len(dry_cases)} streams passed as they came, {stats['heads']} request blocks read, {stats['would rewrite']} would be rewritten; "
            f"{stats['compared with live']} compared with the live run, {stats['closed live, not dry']} closed live and left open dry"
        )
    assert stats["would rewrite"] > 0 and stats["closed live, not dry"] > 0, stats
    assert not failures, f"{len(failures)} of {len(dry_cases)} streams:\n\n" + "\n\n".join(failures[:5])


def test_h2_leaving_once_the_tables_differ(example):
    """A directed case: a request drops a trace header that came as a literal with
    incremental indexing (Envoy's table now lacks that entry), then, in a later read, a
    block the filter cannot follow (over `per_connection_buffer_limit_bytes`) that refers
    to the entries after it. Whatever the filter does then (follow on, translate, close),
    Envoy must not decode other fields than the client sent."""
    xfail_without_h2(example)
    enc = Encoder(random.Random(3))
    first = [F(b":method", b"GET"), F(b":scheme", b"http"), F(b":path", b"/"), F(b":authority", b"a")]
    block1 = b"".join(enc.field(f, "indexed" if f.name != b":authority" else "incremental") for f in first)
    block1 += enc.field(F(b"x-app", b"1"), "incremental")
    block1 += enc.field(F(b"traceparent", f"00-{T.upper()}-{S}-01".encode()), "incremental")  # invalid: replaced
    block1 += enc.field(F(b"x-other", b"2"), "incremental")
    # Client's table: x-other 62, traceparent 63, x-app 64, :authority 65.
    block2 = bytes([0x82, 0x86, 0x84]) + hpack_int(65, 7, 0x80) + hpack_int(63, 7, 0x80) + hpack_int(64, 7, 0x80)
    block2 += enc.field(F(b"x-big", b"v" * 40000), "without")
    head = PREFACE + frame(SETTINGS, 0, 0, b"") + frame(HEADERS, END_HEADERS | END_STREAM, 1, block1)
    data = head + b"".join(header_frames(random.Random(0), 3, block2, True, pieces=1))
    plans_ = [Plan("valid", data, writes=[len(head), len(data)]), Plan("valid", data, writes=[])]
    for plan in plans_:
        (answer,) = run_example(example, [(plan, CONFIGS[JOB_CONFIG])])
        check(data, base64.b64decode(answer["output"]), answer["held"], answer["closed"])


if __name__ == "__main__":
    # The example's input line for each case number given (as a failure names them), to
    # rerun one: `python tests/integration/test_h2_differential.py 22 | stream_rewrite`.
    import sys

    cases = all_cases(max(int(a) for a in sys.argv[1:]))
    for arg in sys.argv[1:]:
        print(request_line(*cases[int(arg)]))
