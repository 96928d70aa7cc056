"""tracejoin against its peers, in one run on one machine: `make bench`.

Each case is an Envoy 1.40 with one worker and Istio's tracer (Zipkin), routing to a backend
Envoy that answers 200 itself. wrk drives every case with the same load (one thread, fixed
connections and duration, a W3C app's unsampled `traceparent`, as 99% of requests are under
Istio's default 1% sampling; random sampling is 0, so the tracer propagates context but
reports no span: span reporting would cost every case the same and hide the filters);
rounds are interleaved so drift hits every case alike, and the median round is reported. Nothing here is pass/fail for `make test`; the targets are printed next to the
figures.

Cases:
  none         no HTTP filter but the router (the limit)
  noop-wasm    a Rust proxy-wasm filter doing nothing (bench/noop: the floor of any wasm filter)
  read-headers the same filter reading the request headers once, as one map, and nothing else
               (the floor of any wasm filter that looks at the headers)
  tracejoin    tracejoin, default config `{}` (downstream, next to Zipkin)
  upstream     tracejoin `{"position": "upstream"}` as a router upstream filter
  all-formats  tracejoin writing all four formats, request with a 32-member tracestate
  native-w3c   no filter; Envoy's own Zipkin `USE_B3_WITH_W3C_PROPAGATION`
  lua          a Lua filter copying traceparent into x-b3-* (what an operator would write)
  noop-network the no-op module as a network filter in front of the HCM (the floor of any
               wasm network filter)
  network      tracejoin `{"position": "network"}` in front of the HCM: it writes x-b3-* into
               every head (the W3C app's context for Envoy's B3-only tracer)

Then uploads: 1 MiB POSTs on kept-alive connections through none, noop-network and network
(the backend reads each body to its end), in requests/s and MiB/s: bodies are followed by
length, not copied into the VM.

`--variant LABEL=PATH` adds a case running another build of tracejoin with the default
config, e.g. to compare optimisation levels in the same run.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from tracejoin_tools.bench.load import backend_config, rss_kib, run_wrk
from tracejoin_tools.common import BUILD, traceparent
from tracejoin_tools.envoy.harness import (
    Envoy,
    envoy_version,
    network_wasm_filter,
    render_bootstrap,
    render_listener,
    wasm_filter,
)

# A W3C app's unsampled request.
TRACEPARENT = traceparent(flags="00")
# 32 members in 415 bytes: the most W3C allows (32 members, 512 bytes).
FULL_TRACESTATE = ",".join(f"k{i:02d}=v{i:02d}abcdef" for i in range(32))

LUA_COPY = """
function envoy_on_request(handle)
  local headers = handle:headers()
  local tp = headers:get("traceparent")
  if tp == nil then return end
  local trace, span, flags = string.match(tp, "^00%-(%x+)%-(%x+)%-(%x%x)$")
  if trace == nil or #trace ~= 32 or #span ~= 16 then return end
  headers:replace("x-b3-traceid", trace)
  headers:replace("x-b3-spanid", span)
  headers:replace("x-b3-sampled", (tonumber(flags, 16) % 2 == 1) and "1" or "0")
end
"""

def lua_filter():
    return {
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": LUA_COPY},
        },
    }


def case_config(case, backend_port, tracejoin_wasm, noop_wasm, variants):
    tracer = "zipkin_w3c" if case == "native-w3c" else "zipkin"
    if case == "tracejoin":
        listener = render_listener(tracer, "downstream", tracejoin_wasm, {})
    elif case in variants:
        listener = render_listener(tracer, "downstream", variants[case], {})
    elif case == "upstream":
        listener = render_listener(tracer, "upstream", tracejoin_wasm, {"position": "upstream"})
    elif case == "all-formats":
        plugin = {"propagate": ["tracecontext", "b3", "b3multi", "jaeger"]}
        listener = render_listener(tracer, "downstream", tracejoin_wasm, plugin)
    elif case == "network":
        listener = render_listener(tracer, "network", tracejoin_wasm, {"position": "network", "tracer": tracer})
    else:
        listener = render_listener(tracer)
    if case == "noop-network":
        listener["filter_chains"][0]["filters"].insert(0, network_wasm_filter(noop_wasm, "network"))
    filters = listener["filter_chains"][0]["filters"][-1]["typed_config"]["http_filters"]
    if case == "noop-wasm":
        filters.insert(0, wasm_filter(noop_wasm, ""))
    elif case == "read-headers":
        filters.insert(0, wasm_filter(noop_wasm, "read-headers"))
    elif case == "lua":
        filters.insert(0, lua_filter())
    hcm = listener["filter_chains"][0]["filters"][-1]["typed_config"]
    hcm["tracing"]["random_sampling"] = {"value": 0}
    return render_bootstrap([listener], backend_port)


CASES = ("none", "noop-wasm", "read-headers", "tracejoin", "upstream", "all-formats", "native-w3c", "lua", "noop-network", "network")
UPLOAD_CASES = ("none", "noop-network", "network")
UPLOAD_BYTES = 1 << 20
# wrk: POST a 1 MiB body with the W3C app's traceparent.
UPLOAD_SCRIPT = f"""
wrk.method = "POST"
wrk.body = string.rep("x", {UPLOAD_BYTES})
wrk.headers["traceparent"] = "{TRACEPARENT}"
"""


def request_headers(case):
    headers = [f"traceparent: {TRACEPARENT}"]
    if case == "all-formats":
        headers.append(f"tracestate: {FULL_TRACESTATE}")
    return headers


def median_round(rounds):
    """The round with the median requests/s (its latencies go with it)."""
    ordered = sorted(rounds, key=lambda r: r["rps"])
    return ordered[len(ordered) // 2]


def wasm_stats(envoy):
    return {k: v for k, v in envoy.stats("wasm").items() if v}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracejoin", required=True, help="tracejoin .wasm (after wasm-opt)")
    parser.add_argument("--tracejoin-raw", help="the same module as cargo built it (for its size)")
    parser.add_argument("--noop", required=True, help="the no-op filter .wasm")
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_SECONDS", 6)))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 5)))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", default=str(BUILD / "bench.md"))
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--only", help="comma-separated cases to run besides none, noop-wasm, read-headers, tracejoin, lua")
    args = parser.parse_args()
    variants = dict(v.split("=", 1) for v in args.variant)
    chosen = set(args.only.split(",")) | {"none", "noop-wasm", "read-headers", "tracejoin", "lua"} if args.only else set(CASES)
    cases = tuple(c for c in CASES if c in chosen) + tuple(variants)

    with Envoy(backend_config(), component_log_level="wasm:warning") as backend:
        envoys = {}
        try:
            for case in cases:
                envoys[case] = Envoy(
                    case_config(case, backend.port, args.tracejoin, args.noop, variants),
                    component_log_level="wasm:warning",
                ).__enter__()
            rss_before = {case: rss_kib(e.proc.pid) for case, e in envoys.items()}
            for case, envoy in envoys.items():  # warm-up: connections, JIT, Zipkin batches
                run_wrk(envoy.port, request_headers(case), 2, args.connections)
            results = {case: [] for case in cases}
            for r in range(args.rounds):
                order = cases[r % len(cases):] + cases[: r % len(cases)]
                for case in order:
                    results[case].append(run_wrk(envoys[case].port, request_headers(case), args.duration, args.connections))
                    print(f"round {r + 1} {case}: {results[case][-1]['rps']:.0f} req/s", file=sys.stderr, flush=True)
            uploads = {}
            upload_cases = [c for c in UPLOAD_CASES if c in envoys]
            if upload_cases:
                script = BUILD / "bench-upload.lua"
                script.parent.mkdir(parents=True, exist_ok=True)
                script.write_text(UPLOAD_SCRIPT)
                uploads = {case: [] for case in upload_cases}
                for r in range(args.rounds):
                    order = upload_cases[r % len(upload_cases):] + upload_cases[: r % len(upload_cases)]
                    for case in order:
                        uploads[case].append(run_wrk(envoys[case].port, [], args.duration, 8, script=str(script)))
                        print(f"upload round {r + 1} {case}: {uploads[case][-1]['rps']:.0f} req/s", file=sys.stderr, flush=True)
            report = {
                case: {
                    "median": median_round(rounds),
                    "rounds": [x["rps"] for x in rounds],
                    "rss_kib": rss_kib(envoys[case].proc.pid),
                    "rss_before_kib": rss_before[case],
                    "heap": envoys[case].stats("server.memory_allocated").get("server.memory_allocated", 0),
                    "wasm": wasm_stats(envoys[case]),
                    "tracejoin": {k: v for k, v in envoys[case].stats("tracejoin").items() if v},
                    "5xx": envoys[case].stats("downstream_rq_5xx").get("http.ingress.downstream_rq_5xx", 0),
                }
                for case, rounds in results.items()
            }
            for case, rounds in uploads.items():
                report[case]["upload"] = {"median": median_round(rounds), "rounds": [x["rps"] for x in rounds]}
        finally:
            for envoy in envoys.values():
                envoy.__exit__(None, None, None)

    text = render(report, args, cases)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    with open(Path(args.out).with_suffix(".json"), "w") as f:
        json.dump(report, f, indent=1)
    print(text)


# Rounds of one case further apart than this (relative to their median) mean a disturbed run.
NOISY_SPREAD = 0.10


def spread(rounds):
    ordered = sorted(rounds)
    return (ordered[-1] - ordered[0]) / ordered[len(ordered) // 2]


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def render(report, args, cases):
    base = report["none"]["median"]["rps"]
    floor = report["noop-wasm"]["median"]["rps"]
    lines = [
        f"Envoy {envoy_version()} (one worker), Zipkin tracer (random sampling 0, unsampled traceparent), "
        f"wrk -t1 -c{args.connections} "
        f"-d{args.duration}s, median of {args.rounds} interleaved rounds; {machine()}.",
        "",
        "| case | requests/s | p50 ms | p99 ms | vs none | vs noop-wasm | Envoy RSS MiB | rounds (req/s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        r = report[case]
        m = r["median"]
        lines.append(
            f"| {case} | {m['rps']:.0f} | {m['p50']:.3f} | {m['p99']:.3f} | {m['rps'] / base:.3f} | "
            f"{m['rps'] / floor:.3f} | {r['rss_kib'] / 1024:.1f} | {', '.join(f'{x:.0f}' for x in r['rounds'])} |"
        )
    tj = report["tracejoin"]["median"]["rps"]
    lua = report["lua"]["median"]["rps"]
    sizes = [f"tracejoin.wasm {os.path.getsize(args.tracejoin)} B after wasm-opt"]
    if args.tracejoin_raw:
        sizes.append(f"{os.path.getsize(args.tracejoin_raw)} B from cargo")
    sizes.append(f"no-op filter {os.path.getsize(args.noop)} B")
    for variant in args.variant:
        label, path = variant.split("=", 1)
        sizes.append(f"{label} {os.path.getsize(path)} B")
    vm_memory = report["tracejoin"]["tracejoin"].get("wasmcustom.tracejoin.vm.memory_bytes")
    reader = report["read-headers"]["median"]["rps"]
    lines += [
        "",
        "Targets: tracejoin (default) within 5% of noop-wasm: "
        f"{tj / floor:.3f} ({'met' if tj >= 0.95 * floor else 'NOT met'}); ahead of lua: "
        f"{tj / lua:.3f} ({'met' if tj > lua else 'NOT met'}); against read-headers (reading the "
        f"headers alone): {tj / reader:.3f}; .wasm under 200 KB: "
        f"{'met' if os.path.getsize(args.tracejoin) < 200_000 else 'NOT met'}.",
        "Sizes: " + ", ".join(sizes) + ".",
        f"tracejoin VM linear memory (gauge tracejoin.vm.memory_bytes): {vm_memory} B."
        if vm_memory
        else "tracejoin VM linear memory: not reported.",
        "5xx per case: " + ", ".join(f"{c} {report[c]['5xx']}" for c in cases) + ".",
    ]
    if "network" in report and "noop-network" in report:
        net, net_floor = report["network"]["median"]["rps"], report["noop-network"]["median"]["rps"]
        lines.append(
            f"Network position: {net / net_floor:.3f} of noop-network "
            f"({'met' if net >= 0.95 * net_floor else 'NOT met'}: target 0.95), {net / base:.3f} of none."
        )
    uploaded = [c for c in cases if "upload" in report[c]]
    if uploaded:
        lines += [
            "",
            f"Uploads: {UPLOAD_BYTES >> 20} MiB POSTs, wrk -t1 -c8 -d{args.duration}s, median of {args.rounds} rounds.",
            "",
            "| case | requests/s | MiB/s | vs none | rounds (req/s) |",
            "|---|---|---|---|---|",
        ]
        up_base = report["none"]["upload"]["median"]["rps"] if "upload" in report["none"] else None
        for c in uploaded:
            u = report[c]["upload"]
            rps = u["median"]["rps"]
            ratio = f"{rps / up_base:.3f}" if up_base else "-"
            lines.append(f"| {c} | {rps:.1f} | {rps * UPLOAD_BYTES / (1 << 20):.0f} | {ratio} | {', '.join(f'{x:.1f}' for x in u['rounds'])} |")
        if up_base and "network" in uploaded:
            ratio = report["network"]["upload"]["median"]["rps"] / up_base
            lines.append(f"\nUpload throughput through the network position: {ratio:.3f} of none ({'met' if ratio >= 0.95 else 'NOT met'}: target within 5%).")
    noisy = [c for c in cases if spread(report[c]["rounds"]) > NOISY_SPREAD]
    if noisy:
        lines.append(
            f"WARNING: rounds differ by more than {NOISY_SPREAD:.0%} for {', '.join(noisy)}: something else "
            "used the CPU; the ratios above are not reliable, run again on a quiet machine."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
