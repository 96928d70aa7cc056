//! The network position on HTTP/2: a client's connection built from the input (request
//! header blocks of trace and ordinary fields in every HPACK representation, raw blocks,
//! trailers, DATA, raw bytes that may break the framing), cut into writes, through
//! `ConnectionFilter` in the crate's simulated Envoy (whose HTTP/2 codec takes every byte).
//!
//! The oracle is written apart from the filter: `tracejoin_fuzz::h2` splits frames,
//! `tracejoin_fuzz::hpack` decodes blocks (its Huffman a bit walk of a tree). What the HCM
//! received must decode, block for block, to what the client sent with only trace headers
//! changed in request heads (trailers exactly as sent), up to the client's first block that
//! does not decode; where the client's stream is whole and valid and the filter followed it
//! to the end, every other frame is unchanged and the filter's view of both tables is the
//! oracle's.
//!
//! Input: `config, write size, then chunks of (tag, length, bytes)`; tag % 5: 0 a raw
//! block (split into CONTINUATION frames when tag bit 3 is set), 1 a block of fields the
//! bytes pick, 2 trailers the bytes pick, 3 a DATA frame, 4 raw bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracejoin::codec::Header;
use tracejoin::config::Config;
use tracejoin::filter::Counter;
use tracejoin::ids::IdGenerator;
use tracejoin::network::envoy_loop::{CrateCodec, EnvoyLoop};
use tracejoin::network::{ConnectionFilter, Leave};
use tracejoin_fuzz::h2::{self, Stop};
use tracejoin_fuzz::hpack::{self, Decoder};

const CONFIGS: [&str; 8] = [
    r#"{"position":"network","tracer":"zipkin"}"#,
    r#"{"position":"network","tracer":"opentelemetry","propagate":["tracecontext","b3","b3multi","jaeger"]}"#,
    r#"{"position":"network","tracer":"none","trust":"restart"}"#,
    r#"{"position":"network","tracer":"zipkin_w3c","trust":"resample","sampling_ratio":0}"#,
    r#"{"position":"network","tracer":"zipkin","max_request_headers_kb":1,"max_request_headers_count":8,"per_connection_buffer_limit_bytes":1024}"#,
    // Dry runs (appended): every byte passes as it came, both tables stay the client's, and
    // nothing is closed for `trust`.
    r#"{"position":"network","tracer":"zipkin","dry_run":true}"#,
    r#"{"position":"network","tracer":"none","trust":"restart","dry_run":true}"#,
    r#"{"position":"network","tracer":"zipkin","trust":"resample","max_request_headers_kb":1,"max_request_headers_count":8,"per_connection_buffer_limit_bytes":1024,"dry_run":true}"#,
];

const FIELDS: [(&[u8], &[u8]); 16] = [
    (b":method", b"POST"),
    (b":path", b"/svc.Stock/Get"),
    (b":authority", b"inventory:50051"),
    (b":scheme", b"http"),
    (b"content-type", b"application/grpc"),
    (b"te", b"trailers"),
    (
        b"traceparent",
        b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ),
    (
        b"traceparent",
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
    ),
    (b"traceparent", b"garbage"),
    (b"tracestate", b"congo=t61rcWkgMzE"),
    (
        b"b3",
        b"4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
    ),
    (b"x-b3-traceid", b"0af7651916cd43dd8448eb211c80319c"),
    (b"x-b3-spanid", b"b7ad6b7169203331"),
    (b"x-b3-sampled", b"1"),
    (
        b"uber-trace-id",
        b"4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1",
    ),
    (b"user-agent", b"grpc-go/1.68.0"),
];

fn string(out: &mut Vec<u8>, bytes: &[u8], huffman: bool) {
    if huffman {
        let coded = hpack::huffman_encode(bytes);
        hpack::integer_encode(out, 0x80, 7, coded.len());
        out.extend_from_slice(&coded);
    } else {
        hpack::integer_encode(out, 0, 7, bytes.len());
        out.extend_from_slice(bytes);
    }
}

/// A block of the fields `picks` choose: each byte a field (low 4 bits), a representation
/// (bits 4-5: incremental, without, never, or indexed from the client's table when it can
/// be, by the oracle's own decoder) and Huffman or not (bit 6).
fn block_of(picks: &[u8], client: &Decoder) -> Vec<u8> {
    let mut out = Vec::new();
    let table = client.table();
    for &b in picks {
        let (name, value) = FIELDS[usize::from(b & 0xf)];
        let huffman = b & 0x40 != 0;
        match (b >> 4) & 3 {
            0 => {
                if let Some(i) = table.iter().position(|(n, v)| n == name && v == value) {
                    hpack::integer_encode(&mut out, 0x80, 7, 62 + i);
                    continue;
                }
                hpack::integer_encode(&mut out, 0x40, 6, 0);
            }
            1 => hpack::integer_encode(&mut out, 0x40, 6, 0),
            2 => hpack::integer_encode(&mut out, 0x00, 4, 0),
            _ => hpack::integer_encode(&mut out, 0x10, 4, 0),
        }
        string(&mut out, name, huffman);
        string(&mut out, value, huffman);
    }
    out
}

fn headers(out: &mut Vec<u8>, stream: u32, block: &[u8], end_stream: bool, piece: usize) {
    let chunks: Vec<&[u8]> = if block.is_empty() {
        vec![&[]]
    } else {
        block.chunks(piece.max(1)).collect()
    };
    for (i, chunk) in chunks.iter().enumerate() {
        let mut flags = if i + 1 == chunks.len() { 0x4 } else { 0 };
        if i == 0 && end_stream {
            flags |= 0x1;
        }
        let kind = if i == 0 { 0x1 } else { 0x9 };
        out.extend_from_slice(&h2::frame(kind, flags, stream, chunk));
    }
}

fn is_trace(name: &[u8]) -> bool {
    Header::from_name(name).is_some()
}

fn without_trace(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    fields
        .iter()
        .filter(|(n, _)| !is_trace(n))
        .cloned()
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let [config, write, rest @ ..] = data else {
        return;
    };
    let config = CONFIGS[usize::from(*config) % CONFIGS.len()];
    let write = if *write == 0 {
        usize::MAX
    } else {
        usize::from(*write) * 3
    };
    // The client's stream, with the oracle's decoder as the client's table.
    let mut stream = h2::PREFACE.to_vec();
    stream.extend_from_slice(&h2::frame(0x4, 0, 0, &[]));
    let mut client = Decoder::new(4096);
    let mut last = 0u32;
    let mut rest = rest;
    while let [tag, len, more @ ..] = rest {
        let n = usize::from(*len).min(more.len());
        let (bytes, after) = more.split_at(n);
        rest = after;
        match tag % 5 {
            0 | 1 => {
                let block = if tag % 5 == 0 {
                    bytes.to_vec()
                } else {
                    block_of(bytes, &client)
                };
                last += 2;
                let piece = if tag & 8 != 0 {
                    1 + usize::from(tag >> 4)
                } else {
                    1 << 20
                };
                headers(&mut stream, last.max(1) | 1, &block, tag & 0x40 != 0, piece);
                last = last.max(1) | 1;
                if client.decode(&block).is_err() {
                    client = Decoder::new(4096);
                }
            }
            2 if last > 0 => {
                let block = block_of(bytes, &client);
                headers(&mut stream, last, &block, true, 1 << 20);
                if client.decode(&block).is_err() {
                    client = Decoder::new(4096);
                }
            }
            3 if last > 0 => stream.extend_from_slice(&h2::frame(0x0, 0, last, bytes)),
            _ => stream.extend_from_slice(bytes),
        }
    }

    let config = Config::from_json(config.as_bytes()).expect("a valid configuration");
    let envoy = run(config.clone(), &stream, write);
    let passed = &envoy.passed;
    if config.dry_run {
        dry_run_checks(&config, &envoy, &stream, write);
    } else {
        assert_eq!(envoy.host.count(Counter::DryRunWouldChange), 0);
    }

    let input = h2::split(&stream, h2::DEFAULT_MAX_FRAME_SIZE);
    let output = h2::split(passed, h2::DEFAULT_MAX_FRAME_SIZE);
    // The client's blocks decoded in order, up to the first that does not decode.
    let mut sent = Decoder::new(4096);
    let mut valid = Vec::new();
    for block in &input.blocks {
        match sent.decode(&block.fragment) {
            Ok(fields) => valid.push((block.first, fields)),
            Err(_) => break,
        }
    }
    let all_valid = valid.len() == input.blocks.len();
    // What the HCM decodes: the same fields, trace headers apart, block for block.
    let mut hcm = Decoder::new(4096);
    for (i, (block, (first, fields))) in output.blocks.iter().zip(&valid).enumerate() {
        let got = hcm.decode(&block.fragment).unwrap_or_else(|e| {
            panic!("block {i}: the HCM cannot decode what the filter passed: {e}")
        });
        if *first {
            assert_eq!(
                without_trace(&got),
                without_trace(fields),
                "block {i}: a request's fields changed"
            );
        } else {
            assert_eq!(&got, fields, "block {i}: trailers changed");
        }
    }
    // The filter followed the whole connection: neither left nor closed it.
    let followed = matches!(envoy.filter, ConnectionFilter::Http2(_))
        && !envoy.closed
        && Leave::ALL
            .iter()
            .all(|r| envoy.host.count(Counter::NetworkLeft(*r)) == 0);
    if followed && all_valid && matches!(input.stop, Some(Stop::End)) {
        assert!(
            envoy.host.downstream.is_empty(),
            "bytes held at a frame boundary"
        );
        assert_eq!(
            output.blocks.len(),
            input.blocks.len(),
            "blocks lost or added"
        );
        let others = |s: &h2::Split, bytes: &[u8]| -> Vec<Vec<u8>> {
            s.frames
                .iter()
                .filter(|f| f.kind != 0x1 && f.kind != 0x9)
                .map(|f| bytes[f.range.clone()].to_vec())
                .collect()
        };
        assert_eq!(
            others(&output, passed),
            others(&input, &stream),
            "a frame other than a block changed"
        );
        if let ConnectionFilter::Http2(c) = &envoy.filter {
            let table = |t: &tracejoin::network::http2::hpack::Table| -> Vec<(Vec<u8>, Vec<u8>)> {
                t.entries().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
            };
            assert_eq!(
                table(c.decoder().client_table()),
                sent.table(),
                "the client's table"
            );
            assert_eq!(
                table(c.decoder().envoy_table()),
                hcm.table(),
                "Envoy's table"
            );
        }
    }
});

/// The client's connection through the simulated Envoy, written `write` bytes at a time.
fn run(config: Config, stream: &[u8], write: usize) -> EnvoyLoop<CrateCodec> {
    let mut envoy = EnvoyLoop::new(config, IdGenerator::from_seed(5), CrateCodec::default());
    for piece in stream.chunks(write.min(stream.len()).max(1)) {
        if envoy.closed {
            break;
        }
        envoy.send(piece, false);
    }
    envoy
}

fn left(envoy: &EnvoyLoop<CrateCodec>) -> u32 {
    Leave::ALL
        .iter()
        .map(|r| envoy.host.count(Counter::NetworkLeft(*r)))
        .sum()
}

/// A dry run: what the HCM took, then what is still held, is exactly what the client
/// wrote (a prefix of it only if the connection was closed, which only a head held too long
/// may do, and this target's clock never moves); the filter's mirror of Envoy's table never
/// leaves the client's; and, against the same connection run live, it read the same
/// request blocks and would have rewritten no more than the live run rewrote.
fn dry_run_checks(config: &Config, envoy: &EnvoyLoop<CrateCodec>, stream: &[u8], write: usize) {
    let host = &envoy.host;
    assert!(
        !envoy.closed || host.count(Counter::NetworkLeft(Leave::SlowHead)) > 0,
        "a dry run closed the connection"
    );
    let passed = &envoy.passed;
    assert!(
        stream.starts_with(passed),
        "a dry run passed bytes the client did not send"
    );
    if !envoy.closed {
        let mut all = passed.clone();
        all.extend_from_slice(&host.downstream);
        all.extend_from_slice(&envoy.socket);
        assert!(all == stream, "a dry run lost, added or changed bytes");
    }
    if let ConnectionFilter::Http2(c) = &envoy.filter {
        assert!(
            !c.decoder().diverged(),
            "a dry run's Envoy table left the client's"
        );
        assert!(!c.left_diverged());
    }
    let would = host.count(Counter::DryRunWouldChange);
    assert_eq!(
        host.count(Counter::NetworkRewritten),
        would,
        "a dry run counts each block it would rewrite once in each"
    );
    // Against the same connection live, where both followed it to the end.
    if left(envoy) > 0 || envoy.closed {
        return;
    }
    let mut live_config = config.clone();
    live_config.dry_run = false;
    let live = run(live_config, stream, write);
    if left(&live) > 0 || live.closed {
        return;
    }
    assert_eq!(
        live.host.count(Counter::NetworkHead),
        host.count(Counter::NetworkHead),
        "request blocks read, live and dry"
    );
    let rewritten = live.host.count(Counter::NetworkRewritten);
    // While Envoy's table differs from the client's (a block dropped a field the client
    // indexed, until the tables are alike again), the live run writes every block back,
    // changed or not: those count as rewritten live only. The dry run's tables never part.
    assert!(
        would <= rewritten,
        "would change {would}, rewritten live {rewritten}"
    );
    if would == 0 {
        assert_eq!(rewritten, 0, "rewritten live where nothing would change");
    }
}
