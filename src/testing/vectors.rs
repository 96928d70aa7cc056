//! Ids and small builders for codec test vectors.

use crate::codec::HeaderValue;
use crate::codec::b3multi::{self, MultiHeaders};
use crate::codec::tracestate::{self, TraceState};
use crate::context::{Sampling, SpanContext, SpanId, TraceId};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

pub fn hex<const N: usize>(s: &str) -> [u8; N] {
    assert_eq!(s.len(), 2 * N, "test vector {s:?} has the wrong length");
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// A trace id from its full 32-hex spelling.
pub fn tid(s: &str) -> TraceId {
    TraceId(hex::<16>(s))
}

pub fn sid(s: &str) -> SpanId {
    SpanId(hex::<8>(s))
}

/// A context as a parser returns it before format-specific fields are set.
pub fn ctx(trace32: &str, span: &str, sampling: Sampling) -> SpanContext {
    SpanContext::new(tid(trace32), sid(span), sampling)
}

pub fn with_parent(c: SpanContext, parent: &str) -> SpanContext {
    SpanContext {
        parent_id: Some(sid(parent)),
        ..c
    }
}

pub fn short(c: SpanContext) -> SpanContext {
    SpanContext {
        short_trace_id: true,
        ..c
    }
}

pub fn random(c: SpanContext) -> SpanContext {
    SpanContext {
        random_trace_id: true,
        ..c
    }
}

pub fn firehose(c: SpanContext) -> SpanContext {
    SpanContext {
        firehose: true,
        ..c
    }
}

pub fn multi<'a>(
    trace_id: Option<&'a str>,
    span_id: Option<&'a str>,
    parent_span_id: Option<&'a str>,
    sampled: Option<&'a str>,
    flags: Option<&'a str>,
) -> MultiHeaders<'a> {
    MultiHeaders {
        trace_id: trace_id.map(str::as_bytes),
        span_id: span_id.map(str::as_bytes),
        parent_span_id: parent_span_id.map(str::as_bytes),
        sampled: sampled.map(str::as_bytes),
        flags: flags.map(str::as_bytes),
    }
}

pub fn multi_from_values(v: &b3multi::MultiValues) -> MultiHeaders<'_> {
    MultiHeaders {
        trace_id: Some(v.trace_id.as_bytes()),
        span_id: Some(v.span_id.as_bytes()),
        parent_span_id: v.parent_span_id.as_ref().map(HeaderValue::as_bytes),
        sampled: v.sampled.as_ref().map(HeaderValue::as_bytes),
        flags: v.flags.as_ref().map(HeaderValue::as_bytes),
    }
}

pub fn ts(parts: &[&str]) -> TraceState {
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    tracestate::parse(&parts)
}

// W3C test-suite ids.
pub const W3C_TRACE: &str = "12345678901234567890123456789012";
pub const W3C_SPAN: &str = "1234567890123456";
// W3C specification / OpenTelemetry ids.
pub const OTEL_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const OTEL_SPAN: &str = "00f067aa0ba902b7";
