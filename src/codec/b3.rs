//! Zipkin B3, single header: `b3: {trace}-{span}[-{sampling}[-{parent}]]` or `b3: {sampling}`.
//! The multi-header form is [`super::b3multi`].

use super::hex::{decode_span_id, decode_trace_id, trim_ows};
use super::value::HeaderValue;
use super::{Carrier, Header, Read};
use crate::context::{Sampling, SpanContext};

/// What a B3 carrier holds: a full context, or only a sampling decision (`b3: 0`, or
/// `x-b3-sampled` without ids), which B3 allows on its own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum B3 {
    Context(SpanContext),
    SamplingOnly(Sampling),
}

impl B3 {
    /// What a parse means to the policy: a context, a lone decision, or nothing valid.
    pub fn read(parsed: Option<B3>) -> Read {
        match parsed {
            Some(B3::Context(c)) => Read::Context(c),
            Some(B3::SamplingOnly(s)) => Read::SamplingOnly(s),
            None => Read::Invalid,
        }
    }
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
pub fn parse(raw: &[u8]) -> Option<B3> {
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

pub(super) fn push_trace_id(out: &mut HeaderValue, ctx: &SpanContext) {
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
pub fn render(ctx: &SpanContext) -> HeaderValue {
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

/// A lone sampling decision (`b3: 0|1|d`); none when deferred.
pub fn render_sampling(sampling: Sampling) -> Option<HeaderValue> {
    single_flag(sampling).map(|flag| HeaderValue::from_literal(&[flag]))
}

/// Reads `b3`. A repeated header is read by its first value: B3 ("when extracting state
/// headers, the first value wins"), as Brave and OpenTelemetry Go do.
pub fn extract(carrier: &Carrier<'_>) -> Read {
    match carrier.first(Header::B3) {
        None => Read::Absent,
        Some(v) => B3::read(parse(v)),
    }
}

pub fn inject(ctx: &SpanContext, emit: &mut impl FnMut(Header, Option<HeaderValue>)) {
    emit(Header::B3, Some(render(ctx)));
}

/// Writes a lone, decided sampling state.
pub fn inject_sampling(sampling: Sampling, emit: &mut impl FnMut(Header, Option<HeaderValue>)) {
    emit(Header::B3, render_sampling(sampling));
}

#[cfg(test)]
mod tests;
