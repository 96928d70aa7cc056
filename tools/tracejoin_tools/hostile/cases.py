"""A case of the hostile corpus, and what Envoy's HTTP/1 codec does with it before the filter.

Envoy 1.40's HTTP/1 codec (Balsa) answers some requests itself before any filter runs,
measured: 400 for a control character in a header value (C0 but horizontal tab and carriage
return, or DEL) or a name that is not a token; 431 for more than 100 header fields (host
included, `max_headers_count`) or a request head (request line, header lines and the blank
line) over 60 KiB (`max_request_headers_kb`). A bare carriage return in a value is dropped,
optional whitespace around a value is trimmed and an obs-fold continuation is joined with one
space before the filter sees the value. Every case states what the codec is expected to
answer (`Case.expect`, None when the request is forwarded); the checks compare.
"""

from dataclasses import dataclass

PATH = b"/"
HOST = b"tracejoin.test"
MAX_HEAD_BYTES = 60 * 1024
MAX_HEADERS = 100
# Header-value bytes Envoy's codec refuses with 400.
REJECTED_VALUE_BYTES = frozenset(set(range(0x00, 0x20)) - {0x09, 0x0D} | {0x7F})
TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def as_bytes(v):
    return v if isinstance(v, bytes) else v.encode("latin-1")


@dataclass(frozen=True)
class Case:
    """One request: header lines after `host`, or (`raw`) a whole request head that cannot be
    said as name/value pairs. `expect` is the status Envoy's codec answers with, None when
    the request reaches the upstream."""

    category: str
    name: str
    headers: tuple = ()
    raw: bytes = None
    expect: int = None

    def head(self):
        if self.raw is not None:
            return self.raw
        lines = b"".join(n + b": " + v + b"\r\n" for n, v in self.headers)
        return b"GET " + PATH + b" HTTP/1.1\r\nhost: " + HOST + b"\r\n" + lines + b"\r\n"

    def seen(self):
        """The headers (host aside) as Envoy's codec hands them on, for a forwarded case:
        lowercase names, folds joined, bare carriage returns dropped, whitespace trimmed."""
        return [
            (n.lower().decode("latin-1"), v.replace(b"\r", b"").strip(b" \t").decode("latin-1"))
            for n, v in header_fields(self.head())
            if n.lower() != b"host"
        ]


def header_fields(head):
    """The header fields of a request head as Envoy's HTTP/1 codec splits them (a line feed
    ends a line, an optional carriage return before it is dropped, a line starting with
    whitespace continues the previous field), or None when a line is not a field."""
    fields = []
    for line in head.split(b"\n")[1:]:
        line = line[:-1] if line.endswith(b"\r") else line
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if not fields:
                return None
            name, value = fields[-1]
            fields[-1] = (name, value.rstrip(b" \t") + b" " + line.strip(b" \t"))
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            return None
        fields.append((name, value.strip(b" \t")))
    return fields


def codec_verdict(head):
    """What Envoy 1.40's HTTP/1 codec answers for this request head (None: forwarded)."""
    fields = header_fields(head)
    if fields is None:
        return 400
    for name, value in fields:
        if not name or any(b not in TOKEN for b in name) or any(b in REJECTED_VALUE_BYTES for b in value):
            return 400
    if len(fields) > MAX_HEADERS or len(head) > MAX_HEAD_BYTES:
        return 431
    return None


def make_case(category, name, headers=(), raw=None):
    headers = tuple((as_bytes(n), as_bytes(v)) for n, v in headers)
    for _, value in headers:
        # A line feed at the end of a value (or before a carriage return) would end the head
        # early: the rest would be read as a second request on the connection.
        for at in (i for i, b in enumerate(value) if b == 0x0A):
            assert 0 < at < len(value) - 1 and value[at + 1] not in b"\r\n", (name, value)
    case = Case(category, name, headers, raw)
    return Case(category, name, headers, raw, codec_verdict(case.head()))
