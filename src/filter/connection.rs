//! The network position: one connection's downstream bytes, in front of Envoy's HTTP
//! connection manager (HCM), so that Envoy's tracer reads the context tracejoin chose.
//!
//! Each read hands the filter the connection's buffer: what has not been passed on yet. A
//! request head is read (in windows: a body behind it is not copied), decided by the same
//! policy as the HTTP filter, rewritten in place when its trace headers change (the buffer's
//! first bytes replaced, the only write Envoy allows there), and its body followed by length
//! only. An incomplete head is held (Pause) until it is complete: Envoy's codec would wait
//! for it too. Anything the filter cannot follow with certainty makes it leave the
//! connection alone from then on, byte for byte ([`Leave`]).
//!
//! Envoy's HTTP/1 codec takes one request at a time and leaves a second one that arrived in
//! the same read in the buffer, to hand it through the filter chain again later; the filter
//! then cannot tell which bytes it has seen, so a request that follows another in one read
//! ([`Leave::Pipelined`]) ends its work on that connection (after rewriting the first).

use super::count;
use super::counters::Counter;
use super::host::StreamHost;
use crate::codec::Carrier;
use crate::config::Config;
use crate::ids::IdGenerator;
use crate::policy;
use crate::stream::Leave;
use crate::stream::chunked::Chunked;
use crate::stream::head::{self, Body};
use crate::stream::rewrite;

/// The first read of a head: most heads fit (a browser's is about 1.5 KB); longer ones
/// are read on in doubling windows.
const FIRST_READ: usize = 2048;
/// Reads of chunk-size lines: a size and a short extension.
const CHUNK_LINE_READ: usize = 64;
/// Empty lines tolerated before a request line (RFC 9112 section 2.2 asks servers to
/// ignore at least one); more is not a request.
const MAX_LEADING_EMPTY: usize = 8;

/// What to tell Envoy about the read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pass the buffer on to the HCM.
    Continue,
    /// Keep buffering: a head is not complete yet.
    Pause,
}

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
    /// Left alone from here on.
    Left,
}

/// One connection's state.
#[derive(Debug, Default)]
pub struct ConnectionFilter {
    state: State,
}

/// Where a read stands.
struct Read {
    /// Offset in the buffer up to which the stream is followed.
    at: usize,
    /// The buffer's length (it changes when a head is rewritten).
    len: usize,
    /// A request ended within this read.
    completed: bool,
}

impl ConnectionFilter {
    pub fn new(host: &mut dyn StreamHost) -> Self {
        host.increment(Counter::NetworkConnection);
        ConnectionFilter::default()
    }

    /// Envoy read more bytes; the buffer now holds `len` bytes not yet passed on.
    /// `end_of_stream`: no more will come.
    pub fn on_data(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        ids: &mut IdGenerator,
        len: usize,
        end_of_stream: bool,
    ) -> Verdict {
        let mut read = Read {
            at: 0,
            len,
            completed: false,
        };
        loop {
            match std::mem::take(&mut self.state) {
                State::Left => {
                    self.state = State::Left;
                    return Verdict::Continue;
                }
                State::Body(left) => {
                    let available = (read.len.saturating_sub(read.at)) as u64;
                    if left > available {
                        self.state = State::Body(left - available);
                        return Verdict::Continue;
                    }
                    read.at += usize::try_from(left).unwrap_or(usize::MAX);
                    read.completed = true;
                }
                State::Chunked(mut body) => match follow_chunked(host, &mut body, &mut read) {
                    Ok(true) => read.completed = true,
                    Ok(false) => {
                        self.state = State::Chunked(body);
                        return Verdict::Continue;
                    }
                    Err(reason) => return self.leave(host, reason),
                },
                State::Idle if read.at >= read.len => return Verdict::Continue,
                State::Idle if read.completed => {
                    // Bytes after a complete request in the same read: another request.
                    return match only_empty_lines(host, &read) {
                        Ok(true) => Verdict::Continue,
                        Ok(false) => self.leave(host, Leave::Pipelined),
                        Err(reason) => self.leave(host, reason),
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

    fn leave(&mut self, host: &mut dyn StreamHost, reason: Leave) -> Verdict {
        host.increment(Counter::NetworkLeft(reason));
        self.state = State::Left;
        Verdict::Continue
    }

    /// Reads a head from the buffer's start (with `seen`, what earlier reads of this buffer
    /// gave), decides and rewrites it, and sets the state for its body. `None`: go on with
    /// the rest of the read.
    fn head(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        ids: &mut IdGenerator,
        mut seen: Vec<u8>,
        read: &mut Read,
        end_of_stream: bool,
    ) -> Option<Verdict> {
        let limit = config.limits.max_head_bytes;
        let (lead, end) = loop {
            if seen.len() < read.len {
                let want = seen
                    .len()
                    .max(FIRST_READ)
                    .min(read.len - seen.len())
                    .min(limit.saturating_add(MAX_LEADING_EMPTY + 4));
                match host.read_downstream(seen.len(), want) {
                    Ok(more) if !more.is_empty() => seen.extend_from_slice(&more),
                    _ => return Some(self.leave(host, Leave::HostError)),
                }
            }
            let lead = seen
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            if lead > MAX_LEADING_EMPTY {
                return Some(self.leave(host, Leave::NotHttp1));
            }
            let started = seen.get(lead..).unwrap_or_default();
            if let Some(end) = head::head_end(started) {
                break (lead, end);
            }
            if let Err(reason) = head::check_prefix(started) {
                return Some(self.leave(host, reason));
            }
            if started.len() > limit {
                return Some(self.leave(host, Leave::TooLarge));
            }
            if seen.len() >= read.len {
                if end_of_stream {
                    return Some(self.leave(host, Leave::NotHttp1));
                }
                // Holding more than the connection's buffer limit would stall it.
                if read.len >= config.limits.max_held_bytes {
                    return Some(self.leave(host, Leave::TooLarge));
                }
                self.state = State::Head(seen);
                return Some(Verdict::Pause);
            }
        };
        let bytes = seen.get(lead..lead + end).unwrap_or_default();
        let parsed = match head::parse(bytes) {
            Ok(parsed) => parsed,
            Err(reason) => return Some(self.leave(host, reason)),
        };
        host.increment(Counter::NetworkHead);
        let carrier = Carrier::from_pairs(parsed.fields().map(|f| (f.name, f.value)));
        let plan = policy::decide(config, &carrier, ids);
        count(host, &plan);
        let mut head_len = end;
        if let Some(rewrite::Rewritten {
            head: new,
            field_count: fields,
        }) = rewrite::rewrite(&parsed, &plan)
        {
            let limits = &config.limits;
            // Envoy refuses a head over its limits with a 431: never make one cross them.
            if end <= limits.max_head_bytes
                && new.len() <= limits.max_head_bytes
                && parsed.field_count <= limits.max_headers
                && fields <= limits.max_headers
            {
                let mut prefix = Vec::with_capacity(lead + new.len());
                prefix.extend_from_slice(seen.get(..lead).unwrap_or_default());
                prefix.extend_from_slice(&new);
                if host.replace_downstream_prefix(lead + end, &prefix).is_err() {
                    return Some(self.leave(host, Leave::HostError));
                }
                host.increment(Counter::NetworkRewritten);
                head_len = new.len();
                read.len = read.len - end + new.len();
            } else {
                host.increment(Counter::NetworkAtLimit);
            }
        }
        read.at = lead + head_len;
        if parsed.tunnel {
            return Some(self.leave(host, Leave::Upgrade));
        }
        match parsed.body {
            Body::None => {
                read.completed = true;
                self.state = State::Idle;
            }
            Body::Length(n) => self.state = State::Body(n),
            Body::Chunked => {
                self.state = State::Chunked(Chunked::new(config.limits.max_head_bytes))
            }
        }
        None
    }
}

/// Follows a chunked body through the read; `true` when it ended.
fn follow_chunked(
    host: &mut dyn StreamHost,
    body: &mut Chunked,
    read: &mut Read,
) -> Result<bool, Leave> {
    loop {
        if body.is_done() {
            return Ok(true);
        }
        if read.at >= read.len {
            return Ok(false);
        }
        let available = read.len - read.at;
        let skip = body.skippable();
        if skip > 0 {
            let n = skip.min(available as u64);
            body.skip(n);
            read.at += usize::try_from(n).unwrap_or(available);
            continue;
        }
        let bytes = host
            .read_downstream(read.at, CHUNK_LINE_READ.min(available))
            .map_err(|_| Leave::HostError)?;
        if bytes.is_empty() {
            return Err(Leave::HostError);
        }
        let fed = body.feed(&bytes)?;
        read.at += fed.consumed;
    }
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
