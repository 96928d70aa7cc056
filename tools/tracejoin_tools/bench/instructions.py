"""Instructions per request, counted by valgrind's callgrind: the figure of `make bench` that
does not move with the rest of the machine.

On a shared machine requests/s and even a process's CPU time per request vary by 20% or
more between rounds, more than the differences the targets are about. callgrind counts the
instructions Envoy executes (its own code, V8's compiled wasm, the host calls), the same
count for the same binary and inputs. Each case's Envoy runs under callgrind with
instrumentation off until it is warm; then, for each request shape, instrumentation is on
for exactly `--requests` requests (h2load -n, one connection) and the count is dumped. An
instruction is not a nanosecond (a cache miss costs more than an add), so this sits beside
the timed runs of `compare`, not in their place.

    python -m tracejoin_tools.bench.instructions --tracejoin tracejoin.wasm --noop noop.wasm
"""

import argparse
import functools
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tracejoin_tools.bench.compare import (
    DEPLOY_CASES,
    DEPLOY_HEADING,
    GRPC_MESSAGE,
    GRPC_PATH,
    OWN_WORK_GOAL,
    PER_HEAD_BYTE_GOAL,
    SHAPES,
    SIZE_GOAL,
    TARGET_CASES,
    TRACED,
    browser_extra_bytes,
    case_config,
    floor_of,
    limit_of,
    select_cases,
    shape_headers,
    target_of,
    verdict,
)
from tracejoin_tools.bench.load import backend_config
from tracejoin_tools.common import BUILD, LOOPBACK
from tracejoin_tools.envoy.harness import Envoy, envoy_version


def h2load(port, shape, case, requests, body):
    """Exactly `requests` requests on one connection (HTTP/1.1 for small and browser)."""
    cmd = ["h2load", "-t1", "-c1", "-m1", "-n", str(requests)]
    path = "/bench"
    if shape == "grpc":
        cmd += ["-d", body]
        path = GRPC_PATH
    else:
        cmd.append("--h1")
    for h in shape_headers(shape, case):
        cmd += ["-H", h]
    cmd.append(f"http://{LOOPBACK}:{port}{path}")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600).stdout
    if f"{requests} succeeded" not in out:
        raise RuntimeError(f"h2load: not every request succeeded:\n{out}")


def vgdb_prefix(outdir):
    # callgrind_control reaches a process through vgdb's pipes: one prefix per run keeps it
    # from the other runs on the machine (without a pid it acts on every process it finds,
    # and another benchmark's Envoy would be zeroed, switched and dumped by this one).
    return f"--vgdb-prefix={outdir}/vgdb-pipe"


def callgrind_control(outdir, pid, *args):
    subprocess.run(["callgrind_control", vgdb_prefix(outdir), *args, str(pid)], check=True, capture_output=True, timeout=120)


def dumped_total(outdir, before):
    """The instruction total of the dump written since `before` (the set of earlier files)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [f for f in glob.glob(os.path.join(outdir, "callgrind.out.*")) if f not in before]
        for path in new:
            with open(path) as f:
                totals = [line for line in f if line.startswith("totals:")]
            if totals:
                return int(totals[-1].split()[1]), path
        time.sleep(0.2)
    raise RuntimeError("callgrind wrote no dump")


def callgrind_wrapper(outdir):
    """Envoy under callgrind, instrumentation off until `counted` turns it on."""
    return [
        "valgrind", "--tool=callgrind", "--trace-children=yes", "--smc-check=all-non-file",
        "--instr-atstart=no", f"--callgrind-out-file={outdir}/callgrind.out.%p", vgdb_prefix(outdir),
    ]


def counted(outdir, pid, run):
    """The instructions Envoy (process `pid`, under callgrind) executed while `run()` ran."""
    before = set(glob.glob(os.path.join(outdir, "callgrind.out.*")))
    callgrind_control(outdir, pid, "-z")
    callgrind_control(outdir, pid, "-i", "on")
    run()
    callgrind_control(outdir, pid, "-i", "off")
    callgrind_control(outdir, pid, "-d")
    total, _ = dumped_total(outdir, before)
    if not total:
        # Not a count: instrumentation was switched off before the run ended.
        raise RuntimeError(f"callgrind counted no instructions in process {pid}")
    return total


def measure(case, args, backend_port, body, variants):
    outdir = tempfile.mkdtemp(prefix="tracejoin-callgrind-")
    wrapper = callgrind_wrapper(outdir)
    config = case_config(case, backend_port, args.tracejoin, args.noop, variants)
    counts = {}
    try:
        counts = run_shapes(case, args, body, config, wrapper, outdir)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    return counts


def run_shapes(case, args, body, config, wrapper, outdir):
    counts = {}
    with Envoy(config, component_log_level="wasm:warning", wrapper=wrapper, ready_timeout=600) as envoy:
        for shape in args.shapes:
            h2load(envoy.port, shape, case, args.warmup, body)  # warm: connections, V8's tiers
            total = counted(outdir, envoy.proc.pid, functools.partial(h2load, envoy.port, shape, case, args.requests, body))
            counts[shape] = total / args.requests
            print(f"{case} {shape}: {counts[shape]:.0f} instructions/request", file=sys.stderr, flush=True)
    return counts


def absolute_goals(counts, args):
    """The goals in instructions rather than ratios: tracejoin's own work over the ABI part,
    the network position's cost per head byte, and the module's size."""
    lines = []
    for case, abi in (("tracejoin", "read-write"),):
        for shape in args.shapes:
            if case in counts and abi in counts:
                own = counts[case][shape] - counts[abi][shape]
                met = "met" if own <= OWN_WORK_GOAL else "NOT met"
                lines.append(
                    f"- {shape}: {case}'s own work and counters over the ABI part ({abi}): {own:,.0f} "
                    f"instructions/request (goal <= {OWN_WORK_GOAL:,}: {met})"
                )
    extra = browser_extra_bytes()
    for case in ("network", "network-zipkin"):
        floor = floor_of(case)
        if {"small", "browser"} <= set(args.shapes) and case in counts and floor in counts:
            grown = (counts[case]["browser"] - counts[case]["small"]) - (counts[floor]["browser"] - counts[floor]["small"])
            per_byte = grown / extra
            met = "met" if per_byte <= PER_HEAD_BYTE_GOAL else "NOT met"
            lines.append(
                f"- {case}: {per_byte:.1f} instructions per head byte over {floor}'s (the browser-like head's "
                f"{extra} bytes more than the small one's; goal <= {PER_HEAD_BYTE_GOAL}: {met})"
            )
    size = os.path.getsize(args.tracejoin)
    lines.append(f"- tracejoin.wasm: {size:,} B (goal <= {SIZE_GOAL:,}: {'met' if size <= SIZE_GOAL else 'NOT met'})")
    return lines


def render(counts, args, cases):
    lines = [
        f"Envoy {envoy_version()} (one worker), no tracer ({TRACED}), under valgrind --tool=callgrind: instructions "
        f"Envoy executed per request over {args.requests} requests on one connection (h2load; HTTP/1.1 "
        f"for small and browser, HTTP/2 for grpc), after {args.warmup} requests of warm-up.",
        "",
        "| case | " + " | ".join(f"{s} instr/request | {s} vs its floor" for s in args.shapes) + " |",
        "|---|" + "---|---|" * len(args.shapes),
    ]
    for case in cases:
        cells = []
        for shape in args.shapes:
            n = counts[case][shape]
            floor = floor_of(case)
            vs = f"{counts[floor][shape] / n:.3f} ({floor})" if case not in ("none", floor) and floor in counts else "-"
            cells += [f"{n:,.0f}", vs]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    targeted = any(case in counts for case in TARGET_CASES)
    if targeted:
        lines += ["", "Against the targets (the floor's instructions over the case's; what the throughput ratio is "
                  "when instructions are what costs):"]
    for shape in args.shapes if targeted else ():
        parts = []
        for case in TARGET_CASES:
            if case in counts and floor_of(case) in counts:
                x = counts[floor_of(case)][shape] / counts[case][shape]
                parts.append(f"{case} {x:.3f}{verdict(x, target_of(shape, case))}")
        if "lua" in counts and "tracejoin" in counts:
            x = counts["lua"][shape] / counts["tracejoin"][shape]
            parts.append(f"tracejoin against lua {x:.3f} ({'ahead' if x > 1 else 'NOT ahead'})")
        lines.append(f"- {shape}: " + ", ".join(parts))
    lines += absolute_goals(counts, args)
    deploys = [c for c in DEPLOY_CASES if c in counts]
    if deploys:
        lines += ["", DEPLOY_HEADING + " (the other's instructions over the case's):"]
        for shape in args.shapes:
            parts = [
                f"{case} {counts[against][shape] / counts[case][shape]:.3f} vs {against}"
                for case in deploys
                for against in (floor_of(case), limit_of(case))
                if against in counts
            ]
            lines.append(f"- {shape}: " + ", ".join(parts))
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracejoin", required=True)
    parser.add_argument("--noop", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200, help="requests per shape before counting (V8 compiles "
                        "a function with its baseline compiler first and optimises it once it is hot)")
    parser.add_argument("--only", help="comma-separated cases besides none and noop-wasm")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=PATH")
    parser.add_argument("--out", default=str(BUILD / "bench-instructions.md"))
    args = parser.parse_args()
    args.shapes = [s for s in SHAPES if s in args.shapes.split(",")]
    variants = dict(v.split("=", 1) for v in args.variant)
    cases = select_cases(args.only, variants)
    body = BUILD / "bench-grpc-message.bin"
    body.parent.mkdir(parents=True, exist_ok=True)
    body.write_bytes(GRPC_MESSAGE)
    counts = {}
    with Envoy(backend_config(), component_log_level="wasm:warning") as backend:
        for case in cases:
            counts[case] = measure(case, args, backend.port, str(body), variants)
    text = render(counts, args, cases)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
