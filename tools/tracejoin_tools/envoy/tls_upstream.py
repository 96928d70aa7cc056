"""A TLS server standing in for third parties (OpenAI, Kakao, S3...): one certificate for every
host it is asked to serve, from a test CA (trustme). It answers each HTTP/1.1 request with the
SHA-256 of the body it received and the server name the client asked for, so a test can check
that the bytes crossed the proxy unchanged and the TLS session completed end to end.

    with TlsUpstream(["api.openai.com", "*.s3.amazonaws.com"]) as up:
        up.port, up.ca_path, up.client_context(), up.server_names
"""

import hashlib
import os
import socket
import ssl
import tempfile
import threading

import trustme

from tracejoin_tools.common import LOOPBACK


class TlsUpstream:
    def __init__(self, hosts):
        self.hosts = list(hosts)
        self.server_names = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def __enter__(self):
        self.ca = trustme.CA()
        cert = self.ca.issue_cert(*self.hosts)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.context)
        self.context.set_alpn_protocols(["http/1.1"])
        self.context.sni_callback = self._note_name
        self.dir = tempfile.mkdtemp(prefix="tracejoin-tls-")
        self.ca_path = os.path.join(self.dir, "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)
        self.sock = socket.create_server((LOOPBACK, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def _note_name(self, sock, name, _ctx):
        sock.requested_name = name
        with self._lock:
            self.server_names.append(name)

    def client_context(self):
        """A client context that trusts this server's CA (and offers h2 and http/1.1, as
        browsers and most HTTP clients do)."""
        ctx = ssl.create_default_context(cafile=self.ca_path)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        return ctx

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        conn.settimeout(10)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = tls.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(body) < length:
                    chunk = tls.recv(65536)
                    if not chunk:
                        return
                    body += chunk
                answer = f"{hashlib.sha256(body).hexdigest()} {getattr(tls, 'requested_name', None) or '-'}".encode()
                tls.sendall(
                    b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: "
                    + str(len(answer)).encode()
                    + b"\r\n\r\n"
                    + answer
                )
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            conn.close()

    def __exit__(self, *_exc):
        self._stop.set()
        self.sock.close()
        self.thread.join(timeout=5)
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)
        return False


def request(port, host, ctx, body=b"", writes=None, timeout=10):
    """POSTs `body` over TLS to `host` (the server name sent) at loopback `port`; returns the
    answer's body. `writes`: send the ClientHello in pieces of this many bytes (one write
    each, Nagle off), to split it over the proxy's reads."""
    raw = socket.create_connection((LOOPBACK, port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if writes:
            tls = _handshake_in_pieces(raw, host, ctx, writes)
        else:
            tls = ctx.wrap_socket(raw, server_hostname=host)
        request = (
            f"POST /hash HTTP/1.1\r\nhost: {host}\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body
        )
        tls.sendall(request)
        answer = b""
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer.partition(b"\r\n\r\n")[2].decode()
    finally:
        raw.close()


class _Pumped:
    """An SSLObject over a socket, with sendall/recv (what request() uses)."""

    def __init__(self, sock, obj, incoming, outgoing):
        self.sock, self.obj, self.incoming, self.outgoing = sock, obj, incoming, outgoing

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def sendall(self, data):
        self.obj.write(data)
        self._flush()

    def recv(self, n):
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return b""
                self.incoming.write(chunk)
            except ssl.SSLZeroReturnError:
                return b""


def _handshake_in_pieces(sock, host, ctx, size):
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    for at in range(0, len(hello), size):
        sock.sendall(hello[at : at + size])
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        incoming.write(chunk)
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pumped = outgoing.read()
            if pumped:
                sock.sendall(pumped)
    pumped = _Pumped(sock, obj, incoming, outgoing)
    pumped._flush()
    return pumped
