//! A second, simple HTTP/1.1 request framer (RFC 9112), written apart from the crate's
//! `stream` module, for the `stream` target's oracle: it splits a downstream byte stream
//! into messages (request line, field lines, a Content-Length or chunked body, no body
//! otherwise) and stops at the first thing it considers ambiguous or not HTTP/1.x.
//!
//! Strict and small on purpose. Where it stops, it says how:
//! - [`Stop::Leave`]: a reader could take the bytes two ways (bare CR or LF in a head,
//!   obs-fold, Content-Length with Transfer-Encoding, two Content-Lengths, a coding other
//!   than chunked, control bytes, a bad chunk line), or they are not HTTP/1.x (HTTP/2's
//!   preface, TLS, garbage), or a tunnel follows: the filter must pass everything from
//!   there on byte for byte.
//! - [`Stop::Unchecked`]: something every reader treats alike but this framer does not
//!   follow (bare CR or LF between messages, many empty lines): nothing is checked past it
//!   but the weak [`same_but_trace_lines`].
//! - [`Stop::Incomplete`]: the stream ends inside a head that could still become valid
//!   (the filter may hold it).
//! - [`Stop::End`]: every byte belongs to a message (the last body may be cut short).

use std::ops::Range;

/// Every header the filter may insert, replace or remove (as `tools/tracejoin_tools/
/// common.py` lists them), lowercase.
pub const TRACE_NAMES: [&str; 18] = [
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "uber-trace-id",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "x-datadog-origin",
    "x-datadog-tags",
    "x-amzn-trace-id",
    "ot-tracer-traceid",
    "ot-tracer-spanid",
    "ot-tracer-sampled",
];

/// Empty lines followed before a request line (RFC 9112 2.2 asks servers to ignore at
/// least one); past this many the framer stops checking.
pub const MAX_EMPTY_LINES: usize = 4;

pub fn is_trace_name(name: &[u8]) -> bool {
    TRACE_NAMES
        .iter()
        .any(|t| t.as_bytes().eq_ignore_ascii_case(name))
}

/// RFC 9110 tchar.
fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// field-vchar, SP, HTAB.
fn value_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

fn trim(v: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !ows(b)).map_or(start, |e| e + 1);
    &v[start..end]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// One field line; ranges index the stream it was read from.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: Range<usize>,
    /// Without surrounding whitespace.
    pub value: Range<usize>,
    /// The whole line with its CRLF.
    pub line: Range<usize>,
    pub trace: bool,
}

#[derive(Clone, Debug)]
pub struct Head {
    /// The request line's first byte.
    pub start: usize,
    /// Just past the empty line's CRLF.
    pub end: usize,
    /// With its CRLF.
    pub request_line: Range<usize>,
    pub method: Range<usize>,
    pub target: Range<usize>,
    pub fields: Vec<Field>,
    pub framing: Framing,
    /// CONNECT, or an Upgrade field with `upgrade` in Connection: what follows may not be
    /// HTTP/1.
    pub tunnel: bool,
}

#[derive(Clone, Debug)]
pub struct Message {
    /// The first byte of the empty lines before the head (or the head's own).
    pub start: usize,
    pub head: Head,
    /// The body with its framing (chunk lines, trailers); cut short at the stream's end
    /// when `complete` is false.
    pub body: Range<usize>,
    pub complete: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    Ambiguous,
    NotHttp1,
    Http2,
    Tunnel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    End,
    Incomplete {
        at: usize,
    },
    Leave {
        at: usize,
        why: Why,
        what: &'static str,
    },
    Unchecked {
        at: usize,
        what: &'static str,
    },
}

impl Stop {
    pub fn at(self, len: usize) -> usize {
        match self {
            Stop::End => len,
            Stop::Incomplete { at } | Stop::Leave { at, .. } | Stop::Unchecked { at, .. } => at,
        }
    }
}

#[derive(Debug)]
pub struct Framed {
    pub messages: Vec<Message>,
    pub stop: Stop,
}

/// What reading a head gave.
pub enum HeadRead {
    Head(Head),
    /// The stream ends inside a head that could still be completed validly.
    Incomplete,
    Bad(Why, &'static str),
}

/// The next line from `at`: its end (CRLF excluded); `Err` on a bare CR or LF; `Ok(None)`
/// when the stream ends first (a CR as the last byte may still get its LF).
fn line_end(s: &[u8], at: usize) -> Result<Option<usize>, ()> {
    let mut i = at;
    while i < s.len() {
        match s[i] {
            b'\n' => return Err(()),
            b'\r' => {
                return match s.get(i + 1) {
                    Some(b'\n') => Ok(Some(i)),
                    Some(_) => Err(()),
                    None => Ok(None),
                };
            }
            _ => i += 1,
        }
    }
    Ok(None)
}

/// `name ":" OWS value OWS`, as ranges relative to the line's start.
fn field(line: &[u8]) -> Option<(Range<usize>, Range<usize>)> {
    let colon = line.iter().position(|b| *b == b':')?;
    let name = &line[..colon];
    let rest = &line[colon + 1..];
    if name.is_empty() || !name.iter().all(|b| tchar(*b)) || !rest.iter().all(|b| value_byte(*b)) {
        return None;
    }
    let value = trim(rest);
    let vstart = colon + 1 + (value.as_ptr() as usize - rest.as_ptr() as usize);
    Some((0..colon, vstart..vstart + value.len()))
}

/// Could an unfinished line (no CRLF yet) still become a good one? Loose on purpose:
/// Envoy reads a line to its end before judging it, so waiting for the end of a printable
/// line is waiting as Envoy would. Control bytes and obs-fold cannot be mended.
fn unfinished_ok(first: bool, text: &[u8]) -> bool {
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if first {
        text.iter().all(|b| (0x20..=0x7e).contains(b))
    } else {
        text.first().is_none_or(|b| *b != b' ' && *b != b'\t')
            && text.iter().all(|b| value_byte(*b))
    }
}

/// `1*DIGIT` into a u64.
fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, b| {
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Reads the head that starts at `at` (no empty lines before it).
pub fn read_head(s: &[u8], at: usize) -> HeadRead {
    // The request line.
    let first_end = match line_end(s, at) {
        Err(()) => return HeadRead::Bad(Why::NotHttp1, "bare CR or LF in the request line"),
        Ok(None) => {
            return if unfinished_ok(true, &s[at..]) {
                HeadRead::Incomplete
            } else {
                HeadRead::Bad(Why::NotHttp1, "not a request line")
            };
        }
        Ok(Some(e)) => e,
    };
    let line = &s[at..first_end];
    let parts: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return HeadRead::Bad(Why::NotHttp1, "request line not three parts");
    };
    if *method == b"PRI" && *target == b"*" && *version == b"HTTP/2.0" {
        return HeadRead::Bad(Why::Http2, "HTTP/2 preface");
    }
    if method.is_empty() || !method.iter().all(|b| tchar(*b)) {
        return HeadRead::Bad(Why::NotHttp1, "method");
    }
    if target.is_empty() || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return HeadRead::Bad(Why::NotHttp1, "target");
    }
    let http10 = match *version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        _ => return HeadRead::Bad(Why::NotHttp1, "version"),
    };
    let method_r = at..at + method.len();
    let target_r = method_r.end + 1..method_r.end + 1 + target.len();

    // The field lines.
    let mut fields = Vec::new();
    let mut p = first_end + 2;
    let end = loop {
        let e = match line_end(s, p) {
            Err(()) => return HeadRead::Bad(Why::Ambiguous, "bare CR or LF in a field line"),
            Ok(None) => {
                return if unfinished_ok(false, &s[p..]) {
                    HeadRead::Incomplete
                } else {
                    HeadRead::Bad(Why::Ambiguous, "bad unfinished field line")
                };
            }
            Ok(Some(e)) => e,
        };
        if e == p {
            break e + 2;
        }
        let line = &s[p..e];
        if line[0] == b' ' || line[0] == b'\t' {
            return HeadRead::Bad(Why::Ambiguous, "obs-fold");
        }
        let Some((name, value)) = field(line) else {
            return HeadRead::Bad(Why::Ambiguous, "bad field line");
        };
        let name = p + name.start..p + name.end;
        fields.push(Field {
            trace: is_trace_name(&s[name.clone()]),
            name,
            value: p + value.start..p + value.end,
            line: p..e + 2,
        });
        p = e + 2;
    };

    // What the fields say about the body.
    let mut lengths = Vec::new();
    let mut codings = Vec::new();
    let mut upgrade = false;
    let mut upgrades = Vec::new();
    let mut connection_upgrade = false;
    for f in &fields {
        let name = &s[f.name.clone()];
        let value = &s[f.value.clone()];
        if name.eq_ignore_ascii_case(b"content-length") {
            lengths.push(value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            codings.push(value);
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
            // Envoy's header map leaves empty values out when it joins repeats.
            if !value.is_empty() {
                upgrades.push(value);
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection_upgrade |= value
                .split(|b| *b == b',')
                .any(|t| trim(t).eq_ignore_ascii_case(b"upgrade"));
        }
    }
    let framing = match (lengths.as_slice(), codings.as_slice()) {
        ([], []) => Framing::None,
        ([v], []) => match decimal(v) {
            Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
            None => return HeadRead::Bad(Why::Ambiguous, "Content-Length not a number"),
        },
        ([], [c]) if c.eq_ignore_ascii_case(b"chunked") && !http10 => Framing::Chunked,
        ([], [_]) => return HeadRead::Bad(Why::Ambiguous, "a coding other than chunked"),
        ([], _) => return HeadRead::Bad(Why::Ambiguous, "Transfer-Encoding repeated"),
        ([_], [_]) => return HeadRead::Bad(Why::Ambiguous, "Content-Length and Transfer-Encoding"),
        _ => return HeadRead::Bad(Why::Ambiguous, "Content-Length repeated"),
    };
    HeadRead::Head(Head {
        start: at,
        end,
        request_line: at..first_end + 2,
        // As Envoy's codec: an Upgrade field counts only with Connection's upgrade token, and
        // not when the fields, joined with commas, say h2c (Envoy drops those).
        tunnel: (connection_upgrade
            && upgrade
            && !upgrades.join(&b","[..]).eq_ignore_ascii_case(b"h2c"))
            || &s[method_r.clone()] == b"CONNECT",
        method: method_r,
        target: target_r,
        fields,
        framing,
    })
}

/// How a chunked body from `at` ended.
enum Chunks {
    /// Just past the trailer section's empty line.
    End(usize),
    Incomplete,
    Bad(&'static str),
}

fn read_chunked(s: &[u8], mut at: usize) -> Chunks {
    loop {
        // chunk-size [ ";" chunk-ext ] CRLF
        let e = match line_end(s, at) {
            Err(()) => return Chunks::Bad("bare CR or LF in a chunk line"),
            Ok(None) => return Chunks::Incomplete,
            Ok(Some(e)) => e,
        };
        let line = &s[at..e];
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let (hex, ext) = line.split_at(digits);
        if hex.is_empty() {
            return Chunks::Bad("chunk size");
        }
        match ext.first() {
            None => {}
            Some(b';')
                if ext
                    .iter()
                    .all(|b| *b == b'\t' || (0x20..=0x7e).contains(b) || *b >= 0x80) => {}
            Some(_) => return Chunks::Bad("chunk line"),
        }
        let Some(size) = hex.iter().try_fold(0u64, |n, b| {
            n.checked_mul(16)?
                .checked_add(u64::from(char::from(*b).to_digit(16)?))
        }) else {
            return Chunks::Bad("chunk size overflows");
        };
        at = e + 2;
        if size == 0 {
            break;
        }
        let Some(data_end) = usize::try_from(size).ok().and_then(|n| at.checked_add(n)) else {
            return Chunks::Incomplete;
        };
        if data_end > s.len() {
            return Chunks::Incomplete;
        }
        at = data_end;
        match (s.get(at), s.get(at + 1)) {
            (Some(b'\r'), Some(b'\n')) => at += 2,
            (None, _) | (Some(b'\r'), None) => return Chunks::Incomplete,
            _ => return Chunks::Bad("no CRLF after chunk data"),
        }
    }
    // trailer-section CRLF
    loop {
        let e = match line_end(s, at) {
            Err(()) => return Chunks::Bad("bare CR or LF in a trailer"),
            Ok(None) => return Chunks::Incomplete,
            Ok(Some(e)) => e,
        };
        if e == at {
            return Chunks::End(e + 2);
        }
        let line = &s[at..e];
        if line[0] == b' ' || line[0] == b'\t' || field(line).is_none() {
            return Chunks::Bad("bad trailer line");
        }
        at = e + 2;
    }
}

/// Splits a downstream stream into messages.
pub fn frame(s: &[u8]) -> Framed {
    let mut messages = Vec::new();
    let mut at = 0usize;
    let stop = loop {
        if at == s.len() {
            break Stop::End;
        }
        let start = at;
        let mut p = at;
        let mut empty = 0;
        while s[p..].starts_with(b"\r\n") {
            p += 2;
            empty += 1;
        }
        if empty > MAX_EMPTY_LINES {
            break Stop::Unchecked {
                at: start,
                what: "many empty lines",
            };
        }
        if p == s.len() || (p + 1 == s.len() && s[p] == b'\r') {
            break Stop::Incomplete { at: start };
        }
        if s[p] == b'\r' || s[p] == b'\n' {
            break Stop::Unchecked {
                at: start,
                what: "bare CR or LF between messages",
            };
        }
        let head = match read_head(s, p) {
            HeadRead::Head(h) => h,
            HeadRead::Incomplete => break Stop::Incomplete { at: start },
            HeadRead::Bad(why, what) => {
                break Stop::Leave {
                    at: start,
                    why,
                    what,
                };
            }
        };
        let end = head.end;
        if head.tunnel {
            messages.push(Message {
                start,
                head,
                body: end..end,
                complete: true,
            });
            break Stop::Leave {
                at: end,
                why: Why::Tunnel,
                what: "tunnel",
            };
        }
        let (body_end, complete) = match head.framing {
            Framing::None => (end, true),
            Framing::Length(n) => match usize::try_from(n).ok().and_then(|n| end.checked_add(n)) {
                Some(e) if e <= s.len() => (e, true),
                _ => (s.len(), false),
            },
            Framing::Chunked => match read_chunked(s, end) {
                Chunks::End(e) => (e, true),
                Chunks::Incomplete => (s.len(), false),
                Chunks::Bad(what) => {
                    messages.push(Message {
                        start,
                        head,
                        body: end..end,
                        complete: false,
                    });
                    break Stop::Leave {
                        at: end,
                        why: Why::Ambiguous,
                        what,
                    };
                }
            },
        };
        messages.push(Message {
            start,
            head,
            body: end..body_end,
            complete,
        });
        if !complete {
            break Stop::End;
        }
        at = body_end;
    };
    Framed { messages, stop }
}

/// The stream's lines (each with its CRLF; the last may lack one) that are not trace-header
/// lines by their shape alone: the weakest check, for what the framer does not follow.
pub fn non_trace_lines(s: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < s.len() {
        let end = s[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(s.len(), |e| at + e + 2);
        let line = &s[at..end];
        let trace = line.ends_with(b"\r\n")
            && line
                .iter()
                .position(|b| *b == b':')
                .is_some_and(|c| is_trace_name(&line[..c]));
        if !trace {
            out.push(line);
        }
        at = end;
    }
    out
}

/// Whether `a` and `b` are the same but for whole trace-header lines.
pub fn same_but_trace_lines(a: &[u8], b: &[u8]) -> bool {
    non_trace_lines(a) == non_trace_lines(b)
}
