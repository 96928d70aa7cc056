//! The byte-level pieces every codec shares: lowercase hex ids and HTTP's optional
//! whitespace.

use crate::context::{SpanId, TraceId};

/// Lowercase hex digit value; uppercase is rejected because W3C and B3 both mandate
/// lowercase and a lenient reader would let two spellings of one id travel side by side.
#[inline]
pub(crate) fn lower_hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Decodes exactly `2 * N` lowercase hex digits.
pub(crate) fn decode_lower_hex<const N: usize>(src: &[u8]) -> Option<[u8; N]> {
    if src.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (dst, pair) in out.iter_mut().zip(src.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (*hi, *lo),
            _ => return None,
        };
        *dst = (lower_hex_value(hi)? << 4) | lower_hex_value(lo)?;
    }
    Some(out)
}

/// Decodes a 64-bit (16 hex) or 128-bit (32 hex) trace id; 64-bit ids are left-padded.
/// Returns the id and whether it arrived in the short form. All-zero ids are rejected.
pub(crate) fn decode_trace_id(src: &[u8]) -> Option<(TraceId, bool)> {
    let (id, short) = match src.len() {
        32 => (TraceId(decode_lower_hex::<16>(src)?), false),
        16 => (TraceId::from_low_half(decode_lower_hex::<8>(src)?), true),
        _ => return None,
    };
    id.is_valid().then_some((id, short))
}

/// Decodes a 16-hex span id; all-zero is rejected.
pub(crate) fn decode_span_id(src: &[u8]) -> Option<SpanId> {
    let id = SpanId(decode_lower_hex::<8>(src)?);
    id.is_valid().then_some(id)
}

/// Strips the optional whitespace (space, tab) HTTP allows around a header value.
pub fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}
