"""What every load run needs: a backend Envoy that answers 200 itself, wrk (HTTP/1.1) or
h2load (HTTP/2, prior knowledge) driving a loopback port, and a process's resident memory. Used by the comparison (`make bench`) and the soak."""

import os
import re
import subprocess

from tracejoin_tools.common import LOOPBACK, loopback


def backend_config():
    """The backend: answers every request with 200 itself, once it has read the whole body
    (the buffer filter), so uploads are read to the end; a Zipkin span report (POST
    /api/v2/spans, from a case's tracer) with 202, as a Zipkin collector does (Envoy counts
    any other answer as a dropped report)."""
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "backend",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [
                        {"match": {"path": "/api/v2/spans"}, "direct_response": {"status": 202}},
                        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}},
                    ],
                }
            ]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.buffer",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                    "max_request_bytes": 4 << 20,
                },
            },
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            }
        ],
    }
    return {
        "admin": {"address": {"socket_address": loopback()}},
        "static_resources": {
            "listeners": [
                {
                    "name": "backend",
                    "address": {"socket_address": loopback()},
                    "filter_chains": [
                        {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
                    ],
                }
            ]
        },
    }


def parse_duration_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(port, headers, duration, connections, script=None):
    """One wrk run (one thread) against a loopback port: req/s, p50/p99 ms, non-2xx, errors.
    `script` is a wrk Lua script that builds the requests instead of fixed headers."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(f"http://{LOOPBACK}:{port}/bench")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = parse_duration_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = parse_duration_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps, "requests": requests, "p50": p50, "p99": p99,
        "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": errors.group(0) if errors else "",
    }


def run_h2load(port, headers, duration, connections, streams, body, path="/bench"):
    """One h2load run (one thread, HTTP/2 without TLS) against a loopback port: `connections`
    connections with `streams` requests in flight on each, POSTing the file `body`. h2load
    gives no percentiles: p50 holds the mean request time, p99 is None."""
    cmd = ["h2load", "-t1", f"-c{connections}", f"-m{streams}", "-D", str(duration), "-d", body]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(f"http://{LOOPBACK}:{port}{path}")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out).group(1))
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out).group(1)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    failed = re.search(r"requests: .*?(\d+) failed, (\d+) errored", out)
    done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", out).group(1))
    non2xx = sum(int(x) for x in codes.groups()[1:]) if codes else 0
    errors = f"{failed.group(1)} failed, {failed.group(2)} errored" if failed and (int(failed.group(1)) or int(failed.group(2))) else ""
    return {"rps": rps, "requests": done, "p50": parse_duration_ms(mean), "p99": None, "non2xx": non2xx, "errors": errors}


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User plus system CPU time a process has used so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
