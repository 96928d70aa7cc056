"""Loopback echo upstream for the Envoy integration tests.

Answers every request with a JSON body listing the request headers it received, in order and
with repeats, so tests can assert on exactly what Envoy (and the filter) forwarded. Requests to
tracing collector paths (Zipkin v2, OTLP/HTTP) are accepted and counted but not echoed.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": [[k.lower(), v] for k, v in self.headers.items()],
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *_args):
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

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
