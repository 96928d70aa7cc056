//! OpenTracing's header format, as OpenTelemetry's `ottrace` propagator reads it:
//! `ot-tracer-traceid` (16 or 32 lowercase hex), `ot-tracer-spanid` (16),
//! `ot-tracer-sampled` (`true|false`, also `1|0`, any case). `ot-baggage-*` is not a trace
//! header and is left alone.
//!
//! The reference injectors write the trace id's low 64 bits only (Go: "trace ids MUST be
//! 64-bits"; Python the same, without leading zeros); tracejoin writes the full 128-bit id
//! (both read 32 hex digits), so every format carries the same trace, and a trace id that
//! arrived with 16 digits keeps that form, as in B3.

use super::b3::push_trace_id;
use super::hex::{decode_span_id, decode_trace_id, trim_ows};
use super::value::HeaderValue;
use super::{Carrier, Header, Read};
use crate::context::{Sampling, SpanContext};

/// The raw values of the three headers, each `None` when absent.
#[derive(Clone, Copy, Default, Debug)]
pub struct OtHeaders<'a> {
    pub trace_id: Option<&'a [u8]>,
    pub span_id: Option<&'a [u8]>,
    pub sampled: Option<&'a [u8]>,
}

/// Parses the headers. Trace and span id come together (Go: "require either both traceID
/// and spanID or none"); a lone `ot-tracer-sampled` carries no context and is invalid here.
/// No `ot-tracer-sampled` is a deferred decision (Go; Python reads it as not sampled).
pub fn parse(h: &OtHeaders<'_>) -> Option<SpanContext> {
    let sampling = match h.sampled.map(trim_ows) {
        None => Sampling::Deferred,
        Some(s) if s.eq_ignore_ascii_case(b"true") || s == b"1" => Sampling::Sampled,
        Some(s) if s.eq_ignore_ascii_case(b"false") || s == b"0" => Sampling::NotSampled,
        Some(_) => return None,
    };
    let (trace_id, short) = decode_trace_id(trim_ows(h.trace_id?))?;
    let span_id = decode_span_id(trim_ows(h.span_id?))?;
    let mut ctx = SpanContext::new(trace_id, span_id, sampling);
    ctx.short_trace_id = short;
    Some(ctx)
}

/// The values to write; no `ot-tracer-sampled` for a deferred decision, debug as `true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtValues {
    pub trace_id: HeaderValue,
    pub span_id: HeaderValue,
    pub sampled: Option<HeaderValue>,
}

pub fn render(ctx: &SpanContext) -> OtValues {
    let mut trace_id = HeaderValue::new();
    push_trace_id(&mut trace_id, ctx);
    let mut span_id = HeaderValue::new();
    span_id.push_hex(&ctx.span_id.0);
    let sampled = match ctx.sampling {
        Sampling::Deferred => None,
        Sampling::NotSampled => Some(HeaderValue::from_literal(b"false")),
        Sampling::Sampled | Sampling::Debug => Some(HeaderValue::from_literal(b"true")),
    };
    OtValues {
        trace_id,
        span_id,
        sampled,
    }
}

/// Reads the three headers; a repeated one counts by its first value (the Go carrier's
/// `Get`, Python's first element).
pub fn extract(carrier: &Carrier<'_>) -> Read {
    let h = OtHeaders {
        trace_id: carrier.first(Header::OtTracerTraceId),
        span_id: carrier.first(Header::OtTracerSpanId),
        sampled: carrier.first(Header::OtTracerSampled),
    };
    if h.trace_id.is_none() && h.span_id.is_none() && h.sampled.is_none() {
        return Read::Absent;
    }
    parse(&h).map_or(Read::Invalid, Read::Context)
}

pub fn inject(ctx: &SpanContext, emit: &mut impl FnMut(Header, Option<HeaderValue>)) {
    let v = render(ctx);
    emit(Header::OtTracerTraceId, Some(v.trace_id));
    emit(Header::OtTracerSpanId, Some(v.span_id));
    emit(Header::OtTracerSampled, v.sampled);
}

#[cfg(test)]
mod tests;
