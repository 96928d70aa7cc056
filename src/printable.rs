//! Client bytes made safe for a log line.

/// A client-supplied value made safe for a log line: bytes outside visible ASCII become
/// `\xNN` (no terminal escapes, no forged line breaks), at most `max` bytes are shown.
pub fn printable(value: &[u8], max: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(value.len().min(max));
    for b in value.iter().take(max) {
        if b.is_ascii_graphic() && *b != b'\\' {
            out.push(char::from(*b));
        } else {
            out.push_str("\\x");
            out.push(char::from(
                HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
            ));
            out.push(char::from(
                HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'),
            ));
        }
    }
    if value.len() > max {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests;
