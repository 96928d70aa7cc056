//! Zipkin B3: the single `b3` header and the multi `x-b3-*` headers.

use super::value::HeaderValue;
use crate::context::{Sampling, SpanContext, decode_span_id, decode_trace_id, trim_ows};

/// What a B3 carrier holds: a full context, or only a sampling decision (`b3: 0`, or
/// `x-b3-sampled` without ids), which B3 allows on its own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum B3 {
    Context(SpanContext),
    SamplingOnly(Sampling),
}

fn single_sampling(v: &[u8]) -> Option<Sampling> {
    match v {
        b"0" => Some(Sampling::NotSampled),
        b"1" => Some(Sampling::Sampled),
        b"d" => Some(Sampling::Debug),
        _ => None,
    }
}

/// Parses `b3: {traceid}-{spanid}[-{sampling}[-{parentspanid}]]` or `b3: {sampling}`.
pub fn parse_single(raw: &[u8]) -> Option<B3> {
    let v = trim_ows(raw);
    if v.len() == 1 {
        return single_sampling(v).map(B3::SamplingOnly);
    }
    let mut fields = v.split(|b| *b == b'-');
    let (trace_id, short) = decode_trace_id(fields.next()?)?;
    let span_id = decode_span_id(fields.next()?)?;
    let sampling = match fields.next() {
        None => Sampling::Deferred,
        Some(s) => single_sampling(s)?,
    };
    let parent_id = match fields.next() {
        None => None,
        Some(p) => Some(decode_span_id(p)?),
    };
    if fields.next().is_some() {
        return None;
    }
    let mut ctx = SpanContext::new(trace_id, span_id, sampling);
    ctx.parent_id = parent_id;
    ctx.short_trace_id = short;
    Some(B3::Context(ctx))
}

fn push_trace_id(out: &mut HeaderValue, ctx: &SpanContext) {
    if ctx.short_trace_id && ctx.trace_id.fits_64_bits() {
        out.push_hex(&ctx.trace_id.low_half());
    } else {
        out.push_hex(&ctx.trace_id.0);
    }
}

/// The single header's sampling field; a deferred state has none.
fn single_flag(sampling: Sampling) -> Option<u8> {
    match sampling {
        Sampling::Deferred => None,
        Sampling::NotSampled => Some(b'0'),
        Sampling::Sampled => Some(b'1'),
        Sampling::Debug => Some(b'd'),
    }
}

/// Renders the single header. A deferred state is left out, as B3 allows.
pub fn render_single(ctx: &SpanContext) -> HeaderValue {
    let mut out = HeaderValue::new();
    push_trace_id(&mut out, ctx);
    out.push(b'-');
    out.push_hex(&ctx.span_id.0);
    if let Some(flag) = single_flag(ctx.sampling) {
        out.push(b'-');
        out.push(flag);
        if let Some(parent) = ctx.parent_id {
            out.push(b'-');
            out.push_hex(&parent.0);
        }
    }
    out
}

/// The raw values of the multi headers, each `None` when absent.
#[derive(Clone, Copy, Default, Debug)]
pub struct MultiHeaders<'a> {
    pub trace_id: Option<&'a [u8]>,
    pub span_id: Option<&'a [u8]>,
    pub parent_span_id: Option<&'a [u8]>,
    pub sampled: Option<&'a [u8]>,
    pub flags: Option<&'a [u8]>,
}

impl MultiHeaders<'_> {
    pub fn any_present(&self) -> bool {
        self.trace_id.is_some()
            || self.span_id.is_some()
            || self.parent_span_id.is_some()
            || self.sampled.is_some()
            || self.flags.is_some()
    }
}

/// Parses the multi headers. Trace and span id come together or not at all; `x-b3-sampled`
/// takes `0|1` and, leniently, `true|false`; `x-b3-flags: 1` is debug and implies sampled.
pub fn parse_multi(h: &MultiHeaders<'_>) -> Option<B3> {
    let debug = match h.flags.map(trim_ows) {
        None => false,
        Some(b"1") => true,
        Some(b"0") => false,
        Some(_) => return None,
    };
    // x-b3-sampled is validated even when debug overrides it: a bad value is never valid.
    let sampled = match h.sampled.map(trim_ows) {
        None => Sampling::Deferred,
        Some(b"1" | b"true") => Sampling::Sampled,
        Some(b"0" | b"false") => Sampling::NotSampled,
        Some(_) => return None,
    };
    let sampling = if debug { Sampling::Debug } else { sampled };
    match (h.trace_id, h.span_id) {
        (None, None) if h.parent_span_id.is_none() => {
            sampling.is_decided().then_some(B3::SamplingOnly(sampling))
        }
        (Some(t), Some(s)) => {
            let (trace_id, short) = decode_trace_id(trim_ows(t))?;
            let span_id = decode_span_id(trim_ows(s))?;
            let parent_id = match h.parent_span_id {
                None => None,
                Some(p) => Some(decode_span_id(trim_ows(p))?),
            };
            let mut ctx = SpanContext::new(trace_id, span_id, sampling);
            ctx.parent_id = parent_id;
            ctx.short_trace_id = short;
            Some(B3::Context(ctx))
        }
        _ => None,
    }
}

/// The values to write for the multi headers. `None` means the header must not be sent:
/// no parent, a deferred decision, or (for `x-b3-sampled`) debug, which `x-b3-flags`
/// carries and which implies sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MultiValues {
    pub trace_id: HeaderValue,
    pub span_id: HeaderValue,
    pub parent_span_id: Option<HeaderValue>,
    pub sampled: Option<HeaderValue>,
    pub flags: Option<HeaderValue>,
}

fn literal(s: &[u8]) -> HeaderValue {
    let mut v = HeaderValue::new();
    v.push_str(s);
    v
}

pub fn render_multi(ctx: &SpanContext) -> MultiValues {
    let mut trace_id = HeaderValue::new();
    push_trace_id(&mut trace_id, ctx);
    let mut span_id = HeaderValue::new();
    span_id.push_hex(&ctx.span_id.0);
    let parent_span_id = ctx.parent_id.map(|p| {
        let mut v = HeaderValue::new();
        v.push_hex(&p.0);
        v
    });
    let (sampled, flags) = multi_sampling(ctx.sampling);
    MultiValues {
        trace_id,
        span_id,
        parent_span_id,
        sampled,
        flags,
    }
}

/// `x-b3-sampled` and `x-b3-flags` for a decision (debug is carried by the flags alone).
pub fn multi_sampling(sampling: Sampling) -> (Option<HeaderValue>, Option<HeaderValue>) {
    match sampling {
        Sampling::Deferred => (None, None),
        Sampling::NotSampled => (Some(literal(b"0")), None),
        Sampling::Sampled => (Some(literal(b"1")), None),
        Sampling::Debug => (None, Some(literal(b"1"))),
    }
}

/// A lone sampling decision as the single header (`b3: 0|1|d`); none when deferred.
pub fn render_sampling_only(sampling: Sampling) -> Option<HeaderValue> {
    single_flag(sampling).map(|flag| literal(&[flag]))
}
