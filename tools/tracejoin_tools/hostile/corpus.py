"""The whole hostile corpus: every category's generator, in a fixed order, from a fixed seed."""

import random
from collections import Counter

from tracejoin_tools.hostile.cases import Case, make_case
from tracejoin_tools.hostile.generators.b3 import b3_multi_partial, b3_single
from tracejoin_tools.hostile.generators.characters import control_chars, obs_text
from tracejoin_tools.hostile.generators.combined import baggage, mixed_disagree, repeated_headers
from tracejoin_tools.hostile.generators.fuzz import fuzz
from tracejoin_tools.hostile.generators.head import header_count, header_name_case, header_size, raw_framing
from tracejoin_tools.hostile.generators.jaeger import jaeger
from tracejoin_tools.hostile.generators.traceparent import traceparent_flags, traceparent_malformed, traceparent_version
from tracejoin_tools.hostile.generators.tracestate import (
    tracestate_duplicate_keys,
    tracestate_invalid,
    tracestate_members,
    tracestate_oversized,
    tracestate_repeated,
)
from tracejoin_tools.hostile.generators.vendors import datadog, ottrace, xray

SEED = 20261125


GENERATORS = {
    "tracestate-members": tracestate_members,
    "tracestate-oversized": tracestate_oversized,
    "tracestate-duplicate-keys": tracestate_duplicate_keys,
    "tracestate-invalid": tracestate_invalid,
    "tracestate-repeated": tracestate_repeated,
    "traceparent-malformed": traceparent_malformed,
    "traceparent-version": traceparent_version,
    "traceparent-flags": traceparent_flags,
    "b3-single": b3_single,
    "b3-multi-partial": b3_multi_partial,
    "jaeger": jaeger,
    "datadog": datadog,
    "xray": xray,
    "ottrace": ottrace,
    "repeated-headers": repeated_headers,
    "mixed-disagree": mixed_disagree,
    "control-chars": control_chars,
    "obs-text": obs_text,
    "header-name-case": header_name_case,
    "header-count": header_count,
    "header-size": header_size,
    "raw-framing": raw_framing,
    "baggage": baggage,
    "fuzz": None,
}


def corpus(seed=SEED):
    """Every case, in a fixed order; the same seed gives the same bytes."""
    rng = random.Random(seed)
    cases = []
    for category, generate in GENERATORS.items():
        produced = fuzz(rng) if generate is None else generate()
        for item in produced:
            cases.append(item if isinstance(item, Case) else make_case(category, *item))
    names = Counter((c.category, c.name) for c in cases)
    duplicates = [n for n, k in names.items() if k > 1]
    assert not duplicates, f"duplicate case names: {duplicates}"
    return cases
