"""Envoy's own behaviour, per release, that src/policy/tracer.rs models: measured without
tracejoin (position `off`) on whichever Envoy the session runs (`make test` runs the suite on
each release of ENVOY_VERSIONS), and what the version-aware model makes of the difference.

docs/envoy-versions.md lists the results per release."""

import re

import pytest

from tracejoin_tools.common import TRACESTATE, XS, S, T, X
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import b3, header_values, one

RELEASE = envoy_harness.envoy_release()
# Zipkin answers a `b3` single header with `b3` from 1.40 on (runtime guard
# `envoy.reloadable_features.zipkin_preserve_b3_single_header_format`); before, with x-b3-*,
# forwarding the `b3` that arrived as it was.
ZIPKIN_KEEPS_B3 = RELEASE >= (1, 40)
PRESERVE_B3_GUARD = "envoy.reloadable_features.zipkin_preserve_b3_single_header_format"
ENVOYS_SPAN = re.compile(r"^[0-9a-f]{16}$")


def multi(headers):
    """(trace, span, parent) of the x-b3-* headers."""
    return one(headers, "x-b3-traceid"), one(headers, "x-b3-spanid"), one(headers, "x-b3-parentspanid")


def test_zipkin_answers_b3_single(envoys):
    envoy = envoys.get("off", "zipkin")
    _, _, got = send(envoy.port, [("b3", f"{T}-{S}-1")])
    if ZIPKIN_KEEPS_B3:
        trace, span, sampled, parent = one(got, "b3").split("-")
        assert (trace, sampled, parent) == (T, "1", S) and span != S, got
        assert one(got, "x-b3-traceid") is None, got
    else:
        assert one(got, "b3") == f"{T}-{S}-1", "the client's b3 goes on as it arrived"
        trace, span, parent = multi(got)
        assert (trace, parent) == (T, S) and ENVOYS_SPAN.match(span) and span != S, got


def test_zipkin_answers_a_lone_b3_decision(envoys):
    envoy = envoys.get("off", "zipkin")
    _, _, got = send(envoy.port, [("b3", "0")])
    if ZIPKIN_KEEPS_B3:
        value = one(got, "b3")
        assert value.split("-")[2] == "0" and one(got, "x-b3-traceid") is None, got
    else:
        assert one(got, "b3") == "0" and one(got, "x-b3-sampled") == "0", got
        assert one(got, "x-b3-traceid") is not None, got


def test_zipkin_answers_b3_multi_in_kind_and_reads_b3_first(envoys):
    envoy = envoys.get("off", "zipkin")
    _, _, got = send(envoy.port, [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "1")])
    trace, span, parent = multi(got)
    assert (trace, parent) == (T, S) and span != S and one(got, "b3") is None, got
    # Both forms, different traces: the single header wins.
    _, _, got = send(envoy.port, [("b3", f"{X}-{XS}-1"), ("x-b3-traceid", T), ("x-b3-spanid", S)])
    assert b3(got)["trace"] == X or one(got, "x-b3-traceid") == X, got


def test_zipkin_fresh_root_has_no_parent(envoys):
    envoy = envoys.get("off", "zipkin")
    _, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01")])
    trace, span, parent = multi(got)
    assert trace != T and ENVOYS_SPAN.match(span) and parent is None, got
    assert one(got, "traceparent") == f"00-{T}-{S}-01", "the B3-only tracer leaves traceparent"


def test_zipkin_w3c_reads_traceparent_and_writes_both(envoys):
    envoy = envoys.get("off", "zipkin_w3c")
    _, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01"), ("tracestate", TRACESTATE)])
    trace, span, parent = multi(got)
    assert (trace, parent) == (T, S), got
    assert one(got, "traceparent") == f"00-{T}-{span}-01", got
    assert header_values(got, "tracestate") == [TRACESTATE]
    # B3 first: with both, the B3 trace goes on in traceparent too.
    _, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01"), ("x-b3-traceid", X), ("x-b3-spanid", XS)])
    assert one(got, "x-b3-traceid") == X and one(got, "traceparent").split("-")[1] == X, got


def test_opentelemetry_reads_only_traceparent_and_writes_tracestate(envoys):
    envoy = envoys.get("off", "opentelemetry")
    _, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01")])
    _, trace, span, _ = one(got, "traceparent").split("-")
    assert trace == T and span != S
    assert header_values(got, "tracestate") == [""], "an empty tracestate when none arrived"
    _, _, got = send(envoy.port, [("b3", f"{T}-{S}-1"), ("x-b3-traceid", T), ("x-b3-spanid", S)])
    assert one(got, "traceparent").split("-")[1] != T, "B3 is not read"


@pytest.mark.parametrize("tracer", ["zipkin_w3c", "opentelemetry"])
def test_only_a_55_character_traceparent_is_read(envoys, tracer):
    """A valid future-version traceparent with more fields is invisible to Envoy's tracer."""
    envoy = envoys.get("off", tracer)
    _, _, got = send(envoy.port, [("traceparent", f"01-{T}-{S}-01-extra")])
    if tracer == "opentelemetry":
        assert one(got, "traceparent") == f"01-{T}-{S}-01-extra", "not traced: left as it arrived"
    else:
        assert one(got, "x-b3-traceid") != T and one(got, "traceparent").split("-")[1] != T, got


def test_the_filter_detects_envoys_release(upstream_port, wasm):
    """Envoy tells the filter its release (`node.user_agent_build_version`): logged at load."""
    config = envoy_harness.render_config(upstream_port, tracer="zipkin", position="downstream", wasm_path=wasm, plugin_config={})
    with envoy_harness.Envoy(config, log_level="info") as envoy:
        log = envoy.log()
    major, minor = RELEASE
    assert f"envoy {major}.{minor} (detected)" in log, log[-3000:]


# What the model changes: an app on `b3` behind a sidecar with tracejoin downstream.


def b3_apps_parent(envoy):
    """The span a B3 reader behind this Envoy takes as its parent, and Envoy's own span."""
    _, _, got = send(envoy.port, [("b3", f"{T}-{S}-1")])
    ctx = b3(got)
    assert ctx["trace"] == T, got
    # Envoy's span is in whichever B3 form it wrote; tracejoin writes the caller's (S).
    single = one(got, "b3")
    spans = {one(got, "x-b3-spanid"), single.split("-")[1] if single else None} - {None, S}
    assert len(spans) == 1, got
    return ctx["span"], spans.pop()


def test_a_b3_app_gets_envoys_span_as_parent_on_every_release(envoys):
    envoy = envoys.get("downstream", "zipkin")
    parent, envoys_span = b3_apps_parent(envoy)
    assert parent == envoys_span != S


@pytest.mark.skipif(ZIPKIN_KEEPS_B3, reason="the models agree from Envoy 1.40 on")
def test_the_newest_model_on_an_older_envoy_leaves_the_b3_app_a_coarser_parent(envoys):
    """Why the model is version-aware: with the 1.40 model forced on an older Envoy, the
    stale `b3` (the caller's span) reaches the app."""
    envoy = envoys.get("downstream", "zipkin", {"tracer": "zipkin", "envoy_version": "1.40"})
    parent, envoys_span = b3_apps_parent(envoy)
    assert parent == S != envoys_span


@pytest.mark.skipif(not ZIPKIN_KEEPS_B3, reason="the runtime guard exists from Envoy 1.40 on")
def test_the_1_40_runtime_guard_off_needs_the_older_model(upstream_port, wasm):
    """`zipkin_preserve_b3_single_header_format: false` brings back the pre-1.40 answer;
    `envoy_version: "1.39"` tells tracejoin so."""
    found = {}
    for version in ("1.40", "1.39"):
        config = envoy_harness.render_config(
            upstream_port, tracer="zipkin", position="downstream", wasm_path=wasm,
            plugin_config={"tracer": "zipkin", "envoy_version": version},
        )
        config["layered_runtime"] = {"layers": [{"name": "static", "static_layer": {PRESERVE_B3_GUARD: False}}]}
        with envoy_harness.Envoy(config) as envoy:
            found[version] = b3_apps_parent(envoy)
    assert found["1.40"][0] == S, "guard off: Envoy leaves the client's b3 behind"
    parent, envoys_span = found["1.39"]
    assert parent == envoys_span != S


@pytest.mark.parametrize("position", ["off", "downstream", "upstream"])
def test_opentelemetry_obeys_overall_sampling_from_1_39(upstream_port, wasm, position):
    """Not modelled (the filter does not see the HCM's sampling settings): with
    `overall_sampling: 0`, from 1.39 on (changelog; measured on 1.40) Envoy's OpenTelemetry
    tracer forwards a sampled incoming traceparent as not sampled. Downstream, tracejoin's
    other formats keep the incoming decision; upstream they follow Envoy's."""
    config = envoy_harness.render_config(
        upstream_port, tracer="opentelemetry", position=position, wasm_path=wasm,
        plugin_config={"position": position, "tracer": "opentelemetry"} if position != "off" else None,
    )
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["tracing"]["overall_sampling"] = {"value": 0}
    with envoy_harness.Envoy(config) as envoy:
        _, _, got = send(envoy.port, [("traceparent", f"00-{T}-{S}-01")])
    obeys = RELEASE >= (1, 39)
    assert one(got, "traceparent").endswith("-00" if obeys else "-01"), got
    if position == "downstream":
        assert one(got, "x-b3-sampled") == "1", got
    if position == "upstream":
        assert one(got, "x-b3-sampled") == ("0" if obeys else "1"), got
