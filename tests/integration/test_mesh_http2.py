"""The e2e matrix's HTTP/2 variant (topology.py, docs/local-mesh.md): the apps call their
outbound sidecar over h2c, the test's request reaches the gateway over h2c, Envoy talks
HTTP/2 to Envoy, and character-api calls the gRPC service inventory-grpc behind its own
sidecar (18 spans a login, auth-api's own HTTPS call's included). Deployments 2 and 3
(network+downstream, network+upstream) for every Envoy tracer x app propagator setting:
tracejoin's network filter has to read HTTP/2 request heads for Envoy's tracer to continue the
apps' traces at every listener, and names auth-api's HTTPS call in front of tcp_proxy. One test per
cell; the table is printed and written to build/mesh-matrix-http2-<Envoy version>.md."""

import pytest

from tracejoin_tools.common import ROOT
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.mesh import matrix, topology

PROTOCOL = "http2"
MODES = ("network+downstream", "network+upstream")
APPS = topology.apps(PROTOCOL)
# What tracejoin's network filter counts for the login's HTTPS call to kapi.kakao.com.
KAKAO_TLS = "wasmcustom.tracejoin.external.service_entry.kakao-external.namespace.default.tls_connections"
CELLS = [(tracer, label.split(" ")[0], mode) for _propagator, label in matrix.PROPAGATORS for tracer in topology.TRACERS for mode in MODES]
# Deployment 2 links an app to its caller's span where it reads a format Envoy's tracer does
# not write (docs/local-mesh.md; test_mesh.py's test_where_a_parent_is_one_hop_coarser_the_docs_name_the_fix
# for HTTP/1.1): no filter before the router knows the id of the span Envoy is about to inject.
DEPLOYMENT_2_COARSER = {("zipkin", "tracecontext"), ("opentelemetry", "b3"), ("opentelemetry", "b3multi"), ("zipkin", "b3,tracecontext,baggage")}


@pytest.fixture(scope="module")
def rows(wasm):
    result = matrix.run(wasm, modes=MODES, protocol=PROTOCOL)
    text = matrix.table(result)
    out = ROOT / "build" / f"mesh-matrix-http2-{envoy_harness.envoy_version()}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    print("\n" + text)
    return result


def cell(rows, tracer, apps, mode):
    [row] = [r for r in rows if r["tracer"] == tracer and r["apps"].split(" ")[0] == apps and r["tracejoin"] == mode]
    return row


@pytest.mark.parametrize("tracer,apps,mode", CELLS, ids=["-".join(c) for c in CELLS])
def test_http2_cell(rows, tracer, apps, mode):
    r = cell(rows, tracer, apps, mode)
    assert r["status"] == 200, r
    # Every span of the login arrived: 9 from Envoys, 9 from the apps (the gRPC hop's and
    # auth-api's HTTPS call's included).
    assert r["spans"] == matrix.LOGIN_SPANS[PROTOCOL] == 18, r
    # auth-api's own HTTPS call (HTTP/1.1 in its TLS in this variant too) is named by the
    # network filter in front of its sidecar's tcp_proxy, and its span is in the login's trace.
    assert r["tls_named"] == {KAKAO_TLS: 1} and len(r["tls_log"]) == 1, r
    assert "service_entry=kakao-external external_host=kapi.kakao.com " in r["tls_log"][0], r
    assert r["https_calls"] == 1 and r["https_under_app"] and r["https_in_gateway_trace"], r
    assert set(r["parent_is_sidecar"]) == set(APPS), r
    # Denied (403) and unrouted (404) at the gateway, over h2c: one gateway span each.
    assert r["rejected_status"] == [403, 404] and r["rejected_gateway_spans"] == [1, 1], r
    # In front of the tracer every proxy span joins: one trace, nothing outside the gateway's,
    # every parent link resolved. (A network filter that leaves HTTP/2 heads as they are gives
    # what the HTTP position alone gives: Envoy's tracer starts each outbound sidecar span in a
    # fresh trace where it cannot read the apps' format.)
    assert r["missing_parent"] == 0, r
    assert (r["traces"], r["outside_gateway_trace"], r["verdict"]) == (1, 0, "JOINED"), r
    assert r["apps_in_gateway_trace"], r
    if mode == "network+upstream" or (tracer, apps) not in DEPLOYMENT_2_COARSER:
        # Every app's server span (the gRPC service's too) under its own sidecar's inbound span.
        assert all(r["parent_is_sidecar"].values()), r
