//! A minimal splitter for a client's HTTP/2 byte stream (RFC 9113), written apart from the
//! crate's, for oracles: the connection preface, 9-octet frame headers, and header blocks
//! (HEADERS, then CONTINUATION frames up to END_HEADERS, PADDED and PRIORITY stripped)
//! gathered per stream. Header blocks are returned as bytes; [`crate::hpack`] decodes them.
//!
//! It stops at the first thing a server must treat as a connection error that it can see
//! without decoding a block ([`Stop::Malformed`]): a frame over the maximum size, a frame
//! on the wrong kind of stream (0 or not), a fixed-size frame of another size, padding as
//! long as the payload, anything but the block's CONTINUATION while a block is open, a
//! CONTINUATION with no block open, a new stream id that is even or not above the last,
//! DATA, RST_STREAM, WINDOW_UPDATE or CONTINUATION on a stream never opened, PUSH_PROMISE
//! from a client. It does not follow stream states further (HEADERS on a closed stream is
//! a stream error, the connection goes on), nor settings, flow control or priorities.

use std::ops::Range;

/// RFC 9113 3.4.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// SETTINGS_MAX_FRAME_SIZE's initial value; Envoy does not raise it.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16_384;

/// Frame types (RFC 9113 6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    /// Without the reserved bit.
    pub stream: u32,
    /// The whole frame, header included, in the input.
    pub range: Range<usize>,
    /// The payload, in the input.
    pub payload: Range<usize>,
}

/// HEADERS' priority fields (deprecated by RFC 9113, still to be carried).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    pub exclusive: bool,
    pub dependency: u32,
    pub weight: u8,
}

/// One complete header block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub stream: u32,
    /// The first HEADERS on its stream (a request's head); later ones are trailers (or
    /// something the server answers with a stream error).
    pub first: bool,
    pub end_stream: bool,
    pub priority: Option<Priority>,
    /// Its frames (the HEADERS, then each CONTINUATION), as indexes into [`Split::frames`].
    pub frames: Range<usize>,
    /// The fragments joined, padding and priority fields left out.
    pub fragment: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every byte belongs to a complete frame (or block).
    End,
    /// The input ends inside the preface, a frame or an unfinished block starting at `at`.
    Incomplete { at: usize },
    /// The input does not start with the preface (nor is a prefix of it).
    NoPreface,
    /// A connection error in the frame starting at `at`.
    Malformed { at: usize, why: &'static str },
}

#[derive(Clone, Debug, Default)]
pub struct Split {
    /// Every frame before the stop, in order; frames of an unfinished block are left out.
    pub frames: Vec<Frame>,
    /// Complete header blocks, in order.
    pub blocks: Vec<Block>,
    /// The input up to here is the preface and whole frames (and blocks).
    pub complete: usize,
    pub stop: Option<Stop>,
}

struct Open {
    block: Block,
    frames: Vec<Frame>,
    start: usize,
}

/// Splits `input` with a server's maximum frame size.
pub fn split(input: &[u8], max_frame_size: usize) -> Split {
    let mut out = Split::default();
    if input.len() < PREFACE.len() {
        out.stop = Some(if PREFACE.starts_with(input) {
            Stop::Incomplete { at: 0 }
        } else {
            Stop::NoPreface
        });
        return out;
    }
    if !input.starts_with(PREFACE) {
        out.stop = Some(Stop::NoPreface);
        return out;
    }
    let mut at = PREFACE.len();
    out.complete = at;
    let mut highest = 0u32;
    let mut open: Option<Open> = None;
    let stop = loop {
        let Some(header) = input.get(at..at + 9) else {
            break if at == input.len() && open.is_none() {
                Stop::End
            } else {
                Stop::Incomplete {
                    at: open.as_ref().map_or(at, |o| o.start),
                }
            };
        };
        let len =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let (kind, flags) = (header[3], header[4]);
        let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        let malformed = |why| Stop::Malformed { at, why };
        if len > max_frame_size {
            break malformed("frame larger than the maximum frame size");
        }
        let end = at + 9 + len;
        let frame = Frame {
            kind,
            flags,
            stream,
            range: at..end,
            payload: at + 9..end,
        };
        // What can be judged from the header alone comes before waiting for the payload.
        if open
            .as_ref()
            .is_some_and(|o| kind != kind::CONTINUATION || stream != o.block.stream)
        {
            break malformed("a frame other than the block's CONTINUATION inside a header block");
        }
        let why = match kind {
            kind::DATA | kind::HEADERS | kind::PRIORITY | kind::RST_STREAM | kind::CONTINUATION
                if stream == 0 =>
            {
                Some("a stream frame on stream 0")
            }
            kind::SETTINGS | kind::PING | kind::GOAWAY if stream != 0 => {
                Some("a connection frame on a stream")
            }
            kind::SETTINGS if flags & flag::ACK != 0 && len != 0 => {
                Some("SETTINGS ACK with a payload")
            }
            kind::SETTINGS if len % 6 != 0 => Some("SETTINGS not a multiple of 6 octets"),
            kind::PING if len != 8 => Some("PING not 8 octets"),
            kind::PRIORITY if len != 5 => Some("PRIORITY not 5 octets"),
            kind::RST_STREAM | kind::WINDOW_UPDATE if len != 4 => {
                Some("RST_STREAM or WINDOW_UPDATE not 4 octets")
            }
            kind::GOAWAY if len < 8 => Some("GOAWAY under 8 octets"),
            kind::PUSH_PROMISE => Some("PUSH_PROMISE from a client"),
            kind::CONTINUATION if open.is_none() => Some("CONTINUATION with no header block open"),
            kind::HEADERS if stream > highest && stream % 2 == 0 => {
                Some("a new stream with an even id")
            }
            kind::DATA | kind::RST_STREAM | kind::WINDOW_UPDATE if stream > highest => {
                Some("a frame on an idle stream")
            }
            _ => None,
        };
        if let Some(why) = why {
            break malformed(why);
        }
        let Some(payload) = input.get(at + 9..end) else {
            break Stop::Incomplete {
                at: open.as_ref().map_or(at, |o| o.start),
            };
        };
        match kind {
            kind::HEADERS => {
                let mut p = payload;
                let mut pad = 0usize;
                if flags & flag::PADDED != 0 {
                    let Some((&n, rest)) = p.split_first() else {
                        break malformed("PADDED with no pad length");
                    };
                    pad = usize::from(n);
                    p = rest;
                }
                let mut priority = None;
                if flags & flag::PRIORITY != 0 {
                    let Some(fields) = p.get(..5) else {
                        break malformed("PRIORITY flag with under 5 octets");
                    };
                    let dep = u32::from_be_bytes([fields[0], fields[1], fields[2], fields[3]]);
                    priority = Some(Priority {
                        exclusive: dep & 0x8000_0000 != 0,
                        dependency: dep & 0x7fff_ffff,
                        weight: fields[4],
                    });
                    p = &p[5..];
                }
                let Some(fragment) = p.len().checked_sub(pad).and_then(|n| p.get(..n)) else {
                    break malformed("padding as long as the payload");
                };
                let first = stream > highest;
                if first {
                    highest = stream;
                }
                let block = Block {
                    stream,
                    first,
                    end_stream: flags & flag::END_STREAM != 0,
                    priority,
                    frames: 0..0,
                    fragment: fragment.to_vec(),
                };
                open = Some(Open {
                    block,
                    frames: vec![frame],
                    start: at,
                });
            }
            kind::CONTINUATION => {
                if let Some(o) = open.as_mut() {
                    o.block.fragment.extend_from_slice(payload);
                    o.frames.push(frame);
                }
            }
            kind::DATA if flags & flag::PADDED != 0 => {
                let pad = payload.first().map(|n| usize::from(*n));
                if pad.is_none_or(|pad| pad >= payload.len()) {
                    break malformed("padding as long as the payload");
                }
                out.frames.push(frame);
            }
            _ => out.frames.push(frame),
        }
        if matches!(kind, kind::HEADERS | kind::CONTINUATION)
            && flags & flag::END_HEADERS != 0
            && let Some(mut o) = open.take()
        {
            let first = out.frames.len();
            out.frames.append(&mut o.frames);
            o.block.frames = first..out.frames.len();
            out.blocks.push(o.block);
        }
        at = end;
        if open.is_none() {
            out.complete = at;
        }
    };
    out.stop = Some(stop);
    out
}

/// A frame's bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpack::Decoder;

    fn settings() -> Vec<u8> {
        frame(kind::SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100])
    }

    #[test]
    fn requests_trailers_and_other_frames() {
        let mut input = PREFACE.to_vec();
        input.extend(settings());
        input.extend(frame(kind::WINDOW_UPDATE, 0, 0, &[0, 1, 0, 0]));
        // Stream 1: HEADERS (PADDED, PRIORITY) + CONTINUATION, ":method GET" ":path /".
        let mut payload = vec![3]; // pad length
        payload.extend_from_slice(&[0x80, 0, 0, 0, 15]); // exclusive on 0, weight 16
        payload.push(0x82);
        payload.extend_from_slice(&[0, 0, 0]);
        input.extend(frame(
            kind::HEADERS,
            flag::PADDED | flag::PRIORITY,
            1,
            &payload,
        ));
        input.extend(frame(kind::CONTINUATION, 0, 1, &[]));
        input.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 1, &[0x84]));
        // Stream 3 opens, then DATA on 1 (padded), trailers on 1, unknown frame, PING.
        input.extend(frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            3,
            &[0x82, 0x86],
        ));
        input.extend(frame(kind::DATA, flag::PADDED, 1, &[2, b'h', b'i', 0, 0]));
        input.extend(frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            1,
            &[0x40, 1, b'x', 1, b'y'],
        ));
        input.extend(frame(0xfa, 0xff, 7, b"whatever"));
        input.extend(frame(kind::PING, 0, 0, &[0; 8]));
        input.extend(frame(kind::RST_STREAM, 0, 3, &[0, 0, 0, 8]));
        let s = split(&input, DEFAULT_MAX_FRAME_SIZE);
        assert_eq!(s.stop, Some(Stop::End));
        assert_eq!(s.complete, input.len());
        assert_eq!(s.frames.len(), 11);
        assert_eq!(s.blocks.len(), 3);
        let b = &s.blocks[0];
        assert_eq!((b.stream, b.first, b.end_stream), (1, true, false));
        assert_eq!(
            b.priority,
            Some(Priority {
                exclusive: true,
                dependency: 0,
                weight: 15
            })
        );
        assert_eq!(b.fragment, vec![0x82, 0x84]);
        assert_eq!(b.frames, 2..5);
        assert_eq!(
            (
                s.blocks[1].stream,
                s.blocks[1].first,
                s.blocks[1].end_stream
            ),
            (3, true, true)
        );
        assert_eq!(
            (
                s.blocks[2].stream,
                s.blocks[2].first,
                s.blocks[2].end_stream
            ),
            (1, false, true)
        );
        let mut d = Decoder::new(4096);
        let heads: Vec<_> = s
            .blocks
            .iter()
            .map(|b| d.decode(&b.fragment).unwrap())
            .collect();
        assert_eq!(
            heads[0],
            vec![
                (b":method".to_vec(), b"GET".to_vec()),
                (b":path".to_vec(), b"/".to_vec())
            ]
        );
        assert_eq!(heads[2], vec![(b"x".to_vec(), b"y".to_vec())]);
        // Every byte after the preface is in exactly one frame, in order.
        let mut at = PREFACE.len();
        for f in &s.frames {
            assert_eq!(f.range.start, at);
            at = f.range.end;
        }
        assert_eq!(at, input.len());
    }

    #[test]
    fn incomplete() {
        assert_eq!(split(b"", 16384).stop, Some(Stop::Incomplete { at: 0 }));
        assert_eq!(
            split(&PREFACE[..10], 16384).stop,
            Some(Stop::Incomplete { at: 0 })
        );
        assert_eq!(
            split(b"GET / HTTP/1.1\r\n\r\n", 16384).stop,
            Some(Stop::NoPreface)
        );
        assert_eq!(
            split(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\r", 16384).stop,
            Some(Stop::NoPreface)
        );
        let mut input = PREFACE.to_vec();
        input.extend(settings());
        let whole = input.len();
        input.extend(&frame(kind::PING, 0, 0, &[0; 8])[..12]);
        let s = split(&input, 16384);
        assert_eq!(s.stop, Some(Stop::Incomplete { at: whole }));
        assert_eq!(s.complete, whole);
        // Inside a block: the block's HEADERS frame is where it stops.
        let mut input = PREFACE.to_vec();
        input.extend(frame(kind::HEADERS, 0, 1, &[0x82]));
        input.extend(frame(kind::CONTINUATION, 0, 1, &[0x84]));
        let s = split(&input, 16384);
        assert_eq!(s.stop, Some(Stop::Incomplete { at: PREFACE.len() }));
        assert!(s.frames.is_empty() && s.blocks.is_empty());
    }

    fn stop_of(frames: &[Vec<u8>]) -> Option<Stop> {
        let mut input = PREFACE.to_vec();
        for f in frames {
            input.extend(f);
        }
        split(&input, DEFAULT_MAX_FRAME_SIZE).stop
    }

    fn why(frames: &[Vec<u8>]) -> &'static str {
        match stop_of(frames) {
            Some(Stop::Malformed { why, .. }) => why,
            other => panic!("not malformed: {other:?}"),
        }
    }

    #[test]
    fn malformed() {
        let h = |flags, stream| frame(kind::HEADERS, flags, stream, &[0x82]);
        let eh = flag::END_HEADERS;
        assert!(
            why(&[h(0, 1), frame(kind::PING, 0, 0, &[0; 8])]).contains("inside a header block")
        );
        assert!(
            why(&[h(0, 1), frame(kind::CONTINUATION, eh, 3, &[])])
                .contains("inside a header block")
        );
        assert!(why(&[frame(kind::CONTINUATION, eh, 1, &[])]).contains("no header block"));
        assert!(
            why(&[h(eh, 1), frame(kind::CONTINUATION, eh, 1, &[])]).contains("no header block")
        );
        assert!(why(&[h(eh, 0)]).contains("stream 0"));
        assert!(why(&[h(eh, 2)]).contains("even"));
        assert!(why(&[frame(kind::DATA, 0, 1, b"x")]).contains("idle"));
        assert!(why(&[frame(kind::SETTINGS, 0, 1, &[])]).contains("connection frame"));
        assert!(why(&[frame(kind::SETTINGS, 0, 0, &[0; 5])]).contains("multiple of 6"));
        assert!(why(&[frame(kind::SETTINGS, flag::ACK, 0, &[0; 6])]).contains("ACK"));
        assert!(why(&[frame(kind::PING, 0, 0, &[0; 7])]).contains("PING"));
        assert!(why(&[frame(kind::WINDOW_UPDATE, 0, 0, &[0; 5])]).contains("4 octets"));
        assert!(why(&[frame(kind::PUSH_PROMISE, eh, 1, &[0; 5])]).contains("PUSH_PROMISE"));
        assert!(why(&[frame(kind::HEADERS, eh | flag::PADDED, 1, &[2, 0x82])]).contains("padding"));
        assert!(
            why(&[frame(kind::HEADERS, eh | flag::PRIORITY, 1, &[0, 0, 0])]).contains("PRIORITY")
        );
        let big = vec![0u8; DEFAULT_MAX_FRAME_SIZE + 1];
        assert!(why(&[frame(0xbb, 0, 0, &big)]).contains("maximum"));
        // Judged from the header before the payload arrives.
        let mut partial = frame(kind::PING, 0, 0, &[0; 9]);
        partial.truncate(10);
        assert!(why(&[partial]).contains("PING"));
        // Trailers on an open stream, a lower stream id seen before, PRIORITY on an idle
        // stream, unknown frames anywhere: fine.
        assert_eq!(
            stop_of(&[
                h(eh, 3),
                h(eh, 5),
                h(eh | flag::END_STREAM, 3),
                frame(kind::PRIORITY, 0, 9, &[0, 0, 0, 0, 1]),
                frame(0x20, 0, 0, b"")
            ]),
            Some(Stop::End)
        );
        // A new stream below the highest is not opened again: seen as trailers.
        let mut input = PREFACE.to_vec();
        input.extend(h(eh, 5));
        input.extend(h(eh, 3));
        let s = split(&input, DEFAULT_MAX_FRAME_SIZE);
        assert_eq!(s.stop, Some(Stop::End));
        assert!(!s.blocks[1].first);
    }
}
