"""The network position for HTTP/2 clients, on a real Envoy: prior knowledge (h2c) and h2
after TLS with ALPN, tracejoin in front of the HTTP connection manager with the same config
as for HTTP/1.1. Envoy's tracer must read the context tracejoin chose, as in
test_network.py, whatever the client's HPACK does (Huffman or raw strings, indexed fields,
dynamic table size updates, literals never or not indexed, CONTINUATION frames, many
interleaved streams), and Envoy's answer to a reset or malformed stream must be the one it
gives without the filter.

Clients: curl and h2load (nghttp2), httpx, grpcio, and python-hyper's h2 over a raw socket
with an HPACK encoder the test steers. The upstream is the session's echo server (HTTP/1.1:
it answers with the headers it received), or a grpcio server behind an HTTP/2 cluster.
Assertions on the trace come last in each test, after the request went through and Envoy
stayed healthy (no connection or stream error, no wasm VM failure), so a filter that
passes HTTP/2 untouched fails on the trace only.
"""

import contextlib
import hashlib
import json
import random
import re
import shutil
import socket
import subprocess
import time
from concurrent import futures

import grpc
import h2.config
import h2.connection
import h2.events
import hpack
import httpx
import pytest
from hpack.hpack import encode_integer
from hpack.table import HeaderTable
from hyperframe.frame import ContinuationFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame, SettingsFrame

from tracejoin_tools.common import LOOPBACK, S, T
from tracejoin_tools.envoy import harness
from tracejoin_tools.envoy.trace_headers import assert_well_formed, envoys_span, one
from tracejoin_tools.envoy.vm_health import VM_CREATED, log_problems, vm_failures

INPUTS = {
    "tracecontext": [("traceparent", f"00-{T}-{S}-01")],
    "b3": [("b3", f"{T}-{S}-1")],
    "b3multi": [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "1")],
    "jaeger": [("uber-trace-id", f"{T}:{S}:0:1")],
}
W3C = INPUTS["tracecontext"]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def stat(envoy, name):
    return envoy.counter(name)


def ids(i):
    """A distinct (trace id, span id) per request."""
    digest = hashlib.sha256(f"h2-{i}".encode()).hexdigest()
    return digest[:32], digest[32:48]


def assert_joined(tracer, got, trace=T, span=S):
    """Envoy's span is in the client's trace, a child of the client's span."""
    assert_well_formed(got)
    envoy_trace, envoy_span, parent = envoys_span(tracer, got)
    assert envoy_trace == trace, f"trace not joined: Envoy's span is in trace {envoy_trace}, the client's is {trace}: {got}"
    assert envoy_span != span, "Envoy's own span, not the client's"
    if parent is not None:
        assert parent == span, f"trace joined under another parent: {parent}, the client's span is {span}"


# --- Envoy's health ------------------------------------------------------------------

# Counters that tell of a connection or a stream that failed (Envoy's HCM and its HTTP/2
# codec, TLS, the upstream) or that the filter closed.
ERRORS = re.compile(
    r"^(http\.ingress\.downstream_(cx_protocol_error|cx_destroy_local_active_rq|rq_4xx|rq_5xx|rq_rx_reset|rq_tx_reset)"
    r"|http2\.(rx_messaging_error|rx_reset|tx_reset|header_overflow|headers_cb_no_stream|too_many_header_frames|goaway_sent"
    r"|stream_refused_errors|tx_flush_timeout|keepalive_timeout|.*flood)"
    r"|listener\..*\.ssl\.connection_error|cluster\.echo\.upstream_(cx_protocol_error|rq_5xx|rq_rx_reset|rq_tx_reset)"
    r"|wasmcustom\.tracejoin\.network\.closed)$"
)


class Health:
    """Envoy's error counters, VM and log from now on."""

    def __init__(self, envoy):
        self.envoy = envoy
        self.before = envoy.stats()
        self.log_at = len(envoy.log())

    def errors(self, downstream=False):
        """The error counters that moved (`downstream`: but the upstream cluster's)."""
        after = self.envoy.stats()
        return {
            k: v - self.before.get(k, 0)
            for k, v in after.items()
            if ERRORS.match(k) and v != self.before.get(k, 0) and not (downstream and k.startswith("cluster."))
        }

    def check(self, errors=None, downstream=False):
        """No VM failed, no wasm problem in the log, and the error counters moved as given
        (default: none did)."""
        assert vm_failures(self.envoy.stats(), self.before.get(VM_CREATED)) == {}
        assert log_problems(self.envoy.log()[self.log_at :]) == []
        assert self.errors(downstream) == (errors or {})


# --- clients ----------------------------------------------------------------------------


def curl(url, headers=(), *options):
    """(HTTP version, status, what the upstream received) for one GET with curl."""
    command = ["curl", "-s", "-S", "--noproxy", "*", "-o", "-", "-w", "\n%{http_version} %{http_code}", *options]
    for name, value in headers:
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, timeout=30, check=True).stdout.decode()
    body, _, tail = out.rpartition("\n")
    version, status = tail.split()
    return version, int(status), (json.loads(body)["headers"] if status == "200" else None)


def h2c_url(envoy, path="/h2"):
    return f"http://{LOOPBACK}:{envoy.port}{path}"


class SteeredEncoder(hpack.Encoder):
    """hpack's encoder, with Huffman coding switchable per block (`huffman`) and the names in
    `unindexed` sent as literals without indexing (hpack itself writes every literal with
    incremental indexing, or never indexed)."""

    def __init__(self):
        super().__init__()
        self.huffman = True
        self.unindexed = set()

    def _string(self, data):
        if self.huffman:
            data = self.huffman_coder.encode(data)
            length = encode_integer(len(data), 7)
            length[0] |= 0x80
            return bytes(length) + data
        return bytes(encode_integer(len(data), 7)) + data

    def _without_indexing(self, name, value):
        for index, (static_name, _) in enumerate(HeaderTable.STATIC_TABLE, start=1):
            if static_name == name:
                return bytes(encode_integer(index, 4)) + self._string(value)
        return b"\x00" + self._string(name) + self._string(value)

    def encode(self, headers, huffman=True):
        block = []
        if self.header_table.resized:
            block.append(self._encode_table_size_change())
            self.header_table.resized = False
        for header in headers:
            name, value = (h if isinstance(h, bytes) else h.encode() for h in header[:2])
            sensitive = not header.indexable if isinstance(header, hpack.HeaderTuple) else (len(header) > 2 and bool(header[2]))
            if name in self.unindexed:
                block.append(self._without_indexing(name, value))
            else:
                block.append(self.add((name, value), sensitive, self.huffman))
        return b"".join(block)


class H2Client:
    """One HTTP/2 connection (prior knowledge) on python-hyper's h2 and a raw socket; the
    test steers its HPACK encoder (`encoder`) between requests."""

    def __init__(self, port):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.encoder = SteeredEncoder()
        self.conn.encoder = self.encoder
        self.conn.initiate_connection()
        self.responses = {}
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)
        return data

    def open(self, path, headers=(), end_stream=True, method="GET"):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", method), (":scheme", "http"), (":path", path), (":authority", "app"), *headers], end_stream=end_stream)
        self.responses[sid] = {"headers": None, "body": b"", "ended": False}
        return sid

    def pump(self):
        data = self.sock.recv(65536)
        assert data, f"Envoy closed the connection: {self.responses}"
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                self.responses[event.stream_id]["headers"] = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                self.responses[event.stream_id]["body"] += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.responses[event.stream_id]["ended"] = True
            elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                raise AssertionError(f"Envoy answered {event}")
        self.flush()

    def wait(self, sids):
        """{stream id: (status, what the upstream received)} once every stream ended."""
        while not all(self.responses[s]["ended"] for s in sids):
            self.pump()
        out = {}
        for s in sids:
            r = self.responses[s]
            status = int(r["headers"][":status"])
            out[s] = (status, json.loads(r["body"]) if status == 200 else r["body"])
        return out

    def get(self, path, headers=()):
        sid = self.open(path, headers)
        self.flush()
        return self.wait([sid])[sid]

    def close(self):
        self.sock.close()


# --- prior knowledge with curl: the HTTP/1.1 tests' cases ---------------------------------

CASES = [(tracer, f) for tracer in ("zipkin_w3c", "opentelemetry", "zipkin") for f in INPUTS]


@pytest.mark.parametrize("tracer,input_format", CASES, ids=[f"{t}-{f}" for t, f in CASES])
def test_envoys_span_joins_the_apps_trace(envoys, tracer, input_format):
    envoy = envoys.get("network", tracer)
    health = Health(envoy)
    version, status, got = curl(h2c_url(envoy), INPUTS[input_format], "--http2-prior-knowledge")
    assert (version, status) == ("2", 200)
    health.check()
    assert_joined(tracer, got)


@pytest.mark.parametrize(
    "tracer,headers",
    [("opentelemetry", INPUTS["b3"]), ("zipkin", W3C)],
    ids=["b3-app-under-opentelemetry", "w3c-app-under-zipkin"],
)
def test_without_the_network_filter_envoys_span_starts_a_fresh_trace(envoys, tracer, headers):
    """The same requests on the same Envoy without tracejoin: what the filter has to fix."""
    envoy = envoys.get("off", tracer)
    version, status, got = curl(h2c_url(envoy), headers, "--http2-prior-knowledge")
    assert (version, status) == ("2", 200)
    trace, _, _ = envoys_span(tracer, got)
    assert trace != T


# --- Envoy's own answers to reset and malformed streams -------------------------------------


def frame(f):
    return f.serialize()


def headers_frame(sid, block, flags=("END_HEADERS", "END_STREAM")):
    f = HeadersFrame(sid)
    f.data = block
    f.flags = set(flags)
    return frame(f)


def block_for(encoder, path, headers=()):
    return encoder.encode([(":method", "GET"), (":scheme", "http"), (":path", path), (":authority", "app"), *headers])


def continuation(sid, block, end=True):
    f = ContinuationFrame(sid)
    f.data = block
    if end:
        f.flags.add("END_HEADERS")
    return frame(f)


def rst(sid, code=8):
    return frame(RstStreamFrame(sid, error_code=code))


PING = frame(PingFrame(0, opaque_data=b"tjping01"))


def shape(name):
    """The bytes of one client connection: a preface, then a reset or malformed stream, then
    (where the connection should go on) a well-formed request on stream 3, then a PING."""
    enc = hpack.Encoder()
    block = block_for(enc, "/reset", W3C)
    next_request = headers_frame(3, block_for(enc, "/after", W3C))
    start = PREFACE + frame(SettingsFrame(0))
    return start + {
        "rst-after-headers": headers_frame(1, block, ("END_HEADERS",)) + rst(1) + next_request + PING,
        "rst-after-a-whole-request": headers_frame(1, block) + rst(1) + next_request + PING,
        "rst-inside-a-header-block": headers_frame(1, block[:10], ()) + rst(1) + PING,
        "continuation-on-another-stream": headers_frame(1, block[:10], ()) + continuation(3, block[10:]) + PING,
        "continuation-without-headers": continuation(1, block) + PING,
        "headers-on-an-even-stream": headers_frame(2, block) + PING,
    }[name]


def answer(port, data, wanted, limit=5.0):
    """What Envoy sends back on a connection given these bytes, as a comparable list: its
    HEADERS (stream, :status), RST_STREAM (stream, error code) and GOAWAY (last stream,
    error code) frames in order, then `closed` if it closed the connection; and what the
    upstream received for stream 3. Reads until the connection closes, or until the PING
    is answered and the `wanted` streams ended."""
    sock = socket.create_connection((LOOPBACK, port), timeout=limit)
    sock.sendall(data)
    decoder = hpack.Decoder()
    buf, out, pinged, ended, closed = b"", [], False, set(), False
    deadline = time.monotonic() + limit
    bodies = {}
    try:
        while time.monotonic() < deadline and not (pinged and wanted <= ended):
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                closed = True
                break
            buf += chunk
            while len(buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(buf[:9]))
                if len(buf) < 9 + length:
                    break
                f.parse_body(memoryview(buf[9 : 9 + length]))
                buf = buf[9 + length :]
                if isinstance(f, HeadersFrame):
                    out.append(("HEADERS", f.stream_id, dict(decoder.decode(f.data)).get(":status")))
                elif isinstance(f, RstStreamFrame):
                    out.append(("RST_STREAM", f.stream_id, f.error_code))
                elif isinstance(f, GoAwayFrame):
                    out.append(("GOAWAY", f.last_stream_id, f.error_code))
                    # Envoy closes after its GOAWAY when the client has (else 1 s later).
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_WR)
                elif isinstance(f, PingFrame) and "ACK" in f.flags:
                    pinged = True
                elif f.type == 0:  # DATA
                    bodies[f.stream_id] = bodies.get(f.stream_id, b"") + f.data
                if "END_STREAM" in f.flags and f.stream_id:
                    ended.add(f.stream_id)
    finally:
        sock.close()
    got = json.loads(bodies[3])["headers"] if 3 in bodies and 3 in ended else None
    return out + (["closed"] if closed else []), got


SHAPES = [
    "rst-after-headers",
    "rst-after-a-whole-request",
    "rst-inside-a-header-block",
    "continuation-on-another-stream",
    "continuation-without-headers",
    "headers-on-an-even-stream",
]


@pytest.mark.parametrize("name", SHAPES)
def test_envoys_answer_to_a_reset_or_malformed_stream_is_unchanged(envoys, name):
    """RST_STREAM right after a request's HEADERS (the connection goes on: a request on
    stream 3 is answered and, through tracejoin, joined); RST_STREAM, or a CONTINUATION of
    another stream, inside a header block, and other frames Envoy's codec refuses (GOAWAY
    PROTOCOL_ERROR): the same frames come back with and without the filter, and the same
    error counters move."""
    data = shape(name)
    goes_on = name.startswith("rst-after")
    wanted = {3} if goes_on else set()
    without = envoys.get("off", "zipkin")
    health = Health(without)
    expected, _ = answer(without.port, data, wanted)
    # (Whether a reset request had reached the upstream yet is timing: not compared.)
    expected_errors = health.errors(downstream=True)
    envoy = envoys.get("network", "zipkin")
    health = Health(envoy)
    got, after = answer(envoy.port, data, wanted)
    assert got == expected
    if goes_on:
        assert ("HEADERS", 3, "200") in got and "closed" not in got, got
    else:
        # A GOAWAY PROTOCOL_ERROR, or (a HEADERS frame on a stream id a client cannot use)
        # nothing: the connection closed.
        assert got[-1] == "closed" and all(f[2] == 1 for f in got[:-1] if f[0] == "GOAWAY"), f"PROTOCOL_ERROR expected: {got}"
    health.check(expected_errors, downstream=True)
    if after is not None:
        assert_joined("zipkin", after)


# --- HPACK on one connection -------------------------------------------------------------

# About 24 KB: more than a 16 KB frame (HEADERS and CONTINUATION), less than the buffer limit
# the filter holds a block within (per_connection_buffer_limit_bytes, 32 KiB by default).
BIG = [(f"x-big-{i}", "".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=2000))) for i in range(12)]
# About 48 KB (37 KB in Huffman): over that limit, under Envoy's 60 KiB.
HUGE = [(f"x-huge-{i}", "".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=2000))) for i in range(24)]


def hpack_requests(client):
    """Requests on one connection, each encoded another way; yields (case, trace, span,
    headers sent, status, the echo server's answer)."""
    enc = client.encoder
    steps = [
        ("huffman", dict(huffman=True), 1, []),
        ("raw-strings", dict(huffman=False), 2, []),
        # The same traceparent again: an indexed field from the dynamic table.
        ("indexed-from-the-table", dict(huffman=False), 2, []),
        # Two size updates in one block: the table emptied, then 4096 again.
        ("table-emptied-and-regrown", dict(huffman=False, sizes=(0, 4096)), 3, []),
        ("table-size-zero", dict(huffman=True, sizes=(0,)), 4, []),
        ("never-indexed", dict(huffman=True, sizes=(256,), never=True), 5, []),
        ("without-indexing-raw", dict(huffman=False, sizes=(4096,), unindexed={b"traceparent", b"user-agent"}), 6, [("user-agent", "h2-raw/1")]),
        ("without-indexing-huffman", dict(huffman=True, unindexed={b"traceparent", b"x-case"}), 7, []),
        # 24 KB of raw strings: HEADERS and CONTINUATION frames.
        ("continuation-raw", dict(huffman=False), 8, BIG),
        ("after-all-that", dict(huffman=True), 1, []),
    ]
    for case, how, i, extra in steps:
        for size in how.get("sizes", ()):
            enc.header_table_size = size
        enc.huffman = how["huffman"]
        enc.unindexed = how.get("unindexed", set())
        trace, span = ids(i)
        tp = f"00-{trace}-{span}-01"
        field = hpack.NeverIndexedHeaderTuple("traceparent", tp) if how.get("never") else ("traceparent", tp)
        sent = [("x-case", case), field, *extra]
        status, echoed = client.get(f"/hpack/{case}", sent)
        yield case, trace, span, sent, status, echoed


@pytest.mark.parametrize("position", ["off", "network"])
def test_huffman_raw_strings_and_table_size_updates(envoys, position):
    """Without tracejoin, Envoy takes every request as sent (the client is right); with it,
    the same, and each request's trace joined."""
    envoy = envoys.get(position, "zipkin")
    health = Health(envoy)
    client = H2Client(envoy.port)
    results = []
    try:
        for case, trace, span, sent, status, echoed in hpack_requests(client):
            assert status == 200, (case, echoed)
            got = echoed["headers"]
            for name, value in sent:
                if name != "traceparent":
                    assert one(got, str(name)) == value, (case, name)
            assert one(got, "traceparent") == f"00-{trace}-{span}-01", case
            results.append((case, trace, span, got))
    finally:
        client.close()
    health.check()
    for case, trace, span, got in results:
        if position == "off":
            assert envoys_span("zipkin", got)[0] != trace, case
        else:
            assert_joined("zipkin", got, trace, span)


def test_many_interleaved_streams(envoys):
    """20 streams opened at once (HEADERS each), then their bodies interleaved a DATA frame
    per stream at a time: each request reaches the upstream with its body and is joined to
    its own trace."""
    envoy = envoys.get("network", "zipkin")
    health = Health(envoy)
    client = H2Client(envoy.port)
    bodies, traces = {}, {}
    try:
        for i in range(20):
            trace, span = ids(100 + i)
            sid = client.open(f"/interleaved/{i}", [("traceparent", f"00-{trace}-{span}-01"), ("content-type", "application/octet-stream")], end_stream=False, method="POST")
            traces[sid] = (trace, span)
            bodies[sid] = random.Random(i).randbytes(2100)
        client.flush()
        for part in range(3):
            for sid, body in bodies.items():
                client.conn.send_data(sid, body[part * 700 : (part + 1) * 700], end_stream=part == 2)
                client.flush()
        answers = client.wait(list(bodies))
    finally:
        client.close()
    for sid, (status, echoed) in answers.items():
        assert status == 200 and echoed["body_sha256"] == hashlib.sha256(bodies[sid]).hexdigest(), sid
    health.check()
    for sid, (_, echoed) in answers.items():
        assert_joined("zipkin", echoed["headers"], *traces[sid])


def test_a_header_block_in_continuation_frames(envoys):
    """curl (nghttp2, Huffman where shorter) with 24 KB of headers: more than a 16 KB frame,
    so HEADERS and CONTINUATION; every header reaches the upstream intact, the trace headers
    added."""
    assert len(hpack.Encoder().encode(BIG)) > 16384, "the block needs a CONTINUATION frame"
    envoy = envoys.get("network", "zipkin")
    health = Health(envoy)
    version, status, got = curl(h2c_url(envoy, "/big"), [*BIG, *W3C], "--http2-prior-knowledge")
    assert (version, status) == ("2", 200)
    for name, value in BIG:
        assert one(got, name) == value, name
    health.check()
    assert_joined("zipkin", got)


def test_a_block_over_the_buffer_limit_passes_on_untouched(envoys):
    """A 48 KB block is more than the filter holds (per_connection_buffer_limit_bytes): the
    connection is left as it is, counted, and Envoy serves it; with the listener's limit
    configured higher, the block is rewritten."""
    envoy = envoys.get("network", "zipkin")
    before = stat(envoy, "network.left.too_large")
    version, status, got = curl(h2c_url(envoy, "/huge"), [*HUGE, *W3C], "--http2-prior-knowledge")
    assert (version, status) == ("2", 200)
    for name, value in HUGE:
        assert one(got, name) == value, name
    assert stat(envoy, "network.left.too_large") == before + 1
    assert envoys_span("zipkin", got)[0] != T
    roomy = envoys.get("network", "zipkin", network_config={"position": "network", "tracer": "zipkin", "per_connection_buffer_limit_bytes": 1 << 20})
    version, status, got = curl(h2c_url(roomy, "/huge"), [*HUGE, *W3C], "--http2-prior-knowledge")
    assert (version, status) == ("2", 200)
    assert_joined("zipkin", got)


def test_httpx_over_prior_knowledge(envoys):
    envoy = envoys.get("network", "zipkin")
    health = Health(envoy)
    with httpx.Client(http1=False, http2=True, trust_env=False, timeout=10) as client:
        answers = [client.get(h2c_url(envoy, f"/httpx/{i}"), headers={"traceparent": f"00-{ids(200 + i)[0]}-{ids(200 + i)[1]}-01"}) for i in range(5)]
    assert all(r.status_code == 200 and r.http_version == "HTTP/2" for r in answers)
    health.check()
    for i, r in enumerate(answers):
        assert_joined("zipkin", r.json()["headers"], *ids(200 + i))


# --- h2load: many concurrent streams on two connections -------------------------------------


def answered_by_envoy(config):
    """The config with its routes answered by Envoy itself (200, no upstream): under load, the
    test's Python upstream refuses connections now and then (5xx with or without tracejoin)."""
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][-1]["typed_config"]
    hcm["route_config"]["virtual_hosts"][0]["routes"] = [{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]
    return config


def test_h2load_many_concurrent_streams(upstream_port, wasm):
    """2 connections x 50 concurrent streams, 2,000 requests: every one answered, every
    header block rewritten (Envoy's Zipkin tracer reads x-b3-* the filter wrote), no
    connection error, no VM failure."""
    h2load = shutil.which("h2load")
    if h2load is None:
        pytest.skip("h2load not found: make setup installs it (Debian package nghttp2-client)")
    config = harness.render_config(upstream_port, tracer="zipkin", position="network", wasm_path=wasm)
    with harness.Envoy(answered_by_envoy(config)) as envoy:
        health = Health(envoy)
        before = stat(envoy, "network.rewritten")
        out = subprocess.run(
            [h2load, "-c", "2", "-m", "50", "-n", "2000", "-H", f"traceparent: 00-{T}-{S}-01", h2c_url(envoy, "/load")],
            capture_output=True, text=True, timeout=120,
        ).stdout
        requests = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
        assert requests and requests.groups() == ("2000", "2000", "2000", "2000", "0", "0", "0"), out
        assert re.search(r"status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx", out), out
        health.check()
        assert stat(envoy, "network.rewritten") - before == 2000, f"trace not joined: heads rewritten {envoy.stats('tracejoin.network')}"
        # Envoy's HTTP/2 codec takes every byte passed on: nothing is handed back.
        assert stat(envoy, "network.represented") == 0


# --- trust: restart at a gateway ----------------------------------------------------------


def test_restart_at_the_edge_gives_envoy_a_new_root(envoys):
    envoy = envoys.get("network", "zipkin", {"position": "network", "tracer": "zipkin", "trust": "restart"})
    health = Health(envoy)
    before = stat(envoy, "restarted")
    version, status, got = curl(h2c_url(envoy), [*INPUTS["b3multi"], ("x-b3-flags", "1"), *W3C], "--http2-prior-knowledge")
    assert (version, status) == ("2", 200)
    health.check()
    trace, _, parent = envoys_span("zipkin", got)
    assert trace != T and parent is None, f"trace not restarted: {got}"
    assert T not in json.dumps(got), "the client's trace id goes nowhere"
    assert stat(envoy, "restarted") - before == 1


# --- h2 after TLS with ALPN, at a gateway-like listener --------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made now."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-subj", "/CN=tracejoin-test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return str(cert), str(key)


def tls_listener(config, certificate):
    cert, key = certificate
    config["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {
                "alpn_protocols": ["h2", "http/1.1"],
                "tls_certificates": [{"certificate_chain": {"filename": cert}, "private_key": {"filename": key}}],
            },
        },
    }
    return config


@pytest.fixture(scope="module")
def tls_envoys(upstream_port, wasm, certificate):
    """(Envoy without tracejoin, Envoy with it in front of the HCM, after TLS), Zipkin."""
    started = []
    try:
        for position in ("off", "network"):
            config = harness.render_config(upstream_port, tracer="zipkin", position=position, wasm_path=wasm)
            started.append(harness.Envoy(tls_listener(config, certificate)).__enter__())
        yield started
    finally:
        for envoy in started:
            envoy.__exit__(None, None, None)


def https_url(envoy, path="/tls"):
    return f"https://{LOOPBACK}:{envoy.port}{path}"


def test_tls_alpn_h2_without_the_filter_starts_a_fresh_trace(tls_envoys):
    without, _ = tls_envoys
    version, status, got = curl(https_url(without), W3C, "--http2", "-k")
    assert (version, status) == ("2", 200)
    assert envoys_span("zipkin", got)[0] != T


def test_tls_alpn_http1_is_joined(tls_envoys):
    """The filter reads plaintext after TLS: an HTTP/1.1 client (ALPN http/1.1) is joined."""
    _, envoy = tls_envoys
    health = Health(envoy)
    version, status, got = curl(https_url(envoy), W3C, "--http1.1", "-k")
    assert (version, status) == ("1.1", 200)
    health.check()
    assert_joined("zipkin", got)


def test_tls_alpn_h2_with_curl(tls_envoys):
    _, envoy = tls_envoys
    health = Health(envoy)
    version, status, got = curl(https_url(envoy), W3C, "--http2", "-k")
    assert (version, status) == ("2", 200)
    health.check()
    assert_joined("zipkin", got)


def test_tls_alpn_h2_with_httpx(tls_envoys):
    _, envoy = tls_envoys
    health = Health(envoy)
    with httpx.Client(http2=True, verify=False, trust_env=False, timeout=10) as client:
        answers = [client.get(https_url(envoy, f"/tls/{i}"), headers={"traceparent": f"00-{ids(300 + i)[0]}-{ids(300 + i)[1]}-01"}) for i in range(3)]
    assert all(r.status_code == 200 and r.http_version == "HTTP/2" for r in answers)
    health.check()
    for i, r in enumerate(answers):
        assert_joined("zipkin", r.json()["headers"], *ids(300 + i))


# --- gRPC: grpcio through Envoy to a grpcio server (an HTTP/2 upstream cluster) --------------


class GrpcApp:
    """A grpcio server with one raw-bytes method that answers with the metadata it got, as
    JSON [[key, value], ...]."""

    def __init__(self):
        def call(_request, context):
            return json.dumps([[m.key, m.value] for m in context.invocation_metadata()]).encode()

        handler = grpc.method_handlers_generic_handler("tracejoin.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[handler])
        self.port = self.server.add_insecure_port(f"{LOOPBACK}:0")
        self.server.start()

    def stop(self):
        self.server.stop(None)


@pytest.fixture(scope="module")
def grpc_app():
    app = GrpcApp()
    yield app
    app.stop()


def grpc_envoy(app, collector_port, wasm, tracer, position):
    """An Envoy whose `echo` cluster is the gRPC server over HTTP/2; spans go to the echo server."""
    config = harness.render_config(app.port, tracer=tracer, position=position, wasm_path=wasm)
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] == "echo":
            cluster["typed_extension_protocol_options"] = {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}},
                }
            }
        else:
            cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"] = collector_port
    return harness.Envoy(config).__enter__()


def grpc_call(envoy, metadata):
    with grpc.insecure_channel(f"{LOOPBACK}:{envoy.port}", options=[("grpc.enable_http_proxy", 0)]) as channel:
        answer = channel.unary_unary("/tracejoin.Echo/Call")(b"hello", metadata=metadata, timeout=10)
    return [tuple(pair) for pair in json.loads(answer)]


GRPC_CASES = [("zipkin", "tracecontext"), ("zipkin_w3c", "jaeger"), ("opentelemetry", "b3")]


@pytest.mark.parametrize("tracer,input_format", GRPC_CASES, ids=[f"{t}-{f}" for t, f in GRPC_CASES])
def test_grpc_client_and_server(grpc_app, upstream_port, wasm, tracer, input_format):
    envoy = grpc_envoy(grpc_app, upstream_port, wasm, tracer, "network")
    try:
        health = Health(envoy)
        got = grpc_call(envoy, INPUTS[input_format])
        assert one(got, "x-request-id"), f"not through Envoy: {got}"
        health.check()
        assert_joined(tracer, got)
    finally:
        envoy.__exit__(None, None, None)


def test_grpc_without_the_filter_starts_a_fresh_trace(grpc_app, upstream_port, wasm):
    envoy = grpc_envoy(grpc_app, upstream_port, wasm, "zipkin", "off")
    try:
        got = grpc_call(envoy, W3C)
        assert one(got, "traceparent") == W3C[0][1]
        assert envoys_span("zipkin", got)[0] != T
    finally:
        envoy.__exit__(None, None, None)
