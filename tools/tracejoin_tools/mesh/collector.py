"""A small span collector for the demo and the e2e tests (not part of the filter): accepts
Zipkin v2 JSON (`POST /api/v2/spans`, what Envoy's Zipkin tracer sends) and OTLP/HTTP
(`POST /v1/traces`: protobuf from the Python SDK and Envoy's OpenTelemetry tracer, JSON from
the JavaScript SDK's exporter-trace-otlp-http), and keeps every span in one normal form:

    {trace_id, span_id, parent_id, name, service, kind, tags, source, scope}

`GET /spans` returns them as JSON, `DELETE /spans` forgets them. Under docker-compose,
Jaeger plays this role.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tracejoin_tools.common import LOOPBACK
from tracejoin_tools.envoy.echo_server import read_body


def _hex(raw):
    return raw.hex() if isinstance(raw, (bytes, bytearray)) else raw


def zipkin_spans(body):
    out = []
    for s in json.loads(body or b"[]"):
        out.append(
            {
                "trace_id": s["traceId"].rjust(32, "0"),
                "span_id": s["id"],
                "parent_id": s.get("parentId"),
                "name": s.get("name", ""),
                "service": (s.get("localEndpoint") or {}).get("serviceName", ""),
                "kind": s.get("kind", ""),
                "tags": s.get("tags", {}),
                "source": "zipkin",
                "scope": "",
            }
        )
    return out


OTLP_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def otlp_json_spans(body):
    """OTLP/HTTP JSON. Not protobuf's JSON mapping: the OTLP spec encodes trace and span ids
    as hex strings (protobuf's mapping would read them as base64) and enums as integers."""

    def value(v):
        if "stringValue" in v:
            return v["stringValue"]
        for key in ("intValue", "boolValue", "doubleValue"):
            if key in v:
                return str(v[key])
        return json.dumps(v)

    out = []
    for resource_spans in json.loads(body or b"{}").get("resourceSpans", []):
        attrs = {a["key"]: value(a.get("value", {})) for a in resource_spans.get("resource", {}).get("attributes", [])}
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope = scope_spans.get("scope", {}).get("name", "")
            for s in scope_spans.get("spans", []):
                out.append(
                    {
                        "trace_id": s["traceId"].lower(),
                        "span_id": s["spanId"].lower(),
                        "parent_id": (s.get("parentSpanId") or "").lower() or None,
                        "name": s.get("name", ""),
                        "service": attrs.get("service.name", ""),
                        "kind": OTLP_KINDS.get(int(s.get("kind", 1)), "INTERNAL"),
                        "tags": {a["key"]: value(a.get("value", {})) for a in s.get("attributes", [])},
                        "source": "otlp",
                        "scope": scope,
                    }
                )
    return out


def otlp_spans(body, content_type):
    if "json" in content_type:
        return otlp_json_spans(body)
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    out = []
    for resource_spans in request.resource_spans:
        attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        service = attrs.get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                out.append(
                    {
                        "trace_id": _hex(s.trace_id),
                        "span_id": _hex(s.span_id),
                        "parent_id": _hex(s.parent_span_id) or None,
                        "name": s.name,
                        "service": service,
                        "kind": OTLP_KINDS.get(s.kind, "INTERNAL"),
                        "tags": {a.key: a.value.string_value or str(a.value.int_value) for a in s.attributes},
                        "source": "otlp",
                        "scope": scope_spans.scope.name,
                    }
                )
    return out


class Collector(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address):
        super().__init__(address, _Handler)
        self.lock = threading.Lock()
        self.spans = []

    def handle_error(self, request, client_address):
        pass

    def snapshot(self):
        with self.lock:
            return list(self.spans)

    def clear(self):
        with self.lock:
            self.spans.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _body(self):
        return read_body(self.rfile, self.headers)

    def _reply(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self._body()
        try:
            if self.path.startswith("/api/v2/spans"):
                spans = zipkin_spans(body)
            elif self.path.startswith("/v1/traces"):
                spans = otlp_spans(body, self.headers.get("content-type", ""))
            else:
                return self._reply(404)
        except Exception as e:  # a bad report is the sender's problem, not a crash here
            return self._reply(400, str(e).encode(), "text/plain")
        with self.server.lock:
            self.server.spans.extend(spans)
        self._reply(202 if self.path.startswith("/api/v2") else 200, b"{}")

    def do_GET(self):
        if self.path == "/spans":
            return self._reply(200, json.dumps(self.server.snapshot()).encode())
        self._reply(404)

    def do_DELETE(self):
        self.server.clear()
        self._reply(200, b"{}")

    def log_message(self, *_args):
        pass


def start(port=0, host=LOOPBACK):
    server = Collector((host, port))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


if __name__ == "__main__":
    srv, bound = start(int(sys.argv[1]) if len(sys.argv) > 1 else 0, sys.argv[2] if len(sys.argv) > 2 else LOOPBACK)
    print(bound, flush=True)
    threading.Event().wait()
