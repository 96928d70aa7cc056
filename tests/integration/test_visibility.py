"""What an operator sees of tracejoin in a real Envoy: the decision line at debug, with the
level raised and lowered at runtime through the admin API (what `istioctl proxy-config log
<pod> --level wasm:debug` does), and `dry_run`, which decides, counts and logs but writes
nothing (docs/observability.md)."""

import re
import socket
import time
import urllib.request

import httpx
import pytest

from tracejoin_tools.common import S, T
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.harness import send

W3C = [("traceparent", f"00-{T}-{S}-01")]
# Istio's default proxy log level.
DEFAULT_LEVEL = {"log_level": "warning", "component_log_level": "wasm:warning"}
# The filter re-reads the host's level once a second (per VM).
LEVEL_FOLLOWED_WITHIN_S = 5
DECISION = "tracejoin: decision "


def set_wasm_level(envoy, level):
    request = urllib.request.Request(f"{envoy.admin}/logging?wasm={level}", method="POST")
    with urllib.request.urlopen(request, timeout=5) as r:
        assert r.status == 200


def decision_lines(envoy, request_id):
    """The decision lines logged for requests with this x-request-id."""
    return [line for line in envoy.log().splitlines() if DECISION in line and f" request_id={request_id} " in line]


def send_until_logged(envoy, request_id, headers):
    """Sends requests (all with `request_id`) until one's decision line is logged."""
    deadline = time.monotonic() + LEVEL_FOLLOWED_WITHIN_S
    while time.monotonic() < deadline:
        status, _, _ = send(envoy.port, [*headers, ("x-request-id", request_id)])
        assert status == 200
        time.sleep(0.05)  # Envoy's log is flushed on its own thread.
        if lines := decision_lines(envoy, request_id):
            return lines
        time.sleep(0.2)
    return []


def fields(line):
    """The key=value fields of a decision line."""
    return dict(kv.split("=", 1) for kv in line.split(DECISION, 1)[1].split(" "))


@pytest.mark.parametrize("position", ["downstream", "network"])
def test_the_decision_line_follows_the_log_level_set_at_runtime(upstream_port, wasm, position):
    config = envoy_harness.render_config(upstream_port, tracer="zipkin", position=position, wasm_path=wasm)
    with envoy_harness.Envoy(config, **DEFAULT_LEVEL) as envoy:
        # At Istio's default level: no decision line.
        for _ in range(3):
            assert send(envoy.port, [*W3C, ("x-request-id", "vis-quiet")])[0] == 200
        time.sleep(1.5)
        assert send(envoy.port, [*W3C, ("x-request-id", "vis-quiet")])[0] == 200
        time.sleep(0.3)
        assert DECISION not in envoy.log(), envoy.log()

        set_wasm_level(envoy, "debug")
        lines = send_until_logged(envoy, "vis-debug", W3C)
        assert lines, f"no decision line within {LEVEL_FOLLOWED_WITHIN_S}s of wasm=debug:\n{envoy.log()}"
        got = fields(lines[-1])
        assert got["position"] == position
        assert got["source"] == "tracecontext"
        assert got["trace_id"] == T
        assert got["sampled"] == "1"
        assert got["request_id"] == "vis-debug"
        assert got["dry_run"] == "false"
        # Envoy's B3-only tracer gets the W3C app's context in x-b3-* (network) or b3
        # (downstream: the bridge).
        assert "x-b3-traceid" in got["wrote"].split(",") or "b3" in got["wrote"].split(","), lines[-1]
        print(lines[-1])

        set_wasm_level(envoy, "warning")
        time.sleep(2.5)  # two ticks: every VM has read the level again
        for _ in range(3):
            assert send(envoy.port, [*W3C, ("x-request-id", "vis-lowered")])[0] == 200
        time.sleep(0.3)
        assert decision_lines(envoy, "vis-lowered") == []


def test_a_hostile_request_id_is_escaped_in_a_real_log(upstream_port, wasm):
    config = envoy_harness.render_config(upstream_port, tracer="zipkin", position="network", wasm_path=wasm)
    with envoy_harness.Envoy(config, log_level="warning", component_log_level="wasm:debug") as envoy:
        status, _, _ = send(envoy.port, [*W3C, ("x-request-id", "a b\tdry_run=true")])
        assert status == 200
        time.sleep(0.3)
        lines = [line for line in envoy.log().splitlines() if DECISION in line]
        assert lines, envoy.log()
        got = fields(lines[-1])
        assert got["request_id"] == r"a\x20b\x09dry_run=true"
        assert got["dry_run"] == "false"


# The upstream receives what it receives with no filter at all; the filter's counters and
# the decision line say what it would have done.
DRY_CASES = [
    # (position, tracer, what a live filter would count besides the context)
    ("downstream", "none", []),
    ("upstream", "zipkin", []),
    ("network", "none", ["network.rewritten"]),
]


@pytest.mark.parametrize("position,tracer,also", DRY_CASES, ids=[f"{p}-{t}" for p, t, _ in DRY_CASES])
def test_a_dry_run_writes_nothing_and_counts(upstream_port, wasm, position, tracer, also):
    # A host of its own: the two Envoys listen on different ports.
    sent = [("host", "app.example"), *W3C, ("x-request-id", "vis-dry"), ("uber-trace-id", "bad")]
    plain = envoy_harness.render_config(upstream_port, tracer=tracer, position="off")
    with envoy_harness.Envoy(plain, **DEFAULT_LEVEL) as envoy:
        status, _, without_filter = send(envoy.port, sent)
        assert status == 200

    plugin = {"position": position, "tracer": tracer, "dry_run": True}
    config = envoy_harness.render_config(upstream_port, tracer=tracer, position=position, wasm_path=wasm, plugin_config=plugin)
    with envoy_harness.Envoy(config, log_level="warning", component_log_level="wasm:debug") as envoy:
        status, _, got = send(envoy.port, sent)
        assert status == 200
        got = [tuple(h) for h in got]
        without_filter = [tuple(h) for h in without_filter]
        if tracer == "none":
            assert sorted(got) == sorted(without_filter)
        else:
            # Envoy's own tracer writes its span into the request (ids differ per run): the
            # headers besides the ones it injects arrive as with no filter.
            injected = {"x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled"}
            assert sorted(h for h in got if h[0] not in injected) == sorted(h for h in without_filter if h[0] not in injected)
        assert ("traceparent", f"00-{T}-{S}-01") in got
        assert ("uber-trace-id", "bad") in got, "the invalid uber-trace-id a live filter would replace or remove is still there"
        assert envoy.counter("context.tracecontext") == 1
        assert envoy.counter("invalid.jaeger") == 1
        assert envoy.counter("dry_run.would_change") == 1
        for name in also:
            assert envoy.counter(name) == 1, name
        time.sleep(0.3)
        lines = decision_lines(envoy, "vis-dry")
        assert len(lines) == 1, envoy.log()
        line = fields(lines[0])
        assert line["dry_run"] == "true"
        assert line["trace_id"] == T
        assert line["invalid"] == "jaeger"
        print(lines[0])


def test_no_dry_run_counter_without_a_dry_run(upstream_port, wasm):
    config = envoy_harness.render_config(upstream_port, tracer="none", position="downstream", wasm_path=wasm)
    with envoy_harness.Envoy(config, **DEFAULT_LEVEL) as envoy:
        assert send(envoy.port, W3C)[0] == 200
        stats = envoy.stats("tracejoin")
        assert stats.get("wasmcustom.tracejoin.context.tracecontext") == 1
        assert not any(re.search(r"dry_run", name) for name in stats), stats


def test_one_decision_line_per_http2_request_and_a_dry_run_over_h2(upstream_port, wasm):
    """Network position, HTTP/2 prior knowledge: one line per request header block; in a dry
    run the app gets the client's headers, through the same HPACK tables."""
    for dry_run in (False, True):
        plugin = {"position": "network", "tracer": "none", "dry_run": dry_run}
        config = envoy_harness.render_config(upstream_port, tracer="none", position="network", wasm_path=wasm, plugin_config=plugin)
        with envoy_harness.Envoy(config, log_level="warning", component_log_level="wasm:debug") as envoy:
            url = f"http://{envoy_harness.LOOPBACK}:{envoy.port}/h2"
            with httpx.Client(http1=False, http2=True, trust_env=False, timeout=10) as client:
                answers = [client.get(url, headers={"traceparent": f"00-{T}-{S}-01", "x-request-id": f"vis-h2-{i}"}) for i in range(3)]
            assert all(r.status_code == 200 and r.http_version == "HTTP/2" for r in answers)
            for r in answers:
                got = [tuple(h) for h in r.json()["headers"]]
                if dry_run:
                    assert not any(name.startswith("x-b3-") or name == "b3" for name, _ in got), got
                else:
                    assert ("x-b3-traceid", T) in got, got
            time.sleep(0.3)
            for i in range(3):
                lines = decision_lines(envoy, f"vis-h2-{i}")
                assert len(lines) == 1, envoy.log()
                line = fields(lines[0])
                assert (line["position"], line["trace_id"], line["dry_run"]) == ("network", T, str(dry_run).lower())
            assert envoy.counter("network.heads") == 3
            assert envoy.counter("network.rewritten") == 3
            assert envoy.counter("dry_run.would_change") == (3 if dry_run else 0)


def pipelined_answers(port, requests, timeout=5):
    """Sends `requests` in one write on one connection; the responses' status lines read
    until the connection closes or `timeout` passes."""
    data = b""
    with socket.create_connection((envoy_harness.LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(b"".join(requests))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and data.count(b"HTTP/1.1 ") < len(requests):
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
    return re.findall(rb"HTTP/1\.1 (\d{3})", data)


def test_a_dry_run_under_trust_closes_no_connection(upstream_port, wasm):
    """Two requests in one write: the filter cannot know which bytes Envoy hands back, so
    under `trust` it closes the connection; in a dry run it leaves it, and both are answered."""
    request = f"GET /p HTTP/1.1\r\nHost: app.example\r\ntraceparent: 00-{T}-{S}-01\r\n\r\n".encode()
    for dry_run, answered in ((False, 0), (True, 2)):
        plugin = {"position": "network", "tracer": "zipkin", "trust": "restart", "dry_run": dry_run}
        config = envoy_harness.render_config(upstream_port, tracer="zipkin", position="network", wasm_path=wasm, plugin_config=plugin)
        with envoy_harness.Envoy(config, **DEFAULT_LEVEL) as envoy:
            assert pipelined_answers(envoy.port, [request, request]) == [b"200"] * answered
            assert envoy.counter("network.left.pipelined") == 1
            assert envoy.counter("network.closed") == (0 if dry_run else 1)
