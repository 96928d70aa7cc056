//! A TLS ClientHello at a connection's start, read for its server name and ALPN list
//! (RFC 8446 sections 4.1.2, 4.2 and 5.1; RFC 6066 section 3; RFC 7301 section 3.1).
//!
//! The reader only looks: it never changes a byte, and what it does not understand it
//! reports as [`Scan::Bad`]. The ClientHello may be cut into several handshake records
//! (and the records over several reads): the records are reassembled first, from the
//! buffer's start, as far as the ClientHello goes.

/// TLS record content type `handshake`, a ClientHello connection's first byte.
pub const HANDSHAKE_RECORD: u8 = 22;
/// Handshake message type `client_hello`.
const CLIENT_HELLO: u8 = 1;
/// A record's header: type, legacy version, length.
const RECORD_HEADER: usize = 5;
/// The longest record plaintext (2^14): longer is a `record_overflow`.
const MAX_RECORD: usize = 16 * 1024;
/// Extension types read.
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
/// `encrypted_client_hello` (RFC 9849): the server name read is then the outer one.
const EXT_ECH: u16 = 0xfe0d;
/// `server_name` entry type `host_name`, the only one defined.
const HOST_NAME: u8 = 0;
/// A ClientHello cut into more records than this is not followed: each record end is a
/// point where the scan starts again, so their number bounds the work per connection.
const MAX_RECORDS: usize = 64;
/// More extensions than this is not a ClientHello this reader follows.
const MAX_EXTENSIONS: usize = 64;
/// The ALPN names kept (for logs and filter state), and the bytes of their list.
const MAX_ALPN_TEXT: usize = 128;

/// What a ClientHello says about where the connection goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The `host_name` of `server_name`, lowercased, when it is a DNS name (RFC 6066 allows
    /// no IP literal and no trailing dot); `None` when absent or not a name.
    pub server_name: Option<String>,
    /// Whether a `server_name` extension was present (a name that is not one is counted).
    pub server_name_sent: bool,
    /// The ALPN protocols offered, joined by `,` (bounded; names of other characters than
    /// letters, digits and `._/-` left out).
    pub alpn: String,
    /// TLS 1.3 offered (`supported_versions` lists 0x0304).
    pub tls13: bool,
    /// An `encrypted_client_hello` extension (real, or GREASE as browsers send it): if real,
    /// the name read is the outer, public one.
    pub ech: bool,
    /// The end of the record that ends the ClientHello (past the bytes scanned when the
    /// message ends before its record does).
    pub records_len: usize,
}

/// The outcome of a scan of the buffer's first bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    Complete(ClientHello),
    /// Cut off. No scan can go further before the buffer holds `want` bytes (the end of the
    /// record cut off, or of the message if it ends first), and the ClientHello cannot end
    /// before byte `at_least`.
    Partial {
        want: usize,
        at_least: usize,
    },
    /// Not a ClientHello this reader follows (another record type, a bad length, an
    /// extension that overruns its message).
    Bad,
}

/// Scans `bytes`, the connection's first bytes. Nothing is allocated when the ClientHello
/// sits in one record (the common case).
pub fn scan(bytes: &[u8]) -> Scan {
    let mut joined: Vec<u8> = Vec::new();
    let mut at = 0;
    let mut records = 0;
    loop {
        let Some(header) = bytes.get(at..at + RECORD_HEADER) else {
            let want = at + RECORD_HEADER;
            return Scan::Partial {
                want,
                at_least: want + 1,
            };
        };
        let &[kind, major, _minor, high, low] = header else {
            return Scan::Bad;
        };
        // Any 3.x record version: servers ignore it on a ClientHello (RFC 8446 asks for
        // 3.1, and 3.0 and 3.3 are seen). Empty handshake records are forbidden.
        let length = usize::from(u16::from_be_bytes([high, low]));
        records += 1;
        if kind != HANDSHAKE_RECORD
            || major != 3
            || length == 0
            || length > MAX_RECORD
            || records > MAX_RECORDS
        {
            return Scan::Bad;
        }
        let end = at + RECORD_HEADER + length;
        // A record cut off is read as far as it goes: the message may end before it does
        // (and a first byte that is not a ClientHello's is enough to leave at once).
        let available = end.min(bytes.len());
        let fragment = bytes.get(at + RECORD_HEADER..available).unwrap_or_default();
        // One record holding the whole message: read in place.
        let message: &[u8] = if records == 1 {
            fragment
        } else {
            if records == 2 {
                joined.extend_from_slice(bytes.get(RECORD_HEADER..at).unwrap_or_default());
            }
            joined.extend_from_slice(fragment);
            &joined
        };
        match handshake_message(message) {
            Message::Complete(body) => {
                return match read_body(body) {
                    Some(mut hello) => {
                        hello.records_len = end;
                        Scan::Complete(hello)
                    }
                    None => Scan::Bad,
                };
            }
            Message::Bad => return Scan::Bad,
            Message::Partial { missing } if available < end => {
                let at_least = available + missing;
                // The message's first byte decides on its own (a ClientHello or not); then
                // its length, then its end.
                let next = if message.is_empty() { 1 } else { missing };
                return Scan::Partial {
                    want: end.min(available + next),
                    at_least,
                };
            }
            // The next record continues it.
            Message::Partial { .. } => at = end,
        }
    }
}

enum Message<'a> {
    Complete(&'a [u8]),
    /// At least `missing` more bytes of it are to come.
    Partial {
        missing: usize,
    },
    Bad,
}

/// The ClientHello's body, if `message` (handshake bytes from the first) holds it whole.
fn handshake_message(message: &[u8]) -> Message<'_> {
    let Some(&[kind, a, b, c]) = message.get(..4) else {
        // A handshake header cut between records: possible, if odd.
        return if message.first().is_some_and(|k| *k != CLIENT_HELLO) {
            Message::Bad
        } else {
            Message::Partial {
                missing: 4 - message.len(),
            }
        };
    };
    if kind != CLIENT_HELLO {
        return Message::Bad;
    }
    let length = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
    match message.get(4..4 + length) {
        Some(body) => Message::Complete(body),
        None => Message::Partial {
            missing: 4 + length - message.len(),
        },
    }
}

/// A cursor over length-prefixed fields; every read is checked (a short field is `None`).
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        let &[a, b] = self.take(2)? else { return None };
        Some(u16::from_be_bytes([a, b]))
    }

    /// A field with a one-byte length.
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    /// A field with a two-byte length.
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

/// The ClientHello body: versions, random, session id, cipher suites, compression
/// methods, then (optional before TLS 1.3) the extensions, which must fill it exactly.
fn read_body(body: &[u8]) -> Option<ClientHello> {
    let mut c = Cursor { rest: body };
    c.take(2 + 32)?;
    let session_id = c.vec8()?;
    if session_id.len() > 32 {
        return None;
    }
    let suites = c.vec16()?;
    if suites.len() < 2 || suites.len() % 2 != 0 {
        return None;
    }
    if c.vec8()?.is_empty() {
        return None;
    }
    let mut hello = ClientHello::default();
    if c.is_empty() {
        return Some(hello);
    }
    let mut extensions = Cursor { rest: c.vec16()? };
    if !c.is_empty() {
        return None;
    }
    // Each type at most once (RFC 8446 section 4.2): a second server_name could otherwise
    // name another host than the one the server reads. Real ClientHellos carry about 20.
    let mut seen = [0u16; MAX_EXTENSIONS];
    let mut count = 0;
    while !extensions.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vec16()?;
        if seen.get(..count)?.contains(&kind) {
            return None;
        }
        *seen.get_mut(count)? = kind;
        count += 1;
        match kind {
            EXT_SERVER_NAME => {
                hello.server_name_sent = true;
                hello.server_name = server_name(data)?;
            }
            EXT_ALPN => hello.alpn = alpn(data)?,
            EXT_SUPPORTED_VERSIONS => hello.tls13 = supported_versions(data)?,
            EXT_ECH => hello.ech = true,
            // GREASE (RFC 8701) and every other type: skipped by length.
            _ => {}
        }
    }
    Some(hello)
}

/// `server_name`: a list of (type, name); the `host_name` entry, if it is a DNS name.
/// `None` (outer): the extension is malformed. An empty extension is what a server sends
/// back, not a client: malformed too.
fn server_name(data: &[u8]) -> Option<Option<String>> {
    let mut ext = Cursor { rest: data };
    let mut list = Cursor { rest: ext.vec16()? };
    if !ext.is_empty() || list.is_empty() {
        return None;
    }
    let mut found = None;
    while !list.is_empty() {
        let kind = list.u8()?;
        let name = list.vec16()?;
        if kind == HOST_NAME {
            // RFC 6066: at most one name of each type.
            if found.is_some() {
                return None;
            }
            found = Some(name);
        }
    }
    Some(found.and_then(dns_name))
}

/// A host name as stats, logs and the ServiceEntry matcher take it: letters, digits, `-`
/// and `_` in labels of 1 to 63 bytes, at most 253 in all, lowercased. One trailing dot
/// (RFC 6066 forbids it; OpenSSL, BoringSSL and Envoy's tls_inspector pass it on) is
/// dropped. An IP literal is not a name (RFC 6066), so a name of digits and dots only is
/// not either.
fn dns_name(name: &[u8]) -> Option<String> {
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let label_ok = |l: &[u8]| {
        !l.is_empty()
            && l.len() <= 63
            && l.iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    };
    if !name.split(|b| *b == b'.').all(label_ok) {
        return None;
    }
    if name.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        return None;
    }
    let text = std::str::from_utf8(name).ok()?;
    Some(text.to_ascii_lowercase())
}

/// ALPN: a non-empty list of non-empty names; the printable ones joined by `,`.
fn alpn(data: &[u8]) -> Option<String> {
    let mut ext = Cursor { rest: data };
    let mut list = Cursor { rest: ext.vec16()? };
    if !ext.is_empty() || list.is_empty() {
        return None;
    }
    let mut text = String::new();
    while !list.is_empty() {
        let name = list.vec8()?;
        if name.is_empty() {
            return None;
        }
        // GREASE values (0x?A?A, RFC 8701) are offered but not worth showing; other names
        // only in the characters of IANA's registered ones (`http/1.1`, `acme-tls/1`,
        // `stun.turn`), so a client cannot forge fields in a text access log.
        let grease = matches!(name, [a, b] if a == b && a & 0x0f == 0x0a);
        let plain = name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'));
        if plain && !grease && text.len() + name.len() < MAX_ALPN_TEXT {
            if !text.is_empty() {
                text.push(',');
            }
            text.extend(name.iter().map(|b| char::from(*b)));
        }
    }
    Some(text)
}

/// `supported_versions` in a ClientHello: a one-byte-length list of versions.
fn supported_versions(data: &[u8]) -> Option<bool> {
    let mut ext = Cursor { rest: data };
    let list = ext.vec8()?;
    if !ext.is_empty() || list.is_empty() || list.len() % 2 != 0 {
        return None;
    }
    Some(list.chunks_exact(2).any(|v| v == [3, 4]))
}
