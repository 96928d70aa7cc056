"""Envoy's `no_context_propagation` (HCM `tracing`, Envoy >= 1.38 of the releases tested; what Istio 1.30's Telemetry
`disableContextPropagation` sets) next to tracejoin, in a real Envoy with the Zipkin tracer:
which runs first, what reaches the upstream, whether Envoy's span is still reported, and
whether tracejoin's writes survive (docs/external-services.md). The option only stops the
tracer's injection: what the app sent, and what tracejoin writes, go on."""

import json
import time

import pytest

from tracejoin_tools.common import S, T, traceparent
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.harness import send
from tracejoin_tools.envoy.trace_headers import header_values

TRACE_HEADERS = {"traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "baggage", "uber-trace-id"}
OPENAI = "outbound|80||api.openai.com"
PLUGIN = {"tracer": "zipkin", "external_services": [{"name": "openai-external", "namespace": "default", "hosts": ["api.openai.com"], "ports": [80, 443]}]}
W3C_APP = [("traceparent", traceparent()), ("baggage", "user=42")]
B3_APP = [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "1")]


def propagation_config(upstream_port, wasm, position, no_context_propagation):
    """One sidecar-like HCM under Zipkin: in-mesh calls go to `echo`, api.openai.com to Istio's
    cluster for its ServiceEntry; tracejoin at `position` (`off`: none)."""
    http_position = position.partition("+")[2] if position.startswith("network") else position
    plugin = dict(PLUGIN, position=http_position) if http_position not in ("", "off") else None
    config = envoy_harness.render_config(upstream_port, tracer="zipkin", position=position, wasm_path=wasm, plugin_config=plugin)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][-1]["typed_config"]
    if no_context_propagation:
        hcm["tracing"]["no_context_propagation"] = True
    hcm["route_config"]["virtual_hosts"] = [
        {"name": "openai", "domains": ["api.openai.com"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": OPENAI}}]},
        {"name": "mesh", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "echo"}}]},
    ]
    clusters = config["static_resources"]["clusters"]
    clusters.append(dict(json.loads(json.dumps(clusters[0])), name=OPENAI))
    clusters[-1]["load_assignment"]["cluster_name"] = OPENAI
    # Export each span at once.
    config["layered_runtime"] = {
        "layers": [{"name": "static", "static_layer": {"tracing.zipkin.min_flush_spans": 1, "tracing.zipkin.flush_interval_ms": 100}}]
    }
    return config


needs_the_option = pytest.mark.skipif(
    envoy_harness.envoy_release() < envoy_harness.NO_CONTEXT_PROPAGATION_SINCE, reason="no_context_propagation: Envoy 1.38 and later"
)


def test_older_envoy_refuses_the_option(upstream_port, wasm):
    """Before 1.38 the HCM has no `no_context_propagation`: Envoy refuses the config, so the
    Telemetry option cannot be used there (Istio sets it only for its 1.30+ proxies)."""
    if envoy_harness.envoy_release() >= envoy_harness.NO_CONTEXT_PROPAGATION_SINCE:
        pytest.skip("Envoy 1.38 and later take the option")
    with pytest.raises(RuntimeError, match="no_context_propagation"):
        envoy_harness.Envoy(propagation_config(upstream_port, wasm, "off", True)).__enter__()


@pytest.fixture
def proxy(upstream_port, wasm, echo_collected):
    """Starts Envoys for (position, no_context_propagation); call(host, headers) returns what
    the upstream received and the Zipkin spans the call reported."""
    started = []

    def start(position, no_context_propagation=True):
        envoy = envoy_harness.Envoy(propagation_config(upstream_port, wasm, position, no_context_propagation)).__enter__()
        started.append(envoy)

        def call(host, headers):
            before = len(echo_collected())
            status, _, got = send(envoy.port, [("host", host), *headers])
            assert status == 200
            deadline = time.monotonic() + 10
            spans = []
            while not spans and time.monotonic() < deadline:
                spans = [s for p, _, b in echo_collected()[before:] if p == "/api/v2/spans" for s in json.loads(b or b"[]")]
                time.sleep(0.05)
            return got, spans

        return call

    yield start
    for envoy in started:
        envoy.__exit__(None, None, None)


def sent(got):
    return {name for name, _ in got} & TRACE_HEADERS


@needs_the_option
def test_envoy_reports_its_span_but_injects_nothing(proxy):
    """Without tracejoin. Envoy 1.40 accepts the field; its span still continues the B3
    caller and is reported, but the upstream gets the caller's own headers unchanged: the next
    app's parent is the caller's span, and Envoy's span is a leaf beside it. A W3C-only app's
    traceparent passes as it came (the B3-only tracer's fresh span is not injected either)."""
    call = proxy("off")
    got, spans = call("character-api:8080", B3_APP)
    assert [(s["traceId"], s.get("parentId")) for s in spans] == [(T, S)]
    assert header_values(got, "x-b3-traceid") == [T] and header_values(got, "x-b3-spanid") == [S]
    assert spans[0]["id"] != S
    got, spans = call("character-api:8080", W3C_APP)
    assert len(spans) == 1 and spans[0]["traceId"] != T
    assert sent(got) == {"traceparent", "baggage"} and header_values(got, "traceparent") == [traceparent()]
    # With the option off, the same calls carry Envoy's span.
    call = proxy("off", no_context_propagation=False)
    got, spans = call("character-api:8080", B3_APP)
    assert header_values(got, "x-b3-spanid") == [spans[0]["id"]] and header_values(got, "x-b3-parentspanid") == [S]


@needs_the_option
def test_the_option_alone_keeps_nothing_from_third_parties(proxy):
    """What the app sent reaches the third party: the option stops Envoy's injection only."""
    call = proxy("off")
    got, _ = call("api.openai.com", W3C_APP)
    assert sent(got) == {"traceparent", "baggage"}
    got, _ = call("api.openai.com", B3_APP)
    assert header_values(got, "x-b3-traceid") == [T]


@needs_the_option
@pytest.mark.parametrize("position", ["downstream", "upstream", "network+downstream"])
def test_with_tracejoin_nothing_reaches_third_parties(proxy, position):
    """tracejoin removes the app's headers toward the ServiceEntry and the tracer injects none:
    nothing of the trace leaves, in every position, while Envoy's span is still reported (in
    the app's trace when the tracer or the network filter in front could read it)."""
    call = proxy(position)
    for app, trace_id in ((W3C_APP, T if position.startswith("network") else None), (B3_APP, T)):
        got, spans = call("api.openai.com", app)
        assert sent(got) == set(), got
        assert len(spans) == 1 and (trace_id is None or spans[0]["traceId"] == trace_id), spans


@needs_the_option
def test_downstream_alone_leaks_the_tracers_injection(proxy):
    """The contrast: without the option, the listener filter removes the app's headers and
    Envoy's tracer injects its own after it (the upstream position removes those too)."""
    call = proxy("downstream", no_context_propagation=False)
    got, spans = call("api.openai.com", W3C_APP)
    assert sent(got) == {"x-b3-traceid", "x-b3-spanid", "x-b3-sampled"} and header_values(got, "x-b3-spanid") == [spans[0]["id"]]
    call = proxy("upstream", no_context_propagation=False)
    got, _ = call("api.openai.com", W3C_APP)
    assert sent(got) == set()


@needs_the_option
def test_tracejoins_writes_survive_inside_the_mesh(proxy):
    """In-mesh calls under the option. Downstream: tracejoin's `b3` bridge and the app's
    traceparent reach the next app, Envoy's x-b3-* do not come. Upstream: with nothing injected,
    tracejoin writes the app's context in every format: the next app's parent is the caller's
    span, where without the option it is Envoy's (exact)."""
    got, _ = proxy("downstream")("character-api:8080", W3C_APP)
    assert header_values(got, "b3") == [f"{T}-{S}-1"] and header_values(got, "traceparent") == [traceparent()]
    assert not sent(got) & {"x-b3-traceid", "x-b3-spanid"}
    got, spans = proxy("upstream")("character-api:8080", B3_APP)
    assert header_values(got, "x-b3-spanid") == [S] and header_values(got, "traceparent") == [traceparent()]
    assert [(s["traceId"], s.get("parentId")) for s in spans] == [(T, S)] and spans[0]["id"] != S
    got, spans = proxy("upstream", no_context_propagation=False)("character-api:8080", B3_APP)
    assert header_values(got, "x-b3-spanid") == [spans[0]["id"]] and header_values(got, "traceparent") == [traceparent(T, spans[0]["id"])]


@needs_the_option
def test_the_network_filter_runs_before_the_tracer_and_its_rewrite_goes_on(proxy):
    """The network position rewrites the head before the tracer reads it: Envoy's span joins
    the W3C-only app's trace, and the rewritten head (x-b3-* with the app's ids) reaches the
    upstream as written, with no injection over it."""
    got, spans = proxy("network")("character-api:8080", W3C_APP)
    assert [(s["traceId"], s.get("parentId")) for s in spans] == [(T, S)]
    assert header_values(got, "x-b3-traceid") == [T] and header_values(got, "x-b3-spanid") == [S]
    assert header_values(got, "traceparent") == [traceparent()]
