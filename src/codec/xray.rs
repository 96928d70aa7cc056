//! AWS X-Ray: `X-Amzn-Trace-Id: Root=1-{8 hex}-{24 hex};Parent={16 hex};Sampled={0|1|?}`.
//!
//! The Root's two hex parts (epoch seconds, 96 random bits) are the 128-bit trace id, as
//! OpenTelemetry's xray propagators (Go, Python) map it. Fields are `;`-separated
//! `key=value` pairs, in any order, with optional whitespace around them; keys are
//! case-sensitive. `Sampled=?` (and no `Sampled` at all) is a decision not made yet
//! (AWS's documentation; OpenTelemetry Go reads `?` as not sampled, Python rejects it).
//! Other fields (`Self=` from a load balancer, `Lineage=` from Lambda) belong to the
//! trace: [`render_keeping`] carries them while that trace goes on.

use super::hex::{decode_lower_hex, decode_span_id, trim_ows};
use super::value::{HeaderValue, XRayValue};
use super::{Carrier, Header, Read};
use crate::context::{Sampling, SpanContext, TraceId};

/// `1-` + 8 hex + `-` + 24 hex.
const ROOT_LEN: usize = 35;

/// Splits one field into key and value at its first `=`, both trimmed; `None` without one
/// or with an empty key.
fn key_value(field: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = field.iter().position(|b| *b == b'=')?;
    let key = trim_ows(field.get(..eq)?);
    let value = trim_ows(field.get(eq + 1..)?);
    (!key.is_empty()).then_some((key, value))
}

fn is_own_key(key: &[u8]) -> bool {
    matches!(key, b"Root" | b"Parent" | b"Sampled")
}

/// Visible ASCII but `;`, for the fields tracejoin does not interpret.
fn printable(v: &[u8]) -> bool {
    v.iter().all(|b| matches!(b, 0x21..=0x7e) && *b != b';')
}

fn decode_root(root: &[u8]) -> Option<TraceId> {
    if root.len() != ROOT_LEN {
        return None;
    }
    let (version, epoch, unique) = (root.get(..2)?, root.get(2..10)?, root.get(10..)?);
    let (dash, unique) = unique.split_first()?;
    if version != b"1-" || *dash != b'-' {
        return None;
    }
    let mut hex = [0u8; 32];
    for (dst, src) in hex.iter_mut().zip(epoch.iter().chain(unique.iter())) {
        *dst = *src;
    }
    let id = TraceId(decode_lower_hex::<16>(&hex)?);
    id.is_valid().then_some(id)
}

/// Parses `X-Amzn-Trace-Id`. Root and Parent are required (without Parent there is no span
/// to continue, as both OpenTelemetry propagators read it); a field without `=`, an empty
/// field (a trailing `;`), a repeated Root/Parent/Sampled or a field with control or
/// non-ASCII bytes makes the value invalid.
pub fn parse(raw: &[u8]) -> Option<SpanContext> {
    let (mut root, mut parent, mut sampled) = (None, None, None);
    for field in trim_ows(raw).split(|b| *b == b';') {
        let (key, value) = key_value(trim_ows(field))?;
        let slot = match key {
            b"Root" => &mut root,
            b"Parent" => &mut parent,
            b"Sampled" => &mut sampled,
            _ if printable(key) && printable(value) => continue,
            _ => return None,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    let trace_id = decode_root(root?)?;
    let span_id = decode_span_id(parent?)?;
    let sampling = match sampled {
        None | Some(b"?") => Sampling::Deferred,
        Some(b"0") => Sampling::NotSampled,
        Some(b"1") => Sampling::Sampled,
        Some(_) => return None,
    };
    Some(SpanContext::new(trace_id, span_id, sampling))
}

fn sampled_flag(sampling: Sampling) -> u8 {
    match sampling {
        Sampling::Deferred => b'?',
        Sampling::NotSampled => b'0',
        Sampling::Sampled | Sampling::Debug => b'1',
    }
}

/// `Root=…;Parent=…;Sampled=…` (74 characters); debug is written as sampled.
pub fn render(ctx: &SpanContext) -> HeaderValue {
    let mut out = HeaderValue::from_literal(b"Root=1-");
    let (epoch, unique) = ctx.trace_id.0.split_at(4);
    out.push_hex(epoch);
    out.push(b'-');
    out.push_hex(unique);
    out.push_str(b";Parent=");
    out.push_hex(&ctx.span_id.0);
    out.push_str(b";Sampled=");
    out.push(sampled_flag(ctx.sampling));
    out
}

/// `ctx` over the request's `arrived` header, when that belongs to the same trace (else
/// `None`): [`render`] followed by the arrived fields tracejoin does not interpret, in their
/// order and without whitespace, as many whole fields as fit the value's bound (the rest is
/// dropped). A value already in that form comes out unchanged, so it is not rewritten.
pub fn render_keeping(ctx: &SpanContext, arrived: &[u8]) -> Option<XRayValue> {
    if parse(arrived)?.trace_id != ctx.trace_id {
        return None;
    }
    let mut out = XRayValue::from_literal(render(ctx).as_bytes());
    for field in trim_ows(arrived).split(|b| *b == b';') {
        let Some((key, value)) = key_value(trim_ows(field)) else {
            continue;
        };
        // Whole fields only, without the whitespace they may have arrived with.
        if !is_own_key(key) && key.len() + value.len() + 2 <= out.remaining() {
            out.push(b';');
            out.push_str(key);
            out.push(b'=');
            out.push_str(value);
        }
    }
    Some(out)
}

/// Reads `X-Amzn-Trace-Id`; a repeated header counts by its first value (OpenTelemetry Go's
/// carrier; Python's propagator ignores a repeated one).
pub fn extract(carrier: &Carrier<'_>) -> Read {
    match carrier.first(Header::XAmznTraceId) {
        None => Read::Absent,
        Some(v) => parse(v).map_or(Read::Invalid, Read::Context),
    }
}

pub fn inject(ctx: &SpanContext, emit: &mut impl FnMut(Header, Option<HeaderValue>)) {
    emit(Header::XAmznTraceId, Some(render(ctx)));
}

#[cfg(test)]
mod tests;
