//! Jaeger `uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}`.
//!
//! Jaeger clients drop leading zeros from ids and some proxies URL-encode the colons
//! (`%3A`); both are read. Ids are written in full width with lowercase hex.

use super::hex::trim_ows;
use super::value::HeaderValue;
use super::{Carrier, Header, Read};
use crate::context::{Sampling, SpanContext, SpanId, TraceId};

const SAMPLED: u8 = 0x01;
const DEBUG: u8 = 0x02;
const FIREHOSE: u8 = 0x08;

/// Decodes 1..=2*N hex digits (either case, as Jaeger clients print with %x or %X) into a
/// right-aligned big-endian array.
fn decode_var_hex<const N: usize>(src: &[u8]) -> Option<[u8; N]> {
    if src.is_empty() || src.len() > 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    let mut nibbles = src.iter().rev();
    for dst in out.iter_mut().rev() {
        let lo = nibbles
            .next()
            .map(|b| hex_any_case(*b))
            .unwrap_or(Some(0))?;
        let hi = nibbles
            .next()
            .map(|b| hex_any_case(*b))
            .unwrap_or(Some(0))?;
        *dst = (hi << 4) | lo;
    }
    Some(out)
}

fn hex_any_case(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits on `:` or on its URL-encoded form `%3A` / `%3a`.
fn fields(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(v);
    std::iter::from_fn(move || {
        let s = rest?;
        let mut i = 0;
        while i < s.len() {
            if s.get(i) == Some(&b':') {
                rest = s.get(i + 1..);
                return s.get(..i);
            }
            if s.get(i) == Some(&b'%') && matches!(s.get(i + 1..i + 3), Some(b"3A" | b"3a")) {
                rest = s.get(i + 3..);
                return s.get(..i);
            }
            i += 1;
        }
        rest = None;
        Some(s)
    })
}

pub fn parse(raw: &[u8]) -> Option<SpanContext> {
    let v = trim_ows(raw);
    let mut it = fields(v);
    let trace_hex = it.next()?;
    let span_hex = it.next()?;
    let parent_hex = it.next()?;
    let flags_hex = it.next()?;
    if it.next().is_some() {
        return None;
    }
    let trace_id = TraceId(decode_var_hex::<16>(trace_hex)?);
    let span_id = SpanId(decode_var_hex::<8>(span_hex)?);
    if !trace_id.is_valid() || !span_id.is_valid() {
        return None;
    }
    // Parent 0 means "none" (the field is deprecated in Jaeger); so does an empty field,
    // which OpenTelemetry's propagators never read. A malformed one is still rejected.
    let parent = match parent_hex {
        [] => SpanId([0; 8]),
        hex => SpanId(decode_var_hex::<8>(hex)?),
    };
    let [flags] = decode_var_hex::<1>(flags_hex)?;
    // Debug counts only with the sampled bit (Jaeger sets it only on sampled spans;
    // OpenTelemetry's Jaeger propagators read 0x02 only next to 0x01).
    let sampling = match (flags & SAMPLED != 0, flags & DEBUG != 0) {
        (true, true) => Sampling::Debug,
        (true, false) => Sampling::Sampled,
        (false, _) => Sampling::NotSampled,
    };
    let mut ctx = SpanContext::new(trace_id, span_id, sampling);
    ctx.parent_id = parent.is_valid().then_some(parent);
    ctx.short_trace_id = trace_hex.len() <= 16;
    ctx.firehose = flags & FIREHOSE != 0;
    Some(ctx)
}

pub fn render(ctx: &SpanContext) -> HeaderValue {
    let mut out = HeaderValue::new();
    if ctx.short_trace_id && ctx.trace_id.fits_64_bits() {
        out.push_hex(&ctx.trace_id.low_half());
    } else {
        out.push_hex(&ctx.trace_id.0);
    }
    out.push(b':');
    out.push_hex(&ctx.span_id.0);
    out.push(b':');
    match ctx.parent_id {
        Some(p) => out.push_hex(&p.0),
        None => out.push(b'0'),
    }
    out.push(b':');
    let mut flags = match ctx.sampling {
        Sampling::Debug => SAMPLED | DEBUG,
        Sampling::Sampled => SAMPLED,
        Sampling::NotSampled | Sampling::Deferred => 0,
    };
    if ctx.firehose {
        flags |= FIREHOSE;
    }
    // One hex digit, as Jaeger's clients print it (`%x`).
    out.push(match flags {
        0..=9 => b'0' + flags,
        _ => b'a' + (flags - 10),
    });
    out
}

/// Reads `uber-trace-id`. A repeated header is read by its first value, as OpenTelemetry's
/// Jaeger propagators (Go's `Header.Get`) and Jaeger's clients do.
pub fn extract(carrier: &Carrier<'_>) -> Read {
    match carrier.first(Header::UberTraceId) {
        None => Read::Absent,
        Some(v) => parse(v).map_or(Read::Invalid, Read::Context),
    }
}

pub fn inject(ctx: &SpanContext, emit: &mut impl FnMut(Header, Option<HeaderValue>)) {
    emit(Header::UberTraceId, Some(render(ctx)));
}

#[cfg(test)]
mod tests;
