"""The native `tracejoin` command: `check-config` gives the loader's verdict in the filter's own
words (every bad-config corpus case), `explain` shows what the filter reads, decides and
writes. No Envoy: the command runs the filter's code natively (docs/cli.md)."""

import json

import pytest
from cli_support import run
from test_bad_configs import CORPUS, config_of
from test_schema import GOOD, shipped_plugin_configs

from tracejoin_tools.common import S, T

TRACEPARENT = f"00-{T}-{S}-01"
REQUEST_ID = "5d0d1e6c-3bb1-9a55-a1a4-1c2b3c4d5e6f"


def explain(*args):
    code, out, err = run("explain", "--json", "--seed", "7", *args)
    assert code == 0, err
    return json.loads(out)


def written(report):
    return {h["name"]: h["value"] for h in report["writes"]["set"]}


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_check_config_refuses_each_bad_config_as_the_filter_does(case):
    code, out, err = run("check-config", "-", stdin=config_of(case))
    assert code == 1, (out, err)
    assert out == ""
    message = err.strip()
    assert message.startswith(f"invalid tracejoin config: field `{case['field']}`: "), message[:300]
    assert case["reason_contains"] in message, message[:300]


@pytest.mark.parametrize("config", GOOD, ids=[json.dumps(c) for c in GOOD])
def test_check_config_accepts_good_configs_with_the_load_line(config, tmp_path):
    path = tmp_path / "plugin.json"
    path.write_text(json.dumps(config))
    code, out, err = run("check-config", str(path))
    assert (code, err) == (0, "")
    first = out.splitlines()[0]
    position = (config.get("position") or "downstream").capitalize()
    assert first.startswith(f"tracejoin: configured: position {position}, tracer "), first


def test_check_config_reads_stdin_and_shipped_configs():
    code, out, _ = run("check-config", stdin="")
    assert code == 0 and "position Downstream, tracer Zipkin," in out
    for where, config in shipped_plugin_configs():
        code, out, err = run("check-config", stdin=json.dumps(config))
        assert code == 0, (where, err)


def test_w3c_app_under_zipkin_downstream_gets_b3_with_its_ids():
    """Istio's classic setup: an app on W3C only, Envoy's Zipkin (B3) tracer. The filter bridges
    the traceparent's ids into `b3`, which Envoy's tracer then continues."""
    report = explain("--envoy", "1.40", "--header", f"traceparent: {TRACEPARENT}", "--header", f"x-request-id: {REQUEST_ID}")
    assert report["config"]["position"] == "downstream" and report["config"]["tracer"] == "zipkin"
    assert report["config"]["envoy"] == "1.40" and report["config"]["envoy_source"] == "detected"
    reads = {r["format"]: r for r in report["reads"]}
    assert reads["tracecontext"]["state"] == "valid"
    assert reads["tracecontext"]["context"] == {"trace_id": T, "span_id": S, "parent_id": None, "sampling": "sampled"}
    assert reads["tracecontext"]["headers"] == [["traceparent", TRACEPARENT]]
    assert all(r["state"] == "absent" for f, r in reads.items() if f != "tracecontext")
    decision = report["decision"]
    assert (decision["source"], decision["source_format"]) == ("extracted", "tracecontext")
    assert decision["context"]["trace_id"] == T and decision["context"]["span_id"] == S
    assert decision["bridged"] is True and decision["conflict"] is False and decision["restarted"] is False
    assert written(report) == {"b3": f"{T}-{S}-1"}
    assert report["writes"]["removed"] == []
    assert report["writes"]["kept"] == ["traceparent"]
    assert ["b3", f"{T}-{S}-1"] in report["request_after"]
    nxt = report["tracer_next"]
    assert nxt["continues"] == {"format": "b3", "context": {"trace_id": T, "span_id": S, "parent_id": None, "sampling": "sampled"}}
    assert nxt["writes"] == ["b3"]
    # The line the filter itself logged at debug, as Envoy's log shows it.
    assert report["decision_line"] == (
        f"tracejoin: decision position=downstream source=tracecontext trace_id={T} sampled=1 wrote=b3 removed=- "
        f"invalid=- flags=bridged request_id={REQUEST_ID} dry_run=false"
    )


def test_w3c_app_under_zipkin_before_1_40_gets_x_b3():
    """Before 1.40 Envoy's Zipkin answers `b3` with `x-b3-*` and leaves the `b3` behind."""
    report = explain("--envoy", "1.38", "--header", f"traceparent: {TRACEPARENT}")
    assert written(report) == {"b3": f"{T}-{S}-1"}
    assert report["tracer_next"]["writes"] == ["b3multi"]
    assert report["tracer_next"]["leaves_stale"] == ["b3"]


def test_text_output_names_reads_decision_and_writes():
    code, out, err = run("explain", "--seed", "7", "--header", f"traceparent: {TRACEPARENT}")
    assert code == 0, err
    for expected in (
        "tracejoin explain: position downstream, tracer zipkin, Envoy 1.40",
        f"  tracecontext valid: trace {T} span {S} sampled",
        "  source       the request's tracecontext context",
        "bridged yes",
        f"  set     b3: {T}-{S}-1",
        f"it continues trace {T} from b3",
        "decision line (debug log)",
    ):
        assert expected in out, (expected, out)


def test_network_position_rewrites_the_head_for_the_tracer():
    report = explain("--position", "network", "--header", "host: app.default", "--header", f"traceparent: {TRACEPARENT}")
    network = report["network"]
    assert network["head_in"] == f"GET / HTTP/1.1\r\nhost: app.default\r\ntraceparent: {TRACEPARENT}\r\n\r\n"
    assert network["rewritten"] is True and network["left"] is None and network["verdict"] == "continue"
    head = network["head_out"]
    assert head.startswith("GET / HTTP/1.1\r\n") and head.endswith("\r\n\r\n")
    for line in (f"x-b3-traceid: {T}", f"x-b3-spanid: {S}", "x-b3-sampled: 1", "host: app.default", f"traceparent: {TRACEPARENT}"):
        assert f"\r\n{line}\r\n" in head, (line, head)
    assert written(report) == {"x-b3-traceid": T, "x-b3-spanid": S, "x-b3-sampled": "1"}
    assert report["decision"]["bridged"] is False
    assert report["tracer_next"]["continues"]["format"] == "b3multi"
    assert report["tracer_next"]["continues"]["context"]["trace_id"] == T


def test_dry_run_writes_nothing_and_its_decision_line_says_what_it_would():
    for position in ("downstream", "network"):
        report = explain("--config", '{"dry_run":true}', "--position", position, "--header", "host: app.default",
                         "--header", f"traceparent: {TRACEPARENT}")
        assert written(report) == {} and report["writes"]["removed"] == [], report["writes"]
        if position == "network":
            assert report["network"]["head_out"] == report["network"]["head_in"]
        line = report["decision_line"]
        assert line.startswith(f"tracejoin: decision position={position} source=tracecontext trace_id={T} ")
        assert line.endswith(" dry_run=true")
        assert " wrote=-" not in line, line


def test_invalid_traceparent_is_shown_invalid_and_removed():
    bad = f"00-{T}-{S}-zz"
    report = explain("--header", f"traceparent: {bad}")
    reads = {r["format"]: r for r in report["reads"]}
    assert reads["tracecontext"]["state"] == "invalid"
    assert reads["tracecontext"]["context"] is None
    assert reads["tracecontext"]["headers"] == [["traceparent", bad]]
    assert report["decision"]["invalid"] == ["tracecontext"]
    assert report["decision"]["source"] == "left_to_tracer"
    assert report["writes"] == {"set": [], "removed": ["traceparent"], "kept": [], "filter_state": []}
    assert not any(name == "traceparent" for name, _ in report["request_after"])
    # Envoy's tracer finds nothing it reads and starts the trace.
    assert report["tracer_next"]["continues"] is None


def test_upstream_shows_the_span_envoy_injected():
    report = explain(
        "--position", "upstream", "--header", f"x-b3-traceid: {T}", "--header", f"x-b3-spanid: {S}", "--header", "x-b3-sampled: 1"
    )
    assert (report["decision"]["source"], report["decision"]["source_format"]) == ("injected", "b3multi")
    assert written(report)["traceparent"] == TRACEPARENT
    assert report["tracer_next"]["injected"]["context"]["span_id"] == S


def test_external_service_call_is_tagged_and_stripped():
    config = {"external_services": [{"name": "openai-external", "hosts": ["api.openai.com"]}]}
    report = explain(
        "--config", json.dumps(config), "--header", ":authority: api.openai.com", "--header", f"traceparent: {TRACEPARENT}",
        "--cluster", "outbound|443||api.openai.com",
    )
    assert report["writes"]["removed"] == ["traceparent"]
    assert ["tracejoin.service_entry", "openai-external"] in report["writes"]["filter_state"]


def test_ids_repeat_with_a_seed_and_not_without():
    args = ("explain", "--json", "--tracer", "none")
    first = json.loads(run(*args, "--seed", "3")[1])
    assert first["decision"]["source"] == "generated" and first["seeded"] is True
    assert json.loads(run(*args, "--seed", "3")[1])["decision"]["context"] == first["decision"]["context"]
    a, b = (json.loads(run(*args)[1]) for _ in range(2))
    assert a["seeded"] is False
    assert a["decision"]["context"]["trace_id"] != b["decision"]["context"]["trace_id"]


def test_explain_refuses_a_config_the_loader_refuses():
    code, out, err = run("explain", "--config", '{"trust": "restart"}')
    assert code == 1 and out == ""
    assert err.startswith("invalid tracejoin config: field `trust`:"), err
    # The flags go through the loader too: restart is fine upstream.
    report = explain("--config", '{"trust": "restart"}', "--position", "upstream")
    assert report["config"]["position"] == "upstream"


def test_headers_file(tmp_path):
    path = tmp_path / "head.txt"
    path.write_text(f"GET /a HTTP/1.1\r\nHost: app\r\n# the app's context\r\ntraceparent: {TRACEPARENT}\r\n")
    report = explain("--headers-file", str(path))
    assert report["request"] == [[":authority", "app"], ["traceparent", TRACEPARENT]]
    assert written(report) == {"b3": f"{T}-{S}-1"}


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["check-config", "a.json", "b.json"],
        ["check-config", "--strict"],
        ["check-config", "/nonexistent/plugin.json"],
        ["explain", "--seed", "x"],
        ["explain", "--header", "no colon here"],
        ["explain", "--position"],
        ["explain", "--envoy", "v1.40"],
        ["explain", "--headers-file", "/nonexistent/headers.txt"],
        ["explain", "--bogus"],
    ],
    ids=lambda a: " ".join(a) or "no-arguments",
)
def test_usage_errors_exit_2(args):
    code, out, err = run(*args)
    assert code == 2, (out, err)
    assert out == ""
    assert err.startswith("tracejoin: "), err


def test_help_exits_0():
    for args in (["--help"], ["explain", "--help"], ["check-config", "-h"]):
        code, out, _ = run(*args)
        assert code == 0 and out.startswith("usage: tracejoin check-config"), args


def test_network_head_over_the_limit_is_left_undecided():
    """A head over `max_request_headers_kb` goes on as it came: the filter decides nothing."""
    config = json.dumps({"position": "network", "max_request_headers_kb": 1})
    report = explain("--config", config, "--header", "x-padding: " + "a" * 2000, "--header", f"traceparent: {TRACEPARENT}")
    assert report["decision"] is None
    assert report["network"]["left"] == "too_large" and report["network"]["rewritten"] is False
    assert report["network"]["head_out"] == report["network"]["head_in"]
    assert report["writes"]["set"] == [] and report["writes"]["kept"] == ["traceparent"]
