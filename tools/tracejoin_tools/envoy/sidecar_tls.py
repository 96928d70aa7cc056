"""A sidecar's outbound listeners for apps that speak TLS themselves, with tracejoin placed as
the Istio kit places it, on one real Envoy (read in istiod 1.30's source,
docs/external-services.md):

- `0.0.0.0_443`: `tls_inspector`, one SNI-matched chain per ServiceEntry host (`tcp_proxy` to
  `outbound|443||HOST`) with the NETWORK WasmPlugin `tracejoin-outbound-network`'s
  pluginConfig in front (istio/components/sidecars/wasmplugin-sidecar-network.yaml), and the default chain
  `PassthroughFilterChain` (to `PassthroughCluster`) with istio/extras/envoyfilter-passthrough.yaml's
  filter in front;
- `virtualOutbound`: no listener filter, the chain `virtualOutbound-catchall-tcp` (a port no
  listener has), with the EnvoyFilter's second filter;
- a VIP listener (`10.96.0.10_443`): no listener filter, one unnamed chain to an in-mesh
  service, with the WasmPlugin's filter.
Every cluster leads to one local TLS server with a certificate for every host; connections
are logged in the kit's access-log format (istio/istiod-values.yaml).

    python -m tracejoin_tools.envoy.sidecar_tls --wasm tracejoin.wasm [--port 443]

calls one host of each of the kit's ServiceEntries and one unregistered host over TLS and
prints tracejoin's counters, the access-log lines, its log lines and the ServiceEntry the
unregistered host's counter suggests (tracejoin_tools.istio.suggest_service_entries). The
kit's entries list port 443; on another `--port` (the default, a free one: 443 needs root)
the entries' 443 becomes that port, as a sidecar's connection keeps its original port.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import yaml

from tracejoin_tools.common import ROOT, free_port, loopback
from tracejoin_tools.envoy import harness
from tracejoin_tools.envoy.tls_upstream import TlsUpstream, request
from tracejoin_tools.istio.serviceentries_to_config import external_services

SERVICES = external_services([str(ROOT / "istio" / "components" / "service-entries" / "service-entries.yaml")])
# One host per ServiceEntry of the kit (a name below a wildcard for the wildcard entries),
# and one no ServiceEntry names.
CALLS = {
    "google-external": "oauth2.googleapis.com",
    "kakao-external": "kauth.kakao.com",
    "naver-external": "openapi.naver.com",
    "openai-external": "api.openai.com",
    "aws-s3-external": "my-bucket.s3.ap-northeast-2.amazonaws.com",
    "aws-cloudfront": "d111111abcdef8.cloudfront.net",
}
UNREGISTERED = "api.example.org"
VIP_HOST = "vip.default.svc"
LISTENERS = ("0.0.0.0_443", "virtualOutbound", "10.96.0.10_443")


def kit_plugin_config():
    """tracejoin-outbound-network's pluginConfig (istio/components/sidecars/wasmplugin-sidecar-network.yaml)."""
    docs = [d for d in yaml.safe_load_all((ROOT / "istio" / "components" / "sidecars" / "wasmplugin-sidecar-network.yaml").read_text()) if d]
    return next(d for d in docs if d["metadata"]["name"] == "tracejoin-outbound-network")["spec"]["pluginConfig"]


def passthrough_filters(wasm):
    """The network filter each patch of istio/extras/envoyfilter-passthrough.yaml inserts, by the
    chain it matches, with the module path pointed at the build."""
    doc = next(d for d in yaml.safe_load_all((ROOT / "istio" / "extras" / "envoyfilter-passthrough.yaml").read_text()) if d)
    filters = {}
    for patch in doc["spec"]["configPatches"]:
        value = patch["patch"]["value"]
        value["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = wasm
        filters[patch["match"]["listener"]["filterChain"]["name"]] = value
    return filters


def plugin_config_on(port):
    """The kit's pluginConfig, the entries' 443 replaced by the listener's `port`."""
    config = kit_plugin_config()
    config["external_services"] = [
        {**s, "ports": [port if p == 443 else p for p in s["ports"]]} for s in config["external_services"]
    ]
    return config


def _chain(tracejoin, cluster, log_path, name=None):
    chain = {"filters": [tracejoin, harness.tcp_proxy_filter(cluster, log_path)]}
    if name:
        chain["name"] = name
    return chain


def bootstrap(wasm, upstream_port, log_path, ports):
    """The three listeners on `ports` (by name), every cluster to `upstream_port`."""
    plugin_config = plugin_config_on(ports["0.0.0.0_443"])
    hosts = [h for s in plugin_config["external_services"] for h in s["hosts"]]
    clusters = {f"outbound|443||{h}" for h in hosts} | {"PassthroughCluster", f"outbound|443||{VIP_HOST}"}
    plugin = harness.network_wasm_filter(wasm, plugin_config)
    patched = passthrough_filters(wasm)
    sni_listener = harness.outbound_tls_listener(
        loopback(ports["0.0.0.0_443"]),
        [(h, f"outbound|443||{h}") for h in hosts],
        front=plugin,
        passthrough_front=patched["PassthroughFilterChain"],
        access_log=log_path,
    )
    virtual_outbound = {
        "name": "virtualOutbound",
        "address": {"socket_address": loopback(ports["virtualOutbound"])},
        "filter_chains": [
            _chain(patched["virtualOutbound-catchall-tcp"], "PassthroughCluster", log_path, "virtualOutbound-catchall-tcp")
        ],
    }
    vip = {
        "name": "10.96.0.10_443",
        "address": {"socket_address": loopback(ports["10.96.0.10_443"])},
        "filter_chains": [_chain(plugin, f"outbound|443||{VIP_HOST}", log_path)],
    }
    config = harness.render_bootstrap([sni_listener, virtual_outbound, vip], upstream_port)
    config["static_resources"]["clusters"] = [harness._cluster(c, upstream_port) for c in sorted(clusters)]
    config["stats_config"] = {"stats_tags": harness.EXTERNAL_STATS_TAGS}
    return config


def upstream_hosts(*extra):
    """Every name the TLS server needs a certificate for."""
    return [h for s in SERVICES for h in s["hosts"]] + list(CALLS.values()) + [UNREGISTERED, VIP_HOST, *extra]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wasm", required=True)
    parser.add_argument("--port", type=int, default=0, help="0.0.0.0_443's port (default: a free one)")
    args = parser.parse_args()
    ports = {name: free_port() for name in LISTENERS}
    if args.port:
        ports["0.0.0.0_443"] = args.port
    workdir = tempfile.mkdtemp(prefix="tracejoin-sidecar-tls-")
    log_path = os.path.join(workdir, "access.log")
    with TlsUpstream(upstream_hosts()) as upstream:
        config = bootstrap(os.path.abspath(args.wasm), upstream.port, log_path, ports)
        with harness.Envoy(config, component_log_level="wasm:info") as envoy:
            port = ports["0.0.0.0_443"]
            for host in [*CALLS.values(), UNREGISTERED, UNREGISTERED]:
                request(port, host, upstream.client_context(), b"body")
            time.sleep(0.3)  # the access log is flushed every 0.1 s
            print("counters:")
            for name, value in sorted(envoy.stats("tracejoin").items()):
                if "tls" in name:
                    print(f"  {name} {value}")
            print("access log:")
            with open(log_path) as f:
                print("".join(f"  {line}" for line in f), end="")
            print("tracejoin's log:")
            for line in envoy.log().splitlines():
                for marker in ("tracejoin: TLS", "tracejoin: network position: TLS"):
                    if marker in line:
                        print("  " + line[line.index(marker) :])
            print("suggested ServiceEntries:")
            out = subprocess.run(
                [sys.executable, "-m", "tracejoin_tools.istio.suggest_service_entries", "--admin", envoy.admin],
                capture_output=True, text=True, timeout=60, check=True,
            )
            print(out.stdout, end="")
    for name in os.listdir(workdir):
        os.unlink(os.path.join(workdir, name))
    os.rmdir(workdir)


if __name__ == "__main__":
    main()
