"""Writes the hand-made seed inputs into fuzz/corpus/<target>/ (or <OUT>/<target>/ with
`python -m tracejoin_tools.fuzz_seeds OUT`), named by SHA-1 as libFuzzer names its own. `cargo fuzz cmin` keeps
only the inputs that add coverage; the seeds are added back after it (they are the
readable regression cases: real header sets, shipped configurations).

- codecs: valid and invalid values of every header format (W3C, B3 single and multi,
  Jaeger, X-Ray; Datadog and OpenTracing in the masked multi-header form), tracestate lists (repeated headers as `\\n`-separated parts), serialized header
  blocks;
- request: real header sets in the target's text form (`#! <config words>` then
  `name: value` lines) under each position, tracer and trust;
- config: every plugin configuration shipped in envoy/*.yaml and istio/**/*.yaml, the README
  shapes, and near misses.
"""

import hashlib
import json
import pathlib
import struct
import sys

import yaml

from tracejoin_tools.common import ROOT, XS, YS, S, T, X

P = YS  # a parent span id

OUT = ROOT / "fuzz" / "corpus"


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    out = OUT / target
    out.mkdir(parents=True, exist_ok=True)
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)


def block(pairs):
    """The proxy-wasm serialized header map."""
    out = struct.pack("<I", len(pairs))
    for k, v in pairs:
        out += struct.pack("<II", len(k), len(v))
    for k, v in pairs:
        out += k.encode() + b"\0" + v.encode() + b"\0"
    return out


XRAY = f"Root=1-{T[:8]}-{T[8:]};Parent={S};Sampled=1"
T_LOW = str(int(T[16:], 16))  # x-datadog-trace-id of T
S_DEC = str(int(S, 16))


def masked(*fields):
    """The codecs target's masked multi-header form for any header set."""
    mask = sum(1 << i for i, v in enumerate(fields) if v is not None)
    return bytes([mask]) + "\n".join(v for v in fields if v is not None).encode()


def multi(trace=None, span=None, parent=None, sampled=None, flags=None):
    """The codecs target's x-b3-* form: a presence mask, then the values by `\\n`."""
    fields = [trace, span, parent, sampled, flags]
    mask = sum(1 << i for i, v in enumerate(fields) if v is not None)
    return bytes([mask]) + "\n".join(v for v in fields if v is not None).encode()


def codecs():
    values = [
        # traceparent
        f"00-{T}-{S}-01", f"00-{T}-{S}-00", f"00-{T}-{S}-03", f"00-{T}-{S}-ff",
        f" 00-{T}-{S}-01\t", f"01-{T}-{S}-01-future", f"cc-{T}-{S}-01.x", f"ff-{T}-{S}-01",
        f"00-{T.upper()}-{S}-01", f"00-{'0' * 32}-{S}-01", f"00-{T}-{'0' * 16}-01",
        f"00-{T}-{S}-01-", f"00_{T}_{S}_01", f"00-{T}-{S}-1",
        # b3 single
        f"{T}-{S}", f"{T}-{S}-1", f"{T}-{S}-0", f"{T}-{S}-d", f"{T}-{S}-1-{P}",
        f"{T[16:]}-{S}-1", f"{T[16:]}-{S}-d-{P}", "0", "1", "d", "true", f"{T}-{S}-true",
        f"{T}-{S}-1-{P}-x", f"{T}-{S}--{P}", f"{'0' * 16}-{S}-1", f"{T}-{S.upper()}-1",
        # uber-trace-id
        f"{T}:{S}:0:1", f"{T}:{S}:{P}:3", f"{T[16:]}:{S}:0:0", "abc:def:0:1",
        f"{T}%3A{S}%3A0%3A1", f"{T}%3a{S}%3a0%3a1", f"{T.upper()}:{S.upper()}:0:1",
        f"{T}:{S}:0:ff", f"{T}:{S}:0:100", f"{T}:{S}:0", f"0:{S}:0:1", f"{T}:0:0:1",
        f"{'1' * 33}:{S}:0:1",
        # uber-trace-id: debug without sampled, firehose, an empty parent
        f"{T}:{S}:0:2", f"{T}:{S}:0:9", f"{T}:{S}:{P}:0b", f"{T}:{S}::1",
        # tracestate
        f"rojo={S},congo=t61rcWkgMzE", "a=1, b=2 ,,c=3", "t61@dd=x",
        "0tenant@sys=1", "A=1", "a=1,a=2", "a= x y", "a=x ", "a=b=c", "a=",
        ",".join(f"k{i}=v" for i in range(33)), ",".join(f"k{i}={'v' * 200}" for i in range(4)),
        "a=1\nb=2", "a=1\na=2", "\n\n", "a=1\n\nb=2\n,c=3", "k=" + "v" * 256,
        "x" * 256 + "=" + "v" * 256,
        # tracestate: the current key grammar (`@` anywhere after the first character)
        "foo@=1,bar=2", "foo@@bar=1", "foo@bar@baz=1", "t@1s=1", "@foo=1", "a=1,b=2,a=3",

        # X-Amzn-Trace-Id
        XRAY, XRAY.replace("Sampled=1", "Sampled=?"), XRAY.replace("Sampled=1", "Sampled=2"),
        f"Self=1-67891234-12456789abcdef012345678;{XRAY};Lineage=a87bd80c:1|68fd508a:5",
        " Root = " + XRAY[5:].replace(";", " ; "), XRAY + ";", XRAY.lower(), XRAY.replace("Root=1", "Root=2"),
        f"Root=1-{T[:8]}-{T[8:]}", XRAY + ";Foo=" + "x" * 150 + ";B=1", XRAY.replace("Parent=", "Parent=0"),
        "",
    ]
    for v in values:
        write("codecs", v)
    write("codecs", multi(T, S, sampled="1"))
    write("codecs", multi(T[16:], S, P, flags="1"))
    write("codecs", multi(T, S, P, sampled="true", flags="0"))
    write("codecs", multi(sampled="0"))
    write("codecs", multi(flags="1"))
    write("codecs", multi(T, None, sampled="1"))
    write("codecs", multi(T, S, sampled="2"))
    write("codecs", multi(f" {T} ", S, sampled="false"))
    write("codecs", multi(T, S, sampled="True", flags="6"))
    write("codecs", multi(T, S, sampled="FALSE", flags="2"))

    # x-datadog-*: trace id, parent id, priority, origin, tags
    write("codecs", masked(T_LOW, S_DEC, "1", None, f"_dd.p.tid={T[:16]}"))
    write("codecs", masked(T_LOW, S_DEC, "2", "synthetics", f"_dd.p.dm=-4,_dd.p.tid={T[:16]}"))
    write("codecs", masked("1234", "5678", "-1", None, None))
    write("codecs", masked("1234", None, "1", "synthetics", None))
    write("codecs", masked("18446744073709551616", "1", None, None, None))
    write("codecs", masked("1234", "5678", "1", None, "_dd.p.tid=XYZ"))
    # ot-tracer-*: trace id, span id, sampled
    write("codecs", masked(T, S, "true", None, None))
    write("codecs", masked(T[16:], S, "0"))
    write("codecs", masked(T, S, "maybe"))
    write("codecs", masked(None, None, "true"))
    write("codecs", block([("traceparent", f"00-{T}-{S}-01"), ("tracestate", "a=1")]))
    write("codecs", block([("b3", f"{T}-{S}-1"), ("x-b3-traceid", X), ("x-b3-spanid", XS),
                           ("x-b3-sampled", "1"), ("uber-trace-id", f"{T}:{S}:0:1")]))
    write("codecs", block([("Traceparent", f"00-{T}-{S}-01"), ("traceparent", f"00-{X}-{XS}-01")]))
    write("codecs", block([("tracestate", f"k{i}=v") for i in range(10)]))
    write("codecs", b"\xff\xff\xff\xff" + b"\0" * 12)


REQUEST_SETS = [
    [],
    [("traceparent", f"00-{T}-{S}-01")],
    [("traceparent", f"00-{T}-{S}-01"), ("tracestate", f"rojo={S},congo=t61rcWkgMzE")],
    [("b3", f"{T}-{S}-1")],
    [("b3", "0")],
    [("x-b3-sampled", "1")],
    [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "1")],
    [("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-flags", "1")],
    [("x-b3-traceid", T[16:]), ("x-b3-spanid", S), ("x-b3-parentspanid", P)],
    [("uber-trace-id", f"{T}:{S}:0:1")],
    [("uber-trace-id", f"{T[16:].lstrip('0')}:{S}:{P}:3"), ("baggage", "userId=alice")],
    # Envoy's Zipkin tracer injected its span next to an app's traceparent.
    [("traceparent", f"00-{T}-{S}-01"), ("x-b3-traceid", T), ("x-b3-spanid", "1111111111111111"),
     ("x-b3-parentspanid", S), ("x-b3-sampled", "1")],
    [("traceparent", f"00-{T}-{S}-01"), ("x-b3-traceid", X), ("x-b3-spanid", XS), ("x-b3-sampled", "1")],
    # Conflicts, repeats, invalid values.
    [("traceparent", f"00-{T}-{S}-01"), ("b3", f"{X}-{XS}-1"), ("uber-trace-id", f"{X}:{XS}:0:1")],
    [("traceparent", f"00-{T}-{S}-01"), ("traceparent", f"00-{T}-{S}-01")],
    [("tracestate", "a=1"), ("tracestate", "b=2"), ("traceparent", f"00-{T}-{S}-01")],
    [("traceparent", f"00-{T.upper()}-{S}-01"), ("tracestate", "a=1"), ("uber-trace-id", "zz:1:0:1")],
    [("b3", f"{T}-{S}-1"), ("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "2")],
    # Datadog, X-Ray, OpenTracing: alone, with what they carry, against another trace.
    [("x-datadog-trace-id", T_LOW), ("x-datadog-parent-id", S_DEC), ("x-datadog-sampling-priority", "1"),
     ("x-datadog-tags", f"_dd.p.dm=-4,_dd.p.tid={T[:16]}"), ("x-datadog-origin", "synthetics")],
    [("traceparent", f"00-{X}-{XS}-01"), ("x-datadog-trace-id", T_LOW), ("x-datadog-parent-id", S_DEC),
     ("x-datadog-origin", "rum")],
    [("x-amzn-trace-id", f"Self=1-67891234-12456789abcdef012345678;{XRAY}")],
    [("traceparent", f"00-{T}-{S}-01"), ("x-amzn-trace-id", f"Root=1-{T[:8]}-{T[8:]};Parent={XS};Sampled=1;Foo=Bar")],
    [("ot-tracer-traceid", T), ("ot-tracer-spanid", S), ("ot-tracer-sampled", "true"), ("ot-baggage-user", "alice")],
    [("x-datadog-trace-id", "0"), ("x-amzn-trace-id", "Root=1"), ("ot-tracer-sampled", "yes")],
    [("traceparent", f"00-{T}-{S}-01"), ("tracestate", "A=1")],
    [("TraceParent", f"00-{T}-{S}-01"), ("X-B3-TraceId", T), ("X-B3-SpanId", S)],
    # Calls leaving the mesh.
    [(":authority", "api.openai.com"), ("traceparent", f"00-{T}-{S}-01"), ("baggage", "k=v")],
    [(":authority", "partner.example.com:443"), ("b3", f"{T}-{S}-1")],
    [(":authority", "bucket.s3.amazonaws.com"), ("x-b3-traceid", T), ("x-b3-spanid", S)],
]

REQUEST_CONFIGS = [
    "#! downstream zipkin",
    "#! downstream none",
    "#! upstream zipkin",
    "#! downstream zipkin_w3c",
    "#! upstream zipkin_w3c",
    "#! downstream opentelemetry",
    "#! upstream opentelemetry",
    "#! downstream none restart response",
    "#! downstream none resample ratio=2",
    "#! upstream zipkin restart",
    "#! upstream zipkin resample ratio=1",
    "#! downstream none extract=1 propagate=1 nobridge",
    "#! downstream zipkin extract=2 propagate=2",
    "#! upstream zipkin external=1 cluster=0 status=1",
    "#! upstream zipkin external=1 cluster=1 status=0",
    "#! downstream zipkin external=1 cluster=3",
    "#! downstream zipkin external=2 cluster=4 final=0",
    "#! downstream none extract=4 propagate=4",
    "#! upstream zipkin extract=4 propagate=4",
    # Envoy's Datadog tracer.
    "#! downstream datadog",
    "#! upstream datadog",
    "#! upstream datadog restart",
]


def request():
    for i, cfg in enumerate(REQUEST_CONFIGS):
        for j, headers in enumerate(REQUEST_SETS):
            # Every header set under the first configurations; the rest see a sample.
            if i < 7 or (i + j) % 4 == 0:
                lines = [cfg] + [f"{k}: {v}" for k, v in headers]
                write("request", "\n".join(lines))


def shipped_configs():
    """The plugin configurations in envoy/*.yaml and istio/**/*.yaml (not the vendored CRDs), as JSON."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "pluginConfig" in node and isinstance(node["pluginConfig"], dict):
                found.append(json.dumps(node["pluginConfig"]))
            conf = node.get("configuration")
            if isinstance(conf, dict) and isinstance(conf.get("value"), str):
                found.append(conf["value"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in sorted([*ROOT.glob("envoy/*.yaml"), *(p for p in ROOT.glob("istio/**/*.yaml") if "crds" not in p.parts)]):
        try:
            for doc in yaml.safe_load_all(path.read_text()):
                walk(doc)
        except yaml.YAMLError as e:
            print(f"skipped {path}: {e}", file=sys.stderr)
    return found


def config():
    shipped = shipped_configs()
    print(f"{len(shipped)} shipped configurations", file=sys.stderr)
    for c in shipped:
        write("config", c)
    others = [
        "", "{}", "null", "[]", "1", '"x"', "{", "{}}", " \n{}\t",
        '{"tracer":"none","propagate":["tracecontext","b3","b3multi","jaeger"]}',
        '{"extract":["datadog","xray","ottrace"],"propagate":["datadog","xray","ottrace"]}',
        '{"propagate":["xray","xray"]}', '{"extract":["aws"]}',
        '{"position":"upstream","tracer":"zipkin_w3c","trust":"restart","sampling_ratio":0.25}',
        '{"position":"upstream","tracer":"opentelemetry","trust":"resample"}',
        '{"position":"downstream","tracer":"zipkin","trust":"restart"}',
        '{"extract":["jaeger","jaeger"]}', '{"extract":["w3c"]}', '{"propagate":[]}',
        '{"sampling_ratio":1.5}', '{"sampling_ratio":-0}', '{"sampling_ratio":"1"}',
        '{"sampling_ratio":1e400}', '{"bridge":null,"traceresponse":true}',
        '{"response_header":"X-Trace-Id"}', '{"response_header":"x-trace-id"}',
        '{"response_header":""}', '{"tracr":"none"}', '{"position":"sidecar"}',
        '{"external_services":[]}', '{"external_propagate":true}', '{"unregistered_propagate":true}',
        '{"external_services":[{"name":"a","hosts":["a.com"]},{"name":"b","hosts":["A.com"]}]}',
        '{"external_services":[{"name":"a","hosts":["*.a.com"],"ports":[443,443]}]}',
        '{"external_services":[{"name":"a","hosts":["*"]}]}',
        '{"external_services":[{"name":"a","hosts":["a.*.com"]}]}',
        '{"external_services":[{"name":"A","hosts":["a.com"]}]}',
        '{"external_services":[{"name":"a","namespace":"","hosts":["a.com"]}]}',
        '{"external_services":[{"name":"a","hosts":[]}]}',
        '{"external_services":[{"name":"a","hosts":["a.com"],"ports":[0]}]}',
        '{"external_services":[{"name":"a","hosts":["a.com"],"ports":[65536]}]}',
        '{"external_services":[{"name":"a","hosts":["a.com"],"propagate":"yes"}]}',
        '{"external_services":[{"name":"a","hosts":["a.com"],"extra":1}]}',
        '{"external_services":[1]}', '{"external_services":{}}',
        '{"tracer":"none","tracer":"zipkin"}', '{"a":' * 200 + "1" + "}" * 200,
    ]
    for c in others:
        write("config", c)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        OUT = pathlib.Path(sys.argv[1])
    codecs()
    request()
    config()
