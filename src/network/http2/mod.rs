//! HTTP/2 in the network position (RFC 9113): after the connection preface, the frames
//! of the client's connection are followed by their headers, and only request header
//! blocks (a stream's first HEADERS and its CONTINUATION frames) are rewritten, so that
//! Envoy's tracer reads the context tracejoin chose, as for HTTP/1.1 heads.
//!
//! - Every block is decoded in order ([`hpack`]) to keep a mirror of Envoy's dynamic table;
//!   trailers and blocks of streams already open pass as they are (unless Envoy's table
//!   differs from the client's; see [`hpack`]).
//! - Every other frame passes byte for byte; their payloads are skipped by length, never
//!   read. A block is read whole: while it is cut off at the buffer's end, the buffer is
//!   held (Pause) as an HTTP/1 head is, within the same limits of size and time.
//! - Envoy's HTTP/2 codec takes every byte it is given (`ConnectionImpl::dispatch` drains
//!   the buffer; it never hands bytes back as its HTTP/1 codec does), so each read starts
//!   where the last one passed on ended.
//! - A rewritten block is written back in place: the buffer's first bytes up to its end are
//!   replaced (the one write Envoy allows), so frames before it in the same read are
//!   copied through the VM.
//! - What the mirror cannot follow (framing Envoy answers with a connection error, a block
//!   that does not decode) ends the following: the connection passes untouched from there
//!   (counted by reason), or is closed where `trust` is set.

pub mod frame;
pub mod hpack;
pub(crate) mod huffman;

use std::ops::Range;

use super::{Framed, Leave, StreamHost, Verdict, held_too_long};
use crate::codec::{Carrier, Header, PerHeader};
use crate::config::{Config, Trust};
use crate::filter::decision::{self, Applied, Decision};
use crate::filter::{Counter, HostError, count};
use crate::ids::IdGenerator;
use crate::policy::{self, Op, Plan};
use frame::{FrameHeader, HeadersPayload};
use hpack::{Block, Edit};

#[derive(Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Following,
    Left,
    /// To be closed: the next read closes the connection.
    Closed,
}

/// One HTTP/2 connection's state.
#[derive(Debug)]
pub struct Connection {
    state: State,
    /// Preface bytes still to come.
    preface_left: usize,
    /// Payload bytes of a frame already passed on that are still to come.
    skip: u64,
    /// Where the next read starts: after a Pause, what this buffer's earlier reads followed.
    resume: usize,
    /// The highest stream a request header block opened: a block on a stream up to it is
    /// trailers (or an error Envoy answers).
    last_stream: u32,
    decoder: hpack::Decoder,
    held_since: Option<u64>,
    /// The tables differed when the filter stopped following.
    left_diverged: bool,
}

/// A header block's frames, read whole from the buffer.
struct BlockFrames {
    first: FrameHeader,
    /// The first frame's priority fields and padding, as sent.
    priority: Option<[u8; 5]>,
    padding: Option<Vec<u8>>,
    fragments: Fragments,
    /// Where its frames end in the buffer.
    end: usize,
}

/// The block's bytes: where they are in the read window (a block in one frame, the common
/// case: not copied again), or gathered from its frames.
enum Fragments {
    InWindow(Range<usize>),
    Gathered(Vec<u8>),
}

/// A header field: name and value.
type Field<'a> = (&'a [u8], &'a [u8]);

impl Connection {
    pub fn new(config: &Config) -> Self {
        Connection {
            state: State::Following,
            preface_left: frame::PREFACE.len(),
            skip: 0,
            resume: 0,
            last_stream: 0,
            decoder: hpack::Decoder::with_cap(config.limits.max_head_bytes),
            held_since: None,
            left_diverged: false,
        }
    }

    /// Since when a block is held, if one is.
    pub fn held_since(&self) -> Option<u64> {
        self.held_since
    }

    /// The mirror of the client's and Envoy's tables (for tests).
    pub fn decoder(&self) -> &hpack::Decoder {
        &self.decoder
    }

    /// Whether Envoy's table differed from the client's when the filter stopped following
    /// (for tests: such a connection is closed).
    pub fn left_diverged(&self) -> bool {
        self.left_diverged
    }

    /// Envoy read more bytes; the buffer now holds `len` bytes.
    pub fn on_data(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        ids: &mut IdGenerator,
        len: usize,
        end_of_stream: bool,
    ) -> Verdict {
        match self.state {
            State::Left => return Verdict::Continue,
            State::Closed => return Verdict::Close,
            State::Following => {}
        }
        let mut at = std::mem::take(&mut self.resume);
        let mut window = Window::default();
        let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
        // Whether Envoy's table already differs from the client's: then leaving would hand
        // Envoy blocks it decodes against the wrong table.
        let diverged = self.decoder.diverged();
        let partial = loop {
            match self.next(host, config, ids, &mut window, at, len, &mut edits) {
                Framed::Complete(Some(next)) => at = next,
                Framed::Complete(None) => break false,
                Framed::Partial => break true,
                // The blocks of this read go on as the client sent them.
                Framed::Leave(reason) => return self.leave(host, config, reason, diverged),
            }
        };
        let shift = match write_edits(host, &mut window, &edits) {
            Ok(shift) => shift,
            Err(reason) => return self.leave(host, config, reason, diverged),
        };
        // From here the rewritten blocks are in the buffer Envoy reads.
        let diverged = diverged || self.decoder.diverged();
        if !partial {
            self.held_since = None;
            return Verdict::Continue;
        }
        if end_of_stream {
            // A frame cut off for good: Envoy's codec answers it.
            return self.leave(host, config, Leave::Http2, diverged);
        }
        let held = len.saturating_add_signed(shift);
        if held >= config.limits.max_held_bytes {
            return self.leave(host, config, Leave::TooLarge, diverged);
        }
        if held_too_long(host, config, &mut self.held_since) {
            return self.leave(host, config, Leave::SlowHead, diverged);
        }
        self.resume = at.saturating_add_signed(shift);
        Verdict::Pause
    }

    /// Follows what starts at `at`: the preface, the rest of a frame, or a frame. The next
    /// offset, or `None` at the buffer's end.
    #[allow(clippy::too_many_arguments)] // one read's state, each named
    fn next(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        ids: &mut IdGenerator,
        window: &mut Window,
        at: usize,
        len: usize,
        edits: &mut Vec<(Range<usize>, Vec<u8>)>,
    ) -> Framed<Option<usize>> {
        if at >= len {
            return Framed::Complete(None);
        }
        if self.preface_left > 0 {
            let done = frame::PREFACE.len() - self.preface_left;
            let n = self.preface_left.min(len - at);
            let Ok(bytes) = window.get(host, at, n, len) else {
                return Framed::Leave(Leave::HostError);
            };
            if frame::PREFACE.get(done..done + n) != Some(bytes) {
                return Framed::Leave(Leave::Http2);
            }
            self.preface_left -= n;
            return Framed::Complete(Some(at + n));
        }
        if self.skip > 0 {
            let n = self.skip.min((len - at) as u64);
            self.skip -= n;
            return Framed::Complete(Some(at + n as usize));
        }
        if len - at < frame::HEADER_LEN {
            return Framed::Partial;
        }
        let Ok(bytes) = window.get(host, at, frame::HEADER_LEN, len) else {
            return Framed::Leave(Leave::HostError);
        };
        let Some(header) = FrameHeader::parse(bytes) else {
            return Framed::Leave(Leave::HostError);
        };
        if !self.acceptable(host, window, &header, at, len) {
            return Framed::Leave(Leave::Http2);
        }
        match header.kind {
            frame::HEADERS => match read_block(host, config, window, header, at, len) {
                Framed::Complete(frames) => {
                    let end = frames.end;
                    match self.block(host, config, ids, window, frames) {
                        Ok(Some(new)) => edits.push((at..end, new)),
                        Ok(None) => {}
                        Err(reason) => return Framed::Leave(reason),
                    }
                    Framed::Complete(Some(end))
                }
                Framed::Partial => Framed::Partial,
                Framed::Leave(reason) => Framed::Leave(reason),
            },
            // A CONTINUATION after END_HEADERS, or a block a client may not send: Envoy
            // ends the connection.
            frame::CONTINUATION | frame::PUSH_PROMISE => Framed::Leave(Leave::Http2),
            _ => {
                self.skip = header.len as u64;
                Framed::Complete(Some(at + frame::HEADER_LEN))
            }
        }
    }

    /// Decodes a block; a request's is decided and written back (the frames to replace
    /// its own, if it changes).
    fn block(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        ids: &mut IdGenerator,
        window: &Window,
        frames: BlockFrames,
    ) -> Result<Option<Vec<u8>>, Leave> {
        let stream = frames.first.stream;
        // Client streams are odd (RFC 9113 section 5.1.1).
        if stream == 0 || stream.is_multiple_of(2) {
            return Err(Leave::Http2);
        }
        let fragments = match &frames.fragments {
            Fragments::InWindow(range) => window.slice(range.clone()).ok_or(Leave::HostError)?,
            Fragments::Gathered(bytes) => bytes.as_slice(),
        };
        let block = self.decoder.decode(fragments).map_err(|_| Leave::Hpack)?;
        let request = stream > self.last_stream;
        if request {
            self.last_stream = stream;
            host.increment(Counter::NetworkHead);
        }
        if block.over {
            // Over Envoy's header limit: Envoy refuses the request (its tracer never reads
            // it). Passed as it is, unless Envoy's table differs from the client's, when it
            // cannot be written back field by field.
            if request {
                host.increment(Counter::NetworkAtLimit);
            }
            return if self.decoder.diverged() {
                Err(Leave::TooLarge)
            } else {
                Ok(None)
            };
        }
        let mut edits = Vec::new();
        let mut added = Vec::new();
        let plan;
        let mut removals = None;
        if request {
            let carrier = Carrier::from_pairs(block.fields());
            plan = policy::decide(config, &carrier, ids);
            count(host, &plan);
            (edits, added) = plan_edits(&block, &plan);
            let mut applied = Applied::All;
            if !edits.is_empty() && !within_limits(config, &block, &edits, &added) {
                host.increment(Counter::NetworkAtLimit);
                if config.trust == Trust::Continue {
                    applied = Applied::Nothing;
                    edits.clear();
                    added.clear();
                } else {
                    // Under `trust` the client's context must not reach the tracer: what the
                    // plan writes is removed instead, as for an HTTP/1.1 head.
                    applied = Applied::Removals;
                    removals = Some(plan.removals_only(&carrier));
                    (edits, added) = plan_edits(&block, removals.as_ref().unwrap_or(&plan));
                }
            }
            if log::log_enabled!(log::Level::Debug) {
                decision::log_decision(Decision {
                    position: config.position,
                    plan: removals.as_ref().unwrap_or(&plan),
                    applied,
                    request_id: carrier.request_id,
                    stripped: false,
                    dry_run: config.dry_run,
                });
            }
            if config.dry_run {
                // Counted as if rewritten; the block passes as it came, and both tables stay
                // the client's (nothing is encoded).
                if edits.iter().any(|e| *e != Edit::Keep) || !added.is_empty() {
                    host.increment(Counter::NetworkRewritten);
                    host.increment(Counter::DryRunWouldChange);
                }
                edits.clear();
                added.clear();
            }
        }
        let Some(new) = self.decoder.encode(fragments, &block, &edits, &added) else {
            return Ok(None);
        };
        if request && !(edits.is_empty() && added.is_empty()) {
            host.increment(Counter::NetworkRewritten);
        }
        let payload = HeadersPayload {
            priority: frames.priority.as_ref().map(|p| p.as_slice()),
            padding: frames.padding.as_deref(),
            fragment: &[],
        };
        let mut out = Vec::with_capacity(new.len() + 64);
        frame::write_block(&mut out, &frames.first, &payload, &new);
        Ok(Some(out))
    }

    /// Whether Envoy's codec accepts the frame (beyond what [`read_block`] checks): one it
    /// answers with a connection error (RFC 9113 sections 4.2 and 6) ends the following.
    fn acceptable(
        &self,
        host: &mut dyn StreamHost,
        window: &mut Window,
        header: &FrameHeader,
        at: usize,
        len: usize,
    ) -> bool {
        // Envoy announces no larger SETTINGS_MAX_FRAME_SIZE.
        if header.len > frame::MAX_FRAME {
            return false;
        }
        let on_connection = header.stream == 0;
        // A stream no HEADERS has opened (client streams are odd).
        let idle = header.stream > self.last_stream || header.stream.is_multiple_of(2);
        match header.kind {
            frame::DATA => {
                if on_connection || idle {
                    return false;
                }
                if header.flags & frame::PADDED == 0 {
                    return true;
                }
                // The pad length must leave room for itself.
                if header.len == 0 {
                    return false;
                }
                let first = at + frame::HEADER_LEN;
                if first >= len {
                    // Not here yet: checked by Envoy alone.
                    return true;
                }
                match window.get(host, first, 1, len) {
                    Ok([pad]) => usize::from(*pad) < header.len,
                    _ => true,
                }
            }
            frame::PRIORITY_FRAME => !on_connection,
            frame::RST_STREAM => !on_connection && !idle && header.len == 4,
            frame::SETTINGS => {
                on_connection
                    && header.len.is_multiple_of(6)
                    && (header.flags & 0x1 == 0 || header.len == 0)
            }
            frame::PING => on_connection && header.len == 8,
            frame::GOAWAY => on_connection && header.len >= 8,
            frame::WINDOW_UPDATE => header.len == 4,
            _ => true,
        }
    }

    /// Stops following the connection, or closes it: under `trust`, for a head held too
    /// long, and where Envoy's table differs from the client's (`diverged`: blocks passed
    /// on as they are would be decoded into fields the client never sent).
    fn leave(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        reason: Leave,
        diverged: bool,
    ) -> Verdict {
        host.increment(Counter::NetworkLeft(reason));
        self.held_since = None;
        self.left_diverged = diverged;
        if config.closes_for_trust() || reason == Leave::SlowHead || diverged {
            // Under `trust`, no later request may reach Envoy's tracer with the client's
            // context: the connection ends.
            host.increment(Counter::NetworkClosed);
            self.state = State::Closed;
            Verdict::Close
        } else {
            self.state = State::Left;
            Verdict::Continue
        }
    }
}

/// Reads the block that starts with `first` at `at`: its HEADERS frame and CONTINUATION
/// frames up to END_HEADERS.
fn read_block(
    host: &mut dyn StreamHost,
    config: &Config,
    window: &mut Window,
    first: FrameHeader,
    at: usize,
    len: usize,
) -> Framed<BlockFrames> {
    let mut frames = BlockFrames {
        first,
        priority: None,
        padding: None,
        fragments: Fragments::Gathered(Vec::new()),
        end: at,
    };
    let mut header = first;
    loop {
        let start = frames.end + frame::HEADER_LEN;
        if len.saturating_sub(start) < header.len {
            return Framed::Partial;
        }
        if frames.end + header.len > at.saturating_add(config.limits.max_held_bytes) {
            return Framed::Leave(Leave::TooLarge);
        }
        // The payload, and the next frame's header with it when it is there.
        let want = header.len + frame::HEADER_LEN.min(len - start - header.len);
        let Ok(bytes) = window.get(host, start, want, len) else {
            return Framed::Leave(Leave::HostError);
        };
        let (payload, next) = bytes.split_at(header.len.min(bytes.len()));
        if payload.len() < header.len {
            return Framed::Leave(Leave::HostError);
        }
        let whole = header.flags & frame::END_HEADERS != 0;
        if header.kind == frame::HEADERS {
            let Some(parts) = HeadersPayload::parse(header.flags, payload) else {
                return Framed::Leave(Leave::Http2);
            };
            frames.priority = parts.priority.and_then(|p| p.try_into().ok());
            frames.padding = parts.padding.map(<[u8]>::to_vec);
            let skipped =
                usize::from(parts.padding.is_some()) + parts.priority.map_or(0, <[u8]>::len);
            if whole {
                let from = start + skipped;
                frames.fragments = Fragments::InWindow(from..from + parts.fragment.len());
            } else {
                frames.fragments = Fragments::Gathered(parts.fragment.to_vec());
            }
        } else if let Fragments::Gathered(gathered) = &mut frames.fragments {
            gathered.extend_from_slice(payload);
        }
        frames.end = start + header.len;
        if whole {
            return Framed::Complete(frames);
        }
        // Only CONTINUATION frames of the same stream may follow (RFC 9113 section 6.10).
        let Some(next) = FrameHeader::parse(next) else {
            return Framed::Partial;
        };
        // Envoy announces no larger SETTINGS_MAX_FRAME_SIZE.
        if next.kind != frame::CONTINUATION
            || next.stream != first.stream
            || next.len > frame::MAX_FRAME
        {
            return Framed::Leave(Leave::Http2);
        }
        header = next;
    }
}

/// What the plan does to a block's fields: an edit per representation, and what is added
/// at its end. A set replaces the first field of its header; its repeats go.
fn plan_edits<'p>(block: &Block, plan: &'p Plan) -> (Vec<Edit<'p>>, Vec<Field<'p>>) {
    if plan.ops.iter().all(|(_, op)| *op == Op::Keep) {
        return (Vec::new(), Vec::new());
    }
    let mut written: PerHeader<bool> = PerHeader::default();
    let mut edits = Vec::with_capacity(block.representations.len());
    for r in &block.representations {
        let (name, _) = block.field(r);
        let edit = match Header::from_name(name) {
            // HTTP/2 field names are lowercase: another spelling is Envoy's to refuse.
            Some(header) if name.iter().all(|b| !b.is_ascii_uppercase()) => match plan.op(header) {
                Op::Keep => Edit::Keep,
                Op::Remove => Edit::Drop,
                Op::Set(_) | Op::SetText(_) if written[header] => Edit::Drop,
                op => {
                    written[header] = true;
                    Edit::Replace(header.name().as_bytes(), op_value(op))
                }
            },
            _ => Edit::Keep,
        };
        edits.push(edit);
    }
    let added = plan
        .ops
        .iter()
        .filter(|(header, op)| matches!(op, Op::Set(_) | Op::SetText(_)) && !written[*header])
        .map(|(header, op)| (header.name().as_bytes(), op_value(op)))
        .collect();
    (edits, added)
}

fn op_value(op: &Op) -> &[u8] {
    match op {
        Op::Set(v) => v.as_bytes(),
        Op::SetText(s) => s.as_bytes(),
        Op::Keep | Op::Remove => b"",
    }
}

/// Whether the block written back stays within Envoy's header limits, counted as Envoy's
/// HTTP/2 codec counts them: `max_request_headers_kb` over names and values, and
/// `max_request_headers_count` over fields, `cookie` fields (which Envoy joins into one)
/// counting once. (A block over them already was marked `over` when decoded.)
fn within_limits(config: &Config, block: &Block, edits: &[Edit<'_>], added: &[Field<'_>]) -> bool {
    let limits = &config.limits;
    let mut bytes = 0usize;
    let mut count = 0usize;
    let mut cookies = false;
    let mut add = |(name, value): (&[u8], &[u8])| {
        bytes += name.len() + value.len();
        if name == b"cookie" {
            cookies = true;
        } else {
            count += 1;
        }
    };
    for (i, r) in block.representations.iter().enumerate() {
        if r.kind == hpack::Kind::SizeUpdate {
            continue;
        }
        match edits.get(i).copied().unwrap_or(Edit::Keep) {
            Edit::Keep => add(block.field(r)),
            Edit::Drop => {}
            Edit::Replace(n, v) => add((n, v)),
        }
    }
    added.iter().for_each(|f| add(*f));
    count += usize::from(cookies);
    bytes <= limits.max_head_bytes && count <= limits.max_headers
}

/// Replaces the buffer's first bytes up to the last edit's end: the bytes between edits
/// as they are, each edit's range with its frames. How much longer the buffer got.
fn write_edits(
    host: &mut dyn StreamHost,
    window: &mut Window,
    edits: &[(Range<usize>, Vec<u8>)],
) -> Result<isize, Leave> {
    let Some((last, _)) = edits.last() else {
        return Ok(0);
    };
    // One block at the buffer's start (the common case): its frames are the new prefix.
    if let [(range, frames)] = edits
        && range.start == 0
    {
        host.replace_downstream_prefix(range.end, frames)
            .map_err(|_| Leave::HostError)?;
        return Ok(frames.len() as isize - range.end as isize);
    }
    let mut prefix =
        Vec::with_capacity(last.end + edits.iter().map(|(_, f)| f.len()).sum::<usize>());
    let mut at = 0;
    for (range, frames) in edits {
        if range.start > at {
            let kept = window
                .get(host, at, range.start - at, range.start)
                .map_err(|_| Leave::HostError)?;
            prefix.extend_from_slice(kept);
        }
        prefix.extend_from_slice(frames);
        at = range.end;
    }
    host.replace_downstream_prefix(last.end, &prefix)
        .map_err(|_| Leave::HostError)?;
    Ok(prefix.len() as isize - last.end as isize)
}

/// The bytes of the buffer read so far in this read: frames are read in windows of at
/// least [`WINDOW`] bytes, so that a small read (a gRPC call: HEADERS, then a DATA frame) is
/// one host call, whose cost is mostly the call's own, not the bytes'. A larger payload
/// behind a frame header is skipped without being read.
#[derive(Default)]
struct Window {
    start: usize,
    bytes: Vec<u8>,
}

const WINDOW: usize = 2048;

impl Window {
    /// The buffer's bytes `at..at + n` (the buffer holds `len`), read if need be.
    fn get(
        &mut self,
        host: &mut dyn StreamHost,
        at: usize,
        n: usize,
        len: usize,
    ) -> Result<&[u8], HostError> {
        let inside = at >= self.start && at + n <= self.start + self.bytes.len();
        if !inside {
            let want = n.max(WINDOW).min(len.saturating_sub(at)).max(n);
            self.bytes = host.read_downstream(at, want)?;
            self.start = at;
            if self.bytes.len() < n {
                return Err(HostError(0));
            }
        }
        let from = at - self.start;
        self.bytes.get(from..from + n).ok_or(HostError(0))
    }

    /// The buffer's bytes in `range`, if this window holds them.
    fn slice(&self, range: Range<usize>) -> Option<&[u8]> {
        let from = range.start.checked_sub(self.start)?;
        self.bytes.get(from..from + range.len())
    }
}

#[cfg(test)]
mod tests;
