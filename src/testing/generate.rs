//! Generated inputs for the property tests. No property-testing crate: the tests also run on
//! wasm32-wasip1 under Node. Inputs come from `SmallRng` with fixed seeds, so every run sees
//! the same cases and a failure names the seed and iteration that reproduce it.

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

use crate::codec::{
    Carrier, Format, Header, HeaderValue, b3, b3multi, datadog, jaeger, ottrace, tracecontext, xray,
};
use crate::config::{Config, EnvoyVersion, Position, Tracer, Trust};
use crate::context::{Sampling, SpanContext, SpanId, TraceId};
use crate::policy::{Op, Plan};

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

pub fn below(r: &mut SmallRng, n: usize) -> usize {
    assert!(n > 0);
    (r.next_u64() % n as u64) as usize
}

pub fn one_in(r: &mut SmallRng, n: usize) -> bool {
    below(r, n) == 0
}

pub fn pick<'a, T>(r: &mut SmallRng, items: &'a [T]) -> &'a T {
    &items[below(r, items.len())]
}

pub fn pick_bytes(r: &mut SmallRng, items: &[&'static [u8]]) -> &'static [u8] {
    items[below(r, items.len())]
}

pub fn random_trace_id(r: &mut SmallRng) -> TraceId {
    loop {
        let mut b = [0u8; 16];
        r.fill_bytes(&mut b);
        if one_in(r, 3) {
            // Fits the 64-bit form.
            b[..8].fill(0);
        }
        if one_in(r, 16) {
            // Leading zeros that Jaeger clients drop.
            let zeros = below(r, 16);
            b[..zeros].fill(0);
        }
        let id = TraceId(b);
        if id.is_valid() {
            return id;
        }
    }
}

pub fn random_span_id(r: &mut SmallRng) -> SpanId {
    loop {
        let mut b = r.next_u64().to_be_bytes();
        if one_in(r, 8) {
            let zeros = below(r, 8);
            b[..zeros].fill(0);
        }
        let id = SpanId(b);
        if id.is_valid() {
            return id;
        }
    }
}

pub const SAMPLINGS: [Sampling; 4] = [
    Sampling::Deferred,
    Sampling::NotSampled,
    Sampling::Sampled,
    Sampling::Debug,
];

pub fn random_ctx(r: &mut SmallRng) -> SpanContext {
    SpanContext {
        trace_id: random_trace_id(r),
        span_id: random_span_id(r),
        parent_id: if one_in(r, 2) {
            Some(random_span_id(r))
        } else {
            None
        },
        sampling: *pick(r, &SAMPLINGS),
        short_trace_id: one_in(r, 2),
        random_trace_id: one_in(r, 2),
        firehose: one_in(r, 4),
    }
}

/// A valid tracestate value (sometimes with OWS and empty members, sometimes long).
pub fn random_tracestate(r: &mut SmallRng) -> String {
    let n = 1 + below(r, 6);
    let mut members = Vec::new();
    for i in 0..n {
        let key = match below(r, 3) {
            0 => format!("k{i}"),
            1 => format!("t{i}@sys"),
            _ => format!("{}{i}", pick(r, &["rojo", "congo", "dd", "a/b*c_d-e"])),
        };
        let len = if one_in(r, 8) {
            100 + below(r, 157)
        } else {
            1 + below(r, 20)
        };
        let value: String = (0..len)
            .map(|j| {
                if j + 1 < len && one_in(r, 10) {
                    ' '
                } else {
                    char::from(*pick(r, b"abcXYZ0189!~_-+/.:;<>?"))
                }
            })
            .collect();
        members.push(format!("{key}={value}"));
    }
    let sep = *pick(r, &[",", ",", ", ", " ,\t", ",,"]);
    members.join(sep)
}

/// Characters that matter to at least one parser.
pub const INTERESTING: &[&[u8]] = &[
    b"-",
    b":",
    b"%3A",
    b"%3a",
    b"%3",
    b"%",
    b",",
    b"=",
    b"@",
    b" ",
    b"\t",
    b"\0",
    b"\r\n",
    b"\x7f",
    b"\xff",
    b"\xc3\xa9",
    b"0",
    b"1",
    b"d",
    b"f",
    b"F",
    b"g",
    b"00",
    b"ff",
    b"cc-",
];

pub fn random_bytes(r: &mut SmallRng, max_len: usize) -> Vec<u8> {
    let len = below(r, max_len + 1);
    let mut v = Vec::with_capacity(len);
    let uniform = one_in(r, 3);
    while v.len() < len {
        if uniform {
            v.push(r.next_u32() as u8);
        } else if one_in(r, 4) {
            v.extend_from_slice(pick_bytes(r, INTERESTING));
        } else {
            v.push(*pick(r, b"0123456789abcdef"));
        }
    }
    v
}

/// One to three random edits of a value.
pub fn mutate(r: &mut SmallRng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + below(r, 3) {
        let len = v.len();
        match below(r, 10) {
            0 if len > 0 => {
                let i = below(r, len);
                v[i] = r.next_u32() as u8;
            }
            1 => v.truncate(below(r, len + 1)),
            2 => v.make_ascii_uppercase(),
            3 if len > 0 => {
                let i = below(r, len);
                v[i] = v[i].to_ascii_uppercase();
            }
            4 => {
                let at = below(r, len + 1);
                let ins = pick_bytes(r, INTERESTING);
                v.splice(at..at, ins.iter().copied());
            }
            5 if len > 0 => {
                v.remove(below(r, len));
            }
            6 => {
                let sep: &[u8] = pick_bytes(r, &[b"", b",", b"-", b":", b" "]);
                let copy = v.clone();
                v.extend_from_slice(sep);
                v.extend_from_slice(&copy);
            }
            7 if len > 0 => {
                let i = below(r, len);
                let c = pick_bytes(r, INTERESTING);
                v.splice(i..i + 1, c.iter().copied());
            }
            8 if len > 1 => {
                let (i, j) = (below(r, len), below(r, len));
                v.swap(i, j);
            }
            _ => {
                let at = below(r, len + 1);
                let c = *pick(r, b" \t\n\x01\x1f");
                v.insert(at, c);
            }
        }
    }
    v
}

/// A well-formed value for one header, rendered from `ctx` (or a sampling-only value).
pub fn valid_value(r: &mut SmallRng, h: Header, ctx: &SpanContext) -> Vec<u8> {
    let m = b3multi::render(ctx);
    let dd = datadog::render(ctx);
    let ot = ottrace::render(ctx);
    let opt = |v: Option<HeaderValue>, fallback: &[u8]| {
        v.map(|v| v.as_bytes().to_vec())
            .unwrap_or_else(|| fallback.to_vec())
    };
    match h {
        Header::Traceparent => {
            let mut v = tracecontext::render(ctx).as_bytes().to_vec();
            if one_in(r, 10) {
                // A future version with extra fields.
                v[..2].copy_from_slice(b"cc");
                v.extend_from_slice(b"-future");
            }
            v
        }
        Header::Tracestate => random_tracestate(r).into_bytes(),
        Header::B3 => {
            if one_in(r, 8) {
                pick_bytes(r, &[b"0", b"1", b"d"]).to_vec()
            } else {
                b3::render(ctx).as_bytes().to_vec()
            }
        }
        Header::XB3TraceId => m.trace_id.as_bytes().to_vec(),
        Header::XB3SpanId => m.span_id.as_bytes().to_vec(),
        Header::XB3ParentSpanId => opt(m.parent_span_id, b"0020000000000001"),
        Header::XB3Sampled => opt(m.sampled, pick_bytes(r, &[b"0", b"1", b"true"])),
        Header::XB3Flags => opt(m.flags, pick_bytes(r, &[b"0", b"1"])),
        Header::UberTraceId => {
            let v = jaeger::render(ctx).as_bytes().to_vec();
            match below(r, 6) {
                // URL-encoded colons.
                0 => String::from_utf8(v)
                    .unwrap()
                    .replace(':', "%3A")
                    .into_bytes(),
                // Leading zeros dropped from the trace id, as Jaeger clients do.
                1 => {
                    let s = String::from_utf8(v).unwrap();
                    let (trace, rest) = s.split_once(':').unwrap();
                    let trimmed = trace.trim_start_matches('0');
                    format!("{trimmed}:{rest}").into_bytes()
                }
                _ => v,
            }
        }
        Header::XDatadogTraceId => dd.trace_id.as_bytes().to_vec(),
        Header::XDatadogParentId => dd.parent_id.as_bytes().to_vec(),
        Header::XDatadogSamplingPriority => opt(
            dd.sampling_priority,
            pick_bytes(r, &[b"-1", b"0", b"1", b"2"]),
        ),
        Header::XDatadogOrigin => pick_bytes(r, &[b"synthetics", b"rum", b"lambda"]).to_vec(),
        Header::XDatadogTags => {
            let mut v = opt(dd.tags, b"");
            if one_in(r, 2) {
                // Other propagated tags next to (or instead of) the trace id's high half.
                if !v.is_empty() {
                    v.push(b',');
                }
                v.extend_from_slice(b"_dd.p.dm=-4,_dd.p.usr.id=baz64");
            }
            v
        }
        Header::XAmznTraceId => {
            let v = xray::render(ctx).as_bytes().to_vec();
            match below(r, 4) {
                // An ALB's Self field first, Lambda's lineage last.
                0 => [b"Self=1-67891234-12456789abcdef012345678;".as_slice(), &v].concat(),
                1 => [v.as_slice(), b";Lineage=a87bd80c:1|68fd508a:5"].concat(),
                _ => v,
            }
        }
        Header::OtTracerTraceId => ot.trace_id.as_bytes().to_vec(),
        Header::OtTracerSpanId => ot.span_id.as_bytes().to_vec(),
        Header::OtTracerSampled => opt(ot.sampled, pick_bytes(r, &[b"true", b"false", b"1"])),
    }
}

/// A header name in a random spelling.
pub fn random_name(r: &mut SmallRng, h: Header) -> Vec<u8> {
    let mut name = h.name().as_bytes().to_vec();
    match below(r, 4) {
        0 => name.make_ascii_uppercase(),
        1 => {
            for b in name.iter_mut() {
                if one_in(r, 2) {
                    *b = b.to_ascii_uppercase();
                }
            }
        }
        _ => {}
    }
    name
}

pub type Headers = Vec<(Vec<u8>, Vec<u8>)>;

/// A request's header list: mostly well-formed trace headers from one to three contexts,
/// with invalid, repeated, partial and foreign headers mixed in. `wild` raises the share
/// of garbage.
pub fn random_headers(r: &mut SmallRng, wild: bool) -> Headers {
    let contexts: Vec<SpanContext> = (0..1 + below(r, 3)).map(|_| random_ctx(r)).collect();
    let mut out: Headers = Vec::new();
    if one_in(r, 2) {
        out.push((b":path".to_vec(), b"/".to_vec()));
    }
    let garbage = if wild { 2 } else { 8 };
    for f in Format::ALL {
        if one_in(r, 2) {
            continue;
        }
        let ctx = *pick(r, &contexts);
        let headers: Vec<Header> = Header::ALL
            .iter()
            .copied()
            .filter(|h| h.format() == f)
            .filter(|h| match h {
                // Written only when the context needs them, or at random.
                Header::XB3ParentSpanId => ctx.parent_id.is_some() || one_in(r, 6),
                Header::XB3Sampled => {
                    matches!(ctx.sampling, Sampling::Sampled | Sampling::NotSampled) || one_in(r, 6)
                }
                Header::XB3Flags => ctx.sampling == Sampling::Debug || one_in(r, 6),
                Header::Tracestate => one_in(r, 2),
                Header::XDatadogSamplingPriority | Header::OtTracerSampled => {
                    ctx.sampling.is_decided() || one_in(r, 6)
                }
                Header::XDatadogOrigin => one_in(r, 3),
                Header::XDatadogTags => !ctx.trace_id.fits_64_bits() || one_in(r, 3),
                // Sometimes only the sampling headers (a decision without ids).
                Header::XB3TraceId | Header::XB3SpanId => !one_in(r, 8),
                _ => true,
            })
            .collect();
        for h in headers {
            let value = if one_in(r, garbage) {
                if one_in(r, 2) {
                    let v = valid_value(r, h, &ctx);
                    mutate(r, &v)
                } else {
                    random_bytes(r, 80)
                }
            } else {
                valid_value(r, h, &ctx)
            };
            out.push((random_name(r, h), value));
            if one_in(r, garbage * 2) {
                // Repeated header: tracestate is joined, B3 and Jaeger read the first
                // value, a repeated traceparent is invalid.
                let other = *pick(r, &contexts);
                let again = valid_value(r, h, &other);
                out.push((random_name(r, h), again));
            }
        }
    }
    if one_in(r, 4) {
        out.push((b"x-request-id".to_vec(), random_bytes(r, 20)));
    }
    if wild && one_in(r, 3) {
        let name = random_bytes(r, 18);
        let value = random_bytes(r, 60);
        out.push((name, value));
    }
    // Shuffle.
    for i in (1..out.len()).rev() {
        let j = below(r, i + 1);
        out.swap(i, j);
    }
    out
}

pub fn carrier_of(headers: &Headers) -> Carrier<'_> {
    Carrier::from_pairs(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())))
}

/// Every configuration shape: each position, tracer and trust (where allowed), a few
/// extract/propagate/bridge variants and sampling ratios, all through `Config::from_json`.
pub fn all_configs() -> Vec<Config> {
    let variants = [
        (
            r#"["b3","b3multi","tracecontext","jaeger"]"#,
            r#"["tracecontext","b3multi"]"#,
            true,
        ),
        (
            r#"["tracecontext","jaeger","b3multi","b3"]"#,
            r#"["tracecontext","b3","b3multi","jaeger"]"#,
            false,
        ),
        (r#"["jaeger"]"#, r#"["jaeger","b3"]"#, true),
        (r#"[]"#, r#"["b3"]"#, true),
    ];
    let mut out = Vec::new();
    for position in ["downstream", "upstream", "network"] {
        for tracer in ["none", "zipkin", "zipkin_w3c", "opentelemetry", "datadog"] {
            for trust in ["continue", "restart", "resample"] {
                for (extract, propagate, bridge) in variants {
                    for ratio in ["0", "0.5", "1"] {
                        // The bridge is an HTTP position's (the network one refuses it).
                        let bridge = if position == "network" {
                            String::new()
                        } else {
                            format!(r#","bridge":{bridge}"#)
                        };
                        // Half the shapes model an Envoy before 1.40 (Zipkin answers `b3`
                        // with `x-b3-*` there).
                        let envoy = if ratio == "0.5" {
                            r#","envoy_version":"1.36""#
                        } else {
                            ""
                        };
                        let json = format!(
                            r#"{{"position":"{position}","tracer":"{tracer}","trust":"{trust}","extract":{extract},"propagate":{propagate}{bridge},"sampling_ratio":{ratio}{envoy}}}"#
                        );
                        let rewrites = trust != "continue" && tracer != "none";
                        let allowed = !rewrites
                            || position == "network"
                            || (position == "upstream" && tracer != "opentelemetry");
                        match Config::from_json(json.as_bytes()) {
                            Ok(c) => {
                                assert!(allowed, "accepted {json}");
                                out.push(c);
                            }
                            Err(e) => assert!(!allowed, "rejected {json}: {e}"),
                        }
                    }
                }
            }
        }
    }
    // Every position x tracer pair is represented, with every trust it allows.
    for position in [Position::Downstream, Position::Upstream, Position::Network] {
        for tracer in [
            Tracer::None,
            Tracer::Zipkin,
            Tracer::ZipkinW3c,
            Tracer::OpenTelemetry,
        ] {
            for envoy in [EnvoyVersion::new(1, 36), EnvoyVersion::NEWEST_MEASURED] {
                assert!(
                    out.iter().any(|c| {
                        c.position == position && c.tracer == tracer && c.envoy == envoy
                    })
                );
            }
        }
    }
    assert!(out.iter().any(|c| c.trust == Trust::Restart));
    assert!(out.iter().any(|c| c.trust == Trust::Resample));
    out
}

// ---------------------------------------------------------------------------------------
// Applying a plan
// ---------------------------------------------------------------------------------------

/// The request headers after the filter carried out `plan` (a set replaces every value of
/// the header, as the host's replace call does).
pub fn apply(headers: &Headers, plan: &Plan) -> Headers {
    let mut out = headers.clone();
    for h in Header::ALL {
        let new = match plan.op(h) {
            Op::Keep => continue,
            Op::Set(v) => Some(v.as_bytes().to_vec()),
            Op::SetText(s) => Some(s.as_bytes().to_vec()),
            Op::Remove => None,
        };
        out.retain(|(n, _)| Header::from_name(n) != Some(h));
        if let Some(v) = new {
            out.push((h.name().as_bytes().to_vec(), v));
        }
    }
    out
}

pub fn show(headers: &Headers) -> String {
    headers
        .iter()
        .map(|(n, v)| {
            format!(
                "{}: {}",
                String::from_utf8_lossy(n),
                String::from_utf8_lossy(v)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
