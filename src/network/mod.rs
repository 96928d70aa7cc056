//! The network position: one connection's downstream bytes, in front of Envoy's HTTP
//! connection manager (HCM), so that Envoy's tracer reads the context tracejoin chose.
//!
//! Bytes in, one framer per protocol, the same policy as the HTTP filter, bytes out:
//! - [`http1`]: request heads in the byte stream, their bodies followed by length only, the
//!   framing of the responses Envoy writes back (to know which bytes Envoy hands back);
//! - [`http2`]: the frames after the connection preface, request header blocks decoded
//!   with a mirror of Envoy's HPACK table and written back with only trace headers changed;
//! - [`tls`]: a TLS ClientHello's server name (with `external_services`: an app's own
//!   HTTPS call named by its ServiceEntry), read without changing a byte;
//! - [`ConnectionFilter`]: which of the three a connection speaks, what Envoy is told
//!   ([`Verdict`]), and why a connection is left alone ([`Leave`]);
//! - [`envoy_loop`]: Envoy's read loop simulated, for tests and fuzz targets.
//!
//! The host is behind [`StreamHost`]; the proxy-wasm glue implements it with host calls.

pub mod envoy_loop;
pub mod http1;
pub mod http2;
pub mod tls;

use crate::config::Config;
use crate::filter::{Counter, Counting, HostError};
use crate::ids::IdGenerator;

/// What the network position needs: the connection's downstream read buffer (Envoy's
/// `DownstreamData`), which holds what its HTTP connection manager has not taken yet, the
/// bytes Envoy writes back (`UpstreamData`), and the time.
pub trait StreamHost: Counting {
    /// Up to `len` bytes of the buffer from `start` (fewer at its end; one host call).
    fn read_downstream(&mut self, start: usize, len: usize) -> Result<Vec<u8>, HostError>;
    /// Replaces the buffer's first `len` bytes with `bytes` (the only write Envoy allows
    /// at the start of the buffer; the rest stays as it is).
    fn replace_downstream_prefix(&mut self, len: usize, bytes: &[u8]) -> Result<(), HostError>;
    /// Up to `len` bytes from `start` of what Envoy is writing to the client now (one host
    /// call; each write is seen once).
    fn read_upstream(&mut self, start: usize, len: usize) -> Result<Vec<u8>, HostError>;
    /// The host's clock, in nanoseconds.
    fn now_nanos(&mut self) -> u64;
    /// The port the connection was sent to (its original destination in a sidecar).
    fn destination_port(&mut self) -> Result<Option<u16>, HostError>;
    /// The name of the listener filter chain the connection took (Istio names its
    /// passthrough chains).
    fn filter_chain_name(&mut self) -> Result<Option<Vec<u8>>, HostError>;
    /// Sets connection filter state (`wasm.<key>` in access logs).
    fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), HostError>;
    /// A TLS connection to a host no ServiceEntry names: counted per host and logged once
    /// (bounded: a scan cannot flood the log or the stats).
    fn note_unregistered_tls(&mut self, server_name: &str, port: Option<u16>, alpn: &str);
}

/// Whether what a framer holds (a head, a header block, a ClientHello) has been held for
/// `request_headers_timeout_ms`; its time starts at the first call (`held_since`).
pub(crate) fn held_too_long(
    host: &mut dyn StreamHost,
    config: &Config,
    held_since: &mut Option<u64>,
) -> bool {
    let now = host.now_nanos();
    let since = *held_since.get_or_insert(now);
    now.saturating_sub(since) / 1_000_000 >= config.limits.held_head_timeout_ms
}

/// What to tell Envoy about the read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pass the buffer on to the HCM.
    Continue,
    /// Keep buffering: a head (or header block) is not complete yet.
    Pause,
    /// Close the connection (what was written goes out first) and pass nothing on.
    Close,
}

/// A scan of the buffer for something framed (a head, a frame, a header block), in the
/// shape both framers share: found whole, cut off at the buffer's end (wait for more), or
/// not what it should be (leave the connection, and why).
pub(crate) enum Framed<T> {
    Complete(T),
    Partial,
    Leave(Leave),
}

/// One connection: HTTP/1.1 until its first bytes are HTTP/2's preface or a TLS record.
#[derive(Debug)]
pub enum ConnectionFilter {
    Http1(http1::Connection),
    Http2(http2::Connection),
    Tls(tls::Connection),
}

impl ConnectionFilter {
    pub fn new(host: &mut dyn StreamHost) -> Self {
        host.increment(Counter::NetworkConnection);
        ConnectionFilter::Http1(http1::Connection::default())
    }

    /// Since when a head is held, if one is (for the root context's timer).
    pub fn held_since(&self) -> Option<u64> {
        match self {
            ConnectionFilter::Http1(c) => c.held_since(),
            ConnectionFilter::Http2(c) => c.held_since(),
            ConnectionFilter::Tls(c) => c.held_since(),
        }
    }

    /// Envoy read more bytes; the buffer now holds `len` bytes the HCM has not taken.
    /// `end_of_stream`: no more will come.
    pub fn on_data(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        ids: &mut IdGenerator,
        len: usize,
        end_of_stream: bool,
    ) -> Verdict {
        match self {
            ConnectionFilter::Http1(c) => {
                let verdict = c.on_data(host, config, ids, len, end_of_stream);
                if let Some(seen) = c.take_tls() {
                    // A TLS record: its reader goes on from the bytes read so far.
                    let mut tls = tls::Connection::new(seen);
                    let verdict = tls.on_data(host, config, len, end_of_stream);
                    *self = ConnectionFilter::Tls(tls);
                    return verdict;
                }
                if !c.is_http2() {
                    return verdict;
                }
                // The first bytes began HTTP/2's preface: its framer reads them again.
                let mut h2 = http2::Connection::new(config);
                let verdict = h2.on_data(host, config, ids, len, end_of_stream);
                *self = ConnectionFilter::Http2(h2);
                verdict
            }
            ConnectionFilter::Http2(c) => c.on_data(host, config, ids, len, end_of_stream),
            ConnectionFilter::Tls(c) => c.on_data(host, config, len, end_of_stream),
        }
    }

    /// Envoy writes `len` bytes to the client.
    pub fn on_response(&mut self, host: &mut dyn StreamHost, config: &Config, len: usize) {
        match self {
            ConnectionFilter::Http1(c) => c.on_response(host, config, len),
            // Requests and answers are multiplexed: no request waits on an answer.
            ConnectionFilter::Http2(_) => {}
            // The server's bytes are not read.
            ConnectionFilter::Tls(_) => {}
        }
    }
}

/// Why a connection (or a head) is left as it is, byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leave {
    /// HTTP/2 framing Envoy answers with a connection error (a CONTINUATION out of place,
    /// a PUSH_PROMISE, padding longer than its frame, a frame cut off at the end), or the
    /// preface anywhere but at the connection's start.
    Http2,
    /// An HTTP/2 header block that does not decode, or a table size over the mirror's cap:
    /// the dynamic table Envoy holds can no longer be known.
    Hpack,
    /// Not an HTTP/1.0 or 1.1 request line (TLS on a plaintext port without
    /// `external_services`, a probe, garbage).
    NotHttp1,
    /// A connection that began with a TLS handshake record but not with a ClientHello this
    /// filter follows (with `external_services`): not named.
    Tls,
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
    pub const ALL: [Leave; 12] = [
        Leave::Http2,
        Leave::Hpack,
        Leave::NotHttp1,
        Leave::Tls,
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
            Leave::Hpack => "hpack",
            Leave::NotHttp1 => "not_http1",
            Leave::Tls => "tls",
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
