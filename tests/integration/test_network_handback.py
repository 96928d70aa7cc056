"""What Envoy hands back to the network position, on a real Envoy (every release `make test`
runs): its HTTP/1 codec takes bytes up to the end of one request, then nothing until that
request is answered, and runs the network filters again over what it left, with whatever
arrived since behind it. The same client bytes, written at the same times, through a
listener with tracejoin in front of the HCM and one without, must reach the upstream as the
same requests, bodies and trailers (framed by h11 at a recording upstream that answers
`/slow<ms>` paths late).

Also here: `trust` holds for every request of a connection (the filter closes what it
cannot follow), and a head the filter holds is not held past `request_headers_timeout_ms`.
"""

import os
import random
import socket
import threading
import time

import pytest

from tracejoin_tools.common import LOOPBACK, TRACE_HEADERS, S, T
from tracejoin_tools.envoy import harness
from tracejoin_tools.envoy.late_end_upstream import LateEndUpstream
from tracejoin_tools.envoy.recording_upstream import RecordingUpstream

# What Envoy adds to every request (and the trace headers its tracer writes): not part of
# the comparison.
IGNORED = {h.encode() for h in TRACE_HEADERS} | {b"x-request-id", b"x-forwarded-proto", b"x-envoy-expected-rq-timeout-ms"}
COLLECTOR_PATHS = (b"/api/v2/spans", b"/v1/traces")
TP = f"traceparent: 00-{T}-{S}-01\r\n"
B3 = f"x-b3-traceid: {T}\r\nx-b3-spanid: {S}\r\nx-b3-sampled: 1\r\n"


@pytest.fixture(scope="module")
def upstream():
    with RecordingUpstream() as up:
        yield up


def start(upstream, wasm, network_config=None, hcm_options=None, http2_upstream=False):
    position = "network" if network_config else "off"
    config = harness.render_config(
        upstream.port,
        tracer="zipkin",
        position=position,
        wasm_path=wasm,
        network_config=network_config,
        hcm_options=hcm_options,
    )
    if http2_upstream:
        echo = next(c for c in config["static_resources"]["clusters"] if c["name"] == "echo")
        echo["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    return harness.Envoy(config).__enter__()


@pytest.fixture(scope="module")
def pair(upstream, wasm):
    """(plain Envoy, Envoy with tracejoin in front of its HCM), the Zipkin tracer in both."""
    plain = start(upstream, wasm)
    network = start(upstream, wasm, {"position": "network", "tracer": "zipkin"})
    yield plain, network
    network.__exit__(None, None, None)
    plain.__exit__(None, None, None)


@pytest.fixture(scope="module")
def trusted(upstream, wasm):
    envoy = start(upstream, wasm, {"position": "network", "tracer": "zipkin", "trust": "restart"})
    yield envoy
    envoy.__exit__(None, None, None)


class Played:
    def __init__(self):
        self.received = b""
        self.closed_at = None


def play(port, writes, quiet=0.8, limit=15):
    """Writes each (seconds from start, bytes) on one connection at its time (bytes None:
    half-close), reading what comes back meanwhile; returns once the connection closed or
    was quiet for `quiet` s after the last write."""
    sock = socket.create_connection((LOOPBACK, port), timeout=limit)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = Played()
    last = [time.monotonic()]
    t0 = time.monotonic()

    def reader():
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                out.closed_at = time.monotonic() - t0
                return
            out.received += data
            last[0] = time.monotonic()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    for at, data in writes:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        try:
            if data is None:
                sock.shutdown(socket.SHUT_WR)
            else:
                sock.sendall(data)
        except OSError:
            break
    last[0] = max(last[0], time.monotonic())
    while thread.is_alive() and time.monotonic() - last[0] < quiet and time.monotonic() - t0 < limit:
        time.sleep(0.05)
    sock.close()
    thread.join(2)
    return out


def upstream_requests(upstream, envoy, writes):
    upstream.clear()
    played = play(envoy.port, writes)
    time.sleep(0.2)
    return [r.key(IGNORED) for r in app_requests(upstream)], played


def app_requests(upstream):
    """What reached the upstream but the spans Envoy's Zipkin tracer reports to it."""
    return [r for r in upstream.wait_for(0, 0) if r.target not in COLLECTOR_PATHS]


def same_upstream_requests(pair, upstream, writes):
    plain, network = pair
    without, _ = upstream_requests(upstream, plain, writes)
    with_filter, _ = upstream_requests(upstream, network, writes)
    assert with_filter == without, "the upstream got other requests with tracejoin in front"
    return without


def stat(envoy, name):
    return envoy.counter(name)


def reproducer(write5):
    return [
        (0.0, b"GET /slow600 HTTP/1.1\r\nHost: a\r\n\r\n"),
        (0.2, ("POST /b HTTP/1.1\r\nHost: a\r\n" + TP + "Content-Length: 266\r\n\r\n").encode()),
        (1.2, b"d" * 50),
        (1.4, ("GET /fake HTTP/1.1\r\nHost: a\r\n" + TP + "X-Pad: pppppppppp\r\n\r\n").encode()),
        (1.6, write5),
    ]


def test_bytes_handed_back_reach_the_upstream_as_without_the_filter(pair, upstream):
    # The differential review's reproducer: /b's 266-byte body is writes 3-5 up to /after.
    write5 = ("GET /smuggled HTTP/1.1\r\nHost: a\r\nX-Pad: " + "p" * 52 + "\r\n\r\n").encode()
    writes = [*reproducer(write5), (1.6, b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")]
    before = stat(pair[1], "network.represented")
    got = same_upstream_requests(pair, upstream, writes)
    assert [(m, t) for m, t, *_ in got] == [(b"GET", b"/slow600"), (b"POST", b"/b"), (b"GET", b"/after")]
    assert len(got[1][3]) == 266 and b"GET /smuggled" in got[1][3]
    assert stat(pair[1], "network.represented") > before, "Envoy handed bytes back"


def test_an_unterminated_field_in_a_body_swallows_nothing(pair, upstream):
    # The prefix-poisoning variant: the body ends inside what looks like a header.
    pad = 266 - 50 - len(reproducer(b"")[3][1])
    write5 = b"GET /smuggled HTTP/1.1\r\nHost: a\r\nX-Swallow: "
    write5 += b"s" * (pad - len(write5))
    writes = [*reproducer(write5), (1.8, b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")]
    got = same_upstream_requests(pair, upstream, writes)
    assert [t for _, t, *_ in got] == [b"/slow600", b"/b", b"/after"]


def test_a_chunked_body_handed_back_keeps_its_framing(pair, upstream):
    inner = ("0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n" + TP + "\r\n").encode()
    writes = [
        (0.0, b"GET /slow600 HTTP/1.1\r\nHost: a\r\n\r\n"),
        (0.2, ("POST /c HTTP/1.1\r\nHost: a\r\n" + TP + "Transfer-Encoding: chunked\r\n\r\n").encode()),
        (0.3, f"{len(inner):x}\r\n".encode() + inner[:10]),
        (1.0, inner[10:] + b"\r\n"),
        (1.2, b"3\r\nabc\r\n0\r\nx-trailer: 1\r\n\r\n"),
        (1.4, ("GET /after HTTP/1.1\r\nHost: a\r\n" + TP + "\r\n").encode()),
    ]
    got = same_upstream_requests(pair, upstream, writes)
    assert [t for _, t, *_ in got] == [b"/slow600", b"/c", b"/after"]
    assert got[1][3] == inner + b"abc"


def test_expect_half_close_and_a_refused_upgrade_as_without_the_filter(pair, upstream):
    """The rest of the model, differentially: a request whose body waits for 100 Continue,
    one sent while another waits and then half-closed, an Upgrade with the token (Envoy
    refuses it here: no upgrade configured) followed by a request."""
    expect = [
        (0.0, b"GET /slow300 HTTP/1.1\r\nHost: a\r\n\r\n"),
        (0.1, ("POST /e HTTP/1.1\r\nHost: a\r\n" + TP + "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n").encode()),
        (0.6, b"hello"),
        (0.8, ("GET /after HTTP/1.1\r\nHost: a\r\n" + TP + "\r\n").encode()),
    ]
    assert [t for _, t, *_ in same_upstream_requests(pair, upstream, expect)] == [b"/slow300", b"/e", b"/after"]
    half_close = [
        (0.0, b"GET /slow300 HTTP/1.1\r\nHost: a\r\n\r\n"),
        (0.1, ("POST /h HTTP/1.1\r\nHost: a\r\n" + TP + "Content-Length: 3\r\n\r\nabc").encode()),
        (0.2, None),
    ]
    same_upstream_requests(pair, upstream, half_close)
    upgrade = [
        (0.0, ("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + TP + "\r\n").encode()),
        (0.3, ("GET /after-upgrade HTTP/1.1\r\nHost: a\r\n" + TP + "\r\n").encode()),
    ]
    same_upstream_requests(pair, upstream, upgrade)


def random_request(rng, i):
    path = f"/slow{rng.choice([0, 80, 300, 300])}/{i}"
    headers = "Host: a\r\n" + rng.choice([TP, B3, "", "b3: " + f"{T}-{S}-1\r\n"])
    kind = rng.randrange(3)
    if kind == 0:
        return f"GET {path} HTTP/1.1\r\n{headers}\r\n".encode()
    body = rng.choice(
        [b"x" * rng.randrange(1, 300), b"GET /in-body HTTP/1.1\r\nHost: a\r\n" + TP.encode() + b"\r\n", random_request(rng, "in") if i != "in" else b"y"]
    )
    if kind == 1:
        return f"POST {path} HTTP/1.1\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body
    cut = rng.randrange(len(body) + 1)
    chunks = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in (body[:cut], body[cut:]) if c)
    return f"POST {path} HTTP/1.1\r\n{headers}Transfer-Encoding: chunked\r\n\r\n".encode() + chunks + b"0\r\n\r\n"


@pytest.mark.parametrize("seed", range(int(os.environ.get("TRACEJOIN_HANDBACK_SEEDS", "8"))))
def test_random_writes_and_answer_times(pair, upstream, seed):
    """Random requests (bodies that look like requests included), cut into random writes at
    random times, with answers that come at once or late: the upstream gets the same
    requests, bodies and trailers with and without the filter."""
    rng = random.Random(9000 + seed)
    stream = b"".join(random_request(rng, i) for i in range(rng.randrange(2, 5)))
    writes, at, t = [], 0, 0.0
    while at < len(stream):
        n = rng.choice([1, 7, 40, 200, len(stream)])
        writes.append((t, stream[at : at + n]))
        at += n
        t += rng.choice([0.0, 0.05, 0.2])
        if len(writes) > 40:
            writes.append((t, stream[at:]))
            break
    got = same_upstream_requests(pair, upstream, writes)
    assert got, "requests reached the upstream"


@pytest.mark.parametrize("seed", range(3))
def test_one_byte_writes_while_answers_wait(pair, upstream, seed):
    """Random requests written a byte per write, behind one answered late (and some of their
    own answered late): every byte after the first request arrives while an answer waits,
    and is handed back. The same requests, bodies and trailers reach the upstream."""
    rng = random.Random(7000 + seed)
    stream = b"".join(random_request(rng, i) for i in range(3))
    writes = [(0.0, b"GET /slow400 HTTP/1.1\r\nHost: a\r\n\r\n")]
    writes += [(0.05 + 0.002 * i, stream[i : i + 1]) for i in range(len(stream))]
    got = same_upstream_requests(pair, upstream, writes)
    assert len(got) >= 2, got


# --- an answer framed before its stream ends ------------------------------------------


@pytest.fixture(scope="module")
def late(wasm):
    """An HTTP/2 upstream that ends each stream 0.5 s after its Content-Length body, behind a
    plain Envoy, one with tracejoin in front and one with tracejoin and `trust: restart`."""
    with LateEndUpstream(late=0.5) as up:
        envoys = [
            start(up, wasm, http2_upstream=True),
            start(up, wasm, {"position": "network", "tracer": "zipkin"}, http2_upstream=True),
            start(up, wasm, {"position": "network", "tracer": "zipkin", "trust": "restart"}, http2_upstream=True),
        ]
        yield up, envoys
        for envoy in envoys:
            envoy.__exit__(None, None, None)


def test_an_answer_framed_before_its_stream_ends(late):
    """Envoy writes /a's whole answer while its stream is open; the client's next request,
    sent on that answer, is not taken until the stream ends, then handed back. The upstream
    gets the same requests and bodies with and without the filter, and under trust the
    client's context reaches no one."""
    up, (plain, network, trusted) = late
    # /b's body is a head as long as /b's own: a filter that counted /b's head handed back
    # as body would take the body for the next head, and rewrite it.
    fake = ("GET /fake HTTP/1.1\r\nHost: a\r\n" + TP + "\r\n").encode()
    b_head = f"POST /b HTTP/1.1\r\nHost: a\r\nX-Pad: \r\nContent-Length: {len(fake)}\r\n\r\n".encode()
    b_head = b_head.replace(b"X-Pad: ", b"X-Pad: " + b"p" * (len(fake) - len(b_head)))
    assert len(fake) == len(b_head)
    body = fake
    writes = [
        (0.0, b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n"),
        (0.15, b_head),
        (0.9, body),
        (2.2, ("GET /c HTTP/1.1\r\nHost: a\r\n" + TP + "\r\n").encode()),
    ]
    got = {}
    for envoy in (plain, network):
        up.clear()
        play(envoy.port, writes, quiet=1.0)
        time.sleep(0.3)
        got[envoy] = up.paths_and_bodies()
    assert got[plain] == [("/a", b""), ("/b", body), ("/c", b"")], got[plain]
    assert got[network] == got[plain]
    assert stat(network, "network.left.unsure") >= 1, "the stream ended after its answer was written"
    up.clear()
    before = stat(trusted, "network.closed")
    played = play(trusted.port, writes, quiet=1.0)
    assert played.closed_at is not None and stat(trusted, "network.closed") == before + 1
    assert [p for p, _ in up.paths_and_bodies()] == ["/a"], "nothing after the close reached the upstream"


# --- trust ---------------------------------------------------------------------------


def client_trace_reached(upstream):
    for r in app_requests(upstream):
        for name, value in r.headers:
            if name in (b"x-b3-traceid", b"traceparent", b"b3") and T.encode() in value:
                return r
    return None


@pytest.mark.parametrize(
    "writes",
    [
        pytest.param(
            [(0.0, ("GET /1 HTTP/1.1\r\nHost: a\r\n" + B3 + "\r\nGET /2 HTTP/1.1\r\nHost: a\r\n" + B3 + "\r\n").encode())],
            id="pipelined-in-one-write",
        ),
        pytest.param(
            [
                (0.0, ("GET /u HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\n" + B3 + "\r\n").encode()),
                (0.3, ("GET /after-upgrade-field HTTP/1.1\r\nHost: a\r\n" + B3 + "\r\n").encode()),
            ],
            id="after-an-upgrade-field",
        ),
        pytest.param(
            [
                (0.0, b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;\x01\r\na\r\n0\r\n\r\n"),
                (0.3, ("GET /after-chunk HTTP/1.1\r\nHost: a\r\n" + B3 + "\r\n").encode()),
            ],
            id="after-a-control-byte-in-a-chunk-extension",
        ),
        pytest.param(
            [
                (0.0, ("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + B3 + "\r\n").encode()),
                (0.3, ("GET /after-refused-upgrade HTTP/1.1\r\nHost: a\r\n" + B3 + "\r\n").encode()),
            ],
            id="after-a-refused-upgrade",
        ),
        pytest.param(
            [
                (
                    0.0,
                    ("GET /h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n" + B3 + "\r\n").encode(),
                ),
                (0.3, ("GET /after-h2c HTTP/1.1\r\nHost: a\r\n" + B3 + "\r\n").encode()),
            ],
            id="after-an-h2c-upgrade-envoy-ignores",
        ),
        pytest.param(
            [
                (0.0, ("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n" + B3 + "\r\n").encode()),
                (0.3, ("GET /after-connect HTTP/1.1\r\nHost: a\r\n" + B3 + "\r\n").encode()),
            ],
            id="after-a-refused-connect",
        ),
        pytest.param(
            [
                (0.0, b"GET /slow300 HTTP/1.1\r\nHost: a\r\n\r\n"),
                (0.1, ("GET /while-waiting HTTP/1.1\r\nHost: a\r\n" + B3 + "\r\n").encode()),
                (0.5, ("GET /after HTTP/1.1\r\nHost: a\r\n" + B3 + "\r\n").encode()),
            ],
            id="written-while-another-waits",
        ),
    ],
)
def test_trust_holds_for_every_request_of_a_connection(trusted, upstream, writes):
    upstream.clear()
    play(trusted.port, writes)
    time.sleep(0.2)
    reached = client_trace_reached(upstream)
    assert reached is None, f"{reached!r} reached the upstream (and Envoy's tracer) with the client's trace id"


def test_trust_lets_a_followed_connection_go_on(trusted, upstream):
    upstream.clear()
    writes = [(0.3 * i, (f"GET /k{i} HTTP/1.1\r\nHost: a\r\n" + B3 + "\r\n").encode()) for i in range(4)]
    before = stat(trusted, "network.closed")
    played = play(trusted.port, writes)
    assert played.received.count(b"HTTP/1.1 200") == 4
    assert [r.target for r in app_requests(upstream)] == [b"/k0", b"/k1", b"/k2", b"/k3"]
    assert client_trace_reached(upstream) is None
    assert stat(trusted, "network.closed") == before


# --- a held head and Envoy's header timeout -------------------------------------------


@pytest.fixture(scope="module")
def timed(upstream, wasm):
    """request_headers_timeout 2 s in Envoy's HCM, the same in the plugin."""
    hcm = {"request_headers_timeout": "2s"}
    plain = start(upstream, wasm, hcm_options=hcm)
    network = start(upstream, wasm, {"position": "network", "tracer": "zipkin", "request_headers_timeout_ms": 2000}, hcm)
    yield plain, network
    network.__exit__(None, None, None)
    plain.__exit__(None, None, None)


def slow_clients(port, count, step, stop_after=None):
    """`count` clients that each write a head a byte every `step` s (or stop writing after
    `stop_after` bytes); returns the second at which each saw its connection end or a 408."""
    head = ("GET /slowloris HTTP/1.1\r\nHost: a\r\n" + TP + "X-Pad: " + "p" * 400 + "\r\n\r\n").encode()
    ends = [None] * count
    socks = []
    for _ in range(count):
        s = socket.create_connection((LOOPBACK, port), timeout=1)
        s.setblocking(False)
        socks.append(s)
    t0 = time.monotonic()
    sent = 0
    while time.monotonic() - t0 < 12 and any(e is None for e in ends):
        for i, s in enumerate(socks):
            if ends[i] is not None:
                continue
            try:
                data = s.recv(4096)
                if data == b"" or data.startswith(b"HTTP/1.1 408"):
                    ends[i] = time.monotonic() - t0
                    continue
            except BlockingIOError:
                pass
            except OSError:
                ends[i] = time.monotonic() - t0
                continue
            if sent < len(head) and (stop_after is None or sent < stop_after):
                try:
                    s.send(head[sent : sent + 1])
                except OSError:
                    ends[i] = time.monotonic() - t0
        sent += 1
        time.sleep(step)
    for s in socks:
        s.close()
    return ends


@pytest.mark.parametrize("stop_after", [None, 20], ids=["a-byte-every-250ms", "silent-after-20-bytes"])
def test_a_slow_head_is_not_held_past_the_header_timeout(timed, stop_after, capsys):
    plain, network = timed
    without = slow_clients(plain.port, 10, 0.25, stop_after)
    assert all(e is not None and 1.9 <= e <= 3.0 for e in without), f"Envoy alone: {without}"
    before = stat(network, "network.left.slow_head")
    with_filter = slow_clients(network.port, 10, 0.25, stop_after)
    # The filter's own bound: the timeout, plus a read (250 ms) or a tick (1 s) of slack.
    assert all(e is not None and 1.9 <= e <= 3.6 for e in with_filter), f"with tracejoin: {with_filter}"
    assert stat(network, "network.left.slow_head") - before == 10
    with capsys.disabled():
        print(f"\nslow head ({stop_after or 'trickling'}): Envoy alone {min(without):.2f}-{max(without):.2f} s, with tracejoin {min(with_filter):.2f}-{max(with_filter):.2f} s")
