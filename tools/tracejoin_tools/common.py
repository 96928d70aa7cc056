"""What the tools and the tests share: where the repository is, the trace and span ids they
send, the trace header names, and loopback ports."""

import random
import socket
from pathlib import Path

# The package is installed editable from the repository (`make setup`: pip install -e tools),
# so this file is the repository's tools/tracejoin_tools/common.py.
ROOT = Path(__file__).resolve().parents[2]
WASM = ROOT / "tracejoin.wasm"  # what `make build` writes
BUILD = ROOT / "build"

# --- ids ------------------------------------------------------------------------------
# T/S is the W3C Trace Context spec's example traceparent; Y/YS its second example. X/XS and
# Z/ZS are other traces, for conflicts; P a parent span id.
T = "4bf92f3577b34da6a3ce929d0e0e4736"
S = "00f067aa0ba902b7"
X = "5af7183fb1d4cf5f5af7183fb1d4cf5f"
XS = "6e0c63257de34c92"
Y = "0af7651916cd43dd8448eb211c80319c"
YS = "b7ad6b7169203331"
Z = "a3ce929d0e0e47364bf92f3577b34da6"
ZS = "53995c3f42cd8ad8"
P = "e457b5a2e4d86bd1"
TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
BAGGAGE = "userId=alice,serverNode=DF%2028,isProduction=false"


def traceparent(trace=T, span=S, flags="01", version="00"):
    """A traceparent value (valid with the defaults)."""
    return f"{version}-{trace}-{span}-{flags}"


# --- header names ---------------------------------------------------------------------
B3_MULTI_HEADERS = ("x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags")
DATADOG_HEADERS = ("x-datadog-trace-id", "x-datadog-parent-id", "x-datadog-sampling-priority", "x-datadog-origin", "x-datadog-tags")
OT_HEADERS = ("ot-tracer-traceid", "ot-tracer-spanid", "ot-tracer-sampled")
# Every header tracejoin reads or writes (src/codec/mod.rs, `Header::ALL`).
TRACE_HEADERS = ("traceparent", "tracestate", "b3", *B3_MULTI_HEADERS, "uber-trace-id", *DATADOG_HEADERS, "x-amzn-trace-id", *OT_HEADERS)


def datadog_ids(trace=T, span=S):
    """(x-datadog-trace-id, x-datadog-parent-id, x-datadog-tags or None) for hex ids."""
    high = trace.rjust(32, "0")[:16]
    tags = None if int(high, 16) == 0 else f"_dd.p.tid={high}"
    return str(int(trace[-16:], 16)), str(int(span, 16)), tags


def xray(trace=T, span=S, sampled="1"):
    """An X-Amzn-Trace-Id value."""
    trace = trace.rjust(32, "0")
    return f"Root=1-{trace[:8]}-{trace[8:]};Parent={span};Sampled={sampled}"

# --- ports ----------------------------------------------------------------------------
LOOPBACK = "127.0.0.1"


def loopback(port=0):
    """An Envoy `socket_address` on loopback; port 0 lets the kernel choose."""
    return {"address": LOOPBACK, "port_value": port}


_PORT_RANGE = (20000, 32000)  # below Linux's ephemeral range (32768-60999)


def free_port():
    """A loopback port that is free now and that the kernel will not hand out by itself
    (port 0 binds and client connections draw from the ephemeral range above), so nothing
    else started meanwhile takes it before the caller binds it. Never the same port twice in
    one process: callers that ask for several before binding any (the listeners of one Envoy
    update) would otherwise get a duplicate now and then."""
    for _ in range(200):
        port = random.randrange(*_PORT_RANGE)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


# The ports free_port returned in this process.
_HANDED_OUT = set()
