"""The shipped JSON Schema agrees with what the filter accepts and rejects at load."""

import json

import jsonschema
import pytest
from test_envoy import BAD_CONFIGS

from tracejoin_tools.common import ROOT
from tracejoin_tools.envoy import localize

SCHEMA = json.loads((ROOT / "schema" / "tracejoin-config.schema.json").read_text())

GOOD = [
    {},
    {"position": "upstream", "tracer": "opentelemetry"},
    {"position": "upstream", "tracer": "datadog", "trust": "resample"},
    {"tracer": "none", "trust": "restart", "sampling_ratio": 0.1},
    {"propagate": ["tracecontext", "b3", "b3multi", "jaeger"], "extract": ["jaeger"], "bridge": False},
    {"response_header": "x-trace-id", "traceresponse": True},
]

# Rejections the schema cannot express: JSON syntax, and the cross-field trust rule.
SCHEMA_BLIND = {"not-json", "trust-downstream-zipkin"}


@pytest.mark.parametrize("config", GOOD, ids=[json.dumps(c) for c in GOOD])
def test_good_configs_validate(config):
    jsonschema.validate(config, SCHEMA)


@pytest.mark.parametrize("case", sorted(set(BAD_CONFIGS) - SCHEMA_BLIND))
def test_bad_configs_fail_the_schema_too(case):
    config, _field = BAD_CONFIGS[case]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, SCHEMA)


def test_shipped_plugin_configs_validate():
    import yaml

    for name in ("envoy-downstream.yaml", "envoy-upstream.yaml"):
        text = (ROOT / "envoy" / name).read_text()
        config = yaml.safe_load(text)
        values = [n["configuration"]["value"] for n in localize._walk(config) if n.get("name") == "tracejoin" and "configuration" in n]
        assert values, name
        for value in values:
            jsonschema.validate(json.loads(value), SCHEMA)

