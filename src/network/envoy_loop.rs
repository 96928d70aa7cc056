//! Envoy's read loop and its HTTP/1 codec as the network position meets them, over a
//! [`RecordingHost`]: the simulation the unit tests, the `stream_rewrite` example and the
//! `stream` fuzz target share. Never used by the glue.
//!
//! Each client write grows the connection's buffer and calls the filter. On Continue the
//! HCM's codec takes bytes up to the end of one request and then nothing until that request
//! is answered; if it leaves bytes, Envoy stops reading the socket, and once the answer is
//! written it hands what is left to the filter again, with what arrived meanwhile behind it
//! (Envoy 1.36-1.40, `ServerConnectionImpl::dispatch`). Pause keeps everything; Close ends
//! the connection. Where requests end is the [`Codec`]'s to say, so that a fuzz target can
//! frame with a parser written apart from the filter's.

use super::{ConnectionFilter, Verdict};
use crate::config::Config;
use crate::filter::RecordingHost;
use crate::ids::IdGenerator;
use crate::network::http1::chunked::Chunked;
use crate::network::http1::head::{self, Body};

/// Where requests end, as the HCM's codec reads them.
pub trait Codec: Clone {
    /// Takes bytes from the start of `bytes`: up to the end of the first request that ends
    /// in them (with whether it was a HEAD request), or all of them.
    fn take(&mut self, bytes: &[u8]) -> (usize, Option<bool>);
}

/// A [`Codec`] on the crate's own head parser: tunnels and what it cannot parse are taken
/// to the end, as raw bytes.
#[derive(Clone, Default)]
pub struct CrateCodec {
    head: Vec<u8>,
    body: Option<CodecBody>,
    raw: bool,
}

#[derive(Clone)]
enum CodecBody {
    Length(u64),
    Chunked(Chunked),
}

impl Codec for CrateCodec {
    fn take(&mut self, bytes: &[u8]) -> (usize, Option<bool>) {
        let mut at = 0;
        while at < bytes.len() {
            if self.raw {
                return (bytes.len(), None);
            }
            let rest = bytes.get(at..).unwrap_or_default();
            match self.body.take() {
                Some(CodecBody::Length(n)) => {
                    let k = usize::try_from(n).unwrap_or(usize::MAX).min(rest.len());
                    at += k;
                    if (k as u64) < n {
                        self.body = Some(CodecBody::Length(n - k as u64));
                    } else {
                        return (at, Some(false));
                    }
                }
                Some(CodecBody::Chunked(mut c)) => {
                    let skip = usize::try_from(c.skippable())
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    if skip > 0 {
                        c.skip(skip as u64);
                        at += skip;
                    } else {
                        match c.feed(rest) {
                            Ok(fed) => at += fed.consumed,
                            Err(_) => self.raw = true,
                        }
                    }
                    if c.is_done() {
                        return (at, Some(false));
                    }
                    self.body = Some(CodecBody::Chunked(c));
                }
                None => {
                    let b = rest.first().copied().unwrap_or_default();
                    at += 1;
                    if self.head.is_empty() && (b == b'\r' || b == b'\n') {
                        continue;
                    }
                    self.head.push(b);
                    if head::head_end(&self.head).is_none() {
                        continue;
                    }
                    let bytes = std::mem::take(&mut self.head);
                    match head::parse(&bytes) {
                        Ok(h) if h.tunnel => self.raw = true,
                        Ok(h) => match h.body {
                            Body::None => return (at, Some(h.head_method)),
                            Body::Length(n) => self.body = Some(CodecBody::Length(n)),
                            Body::Chunked => {
                                self.body = Some(CodecBody::Chunked(Chunked::new(1 << 20)))
                            }
                        },
                        Err(_) => self.raw = true,
                    }
                }
            }
        }
        (at, None)
    }
}

/// A response the HCM writes: 200 with a two-byte body (none for HEAD).
pub fn answer_for(head_method: bool) -> &'static [u8] {
    if head_method {
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    } else {
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    }
}

/// One connection through the simulated Envoy.
pub struct EnvoyLoop<C: Codec> {
    pub host: RecordingHost,
    pub filter: ConnectionFilter,
    pub config: Config,
    pub ids: IdGenerator,
    pub codec: C,
    /// What the HCM took, in order.
    pub passed: Vec<u8>,
    /// Written by the client while Envoy does not read.
    pub socket: Vec<u8>,
    /// The request the HCM took to its end and has not answered (whether it was HEAD).
    pub answering: Option<bool>,
    pub read_disabled: bool,
    pub closed: bool,
    /// The client half-closed: Envoy's reads say end of stream from then on.
    pub end_of_stream: bool,
    /// Answer every request right after the call that completed it (a fast upstream).
    pub auto_answer: bool,
    pub pauses: usize,
    /// Calls that handed back bytes the HCM had not taken.
    pub represented: usize,
    /// Calls whose buffer held a request's end with more than empty lines after it: the
    /// only place the filter may step aside from a clean stream (`pipelined`).
    pub shared_buffers: usize,
}

impl<C: Codec> EnvoyLoop<C> {
    pub fn new(config: Config, ids: IdGenerator, codec: C) -> Self {
        let mut host = RecordingHost::default();
        let filter = ConnectionFilter::new(&mut host);
        EnvoyLoop {
            host,
            filter,
            config,
            ids,
            codec,
            passed: Vec::new(),
            socket: Vec::new(),
            answering: None,
            read_disabled: false,
            closed: false,
            end_of_stream: false,
            auto_answer: true,
            pauses: 0,
            represented: 0,
            shared_buffers: 0,
        }
    }

    /// The client writes `bytes` (`end_of_stream`: and half-closes).
    pub fn send(&mut self, bytes: &[u8], end_of_stream: bool) -> Verdict {
        if self.closed {
            return Verdict::Close;
        }
        self.end_of_stream |= end_of_stream;
        if self.read_disabled {
            self.socket.extend_from_slice(bytes);
            return Verdict::Pause;
        }
        self.host.downstream.extend_from_slice(bytes);
        self.read(false)
    }

    /// Envoy calls the filter with its buffer.
    fn read(&mut self, again: bool) -> Verdict {
        let end_of_stream = self.end_of_stream && self.socket.is_empty();
        if again {
            self.represented += 1;
        }
        let len = self.host.downstream.len();
        let (taken, ended) = self.codec.clone().take(&self.host.downstream);
        let rest = self.host.downstream.get(taken..).unwrap_or_default();
        if ended.is_some() && rest.iter().any(|b| !matches!(b, b'\r' | b'\n')) {
            self.shared_buffers += 1;
        }
        let verdict = self.filter.on_data(
            &mut self.host,
            &self.config,
            &mut self.ids,
            len,
            end_of_stream,
        );
        match verdict {
            Verdict::Continue => {
                let (taken, ended) = if self.answering.is_some() {
                    (0, None)
                } else {
                    self.codec.take(&self.host.downstream)
                };
                let taken = taken.min(self.host.downstream.len());
                self.passed.extend(self.host.downstream.drain(..taken));
                if ended.is_some() {
                    self.answering = ended;
                }
                if self.answering.is_some() && !self.host.downstream.is_empty() {
                    self.read_disabled = true;
                }
                if self.auto_answer && self.answering.is_some() {
                    self.answer_now();
                }
            }
            Verdict::Pause => self.pauses += 1,
            Verdict::Close => self.closed = true,
        }
        verdict
    }

    /// The HCM answers the request it is answering with the default answer.
    pub fn answer_now(&mut self) {
        let head_method = self.answering.unwrap_or(false);
        self.answer(answer_for(head_method));
    }

    /// The HCM writes `response`, the whole answer to the request it is answering, and
    /// the answer's stream ends: its codec reads on, and Envoy hands back what it left.
    pub fn answer(&mut self, response: &[u8]) {
        self.write_answer(response);
        self.end_answer();
    }

    /// The HCM writes `response` (all or part of an answer); the stream goes on.
    pub fn write_answer(&mut self, response: &[u8]) {
        self.host.upstream = response.to_vec();
        self.filter
            .on_response(&mut self.host, &self.config, response.len());
    }

    /// The answer's stream ends (with nothing more written: END_STREAM from an HTTP/2
    /// upstream after a Content-Length body, say): the codec reads on.
    pub fn end_answer(&mut self) {
        self.answering = None;
        if self.closed {
            return;
        }
        let disabled = std::mem::take(&mut self.read_disabled);
        let socket = std::mem::take(&mut self.socket);
        self.host.downstream.extend_from_slice(&socket);
        if disabled && !self.host.downstream.is_empty() {
            self.read(true);
        } else if !socket.is_empty() {
            self.read(false);
        }
    }

    /// Answers until the HCM waits for nothing.
    pub fn answer_all(&mut self) {
        while self.answering.is_some() && !self.closed {
            self.answer_now();
        }
    }
}
