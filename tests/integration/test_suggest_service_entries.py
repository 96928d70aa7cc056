"""tracejoin_tools.istio.suggest_service_entries: from what tracejoin counted and logged of
calls leaving the mesh unregistered to ServiceEntries, which validate against Istio's CRDs
and feed `make istio-config` (no Envoy needed: a fake admin endpoint and log text)."""

import http.server
import io
import json
import os
import subprocess
import sys
import threading
import urllib.parse

import jsonschema
import pytest
import yaml
from test_istio_kit import crd_file, strict

from tracejoin_tools.common import ROOT
from tracejoin_tools.istio import serviceentries_to_config
from tracejoin_tools.istio import suggest_service_entries as sse

PREFIX = "wasmcustom.tracejoin.external.unregistered_host."


def stat(host, port, value):
    return {"name": f"{PREFIX}{host}.port.{port}.tls_connections", "value": value}


def tls_line(host, port, alpn=""):
    return (
        "2025-01-01T00:00:00.000000Z\tinfo\tenvoy wasm external/envoy/source/extensions/common/wasm/context.cc:1204\t"
        f"wasm log outbound_tracejoin-outbound: tracejoin: TLS connections to {host}:{port} (ALPN {alpn}) leave the mesh with no ServiceEntry (passthrough filter chain)\tthread=21\n"
    )


def http_line(host):
    return f"[2025-01-01 00:00:00.000][21][info][wasm] wasm log tracejoin-outbound: tracejoin: calls to {host} leave the mesh with no ServiceEntry (PassthroughCluster)\n"


class Admin:
    """A fake Envoy admin endpoint on 127.0.0.1: /stats?format=json answers `stats` (plus a
    histogram and unrelated counters, as Envoy does); the paths asked are in `requests`."""

    def __init__(self, stats):
        self.stats = stats
        self.requests = []
        admin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                admin.requests.append(self.path)
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/stats" or urllib.parse.parse_qs(url.query).get("format") != ["json"]:
                    self.send_error(404)
                    return
                body = json.dumps(
                    {
                        "stats": [
                            {"name": "cluster.outbound|443||api.openai.com.upstream_cx_total", "value": 4},
                            {"name": "wasmcustom.tracejoin.external.unregistered.tls_connections", "value": 99},
                            *admin.stats,
                            {"histograms": {"supported_quantiles": [0, 50, 100], "computed_quantiles": []}},
                        ]
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def service_entry_schema():
    """Istio's ServiceEntry v1 schema, strict below the top level (as test_istio_kit reads it)."""
    for crd in yaml.safe_load_all(crd_file().read_text()):
        if crd and crd["spec"]["names"]["kind"] == "ServiceEntry":
            for version in crd["spec"]["versions"]:
                if version["name"] == "v1":
                    root = version["schema"]["openAPIV3Schema"]
                    strict(root["properties"]["spec"])
                    return root
    pytest.fail("no ServiceEntry v1 in the vendored CRDs")


def validate(doc, schema):
    """The CRD's schema, then the CEL rules (x-kubernetes-validations) jsonschema does not
    run, and Istio's own checks on what this tool writes."""
    assert doc["apiVersion"] == "networking.istio.io/v1" and doc["kind"] == "ServiceEntry"
    jsonschema.validate(doc, schema)
    meta, spec = doc["metadata"], doc["spec"]
    assert sse.DNS_1123_LABEL.match(meta["name"]) and sse.DNS_1123_LABEL.match(meta["namespace"])
    ports = spec["ports"]
    assert ports and all(0 < p["number"] <= 65535 for p in ports)
    assert len({p["number"] for p in ports}) == len(ports) and len({p["name"] for p in ports}) == len(ports)
    assert all(p["protocol"] in ("HTTP", "HTTPS", "TLS") and p["name"] == f"{p['protocol'].lower()}-{p['number']}" for p in ports)
    assert spec["hosts"] == sorted(spec["hosts"]) and len(set(spec["hosts"])) == len(spec["hosts"])
    assert "*" not in spec["hosts"]
    wildcard = [h.startswith("*.") for h in spec["hosts"]]
    # Istio: wildcard hosts only with resolution NONE; kept apart from the exact ones.
    assert all(wildcard) or not any(wildcard)
    assert spec["resolution"] == ("NONE" if all(wildcard) else "DNS")
    assert spec["location"] == "MESH_EXTERNAL"
    for host in spec["hosts"]:
        assert sse.classify(host.removeprefix("*."))[0] == host.removeprefix("*.")


def run(capsys, schema, *argv, stdin=None, monkeypatch=None):
    """The tool in process: (exit code, documents by name, stdout, stderr); every document
    validated."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode() if isinstance(stdin, str) else stdin)))
    code = sse.main(list(argv))
    out, err = capsys.readouterr()
    docs = [d for d in yaml.safe_load_all(out) if d is not None]
    for doc in docs:
        validate(doc, schema)
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert len(by_name) == len(docs), "names must be unique"
    return code, by_name, out, err


def comments_of(out, name):
    """The comment lines above the document named `name`."""
    for chunk in out.split("---\n"):
        if f"\n  name: {name}\n" in chunk:
            return [line for line in chunk.splitlines() if line.startswith("#")]
    raise AssertionError(name)


def entry(name, hosts, ports, resolution="DNS", namespace="default"):
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hosts": hosts, "location": "MESH_EXTERNAL", "resolution": resolution, "ports": ports},
    }


HTTPS = {"number": 443, "name": "https-443", "protocol": "HTTPS"}
HTTP = {"number": 80, "name": "http-80", "protocol": "HTTP"}


def test_admin_counters_and_logs(tmp_path, capsys, service_entry_schema):
    log = tmp_path / "istio-proxy.log"
    log.write_text("unrelated line\n" + tls_line("kauth.kakao.com", 443, "h2,http/1.1") + tls_line("kauth.kakao.com", 443, "http/1.1"))
    stats = [stat("kauth.kakao.com", 443, 12), stat("kapi.kakao.com", 443, 3), stat("api.openai.com", 443, 1)]
    with Admin(stats) as admin:
        code, docs, out, err = run(capsys, service_entry_schema, "--admin", admin.url + "/", "--log", str(log))
    assert code == 0
    # One request, filtered to tracejoin's counters.
    [path] = admin.requests
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    assert urllib.parse.urlsplit(path).path == "/stats" and query["format"] == ["json"]
    assert query["filter"] == [sse.STAT_FILTER]
    assert docs == {
        "kakao-external": entry("kakao-external", ["kapi.kakao.com", "kauth.kakao.com"], [HTTPS]),
        "openai-external": entry("openai-external", ["api.openai.com"], [HTTPS]),
    }
    assert list(docs) == ["kakao-external", "openai-external"]
    assert comments_of(out, "kakao-external") == [
        "# seen: 3 TLS connections to kapi.kakao.com:443",
        "# seen: 12 TLS connections to kauth.kakao.com:443 (ALPN h2,http/1.1)",
    ]
    assert comments_of(out, "openai-external") == ["# seen: 1 TLS connection to api.openai.com:443"]
    # The kit's style: flow lists, every document opened by `---` (the output appends to a file).
    assert out.startswith("---\n# seen: ")
    assert "  hosts: [kapi.kakao.com, kauth.kakao.com]\n" in out
    assert "  - {number: 443, name: https-443, protocol: HTTPS}\n" in out
    assert err.splitlines() == [
        "# read 5 host:port observations (3 counters, 2 log lines): 3 hosts",
        "# printed 2 ServiceEntries with 3 hosts",
    ]


def test_several_proxies_add_up(capsys, service_entry_schema):
    with Admin([stat("api.openai.com", 443, 2)]) as one, Admin([stat("api.openai.com", 443, 5), stat("api.openai.com", 8443, 1)]) as two:
        code, docs, out, _ = run(capsys, service_entry_schema, "--admin", one.url, "--admin", two.url)
    assert code == 0
    assert docs["openai-external"]["spec"]["ports"] == [HTTPS, {"number": 8443, "name": "tls-8443", "protocol": "TLS"}]
    assert comments_of(out, "openai-external") == [
        "# seen: 7 TLS connections to api.openai.com:443",
        "# seen: 1 TLS connection to api.openai.com:8443",
    ]


def test_wildcard_folding(capsys, service_entry_schema):
    stats = [
        stat("a.s3.amazonaws.com", 443, 1),
        stat("b.s3.amazonaws.com", 443, 2),
        stat("c.s3.amazonaws.com", 443, 3),
        stat("deep.d.s3.amazonaws.com", 443, 1),  # under the wildcard's parent: folded too
        stat("x.s3.ap-northeast-2.amazonaws.com", 443, 1),
        stat("y.s3.ap-northeast-2.amazonaws.com", 443, 1),
        stat("z.s3.ap-northeast-2.amazonaws.com", 8443, 1),
        stat("sts.amazonaws.com", 443, 4),  # exact: DNS, in its own entry
        stat("s3.amazonaws.com", 443, 1),  # the parent itself: `*.` does not cover it
        # Two labels: a wildcard over a whole registrable domain is never suggested.
        stat("a.kakao.com", 443, 1),
        stat("b.kakao.com", 443, 1),
        stat("c.kakao.com", 443, 1),
        # Nor under a second-level suffix (example.co.kr is the registrable domain).
        stat("a.example.co.kr", 443, 1),
        stat("b.example.co.kr", 443, 1),
        stat("c.example.co.kr", 443, 1),
        # Two siblings only.
        stat("a.cdn.example.net", 443, 1),
        stat("b.cdn.example.net", 443, 1),
    ]
    with Admin(stats) as admin:
        code, docs, out, err = run(capsys, service_entry_schema, "--admin", admin.url)
    assert code == 0
    assert docs == {
        "amazonaws-external": entry("amazonaws-external", ["s3.amazonaws.com", "sts.amazonaws.com"], [HTTPS]),
        "amazonaws-wildcard-external": entry(
            "amazonaws-wildcard-external",
            ["*.s3.amazonaws.com", "*.s3.ap-northeast-2.amazonaws.com"],
            [HTTPS, {"number": 8443, "name": "tls-8443", "protocol": "TLS"}],
            resolution="NONE",
        ),
        "example-external": entry("example-external", ["a.example.co.kr", "b.example.co.kr", "c.example.co.kr"], [HTTPS]),
        "example-external-2": entry("example-external-2", ["a.cdn.example.net", "b.cdn.example.net"], [HTTPS]),
        "kakao-external": entry("kakao-external", ["a.kakao.com", "b.kakao.com", "c.kakao.com"], [HTTPS]),
    }
    # What was folded stays visible in the comments.
    assert comments_of(out, "amazonaws-wildcard-external") == [
        "# seen: 1 TLS connection to a.s3.amazonaws.com:443",
        "# seen: 2 TLS connections to b.s3.amazonaws.com:443",
        "# seen: 3 TLS connections to c.s3.amazonaws.com:443",
        "# seen: 1 TLS connection to deep.d.s3.amazonaws.com:443",
        "# seen: 1 TLS connection to x.s3.ap-northeast-2.amazonaws.com:443",
        "# seen: 1 TLS connection to y.s3.ap-northeast-2.amazonaws.com:443",
        "# seen: 1 TLS connection to z.s3.ap-northeast-2.amazonaws.com:8443",
    ]
    assert '  hosts: ["*.s3.amazonaws.com", "*.s3.ap-northeast-2.amazonaws.com"]\n' in out
    assert "(2 wildcards folding 7 hosts)" in err

    # Two siblings are enough at K=2; K=0 folds nothing.
    with Admin(stats) as admin:
        _, docs, _, _ = run(capsys, service_entry_schema, "--admin", admin.url, "--wildcard-siblings", "2")
    assert docs["example-wildcard-external"]["spec"]["hosts"] == ["*.cdn.example.net"]
    with Admin(stats) as admin:
        _, docs, _, err = run(capsys, service_entry_schema, "--admin", admin.url, "--wildcard-siblings", "0")
    assert not any(h.startswith("*") for d in docs.values() for h in d["spec"]["hosts"])
    assert set(docs) == {"amazonaws-external", "example-external", "example-external-2", "kakao-external"}
    assert len(docs["amazonaws-external"]["spec"]["hosts"]) == 9 and "wildcard" not in err


def test_in_mesh_names_are_excluded(capsys, service_entry_schema):
    log = "".join(
        [
            http_line("reviews.default.svc.cluster.local:9080"),
            http_line("ratings.default.svc:9080"),
            http_line("printer.local"),
            http_line("cluster.local"),
            http_line("reviews:9080"),  # a short in-mesh name: single label
            http_line("api.corp.internal"),
            tls_line("db.default.svc.cluster.local", 5432),
            tls_line("api.openai.com", 443, "h2"),
        ]
    )
    code, docs, out, err = run_log(capsys, service_entry_schema, log)
    assert code == 0
    assert set(docs) == {"corp-external", "openai-external"}
    assert docs["corp-external"]["spec"]["hosts"] == ["api.corp.internal"]
    assert err.splitlines()[-1] == "# skipped: 5 in-mesh name (--exclude-suffix), 1 single-label name (in-mesh)"
    # Given suffixes replace the defaults.
    code, docs, _, err = run_log(capsys, service_entry_schema, log, "--exclude-suffix", ".internal", "--exclude-suffix", "svc.cluster.local")
    assert {n: d["spec"]["hosts"] for n, d in docs.items()} == {
        "cluster-external": ["cluster.local"],
        "default-external": ["ratings.default.svc"],
        "openai-external": ["api.openai.com"],
        "printer-external": ["printer.local"],
    }
    assert "3 in-mesh name (--exclude-suffix)" in err


def run_log(capsys, schema, log, *argv):
    """The tool on `log` given as a file (a fresh temporary one)."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".log") as f:
        f.write(log)
        f.flush()
        return run(capsys, schema, "--log", f.name, *argv)


def test_name_collisions_and_dns_1123(capsys, service_entry_schema):
    long_label = "a" * 63
    stats = [
        stat("api.example.com", 443, 1),
        stat("api.example.co.kr", 443, 1),
        stat("www.example.com.au", 443, 1),
        stat("shop.example.org", 443, 1),
        stat("login.my_corp.com", 443, 1),
        stat(f"api.{long_label}.io", 443, 1),
        stat(f"www.{long_label}.net", 443, 1),
        stat("www.-edge-.com", 443, 1),
        stat("www.com.com", 443, 1),  # `com` is a second-level suffix under country codes only
    ]
    with Admin(stats) as admin:
        code, docs, _, err = run(capsys, service_entry_schema, "--admin", admin.url)
    assert code == 0
    hosts = {name: d["spec"]["hosts"] for name, d in docs.items()}
    trimmed = "a" * (63 - len("-external"))
    assert hosts == {
        f"{trimmed}-external": [f"api.{long_label}.io"],
        f"{trimmed[:-2]}-external-2": [f"www.{long_label}.net"],
        "com-external": ["www.com.com"],
        "example-external": ["api.example.co.kr"],
        "example-external-2": ["api.example.com"],
        "example-external-3": ["www.example.com.au"],
        "example-external-4": ["shop.example.org"],
    }
    assert all(len(name) <= 63 for name in docs)
    # DNS names tracejoin counts but istiod rejects as ServiceEntry hosts (its labels are
    # DNS-1123: no `_`, no `-` at either end): named in the summary for the user, not printed.
    assert "# not printed, Istio rejects these hosts (a wildcard over valid labels may cover them): login.my_corp.com:443, www.-edge-.com:443" in err
    assert "2 name Istio rejects as a host" in err


def test_names_are_dns_1123():
    used = set()
    assert sse.unique_name(sse.name_base("my_corp.com"), "external", used) == "my-corp-external"
    assert sse.unique_name(sse.name_base("-edge_.com"), "external", used) == "edge-external"
    assert sse.unique_name(sse.name_base("_.com"), "external", used) == "host-external"
    assert sse.unique_name(sse.name_base("my_corp.com"), "external", used) == "my-corp-external-2"
    assert sse.unique_name("a" * 53 + "-b", "external", used) == "a" * 53 + "-external"
    assert all(sse.DNS_1123_LABEL.match(n) and len(n) <= 63 for n in used)


def test_http_log_lines(capsys, service_entry_schema):
    log = "".join(
        [
            http_line("api.example.com"),
            http_line("API.Example.com:8080"),
            http_line("api.example.com."),  # a fully qualified Host
            http_line("geo.example.com:443"),
            tls_line("geo.example.com", 443, "http/1.1"),  # TLS seen on the same port: HTTPS
            tls_line("api.example.com", 443, ""),
            http_line("example.com:0"),
            http_line("example.com:99999"),
        ]
    )
    code, docs, out, err = run_log(capsys, service_entry_schema, log)
    assert code == 0
    assert docs == {
        "example-external": entry(
            "example-external",
            ["api.example.com", "geo.example.com"],
            [HTTP, HTTPS, {"number": 8080, "name": "http-8080", "protocol": "HTTP"}],
        ),
    }
    assert comments_of(out, "example-external") == [
        "# seen: HTTP calls to api.example.com:80 in the proxy log",
        "# seen: TLS connections to api.example.com:443 (no ALPN) in the proxy log",
        "# seen: HTTP calls to api.example.com:8080 in the proxy log",
        "# seen: HTTP calls to geo.example.com:443 in the proxy log",
        "# seen: TLS connections to geo.example.com:443 (ALPN http/1.1) in the proxy log",
    ]
    assert "2 port unknown or out of range" in err


def test_http_only_entry(capsys, service_entry_schema, monkeypatch):
    code, docs, _, _ = run(capsys, service_entry_schema, "--log", "-", "--namespace", "apps", stdin=http_line("kapi.kakao.com"), monkeypatch=monkeypatch)
    assert code == 0
    assert docs == {"kakao-external": entry("kakao-external", ["kapi.kakao.com"], [HTTP], namespace="apps")}


HOSTILE = [
    "evil.com\nkind: Secret",
    "evil.com port.1",
    "EVIL.\u00e9xample.com",
    "a" * 64 + ".com",
    ".".join(["a" * 63] * 4) + ".com",  # 260 bytes
    "a..com",
    "-",
    "10.0.0.1",
    "[::1]",
    "*.evil.com",
    "evil.com\\x00",
    "evil.123",
    "evil.com\n",
    "",
]


def test_hostile_hosts_are_skipped_and_never_echoed(capsys, service_entry_schema, monkeypatch):
    stats = [stat(h, 443, 1) for h in HOSTILE] + [stat("api.openai.com", 443, 2)]
    stats.append({"name": f"{PREFIX}ok.example.com.port.443.tls_connections", "value": "many"})
    stats.append({"name": f"{PREFIX}ok.example.com.port.0.tls_connections", "value": 1})
    log = "".join(http_line(h.replace("\n", " ").replace(" ", "_")) for h in HOSTILE if h and " " not in h and "\n" not in h)
    log += "tracejoin: TLS connections to evil.com (ALPN h2) leave the mesh with no ServiceEntry (passthrough filter chain)\n"
    log += tls_line("api.openai.com", 443, "h2,x)y,\x1b[31mred,http/1.1")
    log += tls_line("api.openai.com", 443, "\u00e9\x00")
    with Admin(stats) as admin:
        code, docs, out, err = run(capsys, service_entry_schema, "--admin", admin.url, "--log", "-", stdin=log.encode(), monkeypatch=monkeypatch)
    assert code == 0
    assert docs == {"openai-external": entry("openai-external", ["api.openai.com"], [HTTPS])}
    # Only plain ALPN ids are shown.
    assert comments_of(out, "openai-external") == ["# seen: 2 TLS connections to api.openai.com:443 (ALPN h2,http/1.1)"]
    for text in (out, err):
        assert "evil" not in text.lower() and "\x1b" not in text and "Secret" not in text and "\u00e9" not in text
        assert "aaaa" not in text
    skipped = err.splitlines()[-1]
    assert skipped.startswith("# skipped: ")
    counts = dict(reversed(part.split(" ", 1)) for part in skipped.removeprefix("# skipped: ").split(", "))
    assert counts == {
        "IP address (a ServiceEntry needs `addresses` for it)": "4",
        "counter without a count": "1",
        "not a DNS name": str(10 + 7),
        "single-label name (in-mesh)": "2",
        "port unknown or out of range": "1",
        "unreadable log line": "1",
    }


def test_min_connections(capsys, service_entry_schema, monkeypatch):
    stats = {"stats": [stat("api.openai.com", 443, 9), stat("kauth.kakao.com", 443, 2), stat("kauth.kakao.com", 8443, 10)]}
    log = tls_line("kauth.kakao.com", 443, "h2") + tls_line("nid.naver.com", 443, "h2")
    with Admin(stats["stats"]) as admin:
        code, docs, out, err = run(capsys, service_entry_schema, "--admin", admin.url, "--log", "-", "--min-connections", "5", stdin=log, monkeypatch=monkeypatch)
    assert code == 0
    # A counter below the threshold drops its host:port even if logged; a logged-only one stays.
    assert {n: [p["number"] for p in d["spec"]["ports"]] for n, d in docs.items()} == {
        "kakao-external": [8443],
        "naver-external": [443],
        "openai-external": [443],
    }
    assert "1 host:port below --min-connections" in err
    assert comments_of(out, "naver-external") == ["# seen: TLS connections to nid.naver.com:443 (ALPN h2) in the proxy log"]


def test_stats_file_formats(tmp_path, capsys, service_entry_schema):
    # `pilot-agent request GET 'stats?format=json'`, and the text format without it.
    as_json = tmp_path / "stats.json"
    as_json.write_text(json.dumps({"stats": [stat("api.openai.com", 443, 3), {"name": "server.live", "value": 1}]}))
    as_text = tmp_path / "stats.txt"
    as_text.write_text(f"server.live: 1\n{PREFIX}kauth.kakao.com.port.443.tls_connections: 4\ncluster_manager.warming_clusters: 0\n")
    code, docs, out, _ = run(capsys, service_entry_schema, "--stats-file", str(as_json), "--stats-file", str(as_text))
    assert code == 0 and set(docs) == {"kakao-external", "openai-external"}
    assert "# seen: 4 TLS connections to kauth.kakao.com:443" in out


def test_input_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        sse.main([])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        sse.main(["--log", "x", "--namespace", "Not_A_Namespace"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        sse.main(["--log", "-", "--stats-file", "-"])
    assert e.value.code == 2
    capsys.readouterr()
    assert sse.main(["--stats-file", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "other.json").write_text('{"not": "stats"}')
    assert sse.main(["--stats-file", str(tmp_path / "other.json")]) == 2
    # An admin port nothing listens on.
    with Admin([]) as admin:
        url = admin.url
    assert sse.main(["--admin", url]) == 2
    assert sse.main(["--admin", "file:///etc/passwd"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "--admin" in err


def test_nothing_to_suggest(capsys, service_entry_schema):
    with Admin([]) as admin:
        code, docs, out, err = run(capsys, service_entry_schema, "--admin", admin.url)
    assert code == 0 and docs == {} and out == ""
    assert "nothing to suggest" in err


def test_end_to_end_and_into_make_istio_config(tmp_path, service_entry_schema):
    """The command as a user runs it, on a saved stats dump; its output appended to the
    kit's ServiceEntries gives serviceentries_to_config (`make istio-config`) the new
    services."""
    dump = tmp_path / "stats.json"
    stats = [stat("api.stripe.com", 443, 40), stat("a.s3.amazonaws.com", 443, 1), stat("b.s3.amazonaws.com", 443, 1), stat("c.s3.amazonaws.com", 443, 1)]
    dump.write_text(json.dumps({"stats": stats}))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tools"))
    python = ROOT / ".venv" / "bin" / "python"
    run = subprocess.run(
        [str(python if python.exists() else sys.executable), "-m", "tracejoin_tools.istio.suggest_service_entries", "--stats-file", str(dump), "--namespace", "shop"],
        cwd=ROOT / "tools", env=env, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    docs = [d for d in yaml.safe_load_all(run.stdout) if d]
    for doc in docs:
        validate(doc, service_entry_schema)
    assert [d["metadata"]["name"] for d in docs] == ["amazonaws-wildcard-external", "stripe-external"]
    assert run.stderr.splitlines() == [
        "# read 4 host:port observations (4 counters, 0 log lines): 4 hosts",
        "# printed 2 ServiceEntries with 2 hosts (1 wildcard folding 3 hosts)",
    ]
    combined = tmp_path / "service-entries.yaml"
    combined.write_text((ROOT / "istio" / "components" / "service-entries" / "service-entries.yaml").read_text() + run.stdout)
    services = serviceentries_to_config.external_services([combined])
    assert services[-2:] == [
        {"name": "amazonaws-wildcard-external", "namespace": "shop", "hosts": ["*.s3.amazonaws.com"], "ports": [443]},
        {"name": "stripe-external", "namespace": "shop", "hosts": ["api.stripe.com"], "ports": [443]},
    ]
    # The kit's own entries are still read whole (the output opens with `---`).
    assert len(services) == len(serviceentries_to_config.external_services([ROOT / "istio" / "components" / "service-entries" / "service-entries.yaml"])) + 2
