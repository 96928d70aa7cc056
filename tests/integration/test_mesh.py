"""The e2e matrix: the native mesh (gateway, three sidecars, auth-api and character-api on
the OpenTelemetry Python SDK, profile-api on the OpenTelemetry JavaScript SDK) for every Envoy
tracer x app propagator setting x tracejoin mode, asserted on the collected spans, and on
what auth-api's sidecar named of the app's own HTTPS call (its TLS listener's counters and
access log). The table is printed and written to build/mesh-matrix-<Envoy version>.md."""

import pytest

from tracejoin_tools.common import ROOT
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.mesh import matrix, topology

# Not fixable in the downstream position (README): Envoy's OpenTelemetry tracer cannot read
# B3, starts a fresh trace at the outbound sidecar, and overwrites traceparent after every
# listener filter, so the next hop follows the fresh trace.
DOWNSTREAM_LIMITS = {("opentelemetry", "b3"), ("opentelemetry", "b3multi")}
# What tracejoin's network filter counts for the login's HTTPS call to kapi.kakao.com.
KAKAO_TLS = "wasmcustom.tracejoin.external.service_entry.kakao-external.namespace.default.tls_connections"


@pytest.fixture(scope="module")
def rows(wasm):
    result = matrix.run(wasm)
    text = matrix.table(result)
    out = ROOT / "build" / f"mesh-matrix-{envoy_harness.envoy_version()}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    print("\n" + text)
    return result


def by(rows, tracer, apps_prefix, mode):
    [row] = [r for r in rows if r["tracer"] == tracer and r["apps"].split(" ")[0] == apps_prefix and r["tracejoin"] == mode]
    return row


def test_every_request_is_served_and_rejections_still_trace(rows):
    for r in rows:
        assert r["status"] == 200, r
        # Every span of the login arrived: 7 from Envoys, 7 from the apps (Python and Node; the
        # HTTPS call's client span has no proxy span after it).
        assert r["spans"] == matrix.LOGIN_SPANS["http1"] == 14, r
        assert set(r["parent_is_sidecar"]) == set(topology.APPS), r
        # Denied (403) and unrouted (404) at the gateway: one gateway span each.
        assert r["rejected_status"] == [403, 404] and r["rejected_gateway_spans"] == [1, 1], r


def test_without_tracejoin_the_mesh_breaks_the_trace(rows):
    # Classic Istio (Zipkin, B3 only) with apps on the SDK default, and B3 apps behind an
    # OpenTelemetry-tracing Envoy: several traces per request.
    for tracer, apps in [("zipkin", "tracecontext"), ("opentelemetry", "b3"), ("opentelemetry", "b3multi")]:
        assert by(rows, tracer, apps, "off")["verdict"] == "BROKEN"


def assert_https_named(r):
    """auth-api's own HTTPS call (GET https://kapi.kakao.com/v2/user/me through its sidecar's
    0.0.0.0_443, tcp_proxy): one client span, under auth-api's server span. With tracejoin in
    the network position (in front of tcp_proxy) the connection is named kakao-external by its
    SNI and port, once a login, in the counter and in the access log, and its span is in the
    login's trace; without, no tracejoin is on that chain: nothing named, `-` in the log."""
    assert r["https_calls"] == 1 and r["https_under_app"], r
    [line] = r["tls_log"]
    assert " outbound|443||kapi.kakao.com " in line, r
    if r["tracejoin"].startswith("network"):
        assert r["tls_named"] == {KAKAO_TLS: 1}, r
        assert "service_entry=kakao-external external_host=kapi.kakao.com " in line, r
        assert r["https_in_gateway_trace"], r
    else:
        assert r["tls_named"] == {}, r
        assert "service_entry=- external_host=- tls_alpn=- " in line, r


def test_the_apps_https_call_is_named_in_the_network_position(rows):
    for r in rows:
        assert_https_named(r)
        if r["tracejoin"].startswith("network"):
            # httpx offers HTTP/1.1 alone (no h2 on this client).
            assert "tls_alpn=http/1.1 " in r["tls_log"][0], r


def test_tracejoin_joins_what_it_claims(rows):
    for r in rows:
        if r["tracejoin"] == "off":
            continue
        apps = r["apps"].split(" ")[0]
        off = by(rows, r["tracer"], apps, "off")
        assert r["missing_parent"] == 0, r
        assert r["traces"] <= off["traces"], (r, off)
        assert r["outside_gateway_trace"] <= off["outside_gateway_trace"], (r, off)
        if r["tracejoin"].startswith("network"):
            # In front of the tracer every proxy span joins too: one trace, nothing outside.
            assert r["verdict"] == "JOINED" and r["traces"] == 1 and r["outside_gateway_trace"] == 0, r
            assert r["apps_in_gateway_trace"], r
            continue
        if r["tracejoin"] == "downstream" and (r["tracer"], apps) in DOWNSTREAM_LIMITS:
            assert r["verdict"] == "BROKEN", f"README limit is stale: {r}"
            continue
        # One trace, but for the outbound sidecar spans a B3-only tracer started before any
        # filter ran (at most one per outbound call: three).
        assert r["verdict"] in ("JOINED", "JOINED but for 3 outbound sidecar span(s)"), r
        assert r["apps_in_gateway_trace"], r


def test_upstream_gives_every_app_its_sidecar_as_parent(rows):
    for r in rows:
        if r["tracejoin"] in ("upstream", "network+upstream"):
            assert all(r["parent_is_sidecar"].values()), r


def test_where_a_parent_is_one_hop_coarser_the_docs_name_the_fix(rows):
    """Without the upstream filter no filter knows the span Envoy is about to inject, so an
    app reading a format Envoy's tracer does not write finds its caller's span there. Where
    that loses a parent link the app had without tracejoin, docs/local-mesh.md names the
    configurations that keep it (network+upstream, or the zipkin_w3c tracer); they do."""
    for r in rows:
        if r["tracejoin"] not in ("downstream", "network", "network+downstream"):
            continue
        apps = r["apps"].split(" ")[0]
        off = by(rows, r["tracer"], apps, "off")
        lost = [app for app in topology.APPS if off["parent_is_sidecar"][app] and not r["parent_is_sidecar"][app]]
        if lost:
            assert (r["tracer"], apps) == ("zipkin", "b3,tracecontext,baggage"), (r, off)
            for fix in (by(rows, "zipkin", apps, "network+upstream"), by(rows, "zipkin_w3c", apps, r["tracejoin"])):
                assert all(fix["parent_is_sidecar"][app] for app in lost), fix


def test_apps_with_tracing_off_still_pass_the_trace_on(wasm):
    """OTEL_ENABLED=false: the apps send no spans, and (uninstrumented) forward no context;
    the mesh's own spans still form the gateway's trace up to the app."""
    from tracejoin_tools.mesh import native, traces

    with native.Mesh(wasm) as mesh:
        mesh.apps_with(None, {"OTEL_ENABLED": "false"})
        mesh.configure("zipkin", "downstream")
        assert mesh.request("POST", "/api/v1/auth/kakao/callback") == 200
        spans = mesh.settle(7)
    assert not [s for s in spans if s["source"] == "otlp"], spans
    gateway = [s for s in spans if s["service"] == traces.GATEWAY]
    inbound = [s for s in spans if s["service"] == "auth-api-sidecar" and s["kind"] == "SERVER"]
    assert gateway and inbound and inbound[0]["trace_id"] == gateway[0]["trace_id"]


def test_every_app_can_run_on_the_node_sdk(wasm):
    """The Node app serves the Python app's routes with the same outbound calls: the whole
    mesh on the JavaScript SDK breaks without tracejoin and joins with it as the mixed mesh
    does (classic Istio's Zipkin tracer, the SDK default propagators)."""
    sdks = {app: "node" for app in topology.APPS}
    off, joined = matrix.run(wasm, tracers=("zipkin",), propagators=matrix.PROPAGATORS[:1], modes=("off", "network+upstream"), sdks=sdks)
    for r in (off, joined):
        assert r["status"] == 200 and r["spans"] == 14, r
        # The Node auth-api makes the HTTPS call too (Node's https, SNI `servername`).
        assert_https_named(r)
    assert off["verdict"] == "BROKEN", off
    assert joined["verdict"] == "JOINED" and joined["traces"] == 1 and all(joined["parent_is_sidecar"].values()), joined
