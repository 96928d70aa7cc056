"""Sends hostile request heads to Envoy byte for byte and reads the answers."""

import json
import socket
from dataclasses import dataclass

from tracejoin_tools.common import LOOPBACK
from tracejoin_tools.hostile.cases import Case


class Connection:
    """A kept-alive HTTP/1.1 client connection that sends a request head byte for byte
    (http.client refuses control bytes, folds and odd names) and reads one response. It
    reconnects after a response that closes the connection (Envoy's codec errors do)."""

    def __init__(self, port, timeout=10):
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.reader = None

    def close(self):
        if self.sock:
            self.reader.close()
            self.sock.close()
        self.sock = self.reader = None

    def request(self, head):
        """Sends one request; returns (status, [(name, value)] lowercase names, body)."""
        for attempt in (0, 1):
            reused = self.sock is not None
            if not reused:
                self.sock = socket.create_connection((LOOPBACK, self.port), timeout=self.timeout)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.reader = self.sock.makefile("rb")
            try:
                self.sock.sendall(head)
                status_line = self.reader.readline()
                if not status_line:
                    raise ConnectionResetError("closed before a response")
            except (ConnectionError, BrokenPipeError):
                self.close()
                if reused and attempt == 0:
                    continue  # a kept-alive connection the server had closed
                raise
            status = int(status_line.split()[1])
            headers = []
            while True:
                line = self.reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers.append((name.strip().lower(), value.strip()))
            fields = dict(headers)
            if "content-length" in fields:
                body = self.reader.read(int(fields["content-length"]))
            else:
                body = self.reader.read()
            if fields.get("connection", "").lower() == "close" or "content-length" not in fields:
                self.close()
            return status, headers, body
        raise AssertionError("unreachable")


@dataclass
class Result:
    case: Case
    status: int
    response_headers: list
    received: list  # the headers the echo upstream received, None when it was not reached

    @property
    def upstream_reached(self):
        return self.received is not None or any(k == "x-envoy-upstream-service-time" for k, _ in self.response_headers)


def send_all(port, cases, connection_per_case=False):
    """Sends every case over one kept-alive connection (reopened after codec errors), or each
    over a connection of its own."""
    conn = Connection(port)
    results = []
    try:
        for case in cases:
            if connection_per_case:
                conn.close()
            status, headers, body = conn.request(case.head())
            received = None
            if status == 200:
                try:
                    received = json.loads(body)["headers"]
                except (ValueError, KeyError):
                    received = None
            results.append(Result(case, status, headers, [tuple(h) for h in received] if received is not None else None))
    finally:
        conn.close()
    return results
