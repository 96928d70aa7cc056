//! One HTTP/1.1 response head as Envoy's codec writes it to the client (RFC 9112 sections 4
//! and 6.3): the status and how the body is framed. The network position reads responses
//! only to know when the HCM has answered a request, because Envoy's codec takes the next
//! request from its buffer only then (see [`crate::network::http1`]).
//!
//! These are Envoy's own bytes, so anything unexpected is not tolerated but ends the
//! following of the connection.

use super::Leave;
use super::head::{FramingFields, field_line, head_end};

/// How a response's body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseBody {
    None,
    Length(u64),
    Chunked,
    /// Delimited by the connection's close: no request follows on it.
    UntilClose,
}

/// A complete response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub body: ResponseBody,
}

impl ResponseHead {
    /// 1xx other than 101: a final response still follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// Parses a complete response head; `request_was_head`: the request was HEAD (RFC 9112
/// 6.3: no body whatever the fields say).
pub fn parse(bytes: &[u8], request_was_head: bool) -> Result<ResponseHead, Leave> {
    let end = head_end(bytes).ok_or(Leave::Response)?;
    let head = bytes.get(..end).ok_or(Leave::Response)?;
    let mut lines = head.split(|b| *b == b'\n');
    let status_line = lines.next().ok_or(Leave::Response)?;
    let status = status(status_line.strip_suffix(b"\r").ok_or(Leave::Response)?)?;
    let mut framing = FramingFields::default();
    for line in lines {
        let Some(line) = line.strip_suffix(b"\r") else {
            // What follows the empty line's LF: nothing.
            if line.is_empty() {
                break;
            }
            return Err(Leave::Response);
        };
        if line.is_empty() {
            continue;
        }
        let (name, value) = field_line(line).ok_or(Leave::Response)?;
        framing.read(name, value).map_err(|()| Leave::Response)?;
    }
    let no_body = request_was_head || (100..200).contains(&status) || matches!(status, 204 | 304);
    let body = match (no_body, framing.chunked, framing.length) {
        (true, _, _) => ResponseBody::None,
        (false, true, None) => ResponseBody::Chunked,
        (false, false, Some(0)) => ResponseBody::None,
        (false, false, Some(n)) => ResponseBody::Length(n),
        (false, false, None) => ResponseBody::UntilClose,
        (false, true, Some(_)) => return Err(Leave::Response),
    };
    Ok(ResponseHead { status, body })
}

/// `HTTP/1.x SP 3DIGIT SP reason`.
fn status(line: &[u8]) -> Result<u16, Leave> {
    let rest = line
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| line.strip_prefix(b"HTTP/1.0 "))
        .ok_or(Leave::Response)?;
    let digits = rest.get(..3).ok_or(Leave::Response)?;
    if !digits.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|b| *b != b' ') {
        return Err(Leave::Response);
    }
    Ok(digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str, head: bool) -> Result<(u16, ResponseBody), Leave> {
        parse(text.as_bytes(), head).map(|h| (h.status, h.body))
    }

    #[test]
    fn framing_as_rfc_9112_section_6_3_says() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 12\r\ndate: x\r\n\r\n";
        assert_eq!(body(ok, false), Ok((200, ResponseBody::Length(12))));
        assert_eq!(body(ok, true), Ok((200, ResponseBody::None)), "HEAD");
        let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(body(chunked, false), Ok((200, ResponseBody::Chunked)));
        let none = "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n";
        assert_eq!(body(none, false), Ok((204, ResponseBody::None)));
        let close = "HTTP/1.0 200 OK\r\nconnection: close\r\n\r\n";
        assert_eq!(body(close, false), Ok((200, ResponseBody::UntilClose)));
        let cont = parse(b"HTTP/1.1 100 Continue\r\n\r\n", false).unwrap();
        assert!(cont.is_interim());
        let switch = parse(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", false).unwrap();
        assert!(!switch.is_interim());
        let bad = parse(b"HTTP/1.1 200 OK\r\n\r\n", false).unwrap();
        assert_eq!(bad.body, ResponseBody::UntilClose);
    }

    #[test]
    fn what_envoy_never_writes_is_refused() {
        for text in [
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 20x OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
            "HTTP/1.1 200 OK\r\n bad\r\n\r\n",
            "HTTP/1.1 200 OK\r\n",
        ] {
            assert_eq!(body(text, false), Err(Leave::Response), "{text:?}");
        }
    }
}
