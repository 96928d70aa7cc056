//! The network position's view of a connection: HTTP/1.1 request heads in the downstream
//! byte stream, their bodies followed by length only, and the framing of the responses
//! Envoy writes back. Pure: bytes in, decisions out;
//! [`crate::filter::connection`] drives it over the host's buffer.

pub mod chunked;
pub mod head;
pub mod response;
pub mod rewrite;

/// Why a connection (or a head) is left as it is, byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leave {
    /// HTTP/2 with prior knowledge (or h2 after TLS): its frames are not rewritten.
    Http2,
    /// Not an HTTP/1.0 or 1.1 request line (TLS on a plaintext port, a probe, garbage).
    NotHttp1,
    /// Framing a reader could take two ways: obs-fold, bare CR or LF, Content-Length with
    /// Transfer-Encoding, two Content-Lengths, a coding other than chunked, control bytes.
    Ambiguous,
    /// A head (or chunk line, or trailer) over the limit.
    TooLarge,
    /// A request followed another in one buffer: how much of it Envoy's codec takes depends
    /// on whether the first is answered before the codec returns, which the filter cannot
    /// see, so it no longer knows which bytes Envoy will hand back.
    Pipelined,
    /// What Envoy handed back did not match the bytes the filter knows it passed on.
    Unsure,
    /// The responses Envoy wrote could not be followed (or one came before its request's
    /// end), so the filter no longer knows when Envoy's codec reads on.
    Response,
    /// A head not complete within `request_headers_timeout_ms`: the connection is closed.
    SlowHead,
    /// CONNECT or Upgrade: what follows is a tunnel.
    Upgrade,
    /// A host call on the buffer failed.
    HostError,
}

impl Leave {
    pub const ALL: [Leave; 10] = [
        Leave::Http2,
        Leave::NotHttp1,
        Leave::Ambiguous,
        Leave::TooLarge,
        Leave::Pipelined,
        Leave::Unsure,
        Leave::Response,
        Leave::SlowHead,
        Leave::Upgrade,
        Leave::HostError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Leave::Http2 => "http2",
            Leave::NotHttp1 => "not_http1",
            Leave::Ambiguous => "ambiguous",
            Leave::TooLarge => "too_large",
            Leave::Pipelined => "pipelined",
            Leave::Unsure => "unsure",
            Leave::Response => "response",
            Leave::SlowHead => "slow_head",
            Leave::Upgrade => "upgrade",
            Leave::HostError => "host_error",
        }
    }
}
