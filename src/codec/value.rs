//! A small inline buffer for rendered header values, so rendering never allocates.

use std::fmt;

/// Longest value any codec renders. The fixed-shape values fit in 80 (a B3 single header
/// with a 128-bit trace id, span id, sampling state and parent span id: 68; an
/// `X-Amzn-Trace-Id` with Root, Parent and Sampled: 74); the rest is room for the X-Ray
/// fields kept from the request (`Self=` from an ALB is 40 characters), which
/// [`super::xray`] bounds by [`HeaderValue::remaining`].
const CAPACITY: usize = 160;

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HeaderValue {
    buf: [u8; CAPACITY],
    len: usize,
}

impl HeaderValue {
    pub fn new() -> Self {
        HeaderValue {
            buf: [0; CAPACITY],
            len: 0,
        }
    }

    /// A value from a short literal (longer input is cut at the capacity).
    pub fn from_literal(s: &[u8]) -> Self {
        let mut v = HeaderValue::new();
        v.push_str(s);
        v
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// How many more bytes fit.
    pub fn remaining(&self) -> usize {
        CAPACITY.saturating_sub(self.len)
    }

    pub fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    pub fn push_str(&mut self, s: &[u8]) {
        for b in s {
            self.push(*b);
        }
    }

    pub fn push_hex(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.push(hex_digit(b >> 4));
            self.push(hex_digit(b & 0x0f));
        }
    }
}

impl Default for HeaderValue {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HeaderValue {
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
