"""A trace header sent twice, through a real Envoy in every position (docs/conformance.md,
item 2). B3 and Jaeger read the first value (B3: "the first value wins"); what leaves Envoy
must be one value per header, never the rewritten first copy next to a stale second one.
The filter always rewrites a repeated header (never "unchanged"); Envoy's
`proxy_replace_header_map_value` is `HeaderMap::setCopy` (remove every copy, then add one),
so one value leaves: what these cases check, per release and position."""

import pytest

from tracejoin_tools.common import XS, S, T, X
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import assert_well_formed, header_values, read_all, traces_seen

REPEATED = {
    "b3-same": [("b3", f"{T}-{S}-1"), ("b3", f"{T}-{S}-1")],
    "b3-different": [("b3", f"{T}-{S}-1"), ("b3", f"{X}-{XS}-1")],
    "b3-garbage-second": [("b3", f"{T}-{S}-1"), ("b3", "garbage")],
    "b3multi-different": [
        ("x-b3-traceid", T),
        ("x-b3-spanid", S),
        ("x-b3-sampled", "1"),
        ("x-b3-traceid", X),
        ("x-b3-spanid", XS),
        ("x-b3-sampled", "1"),
    ],
    "jaeger-different": [("uber-trace-id", f"{T}:{S}:0:1"), ("uber-trace-id", f"{X}:{XS}:0:1")],
}

# (position, tracer): HTTP positions under no tracer and Zipkin (which reads B3 itself), and
# the network position in front of each tracer that reads B3 or not.
WHERE = [
    ("downstream", "none"),
    ("downstream", "zipkin"),
    ("upstream", "none"),
    ("upstream", "zipkin"),
    ("network", "zipkin"),
    ("network", "opentelemetry"),
]

TRACE_NAMES = ("traceparent", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "uber-trace-id")


@pytest.mark.parametrize("case", list(REPEATED))
@pytest.mark.parametrize("position,tracer", WHERE, ids=[f"{p}-{t}" for p, t in WHERE])
def test_repeated_header_leaves_as_one_value_of_the_first(envoys, position, tracer, case):
    envoy = envoys.get(position, tracer)
    status, _, got = send(envoy.port, REPEATED[case])
    assert status == 200
    for name in TRACE_NAMES:
        assert len(header_values(got, name)) <= 1, f"{name} left twice: {got}"
    assert_well_formed(got)
    # The first value's trace goes on, in every reader (none is lost: B3 and Jaeger inputs
    # reach the W3C reader through tracejoin, and Envoy's tracers read the first value).
    assert traces_seen(got) == {T}, read_all(got)
    assert X not in str(got), f"the second copy's trace leaked: {got}"


@pytest.mark.parametrize("position,tracer", [("downstream", "none"), ("upstream", "zipkin")], ids=["ds-none", "us-zipkin"])
def test_many_tracestate_headers_are_joined(envoys, position, tracer):
    """RFC 9110: any number of tracestate field lines combine into one (item 7); a repeated
    key keeps its first member (item 5)."""
    envoy = envoys.get(position, tracer)
    parts = [f"k{i}=v{i}" for i in range(12)] + ["k0=again"]
    _, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01")] + [("tracestate", p) for p in parts])
    assert header_values(got, "tracestate") == [",".join(parts[:12])], got
