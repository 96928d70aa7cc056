"""The shipped JSON Schema refuses what the filter's loader refuses and accepts what it accepts,
held to both ways: the bad-config corpus (tests/corpus/bad-configs.json), the good configs below,
every plugin configuration shipped in envoy/ and istio/, and a generated set of field
combinations. The loader's verdict comes from `tracejoin check-config` (the same loader, natively)."""

import itertools
import json

import jsonschema
import pytest
import yaml
from cli_support import loader_accepts
from test_bad_configs import CORPUS, config_of

from tracejoin_tools.common import ROOT

SCHEMA = json.loads((ROOT / "schema" / "tracejoin-config.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

GOOD = [
    {},
    {"position": "upstream", "tracer": "opentelemetry"},
    {"position": "upstream", "tracer": "datadog", "trust": "resample"},
    {"tracer": "none", "trust": "restart", "sampling_ratio": 0.1},
    {"propagate": ["tracecontext", "b3", "b3multi", "jaeger"], "extract": ["jaeger"], "bridge": False},
    {"response_header": "x-trace-id", "traceresponse": True},
    {"position": "network", "tracer": "opentelemetry", "trust": "restart"},
    {"position": "network", "max_request_headers_kb": 96, "max_request_headers_count": 200,
     "per_connection_buffer_limit_bytes": 1048576, "request_headers_timeout_ms": 5000},
    {"position": "network", "external_services": [{"name": "openai-external", "hosts": ["api.openai.com"], "ports": [443]}]},
    {"external_services": [], "external_propagate": True, "unregistered_propagate": True},
    {"external_services": [{"name": "s3", "namespace": "storage", "hosts": ["*.s3.amazonaws.com"], "propagate": True}]},
    # One host for two entries on different ports.
    {"external_services": [{"name": "a", "hosts": ["api.example.com"], "ports": [80]},
                           {"name": "b", "hosts": ["api.example.com"], "ports": [443]}]},
    {"tracer": "zipkin_w3c", "envoy_version": "1.36.4"},
    {"tracer": "zipkin", "envoy_version": "1.35"},
    # JSON null is the same as leaving a field out.
    {"position": None, "tracer": None, "trust": None, "max_request_headers_kb": None, "external_propagate": None},
    {"position": "network", "response_header": None, "bridge": None, "external_propagate": None},
    {"trust": "restart", "position": "upstream", "tracer": None},
    # A wildcard's name may be 253 characters after its `*.`.
    {"external_services": [{"name": "long", "hosts": ["*." + ("a" * 63 + ".") * 3 + "a" * 61]}]},
    {"dry_run": True},
    {"position": "network", "trust": "restart", "dry_run": False},
    {"dry_run": None},
]

# Refusals a JSON Schema cannot express, each with why. Cases whose text is not JSON at all
# (syntax errors, a BOM, NUL bytes, nesting deeper than a JSON parser goes) are refused before a
# schema sees a document, and are counted as refused below.
SCHEMA_BLIND = {
    # A parser keeps the last of two equal keys: the validator sees one key.
    "duplicate-key-last-wins": "duplicate keys vanish in parsing",
    "external-service-duplicate-key": "duplicate keys vanish in parsing",
    "dry-run-twice": "duplicate keys vanish in parsing",
    # A host (compared case-insensitively) and port claimed by two entries: uniqueness across
    # array items by parts of their members, and case-folded, is beyond uniqueItems.
    "external-services-duplicate-host": "uniqueness across entries",
    "external-services-duplicate-host-other-case-same-port": "uniqueness across entries, case-insensitive",
}


# Refused by the loader, beyond the corpus: a value's trailing newline, which Python's `$`
# alone would let through a pattern.
MORE_BAD = [
    {"response_header": "x-trace-id\n"},
    {"envoy_version": "1.36\n"},
    {"external_services": [{"name": "openai\n", "hosts": ["api.openai.com"]}]},
    {"external_services": [{"name": "openai", "namespace": "apps\n", "hosts": ["api.openai.com"]}]},
    {"external_services": [{"name": "openai", "hosts": ["api.openai.com\n"]}]},
    {"external_services": [{"name": "openai", "hosts": ["*." + "a" * 63 + ("." + "a" * 63) * 3]}]},
]


def parsed(text):
    """The document a validator would get, or None when `text` is not JSON to a parser."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def shipped_plugin_configs():
    """(where, configuration) of every tracejoin plugin configuration in envoy/ and istio/:
    WasmPlugin and TrafficExtension `pluginConfig`, and the JSON `configuration` of Envoy wasm
    filters (Envoy configs, EnvoyFilter patches)."""
    found = []
    for path in sorted([*(ROOT / "envoy").rglob("*.yaml"), *(ROOT / "istio").rglob("*.yaml")]):
        if "crds" in path.parts:
            continue
        for n, doc in enumerate(yaml.safe_load_all(path.read_text())):
            for node in walk(doc):
                where = f"{path.relative_to(ROOT)}#{n}"
                if isinstance(node.get("pluginConfig"), dict):
                    found.append((where, node["pluginConfig"]))
                configuration = node.get("configuration")
                if "vm_config" in node and isinstance(configuration, dict) and "value" in configuration:
                    found.append((where, json.loads(configuration["value"])))
    return found


def walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


# Generated: each field's values (None: left out), crossed where the loader's rules cross
# (position, tracer, trust), and one further field at a time.
POSITIONS = [None, "downstream", "upstream", "network"]
TRACERS = [None, "none", "zipkin", "zipkin_w3c", "opentelemetry", "datadog"]
TRUSTS = [None, "continue", "restart", "resample"]
EXTRAS = [
    {},
    {"dry_run": True},
    {"response_header": "x-trace-id"},
    {"traceresponse": True},
    {"traceresponse": False},
    {"server_timing": True},
    {"bridge": True},
    {"bridge": False},
    {"external_services": []},
    {"external_services": [], "external_propagate": False},
    {"external_services": [], "external_propagate": True},
    {"external_services": [], "unregistered_propagate": True},
    {"external_propagate": True},
    {"external_propagate": False},
    {"unregistered_propagate": True},
    {"unregistered_propagate": False},
    {"max_request_headers_kb": 60},
    {"max_request_headers_count": 100},
    {"per_connection_buffer_limit_bytes": 32768},
    {"request_headers_timeout_ms": 10000},
    {"envoy_version": "1.35"},
    {"envoy_version": "1.36"},
    {"envoy_version": "0.9.1"},
    {"envoy_version": "1.035"},
    {"envoy_version": "2.0"},
]


def generated():
    configs = []
    for position, tracer, trust in itertools.product(POSITIONS, TRACERS, TRUSTS):
        base = {k: v for k, v in (("position", position), ("tracer", tracer), ("trust", trust)) if v is not None}
        # Every extra with the plain combinations, the trust ones with the first extras only.
        extras = EXTRAS if trust in (None, "continue") else EXTRAS[:1]
        configs.extend({**base, **extra} for extra in extras)
    return configs


GENERATED = generated()


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_the_schema_refuses_every_bad_config(case):
    text = config_of(case)
    assert not loader_accepts(text)
    document = parsed(text)
    if document is None or case["name"] in SCHEMA_BLIND:
        return
    assert not VALIDATOR.is_valid(document), f"the schema passes {case['name']}: {text[:200]}"


@pytest.mark.parametrize("config", MORE_BAD, ids=[json.dumps(c)[:60] for c in MORE_BAD])
def test_the_schema_refuses_more_bad_configs(config):
    assert not loader_accepts(config)
    assert not VALIDATOR.is_valid(config)


def test_the_blind_list_is_short_and_current():
    names = {c["name"] for c in CORPUS}
    assert set(SCHEMA_BLIND) <= names
    # Each blind case really passes the schema (else it belongs with the others).
    for case in CORPUS:
        if case["name"] in SCHEMA_BLIND:
            assert VALIDATOR.is_valid(json.loads(config_of(case))), case["name"]


@pytest.mark.parametrize("config", GOOD, ids=[json.dumps(c) for c in GOOD])
def test_good_configs_pass_both(config):
    assert loader_accepts(config), config
    jsonschema.validate(config, SCHEMA)


def test_shipped_plugin_configs_pass_both():
    found = shipped_plugin_configs()
    wheres = {w.split("#")[0] for w, _ in found}
    assert {"envoy/envoy-downstream.yaml", "envoy/envoy-network.yaml"} <= wheres, wheres
    assert any(w.startswith("istio/") for w in wheres), wheres
    for where, config in found:
        assert loader_accepts(config), (where, config)
        errors = [e.message for e in VALIDATOR.iter_errors(config)]
        assert not errors, (where, errors)


def test_generated_configs_get_the_same_verdict():
    """Each generated combination: the schema passes it exactly when the loader does."""
    disagree, accepted = [], 0
    for config in GENERATED:
        loader = loader_accepts(config)
        accepted += loader
        if loader != VALIDATOR.is_valid(config):
            disagree.append((config, "loader" if loader else "schema"))
    # Both verdicts are well represented.
    assert 100 < accepted < len(GENERATED) - 100, (accepted, len(GENERATED))
    assert not disagree, f"{len(disagree)} of {len(GENERATED)} differ (who accepts): {disagree[:10]}"


def test_the_schema_is_valid_draft_2020_12():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
