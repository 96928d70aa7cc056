//! Every header parser on arbitrary bytes. Where a parse succeeds, the rendering must be
//! canonical (independent rules from `tracejoin_fuzz`) and parse back to the same context;
//! tracestate is checked differentially against an independent reading of the W3C rules.
//!
//! Input layout: the whole input is one header value for the single-header parsers and
//! one serialized header block; split on `\n` it is the repeated tracestate headers; its
//! first byte is a presence mask for the five `x-b3-*` headers whose values follow,
//! separated by `\n` (the same layout serves the five `x-datadog-*` headers and the
//! three `ot-tracer-*` ones).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracejoin::codec::tracestate::{
    self, TRACESTATE_MAX_LEN, TraceState, join_truncated, with_member,
};
use tracejoin::codec::{
    self, Carrier, Format, Header, Read, b3, b3multi, datadog, header_map, jaeger, ottrace,
    tracecontext, xray,
};
use tracejoin::context::{Sampling, SpanContext};
use tracejoin_fuzz::{
    b3_single_ok, hex, id_ok, pad32, show, traceparent_ok, tracestate_ok, trim_ows, ts_members,
    uber_ok,
};

fuzz_target!(|data: &[u8]| {
    traceparent(data);
    b3_single(data);
    b3_multi(data);
    uber(data);
    amzn(data);
    dd_multi(data);
    ot_multi(data);
    tracestate(&[data]);
    let parts: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    tracestate(&parts);
    header_block(data);
});

/// A parsed context rendered in every format: each rendering is canonical, names the same
/// trace and span, and parses back (with what that format can carry) to the context.
fn renders_consistently(ctx: &SpanContext, what: &str) {
    let trace = hex(&ctx.trace_id.0);
    let span = hex(&ctx.span_id.0);

    let tp = tracecontext::render(ctx);
    let tp = tp.as_bytes();
    assert!(traceparent_ok(tp), "{what}: traceparent {}", show(tp));
    assert_eq!(&tp[3..35], trace.as_slice(), "{what}");
    assert_eq!(&tp[36..52], span.as_slice(), "{what}");
    let back = tracecontext::parse(tp).expect("rendered traceparent parses");
    assert_eq!(
        (back.trace_id, back.span_id, back.sampling.is_sampled()),
        (ctx.trace_id, ctx.span_id, ctx.sampling.is_sampled()),
        "{what}: traceparent {}",
        show(tp)
    );
    assert_eq!(back.random_trace_id, ctx.random_trace_id, "{what}");

    let single = b3::render(ctx);
    let single = single.as_bytes();
    assert!(b3_single_ok(single), "{what}: b3 {}", show(single));
    let (t, s) = split2(single, b'-');
    assert_eq!(
        (pad32(t), s.to_vec()),
        (trace.clone(), span.clone()),
        "{what}"
    );
    match b3::parse(single) {
        Some(b3::B3::Context(c)) => {
            assert_eq!(c.trace_id, ctx.trace_id, "{what}");
            assert_eq!(c.span_id, ctx.span_id, "{what}");
            assert_eq!(c.sampling, ctx.sampling, "{what}: b3 {}", show(single));
            // The parent travels with a sampling state only.
            if ctx.sampling.is_decided() {
                assert_eq!(c.parent_id, ctx.parent_id, "{what}: b3 {}", show(single));
            }
        }
        other => panic!("{what}: rendered b3 {} reads {other:?}", show(single)),
    }

    let m = b3multi::render(ctx);
    assert!(id_ok(m.trace_id.as_bytes(), &[16, 32]), "{what}: {m:?}");
    assert_eq!(pad32(m.trace_id.as_bytes()), trace, "{what}");
    assert_eq!(m.span_id.as_bytes(), span.as_slice(), "{what}");
    if let Some(p) = m.parent_span_id {
        assert!(id_ok(p.as_bytes(), &[16]), "{what}: {m:?}");
    }
    if let Some(v) = m.sampled {
        assert!(matches!(v.as_bytes(), b"0" | b"1"), "{what}: {m:?}");
    }
    if let Some(v) = m.flags {
        assert_eq!(v.as_bytes(), b"1", "{what}: {m:?}");
    }
    let headers = b3multi::MultiHeaders {
        trace_id: Some(m.trace_id.as_bytes()),
        span_id: Some(m.span_id.as_bytes()),
        parent_span_id: m.parent_span_id.as_ref().map(|v| v.as_bytes()),
        sampled: m.sampled.as_ref().map(|v| v.as_bytes()),
        flags: m.flags.as_ref().map(|v| v.as_bytes()),
    };
    match b3multi::parse(&headers) {
        Some(b3::B3::Context(c)) => {
            assert_eq!(
                (c.trace_id, c.span_id, c.parent_id, c.sampling),
                (ctx.trace_id, ctx.span_id, ctx.parent_id, ctx.sampling),
                "{what}: multi {m:?}"
            );
        }
        other => panic!("{what}: rendered multi {m:?} reads {other:?}"),
    }

    let u = jaeger::render(ctx);
    let u = u.as_bytes();
    assert!(uber_ok(u), "{what}: uber-trace-id {}", show(u));
    let (t, s) = split2(u, b':');
    assert_eq!((pad32(t), s.to_vec()), (trace, span), "{what}");
    let back = jaeger::parse(u).expect("rendered uber-trace-id parses");
    assert_eq!(
        (back.trace_id, back.span_id, back.parent_id),
        (ctx.trace_id, ctx.span_id, ctx.parent_id),
        "{what}: uber-trace-id {}",
        show(u)
    );
    assert_eq!(
        back.sampling.is_sampled(),
        ctx.sampling.is_sampled(),
        "{what}"
    );
}

/// The formats added later, checked the same way: the ids their rendering carries are the
/// context's, and the rendering parses back to it (each with what it can carry).
fn renders_consistently_more(ctx: &SpanContext, what: &str) {
    let same = |c: &SpanContext| {
        (c.trace_id, c.span_id, c.sampling.is_sampled())
            == (ctx.trace_id, ctx.span_id, ctx.sampling.is_sampled())
    };
    if datadog::carries(ctx) {
        let d = datadog::render(ctx);
        assert!(
            d.trace_id.as_bytes().iter().all(u8::is_ascii_digit),
            "{what}: {d:?}"
        );
        let back = datadog::parse(&datadog::DatadogHeaders {
            trace_id: Some(d.trace_id.as_bytes()),
            parent_id: Some(d.parent_id.as_bytes()),
            sampling_priority: d.sampling_priority.as_ref().map(|v| v.as_bytes()),
            origin: None,
            tags: d.tags.as_ref().map(|v| v.as_bytes()),
        })
        .expect("rendered x-datadog-* parses");
        assert!(same(&back), "{what}: datadog {d:?}");
        assert_eq!(back.sampling, ctx.sampling, "{what}: datadog {d:?}");
    } else {
        // No Datadog form (a zero low half): every Datadog header is removed.
        let mut written = 0;
        datadog::inject(ctx, &mut |_, v| written += usize::from(v.is_some()));
        assert_eq!(written, 0, "{what}: datadog written for {:?}", ctx.trace_id);
    }

    let x = xray::render(ctx);
    assert_eq!(x.as_bytes().len(), 74, "{what}: {x:?}");
    let back = xray::parse(x.as_bytes()).expect("rendered X-Amzn-Trace-Id parses");
    assert!(same(&back), "{what}: xray {x:?}");

    let o = ottrace::render(ctx);
    assert!(id_ok(o.trace_id.as_bytes(), &[16, 32]), "{what}: {o:?}");
    assert_eq!(pad32(o.trace_id.as_bytes()), hex(&ctx.trace_id.0), "{what}");
    let back = ottrace::parse(&ottrace::OtHeaders {
        trace_id: Some(o.trace_id.as_bytes()),
        span_id: Some(o.span_id.as_bytes()),
        sampled: o.sampled.as_ref().map(|v| v.as_bytes()),
    })
    .expect("rendered ot-tracer-* parses");
    assert!(same(&back), "{what}: ottrace {o:?}");
}

fn amzn(data: &[u8]) {
    let Some(ctx) = xray::parse(data) else {
        return;
    };
    assert!(ctx.trace_id.is_valid() && ctx.span_id.is_valid() && !ctx.short_trace_id);
    let rendered = xray::render(&ctx);
    assert_eq!(
        xray::parse(rendered.as_bytes()),
        Some(ctx),
        "{}",
        show(data)
    );
    // Kept fields: a new span on the same trace still parses to it, within the bound.
    let mut child = ctx;
    child.span_id.0[7] ^= 1;
    if !child.span_id.is_valid() {
        child.span_id.0[0] = 1;
    }
    match xray::render_keeping(&child, data) {
        Some(v) => {
            assert_eq!(
                xray::parse(v.as_bytes()),
                Some(child),
                "{} kept as {v:?}",
                show(data)
            );
        }
        other => panic!("{}: {other:?}", show(data)),
    }
    renders_consistently(&ctx, "xray");
    renders_consistently_more(&ctx, "xray");
}

/// The mask-and-values layout of [`b3_multi`], for `n` headers.
fn masked<const N: usize>(data: &[u8]) -> Option<[Option<&[u8]>; N]> {
    let (&mask, rest) = data.split_first()?;
    let mut values = rest.split(|b| *b == b'\n');
    let mut out = [None; N];
    for (bit, slot) in out.iter_mut().enumerate() {
        if mask & (1 << bit) != 0 {
            *slot = Some(values.next().unwrap_or_default());
        }
    }
    Some(out)
}

fn dd_multi(data: &[u8]) {
    let Some([trace_id, parent_id, sampling_priority, origin, tags]) = masked::<5>(data) else {
        return;
    };
    let h = datadog::DatadogHeaders {
        trace_id,
        parent_id,
        sampling_priority,
        origin,
        tags,
    };
    let Some(ctx) = datadog::parse(&h) else {
        return;
    };
    assert!(ctx.trace_id.is_valid() && ctx.span_id.is_valid(), "{h:?}");
    assert_eq!(ctx.short_trace_id, ctx.trace_id.fits_64_bits(), "{h:?}");
    renders_consistently(&ctx, "datadog");
    renders_consistently_more(&ctx, "datadog");
}

fn ot_multi(data: &[u8]) {
    let Some([trace_id, span_id, sampled]) = masked::<3>(data) else {
        return;
    };
    let h = ottrace::OtHeaders {
        trace_id,
        span_id,
        sampled,
    };
    let Some(ctx) = ottrace::parse(&h) else {
        return;
    };
    let v = ottrace::render(&ctx);
    assert_eq!(
        v.trace_id.as_bytes(),
        trim_ows(trace_id.unwrap_or_default()),
        "{h:?}"
    );
    assert_eq!(
        v.span_id.as_bytes(),
        trim_ows(span_id.unwrap_or_default()),
        "{h:?}"
    );
    renders_consistently(&ctx, "ottrace");
    renders_consistently_more(&ctx, "ottrace");
}

fn split2(v: &[u8], sep: u8) -> (&[u8], &[u8]) {
    let mut it = v.split(move |b| *b == sep);
    (it.next().unwrap_or_default(), it.next().unwrap_or_default())
}

fn traceparent(data: &[u8]) {
    let Some(ctx) = tracecontext::parse(data) else {
        return;
    };
    assert!(ctx.trace_id.is_valid() && ctx.span_id.is_valid());
    assert!(ctx.sampling.is_decided() && ctx.parent_id.is_none() && !ctx.short_trace_id);
    let rendered = tracecontext::render(&ctx);
    assert_eq!(
        tracecontext::parse(rendered.as_bytes()),
        Some(ctx),
        "traceparent {} renders {}",
        show(data),
        show(rendered.as_bytes())
    );
    // A version-00 value with only known flags is already canonical: rendering keeps it.
    let v = trim_ows(data);
    if v.starts_with(b"00-") && v.len() == 55 && matches!(&v[53..55], b"00" | b"01" | b"02" | b"03")
    {
        assert_eq!(rendered.as_bytes(), v, "traceparent {}", show(data));
    }
    // Whatever parsed is lowercase hex ids of the right width at the right places.
    assert!(
        id_ok(&v[3..35], &[32]) && id_ok(&v[36..52], &[16]),
        "{}",
        show(data)
    );
    renders_consistently(&ctx, "traceparent");
}

fn b3_single(data: &[u8]) {
    match b3::parse(data) {
        None => {}
        Some(b3::B3::SamplingOnly(s)) => {
            assert!(s.is_decided());
            assert!(
                matches!(trim_ows(data), b"0" | b"1" | b"d"),
                "{}",
                show(data)
            );
        }
        Some(b3::B3::Context(ctx)) => {
            assert!(ctx.trace_id.is_valid() && ctx.span_id.is_valid());
            let rendered = b3::render(&ctx);
            // Every valid b3 context value is already canonical (lowercase, fixed widths).
            assert_eq!(
                rendered.as_bytes(),
                trim_ows(data),
                "b3 {} renders {}",
                show(data),
                show(rendered.as_bytes())
            );
            assert_eq!(b3::parse(rendered.as_bytes()), Some(b3::B3::Context(ctx)));
            renders_consistently(&ctx, "b3");
        }
    }
}

fn b3_multi(data: &[u8]) {
    let Some((&mask, rest)) = data.split_first() else {
        return;
    };
    let mut values = rest.split(|b| *b == b'\n');
    let mut take = |bit: u8| {
        if mask & (1 << bit) != 0 {
            Some(values.next().unwrap_or_default())
        } else {
            None
        }
    };
    let h = b3multi::MultiHeaders {
        trace_id: take(0),
        span_id: take(1),
        parent_span_id: take(2),
        sampled: take(3),
        flags: take(4),
    };
    match b3multi::parse(&h) {
        None => {}
        Some(b3::B3::SamplingOnly(s)) => {
            assert!(s.is_decided());
            assert!(h.trace_id.is_none() && h.span_id.is_none() && h.parent_span_id.is_none());
        }
        Some(b3::B3::Context(ctx)) => {
            let m = b3multi::render(&ctx);
            fn trimmed(v: Option<&[u8]>) -> Option<&[u8]> {
                v.map(trim_ows)
            }
            // Ids are canonical as read: rendering gives them back byte for byte.
            assert_eq!(Some(m.trace_id.as_bytes()), trimmed(h.trace_id), "{h:?}");
            assert_eq!(Some(m.span_id.as_bytes()), trimmed(h.span_id), "{h:?}");
            assert_eq!(
                m.parent_span_id.as_ref().map(|v| v.as_bytes()),
                trimmed(h.parent_span_id),
                "{h:?}"
            );
            let debug = trimmed(h.flags) == Some(b"1");
            assert_eq!(ctx.sampling == Sampling::Debug, debug, "{h:?}");
            renders_consistently(&ctx, "b3multi");
        }
    }
}

fn uber(data: &[u8]) {
    let Some(ctx) = jaeger::parse(data) else {
        return;
    };
    assert!(ctx.trace_id.is_valid() && ctx.span_id.is_valid());
    assert!(ctx.parent_id.is_none_or(|p| p.is_valid()));
    let rendered = jaeger::render(&ctx);
    assert_eq!(
        jaeger::parse(rendered.as_bytes()),
        Some(ctx),
        "uber-trace-id {} renders {}",
        show(data),
        show(rendered.as_bytes())
    );
    renders_consistently(&ctx, "jaeger");
}

fn tracestate(parts: &[&[u8]]) {
    let got = tracestate::parse(parts);
    let want = ts_members(parts);
    let all_parts = || {
        parts
            .iter()
            .map(|p| show(p))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    match (&got, &want) {
        (TraceState::Invalid, None) => return,
        (TraceState::Invalid, Some(m)) => {
            panic!(
                "tracestate {} rejected, members {m:?} are valid",
                all_parts()
            )
        }
        (_, None) => panic!("tracestate {} accepted as {got:?}", all_parts()),
        (_, Some(_)) => {}
    }
    let members = want.unwrap_or_default();
    let joined_len =
        members.iter().map(|m| m.len()).sum::<usize>() + members.len().saturating_sub(1);
    match got {
        TraceState::Invalid => unreachable!(),
        TraceState::Empty => assert!(members.is_empty(), "{}", all_parts()),
        TraceState::Canonical => {
            assert_eq!(parts.len(), 1, "{}", all_parts());
            assert!(tracestate_ok(parts[0]), "canonical {}", all_parts());
        }
        TraceState::TooLong => {
            assert!(!members.is_empty(), "{}", all_parts());
            assert!(joined_len > TRACESTATE_MAX_LEN, "{}", all_parts());
            assert!(members.iter().all(|m| m.len() > 128), "{}", all_parts());
        }
        TraceState::Rewritten(s) => {
            let s = s.as_bytes();
            assert!(tracestate_ok(s), "{} rewritten to {}", all_parts(), show(s));
            assert_eq!(
                tracestate::parse(&[s]),
                TraceState::Canonical,
                "{}",
                show(s)
            );
            // The rewrite keeps members in order, drops only to fit, long ones first.
            let kept: Vec<&[u8]> = s.split(|b| *b == b',').collect();
            let mut it = members.iter();
            for k in &kept {
                assert!(
                    it.any(|m| m == k),
                    "{} rewritten to {}",
                    all_parts(),
                    show(s)
                );
            }
            if joined_len <= TRACESTATE_MAX_LEN {
                assert_eq!(kept, members, "{}", all_parts());
            } else {
                let dropped_short = members.iter().any(|m| m.len() <= 128 && !kept.contains(m));
                if dropped_short {
                    assert!(kept.iter().all(|m| m.len() <= 128), "{}", show(s));
                }
            }
            // The restart path prepends its member to a valid list and stays canonical.
            let s = std::str::from_utf8(s).expect("ascii");
            let with = with_member(Some(s), "tracejoin", "4bf92f3577b34da6a3ce929d0e0e4736");
            assert!(tracestate_ok(with.as_bytes()), "{with:?}");
            assert!(with.starts_with("tracejoin=4bf92f3577b34da6a3ce929d0e0e4736"));
        }
    }
    let joined = join_truncated(&members);
    assert!(joined.len() <= TRACESTATE_MAX_LEN);
    assert!(
        joined.is_empty() || tracestate_ok(joined.as_bytes()),
        "{joined:?}"
    );
}

fn header_block(data: &[u8]) {
    let pairs: Vec<(&[u8], &[u8])> = header_map::pairs(data).collect();
    let used: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2 + 8).sum();
    // Every pair lies inside the block (the last value's NUL may be missing).
    assert!(pairs.is_empty() || 4 + used - 1 <= data.len());
    // Re-encoded, the same pairs come back.
    let owned: Vec<(Vec<u8>, Vec<u8>)> = pairs
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    let again = header_map::serialize(owned.iter().map(|(k, v)| (k, v)));
    let back: Vec<(&[u8], &[u8])> = header_map::pairs(&again).collect();
    assert_eq!(back, pairs);
    // Each format read from the block: what is read as a context renders consistently.
    let carrier = Carrier::from_pairs(pairs.iter().copied());
    for f in Format::ALL {
        if let Read::Context(ctx) = codec::extract(&carrier, f) {
            renders_consistently(&ctx, f.name());
            renders_consistently_more(&ctx, f.name());
        }
    }
    let _ = carrier.tracestate_parts().map(tracestate::parse);
    for h in Header::ALL {
        let _ = carrier.get(h);
    }
}
