"""Signs that a wasm VM in Envoy failed, from its stats and its log (the hostile corpus and
the soak both fail on them).

Envoy 1.40's wasm stats. With `failure_policy: FAIL_RELOAD` a VM that fails (a trap, a
panic) is replaced on the next request: `wasm.<plugin>.vm_reload*` count that and
`wasm.envoy.wasm.runtime.v8.created` one more VM. Under FAIL_CLOSED and FAIL_OPEN no wasm
stat moves when the VM fails (measured with a module that traps): the failing request gets
a 503 and Envoy logs `Function: proxy_on_request_headers failed: ...` at error level.
"""

import re

VM_CREATED = "wasm.envoy.wasm.runtime.v8.created"
VM_RELOAD = re.compile(r"^wasm\.[^.]+\.vm_reload")
LOG_PROBLEM = re.compile(r"panicked|\]\[critical\]|\]\[error\]\[wasm\]|Wasm VM failed|wasm_vm\.cc")


def vm_failures(stats, created_at_start):
    """Signs in Envoy's stats that a wasm VM failed: {} when there are none."""
    signs = {name: value for name, value in stats.items() if VM_RELOAD.match(name) and value}
    if stats.get(VM_CREATED) != created_at_start:
        signs[VM_CREATED] = f"{created_at_start} -> {stats.get(VM_CREATED)}"
    return signs


def log_problems(log):
    """Lines of Envoy's log that tell of a failing plugin (a panic, a trap, a critical line)."""
    return [line for line in log.splitlines() if LOG_PROBLEM.search(line)]
