"""Hostile input for tracejoin through a real Envoy.

The command line: runs the corpus through the Envoys of scenarios.py (tracejoin from
--wasm) and prints a summary per category, the VM and log checks, tracejoin's counters and
the first problems; exits 1 on any problem:

    python -m tracejoin_tools.hostile --wasm tracejoin.wasm
"""

import argparse
from collections import Counter, defaultdict
from pathlib import Path

from tracejoin_tools.envoy import echo_server
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.hostile.checks import check
from tracejoin_tools.hostile.corpus import GENERATORS, SEED, corpus
from tracejoin_tools.hostile.runner import run_scenario
from tracejoin_tools.hostile.scenarios import SCENARIOS


def summary(checked):
    """Rows per category from [(result, problems, known)]: sent, upstream reached, codec
    rejections by status, 5xx, answers with problems, answers with a known symptom."""
    rows = defaultdict(lambda: {"sent": 0, "reached": 0, "rejected": Counter(), "5xx": 0, "bad": 0, "known": 0})
    for result, problems, known in checked:
        row = rows[result.case.category]
        row["sent"] += 1
        row["reached"] += result.upstream_reached
        if 400 <= result.status < 500 and not result.upstream_reached:
            row["rejected"][result.status] += 1
        row["5xx"] += result.status >= 500
        row["bad"] += bool(problems)
        row["known"] += bool(known)
    return rows


def format_table(scenario, rows):
    lines = [f"== {scenario.name}: tracejoin {scenario.position}, tracer {scenario.tracer}",
             f"{'category':<27} {'sent':>5} {'reached':>8} {'codec rejected':<20} {'5xx':>4} {'malformed':>9} {'known':>5}"]
    total = {"sent": 0, "reached": 0, "rejected": Counter(), "5xx": 0, "bad": 0, "known": 0}
    for category in list(GENERATORS):
        row = rows.get(category)
        if not row:
            continue
        for key in total:
            total[key] += row[key]
        lines.append(_row(category, row))
    lines.append(_row("total", total))
    return "\n".join(lines)


def _row(label, row):
    rejected = ", ".join(f"{n}x{status}" for status, n in sorted(row["rejected"].items())) or "-"
    return f"{label:<27} {row['sent']:>5} {row['reached']:>8} {rejected:<20} {row['5xx']:>4} {row['bad']:>9} {row['known']:>5}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tracejoin_tools.hostile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--wasm", required=True, help="the tracejoin module")
    parser.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS], help="run only these (repeatable)")
    parser.add_argument("--show", type=int, default=5, help="problems to print per scenario")
    args = parser.parse_args(argv)
    cases = corpus()
    print(f"{len(cases)} header sets, seed {SEED}, Envoy {envoy_harness.envoy_version()}")
    server, upstream_port = echo_server.start()
    failed = False
    try:
        for scenario in SCENARIOS:
            if args.scenario and scenario.name not in args.scenario:
                continue
            run = run_scenario(scenario, upstream_port, str(Path(args.wasm).resolve()), cases)
            checked = [(r, *check(scenario, r)) for r in run["results"]]
            problems = [(r.case, p) for r, found, _ in checked for p in found]
            known = Counter(k.id for _, _, hits in checked for k in hits)
            print()
            print(format_table(scenario, summary(checked)))
            print(f"wasm VM failures: {run['vm_failures'] or 'none'}; log problems: {len(run['log_problems'])}; "
                  f"Envoy alive: {run['alive']}, plain request: {run['final_status']}")
            print("tracejoin counters: " + ", ".join(f"{k}={v}" for k, v in sorted(run["counters"].items()) if v))
            if known:
                print("known (left out of the checks): " + ", ".join(f"{k} x{n}" for k, n in sorted(known.items())))
            for case, problem in problems[: args.show]:
                print(f"  {case.category}/{case.name}: {problem}")
            if len(problems) > args.show:
                print(f"  ... {len(problems) - args.show} more")
            failed |= bool(problems or run["vm_failures"] or run["log_problems"] or not run["alive"])
    finally:
        server.shutdown()
    return 1 if failed else 0
