//! HTTP/1.1 in the network position.
//!
//! Each read hands the filter the connection's buffer: what the HCM has not taken yet. A
//! request head is read (in windows: a body behind it is not copied), decided by the same
//! policy as the HTTP filter, rewritten in place when its trace headers change (the buffer's
//! first bytes replaced, the only write Envoy allows there), and its body followed by length
//! only. An incomplete head is held (Pause) until it is complete, as Envoy's codec would
//! wait for it, but no longer than `request_headers_timeout_ms`.
//!
//! What Envoy does with the bytes the filter passes on (measured on 1.36, 1.38 and 1.40;
//! `ServerConnectionImpl::dispatch` in Envoy's HTTP/1 codec): the codec takes bytes up to
//! the end of one request and then takes nothing more until that request is answered; what
//! it did not take stays in the buffer, and Envoy runs the network filters over it again,
//! with whatever arrived since behind it, when the answer is done. So the filter follows
//! the responses Envoy writes (their framing only) to know when the HCM is answering, and
//! knows at every read how many of the buffer's first bytes it has seen already
//! (`presented`). One request ending before the buffer's end breaks that knowledge: how far
//! the codec reads then depends on whether the request is answered before the codec
//! returns (a local reply is), which the filter cannot see. The filter then leaves the
//! connection byte for byte ([`Leave`]), and where `trust` is set it closes it instead, so
//! that no later request reaches Envoy's tracer with the client's context.

pub mod chunked;
pub mod head;
pub mod response;
pub mod rewrite;

use super::{Leave, StreamHost, Verdict, held_too_long, tls};
use crate::config::{Config, Trust};
use crate::filter::decision::{self, Applied, Decision};
use crate::filter::{Counter, count};
use crate::ids::IdGenerator;
use crate::policy;
use chunked::Chunked;
use head::Body;
use response::ResponseBody;

/// The first read of a head: most heads fit (a browser's is about 1.5 KB); longer ones
/// are read on in doubling windows.
const FIRST_READ: usize = 2048;
/// Reads of chunk-size lines: a size and a short extension.
const CHUNK_LINE_READ: usize = 64;
/// Empty lines tolerated before a request line (RFC 9112 section 2.2 asks servers to
/// ignore at least one); more is not a request.
const MAX_LEADING_EMPTY: usize = 8;
/// The first read of a response head (Envoy writes the head in a write of its own or in
/// front of the body).
const RESPONSE_FIRST_READ: usize = 512;
/// A response head longer than this is not followed (Envoy's default limit is 60 KiB).
const MAX_RESPONSE_HEAD: usize = 96 * 1024;

#[derive(Debug, Default)]
enum State {
    /// Between requests.
    #[default]
    Idle,
    /// A head has begun and is not complete: the buffer's bytes read so far.
    Head(Vec<u8>),
    /// Inside a Content-Length body: bytes left.
    Body(u64),
    Chunked(Chunked),
    /// A CONNECT or Upgrade head was passed on: Envoy's codec reads what follows as the
    /// tunnel's, unless it answers without switching (or is configured to ignore the
    /// upgrade), when it reads HTTP/1 on. Settled by the answer.
    TunnelPending,
    /// Left alone from here on.
    Left,
    /// The connection began with HTTP/2's preface: not this framer's.
    Http2,
    /// The connection began with a TLS record (and names TLS connections): the bytes read,
    /// until the TLS reader takes them.
    Tls(Vec<u8>),
    /// To be closed: nothing more is passed on, and the next read closes the connection
    /// (a close asked for while Envoy writes would cut that write off).
    Closed,
}

/// A request, as far as its response's framing depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Request {
    head_method: bool,
    /// CONNECT: a 2xx answer switches to the tunnel.
    connect: bool,
    /// The filter made its head longer (a 431 for it is then worth a word in the log).
    grown: bool,
}

/// Where the response Envoy is writing stands.
#[derive(Debug, Default)]
enum Answer {
    #[default]
    Idle,
    /// A response head has begun: its bytes so far.
    Head(Vec<u8>),
    Body(u64),
    Chunked(Chunked),
}

/// One HTTP/1 connection's state.
#[derive(Debug, Default)]
pub struct Connection {
    state: State,
    /// The request whose head was read last.
    reading: Request,
    /// The buffer's first bytes the filter has read and passed on, and the HCM has not taken.
    presented: usize,
    /// A request whose end lies in the presented bytes (only empty lines after it).
    presented_end: Option<Request>,
    /// A request the HCM has taken to its end and not answered: until it has, its codec
    /// takes nothing more from the buffer.
    answering: Option<Request>,
    answer: Answer,
    /// The last answer ended on framing Envoy may write before its stream ends
    /// (Content-Length, or no body: END_STREAM can come later, from an HTTP/2 upstream's
    /// trailers say), so the HCM may still be answering. A chunked answer's last chunk is
    /// written with the stream's end; so is any byte of the next answer.
    tentative: bool,
    /// The first bytes of a buffer passed while `tentative`, on the view that the HCM took
    /// it: if the next read begins with them, Envoy may be handing them back.
    unconfirmed: Option<Prefix>,
    /// A head has been read on this connection (HTTP/2's preface counts only before).
    seen_head: bool,
    /// Empty lines were passed to the HCM before any head: they chose its codec (HTTP/1:
    /// Envoy picks HTTP/2 only for bytes that begin with its preface).
    passed_empty_lines: bool,
    /// When the head being held began to be held (host clock, ns).
    held_since: Option<u64>,
}

/// How many of a passed buffer's first bytes are kept to recognise it handed back.
const UNCONFIRMED_BYTES: usize = 64;

/// A buffer's first bytes, kept inline (one per request: no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Prefix {
    bytes: [u8; UNCONFIRMED_BYTES],
    len: usize,
}

impl Default for Prefix {
    fn default() -> Self {
        Prefix {
            bytes: [0; UNCONFIRMED_BYTES],
            len: 0,
        }
    }
}

impl Prefix {
    /// Appends from `more` while there is room.
    fn extend(&mut self, more: &[u8]) {
        let room = self.bytes.get_mut(self.len..).unwrap_or_default();
        let n = room.len().min(more.len());
        if let (Some(to), Some(from)) = (room.get_mut(..n), more.get(..n)) {
            to.copy_from_slice(from);
            self.len += n;
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// Where a read stands.
struct Read {
    /// Offset in the buffer up to which the stream is followed.
    at: usize,
    /// The buffer's length (it changes when a head is rewritten).
    len: usize,
    /// A request ended within this read: which.
    ended: Option<Request>,
    /// The buffer's first bytes as passed on (after a rewrite), when this read read them.
    first: Prefix,
    /// The buffer holds only empty lines: handed back or not, they are read as empty lines
    /// before the next head.
    blank: bool,
}

/// A response ended: the HCM answered its request (or wrote an interim one).
enum Written {
    More,
    Done,
}

impl Connection {
    /// The connection began with HTTP/2's preface (its HTTP/2 framer takes over).
    pub fn is_http2(&self) -> bool {
        matches!(self.state, State::Http2)
    }

    /// The connection began with a TLS record: the bytes read so far, for its reader.
    pub fn take_tls(&mut self) -> Option<Vec<u8>> {
        match std::mem::take(&mut self.state) {
            State::Tls(seen) => {
                self.state = State::Left;
                Some(seen)
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Since when a head is held, if one is (for the root context's timer).
    pub fn held_since(&self) -> Option<u64> {
        self.held_since
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
        match self.state {
            State::Left | State::Http2 | State::Tls(_) => return Verdict::Continue,
            State::Closed => return Verdict::Close,
            _ => {}
        }
        if self.presented > 0 {
            // Envoy hands back what its codec did not take only once the request it was
            // answering is answered, and the bytes are still there.
            if self.answering.is_some() || len < self.presented {
                return self.leave(host, config, Leave::Unsure);
            }
            host.increment(Counter::NetworkRepresented);
            self.tentative = false;
        }
        if let Some(first) = self.unconfirmed.take() {
            // Passed while the HCM may still have been answering: if this read begins with
            // those bytes, Envoy may be handing them back (or the client sent them again),
            // and which bytes are new cannot be told.
            let first = first.as_slice();
            let again = len >= first.len()
                && match host.read_downstream(0, first.len()) {
                    Ok(bytes) => bytes == first,
                    Err(_) => return self.leave(host, config, Leave::HostError),
                };
            if again {
                return self.leave(host, config, Leave::Unsure);
            }
            self.tentative = false;
        }
        let ended = self.presented_end.take();
        let mut read = Read {
            // A held head, and empty lines handed back between requests, are read again
            // from the buffer's start.
            at: if ended.is_none() && matches!(self.state, State::Idle | State::Head(_)) {
                0
            } else {
                self.presented
            },
            len,
            ended,
            first: Prefix::default(),
            blank: false,
        };
        loop {
            match std::mem::take(&mut self.state) {
                State::Left => return Verdict::Continue,
                // Another framer's: kept for it.
                other @ (State::Http2 | State::Tls(_)) => {
                    self.state = other;
                    return Verdict::Continue;
                }
                State::Closed => return Verdict::Close,
                State::TunnelPending if read.at >= read.len => {
                    self.state = State::TunnelPending;
                    return self.pass(host, &read);
                }
                // Bytes after a tunnel's head before its answer: the tunnel's, or (if Envoy
                // does not switch) HTTP/1 the filter has not read.
                State::TunnelPending => return self.leave(host, config, Leave::Upgrade),
                State::Body(left) => {
                    let available = (read.len.saturating_sub(read.at)) as u64;
                    if left > available {
                        self.state = State::Body(left - available);
                        return self.pass(host, &read);
                    }
                    read.at += usize::try_from(left).unwrap_or(usize::MAX);
                    read.ended = Some(self.reading);
                }
                State::Chunked(mut body) => match follow_chunked(host, &mut body, &mut read) {
                    Ok(true) => read.ended = Some(self.reading),
                    Ok(false) => {
                        self.state = State::Chunked(body);
                        return self.pass(host, &read);
                    }
                    Err(reason) => return self.leave(host, config, reason),
                },
                State::Idle if read.at >= read.len => return self.pass(host, &read),
                State::Idle if read.ended.is_some() => {
                    // Bytes after a complete request in the same buffer: another request.
                    return match only_empty_lines(host, &read) {
                        Ok(true) => self.pass(host, &read),
                        Ok(false) => self.leave(host, config, Leave::Pipelined),
                        Err(reason) => self.leave(host, config, reason),
                    };
                }
                State::Idle => {
                    if let Some(verdict) =
                        self.head(host, config, ids, Vec::new(), &mut read, end_of_stream)
                    {
                        return verdict;
                    }
                }
                State::Head(seen) => {
                    if let Some(verdict) =
                        self.head(host, config, ids, seen, &mut read, end_of_stream)
                    {
                        return verdict;
                    }
                }
            }
        }
    }

    /// Passes the buffer on, and notes what the HCM's codec takes of it: nothing while it
    /// is answering a request; else everything up to the end of the request that ends in
    /// it, or everything. (Empty lines after that end may stay or not: the next read
    /// takes them for empty lines before a request either way.)
    fn pass(&mut self, host: &mut dyn StreamHost, read: &Read) -> Verdict {
        if self.answering.is_some() {
            self.presented = read.len;
            self.presented_end = read.ended;
        } else {
            if self.tentative && read.len > 0 && !read.blank {
                let first = if read.first.len == 0 {
                    let mut first = Prefix::default();
                    match host.read_downstream(0, UNCONFIRMED_BYTES) {
                        Ok(bytes) => first.extend(&bytes),
                        Err(_) => return self.leave_for(host, Leave::HostError, true),
                    }
                    first
                } else {
                    read.first
                };
                self.unconfirmed = Some(first);
            }
            self.presented = 0;
            self.presented_end = None;
            if read.ended.is_some() {
                self.answering = read.ended;
            }
        }
        Verdict::Continue
    }

    fn leave(&mut self, host: &mut dyn StreamHost, config: &Config, reason: Leave) -> Verdict {
        if reason == Leave::Http2 {
            // The connection's first bytes are HTTP/2's preface: handed to its framer.
            self.state = State::Http2;
            return Verdict::Continue;
        }
        self.leave_for(host, reason, config.closes_for_trust())
    }

    /// Leaves the connection, or closes it (`close`, and always for a slow head).
    fn leave_for(&mut self, host: &mut dyn StreamHost, reason: Leave, close: bool) -> Verdict {
        host.increment(Counter::NetworkLeft(reason));
        self.held_since = None;
        self.unconfirmed = None;
        if close || reason == Leave::SlowHead {
            host.increment(Counter::NetworkClosed);
            self.state = State::Closed;
            Verdict::Close
        } else {
            self.state = State::Left;
            Verdict::Continue
        }
    }

    /// Nothing of this connection has reached the HCM yet: its first bytes choose the codec.
    fn at_start(&self) -> bool {
        !self.seen_head && !self.passed_empty_lines
    }

    /// HTTP/2's preface counts only as a connection's first bytes: after a request or empty
    /// lines passed on, Envoy's HTTP/1 codec reads it as a bad request line. (Empty lines
    /// before it in the same read reach the HTTP/2 framer, whose preface check leaves them.)
    fn after_first(&self, reason: Leave) -> Leave {
        if reason == Leave::Http2 && !self.at_start() {
            Leave::NotHttp1
        } else {
            reason
        }
    }

    /// A head at the buffer's start (with `seen`, what earlier reads of this buffer gave),
    /// in steps: read it, hold it while it is partial, parse, decide and rewrite it, and
    /// set the state for its body. `None`: go on with the rest of the read.
    fn head(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        ids: &mut IdGenerator,
        mut seen: Vec<u8>,
        read: &mut Read,
        end_of_stream: bool,
    ) -> Option<Verdict> {
        if read.at != 0 {
            // A head starts the buffer, or follows a request in it (Pipelined).
            return Some(self.leave(host, config, Leave::Unsure));
        }
        let limit = config.limits.max_head_bytes;
        let (lead, parsed) = loop {
            if let Err(reason) = read_window(host, &mut seen, read.len, limit) {
                return Some(self.leave(host, config, reason));
            }
            // A connection's first byte may begin a TLS record (22, which no request line
            // has): named by its server name where external services are configured.
            if self.at_start()
                && config.external.is_some()
                && seen.first() == Some(&tls::client_hello::HANDSHAKE_RECORD)
            {
                // Handed to the TLS reader, with the bytes read.
                self.state = State::Tls(seen);
                return Some(Verdict::Continue);
            }
            let lead = seen
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            if lead > MAX_LEADING_EMPTY {
                return Some(self.leave(host, config, Leave::NotHttp1));
            }
            let started = seen.get(lead..).unwrap_or_default();
            let stop = match head::scan(started) {
                Ok(Some(parsed)) => break (lead, parsed),
                Ok(None) if started.len() > limit => Some(Leave::TooLarge),
                Ok(None) => None,
                Err(reason) => Some(self.after_first(reason)),
            };
            if let Some(reason) = stop {
                return Some(self.leave(host, config, reason));
            }
            if seen.len() >= read.len {
                return Some(self.hold(host, config, seen, read, end_of_stream));
            }
        };
        self.held_since = None;
        self.seen_head = true;
        host.increment(Counter::NetworkHead);
        self.reading = Request {
            head_method: parsed.head_method,
            connect: parsed.connect,
            grown: false,
        };
        let (head_len, replaced) = match self.rewrite(host, config, ids, &parsed, &seen, lead, read)
        {
            Ok(done) => done,
            Err(reason) => return Some(self.leave(host, config, reason)),
        };
        // The buffer's first bytes as passed on: what replaced the head's first bytes, then
        // what followed them.
        read.first
            .extend(seen.get(replaced.unwrap_or(0)..).unwrap_or_default());
        read.at = lead + head_len;
        self.after_head(host, config, &parsed, read)
    }

    /// A partial head: held until it is complete (Pause), within the limits of time and
    /// size; only empty lines are passed on.
    fn hold(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        seen: Vec<u8>,
        read: &mut Read,
        end_of_stream: bool,
    ) -> Verdict {
        if seen.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            // Only empty lines so far: Envoy's codec skips them, so they are passed on (and
            // never timed as a held head: a client may end a request with one more CRLF
            // and then idle). Before any head they choose the HCM's codec: HTTP/1.
            read.blank = true;
            self.passed_empty_lines |= !self.seen_head && read.len > 0;
            return self.pass(host, read);
        }
        if end_of_stream {
            return self.leave(host, config, Leave::NotHttp1);
        }
        // Holding more than the connection's buffer limit would stall it.
        if read.len >= config.limits.max_held_bytes {
            return self.leave(host, config, Leave::TooLarge);
        }
        // Envoy's header timeout starts only when its codec sees the head: while the filter
        // holds it, the filter keeps that time (from when the codec would have read it: not
        // while the HCM is still answering).
        if self.answering.is_none() && held_too_long(host, config, &mut self.held_since) {
            return self.leave(host, config, Leave::SlowHead);
        }
        self.state = State::Head(seen);
        Verdict::Pause
    }

    /// Decides the head's trace context and writes the head back where it changes: the
    /// head's length as passed on, and how many of the buffer's first bytes were replaced
    /// (`None`: none were).
    #[allow(clippy::too_many_arguments)] // the steps of one head, each named
    fn rewrite(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        ids: &mut IdGenerator,
        parsed: &head::RequestHead<'_>,
        seen: &[u8],
        lead: usize,
        read: &mut Read,
    ) -> Result<(usize, Option<usize>), Leave> {
        let end = parsed.bytes().len();
        let plan = policy::decide(config, &parsed.carrier, ids);
        count(host, &plan);
        let limits = &config.limits;
        let within = |r: &rewrite::Rewritten| {
            end <= limits.max_head_bytes
                && r.head_len <= limits.max_head_bytes
                && parsed.field_count <= limits.max_headers
                && r.field_count <= limits.max_headers
        };
        let mut applied = Applied::All;
        let mut removals = None;
        let rewritten = match rewrite::rewrite(parsed, &plan) {
            Some(rewritten) if !within(&rewritten) => {
                // Envoy refuses a head over its limits with a 431: never make one cross them.
                host.increment(Counter::NetworkAtLimit);
                if config.trust == Trust::Continue {
                    applied = Applied::Nothing;
                    None
                } else {
                    // Under `trust` the client's context must not reach the tracer: what the
                    // plan writes is removed instead (a head only shrinks by that).
                    applied = Applied::Removals;
                    let only = removals.insert(plan.removals_only(&parsed.carrier));
                    rewrite::rewrite(parsed, only)
                }
            }
            rewritten => rewritten,
        };
        if log::log_enabled!(log::Level::Debug) {
            decision::log_decision(Decision {
                position: config.position,
                plan: removals.as_ref().unwrap_or(&plan),
                applied,
                request_id: parsed.carrier.request_id,
                stripped: false,
                dry_run: config.dry_run,
            });
        }
        let Some(rewritten) = rewritten else {
            return Ok((end, None));
        };
        if config.dry_run {
            // Counted as if rewritten; the head passes as it came.
            host.increment(Counter::NetworkRewritten);
            host.increment(Counter::DryRunWouldChange);
            return Ok((end, None));
        }
        let mut prefix = rewritten.bytes;
        if lead > 0 {
            // Empty lines before the head stay as they were, in front of it.
            prefix.splice(0..0, seen.get(..lead).unwrap_or_default().iter().copied());
        }
        host.replace_downstream_prefix(lead + rewritten.replaced, &prefix)
            .map_err(|_| Leave::HostError)?;
        host.increment(Counter::NetworkRewritten);
        self.reading.grown = rewritten.head_len > end;
        read.len = read.len - rewritten.replaced + (prefix.len() - lead);
        read.first.extend(&prefix);
        Ok((rewritten.head_len, Some(lead + rewritten.replaced)))
    }

    /// The state for what follows a head passed on: its body, a tunnel, or the next head.
    fn after_head(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        parsed: &head::RequestHead<'_>,
        read: &mut Read,
    ) -> Option<Verdict> {
        if parsed.tunnel {
            // The head is passed on (rewritten); what follows it is the tunnel's if Envoy
            // switches, which its answer says. A client waits for that answer.
            self.state = State::TunnelPending;
            if read.at < read.len {
                return Some(self.leave(host, config, Leave::Upgrade));
            }
            return Some(self.pass(host, read));
        }
        match parsed.body {
            Body::None => {
                read.ended = Some(self.reading);
                self.state = State::Idle;
            }
            Body::Length(n) => self.state = State::Body(n),
            Body::Chunked => {
                self.state = State::Chunked(Chunked::new(config.limits.max_head_bytes))
            }
        }
        None
    }

    /// Envoy writes `len` bytes to the client: the responses. Followed only while the
    /// requests are; each write is seen once. Always lets the write through: where the
    /// connection is to be closed, the next read closes it.
    pub fn on_response(&mut self, host: &mut dyn StreamHost, config: &Config, len: usize) {
        if matches!(self.state, State::Left | State::Closed | State::Http2) {
            return;
        }
        self.follow_response(host, config, len);
    }

    /// Where following fails, the filter leaves (or closes at the next read).
    fn follow_response(&mut self, host: &mut dyn StreamHost, config: &Config, len: usize) {
        let mut at = 0usize;
        loop {
            match std::mem::take(&mut self.answer) {
                Answer::Idle if at >= len => return,
                Answer::Idle => {
                    // Envoy starts an answer only once the last one's stream has ended.
                    self.tentative = false;
                    self.unconfirmed = None;
                    self.answer = Answer::Head(Vec::new());
                }
                Answer::Head(mut seen) => {
                    let before = seen.len();
                    let mut end = None;
                    while at < len {
                        let want = (len - at).min(seen.len().max(RESPONSE_FIRST_READ));
                        match host.read_upstream(at, want) {
                            Ok(more) if !more.is_empty() => {
                                at += more.len();
                                if seen.is_empty() {
                                    seen = more;
                                } else {
                                    seen.extend_from_slice(&more);
                                }
                            }
                            _ => {
                                self.leave(host, config, Leave::HostError);
                                return;
                            }
                        }
                        if let Some(e) = head::head_end(&seen) {
                            end = Some(e);
                            break;
                        }
                        if seen.len() > MAX_RESPONSE_HEAD {
                            self.leave(host, config, Leave::Response);
                            return;
                        }
                    }
                    let Some(end) = end else {
                        self.answer = Answer::Head(seen);
                        return;
                    };
                    // Bytes read past the head belong to the body.
                    at = at - (seen.len() - before) + (end - before);
                    match self.response_head(host, config, seen.get(..end).unwrap_or_default()) {
                        Some(Written::More) => {}
                        Some(Written::Done) => self.answered(host, true),
                        None => return,
                    }
                }
                Answer::Body(left) => {
                    let available = (len - at) as u64;
                    if left > available {
                        self.answer = Answer::Body(left - available);
                        return;
                    }
                    at += usize::try_from(left).unwrap_or(usize::MAX);
                    self.answered(host, true);
                }
                Answer::Chunked(mut body) => {
                    match follow_chunked_with(&mut body, &mut at, len, |start, n| {
                        host.read_upstream(start, n)
                    }) {
                        Ok(true) => self.answered(host, false),
                        Ok(false) => {
                            self.answer = Answer::Chunked(body);
                            return;
                        }
                        Err(_) => {
                            self.leave(host, config, Leave::Response);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// A response head was written: sets how its body is followed (`None`: not followed).
    fn response_head(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        bytes: &[u8],
    ) -> Option<Written> {
        let request = self.answering;
        let parsed = match response::parse(bytes, request.is_some_and(|r| r.head_method)) {
            Ok(parsed) => parsed,
            Err(reason) => {
                self.leave(host, config, reason);
                return None;
            }
        };
        if parsed.is_interim() {
            // 100 Continue and the like: the final response follows.
            return Some(Written::More);
        }
        // The tunnel's own answer comes once the HCM has taken its head: an answer while
        // the HCM was answering an earlier request is that request's.
        if matches!(self.state, State::TunnelPending) && request.is_none() {
            let switched = parsed.status == 101
                || (self.reading.connect && (200..300).contains(&parsed.status));
            if switched {
                // The tunnel's bytes follow, and no request after them.
                host.increment(Counter::NetworkLeft(Leave::Upgrade));
                self.state = State::Left;
                return None;
            }
            // Not switched: Envoy may read HTTP/1 on (or close); the filter cannot tell
            // from where.
            self.leave(host, config, Leave::Upgrade);
            return None;
        }
        if parsed.status == 101 {
            // A switch to a request the filter did not take for a tunnel.
            self.leave(host, config, Leave::Response);
            return None;
        }
        let Some(request) = request else {
            // A final response before the request's end (a local reply to a head, an
            // error): Envoy's codec may read on from anywhere now, or close.
            self.leave(host, config, Leave::Response);
            return None;
        };
        if parsed.status == 431 && request.grown {
            log::warn!(
                "tracejoin: Envoy answered 431 to a head tracejoin made longer: set the plugin's max_request_headers_kb (and max_request_headers_count) to the HTTP connection manager's"
            );
        }
        match parsed.body {
            ResponseBody::None => Some(Written::Done),
            ResponseBody::Length(n) => {
                self.answer = Answer::Body(n);
                Some(Written::More)
            }
            ResponseBody::Chunked => {
                self.answer = Answer::Chunked(Chunked::new(MAX_RESPONSE_HEAD));
                Some(Written::More)
            }
            // Envoy closes the connection after it; were it not to, where a next request
            // starts could not be told.
            ResponseBody::UntilClose => {
                self.leave(host, config, Leave::Response);
                None
            }
        }
    }

    /// The HCM answered the request it was answering: its codec reads on, once the
    /// answer's stream has ended (`tentative`: that may come later, unseen).
    fn answered(&mut self, host: &mut dyn StreamHost, tentative: bool) {
        self.answering = None;
        self.tentative = tentative;
        // A head held meanwhile is now one Envoy's codec would be reading: its time starts.
        if matches!(self.state, State::Head(_)) && self.held_since.is_none() {
            self.held_since = Some(host.now_nanos());
        }
    }
}

/// Follows a chunked request body through the read; `true` when it ended.
fn follow_chunked(
    host: &mut dyn StreamHost,
    body: &mut Chunked,
    read: &mut Read,
) -> Result<bool, Leave> {
    follow_chunked_with(body, &mut read.at, read.len, |start, n| {
        host.read_downstream(start, n)
    })
}

/// Follows a chunked body from `at` to `len` in a buffer read with `read_bytes(start, len)`.
fn follow_chunked_with(
    body: &mut Chunked,
    at: &mut usize,
    len: usize,
    mut read_bytes: impl FnMut(usize, usize) -> Result<Vec<u8>, super::HostError>,
) -> Result<bool, Leave> {
    loop {
        if body.is_done() {
            return Ok(true);
        }
        if *at >= len {
            return Ok(false);
        }
        let available = len - *at;
        let skip = body.skippable();
        if skip > 0 {
            let n = skip.min(available as u64);
            body.skip(n);
            *at += usize::try_from(n).unwrap_or(available);
            continue;
        }
        let bytes =
            read_bytes(*at, CHUNK_LINE_READ.min(available)).map_err(|_| Leave::HostError)?;
        if bytes.is_empty() {
            return Err(Leave::HostError);
        }
        let fed = body.feed(&bytes)?;
        *at += fed.consumed;
    }
}

/// Reads the buffer's next window after `seen` into it, if there is more: a head's first
/// 2 KiB, then doubling windows up to just past the head limit.
fn read_window(
    host: &mut dyn StreamHost,
    seen: &mut Vec<u8>,
    len: usize,
    limit: usize,
) -> Result<(), Leave> {
    if seen.len() >= len {
        return Ok(());
    }
    let want = seen
        .len()
        .max(FIRST_READ)
        .min(len - seen.len())
        .min(limit.saturating_add(MAX_LEADING_EMPTY + 4));
    match host.read_downstream(seen.len(), want) {
        // The first window is the host's buffer itself: not copied again.
        Ok(more) if !more.is_empty() && seen.is_empty() => *seen = more,
        Ok(more) if !more.is_empty() => seen.extend_from_slice(&more),
        _ => return Err(Leave::HostError),
    }
    Ok(())
}

/// Whether the rest of the read holds only CR and LF (empty lines between requests).
fn only_empty_lines(host: &mut dyn StreamHost, read: &Read) -> Result<bool, Leave> {
    let mut at = read.at;
    while at < read.len {
        let bytes = host
            .read_downstream(at, CHUNK_LINE_READ.min(read.len - at))
            .map_err(|_| Leave::HostError)?;
        if bytes.is_empty() {
            return Err(Leave::HostError);
        }
        if !bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return Ok(false);
        }
        at += bytes.len();
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
