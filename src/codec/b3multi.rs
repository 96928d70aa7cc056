//! Zipkin B3, multi headers: `x-b3-traceid`, `x-b3-spanid`, `x-b3-parentspanid`,
//! `x-b3-sampled`, `x-b3-flags`.

use super::b3::{B3, push_trace_id};
use super::hex::{decode_span_id, decode_trace_id, trim_ows};
use super::value::HeaderValue;
use super::{Carrier, Header, Read};
use crate::context::{Sampling, SpanContext};

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
/// takes `0|1` and, leniently, `true|false` in any case (OpenTelemetry Go lowercases it);
/// `x-b3-flags: 1` is debug and implies sampled, any other value is ignored (B3: "absent
/// or any other value can be ignored"; Finagle sends its flag bits as a number).
pub fn parse(h: &MultiHeaders<'_>) -> Option<B3> {
    let debug = h.flags.map(trim_ows) == Some(b"1");
    // x-b3-sampled is validated even when debug overrides it: a bad value is never valid.
    let sampled = match h.sampled.map(trim_ows) {
        None => Sampling::Deferred,
        Some(b"1") => Sampling::Sampled,
        Some(b"0") => Sampling::NotSampled,
        Some(v) if v.eq_ignore_ascii_case(b"true") => Sampling::Sampled,
        Some(v) if v.eq_ignore_ascii_case(b"false") => Sampling::NotSampled,
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

pub fn render(ctx: &SpanContext) -> MultiValues {
    let mut trace_id = HeaderValue::new();
    push_trace_id(&mut trace_id, ctx);
    let mut span_id = HeaderValue::new();
    span_id.push_hex(&ctx.span_id.0);
    let parent_span_id = ctx.parent_id.map(|p| {
        let mut v = HeaderValue::new();
        v.push_hex(&p.0);
        v
    });
    let (sampled, flags) = render_sampling(ctx.sampling);
    MultiValues {
        trace_id,
        span_id,
        parent_span_id,
        sampled,
        flags,
    }
}

/// `x-b3-sampled` and `x-b3-flags` for a decision (debug is carried by the flags alone).
pub fn render_sampling(sampling: Sampling) -> (Option<HeaderValue>, Option<HeaderValue>) {
    match sampling {
        Sampling::Deferred => (None, None),
        Sampling::NotSampled => (Some(HeaderValue::from_literal(b"0")), None),
        Sampling::Sampled => (Some(HeaderValue::from_literal(b"1")), None),
        Sampling::Debug => (None, Some(HeaderValue::from_literal(b"1"))),
    }
}

/// Reads the multi headers, each repeated one by its first value: B3 ("when extracting
/// state headers, the first value wins"), as Brave and OpenTelemetry Go do.
pub fn extract(carrier: &Carrier<'_>) -> Read {
    let h = MultiHeaders {
        trace_id: carrier.first(Header::XB3TraceId),
        span_id: carrier.first(Header::XB3SpanId),
        parent_span_id: carrier.first(Header::XB3ParentSpanId),
        sampled: carrier.first(Header::XB3Sampled),
        flags: carrier.first(Header::XB3Flags),
    };
    if !h.any_present() {
        return Read::Absent;
    }
    B3::read(parse(&h))
}

/// Writes every multi header: `None` for the ones `ctx` must not carry.
pub fn inject(ctx: &SpanContext, emit: &mut impl FnMut(Header, Option<HeaderValue>)) {
    let v = render(ctx);
    emit(Header::XB3TraceId, Some(v.trace_id));
    emit(Header::XB3SpanId, Some(v.span_id));
    emit(Header::XB3ParentSpanId, v.parent_span_id);
    emit(Header::XB3Sampled, v.sampled);
    emit(Header::XB3Flags, v.flags);
}

/// Writes a lone, decided sampling state (`x-b3-sampled: 0|1` or `x-b3-flags: 1`).
pub fn inject_sampling(sampling: Sampling, emit: &mut impl FnMut(Header, Option<HeaderValue>)) {
    let (sampled, flags) = render_sampling(sampling);
    emit(Header::XB3Sampled, sampled);
    emit(Header::XB3Flags, flags);
}

#[cfg(test)]
mod tests;
