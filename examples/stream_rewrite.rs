//! The network position over a simulated Envoy read loop, for tests in other languages
//! (`tests/integration/test_stream_differential.py` checks it against independent HTTP/1.1
//! parsers). Reads JSON lines on stdin:
//!
//! ```text
//! {"config": "<plugin JSON>", "stream": "<base64>", "writes": [sizes...], "eos": false,
//!  "delayed": false}
//! ```
//!
//! and for each prints one JSON line:
//!
//! ```text
//! {"output": "<base64: what the HCM received>", "held": <bytes still buffered>,
//!  "closed": <the filter closed the connection>, "diverged": <HTTP/2: Envoy's HPACK
//!  table differed from the client's when the filter stopped following>,
//!  "left": ["tracejoin.network.left.<reason>", ...], "heads": n, "rewritten": n}
//! ```
//!
//! Each client write (the sizes in turn until the stream is written; none: one write) goes
//! through the crate's simulated Envoy (`tracejoin::network::envoy_loop`, as the unit tests
//! use it): the HCM takes bytes up to a request's end, answers it at once (or, `delayed`,
//! only after later writes, some answers' streams ending after the next write), and Envoy
//! hands back what the HCM left.
//! `cargo run --release --example stream_rewrite < lines.jsonl`
#![allow(clippy::indexing_slicing)] // a test driver, not the filter: indexes are in range

use std::io::{self, BufRead, Write};

use serde_json::{Value, json};
use tracejoin::config::Config;
use tracejoin::filter::Counter;
use tracejoin::ids::IdGenerator;
use tracejoin::network::Leave;
use tracejoin::network::envoy_loop::{CrateCodec, EnvoyLoop};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .ok_or_else(|| format!("not base64: {:?}", char::from(c)))?;
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

fn run(line: &str) -> Result<Value, String> {
    let request: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let config = request["config"].as_str().ok_or("config: not a string")?;
    let config = Config::from_json(config.as_bytes()).map_err(|e| e.to_string())?;
    let stream = base64_decode(request["stream"].as_str().ok_or("stream: not a string")?)?;
    let writes: Vec<usize> = match &request["writes"] {
        Value::Null => Vec::new(),
        Value::Array(sizes) => sizes
            .iter()
            .map(|n| match n.as_u64() {
                Some(n) if n > 0 => Ok(n as usize),
                _ => Err(format!("writes: {n} is not a size")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("writes: not a list".into()),
    };
    let end_of_stream = request["eos"].as_bool().unwrap_or(false);
    let delayed = request["delayed"].as_bool().unwrap_or(false);

    let mut envoy = EnvoyLoop::new(config, IdGenerator::from_seed(5), CrateCodec::default());
    // Delayed: an answer comes only after every third write, and every other one is written
    // whole with its stream ending only after the next write; the client writes on.
    envoy.auto_answer = !delayed;
    let mut pending_end = false;
    let mut at = 0usize;
    let mut call = 0usize;
    while at < stream.len() && !envoy.closed {
        let size = match writes.len() {
            0 => stream.len(),
            n => writes[call % n],
        };
        let end = (at + size).min(stream.len());
        let eos = end_of_stream && end == stream.len();
        envoy.send(&stream[at..end], eos);
        at = end;
        if pending_end {
            envoy.end_answer();
            pending_end = false;
        } else if delayed && call % 3 == 2 && envoy.answering.is_some() {
            let head = envoy.answering.unwrap_or(false);
            if call.is_multiple_of(2) {
                envoy.write_answer(tracejoin::network::envoy_loop::answer_for(head));
                pending_end = true;
            } else {
                envoy.answer_now();
            }
        }
        call += 1;
    }
    if pending_end {
        envoy.end_answer();
    }
    envoy.answer_all();
    let host = &envoy.host;
    let config = &envoy.config;
    let left: Vec<String> = Leave::ALL
        .iter()
        .map(|r| Counter::NetworkLeft(*r))
        .filter(|c| host.count(*c) > 0)
        .map(|c| c.name(config))
        .collect();
    // HTTP/2: whether Envoy's HPACK table differed from the client's (a dropped indexed
    // literal) when the filter stopped following: the connection is then closed, `trust` or
    // not.
    let diverged = match &envoy.filter {
        tracejoin::network::ConnectionFilter::Http2(c) => c.left_diverged(),
        tracejoin::network::ConnectionFilter::Http1(_)
        | tracejoin::network::ConnectionFilter::Tls(_) => false,
    };
    Ok(json!({
        "output": base64_encode(&envoy.passed),
        "held": host.downstream.len() + envoy.socket.len(),
        "closed": envoy.closed,
        "diverged": diverged,
        "left": left,
        "heads": host.count(Counter::NetworkHead),
        "rewritten": host.count(Counter::NetworkRewritten),
    }))
}

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = run(&line).unwrap_or_else(|e| json!({ "error": e }));
        writeln!(stdout, "{answer}")?;
    }
    stdout.flush()
}
