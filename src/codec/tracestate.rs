//! W3C Trace Context (Level 2): `tracestate`, the vendor list that travels with its
//! traceparent: validation, the canonical form, truncation and adding a member.

use super::hex::trim_ows;

/// Most list members a tracestate may carry.
pub const TRACESTATE_MAX_MEMBERS: usize = 32;
/// The length the spec asks propagators to keep at least; longer values are truncated.
pub const TRACESTATE_MAX_LEN: usize = 512;
/// Members longer than this are the first to go when truncating.
const TRACESTATE_LONG_MEMBER: usize = 128;

/// The outcome of reading the (possibly repeated, comma-joined) tracestate.
#[derive(Debug, PartialEq, Eq)]
pub enum TraceState {
    /// Valid and already in canonical form (no empty members, no padding, within limits):
    /// forwarding it unchanged is correct.
    Canonical,
    /// Valid, but rewriting is needed (padding, empty members, repeated headers joined,
    /// or truncation); the canonical value.
    Rewritten(String),
    /// No members at all (an empty header, or only commas): nothing to keep or fix.
    Empty,
    /// Valid, but no member fits the length limit: nothing is left to send.
    TooLong,
    /// Invalid: must be dropped.
    Invalid,
}

/// Validates one tracestate key, as the current W3C text defines it (main branch, since
/// Level 2 was synced): `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`, `keychar = lcalpha /
/// DIGIT / "_" / "-" / "*" / "/" / "@"`. The Level 1 `tenant@system` split (a system id of
/// at most 14 characters starting with a letter, one `@`) is gone: `foo@`, `foo@@bar`,
/// `t@1s` are keys; a leading `@` or an uppercase letter is not.
fn valid_key(key: &[u8]) -> bool {
    match key {
        [first, rest @ ..] => {
            (first.is_ascii_lowercase() || first.is_ascii_digit())
                && rest.len() <= 255
                && rest.iter().all(
                    |b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@'),
                )
        }
        [] => false,
    }
}

/// Validates one value: 1 to 256 printable characters other than `,` and `=`, not ending
/// in a space.
fn valid_value(value: &[u8]) -> bool {
    fn chr_ok(b: &u8) -> bool {
        matches!(b, 0x20..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e)
    }
    match value {
        [.., last] => value.len() <= 256 && *last != b' ' && value.iter().all(chr_ok),
        [] => false,
    }
}

/// One member's key and value, if the member is well-formed.
fn split_member(member: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = member.iter().position(|b| *b == b'=')?;
    let key = member.get(..eq)?;
    let value = member.get(eq + 1..)?;
    (valid_key(key) && valid_value(value)).then_some((key, value))
}

/// FNV-1a: a cheap filter before comparing keys byte by byte.
fn key_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Reads tracestate. `parts` are the values of every tracestate header in order (the spec
/// joins repeated headers with commas). Any invalid member or more than 32 members
/// invalidates the whole header, as OpenTelemetry's propagators do. A repeated key keeps its
/// first (leftmost, most recent) member and drops the rest: the spec lets a vendor discard
/// duplicates and the W3C suite (`test_tracestate_duplicated_keys`) expects the header
/// inherited. (OpenTelemetry Go and Python drop the whole header instead.)
pub fn parse(parts: &[&[u8]]) -> TraceState {
    // No member has an empty key: nothing is looked up.
    parse_with_value(parts, b"").0
}

/// [`parse`], and the value of the member with key `wanted` as it arrived (the one kept of
/// a repeated key; truncation may still drop it): a caller that needs one member need not
/// read the headers again. `None` also when the tracestate is invalid or empty.
pub fn parse_with_value<'a>(parts: &[&'a [u8]], wanted: &[u8]) -> (TraceState, Option<&'a [u8]>) {
    let mut value = None;
    let mut members: [&[u8]; TRACESTATE_MAX_MEMBERS] = [&[]; TRACESTATE_MAX_MEMBERS];
    let mut key_hashes = [0u64; TRACESTATE_MAX_MEMBERS];
    let mut count = 0usize;
    let mut canonical = parts.len() <= 1;
    for part in parts {
        for raw_member in part.split(|b| *b == b',') {
            let member = trim_ows(raw_member);
            if member.len() != raw_member.len() || member.is_empty() {
                canonical = false;
            }
            if member.is_empty() {
                continue;
            }
            let Some((key, member_value)) = split_member(member) else {
                return (TraceState::Invalid, None);
            };
            // Repeated keys: compare hashes first (up to 496 pairs for 32 members).
            let hash = key_hash(key);
            let seen = members.get(..count).unwrap_or_default();
            let hashes = key_hashes.get(..count).unwrap_or_default();
            if hashes.iter().zip(seen).any(|(h, m)| {
                *h == hash && m.get(..key.len()) == Some(key) && m.get(key.len()) == Some(&b'=')
            }) {
                canonical = false;
                continue;
            }
            match (members.get_mut(count), key_hashes.get_mut(count)) {
                (Some(slot), Some(hash_slot)) => {
                    *slot = member;
                    *hash_slot = hash;
                }
                _ => return (TraceState::Invalid, None),
            }
            if key == wanted {
                value = Some(member_value);
            }
            count += 1;
        }
    }
    if count == 0 {
        return (TraceState::Empty, None);
    }
    let kept = members.get(..count).unwrap_or_default();
    let total: usize = kept.iter().map(|m| m.len()).sum::<usize>() + count.saturating_sub(1);
    if canonical && total <= TRACESTATE_MAX_LEN {
        return (TraceState::Canonical, value);
    }
    let joined = join_truncated(kept);
    if joined.is_empty() {
        // The spec asks not to send an empty tracestate.
        return (TraceState::TooLong, value);
    }
    (TraceState::Rewritten(joined), value)
}

/// Joins members with commas, dropping members per the spec's truncation rule until the
/// result fits: members over 128 characters go first, then members from the end.
pub fn join_truncated(members: &[&[u8]]) -> String {
    let mut keep: Vec<&[u8]> = members.to_vec();
    let len_of =
        |m: &Vec<&[u8]>| m.iter().map(|x| x.len()).sum::<usize>() + m.len().saturating_sub(1);
    while len_of(&keep) > TRACESTATE_MAX_LEN {
        match keep.iter().rposition(|m| m.len() > TRACESTATE_LONG_MEMBER) {
            Some(i) => {
                keep.remove(i);
            }
            None => {
                keep.pop();
            }
        }
    }
    let mut out = String::with_capacity(len_of(&keep));
    for (i, m) in keep.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Members were validated as printable ASCII.
        out.push_str(std::str::from_utf8(m).unwrap_or_default());
    }
    out
}

/// Prepends (or replaces) one member, keeping at most 32 members and the length limit.
/// Used to keep a client's trace id for correlation when the edge restarts its trace.
pub fn with_member(existing: Option<&str>, key: &str, value: &str) -> String {
    let mut member = String::with_capacity(key.len() + 1 + value.len());
    member.push_str(key);
    member.push('=');
    member.push_str(value);
    let mut members: Vec<&[u8]> = vec![member.as_bytes()];
    if let Some(existing) = existing {
        // Bytes, not `str` patterns: the same trim as the parser's, and less code.
        for m in existing.as_bytes().split(|b| *b == b',') {
            let m = trim_ows(m);
            let same_key = m
                .strip_prefix(key.as_bytes())
                .is_some_and(|rest| rest.first() == Some(&b'='));
            if !m.is_empty() && !same_key && members.len() < TRACESTATE_MAX_MEMBERS {
                members.push(m);
            }
        }
    }
    join_truncated(&members)
}

#[cfg(test)]
mod tests;
