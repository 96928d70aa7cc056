"""Suggests Istio ServiceEntries for the calls tracejoin saw leave the mesh unregistered
(through the PassthroughCluster or the passthrough filter chain).

    python -m tracejoin_tools.istio.suggest_service_entries --admin http://127.0.0.1:15000
        reads the proxy's `wasmcustom.tracejoin.external.unregistered_host.<host>.port.<port>.tls_connections`
        counters (on Kubernetes: `kubectl port-forward pod/POD 15000` first);
    ... --stats-file FILE
        reads them from a saved stats dump, e.g.
        `kubectl exec POD -c istio-proxy -- pilot-agent request GET 'stats?format=json' > FILE`
        (the text format, without `?format=json`, is read too);
    ... --log FILE
        reads tracejoin's log lines (`kubectl logs POD -c istio-proxy > FILE`, `-` for stdin):
        `tracejoin: TLS connections to HOST:PORT (ALPN ...) leave the mesh with no ServiceEntry ...`
        and, for plain HTTP calls, `tracejoin: calls to HOST[:PORT] leave the mesh with no ServiceEntry ...`
        (port 80 unless the host says otherwise).

Every option may be repeated and combined (one pod's admin, another's logs). Connection
counts from several proxies add up. ServiceEntry YAML goes to stdout, a comment summary of
what was read and skipped to stderr.

The ServiceEntries follow the kit's istio/components/service-entries/service-entries.yaml: one per registrable domain
(the last two labels, three under a second-level suffix such as co.kr or com.au), named
`<label>-external` after its first label (kauth.kakao.com -> kakao-external); MESH_EXTERNAL,
resolution DNS, ports named `https-443` (TLS on 443), `tls-<port>` (TLS elsewhere) and
`http-<port>` (HTTP log lines). When --wildcard-siblings or more hosts share a parent of
three labels or more below the registrable domain (a.s3.amazonaws.com, b.s3..., c.s3...),
they become one wildcard host (`*.s3.amazonaws.com`) in an entry of its own,
`<label>-wildcard-external` with resolution NONE: Istio cannot resolve a wildcard by DNS
ahead of time. In-mesh names (--exclude-suffix, single-label names) and IP addresses are
left out. A host:port with a connection counter below --min-connections is dropped (the
threshold applies to counters only: a host:port seen in the logs alone has no count).

Append the output to istio/components/service-entries/service-entries.yaml (or your own ServiceEntries file), review it
(a name may clash with an entry already there: merge the hosts or rename), and run
`make istio-config`: tracejoin_tools.istio.serviceentries_to_config then regenerates
tracejoin's `external_services` in the manifests from the ServiceEntries, so the calls are
named after them and the counters above stop growing for these hosts.

Hosts are untrusted input (an app chooses its SNI and Host header): only DNS names are taken
(labels of [a-z0-9_-], 1 to 63 bytes, at most 253 in all); anything else is counted in the
summary and never printed.
"""

import argparse
import contextlib
import io
import json
import re
import sys
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import yaml

DEFAULT_EXCLUDE = [".svc.cluster.local", ".cluster.local", ".svc", ".local"]
# Second-level labels under which a country's registrations sit (example.co.kr, example.com.au).
SECOND_LEVEL = {"co", "com", "net", "org", "ac", "go", "or", "ne", "gov", "edu"}
STAT_FILTER = r"tracejoin\.external\.unregistered_host\."
STAT = re.compile(r"^(?:wasmcustom\.)?tracejoin\.external\.unregistered_host\.(?P<host>.+)\.port\.(?P<port>\d{1,5})\.tls_connections\Z", re.S | re.A)
TLS_MARK = "tracejoin: TLS connections to "
HTTP_MARK = "tracejoin: calls to "
TLS_LINE = re.compile(r"tracejoin: TLS connections to (?P<host>\S+):(?P<port>[0-9]{1,5}) \(ALPN (?P<alpn>.*?)\) leave the mesh with no ServiceEntry \(passthrough filter chain\)")
HTTP_LINE = re.compile(r"tracejoin: calls to (?P<host>\S+) leave the mesh with no ServiceEntry \(PassthroughCluster\)")
HOST_PORT = re.compile(r"^(?P<host>[^:]*):(?P<port>[0-9]{1,5})\Z")
LABEL = re.compile(r"^[a-z0-9_-]{1,63}\Z")
# What Kubernetes takes as a namespace and Istio as each label of a ServiceEntry host.
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
ALPN_NAME = re.compile(r"^[A-Za-z0-9._/+-]{1,32}\Z")
MAX_ITEMS = 256  # the CRD's maxItems for hosts and ports
NAME_MAX = 63
MAX_LISTED = 20  # hosts listed in the summary


class InputError(Exception):
    """An input that cannot be read at all (missing file, unreachable admin, not stats)."""


@dataclass
class Seen:
    """What was seen of one (host, port, protocol): `tls` or `http`."""

    connections: int | None = None  # from counters; None when only logged
    logged: bool = False
    alpn: set = field(default_factory=set)
    alpn_empty: bool = False  # logged with an empty ALPN list


@dataclass
class Report:
    observations: Counter = field(default_factory=Counter)  # by source: stats, log
    skipped: Counter = field(default_factory=Counter)  # by reason
    hosts: set = field(default_factory=set)  # the DNS names read
    rejected: set = field(default_factory=set)  # DNS names Istio does not take as hosts
    folded: int = 0  # hosts folded into wildcards


# --- hosts ----------------------------------------------------------------------------


def classify(host):
    """(normalized host, None) for a DNS name, else (None, reason). The reason never quotes
    the input."""
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if re.fullmatch(r"\[[0-9a-f:.]*\](:\d+)?|[0-9.]+|[0-9a-f]*:[0-9a-f:.]*", host):
        return None, "IP address (a ServiceEntry needs `addresses` for it)"
    labels = host.split(".")
    if not host or len(host) > 253 or not all(LABEL.match(label) for label in labels):
        return None, "not a DNS name"
    if labels[-1].isdigit():  # no top-level domain is numeric
        return None, "not a DNS name"
    return host, None


def excluded(host, suffixes):
    for suffix in suffixes:
        bare = suffix.strip(".")
        if bare and (host == bare or host.endswith("." + bare)):
            return True
    return False


def registrable(host):
    """The last two labels, or three under a country's second-level suffix (co.kr, com.au)."""
    labels = host.split(".")
    if len(labels) >= 3 and labels[-2] in SECOND_LEVEL and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def name_base(domain):
    """The registrable domain's first label as a DNS-1123 label fragment."""
    base = domain.split(".")[0].replace("_", "-").strip("-")
    return base or "host"


def unique_name(base, suffix, used):
    """`<base>-<suffix>`, `<base>-<suffix>-2`, ... trimmed to a DNS-1123 label, not in `used`."""
    n = 1
    while True:
        tail = f"-{suffix}" + (f"-{n}" if n > 1 else "")
        name = (base[: NAME_MAX - len(tail)].rstrip("-") or "host") + tail
        if name not in used:
            used.add(name)
            return name
        n += 1


# --- reading --------------------------------------------------------------------------


@contextlib.contextmanager
def open_text(path):
    """A file or stdin (`-`) as text; bytes that are not UTF-8 read as U+FFFD (and are then
    no DNS name)."""
    if path == "-":
        text = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        try:
            yield text
        finally:
            text.detach()  # stdin stays open
        return
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    with f:
        yield f


def stats_from_text(text, source):
    """(name, value) pairs from Envoy's JSON stats ({"stats": [{"name", "value"}, ...]}) or
    its text format (`name: value` lines)."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if data is not None:
        if not isinstance(data, dict) or not isinstance(data.get("stats"), list):
            raise InputError(f"{source}: JSON without a `stats` list: not Envoy's /stats?format=json")
        for item in data["stats"]:
            # Histograms come as {"histograms": ...}: no name and value.
            if isinstance(item, dict) and isinstance(item.get("name"), str) and "value" in item:
                yield item["name"], item["value"]
        return
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep and re.fullmatch(r"[0-9]+", value.strip()):
            yield name.strip(), int(value.strip())


def read_admin(url):
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"--admin {url!r}: not an http:// URL")
    request = url.rstrip("/") + "/stats?format=json&filter=" + urllib.parse.quote(STAT_FILTER)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode("utf-8", errors="replace")
    except (OSError, ValueError) as e:
        raise InputError(f"--admin {url}: {e}") from None
    return stats_from_text(text, f"--admin {url}")


class Collector:
    """What the inputs say, by (host, port, protocol): `tls` or `http`."""

    def __init__(self, exclude_suffixes):
        self.exclude = exclude_suffixes
        self.seen = defaultdict(Seen)
        self.report = Report()

    def key(self, host, port, protocol):
        """The (host, port, protocol) key, or None with the reason counted."""
        host, reason = classify(host)
        port = int(port)
        if reason is None and not 0 < port <= 65535:
            reason = "port unknown or out of range"
        if reason is None and excluded(host, self.exclude):
            reason = "in-mesh name (--exclude-suffix)"
        if reason is None and "." not in host:
            reason = "single-label name (in-mesh)"
        if reason is None and not all(DNS_1123_LABEL.match(label) for label in host.split(".")):
            # A DNS name (tracejoin counts it) that istiod's validation rejects as a host:
            # listed in the summary (it is checked, so safe to print), not in a ServiceEntry.
            reason = "name Istio rejects as a host (`_`, or `-` at a label's end)"
            self.report.rejected.add(f"{host}:{port}")
        if reason:
            self.report.skipped[reason] += 1
            return None
        self.report.hosts.add(host)
        return host, port, protocol

    def add_stats(self, pairs):
        for name, value in pairs:
            m = STAT.match(name)
            if not m:
                continue
            self.report.observations["stats"] += 1
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.report.skipped["counter without a count"] += 1
                continue
            key = self.key(m["host"], m["port"], "tls")
            if key:
                entry = self.seen[key]
                entry.connections = (entry.connections or 0) + value

    def add_log(self, lines):
        for line in lines:
            if TLS_MARK in line:
                m = TLS_LINE.search(line)
                if not m:
                    self.report.skipped["unreadable log line"] += 1
                    continue
                self.report.observations["log"] += 1
                key = self.key(m["host"], m["port"], "tls")
                if key:
                    entry = self.seen[key]
                    entry.logged = True
                    names = [a for a in m["alpn"].split(",") if a]
                    # ALPN names are the app's bytes too: only plain protocol ids are shown.
                    entry.alpn.update(a for a in names if ALPN_NAME.match(a))
                    entry.alpn_empty |= not names
            elif HTTP_MARK in line:
                m = HTTP_LINE.search(line)
                if not m:
                    self.report.skipped["unreadable log line"] += 1
                    continue
                self.report.observations["log"] += 1
                host, port = m["host"], "80"
                hp = HOST_PORT.match(host)
                if hp:
                    host, port = hp["host"], hp["port"]
                key = self.key(host, port, "http")
                if key:
                    self.seen[key].logged = True


# --- building -------------------------------------------------------------------------


def wildcards(hosts, siblings):
    """{host: `*.parent`} for the hosts folded into a wildcard: `siblings` or more distinct
    hosts directly under a parent of 3+ labels that lies below the registrable domain. A
    host under a wildcard's parent at any depth is folded into it; wildcards inside another
    one are merged into the shorter one."""
    if siblings <= 0:
        return {}
    children = defaultdict(set)
    for host in hosts:
        parent = host.partition(".")[2]
        labels = parent.count(".") + 1
        if labels >= 3 and labels > registrable(host).count(".") + 1:
            children[parent].add(host)
    parents = {p for p, c in children.items() if len(c) >= siblings}
    # Keep the shortest parents: a.b.s3.x.com's wildcard under *.s3.x.com's is redundant.
    parents = {p for p in parents if not any(p.endswith("." + q) for q in parents if q != p)}
    folded = {}
    for host in hosts:
        for parent in parents:
            if host.endswith("." + parent):
                folded[host] = "*." + parent
    return folded


def port_spec(number, protocol):
    if protocol == "tls":
        kind, name = ("HTTPS", "https") if number == 443 else ("TLS", "tls")
    else:
        kind, name = "HTTP", "http"
    return {"number": number, "name": f"{name}-{number}", "protocol": kind}


def seen_comment(host, port, protocol, s):
    if protocol == "http":
        return f"# seen: HTTP calls to {host}:{port} in the proxy log"
    if s.connections is not None:
        what = f"{s.connections} TLS connection{'' if s.connections == 1 else 's'}"
    else:
        what = "TLS connections"
    alpn = ""
    if s.alpn:
        alpn = f" (ALPN {','.join(sorted(s.alpn))})"
    elif s.alpn_empty:
        alpn = " (no ALPN)"
    where = " in the proxy log" if s.connections is None else ""
    return f"# seen: {what} to {host}:{port}{alpn}{where}"


def build(seen, namespace, siblings, min_connections, report):
    """The ServiceEntries as (comment lines, document) pairs, in output order."""
    kept = {}
    for key, s in seen.items():
        if key[2] == "tls" and s.connections is not None and s.connections < min_connections:
            report.skipped["host:port below --min-connections"] += 1
            continue
        kept[key] = s
    folded = wildcards({host for host, _, _ in kept}, siblings)
    report.folded = len(folded)
    # (registrable domain, wildcard?) -> {entry host: {(observed host, port, protocol): Seen}}
    groups = defaultdict(lambda: defaultdict(dict))
    for (host, port, protocol), s in kept.items():
        entry_host = folded.get(host, host)
        groups[(registrable(host), entry_host.startswith("*."))][entry_host][(host, port, protocol)] = s
    used = set()
    entries = []
    for domain, wildcard in sorted(groups):
        hosts = groups[(domain, wildcard)]
        names = sorted(hosts)
        for start in range(0, len(names), MAX_ITEMS):
            chunk = names[start : start + MAX_ITEMS]
            observed = {k: v for h in chunk for k, v in hosts[h].items()}
            ports = {}
            for _, port, protocol in sorted(observed, key=lambda k: (k[1], k[2] != "tls")):
                # A port seen as TLS and as HTTP: the ClientHello is the better evidence.
                ports.setdefault(port, protocol)
            if len(ports) > MAX_ITEMS:
                weight = Counter()
                for (_, port, _), s in observed.items():
                    weight[port] += s.connections or 0
                keep = sorted(ports, key=lambda p: (-weight[p], p))[:MAX_ITEMS]
                report.skipped["port beyond the 256 a ServiceEntry holds"] += len(ports) - len(keep)
                ports = {p: ports[p] for p in keep}
            name = unique_name(name_base(domain), "wildcard-external" if wildcard else "external", used)
            doc = {
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "hosts": chunk,
                    "location": "MESH_EXTERNAL",
                    "resolution": "NONE" if wildcard else "DNS",
                    "ports": [port_spec(p, ports[p]) for p in sorted(ports)],
                },
            }
            comments = [seen_comment(h, p, proto, s) for (h, p, proto), s in sorted(observed.items())]
            entries.append((comments, doc))
    return entries


# --- output ---------------------------------------------------------------------------


def scalar(value):
    """A plain YAML scalar when it reads back as the same string, else a quoted one."""
    text = str(value)
    if isinstance(value, int) or (re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", text) and yaml.safe_load(text) == text):
        return text
    return json.dumps(text)


def flow(mapping):
    return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in mapping.items()) + "}"


def render(comments, doc):
    """One document in the kit's style (flow lists for hosts and ports)."""
    meta, spec = doc["metadata"], doc["spec"]
    lines = list(comments)
    lines += [
        f"apiVersion: {doc['apiVersion']}",
        f"kind: {doc['kind']}",
        "metadata:",
        f"  name: {scalar(meta['name'])}",
        f"  namespace: {scalar(meta['namespace'])}",
        "spec:",
        "  hosts: [" + ", ".join(scalar(h) for h in spec["hosts"]) + "]",
        f"  location: {spec['location']}",
        f"  resolution: {spec['resolution']}",
        "  ports:",
    ]
    lines += [f"  - {flow(p)}" for p in spec["ports"]]
    text = "\n".join(lines) + "\n"
    # The hand-written YAML must say exactly what was meant.
    assert yaml.safe_load(text) == doc, doc
    return text


def summary(report, entries):
    read = report.observations
    hosts = sum(len(doc["spec"]["hosts"]) for _, doc in entries)
    wild = sum(1 for _, doc in entries for h in doc["spec"]["hosts"] if h.startswith("*."))
    lines = [
        f"# read {read['stats'] + read['log']} host:port observations ({read['stats']} counters, {read['log']} log lines): {len(report.hosts)} hosts",
        f"# printed {len(entries)} ServiceEntr{'y' if len(entries) == 1 else 'ies'} with {hosts} hosts"
        + (f" ({wild} wildcard{'' if wild == 1 else 's'} folding {report.folded} hosts)" if wild else ""),
    ]
    if report.skipped:
        lines.append("# skipped: " + ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped.items())))
    if report.rejected:
        shown = sorted(report.rejected)[:MAX_LISTED]
        more = len(report.rejected) - len(shown)
        lines.append(
            "# not printed, Istio rejects these hosts (a wildcard over valid labels may cover them): "
            + ", ".join(shown)
            + (f" and {more} more" if more else "")
        )
    if not entries:
        lines.append("# nothing to suggest: no unregistered host left after the filters above")
    return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Append the output to istio/components/service-entries/service-entries.yaml and run `make istio-config`.",
    )
    parser.add_argument("--admin", action="append", default=[], metavar="URL", help="an Envoy admin endpoint, e.g. http://127.0.0.1:15000 (repeatable)")
    parser.add_argument("--stats-file", action="append", default=[], metavar="FILE", help="a saved `stats?format=json` (or text) dump, `-` for stdin (repeatable)")
    parser.add_argument("--log", action="append", default=[], metavar="FILE", help="proxy log with tracejoin's lines, `-` for stdin (repeatable)")
    parser.add_argument("--namespace", default="default", help="the ServiceEntries' namespace (default: default)")
    parser.add_argument("--min-connections", type=int, default=1, metavar="N", help="drop a host:port whose counter is below N (default 1; counters only)")
    parser.add_argument(
        "--wildcard-siblings", type=int, default=3, metavar="K",
        help="fold K or more hosts under one parent of 3+ labels into `*.parent` (default 3; 0 disables)",
    )
    parser.add_argument(
        "--exclude-suffix", action="append", metavar="SUFFIX",
        help="leave out hosts under this suffix (repeatable; replaces the default " + ", ".join(DEFAULT_EXCLUDE) + "; '' leaves out none)",
    )
    args = parser.parse_args(argv)
    if not (args.admin or args.stats_file or args.log):
        parser.error("nothing to read: give --admin, --stats-file or --log")
    if (args.stats_file + args.log).count("-") > 1:
        parser.error("stdin (`-`) can be read once only")
    if not DNS_1123_LABEL.match(args.namespace):
        parser.error("--namespace: not a DNS-1123 label")
    if args.min_connections < 0 or args.wildcard_siblings < 0:
        parser.error("--min-connections and --wildcard-siblings take a number >= 0")
    if args.exclude_suffix is None:
        args.exclude_suffix = DEFAULT_EXCLUDE
    args.exclude_suffix = [s.lower() for s in args.exclude_suffix]
    return args


def main(argv=None):
    args = parse_args(argv)
    collector = Collector(args.exclude_suffix)
    try:
        for url in args.admin:
            collector.add_stats(read_admin(url))
        for path in args.stats_file:
            with open_text(path) as f:
                collector.add_stats(stats_from_text(f.read(), path))
        for path in args.log:
            with open_text(path) as f:
                collector.add_log(f)
    except InputError as e:
        print(f"suggest_service_entries: {e}", file=sys.stderr)
        return 2
    report = collector.report
    entries = build(collector.seen, args.namespace, args.wildcard_siblings, args.min_connections, report)
    # Each document opens with `---`, so that the output can be appended to a YAML file.
    sys.stdout.write("".join("---\n" + render(c, d) for c, d in entries))
    sys.stdout.flush()
    sys.stderr.write(summary(report, entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
