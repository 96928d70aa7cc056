//! One HTTP/1.1 request head (RFC 9112 sections 2-6): the request line, the field lines and
//! the empty line, and what it says about the body.
//!
//! Strict on purpose: this sits in front of Envoy's own parser, so whatever a reader could
//! take two ways (obs-fold, a bare CR or LF, Content-Length with Transfer-Encoding, two
//! Content-Lengths, a transfer coding other than `chunked`, control bytes) is not rewritten
//! but left to Envoy, which refuses most of it with a 400 of its own.

use std::ops::Range;

use super::Leave;
use crate::codec::{Carrier, Header};

/// How the body of a request is framed (RFC 9112 section 6.3: a request without
/// Content-Length or Transfer-Encoding has no body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
}

/// A complete, well-formed request head.
#[derive(Debug)]
pub struct RequestHead<'a> {
    /// The whole head, up to and including the empty line's CRLF.
    bytes: &'a [u8],
    /// Where the field lines start (after the request line's CRLF).
    fields_start: usize,
    pub body: Body,
    /// CONNECT, or an Upgrade request as Envoy's codec takes one (an `Upgrade` field and the
    /// `upgrade` token in `Connection`, but for `Upgrade: h2c`, whose fields Envoy's codec
    /// removes and reads on in HTTP/1): Envoy passes what follows on as the stream's
    /// payload, which may not be HTTP/1 at all.
    pub tunnel: bool,
    /// A HEAD request: its response has no body whatever its framing fields say.
    pub head_method: bool,
    pub connect: bool,
    pub field_count: usize,
    /// The trace headers it carries, read while scanning.
    pub carrier: Carrier<'a>,
    /// The lines of those headers, in order: all a rewrite changes.
    pub trace_lines: Vec<TraceLine>,
}

/// A field line of a trace header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    pub header: Header,
    /// The whole line in the head, CRLF included.
    pub line: Range<usize>,
}

/// One field line of a head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    /// The value without its surrounding whitespace.
    pub value: &'a [u8],
    /// The whole line in the head, CRLF included.
    pub line: Range<usize>,
}

/// The offset just past the head's empty line (`\r\n\r\n`), if the head is complete.
pub fn head_end(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        at = next_special(bytes, at);
        if bytes.get(at..at + 4)? == b"\r\n\r\n" {
            return Some(at + 4);
        }
        at += 1;
    }
}

/// RFC 9110 `tchar`, one entry per byte value: a name byte costs one lookup.
// Indexing in a constant: out of bounds would fail the build, not the filter.
#[allow(clippy::indexing_slicing)]
const TCHAR: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = (c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            )) as u8;
        b += 1;
    }
    table
};

fn is_tchar(b: u8) -> bool {
    TCHAR.get(usize::from(b)) == Some(&1)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` below 0x20 or equal to DEL: the line ends and the
/// bytes no field may hold. Exact for the lowest such byte (a borrow only runs upwards from
/// it), which is the only one read.
fn special_bytes(word: u64) -> u64 {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let del = word ^ (ONES * 0x7f);
    let is_del = del.wrapping_sub(ONES) & !del;
    (below_space | is_del) & HIGH_BITS
}

/// The offset of the first byte at or after `at` that is below 0x20 or DEL (a CR, an LF, a
/// control byte), or `bytes.len()`: eight bytes per step, as a head is mostly values.
pub(super) fn next_special(bytes: &[u8], mut at: usize) -> usize {
    while let Some(word) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let found = special_bytes(u64::from_le_bytes(*word));
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(b) = bytes.get(at) {
        if *b < 0x20 || *b == 0x7f {
            break;
        }
        at += 1;
    }
    at
}

/// One line of a head from `start`: where its CRLF is (`None`: the bytes end first, maybe
/// after its CR), and whether it holds a control byte other than HTAB. A bare CR or LF is
/// an error.
fn line_from(bytes: &[u8], start: usize) -> Result<(Option<usize>, bool), Leave> {
    let mut at = start;
    let mut control = false;
    loop {
        at = next_special(bytes, at);
        match bytes.get(at) {
            None => return Ok((None, control)),
            Some(b'\t') => {}
            Some(b'\r') => match bytes.get(at + 1) {
                Some(b'\n') => return Ok((Some(at), control)),
                // A CR as the very last byte may still be followed by its LF.
                None => return Ok((None, control)),
                Some(_) => return Err(Leave::Ambiguous),
            },
            Some(b'\n') => return Err(Leave::Ambiguous),
            Some(_) => control = true,
        }
        at += 1;
    }
}

/// The request line: `method SP request-target SP HTTP-version`.
fn request_line(line: &[u8]) -> Result<&[u8], Leave> {
    let mut parts = line.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Leave::NotHttp1);
    };
    if method == b"PRI" && target == b"*" && version == b"HTTP/2.0" {
        return Err(Leave::Http2);
    }
    let target_ok = !target.is_empty() && target.iter().all(|b| (0x21..=0x7e).contains(b));
    let method_ok = !method.is_empty() && method.iter().all(|b| is_tchar(*b));
    if !method_ok || !target_ok || !matches!(version, b"HTTP/1.1" | b"HTTP/1.0") {
        return Err(Leave::NotHttp1);
    }
    Ok(version)
}

/// A field line `name ":" OWS value OWS`; `None` for anything else (obs-fold included).
pub(super) fn field_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut at = 0;
    loop {
        at = next_special(line, at);
        match line.get(at) {
            None => return field(line, false),
            Some(b'\t') => at += 1,
            Some(_) => return None,
        }
    }
}

/// A field line whose bytes were checked already (`control`: it holds a byte no value may).
fn field(line: &[u8], control: bool) -> Option<(&[u8], &[u8])> {
    if control {
        return None;
    }
    let colon = line.iter().position(|b| !is_tchar(*b))?;
    if colon == 0 || line.get(colon) != Some(&b':') {
        return None;
    }
    Some((
        line.get(..colon)?,
        crate::codec::hex::trim_ows(line.get(colon + 1..)?),
    ))
}

/// The last, incomplete line of a head that is not complete yet: could it still become a
/// line of a valid head? (So the filter waits for the rest only when Envoy would too, and
/// garbage, a TLS hello or a half-open probe reaches Envoy at once.)
fn open_line_ok(text: &[u8], request_line: bool, control: bool) -> Result<(), Leave> {
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if request_line {
        if text.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Ok(());
        }
        return Err(Leave::NotHttp1);
    }
    if control || matches!(text.first(), Some(b' ' | b'\t')) {
        return Err(Leave::Ambiguous);
    }
    Ok(())
}

/// Scans a request head from its first byte, in one pass: a head that ends (its empty
/// line's CRLF) is parsed; one that does not is checked as far as it goes (`None`: it may
/// still become a valid head). What a field line frames is judged only once the head is
/// complete, as Envoy's codec does.
pub fn scan(bytes: &[u8]) -> Result<Option<RequestHead<'_>>, Leave> {
    let (first_end, control) = line_from(bytes, 0)?;
    let Some(first_end) = first_end else {
        open_line_ok(bytes, true, control)?;
        return Ok(None);
    };
    let request = bytes.get(..first_end).unwrap_or_default();
    let version = request_line(request)?;
    let connect = request.starts_with(b"CONNECT ");
    let fields_start = first_end + 2;

    let mut framing = FramingFields::default();
    let mut framing_bad = false;
    // Upgrade fields, those with a value, and whether the one value there is says h2c.
    let mut upgrade = false;
    let mut upgrades = 0usize;
    let mut h2c = false;
    let mut connection_upgrade = false;
    let mut field_count = 0usize;
    let mut carrier = Carrier::default();
    let mut trace_lines = Vec::new();
    let mut at = fields_start;
    let end = loop {
        let (line_end, control) = line_from(bytes, at)?;
        let text = bytes
            .get(at..line_end.unwrap_or(bytes.len()))
            .unwrap_or_default();
        let Some(line_end) = line_end else {
            open_line_ok(text, false, control)?;
            return Ok(None);
        };
        if text.is_empty() {
            break line_end + 2;
        }
        let (name, value) = field(text, control).ok_or(Leave::Ambiguous)?;
        field_count += 1;
        if let Some(header) = carrier.observe(name, value) {
            trace_lines.push(TraceLine {
                header,
                line: at..line_end + 2,
            });
        } else {
            match framing.read(name, value) {
                Ok(true) => {} // Content-Length or Transfer-Encoding.
                Ok(false) if name.eq_ignore_ascii_case(b"upgrade") => {
                    upgrade = true;
                    // Envoy's header map drops an empty value when it joins repeats.
                    if !value.is_empty() {
                        upgrades += 1;
                        h2c = value.eq_ignore_ascii_case(b"h2c");
                    }
                }
                Ok(false) if name.eq_ignore_ascii_case(b"connection") => {
                    connection_upgrade |= value.split(|b| *b == b',').any(|token| {
                        crate::codec::hex::trim_ows(token).eq_ignore_ascii_case(b"upgrade")
                    });
                }
                Ok(false) => {}
                Err(()) => framing_bad = true,
            }
        }
        at = line_end + 2;
    };
    if framing_bad {
        return Err(Leave::Ambiguous);
    }
    let body = match (framing.length, framing.chunked) {
        (Some(_), true) => return Err(Leave::Ambiguous),
        // Transfer-Encoding is HTTP/1.1's; a 1.0 message with it is read differently.
        (None, true) if version == b"HTTP/1.0" => return Err(Leave::Ambiguous),
        (None, true) => Body::Chunked,
        (Some(0), false) | (None, false) => Body::None,
        (Some(n), false) => Body::Length(n),
    };
    Ok(Some(RequestHead {
        bytes: bytes.get(..end).unwrap_or_default(),
        fields_start,
        body,
        // An `Upgrade` without the `Connection` token is an ordinary request to Envoy (and to
        // RFC 9110 7.8): the connection goes on in HTTP/1, so the filter follows it too.
        // Envoy joins repeated Upgrade fields with commas before comparing with `h2c`.
        tunnel: connect || (upgrade && connection_upgrade && !(upgrades == 1 && h2c)),
        head_method: request.starts_with(b"HEAD "),
        connect,
        field_count,
        carrier,
        trace_lines,
    }))
}

/// Parses a complete head (`bytes` ends with its empty line).
pub fn parse(bytes: &[u8]) -> Result<RequestHead<'_>, Leave> {
    scan(bytes)?.ok_or(Leave::NotHttp1)
}

/// A message's framing fields (Content-Length, Transfer-Encoding), read strictly: a repeat
/// (Envoy refuses a repeated Content-Length even with equal values), a value that is not
/// `1*DIGIT`, or a coding other than `chunked` is an error.
#[derive(Default)]
pub(super) struct FramingFields {
    pub length: Option<u64>,
    pub chunked: bool,
}

impl FramingFields {
    /// Reads one field: `Ok(false)` when it frames nothing.
    pub(super) fn read(&mut self, name: &[u8], value: &[u8]) -> Result<bool, ()> {
        if name.eq_ignore_ascii_case(b"content-length") {
            if self.length.is_some() {
                return Err(());
            }
            self.length = Some(decimal(value).ok_or(())?);
            Ok(true)
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if self.chunked || !value.eq_ignore_ascii_case(b"chunked") {
                return Err(());
            }
            self.chunked = true;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// `1*DIGIT` as a u64; anything else (signs, spaces, commas, overflow) is `None`.
fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |n, b| {
        let d = u64::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        n.checked_mul(10)?.checked_add(d)
    })
}

impl<'a> RequestHead<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The request line with its CRLF.
    pub fn request_line(&self) -> &'a [u8] {
        self.bytes.get(..self.fields_start).unwrap_or_default()
    }

    /// The field lines in order.
    pub fn fields(&self) -> impl Iterator<Item = Field<'a>> + 'a {
        let bytes = self.bytes;
        let mut at = self.fields_start;
        std::iter::from_fn(move || {
            let rest = bytes.get(at..)?;
            let len = rest.windows(2).position(|w| w == b"\r\n")?;
            if len == 0 {
                return None;
            }
            let line = at..at + len + 2;
            at = line.end;
            let (name, value) = field_line(bytes.get(line.start..line.end - 2)?)?;
            Some(Field { name, value, line })
        })
    }
}

#[cfg(test)]
mod tests;
