//! One HTTP/1.1 request head (RFC 9112 sections 2-6): the request line, the field lines and
//! the empty line, and what it says about the body.
//!
//! Strict on purpose: this sits in front of Envoy's own parser, so whatever a reader could
//! take two ways (obs-fold, a bare CR or LF, Content-Length with Transfer-Encoding, two
//! Content-Lengths, a transfer coding other than `chunked`, control bytes) is not rewritten
//! but left to Envoy, which refuses most of it with a 400 of its own.

use std::ops::Range;

use super::Leave;

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
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A field value byte: VCHAR, obs-text, SP or HTAB.
fn is_value_byte(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff)
}

/// The lines of `bytes` split at CRLF, each with its range (CRLF excluded); a bare CR or LF
/// is an error. The last item is what follows the last CRLF (empty for a complete head).
fn lines(bytes: &[u8]) -> impl Iterator<Item = Result<Range<usize>, Leave>> + '_ {
    let mut start = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let rest = bytes.get(start..)?;
        for (i, b) in rest.iter().enumerate() {
            match b {
                b'\r' if rest.get(i + 1) == Some(&b'\n') => {
                    let line = start..start + i;
                    start += i + 2;
                    return Some(Ok(line));
                }
                // A CR as the very last byte may still be followed by its LF.
                b'\r' if i + 1 == rest.len() => break,
                b'\r' | b'\n' => {
                    done = true;
                    return Some(Err(Leave::Ambiguous));
                }
                _ => {}
            }
        }
        done = true;
        Some(Ok(start..bytes.len()))
    })
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
    let colon = line.iter().position(|b| *b == b':')?;
    let (name, rest) = (line.get(..colon)?, line.get(colon + 1..)?);
    if name.is_empty()
        || !name.iter().all(|b| is_tchar(*b))
        || !rest.iter().all(|b| is_value_byte(*b))
    {
        return None;
    }
    Some((name, crate::codec::hex::trim_ows(rest)))
}

/// Checks that an incomplete head could still become a valid one, so that the filter waits
/// for the rest only when Envoy would too (and garbage, a TLS hello or a half-open probe
/// reaches Envoy at once).
pub fn check_prefix(bytes: &[u8]) -> Result<(), Leave> {
    let mut first = true;
    let mut all = lines(bytes).peekable();
    while let Some(line) = all.next() {
        let line = line?;
        let text = bytes.get(line.clone()).unwrap_or_default();
        let complete = all.peek().is_some();
        if complete {
            if first {
                request_line(text)?;
            } else if field_line(text).is_none() {
                return Err(Leave::Ambiguous);
            }
        } else {
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            let ok = if first {
                text.iter()
                    .all(|b| is_tchar(*b) || (0x20..=0x7e).contains(b))
            } else {
                text.first().is_none_or(|b| *b != b' ' && *b != b'\t')
                    && text.iter().all(|b| is_value_byte(*b))
            };
            if !ok {
                return Err(if first {
                    Leave::NotHttp1
                } else {
                    Leave::Ambiguous
                });
            }
        }
        first = false;
    }
    Ok(())
}

/// Parses a complete head (`bytes` ends with its empty line).
pub fn parse(bytes: &[u8]) -> Result<RequestHead<'_>, Leave> {
    let mut all = lines(bytes);
    let first = all.next().ok_or(Leave::NotHttp1)??;
    let request = bytes.get(first.clone()).unwrap_or_default();
    let version = request_line(request)?;
    let connect = request.starts_with(b"CONNECT ");
    let fields_start = first.end + 2;

    let mut framing = FramingFields::default();
    // Upgrade fields, those with a value, and whether the one value there is says h2c.
    let mut upgrade = false;
    let mut upgrades = 0usize;
    let mut h2c = false;
    let mut connection_upgrade = false;
    let mut field_count = 0usize;
    let mut ended = false;
    for line in all {
        let line = line?;
        if ended {
            // Only the empty remainder after the final CRLF may follow the empty line.
            if !line.is_empty() {
                return Err(Leave::Ambiguous);
            }
            continue;
        }
        let text = bytes.get(line).unwrap_or_default();
        if text.is_empty() {
            ended = true;
            continue;
        }
        let (name, value) = field_line(text).ok_or(Leave::Ambiguous)?;
        field_count += 1;
        if framing.read(name, value).map_err(|()| Leave::Ambiguous)? {
            // Content-Length or Transfer-Encoding.
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
            // Envoy's header map drops an empty value when it joins repeats.
            if !value.is_empty() {
                upgrades += 1;
                h2c = value.eq_ignore_ascii_case(b"h2c");
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection_upgrade |= value
                .split(|b| *b == b',')
                .any(|token| crate::codec::hex::trim_ows(token).eq_ignore_ascii_case(b"upgrade"));
        }
    }
    if !ended {
        return Err(Leave::NotHttp1);
    }
    let body = match (framing.length, framing.chunked) {
        (Some(_), true) => return Err(Leave::Ambiguous),
        // Transfer-Encoding is HTTP/1.1's; a 1.0 message with it is read differently.
        (None, true) if version == b"HTTP/1.0" => return Err(Leave::Ambiguous),
        (None, true) => Body::Chunked,
        (Some(0), false) | (None, false) => Body::None,
        (Some(n), false) => Body::Length(n),
    };
    Ok(RequestHead {
        bytes,
        fields_start,
        body,
        // An `Upgrade` without the `Connection` token is an ordinary request to Envoy (and to
        // RFC 9110 7.8): the connection goes on in HTTP/1, so the filter follows it too.
        // Envoy joins repeated Upgrade fields with commas before comparing with `h2c`.
        tunnel: connect || (upgrade && connection_upgrade && !(upgrades == 1 && h2c)),
        head_method: request.starts_with(b"HEAD "),
        connect,
        field_count,
    })
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
