//! A second HPACK decoder (RFC 7541), written apart from the crate's own, for oracles over
//! HTTP/2 header blocks: what a peer (Envoy's codec) decodes from the bytes the filter
//! passes on, and what the client's own encoder meant.
//!
//! Simple on purpose, and different in shape from a table-driven decoder:
//! - Huffman strings are decoded a bit at a time down a binary tree built once from the
//!   (code, length) list of Appendix B (no canonical-code arithmetic, no nibble tables);
//!   EOS inside a string, more than 7 bits of padding, or padding that is not a prefix of
//!   EOS (all ones) are errors (5.2).
//! - Integers (5.1) are read with an N-bit prefix and overflow checks: a value past
//!   `u32::MAX`, or more continuation octets than such a value needs, is an error.
//! - The dynamic table (2.3.2, 4) is a deque, newest first, evicted from the oldest end;
//!   an entry larger than the table empties it and is not added (4.4). Size updates (6.3)
//!   are allowed only before the block's first field (4.2) and not above the limit the
//!   decoder was created with (the peer's SETTINGS_HEADER_TABLE_SIZE).
//!
//! A block that fails to decode leaves the table as far as the decoder got: a peer treats
//! that as a connection error (COMPRESSION_ERROR), so nothing after it matters.

use std::collections::VecDeque;
use std::fmt;
use std::sync::OnceLock;

/// Per-entry overhead counted in a table's size (4.1).
pub const ENTRY_OVERHEAD: usize = 32;

/// The default SETTINGS_HEADER_TABLE_SIZE (RFC 9113 6.5.2), Envoy's too.
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// A decoded field list: (name, value) pairs in order.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HpackError {
    /// The block ends inside a representation.
    Truncated,
    /// An integer past `u32::MAX`, or encoded in more octets than that needs.
    IntegerOverflow,
    /// Index 0 (6.1: a decoding error).
    IndexZero,
    /// An index past the static and dynamic tables.
    IndexOutOfRange(usize),
    /// The EOS symbol inside a Huffman string.
    HuffmanEos,
    /// More than 7 bits of padding, or padding not all ones.
    HuffmanPadding,
    /// A dynamic table size update above the decoder's limit.
    SizeUpdateTooLarge { size: usize, limit: usize },
    /// A dynamic table size update after the block's first field.
    SizeUpdateNotAtStart,
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HpackError::Truncated => write!(f, "block ends inside a representation"),
            HpackError::IntegerOverflow => write!(f, "integer overflow"),
            HpackError::IndexZero => write!(f, "index 0"),
            HpackError::IndexOutOfRange(i) => write!(f, "index {i} out of range"),
            HpackError::HuffmanEos => write!(f, "EOS in a Huffman string"),
            HpackError::HuffmanPadding => write!(f, "bad Huffman padding"),
            HpackError::SizeUpdateTooLarge { size, limit } => {
                write!(f, "table size update to {size} above {limit}")
            }
            HpackError::SizeUpdateNotAtStart => write!(f, "table size update after a field"),
        }
    }
}

impl std::error::Error for HpackError {}

/// How a field was represented (6.1, 6.2.1-6.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Representation {
    /// 6.1: name and value from a table.
    Indexed,
    /// 6.2.1: literal, added to the dynamic table.
    Incremental,
    /// 6.2.2: literal, not added.
    WithoutIndexing,
    /// 6.2.3: literal, never to be indexed by any intermediary (7.1.3).
    NeverIndexed,
}

/// One decoded field with how it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
    pub representation: Representation,
    /// The table index the name (or, indexed, the whole field) was taken from; `None` for
    /// a literal name.
    pub index: Option<usize>,
    /// Whether the name, the value were Huffman-coded (false for taken from a table).
    pub huffman_name: bool,
    pub huffman_value: bool,
}

/// One representation in a block, for callers that look at the encoding itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    SizeUpdate(usize),
    Field(Field),
}

#[derive(Clone, Debug)]
pub struct Decoder {
    /// Newest first.
    entries: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    /// The size the encoder last set (or the limit, before any update).
    max_size: usize,
    /// SETTINGS_HEADER_TABLE_SIZE the decoder advertised: no update may exceed it.
    limit: usize,
}

impl Decoder {
    /// A decoder whose peer advertised `max_table_size` as SETTINGS_HEADER_TABLE_SIZE: the
    /// table starts at that size, and no size update may exceed it.
    pub fn new(max_table_size: usize) -> Self {
        Decoder {
            entries: VecDeque::new(),
            size: 0,
            max_size: max_table_size,
            limit: max_table_size,
        }
    }

    /// The table's current maximum size (the last size update, or the limit).
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// The table's current size: its entries' lengths plus 32 each (4.1).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The dynamic table, newest entry (index 62) first.
    pub fn table(&self) -> Fields {
        self.entries.iter().cloned().collect()
    }

    /// A whole header block's fields, in order.
    pub fn decode(&mut self, block: &[u8]) -> Result<Fields, HpackError> {
        Ok(self
            .decode_fields(block)?
            .into_iter()
            .map(|f| (f.name, f.value))
            .collect())
    }

    /// A whole header block's fields with their representations.
    pub fn decode_fields(&mut self, block: &[u8]) -> Result<Vec<Field>, HpackError> {
        Ok(self
            .decode_items(block)?
            .into_iter()
            .filter_map(|item| match item {
                Item::Field(f) => Some(f),
                Item::SizeUpdate(_) => None,
            })
            .collect())
    }

    /// A whole header block, representation by representation (size updates included).
    pub fn decode_items(&mut self, block: &[u8]) -> Result<Vec<Item>, HpackError> {
        let mut items = Vec::new();
        let mut at = 0usize;
        let mut fields = 0usize;
        while let Some(&first) = block.get(at) {
            if first & 0x80 != 0 {
                // 6.1 Indexed Header Field: 1xxxxxxx
                let index = integer(block, &mut at, 7)?;
                let (name, value) = self.lookup(index)?;
                items.push(Item::Field(Field {
                    name,
                    value,
                    representation: Representation::Indexed,
                    index: Some(index),
                    huffman_name: false,
                    huffman_value: false,
                }));
                fields += 1;
            } else if first & 0x40 != 0 {
                // 6.2.1 Literal with Incremental Indexing: 01xxxxxx
                let field = self.literal(block, &mut at, 6, Representation::Incremental)?;
                self.insert(field.name.clone(), field.value.clone());
                items.push(Item::Field(field));
                fields += 1;
            } else if first & 0x20 != 0 {
                // 6.3 Dynamic Table Size Update: 001xxxxx
                if fields > 0 {
                    return Err(HpackError::SizeUpdateNotAtStart);
                }
                let size = integer(block, &mut at, 5)?;
                if size > self.limit {
                    return Err(HpackError::SizeUpdateTooLarge {
                        size,
                        limit: self.limit,
                    });
                }
                self.max_size = size;
                self.evict(0);
                items.push(Item::SizeUpdate(size));
            } else {
                // 6.2.2 without indexing 0000xxxx, 6.2.3 never indexed 0001xxxx
                let representation = if first & 0x10 != 0 {
                    Representation::NeverIndexed
                } else {
                    Representation::WithoutIndexing
                };
                let field = self.literal(block, &mut at, 4, representation)?;
                items.push(Item::Field(field));
                fields += 1;
            }
        }
        Ok(items)
    }

    /// A literal representation: the name by index (non-zero prefix) or as a string, then
    /// the value.
    fn literal(
        &self,
        block: &[u8],
        at: &mut usize,
        prefix: u32,
        representation: Representation,
    ) -> Result<Field, HpackError> {
        let index = integer(block, at, prefix)?;
        let (name, huffman_name, index) = if index == 0 {
            let (name, huffman) = string(block, at)?;
            (name, huffman, None)
        } else {
            (self.lookup(index)?.0, false, Some(index))
        };
        let (value, huffman_value) = string(block, at)?;
        Ok(Field {
            name,
            value,
            representation,
            index,
            huffman_name,
            huffman_value,
        })
    }

    /// Index space (2.3.3): 1..=61 static, then the dynamic table newest first.
    fn lookup(&self, index: usize) -> Result<(Vec<u8>, Vec<u8>), HpackError> {
        if index == 0 {
            return Err(HpackError::IndexZero);
        }
        if let Some((name, value)) = STATIC_TABLE.get(index - 1) {
            return Ok((name.to_vec(), value.to_vec()));
        }
        self.entries
            .get(index - 1 - STATIC_TABLE.len())
            .cloned()
            .ok_or(HpackError::IndexOutOfRange(index))
    }

    /// 4.4: evict the oldest entries until the new one fits; one larger than the whole
    /// table empties it and is not added.
    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.size += size;
        self.entries.push_front((name, value));
    }

    /// Evicts the oldest entries until `room` more bytes fit under the maximum.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.entries.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + ENTRY_OVERHEAD,
                None => break,
            }
        }
    }
}

/// 5.1: an integer with a `prefix`-bit prefix in the octet at `*at`, then continuation
/// octets (7 bits each, least significant group first).
/// Writes `value` with an N-bit prefix (5.1), `flags` in the first octet's other bits: for
/// targets that build blocks.
pub fn integer_encode(out: &mut Vec<u8>, flags: u8, prefix: u32, value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

pub fn integer(block: &[u8], at: &mut usize, prefix: u32) -> Result<usize, HpackError> {
    let first = *block.get(*at).ok_or(HpackError::Truncated)?;
    *at += 1;
    let max = (1u64 << prefix) - 1;
    let mut value = u64::from(first) & max;
    if value < max {
        return Ok(value as usize);
    }
    let mut shift = 0u32;
    loop {
        let octet = *block.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        // u32::MAX needs at most 5 continuation octets (shifts 0, 7, 14, 21, 28).
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
        value += u64::from(octet & 0x7f) << shift;
        if value > u64::from(u32::MAX) {
            return Err(HpackError::IntegerOverflow);
        }
        if octet & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    usize::try_from(value).map_err(|_| HpackError::IntegerOverflow)
}

/// 5.2: a string literal (H bit, 7-bit prefixed length, octets); (bytes, was Huffman).
pub fn string(block: &[u8], at: &mut usize) -> Result<(Vec<u8>, bool), HpackError> {
    let huffman = block.get(*at).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = integer(block, at, 7)?;
    let end = at
        .checked_add(len)
        .filter(|end| *end <= block.len())
        .ok_or(HpackError::Truncated)?;
    let raw = block.get(*at..end).ok_or(HpackError::Truncated)?;
    *at = end;
    if huffman {
        Ok((huffman_decode(raw)?, true))
    } else {
        Ok((raw.to_vec(), false))
    }
}

#[derive(Clone, Copy, Debug)]
enum Child {
    Missing,
    Node(usize),
    Symbol(u16),
}

/// The Huffman code as a binary tree: node 0 the root, `[child for bit 0, for bit 1]`.
fn tree() -> &'static [[Child; 2]] {
    static TREE: OnceLock<Vec<[Child; 2]>> = OnceLock::new();
    TREE.get_or_init(|| {
        let mut nodes = vec![[Child::Missing; 2]];
        for (symbol, &(code, len)) in HUFFMAN_CODES.iter().enumerate() {
            let mut node = 0usize;
            for i in (0..u32::from(len)).rev() {
                let bit = ((code >> i) & 1) as usize;
                if i == 0 {
                    nodes[node][bit] = Child::Symbol(symbol as u16);
                } else {
                    node = match nodes[node][bit] {
                        Child::Node(next) => next,
                        _ => {
                            nodes.push([Child::Missing; 2]);
                            let next = nodes.len() - 1;
                            nodes[node][bit] = Child::Node(next);
                            next
                        }
                    };
                }
            }
        }
        nodes
    })
}

/// Walks the tree a bit at a time from the most significant bit of the first octet.
pub fn huffman_decode(bytes: &[u8]) -> Result<Vec<u8>, HpackError> {
    let tree = tree();
    let mut out = Vec::with_capacity(bytes.len() * 8 / 5);
    let mut node = 0usize;
    // Bits read since the last symbol, and whether all were ones.
    let mut pending = 0u32;
    let mut ones = true;
    for octet in bytes {
        for shift in (0..8).rev() {
            let bit = usize::from((octet >> shift) & 1);
            pending += 1;
            ones &= bit == 1;
            match tree.get(node).map(|n| n[bit]) {
                Some(Child::Node(next)) => node = next,
                Some(Child::Symbol(256)) => return Err(HpackError::HuffmanEos),
                Some(Child::Symbol(symbol)) => {
                    out.push(symbol as u8);
                    node = 0;
                    pending = 0;
                    ones = true;
                }
                // The code is complete (every path ends in a symbol): not reached.
                Some(Child::Missing) | None => return Err(HpackError::HuffmanPadding),
            }
        }
    }
    if pending > 7 || !ones {
        return Err(HpackError::HuffmanPadding);
    }
    Ok(out)
}

/// Huffman-encodes `bytes` (padding with the most significant bits of EOS), for tests and
/// seeds.
pub fn huffman_encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u64;
    let mut bits = 0u32;
    for b in bytes {
        let (code, len) = HUFFMAN_CODES[usize::from(*b)];
        acc = acc << len | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        out.push((acc << (8 - bits) | (0xff >> bits)) as u8);
    }
    out
}

/// RFC 7541 Appendix A: the static table, index 1 first.
pub const STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),                   // 1
    (b":method", b"GET"),                   // 2
    (b":method", b"POST"),                  // 3
    (b":path", b"/"),                       // 4
    (b":path", b"/index.html"),             // 5
    (b":scheme", b"http"),                  // 6
    (b":scheme", b"https"),                 // 7
    (b":status", b"200"),                   // 8
    (b":status", b"204"),                   // 9
    (b":status", b"206"),                   // 10
    (b":status", b"304"),                   // 11
    (b":status", b"400"),                   // 12
    (b":status", b"404"),                   // 13
    (b":status", b"500"),                   // 14
    (b"accept-charset", b""),               // 15
    (b"accept-encoding", b"gzip, deflate"), // 16
    (b"accept-language", b""),              // 17
    (b"accept-ranges", b""),                // 18
    (b"accept", b""),                       // 19
    (b"access-control-allow-origin", b""),  // 20
    (b"age", b""),                          // 21
    (b"allow", b""),                        // 22
    (b"authorization", b""),                // 23
    (b"cache-control", b""),                // 24
    (b"content-disposition", b""),          // 25
    (b"content-encoding", b""),             // 26
    (b"content-language", b""),             // 27
    (b"content-length", b""),               // 28
    (b"content-location", b""),             // 29
    (b"content-range", b""),                // 30
    (b"content-type", b""),                 // 31
    (b"cookie", b""),                       // 32
    (b"date", b""),                         // 33
    (b"etag", b""),                         // 34
    (b"expect", b""),                       // 35
    (b"expires", b""),                      // 36
    (b"from", b""),                         // 37
    (b"host", b""),                         // 38
    (b"if-match", b""),                     // 39
    (b"if-modified-since", b""),            // 40
    (b"if-none-match", b""),                // 41
    (b"if-range", b""),                     // 42
    (b"if-unmodified-since", b""),          // 43
    (b"last-modified", b""),                // 44
    (b"link", b""),                         // 45
    (b"location", b""),                     // 46
    (b"max-forwards", b""),                 // 47
    (b"proxy-authenticate", b""),           // 48
    (b"proxy-authorization", b""),          // 49
    (b"range", b""),                        // 50
    (b"referer", b""),                      // 51
    (b"refresh", b""),                      // 52
    (b"retry-after", b""),                  // 53
    (b"server", b""),                       // 54
    (b"set-cookie", b""),                   // 55
    (b"strict-transport-security", b""),    // 56
    (b"transfer-encoding", b""),            // 57
    (b"user-agent", b""),                   // 58
    (b"vary", b""),                         // 59
    (b"via", b""),                          // 60
    (b"www-authenticate", b""),             // 61
];

/// RFC 7541 Appendix B: (code, length in bits) of each symbol, 0..=255 then EOS (256),
/// the code right-aligned.
pub const HUFFMAN_CODES: [(u32, u8); 257] = [
    (0x1ff8, 13),     // 0
    (0x7fffd8, 23),   // 1
    (0xfffffe2, 28),  // 2
    (0xfffffe3, 28),  // 3
    (0xfffffe4, 28),  // 4
    (0xfffffe5, 28),  // 5
    (0xfffffe6, 28),  // 6
    (0xfffffe7, 28),  // 7
    (0xfffffe8, 28),  // 8
    (0xffffea, 24),   // 9
    (0x3ffffffc, 30), // 10
    (0xfffffe9, 28),  // 11
    (0xfffffea, 28),  // 12
    (0x3ffffffd, 30), // 13
    (0xfffffeb, 28),  // 14
    (0xfffffec, 28),  // 15
    (0xfffffed, 28),  // 16
    (0xfffffee, 28),  // 17
    (0xfffffef, 28),  // 18
    (0xffffff0, 28),  // 19
    (0xffffff1, 28),  // 20
    (0xffffff2, 28),  // 21
    (0x3ffffffe, 30), // 22
    (0xffffff3, 28),  // 23
    (0xffffff4, 28),  // 24
    (0xffffff5, 28),  // 25
    (0xffffff6, 28),  // 26
    (0xffffff7, 28),  // 27
    (0xffffff8, 28),  // 28
    (0xffffff9, 28),  // 29
    (0xffffffa, 28),  // 30
    (0xffffffb, 28),  // 31
    (0x14, 6),        // 32 ' '
    (0x3f8, 10),      // 33 '!'
    (0x3f9, 10),      // 34 '"'
    (0xffa, 12),      // 35 '#'
    (0x1ff9, 13),     // 36 '$'
    (0x15, 6),        // 37 '%'
    (0xf8, 8),        // 38 '&'
    (0x7fa, 11),      // 39 "'"
    (0x3fa, 10),      // 40 '('
    (0x3fb, 10),      // 41 ')'
    (0xf9, 8),        // 42 '*'
    (0x7fb, 11),      // 43 '+'
    (0xfa, 8),        // 44 ','
    (0x16, 6),        // 45 '-'
    (0x17, 6),        // 46 '.'
    (0x18, 6),        // 47 '/'
    (0x0, 5),         // 48 '0'
    (0x1, 5),         // 49 '1'
    (0x2, 5),         // 50 '2'
    (0x19, 6),        // 51 '3'
    (0x1a, 6),        // 52 '4'
    (0x1b, 6),        // 53 '5'
    (0x1c, 6),        // 54 '6'
    (0x1d, 6),        // 55 '7'
    (0x1e, 6),        // 56 '8'
    (0x1f, 6),        // 57 '9'
    (0x5c, 7),        // 58 ':'
    (0xfb, 8),        // 59 ';'
    (0x7ffc, 15),     // 60 '<'
    (0x20, 6),        // 61 '='
    (0xffb, 12),      // 62 '>'
    (0x3fc, 10),      // 63 '?'
    (0x1ffa, 13),     // 64 '@'
    (0x21, 6),        // 65 'A'
    (0x5d, 7),        // 66 'B'
    (0x5e, 7),        // 67 'C'
    (0x5f, 7),        // 68 'D'
    (0x60, 7),        // 69 'E'
    (0x61, 7),        // 70 'F'
    (0x62, 7),        // 71 'G'
    (0x63, 7),        // 72 'H'
    (0x64, 7),        // 73 'I'
    (0x65, 7),        // 74 'J'
    (0x66, 7),        // 75 'K'
    (0x67, 7),        // 76 'L'
    (0x68, 7),        // 77 'M'
    (0x69, 7),        // 78 'N'
    (0x6a, 7),        // 79 'O'
    (0x6b, 7),        // 80 'P'
    (0x6c, 7),        // 81 'Q'
    (0x6d, 7),        // 82 'R'
    (0x6e, 7),        // 83 'S'
    (0x6f, 7),        // 84 'T'
    (0x70, 7),        // 85 'U'
    (0x71, 7),        // 86 'V'
    (0x72, 7),        // 87 'W'
    (0xfc, 8),        // 88 'X'
    (0x73, 7),        // 89 'Y'
    (0xfd, 8),        // 90 'Z'
    (0x1ffb, 13),     // 91 '['
    (0x7fff0, 19),    // 92 '\\'
    (0x1ffc, 13),     // 93 ']'
    (0x3ffc, 14),     // 94 '^'
    (0x22, 6),        // 95 '_'
    (0x7ffd, 15),     // 96 '`'
    (0x3, 5),         // 97 'a'
    (0x23, 6),        // 98 'b'
    (0x4, 5),         // 99 'c'
    (0x24, 6),        // 100 'd'
    (0x5, 5),         // 101 'e'
    (0x25, 6),        // 102 'f'
    (0x26, 6),        // 103 'g'
    (0x27, 6),        // 104 'h'
    (0x6, 5),         // 105 'i'
    (0x74, 7),        // 106 'j'
    (0x75, 7),        // 107 'k'
    (0x28, 6),        // 108 'l'
    (0x29, 6),        // 109 'm'
    (0x2a, 6),        // 110 'n'
    (0x7, 5),         // 111 'o'
    (0x2b, 6),        // 112 'p'
    (0x76, 7),        // 113 'q'
    (0x2c, 6),        // 114 'r'
    (0x8, 5),         // 115 's'
    (0x9, 5),         // 116 't'
    (0x2d, 6),        // 117 'u'
    (0x77, 7),        // 118 'v'
    (0x78, 7),        // 119 'w'
    (0x79, 7),        // 120 'x'
    (0x7a, 7),        // 121 'y'
    (0x7b, 7),        // 122 'z'
    (0x7ffe, 15),     // 123 '{'
    (0x7fc, 11),      // 124 '|'
    (0x3ffd, 14),     // 125 '}'
    (0x1ffd, 13),     // 126 '~'
    (0xffffffc, 28),  // 127
    (0xfffe6, 20),    // 128
    (0x3fffd2, 22),   // 129
    (0xfffe7, 20),    // 130
    (0xfffe8, 20),    // 131
    (0x3fffd3, 22),   // 132
    (0x3fffd4, 22),   // 133
    (0x3fffd5, 22),   // 134
    (0x7fffd9, 23),   // 135
    (0x3fffd6, 22),   // 136
    (0x7fffda, 23),   // 137
    (0x7fffdb, 23),   // 138
    (0x7fffdc, 23),   // 139
    (0x7fffdd, 23),   // 140
    (0x7fffde, 23),   // 141
    (0xffffeb, 24),   // 142
    (0x7fffdf, 23),   // 143
    (0xffffec, 24),   // 144
    (0xffffed, 24),   // 145
    (0x3fffd7, 22),   // 146
    (0x7fffe0, 23),   // 147
    (0xffffee, 24),   // 148
    (0x7fffe1, 23),   // 149
    (0x7fffe2, 23),   // 150
    (0x7fffe3, 23),   // 151
    (0x7fffe4, 23),   // 152
    (0x1fffdc, 21),   // 153
    (0x3fffd8, 22),   // 154
    (0x7fffe5, 23),   // 155
    (0x3fffd9, 22),   // 156
    (0x7fffe6, 23),   // 157
    (0x7fffe7, 23),   // 158
    (0xffffef, 24),   // 159
    (0x3fffda, 22),   // 160
    (0x1fffdd, 21),   // 161
    (0xfffe9, 20),    // 162
    (0x3fffdb, 22),   // 163
    (0x3fffdc, 22),   // 164
    (0x7fffe8, 23),   // 165
    (0x7fffe9, 23),   // 166
    (0x1fffde, 21),   // 167
    (0x7fffea, 23),   // 168
    (0x3fffdd, 22),   // 169
    (0x3fffde, 22),   // 170
    (0xfffff0, 24),   // 171
    (0x1fffdf, 21),   // 172
    (0x3fffdf, 22),   // 173
    (0x7fffeb, 23),   // 174
    (0x7fffec, 23),   // 175
    (0x1fffe0, 21),   // 176
    (0x1fffe1, 21),   // 177
    (0x3fffe0, 22),   // 178
    (0x1fffe2, 21),   // 179
    (0x7fffed, 23),   // 180
    (0x3fffe1, 22),   // 181
    (0x7fffee, 23),   // 182
    (0x7fffef, 23),   // 183
    (0xfffea, 20),    // 184
    (0x3fffe2, 22),   // 185
    (0x3fffe3, 22),   // 186
    (0x3fffe4, 22),   // 187
    (0x7ffff0, 23),   // 188
    (0x3fffe5, 22),   // 189
    (0x3fffe6, 22),   // 190
    (0x7ffff1, 23),   // 191
    (0x3ffffe0, 26),  // 192
    (0x3ffffe1, 26),  // 193
    (0xfffeb, 20),    // 194
    (0x7fff1, 19),    // 195
    (0x3fffe7, 22),   // 196
    (0x7ffff2, 23),   // 197
    (0x3fffe8, 22),   // 198
    (0x1ffffec, 25),  // 199
    (0x3ffffe2, 26),  // 200
    (0x3ffffe3, 26),  // 201
    (0x3ffffe4, 26),  // 202
    (0x7ffffde, 27),  // 203
    (0x7ffffdf, 27),  // 204
    (0x3ffffe5, 26),  // 205
    (0xfffff1, 24),   // 206
    (0x1ffffed, 25),  // 207
    (0x7fff2, 19),    // 208
    (0x1fffe3, 21),   // 209
    (0x3ffffe6, 26),  // 210
    (0x7ffffe0, 27),  // 211
    (0x7ffffe1, 27),  // 212
    (0x3ffffe7, 26),  // 213
    (0x7ffffe2, 27),  // 214
    (0xfffff2, 24),   // 215
    (0x1fffe4, 21),   // 216
    (0x1fffe5, 21),   // 217
    (0x3ffffe8, 26),  // 218
    (0x3ffffe9, 26),  // 219
    (0xffffffd, 28),  // 220
    (0x7ffffe3, 27),  // 221
    (0x7ffffe4, 27),  // 222
    (0x7ffffe5, 27),  // 223
    (0xfffec, 20),    // 224
    (0xfffff3, 24),   // 225
    (0xfffed, 20),    // 226
    (0x1fffe6, 21),   // 227
    (0x3fffe9, 22),   // 228
    (0x1fffe7, 21),   // 229
    (0x1fffe8, 21),   // 230
    (0x7ffff3, 23),   // 231
    (0x3fffea, 22),   // 232
    (0x3fffeb, 22),   // 233
    (0x1ffffee, 25),  // 234
    (0x1ffffef, 25),  // 235
    (0xfffff4, 24),   // 236
    (0xfffff5, 24),   // 237
    (0x3ffffea, 26),  // 238
    (0x7ffff4, 23),   // 239
    (0x3ffffeb, 26),  // 240
    (0x7ffffe6, 27),  // 241
    (0x3ffffec, 26),  // 242
    (0x3ffffed, 26),  // 243
    (0x7ffffe7, 27),  // 244
    (0x7ffffe8, 27),  // 245
    (0x7ffffe9, 27),  // 246
    (0x7ffffea, 27),  // 247
    (0x7ffffeb, 27),  // 248
    (0xffffffe, 28),  // 249
    (0x7ffffec, 27),  // 250
    (0x7ffffed, 27),  // 251
    (0x7ffffee, 27),  // 252
    (0x7ffffef, 27),  // 253
    (0x7fffff0, 27),  // 254
    (0x3ffffee, 26),  // 255
    (0x3fffffff, 30), // 256
];

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        s.chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    fn fields(list: &[(&str, &str)]) -> Fields {
        list.iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    /// Decodes each block in turn with one decoder, checking the fields, the table (newest
    /// first) and its size after each.
    /// (block in hex, fields, table newest first, table size).
    type Step<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        usize,
    );

    fn run(max: usize, steps: &[Step]) {
        let mut d = Decoder::new(max);
        for (i, (block, want, table, size)) in steps.iter().enumerate() {
            let got = d.decode(&unhex(block)).unwrap();
            assert_eq!(got, fields(want), "block {i}");
            assert_eq!(d.table(), fields(table), "table after block {i}");
            assert_eq!(d.size(), *size, "size after block {i}");
        }
    }

    const REQ1: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ];
    const REQ2: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
        ("cache-control", "no-cache"),
    ];
    const REQ3: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ];
    const T1: &[(&str, &str)] = &[(":authority", "www.example.com")];
    const T2: &[(&str, &str)] = &[
        ("cache-control", "no-cache"),
        (":authority", "www.example.com"),
    ];
    const T3: &[(&str, &str)] = &[
        ("custom-key", "custom-value"),
        ("cache-control", "no-cache"),
        (":authority", "www.example.com"),
    ];

    const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
    const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
    const LOCATION: &str = "https://www.example.com";
    const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
    const RESP1: &[(&str, &str)] = &[
        (":status", "302"),
        ("cache-control", "private"),
        ("date", DATE1),
        ("location", LOCATION),
    ];
    const RESP2: &[(&str, &str)] = &[
        (":status", "307"),
        ("cache-control", "private"),
        ("date", DATE1),
        ("location", LOCATION),
    ];
    const RESP3: &[(&str, &str)] = &[
        (":status", "200"),
        ("cache-control", "private"),
        ("date", DATE2),
        ("location", LOCATION),
        ("content-encoding", "gzip"),
        ("set-cookie", COOKIE),
    ];
    const RT1: &[(&str, &str)] = &[
        ("location", LOCATION),
        ("date", DATE1),
        ("cache-control", "private"),
        (":status", "302"),
    ];
    const RT2: &[(&str, &str)] = &[
        (":status", "307"),
        ("location", LOCATION),
        ("date", DATE1),
        ("cache-control", "private"),
    ];
    const RT3: &[(&str, &str)] = &[
        ("set-cookie", COOKIE),
        ("content-encoding", "gzip"),
        ("date", DATE2),
    ];

    #[test]
    fn c1_integers() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix; C.1.3: 42 at an
        // octet boundary (8-bit prefix).
        let mut at = 0;
        assert_eq!(integer(&[0b000_01010], &mut at, 5), Ok(10));
        assert_eq!(at, 1);
        let mut at = 0;
        assert_eq!(
            integer(&[0b000_11111, 0b1001_1010, 0b0000_1010], &mut at, 5),
            Ok(1337)
        );
        assert_eq!(at, 3);
        let mut at = 0;
        assert_eq!(integer(&[42], &mut at, 8), Ok(42));
        // The prefix bits above N are not part of the value.
        let mut at = 0;
        assert_eq!(integer(&[0b111_01010], &mut at, 5), Ok(10));
    }

    #[test]
    fn integer_limits() {
        // u32::MAX with a 7-bit prefix: 127 + 0xffffff80 in five continuation octets.
        let max = [0x7f, 0x80, 0xff, 0xff, 0xff, 0x0f];
        let mut at = 0;
        assert_eq!(integer(&max, &mut at, 7), Ok(u32::MAX as usize));
        let over = [0x7f, 0x81, 0xff, 0xff, 0xff, 0x0f];
        assert_eq!(integer(&over, &mut 0, 7), Err(HpackError::IntegerOverflow));
        // Zero-valued continuation octets past what u32 needs.
        let long = [0x7f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        assert_eq!(integer(&long, &mut 0, 7), Err(HpackError::IntegerOverflow));
        // Five are fine.
        let five = [0x7f, 0x80, 0x80, 0x80, 0x80, 0x00];
        assert_eq!(integer(&five, &mut 0, 7), Ok(127));
        assert_eq!(integer(&[0x7f], &mut 0, 7), Err(HpackError::Truncated));
        assert_eq!(
            integer(&[0x7f, 0x80], &mut 0, 7),
            Err(HpackError::Truncated)
        );
        assert_eq!(integer(&[], &mut 0, 7), Err(HpackError::Truncated));
        // 2^N - 1 itself needs one continuation octet (zero).
        assert_eq!(integer(&[0x1f, 0x00], &mut 0, 5), Ok(31));
    }

    #[test]
    fn c2_field_representations() {
        // C.2.1 literal with indexing
        run(
            4096,
            &[(
                "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
                &[("custom-key", "custom-header")],
                &[("custom-key", "custom-header")],
                55,
            )],
        );
        // C.2.2 literal without indexing
        run(
            4096,
            &[(
                "040c 2f73 616d 706c 652f 7061 7468",
                &[(":path", "/sample/path")],
                &[],
                0,
            )],
        );
        // C.2.3 literal never indexed
        let mut d = Decoder::new(4096);
        let f = d
            .decode_fields(&unhex("1008 7061 7373 776f 7264 0673 6563 7265 74"))
            .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].name.as_slice(), f[0].value.as_slice()),
            (&b"password"[..], &b"secret"[..])
        );
        assert_eq!(f[0].representation, Representation::NeverIndexed);
        assert_eq!(f[0].index, None);
        assert!(d.table().is_empty());
        // C.2.4 indexed
        run(4096, &[("82", &[(":method", "GET")], &[], 0)]);
    }

    #[test]
    fn c3_requests_without_huffman() {
        run(
            4096,
            &[
                (
                    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                    REQ1,
                    T1,
                    57,
                ),
                ("8286 84be 5808 6e6f 2d63 6163 6865", REQ2, T2, 110),
                (
                    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
                    REQ3,
                    T3,
                    164,
                ),
            ],
        );
    }

    #[test]
    fn c4_requests_with_huffman() {
        run(
            4096,
            &[
                ("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", REQ1, T1, 57),
                ("8286 84be 5886 a8eb 1064 9cbf", REQ2, T2, 110),
                (
                    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
                    REQ3,
                    T3,
                    164,
                ),
            ],
        );
        let mut d = Decoder::new(4096);
        let f = d
            .decode_fields(&unhex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))
            .unwrap();
        assert_eq!(f[3].representation, Representation::Incremental);
        assert_eq!(f[3].index, Some(1));
        assert!(f[3].huffman_value && !f[3].huffman_name);
    }

    #[test]
    fn c5_responses_without_huffman() {
        // SETTINGS_HEADER_TABLE_SIZE 256: entries are evicted.
        run(
            256,
            &[
                (
                    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
                     2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
                     6c65 2e63 6f6d",
                    RESP1,
                    RT1,
                    222,
                ),
                ("4803 3330 37c1 c0bf", RESP2, RT2, 222),
                (
                    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d \
                     54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 \
                     5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e \
                     3d31",
                    RESP3,
                    RT3,
                    215,
                ),
            ],
        );
    }

    #[test]
    fn c6_responses_with_huffman() {
        run(
            256,
            &[
                (
                    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
                     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                    RESP1,
                    RT1,
                    222,
                ),
                ("4883 640e ffc1 c0bf", RESP2, RT2, 222),
                (
                    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
                     77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
                     9587 3160 65c0 03ed 4ee5 b106 3d50 07",
                    RESP3,
                    RT3,
                    215,
                ),
            ],
        );
    }

    #[test]
    fn huffman_round_trip_and_c4_strings() {
        assert_eq!(
            huffman_encode(b"www.example.com"),
            unhex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")
        );
        assert_eq!(huffman_encode(b"no-cache"), unhex("a8eb 1064 9cbf"));
        assert_eq!(huffman_encode(b"custom-key"), unhex("25a8 49e9 5ba9 7d7f"));
        assert_eq!(
            huffman_encode(b"custom-value"),
            unhex("25a8 49e9 5bb8 e8b4 bf")
        );
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(huffman_decode(&huffman_encode(&all)).unwrap(), all);
        for b in 0..=255u8 {
            for n in 1..4 {
                let v = vec![b; n];
                assert_eq!(huffman_decode(&huffman_encode(&v)).unwrap(), v, "{b} x{n}");
            }
        }
        assert_eq!(huffman_decode(&[]).unwrap(), b"");
    }

    #[test]
    fn huffman_errors() {
        // EOS (30 ones) inside the string.
        assert_eq!(
            huffman_decode(&[0xff, 0xff, 0xff, 0xff]),
            Err(HpackError::HuffmanEos)
        );
        // 'a' (00011) then EOS.
        assert_eq!(
            huffman_decode(&[0x1f, 0xff, 0xff, 0xff, 0xff]),
            Err(HpackError::HuffmanEos)
        );
        // A whole octet of ones as padding: more than 7 bits.
        assert_eq!(huffman_decode(&[0xff]), Err(HpackError::HuffmanPadding));
        assert_eq!(
            huffman_decode(&[0x1f, 0xff]),
            Err(HpackError::HuffmanPadding)
        );
        // 'a' then padding 000: not ones.
        assert_eq!(huffman_decode(&[0x18]), Err(HpackError::HuffmanPadding));
        // '0' (00000) with ones: fine; with 011: not.
        assert_eq!(huffman_decode(&[0x07]).unwrap(), b"0");
        assert_eq!(huffman_decode(&[0x03]), Err(HpackError::HuffmanPadding));
        // A 13-bit code cut after 8 bits: 8 bits of padding.
        let long = huffman_encode(b"\x00"); // 13 bits: 1111111111000
        assert_eq!(huffman_decode(&long[..1]), Err(HpackError::HuffmanPadding));
        // In a block: Huffman name that is bad padding.
        let mut d = Decoder::new(4096);
        assert_eq!(
            d.decode(&[0x00, 0x81, 0xff, 0x01, b'a']),
            Err(HpackError::HuffmanPadding)
        );
    }

    #[test]
    fn huffman_tree_is_complete() {
        // Kraft: every path ends in a symbol, so `Missing` is never reached.
        let total: f64 = HUFFMAN_CODES
            .iter()
            .map(|(_, l)| 0.5f64.powi(i32::from(*l)))
            .sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!(
            tree()
                .iter()
                .all(|n| n.iter().all(|c| !matches!(c, Child::Missing)))
        );
        assert_eq!(tree().len(), 256); // a full binary tree with 257 leaves
    }

    #[test]
    fn indexes() {
        let mut d = Decoder::new(4096);
        assert_eq!(d.decode(&[0x80]), Err(HpackError::IndexZero));
        assert_eq!(
            d.decode(&[0xbd]).unwrap(),
            fields(&[("www-authenticate", "")])
        ); // 61
        assert_eq!(d.decode(&[0xbe]), Err(HpackError::IndexOutOfRange(62)));
        // A literal whose name index is past the table.
        assert_eq!(
            d.decode(&[0x7f, 0x00, 0x00]),
            Err(HpackError::IndexOutOfRange(63))
        );
        assert_eq!(
            d.decode(&[0x0f, 0x2f, 0x00]),
            Err(HpackError::IndexOutOfRange(62))
        );
        // Name by index from the dynamic table, value literal.
        let mut d = Decoder::new(4096);
        d.decode(&unhex(
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        ))
        .unwrap();
        let f = d.decode_fields(&[0x0f, 0x2f, 0x01, b'x']).unwrap();
        assert_eq!(
            (f[0].name.as_slice(), f[0].value.as_slice()),
            (&b"custom-key"[..], &b"x"[..])
        );
        assert_eq!(f[0].index, Some(62));
        assert_eq!(f[0].representation, Representation::WithoutIndexing);
        assert_eq!(d.table().len(), 1);
    }

    #[test]
    fn truncated() {
        let mut d = Decoder::new(4096);
        assert_eq!(d.decode(&[0x40]), Err(HpackError::Truncated));
        assert_eq!(
            d.decode(&[0x40, 0x03, b'a', b'b']),
            Err(HpackError::Truncated)
        );
        assert_eq!(d.decode(&[0x40, 0x01, b'a']), Err(HpackError::Truncated));
        assert_eq!(d.decode(&[0x04, 0x7f]), Err(HpackError::Truncated));
        // A length past the block that overflows nothing.
        assert_eq!(
            d.decode(&[0x04, 0x7f, 0xff, 0xff, 0xff, 0x0f]),
            Err(HpackError::Truncated)
        );
    }

    #[test]
    fn size_updates() {
        let mut d = Decoder::new(4096);
        d.decode(&unhex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"))
            .unwrap();
        assert_eq!(d.size(), 57);
        // To 0 and back: everything evicted; two updates at the start are allowed.
        assert_eq!(
            d.decode(&[0x20, 0x3f, 0xe1, 0x1f, 0x82]).unwrap(),
            fields(&[(":method", "GET")])
        );
        assert!(d.table().is_empty());
        assert_eq!(d.max_size(), 4096);
        // Above the limit.
        assert_eq!(
            d.decode(&[0x3f, 0xe2, 0x1f]),
            Err(HpackError::SizeUpdateTooLarge {
                size: 4097,
                limit: 4096
            })
        );
        // After a field.
        assert_eq!(
            d.decode(&[0x82, 0x20]),
            Err(HpackError::SizeUpdateNotAtStart)
        );
        // A smaller table evicts the oldest entries first.
        let mut d = Decoder::new(4096);
        d.decode(&unhex("828684410f7777772e6578616d706c652e636f6d"))
            .unwrap();
        d.decode(&unhex("828684be58086e6f2d6361636865")).unwrap();
        assert_eq!(d.size(), 110);
        d.decode(&[0x3f, 0x1f]).unwrap(); // 62: room for cache-control (53) only
        assert_eq!(d.max_size(), 62);
        assert_eq!(d.table(), fields(&[("cache-control", "no-cache")]));
        // An entry larger than the table empties it and is not added.
        let mut block = vec![0x40, 0x01, b'k', 0x1e];
        block.extend_from_slice(&[b'v'; 30]); // 1 + 30 + 32 = 63 > 62
        assert_eq!(d.decode(&block).unwrap().len(), 1);
        assert!(d.table().is_empty());
        assert_eq!(d.size(), 0);
        // Exactly fitting: kept.
        block[3] = 0x1d;
        block.pop();
        d.decode(&block).unwrap();
        assert_eq!(d.size(), 62);
    }

    #[test]
    fn table_eviction_order() {
        let mut d = Decoder::new(100);
        // Each entry: 1 + 1 + 32 = 34; two fit in 100, the third evicts the first.
        for (i, c) in [b'a', b'b', b'c'].iter().enumerate() {
            d.decode(&[0x40, 0x01, *c, 0x01, b'0' + i as u8]).unwrap();
        }
        assert_eq!(d.table(), fields(&[("c", "2"), ("b", "1")]));
        assert_eq!(
            d.decode(&[0xbe, 0xbf]).unwrap(),
            fields(&[("c", "2"), ("b", "1")])
        );
        assert_eq!(d.decode(&[0xc0]), Err(HpackError::IndexOutOfRange(64)));
    }

    #[test]
    fn static_table_spot_checks() {
        assert_eq!(STATIC_TABLE.len(), 61);
        assert_eq!(STATIC_TABLE[0], (&b":authority"[..], &b""[..]));
        assert_eq!(
            STATIC_TABLE[15],
            (&b"accept-encoding"[..], &b"gzip, deflate"[..])
        );
        assert_eq!(STATIC_TABLE[60], (&b"www-authenticate"[..], &b""[..]));
        assert_eq!(HUFFMAN_CODES[256], (0x3fff_ffff, 30));
        assert_eq!(HUFFMAN_CODES[usize::from(b'a')], (0x3, 5));
    }
}
