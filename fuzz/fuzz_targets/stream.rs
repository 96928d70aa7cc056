//! The network position: a downstream byte stream, cut into client writes, through
//! `ConnectionFilter` in the crate's simulated Envoy (`tracejoin::network::envoy_loop`, as
//! the unit tests use it): the HCM's codec takes bytes up to a request's end and nothing
//! more until the request is answered, Envoy hands back what it left, answers come after
//! the writes the input chooses, and host calls may fail. The HCM's codec frames with the
//! independent framer (`tracejoin_fuzz::http1`), and what it received is checked against
//! the same: every byte outside trace-header lines, message boundaries and bodies
//! unchanged; nothing held but an unfinished head; rewritten heads well-formed; nothing
//! changed from the first ambiguous or non-HTTP/1 byte on; a connection the filter closed
//! got a prefix of that (`tracejoin_fuzz::stream::check`).
//!
//! Input: the binary form `config, flags, fail, n, n write sizes, stream...` (flags: bit 0
//! end of stream, bit 1 answer at once, bits 2-7 answer after write i when bit 2 + i % 6
//! is set; after an odd write the answer's stream ends only after the next write), or the text form for hand-made seeds: a first line `#! config=2
//! writes=1,7,64 eos fail=5 answers=3` (any subset), then the stream's bytes as they are.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use tracejoin::config::Config;
use tracejoin::filter::Counter;
use tracejoin::filter::recording_host::fail;
use tracejoin::ids::IdGenerator;
use tracejoin::network::Leave;
use tracejoin::network::envoy_loop::EnvoyLoop;
use tracejoin_fuzz::show;
use tracejoin_fuzz::stream::{IndependentCodec, Limits, check};

const CONFIGS: [&str; 11] = [
    r#"{"position":"network","tracer":"zipkin"}"#,
    r#"{"position":"network","tracer":"opentelemetry","propagate":["tracecontext","b3","b3multi","jaeger"]}"#,
    r#"{"position":"network","tracer":"none","trust":"restart"}"#,
    r#"{"position":"network","tracer":"zipkin_w3c","trust":"resample","sampling_ratio":0}"#,
    // Small limits, so that heads at and over them and the held-bytes limit are reached.
    r#"{"position":"network","tracer":"zipkin","max_request_headers_kb":1,"max_request_headers_count":6,"per_connection_buffer_limit_bytes":1024}"#,
    r#"{"position":"network","tracer":"none","extract":["jaeger","b3"],"propagate":["b3multi","tracecontext"]}"#,
    r#"{"position":"network","tracer":"zipkin","extract":["datadog","xray","ottrace"],"propagate":["datadog","xray","ottrace"]}"#,
    // Envoy's Datadog tracer: fed x-datadog-* in front of it.
    r#"{"position":"network","tracer":"datadog","trust":"resample"}"#,
    // Dry runs (appended, so that the indexes above keep their meaning): every byte passes
    // as it came, and nothing is closed for `trust`.
    r#"{"position":"network","tracer":"zipkin","dry_run":true}"#,
    r#"{"position":"network","tracer":"none","trust":"restart","dry_run":true}"#,
    r#"{"position":"network","tracer":"zipkin","trust":"resample","max_request_headers_kb":1,"max_request_headers_count":6,"per_connection_buffer_limit_bytes":1024,"dry_run":true}"#,
];

thread_local! {
    static LOADED: RefCell<Vec<Config>> = RefCell::new(
        CONFIGS
            .iter()
            .map(|json| {
                Config::from_json(json.as_bytes())
                    .unwrap_or_else(|e| panic!("a valid configuration was rejected: {json}: {e}"))
            })
            .collect(),
    );
}

struct Input<'a> {
    config: usize,
    /// Write sizes, used in turn until the stream is written; empty: one write.
    writes: Vec<usize>,
    /// `on_data` call i fails its host calls when bit `i % 7` is set.
    fail: u8,
    /// The last write says end of stream.
    eos: bool,
    /// Every request is answered as soon as the HCM has it.
    answer_at_once: bool,
    /// Otherwise: answer after write i when bit `i % 6` is set.
    answers: u8,
    stream: &'a [u8],
}

fn binary(data: &[u8]) -> Input<'_> {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let n = usize::from(byte(3) % 17);
    let writes = (0..n)
        .map(|i| match byte(4 + i) {
            c @ 0..200 => usize::from(c) + 1,
            c => usize::from(c - 199) * 256,
        })
        .collect();
    let f = byte(2);
    Input {
        config: usize::from(byte(0)) % CONFIGS.len(),
        writes,
        // One input in four has failing host calls.
        fail: if f >= 192 { f & 0x7f } else { 0 },
        eos: byte(1) & 1 == 1,
        answer_at_once: byte(1) & 2 == 2,
        answers: byte(1) >> 2,
        stream: data.get(4 + n..).unwrap_or_default(),
    }
}

fn text(data: &[u8]) -> Input<'_> {
    let nl = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let mut input = Input {
        config: 0,
        writes: Vec::new(),
        fail: 0,
        eos: false,
        answer_at_once: true,
        answers: 0,
        stream: data.get(nl + 1..).unwrap_or_default(),
    };
    for token in String::from_utf8_lossy(&data[2..nl]).split_whitespace() {
        let (key, value) = token.split_once('=').unwrap_or((token, ""));
        match key {
            "config" => input.config = value.parse::<usize>().unwrap_or(0) % CONFIGS.len(),
            "writes" => {
                input.writes = value
                    .split(',')
                    .filter_map(|n| n.parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .take(16)
                    .collect();
            }
            "fail" => input.fail = value.parse::<u8>().unwrap_or(0) & 0x7f,
            "eos" => input.eos = true,
            "answers" => {
                input.answer_at_once = false;
                input.answers = value.parse::<u8>().unwrap_or(0) & 0x3f;
            }
            _ => {}
        }
    }
    input
}

fuzz_target!(|data: &[u8]| {
    let input = if data.starts_with(b"#!") {
        text(data)
    } else {
        binary(data)
    };
    let config = LOADED.with(|c| c.borrow()[input.config].clone());
    let stream = input.stream;
    // HTTP/2 from the first byte is the `h2` target's.
    if stream.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") {
        return;
    }

    let (mut envoy, at) = run(config.clone(), &input);
    let passed = std::mem::take(&mut envoy.passed);
    let mut held = std::mem::take(&mut envoy.host.downstream);
    held.extend_from_slice(&envoy.socket);
    let host = &envoy.host;
    let slow_head = host.count(Counter::NetworkLeft(Leave::SlowHead)) > 0;
    if envoy.closed {
        assert!(
            (config.trust != tracejoin::config::Trust::Continue && !config.dry_run) || slow_head,
            "closed without trust (or under trust in a dry run)"
        );
    }

    let limits = Limits {
        max_head_bytes: config.limits.max_head_bytes,
        max_held_bytes: config.limits.max_held_bytes,
    };
    let what = || {
        format!(
            "\nconfig: {}\nwrites: {:?} fail: {:#x} eos: {}\nin:  {}\nout: {}\nheld: {}",
            CONFIGS[input.config],
            input.writes,
            input.fail,
            input.eos,
            show(stream),
            show(&passed),
            show(&held)
        )
    };
    if config.dry_run {
        // Every byte as it came: what the HCM took, then what is still held, is what the
        // client wrote, all of it unless the connection was closed (only for a head held too
        // long, which this target's clock never reaches).
        let sent = &stream[..at];
        assert!(
            sent.starts_with(&passed),
            "a dry run passed bytes the client did not send{}",
            what()
        );
        if !envoy.closed {
            assert_eq!(at, stream.len());
            assert!(
                passed.len() + held.len() == sent.len() && sent.ends_with(&held),
                "a dry run lost, added or changed bytes{}",
                what()
            );
        }
        assert_eq!(
            host.count(Counter::NetworkRewritten),
            host.count(Counter::DryRunWouldChange),
            "a dry run counts each head it would rewrite once in each{}",
            what()
        );
    } else {
        assert_eq!(host.count(Counter::DryRunWouldChange), 0, "{}", what());
    }
    let (framed, seen) = match check(stream, &passed, &held, input.eos, envoy.closed, &limits) {
        Ok(r) => r,
        Err(e) => panic!("{e}\nframed: {:?}{}", http1_stop(stream), what()),
    };

    // The counters agree with what reached the HCM.
    let left: u32 = Leave::ALL
        .iter()
        .map(|r| host.count(Counter::NetworkLeft(*r)))
        .sum();
    assert!(left <= 1, "left the connection {left} times{}", what());
    assert_eq!(host.count(Counter::NetworkConnection), 1);
    let rewritten = host.count(Counter::NetworkRewritten) as usize;
    assert!(
        rewritten >= seen.rewritten,
        "{rewritten} rewrites counted, {} seen{}",
        seen.rewritten,
        what()
    );
    if config.dry_run {
        assert_eq!(seen.rewritten, 0, "a dry run rewrote a head{}", what());
    } else if !envoy.closed && !matches!(framed.stop, tracejoin_fuzz::http1::Stop::Unchecked { .. })
    {
        assert_eq!(rewritten, seen.rewritten, "rewrites counted{}", what());
    }
    assert!(
        host.count(Counter::NetworkHead) as usize >= rewritten,
        "{}",
        what()
    );
    // Against the same connection live: where both followed it to the end (neither left it
    // nor closed it), the dry run read the same heads and would have rewritten exactly the
    // ones the live run rewrote.
    if config.dry_run && left == 0 && !envoy.closed {
        let mut live_config = config.clone();
        live_config.dry_run = false;
        let (live, _) = run(live_config, &input);
        let live_left: u32 = Leave::ALL
            .iter()
            .map(|r| live.host.count(Counter::NetworkLeft(*r)))
            .sum();
        if live_left == 0 && !live.closed {
            assert_eq!(
                live.host.count(Counter::NetworkHead),
                host.count(Counter::NetworkHead),
                "heads read, live and dry{}",
                what()
            );
            assert_eq!(
                live.host.count(Counter::NetworkRewritten),
                host.count(Counter::DryRunWouldChange),
                "heads rewritten live, and would-change in the dry run{}",
                what()
            );
        }
    }
});

/// The connection through the simulated Envoy: the stream written as the input says, then
/// every request answered. Also how far the client wrote (all of it unless closed).
fn run(config: Config, input: &Input<'_>) -> (EnvoyLoop<IndependentCodec>, usize) {
    let stream = input.stream;
    let mut envoy = EnvoyLoop::new(
        config,
        IdGenerator::from_seed(5),
        IndependentCodec::default(),
    );
    envoy.auto_answer = input.answer_at_once;
    let mut at = 0usize;
    let mut call = 0usize;
    let mut pending_end = false;
    while at < stream.len() && !envoy.closed {
        let size = input
            .writes
            .get(call % input.writes.len().max(1))
            .copied()
            .unwrap_or(stream.len());
        let end = (at + size).min(stream.len());
        envoy.host.fail = if input.fail >> (call % 7) & 1 == 1 {
            fail::DOWNSTREAM
        } else {
            0
        };
        let eos = input.eos && end == stream.len();
        envoy.send(&stream[at..end], eos);
        at = end;
        if pending_end {
            envoy.end_answer();
            pending_end = false;
        }
        if input.answers >> (call % 6) & 1 == 1 && envoy.answering.is_some() {
            if call % 2 == 1 {
                // Written now, its stream ending after the next write (END_STREAM late).
                let head = envoy.answering.unwrap_or(false);
                envoy.write_answer(tracejoin::network::envoy_loop::answer_for(head));
                pending_end = true;
            } else {
                envoy.answer_now();
            }
        }
        call += 1;
    }
    envoy.host.fail = 0;
    if pending_end {
        envoy.end_answer();
    }
    envoy.answer_all();
    (envoy, at)
}

fn http1_stop(stream: &[u8]) -> tracejoin_fuzz::http1::Stop {
    tracejoin_fuzz::http1::frame(stream).stop
}
