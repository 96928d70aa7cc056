//! HPACK's Huffman code (RFC 7541 section 5.2, Appendix B). The code is canonical (codes
//! of one length are consecutive and follow the shorter ones), so it decodes from two
//! small tables: how many codes each length has, and the symbols in code order. A symbol
//! is found from the next 32 bits by comparing them with each length's upper bound
//! (the common 5- to 8-bit codes within four comparisons), not bit by bit.

/// Why a Huffman string does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HuffmanError;

/// One code length in use: codes of this length, read as the next 32 bits of the string
/// (left-aligned), lie below `limit` and at or above the previous length's limit.
#[derive(Clone, Copy)]
struct Length {
    bits: u32,
    limit: u64,
    first: u32,
    /// Index in [`SYMBOLS`] of this length's first code.
    offset: u32,
}

const LENGTHS_IN_USE: usize = 21;

/// The lengths in use, shortest first, from [`CODES_OF_LENGTH`].
#[allow(clippy::indexing_slicing)] // evaluated by the compiler: out of range fails the build
const LENGTHS: [Length; LENGTHS_IN_USE] = {
    let mut out = [Length {
        bits: 0,
        limit: 0,
        first: 0,
        offset: 0,
    }; LENGTHS_IN_USE];
    let mut code: u32 = 0;
    let mut offset: u32 = 0;
    let mut len = 1;
    let mut k = 0;
    while len < CODES_OF_LENGTH.len() {
        code <<= 1;
        let count = CODES_OF_LENGTH[len] as u32;
        if count > 0 {
            out[k] = Length {
                bits: len as u32,
                limit: ((code + count) as u64) << (32 - len),
                first: code,
                offset,
            };
            k += 1;
        }
        code += count;
        offset += count;
        len += 1;
    }
    out
};

/// Appends the decoded `bytes` to `out`.
pub fn decode(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    // The bits not decoded yet, left-aligned, and how many there are.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    let mut rest = bytes.iter();
    loop {
        while bits <= 56 {
            let Some(&byte) = rest.next() else {
                break;
            };
            acc |= u64::from(byte) << (56 - bits);
            bits += 8;
        }
        if bits == 0 {
            return Ok(());
        }
        // At most 7 bits left, all ones: the padding (the most significant bits of EOS).
        if bits < 8 {
            let padding = !0u64 << (64 - bits);
            if acc & padding == padding {
                return Ok(());
            }
        }
        // The next 32 bits, ones where the string has ended.
        let next = ((acc >> 32) as u32) | u32::MAX.checked_shr(bits).unwrap_or(0);
        let Some(length) = LENGTHS.iter().find(|l| u64::from(next) < l.limit) else {
            return Err(HuffmanError);
        };
        if length.bits > bits {
            return Err(HuffmanError);
        }
        let index = length.offset + ((next >> (32 - length.bits)) - length.first);
        // EOS, the last code, is not in SYMBOLS: it never appears in a string (section 5.2).
        let symbol = SYMBOLS.get(index as usize).ok_or(HuffmanError)?;
        out.push(*symbol);
        acc <<= length.bits;
        bits -= length.bits;
    }
}

/// RFC 7541 Appendix B as a canonical code: how many codes have each bit length (0-30).
const CODES_OF_LENGTH: [u16; 31] = [
    0, 0, 0, 0, 0, 10, 26, 32, 6, 0, 5, 3, 2, 6, 2, 3, 0, 0, 0, 3, 8, 13, 26, 29, 12, 4, 15, 19,
    29, 0, 4,
];
/// The symbols in code order (by length, then value); EOS (256), the one code of 30
/// bits, is last and not listed.
const SYMBOLS: [u8; 256] = [
    48, 49, 50, 97, 99, 101, 105, 111, 115, 116, 32, 37, 45, 46, 47, 51, 52, 53, 54, 55, 56, 57,
    61, 65, 95, 98, 100, 102, 103, 104, 108, 109, 110, 112, 114, 117, 58, 66, 67, 68, 69, 70, 71,
    72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 89, 106, 107, 113, 118, 119,
    120, 121, 122, 38, 42, 44, 59, 88, 90, 33, 34, 40, 41, 63, 39, 43, 124, 35, 62, 0, 36, 64, 91,
    93, 126, 94, 125, 60, 96, 123, 92, 195, 208, 128, 130, 131, 162, 184, 194, 224, 226, 153, 161,
    167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230, 129, 132, 133, 134, 136, 146, 154, 156,
    160, 163, 164, 169, 170, 173, 178, 181, 185, 186, 187, 189, 190, 196, 198, 228, 232, 233, 1,
    135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166, 168, 174,
    175, 180, 182, 183, 188, 191, 197, 231, 239, 9, 142, 144, 145, 148, 159, 171, 206, 215, 225,
    236, 237, 199, 207, 234, 235, 192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242,
    243, 255, 203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252,
    253, 254, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28,
    29, 30, 31, 127, 220, 249, 10, 13, 22,
];

/// The Huffman encoding of `bytes` (for tests: the filter never writes Huffman).
#[cfg(test)]
pub fn encode(bytes: &[u8]) -> Vec<u8> {
    // Rebuild the canonical codes: (code, length) per symbol.
    let mut codes = [(0u32, 0usize); 256];
    let mut code = 0u32;
    let mut k = 0usize;
    for (len, &count) in CODES_OF_LENGTH.iter().enumerate() {
        for _ in 0..count {
            if let Some(&symbol) = SYMBOLS.get(k) {
                codes[usize::from(symbol)] = (code, len);
            }
            k += 1;
            code += 1;
        }
        code <<= 1;
    }
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0usize);
    for &b in bytes {
        let (c, len) = codes[usize::from(b)];
        acc = (acc << len) | u64::from(c);
        bits += len;
        while bits >= 8 {
            out.push((acc >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::generate::{below, random_bytes, rng};

    /// The code walked a bit at a time: what the table-driven decoder must agree with.
    fn decode_bit_by_bit(bytes: &[u8]) -> Result<Vec<u8>, HuffmanError> {
        let mut out = Vec::new();
        let (mut code, mut len, mut first, mut offset) = (0u32, 0usize, 0u32, 0usize);
        for byte in bytes {
            for shift in (0..8).rev() {
                code = (code << 1) | u32::from((byte >> shift) & 1);
                len += 1;
                let count = u32::from(*CODES_OF_LENGTH.get(len).ok_or(HuffmanError)?);
                if code.wrapping_sub(first) < count {
                    out.push(
                        *SYMBOLS
                            .get(offset + (code - first) as usize)
                            .ok_or(HuffmanError)?,
                    );
                    (code, len, first, offset) = (0, 0, 0, 0);
                } else {
                    first = (first + count) << 1;
                    offset += count as usize;
                }
            }
        }
        if len > 7 || code != (1u32 << len) - 1 {
            return Err(HuffmanError);
        }
        Ok(out)
    }

    #[test]
    fn the_table_decoder_agrees_with_a_bit_walk() {
        let mut r = rng(7);
        for i in 0..20_000 {
            let input = if i % 2 == 0 {
                let plain = random_bytes(&mut r, 40);
                let mut coded = encode(&plain);
                // Damage some: a flipped bit, a byte cut off or added.
                match below(&mut r, 4) {
                    0 if !coded.is_empty() => {
                        let at = below(&mut r, coded.len());
                        coded[at] ^= 1 << below(&mut r, 8);
                    }
                    1 => {
                        coded.pop();
                    }
                    2 => coded.push(0xff),
                    _ => {}
                }
                coded
            } else {
                random_bytes(&mut r, 12)
            };
            let mut fast = Vec::new();
            let got = decode(&input, &mut fast).map(|()| fast);
            assert_eq!(got, decode_bit_by_bit(&input), "{input:02x?}");
        }
    }

    #[test]
    fn every_byte_round_trips_and_padding_is_checked() {
        let all: Vec<u8> = (0..=255u8).collect();
        let mut out = Vec::new();
        decode(&encode(&all), &mut out).unwrap();
        assert_eq!(out, all);
        // RFC 7541 C.4.1: "www.example.com".
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(encode(b"www.example.com"), www);
        out.clear();
        decode(&www, &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
        // Padding of 8 bits or more, or not all ones, and EOS in the string are errors.
        assert_eq!(decode(&[0xff], &mut out), Err(HuffmanError));
        assert_eq!(decode(&[0x00], &mut out), Err(HuffmanError)); // '0' (5 bits) then 000
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xfc], &mut out),
            Err(HuffmanError)
        ); // EOS
        out.clear();
        assert_eq!(decode(&[0x07], &mut out), Ok(())); // '0' then 111
        assert_eq!(out, b"0");
    }
}
