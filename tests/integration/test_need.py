"""README.md's "Do you need tracejoin?" table, measured on the running Envoy release: per
tracer and app propagator, one hop without tracejoin and with deployment 2
(tracejoin_tools.need), as the Istio kit ships it and with every format configured. The
README's table must be what this release measures."""

import pytest

from tracejoin_tools import need
from tracejoin_tools.common import BUILD, ROOT
from tracejoin_tools.envoy import harness as envoy_harness
from tracejoin_tools.envoy.harness import send


@pytest.fixture(scope="module")
def measured(envoys):
    def send_through(tracer, mode, headers):
        if mode == "off":
            envoy = envoys.get("off", tracer, plugin_config={})
        else:
            http, network = need.plugin_configs(tracer, mode)
            envoy = envoys.get("network+downstream", tracer, plugin_config=http, network_config=network)
        status, _, received = send(envoy.port, headers)
        assert status == 200, (tracer, mode, headers)
        return received

    cells = need.measure(send_through)
    table = need.render(cells)
    BUILD.mkdir(exist_ok=True)
    (BUILD / f"need-{envoy_harness.envoy_version()}.md").write_text(table + "\n")
    return cells, table


def test_readme_table_is_the_measurement(measured):
    _, table = measured
    assert need.table_in((ROOT / "README.md").read_text()) == table, (
        f"README.md's table differs from what Envoy {envoy_harness.envoy_version()} measures:\n{table}"
    )


def test_tracejoin_joins_every_cell(measured):
    cells, _ = measured
    split = [key for key, cell in cells.items() if not cell["tracejoin_every_format"]]
    assert not split, split


def test_the_measure_can_tell_a_split(measured):
    """The W3C default of the SDKs under Istio's classic B3 tracer splits without tracejoin
    (the case the project exists for); under Zipkin with W3C propagation it joins."""
    cells, _ = measured
    assert cells[("tracecontext", "zipkin")]["off"] is False
    assert cells[("tracecontext", "zipkin_w3c")]["off"] is True
