"""A long run through tracejoin (`make soak`): a million requests by default, with trace
headers that vary per request (bench/soak.lua), through both positions at once (a downstream
filter and a router upstream filter in one Envoy). Samples the filter's VM memory (its own
gauge), Envoy's heap and RSS and the wasm VM stats after a warm-up and at the end, and fails
when memory grew beyond noise, a VM failed, or any request got a 5xx.
"""

import argparse
import sys
import time

from tracejoin_tools.bench.load import backend_config, rss_kib, run_wrk
from tracejoin_tools.common import ROOT
from tracejoin_tools.envoy.harness import Envoy, render_bootstrap, render_listener, wasm_filter
from tracejoin_tools.envoy.vm_health import LOG_PROBLEM, VM_CREATED, vm_failures

# Heap growth tolerated: Envoy's own allocations settle (stats, connection pools) in a few MB.
HEAP_NOISE_BYTES = 4 * 1024 * 1024


def soak_config(backend_port, wasm):
    listener = render_listener("zipkin", "upstream", wasm, {"position": "upstream"})
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"].insert(0, wasm_filter(wasm, {}))
    return render_bootstrap([listener], backend_port)


def sample(envoy):
    stats = envoy.stats()
    return {
        "requests": stats.get("http.ingress.downstream_rq_total", 0),
        "5xx": stats.get("http.ingress.downstream_rq_5xx", 0),
        "vm_memory": stats.get("wasmcustom.tracejoin.vm.memory_bytes"),
        "heap": stats.get("server.memory_allocated", 0),
        "rss_kib": rss_kib(envoy.proc.pid),
        "wasm": {k: v for k, v in stats.items() if k.startswith("wasm.")},
        "stats": stats,
        "tracejoin_invalid": sum(v for k, v in stats.items() if "tracejoin.invalid" in k and isinstance(v, int)),
    }


SCRIPT = str(ROOT / "bench" / "soak.lua")


def wrk(port, seconds):
    run_wrk(port, [], seconds, 32, script=SCRIPT)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracejoin", required=True)
    parser.add_argument("--requests", type=int, default=1_000_000)
    args = parser.parse_args()

    with Envoy(backend_config(), component_log_level="wasm:warning") as backend:
        with Envoy(soak_config(backend.port, args.tracejoin), component_log_level="wasm:warning") as envoy:
            wrk(envoy.port, 3)
            before = sample(envoy)
            started = time.monotonic()
            while True:
                done = sample(envoy)["requests"] - before["requests"]
                if done >= args.requests:
                    break
                rate = done / max(time.monotonic() - started, 0.001) if done else 5000
                wrk(envoy.port, max(2, min(60, int((args.requests - done) / max(rate, 1)) + 1)))
            after = sample(envoy)
            log = envoy.log()

    elapsed = time.monotonic() - started
    done = after["requests"] - before["requests"]
    if before["vm_memory"] is None or after["vm_memory"] is None:
        sys.exit("soak FAILED: Envoy reports no tracejoin.vm.memory_bytes gauge")
    rows = [
        ("requests", before["requests"], after["requests"]),
        ("tracejoin VM linear memory (B)", before["vm_memory"], after["vm_memory"]),
        ("Envoy heap, server.memory_allocated (B)", before["heap"], after["heap"]),
        ("Envoy RSS (KiB)", before["rss_kib"], after["rss_kib"]),
        ("5xx", before["5xx"], after["5xx"]),
        ("tracejoin.invalid.* (sum)", before["tracejoin_invalid"], after["tracejoin_invalid"]),
    ]
    rows += [(k, before["wasm"].get(k, 0), v) for k, v in sorted(after["wasm"].items())]
    print(f"soak: {done} requests in {elapsed:.0f} s ({done / elapsed:.0f} req/s), tracejoin downstream + upstream")
    print("| figure | after warm-up | at the end | change |")
    print("|---|---|---|---|")
    for name, b, a in rows:
        print(f"| {name} | {b} | {a} | {a - b:+} |")

    problems = []
    if after["vm_memory"] != before["vm_memory"]:
        problems.append("the filter's VM memory grew")
    if after["heap"] - before["heap"] > HEAP_NOISE_BYTES:
        problems.append("Envoy's heap grew beyond noise")
    if after["5xx"]:
        problems.append("5xx responses")
    if after["tracejoin_invalid"] <= before["tracejoin_invalid"]:
        problems.append("the filter counted no invalid header: did it run?")
    failures = vm_failures(after["stats"], before["stats"].get(VM_CREATED))
    if failures:
        problems.append(f"a wasm VM failed or was reloaded: {failures}")
    if LOG_PROBLEM.search(log):
        problems.append("Envoy's log shows a wasm failure")
    if problems:
        print("soak FAILED: " + "; ".join(problems))
        sys.exit(1)
    print("soak passed: no memory growth, no 5xx, no VM failure")


if __name__ == "__main__":
    main()
