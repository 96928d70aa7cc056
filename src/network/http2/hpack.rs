//! HPACK (RFC 7541) as Envoy's decoder reads a connection's request header blocks: every
//! block is decoded in order, so that the dynamic table here is the one Envoy holds, and a
//! block tracejoin changes is written back with representations that keep Envoy decoding
//! exactly what the client sent, trace headers aside.
//!
//! What each representation becomes when a block is written back:
//! - a field that stays: its bytes unchanged (while Envoy's table is the client's; see
//!   below for when it is not);
//! - a trace header tracejoin adds or replaces: a literal without indexing, name and value
//!   raw, so Envoy's table does not change;
//! - a trace header tracejoin removes (or replaces): dropped. Dropping an indexed field or
//!   a literal without (or never) indexing leaves the table as it was. Dropping a literal
//!   *with incremental indexing* cannot: the client's table gains the entry, and any
//!   representation that gives Envoy's table the same entry also puts the field in Envoy's
//!   header list, which is what removing it must prevent. So the field is dropped and the
//!   filter keeps a second table, Envoy's, beside the client's until they are equal again.
//!   While they differ, a field that refers to an entry Envoy's table does not hold at that
//!   index is written with an index where Envoy's table holds it, or as a literal without
//!   indexing (the value's bytes as the client encoded them, Huffman or not), and literals
//!   with incremental indexing stay so (both tables gain the same entry).
//! - a dynamic table size update: unchanged, applied to both tables.
//!
//! Memory: a table holds at most its maximum size (RFC 7541 section 4.1 counts 32 bytes per
//! entry beyond name and value): 4,096 bytes unless the client's size updates set another,
//! which the filter follows up to [`MAX_TABLE_SIZE`]; two tables while they differ.

use std::collections::VecDeque;
use std::ops::Range;

use super::huffman;

/// The largest table size the mirror follows (a client's size update above it leaves the
/// connection): Envoy announces 4,096 unless `hpack_table_size` says otherwise.
pub const MAX_TABLE_SIZE: usize = 65_536;
/// The table size before any size update (RFC 9113 section 6.5.2).
pub const INITIAL_TABLE_SIZE: usize = 4_096;

/// Why a header block cannot be followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpackError {
    /// The block ends inside a representation.
    Truncated,
    /// An integer over 2^32 - 1, or of more than 10 extension bytes.
    Integer,
    /// Index 0, or past the table's end.
    Index,
    Huffman,
    /// A size update after a field (RFC 7541 section 4.2 allows them only first).
    SizeUpdate,
    /// A size update over [`MAX_TABLE_SIZE`].
    TableTooLarge,
}

/// RFC 7541 section 4.1: an entry's size.
fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// Name then value, in one allocation.
    bytes: Box<[u8]>,
    name_len: usize,
}

impl Entry {
    fn new(name: &[u8], value: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(name.len() + value.len());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        Entry {
            bytes: bytes.into_boxed_slice(),
            name_len: name.len(),
        }
    }

    fn name(&self) -> &[u8] {
        self.bytes.get(..self.name_len).unwrap_or_default()
    }

    fn value(&self) -> &[u8] {
        self.bytes.get(self.name_len..).unwrap_or_default()
    }

    fn size(&self) -> usize {
        self.bytes.len() + 32
    }
}

/// What a table change was, to take it back.
#[derive(Debug)]
enum Undo {
    Inserted,
    Evicted(Entry),
    Max(usize),
}

/// The static table and one dynamic table (newest entry first, index 62).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    entries: VecDeque<Entry>,
    size: usize,
    max: usize,
}

impl Table {
    pub fn new(max: usize) -> Self {
        Table {
            entries: VecDeque::new(),
            size: 0,
            max,
        }
    }

    /// Entry `index` (1-61 static, then dynamic).
    pub fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        if index == 0 {
            return None;
        }
        if let Some((name, value)) = STATIC.get(index - 1) {
            return Some((name, value));
        }
        let entry = self.entries.get(index - 1 - STATIC.len())?;
        Some((entry.name(), entry.value()))
    }

    /// The dynamic table's size (RFC 7541 section 4.1) and maximum.
    pub fn size(&self) -> (usize, usize) {
        (self.size, self.max)
    }

    /// The dynamic entries, newest first.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().map(|e| (e.name(), e.value()))
    }

    fn insert(&mut self, name: &[u8], value: &[u8], mut undo: Option<&mut Vec<Undo>>) {
        let size = entry_size(name, value);
        // An entry larger than the table empties it and is not added (section 4.4).
        self.evict_to(self.max.saturating_sub(size), undo.as_deref_mut());
        if size <= self.max {
            self.entries.push_front(Entry::new(name, value));
            self.size += size;
            if let Some(log) = undo {
                log.push(Undo::Inserted);
            }
        }
    }

    fn set_max(&mut self, max: usize, mut undo: Option<&mut Vec<Undo>>) {
        if let Some(log) = undo.as_deref_mut() {
            log.push(Undo::Max(self.max));
        }
        self.max = max;
        self.evict_to(max, undo);
    }

    fn evict_to(&mut self, limit: usize, mut undo: Option<&mut Vec<Undo>>) {
        while self.size > limit {
            let Some(entry) = self.entries.pop_back() else {
                break;
            };
            self.size -= entry.size();
            if let Some(log) = undo.as_deref_mut() {
                log.push(Undo::Evicted(entry));
            }
        }
    }

    /// Takes back the changes `log` recorded, last first.
    fn undo(&mut self, log: &mut Vec<Undo>) {
        while let Some(change) = log.pop() {
            match change {
                Undo::Inserted => {
                    if let Some(entry) = self.entries.pop_front() {
                        self.size -= entry.size();
                    }
                }
                Undo::Evicted(entry) => {
                    self.size += entry.size();
                    self.entries.push_back(entry);
                }
                Undo::Max(max) => self.max = max,
            }
        }
    }

    /// The first index holding `name: value`, and the first holding `name`.
    fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let mut by_name = None;
        let all = STATIC
            .iter()
            .map(|(n, v)| (*n, *v))
            .chain(self.entries.iter().map(|e| (e.name(), e.value())));
        for (i, (n, v)) in all.enumerate() {
            if n == name {
                if v == value {
                    return (Some(i + 1), by_name.or(Some(i + 1)));
                }
                by_name = by_name.or(Some(i + 1));
            }
        }
        (None, by_name)
    }
}

/// How a field was represented (RFC 7541 section 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Indexed,
    Incremental,
    WithoutIndexing,
    NeverIndexed,
    SizeUpdate,
}

/// One representation of a decoded block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Representation {
    pub kind: Kind,
    /// Its bytes in the block.
    pub bytes: Range<usize>,
    /// The table index it names (indexed fields, literals with an indexed name; 0 for a
    /// literal name), or a size update's new maximum.
    pub index: usize,
    /// A literal's value string as encoded (length prefix included), in the block.
    pub value_bytes: Range<usize>,
    /// The decoded name and value, in [`Block::arena`].
    name: Range<usize>,
    value: Range<usize>,
}

/// A decoded header block.
#[derive(Debug, Default)]
pub struct Block {
    arena: Vec<u8>,
    pub representations: Vec<Representation>,
    /// Its header list passed the decoder's cap ([`Decoder::with_cap`]): Envoy refuses the
    /// request, and the fields past the cap were not kept (their table changes were
    /// applied), so the block cannot be written back.
    pub over: bool,
}

impl Block {
    /// A representation's field (empty for a size update).
    pub fn field(&self, r: &Representation) -> (&[u8], &[u8]) {
        (
            self.arena.get(r.name.clone()).unwrap_or_default(),
            self.arena.get(r.value.clone()).unwrap_or_default(),
        )
    }

    /// The header list, in order.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.representations
            .iter()
            .filter(|r| r.kind != Kind::SizeUpdate)
            .map(|r| self.field(r))
    }
}

/// What happens to one field when a block is written back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit<'a> {
    Keep,
    Drop,
    /// Dropped, and `name: value` written in its place.
    Replace(&'a [u8], &'a [u8]),
}

/// The client's table, and Envoy's where they differ.
#[derive(Debug)]
pub struct Decoder {
    client: Table,
    envoy: Option<Table>,
    /// The client table's changes in the last block decoded.
    changes: Vec<Undo>,
    /// A header list larger than this (names and values, as Envoy's `max_request_headers_kb`
    /// counts) is not kept: a block of one-byte references to a 4 KiB entry would otherwise
    /// decode to thousands of times its size.
    cap: usize,
}

/// Fields kept of one block at most (Envoy's default limit is 100): the representations of
/// a block are bounded by this, not by its length.
const MAX_FIELDS: usize = 2_048;

impl Default for Decoder {
    fn default() -> Self {
        Decoder::with_cap(64 * 1024)
    }
}

impl Decoder {
    /// A decoder that keeps header lists of at most `cap` bytes.
    pub fn with_cap(cap: usize) -> Self {
        Decoder {
            client: Table::new(INITIAL_TABLE_SIZE),
            envoy: None,
            changes: Vec::new(),
            cap,
        }
    }

    /// The table Envoy holds.
    pub fn envoy_table(&self) -> &Table {
        self.envoy.as_ref().unwrap_or(&self.client)
    }

    /// Whether Envoy's table differs from the client's.
    pub fn diverged(&self) -> bool {
        self.envoy.is_some()
    }

    /// The table the client holds.
    pub fn client_table(&self) -> &Table {
        &self.client
    }

    /// Decodes the next block of the connection (every block, in order), updating the
    /// client's table. After an error the tables are not to be trusted.
    pub fn decode(&mut self, block: &[u8]) -> Result<Block, HpackError> {
        self.changes.clear();
        let mut out = Block {
            arena: Vec::with_capacity(block.len() * 2),
            representations: Vec::with_capacity(16),
            over: false,
        };
        // Names and values so far, as Envoy counts a header list.
        let mut list = 0usize;
        let mut fields = 0usize;
        let mut at = 0usize;
        while let Some(&first) = block.get(at) {
            let start = at;
            let (kind, prefix) = match first {
                b if b & 0x80 != 0 => (Kind::Indexed, 7),
                b if b & 0x40 != 0 => (Kind::Incremental, 6),
                b if b & 0x20 != 0 => (Kind::SizeUpdate, 5),
                b if b & 0x10 != 0 => (Kind::NeverIndexed, 4),
                _ => (Kind::WithoutIndexing, 4),
            };
            let index = integer(block, &mut at, prefix)?;
            let name_start = out.arena.len();
            let mut name_end = name_start;
            let mut value_bytes = at..at;
            match kind {
                Kind::SizeUpdate => {
                    if fields > 0 {
                        return Err(HpackError::SizeUpdate);
                    }
                    if index > MAX_TABLE_SIZE {
                        return Err(HpackError::TableTooLarge);
                    }
                    self.client.set_max(index, Some(&mut self.changes));
                }
                Kind::Indexed => {
                    let (name, value) = self.client.get(index).ok_or(HpackError::Index)?;
                    fields += 1;
                    list = list.saturating_add(name.len() + value.len());
                    out.over |= list > self.cap || fields > MAX_FIELDS;
                    if !out.over {
                        out.arena.extend_from_slice(name);
                        name_end = out.arena.len();
                        out.arena.extend_from_slice(value);
                    }
                }
                Kind::Incremental | Kind::WithoutIndexing | Kind::NeverIndexed => {
                    if index == 0 {
                        string(block, &mut at, &mut out.arena)?;
                    } else {
                        let (name, _) = self.client.get(index).ok_or(HpackError::Index)?;
                        out.arena.extend_from_slice(name);
                    }
                    name_end = out.arena.len();
                    let value_start = at;
                    string(block, &mut at, &mut out.arena)?;
                    value_bytes = value_start..at;
                    if kind == Kind::Incremental {
                        let name = out.arena.get(name_start..name_end).unwrap_or_default();
                        let value = out.arena.get(name_end..).unwrap_or_default();
                        self.client.insert(name, value, Some(&mut self.changes));
                    }
                    fields += 1;
                    list = list.saturating_add(out.arena.len() - name_start);
                    out.over |= list > self.cap || fields > MAX_FIELDS;
                    if out.over {
                        // Decoded only for the table (a literal is no longer than the block).
                        out.arena.truncate(name_start);
                        name_end = name_start;
                    }
                }
            }
            if out.over && kind != Kind::SizeUpdate {
                continue;
            }
            out.representations.push(Representation {
                kind,
                bytes: start..at,
                index,
                value_bytes,
                name: name_start..name_end,
                value: name_end..out.arena.len(),
            });
        }
        Ok(out)
    }

    /// Writes `block` (as [`Decoder::decode`] read it, from `bytes`, the last block
    /// decoded) back with `edits` (one per representation; size updates are kept) and
    /// `added` at its end, updating Envoy's table. `None`: nothing changes.
    pub fn encode(
        &mut self,
        bytes: &[u8],
        block: &Block,
        edits: &[Edit<'_>],
        added: &[(&[u8], &[u8])],
    ) -> Option<Vec<u8>> {
        if block.over {
            return None;
        }
        let edit = |i: usize| edits.get(i).copied().unwrap_or(Edit::Keep);
        let changes = block
            .representations
            .iter()
            .enumerate()
            .any(|(i, r)| r.kind != Kind::SizeUpdate && edit(i) != Edit::Keep);
        if self.envoy.is_none() && !changes && added.is_empty() {
            return None;
        }
        // Dropping a literal with incremental indexing: Envoy's table no longer gains what
        // the client's does, from this block on (it is what the client's was before it).
        let diverges = block
            .representations
            .iter()
            .enumerate()
            .any(|(i, r)| r.kind == Kind::Incremental && edit(i) != Edit::Keep);
        if self.envoy.is_none() && diverges {
            let mut before = self.client.clone();
            before.undo(&mut self.changes);
            self.envoy = Some(before);
        }
        let mut out = Vec::with_capacity(bytes.len() + 128);
        for (i, r) in block.representations.iter().enumerate() {
            let original = bytes.get(r.bytes.clone()).unwrap_or_default();
            let (name, value) = block.field(r);
            let edit = if r.kind == Kind::SizeUpdate {
                Edit::Keep
            } else {
                edit(i)
            };
            match (edit, self.envoy.as_mut()) {
                (Edit::Drop, _) => {}
                (Edit::Replace(name, value), _) => literal_without_indexing(&mut out, name, value),
                (Edit::Keep, None) => out.extend_from_slice(original),
                (Edit::Keep, Some(envoy)) => {
                    let value_bytes = bytes.get(r.value_bytes.clone()).unwrap_or_default();
                    keep_for(envoy, &mut out, r, original, name, value, value_bytes);
                }
            }
        }
        for (name, value) in added {
            literal_without_indexing(&mut out, name, value);
        }
        if self.envoy.as_ref() == Some(&self.client) {
            self.envoy = None;
        }
        Some(out)
    }
}

/// A field that stays, written so that `envoy` (Envoy's table, which differs from the
/// client's) decodes `name: value`, and updated as Envoy's decoder updates it.
fn keep_for(
    envoy: &mut Table,
    out: &mut Vec<u8>,
    r: &Representation,
    original: &[u8],
    name: &[u8],
    value: &[u8],
    value_bytes: &[u8],
) {
    match r.kind {
        Kind::SizeUpdate => {
            out.extend_from_slice(original);
            envoy.set_max(r.index, None);
        }
        Kind::Indexed => {
            if envoy.get(r.index) == Some((name, value)) {
                out.extend_from_slice(original);
                return;
            }
            match envoy.find(name, value) {
                (Some(index), _) => integer_to(out, 0x80, 7, index),
                (None, Some(index)) => {
                    integer_to(out, 0x00, 4, index);
                    string_raw(out, value);
                }
                (None, None) => literal_without_indexing(out, name, value),
            }
        }
        Kind::Incremental | Kind::WithoutIndexing | Kind::NeverIndexed => {
            let named = r.index == 0 || envoy.get(r.index).is_some_and(|(n, _)| n == name);
            if named {
                out.extend_from_slice(original);
            } else {
                let (flags, prefix) = match r.kind {
                    Kind::Incremental => (0x40, 6),
                    Kind::NeverIndexed => (0x10, 4),
                    _ => (0x00, 4),
                };
                match envoy.find(name, value).1 {
                    Some(index) => integer_to(out, flags, prefix, index),
                    None => {
                        integer_to(out, flags, prefix, 0);
                        string_raw(out, name);
                    }
                }
                out.extend_from_slice(value_bytes);
            }
            if r.kind == Kind::Incremental {
                envoy.insert(name, value, None);
            }
        }
    }
}

/// A literal field without indexing, name and value raw (RFC 7541 section 6.2.2).
fn literal_without_indexing(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    string_raw(out, name);
    string_raw(out, value);
}

fn string_raw(out: &mut Vec<u8>, bytes: &[u8]) {
    integer_to(out, 0x00, 7, bytes.len());
    out.extend_from_slice(bytes);
}

/// An integer with an N-bit prefix (RFC 7541 section 5.1), `flags` in the first byte's
/// other bits.
pub(crate) fn integer_to(out: &mut Vec<u8>, flags: u8, prefix: u32, value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Reads an integer with an N-bit prefix at `at`.
fn integer(block: &[u8], at: &mut usize, prefix: u32) -> Result<usize, HpackError> {
    let max = (1usize << prefix) - 1;
    let first = usize::from(*block.get(*at).ok_or(HpackError::Truncated)?) & max;
    *at += 1;
    if first < max {
        return Ok(first);
    }
    // Extension bytes of zero may pad an integer (Envoy's decoders take up to 10 bytes);
    // its value must fit 32 bits.
    let mut value = max as u64;
    for shift in (0..70).step_by(7) {
        let byte = *block.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        let bits = u64::from(byte & 0x7f);
        if bits != 0 {
            value = bits
                .checked_shl(shift)
                .filter(|v| v >> shift == bits)
                .and_then(|v| value.checked_add(v))
                .filter(|v| *v <= u64::from(u32::MAX))
                .ok_or(HpackError::Integer)?;
        }
        if byte & 0x80 == 0 {
            return usize::try_from(value).map_err(|_| HpackError::Integer);
        }
    }
    Err(HpackError::Integer)
}

/// Reads a string literal at `at` (raw or Huffman) onto `out`.
fn string(block: &[u8], at: &mut usize, out: &mut Vec<u8>) -> Result<(), HpackError> {
    let huffman = block.get(*at).is_some_and(|b| b & 0x80 != 0);
    let len = integer(block, at, 7)?;
    let end = at.checked_add(len).ok_or(HpackError::Truncated)?;
    let bytes = block.get(*at..end).ok_or(HpackError::Truncated)?;
    *at = end;
    if huffman {
        huffman::decode(bytes, out).map_err(|_| HpackError::Huffman)
    } else {
        out.extend_from_slice(bytes);
        Ok(())
    }
}

/// RFC 7541 Appendix A: the static table, index 1 first.
const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

#[cfg(test)]
mod tests;
