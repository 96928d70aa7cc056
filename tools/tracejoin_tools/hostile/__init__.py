"""Hostile input for tracejoin through a real Envoy: a deterministic corpus (fixed seed) of
malformed and adversarial trace-header sets, each with a category (corpus.py, generators/);
the client that sends them byte for byte over kept-alive connections (client.py); the checks
every answer must pass (checks.py); the run through Envoy (runner.py); and a CLI that prints
a summary per category (report.py):

    python -m tracejoin_tools.hostile --wasm tracejoin.wasm

What the tests use is importable from here.
"""

from tracejoin_tools.hostile.cases import MAX_HEAD_BYTES, MAX_HEADERS, Case
from tracejoin_tools.hostile.checks import KNOWN, check
from tracejoin_tools.hostile.corpus import GENERATORS, SEED, corpus
from tracejoin_tools.hostile.runner import run_scenario
from tracejoin_tools.hostile.scenarios import SCENARIOS, Scenario

__all__ = ["GENERATORS", "KNOWN", "MAX_HEADERS", "MAX_HEAD_BYTES", "SCENARIOS", "SEED", "Case", "Scenario", "check", "corpus", "run_scenario"]
