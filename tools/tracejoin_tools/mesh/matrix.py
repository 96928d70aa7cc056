"""The e2e matrix: every Envoy tracer x app propagator setting x tracejoin mode, one login
request each through the native mesh (auth-api and character-api on the OpenTelemetry Python
SDK, profile-api on the JavaScript SDK between them), measured on the collected spans. In the
HTTP/2 variant (`protocol="http2"`, topology.py) the same over h2c and HTTP/2 between Envoys,
with character-api's gRPC call to inventory-grpc.

    python -m tracejoin_tools.mesh.matrix [WASM] [--protocol http2] [--mode MODE ...]
"""

import argparse

from tracejoin_tools.common import WASM
from tracejoin_tools.mesh import native, topology, traces

PROPAGATORS = [
    (None, "tracecontext (SDK default)"),
    ("b3", "b3"),
    ("b3multi", "b3multi"),
    ("b3,tracecontext,baggage", "b3,tracecontext,baggage (manual fix)"),
]
# 7 spans from Envoys (gateway, 3 inbound, 3 outbound), 7 from the apps (3 server, 4 client:
# auth-api's HTTPS call to Kakao's user API is the app's own TLS through its sidecar's
# tcp_proxy, which makes no span).
LOGIN = ("POST", "/api/v1/auth/kakao/callback", 14)
# The HTTP/2 variant's login adds the gRPC hop: character-api's client span, its outbound
# sidecar's, inventory-grpc's inbound sidecar's and its server span (9 from Envoys, 9 from apps).
LOGIN_SPANS = {"http1": 14, "http2": 18}
REJECTED = [("GET", "/api/v1/admin/users", 1), ("GET", "/no/such/route", 1)]  # 403, 404


def run(wasm, tracers=topology.TRACERS, propagators=PROPAGATORS, modes=topology.MODES, sdks=None, protocol="http1"):
    rows = []
    apps = topology.apps(protocol)
    with native.Mesh(wasm, sdks, protocol) as mesh:
        for propagator, label in propagators:
            mesh.apps_with(propagator)
            for tracer in tracers:
                for mode in modes:
                    mesh.configure(tracer, mode)
                    mesh.collector.clear()
                    mesh.clear_tls_log()
                    status = mesh.request(*LOGIN[:2])
                    spans = mesh.settle(LOGIN_SPANS[protocol])
                    # What auth-api's sidecar named of the app's HTTPS call (its counters
                    # count from this configure on: one login so far).
                    tls_named, tls_log = mesh.tls_named()
                    rejected_status, rejected_spans = [], []
                    for method, path, expected in REJECTED:
                        mesh.collector.clear()
                        rejected_status.append(mesh.request(method, path))
                        rejected = mesh.settle(expected, timeout=5)
                        rejected_spans.append(sum(1 for s in rejected if s["service"] == traces.GATEWAY))
                    figures = traces.figures(spans, apps)
                    rows.append(
                        {
                            "protocol": protocol,
                            "tracer": tracer,
                            "apps": label,
                            "tracejoin": mode,
                            "status": status,
                            **figures,
                            "verdict": traces.verdict(spans).split(":")[0],
                            "rejected_status": rejected_status,
                            "rejected_gateway_spans": rejected_spans,
                            "tls_named": tls_named,
                            "tls_log": tls_log,
                        }
                    )
    return rows


def yes_no(value):
    return {True: "yes", False: "no", None: "-"}[value]


SDK_NAMES = {"python": "Python", "node": "Node", "grpc": "Python gRPC"}


def table(rows, sdks=None):
    sdks = {**topology.APP_SDKS, **(sdks or {})}
    apps = topology.apps(rows[0]["protocol"] if rows else "http1")
    columns = [f"{app} ({SDK_NAMES[sdks[app]]}) parent = its sidecar" for app in apps]
    head = f"| Envoy tracer | app propagators | tracejoin | trace ids | spans outside gateway trace | missing parents | {' | '.join(columns)} | verdict |"
    lines = [head, "|" + "---|" * (7 + len(columns))]
    for r in rows:
        parents = " | ".join(yes_no(r["parent_is_sidecar"][app]) for app in apps)
        lines.append(
            f"| {r['tracer']} | {r['apps']} | {r['tracejoin']} | {r['traces']} | {r['outside_gateway_trace']} | "
            f"{r['missing_parent']} | {parents} | {r['verdict']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wasm", nargs="?", default=str(WASM))
    parser.add_argument("--protocol", default="http1", choices=topology.PROTOCOLS)
    parser.add_argument("--mode", action="append", choices=topology.MODES, help="only these tracejoin modes (default: all)")
    args = parser.parse_args()
    print(table(run(args.wasm, modes=tuple(args.mode or topology.MODES), protocol=args.protocol)))
