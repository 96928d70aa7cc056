//! Datadog: `x-datadog-trace-id` and `x-datadog-parent-id` (decimal uint64),
//! `x-datadog-sampling-priority` (-1, 0, 1, 2), `x-datadog-origin` and `x-datadog-tags`
//! (`_dd.p.tid` carries the high 64 bits of a 128-bit trace id, 16 lowercase hex), as the
//! dd-trace libraries read and write them.
//!
//! Sampling priorities, after dd-trace's own mapping to B3 (`> 1` is `x-b3-flags: 1`):
//! -1 (user reject) and 0 (auto reject) read as not sampled, 1 (auto keep) as sampled, 2
//! (user keep) as debug; written as 0, 1 and 2, and left out when no decision was made.
//!
//! `x-datadog-origin` and the other `_dd.p.*` tags belong to the trace they arrived with:
//! they go on while that trace does (the policy keeps them, `policy::write`), and a
//! context rendered here carries neither, only `_dd.p.tid` for a 128-bit trace id.

use super::hex::{decode_lower_hex, trim_ows};
use super::value::HeaderValue;
use super::{Carrier, Header, Read};
use crate::context::{Sampling, SpanContext, SpanId, TraceId};

/// dd-trace's default `DD_TRACE_X_DATADOG_TAGS_MAX_LENGTH`: longer tags are not decoded.
pub const MAX_TAGS_LEN: usize = 512;

/// The tag that carries the high half of a 128-bit trace id.
const TID_KEY: &[u8] = b"_dd.p.tid";

/// The raw values of the Datadog headers, each `None` when absent.
#[derive(Clone, Copy, Default, Debug)]
pub struct DatadogHeaders<'a> {
    pub trace_id: Option<&'a [u8]>,
    pub parent_id: Option<&'a [u8]>,
    pub sampling_priority: Option<&'a [u8]>,
    pub origin: Option<&'a [u8]>,
    pub tags: Option<&'a [u8]>,
}

impl DatadogHeaders<'_> {
    pub fn any_present(&self) -> bool {
        self.trace_id.is_some()
            || self.parent_id.is_some()
            || self.sampling_priority.is_some()
            || self.origin.is_some()
            || self.tags.is_some()
    }
}

/// A non-zero decimal uint64 without sign or spaces inside (dd-trace: `int()`, `> 0`,
/// `< 2**64`).
fn decode_decimal(src: &[u8]) -> Option<u64> {
    if src.is_empty() || src.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for b in src {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    (n != 0).then_some(n)
}

fn priority(src: &[u8]) -> Option<Sampling> {
    match src {
        b"-1" | b"0" => Some(Sampling::NotSampled),
        b"1" => Some(Sampling::Sampled),
        b"2" => Some(Sampling::Debug),
        _ => None,
    }
}

/// Checks `x-datadog-tags` (`key=value` pairs separated by commas; keys printable ASCII
/// without space, comma or `=`, values printable ASCII without comma) and returns
/// `_dd.p.tid`'s high half when present. `None`: not decodable.
fn decode_tags(src: &[u8]) -> Option<Option<[u8; 8]>> {
    if src.len() > MAX_TAGS_LEN {
        return None;
    }
    let mut tid = None;
    if src.is_empty() {
        return Some(tid);
    }
    for pair in src.split(|b| *b == b',') {
        let eq = pair.iter().position(|b| *b == b'=')?;
        let (key, value) = (pair.get(..eq)?, pair.get(eq + 1..)?);
        let key_ok = !key.is_empty() && key.iter().all(|b| matches!(b, 0x21..=0x7e));
        let value_ok = value.iter().all(|b| matches!(b, 0x20..=0x7e) && *b != b',');
        if !key_ok || !value_ok {
            return None;
        }
        if key == TID_KEY {
            let high = decode_lower_hex::<8>(value)?;
            if high == [0; 8] || tid.replace(high).is_some() {
                return None;
            }
        }
    }
    Some(tid)
}

/// Parses the Datadog headers into a context. A trace id without a parent id (Datadog
/// Synthetics starts traces so) has no span to continue and is not a context here.
pub fn parse(h: &DatadogHeaders<'_>) -> Option<SpanContext> {
    let low = decode_decimal(trim_ows(h.trace_id?))?;
    let span = decode_decimal(trim_ows(h.parent_id?))?;
    let sampling = match h.sampling_priority.map(trim_ows) {
        None => Sampling::Deferred,
        Some(p) => priority(p)?,
    };
    if let Some(origin) = h.origin.map(trim_ows)
        && (origin.is_empty() || !origin.iter().all(|b| matches!(b, 0x20..=0x7e)))
    {
        return None;
    }
    let high = match h.tags {
        None => None,
        Some(t) => decode_tags(trim_ows(t))?,
    };
    let trace_id = match high {
        Some(high) => {
            let mut id = [0u8; 16];
            for (dst, src) in id
                .iter_mut()
                .zip(high.iter().chain(low.to_be_bytes().iter()))
            {
                *dst = *src;
            }
            TraceId(id)
        }
        None => TraceId::from_low_half(low.to_be_bytes()),
    };
    let mut ctx = SpanContext::new(trace_id, SpanId(span.to_be_bytes()), sampling);
    ctx.short_trace_id = high.is_none();
    Some(ctx)
}

fn push_decimal(out: &mut HeaderValue, n: u64) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut rest = n;
    loop {
        if let Some(d) = digits.get_mut(len) {
            *d = b'0' + (rest % 10) as u8;
        }
        len += 1;
        rest /= 10;
        if rest == 0 || len >= digits.len() {
            break;
        }
    }
    for d in digits.iter().take(len).rev() {
        out.push(*d);
    }
}

/// The values to write; `None` means the header must not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatadogValues {
    pub trace_id: HeaderValue,
    pub parent_id: HeaderValue,
    pub sampling_priority: Option<HeaderValue>,
    /// `_dd.p.tid=…` for a 128-bit trace id.
    pub tags: Option<HeaderValue>,
}

/// Whether Datadog's headers can carry `ctx`: `x-datadog-trace-id` is the trace id's low
/// 64 bits and must not be 0 (dd-trace refuses it), so a 128-bit id whose low half is zero
/// has no Datadog form.
pub fn carries(ctx: &SpanContext) -> bool {
    ctx.trace_id.low_half() != [0; 8]
}

/// The values for `ctx` (meaningful where [`carries`] holds).
pub fn render(ctx: &SpanContext) -> DatadogValues {
    let mut trace_id = HeaderValue::new();
    push_decimal(&mut trace_id, u64::from_be_bytes(ctx.trace_id.low_half()));
    let mut parent_id = HeaderValue::new();
    push_decimal(&mut parent_id, u64::from_be_bytes(ctx.span_id.0));
    let sampling_priority = match ctx.sampling {
        Sampling::Deferred => None,
        Sampling::NotSampled => Some(HeaderValue::from_literal(b"0")),
        Sampling::Sampled => Some(HeaderValue::from_literal(b"1")),
        Sampling::Debug => Some(HeaderValue::from_literal(b"2")),
    };
    let tags = (!ctx.trace_id.fits_64_bits()).then(|| {
        let mut v = HeaderValue::from_literal(TID_KEY);
        v.push(b'=');
        v.push_hex(ctx.trace_id.0.get(..8).unwrap_or_default());
        v
    });
    DatadogValues {
        trace_id,
        parent_id,
        sampling_priority,
        tags,
    }
}

/// Reads the Datadog headers; a repeated one counts by its first value, as the Go and
/// Python carriers take it. Any of them without `x-datadog-trace-id` is invalid: an
/// origin, tags or a decision for a trace that is not there.
pub fn extract(carrier: &Carrier<'_>) -> Read {
    let h = DatadogHeaders {
        trace_id: carrier.first(Header::XDatadogTraceId),
        parent_id: carrier.first(Header::XDatadogParentId),
        sampling_priority: carrier.first(Header::XDatadogSamplingPriority),
        origin: carrier.first(Header::XDatadogOrigin),
        tags: carrier.first(Header::XDatadogTags),
    };
    if !h.any_present() {
        return Read::Absent;
    }
    parse(&h).map_or(Read::Invalid, Read::Context)
}

/// Writes every Datadog header for `ctx`: no origin, and tags with `_dd.p.tid` alone
/// (what arrived with the same trace is carried by the policy instead). A context Datadog
/// cannot carry removes them all: a Datadog app then starts a trace of its own rather than
/// read `x-datadog-trace-id: 0`.
pub fn inject(ctx: &SpanContext, emit: &mut impl FnMut(Header, Option<HeaderValue>)) {
    if !carries(ctx) {
        for header in [
            Header::XDatadogTraceId,
            Header::XDatadogParentId,
            Header::XDatadogSamplingPriority,
            Header::XDatadogOrigin,
            Header::XDatadogTags,
        ] {
            emit(header, None);
        }
        return;
    }
    let v = render(ctx);
    emit(Header::XDatadogTraceId, Some(v.trace_id));
    emit(Header::XDatadogParentId, Some(v.parent_id));
    emit(Header::XDatadogSamplingPriority, v.sampling_priority);
    emit(Header::XDatadogOrigin, None);
    emit(Header::XDatadogTags, v.tags);
}

#[cfg(test)]
mod tests;
