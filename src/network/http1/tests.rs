//! The network position over a simulated Envoy read loop and HTTP/1 codec
//! ([`crate::network::envoy_loop`]): what the HCM takes, what it hands back, when it answers.

use rand::RngCore;
use rand::rngs::SmallRng;

use crate::config::Config;
use crate::filter::Counter;
use crate::filter::recording_host::fail;
use crate::ids::IdGenerator;
use crate::network::Leave;
use crate::network::Verdict;
use crate::network::envoy_loop::{CrateCodec, EnvoyLoop};
use crate::testing::generate::{below, one_in, rng};

const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const S: &str = "00f067aa0ba902b7";

/// The simulated Envoy ([`crate::network::envoy_loop`]) on the crate's own framing, with
/// the test's shorthands.
struct Wire(EnvoyLoop<CrateCodec>);

impl std::ops::Deref for Wire {
    type Target = EnvoyLoop<CrateCodec>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Wire {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

impl Wire {
    fn new(config: &str) -> Wire {
        Wire(EnvoyLoop::new(
            Config::from_json(config.as_bytes()).unwrap(),
            IdGenerator::from_seed(5),
            CrateCodec::default(),
        ))
    }

    /// The client writes `bytes`.
    fn send(&mut self, bytes: &[u8]) -> Verdict {
        self.0.send(bytes, false)
    }

    fn send_in(&mut self, bytes: &[u8], step: usize) {
        for piece in bytes.chunks(step) {
            self.send(piece);
        }
    }

    fn passed_text(&self) -> String {
        String::from_utf8_lossy(&self.passed).into_owned()
    }

    fn left(&self, reason: Leave) -> u32 {
        self.host.count(Counter::NetworkLeft(reason))
    }
}

fn w3c_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: character-api:8080\r\nUser-Agent: python-httpx/0.28.1\r\ntraceparent: 00-{T}-{S}-01\r\nAccept: */*\r\n\r\n"
    )
}

#[test]
fn a_w3c_apps_context_reaches_a_b3_only_tracer() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    assert_eq!(wire.send(w3c_request("/a").as_bytes()), Verdict::Continue);
    assert_eq!(
        wire.passed_text(),
        format!(
            "GET /a HTTP/1.1\r\nx-b3-traceid: {T}\r\nx-b3-spanid: {S}\r\nx-b3-sampled: 1\r\nHost: character-api:8080\r\nUser-Agent: python-httpx/0.28.1\r\ntraceparent: 00-{T}-{S}-01\r\nAccept: */*\r\n\r\n"
        )
    );
    assert_eq!(wire.host.count(Counter::NetworkConnection), 1);
    assert_eq!(wire.host.count(Counter::NetworkHead), 1);
    assert_eq!(wire.host.count(Counter::NetworkRewritten), 1);
    // One read of the head, one write of the buffer's start, one read of the response head.
    assert_eq!(wire.host.calls, 3);
}

#[test]
fn a_b3_apps_context_reaches_the_opentelemetry_tracer() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"opentelemetry"}"#);
    wire.send(format!("GET / HTTP/1.1\r\nb3: {T}-{S}-1\r\n\r\n").as_bytes());
    let text = wire.passed_text();
    assert!(
        text.contains(&format!("traceparent: 00-{T}-{S}-01\r\n")),
        "{text}"
    );
    assert!(text.contains(&format!("b3: {T}-{S}-1\r\n")), "{text}");
}

#[test]
fn consistent_heads_are_passed_without_a_write() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    let request = format!(
        "GET / HTTP/1.1\r\ntraceparent: 00-{T}-{S}-01\r\nx-b3-traceid: {T}\r\nx-b3-spanid: {S}\r\nx-b3-sampled: 1\r\n\r\n"
    );
    wire.send(request.as_bytes());
    assert_eq!(wire.passed, request.as_bytes());
    assert_eq!(wire.host.count(Counter::NetworkRewritten), 0);
    // The head read, and the response head's.
    assert_eq!(wire.host.calls, 2);
}

#[test]
fn invalid_values_are_removed_before_envoys_parser() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"opentelemetry"}"#);
    wire.send(
        format!(
            "GET / HTTP/1.1\r\ntraceparent: 00-{}-{S}-01\r\ntracestate: a=1\r\n\r\n",
            T.to_uppercase()
        )
        .as_bytes(),
    );
    assert_eq!(wire.passed_text(), "GET / HTTP/1.1\r\n\r\n");
    assert_eq!(
        wire.host
            .count(Counter::Invalid(crate::codec::Format::TraceContext)),
        1
    );
}

#[test]
fn a_head_written_a_byte_at_a_time_is_held_then_rewritten_whole() {
    let request = w3c_request("/slow");
    let mut whole = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    whole.send(request.as_bytes());
    let mut slow = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    slow.send_in(request.as_bytes(), 1);
    assert_eq!(slow.passed, whole.passed);
    assert_eq!(slow.pauses, request.len() - 1);
}

#[test]
fn keep_alive_requests_are_each_rewritten() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    for path in ["/1", "/2", "/3"] {
        wire.send(w3c_request(path).as_bytes());
    }
    assert_eq!(wire.host.count(Counter::NetworkRewritten), 3);
    assert_eq!(wire.passed_text().matches("x-b3-traceid").count(), 3);
}

#[test]
fn a_pipelined_request_ends_the_work_on_the_connection() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    let two = format!("{}{}", w3c_request("/1"), w3c_request("/2"));
    wire.send(two.as_bytes());
    wire.send(w3c_request("/3").as_bytes());
    let text = wire.passed_text();
    assert_eq!(text.matches("x-b3-traceid").count(), 1, "{text}");
    assert!(text.ends_with(&format!("{}{}", w3c_request("/2"), w3c_request("/3"))));
    assert_eq!(wire.left(Leave::Pipelined), 1);
}

#[test]
fn empty_lines_between_requests_are_not_pipelining() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    wire.send(format!("{}\r\n", w3c_request("/1")).as_bytes());
    wire.send(format!("\r\n{}", w3c_request("/2")).as_bytes());
    assert_eq!(wire.host.count(Counter::NetworkRewritten), 2);
    assert_eq!(wire.left(Leave::Pipelined), 0);
    assert!(wire.passed_text().contains("\r\n\r\n\r\n\r\nGET /2 "));
}

#[test]
fn bodies_are_followed_by_length_and_never_read() {
    let body = vec![b'x'; 100_000];
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    let head = format!(
        "POST /up HTTP/1.1\r\nContent-Length: {}\r\ntraceparent: 00-{T}-{S}-01\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(&body);
    // The head and the body's start in one read, the rest in 1000-byte writes.
    wire.auto_answer = false;
    wire.send(&request[..5000]);
    let calls_after_head = wire.host.calls;
    wire.send_in(&request[5000..], 1000);
    assert_eq!(
        wire.host.calls, calls_after_head,
        "the body costs no host call"
    );
    wire.answer(ANSWER);
    wire.send(w3c_request("/next").as_bytes());
    assert!(
        wire.passed.ends_with(
            w3c_request("/next")
                .replace(
                    "HTTP/1.1\r\n",
                    &format!(
                        "HTTP/1.1\r\nx-b3-traceid: {T}\r\nx-b3-spanid: {S}\r\nx-b3-sampled: 1\r\n"
                    )
                )
                .as_bytes()
        )
    );
    let at = wire
        .passed
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    assert_eq!(&wire.passed[at..at + body.len()], &body[..]);
}

#[test]
fn chunked_bodies_with_trailers_pass_unchanged_in_any_pieces() {
    let head = format!("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\nb3: {T}-{S}-1\r\n\r\n");
    let body =
        b"4\r\nwiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Checksum: 1\r\n\r\n";
    for step in [1, 2, 7, 64, 4096] {
        let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
        let mut stream = head.clone().into_bytes();
        stream.extend_from_slice(body);
        stream.extend_from_slice(w3c_request("/after").as_bytes());
        wire.send_in(&stream, step);
        let text = wire.passed_text();
        assert!(
            text.contains(std::str::from_utf8(body).unwrap()),
            "{step}: {text}"
        );
        // Where the body's last byte and the next request's first arrive in one read, the
        // next request is pipelined and left alone.
        let body_end = head.len() + body.len();
        let expected = if body_end.is_multiple_of(step) { 2 } else { 1 };
        assert_eq!(
            wire.host.count(Counter::NetworkRewritten),
            expected,
            "{step}: {text}"
        );
    }
}

#[test]
fn expect_100_continue_is_not_held_for_its_body() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    let head = format!(
        "PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\ntraceparent: 00-{T}-{S}-01\r\n\r\n"
    );
    assert_eq!(wire.send(head.as_bytes()), Verdict::Continue);
    assert_eq!(wire.send(b"hello"), Verdict::Continue);
    assert!(wire.passed.ends_with(b"\r\n\r\nhello"));
}

#[test]
fn tunnels_and_garbage_are_left_byte_for_byte() {
    let mut upgrade =
        format!("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\ntraceparent: 00-{T}-{S}-01\r\n\r\n")
            .into_bytes();
    upgrade.extend_from_slice(b"\x81\x05hello");
    let cases: [(Vec<u8>, Leave); 4] = [
        (upgrade, Leave::Upgrade),
        (
            b"\x16\x03\x01\x00\xa5\x01\x00\x00".to_vec(),
            Leave::NotHttp1,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec(),
            Leave::Ambiguous,
        ),
        (
            b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n".to_vec(),
            Leave::Ambiguous,
        ),
    ];
    let later = w3c_request("/later");
    for (input, reason) in cases {
        let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
        assert_eq!(wire.send(&input), Verdict::Continue, "{input:?}");
        wire.send(later.as_bytes());
        let (first, rest) = wire.passed.split_at(wire.passed.len() - later.len());
        assert_eq!(
            rest,
            later.as_bytes(),
            "{input:?}: later requests untouched"
        );
        if reason == Leave::Upgrade {
            // The upgrade request itself is still rewritten; what follows it is not.
            assert!(String::from_utf8_lossy(first).contains("x-b3-traceid"));
            assert!(first.ends_with(b"\r\n\r\n\x81\x05hello"));
        } else {
            assert_eq!(first, &input[..], "{input:?}");
        }
        assert_eq!(wire.left(reason), 1, "{input:?}");
    }
}

#[test]
fn an_oversized_head_is_passed_on_not_held() {
    let mut wire =
        Wire::new(r#"{"position":"network","tracer":"zipkin","max_request_headers_kb":1}"#);
    let mut head = b"GET / HTTP/1.1\r\nCookie: ".to_vec();
    head.extend(std::iter::repeat_n(b'c', 2000));
    assert_eq!(wire.send(&head[..600]), Verdict::Pause);
    assert_eq!(wire.send(&head[600..]), Verdict::Continue);
    assert_eq!(wire.passed, head);
    assert_eq!(wire.left(Leave::TooLarge), 1);
}

#[test]
fn a_head_is_never_held_past_the_connections_buffer_limit() {
    // Past the listener's buffer limit Envoy stops reading: a held head would stall.
    let mut wire = Wire::new(
        r#"{"position":"network","tracer":"zipkin","per_connection_buffer_limit_bytes":4096}"#,
    );
    let mut head = b"GET / HTTP/1.1\r\nCookie: ".to_vec();
    head.extend(std::iter::repeat_n(b'c', 5000));
    head.extend_from_slice(b"\r\n\r\n");
    assert_eq!(wire.send(&head[..4000]), Verdict::Pause);
    assert_eq!(wire.send(&head[4000..4200]), Verdict::Continue);
    wire.send(&head[4200..]);
    assert_eq!(wire.passed, head);
    assert_eq!(wire.left(Leave::TooLarge), 1);
}

#[test]
fn a_rewrite_never_crosses_envoys_limits() {
    // 100 fields (Envoy's default limit): one more would turn a 200 into a 431.
    let mut head = format!("GET / HTTP/1.1\r\ntraceparent: 00-{T}-{S}-01\r\n");
    for i in 0..99 {
        head.push_str(&format!("x-f{i}: v\r\n"));
    }
    head.push_str("\r\n");
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    wire.send(head.as_bytes());
    assert_eq!(wire.passed, head.as_bytes());
    assert_eq!(wire.host.count(Counter::NetworkAtLimit), 1);
    // Removing an invalid value from 101 fields would turn a 431 into a 200: not done.
    let mut over = "GET / HTTP/1.1\r\ntraceparent: bogus\r\n".to_string();
    for i in 0..100 {
        over.push_str(&format!("x-f{i}: v\r\n"));
    }
    over.push_str("\r\n");
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    wire.send(over.as_bytes());
    assert_eq!(wire.passed, over.as_bytes());
}

#[test]
fn host_errors_leave_the_bytes_as_they_are() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    wire.host.fail = fail::DOWNSTREAM;
    assert_eq!(wire.send(w3c_request("/").as_bytes()), Verdict::Continue);
    assert_eq!(wire.passed, w3c_request("/").as_bytes());
    assert_eq!(wire.left(Leave::HostError), 1);
}

#[test]
fn restart_hands_the_new_trace_to_the_tracer() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin","trust":"restart"}"#);
    wire.send(format!("GET / HTTP/1.1\r\nx-b3-traceid: {T}\r\nx-b3-spanid: {S}\r\nx-b3-flags: 1\r\nb3: 1\r\ntraceparent: 00-{T}-{S}-01\r\ntracestate: a=1\r\n\r\n").as_bytes());
    assert_eq!(wire.passed_text(), "GET / HTTP/1.1\r\n\r\n");
    assert_eq!(wire.host.count(Counter::Restarted), 1);
}

#[test]
fn resample_rewrites_the_decision_the_tracer_reads() {
    let mut wire = Wire::new(
        r#"{"position":"network","tracer":"zipkin","trust":"resample","sampling_ratio":0}"#,
    );
    wire.send(
        format!("GET / HTTP/1.1\r\nx-b3-traceid: {T}\r\nx-b3-spanid: {S}\r\nx-b3-flags: 1\r\n\r\n")
            .as_bytes(),
    );
    let text = wire.passed_text();
    assert!(text.contains("x-b3-sampled: 0\r\n"), "{text}");
    assert!(!text.contains("x-b3-flags"), "{text}");
    // A lone decision with no ids is not the client's to make either.
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin","trust":"resample"}"#);
    wire.send(b"GET / HTTP/1.1\r\nb3: d\r\n\r\n");
    assert_eq!(wire.passed_text(), "GET / HTTP/1.1\r\n\r\n");
}

// ---------------------------------------------------------------------------------------
// Property: framing and every byte outside trace-header lines survive, whatever the pieces
// ---------------------------------------------------------------------------------------

const TRACE_LINES: [&str; 6] = [
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "TraceParent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    "b3: 4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-d",
    "x-b3-traceid: 5af7183fb1d4cf5f",
    "uber-trace-id: 5af7183fb1d4cf5f:6e0c63257de34c92:0:1",
    "tracestate: rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE",
];
const OTHER_LINES: [&str; 5] = [
    "Host: api.example",
    "Cookie: a=b; traceparent=not-a-header",
    "X-Odd-Spacing:   v  ",
    "Accept: */*",
    "X-Bin: caf\u{e9}",
];

/// A message as generated: its head lines and its body bytes (framing included).
struct Message {
    request_line: String,
    lines: Vec<String>,
    body: Vec<u8>,
}

fn random_message(r: &mut SmallRng) -> Message {
    let mut lines: Vec<String> = Vec::new();
    for _ in 0..below(r, 6) {
        let pool: &[&str] = if one_in(r, 2) {
            &TRACE_LINES
        } else {
            &OTHER_LINES
        };
        lines.push(pool[below(r, pool.len())].to_string());
    }
    // Bodies hold what a head scanner could trip over.
    let mut payload: Vec<u8> = b"GET /fake HTTP/1.1\r\ntraceparent: x\r\n\r\n".to_vec();
    for _ in 0..below(r, 300) {
        payload.push(r.next_u32() as u8);
    }
    let body = match below(r, 3) {
        0 => Vec::new(),
        1 => {
            lines.push(format!("Content-Length: {}", payload.len()));
            payload
        }
        _ => {
            lines.push("Transfer-Encoding: chunked".to_string());
            let mut body = Vec::new();
            for piece in payload.chunks(1 + below(r, 100)) {
                body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                body.extend_from_slice(piece);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\n");
            if one_in(r, 2) {
                body.extend_from_slice(b"X-Trailer: traceparent\r\n");
            }
            body.extend_from_slice(b"\r\n");
            body
        }
    };
    let n = r.next_u32() % 1000;
    Message {
        request_line: format!("POST /m{n} HTTP/1.1"),
        lines,
        body,
    }
}

fn is_trace_line(line: &str) -> bool {
    let name = line.split(':').next().unwrap_or_default();
    crate::codec::Header::from_name(name.as_bytes()).is_some()
}

/// Splits what the HCM received into the messages sent, without the parser under test:
/// each head ends at the first empty line, and the known body follows byte for byte.
fn check_stream(passed: &[u8], messages: &[Message], what: &str) {
    let mut at = 0usize;
    for (i, m) in messages.iter().enumerate() {
        let rest = &passed[at..];
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("{what}: message {i} has no head"))
            + 4;
        let head = std::str::from_utf8(&rest[..end]).unwrap();
        let mut got = head.trim_end_matches("\r\n").split("\r\n");
        assert_eq!(got.next(), Some(m.request_line.as_str()), "{what}: {i}");
        let kept: Vec<&str> = got.filter(|l| !is_trace_line(l)).collect();
        let want: Vec<&str> = m
            .lines
            .iter()
            .map(String::as_str)
            .filter(|l| !is_trace_line(l))
            .collect();
        assert_eq!(
            kept, want,
            "{what}: message {i}: lines other than trace headers"
        );
        assert_eq!(
            &rest[end..end + m.body.len()],
            &m.body[..],
            "{what}: message {i}: body"
        );
        at += end + m.body.len();
    }
    assert_eq!(at, passed.len(), "{what}: bytes after the last message");
}

#[test]
fn framing_and_other_bytes_survive_any_split_and_any_answer_time() {
    // Random client writes, and responses written at random points in between: the HCM
    // takes the same requests, bodies and trailers, whatever Envoy hands back.
    let configs = [
        r#"{"position":"network","tracer":"zipkin"}"#,
        r#"{"position":"network","tracer":"opentelemetry","propagate":["tracecontext","b3","b3multi","jaeger"]}"#,
        r#"{"position":"network","tracer":"none","propagate":["b3"]}"#,
    ];
    let mut r = rng(0x5_7ea3);
    let mut represented = 0;
    for case in 0..600 {
        let messages: Vec<Message> = (0..1 + below(&mut r, 4))
            .map(|_| random_message(&mut r))
            .collect();
        let mut stream = Vec::new();
        for m in &messages {
            stream.extend_from_slice(m.request_line.as_bytes());
            stream.extend_from_slice(b"\r\n");
            for l in &m.lines {
                stream.extend_from_slice(l.as_bytes());
                stream.extend_from_slice(b"\r\n");
            }
            stream.extend_from_slice(b"\r\n");
            stream.extend_from_slice(&m.body);
        }
        let config = configs[case % configs.len()];
        let mut wire = Wire::new(config);
        wire.auto_answer = case % 5 == 0;
        let mut pending_end = false;
        let mut at = 0;
        while at < stream.len() {
            let n = match below(&mut r, 4) {
                0 => 1,
                1 => 1 + below(&mut r, 16),
                2 => 1 + below(&mut r, 400),
                _ => stream.len(),
            };
            let end = (at + n).min(stream.len());
            wire.send(&stream[at..end]);
            at = end;
            if wire.answering.is_some() && !pending_end && one_in(&mut r, 2) {
                if one_in(&mut r, 3) {
                    // The answer written, its stream ending only after the next write.
                    wire.write_answer(ANSWER);
                    pending_end = true;
                } else {
                    wire.answer(ANSWER);
                }
            } else if pending_end {
                wire.end_answer();
                pending_end = false;
            }
        }
        if pending_end {
            wire.end_answer();
        }
        while wire.answering.is_some() {
            wire.answer(ANSWER);
        }
        represented += wire.represented;
        // The stream is clean: the filter reads no head twice or inside a body, and steps
        // aside only for requests that share a buffer.
        assert!(
            wire.host.count(Counter::NetworkHead) as usize <= messages.len(),
            "case {case}: {} heads read in {} messages",
            wire.host.count(Counter::NetworkHead),
            messages.len()
        );
        for reason in Leave::ALL {
            // A read during an answer's stream, after its framed end, may be handed back:
            // the filter may then be unsure, never wrong.
            let allowed =
                (reason == Leave::Pipelined && wire.shared_buffers > 0) || reason == Leave::Unsure;
            if !allowed {
                assert_eq!(wire.left(reason), 0, "case {case}: left ({reason:?})");
            }
        }
        assert!(
            wire.host.downstream.is_empty() && wire.socket.is_empty(),
            "case {case}: bytes held at the end"
        );
        check_stream(&wire.passed, &messages, &format!("case {case} ({config})"));
    }
    assert!(represented > 100, "bytes handed back: {represented}");
}

fn post_head(path: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: a\r\ntraceparent: 00-{T}-{S}-01\r\nContent-Length: {length}\r\n\r\n"
    )
}

#[test]
fn bytes_envoy_hands_back_are_not_read_twice() {
    // The issue's reproducer: a request waits for its answer while the client writes on;
    // Envoy hands the unread rest back with every later write. The body's header-looking
    // bytes must reach the HCM as body, and nothing in it as a request.
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    wire.auto_answer = false;
    wire.send(b"GET /slow1 HTTP/1.1\r\nHost: a\r\n\r\n");
    let body_parts: [Vec<u8>; 3] = [
        vec![b'd'; 50],
        format!("GET /fake HTTP/1.1\r\nHost: a\r\ntraceparent: 00-{T}-{S}-01\r\nX-Pad: pppppppppp\r\n\r\n").into_bytes(),
        format!("GET /smuggled HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n\r\n", "p".repeat(52)).into_bytes(),
    ];
    let whole_body: Vec<u8> = body_parts.concat();
    assert_eq!(whole_body.len(), 266);
    let after = b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n";
    // Write 2 arrives while /slow1 waits: the codec takes nothing and stops reading.
    wire.send(post_head("/b", 266).as_bytes());
    assert!(wire.read_disabled);
    wire.answer(ANSWER); // /slow1 answered: the rewritten head is handed back
    assert_eq!(wire.represented, 1);
    for part in &body_parts {
        wire.send(part);
    }
    wire.answer(ANSWER); // /b answered
    wire.send(after);
    while wire.answering.is_some() {
        wire.answer(ANSWER);
    }
    let text = wire.passed_text();
    assert_eq!(
        text.matches("x-b3-").count(),
        3,
        "only /b's head is rewritten: {text}"
    );
    let at = text.find("\r\n\r\n").unwrap() + 4; // /slow1's end
    let b_head_end = at + text[at..].find("\r\n\r\n").unwrap() + 4;
    assert_eq!(&wire.passed[b_head_end..b_head_end + 266], &whole_body[..]);
    assert!(text.ends_with("GET /after HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_eq!(
        wire.host.count(Counter::NetworkHead),
        3,
        "/slow1, /b, /after"
    );
    for reason in Leave::ALL {
        assert_eq!(wire.left(reason), 0, "{reason:?}");
    }
    assert!(wire.host.count(Counter::NetworkRepresented) >= 1);
}

#[test]
fn a_request_written_while_another_waits_is_rewritten_once() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    wire.auto_answer = false;
    wire.send(w3c_request("/1").as_bytes());
    wire.send(w3c_request("/2").as_bytes()); // handed back after /1's answer
    wire.answer(ANSWER);
    assert_eq!(wire.represented, 1);
    wire.answer(ANSWER);
    wire.send(w3c_request("/3").as_bytes());
    wire.answer(ANSWER);
    let text = wire.passed_text();
    assert_eq!(text.matches("x-b3-traceid").count(), 3, "{text}");
    assert_eq!(wire.host.count(Counter::NetworkRewritten), 3);
    assert_eq!(wire.host.count(Counter::NetworkHead), 3);
}

#[test]
fn a_head_request_and_interim_answers_are_framed() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    wire.auto_answer = false;
    wire.send(b"HEAD /h HTTP/1.1\r\n\r\n");
    wire.send(w3c_request("/after-head").as_bytes());
    // A HEAD answer carries a length but no body; the next request follows it at once.
    wire.answer(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n");
    assert_eq!(wire.represented, 1);
    // A chunked answer in pieces, after a 100 Continue.
    wire.answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    wire.send(w3c_request("/3").as_bytes());
    wire.answer(ANSWER);
    assert_eq!(wire.passed_text().matches("x-b3-traceid").count(), 2);
    assert_eq!(wire.host.count(Counter::NetworkHead), 3);
    for reason in Leave::ALL {
        assert_eq!(wire.left(reason), 0, "{reason:?}");
    }
}

#[test]
fn an_answer_before_the_requests_end_stops_the_following() {
    // Envoy answered (a local reply) while the body was still coming: its codec may read
    // on from anywhere, so the filter leaves the connection.
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    wire.auto_answer = false;
    wire.send(post_head("/b", 10).as_bytes());
    wire.answer(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
    assert_eq!(wire.left(Leave::Response), 1);
    let later = format!("0123456789{}", w3c_request("/x"));
    wire.send(later.as_bytes());
    while wire.answering.is_some() {
        wire.answer(ANSWER);
    }
    assert!(
        wire.passed.ends_with(later.as_bytes()),
        "left byte for byte"
    );
}

const TRUST: &str = r#"{"position":"network","tracer":"zipkin","trust":"restart"}"#;

/// Under `trust`, every request the HCM takes has the client's context removed.
fn assert_no_client_context(wire: &Wire) {
    let text = wire.passed_text();
    assert!(
        !text.contains(T),
        "a client's context reached the tracer: {text}"
    );
}

#[test]
fn under_trust_a_pipelined_request_cannot_make_the_filter_step_aside() {
    let mut wire = Wire::new(TRUST);
    let two = format!("{}{}", w3c_request("/1"), w3c_request("/2"));
    assert_eq!(wire.send(two.as_bytes()), Verdict::Close);
    wire.send(w3c_request("/3").as_bytes());
    assert!(
        wire.passed.is_empty(),
        "nothing reaches the HCM after the close"
    );
    assert_eq!(wire.left(Leave::Pipelined), 1);
    assert_eq!(wire.host.count(Counter::NetworkClosed), 1);
}

#[test]
fn under_trust_an_upgrade_field_alone_is_followed_and_a_bad_chunk_closes() {
    let mut wire = Wire::new(TRUST);
    wire.send(
        format!("GET /u HTTP/1.1\r\nUpgrade: x\r\ntraceparent: 00-{T}-{S}-01\r\n\r\n").as_bytes(),
    );
    wire.send(w3c_request("/after-upgrade").as_bytes());
    assert_eq!(wire.host.count(Counter::NetworkRewritten), 2);
    assert_no_client_context(&wire);

    let mut wire = Wire::new(TRUST);
    let chunked = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;\x01\r\na\r\n0\r\n\r\n";
    assert_eq!(wire.send(chunked.as_bytes()), Verdict::Close);
    wire.send(w3c_request("/after-chunk").as_bytes());
    assert_no_client_context(&wire);
    assert_eq!(wire.left(Leave::Ambiguous), 1);
    assert_eq!(wire.host.count(Counter::NetworkClosed), 1);
}

#[test]
fn without_trust_what_cannot_be_followed_is_left_byte_for_byte() {
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    let chunked = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;\x01\r\na\r\n0\r\n\r\n";
    assert_eq!(wire.send(chunked.as_bytes()), Verdict::Continue);
    assert_eq!(wire.host.count(Counter::NetworkClosed), 0);
    assert!(wire.passed.ends_with(chunked.as_bytes()));
}

#[test]
fn a_head_held_past_the_timeout_closes_the_connection() {
    let mut wire =
        Wire::new(r#"{"position":"network","tracer":"zipkin","request_headers_timeout_ms":5000}"#);
    let head = w3c_request("/slow");
    wire.host.now = 1_000_000_000;
    assert_eq!(wire.send(&head.as_bytes()[..10]), Verdict::Pause);
    assert_eq!(wire.filter.held_since(), Some(1_000_000_000));
    wire.host.now += 4_999_000_000;
    assert_eq!(wire.send(&head.as_bytes()[10..20]), Verdict::Pause);
    wire.host.now += 1_000_000;
    assert_eq!(wire.send(&head.as_bytes()[20..30]), Verdict::Close);
    assert_eq!(wire.left(Leave::SlowHead), 1);
    assert_eq!(wire.host.count(Counter::NetworkClosed), 1);
    assert!(wire.passed.is_empty());
    assert_eq!(wire.filter.held_since(), None);
    // A head completed in time is timed anew for the next one.
    let mut wire =
        Wire::new(r#"{"position":"network","tracer":"zipkin","request_headers_timeout_ms":5000}"#);
    wire.send(&head.as_bytes()[..10]);
    wire.host.now = 4_000_000_000;
    wire.send(&head.as_bytes()[10..]);
    assert_eq!(wire.filter.held_since(), None);
    wire.host.now = 8_000_000_000;
    assert_eq!(wire.send(&head.as_bytes()[..10]), Verdict::Pause);
    assert_eq!(wire.filter.held_since(), Some(8_000_000_000));

    // One more CRLF after a request is not a head: passed on, never timed.
    let mut wire =
        Wire::new(r#"{"position":"network","tracer":"zipkin","request_headers_timeout_ms":5000}"#);
    wire.auto_answer = false;
    wire.send(format!("{head}\r\n").as_bytes());
    assert_eq!(wire.filter.held_since(), None);
    wire.answer(ANSWER);
    assert_eq!(
        wire.represented, 1,
        "the CRLF the codec left is handed back"
    );
    assert_eq!(wire.filter.held_since(), None);
    wire.host.now = 60_000_000_000;
    assert_eq!(wire.send(head.as_bytes()), Verdict::Continue);
    assert_eq!(wire.host.count(Counter::NetworkRewritten), 2);
}

/// Envoy writes an answer's last framed byte before its stream ends (END_STREAM from an
/// HTTP/2 upstream after a Content-Length body): a read in between is handed back later.
#[test]
fn an_answer_framed_before_its_stream_ends_does_not_fool_the_filter() {
    // Under trust: the client's context must not reach the tracer (a review's timeline).
    let mut wire = Wire::new(TRUST);
    wire.auto_answer = false;
    let c = format!("GET /c HTTP/1.1\r\nHost: a\r\ntraceparent: 00-{T}-{S}-01\r\n\r\n");
    let pad_len = c.len() - "GET /b HTTP/1.1\r\nHost: a\r\nX: \r\n\r\n".len();
    let b = format!(
        "GET /b HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "p".repeat(pad_len)
    );
    assert_eq!(b.len(), c.len());
    wire.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    wire.write_answer(ANSWER);
    wire.send(b.as_bytes()); // the codec takes nothing: /a's stream is open
    assert!(wire.read_disabled);
    wire.end_answer(); // /b handed back
    if !wire.closed {
        wire.answer(ANSWER);
        wire.send(c.as_bytes());
        wire.answer_all();
    }
    assert_no_client_context(&wire);
    assert_eq!(wire.left(Leave::Unsure), 1);

    // Without trust: left byte for byte, and no body byte changed.
    let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
    wire.auto_answer = false;
    let fake = w3c_request("/fake");
    let h = fake.len();
    let n = 100 + h;
    let base = format!("POST /b HTTP/1.1\r\nContent-Length: {n}\r\nX: \r\n\r\n");
    let bhead = format!(
        "POST /b HTTP/1.1\r\nContent-Length: {n}\r\nX: {}\r\n\r\n",
        "p".repeat(h - base.len())
    );
    wire.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    wire.write_answer(ANSWER);
    wire.send(bhead.as_bytes());
    wire.end_answer();
    wire.send(&[b'd'; 100]);
    wire.send(fake.as_bytes());
    wire.answer_all();
    assert!(wire.passed_text().ends_with(&fake), "a body byte changed");
    assert_eq!(wire.left(Leave::Unsure), 1);
}

#[test]
fn a_framed_answer_is_confirmed_by_the_next_answer_or_new_bytes() {
    // No false alarm where the stream did end: the next read's bytes differ, or the next
    // answer starts first.
    let mut wire = Wire::new(TRUST);
    wire.auto_answer = false;
    for i in 0..4 {
        wire.send(w3c_request(&format!("/{i}")).as_bytes());
        wire.answer(ANSWER);
    }
    // The same request again and again (a health check): each answered before the next.
    for _ in 0..3 {
        wire.send(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n");
        wire.answer(ANSWER);
    }
    // A body in a later write than its head.
    wire.send(post_head("/p", 5).as_bytes());
    wire.send(b"hello");
    wire.answer(ANSWER);
    assert_eq!(wire.host.count(Counter::NetworkClosed), 0);
    assert_eq!(wire.host.count(Counter::NetworkHead), 8);
    assert_no_client_context(&wire);
}

#[test]
fn a_crlf_handed_back_then_a_head_in_pieces_is_followed() {
    let mut wire = Wire::new(TRUST);
    wire.auto_answer = false;
    wire.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    wire.send(b"\r\n");
    assert!(wire.read_disabled);
    wire.send(b"GET /b HT");
    wire.answer(ANSWER);
    assert_eq!(wire.send(b"TP/1.1\r\nHost: a\r\n\r\n"), Verdict::Continue);
    wire.answer_all();
    assert_eq!(wire.host.count(Counter::NetworkHead), 2);
    assert_eq!(wire.host.count(Counter::NetworkClosed), 0);
}

#[test]
fn under_trust_a_tunnel_is_settled_by_its_answer() {
    let upgrade = format!(
        "GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\ntraceparent: 00-{T}-{S}-01\r\n\r\n"
    );
    // Switched: what follows is the tunnel's, passed as it is.
    let mut wire = Wire::new(TRUST);
    wire.auto_answer = false;
    wire.send(upgrade.as_bytes());
    wire.write_answer(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n");
    assert_eq!(wire.send(b"\x81\x05hello"), Verdict::Continue);
    assert_eq!(wire.host.count(Counter::NetworkClosed), 0);
    assert_eq!(wire.left(Leave::Upgrade), 1);
    // Refused: Envoy may read HTTP/1 on, so the next read closes.
    let mut wire = Wire::new(TRUST);
    wire.auto_answer = false;
    wire.send(upgrade.as_bytes());
    wire.write_answer(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
    assert_eq!(wire.send(w3c_request("/next").as_bytes()), Verdict::Close);
    // Bytes before the answer: closed at once.
    let mut wire = Wire::new(TRUST);
    wire.auto_answer = false;
    wire.send(upgrade.as_bytes());
    assert_eq!(wire.send(w3c_request("/next").as_bytes()), Verdict::Close);
    assert_no_client_context(&wire);
    // An empty Upgrade value beside h2c: Envoy drops both and reads HTTP/1 on.
    let mut wire = Wire::new(TRUST);
    wire.send(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\nUpgrade: \r\n\r\n",
    );
    wire.send(w3c_request("/next").as_bytes());
    assert_eq!(wire.host.count(Counter::NetworkHead), 2);
    assert_no_client_context(&wire);
}

#[test]
fn http2s_preface_after_a_request_is_not_http2() {
    let mut wire = Wire::new(TRUST);
    wire.send(w3c_request("/1").as_bytes());
    assert_eq!(
        wire.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Verdict::Close
    );
    assert_eq!(wire.left(Leave::NotHttp1), 1);
}

#[test]
fn http2s_preface_after_empty_lines_is_not_http2() {
    // Envoy picks HTTP/2 only for bytes that begin with its preface: after empty lines, in
    // the same read or passed before it, its HTTP/1 codec reads the preface as a bad request.
    // In the same read the HTTP/2 framer's preface check leaves it; passed before, the HTTP/1
    // framer does, as after a request.
    for (first, rest, reason) in [
        (
            &b"\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
            &b"pi.exam\n"[..],
            Leave::Http2,
        ),
        (
            &b"\r\n"[..],
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\npi.exam\n"[..],
            Leave::NotHttp1,
        ),
    ] {
        let mut wire = Wire::new(r#"{"position":"network","tracer":"zipkin"}"#);
        wire.send(first);
        wire.send_in(rest, 2);
        assert_eq!(wire.left(reason), 1, "{first:?}");
        let mut sent = first.to_vec();
        sent.extend_from_slice(rest);
        assert_eq!(wire.passed, sent, "nothing held");
    }
}

#[test]
fn an_earlier_requests_answer_is_not_a_tunnels() {
    // A CONNECT written while /a waits: /a's 200 is /a's, not the tunnel's switch.
    let mut wire = Wire::new(TRUST);
    wire.auto_answer = false;
    wire.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    wire.send(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
    wire.answer(ANSWER); // /a's: the CONNECT is handed back and taken
    assert_eq!(wire.left(Leave::Upgrade), 0);
    // Refused: the next read closes.
    wire.write_answer(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
    assert_eq!(wire.send(w3c_request("/next").as_bytes()), Verdict::Close);
    assert_no_client_context(&wire);

    // A WebSocket head written while /a waits is not closed by /a's answer.
    let mut wire = Wire::new(TRUST);
    wire.auto_answer = false;
    wire.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    wire.send(b"GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    wire.answer(ANSWER);
    wire.write_answer(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
    assert_eq!(wire.send(b"\x81\x05hello"), Verdict::Continue);
    assert_eq!(wire.host.count(Counter::NetworkClosed), 0);
}

#[test]
fn a_head_held_behind_an_answer_is_timed_from_the_answer() {
    let mut wire =
        Wire::new(r#"{"position":"network","tracer":"zipkin","request_headers_timeout_ms":5000}"#);
    wire.auto_answer = false;
    wire.host.now = 1_000_000_000;
    wire.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    wire.send(b"GET /b HT"); // held while /a waits: not timed yet
    assert_eq!(wire.filter.held_since(), None);
    wire.host.now = 9_000_000_000;
    wire.answer(ANSWER);
    assert_eq!(wire.filter.held_since(), Some(9_000_000_000));
}

/// A head the plan's writes would push past Envoy's limits is left as it is, but under
/// `trust` what the plan writes is removed instead: the client's sampling decision does not
/// reach the tracer (under `resample` its ids do, as they would with the write).
#[test]
fn at_the_limit_trust_still_removes() {
    let filler = "f".repeat(880);
    let head = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Filler: {filler}\r\nx-b3-traceid: {T}\r\nx-b3-spanid: {S}\r\nx-b3-sampled: 1\r\n\r\n"
    );
    assert!(head.len() <= 1024);
    for (config, kept) in [
        (
            r#"{"position":"network","tracer":"zipkin","max_request_headers_kb":1}"#,
            true,
        ),
        (
            r#"{"position":"network","tracer":"zipkin","max_request_headers_kb":1,"trust":"resample","sampling_ratio":0}"#,
            false,
        ),
    ] {
        let mut wire = Wire::new(config);
        wire.send(head.as_bytes());
        let text = wire.passed_text();
        assert_eq!(text.contains("x-b3-sampled: 1"), kept, "{config}: {text}");
        assert!(text.contains("x-b3-traceid"), "{config}: {text}");
        assert!(text.contains(&filler));
        assert_eq!(wire.host.count(Counter::NetworkAtLimit), 1, "{config}");
    }
}

// Dry run: every head decided and counted, every byte passed as it came.

#[test]
fn a_dry_run_passes_every_byte_as_it_came() {
    let live = r#"{"position":"network","tracer":"zipkin"}"#;
    let dry = r#"{"position":"network","tracer":"zipkin","dry_run":true}"#;
    let requests = [
        w3c_request("/1"),
        "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nb3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1\r\n\r\nabc".into(),
        "GET /none HTTP/1.1\r\nHost: a\r\n\r\n".into(),
    ];
    let (mut l, mut d) = (Wire::new(live), Wire::new(dry));
    let mut sent = Vec::new();
    for r in &requests {
        // A byte at a time too: held heads are decided once whole, as live.
        l.send_in(r.as_bytes(), 7);
        d.send_in(r.as_bytes(), 7);
        sent.extend_from_slice(r.as_bytes());
    }
    assert_ne!(l.passed, sent, "the live filter rewrites");
    assert_eq!(d.passed, sent);
    for c in Counter::ALL {
        if c != Counter::DryRunWouldChange {
            assert_eq!(d.host.count(c), l.host.count(c), "{c:?}");
        }
    }
    assert_eq!(d.host.count(Counter::NetworkHead), 3);
    assert_eq!(d.host.count(Counter::NetworkRewritten), 2);
    assert_eq!(d.host.count(Counter::DryRunWouldChange), 2);
    assert_eq!(l.host.count(Counter::DryRunWouldChange), 0);
}

#[test]
fn a_dry_run_under_trust_closes_nothing() {
    let dry = r#"{"position":"network","tracer":"zipkin","trust":"restart","dry_run":true}"#;
    let mut wire = Wire::new(dry);
    let two = format!("{}{}", w3c_request("/1"), w3c_request("/2"));
    // Live, this closes (under_trust_a_pipelined_request_cannot_make_the_filter_step_aside).
    assert_eq!(wire.send(two.as_bytes()), Verdict::Continue);
    wire.send(w3c_request("/3").as_bytes());
    assert_eq!(wire.left(Leave::Pipelined), 1);
    assert_eq!(wire.host.count(Counter::NetworkClosed), 0);
    assert_eq!(wire.passed_text(), format!("{two}{}", w3c_request("/3")));
}
