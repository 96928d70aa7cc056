//! HTTP/2 connections through the simulated Envoy ([`crate::network::envoy_loop`]), whose
//! HTTP/2 codec takes every byte passed on: what the HCM receives, decoded by a decoder of
//! its own.

use rand::rngs::SmallRng;

use super::frame;
use super::hpack::Decoder;
use crate::config::Config;
use crate::filter::Counter;
use crate::ids::IdGenerator;
use crate::network::envoy_loop::{CrateCodec, EnvoyLoop};
use crate::network::{ConnectionFilter, Leave, Verdict};
use crate::testing::generate::{below, one_in, rng};
use crate::testing::h2::{self, Encoder, Fields, Style};

const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const S: &str = "00f067aa0ba902b7";

fn envoy(config: &str) -> EnvoyLoop<CrateCodec> {
    EnvoyLoop::new(
        Config::from_json(config.as_bytes()).unwrap(),
        IdGenerator::from_seed(5),
        CrateCodec::default(),
    )
}

fn fields(items: &[(&str, &str)]) -> Fields {
    items
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

fn request(path: &str, extra: &[(&str, &str)]) -> Fields {
    let mut f = fields(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "character-api:8080"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]);
    f.extend(fields(extra));
    f
}

/// The header lists the HCM decodes, per block, with their streams.
fn decoded(bytes: &[u8]) -> Vec<(u32, Fields)> {
    let mut d = Decoder::default();
    h2::blocks(bytes)
        .into_iter()
        .map(|(stream, block)| {
            let b = d.decode(&block).unwrap();
            (
                stream,
                b.fields().map(|(n, v)| (n.to_vec(), v.to_vec())).collect(),
            )
        })
        .collect()
}

fn value<'a>(list: &'a Fields, name: &str) -> Option<&'a str> {
    list.iter()
        .find(|(n, _)| n == name.as_bytes())
        .map(|(_, v)| std::str::from_utf8(v).unwrap())
}

fn grpc_call(e: &mut Encoder, stream: u32, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (n, v) in request("/inventory.Stock/Get", extra) {
        e.field(&mut block, &n, &v, Style::Indexing);
    }
    let mut out = h2::headers(stream, &block, false, 1 << 20);
    out.extend(h2::frame(
        frame::DATA,
        frame::END_STREAM,
        stream,
        b"\0\0\0\0\x02hi",
    ));
    out
}

#[test]
fn a_w3c_apps_context_reaches_a_b3_only_tracer_over_h2() {
    let mut wire = envoy(r#"{"position":"network","tracer":"zipkin"}"#);
    let mut client = Encoder::default();
    let tp = format!("00-{T}-{S}-01");
    let mut bytes = h2::preface();
    bytes.extend(grpc_call(&mut client, 1, &[("traceparent", &tp)]));
    assert_eq!(wire.send(&bytes, false), Verdict::Continue);
    assert!(matches!(wire.filter, ConnectionFilter::Http2(_)));
    let lists = decoded(&wire.passed);
    let (stream, list) = &lists[0];
    assert_eq!(*stream, 1);
    assert_eq!(value(list, "x-b3-traceid"), Some(T));
    assert_eq!(value(list, "x-b3-spanid"), Some(S));
    assert_eq!(value(list, "x-b3-sampled"), Some("1"));
    assert_eq!(value(list, "traceparent"), Some(tp.as_str()));
    assert_eq!(
        &list[..7],
        &request("/inventory.Stock/Get", &[("traceparent", &tp)])[..]
    );
    assert_eq!(h2::other_frames(&wire.passed), h2::other_frames(&bytes));
    assert_eq!(wire.host.count(Counter::NetworkHead), 1);
    assert_eq!(wire.host.count(Counter::NetworkRewritten), 1);
    // The next call on the connection refers to the first one's entries by index.
    let tp2 = format!("00-{T}-{}-01", "1111111111111111");
    let next = grpc_call(&mut client, 3, &[("traceparent", &tp2)]);
    wire.send(&next, false);
    let lists = decoded(&wire.passed);
    assert_eq!(value(&lists[1].1, "x-b3-spanid"), Some("1111111111111111"));
    assert_eq!(lists[1].0, 3);
}

#[test]
fn restart_takes_the_clients_context_away_from_the_tracer_over_h2() {
    let mut wire = envoy(r#"{"position":"network","tracer":"zipkin","trust":"restart"}"#);
    let mut client = Encoder::default();
    let tp = format!("00-{T}-{S}-01");
    let mut bytes = h2::preface();
    bytes.extend(grpc_call(
        &mut client,
        1,
        &[
            ("traceparent", &tp),
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
            ("x-b3-sampled", "1"),
        ],
    ));
    // Every byte in one write, and again a byte at a time: the same.
    for step in [bytes.len(), 1] {
        let mut wire2 = envoy(r#"{"position":"network","tracer":"zipkin","trust":"restart"}"#);
        for piece in bytes.chunks(step) {
            wire2.send(piece, false);
        }
        let lists = decoded(&wire2.passed);
        assert_eq!(
            lists[0].1,
            request("/inventory.Stock/Get", &[]),
            "step {step}"
        );
        assert!(wire2.host.downstream.is_empty());
    }
    wire.send(&bytes, false);
    assert_eq!(
        decoded(&wire.passed)[0].1,
        request("/inventory.Stock/Get", &[])
    );
}

#[test]
fn a_block_cut_off_is_held_until_it_is_whole() {
    let mut client = Encoder::default();
    let tp = format!("00-{T}-{S}-01");
    let mut bytes = h2::preface();
    bytes.extend(grpc_call(&mut client, 1, &[("traceparent", &tp)]));
    let mut whole = envoy(r#"{"position":"network","tracer":"zipkin"}"#);
    whole.send(&bytes, false);
    for step in [1, 2, 5, 9, 10, 33] {
        let mut wire = envoy(r#"{"position":"network","tracer":"zipkin"}"#);
        for piece in bytes.chunks(step) {
            wire.send(piece, false);
        }
        assert_eq!(wire.passed, whole.passed, "step {step}");
        assert!(wire.pauses > 0);
        assert!(wire.host.downstream.is_empty());
    }
}

#[test]
fn continuation_frames_padding_and_priority() {
    let mut client = Encoder::default();
    let big = "v".repeat(20_000);
    let mut block = Vec::new();
    for (n, v) in request("/big", &[("x-big", &big), ("b3", &format!("{T}-{S}-1"))]) {
        client.field(&mut block, &n, &v, Style::WithoutIndexing);
    }
    let mut bytes = h2::preface();
    // The block in frames of 1,000 bytes: HEADERS and many CONTINUATION frames.
    bytes.extend(h2::headers(1, &block, true, 1000));
    let mut block2 = Vec::new();
    for (n, v) in request("/small", &[("b3", &format!("{T}-{S}-1"))]) {
        client.field(&mut block2, &n, &v, Style::Indexing);
    }
    bytes.extend(h2::headers_padded(3, &block2, 7));
    let mut wire =
        envoy(r#"{"position":"network","tracer":"opentelemetry","max_request_headers_kb":96}"#);
    let mut config = wire.config.clone();
    config.limits.max_held_bytes = 1 << 20;
    wire.config = config;
    wire.send(&bytes, false);
    let lists = decoded(&wire.passed);
    let tp = format!("00-{T}-{S}-01");
    assert_eq!(value(&lists[0].1, "traceparent"), Some(tp.as_str()));
    assert_eq!(value(&lists[0].1, "x-big"), Some(big.as_str()));
    assert_eq!(value(&lists[1].1, "traceparent"), Some(tp.as_str()));
    let frames = h2::frames(&wire.passed);
    // 20 KB written back: HEADERS of 16,384 at most, then CONTINUATION.
    assert_eq!(frames[1].0.kind, frame::HEADERS);
    assert_eq!(frames[1].0.flags, frame::END_STREAM);
    assert_eq!(frames[1].0.len, frame::MAX_FRAME);
    assert_eq!(frames[2].0.kind, frame::CONTINUATION);
    assert_eq!(frames[2].0.flags, frame::END_HEADERS);
    // Padding and priority kept.
    let (h, payload) = &frames[3];
    assert_eq!(
        h.flags,
        frame::END_HEADERS | frame::PADDED | frame::PRIORITY
    );
    assert_eq!(payload[0], 7);
    assert_eq!(&payload[1..6], &[0, 0, 0, 0, 15]);
    assert_eq!(&payload[payload.len() - 7..], &[0; 7]);
}

#[test]
fn trailers_and_other_frames_pass_as_they_are() {
    let mut wire = envoy(r#"{"position":"network","tracer":"zipkin"}"#);
    let mut client = Encoder::default();
    let mut bytes = h2::preface();
    let tp = format!("00-{T}-{S}-01");
    bytes.extend(grpc_call(&mut client, 1, &[("traceparent", &tp)]));
    let mut trailers = Vec::new();
    client.field(
        &mut trailers,
        b"traceparent",
        tp.as_bytes(),
        Style::Indexing,
    );
    let trailer_frames = h2::headers(1, &trailers, true, 100);
    bytes.extend(&trailer_frames);
    bytes.extend(h2::frame(0x6, 0, 0, b"pingping"));
    bytes.extend(h2::frame(0x8, 0, 0, &[0, 0, 1, 0]));
    bytes.extend(h2::frame(0x3, 0, 5, &[0, 0, 0, 8]));
    bytes.extend(h2::frame(0xfa, 0x3, 9, b"unknown"));
    wire.send(&bytes, false);
    assert!(
        wire.passed
            .ends_with(&bytes[bytes.len() - 17 - 13 - 13 - 16 - trailer_frames.len()..])
    );
    assert_eq!(h2::other_frames(&wire.passed), h2::other_frames(&bytes));
    assert_eq!(wire.host.count(Counter::NetworkHead), 1);
}

#[test]
fn what_envoy_refuses_is_left_alone_or_closed_under_trust() {
    let mut client = Encoder::default();
    let mut good = h2::preface();
    good.extend(grpc_call(&mut client, 1, &[("b3", "1")]));
    let cases: Vec<(Vec<u8>, Leave)> = vec![
        // A CONTINUATION with no HEADERS before it.
        (
            h2::frame(frame::CONTINUATION, frame::END_HEADERS, 3, &[0x82]),
            Leave::Http2,
        ),
        // A HEADERS on stream 0, and on an even stream.
        (h2::headers(0, &[0x82], false, 10), Leave::Http2),
        (h2::headers(4, &[0x82], false, 10), Leave::Http2),
        // A block that does not decode (an index past the table).
        (h2::headers(3, &[0xff, 0x20], false, 10), Leave::Hpack),
        // Another frame inside a block.
        (
            [
                h2::frame(frame::HEADERS, 0, 3, &[0x82]),
                h2::frame(0x6, 0, 0, b"pingping"),
            ]
            .concat(),
            Leave::Http2,
        ),
        // Padding longer than the frame.
        (
            h2::frame(
                frame::HEADERS,
                frame::END_HEADERS | frame::PADDED,
                3,
                &[9, 0x82],
            ),
            Leave::Http2,
        ),
        (
            h2::frame(
                frame::PUSH_PROMISE,
                frame::END_HEADERS,
                3,
                &[0, 0, 0, 2, 0x82],
            ),
            Leave::Http2,
        ),
    ];
    for (bad, reason) in cases {
        let mut bytes = good.clone();
        bytes.extend(&bad);
        bytes.extend(grpc_call(&mut client.clone(), 5, &[("b3", "1")]));
        let mut wire = envoy(r#"{"position":"network","tracer":"zipkin"}"#);
        wire.send(&good, false);
        let before = wire.passed.len();
        wire.send(&bytes[good.len()..], false);
        assert_eq!(
            wire.host.count(Counter::NetworkLeft(reason)),
            1,
            "{reason:?}"
        );
        assert_eq!(&wire.passed[before..], &bytes[good.len()..], "{reason:?}");
        let mut wire = envoy(r#"{"position":"network","tracer":"zipkin","trust":"restart"}"#);
        wire.send(&good, false);
        assert_eq!(
            wire.send(&bytes[good.len()..], false),
            Verdict::Close,
            "{reason:?}"
        );
        assert_eq!(wire.host.count(Counter::NetworkClosed), 1);
    }
    // The preface anywhere but first is HTTP/1's to refuse.
    let mut wire = envoy(r#"{"position":"network","tracer":"zipkin"}"#);
    wire.send(b"\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false);
    assert_eq!(wire.host.count(Counter::NetworkLeft(Leave::Http2)), 1);
}

#[test]
fn a_block_held_past_the_limits_is_let_go() {
    let mut client = Encoder::default();
    let mut bytes = h2::preface();
    let block = {
        let mut b = Vec::new();
        client.field(
            &mut b,
            b"x-big",
            "v".repeat(40_000).as_bytes(),
            Style::WithoutIndexing,
        );
        b
    };
    bytes.extend(h2::headers(1, &block, false, 16_000));
    let mut wire = envoy(r#"{"position":"network","tracer":"zipkin"}"#);
    for piece in bytes.chunks(4000) {
        wire.send(piece, false);
    }
    assert_eq!(wire.host.count(Counter::NetworkLeft(Leave::TooLarge)), 1);
    assert_eq!(wire.passed, bytes);
    // A block not complete in time.
    let mut wire =
        envoy(r#"{"position":"network","tracer":"zipkin","request_headers_timeout_ms":100}"#);
    wire.send(&bytes[..40], false);
    assert_eq!(wire.filter.held_since(), Some(wire.host.now));
    wire.host.now += 100_000_000;
    assert_eq!(wire.send(&bytes[40..41], false), Verdict::Close);
    assert_eq!(wire.host.count(Counter::NetworkLeft(Leave::SlowHead)), 1);
}

/// Random connections: many interleaved streams, trace headers in several formats, every
/// representation, random writes. What the HCM decodes is the client's fields with only
/// trace headers changed, every other frame is unchanged, and the filter's view of Envoy's
/// table is the HCM decoder's.
#[test]
fn random_connections_change_only_trace_headers() {
    const TRACE_NAMES: &[&str] = &[
        "traceparent",
        "tracestate",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
        "uber-trace-id",
    ];
    let configs = [
        r#"{"position":"network","tracer":"zipkin"}"#,
        r#"{"position":"network","tracer":"opentelemetry"}"#,
        r#"{"position":"network","tracer":"zipkin","trust":"restart"}"#,
        r#"{"position":"network","tracer":"opentelemetry","trust":"resample"}"#,
    ];
    for seed in 0..300u64 {
        let mut r = rng(seed);
        let config = configs[below(&mut r, configs.len())];
        let mut client = Encoder::default();
        let mut bytes = h2::preface();
        let mut sent: Vec<(u32, Fields)> = Vec::new();
        let mut stream = 1;
        for _ in 0..(1 + below(&mut r, 12)) {
            let list = random_request(&mut r);
            let block = client.block(&mut r, &list);
            match below(&mut r, 4) {
                0 => bytes.extend(h2::headers_padded(stream, &block, below(&mut r, 20) as u8)),
                _ => bytes.extend(h2::headers(
                    stream,
                    &block,
                    one_in(&mut r, 3),
                    1 + below(&mut r, 200),
                )),
            }
            sent.push((stream, list));
            if one_in(&mut r, 2) {
                let data = vec![b'd'; below(&mut r, 3000)];
                bytes.extend(h2::frame(frame::DATA, 0, stream, &data));
            }
            if one_in(&mut r, 4) {
                bytes.extend(h2::frame(0x3, 0, stream, &[0, 0, 0, 8]));
            }
            if one_in(&mut r, 4) {
                bytes.extend(h2::frame(0x6, 0, 0, b"01234567"));
            }
            if one_in(&mut r, 5) {
                // Trailers on an earlier stream.
                let list = fields(&[("grpc-status", "0"), ("traceparent", "not-changed")]);
                let block = client.block(&mut r, &list);
                let on = sent[below(&mut r, sent.len())].0;
                bytes.extend(h2::headers(on, &block, true, 50));
                sent.push((on, list));
            }
            stream += 2;
        }
        let mut wire = envoy(config);
        let mut at = 0;
        while at < bytes.len() {
            let n = (1 + below(&mut r, 400)).min(bytes.len() - at);
            wire.send(&bytes[at..at + n], false);
            at += n;
        }
        let context = format!("seed {seed} {config}");
        assert!(wire.host.downstream.is_empty(), "{context}");
        assert_eq!(
            wire.host.count(Counter::NetworkLeft(Leave::Hpack)),
            0,
            "{context}"
        );
        assert_eq!(
            wire.host.count(Counter::NetworkLeft(Leave::Http2)),
            0,
            "{context}"
        );
        assert_eq!(
            h2::other_frames(&wire.passed),
            h2::other_frames(&bytes),
            "{context}"
        );
        let got = decoded(&wire.passed);
        assert_eq!(got.len(), sent.len(), "{context}");
        let mut requests = 0;
        let mut seen = std::collections::HashSet::new();
        for ((s1, out), (s2, input)) in got.iter().zip(&sent) {
            assert_eq!(s1, s2, "{context}");
            let first = seen.insert(*s1);
            let strip = |l: &Fields| -> Fields {
                l.iter()
                    .filter(|(n, _)| !TRACE_NAMES.contains(&std::str::from_utf8(n).unwrap()))
                    .cloned()
                    .collect()
            };
            if first {
                requests += 1;
                assert_eq!(strip(out), strip(input), "{context}");
            } else {
                assert_eq!(out, input, "trailers {context}");
            }
        }
        assert_eq!(wire.host.count(Counter::NetworkHead), requests, "{context}");
        let ConnectionFilter::Http2(c) = &wire.filter else {
            panic!("{context}");
        };
        let mut hcm = Decoder::default();
        for (_, block) in h2::blocks(&wire.passed) {
            hcm.decode(&block).unwrap();
        }
        assert_eq!(c.decoder().envoy_table(), hcm.client_table(), "{context}");
    }
}

fn random_request(r: &mut SmallRng) -> Fields {
    let tp = format!("00-{T}-{:016x}-0{}", r_u64(r), below(r, 2));
    let mut extra: Vec<(String, String)> = vec![];
    let choices = [
        ("traceparent", tp.clone()),
        ("tracestate", "congo=t61rcWkgMzE".to_string()),
        ("b3", format!("{T}-{S}-1")),
        ("x-b3-traceid", T.to_string()),
        ("x-b3-spanid", format!("{:016x}", r_u64(r))),
        ("x-b3-sampled", "1".to_string()),
        ("traceparent", "garbage".to_string()),
        ("uber-trace-id", format!("{T}:{S}:0:1")),
        ("user-agent", "grpc-python/1.7".to_string()),
        ("x-request-id", format!("{}", below(r, 3))),
    ];
    for _ in 0..below(r, 6) {
        let (n, v) = &choices[below(r, choices.len())];
        extra.push((n.to_string(), v.clone()));
    }
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    request(&format!("/svc/M{}", below(r, 3)), &extra)
}

fn r_u64(r: &mut SmallRng) -> u64 {
    rand::RngCore::next_u64(r) | 1
}

/// A unary gRPC call on a connection already open: one read (a window of 2 KiB holds its
/// HEADERS frame and its DATA frame's header) and the write; the 16 KB message past the
/// window is skipped, not read. A call the plan leaves as it is: the read alone.
#[test]
fn a_grpc_call_costs_one_read_and_one_write() {
    let mut wire = envoy(r#"{"position":"network","tracer":"zipkin"}"#);
    let mut client = Encoder::default();
    let tp = format!("00-{T}-{S}-01");
    wire.send(&h2::preface(), false);
    wire.send(&grpc_call(&mut client, 1, &[("traceparent", &tp)]), false);
    let message = vec![7u8; 16_000];
    let mut call = grpc_call(&mut client, 3, &[("traceparent", &tp)]);
    call.truncate(call.len() - 16);
    call.extend(h2::frame(frame::DATA, frame::END_STREAM, 3, &message));
    wire.host.calls = 0;
    wire.send(&call, false);
    assert_eq!(wire.host.calls, 2);
    assert_eq!(wire.host.count(Counter::NetworkRewritten), 2);
    let mut wire =
        envoy(r#"{"position":"network","tracer":"opentelemetry","propagate":["tracecontext"]}"#);
    let mut client = Encoder::default();
    wire.send(&h2::preface(), false);
    wire.host.calls = 0;
    wire.send(&grpc_call(&mut client, 1, &[("traceparent", &tp)]), false);
    assert_eq!(wire.host.count(Counter::NetworkRewritten), 0);
    assert_eq!(wire.host.calls, 1);
}

/// Once a dropped indexed literal has made Envoy's table differ from the client's, the
/// filter cannot stop following: blocks passed on as they are would be decoded against the
/// wrong table. So what would leave the connection closes it, `trust` or not.
#[test]
fn a_connection_whose_tables_differ_is_closed_not_left() {
    let mut wire = envoy(r#"{"position":"network","tracer":"zipkin"}"#);
    let mut client = Encoder::default();
    let mut bytes = h2::preface();
    // An invalid traceparent, indexed by the client: removed, so the tables differ.
    bytes.extend(grpc_call(
        &mut client,
        1,
        &[("traceparent", "garbage"), ("x-a", "1")],
    ));
    wire.send(&bytes, false);
    assert_eq!(value(&decoded(&wire.passed)[0].1, "traceparent"), None);
    let ConnectionFilter::Http2(c) = &wire.filter else {
        panic!()
    };
    assert!(c.decoder().diverged());
    // A block over the buffer limit.
    let mut block = Vec::new();
    client.field(
        &mut block,
        b"x-big",
        "v".repeat(40_000).as_bytes(),
        Style::WithoutIndexing,
    );
    let big = h2::headers(3, &block, false, 16_000);
    for piece in big.chunks(8_000) {
        if wire.send(piece, false) == Verdict::Close {
            break;
        }
    }
    assert_eq!(wire.host.count(Counter::NetworkLeft(Leave::TooLarge)), 1);
    assert_eq!(wire.host.count(Counter::NetworkClosed), 1);
    assert!(wire.closed);
    // While the tables agree, the same only leaves.
    let mut wire = envoy(r#"{"position":"network","tracer":"zipkin"}"#);
    let mut client = Encoder::default();
    let mut bytes = h2::preface();
    bytes.extend(grpc_call(&mut client, 1, &[("x-a", "1")]));
    wire.send(&bytes, false);
    for piece in big.chunks(8_000) {
        wire.send(piece, false);
    }
    assert_eq!(wire.host.count(Counter::NetworkLeft(Leave::TooLarge)), 1);
    assert_eq!(wire.host.count(Counter::NetworkClosed), 0);
}

/// For profiling (`cargo test --release --lib -- --ignored profile_grpc_calls` under a
/// profiler): 2,000 unary calls on one connection, each rewritten.
#[test]
#[ignore]
fn profile_grpc_calls() {
    let mut wire = envoy(r#"{"position":"network","tracer":"zipkin"}"#);
    let mut client = Encoder::default();
    client.huffman = true;
    wire.send(&h2::preface(), false);
    for i in 0..2000u32 {
        let tp = format!("00-{T}-{:016x}-01", u64::from(i) + 1);
        let mut block = Vec::new();
        for (n, v) in request(
            "/inventory.Stock/Get",
            &[
                ("traceparent", &tp),
                ("user-agent", "grpc-go/1.68.0"),
                ("grpc-timeout", "1S"),
            ],
        ) {
            client.field(&mut block, &n, &v, Style::Indexing);
        }
        let mut call = h2::headers(2 * i + 1, &block, false, 1 << 20);
        call.extend(h2::frame(
            frame::DATA,
            frame::END_STREAM,
            2 * i + 1,
            b"\0\0\0\0\x05hello",
        ));
        wire.send(&call, false);
    }
    assert_eq!(wire.host.count(Counter::NetworkRewritten), 2000);
}

/// While Envoy's table differs from the client's, a block of one-byte references to an
/// entry Envoy does not hold cannot be written back field by field (it would grow a
/// thousandfold): its list is over Envoy's limit, so the connection is closed.
#[test]
fn a_reference_bomb_while_the_tables_differ_closes_the_connection() {
    let mut wire = envoy(r#"{"position":"network","tracer":"zipkin"}"#);
    let mut bytes = h2::preface();
    // traceparent: an invalid 4,000-byte value, indexed: removed, the tables differ.
    let mut block = vec![0x83, 0x86, 0x84, 0x40, 0x0b];
    block.extend_from_slice(b"traceparent");
    Encoder::integer(&mut block, 0, 7, 4000);
    block.extend(std::iter::repeat_n(b'z', 4000));
    bytes.extend(h2::headers(1, &block, false, 1 << 20));
    wire.send(&bytes, false);
    let ConnectionFilter::Http2(c) = &wire.filter else {
        panic!()
    };
    assert!(c.decoder().diverged());
    let before = wire.passed.len();
    let trailers = h2::headers(1, &vec![0xbe; 16_000], true, 16_000);
    assert_eq!(wire.send(&trailers, false), Verdict::Close);
    assert_eq!(wire.passed.len(), before);
    assert_eq!(wire.host.count(Counter::NetworkLeft(Leave::TooLarge)), 1);
}

/// Envoy joins `cookie` fields into one before it counts headers: 100 of them beside a
/// traceparent are within its limits, so the filter must not leave the request alone as
/// over them (the client's context would reach the tracer under `trust`).
#[test]
fn limits_are_counted_as_envoy_counts_them() {
    let mut extra: Vec<(String, String)> = (0..100)
        .map(|i| ("cookie".to_string(), format!("c{i}=1")))
        .collect();
    extra.push(("traceparent".into(), format!("00-{T}-{S}-01")));
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut block = Vec::new();
    let mut client = Encoder::default();
    for (n, v) in request("/c", &extra) {
        client.field(&mut block, &n, &v, Style::Indexing);
    }
    let mut bytes = h2::preface();
    bytes.extend(h2::headers(1, &block, true, 1 << 20));
    let mut wire = envoy(r#"{"position":"network","tracer":"zipkin","trust":"restart"}"#);
    wire.send(&bytes, false);
    let list = &decoded(&wire.passed)[0].1;
    assert_eq!(value(list, "traceparent"), None);
    assert_eq!(list.iter().filter(|(n, _)| n == b"cookie").count(), 100);
    assert_eq!(wire.host.count(Counter::NetworkAtLimit), 0);
}

/// Where what the plan writes would cross Envoy's limits, nothing is written; under `trust`
/// what it would write is removed instead, so the client's context does not reach the
/// tracer (here Zipkin's, reading x-b3-*).
#[test]
fn at_the_limit_trust_still_removes() {
    // Within 1 KiB as sent (names and values), past it with a traceparent added.
    let filler = "f".repeat(800);
    let extra = [
        ("x-filler", filler.as_str()),
        ("x-b3-traceid", T),
        ("x-b3-spanid", S),
        ("x-b3-sampled", "1"),
    ];
    let mut block = Vec::new();
    let mut client = Encoder::default();
    for (n, v) in request("/l", &extra) {
        client.field(&mut block, &n, &v, Style::Indexing);
    }
    let mut bytes = h2::preface();
    bytes.extend(h2::headers(1, &block, true, 1 << 20));
    for (config, kept) in [
        (
            r#"{"position":"network","tracer":"zipkin","max_request_headers_kb":1,"propagate":["b3multi","tracecontext","jaeger"]}"#,
            true,
        ),
        (
            r#"{"position":"network","tracer":"zipkin","max_request_headers_kb":1,"trust":"resample","sampling_ratio":0}"#,
            false,
        ),
    ] {
        let mut wire = envoy(config);
        wire.send(&bytes, false);
        let list = &decoded(&wire.passed)[0].1;
        assert_eq!(
            value(list, "x-b3-sampled").is_some(),
            kept,
            "{config}: {:?}",
            wire.host.count(Counter::NetworkAtLimit)
        );
        assert_eq!(value(list, "traceparent"), None, "{config}");
        assert_eq!(value(list, "x-filler"), Some(filler.as_str()));
        assert_eq!(wire.host.count(Counter::NetworkAtLimit), 1, "{config}");
    }
}

#[test]
fn a_dry_run_passes_every_frame_as_it_came_over_h2() {
    let tp = format!("00-{T}-{S}-01");
    let mut client = Encoder::default();
    let mut bytes = h2::preface();
    bytes.extend(grpc_call(&mut client, 1, &[("traceparent", &tp)]));
    // The second call refers to the first one's entries by index: the tables must agree.
    bytes.extend(grpc_call(&mut client, 3, &[("traceparent", &tp)]));
    bytes.extend(grpc_call(&mut client, 5, &[]));
    for live_config in [
        r#"{"position":"network","tracer":"zipkin"}"#,
        r#"{"position":"network","tracer":"zipkin","trust":"restart"}"#,
    ] {
        let dry_config = format!(r#"{{"dry_run":true,{}"#, &live_config[1..]);
        for step in [bytes.len(), 5] {
            let (mut live, mut dry) = (envoy(live_config), envoy(&dry_config));
            for piece in bytes.chunks(step) {
                live.send(piece, false);
                assert_ne!(dry.send(piece, false), Verdict::Close);
            }
            assert_ne!(
                live.passed, bytes,
                "{live_config}: the live filter rewrites"
            );
            assert_eq!(dry.passed, bytes, "{dry_config}");
            assert_eq!(dry.host.count(Counter::NetworkHead), 3);
            for c in Counter::ALL {
                if c != Counter::DryRunWouldChange {
                    assert_eq!(dry.host.count(c), live.host.count(c), "{c:?} {dry_config}");
                }
            }
            let rewritten = live.host.count(Counter::NetworkRewritten);
            assert!(rewritten >= 2, "{live_config}");
            assert_eq!(dry.host.count(Counter::DryRunWouldChange), rewritten);
            assert_eq!(dry.host.count(Counter::NetworkClosed), 0);
        }
    }
}
