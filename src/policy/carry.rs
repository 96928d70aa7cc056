//! Step 3, for the formats that carry more than ids: what arrived with a trace goes on
//! while that trace does, and only then. Datadog's `x-datadog-origin` and `x-datadog-tags`
//! are left as they arrived; X-Ray's own fields (`Self=`, `Lineage=`, …) are kept around
//! the new Parent and Sampled. On another trace, the codec's rendering stands: no origin,
//! tags with `_dd.p.tid` alone, an `X-Amzn-Trace-Id` with Root, Parent and Sampled.

use super::plan::Op;
use crate::codec::hex::trim_ows;
use crate::codec::value::HEADER_VALUE_CAPACITY;
use crate::codec::{Carrier, Format, Header, HeaderValue, PerHeader, Read, Slot, datadog, xray};
use crate::context::SpanContext;

/// After `format`'s headers were set for `ctx`.
pub(super) fn carry(
    ops: &mut PerHeader<Op>,
    carrier: &Carrier<'_>,
    format: Format,
    ctx: &SpanContext,
) {
    match format {
        Format::Datadog => {
            let same_trace =
                matches!(datadog::extract(carrier), Read::Context(c) if c.trace_id == ctx.trace_id);
            if same_trace {
                // Both were checked by the parse; a repeated one is not carried (its first
                // value would have to be written, and tags may be longer than a value
                // tracejoin renders).
                for h in [Header::XDatadogOrigin, Header::XDatadogTags] {
                    if let Slot::One(arrived) = carrier.get(h) {
                        ops[h] = as_read(arrived);
                    }
                }
            }
        }
        Format::XRay => {
            let Some(arrived) = carrier.first(Header::XAmznTraceId) else {
                return;
            };
            if let Some(v) = xray::render_keeping(ctx, arrived) {
                ops[Header::XAmznTraceId] = match carrier.get(Header::XAmznTraceId) {
                    Slot::One(cur) if cur == v.as_bytes() => Op::Keep,
                    // Kept fields past an inline value's room: text (the rare case).
                    _ if v.as_bytes().len() > HEADER_VALUE_CAPACITY => {
                        Op::SetText(v.as_str().to_owned())
                    }
                    _ => Op::Set(HeaderValue::from_literal(v.as_bytes())),
                };
            }
        }
        Format::TraceContext | Format::B3 | Format::B3Multi | Format::Jaeger | Format::OtTrace => {}
    }
}

/// A value carried as the parse read it: without the whitespace around it (which an HTTP/1
/// codec strips, but a header map set by other means may hold).
fn as_read(arrived: &[u8]) -> Op {
    let value = trim_ows(arrived);
    if value.len() == arrived.len() {
        Op::Keep
    } else if value.is_empty() || !value.iter().all(u8::is_ascii_graphic) {
        // Whitespace alone, or spaces inside too: what tracejoin writes is visible ASCII
        // only, so such a value is not written but removed (the context goes on).
        Op::Remove
    } else if value.len() <= HEADER_VALUE_CAPACITY {
        Op::Set(HeaderValue::from_literal(value))
    } else {
        // Printable ASCII: the parse checked it.
        Op::SetText(std::str::from_utf8(value).unwrap_or_default().to_owned())
    }
}

#[cfg(test)]
mod tests;
