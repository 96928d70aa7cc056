//! A client's HTTP/2 bytes for tests: an HPACK encoder that can write every representation
//! (with its own model of the table, apart from the filter's), and frame builders.

use rand::rngs::SmallRng;

use super::generate::{below, one_in};
use crate::network::http2::frame::{self, FrameHeader, HeadersPayload};

pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// How a field is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Indexed where the table holds the field, else a literal with incremental indexing.
    Indexing,
    WithoutIndexing,
    NeverIndexed,
}

/// An HPACK encoder with a plain model of its dynamic table.
#[derive(Clone, Debug)]
pub struct Encoder {
    table: Vec<(Vec<u8>, Vec<u8>)>,
    max: usize,
    pub huffman: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            table: Vec::new(),
            max: 4096,
            huffman: false,
        }
    }
}

const STATIC_NAMES: &[&[u8]] = &[
    b":authority",
    b":method",
    b":method",
    b":path",
    b":path",
    b":scheme",
    b":scheme",
];

fn size(table: &[(Vec<u8>, Vec<u8>)]) -> usize {
    table.iter().map(|(n, v)| n.len() + v.len() + 32).sum()
}

impl Encoder {
    /// The table's entries, newest first.
    pub fn table(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.table
    }

    fn evict(&mut self, limit: usize) {
        while size(&self.table) > limit {
            self.table.pop();
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let s = name.len() + value.len() + 32;
        self.evict(self.max.saturating_sub(s));
        if s <= self.max {
            self.table.insert(0, (name.to_vec(), value.to_vec()));
        }
    }

    /// An integer with an N-bit prefix: the filter's writer, which the decoder it is tested
    /// against does not share.
    pub fn integer(out: &mut Vec<u8>, flags: u8, prefix: u32, value: usize) {
        crate::network::http2::hpack::integer_to(out, flags, prefix, value);
    }

    fn string(&self, out: &mut Vec<u8>, bytes: &[u8]) {
        if self.huffman {
            let coded = crate::network::http2::huffman::encode(bytes);
            Self::integer(out, 0x80, 7, coded.len());
            out.extend_from_slice(&coded);
        } else {
            Self::integer(out, 0, 7, bytes.len());
            out.extend_from_slice(bytes);
        }
    }

    /// Index of a dynamic entry (62 up) matching `f`.
    fn find(&self, f: impl Fn(&(Vec<u8>, Vec<u8>)) -> bool) -> Option<usize> {
        self.table.iter().position(f).map(|i| i + 62)
    }

    /// A dynamic table size update.
    pub fn size_update(&mut self, out: &mut Vec<u8>, max: usize) {
        self.max = max;
        self.evict(max);
        Self::integer(out, 0x20, 5, max);
    }

    /// One field.
    pub fn field(&mut self, out: &mut Vec<u8>, name: &[u8], value: &[u8], style: Style) {
        if style == Style::Indexing
            && let Some(i) = self.find(|(n, v)| n == name && v == value)
        {
            Self::integer(out, 0x80, 7, i);
            return;
        }
        let static_name = STATIC_NAMES.iter().position(|n| *n == name).map(|i| i + 1);
        let name_index = static_name.or_else(|| self.find(|(n, _)| n == name));
        let (flags, prefix) = match style {
            Style::Indexing => (0x40, 6),
            Style::WithoutIndexing => (0x00, 4),
            Style::NeverIndexed => (0x10, 4),
        };
        match name_index {
            Some(i) => Self::integer(out, flags, prefix, i),
            None => {
                Self::integer(out, flags, prefix, 0);
                self.string(out, name);
            }
        }
        self.string(out, value);
        if style == Style::Indexing {
            self.insert(name, value);
        }
    }

    /// A block of `fields`, each in a style drawn from `r` (mostly indexing, as clients
    /// write), Huffman or not at random.
    pub fn block(&mut self, r: &mut SmallRng, fields: &Fields) -> Vec<u8> {
        let mut out = Vec::new();
        if one_in(r, 8) {
            let max = [0, 64, 256, 1024, 4096][below(r, 5)];
            self.size_update(&mut out, max);
        }
        for (name, value) in fields {
            self.huffman = one_in(r, 2);
            let style = match below(r, 6) {
                0 => Style::WithoutIndexing,
                1 => Style::NeverIndexed,
                _ => Style::Indexing,
            };
            self.field(&mut out, name, value, style);
        }
        out
    }
}

fn frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// The preface and an empty SETTINGS frame.
pub fn preface() -> Vec<u8> {
    let mut out = frame::PREFACE.to_vec();
    frame_header(&mut out, 0, 0x4, 0, 0);
    out
}

/// A frame of any type with `payload`.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame_header(&mut out, payload.len(), kind, flags, stream);
    out.extend_from_slice(payload);
    out
}

/// A header block as HEADERS and CONTINUATION frames of at most `piece` bytes of block.
pub fn headers(stream: u32, block: &[u8], end_stream: bool, piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let chunks: Vec<&[u8]> = if block.is_empty() {
        vec![&[]]
    } else {
        block.chunks(piece.max(1)).collect()
    };
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        let mut flags = if last { frame::END_HEADERS } else { 0 };
        let kind = if i == 0 {
            if end_stream {
                flags |= frame::END_STREAM;
            }
            frame::HEADERS
        } else {
            frame::CONTINUATION
        };
        out.extend(frame(kind, flags, stream, chunk));
    }
    out
}

/// A HEADERS frame with padding and priority, the whole block in it.
pub fn headers_padded(stream: u32, block: &[u8], pad: u8) -> Vec<u8> {
    let mut payload = vec![pad];
    payload.extend_from_slice(&[0, 0, 0, 0, 15]);
    payload.extend_from_slice(block);
    payload.extend(std::iter::repeat_n(0u8, usize::from(pad)));
    frame(
        frame::HEADERS,
        frame::END_HEADERS | frame::PADDED | frame::PRIORITY,
        stream,
        &payload,
    )
}

/// A client stream's frames split apart: each frame's header and payload.
pub fn frames(bytes: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
    let mut at = if bytes.starts_with(frame::PREFACE) {
        24
    } else {
        0
    };
    let mut out = Vec::new();
    while let Some(h) = bytes.get(at..).and_then(FrameHeader::parse) {
        let payload = bytes[at + 9..at + 9 + h.len].to_vec();
        out.push((h, payload));
        at += 9 + h.len;
    }
    assert_eq!(at, bytes.len(), "the stream ends inside a frame");
    out
}

/// The header blocks of a client stream, in order, with their streams.
pub fn blocks(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out: Vec<(u32, Vec<u8>)> = Vec::new();
    for (h, payload) in frames(bytes) {
        match h.kind {
            frame::HEADERS => {
                let parts = HeadersPayload::parse(h.flags, &payload).unwrap();
                out.push((h.stream, parts.fragment.to_vec()));
            }
            frame::CONTINUATION => out.last_mut().unwrap().1.extend_from_slice(&payload),
            _ => {}
        }
    }
    out
}

/// The frames that are not part of a header block.
pub fn other_frames(bytes: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
    frames(bytes)
        .into_iter()
        .filter(|(h, _)| h.kind != frame::HEADERS && h.kind != frame::CONTINUATION)
        .collect()
}
