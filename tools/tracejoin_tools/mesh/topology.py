"""The local mesh, as Envoy configs: an ingress gateway, and one sidecar per app with an
inbound and an outbound listener, named and traced the way Istio names and traces them.

One function builds every config from an `Addressing` (where each piece listens and how the
others reach it), so the native runner (loopback ports) and docker-compose (service names)
run the same configs. tracejoin runs in every Envoy, in the position asked for.
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
# (tools/mesh-node/app.js); both serve every route, so any app can run on either.
APP_SDKS = {"auth-api": "python", "profile-api": "node", "character-api": "python"}
# The logical hosts each app's outbound sidecar routes: {app: [(route name, host, cluster)]}.
OUTBOUND = {
    "auth-api": [
        ("profile-api", "profile-api", "outbound|8080||profile-api.default.svc.cluster.local"),
        ("kakao", "kauth.kakao.com", "outbound|80||kauth.kakao.com"),
    ],
    "profile-api": [("character-api", "character-api", "outbound|8080||character-api.default.svc.cluster.local")],
}
APP_PORT = 8080

# What the outbound sidecars know about the third party auth-api calls.
EXTERNAL_SERVICES = [{"name": "kakao-external", "namespace": "default", "hosts": ["kauth.kakao.com"], "ports": [80]}]


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


def _cluster(name, endpoint, dns):
    return {
        "name": name,
        "type": "STRICT_DNS" if dns else "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": endpoint.host, "port_value": endpoint.port}}}}]}],
        },
    }


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


def _network_tracejoin(listener, tracer, wasm_path):
    """tracejoin as a network filter, in front of the listener's HCM."""
    config = {"position": "network", "tracer": tracer}
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


def mesh_configs(tracer, mode, addressing, wasm_path, envoy_release=NEWEST):
    """{envoy name: bootstrap} for the gateway and one sidecar per app, for an Envoy release
    given as (major, minor)."""
    reach, listen, dns = addressing.reach, addressing.listen, addressing.dns
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
            [_cluster(auth_svc, reach["auth-api-inbound"], dns)],
        )
    }
    for app in APPS:
        sidecar = f"{app}-sidecar"
        inbound = _listener(
            f"{app}-inbound", listen[f"{app}-inbound"], addressing, "INBOUND",
            [{"name": "inbound", "domains": ["*"], "routes": [_route("/", f"inbound|{APP_PORT}||")]}],
            tracer, sidecar, mode, wasm_path, envoy_release=envoy_release,
        )
        listeners = [inbound]
        clusters = [_cluster(f"inbound|{APP_PORT}||", reach[app], dns)]
        if app in OUTBOUND:
            outbound = _listener(
                f"{app}-outbound", listen[f"{app}-outbound"], addressing, "OUTBOUND",
                [{"name": name, "domains": [host, f"{host}:*"], "routes": [_route("/", cluster)]} for name, host, cluster in OUTBOUND[app]],
                tracer, sidecar, mode, wasm_path, external=True, envoy_release=envoy_release,
            )
            listeners.append(outbound)
            # A mesh service is reached at its sidecar's inbound listener, Kakao directly.
            clusters += [_cluster(cluster, reach[f"{name}-inbound" if name in APPS else name], dns) for name, _host, cluster in OUTBOUND[app]]
        configs[sidecar] = _bootstrap(sidecar, addressing.admin.get(sidecar, 0), addressing, listeners, clusters)
    return configs


def app_env(app, propagators, collector_otlp_url, egress_url):
    """The environment the real apps run with."""
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
    return env
