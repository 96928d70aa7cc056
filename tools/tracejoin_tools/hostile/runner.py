"""Runs the corpus through one Envoy with tracejoin and gathers what the checks need: the
answers, Envoy's counters, signs of a failed VM, whether Envoy still serves."""

from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.vm_health import VM_CREATED, log_problems, vm_failures
from tracejoin_tools.hostile.cases import Case
from tracejoin_tools.hostile.client import Connection, send_all

# A VM that fails is replaced on the next request, so the failure shows in the wasm stats
# (tracejoin_tools.envoy.vm_health says which), not only as 503s.
FAILURE_POLICY = "FAIL_RELOAD"


def render(scenario, upstream_port, wasm):
    listener = envoy_harness.render_listener(
        scenario.tracer, scenario.position, wasm, scenario.plugin_config, failure_policy=FAILURE_POLICY
    )
    return envoy_harness.render_bootstrap([listener], upstream_port)


STAT_NAMES = ("http.ingress.downstream_cx_protocol_error", "http.ingress.downstream_rq_5xx", "cluster.echo.upstream_rq_total")


def run_scenario(scenario, upstream_port, wasm, cases):
    """Runs every case through one Envoy (tracejoin with `failure_policy: FAIL_RELOAD`) over
    a kept-alive connection; returns the results, the deltas of STAT_NAMES, the signs of a
    failed VM in stats and log, tracejoin's counters, and whether Envoy was still running and
    what it answered a plain request at the end."""
    with envoy_harness.Envoy(render(scenario, upstream_port, wasm)) as envoy:
        before = envoy.stats()
        results = send_all(envoy.port, cases, scenario.connection_per_case)
        after = envoy.stats()
        plain = Connection(envoy.port)
        try:
            final = plain.request(Case("", "plain").head())[0]
        finally:
            plain.close()
        alive = envoy.proc.poll() is None
        delta = {name: after.get(name, 0) - before.get(name, 0) for name in STAT_NAMES}
        counters = {k[len("wasmcustom.tracejoin."):]: v for k, v in after.items() if k.startswith("wasmcustom.tracejoin.")}
        return {
            "results": results,
            "delta": delta,
            "vm_failures": vm_failures(envoy.stats(), before.get(VM_CREATED)),
            "log_problems": log_problems(envoy.log()),
            "counters": counters,
            "final_status": final,
            "alive": alive,
        }
