"""`make demo`: the local mesh (gateway, three sidecars, auth-api and character-api on the
OpenTelemetry Python SDK and profile-api on the JavaScript SDK, all with their SDK's default
W3C propagator, Envoy's Zipkin tracer as in classic Istio) without and with tracejoin; prints
each request's trace tree and a verdict, then what tracejoin named of auth-api's own HTTPS
call to Kakao's user API (its counter and the access-log line of the sidecar's TLS listener),
and writes the service graph as Mermaid (build/mesh-demo.mmd). Then the mesh's HTTP/2 variant
(h2c from the apps, HTTP/2 between Envoys, character-api's gRPC call to inventory-grpc)
without tracejoin and in deployment 3 (graph: build/mesh-demo-http2.mmd). `--protocol http1` or `http2` runs one of the two."""

import argparse
import sys
from pathlib import Path

from tracejoin_tools.common import BUILD, WASM
from tracejoin_tools.mesh import native, topology, traces

REQUESTS = {
    "http1": [
        (
            "POST",
            "/api/v1/auth/kakao/callback",
            14,
            "a login: auth-api calls Kakao (external; the user API over its own HTTPS) and profile-api (Node), which calls character-api",
        ),
        ("GET", "/api/v1/admin/users", 1, "rejected at the gateway (403), before any app"),
    ],
    "http2": [
        (
            "POST",
            "/api/v1/auth/kakao/callback",
            18,
            "a login over h2c and HTTP/2 between Envoys: auth-api calls Kakao (external; the user API over its own HTTPS) and profile-api (Node), "
            "which calls character-api, which calls inventory-grpc (gRPC)",
        ),
        ("GET", "/api/v1/admin/users", 1, "rejected at the gateway (403), before any app"),
    ],
}
# The counter tracejoin's network filter adds to for the login's HTTPS call.
NAMED = "wasmcustom.tracejoin.external.service_entry.kakao-external.namespace.default.tls_connections"
RUNS = {
    "http1": [
        ("off", "without tracejoin"),
        ("downstream", "tracejoin as an HTTP WasmPlugin only (listener filter, after Envoy's tracer)"),
        ("network+downstream", "tracejoin as Istio's WasmPlugins install it: NETWORK in front of the tracer, HTTP behind it"),
        ("network+upstream", "tracejoin in front of the tracer and in the router's upstream filters (exact parent links)"),
    ],
    "http2": [
        ("off", "HTTP/2 and gRPC, without tracejoin"),
        ("network+upstream", "HTTP/2 and gRPC, tracejoin in front of the tracer and in the router's upstream filters"),
    ],
}


def https_lines(mesh, mode):
    """What tracejoin named of auth-api's own HTTPS call (no span of the sidecar's: tcp_proxy
    passes the app's TLS), and whether that is what the run should name."""
    counters, log = mesh.tls_named()
    lines = [f"HTTPS GET https://{topology.KAKAO_API_HOST}/v2/user/me: auth-api's own TLS, through auth-api-sidecar's {topology.TLS_LISTENER} (tcp_proxy, no span)"]
    if counters:
        lines += [f"    named by tracejoin: {name} = {value}" for name, value in sorted(counters.items())]
    else:
        lines.append("    named by tracejoin: nothing (no tracejoin in the network position in this run)")
    lines += [f"    access log: {line}" for line in log] or ["    access log: no line"]
    entry = "service_entry=kakao-external external_host=kapi.kakao.com "
    named = counters == {NAMED: 1} and len(log) == 1 and entry in log[0]
    return lines, (named if mode.startswith("network") else not counters)


def mermaid(spans):
    """The service graph of one request: services as nodes, external services their own."""
    by_id = {s["span_id"]: s for s in spans}
    node = lambda name: name.split(" ")[0].replace("-", "_").replace(".", "_")  # noqa: E731
    edges = set()
    for s in spans:
        entry = s["tags"].get("istio.service_entry")
        if entry and entry not in ("-", "unregistered"):
            edges.add((s["service"], entry + " (external)"))
        parent = by_id.get(s["parent_id"])
        if parent and parent["service"] != s["service"]:
            edges.add((parent["service"], s["service"]))
    lines = ["graph LR"]
    for a, b in sorted(edges):
        shape_b = f'{node(b)}[("{b}")]' if b.endswith("(external)") else f"{node(b)}[{b}]"
        lines.append(f"    {node(a)}[{a}] --> {shape_b}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm", default=str(WASM))
    parser.add_argument("--tracer", default="zipkin", choices=["zipkin", "zipkin_w3c", "opentelemetry"])
    parser.add_argument("--protocol", default="both", choices=["both", "http1", "http2"], help="the mesh's variants to run (default: both, HTTP/1.1 first)")
    parser.add_argument("--graph", default=str(BUILD / "mesh-demo.mmd"), help="where the HTTP/1.1 graph goes (the HTTP/2 one beside it, -http2)")
    args = parser.parse_args()
    ok = True
    graph_path = Path(args.graph)
    for protocol in ("http1", "http2") if args.protocol == "both" else (args.protocol,):
        graph = None
        with native.Mesh(args.wasm, protocol=protocol) as mesh:
            mesh.apps_with(None)  # the SDK default: tracecontext,baggage
            for mode, title in RUNS[protocol]:
                mesh.configure(args.tracer, mode)
                print(f"=== {title} (Envoy tracer: {args.tracer})")
                for method, path, expected_spans, what in REQUESTS[protocol]:
                    mesh.collector.clear()
                    mesh.clear_tls_log()
                    status = mesh.request(method, path)
                    spans = mesh.settle(expected_spans)
                    print(f"\n{method} {path} -> {status}: {what}")
                    for line in traces.tree(spans):
                        print("    " + line)
                    verdict = traces.verdict(spans)
                    print(f"    verdict: {verdict}")
                    if path.startswith("/api/v1/auth"):
                        lines, as_expected = https_lines(mesh, mode)
                        for line in lines:
                            print("    " + line)
                        ok = ok and as_expected
                    if mode != "off" and verdict.startswith("BROKEN"):
                        ok = False
                    # In front of the tracer every proxy span joins the trace too.
                    if mode.startswith("network") and not verdict.startswith("JOINED:"):
                        ok = False
                    if mode == "network+upstream" and path.startswith("/api/v1/auth"):
                        graph = mermaid(spans)
                print()
        if graph:
            out = graph_path if protocol == "http1" else graph_path.with_name(f"{graph_path.stem}-http2{graph_path.suffix}")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(graph)
            print(f"service graph (Mermaid) written to {out}:\n{graph}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
