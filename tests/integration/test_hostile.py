"""Hostile input through a real Envoy 1.40 with tracejoin: the whole corpus of
tracejoin_tools.hostile (malformed and adversarial header sets, every category) in
seven scenarios: downstream with no tracer, upstream with Envoy's Zipkin tracer, downstream
with Envoy's OpenTelemetry tracer, the network filter in front of a downstream one with
each of those tracers (a connection per case there), and upstream of, and in front of and
behind, Envoy's Datadog tracer.

For each: no 5xx; exactly the requests the corpus expects Envoy's HTTP/1 codec to refuse are
refused, with a 4xx from Envoy and no upstream request; every request that reached the echo
upstream carries well-formed trace headers without control characters and one consistent
trace; no wasm VM failed (stats and log); tracejoin's own counters moved; Envoy still
answers a plain request at the end. An answer showing a known symptom
(`tracejoin_tools.hostile.KNOWN`: Envoy's own behaviour) has only that header left out of the checks. `test_vm_failure_is_detected` proves that the
VM-failure checks can fail, with a module that traps the way a Rust panic does.
"""

import shutil
import subprocess

import pytest

from tracejoin_tools import hostile as hc

CASES = hc.corpus()
CODEC_REJECTIONS = sum(case.expect is not None for case in CASES)
SCENARIO_IDS = [s.name for s in hc.SCENARIOS]

# Counters that must have moved in each scenario: proof that the filter ran on the corpus.
MOVED = {
    "downstream-none": ("context.generated", "invalid.tracestate"),
    "upstream-zipkin": ("continued_over_tracer", "invalid.tracestate"),
    # Envoy's OpenTelemetry tracer keeps the tracestate (tracejoin leaves it alone there).
    "downstream-opentelemetry": ("context.left_to_tracer",),
    "network+downstream-zipkin": ("network.rewritten", "invalid.tracestate", "network.left.ambiguous"),
    "network+downstream-opentelemetry": ("network.rewritten", "invalid.tracestate", "network.left.ambiguous"),
    "upstream-datadog": ("continued_over_tracer", "invalid.tracestate"),
    "network+downstream-datadog": ("network.rewritten", "invalid.tracestate", "network.left.ambiguous"),
}
# Upstream of Envoy's Datadog tracer every traceparent is the one it injected: an invalid one
# never reaches tracejoin there.
NEVER_SEEN = {"upstream-datadog": ("invalid.tracecontext",)}
MOVED_EVERYWHERE = (
    "conflict", "invalid.tracecontext", "invalid.b3", "invalid.b3multi", "invalid.jaeger",
    "invalid.datadog", "invalid.xray", "invalid.ottrace",
)


@pytest.fixture(scope="module")
def runs(upstream_port, wasm):
    """Each scenario's run of the whole corpus, once per module."""
    done = {}

    def run(scenario):
        if scenario.name not in done:
            done[scenario.name] = hc.run_scenario(scenario, upstream_port, wasm, CASES)
        return done[scenario.name]

    return run


def test_corpus_covers_every_category_and_both_codec_limits():
    assert len(CASES) >= 1200
    assert {case.category for case in CASES} == set(hc.GENERATORS)
    assert [(c.category, c.name, c.head()) for c in CASES] == [(c.category, c.name, c.head()) for c in hc.corpus()]
    expected = {case.expect for case in CASES}
    assert expected == {None, 400, 431}
    # Right under and right over Envoy's defaults: 100 header fields, 60 KiB of head.
    by_name = {(c.category, c.name): c for c in CASES}
    assert by_name[("header-count", "filler-100")].expect is None
    assert by_name[("header-count", "filler-101")].expect == 431
    assert len(by_name[("header-size", "tracestate-head-61440")].head()) == hc.MAX_HEAD_BYTES
    assert by_name[("header-size", "tracestate-head-61440")].expect is None
    assert by_name[("header-size", "tracestate-head-61441")].expect == 431


@pytest.mark.parametrize("scenario", hc.SCENARIOS, ids=SCENARIO_IDS)
def test_hostile_corpus(runs, scenario):
    run = runs(scenario)
    results = run["results"]

    assert [(r.case.name, r.status) for r in results if r.status >= 500] == []
    assert run["delta"]["http.ingress.downstream_rq_5xx"] == 0
    # Envoy's codec refused exactly the expected requests, each with a 4xx of its own.
    assert run["delta"]["http.ingress.downstream_cx_protocol_error"] == CODEC_REJECTIONS
    assert run["delta"]["cluster.echo.upstream_rq_total"] == len(CASES) - CODEC_REJECTIONS
    refused = [r for r in results if not r.upstream_reached]
    assert len(refused) == CODEC_REJECTIONS
    assert all(400 <= r.status < 500 for r in refused)

    problems = [f"{r.case.category}/{r.case.name}: {p}" for r in results for p in hc.check(scenario, r)[0]]
    assert problems == [], f"{len(problems)} bad answers, the first: " + "\n".join(problems[:20])

    assert run["vm_failures"] == {}
    assert run["log_problems"] == []
    counters = run["counters"]
    assert counters.get("host_error", 0) == 0
    for name in MOVED_EVERYWHERE + MOVED[scenario.name]:
        if name in NEVER_SEEN.get(scenario.name, ()):
            continue
        assert counters.get(name, 0) > 0, f"tracejoin.{name} did not move: {counters}"

    assert run["alive"] and run["final_status"] == 200


# A proxy-wasm module that fails the way tracejoin would on a panic: its panic hook logs at
# critical level, then the VM traps.
TRAP_WAT = """
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "tracejoin panicked: deliberate trap")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $log (i32.const 5) (i32.const 16) (i32.const 35)))
    (unreachable))
)
"""


def test_vm_failure_is_detected(upstream_port, tmp_path):
    """The same run and checks with a module that traps on every request: the wasm stats,
    the log check and the 5xx check all catch it."""
    assembler = shutil.which("wasm-as")
    assert assembler, "wasm-as (binaryen, installed by `make setup`) is needed to build the trapping module"
    (tmp_path / "trap.wat").write_text(TRAP_WAT)
    subprocess.run([assembler, str(tmp_path / "trap.wat"), "-o", str(tmp_path / "trap.wasm")], check=True)
    run = hc.run_scenario(hc.SCENARIOS[0], upstream_port, str(tmp_path / "trap.wasm"), CASES[:20])
    assert run["vm_failures"], "no wasm stat moved"
    assert any("tracejoin panicked" in line for line in run["log_problems"]), run["log_problems"]
    assert any("proxy_on_request_headers failed" in line for line in run["log_problems"]), run["log_problems"]
    assert all(r.status == 503 for r in run["results"]) and run["delta"]["http.ingress.downstream_rq_5xx"] == 20

