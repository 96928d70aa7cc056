//! A chunked request body (RFC 9112 section 7.1), followed without copying its data: only
//! the chunk-size lines, the CRLF after each chunk and the trailer section are looked at.

use super::Leave;
use super::head::field_line;

/// The longest chunk-size line (with extensions) or trailer line accepted; longer ones are
/// left to Envoy.
const MAX_LINE: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Reading `chunk-size [ chunk-ext ] CRLF`.
    Size,
    /// Inside chunk data: this many bytes left.
    Data(u64),
    /// The CRLF after chunk data: this many of its bytes seen.
    DataEnd(u8),
    /// Field lines after the last chunk, up to the empty line.
    Trailer,
    Done,
}

/// Where a chunked body is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunked {
    state: State,
    /// The line being read (size line or trailer line), across reads.
    line: Vec<u8>,
    trailer_bytes: usize,
    max_trailer: usize,
}

/// What [`Chunked::feed`] did with the bytes it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fed {
    pub consumed: usize,
    /// The body ended (within the consumed bytes).
    pub done: bool,
}

impl Chunked {
    /// `max_trailer`: the most trailer bytes followed (Envoy's head limit applies to them).
    pub fn new(max_trailer: usize) -> Self {
        Chunked {
            state: State::Size,
            line: Vec::new(),
            trailer_bytes: 0,
            max_trailer,
        }
    }

    /// Chunk-data bytes that can be passed over unseen (0 when bytes must be read).
    pub fn skippable(&self) -> u64 {
        match self.state {
            State::Data(n) => n,
            _ => 0,
        }
    }

    /// Passes over `n` <= [`Self::skippable`] bytes of chunk data.
    pub fn skip(&mut self, n: u64) {
        if let State::Data(left) = self.state {
            let left = left.saturating_sub(n);
            self.state = if left == 0 {
                State::DataEnd(0)
            } else {
                State::Data(left)
            };
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads framing bytes; stops at chunk data (see [`Self::skippable`]) or the body's end.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Fed, Leave> {
        let mut consumed = 0usize;
        for &b in bytes {
            match &mut self.state {
                State::Data(_) | State::Done => break,
                State::DataEnd(seen) => {
                    match (*seen, b) {
                        (0, b'\r') => *seen = 1,
                        (1, b'\n') => self.state = State::Size,
                        _ => return Err(Leave::Ambiguous),
                    }
                    consumed += 1;
                }
                State::Size | State::Trailer => {
                    consumed += 1;
                    if self.line.last() == Some(&b'\r') && b != b'\n' {
                        // A CR not followed by LF.
                        return Err(Leave::Ambiguous);
                    }
                    if self.line.len() >= MAX_LINE {
                        return Err(Leave::TooLarge);
                    }
                    self.line.push(b);
                    if b == b'\n' {
                        self.end_of_line()?;
                    }
                }
            }
        }
        Ok(Fed {
            consumed,
            done: self.is_done(),
        })
    }

    /// A complete line (ending in LF) is in `self.line`.
    fn end_of_line(&mut self) -> Result<(), Leave> {
        let Some(text) = self.line.strip_suffix(b"\r\n") else {
            return Err(Leave::Ambiguous);
        };
        match self.state {
            State::Size => {
                let size = chunk_size(text)?;
                self.state = if size == 0 {
                    State::Trailer
                } else {
                    State::Data(size)
                };
            }
            State::Trailer => {
                self.trailer_bytes = self.trailer_bytes.saturating_add(self.line.len());
                if self.trailer_bytes > self.max_trailer {
                    return Err(Leave::TooLarge);
                }
                if text.is_empty() {
                    self.state = State::Done;
                } else if field_line(text).is_none() {
                    return Err(Leave::Ambiguous);
                }
            }
            State::Data(_) | State::DataEnd(_) | State::Done => {}
        }
        self.line.clear();
        Ok(())
    }
}

/// `1*HEXDIG [ ";" chunk-ext ]`: the size; extensions are visible characters, SP and HTAB.
fn chunk_size(line: &[u8]) -> Result<u64, Leave> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (hex, ext) = line.split_at(digits);
    if hex.is_empty() || hex.len() > 16 {
        return Err(Leave::Ambiguous);
    }
    match ext.first() {
        None => {}
        Some(b';') if ext.iter().all(|b| matches!(b, b'\t' | b' ' | 0x21..=0x7e)) => {}
        Some(_) => return Err(Leave::Ambiguous),
    }
    hex.iter()
        .try_fold(0u64, |n, b| {
            let d = u64::from(char::from(*b).to_digit(16)?);
            n.checked_mul(16)?.checked_add(d)
        })
        .ok_or(Leave::Ambiguous)
}

#[cfg(test)]
mod tests;
