//! Request heads per RFC 9112: what is parsed, and what is left to Envoy.

use crate::network::Leave;
use crate::network::http1::head::{Body, Field, head_end, parse, scan};

/// What a scan says of bytes that are not a complete head: `Ok` when it waits for more.
fn check_prefix(bytes: &[u8]) -> Result<(), Leave> {
    match scan(bytes)? {
        None => Ok(()),
        Some(_) => panic!("complete: {bytes:?}"),
    }
}

fn body_of(head: &str) -> Result<(Body, bool), Leave> {
    parse(head.as_bytes()).map(|h| (h.body, h.tunnel))
}

#[test]
fn a_get_with_fields() {
    let text = "GET /api/v1/x?y=1 HTTP/1.1\r\nHost: a.example\r\ntraceparent:  00-ab  \r\nX-Empty:\r\n\r\n";
    let head = parse(text.as_bytes()).unwrap();
    assert_eq!(head.body, Body::None);
    assert!(!head.tunnel);
    assert_eq!(head.field_count, 3);
    assert_eq!(head.request_line(), b"GET /api/v1/x?y=1 HTTP/1.1\r\n");
    let fields: Vec<Field<'_>> = head.fields().collect();
    assert_eq!(fields.len(), 3);
    assert_eq!(fields[1].name, b"traceparent");
    assert_eq!(
        fields[1].value, b"00-ab",
        "OWS around the value is not part of it"
    );
    assert_eq!(
        &text.as_bytes()[fields[1].line.clone()],
        b"traceparent:  00-ab  \r\n"
    );
    assert_eq!(fields[2].value, b"");
}

#[test]
fn bodies_by_content_length_and_chunked() {
    let cl = "POST / HTTP/1.1\r\nContent-Length: 42\r\n\r\n";
    assert_eq!(body_of(cl), Ok((Body::Length(42), false)));
    let zero = "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n";
    assert_eq!(body_of(zero), Ok((Body::None, false)));
    let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n";
    assert_eq!(body_of(chunked), Ok((Body::Chunked, false)));
    let http10 = "GET / HTTP/1.0\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(body_of(http10), Ok((Body::Length(3), false)));
    let bare = "GET / HTTP/1.1\r\n\r\n";
    assert_eq!(body_of(bare), Ok((Body::None, false)));
}

#[test]
fn connect_and_upgrade_are_tunnels() {
    assert_eq!(
        body_of("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"),
        Ok((Body::None, true))
    );
    assert_eq!(
        body_of("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
        Ok((Body::None, true))
    );
    assert_eq!(
        body_of(
            "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive ,UPGRADE\r\n\r\n"
        ),
        Ok((Body::None, true))
    );
}

#[test]
fn an_upgrade_field_without_the_connection_token_is_an_ordinary_request() {
    // Envoy's codec goes on reading HTTP/1 after it: so must the filter, or a client could
    // make it step aside (and escape `trust`) with `Upgrade: x`.
    assert_eq!(
        body_of("GET / HTTP/1.1\r\nUpgrade: x\r\n\r\n"),
        Ok((Body::None, false))
    );
    assert_eq!(
        body_of("GET / HTTP/1.1\r\nUpgrade: x\r\nConnection: upgraded\r\n\r\n"),
        Ok((Body::None, false))
    );
    // Envoy's codec drops an h2c upgrade's fields and reads on in HTTP/1.
    assert_eq!(
        body_of(
            "GET / HTTP/1.1\r\nUpgrade: H2C\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        ),
        Ok((Body::None, false))
    );
    // Envoy joins repeated values with commas, leaving empty ones out: `h2c` again.
    assert_eq!(
        body_of("GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\nUpgrade: \r\n\r\n"),
        Ok((Body::None, false))
    );
    // An empty Upgrade value alone is still an upgrade to Envoy.
    assert_eq!(
        body_of("GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade:\r\n\r\n"),
        Ok((Body::None, true))
    );
    // Two Upgrade fields are one value `h2c,websocket` to Envoy: a tunnel.
    assert_eq!(
        body_of(
            "GET / HTTP/1.1\r\nUpgrade: h2c\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        ),
        Ok((Body::None, true))
    );
}

#[test]
fn a_head_request_is_marked() {
    assert!(parse(b"HEAD / HTTP/1.1\r\n\r\n").unwrap().head_method);
    assert!(!parse(b"GET / HTTP/1.1\r\n\r\n").unwrap().head_method);
}

#[test]
fn http2_prior_knowledge_is_recognised() {
    assert_eq!(body_of("PRI * HTTP/2.0\r\n\r\n").unwrap_err(), Leave::Http2);
}

#[test]
fn ambiguous_framing_is_left_to_envoy() {
    let cases = [
        // RFC 9112 section 6.1: both is a smuggling vector; Envoy refuses it.
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        // Two Content-Lengths, even equal (Envoy refuses both).
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
        // Codings other than a single chunked.
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        // obs-fold, whitespace before the colon, no colon, empty name.
        "GET / HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n",
        "GET / HTTP/1.1\r\nX-A: 1\r\n\t2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET / HTTP/1.1\r\nnocolon\r\n\r\n",
        "GET / HTTP/1.1\r\n: empty\r\n\r\n",
        // Bare LF and bare CR.
        "GET / HTTP/1.1\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        // Control bytes in a value.
        "GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
        "GET / HTTP/1.1\r\nX-A: a\x7fb\r\n\r\n",
        "GET / HTTP/1.1\r\nX-A: a\x1bb\r\n\r\n",
    ];
    for case in cases {
        assert_eq!(body_of(case).unwrap_err(), Leave::Ambiguous, "{case:?}");
    }
}

#[test]
fn not_http1_request_lines() {
    let cases = [
        "GET /  HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        "GET /\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",
        "GET /caf\u{e9} HTTP/1.1\r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n",
        "\x16\x03\x01\x02\x00\r\n\r\n",
    ];
    for case in cases {
        assert_eq!(body_of(case).unwrap_err(), Leave::NotHttp1, "{case:?}");
    }
}

#[test]
fn obs_text_in_values_is_a_field() {
    let head = parse("GET / HTTP/1.1\r\nX-Name: caf\u{e9}\r\n\r\n".as_bytes()).unwrap();
    assert_eq!(head.fields().next().unwrap().value, "caf\u{e9}".as_bytes());
}

#[test]
fn head_end_finds_the_empty_line() {
    assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
    assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\n"), Some(24));
    assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r"), None);
    assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), None);
}

#[test]
fn every_prefix_of_a_valid_head_may_go_on() {
    let heads = [
        "GET /a HTTP/1.1\r\nHost: x\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n",
        "POST /upload HTTP/1.0\r\nContent-Length: 10\r\nX-Name: caf\u{e9}\t \r\n\r\n",
    ];
    for head in heads {
        let bytes = head.as_bytes();
        for cut in 0..bytes.len() {
            assert_eq!(check_prefix(&bytes[..cut]), Ok(()), "{:?}", &head[..cut]);
        }
    }
}

#[test]
fn prefixes_that_cannot_become_a_head_are_refused_at_once() {
    // A TLS ClientHello on a plaintext port, a binary probe: no waiting for a CRLF CRLF
    // that will never come.
    assert_eq!(
        check_prefix(b"\x16\x03\x01\x00\xa5\x01"),
        Err(Leave::NotHttp1)
    );
    assert_eq!(check_prefix(b"\x00\x00"), Err(Leave::NotHttp1));
    assert_eq!(check_prefix(b"GET / HTTP/1.1\nHo"), Err(Leave::Ambiguous));
    assert_eq!(
        check_prefix(b"GET / HTTP/1.1\r\nA: b\rc"),
        Err(Leave::Ambiguous)
    );
    assert_eq!(
        check_prefix(b"GET / HTTP/1.1\r\n fold"),
        Err(Leave::Ambiguous)
    );
    assert_eq!(
        check_prefix(b"GET / HTTP/1.1\r\nA: \x01"),
        Err(Leave::Ambiguous)
    );
    assert_eq!(check_prefix(b"GET / HTTP/9.9\r\nA"), Err(Leave::NotHttp1));
    assert_eq!(
        check_prefix(b"GET / HTTP/1.1\r\nbad line\r\nA"),
        Err(Leave::Ambiguous)
    );
}

/// The first byte below 0x20 or DEL, one byte at a time: what the word-at-a-time scan
/// must find.
fn next_special_bytewise(bytes: &[u8], at: usize) -> usize {
    (at..bytes.len())
        .find(|i| bytes[*i] < 0x20 || bytes[*i] == 0x7f)
        .unwrap_or(bytes.len())
}

#[test]
fn the_word_scan_finds_every_special_byte_at_every_offset() {
    use crate::network::http1::head::next_special;
    // Each byte value, alone among value bytes (the ones next to the limits of the
    // ranges among them), at each offset of a 24-byte slice, scanned from each start.
    for fill in [b'a', b' ', 0x80, 0xff, 0x7e, 0x21] {
        for b in 0..=255u8 {
            for pos in 0..24 {
                let mut bytes = vec![fill; 24];
                bytes[pos] = b;
                for start in 0..24 {
                    assert_eq!(
                        next_special(&bytes, start),
                        next_special_bytewise(&bytes, start),
                        "byte {b:#x} at {pos} in {fill:#x}s from {start}"
                    );
                }
            }
        }
    }
    // Random bytes, special ones frequent: the first of several is found.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        let bytes: Vec<u8> = (0..40)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let b = state as u8;
                if b.is_multiple_of(7) {
                    b % 0x21
                } else {
                    b | 0x20
                }
            })
            .collect();
        let start = (state % 40) as usize;
        assert_eq!(
            next_special(&bytes, start),
            next_special_bytewise(&bytes, start),
            "{bytes:?} from {start}"
        );
    }
}
