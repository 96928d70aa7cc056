//! Small inline buffers for rendered header values, so rendering never allocates.

use std::fmt;

/// Longest value a codec renders in a fixed shape: an `X-Amzn-Trace-Id` with Root, Parent
/// and Sampled (74; a B3 single header with a 128-bit trace id, span id, sampling state and
/// parent span id is 68). Kept this small because the plan holds one per trace header.
pub const HEADER_VALUE_CAPACITY: usize = 74;

/// An X-Ray value with the fields kept from the request (`Self=` from an ALB is 40
/// characters), which [`super::xray`] bounds by [`InlineValue::remaining`]. Such a value
/// goes into the plan as text, the rare case that allocates.
pub const XRAY_VALUE_CAPACITY: usize = 160;

/// A rendered value of any fixed shape.
pub type HeaderValue = InlineValue<HEADER_VALUE_CAPACITY>;
/// An X-Ray value with the request's own fields.
pub type XRayValue = InlineValue<XRAY_VALUE_CAPACITY>;

// One per trace header in every plan: a larger value makes every request pay for its moves.
const _: () = assert!(size_of::<HeaderValue>() == HEADER_VALUE_CAPACITY + 1);

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineValue<const CAPACITY: usize> {
    buf: [u8; CAPACITY],
    /// A byte: both capacities fit, and the value stays small.
    len: u8,
}

impl<const CAPACITY: usize> InlineValue<CAPACITY> {
    const LEN_FITS: () = assert!(CAPACITY <= u8::MAX as usize);

    pub fn new() -> Self {
        let () = Self::LEN_FITS;
        InlineValue {
            buf: [0; CAPACITY],
            len: 0,
        }
    }

    /// A value from a short literal (longer input is cut at the capacity).
    pub fn from_literal(s: &[u8]) -> Self {
        let mut v = InlineValue::new();
        v.push_str(s);
        v
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// How many more bytes fit.
    pub fn remaining(&self) -> usize {
        CAPACITY.saturating_sub(usize::from(self.len))
    }

    pub fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
            *slot = b;
            self.len += 1;
        }
    }

    /// The free bytes after the value, if `n` of them are there.
    fn room(&mut self, n: usize) -> Option<&mut [u8]> {
        let start = usize::from(self.len);
        self.buf.get_mut(start..start.checked_add(n)?)
    }

    /// Appends `s`; what does not fit is cut off.
    pub fn push_str(&mut self, s: &[u8]) {
        // One copy where it fits (every codec's values do), not a check per byte.
        if let Some(room) = self.room(s.len()) {
            room.copy_from_slice(s);
            self.len += s.len() as u8;
            return;
        }
        for b in s {
            self.push(*b);
        }
    }

    /// Appends `bytes` in lowercase hex; what does not fit is cut off.
    pub fn push_hex(&mut self, bytes: &[u8]) {
        if let Some(room) = self.room(2 * bytes.len()) {
            for (pair, b) in room.chunks_exact_mut(2).zip(bytes) {
                if let [high, low] = pair {
                    *high = hex_digit(b >> 4);
                    *low = hex_digit(b & 0x0f);
                }
            }
            self.len += (2 * bytes.len()) as u8;
            return;
        }
        for b in bytes {
            self.push(hex_digit(b >> 4));
            self.push(hex_digit(b & 0x0f));
        }
    }
}

impl<const CAPACITY: usize> Default for InlineValue<CAPACITY> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const CAPACITY: usize> fmt::Debug for InlineValue<CAPACITY> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

#[inline]
fn hex_digit(nibble: u8) -> u8 {
    if nibble < 10 {
        b'0' + nibble
    } else {
        b'a' + nibble - 10
    }
}
