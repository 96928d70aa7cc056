"""tracejoin against its peers and its floors, in one run on one machine: `make bench`.

Each case is an Envoy 1.40 with one worker and no tracer (but the `*-zipkin` deployment
cases), routing to a backend Envoy that answers 200 itself: without a tracer nothing but the
filters differs between cases (a tracer adds the same cost to every case and moves every
ratio towards 1). Three request shapes, each driving every case with the same load:

  small    HTTP/1.1, wrk: a W3C app's unsampled `traceparent` and nothing else
  browser  HTTP/1.1, wrk: the same plus 16 headers a browser and an ingress add (cookie,
           authorization, user-agent, accept-*, x-forwarded-*, x-request-id, referer,
           origin, sec-*, baggage; about 1.1 KB)
  grpc     HTTP/2 without TLS, h2load: a unary gRPC call (10 headers with the pseudo-headers,
           `traceparent` among them, and a 5-byte message)

Rounds are interleaved (every shape and case once per round, in a rotating order) so that
drift hits every case alike; a ratio is the median of its per-round ratios, requests/s the
median round. Nothing here is pass/fail for `make test`; the targets are printed next to
the figures.

Cases:
  none          no HTTP filter but the router (the limit)
  noop-wasm     a Rust proxy-wasm filter doing nothing (bench/noop: the floor of any wasm filter)
  read-headers  the same filter reading the request headers once, as one map (what tracejoin
                reads), and nothing else
  read-write    the same, then writing one header (the `b3` bridge's size): the part of
                tracejoin's default job the ABI makes unavoidable
  targeted      the same filter asking for tracejoin's 21 header names one by one instead
  tracejoin     tracejoin, default config `{}` (downstream)
  all-formats   tracejoin writing all seven formats
  tracestate    tracejoin `{}` on requests that also carry a 32-member tracestate (its floor
                gets the same request without it)
  noop-upstream the no-op filter as a router upstream filter (the floor there)
  upstream      tracejoin `{"position": "upstream"}` as a router upstream filter
  lua           a Lua filter copying traceparent into x-b3-* (what an operator would write)
  noop-network  the no-op module as a network filter in front of the HCM (the floor of any
                wasm network filter)
  network       tracejoin `{"position": "network"}` in front of the HCM (next to a Zipkin
                tracer it would write x-b3-* into every head; here it reads every head)
  network-zipkin  tracejoin `{"position": "network", "tracer": "zipkin"}`: a W3C app under
                Zipkin, x-b3-* written into every HTTP/1.1 head and HTTP/2 header block

The shipped two-filter deployments (envoy/envoy-network-downstream.yaml and
envoy-network-upstream.yaml), each plugin configured as there, and their floors, the no-op
module in the same two places (one VM for both filters, as in the files):
  deploy2       tracejoin `{"position": "network", "tracer": "zipkin"}` in front of the HCM
                and `{}` as the listener HTTP filter (deployment 2)
  deploy3       the same network filter and `{"position": "upstream", "tracer": "zipkin"}`
                as a router upstream filter (deployment 3)
  noop-deploy2, noop-deploy3  the no-op module in those two places (their floor: none)
  none-zipkin   the router only, with Envoy's Zipkin tracer at 100% sampling as Istio
                configures it (B3, 128-bit ids, no shared span context; the backend takes
                the span reports): the limit under a tracer
  deploy2-zipkin, deploy3-zipkin, noop-deploy2-zipkin, noop-deploy3-zipkin  the four above
                under that tracer (the plugins' configurations unchanged: they name Zipkin)
Under the tracer the app's traceparent is sampled (flags 01), so that every case reports a
span per request.
These have no goal of their own beyond the positions': each is shown against its no-op
floor and against the limit (none, or none-zipkin under the tracer).

Then uploads: 1 MiB POSTs on kept-alive connections through none, noop-network and network
(the backend reads each body to its end), in requests/s and MiB/s: bodies are followed by
length, not copied into the VM.

`--variant LABEL=PATH` adds a case running another build of tracejoin with the default
config, e.g. to compare optimisation levels or a change in the same run (a label ending in
`+tracestate` sends the tracestate case's requests; a label starting with `network` runs
the build in the network position, beside `network`); `--only` and
`--shapes` narrow a run.
"""

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from tracejoin_tools.bench.load import backend_config, cpu_seconds, rss_kib, run_h2load, run_wrk
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
# Under a tracer, the app's sampled request: with the unsampled one the deployments' spans
# would follow the app's "not sampled" (their network filter makes the tracer read it) while
# their floors' tracer samples each request, and the cases would differ by the spans reported.
SAMPLED_TRACEPARENT = traceparent(flags="01")

BROWSER_HEADERS = [
    "user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "accept-language: en-GB,en;q=0.9,de;q=0.8",
    "accept-encoding: gzip, deflate, br, zstd",
    "cookie: session=3f9a1c0e7b2d4e6f8a0b1c2d3e4f5a6b; _ga=GA1.1.1234567890.1733140000; "
    "prefs=theme%3Ddark%26lang%3Den; csrftoken=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0",
    "authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ik"
    "pvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyLCJleHAiOjE3MzMxNDAwMDB9.c2lnbmF0dXJlLXBsYWNlaG9sZGVyLWZvci1iZW5jaA",
    "referer: https://shop.example.com/catalog/items?page=2&sort=price",
    "origin: https://shop.example.com",
    "x-forwarded-for: 203.0.113.7, 10.0.3.12",
    "x-forwarded-proto: https",
    "x-forwarded-host: shop.example.com",
    "x-request-id: 0b9c5c1e-6f0a-4a55-9d53-2f1d3b7c9e10",
    "sec-fetch-site: same-origin",
    "sec-fetch-mode: cors",
    "sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"",
    "baggage: userId=alice,tenant=shop,experiment=checkout-b",
]

GRPC_HEADERS = [
    "content-type: application/grpc",
    "te: trailers",
    "grpc-timeout: 1S",
    "grpc-accept-encoding: identity,deflate,gzip",
    "user-agent: grpc-go/1.68.0",
]
# One unary gRPC message: not compressed, a 0-byte payload (the 5-byte length prefix).
GRPC_MESSAGE = b"\x00\x00\x00\x00\x00"
GRPC_PATH = "/shop.Catalog/GetItem"
GRPC_CONNECTIONS, GRPC_STREAMS = 8, 4  # 32 requests in flight, as wrk's 32 connections

SHAPES = ("small", "browser", "grpc")


# 32 members in 415 bytes: the most W3C allows (32 members, 512 bytes).
FULL_TRACESTATE = ",".join(f"k{i:02d}=v{i:02d}abcdef" for i in range(32))


def with_tracestate(case):
    """Cases (and variants labelled `...+tracestate`) whose requests also carry a full tracestate."""
    return case == "tracestate" or case.endswith("+tracestate")


def shape_headers(shape, case=""):
    headers = [f"traceparent: {SAMPLED_TRACEPARENT if limit_of(case) == 'none-zipkin' else TRACEPARENT}"]
    if with_tracestate(case):
        headers.append(f"tracestate: {FULL_TRACESTATE}")
    if shape == "browser":
        headers += BROWSER_HEADERS
    elif shape == "grpc":
        headers += GRPC_HEADERS
    return headers


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


ALL_FORMATS = {"propagate": ["tracecontext", "b3", "b3multi", "jaeger", "datadog", "xray", "ottrace"]}
# The deployments' plugin configurations, as envoy/envoy-network-*.yaml ship them: the
# network filter's, and (position, the HTTP filter's) per deployment.
DEPLOY_NETWORK = {"position": "network", "tracer": "zipkin"}
DEPLOY_HTTP = {
    "deploy2": ("network+downstream", {}),
    "deploy3": ("network+upstream", {"position": "upstream", "tracer": "zipkin"}),
}
# The deployment cases: each with its no-op floor, both with and without Zipkin.
DEPLOY_CASES = ("deploy2", "deploy3", "deploy2-zipkin", "deploy3-zipkin")

# Each case's floor: the no-op module at the same place (for a no-op deployment, its limit).
FLOOR = {
    "noop-upstream": "none", "noop-network": "none",
    "upstream": "noop-upstream", "network": "noop-network", "network-zipkin": "noop-network",
    "deploy2": "noop-deploy2", "deploy3": "noop-deploy3", "noop-deploy2": "none", "noop-deploy3": "none",
    "none-zipkin": "none", "deploy2-zipkin": "noop-deploy2-zipkin", "deploy3-zipkin": "noop-deploy3-zipkin",
    "noop-deploy2-zipkin": "none-zipkin", "noop-deploy3-zipkin": "none-zipkin",
}


def limit_of(case):
    """The router alone under the case's tracer."""
    return "none-zipkin" if case in DEPLOY_LISTENER_CASES and case.endswith("-zipkin") else "none"


def deploy_listener(case, tracejoin_wasm, noop_wasm):
    """A deployment case's listener: deploy2/deploy3, `noop-` for the no-op module in the
    same places, `-zipkin` for Envoy's Zipkin tracer."""
    name = case.removesuffix("-zipkin")
    tracer = "none" if name == case else "zipkin"
    if name == "none":
        return render_listener(tracer)
    deploy = name.removeprefix("noop-")
    position, http_config = DEPLOY_HTTP[deploy]
    if name == deploy:
        return render_listener(tracer, position, tracejoin_wasm, http_config, network_config=DEPLOY_NETWORK)
    listener = render_listener(tracer, position, noop_wasm, None, network_config="network")
    # The no-op HTTP filter's configuration is empty, as in noop-wasm and noop-upstream.
    http_filters = listener["filter_chains"][0]["filters"][-1]["typed_config"]["http_filters"]
    if deploy == "deploy2":
        http_filters[0] = wasm_filter(noop_wasm, "")
    else:
        http_filters[-1]["typed_config"]["upstream_http_filters"][0] = wasm_filter(noop_wasm, "")
    return listener


def case_config(case, backend_port, tracejoin_wasm, noop_wasm, variants):
    if case in DEPLOY_LISTENER_CASES:
        return render_bootstrap([deploy_listener(case, tracejoin_wasm, noop_wasm)], backend_port)
    if case in ("tracejoin", "tracestate"):
        listener = render_listener("none", "downstream", tracejoin_wasm, {})
    elif case in variants and case.startswith("network"):
        # A variant labelled network... runs in the network position, beside `network`.
        listener = render_listener("none", "network", variants[case], {"position": "network"})
    elif case in variants:
        listener = render_listener("none", "downstream", variants[case], {})
    elif case == "upstream":
        listener = render_listener("none", "upstream", tracejoin_wasm, {"position": "upstream"})
    elif case == "noop-upstream":
        listener = render_listener("none", "upstream", noop_wasm, None)
        router = listener["filter_chains"][0]["filters"][-1]["typed_config"]["http_filters"][-1]
        router["typed_config"]["upstream_http_filters"][0] = wasm_filter(noop_wasm, "")
    elif case == "all-formats":
        listener = render_listener("none", "downstream", tracejoin_wasm, ALL_FORMATS)
    elif case == "network":
        listener = render_listener("none", "network", tracejoin_wasm, {"position": "network"})
    elif case == "network-zipkin":
        listener = render_listener("none", "network", tracejoin_wasm, {"position": "network", "tracer": "zipkin"})
    else:
        listener = render_listener("none")
    if case == "noop-network":
        listener["filter_chains"][0]["filters"].insert(0, network_wasm_filter(noop_wasm, "network"))
    filters = listener["filter_chains"][0]["filters"][-1]["typed_config"]["http_filters"]
    noop_mode = {"noop-wasm": "", "read-headers": "read-headers", "read-write": "read-write", "targeted": "targeted:21"}
    if case in noop_mode:
        filters.insert(0, wasm_filter(noop_wasm, noop_mode[case]))
    elif case.startswith("targeted:"):
        filters.insert(0, wasm_filter(noop_wasm, case))
    elif case == "lua":
        filters.insert(0, lua_filter())
    return render_bootstrap([listener], backend_port)


DEPLOY_LISTENER_CASES = (
    "noop-deploy2", "deploy2", "noop-deploy3", "deploy3",
    "none-zipkin", "noop-deploy2-zipkin", "deploy2-zipkin", "noop-deploy3-zipkin", "deploy3-zipkin",
)
CASES = (
    "none", "noop-wasm", "read-headers", "read-write", "targeted", "tracejoin", "all-formats", "tracestate",
    "noop-upstream", "upstream", "lua", "noop-network", "network", "network-zipkin",
    *DEPLOY_LISTENER_CASES,
)
ALWAYS = ("none", "noop-wasm")
UPLOAD_CASES = ("none", "noop-network", "network")


def select_cases(only, variants):
    """The cases a run measures: every case, or `only` (comma-separated, `targeted:N` too)
    besides the limit and the floor; then the variants."""
    if only:
        chosen = only.split(",")
        cases = ALWAYS + tuple(c for c in CASES if c in chosen and c not in ALWAYS)
        cases += tuple(c for c in chosen if c.startswith("targeted:"))
    else:
        cases = CASES
    return cases + tuple(variants)
UPLOAD_BYTES = 1 << 20
# wrk: POST a 1 MiB body with the W3C app's traceparent.
UPLOAD_SCRIPT = f"""
wrk.method = "POST"
wrk.body = string.rep("x", {UPLOAD_BYTES})
wrk.headers["traceparent"] = "{TRACEPARENT}"
"""

# The goals, each case against its floor (the no-op module at the same place; the floor's
# figure over the case's), per shape: the default path and the upstream position >= 0.88 on
# the small request and >= 0.90 on the browser-like one; all formats >= 0.80; the network
# position >= 0.93 and >= 0.90, and >= 0.85 rewriting a gRPC call's header block.
GOALS = {
    "tracejoin": {"small": 0.88, "browser": 0.90},
    "upstream": {"small": 0.88, "browser": 0.90},
    "all-formats": {"small": 0.80, "browser": 0.80, "grpc": 0.80},
    "network": {"small": 0.93, "browser": 0.90},
    "network-zipkin": {"small": 0.93, "browser": 0.90, "grpc": 0.85},
}
# The cases reported against the goals (tracestate has none of its own: shown beside them).
TARGET_CASES = ("tracejoin", "all-formats", "tracestate", "upstream", "network", "network-zipkin")
# tracejoin's own work and its counters over the part of the default job the ABI makes
# unavoidable (`read-write`: the no-op module reading the header map and writing one
# header), instructions per request.
OWN_WORK_GOAL = 4000
# The network position's instructions per byte of a request head, over its floor's.
PER_HEAD_BYTE_GOAL = 10
# tracejoin.wasm after wasm-opt, bytes.
SIZE_GOAL = 200_000
DEPLOY_HEADING = (
    "Deployments, no goal of their own beyond the positions': each against the no-op module in the "
    "same places and against the router alone under the same tracer"
)
# What the report's first line says of the tracer.
TRACED = "the *-zipkin deployment cases: Envoy's Zipkin tracer at 100%"


def target_of(shape, case):
    return GOALS.get(case, {}).get(shape)


def verdict(x, goal):
    """` (goal >= G: met)`, or nothing where the case has no goal in that shape."""
    if goal is None:
        return ""
    return f" (goal >= {goal:.2f}: {'met' if x >= goal else 'NOT met'})"


def browser_extra_bytes():
    """How many bytes the browser-like head has over the small one (the same request line
    and first field)."""
    return sum(len(h) + 2 for h in BROWSER_HEADERS)


def median_round(rounds):
    """The round with the median requests/s (its latencies go with it)."""
    ordered = sorted(rounds, key=lambda r: r["rps"])
    return ordered[len(ordered) // 2]


def wasm_stats(envoy):
    return {k: v for k, v in envoy.stats("wasm").items() if v}


def drive(envoy, case, shape, duration, connections, body):
    """One run; besides what the load tool reports, the CPU time the case's Envoy spent per
    request (its own process: what wrk, the backend and other work on the machine use is not
    in it, so it varies much less between rounds than requests/s does)."""
    before = cpu_seconds(envoy.proc.pid)
    if shape == "grpc":
        result = run_h2load(envoy.port, shape_headers(shape, case), duration, GRPC_CONNECTIONS, GRPC_STREAMS, body, GRPC_PATH)
    else:
        result = run_wrk(envoy.port, shape_headers(shape, case), duration, connections)
    result["cpu_us"] = (cpu_seconds(envoy.proc.pid) - before) * 1e6 / max(result["requests"], 1)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracejoin", required=True, help="tracejoin .wasm (after wasm-opt)")
    parser.add_argument("--tracejoin-raw", help="the same module as cargo built it (for its size)")
    parser.add_argument("--noop", required=True, help="the no-op filter .wasm")
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_SECONDS", 5)))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 5)))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", default=str(BUILD / "bench.md"))
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--only", help="comma-separated cases to run besides none and noop-wasm "
                        "(also targeted:N, the first N names asked one by one)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated request shapes")
    parser.add_argument("--no-uploads", action="store_true")
    args = parser.parse_args()
    variants = dict(v.split("=", 1) for v in args.variant)
    cases = select_cases(args.only, variants)
    shapes = tuple(s for s in SHAPES if s in args.shapes.split(","))
    body = BUILD / "bench-grpc-message.bin"
    body.parent.mkdir(parents=True, exist_ok=True)
    body.write_bytes(GRPC_MESSAGE)
    runs = [(shape, case) for shape in shapes for case in cases]

    with Envoy(backend_config(), component_log_level="wasm:warning") as backend:
        envoys = {}
        try:
            for case in cases:
                envoys[case] = Envoy(
                    case_config(case, backend.port, args.tracejoin, args.noop, variants),
                    component_log_level="wasm:warning",
                ).__enter__()
            rss_before = {case: rss_kib(e.proc.pid) for case, e in envoys.items()}
            for shape, case in runs:  # warm-up: connections, JIT
                drive(envoys[case], case, shape, 1, args.connections, str(body))
            results = {run: [] for run in runs}
            for r in range(args.rounds):
                order = runs[r % len(runs):] + runs[: r % len(runs)]
                for shape, case in order:
                    results[shape, case].append(drive(envoys[case], case, shape, args.duration, args.connections, str(body)))
                    print(f"round {r + 1} {shape} {case}: {results[shape, case][-1]['rps']:.0f} req/s", file=sys.stderr, flush=True)
            uploads = {}
            upload_cases = [c for c in UPLOAD_CASES if c in envoys] if not args.no_uploads else []
            if upload_cases:
                script = BUILD / "bench-upload.lua"
                script.write_text(UPLOAD_SCRIPT)
                uploads = {case: [] for case in upload_cases}
                for r in range(args.rounds):
                    order = upload_cases[r % len(upload_cases):] + upload_cases[: r % len(upload_cases)]
                    for case in order:
                        uploads[case].append(run_wrk(envoys[case].port, [], args.duration, 8, script=str(script)))
                        print(f"upload round {r + 1} {case}: {uploads[case][-1]['rps']:.0f} req/s", file=sys.stderr, flush=True)
            report = {
                "runs": {
                    f"{shape}/{case}": {
                        "median": median_round(rounds),
                        "rounds": [x["rps"] for x in rounds],
                        "cpu_us": [x["cpu_us"] for x in rounds],
                        "non2xx": sum(x["non2xx"] for x in rounds),
                        "errors": [x["errors"] for x in rounds if x["errors"]],
                    }
                    for (shape, case), rounds in results.items()
                },
                "envoys": {
                    case: {
                        "rss_kib": rss_kib(envoy.proc.pid),
                        "rss_before_kib": rss_before[case],
                        "heap": envoy.stats("server.memory_allocated").get("server.memory_allocated", 0),
                        "wasm": wasm_stats(envoy),
                        "tracejoin": {k: v for k, v in envoy.stats("tracejoin").items() if v},
                        "5xx": envoy.stats("downstream_rq_5xx").get("http.ingress.downstream_rq_5xx", 0),
                    }
                    for case, envoy in envoys.items()
                },
                "uploads": {case: {"median": median_round(r), "rounds": [x["rps"] for x in r]} for case, r in uploads.items()},
            }
        finally:
            for envoy in envoys.values():
                envoy.__exit__(None, None, None)

    text = render(report, args, shapes, cases)
    Path(args.out).write_text(text)
    with open(Path(args.out).with_suffix(".json"), "w") as f:
        json.dump(report, f, indent=1)
    print(text)


# Rounds of one case further apart than this (relative to their median) mean a disturbed run.
NOISY_SPREAD = 0.10


def spread(rounds):
    ordered = sorted(rounds)
    return (ordered[-1] - ordered[0]) / ordered[len(ordered) // 2]


def ratio(report, shape, case, against):
    """Throughput against another case: the median of per-round ratios (rounds are
    interleaved, so each pair ran close in time)."""
    a = report["runs"][f"{shape}/{case}"]["rounds"]
    b = report["runs"][f"{shape}/{against}"]["rounds"]
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def cpu_ratio(report, shape, case, against):
    """The same by Envoy CPU per request: `against`'s cost over this case's (what the
    throughput ratio is when Envoy's one worker is the limit)."""
    a = report["runs"][f"{shape}/{case}"]["cpu_us"]
    b = report["runs"][f"{shape}/{against}"]["cpu_us"]
    return statistics.median(y / x for x, y in zip(a, b, strict=True))


def floor_of(case):
    # Variants labelled network... run in the network position: the no-op module there.
    return FLOOR.get(case, "noop-network" if case.startswith("network") else "noop-wasm")


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


def render(report, args, shapes, cases):
    runs = report["runs"]
    lines = [
        f"Envoy {envoy_version()} (one worker), no tracer ({TRACED}); wrk -t1 -c{args.connections} (HTTP/1.1) or "
        f"h2load -t1 -c{GRPC_CONNECTIONS} -m{GRPC_STREAMS} (HTTP/2), {args.duration} s per run, "
        f"{args.rounds} interleaved rounds; ratios are medians of per-round ratios; {machine()}.",
    ]
    for shape in shapes:
        latency = "mean ms | -" if shape == "grpc" else "p50 ms | p99 ms"
        lines += [
            "",
            f"**{shape}** ({len(shape_headers(shape))} headers sent besides the request line"
            f"{' and pseudo-headers' if shape == 'grpc' else ''})",
            "",
            f"| case | requests/s | {latency} | vs none | vs its floor | Envoy CPU µs/request | vs its floor by CPU "
            "| rounds (req/s) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for case in cases:
            r = runs[f"{shape}/{case}"]
            m = r["median"]
            floor = floor_of(case)
            has_floor = case not in ("none", floor) and floor in cases
            vs_floor = f"{ratio(report, shape, case, floor):.3f} ({floor})" if has_floor else "-"
            vs_floor_cpu = f"{cpu_ratio(report, shape, case, floor):.3f}" if has_floor else "-"
            p99 = f"{m['p99']:.3f}" if m["p99"] is not None else "-"
            lines.append(
                f"| {case} | {m['rps']:.0f} | {m['p50']:.3f} | {p99} | {ratio(report, shape, case, 'none'):.3f} | "
                f"{vs_floor} | {statistics.median(r['cpu_us']):.1f} | {vs_floor_cpu} | "
                f"{', '.join(f'{x:.0f}' for x in r['rounds'])} |"
            )
    targeted = any(case in cases for case in TARGET_CASES)
    if targeted:
        lines += [
            "",
            "Targets: tracejoin against the no-op filter at the same place, and ahead of the Lua filter; "
            "each figure is throughput / Envoy CPU per request, judged by CPU (throughput moves with "
            "whatever else the machine runs):",
        ]
    for shape in shapes if targeted else ():
        parts = []
        for case in TARGET_CASES:
            if case not in cases or floor_of(case) not in cases:
                continue
            x, c = ratio(report, shape, case, floor_of(case)), cpu_ratio(report, shape, case, floor_of(case))
            parts.append(f"{case} {x:.3f} / {c:.3f}{verdict(c, target_of(shape, case))}")
        lua = ""
        if "lua" in cases and "tracejoin" in cases:
            x, c = ratio(report, shape, "tracejoin", "lua"), cpu_ratio(report, shape, "tracejoin", "lua")
            lua = f"; tracejoin against lua {x:.3f} / {c:.3f} ({'ahead' if c > 1 else 'NOT ahead'})"
        lines.append(f"- {shape}: " + ", ".join(parts) + lua)
    deploys = [c for c in DEPLOY_CASES if c in cases]
    if deploys:
        lines += ["", DEPLOY_HEADING + " (throughput / Envoy CPU per request):"]
        for shape in shapes:
            parts = [
                f"{case} {ratio(report, shape, case, against):.3f} / {cpu_ratio(report, shape, case, against):.3f} vs {against}"
                for case in deploys
                for against in (floor_of(case), limit_of(case))
                if against in cases
            ]
            lines.append(f"- {shape}: " + ", ".join(parts))
    size = os.path.getsize(args.tracejoin)
    sizes = [f"tracejoin.wasm {size} B after wasm-opt (goal <= {SIZE_GOAL}: {'met' if size <= SIZE_GOAL else 'NOT met'})"]
    if args.tracejoin_raw:
        sizes.append(f"{os.path.getsize(args.tracejoin_raw)} B from cargo")
    sizes.append(f"no-op filter {os.path.getsize(args.noop)} B")
    for variant in args.variant:
        label, path = variant.split("=", 1)
        sizes.append(f"{label} {os.path.getsize(path)} B")
    envoys = report["envoys"]
    # Any case running tracejoin reports it (the same module, the same size at rest).
    vm_memory = next((e["tracejoin"]["wasmcustom.tracejoin.vm.memory_bytes"] for e in envoys.values() if "wasmcustom.tracejoin.vm.memory_bytes" in e["tracejoin"]), None)
    lines += [
        "",
        "Sizes: " + ", ".join(sizes) + ".",
        f"tracejoin VM linear memory (gauge tracejoin.vm.memory_bytes): {vm_memory} B." if vm_memory else "tracejoin VM linear memory: not reported.",
        "Envoy RSS MiB after the run: " + ", ".join(f"{c} {envoys[c]['rss_kib'] / 1024:.1f}" for c in cases) + ".",
        "5xx per case: " + ", ".join(f"{c} {envoys[c]['5xx']}" for c in cases) + ".",
    ]
    failed = [k for k, r in runs.items() if r["non2xx"] or r["errors"]]
    if failed:
        lines.append("WARNING: non-2xx answers or errors in " + ", ".join(failed) + ": those figures are not comparable.")
    if report["uploads"]:
        lines += [
            "",
            f"Uploads: {UPLOAD_BYTES >> 20} MiB POSTs, wrk -t1 -c8 -d{args.duration}s, median of {args.rounds} rounds.",
            "",
            "| case | requests/s | MiB/s | vs none | rounds (req/s) |",
            "|---|---|---|---|---|",
        ]
        ups = report["uploads"]
        up_base = ups["none"]["median"]["rps"] if "none" in ups else None
        for c, u in ups.items():
            rps = u["median"]["rps"]
            vs = f"{rps / up_base:.3f}" if up_base else "-"
            lines.append(f"| {c} | {rps:.1f} | {rps * UPLOAD_BYTES / (1 << 20):.0f} | {vs} | {', '.join(f'{x:.1f}' for x in u['rounds'])} |")
    noisy = [k for k, r in runs.items() if spread(r["rounds"]) > NOISY_SPREAD]
    if noisy:
        lines.append(
            f"WARNING: rounds differ by more than {NOISY_SPREAD:.0%} for {', '.join(noisy)}: something else "
            "used the CPU; read those ratios with care, or run again on a quiet machine."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
