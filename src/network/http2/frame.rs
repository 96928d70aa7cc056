//! HTTP/2 frames (RFC 9113 section 4.1) as the network position meets them: the 9-byte
//! header of every frame, the parts of a HEADERS frame's payload (section 6.2), and a
//! header block written back as HEADERS and CONTINUATION frames.

/// The connection preface a client sends first (section 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const HEADER_LEN: usize = 9;
/// The frame size every peer accepts (SETTINGS_MAX_FRAME_SIZE's initial value): a block
/// written back never uses larger frames, whatever Envoy announced.
pub const MAX_FRAME: usize = 16_384;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY_FRAME: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY: u8 = 0x20;

/// A frame's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    /// The stream identifier (the reserved bit cleared).
    pub stream: u32,
}

impl FrameHeader {
    pub fn parse(bytes: &[u8]) -> Option<FrameHeader> {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *bytes.get(..HEADER_LEN)? else {
            return None;
        };
        Some(FrameHeader {
            len: usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2),
            kind,
            flags,
            stream: u32::from_be_bytes([s0 & 0x7f, s1, s2, s3]),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        let len = (self.len as u32).to_be_bytes();
        out.extend_from_slice(len.get(1..).unwrap_or_default());
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&self.stream.to_be_bytes());
    }
}

/// A HEADERS frame's payload, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadersPayload<'a> {
    /// The stream dependency and weight (PRIORITY flag), as sent.
    pub priority: Option<&'a [u8]>,
    /// The padding (PADDED flag), as sent.
    pub padding: Option<&'a [u8]>,
    pub fragment: &'a [u8],
}

impl<'a> HeadersPayload<'a> {
    /// `None`: padding as long as the payload or longer, or a priority cut off (Envoy
    /// answers those with a connection error).
    pub fn parse(flags: u8, payload: &'a [u8]) -> Option<HeadersPayload<'a>> {
        let mut rest = payload;
        let mut pad = None;
        if flags & PADDED != 0 {
            let (&len, after) = rest.split_first()?;
            pad = Some(usize::from(len));
            rest = after;
        }
        let mut priority = None;
        if flags & PRIORITY != 0 {
            let (fields, after) = rest.split_at_checked(5)?;
            priority = Some(fields);
            rest = after;
        }
        let mut padding = None;
        if let Some(pad) = pad {
            let (fragment, tail) = rest.split_at_checked(rest.len().checked_sub(pad)?)?;
            padding = Some(tail);
            rest = fragment;
        }
        Some(HeadersPayload {
            priority,
            padding,
            fragment: rest,
        })
    }
}

/// Writes a header block as a HEADERS frame (with `first`'s flags, priority and padding)
/// and as many CONTINUATION frames as frames of [`MAX_FRAME`] need, END_HEADERS on the last.
pub fn write_block(out: &mut Vec<u8>, first: &FrameHeader, payload: &HeadersPayload, block: &[u8]) {
    let extra =
        payload.padding.map_or(0, |p| 1 + p.len()) + payload.priority.map_or(0, <[u8]>::len);
    let room = MAX_FRAME.saturating_sub(extra).max(1);
    let (now, mut rest) = block.split_at(room.min(block.len()));
    let mut flags = first.flags & (END_STREAM | PADDED | PRIORITY);
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    FrameHeader {
        len: extra + now.len(),
        kind: HEADERS,
        flags,
        stream: first.stream,
    }
    .write(out);
    if let Some(padding) = payload.padding {
        out.push(padding.len() as u8);
    }
    if let Some(priority) = payload.priority {
        out.extend_from_slice(priority);
    }
    out.extend_from_slice(now);
    if let Some(padding) = payload.padding {
        out.extend_from_slice(padding);
    }
    while !rest.is_empty() {
        let (now, after) = rest.split_at(MAX_FRAME.min(rest.len()));
        rest = after;
        FrameHeader {
            len: now.len(),
            kind: CONTINUATION,
            flags: if rest.is_empty() { END_HEADERS } else { 0 },
            stream: first.stream,
        }
        .write(out);
        out.extend_from_slice(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_payload_parts() {
        let payload = [2u8, 0, 0, 0, 3, 16, b'a', b'b', 0, 0];
        let parsed = HeadersPayload::parse(PADDED | PRIORITY, &payload).unwrap();
        assert_eq!(parsed.priority, Some(&payload[1..6]));
        assert_eq!(parsed.fragment, b"ab");
        assert_eq!(parsed.padding, Some(&[0u8, 0][..]));
        // Padding as long as what is left is a protocol error.
        assert_eq!(HeadersPayload::parse(PADDED, &[3, 1, 2]), None);
        assert_eq!(HeadersPayload::parse(PRIORITY, &[0, 0, 1]), None);
        assert_eq!(HeadersPayload::parse(0, b"xy").unwrap().fragment, b"xy");
    }

    #[test]
    fn a_long_block_continues_in_continuation_frames() {
        let first = FrameHeader {
            len: 0,
            kind: HEADERS,
            flags: END_STREAM | END_HEADERS | PADDED,
            stream: 7,
        };
        let padding = [0u8; 3];
        let payload = HeadersPayload {
            priority: None,
            padding: Some(&padding),
            fragment: b"",
        };
        let block: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        write_block(&mut out, &first, &payload, &block);
        let mut at = 0;
        let mut got = Vec::new();
        let mut frames = Vec::new();
        while at < out.len() {
            let h = FrameHeader::parse(&out[at..]).unwrap();
            assert!(h.len <= MAX_FRAME);
            let p = &out[at + 9..at + 9 + h.len];
            if h.kind == HEADERS {
                got.extend_from_slice(HeadersPayload::parse(h.flags, p).unwrap().fragment);
            } else {
                got.extend_from_slice(p);
            }
            frames.push((h.kind, h.flags, h.stream));
            at += 9 + h.len;
        }
        assert_eq!(got, block);
        assert_eq!(
            frames,
            [
                (HEADERS, END_STREAM | PADDED, 7),
                (CONTINUATION, 0, 7),
                (CONTINUATION, END_HEADERS, 7)
            ]
        );
    }

    #[test]
    fn frame_header_round_trip() {
        let h = FrameHeader {
            len: 0x01_02_03,
            kind: 9,
            flags: 4,
            stream: 0x7fff_fffe,
        };
        let mut out = Vec::new();
        h.write(&mut out);
        assert_eq!(FrameHeader::parse(&out), Some(h));
        // The reserved bit is ignored on receipt (section 4.1).
        out[5] |= 0x80;
        assert_eq!(FrameHeader::parse(&out), Some(h));
    }
}
