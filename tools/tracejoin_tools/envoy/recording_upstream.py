"""A loopback HTTP/1.1 upstream that records every request Envoy forwards, framed by h11 (an
independent parser), and answers each after a delay its path asks for.

For the network position's differential tests: the same client bytes through a listener with
tracejoin and one without must reach the upstream as the same requests, bodies and trailers.
A path starting `/slow<ms>` (e.g. `/slow600`) is answered after that many milliseconds, so a
request can wait for its response while the client writes on.
"""

import re
import socket
import threading
import time

import h11

from tracejoin_tools.common import LOOPBACK

SLOW = re.compile(rb"^/slow(\d+)")


class Request:
    """One request as the upstream framed it."""

    def __init__(self, method, target, headers):
        self.method = method
        self.target = target
        self.headers = headers
        self.body = b""
        self.trailers = []

    def key(self, ignore=()):
        """What two runs must agree on: method, target, body, trailers and the headers
        outside `ignore` (lowercase names), in order."""
        kept = [(k, v) for k, v in self.headers if k not in ignore]
        return (self.method, self.target, kept, self.body, self.trailers)

    def __repr__(self):
        return f"<{self.method.decode()} {self.target.decode()} body={len(self.body)}>"


class LoopbackUpstream:
    """A loopback TCP server answering each connection in a thread (`_serve`, a subclass's),
    recording what arrived in `requests`. Use as a context manager."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        self.sock = socket.create_server((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_exc):
        self.sock.close()
        return False

    def clear(self):
        with self.lock:
            self.requests.clear()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        raise NotImplementedError


class RecordingUpstream(LoopbackUpstream):
    """`requests` lists what arrived, in order, across connections."""

    def wait_for(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        with self.lock:
            return list(self.requests)

    def _serve(self, conn):
        conn.settimeout(30)
        h = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
        current = None
        try:
            while True:
                event = h.next_event()
                if event is h11.NEED_DATA:
                    data = conn.recv(65536)
                    h.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.Request):
                    current = Request(event.method, event.target, [(k, v) for k, v in event.headers])
                elif isinstance(event, h11.Data):
                    current.body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    current.trailers = [(k, v) for k, v in event.headers]
                    with self.lock:
                        self.requests.append(current)
                    slow = SLOW.match(current.target)
                    if slow:
                        time.sleep(int(slow.group(1)) / 1000)
                    out = h.send(h11.Response(status_code=200, headers=[("content-length", "2")]))
                    out += h.send(h11.Data(data=b"ok"))
                    out += h.send(h11.EndOfMessage())
                    conn.sendall(out)
                    h.start_next_cycle()
                    current = None
                elif isinstance(event, h11.ConnectionClosed):
                    return
        except (h11.RemoteProtocolError, h11.LocalProtocolError, OSError):
            return
        finally:
            conn.close()
