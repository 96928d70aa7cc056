//! TLS ClientHellos for tests, written field by field (RFC 8446 section 4.1.2).

/// The parts of a ClientHello a test varies.
#[derive(Clone, Debug, Default)]
pub struct Hello<'a> {
    /// `server_name` entries (type, name); none: no extension.
    pub names: Vec<(u8, &'a [u8])>,
    pub alpn: Vec<&'a [u8]>,
    pub tls13: bool,
    pub ech: bool,
    /// GREASE (RFC 8701): an empty extension first and a GREASE ALPN name.
    pub grease: bool,
    /// Other extensions, written as given (type, data).
    pub extra: Vec<(u16, Vec<u8>)>,
    /// No extensions block at all (as a TLS 1.2 client may send).
    pub bare: bool,
}

fn vec16(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
}

fn vec8(out: &mut Vec<u8>, body: &[u8]) {
    out.push(u8::try_from(body.len()).unwrap());
    out.extend_from_slice(body);
}

fn extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    vec16(out, data);
}

impl Hello<'_> {
    /// A client sending `name` and offering h2 and http/1.1 over TLS 1.3.
    pub fn to(name: &str) -> Hello<'_> {
        Hello {
            names: vec![(0, name.as_bytes())],
            alpn: vec![b"h2", b"http/1.1"],
            tls13: true,
            ..Hello::default()
        }
    }

    /// The handshake message: type 1, a 24-bit length, the body.
    pub fn message(&self) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend((0..32u8).map(|i| i.wrapping_mul(37)));
        vec8(&mut body, &[7; 32]);
        vec16(&mut body, &[0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f]);
        vec8(&mut body, &[0]);
        if !self.bare {
            let mut exts = Vec::new();
            if self.grease {
                extension(&mut exts, 0x0a0a, &[]);
            }
            if !self.names.is_empty() {
                let mut list = Vec::new();
                for (kind, name) in &self.names {
                    list.push(*kind);
                    vec16(&mut list, name);
                }
                let mut data = Vec::new();
                vec16(&mut data, &list);
                extension(&mut exts, 0, &data);
            }
            if !self.alpn.is_empty() {
                let mut list = Vec::new();
                if self.grease {
                    vec8(&mut list, &[0x3a, 0x3a]);
                }
                for name in &self.alpn {
                    vec8(&mut list, name);
                }
                let mut data = Vec::new();
                vec16(&mut data, &list);
                extension(&mut exts, 16, &data);
            }
            if self.tls13 {
                extension(&mut exts, 43, &[4, 3, 4, 3, 3]);
            }
            if self.ech {
                extension(&mut exts, 0xfe0d, &[0, 0, 1, 0, 1, 7, 0, 0, 0, 0]);
            }
            for (kind, data) in &self.extra {
                extension(&mut exts, *kind, data);
            }
            vec16(&mut body, &exts);
        }
        let len = u32::try_from(body.len()).unwrap().to_be_bytes();
        let mut message = vec![1, len[1], len[2], len[3]];
        message.extend_from_slice(&body);
        message
    }

    /// The message in one record.
    pub fn record(&self) -> Vec<u8> {
        records(&self.message(), usize::MAX)
    }
}

/// `message` cut into handshake records of at most `fragment` bytes.
pub fn records(message: &[u8], fragment: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in message.chunks(fragment.clamp(1, 16 * 1024)) {
        out.extend_from_slice(&[22, 3, 1]);
        vec16(&mut out, chunk);
    }
    out
}
