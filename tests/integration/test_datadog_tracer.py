"""Envoy's Datadog tracer (`envoy.tracers.datadog`, dd-trace-cpp), which the PyPI Envoy
builds carry: what it reads and writes, measured on the running release without tracejoin
(the facts `src/policy/tracer.rs` models as `tracer: datadog`), and tracejoin around it in
the three positions.

The agent the tracer reports to is the echo server (it answers PUT /v0.4/traces).
"""

import pytest

from tracejoin_tools.common import S, T
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import b3, one, w3c

DD_TRACE_64 = "1234567890123456789"
DD_PARENT = "987654321"
TP = f"00-{T}-{S}-01"


def datadog(headers):
    """The Datadog context the upstream received: 128-bit trace id in hex (the high half
    from `_dd.p.tid`), span id in hex, priority; None without x-datadog-trace-id."""
    trace = one(headers, "x-datadog-trace-id")
    if trace is None:
        return None
    tags = dict(t.split("=", 1) for t in (one(headers, "x-datadog-tags") or "").split(",") if "=" in t)
    high = tags.get("_dd.p.tid", "0" * 16)
    return {
        "trace": high + f"{int(trace):016x}",
        "span": f"{int(one(headers, 'x-datadog-parent-id')):016x}",
        "priority": one(headers, "x-datadog-sampling-priority"),
        "origin": one(headers, "x-datadog-origin"),
        "tags": tags,
    }


def upstream_of(envoys, position, headers, plugin_config=None):
    envoy = envoys.get(position, "datadog", plugin_config)
    status, _, got = send(envoy.port, headers)
    assert status == 200
    return got


# --- what the tracer itself does (no tracejoin) -------------------------------------------


def test_fresh_trace_is_128_bit_in_both_formats_and_its_root_span_is_the_low_half(envoys):
    got = upstream_of(envoys, "off", [])
    dd, tp = datadog(got), w3c(got)
    assert dd is not None and tp is not None, got
    assert dd["trace"] == tp["trace"] and dd["span"] == tp["span"], got
    # What `tracer::datadog_root` recognises Envoy's fresh root span by, upstream.
    assert dd["span"] == dd["trace"][16:], got
    assert dd["trace"][:16] != "0" * 16 and dd["priority"] == "1"
    assert one(got, "tracestate").startswith("dd="), got


@pytest.mark.parametrize(
    "incoming,high",
    [
        ([], "0" * 16),
        ([("x-datadog-tags", "_dd.p.tid=640cfd8d00000000,_dd.p.dm=-4,foo=bar"), ("x-datadog-origin", "synthetics")], "640cfd8d00000000"),
    ],
    ids=["64-bit", "128-bit"],
)
def test_continues_a_datadog_context_keeping_origin_and_dd_tags(envoys, incoming, high):
    headers = [("x-datadog-trace-id", DD_TRACE_64), ("x-datadog-parent-id", DD_PARENT), ("x-datadog-sampling-priority", "2")]
    got = upstream_of(envoys, "off", headers + incoming)
    dd, tp = datadog(got), w3c(got)
    want = high + f"{int(DD_TRACE_64):016x}"
    assert dd["trace"] == want and tp["trace"] == want, got
    assert dd["span"] != f"{int(DD_PARENT):016x}" and dd["span"] == tp["span"], got
    # A priority goes on as it came (2 = user keep); origin and `_dd.p.*` tags too, others not.
    assert dd["priority"] == "2"
    if incoming:
        assert dd["origin"] == "synthetics" and "foo" not in dd["tags"], got


def test_reads_datadog_before_traceparent(envoys):
    headers = [("traceparent", TP), ("x-datadog-trace-id", "42"), ("x-datadog-parent-id", "7")]
    dd = datadog(upstream_of(envoys, "off", headers))
    assert dd["trace"] == f"{42:032x}"


@pytest.mark.parametrize(
    "bad",
    [
        [("x-datadog-trace-id", "42")],
        [("x-datadog-trace-id", "0"), ("x-datadog-parent-id", "7")],
        [("x-datadog-trace-id", "abc"), ("x-datadog-parent-id", "7")],
        [("x-datadog-trace-id", "42"), ("x-datadog-parent-id", "7"), ("x-datadog-sampling-priority", "x")],
    ],
    ids=["no-parent", "zero", "not-decimal", "bad-priority"],
)
def test_an_invalid_datadog_context_starts_a_trace_even_next_to_a_traceparent(envoys, bad):
    got = upstream_of(envoys, "off", [("traceparent", TP)] + bad)
    dd, tp = datadog(got), w3c(got)
    assert tp["trace"] != T and dd["trace"] == tp["trace"], got
    assert dd["span"] == dd["trace"][16:], got


@pytest.mark.parametrize("lenient", [[("x-datadog-sampling-priority", "5")], [("x-datadog-tags", "_dd.p.tid=XYZ")]], ids=["priority-5", "bad-tid"])
def test_continues_what_tracejoin_reads_as_invalid(envoys, lenient):
    # Not modelled (docs/envoy-versions.md): the tracer is more lenient here than tracejoin.
    got = upstream_of(envoys, "off", [("x-datadog-trace-id", "42"), ("x-datadog-parent-id", "7")] + lenient)
    assert datadog(got)["trace"] == f"{42:032x}", got


def test_continues_traceparent_future_versions_too_and_not_b3(envoys):
    got = upstream_of(envoys, "off", [("traceparent", f"01-{T}-{S}-01-extra")])
    assert w3c(got)["trace"] == T and datadog(got)["trace"] == T, got
    got = upstream_of(envoys, "off", [("b3", f"{T}-{S}-1")])
    assert datadog(got)["trace"] != T, got


def test_replaces_tracestate_keeping_other_members_only_with_the_traceparent_it_continued(envoys):
    got = upstream_of(envoys, "off", [("traceparent", TP), ("tracestate", "foo=bar")])
    assert one(got, "tracestate").startswith("dd=") and one(got, "tracestate").endswith(",foo=bar"), got
    bad = "00-" + T + "-" + "0" * 16 + "-01"
    got = upstream_of(envoys, "off", [("traceparent", bad), ("tracestate", "foo=bar")])
    assert "foo=bar" not in one(got, "tracestate"), got


def test_keeps_tracestate_members_when_the_datadog_context_is_the_traceparents_trace(envoys):
    # What the network position relies on when it feeds it x-datadog-* next to the app's
    # traceparent and tracestate.
    headers = [
        ("traceparent", TP),
        ("tracestate", "foo=bar"),
        ("x-datadog-trace-id", str(int(T[16:], 16))),
        ("x-datadog-parent-id", str(int(S, 16))),
        ("x-datadog-tags", f"_dd.p.tid={T[:16]}"),
    ]
    got = upstream_of(envoys, "off", headers)
    assert datadog(got)["trace"] == T and one(got, "tracestate").endswith(",foo=bar"), got


# --- tracejoin around it ------------------------------------------------------------------


def test_network_feeds_it_the_b3_context_as_datadog_headers(envoys):
    # An app on B3 alone: the tracer does not read B3; in front of it tracejoin writes
    # x-datadog-* (high half in _dd.p.tid) and Envoy's span joins the app's trace.
    got = upstream_of(envoys, "network", [("b3", f"{T}-{S}-1")])
    dd, tp = datadog(got), w3c(got)
    assert dd["trace"] == T and tp["trace"] == T, got
    assert dd["span"] != S, "Envoy's own span is the parent"
    # With the app's traceparent and tracestate, the tracestate's members go on.
    got = upstream_of(envoys, "network", [("traceparent", TP), ("tracestate", "foo=bar")])
    assert datadog(got)["trace"] == T and one(got, "tracestate").endswith(",foo=bar"), got


def test_downstream_writes_the_formats_it_does_not(envoys):
    config = {"position": "downstream", "tracer": "datadog", "propagate": ["tracecontext", "datadog", "b3multi"]}
    got = upstream_of(envoys, "downstream", [("traceparent", TP)], config)
    dd, tp, b3m = datadog(got), w3c(got), b3(got)
    assert dd["trace"] == T and tp["trace"] == T and b3m["trace"] == T, got
    # The caller's span in the format Envoy does not write (its own span id is not known yet).
    assert b3m["span"] == S and tp["span"] == dd["span"] != S, got


def test_upstream_carries_envoys_span_and_an_unread_trace_over_its_fresh_one(envoys):
    config = {"position": "upstream", "tracer": "datadog", "propagate": ["tracecontext", "datadog", "b3multi"]}
    got = upstream_of(envoys, "upstream", [("traceparent", TP)], config)
    dd, b3m = datadog(got), b3(got)
    assert dd["trace"] == T and b3m["trace"] == T and b3m["span"] == dd["span"] != S, got
    # B3 the tracer cannot read: its root span is recognised, the app's trace goes on.
    envoy = envoys.get("upstream", "datadog", config)
    got = send(envoy.port, [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "1")])[2]
    assert datadog(got)["trace"] == T and w3c(got)["trace"] == T and b3(got)["trace"] == T, got
    assert envoy.stats("tracejoin").get("wasmcustom.tracejoin.continued_over_tracer", 0) >= 1


APPS = {
    "b3multi": [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "1")],
    "jaeger": [("uber-trace-id", f"{T}:{S}:0:1")],
    "xray": [("x-amzn-trace-id", f"Root=1-{T[:8]}-{T[8:]};Parent={S};Sampled=1")],
    "ottrace": [("ot-tracer-traceid", T), ("ot-tracer-spanid", S), ("ot-tracer-sampled", "true")],
}


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("position", ["network", "upstream"])
def test_an_app_on_a_format_it_does_not_read_keeps_its_trace(envoys, position, app):
    # In front of the tracer, Envoy's span joins the app's trace under the app's span; after
    # it, the app's trace goes on over the tracer's fresh one, in every written format.
    config = {"position": position, "tracer": "datadog", "extract": [app, "tracecontext"], "propagate": ["tracecontext", "datadog", app]}
    got = upstream_of(envoys, position, APPS[app], config)
    dd, tp = datadog(got), w3c(got)
    assert dd["trace"] == T and tp["trace"] == T, got
    if position == "network":
        assert dd["span"] != S and dd["span"] == tp["span"], "Envoy's own span"


@pytest.mark.parametrize("app", ["b3multi", "jaeger"])
def test_downstream_alone_cannot_make_its_span_join_a_format_it_does_not_read(envoys, app):
    # The design table's cell: Envoy writes x-datadog-* and traceparent with its fresh trace
    # after every listener filter; the app's own format keeps the app's trace (the next hop
    # joins), and the network position in front fixes this hop.
    config = {"position": "downstream", "tracer": "datadog", "extract": [app, "tracecontext"], "propagate": ["tracecontext", "datadog", app]}
    got = upstream_of(envoys, "downstream", APPS[app], config)
    dd, tp = datadog(got), w3c(got)
    assert dd["trace"] == tp["trace"] != T, got
    assert (b3(got) if app == "b3multi" else {"trace": one(got, "uber-trace-id").split(":")[0]})["trace"] == T, got
