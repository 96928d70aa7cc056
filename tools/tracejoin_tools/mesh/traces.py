"""Reading the collected spans of one request: the trace tree, and the figures the e2e
matrix reports (distinct traces, spans whose parent is missing, whether each app's server
span hangs under the proxy span right before it, where the apps' own HTTPS calls are)."""

from urllib.parse import urlparse

from tracejoin_tools.mesh.topology import APPS

GATEWAY = "istio-ingressgateway"


def _url(span):
    tags = span["tags"]
    return tags.get("http.url") or tags.get("url.full") or ""


def _client_library(span):
    """The instrumentation that made an app's client span: httpx (Python), http (Node.js)."""
    scope = span.get("scope", "")
    for prefix in ("opentelemetry.instrumentation.", "@opentelemetry/instrumentation-"):
        if scope.startswith(prefix):
            return scope[len(prefix):]
    return scope or "client"


def https_calls(spans):
    """The apps' client spans of HTTPS calls in their own TLS (the sidecar's tcp_proxy makes
    no span after them)."""
    return [s for s in spans if s["source"] == "otlp" and s["kind"] == "CLIENT" and urlparse(_url(s)).scheme == "https"]


def label(span):
    tags = span["tags"]
    if span["service"].endswith("-sidecar") or span["service"] == GATEWAY:
        url = urlparse(_url(span))
        side = "" if span["service"] == GATEWAY else (" inbound" if span["kind"] == "SERVER" else " outbound")
        method = tags.get("http.method", "")
        text = f"{span['service']}{side}: {method} {url.path or '/'}".rstrip()
        if span["kind"] == "CLIENT":
            text = f"{span['service']}{side}: {method} {url.netloc}{url.path}"
    elif span["kind"] == "CLIENT":
        url = urlparse(_url(span))
        # A gRPC client span has no URL: its name is the method. An HTTPS call shows its
        # scheme (the app's own TLS; an app's plain calls go to its sidecar).
        scheme = "https://" if url.scheme == "https" else ""
        text = f"{span['service']} {_client_library(span)}: {span['name']} {scheme}{url.netloc}{url.path}".rstrip()
    else:
        # Node's http instrumentation names a server span by its method alone.
        path = tags.get("http.target") or tags.get("url.path") or ""
        name = span["name"] if " " in span["name"] or not path else f"{span['name']} {path}"
        text = f"{span['service']}: {name}"
    entry = tags.get("istio.service_entry")
    if entry and entry != "-":
        text += f"  [external: {entry}]"
    return text


def tree(spans):
    """Lines of the trees (roots: spans whose parent is not among `spans`), gateway first."""
    ids = {s["span_id"] for s in spans}
    children = {}
    for s in spans:
        children.setdefault(s["parent_id"], []).append(s)
    roots = [s for s in spans if not s["parent_id"] or s["parent_id"] not in ids]
    roots.sort(key=lambda s: (s["service"] != GATEWAY, s["trace_id"]))
    lines = []

    def walk(span, prefix, last, top):
        if top:
            parent = f", parent {span['parent_id'][:8]} missing" if span["parent_id"] else ""
            lines.append(f"{label(span)} (trace {span['trace_id'][:8]}...{parent})")
        else:
            lines.append(f"{prefix}{'└── ' if last else '├── '}{label(span)}")
        kids = sorted(children.get(span["span_id"], []), key=lambda s: (s["service"], s["kind"], s["name"]))
        for i, kid in enumerate(kids):
            walk(kid, prefix + ("" if top else ("    " if last else "│   ")), i == len(kids) - 1, False)

    for root in roots:
        walk(root, "", True, True)
    return lines


def figures(spans, apps=APPS):
    """The e2e matrix's columns for one request's spans (`apps`: the mesh's apps,
    topology.apps(protocol))."""
    ids = {s["span_id"]: s for s in spans}
    gateway = [s for s in spans if s["service"] == GATEWAY]
    main_trace = gateway[0]["trace_id"] if gateway else None
    missing_parent = [s for s in spans if s["parent_id"] and s["parent_id"] not in ids]

    def server_parent_is_proxy(app):
        server = [s for s in spans if s["service"] == app and s["kind"] == "SERVER"]
        proxy = [s for s in spans if s["service"] == f"{app}-sidecar" and s["kind"] == "SERVER"]
        if not server or not proxy:
            return None
        return server[0]["parent_id"] == proxy[0]["span_id"]

    return {
        "spans": len(spans),
        "traces": len({s["trace_id"] for s in spans}),
        "outside_gateway_trace": sum(1 for s in spans if s["trace_id"] != main_trace),
        "missing_parent": len(missing_parent),
        # {app: whether its server span hangs under its own sidecar's inbound span}
        "parent_is_sidecar": {app: server_parent_is_proxy(app) for app in apps},
        "apps_in_gateway_trace": all(s["trace_id"] == main_trace for s in spans if s["source"] == "otlp" and not s["service"].endswith("sidecar")),
        # The apps' own HTTPS calls: how many, whether each hangs under its app's server span,
        # whether each is in the gateway's trace.
        "https_calls": len(https_calls(spans)),
        "https_under_app": all(
            (ids.get(s["parent_id"]) or {}).get("service") == s["service"] and ids[s["parent_id"]]["kind"] == "SERVER" for s in https_calls(spans)
        ),
        "https_in_gateway_trace": all(s["trace_id"] == main_trace for s in https_calls(spans)),
    }


def verdict(spans):
    f = figures(spans)
    gateway = [s for s in spans if s["service"] == GATEWAY]
    main_trace = gateway[0]["trace_id"] if gateway else None
    outside = [s for s in spans if s["trace_id"] != main_trace]
    if f["traces"] == 1 and f["missing_parent"] == 0:
        return "JOINED: all spans in one trace, every parent link resolved"
    if outside and all(s["service"].endswith("-sidecar") and s["kind"] == "CLIENT" for s in outside) and f["missing_parent"] == 0:
        return (
            f"JOINED but for {len(outside)} outbound sidecar span(s): Envoy's B3-only tracer started "
            "them in fresh traces before any filter could run (not fixable at that hop)"
        )
    return (
        f"BROKEN: {f['traces']} traces, {len(outside)} span(s) outside the gateway's trace, "
        f"{f['missing_parent']} with a missing parent"
    )
