"""The network position in a real Envoy: tracejoin as a network filter in front of the HTTP
connection manager, rewriting request heads before Envoy's tracer reads them.

Asserts on what the upstream (the app's stand-in) receives: the headers Envoy's tracer
injected for its own span say which trace that span joined and under which parent. Raw
sockets send what http.client cannot (pipelining, one byte per write, smuggling shapes).
"""

import hashlib
import json
import random
import socket
import subprocess

import pytest

from tracejoin_tools.common import LOOPBACK, S, T, datadog_ids, xray
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import assert_well_formed, envoys_span, header_values, one, read_all
from tracejoin_tools.envoy.vm_health import log_problems, vm_failures

TRACERS = ("zipkin", "zipkin_w3c", "opentelemetry")
INPUTS = {
    "tracecontext": [("traceparent", f"00-{T}-{S}-01")],
    "b3": [("b3", f"{T}-{S}-1")],
    "b3multi": [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "1")],
    "jaeger": [("uber-trace-id", f"{T}:{S}:0:1")],
}


def stat(envoy, name):
    return envoy.counter(name)


@pytest.mark.parametrize("input_format", INPUTS)
@pytest.mark.parametrize("tracer", TRACERS)
def test_envoys_span_joins_the_apps_trace(envoys, tracer, input_format):
    envoy = envoys.get("network", tracer)
    status, _, got = send(envoy.port, INPUTS[input_format])
    assert status == 200
    assert_well_formed(got)
    trace, span, parent = envoys_span(tracer, got)
    assert trace == T, got
    assert span != S, "Envoy's own span, not the app's"
    if parent is not None:
        assert parent == S, "Envoy's span is a child of the app's span"


@pytest.mark.parametrize(
    "tracer,headers",
    [("zipkin", INPUTS["tracecontext"]), ("opentelemetry", INPUTS["b3"])],
    ids=["w3c-app-under-zipkin", "b3-app-under-opentelemetry"],
)
def test_without_the_network_filter_envoys_span_starts_a_fresh_trace(envoys, tracer, headers):
    """What the network position fixes, measured on the same Envoy without it."""
    envoy = envoys.get("off", tracer)
    _, _, got = send(envoy.port, headers)
    trace, _, _ = envoys_span(tracer, got)
    assert trace != T


def test_invalid_values_never_reach_envoys_parser(envoys):
    # Envoy's OpenTelemetry tracer would continue an uppercase or version-ff traceparent.
    envoy = envoys.get("network", "opentelemetry")
    for bad in (f"00-{T.upper()}-{S}-01", f"ff-{T}-{S}-01"):
        _, _, got = send(envoy.port, [("traceparent", bad), ("tracestate", "a=1")])
        trace, _, _ = envoys_span("opentelemetry", got)
        assert trace != T, f"{bad}: Envoy continued a value tracejoin reads as invalid"
        assert one(got, "tracestate") in (None, ""), got
    assert stat(envoy, "invalid.tracecontext") == 2


def test_restart_at_the_edge_gives_envoy_a_new_root(envoys):
    envoy = envoys.get("network", "zipkin", {"position": "network", "tracer": "zipkin", "trust": "restart"})
    _, _, got = send(envoy.port, [*INPUTS["b3multi"], ("x-b3-flags", "1"), ("traceparent", f"00-{T}-{S}-01")])
    trace, _, parent = envoys_span("zipkin", got)
    assert trace != T and parent is None, got
    assert T not in json.dumps(got), "the client's trace id goes nowhere"
    assert stat(envoy, "restarted") == 1


@pytest.mark.parametrize("tracer", ["zipkin", "opentelemetry"])
def test_resample_at_the_edge_decides_envoys_sampling(envoys, tracer):
    config = {"position": "network", "tracer": tracer, "trust": "resample", "sampling_ratio": 0}
    envoy = envoys.get("network", tracer, config)
    forced = [*INPUTS["b3multi"], ("x-b3-flags", "1")] if tracer == "zipkin" else INPUTS["tracecontext"]
    _, _, got = send(envoy.port, forced)
    trace, _, _ = envoys_span(tracer, got)
    assert trace == T, "the ids go on"
    if tracer == "zipkin":
        assert one(got, "x-b3-sampled") == "0" and one(got, "x-b3-flags") is None, got
    else:
        assert one(got, "traceparent").endswith("-00"), got
    assert stat(envoy, "sampling.not_sampled") == 1


# ---------------------------------------------------------------------------------------
# Raw connections
# ---------------------------------------------------------------------------------------


class Raw:
    """One client connection that writes bytes as given and reads responses in order."""

    def __init__(self, port):
        self.sock = socket.create_connection((LOOPBACK, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb")

    def write(self, data, pieces=1):
        step = max(1, -(-len(data) // pieces))
        for at in range(0, len(data), step):
            self.sock.sendall(data[at : at + step])

    def response(self):
        """(status, headers, body); body None when the connection closed instead."""
        line = self.reader.readline()
        if not line:
            return None, [], None
        status = int(line.split()[1])
        headers = []
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip().lower(), value.strip()))
        length = dict(headers).get("content-length")
        body = self.reader.read(int(length)) if length else b""
        return status, headers, body

    def close(self):
        self.reader.close()
        self.sock.close()


def request(path="/", headers=(), body=None, chunked=None):
    lines = [f"POST {path} HTTP/1.1" if body is not None or chunked else f"GET {path} HTTP/1.1", "Host: app"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    if chunked is not None:
        lines.append("Transfer-Encoding: chunked")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    if chunked is not None:
        encoded = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunked) + b"0\r\n\r\n"
        return head + encoded
    return head + (body or b"")


W3C = [("traceparent", f"00-{T}-{S}-01")]


def received(body):
    return json.loads(body)


def test_a_head_written_a_byte_at_a_time(envoys):
    envoy = envoys.get("network", "zipkin")
    conn = Raw(envoy.port)
    try:
        data = request("/slow", W3C)
        conn.write(data, pieces=len(data))
        status, _, body = conn.response()
        assert status == 200
        assert one(received(body)["headers"], "x-b3-parentspanid") == S
    finally:
        conn.close()


def test_keep_alive_requests_are_each_joined(envoys):
    envoy = envoys.get("network", "zipkin")
    before = stat(envoy, "network.rewritten")
    conn = Raw(envoy.port)
    try:
        for i in range(20):
            conn.write(request(f"/{i}", W3C))
            status, _, body = conn.response()
            assert status == 200 and one(received(body)["headers"], "x-b3-traceid") == T
    finally:
        conn.close()
    assert stat(envoy, "network.rewritten") - before == 20


def test_pipelined_requests_keep_their_framing(envoys):
    envoy = envoys.get("network", "zipkin")
    before = stat(envoy, "network.left.pipelined")
    conn = Raw(envoy.port)
    try:
        bodies = [b"first", b"", b"third body\r\n\r\nGET /fake HTTP/1.1\r\n\r\n"]
        data = b"".join(request(f"/p{i}", W3C, body=b) for i, b in enumerate(bodies))
        conn.write(data)
        for i, b in enumerate(bodies):
            status, _, body = conn.response()
            answer = received(body)
            assert status == 200 and answer["path"] == f"/p{i}"
            assert answer["body_sha256"] == hashlib.sha256(b).hexdigest()
    finally:
        conn.close()
    assert stat(envoy, "network.left.pipelined") - before == 1


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_uploads_arrive_byte_identical(envoys, framing):
    rnd = random.Random(7)
    payload = bytes(rnd.getrandbits(8) for _ in range(1 << 20))
    envoy = envoys.get("network", "zipkin")
    conn = Raw(envoy.port)
    try:
        if framing == "chunked":
            pieces, at = [], 0
            while at < len(payload):
                n = rnd.randint(1, 70000)
                pieces.append(payload[at : at + n])
                at += n
            data = request("/up", W3C, chunked=pieces)
        else:
            data = request("/up", W3C, body=payload)
        conn.write(data, pieces=37)
        status, _, body = conn.response()
        answer = received(body)
        assert status == 200
        assert (answer["body_length"], answer["body_sha256"]) == (len(payload), hashlib.sha256(payload).hexdigest())
        assert one(answer["headers"], "x-b3-parentspanid") == S
        # The connection goes on in step after the body.
        conn.write(request("/after", W3C))
        status, _, body = conn.response()
        assert status == 200 and one(received(body)["headers"], "x-b3-traceid") == T
    finally:
        conn.close()


def test_expect_100_continue(envoys):
    envoy = envoys.get("network", "zipkin")
    conn = Raw(envoy.port)
    try:
        head = request("/e", [*W3C, ("Expect", "100-continue")], body=b"")
        head = head.replace(b"Content-Length: 0", b"Content-Length: 5")
        conn.write(head)
        status, _, _ = conn.response()
        assert status == 100, "the head reached Envoy without waiting for the body"
        conn.write(b"hello")
        status, _, body = conn.response()
        assert status == 200 and received(body)["body_sha256"] == hashlib.sha256(b"hello").hexdigest()
    finally:
        conn.close()


def test_http2_prior_knowledge_joins_the_trace_too(envoys):
    envoy = envoys.get("network", "zipkin")
    out = subprocess.run(
        ["curl", "-s", "--http2-prior-knowledge", "-H", f"traceparent: 00-{T}-{S}-01", f"http://{LOOPBACK}:{envoy.port}/h2"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    answer = json.loads(out.stdout)
    assert answer["path"] == "/h2"
    # The header block is rewritten (tests/integration/test_network_http2.py has the rest):
    # Envoy's B3-only tracer continues the W3C client's trace, under the client's span.
    assert one(answer["headers"], "x-b3-traceid") == T
    assert one(answer["headers"], "x-b3-parentspanid") == S
    assert stat(envoy, "network.rewritten") >= 1
    assert stat(envoy, "network.left.http2") == 0


# Requests Envoy's own codec answers: the network filter must not change the answer.
REFUSED = {
    "cl-and-te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two-content-lengths": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\ntraceparent: 00-" + T.encode() + b"-" + S.encode() + b"-01\r\n\r\n",
    "bare-cr": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\rX-B: 2\r\n\r\n",
    "bare-lf": b"GET / HTTP/1.1\nHost: a\ntraceparent: 00-" + T.encode() + b"-" + S.encode() + b"-01\n\n",
    "nul-in-value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \x00\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "te-gzip": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
    "huge-head": b"GET / HTTP/1.1\r\nHost: a\r\nCookie: " + b"c" * 70000 + b"\r\n\r\n",
    "101-headers": b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"x-h%d: v\r\n" % i for i in range(101)) + b"\r\n",
    "tls-hello": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(32)),
    "not-http": b"hello there\r\n\r\n",
    "http2-preface-garbled": b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
}


def answers(port, data):
    conn = Raw(port)
    try:
        conn.write(data)
        status, _, body = conn.response()
        return status, (received(body)["body_sha256"] if status == 200 else None)
    except (TimeoutError, ConnectionError):
        return "closed", None
    finally:
        conn.close()


def test_envoys_own_answers_are_unchanged(envoys):
    without = envoys.get("off", "zipkin")
    expected = {name: answers(without.port, data) for name, data in REFUSED.items()}
    envoy = envoys.get("network", "zipkin")
    created = envoy.stats("wasm").get("wasm.envoy.wasm.runtime.v8.created")
    left_before = sum(envoy.stats("tracejoin.network.left").values())
    rewritten_before = stat(envoy, "network.rewritten")
    got = {name: answers(envoy.port, data) for name, data in REFUSED.items()}
    assert got == expected
    assert not any(status == 503 or status == 500 for status, _ in got.values())
    # Each was left byte for byte (counted) but the 101-header one, a well-formed head with
    # nothing to rewrite (Envoy's 431 is for its count); none was rewritten.
    left = sum(envoy.stats("tracejoin.network.left").values()) - left_before
    assert left == len(REFUSED) - 1, envoy.stats("tracejoin.network")
    assert stat(envoy, "network.rewritten") == rewritten_before
    assert vm_failures(envoy.stats(), created) == {}
    assert log_problems(envoy.log()) == []


def test_a_slow_client_that_gives_up_leaves_nothing_behind(envoys):
    envoy = envoys.get("network", "zipkin")
    conn = Raw(envoy.port)
    conn.write(b"GET /never HTTP/1.1\r\nHost: a\r\ntracepar")
    conn.close()
    status, _, got = send(envoy.port, W3C)
    assert status == 200 and one(got, "x-b3-traceid") == T


@pytest.mark.parametrize("http_position", ["downstream", "upstream"])
@pytest.mark.parametrize("tracer", TRACERS)
def test_network_with_an_http_filter_writes_one_context(envoys, http_position, tracer):
    """Deployments 2 and 3: the network filter in front, the HTTP filter behind."""
    envoy = envoys.get(f"network+{http_position}", tracer)
    status, _, got = send(envoy.port, INPUTS["b3multi"] if tracer == "opentelemetry" else INPUTS["tracecontext"])
    assert status == 200
    assert_well_formed(got)
    trace, _, _ = envoys_span(tracer, got)
    assert trace == T
    traces = {v for k in ("x-b3-traceid",) for v in header_values(got, k)}
    traces |= {v.split("-")[1] for v in header_values(got, "traceparent")}
    assert traces == {T}, got


VENDOR_INPUTS = {
    "datadog": [("x-datadog-trace-id", datadog_ids()[0]), ("x-datadog-parent-id", datadog_ids()[1]),
                ("x-datadog-sampling-priority", "1"), ("x-datadog-tags", datadog_ids()[2])],
    "xray": [("x-amzn-trace-id", xray())],
    "ottrace": [("ot-tracer-traceid", T), ("ot-tracer-spanid", S), ("ot-tracer-sampled", "true")],
}


@pytest.mark.parametrize("input_format", VENDOR_INPUTS)
@pytest.mark.parametrize("tracer", TRACERS)
def test_envoys_span_joins_a_datadog_xray_or_ottrace_app(envoys, tracer, input_format):
    """Envoy's tracers read none of these; in front of them tracejoin feeds the tracer's own
    format, so Envoy's span joins the app's trace under the app's span."""
    config = {"position": "network", "tracer": tracer, "extract": [input_format, "tracecontext", "b3"],
              "propagate": ["tracecontext", "b3multi", input_format]}
    envoy = envoys.get("network", tracer, config)
    status, _, got = send(envoy.port, VENDOR_INPUTS[input_format])
    assert status == 200
    assert_well_formed(got)
    trace, span, parent = envoys_span(tracer, got)
    assert trace == T, got
    assert span != S, "Envoy's own span, not the app's"
    if parent is not None:
        assert parent == S, "Envoy's span is a child of the app's span"
    assert stat(envoy, f"context.{input_format}") == 1
    # The network filter alone leaves the app's own format as it came (the caller's span).
    assert read_all(got)[input_format]["trace"] == T
