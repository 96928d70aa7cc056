"""Loopback echo upstream for the tests and demos (and the stand-in for external hosts).

Answers every request with a JSON body listing the request headers it received, in order and
with repeats, so tests can assert on exactly what Envoy (and the filter) forwarded. Requests to
tracing collector paths (Zipkin v2, OTLP/HTTP) are also kept in `server.collected`, so tests
can read the spans Envoy exported.

Standard library only, and runnable as a file (`python echo_server.py PORT HOST`): the
docker-compose files mount this very file into a plain Python image.
"""

import hashlib
import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Envoy accepts up to 100 request headers from a client (max_headers_count) and adds its own
# (x-request-id, x-forwarded-proto, trace headers): the stand-in app must not be the narrower
# limit. Python's server takes its limit (100) from http.client.
http.client._MAXHEADERS = max(http.client._MAXHEADERS, 1000)


COLLECTOR_PATHS = ("/api/v2/spans", "/v1/traces")


def read_body(rfile, headers):
    """A request body, with a length or chunked (Envoy's span exporters stream reports)."""
    if "chunked" in (headers.get("transfer-encoding") or "").lower():
        chunks = []
        while True:
            size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(rfile.read(size))
            rfile.readline()
    length = int(headers.get("content-length") or 0)
    return rfile.read(length) if length else b""


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body go out in two writes: with Nagle's algorithm the body waits for
    # Envoy's delayed ACK, 40 ms per request on a kept-alive upstream connection.
    disable_nagle_algorithm = True

    def _answer(self):
        body = self._read_body()
        if self.command == "POST" and self.path in COLLECTOR_PATHS:
            # Spans Envoy exports (Zipkin v2 JSON, OTLP/HTTP): kept for the tests to read.
            self.server.collected.append((self.path, self.headers.get("content-type", ""), body))
        answer = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": [[k.lower(), v] for k, v in self.headers.items()],
                # What arrived of the body, for tests that a filter left it untouched.
                "body_length": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
            }
        ).encode()
        # `/status/NNN` answers with that status (for response-class counters).
        parts = self.path.split("/")
        status = int(parts[2]) if len(parts) > 2 and parts[1] == "status" and parts[2].isdigit() else 200
        if self.path in COLLECTOR_PATHS:
            status = 202  # what Zipkin answers; Envoy counts anything else as a dropped report
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def _read_body(self):
        return read_body(self.rfile, self.headers)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *_args):
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.collected = []

    def handle_error(self, request, client_address):
        # A client (Envoy exporting spans at shutdown) that hangs up early is not an error here.
        pass


def start(port=0, host="127.0.0.1"):
    """Starts the echo server (loopback by default) in a daemon thread; returns (server, port)."""
    server = QuietServer((host, port), EchoHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


if __name__ == "__main__":
    # Under docker-compose the app listens on all of its container's interfaces.
    srv, bound = start(int(sys.argv[1]) if len(sys.argv) > 1 else 0, sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1")
    print(bound, flush=True)
    threading.Event().wait()
