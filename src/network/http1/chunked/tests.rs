//! Chunked bodies followed without their data.

use crate::network::Leave;
use crate::network::http1::chunked::Chunked;

/// Follows `body` given in pieces of `step` bytes; returns where it ended (bytes consumed).
fn follow(body: &[u8], step: usize) -> Result<Option<usize>, Leave> {
    let mut c = Chunked::new(60 * 1024);
    let mut at = 0usize;
    while at < body.len() {
        let skip = c.skippable();
        if skip > 0 {
            let n = (skip as usize).min(step).min(body.len() - at);
            c.skip(n as u64);
            at += n;
            continue;
        }
        let end = (at + step).min(body.len());
        let fed = c.feed(&body[at..end])?;
        at += fed.consumed;
        if fed.done {
            return Ok(Some(at));
        }
    }
    Ok(c.is_done().then_some(at))
}

#[test]
fn bodies_end_where_they_end_whatever_the_pieces() {
    let bodies: [&[u8]; 4] = [
        b"5\r\nhello\r\n0\r\n\r\n",
        b"1A;name=value;x\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
        b"4\r\n\r\n\r\n\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n",
        b"000\r\n\r\n",
    ];
    for body in bodies {
        for step in 1..=body.len() {
            let mut with_next = body.to_vec();
            with_next.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            assert_eq!(
                follow(&with_next, step),
                Ok(Some(body.len())),
                "{body:?} in {step}-byte pieces"
            );
        }
    }
}

#[test]
fn chunk_data_is_skipped_not_read() {
    let mut c = Chunked::new(1024);
    assert_eq!(c.feed(b"ffffffff\r\nignored").unwrap().consumed, 10);
    assert_eq!(c.skippable(), 0xffff_ffff);
    c.skip(0xffff_fff0);
    assert_eq!(c.skippable(), 0xf);
}

#[test]
fn broken_framing_is_left_to_envoy() {
    let cases: [(&[u8], Leave); 9] = [
        (b"5\r\nhelloX\r\n0\r\n\r\n", Leave::Ambiguous),
        (b"5\nhello\r\n0\r\n\r\n", Leave::Ambiguous),
        (b"5\r\nhello\r\n0\r\n\n", Leave::Ambiguous),
        (b"5 \r\nhello\r\n0\r\n\r\n", Leave::Ambiguous),
        (b"-5\r\nhello\r\n0\r\n\r\n", Leave::Ambiguous),
        (b"x\r\n", Leave::Ambiguous),
        (b"11111111111111111\r\n", Leave::Ambiguous),
        (b"5;a\x01b\r\nhello\r\n0\r\n\r\n", Leave::Ambiguous),
        (b"0\r\nbad trailer\r\n\r\n", Leave::Ambiguous),
    ];
    for (body, reason) in cases {
        for step in [1, 3, body.len()] {
            assert_eq!(follow(body, step), Err(reason), "{body:?} in {step}");
        }
    }
}

#[test]
fn overlong_lines_and_trailers_are_too_large() {
    let mut long_ext = b"5;".to_vec();
    long_ext.extend(std::iter::repeat_n(b'a', 5000));
    long_ext.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    assert_eq!(follow(&long_ext, 100), Err(Leave::TooLarge));

    let mut c = Chunked::new(64);
    let mut trailers = b"0\r\n".to_vec();
    for i in 0..10 {
        trailers.extend_from_slice(format!("X-Trailer-{i}: value\r\n").as_bytes());
    }
    trailers.extend_from_slice(b"\r\n");
    assert_eq!(c.feed(&trailers), Err(Leave::TooLarge));
}
