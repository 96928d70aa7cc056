"""Bad plugin configurations in a real Envoy (1.36 to 1.40): each corpus case (tests/corpus/bad-configs.json,
whose native half is src/config_corpus_tests.rs) is refused with a log line naming its field,
Envoy never crashes, and the listener that was serving keeps serving; a good configuration
pushed after a bad one takes over.

One Envoy takes every case: its listeners come from a file (LDS over `path_config_source`,
renamed into place for each update), so each bad configuration is a listener update to the
running Envoy. What Envoy 1.40 does when tracejoin's `on_configure` returns false inside an
LDS update, measured in both positions, the same with the plugin's `failure_policy` unset,
FAIL_OPEN (what the Istio kit sets; tested below) and FAIL_RELOAD (measured once): the policy
does not turn a plugin that fails to load into a filter that lets requests through.

- the plugin is created on the main thread while the update is applied; it fails, so the
  whole update is rejected: `listener_manager.lds.update_attempt` and
  `listener_manager.lds.update_rejected` go up by one, `update_success`,
  `lds.version_text`, `listener_modified` and `total_listeners_warming` do not move (no
  warming listener is ever created);
- the log shows, in order (error, then critical, then warning):
  `wasm log tracejoin tracejoin: invalid tracejoin config: field `sampling_ratio`: ...`,
  `Wasm VM failed Failed to configure base Wasm plugin`, `Plugin tracejoin failed to load`,
  `Plugin configured to fail closed failed to load` (also with FAIL_OPEN, on the main thread
  and again on the worker), `lds: listener 'main' config rejected: Unable to create Wasm
  plugin tracejoin` and `Filesystem config update rejected: Error adding/updating
  listener(s) main: Unable to create Wasm plugin tracejoin`;
- the listener keeps its port and its previous configuration, the filter in it stays active,
  and the VM created for the rejected plugin is destroyed (`wasm.envoy.wasm.runtime.v8.active`
  is back where it was; `.created` counts one more per rejection).

A good configuration pushed later is an in-place filter-chain update: `update_success`,
`listener_modified`, `listener_in_place_updated` and `total_filter_chains_draining` go up by
one, the port stays, and new connections get the new configuration.

At bootstrap instead (tests/integration/test_envoy.py), the same failure makes Envoy exit.
"""

import json
import time

import pytest

from tracejoin_tools.common import ROOT, S, T
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.harness import send

CORPUS = json.loads((ROOT / "tests" / "corpus" / "bad-configs.json").read_text())

B3 = [("b3", f"{T}-{S}-1")]
# Logged on every release measured (1.36, 1.38, 1.40); 1.40 also logs
# `lds: listener 'main' config rejected: ...`, 1.36 does not.
REJECTED = "Filesystem config update rejected: Error adding/updating listener(s) main: Unable to create Wasm plugin tracejoin"
# A crash (Envoy's fatal signal handler) or a Rust panic (the filter's panic hook).
CRASH_MARKS = ("Caught ", "Backtrace", "panicked")


def config_of(case):
    """The configuration bytes of a case, as src/config_corpus_tests.rs builds them."""
    if "config" in case:
        return case["config"]
    generated = case["config_generated"]
    return generated["prefix"] + generated["repeat"] * generated["times"] + generated["suffix"]


class LdsEnvoy:
    """One Envoy whose listener `main` (tracejoin at `position`, tracer none) comes from a
    file; `push` replaces the plugin configuration and returns Envoy's verdict."""

    def __init__(self, upstream_port, wasm, tmp_path, position, plugin_config, failure_policy=None):
        self.wasm, self.position, self.failure_policy = wasm, position, failure_policy
        self.lds = str(tmp_path / "lds.json")
        envoy_harness.write_lds(self.lds, [self._listener(plugin_config)], 1)
        self.envoy = envoy_harness.Envoy(envoy_harness.render_lds_config(upstream_port, self.lds))

    def _listener(self, plugin_config):
        return envoy_harness.render_listener(
            "none", self.position, self.wasm, plugin_config, failure_policy=self.failure_policy
        )

    def __enter__(self):
        self.envoy.__enter__()
        return self

    def __exit__(self, *exc):
        return self.envoy.__exit__(*exc)

    def push(self, plugin_config):
        return envoy_harness.update_listeners(self.envoy, self.lds, [self._listener(plugin_config)])

    def written(self):
        """The trace headers the upstream receives for a request carrying a `b3` header."""
        status, _, got = send(self.envoy.port, B3)
        assert status == 200, status
        return {name: value for name, value in got if name in ("traceparent", "b3", "x-b3-traceid")}


def wait_for_line(envoy, offset, needle, timeout=5):
    """The first log line after `offset` containing `needle` (Envoy's log is written by its
    own threads: poll, do not assume it is there when the stat moved)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in envoy.log()[offset:].splitlines() if needle in line]
        if lines or time.monotonic() > deadline:
            return lines[0] if lines else None
        time.sleep(0.01)


def serves_config_a(written):
    """Config A, the default propagate list: `traceparent` and `x-b3-*` written from the `b3`."""
    return written.get("traceparent") == f"00-{T}-{S}-01" and written.get("x-b3-traceid") == T


def serves_config_b(written):
    """Config B, `propagate: ["b3"]`: the `b3` continued, nothing else written."""
    return written.get("b3") == f"{T}-{S}-1" and "traceparent" not in written and "x-b3-traceid" not in written


@pytest.mark.parametrize("position", ["downstream", "upstream"])
def test_every_bad_config_is_refused_and_the_old_listener_keeps_serving(upstream_port, wasm, tmp_path, position):
    assert len(CORPUS) >= 40
    good = {"position": position, "tracer": "none"}
    with LdsEnvoy(upstream_port, wasm, tmp_path, position, good) as lds:
        envoy = lds.envoy
        port = envoy.port
        assert serves_config_a(lds.written())
        before = envoy.stats("^(listener_manager|wasm)\\.")
        failures = []
        for case in CORPUS:
            name, field = case["name"], case["field"]
            offset = len(envoy.log())
            accepted = lds.push(config_of(case))
            if accepted:
                failures.append(f"{name}: Envoy accepted the listener update")
                # The bad config is live now: put the good one back before going on.
                assert lds.push(good), envoy.log()[offset:]
                continue
            line = wait_for_line(envoy, offset, f"invalid tracejoin config: field `{field}`: ")
            if line is None:
                failures.append(f"{name}: no log line naming field `{field}`")
            elif case["reason_contains"] not in line:
                failures.append(f"{name}: {case['reason_contains']!r} not in {line[:300]!r}")
            if wait_for_line(envoy, offset, REJECTED) is None:
                failures.append(f"{name}: no rejection line")
            new_log = envoy.log()[offset:]
            assert envoy.proc.poll() is None, f"{name}: envoy exited:\n{new_log}"
            assert not [m for m in CRASH_MARKS if m in new_log], f"{name}:\n{new_log}"
            # The old listener, filter included, still serves, on the same port.
            assert serves_config_a(lds.written()), name
        assert not failures, "\n".join(failures)

        after = envoy.stats("^(listener_manager|wasm)\\.")
        rejected = after["listener_manager.lds.update_rejected"] - before.get("listener_manager.lds.update_rejected", 0)
        assert rejected == len(CORPUS)
        assert after["listener_manager.lds.update_success"] == before["listener_manager.lds.update_success"] == 1
        assert after["listener_manager.lds.version_text"] == "1"
        assert after.get("listener_manager.listener_modified", 0) == 0
        assert after.get("listener_manager.total_listeners_warming", 0) == 0
        # Every rejected plugin's VM is gone again.
        assert after["wasm.envoy.wasm.runtime.v8.active"] == before["wasm.envoy.wasm.runtime.v8.active"]
        assert after["wasm.envoy.wasm.runtime.v8.created"] >= before["wasm.envoy.wasm.runtime.v8.created"] + len(CORPUS)
        assert envoy.port == port == envoy._listener_port()


RELOADS = [(p, f) for p in ("downstream", "upstream") for f in (None, "FAIL_OPEN")]


@pytest.mark.parametrize("position,failure_policy", RELOADS, ids=[f"{p}-{f or 'default'}" for p, f in RELOADS])
def test_good_config_reloads_over_a_bad_one(upstream_port, wasm, tmp_path, position, failure_policy):
    config_a = {"position": position, "tracer": "none"}
    bad = {"position": position, "tracer": "none", "propagate": []}
    config_b = {"position": position, "tracer": "none", "propagate": ["b3"]}
    with LdsEnvoy(upstream_port, wasm, tmp_path, position, config_a, failure_policy) as lds:
        assert serves_config_a(lds.written())

        offset = len(lds.envoy.log())
        assert lds.push(bad) is False
        assert wait_for_line(lds.envoy, offset, "invalid tracejoin config: field `propagate`: must name at least one format")
        assert serves_config_a(lds.written())

        port = lds.envoy.port
        assert lds.push(config_b) is True
        stats = lds.envoy.stats("^listener_manager\\.")
        assert stats["listener_manager.listener_in_place_updated"] == 1
        assert stats["listener_manager.lds.update_rejected"] == 1
        assert lds.envoy._listener_port() == port
        assert serves_config_b(lds.written())

        # And a bad config over B leaves B serving.
        assert lds.push(bad) is False
        assert serves_config_b(lds.written())
        log = lds.envoy.log()
        assert not [m for m in CRASH_MARKS if m in log], log
