//! A reference reader of a TLS ClientHello at the start of a connection, written apart from
//! the crate's `network::tls`, for oracles (RFC 8446 4.1.2, 4.2 and 5.1; RFC 6066 3 for
//! server_name; RFC 7301 3.1 for ALPN).
//!
//! It works in two steps: first the handshake bytes are gathered from the records
//! (checking each record header as it is reached) until the first handshake message is
//! whole, then the message body is read by index arithmetic, every access through `get`.
//!
//! Rules:
//! - Records: a 5-byte header, type 22 (handshake), version major 3 (any minor), at most 64,
//!   length 1..=16384; payloads are concatenated. Input ending inside a record header or
//!   payload before the message is whole: [`Outcome::Partial`].
//! - The message: type 1, checked as soon as its first byte is there; a 24-bit length; the
//!   body. Bytes after the message in the same record are ignored.
//! - Body: legacy_version, random, session id (at most 32), cipher suites (even, at least
//!   2 bytes), compression methods (at least 1), then nothing or an extensions block ending
//!   exactly at the body's end: at most 64 extensions, no type twice.
//! - server_name (0): a non-empty list exactly filling the data, at most one entry of
//!   type 0 (others skipped); the name is kept only if it is a DNS name (lowercased).
//! - ALPN (16): a non-empty list exactly filling the data, entries not empty.
//! - supported_versions (43): a non-empty list of even length exactly filling the data.
//! - encrypted_client_hello (0xfe0d): noted, data not read. Anything else: skipped.

/// What the reader makes of a connection's first bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The ClientHello is whole: `end` = offset just past the TLS record in which the
    /// ClientHello message completes. (When the message ends before its record does and
    /// the record's tail has not arrived, `end` is past the input.)
    Complete {
        server_name: Option<String>,
        server_name_sent: bool,
        alpn: Vec<Vec<u8>>,
        tls13: bool,
        ech: bool,
        end: usize,
    },
    /// The bytes end before a decision can be made.
    Partial,
    /// Not a ClientHello that is followed (any rule broken).
    Malformed,
}

/// Record content type: handshake.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake message type: ClientHello.
pub const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Largest record payload (RFC 8446 5.1: 2^14).
pub const MAX_RECORD_LEN: usize = 16_384;
/// Most extensions a ClientHello may carry here.
pub const MAX_EXTENSIONS: usize = 64;
/// More records than this (before the ClientHello is whole) is not followed.
pub const MAX_RECORDS: usize = 64;

pub const EXT_SERVER_NAME: u16 = 0;
pub const EXT_ALPN: u16 = 16;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;
pub const EXT_ECH: u16 = 0xfe0d;
pub const TLS13: u16 = 0x0304;

/// Reads a ClientHello from a connection's first bytes.
pub fn read(bytes: &[u8]) -> Outcome {
    // Step 1: gather handshake bytes record by record.
    let mut handshake: Vec<u8> = Vec::new();
    let mut record_start: usize = 0;
    let mut record_count: usize = 0;
    loop {
        let Some(header) = bytes.get(record_start..record_start + 5) else {
            return Outcome::Partial;
        };
        let &[content_type, major, _minor, len_hi, len_lo] = header else {
            return Outcome::Partial;
        };
        record_count += 1;
        if content_type != CONTENT_HANDSHAKE || major != 3 || record_count > MAX_RECORDS {
            return Outcome::Malformed;
        }
        let record_len = usize::from(len_hi) << 8 | usize::from(len_lo);
        if record_len == 0 || record_len > MAX_RECORD_LEN {
            return Outcome::Malformed;
        }
        let payload_start = record_start + 5;
        let record_end = payload_start + record_len;
        let available_end = record_end.min(bytes.len());
        if let Some(payload) = bytes.get(payload_start..available_end) {
            handshake.extend_from_slice(payload);
        }

        if handshake
            .first()
            .is_some_and(|&msg_type| msg_type != HANDSHAKE_CLIENT_HELLO)
        {
            return Outcome::Malformed;
        }
        if let Some(body_len) = u24_at(&handshake, 1) {
            let message_end = 4 + body_len;
            if let Some(body) = handshake.get(4..message_end) {
                // Step 2: the whole message is here.
                return match read_body(body) {
                    Some(hello) => Outcome::Complete {
                        server_name: hello.server_name,
                        server_name_sent: hello.server_name_sent,
                        alpn: hello.alpn,
                        tls13: hello.tls13,
                        ech: hello.ech,
                        end: record_end,
                    },
                    None => Outcome::Malformed,
                };
            }
        }
        if bytes.len() < record_end {
            return Outcome::Partial;
        }
        record_start = record_end;
    }
}

/// What a well-formed body says.
#[derive(Default)]
struct Read {
    server_name: Option<String>,
    server_name_sent: bool,
    alpn: Vec<Vec<u8>>,
    tls13: bool,
    ech: bool,
}

fn u16_at(b: &[u8], i: usize) -> Option<usize> {
    let hi = *b.get(i)?;
    let lo = *b.get(i + 1)?;
    Some(usize::from(hi) << 8 | usize::from(lo))
}

fn u24_at(b: &[u8], i: usize) -> Option<usize> {
    let a = *b.get(i)?;
    let rest = u16_at(b, i + 1)?;
    Some(usize::from(a) << 16 | rest)
}

/// The ClientHello body; `None` = malformed.
fn read_body(body: &[u8]) -> Option<Read> {
    // legacy_version (2) + random (32).
    let mut i: usize = 34;
    if body.len() < i {
        return None;
    }
    // legacy_session_id<0..32>
    let session_len = usize::from(*body.get(i)?);
    if session_len > 32 {
        return None;
    }
    i += 1;
    body.get(i..i + session_len)?;
    i += session_len;
    // cipher_suites<2..2^16-2>
    let suites_len = u16_at(body, i)?;
    if suites_len < 2 || suites_len % 2 != 0 {
        return None;
    }
    i += 2;
    body.get(i..i + suites_len)?;
    i += suites_len;
    // legacy_compression_methods<1..2^8-1>
    let compression_len = usize::from(*body.get(i)?);
    if compression_len < 1 {
        return None;
    }
    i += 1;
    body.get(i..i + compression_len)?;
    i += compression_len;

    let mut out = Read::default();
    if i == body.len() {
        return Some(out);
    }
    let extensions_len = u16_at(body, i)?;
    i += 2;
    if i + extensions_len != body.len() {
        return None;
    }
    let extensions = body.get(i..)?;

    let mut seen: Vec<u16> = Vec::new();
    let mut j: usize = 0;
    while j < extensions.len() {
        let ext_type = u16::try_from(u16_at(extensions, j)?).ok()?;
        let ext_len = u16_at(extensions, j + 2)?;
        let data = extensions.get(j + 4..j + 4 + ext_len)?;
        j += 4 + ext_len;
        if seen.contains(&ext_type) {
            return None;
        }
        seen.push(ext_type);
        if seen.len() > MAX_EXTENSIONS {
            return None;
        }
        match ext_type {
            EXT_SERVER_NAME => {
                out.server_name_sent = true;
                out.server_name = read_server_name(data)?;
            }
            EXT_ALPN => out.alpn = read_alpn(data)?,
            EXT_SUPPORTED_VERSIONS => out.tls13 = read_supported_versions(data)?,
            EXT_ECH => out.ech = true,
            _ => {}
        }
    }
    Some(out)
}

/// RFC 6066 3: `None` = malformed, `Some(None)` = no usable host name.
fn read_server_name(data: &[u8]) -> Option<Option<String>> {
    let list_len = u16_at(data, 0)?;
    if list_len == 0 || 2 + list_len != data.len() {
        return None;
    }
    let mut host: Option<&[u8]> = None;
    let mut k: usize = 2;
    while k < data.len() {
        let name_type = *data.get(k)?;
        let name_len = u16_at(data, k + 1)?;
        let name = data.get(k + 3..k + 3 + name_len)?;
        k += 3 + name_len;
        if name_type == 0 {
            if host.is_some() {
                return None;
            }
            host = Some(name);
        }
    }
    Some(host.and_then(dns_name))
}

/// A DNS name of 1..=253 bytes, labels of 1..=63 letters, digits, `-`, `_`, not all
/// digits and dots; lowercased.
pub fn dns_name(name: &[u8]) -> Option<String> {
    // One trailing dot is dropped (servers accept it).
    let name = match name.split_last() {
        Some((b'.', rest)) => rest,
        _ => name,
    };
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let mut only_digits_and_dots = true;
    let mut label_len: usize = 0;
    for &b in name {
        if b == b'.' {
            if label_len == 0 {
                return None;
            }
            label_len = 0;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return None;
        }
        if !b.is_ascii_digit() {
            only_digits_and_dots = false;
        }
        label_len += 1;
        if label_len > 63 {
            return None;
        }
    }
    if label_len == 0 || only_digits_and_dots {
        return None;
    }
    String::from_utf8(name.to_ascii_lowercase()).ok()
}

/// RFC 7301 3.1: every protocol name, in order; `None` = malformed.
fn read_alpn(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let list_len = u16_at(data, 0)?;
    if list_len == 0 || 2 + list_len != data.len() {
        return None;
    }
    let mut names = Vec::new();
    let mut k: usize = 2;
    while k < data.len() {
        let len = usize::from(*data.get(k)?);
        if len == 0 {
            return None;
        }
        names.push(data.get(k + 1..k + 1 + len)?.to_vec());
        k += 1 + len;
    }
    Some(names)
}

/// RFC 8446 4.2.1: whether TLS 1.3 is offered; `None` = malformed.
fn read_supported_versions(data: &[u8]) -> Option<bool> {
    let list_len = usize::from(*data.first()?);
    if list_len == 0 || list_len % 2 != 0 || 1 + list_len != data.len() {
        return None;
    }
    let mut tls13 = false;
    let mut k: usize = 1;
    while k < data.len() {
        if u16_at(data, k)? == usize::from(TLS13) {
            tls13 = true;
        }
        k += 2;
    }
    Some(tls13)
}

/// Parts of a ClientHello, for building inputs.
#[derive(Debug, Clone, Default)]
pub struct Hello {
    /// server_name entries (name type, name); empty: no server_name extension.
    pub server_names: Vec<(u8, Vec<u8>)>,
    /// ALPN protocol names; `None`: no ALPN extension.
    pub alpn: Option<Vec<Vec<u8>>>,
    /// supported_versions; `None`: no such extension.
    pub versions: Option<Vec<u16>>,
    /// An encrypted_client_hello extension.
    pub ech: bool,
    /// A GREASE extension (0x0a0a, empty) first, and a GREASE ALPN name first in the list.
    pub grease: bool,
    /// More extensions (type, data), after the others.
    pub extra: Vec<(u16, Vec<u8>)>,
    pub session_id: Vec<u8>,
    /// No extensions block at all (the other extension fields are then not used).
    pub no_extensions: bool,
}

/// Appends `data` behind a big-endian length of `width` bytes (1..=3); data longer than
/// the length can say is cut to fit.
fn put_vec(out: &mut Vec<u8>, width: usize, data: &[u8]) {
    let max = (1usize << (8 * width)) - 1;
    let len = data.len().min(max);
    for shift in (0..width).rev() {
        out.push(((len >> (8 * shift)) & 0xff) as u8);
    }
    out.extend_from_slice(data.get(..len).unwrap_or(data));
}

fn put_extension(out: &mut Vec<u8>, ext_type: u16, data: &[u8]) {
    out.extend_from_slice(&ext_type.to_be_bytes());
    put_vec(out, 2, data);
}

impl Hello {
    /// The ClientHello handshake message: type 1, 24-bit length, body. Lengths too big for
    /// their fields are cut to fit (so each length prefix matches what follows it).
    pub fn message(&self) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend((0u8..32).map(|i| i.wrapping_mul(7).wrapping_add(3)));
        put_vec(&mut body, 1, &self.session_id);
        put_vec(&mut body, 2, &[0x13, 0x01, 0xc0, 0x2f]);
        put_vec(&mut body, 1, &[0]);

        if !self.no_extensions {
            let mut exts = Vec::new();
            if self.grease {
                put_extension(&mut exts, 0x0a0a, &[]);
            }
            if !self.server_names.is_empty() {
                let mut list = Vec::new();
                for (name_type, name) in &self.server_names {
                    list.push(*name_type);
                    put_vec(&mut list, 2, name);
                }
                let mut data = Vec::new();
                put_vec(&mut data, 2, &list);
                put_extension(&mut exts, EXT_SERVER_NAME, &data);
            }
            if let Some(names) = &self.alpn {
                let mut list = Vec::new();
                if self.grease {
                    put_vec(&mut list, 1, &[0x1a, 0x1a]);
                }
                for name in names {
                    put_vec(&mut list, 1, name);
                }
                let mut data = Vec::new();
                put_vec(&mut data, 2, &list);
                put_extension(&mut exts, EXT_ALPN, &data);
            }
            if let Some(versions) = &self.versions {
                let list: Vec<u8> = versions.iter().flat_map(|v| v.to_be_bytes()).collect();
                let list = list.get(..list.len().min(254)).unwrap_or(&list);
                let mut data = Vec::new();
                put_vec(&mut data, 1, list);
                put_extension(&mut exts, EXT_SUPPORTED_VERSIONS, &data);
            }
            if self.ech {
                // outer, HPKE KDF/AEAD, config id, empty enc, a short payload.
                let data = [
                    0x00, 0x00, 0x01, 0x00, 0x01, 0x2a, 0x00, 0x00, 0x00, 0x02, 0xab, 0xcd,
                ];
                put_extension(&mut exts, EXT_ECH, &data);
            }
            for (ext_type, data) in &self.extra {
                put_extension(&mut exts, *ext_type, data);
            }
            put_vec(&mut body, 2, &exts);
        }

        let mut message = vec![HANDSHAKE_CLIENT_HELLO];
        put_vec(&mut message, 3, &body);
        message
    }
}

/// Cuts a handshake message into handshake records (type 22, version 3.1), their lengths
/// taken from `fragment_sizes` in turn (cycling), the last record taking what is left.
/// A size of 0 counts as 1, sizes above 16384 as 16384, no sizes as 16384.
pub fn records(message: &[u8], fragment_sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5 * (message.len() / 16 + 1));
    let mut start: usize = 0;
    let mut turn: usize = 0;
    while start < message.len() {
        let wanted = if fragment_sizes.is_empty() {
            MAX_RECORD_LEN
        } else {
            fragment_sizes
                .get(turn % fragment_sizes.len())
                .copied()
                .unwrap_or(MAX_RECORD_LEN)
                .clamp(1, MAX_RECORD_LEN)
        };
        turn += 1;
        let end = (start + wanted).min(message.len());
        let fragment = message.get(start..end).unwrap_or(&[]);
        out.extend_from_slice(&[CONTENT_HANDSHAKE, 3, 1]);
        put_vec(&mut out, 2, fragment);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Hello {
        Hello {
            server_names: vec![(0, b"WWW.Example.com".to_vec())],
            alpn: Some(vec![b"h2".to_vec(), b"http/1.1".to_vec()]),
            versions: Some(vec![0x0304, 0x0303]),
            ..Hello::default()
        }
    }

    fn complete(
        name: Option<&str>,
        sent: bool,
        alpn: &[&[u8]],
        tls13: bool,
        ech: bool,
        end: usize,
    ) -> Outcome {
        Outcome::Complete {
            server_name: name.map(str::to_string),
            server_name_sent: sent,
            alpn: alpn.iter().map(|a| a.to_vec()).collect(),
            tls13,
            ech,
            end,
        }
    }

    /// The server name a hello with just this type-0 name yields.
    fn name_of(name: &[u8]) -> Option<String> {
        let hello = Hello {
            server_names: vec![(0, name.to_vec())],
            ..Hello::default()
        };
        match read(&records(&hello.message(), &[])) {
            Outcome::Complete {
                server_name,
                server_name_sent: true,
                ..
            } => server_name,
            other => panic!("{other:?}"),
        }
    }

    /// A body from raw parts; `extensions`: the block after its length, or none at all.
    fn body(
        session: &[u8],
        suites: &[u8],
        compression: &[u8],
        extensions: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend([0x55; 32]);
        b.push(session.len() as u8);
        b.extend_from_slice(session);
        b.extend((suites.len() as u16).to_be_bytes());
        b.extend_from_slice(suites);
        b.push(compression.len() as u8);
        b.extend_from_slice(compression);
        if let Some(e) = extensions {
            b.extend((e.len() as u16).to_be_bytes());
            b.extend_from_slice(e);
        }
        b
    }

    fn message_of(body: &[u8]) -> Vec<u8> {
        let mut m = vec![1];
        put_vec(&mut m, 3, body);
        m
    }

    fn ext(ext_type: u16, data: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        put_extension(&mut e, ext_type, data);
        e
    }

    /// `read` of a one-record hello whose extensions block is `extensions`.
    fn with_extensions(extensions: &[u8]) -> Outcome {
        let b = body(&[], &[0x13, 0x01], &[0], Some(extensions));
        read(&records(&message_of(&b), &[]))
    }

    #[test]
    fn plain_hello_with_name_alpn_versions() {
        let input = records(&plain().message(), &[]);
        assert_eq!(
            read(&input),
            complete(
                Some("www.example.com"),
                true,
                &[b"h2", b"http/1.1"],
                true,
                false,
                input.len()
            )
        );
        // Bytes after the record are not read.
        let mut more = input.clone();
        more.extend_from_slice(&[23, 3, 3, 0, 0, 9, 9]);
        assert_eq!(
            read(&more),
            complete(
                Some("www.example.com"),
                true,
                &[b"h2", b"http/1.1"],
                true,
                false,
                input.len()
            )
        );
    }

    #[test]
    fn grease_ech_extra_and_no_extensions() {
        let hello = Hello {
            grease: true,
            ech: true,
            versions: Some(vec![0x0a0a, 0x0303]),
            extra: vec![(0x1a1a, vec![1, 2, 3]), (0xff01, vec![0])],
            session_id: vec![7; 32],
            ..plain()
        };
        let input = records(&hello.message(), &[100]);
        assert_eq!(
            read(&input),
            complete(
                Some("www.example.com"),
                true,
                &[&[0x1a, 0x1a], b"h2", b"http/1.1"],
                false,
                true,
                input.len()
            )
        );
        let bare = Hello {
            no_extensions: true,
            ..plain()
        };
        let input = records(&bare.message(), &[]);
        assert_eq!(
            read(&input),
            complete(None, false, &[], false, false, input.len())
        );
        // An empty extensions block.
        assert_eq!(
            with_extensions(&[]),
            complete(None, false, &[], false, false, 5 + 4 + 34 + 1 + 4 + 2 + 2)
        );
    }

    #[test]
    fn split_at_every_byte() {
        let hello = Hello {
            grease: true,
            ..plain()
        };
        for sizes in [&[][..], &[7], &[7, 3, 100], &[40]] {
            let input = records(&hello.message(), sizes);
            for cut in 0..input.len() {
                assert_eq!(read(&input[..cut]), Outcome::Partial, "{sizes:?} {cut}");
            }
            assert!(matches!(
                read(&input),
                Outcome::Complete { end, tls13: true, .. } if end == input.len()
            ));
        }
    }

    #[test]
    fn small_fragments_up_to_64_records() {
        let message = plain().message();
        let input = records(&message, &[message.len().div_ceil(64)]);
        assert!(matches!(read(&input), Outcome::Complete { .. }));
        // One record more is not followed.
        let input = records(&message, &[1]);
        assert_eq!(input.len(), message.len() * 6);
        assert_eq!(read(&input), Outcome::Malformed);
        let input = records(&message, &[message.len().div_ceil(64)]);
        assert_eq!(
            read(&input),
            complete(
                Some("www.example.com"),
                true,
                &[b"h2", b"http/1.1"],
                true,
                false,
                input.len()
            )
        );
    }

    #[test]
    fn message_ending_inside_a_record() {
        let mut message = plain().message();
        let len = message.len();
        message.extend_from_slice(&[0xee; 10]);
        let input = records(&message, &[]);
        let whole = read(&input);
        assert!(matches!(whole, Outcome::Complete { end, .. } if end == input.len()));
        // The record's tail is ignored, whether there or not.
        assert_eq!(read(&input[..5 + len]), whole);
        assert_eq!(read(&input[..5 + len - 1]), Outcome::Partial);
        // The end is that of the record the message completes in.
        let input = records(&message, &[len - 2, 100]);
        assert!(matches!(read(&input), Outcome::Complete { end, .. } if end == input.len()));
    }

    #[test]
    fn record_rules() {
        let good = records(&plain().message(), &[]);
        let with = |i: usize, v: u8| {
            let mut b = good.clone();
            b[i] = v;
            read(&b)
        };
        assert_eq!(with(0, 23), Outcome::Malformed);
        assert_eq!(with(0, 21), Outcome::Malformed);
        assert_eq!(with(1, 2), Outcome::Malformed);
        assert_eq!(with(1, 4), Outcome::Malformed);
        // Any minor version.
        assert!(matches!(with(2, 5), Outcome::Complete { .. }));
        assert!(matches!(with(2, 0), Outcome::Complete { .. }));
        assert!(matches!(with(2, 4), Outcome::Complete { .. }));
        // Length 0, 16385.
        assert_eq!(read(&[22, 3, 1, 0, 0, 1, 0, 0]), Outcome::Malformed);
        assert_eq!(read(&[22, 3, 1, 0x40, 0x01, 1]), Outcome::Malformed);
        assert_eq!(read(&[22, 3, 1, 0x40, 0x00, 1]), Outcome::Partial);
        // A header cut short.
        assert_eq!(read(&[]), Outcome::Partial);
        assert_eq!(read(&[22, 3, 1, 0]), Outcome::Partial);
        // A later record that is not a handshake record.
        let two = records(&plain().message(), &[10]);
        let mut bad = two.clone();
        bad[15] = 23;
        assert_eq!(read(&bad), Outcome::Malformed);
        let mut bad = two.clone();
        bad[18] = 0;
        bad[19] = 0;
        assert_eq!(read(&bad), Outcome::Malformed);
    }

    #[test]
    fn handshake_type_known_at_first_byte() {
        assert_eq!(read(&[22, 3, 1, 0, 100, 2]), Outcome::Malformed);
        assert_eq!(read(&[22, 3, 1, 0, 100, 1]), Outcome::Partial);
        assert_eq!(read(&[22, 3, 1, 0, 100, 1, 0, 0]), Outcome::Partial);
        let mut m = plain().message();
        m[0] = 2;
        assert_eq!(read(&records(&m, &[1])), Outcome::Malformed);
    }

    #[test]
    fn body_rules() {
        let one = |b: Vec<u8>| read(&records(&message_of(&b), &[]));
        let suites: &[u8] = &[0x13, 0x01];
        assert!(matches!(
            one(body(&[1; 32], suites, &[0], None)),
            Outcome::Complete { .. }
        ));
        assert_eq!(one(body(&[1; 33], suites, &[0], None)), Outcome::Malformed);
        assert_eq!(one(body(&[], &[0x13], &[0], None)), Outcome::Malformed);
        assert_eq!(
            one(body(&[], &[0x13, 1, 2], &[0], None)),
            Outcome::Malformed
        );
        assert_eq!(one(body(&[], &[], &[0], None)), Outcome::Malformed);
        assert_eq!(one(body(&[], suites, &[], None)), Outcome::Malformed);
        // Short random, empty body.
        assert_eq!(one(vec![3, 3, 0]), Outcome::Malformed);
        assert_eq!(one(vec![]), Outcome::Malformed);
        // A field overrunning the body.
        let mut b = body(&[], suites, &[0], None);
        b.pop();
        assert_eq!(one(b), Outcome::Malformed);
        // One stray byte where the extensions length would be.
        let mut b = body(&[], suites, &[0], None);
        b.push(0);
        assert_eq!(one(b), Outcome::Malformed);
        // Extensions block shorter / longer than the rest of the body.
        let mut b = body(&[], suites, &[0], Some(&[]));
        b.push(0);
        assert_eq!(one(b), Outcome::Malformed);
        let mut b = body(&[], suites, &[0], Some(&ext(0x0a0a, &[])));
        b.pop();
        assert_eq!(one(b), Outcome::Malformed);
    }

    #[test]
    fn extension_rules() {
        // Overrun: a length past the block, a header cut short.
        let mut e = ext(0x0a0a, &[1, 2]);
        e[3] = 3;
        assert_eq!(with_extensions(&e), Outcome::Malformed);
        assert_eq!(with_extensions(&[0x0a, 0x0a, 0]), Outcome::Malformed);
        // The same type twice.
        let mut e = ext(0x0a0a, &[]);
        e.extend(ext(5, &[]));
        e.extend(ext(0x0a0a, &[1]));
        assert_eq!(with_extensions(&e), Outcome::Malformed);
        let mut e = ext(EXT_ECH, &[]);
        e.extend(ext(EXT_ECH, &[]));
        assert_eq!(with_extensions(&e), Outcome::Malformed);
        // 64 extensions, 65.
        let many = |n: u16| -> Vec<u8> { (0..n).flat_map(|t| ext(1000 + t, &[])).collect() };
        assert!(matches!(
            with_extensions(&many(64)),
            Outcome::Complete { .. }
        ));
        assert_eq!(with_extensions(&many(65)), Outcome::Malformed);
        // Through Hello as well.
        let hello = Hello {
            extra: (0..61).map(|t| (1000 + t, vec![])).collect(),
            ..plain()
        };
        assert!(matches!(
            read(&records(&hello.message(), &[])),
            Outcome::Complete { .. }
        ));
        let hello = Hello {
            extra: (0..62).map(|t| (1000 + t, vec![])).collect(),
            ..plain()
        };
        assert_eq!(read(&records(&hello.message(), &[])), Outcome::Malformed);
        let hello = Hello {
            extra: vec![(EXT_ALPN, vec![0, 3, 2, b'h', b'2'])],
            ..plain()
        };
        assert_eq!(read(&records(&hello.message(), &[])), Outcome::Malformed);
    }

    #[test]
    fn server_name_rules() {
        let sni = |data: &[u8]| with_extensions(&ext(EXT_SERVER_NAME, data));
        let name = |v: Outcome| match v {
            Outcome::Complete {
                server_name,
                server_name_sent,
                ..
            } => Some((server_name, server_name_sent)),
            _ => None,
        };
        let list = |entries: &[(u8, &[u8])]| {
            let mut l = Vec::new();
            for (t, n) in entries {
                l.push(*t);
                put_vec(&mut l, 2, n);
            }
            let mut d = Vec::new();
            put_vec(&mut d, 2, &l);
            d
        };
        assert_eq!(
            name(sni(&list(&[(0, b"a.B")]))),
            Some((Some("a.b".into()), true))
        );
        // Other types skipped, before or after.
        assert_eq!(
            name(sni(&list(&[(1, b"x"), (0, b"a.b"), (7, b"")]))),
            Some((Some("a.b".into()), true))
        );
        assert_eq!(name(sni(&list(&[(1, b"a.b")]))), Some((None, true)));
        assert_eq!(name(sni(&list(&[(0, b"")]))), Some((None, true)));
        // Two of type 0.
        assert_eq!(sni(&list(&[(0, b"a"), (0, b"b")])), Outcome::Malformed);
        assert_eq!(
            sni(&list(&[(0, b"a"), (1, b""), (0, b"a")])),
            Outcome::Malformed
        );
        // Empty list, no list, list length off.
        assert_eq!(sni(&[0, 0]), Outcome::Malformed);
        assert_eq!(sni(&[]), Outcome::Malformed);
        assert_eq!(sni(&[0]), Outcome::Malformed);
        let mut d = list(&[(0, b"a.b")]);
        d[1] += 1;
        assert_eq!(sni(&d), Outcome::Malformed);
        let mut d = list(&[(0, b"a.b")]);
        d[1] -= 1;
        assert_eq!(sni(&d), Outcome::Malformed);
        // An entry overrunning the list.
        let mut d = list(&[(0, b"a.b")]);
        d[4] += 1;
        assert_eq!(sni(&d), Outcome::Malformed);
        assert_eq!(sni(&[0, 2, 0, 0]), Outcome::Malformed);
    }

    #[test]
    fn names_that_are_not_dns_names() {
        assert_eq!(
            name_of(b"Foo-1.example_2.COM"),
            Some("foo-1.example_2.com".into())
        );
        assert_eq!(name_of(b"1.2.3.a"), Some("1.2.3.a".into()));
        assert_eq!(name_of(b"localhost"), Some("localhost".into()));
        assert_eq!(name_of(b"192.168.0.1"), None);
        assert_eq!(name_of(b"123"), None);
        assert_eq!(name_of(b"[::1]"), None);
        assert_eq!(name_of(b"::1"), None);
        assert_eq!(name_of(b"a b.com"), None);
        assert_eq!(name_of(b"a*.com"), None);
        assert_eq!(name_of(b"exa\0mple.com"), None);
        assert_eq!(name_of("ex\u{e4}mple.com".as_bytes()), None);
        // One trailing dot dropped, not two.
        assert_eq!(name_of(b"example.com."), Some("example.com".into()));
        assert_eq!(name_of(b"example.com.."), None);
        assert_eq!(name_of(b".example.com"), None);
        assert_eq!(name_of(b"a..b"), None);
        assert_eq!(name_of(b"."), None);
        assert_eq!(name_of(b""), None);
        let label63 = vec![b'a'; 63];
        assert_eq!(name_of(&label63), Some("a".repeat(63)));
        assert_eq!(name_of(&[b'a'; 64]), None);
        // 253 bytes, 254 bytes.
        let mut long = Vec::new();
        for _ in 0..3 {
            long.extend_from_slice(&label63);
            long.push(b'.');
        }
        long.extend_from_slice(&[b'b'; 61]);
        assert_eq!(long.len(), 253);
        assert!(name_of(&long).is_some());
        long.push(b'b');
        assert_eq!(name_of(&long), None);
    }

    #[test]
    fn alpn_rules() {
        let alpn = |data: &[u8]| with_extensions(&ext(EXT_ALPN, data));
        assert_eq!(
            alpn(&[0, 7, 2, b'h', b'2', 3, 0xff, 0, b'x']),
            complete(
                None,
                false,
                &[b"h2", &[0xff, 0, b'x']],
                false,
                false,
                5 + 4 + 34 + 1 + 4 + 2 + 2 + 4 + 9
            )
        );
        assert_eq!(alpn(&[0, 0]), Outcome::Malformed);
        assert_eq!(alpn(&[]), Outcome::Malformed);
        assert_eq!(alpn(&[0, 3, 2, b'h', b'2', 0]), Outcome::Malformed);
        assert_eq!(alpn(&[0, 2, 2, b'h', b'2']), Outcome::Malformed);
        assert_eq!(alpn(&[0, 3, 2, b'h']), Outcome::Malformed);
        assert_eq!(alpn(&[0, 4, 2, b'h', b'2', 0]), Outcome::Malformed);
        assert_eq!(alpn(&[0, 3, 3, b'h', b'2']), Outcome::Malformed);
        let hello = Hello {
            alpn: Some(vec![]),
            ..plain()
        };
        assert_eq!(read(&records(&hello.message(), &[])), Outcome::Malformed);
        let hello = Hello {
            alpn: Some(vec![b"h2".to_vec(), vec![]]),
            ..plain()
        };
        assert_eq!(read(&records(&hello.message(), &[])), Outcome::Malformed);
    }

    #[test]
    fn supported_versions_rules() {
        let sv = |data: &[u8]| match with_extensions(&ext(EXT_SUPPORTED_VERSIONS, data)) {
            Outcome::Complete { tls13, .. } => Some(tls13),
            _ => None,
        };
        assert_eq!(sv(&[4, 0x7a, 0x7a, 3, 4]), Some(true));
        assert_eq!(sv(&[2, 3, 3]), Some(false));
        assert_eq!(sv(&[2, 4, 3]), Some(false));
        assert_eq!(sv(&[0]), None);
        assert_eq!(sv(&[]), None);
        assert_eq!(sv(&[3, 3, 4, 3]), None);
        assert_eq!(sv(&[4, 3, 4]), None);
        assert_eq!(sv(&[2, 3, 4, 3, 3]), None);
        let hello = Hello {
            versions: Some(vec![]),
            ..plain()
        };
        assert_eq!(read(&records(&hello.message(), &[])), Outcome::Malformed);
    }

    #[test]
    fn records_builder() {
        let m: Vec<u8> = (0..10).collect();
        let r = records(&m, &[3, 1]);
        assert_eq!(
            r,
            [
                &[22, 3, 1, 0, 3, 0, 1, 2][..],
                &[22, 3, 1, 0, 1, 3],
                &[22, 3, 1, 0, 3, 4, 5, 6],
                &[22, 3, 1, 0, 1, 7],
                &[22, 3, 1, 0, 2, 8, 9],
            ]
            .concat()
        );
        assert_eq!(records(&m, &[0]).len(), 60);
        assert_eq!(records(&[], &[4]), Vec::<u8>::new());
        let big = vec![0u8; 20_000];
        let r = records(&big, &[]);
        assert_eq!(&r[..5], &[22, 3, 1, 0x40, 0]);
        assert_eq!(&r[16_389..16_394], &[22, 3, 1, 0x0e, 0x20]);
    }

    #[test]
    fn no_panic_on_noise() {
        let mut state: u32 = 12345;
        let base = records(
            &Hello {
                grease: true,
                ech: true,
                ..plain()
            }
            .message(),
            &[9, 50],
        );
        for _ in 0..20_000 {
            let mut b = base.clone();
            for _ in 0..3 {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let i = (state >> 8) as usize % b.len();
                b[i] = (state >> 20) as u8;
            }
            let cut = (state >> 3) as usize % (b.len() + 1);
            let _ = read(&b[..cut]);
            let _ = read(&b);
        }
    }
}
