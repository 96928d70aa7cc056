"""tracejoin in a real Envoy (each release docs/envoy-versions.md lists): both positions,
every tracer, asserting on what the upstream (standing in for the app) receives and on the
filter's stats."""

import pytest

from tracejoin_tools.common import TRACESTATE, XS, S, T, X, datadog_ids, xray
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import assert_well_formed, b3, header_values, one, read_all, traces_seen, w3c

POSITIONS = ("downstream", "upstream")
TRACERS = ("none", "zipkin", "zipkin_w3c", "opentelemetry")
COMBOS = [(p, t) for p in POSITIONS for t in TRACERS]
COMBO_IDS = [f"{p}-{t}" for p, t in COMBOS]

INPUTS = {
    "tracecontext": [("traceparent", f"00-{T}-{S}-01")],
    "b3": [("b3", f"{T}-{S}-1")],
    "b3multi": [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "1")],
    "jaeger": [("uber-trace-id", f"{T}:{S}:0:1")],
}


def lost_readers(position, tracer, input_format):
    """Readers that cannot be made to see the incoming trace (the README explains why):
    in the downstream position Envoy overwrites traceparent after the filter, with a fresh
    trace when its tracer cannot read the incoming format."""
    if position == "downstream" and tracer == "opentelemetry" and input_format != "tracecontext":
        return {"w3c"}
    if position == "downstream" and tracer == "zipkin_w3c" and input_format == "jaeger":
        return {"w3c"}
    return set()


def stat(envoy, name):
    return envoy.counter(name)


@pytest.mark.parametrize("position,tracer", COMBOS, ids=COMBO_IDS)
def test_no_headers(envoys, position, tracer):
    envoy = envoys.get(position, tracer)
    status, _, got = send(envoy.port)
    assert status == 200
    assert_well_formed(got)
    seen = read_all(got)
    assert len(traces_seen(got)) == 1, seen
    if position == "downstream" and tracer in ("zipkin", "zipkin_w3c", "opentelemetry"):
        # Envoy's tracer starts the trace after the filter: nothing for tracejoin to write.
        assert stat(envoy, "context.left_to_tracer") >= 1
        if tracer == "zipkin":
            assert seen["w3c"] is None and seen["b3"] is not None
    else:
        assert seen["w3c"] is not None and seen["b3"] is not None
        assert seen["w3c"]["trace"] == seen["b3"]["trace"] and seen["w3c"]["span"] == seen["b3"]["span"]
    if tracer == "none":
        # Generated: W3C Level 2 random flag set, sampled at the default ratio 1.
        assert one(got, "traceparent").endswith("-03")
        assert stat(envoy, "context.generated") >= 1


@pytest.mark.parametrize("input_format", list(INPUTS))
@pytest.mark.parametrize("position,tracer", COMBOS, ids=COMBO_IDS)
def test_each_format_alone_is_continued(envoys, position, tracer, input_format):
    envoy = envoys.get(position, tracer)
    status, _, got = send(envoy.port, INPUTS[input_format])
    assert status == 200
    assert_well_formed(got)
    seen = read_all(got)
    lost = lost_readers(position, tracer, input_format)
    assert seen["w3c"] is not None and seen["b3"] is not None, got
    for reader, ctx in seen.items():
        if ctx is None:
            continue
        if reader in lost:
            assert ctx["trace"] != T, f"{reader} unexpectedly continued: the README's limit is stale"
        else:
            assert ctx["trace"] == T, f"{reader} reader sees {ctx} in {got}"
            assert ctx["sampled"] is True
    if position == "upstream" and tracer != "none" and input_format in {
        "zipkin": ("b3", "b3multi"),
        "zipkin_w3c": ("b3", "b3multi", "tracecontext"),
        "opentelemetry": ("tracecontext",),
    }[tracer]:
        # Exact parent links: every format names Envoy's own span as the parent.
        assert seen["w3c"]["span"] == seen["b3"]["span"] != S


@pytest.mark.parametrize("position,tracer", COMBOS, ids=COMBO_IDS)
def test_conflicting_formats_end_as_one_trace(envoys, position, tracer):
    envoy = envoys.get(position, tracer)
    before = stat(envoy, "conflict")
    headers = [("traceparent", f"00-{T}-{S}-01"), ("x-b3-traceid", X), ("x-b3-spanid", XS), ("x-b3-sampled", "1")]
    status, _, got = send(envoy.port, headers)
    assert status == 200
    assert_well_formed(got)
    assert len(traces_seen(got)) == 1, read_all(got)
    if (position, tracer) == ("upstream", "zipkin_w3c"):
        # Envoy itself read x-b3-* first and overwrote traceparent before the filter ran.
        assert traces_seen(got) == {X}
    elif (position, tracer) == ("upstream", "opentelemetry"):
        # After Envoy rewrote traceparent, a differing B3 context is indistinguishable from
        # one the tracer could not read: counted as continued_over_tracer instead.
        assert stat(envoy, "continued_over_tracer") >= 1
    else:
        assert stat(envoy, "conflict") == before + 1


INVALID = {
    "traceparent-uppercase": ("tracecontext", [("traceparent", f"00-{T.upper()}-{S}-01")]),
    "traceparent-version-ff": ("tracecontext", [("traceparent", f"ff-{T}-{S}-01")]),
    "traceparent-zero-trace": ("tracecontext", [("traceparent", f"00-{'0' * 32}-{S}-01")]),
    "traceparent-zero-span": ("tracecontext", [("traceparent", f"00-{T}-{'0' * 16}-01")]),
    "traceparent-short": ("tracecontext", [("traceparent", f"00-{T[:30]}-{S}-01")]),
    "traceparent-v00-suffix": ("tracecontext", [("traceparent", f"00-{T}-{S}-01-extra")]),
    "traceparent-repeated": ("tracecontext", [("traceparent", f"00-{T}-{S}-01"), ("traceparent", f"00-{X}-{XS}-01")]),
    "b3-garbage": ("b3", [("b3", "not-a-b3-value")]),
    "b3-bad-sampling": ("b3", [("b3", f"{T}-{S}-x")]),
    "b3multi-no-span": ("b3multi", [("x-b3-traceid", T), ("x-b3-sampled", "1")]),
    "b3multi-bad-sampled": ("b3multi", [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "maybe")]),
    "jaeger-non-hex": ("jaeger", [("uber-trace-id", "zz:1:0:1")]),
    "jaeger-three-fields": ("jaeger", [("uber-trace-id", f"{T}:{S}:1")]),
    "datadog-zero-trace": ("datadog", [("x-datadog-trace-id", "0"), ("x-datadog-parent-id", "1")]),
    "datadog-bad-tid": ("datadog", [("x-datadog-trace-id", "1"), ("x-datadog-parent-id", "1"), ("x-datadog-tags", "_dd.p.tid=xyz")]),
    "xray-root-alone": ("xray", [("x-amzn-trace-id", f"Root=1-{T[:8]}-{T[8:]}")]),
    "xray-bad-sampled": ("xray", [("x-amzn-trace-id", f"Root=1-{T[:8]}-{T[8:]};Parent={S};Sampled=yes")]),
    "ottrace-no-span": ("ottrace", [("ot-tracer-traceid", T), ("ot-tracer-sampled", "true")]),
}


TRACER_READS = {
    "none": (),
    "zipkin": ("b3", "b3multi"),
    "zipkin_w3c": ("b3", "b3multi", "tracecontext"),
    "opentelemetry": ("tracecontext",),
}


@pytest.mark.parametrize("case", list(INVALID))
@pytest.mark.parametrize("position,tracer", COMBOS, ids=COMBO_IDS)
def test_invalid_values_are_never_forwarded(envoys, position, tracer, case):
    envoy = envoys.get(position, tracer)
    fmt, headers = INVALID[case]
    before = stat(envoy, f"invalid.{fmt}")
    status, _, got = send(envoy.port, headers)
    assert status == 200
    assert_well_formed(got)
    for name, value in headers:
        if name in ("traceparent", "b3", "uber-trace-id", "x-datadog-trace-id", "x-datadog-tags", "x-amzn-trace-id", "ot-tracer-traceid"):
            assert value not in header_values(got, name), f"invalid {name} forwarded: {got}"
    if position == "downstream" and fmt in TRACER_READS[tracer]:
        # Envoy's own tracer read the bad header first: it either repaired it leniently or
        # did not trace the request at all (measured: Zipkin on a bad `b3`, OpenTelemetry
        # on a zero or malformed traceparent), leaving nothing to continue at this hop.
        assert len(traces_seen(got)) <= 1, read_all(got)
    else:
        assert len(traces_seen(got)) == 1, read_all(got)
    # Envoy's tracer may have rewritten the header before an upstream filter saw it.
    if position == "downstream" or fmt not in TRACER_READS[tracer]:
        assert stat(envoy, f"invalid.{fmt}") == before + 1


@pytest.mark.parametrize("position,tracer", COMBOS, ids=COMBO_IDS)
def test_64_bit_b3_trace_id(envoys, position, tracer):
    envoy = envoys.get(position, tracer)
    short = T[16:]
    status, _, got = send(envoy.port, [("x-b3-traceid", short), ("x-b3-spanid", S), ("x-b3-sampled", "1")])
    assert status == 200
    seen = read_all(got)
    lost = lost_readers(position, tracer, "b3multi")
    for reader, ctx in seen.items():
        if ctx and reader not in lost:
            assert ctx["trace"] == short.rjust(32, "0"), got
    if tracer == "none":
        # B3 keeps the short form it arrived in; traceparent is padded on the left.
        assert one(got, "x-b3-traceid") == short
        assert one(got, "traceparent").split("-")[1] == "0" * 16 + short


@pytest.mark.parametrize("position,tracer", COMBOS, ids=COMBO_IDS)
def test_debug_implies_sampled(envoys, position, tracer):
    envoy = envoys.get(position, tracer)
    status, _, got = send(envoy.port, [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-flags", "1")])
    assert status == 200
    seen = read_all(got)
    lost = lost_readers(position, tracer, "b3multi")
    for reader, ctx in seen.items():
        if ctx and reader not in lost:
            assert ctx["trace"] == T and ctx["sampled"] is True, got
    if tracer == "none":
        assert one(got, "x-b3-flags") == "1" and one(got, "x-b3-sampled") is None
        assert one(got, "traceparent").endswith("-01")


LENIENT = {
    # B3: x-b3-flags other than 1 is ignored; x-b3-sampled in any case (OTel Go lowercases).
    "b3multi-sampled-True-flags-6": [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "True"), ("x-b3-flags", "6")],
    "b3multi-sampled-TRUE": [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "TRUE")],
    # Jaeger: the firehose bit next to sampled, an empty parent field.
    "jaeger-firehose-empty-parent": [("uber-trace-id", f"{T}:{S}::9")],
}


@pytest.mark.parametrize("case", list(LENIENT))
@pytest.mark.parametrize("position,tracer", [("downstream", "none"), ("upstream", "none")], ids=["ds-none", "us-none"])
def test_lenient_b3_and_jaeger_values_are_continued(envoys, position, tracer, case):
    envoy = envoys.get(position, tracer)
    status, _, got = send(envoy.port, LENIENT[case])
    assert status == 200
    assert_well_formed(got)
    seen = read_all(got)
    assert traces_seen(got) == {T}, seen
    assert all(ctx["sampled"] is True for ctx in seen.values() if ctx), seen
    # Written back canonically: no ignored flags value, the firehose bit kept.
    assert one(got, "x-b3-flags") is None
    if case.startswith("jaeger"):
        assert one(got, "uber-trace-id").endswith(":9"), got


@pytest.mark.parametrize("position,tracer", COMBOS, ids=COMBO_IDS)
def test_b3_zero_means_not_sampled(envoys, position, tracer):
    envoy = envoys.get(position, tracer)
    status, _, got = send(envoy.port, [("b3", "0")])
    assert status == 200
    seen = read_all(got)
    assert len(traces_seen(got)) == 1, seen
    decisions = {reader: ctx["sampled"] for reader, ctx in seen.items() if ctx}
    if tracer == "opentelemetry" and position == "downstream":
        # Envoy's OpenTelemetry tracer ignores B3 and samples its fresh span itself, after
        # the filter: the W3C reader follows Envoy.
        assert decisions["b3"] is False
    elif tracer == "opentelemetry":
        # Upstream, Envoy's span is already sampled: the contradicting `b3: 0` is dropped so
        # that every reader agrees with the span going on.
        assert set(decisions.values()) == {True}, got
    else:
        assert set(decisions.values()) == {False}, got
    if tracer == "none":
        # The lone decision gave way to a full context: a B3 reader finds ids.
        assert seen["b3"]["trace"] is not None and one(got, "b3") is None


@pytest.mark.parametrize("position,tracer", COMBOS, ids=COMBO_IDS)
def test_tracestate_kept(envoys, position, tracer):
    envoy = envoys.get(position, tracer)
    status, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01"), ("tracestate", TRACESTATE)])
    assert status == 200
    assert header_values(got, "tracestate") == [TRACESTATE]
    assert w3c(got)["trace"] == T


@pytest.mark.parametrize("position,tracer", [("downstream", "none"), ("upstream", "zipkin")], ids=["ds-none", "us-zipkin"])
def test_tracestate_repaired_or_dropped(envoys, position, tracer):
    envoy = envoys.get(position, tracer)
    # The traceparent goes on as it came (B3-only Zipkin cannot read it): W3C forbids
    # touching its tracestate then (docs/conformance.md, item 10), padding and all.
    _, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01"), ("tracestate", "a=1, ,b=2"), ("tracestate", "c=3")])
    assert header_values(got, "tracestate") == ["a=1, ,b=2", "c=3"]
    # A traceparent tracejoin rewrites (a future version, downgraded) takes its tracestate
    # repaired: repeated headers joined, padding and empty members dropped.
    _, _, got = send(envoy.port, [("traceparent", f"01-{T}-{S}-01-x"), ("tracestate", "a=1, ,b=2"), ("tracestate", "c=3")])
    assert w3c(got)["trace"] == T
    assert header_values(got, "tracestate") == ["a=1,b=2,c=3"]
    # An invalid member (uppercase key) invalidates the header: it is removed.
    before = stat(envoy, "invalid.tracestate")
    _, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01"), ("tracestate", "Bad=1,b=2")])
    assert header_values(got, "tracestate") == []
    assert stat(envoy, "invalid.tracestate") == before + 1
    # tracestate without a valid traceparent is dropped; a trace tracejoin starts and
    # decides (no tracer) carries only its threshold (item 8; ratio 1: th:0).
    _, _, got = send(envoy.port, [("traceparent", f"00-{T.upper()}-{S}-01"), ("tracestate", "a=1")])
    assert header_values(got, "tracestate") == (["ot=th:0"] if tracer == "none" else [])


@pytest.mark.parametrize("position", ["downstream", "upstream"])
def test_opentelemetry_tracer_writes_back_the_tracestate_it_read(envoys, position):
    """Downstream, Envoy's OpenTelemetry tracer re-injects the tracestate it extracted, as it
    arrived, after every listener filter; an upstream filter runs after that and repairs it."""
    envoy = envoys.get(position, "opentelemetry")
    members = ",".join(f"k{i}=v" for i in range(40))
    _, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01"), ("tracestate", "Bad=1,ok=2"), ("tracestate", members)])
    assert w3c(got)["trace"] == T
    expected = [f"Bad=1,ok=2,{members}"] if position == "downstream" else []
    assert header_values(got, "tracestate") == expected


EDGE = [
    ("downstream", "none"),
    ("upstream", "none"),
    ("upstream", "zipkin"),
    ("upstream", "zipkin_w3c"),
]


@pytest.mark.parametrize("position,tracer", EDGE, ids=[f"{p}-{t}" for p, t in EDGE])
def test_untrusted_edge_restart(envoys, position, tracer):
    envoy = envoys.get(position, tracer, {"position": position, "tracer": tracer, "trust": "restart"})
    status, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01"), ("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "1")])
    assert status == 200
    seen = traces_seen(got)
    assert len(seen) == 1 and T not in seen, read_all(got)
    # The new trace's decision is tracejoin's: its threshold (ratio 1: th:0) goes in front.
    assert header_values(got, "tracestate") == [f"ot=th:0,tracejoin={T}"]
    assert stat(envoy, "restarted") >= 1
    # A request with no context is the mesh's own: nothing to restart.
    before = stat(envoy, "restarted")
    send(envoy.port)
    assert stat(envoy, "restarted") == before


@pytest.mark.parametrize("position,tracer", EDGE, ids=[f"{p}-{t}" for p, t in EDGE])
def test_untrusted_edge_resample(envoys, position, tracer):
    config = {"position": position, "tracer": tracer, "trust": "resample", "sampling_ratio": 0}
    envoy = envoys.get(position, tracer, config)
    # The client asks for debug (forced sampling); the edge decides by its own ratio.
    status, _, got = send(envoy.port, [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-flags", "1")])
    assert status == 200
    for ctx in read_all(got).values():
        if ctx:
            assert ctx["sampled"] is False, got
    assert one(got, "x-b3-flags") is None
    if tracer == "none":
        assert traces_seen(got) == {T}


BAD_CONFIGS = {
    "ratio-out-of-range": ({"sampling_ratio": 2}, "sampling_ratio"),
    "unknown-tracer": ({"tracer": "jaeger"}, "tracer"),
    "unknown-format": ({"propagate": ["w3c"]}, "propagate[0]"),
    "unknown-field": ({"sampling": 1}, "sampling"),
    "not-json": ("{not json", "<document>"),
    "trust-downstream-zipkin": ({"trust": "restart"}, "trust"),
    "bad-response-header": ({"response_header": "X Trace"}, "response_header"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_plugin_config_is_rejected_at_load(upstream_port, wasm, case):
    plugin_config, field = BAD_CONFIGS[case]
    config = envoy_harness.render_config(upstream_port, tracer="zipkin", position="downstream", wasm_path=wasm, plugin_config=plugin_config)
    with pytest.raises(RuntimeError) as failure:
        with envoy_harness.Envoy(config):
            pass
    log = str(failure.value)
    assert f"invalid tracejoin config: field `{field}`" in log, log


def test_empty_config_is_the_istio_zipkin_default(envoys):
    """`{}` (or no configuration) means: downstream, Zipkin B3 tracer, apps on W3C."""
    envoy = envoys.get("downstream", "zipkin", "")
    status, _, got = send(envoy.port, INPUTS["tracecontext"])
    assert status == 200
    # Envoy's B3-only tracer started a fresh trace; tracejoin bridged the app's trace in `b3`,
    # which every B3 reader (Envoy's next hop included) prefers over x-b3-*.
    assert one(got, "b3") == f"{T}-{S}-1"
    assert one(got, "x-b3-traceid") != T
    assert stat(envoy, "bridged") >= 1


@pytest.mark.parametrize("position,tracer", [("downstream", "none"), ("upstream", "zipkin")], ids=["ds-none", "us-zipkin"])
def test_trace_id_returned_to_client(envoys, position, tracer):
    config = {"position": position, "tracer": tracer, "response_header": "x-trace-id", "traceresponse": True}
    envoy = envoys.get(position, tracer, config)
    status, response, got = send(envoy.port, INPUTS["b3multi"])
    assert status == 200
    trace = w3c(got)["trace"]
    assert dict(response)["x-trace-id"] == trace == T
    if tracer == "none":
        # No span of this hop: the caller's span is not echoed as the server operation.
        assert "traceresponse" not in dict(response), response
    else:
        assert dict(response)["traceresponse"] == f"00-{T}-{one(got, 'x-b3-spanid')}-01"


@pytest.mark.parametrize("position,tracer", [("downstream", "zipkin"), ("downstream", "opentelemetry"), ("upstream", "zipkin"), ("upstream", "opentelemetry")])
def test_server_timing_names_envoys_span(envoys, position, tracer):
    """docs/conformance.md item 11: `server-timing: trace;desc=...` with the span of this
    hop's operation, Envoy's, never the caller's S. Downstream the filter does not learn
    Envoy's span (measured on 1.40: reading the request headers back in the response phase
    gave no span but the caller's), so it writes nothing there."""
    config = {"position": position, "tracer": tracer, "server_timing": True}
    envoy = envoys.get(position, tracer, config)
    status, response, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01"), *INPUTS["b3multi"]])
    assert status == 200
    if position == "downstream":
        assert "server-timing" not in dict(response), response
        return
    metric = dict(response)["server-timing"]
    assert metric.startswith("trace;desc=00-"), response
    _, trace, child, flags = metric.removeprefix("trace;desc=").split("-")
    envoys_span = w3c(got)["span"] if tracer == "opentelemetry" else one(got, "x-b3-spanid")
    assert (trace, child, flags) == (T, envoys_span, "01") and child != S, (response, got)


CHAINS = [("off", "zipkin"), ("downstream", "zipkin"), ("upstream", "zipkin"), ("upstream", "opentelemetry"), ("downstream", "zipkin_w3c")]


@pytest.mark.parametrize("position,tracer", CHAINS, ids=[f"{p}-{t}" for p, t in CHAINS])
def test_next_hop_continues_the_apps_trace(upstream_port, wasm, position, tracer):
    """An app that writes only traceparent calls out through its sidecar (tracejoin at
    `position`); the next hop's Envoy runs the same tracer without tracejoin. Its span, and
    what its app receives, must continue the app's trace, not the fresh trace the B3-only
    sidecar started."""
    next_hop = envoy_harness.render_config(upstream_port, tracer=tracer)
    with envoy_harness.Envoy(next_hop) as hop2:
        plugin = {"position": position, "tracer": tracer}
        sidecar = envoy_harness.render_config(hop2.port, tracer=tracer, position=position, wasm_path=wasm, plugin_config=plugin)
        with envoy_harness.Envoy(sidecar) as hop1:
            status, _, got = send(hop1.port, INPUTS["tracecontext"])
    assert status == 200
    if tracer == "zipkin":
        ctx = b3(got)  # what the next hop's Zipkin tracer injected for its own span
    else:
        ctx = w3c(got)
    if position == "off" and tracer == "zipkin":
        assert ctx["trace"] != T, "without tracejoin a B3-only mesh breaks the app's trace"
    else:
        assert ctx["trace"] == T, got


def test_trace_id_is_logged_at_debug_only(upstream_port, wasm):
    plugin = {"tracer": "none"}
    for level, expect in (("wasm:debug", True), ("wasm:info", False)):
        config = envoy_harness.render_config(upstream_port, tracer="none", position="downstream", wasm_path=wasm, plugin_config=plugin)
        with envoy_harness.Envoy(config, log_level="info", component_log_level=level) as envoy:
            send(envoy.port, INPUTS["b3"])
            send(envoy.port, INPUTS["b3"])
            log = envoy.log()
        assert (f"trace_id={T}" in log) is expect, log[-2000:]
        # Configuration is logged once at info; requests never are.
        assert log.count("tracejoin: configured") >= 1


FUTURE = [("traceparent", f"cc-{T}-{S}-01-extra")]


@pytest.mark.parametrize("tracer", ["zipkin", "zipkin_w3c", "opentelemetry"])
def test_a_future_version_traceparent_upstream(envoys, tracer):
    """docs/conformance.md item 13. Envoy reads only a 55-character traceparent. Zipkin
    (B3 only) and OpenTelemetry (which then does not trace) leave the client's one in the
    request, and the upstream filter continues it as version 00. Zipkin W3C starts a fresh
    trace and overwrites traceparent with it before any upstream filter runs: the client's
    context is gone from the request there, so the upstream position cannot continue it;
    the network position in front can (it hands Envoy the version-00 form)."""
    envoy = envoys.get("upstream", tracer)
    _, _, got = send(envoy.port, FUTURE)
    assert_well_formed(got)
    if tracer == "zipkin_w3c":
        assert T not in str(got), f"the client's trace reached the upstream filter: {got}"
        envoy = envoys.get("network", tracer)
        _, _, got = send(envoy.port, FUTURE)
    assert traces_seen(got) == {T}, got
    assert one(got, "traceparent").startswith(f"00-{T}-")


@pytest.mark.parametrize("tracer", ["zipkin", "zipkin_w3c"])
def test_deferred_b3_downstream_gets_envoys_one_decision(upstream_port, wasm, tracer):
    """docs/conformance.md item 1. At 50% random sampling Envoy's Zipkin tracer decides a
    B3 context without a decision; every format tracejoin writes carries that decision (read
    from the trace reason Envoy's UUID request id records), with or without a client
    `x-request-id`."""
    config = envoy_harness.render_config(upstream_port, tracer=tracer, position="downstream", wasm_path=wasm, plugin_config={"tracer": tracer, "propagate": ["tracecontext", "jaeger"]})
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][-1]["typed_config"]
    hcm["tracing"]["random_sampling"] = {"value": 50}
    decisions = set()
    with envoy_harness.Envoy(config) as envoy:
        for i in range(30):
            headers = [("x-b3-traceid", T), ("x-b3-spanid", S)]
            if i % 2:
                headers.append(("x-request-id", f"{i:08x}-1111-4222-8333-444455556666"))
            _, _, got = send(envoy.port, headers)
            envoys = one(got, "x-b3-sampled")
            assert envoys in ("0", "1"), got
            assert w3c(got)["sampled"] == (envoys == "1"), got
            assert one(got, "uber-trace-id").endswith(":1" if envoys == "1" else ":0"), got
            decisions.add(envoys)
    assert decisions == {"0", "1"}, "Envoy made both decisions: the test saw both cases"

# ---------------------------------------------------------------------------------------
# Datadog, X-Ray, OpenTracing
# ---------------------------------------------------------------------------------------

VENDOR_FORMATS = ("datadog", "xray", "ottrace")
DD_LOW, DD_SPAN, DD_TAGS = datadog_ids()
VENDOR_INPUTS = {
    "datadog": [("x-datadog-trace-id", DD_LOW), ("x-datadog-parent-id", DD_SPAN), ("x-datadog-sampling-priority", "1"),
                ("x-datadog-tags", DD_TAGS)],
    "xray": [("x-amzn-trace-id", xray())],
    "ottrace": [("ot-tracer-traceid", T), ("ot-tracer-spanid", S), ("ot-tracer-sampled", "true")],
}


def vendor_config(position, tracer, first=None):
    """Every format read and written, `first` read first."""
    extract = [first] if first else []
    extract += [f for f in ("b3", "b3multi", "tracecontext", "jaeger", *VENDOR_FORMATS) if f != first]
    return {"position": position, "tracer": tracer, "extract": extract,
            "propagate": ["tracecontext", "b3multi", *VENDOR_FORMATS]}


@pytest.mark.parametrize("input_format", VENDOR_FORMATS)
@pytest.mark.parametrize("position,tracer", COMBOS, ids=COMBO_IDS)
def test_vendor_format_alone_is_continued_into_every_format(envoys, position, tracer, input_format):
    envoy = envoys.get(position, tracer, vendor_config(position, tracer, input_format))
    before = stat(envoy, f"context.{input_format}")
    status, _, got = send(envoy.port, VENDOR_INPUTS[input_format])
    assert status == 200
    assert_well_formed(got)
    seen = read_all(got)
    # Envoy's tracers read none of these: like Jaeger, what the README says is lost stays lost.
    lost = lost_readers(position, tracer, "jaeger")
    for reader in ("b3", *VENDOR_FORMATS, *({"w3c"} - lost)):
        assert seen[reader] is not None and seen[reader]["trace"] == T, f"{reader}: {seen}"
        assert seen[reader]["sampled"] is True, f"{reader}: {seen}"
    if tracer == "none":
        # The same span everywhere: the incoming one (no tracer, no span of Envoy's).
        assert {seen[r]["span"] for r in ("w3c", "b3", *VENDOR_FORMATS)} == {S}, seen
        assert one(got, "x-datadog-tags") == DD_TAGS and one(got, "x-datadog-trace-id") == DD_LOW
        assert one(got, "ot-tracer-traceid") == T and one(got, "ot-tracer-sampled") == "true"
    if position == "downstream" or tracer == "none":
        assert stat(envoy, f"context.{input_format}") == before + 1


@pytest.mark.parametrize("position,tracer", [("downstream", "none"), ("upstream", "zipkin")], ids=["downstream-none", "upstream-zipkin"])
def test_what_a_trace_carries_goes_on_with_it_only(envoys, position, tracer):
    envoy = envoys.get(position, tracer, vendor_config(position, tracer, "tracecontext"))
    self_field = "Self=1-67891234-12456789abcdef012345678"
    same = [("traceparent", f"00-{T}-{S}-01"), ("x-datadog-trace-id", DD_LOW), ("x-datadog-parent-id", "1"),
            ("x-datadog-tags", f"_dd.p.dm=-4,{DD_TAGS}"), ("x-datadog-origin", "synthetics"),
            ("x-amzn-trace-id", f"{self_field};{xray(span=XS)}")]
    _, _, got = send(envoy.port, same)
    assert_well_formed(got)
    seen = read_all(got)
    assert seen["datadog"]["trace"] == seen["xray"]["trace"] == T, seen
    assert seen["datadog"]["span"] == seen["xray"]["span"] == seen["b3"]["span"], seen
    assert one(got, "x-datadog-origin") == "synthetics" and one(got, "x-datadog-tags") == f"_dd.p.dm=-4,{DD_TAGS}"
    assert one(got, "x-amzn-trace-id").endswith(f";{self_field}"), got
    # Another trace goes on: what came with the old one does not.
    _, _, got = send(envoy.port, [("traceparent", f"00-{X}-{XS}-01"), *same[1:]])
    assert_well_formed(got)
    seen = read_all(got)
    assert seen["datadog"]["trace"] == seen["xray"]["trace"] == X, seen
    assert one(got, "x-datadog-origin") is None
    assert one(got, "x-datadog-tags") == f"_dd.p.tid={X[:16]}"
    assert self_field not in one(got, "x-amzn-trace-id"), got


@pytest.mark.parametrize("position,tracer", COMBOS, ids=COMBO_IDS)
def test_vendor_headers_of_another_trace_are_removed_by_default(envoys, position, tracer):
    """With the default formats (these three not configured) a Datadog, X-Ray or OpenTracing
    context of another trace than the one going on would make its readers join a second
    trace: downstream it is removed, like any stale format; upstream every format that
    arrived is rewritten with the request's context."""
    envoy = envoys.get(position, tracer)
    vendor = [h for f in VENDOR_FORMATS for h in VENDOR_INPUTS[f]]
    status, _, got = send(envoy.port, [("traceparent", f"00-{X}-{XS}-01"), *vendor])
    assert status == 200
    assert_well_formed(got)
    seen = read_all(got)
    for reader in VENDOR_FORMATS:
        if position == "downstream":
            assert seen[reader] is None, seen
        else:
            assert seen[reader]["trace"] == seen["w3c"]["trace"], seen
