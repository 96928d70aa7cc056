"""The two OpenTelemetry SDKs of the local mesh, without Envoy: the Python app (app.py) and the
Node.js app (tools/mesh-node/app.js) each get one request per incoming header set under each
OTEL_PROPAGATORS value. The collector shows which context the server span continued; a
recording upstream in place of the outbound sidecar shows which headers the client span wrote.
Both are checked against the rule the OpenTelemetry specification gives (each listed
propagator reads its own format; the composite applies them in the order listed, so of two
disagreeing contexts the last one read wins; a B3 propagator reads both B3 encodings, the
single header first, and pads a 64-bit trace id; each listed propagator writes its format
with the client span's ids), and where an SDK departs from it, the departure is the one
measured."""

import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tracejoin_tools.common import LOOPBACK, XS, YS, ZS, P, S, T, X, Y, Z, free_port, traceparent
from tracejoin_tools.mesh import collector, native, topology

PROPAGATORS = [None, "b3", "b3multi", "jaeger", "b3,tracecontext,baggage", "tracecontext,b3multi"]
B3_MULTI_WRITTEN = ("x-b3-sampled", "x-b3-spanid", "x-b3-traceid")
# What each OTEL_PROPAGATORS name reads, in its order of precedence, and writes.
B3_READS = ["b3", "b3multi", "b3multi64"]
READS = {"tracecontext": ["w3c"], "baggage": [], "b3": B3_READS, "b3multi": B3_READS, "jaeger": ["jaeger"]}
WRITES = {"tracecontext": {"traceparent"}, "baggage": set(), "b3": {"b3"}, "b3multi": set(B3_MULTI_WRITTEN), "jaeger": {"uber-trace-id"}}
# One context per format, each its own trace.
CONTEXTS = {
    "w3c": (T, S, {"traceparent": traceparent(T, S)}),
    "b3": (X, XS, {"b3": f"{X}-{XS}-1"}),
    "b3multi": (Y, YS, {"x-b3-traceid": Y, "x-b3-spanid": YS, "x-b3-sampled": "1"}),
    "jaeger": (Z, ZS, {"uber-trace-id": f"{Z}:{ZS}:0:1"}),
    # A 64-bit B3 trace id (older Zipkin clients), padded to 128 bits by the reader.
    "b3multi64": ("0" * 16 + Z[:16], P, {"x-b3-traceid": Z[:16], "x-b3-spanid": P, "x-b3-sampled": "1"}),
}
# Incoming header sets: each format alone, W3C with a disagreeing B3 context, and the two B3
# encodings disagreeing.
INCOMING = [("w3c",), ("b3",), ("b3multi",), ("jaeger",), ("b3multi64",), ("w3c", "b3"), ("w3c", "b3multi"), ("b3", "b3multi")]
ID_HEADERS = ("traceparent", "b3", "x-b3-traceid", "uber-trace-id")
# Where an SDK departs from the rule: {(sdk, OTEL_PROPAGATORS, incoming): measured}.
DEPARTURES = {}


def expected(propagators, incoming):
    names = (propagators or "tracecontext,baggage").split(",")
    continued = "new"
    for name in names:  # applied in order: a later reader overwrites an earlier one
        found = [fmt for fmt in READS[name] if fmt in incoming]
        if found:
            continued = found[0]
    return continued, sorted(set().union(*(WRITES[n] for n in names)))


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.server.requests.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args):
        pass


@pytest.fixture(scope="module")
def measured():
    spans, collector_port = collector.start()
    egress = ThreadingHTTPServer((LOOPBACK, 0), _Recorder)
    egress.daemon_threads = True
    egress.requests = []
    threading.Thread(target=egress.serve_forever, daemon=True).start()
    results = {}
    try:
        for sdk in ("python", "node"):
            for propagators in PROPAGATORS:
                port = free_port()
                env = topology.app_env("profile-api", propagators, f"http://{LOOPBACK}:{collector_port}/v1/traces", f"http://{LOOPBACK}:{egress.server_address[1]}")
                app = native.App(f"profile-api on {sdk}", port, env, sdk)
                try:
                    app.wait_ready()
                    for incoming in INCOMING:
                        results[(sdk, propagators, incoming)] = _one_request(port, incoming, spans, egress)
                finally:
                    app.stop()
    finally:
        spans.shutdown()
        egress.shutdown()
    return results


def _one_request(port, incoming, spans, egress):
    spans.clear()
    egress.requests.clear()
    headers = {}
    for fmt in incoming:
        headers.update(CONTEXTS[fmt][2])
    req = urllib.request.Request(f"http://{LOOPBACK}:{port}/api/v1/profiles/me", headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    deadline = time.monotonic() + 10
    while len(spans.snapshot()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    got = spans.snapshot()
    [server] = [s for s in got if s["kind"] == "SERVER"]
    [client] = [s for s in got if s["kind"] == "CLIENT"]
    [sent] = egress.requests
    continued = "new"
    for fmt, (trace, span, _) in CONTEXTS.items():
        if server["trace_id"] == trace:
            # Continued means the incoming span is the parent, not just the trace id kept.
            continued = fmt if server["parent_id"] == span else f"{fmt} (trace only)"
    written = sorted(h for h in sent if h in (*ID_HEADERS, "tracestate", "x-b3-spanid", "x-b3-sampled", "x-b3-parentspanid", "x-b3-flags"))
    # Every id header the client wrote carries the client span's ids.
    carries_client = all(client["trace_id"] in sent[h].lower() for h in ID_HEADERS if h in sent) and (
        "x-b3-spanid" not in sent or sent["x-b3-spanid"] == client["span_id"]
    )
    return {"continued": continued, "written": written, "client_under_server": client["parent_id"] == server["span_id"], "carries_client": carries_client}


def test_each_sdk_reads_and_writes_what_otel_propagators_lists(measured):
    departures = {}
    for (sdk, propagators, incoming), got in measured.items():
        assert got["client_under_server"] and got["carries_client"], (sdk, propagators, incoming, got)
        continued, written = expected(propagators, incoming)
        if (got["continued"], got["written"]) != (continued, written):
            departures[(sdk, propagators, incoming)] = (got["continued"], got["written"])
    assert departures == DEPARTURES


def test_the_sdks_agree_on_the_mesh_settings(measured):
    """Under the settings the e2e matrix runs, the Python and the Node app read and write
    alike, so the matrix's Node column differs from the Python ones only by position."""
    from tracejoin_tools.mesh.matrix import PROPAGATORS as MATRIX

    for propagators, _label in MATRIX:
        for incoming in INCOMING:
            assert measured[("python", propagators, incoming)] == measured[("node", propagators, incoming)], (propagators, incoming)
