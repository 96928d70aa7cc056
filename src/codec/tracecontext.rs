//! W3C Trace Context (Level 2): `traceparent`. Its companion `tracestate` is in
//! [`super::tracestate`].

use super::hex::{decode_lower_hex, decode_span_id, trim_ows};
use super::value::HeaderValue;
use super::{Carrier, Header, Read};
use crate::context::{Sampling, SpanContext, TraceId};

const SAMPLED_FLAG: u8 = 0x01;
const RANDOM_FLAG: u8 = 0x02;
pub const VERSION_00_LEN: usize = 55;

/// Parses a traceparent value. Version 00 must be exactly 55 characters; a higher version
/// (not `ff`) is read by its version-00 prefix, as the spec asks of future versions.
pub fn parse(raw: &[u8]) -> Option<SpanContext> {
    let v = trim_ows(raw);
    let head = v.get(..VERSION_00_LEN)?;
    let version = decode_lower_hex::<1>(head.get(0..2)?)?;
    match version {
        [0x00] if v.len() != VERSION_00_LEN => return None,
        [0xff] => return None,
        // A future version may append fields, always behind a dash.
        _ if v.len() > VERSION_00_LEN && v.get(VERSION_00_LEN) != Some(&b'-') => return None,
        _ => {}
    }
    if head.get(2) != Some(&b'-') || head.get(35) != Some(&b'-') || head.get(52) != Some(&b'-') {
        return None;
    }
    let trace_id = TraceId(decode_lower_hex::<16>(head.get(3..35)?)?);
    if !trace_id.is_valid() {
        return None;
    }
    let span_id = decode_span_id(head.get(36..52)?)?;
    let [flags] = decode_lower_hex::<1>(head.get(53..55)?)?;
    let sampling = if flags & SAMPLED_FLAG != 0 {
        Sampling::Sampled
    } else {
        Sampling::NotSampled
    };
    let mut ctx = SpanContext::new(trace_id, span_id, sampling);
    ctx.random_trace_id = flags & RANDOM_FLAG != 0;
    Some(ctx)
}

/// Renders version 00. Unknown flag bits are zeroed, as the spec requires when propagating.
/// A deferred sampling state renders as not sampled: traceparent has no "undecided".
pub fn render(ctx: &SpanContext) -> HeaderValue {
    let mut out = HeaderValue::new();
    out.push_str(b"00-");
    out.push_hex(&ctx.trace_id.0);
    out.push(b'-');
    out.push_hex(&ctx.span_id.0);
    out.push(b'-');
    let mut flags = 0u8;
    if ctx.sampling.is_sampled() {
        flags |= SAMPLED_FLAG;
    }
    if ctx.random_trace_id {
        flags |= RANDOM_FLAG;
    }
    out.push_hex(&[flags]);
    out
}

/// Reads `traceparent`. More than one traceparent is invalid even when the values agree:
/// the W3C test suite's `test_traceparent_duplicated` expects a new trace (unlike B3 and
/// Jaeger, whose first value wins).
pub fn extract(carrier: &Carrier<'_>) -> Read {
    match carrier.single(Header::Traceparent) {
        Ok(None) => Read::Absent,
        Ok(Some(v)) => parse(v).map_or(Read::Invalid, Read::Context),
        Err(_) => Read::Invalid,
    }
}

/// Writes `ctx` as `traceparent` (tracestate is the policy's to decide).
pub fn inject(ctx: &SpanContext, emit: &mut impl FnMut(Header, Option<HeaderValue>)) {
    emit(Header::Traceparent, Some(render(ctx)));
}

#[cfg(test)]
mod tests;
