"""The e2e matrix: every Envoy tracer x app propagator setting x tracejoin mode, one login
request each through the native mesh (auth-api and character-api on the OpenTelemetry Python
SDK, profile-api on the JavaScript SDK between them), measured on the collected spans."""

import sys

from tracejoin_tools.common import WASM
from tracejoin_tools.mesh import native, topology, traces

PROPAGATORS = [
    (None, "tracecontext (SDK default)"),
    ("b3", "b3"),
    ("b3multi", "b3multi"),
    ("b3,tracecontext,baggage", "b3,tracecontext,baggage (manual fix)"),
]
# 7 spans from Envoys (gateway, 3 inbound, 3 outbound), 6 from the apps (3 server, 3 client).
LOGIN = ("POST", "/api/v1/auth/kakao/callback", 13)
REJECTED = [("GET", "/api/v1/admin/users", 1), ("GET", "/no/such/route", 1)]  # 403, 404


def run(wasm, tracers=topology.TRACERS, propagators=PROPAGATORS, modes=topology.MODES, sdks=None):
    rows = []
    with native.Mesh(wasm, sdks) as mesh:
        for propagator, label in propagators:
            mesh.apps_with(propagator)
            for tracer in tracers:
                for mode in modes:
                    mesh.configure(tracer, mode)
                    mesh.collector.clear()
                    status = mesh.request(*LOGIN[:2])
                    spans = mesh.settle(LOGIN[2])
                    rejected_status, rejected_spans = [], []
                    for method, path, expected in REJECTED:
                        mesh.collector.clear()
                        rejected_status.append(mesh.request(method, path))
                        rejected = mesh.settle(expected, timeout=5)
                        rejected_spans.append(sum(1 for s in rejected if s["service"] == traces.GATEWAY))
                    figures = traces.figures(spans)
                    rows.append(
                        {
                            "tracer": tracer,
                            "apps": label,
                            "tracejoin": mode,
                            "status": status,
                            **figures,
                            "verdict": traces.verdict(spans).split(":")[0],
                            "rejected_status": rejected_status,
                            "rejected_gateway_spans": rejected_spans,
                        }
                    )
    return rows


def yes_no(value):
    return {True: "yes", False: "no", None: "-"}[value]


SDK_NAMES = {"python": "Python", "node": "Node"}


def table(rows, sdks=None):
    sdks = sdks or topology.APP_SDKS
    apps = [f"{app} ({SDK_NAMES[sdks[app]]}) parent = its sidecar" for app in topology.APPS]
    head = f"| Envoy tracer | app propagators | tracejoin | trace ids | spans outside gateway trace | missing parents | {' | '.join(apps)} | verdict |"
    lines = [head, "|" + "---|" * (7 + len(apps))]
    for r in rows:
        parents = " | ".join(yes_no(r["parent_is_sidecar"][app]) for app in topology.APPS)
        lines.append(
            f"| {r['tracer']} | {r['apps']} | {r['tracejoin']} | {r['traces']} | {r['outside_gateway_trace']} | "
            f"{r['missing_parent']} | {parents} | {r['verdict']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    result = run(sys.argv[1] if len(sys.argv) > 1 else str(WASM))
    print(table(result))
