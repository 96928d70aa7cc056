"""The local mesh, as Envoy configs: an ingress gateway, and one sidecar per app with an
inbound and an outbound listener, named and traced the way Istio names and traces them.

One function builds every config from an `Addressing` (where each piece listens and how the
others reach it), so the native runner (loopback ports) and docker-compose (service names)
run the same configs. tracejoin runs in every Envoy, in the position asked for.

Two variants (`protocol`): "http1", the default, HTTP/1.1 on every hop; "http2", where the
apps call their outbound sidecar over h2c (prior knowledge), Envoy talks HTTP/2 to Envoy
(gateway to sidecar, sidecar to sidecar), and character-api also calls a gRPC service,
inventory-grpc (grpc_app.py), behind its own sidecar. The inbound listeners take either
(the HCM's codec_type AUTO); a sidecar talks HTTP/1.1 to its HTTP app (uvicorn and Node's
`http` server) and HTTP/2 to the gRPC one.

In both variants auth-api also makes an HTTPS call of its own (OUTBOUND_TLS: Kakao's user
API, the app's TLS end to end) through its sidecar's outbound TLS listener, Istio's
`0.0.0.0_443` (tls_inspector, an SNI chain per host to tcp_proxy), where tracejoin's network
filter names the connection by its ServiceEntry; that listener is built only where the
addressing gives it a port and its TLS upstream (the native runner; not docker-compose).
"""

import json
from dataclasses import dataclass, field

from tracejoin_tools.envoy import harness as envoy_harness

TRACERS = ("zipkin", "zipkin_w3c", "opentelemetry")
# The network position alone, and with each HTTP position behind it (deployments 1, 2, 3).
MODES = ("off", "downstream", "upstream", "network", "network+downstream", "network+upstream")
# auth-api calls Kakao and profile-api, profile-api calls character-api.
APPS = ("auth-api", "profile-api", "character-api")
# Which OpenTelemetry SDK each app runs on: the Python app (app.py) or the Node.js one
# (tools/mesh-node/app.js); both serve every route, so any app can run on either (but for the
# HTTP/2 variant's gRPC call, which only the Python app makes). The HTTP/2 variant's gRPC
# service runs grpc_app.py (grpcio on the Python SDK).
APP_SDKS = {"auth-api": "python", "profile-api": "node", "character-api": "python", "inventory-grpc": "grpc"}
# The logical hosts each app's outbound sidecar routes: {app: [(route name, host, cluster)]}.
OUTBOUND = {
    "auth-api": [
        ("profile-api", "profile-api", "outbound|8080||profile-api.default.svc.cluster.local"),
        ("kakao", "kauth.kakao.com", "outbound|80||kauth.kakao.com"),
    ],
    "profile-api": [("character-api", "character-api", "outbound|8080||character-api.default.svc.cluster.local")],
}
APP_PORT = 8080

# What the outbound sidecars know about the third party auth-api calls: the kit's Kakao
# ServiceEntry (istio/components/service-entries/service-entries.yaml), plain HTTP to kauth.kakao.com on 80 (the sidecar
# originates TLS) and the app's own HTTPS to kapi.kakao.com on 443.
EXTERNAL_SERVICES = [{"name": "kakao-external", "namespace": "default", "hosts": ["kauth.kakao.com", "kapi.kakao.com"], "ports": [80, 443]}]
# The HTTPS calls an app makes in its own TLS, through its sidecar's outbound TLS listener
# (Istio's 0.0.0.0_443): {app: [(SNI host, cluster)]}. auth-api reads the Kakao user profile
# (GET https://kapi.kakao.com/v2/user/me) after the token exchange; the TLS stub (addressing
# `kakao-api`) answers it with a certificate for that name.
OUTBOUND_TLS = {"auth-api": [("kapi.kakao.com", "outbound|443||kapi.kakao.com")]}
TLS_LISTENER = "0.0.0.0_443"  # Istio's name for the outbound listener of TLS to port 443
KAKAO_API_HOST = "kapi.kakao.com"

# The variants (module docstring).
PROTOCOLS = ("http1", "http2")
# The HTTP/2 variant's gRPC service (grpc_app.py, on grpcio and the OpenTelemetry Python SDK),
# called by character-api (the Python app, grpcio's client) through its outbound sidecar.
GRPC_APP = "inventory-grpc"
GRPC_PORT = 50051
GRPC_CALLER = "character-api"
GRPC_OUTBOUND = {GRPC_CALLER: [(GRPC_APP, GRPC_APP, f"outbound|{GRPC_PORT}||{GRPC_APP}.default.svc.cluster.local")]}


def apps(protocol="http1"):
    """The mesh's apps in a variant: the HTTP/2 one adds the gRPC service."""
    return APPS + ((GRPC_APP,) if protocol == "http2" else ())


def outbound(protocol="http1"):
    """OUTBOUND, with the gRPC call in the HTTP/2 variant."""
    if protocol == "http1":
        return OUTBOUND
    routes = {app: list(hosts) for app, hosts in OUTBOUND.items()}
    for app, hosts in GRPC_OUTBOUND.items():
        routes.setdefault(app, []).extend(hosts)
    return routes


def _app_port(app):
    return GRPC_PORT if app == GRPC_APP else APP_PORT


@dataclass
class Endpoint:
    host: str
    port: int


@dataclass
class Addressing:
    """Where things listen (`bind`) and how others reach them (`reach`)."""

    bind_host: str
    dns: bool  # docker-compose: clusters resolve service names
    reach: dict = field(default_factory=dict)  # name -> Endpoint
    listen: dict = field(default_factory=dict)  # listener name -> port
    admin: dict = field(default_factory=dict)  # envoy name -> admin port (0: any)
    access_logs: dict = field(default_factory=dict)  # envoy name -> its TLS listener's access-log file


def _cluster(name, endpoint, dns, http2=False):
    cluster = {
        "name": name,
        "type": "STRICT_DNS" if dns else "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": endpoint.host, "port_value": endpoint.port}}}}]}],
        },
    }
    if http2:
        # HTTP/2 to the upstream with prior knowledge, as Istio's sidecars talk to each other.
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    return cluster


NEWEST = (1, 40)  # the release docker-compose runs (envoyproxy/envoy:v1.40-latest)


def _tracing(tracer, service, envoy_release):
    provider = envoy_harness.tracer_provider(tracer, "collector-zipkin", "collector-otlp", service)
    tracing = {"random_sampling": {"value": 100}, "provider": provider}
    if envoy_release >= envoy_harness.FORMATTER_TAGS_SINCE:
        # The ServiceEntry tracejoin found, as a span tag.
        tracing["custom_tags"] = [{"tag": "istio.service_entry", "value": "%FILTER_STATE(wasm.tracejoin.service_entry:PLAIN)%"}]
    return tracing


def _tracejoin(listener, position, tracer, wasm_path, external=False):
    config = {"position": position, "tracer": tracer}
    if external:
        config["external_services"] = EXTERNAL_SERVICES
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": f"tracejoin-{listener}",
                # One root context per listener: each has its own configuration.
                "root_id": f"tracejoin-{listener}",
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": json.dumps(config)},
                "vm_config": {"vm_id": f"tracejoin-{listener}", "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": wasm_path}}},
            },
        },
    }


def _network_tracejoin(listener, tracer, wasm_path, external_services=None):
    """tracejoin as a network filter, in front of the listener's HCM (or tcp_proxy)."""
    config = {"position": "network", "tracer": tracer}
    if external_services is not None:
        config["external_services"] = external_services
    return {
        "name": "envoy.filters.network.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
            "config": {
                "name": f"tracejoin-{listener}-network",
                "root_id": f"tracejoin-{listener}-network",
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": json.dumps(config)},
                "vm_config": {"vm_id": f"tracejoin-{listener}", "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": wasm_path}}},
            },
        },
    }


def _listener(name, port, addressing, direction, virtual_hosts, tracer, service, mode, wasm_path, external=False, envoy_release=NEWEST):
    router = {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    network = mode.startswith("network")
    if network:
        mode = mode.partition("+")[2]
    filters = []
    if mode == "downstream":
        filters.append(_tracejoin(name, "downstream", tracer, wasm_path, external))
    elif mode == "upstream":
        router["typed_config"]["upstream_http_filters"] = [
            _tracejoin(name, "upstream", tracer, wasm_path, external),
            {"name": "envoy.filters.http.upstream_codec", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"}},
        ]
    filters.append(router)
    return {
        "name": name,
        "address": {"socket_address": {"address": addressing.bind_host, "port_value": port}},
        "traffic_direction": direction,
        "filter_chains": [
            {
                "filters": ([_network_tracejoin(name, tracer, wasm_path)] if network else [])
                + [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": name,
                            "generate_request_id": True,
                            "tracing": _tracing(tracer, service, envoy_release),
                            "route_config": {"name": name, "virtual_hosts": virtual_hosts},
                            "http_filters": filters,
                        },
                    }
                ]
            }
        ],
    }


def tls_external_services(port):
    """EXTERNAL_SERVICES for a TLS listener on `port`: a sidecar's redirected connection keeps
    its original destination port (443), but on loopback the app connects to the listener
    itself, so its port stands in for 443 (what tracejoin matches the entries' ports against)."""
    return [{**s, "ports": [port if p == 443 else p for p in s["ports"]]} for s in EXTERNAL_SERVICES]


def _tls_listener(app, port, addressing, tracer, mode, wasm_path):
    """An outbound sidecar's listener for an app's own TLS, as Istio's `0.0.0.0_443`:
    tls_inspector, one SNI chain per host of OUTBOUND_TLS (tcp_proxy to `outbound|443||HOST`),
    the default chain `PassthroughFilterChain` (to PassthroughCluster) for any other name. With
    tracejoin in the network position, its network filter runs in front of each tcp_proxy and
    names the connection by ServiceEntry; tcp_proxy makes no span (the bytes are the app's
    TLS). Each connection is logged in the kit's access-log format."""
    network = mode.startswith("network")
    log_path = addressing.access_logs.get(f"{app}-sidecar", "/dev/stdout")
    listener = f"{app}-outbound-tls"
    front = _network_tracejoin(listener, tracer, wasm_path, tls_external_services(port)) if network else None
    return envoy_harness.outbound_tls_listener(
        {"address": addressing.bind_host, "port_value": port},
        OUTBOUND_TLS[app],
        front=front,
        passthrough_front=front,
        access_log=log_path,
    )


def _route(prefix, cluster):
    return {"match": {"prefix": prefix}, "route": {"cluster": cluster}}


def _bootstrap(service, admin_port, addressing, listeners, clusters):
    reach = addressing.reach
    clusters = clusters + [
        _cluster("collector-zipkin", reach["collector-zipkin"], addressing.dns),
        _cluster("collector-otlp", reach["collector-otlp"], addressing.dns),
    ]
    return {
        "node": {"id": service, "cluster": service},
        "admin": {"address": {"socket_address": {"address": addressing.bind_host, "port_value": admin_port}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        # Report spans at once (the defaults batch them for seconds).
        "layered_runtime": {
            "layers": [
                {
                    "name": "static",
                    "static_layer": {
                        "tracing.zipkin.min_flush_spans": 1,
                        "tracing.opentelemetry.min_flush_spans": 1,
                        "tracing.opentelemetry.flush_interval_ms": 100,
                    },
                }
            ]
        },
    }


def mesh_configs(tracer, mode, addressing, wasm_path, envoy_release=NEWEST, protocol="http1"):
    """{envoy name: bootstrap} for the gateway and one sidecar per app, for an Envoy release
    given as (major, minor), in a variant of PROTOCOLS."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}")
    reach, listen, dns = addressing.reach, addressing.listen, addressing.dns
    http2 = protocol == "http2"
    routes = outbound(protocol)
    auth_svc = "outbound|8080||auth-api.default.svc.cluster.local"

    gateway = _listener(
        "gateway",
        listen["gateway"],
        addressing,
        "INBOUND",
        [
            {
                "name": "api",
                "domains": ["*"],
                "routes": [
                    _route("/api/v1/auth/", auth_svc),
                    # Rejected at the edge, before any app: still a gateway span.
                    {"match": {"prefix": "/api/v1/admin"}, "direct_response": {"status": 403, "body": {"inline_string": "RBAC: access denied"}}},
                ],
            }
        ],
        tracer,
        "istio-ingressgateway",
        mode,
        wasm_path,
        envoy_release=envoy_release,
    )
    configs = {
        "istio-ingressgateway": _bootstrap(
            "istio-ingressgateway", addressing.admin.get("istio-ingressgateway", 0), addressing, [gateway],
            [_cluster(auth_svc, reach["auth-api-inbound"], dns, http2)],
        )
    }
    for app in apps(protocol):
        sidecar = f"{app}-sidecar"
        inbound = _listener(
            f"{app}-inbound", listen[f"{app}-inbound"], addressing, "INBOUND",
            [{"name": "inbound", "domains": ["*"], "routes": [_route("/", f"inbound|{_app_port(app)}||")]}],
            tracer, sidecar, mode, wasm_path, envoy_release=envoy_release,
        )
        listeners = [inbound]
        # gRPC needs HTTP/2 to its app; the HTTP apps speak HTTP/1.1.
        clusters = [_cluster(f"inbound|{_app_port(app)}||", reach[app], dns, app == GRPC_APP)]
        if app in routes:
            egress = _listener(
                f"{app}-outbound", listen[f"{app}-outbound"], addressing, "OUTBOUND",
                [{"name": name, "domains": [host, f"{host}:*"], "routes": [_route("/", cluster)]} for name, host, cluster in routes[app]],
                tracer, sidecar, mode, wasm_path, external=True, envoy_release=envoy_release,
            )
            listeners.append(egress)
            # A mesh service is reached at its sidecar's inbound listener (Envoy to Envoy:
            # HTTP/2 in that variant), Kakao directly (HTTP/1.1).
            clusters += [
                _cluster(cluster, reach[f"{name}-inbound"], dns, http2) if name in apps(protocol) else _cluster(cluster, reach[name], dns)
                for name, _host, cluster in routes[app]
            ]
        if app in OUTBOUND_TLS and f"{app}-outbound-tls" in listen:
            listeners.append(_tls_listener(app, listen[f"{app}-outbound-tls"], addressing, tracer, mode, wasm_path))
            # Istio's PassthroughCluster is ORIGINAL_DST; on loopback the original destination
            # is the listener itself, so here it leads to the one TLS upstream there is.
            clusters += [_cluster(cluster, reach["kakao-api"], dns) for cluster in [c for _h, c in OUTBOUND_TLS[app]] + ["PassthroughCluster"]]
        configs[sidecar] = _bootstrap(sidecar, addressing.admin.get(sidecar, 0), addressing, listeners, clusters)
    return configs


def app_env(app, propagators, collector_otlp_url, egress_url, protocol="http1", tls_egress_url=None, ca_file=None):
    """The environment the real apps run with. `tls_egress_url`: where an app of OUTBOUND_TLS
    makes its own HTTPS call (its sidecar's TLS listener; unset, it makes none), `ca_file`:
    the CA it verifies the server's certificate against."""
    env = {
        "APP_NAME": app,
        "OTEL_ENABLED": "true",
        "OTEL_SAMPLING_RATE": "1.0",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector_otlp_url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS": "healthz",
        "EGRESS_URL": egress_url,
    }
    if propagators:
        env["OTEL_PROPAGATORS"] = propagators
    if tls_egress_url and app in OUTBOUND_TLS:
        env["KAKAO_API_URL"] = tls_egress_url
        if ca_file:
            env["KAKAO_API_CA"] = ca_file
    if protocol == "http2":
        # The apps' calls to their outbound sidecar go over h2c (prior knowledge).
        env["EGRESS_PROTOCOL"] = "http2"
        if app in GRPC_OUTBOUND:
            # The authority the gRPC call carries (what the outbound sidecar routes on).
            env["INVENTORY_GRPC"] = f"{GRPC_APP}:{GRPC_PORT}"
    return env
