//! Property tests over generated inputs.
//!
//! No property-testing crate: the tests also run on wasm32-wasip1 under Node. Inputs come
//! from `SmallRng` with fixed seeds, so every run sees the same cases and a failure names
//! the seed and iteration that reproduce it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

use crate::codec::b3::{self, B3, MultiHeaders};
use crate::codec::tracecontext::{self, TraceState};
use crate::codec::{
    Carrier, Format, Header, HeaderValue, jaeger, serialize_pairs, serialized_pairs,
};
use crate::config::{Config, Position, Tracer, Trust};
use crate::context::{Sampling, SpanContext, SpanId, TraceId};
use crate::ids::IdGenerator;
use crate::policy::{self, Op, Plan, Read, Source};
use crate::sampling::RatioSampler;

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

fn below(r: &mut SmallRng, n: usize) -> usize {
    assert!(n > 0);
    (r.next_u64() % n as u64) as usize
}

fn one_in(r: &mut SmallRng, n: usize) -> bool {
    below(r, n) == 0
}

fn pick<'a, T>(r: &mut SmallRng, items: &'a [T]) -> &'a T {
    &items[below(r, items.len())]
}

fn pick_bytes(r: &mut SmallRng, items: &[&'static [u8]]) -> &'static [u8] {
    items[below(r, items.len())]
}

fn random_trace_id(r: &mut SmallRng) -> TraceId {
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

fn random_span_id(r: &mut SmallRng) -> SpanId {
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

const SAMPLINGS: [Sampling; 4] = [
    Sampling::Deferred,
    Sampling::NotSampled,
    Sampling::Sampled,
    Sampling::Debug,
];

fn random_ctx(r: &mut SmallRng) -> SpanContext {
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
    }
}

/// A valid tracestate value (sometimes with OWS and empty members, sometimes long).
fn random_tracestate(r: &mut SmallRng) -> String {
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
const INTERESTING: &[&[u8]] = &[
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

fn random_bytes(r: &mut SmallRng, max_len: usize) -> Vec<u8> {
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
fn mutate(r: &mut SmallRng, input: &[u8]) -> Vec<u8> {
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
fn valid_value(r: &mut SmallRng, h: Header, ctx: &SpanContext) -> Vec<u8> {
    let m = b3::render_multi(ctx);
    let opt = |v: Option<HeaderValue>, fallback: &[u8]| {
        v.map(|v| v.as_bytes().to_vec())
            .unwrap_or_else(|| fallback.to_vec())
    };
    match h {
        Header::Traceparent => {
            let mut v = tracecontext::render_traceparent(ctx).as_bytes().to_vec();
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
                b3::render_single(ctx).as_bytes().to_vec()
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
    }
}

/// A header name in a random spelling.
fn random_name(r: &mut SmallRng, h: Header) -> Vec<u8> {
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

type Headers = Vec<(Vec<u8>, Vec<u8>)>;

/// A request's header list: mostly well-formed trace headers from one to three contexts,
/// with invalid, repeated, partial and foreign headers mixed in. `wild` raises the share
/// of garbage.
fn random_headers(r: &mut SmallRng, wild: bool) -> Headers {
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
                // Repeated header (only tracestate may legally repeat).
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

fn carrier_of(headers: &Headers) -> Carrier<'_> {
    Carrier::from_pairs(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())))
}

/// Every configuration shape: each position, tracer and trust (where allowed), a few
/// extract/propagate/bridge variants and sampling ratios, all through `Config::from_json`.
fn all_configs() -> Vec<Config> {
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
    for position in ["downstream", "upstream"] {
        for tracer in ["none", "zipkin", "zipkin_w3c", "opentelemetry"] {
            for trust in ["continue", "restart", "resample"] {
                for (extract, propagate, bridge) in variants {
                    for ratio in ["0", "0.5", "1"] {
                        let json = format!(
                            r#"{{"position":"{position}","tracer":"{tracer}","trust":"{trust}","extract":{extract},"propagate":{propagate},"bridge":{bridge},"sampling_ratio":{ratio}}}"#
                        );
                        let rewrites = trust != "continue" && tracer != "none";
                        let allowed =
                            !rewrites || (position == "upstream" && tracer != "opentelemetry");
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
    for position in [Position::Downstream, Position::Upstream] {
        for tracer in [
            Tracer::None,
            Tracer::Zipkin,
            Tracer::ZipkinW3c,
            Tracer::OpenTelemetry,
        ] {
            assert!(
                out.iter()
                    .any(|c| c.position == position && c.tracer == tracer)
            );
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
fn apply(headers: &Headers, plan: &Plan) -> Headers {
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

fn same_context(got: &SpanContext, want: &SpanContext) -> bool {
    got.trace_id == want.trace_id
        && got.span_id == want.span_id
        && got.sampling.is_sampled() == want.sampling.is_sampled()
}

/// The checks of property (c) on one decided request.
fn check_plan(config: &Config, headers: &Headers, plan: &Plan, what: &str) {
    let out = apply(headers, plan);
    let carrier = carrier_of(&out);
    let sets = |h: Header| matches!(plan.op(h), Op::Set(_) | Op::SetText(_));

    // Nothing is written without a context to write.
    if Header::ALL
        .iter()
        .any(|h| *h != Header::Tracestate && sets(*h))
    {
        assert!(plan.context.is_some(), "{what}: writes without a context");
    }
    if let Some(ctx) = plan.context {
        assert!(ctx.trace_id.is_valid() && ctx.span_id.is_valid(), "{what}");
        assert!(ctx.sampling.is_decided(), "{what}: undecided {ctx:?}");
    }

    // Every format the plan wrote reads back as the plan's context.
    for f in Format::ALL {
        let wrote = Header::ALL
            .iter()
            .any(|h| h.format() == f && *h != Header::Tracestate && sets(*h));
        if !wrote {
            continue;
        }
        let ctx = plan.context.unwrap();
        match policy::read(&carrier, f) {
            Read::Context(c) if same_context(&c, &ctx) => {}
            other => panic!(
                "{what}: wrote {f:?} but it reads {other:?}, plan context {ctx:?}\nout: {}",
                show(&out)
            ),
        }
    }

    // A rewritten tracestate is canonical and within the limits.
    if let Op::SetText(s) = plan.op(Header::Tracestate) {
        assert!(s.len() <= tracecontext::TRACESTATE_MAX_LEN, "{what}");
        assert_eq!(
            tracecontext::parse_tracestate(&[s.as_bytes()]),
            TraceState::Canonical,
            "{what}: tracestate {s:?}"
        );
    }

    // Invalid values never travel on: each is rewritten or removed.
    for f in Format::ALL {
        assert_ne!(
            policy::read(&carrier, f),
            Read::Invalid,
            "{what}: {f:?} left invalid\nout: {}",
            show(&out)
        );
    }

    // A lone sampling decision left next to the chosen context agrees with it (unless
    // Envoy's tracer is about to overwrite that format).
    if let Some(ctx) = plan.context {
        let reads = Format::ALL.map(|f| policy::read(&carrier_of(headers), f));
        let owned = match config.position {
            Position::Downstream => policy::tracer_writes(
                config.tracer,
                &policy::tracer_view(&carrier_of(headers), &reads),
            ),
            Position::Upstream => [false; 4],
        };
        for f in Format::ALL {
            if let Read::SamplingOnly(s) = policy::read(&carrier, f) {
                assert!(
                    owned[f.index()] || s.is_sampled() == ctx.sampling.is_sampled(),
                    "{what}: {f:?} says {s:?}, the context {ctx:?}\nout: {}",
                    show(&out)
                );
            }
        }
    }

    // Upstream, every context left in the request names the chosen trace.
    if config.position == Position::Upstream {
        let ctx = plan.context.unwrap();
        for f in Format::ALL {
            if let Read::Context(c) = policy::read(&carrier, f) {
                assert_eq!(
                    c.trace_id,
                    ctx.trace_id,
                    "{what}: {f:?} names another trace\nout: {}",
                    show(&out)
                );
            }
        }
    }
}

fn show(headers: &Headers) -> String {
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

// ---------------------------------------------------------------------------------------
// (a) No input panics
// ---------------------------------------------------------------------------------------

/// A valid value of any format, as a seed for mutation.
fn any_valid_value(r: &mut SmallRng) -> Vec<u8> {
    let ctx = random_ctx(r);
    let h = *pick(r, &Header::ALL);
    valid_value(r, h, &ctx)
}

fn parse_everything(r: &mut SmallRng, input: &[u8]) {
    let ctx = random_ctx(r);

    // traceparent: whatever parses is valid and survives a re-render unchanged.
    if let Some(c) = tracecontext::parse_traceparent(input) {
        assert!(c.trace_id.is_valid() && c.span_id.is_valid());
        assert!(c.parent_id.is_none() && !c.short_trace_id);
        assert!(matches!(
            c.sampling,
            Sampling::Sampled | Sampling::NotSampled
        ));
        let again = tracecontext::render_traceparent(&c);
        assert_eq!(
            tracecontext::parse_traceparent(again.as_bytes()),
            Some(c),
            "{input:?}"
        );
    }

    // tracestate, alone and joined with another header.
    let other = valid_value(r, Header::Tracestate, &ctx);
    for parts in [&[input][..], &[input, &other], &[&other, input, input]] {
        match tracecontext::parse_tracestate(parts) {
            TraceState::Canonical => {
                assert_eq!(parts.len(), 1);
                assert!(input.len() <= tracecontext::TRACESTATE_MAX_LEN);
            }
            TraceState::Rewritten(s) => {
                assert!(s.len() <= tracecontext::TRACESTATE_MAX_LEN, "{s:?}");
                assert_eq!(
                    tracecontext::parse_tracestate(&[s.as_bytes()]),
                    TraceState::Canonical,
                    "{parts:?} -> {s:?}"
                );
            }
            TraceState::Empty | TraceState::TooLong | TraceState::Invalid => {}
        }
    }

    // B3 single.
    if let Some(B3::Context(c)) = b3::parse_single(input) {
        assert!(c.trace_id.is_valid() && c.span_id.is_valid());
        let again = b3::render_single(&c);
        assert_eq!(
            b3::parse_single(again.as_bytes()),
            Some(B3::Context(c)),
            "{input:?}"
        );
    }

    // B3 multi, the input in each field in turn, the rest valid, absent or mutated.
    let m = b3::render_multi(&ctx);
    let mutated: Vec<Vec<u8>> = [
        m.trace_id.as_bytes(),
        m.span_id.as_bytes(),
        b"0020000000000001",
        b"1",
        b"1",
    ]
    .iter()
    .map(|v| {
        if one_in(r, 3) {
            mutate(r, v)
        } else {
            v.to_vec()
        }
    })
    .collect();
    for slot in 0..5 {
        let field = |i: usize, r: &mut SmallRng| -> Option<&[u8]> {
            if i == slot {
                Some(input)
            } else if one_in(r, 3) {
                None
            } else {
                Some(&mutated[i])
            }
        };
        let h = MultiHeaders {
            trace_id: field(0, r),
            span_id: field(1, r),
            parent_span_id: field(2, r),
            sampled: field(3, r),
            flags: field(4, r),
        };
        if let Some(B3::Context(c)) = b3::parse_multi(&h) {
            let v = b3::render_multi(&c);
            let back = MultiHeaders {
                trace_id: Some(v.trace_id.as_bytes()),
                span_id: Some(v.span_id.as_bytes()),
                parent_span_id: v.parent_span_id.as_ref().map(HeaderValue::as_bytes),
                sampled: v.sampled.as_ref().map(HeaderValue::as_bytes),
                flags: v.flags.as_ref().map(HeaderValue::as_bytes),
            };
            assert_eq!(b3::parse_multi(&back), Some(B3::Context(c)), "{h:?}");
        }
    }

    // Jaeger.
    if let Some(c) = jaeger::parse(input) {
        assert!(c.trace_id.is_valid() && c.span_id.is_valid());
        assert_ne!(c.sampling, Sampling::Deferred);
        let again = jaeger::render(&c);
        assert_eq!(jaeger::parse(again.as_bytes()), Some(c), "{input:?}");
    }

    // Header names.
    let expected = Header::ALL
        .iter()
        .copied()
        .find(|h| h.name().as_bytes().eq_ignore_ascii_case(input));
    assert_eq!(Header::from_name(input), expected, "{input:?}");
}

#[test]
fn no_input_panics_any_parser() {
    let mut r = rng(0x7ace_0001);
    for _ in 0..4000 {
        let input = match below(&mut r, 4) {
            0 => random_bytes(&mut r, 120),
            1 => any_valid_value(&mut r),
            _ => {
                let seed = any_valid_value(&mut r);
                mutate(&mut r, &seed)
            }
        };
        parse_everything(&mut r, &input);
    }
    // Header names in every spelling, and their near misses.
    for _ in 0..2000 {
        let h = *pick(&mut r, &Header::ALL);
        let name = random_name(&mut r, h);
        assert_eq!(Header::from_name(&name), Some(h));
        let near = mutate(&mut r, &name);
        parse_everything(&mut r, &near);
    }
}

#[test]
fn no_header_block_panics_serialized_pairs() {
    let mut r = rng(0x7ace_0002);
    for _ in 0..2000 {
        let n = below(&mut r, 5);
        let pairs: Vec<(String, String)> = (0..n)
            .map(|_| {
                let k = String::from_utf8_lossy(&random_bytes(&mut r, 12)).into_owned();
                let v = String::from_utf8_lossy(&random_bytes(&mut r, 40)).into_owned();
                (k, v)
            })
            .collect();
        let block = serialize_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let read: Vec<(&[u8], &[u8])> = serialized_pairs(&block).collect();
        assert_eq!(read.len(), pairs.len());
        for ((k, v), (rk, rv)) in pairs.iter().zip(&read) {
            assert_eq!(k.as_bytes(), *rk);
            assert_eq!(v.as_bytes(), *rv);
        }
        // Damaged blocks end the iteration; they never panic and never invent pairs.
        let damaged = match below(&mut r, 3) {
            0 => block[..below(&mut r, block.len() + 1)].to_vec(),
            1 => mutate(&mut r, &block),
            _ => random_bytes(&mut r, 64),
        };
        let count = damaged
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
            .unwrap_or(0);
        let got = serialized_pairs(&damaged)
            .take(count.saturating_add(1))
            .count();
        assert!(got <= count);
        assert!(got <= damaged.len() / 10 + 1);
        let carrier = Carrier::from_pairs(serialized_pairs(&damaged));
        for f in Format::ALL {
            let _ = policy::read(&carrier, f);
        }
    }
}

#[test]
fn no_header_set_panics_decide() {
    let configs = all_configs();
    let mut r = rng(0x7ace_0003);
    let mut ids = IdGenerator::from_seed(3);
    for (i, config) in configs.iter().enumerate() {
        for j in 0..20 {
            let headers = random_headers(&mut r, true);
            let plan = policy::decide(config, &carrier_of(&headers), &mut ids);
            check_plan(config, &headers, &plan, &format!("config {i} case {j}"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// (b) Parse of render is identity
// ---------------------------------------------------------------------------------------

#[test]
fn parse_of_render_is_identity() {
    let mut r = rng(0x7ace_0004);
    for _ in 0..5000 {
        let c = random_ctx(&mut r);
        // B3 and Jaeger keep a 64-bit trace id only when it arrived so and still fits.
        let short = c.short_trace_id && c.trace_id.fits_64_bits();

        // traceparent: no parent, no debug, no short form, no undecided.
        let want = SpanContext {
            parent_id: None,
            short_trace_id: false,
            sampling: if c.sampling.is_sampled() {
                Sampling::Sampled
            } else {
                Sampling::NotSampled
            },
            ..c
        };
        let v = tracecontext::render_traceparent(&c);
        assert_eq!(v.as_bytes().len(), 55);
        assert_eq!(
            tracecontext::parse_traceparent(v.as_bytes()),
            Some(want),
            "{c:?}"
        );

        // B3 single: a parent needs a sampling state in front of it.
        let want = SpanContext {
            parent_id: if c.sampling.is_decided() {
                c.parent_id
            } else {
                None
            },
            short_trace_id: short,
            random_trace_id: false,
            ..c
        };
        let v = b3::render_single(&c);
        assert_eq!(
            b3::parse_single(v.as_bytes()),
            Some(B3::Context(want)),
            "{c:?}"
        );

        // B3 multi keeps everything but the W3C random flag.
        let want = SpanContext {
            short_trace_id: short,
            random_trace_id: false,
            ..c
        };
        let v = b3::render_multi(&c);
        let h = MultiHeaders {
            trace_id: Some(v.trace_id.as_bytes()),
            span_id: Some(v.span_id.as_bytes()),
            parent_span_id: v.parent_span_id.as_ref().map(HeaderValue::as_bytes),
            sampled: v.sampled.as_ref().map(HeaderValue::as_bytes),
            flags: v.flags.as_ref().map(HeaderValue::as_bytes),
        };
        assert_eq!(b3::parse_multi(&h), Some(B3::Context(want)), "{c:?}");

        // Jaeger: no undecided (renders as not sampled); parent 0 means none.
        let want = SpanContext {
            sampling: match c.sampling {
                Sampling::Deferred => Sampling::NotSampled,
                s => s,
            },
            short_trace_id: short,
            random_trace_id: false,
            ..c
        };
        let v = jaeger::render(&c);
        assert_eq!(jaeger::parse(v.as_bytes()), Some(want), "{c:?}");
    }
}

// ---------------------------------------------------------------------------------------
// (c) What the plan writes reads back as the plan's context
// ---------------------------------------------------------------------------------------

#[test]
fn plan_writes_read_back_as_the_plan_context() {
    let configs = all_configs();
    let mut r = rng(0x7ace_0005);
    let mut ids = IdGenerator::from_seed(5);
    let mut written = [0usize; 4];
    let mut sources = [0usize; 4];
    for (i, config) in configs.iter().enumerate() {
        for j in 0..25 {
            let headers = random_headers(&mut r, false);
            let plan = policy::decide(config, &carrier_of(&headers), &mut ids);
            check_plan(config, &headers, &plan, &format!("config {i} case {j}"));
            for f in Format::ALL {
                if Header::ALL
                    .iter()
                    .any(|h| h.format() == f && matches!(plan.op(*h), Op::Set(_)))
                {
                    written[f.index()] += 1;
                }
            }
            sources[match plan.outcome.source {
                Source::Extracted(_) => 0,
                Source::Injected(_) => 1,
                Source::Generated => 2,
                Source::LeftToTracer => 3,
            }] += 1;
        }
    }
    // The generator reaches every format and every kind of decision.
    assert!(written.iter().all(|n| *n > 50), "{written:?}");
    assert!(sources.iter().all(|n| *n > 50), "{sources:?}");
}

// ---------------------------------------------------------------------------------------
// (d) Ratio sampling
// ---------------------------------------------------------------------------------------

fn uniform_trace_id(r: &mut SmallRng) -> TraceId {
    loop {
        let mut b = [0u8; 16];
        r.fill_bytes(&mut b);
        let id = TraceId(b);
        if id.is_valid() {
            return id;
        }
    }
}

#[test]
fn ratio_sampling_is_deterministic_and_proportional() {
    const N: usize = 20_000;
    let mut r = rng(0x7ace_0006);
    let ids: Vec<TraceId> = (0..N).map(|_| uniform_trace_id(&mut r)).collect();
    let ratios = [0.0, 0.1, 0.5, 0.9, 1.0];
    let samplers = ratios.map(RatioSampler::new);
    let mut kept = [0usize; 5];
    for id in &ids {
        let decisions = samplers.map(|s| s.sample(id));
        for (k, d) in kept.iter_mut().zip(decisions) {
            *k += usize::from(d);
        }
        // The same id always gets the same decision, from any sampler of that ratio.
        for (s, d) in samplers.iter().zip(decisions) {
            assert_eq!(s.sample(id), d);
            assert_eq!(RatioSampler::new(s.ratio()).sample(id), d);
        }
        // The decision depends only on the 56 rightmost bits of the id.
        let mut other = *id;
        other.0[..9].copy_from_slice(&[0xa5; 9]);
        for (s, d) in samplers.iter().zip(decisions) {
            assert_eq!(s.sample(&other), d);
        }
        // Consistent sampling: kept at one ratio, kept at every higher one.
        for w in decisions.windows(2) {
            assert!(!w[0] || w[1], "{id:?}: {decisions:?}");
        }
    }
    assert_eq!(kept[0], 0, "ratio 0 keeps nothing");
    assert_eq!(kept[4], N, "ratio 1 keeps everything");
    for (ratio, k) in ratios.iter().zip(kept).skip(1).take(3) {
        let fraction = k as f64 / N as f64;
        assert!(
            (fraction - ratio).abs() <= 0.02,
            "ratio {ratio}: sampled {fraction}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Specification rules the policy once broke (tracestate without its traceparent)
// ---------------------------------------------------------------------------------------

/// W3C Trace Context, processing model (4.2, 4.3): a `tracestate` belongs to the
/// `traceparent` it arrived with. Received without a `traceparent` it "is invalid and MUST
/// be discarded"; when the trace restarts, "the vendor creates a new `traceparent` header and
/// deletes `tracestate`". So whatever tracestate leaves the filter must travel next to a valid
/// traceparent of the trace that goes on. (Downstream with the OpenTelemetry tracer is left
/// out: Envoy's tracer writes both headers itself after the filter.)
fn check_tracestate_follows_traceparent(config: &Config, headers: &Headers, plan: &Plan) {
    if config.position == Position::Downstream && config.tracer == Tracer::OpenTelemetry {
        return;
    }
    let out = apply(headers, plan);
    let carrier = carrier_of(&out);
    if !carrier.is_present(Header::Tracestate) {
        return;
    }
    let traceparent = policy::read(&carrier, Format::TraceContext);
    let ok = match (traceparent, plan.context) {
        (Read::Context(tp), Some(ctx)) => tp.trace_id == ctx.trace_id,
        (Read::Context(_), None) => true,
        _ => false,
    };
    assert!(
        ok,
        "tracestate travels without the traceparent of its trace\nconfig: {:?} {:?} {:?} \
         propagate {:?}\nin:\n{}\nout:\n{}\ncontext: {:?}",
        config.position,
        config.tracer,
        config.trust,
        config.propagate,
        show(headers),
        show(&out),
        plan.context
    );
}

#[test]
fn tracestate_travels_only_with_its_traceparent() {
    let headers = |pairs: &[(&str, &str)]| -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    };
    let tp_a = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let b3_b = "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-1";
    let mut ids = IdGenerator::from_seed(7);
    let cases = [
        // The b3 context wins; the traceparent of another trace is removed as stale, its
        // tracestate is kept.
        (
            r#"{"tracer":"none","propagate":["b3"]}"#,
            headers(&[("b3", b3_b), ("traceparent", tp_a), ("tracestate", "foo=1")]),
        ),
        // Downstream zipkin_w3c: Envoy rewrites traceparent to the b3 trace, the tracestate of
        // the other trace stays with it.
        (
            r#"{"tracer":"zipkin_w3c"}"#,
            headers(&[("b3", b3_b), ("traceparent", tp_a), ("tracestate", "foo=1")]),
        ),
        // Restart without tracecontext in `propagate`: `tracestate: tracejoin=<id>` is sent
        // with no traceparent at all.
        (
            r#"{"tracer":"none","trust":"restart","propagate":["b3"]}"#,
            headers(&[("b3", b3_b)]),
        ),
    ];
    for (json, h) in &cases {
        let config = Config::from_json(json.as_bytes()).unwrap();
        let plan = policy::decide(&config, &carrier_of(h), &mut ids);
        check_tracestate_follows_traceparent(&config, h, &plan);
    }
    let mut r = rng(0x7ace_0007);
    for config in &all_configs() {
        for _ in 0..25 {
            let h = random_headers(&mut r, false);
            let plan = policy::decide(config, &carrier_of(&h), &mut ids);
            check_tracestate_follows_traceparent(config, &h, &plan);
        }
    }
}
