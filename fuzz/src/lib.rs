//! Oracles shared by the fuzz targets: what a well-formed trace header looks like, written
//! independently of the crate's codecs (simple rules over bytes, as
//! `tools/tracejoin_tools/envoy/trace_headers.py` states them), so a codec bug cannot hide behind itself.

use tracejoin::codec::Header;

pub mod h2;
pub mod hpack;
pub mod http1;
pub mod stream;
pub mod tls;

/// The longest tracestate the filter may send (W3C: at least 512 must be kept).
pub const TRACESTATE_MAX_LEN: usize = 512;
/// Most tracestate list members.
pub const TRACESTATE_MAX_MEMBERS: usize = 32;

pub fn is_lower_hex(v: &[u8]) -> bool {
    v.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An id: one of `lens` lowercase hex digits, not all zero.
pub fn id_ok(v: &[u8], lens: &[usize]) -> bool {
    lens.contains(&v.len()) && is_lower_hex(v) && v.iter().any(|b| *b != b'0')
}

/// Visible ASCII only (no space, no control bytes, nothing above 0x7e), not empty.
pub fn visible_ascii(v: &[u8]) -> bool {
    !v.is_empty() && v.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// `00-<32 hex, not all zero>-<16 hex, not all zero>-0[0-3]` (the filter only ever sets
/// the sampled and random flags).
pub fn traceparent_ok(v: &[u8]) -> bool {
    v.len() == 55
        && v.starts_with(b"00-")
        && id_ok(&v[3..35], &[32])
        && v[35] == b'-'
        && id_ok(&v[36..52], &[16])
        && v[52] == b'-'
        && v[53] == b'0'
        && matches!(v[54], b'0'..=b'3')
}

/// `{trace16|trace32}-{span16}[-{0|1|d}[-{parent16}]]`, or a lone `0|1|d`.
pub fn b3_single_ok(v: &[u8]) -> bool {
    if matches!(v, b"0" | b"1" | b"d") {
        return true;
    }
    let parts: Vec<&[u8]> = v.split(|b| *b == b'-').collect();
    match parts.as_slice() {
        [t, s] => id_ok(t, &[16, 32]) && id_ok(s, &[16]),
        [t, s, f] => id_ok(t, &[16, 32]) && id_ok(s, &[16]) && matches!(*f, b"0" | b"1" | b"d"),
        [t, s, f, p] => {
            id_ok(t, &[16, 32])
                && id_ok(s, &[16])
                && matches!(*f, b"0" | b"1" | b"d")
                && id_ok(p, &[16])
        }
        _ => false,
    }
}

/// `{trace16|trace32}:{span16}:{parent16|0}:{0|1|3|8|9|b}` as the filter renders it
/// (full-width lowercase ids; sampled, debug with sampled, each with or without firehose;
/// Jaeger readers accept more, the filter writes only this).
pub fn uber_ok(v: &[u8]) -> bool {
    let parts: Vec<&[u8]> = v.split(|b| *b == b':').collect();
    match parts.as_slice() {
        [t, s, p, f] => {
            id_ok(t, &[16, 32])
                && id_ok(s, &[16])
                && (*p == b"0" || id_ok(p, &[16]))
                && matches!(*f, b"0" | b"1" | b"3" | b"8" | b"9" | b"b")
        }
        _ => false,
    }
}

/// The current W3C key grammar: `( lcalpha / DIGIT ) 0*255 ( keychar )`, `@` a keychar.
fn ts_key_ok(key: &[u8]) -> bool {
    let keychar =
        |b: &u8| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@');
    (1..=256).contains(&key.len())
        && (key[0].is_ascii_lowercase() || key[0].is_ascii_digit())
        && key[1..].iter().all(keychar)
}

fn ts_value_ok(value: &[u8]) -> bool {
    (1..=256).contains(&value.len())
        && value
            .iter()
            .all(|b| (0x20..=0x7e).contains(b) && *b != b',' && *b != b'=')
        && value.last() != Some(&b' ')
}

/// One list member `key=value` (already stripped of surrounding whitespace); its key.
pub fn ts_member(member: &[u8]) -> Option<&[u8]> {
    let eq = member.iter().position(|b| *b == b'=')?;
    let (key, value) = (&member[..eq], &member[eq + 1..]);
    (ts_key_ok(key) && ts_value_ok(value)).then_some(key)
}

/// Strips spaces and tabs at both ends.
pub fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// What the W3C rules make of (possibly repeated) tracestate headers: the members in
/// order, a repeated key's first member only, or `None` when the list is invalid (a bad
/// member, more than 32 distinct keys).
pub fn ts_members<'a>(parts: &[&'a [u8]]) -> Option<Vec<&'a [u8]>> {
    let mut members: Vec<&'a [u8]> = Vec::new();
    let mut keys: Vec<&'a [u8]> = Vec::new();
    for part in parts {
        for raw in part.split(|b| *b == b',') {
            let m = trim_ows(raw);
            if m.is_empty() {
                continue;
            }
            let key = ts_member(m)?;
            if keys.contains(&key) {
                continue;
            }
            keys.push(key);
            members.push(m);
        }
    }
    (members.len() <= TRACESTATE_MAX_MEMBERS).then_some(members)
}

/// A tracestate as the filter may send it: non-empty, within 512 characters, members
/// without padding or empty entries, all valid, keys unique, at most 32. Printable ASCII
/// (a value may contain spaces, as the spec allows).
pub fn tracestate_ok(v: &[u8]) -> bool {
    if v.is_empty() || v.len() > TRACESTATE_MAX_LEN {
        return false;
    }
    if !v.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return false;
    }
    let raw: Vec<&[u8]> = v.split(|b| *b == b',').collect();
    if raw
        .iter()
        .any(|m| m.is_empty() || trim_ows(m).len() != m.len())
    {
        return false;
    }
    ts_members(&[v]).is_some()
}

/// Whether `v` is a well-formed value for `h` as the filter writes it.
pub fn header_value_ok(h: Header, v: &[u8]) -> bool {
    match h {
        Header::Traceparent => traceparent_ok(v),
        Header::Tracestate => tracestate_ok(v),
        Header::B3 => b3_single_ok(v),
        Header::XB3TraceId => id_ok(v, &[16, 32]),
        Header::XB3SpanId | Header::XB3ParentSpanId => id_ok(v, &[16]),
        Header::XB3Sampled => matches!(v, b"0" | b"1"),
        Header::XB3Flags => v == b"1",
        Header::UberTraceId => uber_ok(v),
        Header::XDatadogTraceId | Header::XDatadogParentId => decimal_id_ok(v),
        Header::XDatadogSamplingPriority => matches!(v, b"0" | b"1" | b"2"),
        // Never written, only carried as it arrived (with its trace) or removed.
        Header::XDatadogOrigin => !v.is_empty() && v.iter().all(|b| (0x20..=0x7e).contains(b)),
        // Written as `_dd.p.tid=…` alone; the `key=value` list that arrived is carried.
        Header::XDatadogTags => dd_tags_ok(v),
        Header::XAmznTraceId => amzn_ok(v),
        Header::OtTracerTraceId => id_ok(v, &[16, 32]),
        Header::OtTracerSpanId => id_ok(v, &[16]),
        Header::OtTracerSampled => matches!(v, b"true" | b"false"),
    }
}

/// `x-datadog-tags`: at most 512 characters of `key=value` pairs (printable ASCII, no comma;
/// no space or `=` in a key), a `_dd.p.tid` of 16 lowercase hex digits.
/// (Carried as it came: with the optional whitespace around it, or empty.)
pub fn dd_tags_ok(v: &[u8]) -> bool {
    let v = trim_ows(v);
    let pairs = || v.split(|b| *b == b',');
    v.is_empty()
        || v.len() <= 512
            && pairs().all(|pair| {
                pair.iter().position(|b| *b == b'=').is_some_and(|eq| {
                    eq > 0
                        && pair[..eq].iter().all(|b| (0x21..=0x7e).contains(b))
                        && pair[eq + 1..].iter().all(|b| (0x20..=0x7e).contains(b))
                })
            })
            && pairs()
                .filter_map(|pair| pair.strip_prefix(b"_dd.p.tid="))
                .all(|t| id_ok(t, &[16]))
}

/// A decimal uint64 as Datadog writes it: no sign, no leading zero, not zero.
pub fn decimal_id_ok(v: &[u8]) -> bool {
    (1..=20).contains(&v.len())
        && v.iter().all(u8::is_ascii_digit)
        && v.first() != Some(&b'0')
        && std::str::from_utf8(v).is_ok_and(|s| s.parse::<u64>().is_ok())
}

/// `Root=1-{8}-{24};Parent={16};Sampled={0|1|?}` (74 bytes), then fields kept from the
/// request, each `;key=value`.
pub fn amzn_ok(v: &[u8]) -> bool {
    if v.len() < 74 {
        return false;
    }
    let (own, kept) = v.split_at(74);
    own.starts_with(b"Root=1-")
        && is_lower_hex(&own[7..15])
        && own[15] == b'-'
        && is_lower_hex(&own[16..40])
        && &own[40..48] == b";Parent="
        && id_ok(&own[48..64], &[16])
        && &own[64..73] == b";Sampled="
        && matches!(own[73], b'0' | b'1' | b'?')
        && (kept.is_empty()
            || (kept[0] == b';'
                && kept[1..]
                    .split(|b| *b == b';')
                    .all(|f| f.contains(&b'=') && visible_ascii(f))))
}

/// A trace id as 32 hex digits (64-bit ids left-padded with zeros, as every format reads
/// them).
pub fn pad32(trace: &[u8]) -> Vec<u8> {
    let mut out = vec![b'0'; 32usize.saturating_sub(trace.len())];
    out.extend_from_slice(trace);
    out
}

/// (trace id padded to 32, span id) of a well-formed single-header value.
pub fn ids_of(h: Header, v: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    match h {
        Header::Traceparent if traceparent_ok(v) => Some((v[3..35].to_vec(), v[36..52].to_vec())),
        Header::B3 if b3_single_ok(v) && v.len() > 1 => {
            let mut it = v.split(|b| *b == b'-');
            Some((pad32(it.next()?), it.next()?.to_vec()))
        }
        Header::UberTraceId if uber_ok(v) => {
            let mut it = v.split(|b| *b == b':');
            Some((pad32(it.next()?), it.next()?.to_vec()))
        }
        _ => None,
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
    out
}

/// Bytes for an assertion message.
pub fn show(v: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(v))
}
