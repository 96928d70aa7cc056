//! The network position on TLS: a connection's first bytes (a ClientHello built from the
//! input, or raw bytes after a handshake record type), cut into writes, through
//! `ConnectionFilter` and a TCP proxy that takes every byte passed on.
//!
//! Checks: every byte reaches the proxy unchanged and in order (what is not passed on yet is
//! still in the buffer); the connection is never closed (the clock stands still); and the
//! filter's reading agrees with the independent reader `tracejoin_fuzz::tls`: a ClientHello
//! it reads whole (the message may end before its record) is named (on the passthrough
//! chain every name is unregistered, so the name the filter found is recorded) with the
//! oracle's server name and ALPN; one the oracle finds malformed is left (`left.tls`); one
//! still partial is held. Either may instead be left over the held-bytes limit
//! (`left.too_large`: that many bytes came, or the hello's lengths claim more); a whole one
//! only once that many bytes came.
//!
//! Input: `mode, config, write size, bytes...`; mode % 2: 0 builds a ClientHello from the
//! bytes (names, ALPN, versions, extensions, record fragments), 1 sends `22` then the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracejoin::config::Config;
use tracejoin::filter::recording_host::RecordingHost;
use tracejoin::filter::{Counter, STATE_TLS_ALPN};
use tracejoin::ids::IdGenerator;
use tracejoin::network::{ConnectionFilter, Leave, Verdict};
use tracejoin_fuzz::tls::{self, Hello, Outcome};

const CONFIGS: [&str; 2] = [
    r#"{"position":"network","external_services":[{"name":"a","hosts":["a.example"]}]}"#,
    r#"{"position":"network","per_connection_buffer_limit_bytes":1024,"external_services":[]}"#,
];

/// Takes bytes from the front of the input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn short(&mut self) -> Vec<u8> {
        let n = usize::from(self.byte() % 40);
        self.bytes(n).to_vec()
    }
}

/// A ClientHello from the input: each part present or not, names and protocols from the
/// input's bytes (so most are well-formed and some are not), then cut into records.
fn build(input: &mut Input<'_>) -> Vec<u8> {
    let flags = input.byte();
    let mut hello = Hello {
        ech: flags & 1 != 0,
        grease: flags & 2 != 0,
        no_extensions: flags & 0x80 != 0,
        ..Hello::default()
    };
    let names = input.byte() % 3;
    for i in 0..names {
        let kind = if input.byte() % 4 == 0 { 1 } else { 0 };
        let name = match input.byte() % 4 {
            0 => b"api.openai.com".to_vec(),
            1 => format!("b{i}.S3.amazonaws.com").into_bytes(),
            _ => input.short(),
        };
        hello.server_names.push((kind, name));
    }
    if flags & 4 != 0 {
        let n = input.byte() % 4;
        hello.alpn = Some(
            (0..n)
                .map(|_| match input.byte() % 3 {
                    0 => b"h2".to_vec(),
                    1 => b"http/1.1".to_vec(),
                    _ => input.short(),
                })
                .collect(),
        );
    }
    if flags & 8 != 0 {
        hello.versions = Some(vec![0x0304, 0x0303]);
    }
    for _ in 0..input.byte() % 4 {
        let kind = u16::from_be_bytes([input.byte(), input.byte()]);
        let data = input.short();
        hello.extra.push((kind, data));
    }
    let mut sizes: Vec<usize> = (0..input.byte() % 4)
        .map(|_| usize::from(input.byte()) + 1)
        .collect();
    if sizes.is_empty() {
        sizes.push(16384);
    }
    let mut bytes = tls::records(&hello.message(), &sizes);
    // What follows the ClientHello (early data, garbage).
    bytes.extend_from_slice(input.0);
    bytes
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mode = input.byte();
    let config = Config::from_json(CONFIGS[usize::from(input.byte()) % CONFIGS.len()].as_bytes())
        .expect("fuzz configs are valid");
    let write = usize::from(input.byte()).max(1);
    let stream = if mode % 2 == 0 {
        build(&mut input)
    } else {
        [&[22u8][..], input.0].concat()
    };

    let mut host = RecordingHost::default();
    host.filter_chain = Some(b"PassthroughFilterChain".to_vec());
    let mut filter = ConnectionFilter::new(&mut host);
    let mut ids = IdGenerator::from_seed(1);
    let mut passed = Vec::new();
    for chunk in stream.chunks(write) {
        host.downstream.extend_from_slice(chunk);
        let len = host.downstream.len();
        match filter.on_data(&mut host, &config, &mut ids, len, false) {
            Verdict::Continue => passed.append(&mut host.downstream),
            Verdict::Pause => {}
            Verdict::Close => panic!("closed with the clock standing still"),
        }
    }
    // Unchanged and in order: passed on, then still held.
    assert_eq!([passed.as_slice(), &host.downstream].concat(), stream);

    let named = host.count(Counter::NetworkTls) == 1;
    let left_tls = host.count(Counter::NetworkLeft(Leave::Tls)) == 1;
    let too_large = host.count(Counter::NetworkLeft(Leave::TooLarge)) == 1;
    let limit = config.limits.max_held_bytes;
    match tls::read(&stream) {
        Outcome::Complete {
            server_name, alpn, ..
        } => {
            if too_large {
                // Only a hello whose bytes reach the limit (or whose records claim more).
                assert!(
                    stream.len() >= limit,
                    "a whole ClientHello below the limit left as too large"
                );
                return;
            }
            assert!(named, "oracle read a whole ClientHello, the filter did not");
            assert!(host.downstream.is_empty(), "named, and still holding bytes");
            let alpn_state = host
                .filter_state
                .iter()
                .find(|(k, _)| k == STATE_TLS_ALPN)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            match server_name {
                Some(name) => {
                    assert_eq!(host.unregistered, [name.into_bytes()]);
                    assert_eq!(alpn_state, shown_alpn(&alpn).into_bytes());
                }
                None => {
                    assert!(host.unregistered.is_empty());
                    assert_eq!(host.count(Counter::NetworkTlsNoServerName), 1);
                }
            }
        }
        Outcome::Partial => {
            assert!(!named && !left_tls, "oracle: not whole yet");
            if !too_large {
                assert_eq!(passed, b"", "a partial ClientHello is held");
            }
        }
        Outcome::Malformed => {
            assert!(!named, "oracle: malformed");
            assert!(left_tls || too_large, "malformed and not left");
        }
    }
});

/// The ALPN list as the filter shows it: names of letters, digits and `._/-` that are not
/// GREASE values, joined by `,`, while the text stays under 128 bytes.
fn shown_alpn(names: &[Vec<u8>]) -> String {
    let mut text = String::new();
    for name in names {
        let grease = name.len() == 2 && name[0] == name[1] && name[0] & 0x0f == 0x0a;
        let plain = name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(b));
        if plain && !grease && text.len() + name.len() < 128 {
            if !text.is_empty() {
                text.push(',');
            }
            text.push_str(std::str::from_utf8(name).unwrap());
        }
    }
    text
}
