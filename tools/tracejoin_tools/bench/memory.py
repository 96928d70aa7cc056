"""VM memory per sidecar with the kit's two plugins of one module (`make bench`, after the
instruction counts): do the network filter and the HTTP filter share one wasm VM per worker?

Envoy keys a VM by `vm_config`'s `vm_id`, its `configuration` and the code's bytes
(`proxy_wasm::makeVmKey` in Envoy's source/extensions/common/wasm/wasm.cc): plugins whose
three agree run in one VM, each with a root context of its own; anything else gets a VM of
its own on the main thread and on every worker. Each case here is an Envoy with two workers
(`--concurrency 2`, as a sidecar with two CPUs) and two listeners like a sidecar's inbound
and outbound, each with the network filter in front of the HCM and an HTTP filter:

  none          no wasm (the RSS without any VM)
  noop-shared   the no-op module in both places of both listeners, one vm_id
  shared        tracejoin as envoy/envoy-network-downstream.yaml (deployment 2) configures
                it: `vm_id: tracejoin` on both filters
  istio         deployment 2 as istiod renders two WasmPlugins (NETWORK and HTTP) of one
                image: no vm_id, no VM configuration, the same module file (the agent
                fetches the image once), plugin names `<namespace>.<name>`, no root_id
  separate      the same with another vm_id on the network filter: two VM keys
  deploy3-kit   deployment 3 as the Istio kit ships it: the network filter as istiod
                renders it (no vm_id) and the router upstream filter from
                envoyfilter-upstream.yaml (`vm_id: tracejoin-upstream`)

Each case is started `--repeat` times; it reports Envoy's wasm VM stats
(`wasm.envoy.wasm.runtime.v8.active` and `.created`), the VM's linear memory (tracejoin's
gauge `tracejoin.vm.memory_bytes`, one VM's: every VM of the module writes the same gauge)
and Envoy's RSS after 40 requests through each listener (median of the repeats, and the
range).

    python -m tracejoin_tools.bench.memory --tracejoin tracejoin.wasm --noop noop.wasm
"""

import argparse
import http.client
import json
import statistics
import urllib.request
from pathlib import Path

from tracejoin_tools.bench.compare import DEPLOY_NETWORK
from tracejoin_tools.bench.load import backend_config, rss_kib
from tracejoin_tools.common import BUILD, LOOPBACK, traceparent
from tracejoin_tools.envoy.harness import Envoy, envoy_version, render_bootstrap, render_listener

WORKERS = 2
CASES = ("none", "noop-shared", "shared", "istio", "separate", "deploy3-kit")
# The kit's HTTP plugins' pluginConfig (istio/components/sidecars/wasmplugin-sidecar.yaml), inbound and outbound;
# the plugin configuration is not part of the VM key.
HTTP_CONFIG = {"inbound": {"tracer": "zipkin"}, "outbound": {"tracer": "zipkin", "external_propagate": False, "unregistered_propagate": False}}
UPSTREAM_CONFIG = {"position": "upstream", "tracer": "zipkin"}


def plugin_configs(listener):
    """The network filter's and the HTTP (or upstream) filter's wasm PluginConfig."""
    filters = listener["filter_chains"][0]["filters"]
    http_filters = filters[-1]["typed_config"]["http_filters"]
    router = http_filters[-1]["typed_config"]
    http = router["upstream_http_filters"][0] if "upstream_http_filters" in router else http_filters[0]
    return filters[0]["typed_config"]["config"], http["typed_config"]["config"]


def as_istio_renders(config, name):
    """A PluginConfig as istiod renders a WasmPlugin once the agent has fetched the image
    (pilot/pkg/model/extensions.go, TrafficExtensionWrapper.buildWasmConfig and buildVMConfig;
    pkg/wasm/convert.go, rewriteVMConfig): name `<namespace>.<name>`, root_id the plugin's
    pluginName (the kit sets none), vm_config without vm_id or configuration, its ISTIO_META_*
    environment stripped by the agent, the code a local file."""
    config["name"] = f"default.{name}"
    config.pop("root_id", None)
    config["vm_config"].pop("vm_id", None)


def sidecar_listener(case, direction, tracejoin, noop):
    if case == "none":
        return render_listener("zipkin", name=direction)
    if case == "noop-shared":
        listener = render_listener("zipkin", "network+downstream", noop, None, name=direction, network_config="network")
        plugin_configs(listener)[1]["configuration"]["value"] = ""
        return listener
    position, http_config = ("network+upstream", UPSTREAM_CONFIG) if case == "deploy3-kit" else ("network+downstream", HTTP_CONFIG[direction])
    listener = render_listener("zipkin", position, tracejoin, http_config, name=direction, network_config=DEPLOY_NETWORK)
    network, http = plugin_configs(listener)
    if case == "istio":
        as_istio_renders(network, f"tracejoin-{direction}-network")
        as_istio_renders(http, f"tracejoin-{direction}")
    elif case == "separate":
        network["vm_config"]["vm_id"] = "tracejoin-network"
    elif case == "deploy3-kit":
        as_istio_renders(network, f"tracejoin-{direction}-network")
        http["vm_config"]["vm_id"] = "tracejoin-upstream"
    return listener


def listener_ports(envoy):
    with urllib.request.urlopen(envoy.admin + "/listeners?format=json", timeout=2) as r:
        return [s["local_address"]["socket_address"]["port_value"] for s in json.load(r)["listener_statuses"]]


def get(port):
    # A new connection each time, so that both workers take some.
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        conn.request("GET", "/", headers={"traceparent": traceparent(flags="01")})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def measure(case, backend_port, args):
    config = render_bootstrap([sidecar_listener(case, d, args.tracejoin, args.noop) for d in ("inbound", "outbound")], backend_port)
    with Envoy(config, component_log_level="wasm:warning", concurrency=WORKERS) as envoy:
        statuses = [get(port) for port in listener_ports(envoy) for _ in range(40)]
        if set(statuses) != {200}:
            raise RuntimeError(f"{case}: answers {sorted(set(statuses))}:\n{envoy.log()}")
        stats = envoy.stats()
        return {
            "active": stats.get("wasm.envoy.wasm.runtime.v8.active", 0),
            "created": stats.get("wasm.envoy.wasm.runtime.v8.created", 0),
            "vm_memory": stats.get("wasmcustom.tracejoin.vm.memory_bytes"),
            "rss_kib": rss_kib(envoy.proc.pid),
            "heap": stats.get("server.memory_allocated", 0),
        }


def render(results, args):
    lines = [
        f"Envoy {envoy_version()}, --concurrency {WORKERS}, two listeners (inbound, outbound), each with the "
        f"module's network filter and HTTP filter; {args.repeat} starts per case, RSS after 40 requests per listener "
        "(median, range).",
        "",
        "| case | VMs active | VMs created | VMs per worker | RSS MiB | RSS range MiB | heap MiB | VM linear memory (one VM) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case, runs in results.items():
        rss = [r["rss_kib"] / 1024 for r in runs]
        first = runs[0]
        counts = {(r["active"], r["created"]) for r in runs}
        active = "/".join(str(a) for a, _ in sorted(counts))
        created = "/".join(str(c) for _, c in sorted(counts))
        memory = f"{first['vm_memory']:,} B" if first["vm_memory"] else "-"
        # A VM key has a VM on the main thread (the one the others are cloned from), a clone
        # there and one on each worker: `active` is (workers + 2) per key.
        per_worker = "/".join(f"{a / (WORKERS + 2):g}" for a, _ in sorted(counts))
        lines.append(
            f"| {case} | {active} | {created} | {per_worker} | {statistics.median(rss):.1f} | {min(rss):.1f}-{max(rss):.1f} | "
            f"{statistics.median(r['heap'] for r in runs) / 2**20:.1f} | {memory} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracejoin", required=True)
    parser.add_argument("--noop", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="comma-separated cases")
    parser.add_argument("--out", default=str(BUILD / "bench-memory.md"))
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c in args.only.split(",")]
    results = {case: [] for case in cases}
    with Envoy(backend_config(), component_log_level="wasm:warning") as backend:
        # Interleaved, so that whatever else the machine does hits every case alike.
        for _ in range(args.repeat):
            for case in cases:
                results[case].append(measure(case, backend.port, args))
    text = render(results, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
