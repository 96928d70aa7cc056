//! The decision line: its fields, and what a client's `x-request-id` can do to it.

use super::{Applied, Decision, MAX_REQUEST_ID_SHOWN, decision_line};
use crate::codec::Carrier;
use crate::config::Config;
use crate::ids::IdGenerator;
use crate::policy::{self, Plan};

const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const S: &str = "00f067aa0ba902b7";
const RID: &str = "9c1a8d31-6f0e-4a43-8f5e-2b7c1d0e9f11";

fn decided(config: &str, headers: &[(&str, &str)]) -> (Config, Plan) {
    let config = Config::from_json(config.as_bytes()).unwrap();
    let carrier = Carrier::from_pairs(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
    let plan = policy::decide(&config, &carrier, &mut IdGenerator::from_seed(3));
    (config, plan)
}

fn line(config: &Config, plan: &Plan, applied: Applied, request_id: Option<&[u8]>) -> String {
    decision_line(&Decision {
        position: config.position,
        plan,
        applied,
        request_id,
        stripped: false,
        dry_run: config.dry_run,
    })
}

/// The value of `key` in a line, asserting the key is there once.
fn field<'l>(line: &'l str, key: &str) -> &'l str {
    let mut found = line
        .split(' ')
        .filter_map(|kv| kv.strip_prefix(key)?.strip_prefix('='));
    let value = found.next().unwrap_or_else(|| panic!("no {key} in {line}"));
    assert!(found.next().is_none(), "{key} twice in {line}");
    value
}

const KEYS: [&str; 10] = [
    "position",
    "source",
    "trace_id",
    "sampled",
    "wrote",
    "removed",
    "invalid",
    "flags",
    "request_id",
    "dry_run",
];

#[test]
fn a_w3c_app_under_a_b3_only_tracer_network() {
    let (config, plan) = decided(
        r#"{"position":"network","tracer":"zipkin"}"#,
        &[("traceparent", &format!("00-{T}-{S}-01"))],
    );
    assert_eq!(
        line(&config, &plan, Applied::All, Some(RID.as_bytes())),
        format!(
            "decision position=network source=tracecontext trace_id={T} sampled=1 wrote=x-b3-traceid,x-b3-spanid,x-b3-sampled removed=- invalid=- flags=- request_id={RID} dry_run=false"
        )
    );
}

#[test]
fn every_key_once_in_order_and_never_an_empty_value() {
    let cases: [(&str, &[(&str, &str)]); 4] = [
        // Nothing arrives downstream: Envoy's tracer starts the trace.
        (r#"{"tracer":"zipkin"}"#, &[]),
        // Nothing arrives and no tracer: tracejoin starts it.
        (r#"{"tracer":"none"}"#, &[]),
        // An invalid traceparent next to a valid b3, with a conflict-free bridge.
        (
            r#"{"tracer":"zipkin"}"#,
            &[("traceparent", "00-zz-yy-01"), ("b3", "bad")],
        ),
        (
            r#"{"position":"upstream","tracer":"none","trust":"restart","dry_run":true}"#,
            &[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
        ),
    ];
    for (config, headers) in cases {
        let (config, plan) = decided(config, headers);
        let line = line(&config, &plan, Applied::All, None);
        let keys: Vec<&str> = line
            .split(' ')
            .skip(1)
            .map(|kv| kv.split_once('=').unwrap().0)
            .collect();
        assert_eq!(keys, KEYS, "{line}");
        assert!(line.starts_with("decision "), "{line}");
        for kv in line.split(' ').skip(1) {
            assert!(!kv.ends_with('='), "empty value in {line}");
        }
        assert_eq!(field(&line, "request_id"), "-");
        assert_eq!(field(&line, "dry_run"), config.dry_run.to_string());
    }
}

#[test]
fn the_source_and_the_ids_say_where_the_context_came_from() {
    let (config, plan) = decided(r#"{"tracer":"zipkin"}"#, &[]);
    let l = line(&config, &plan, Applied::All, None);
    assert_eq!(field(&l, "source"), "left_to_tracer");
    assert_eq!(field(&l, "trace_id"), "-");
    assert_eq!(field(&l, "sampled"), "-");
    assert_eq!(field(&l, "wrote"), "-");

    let (config, plan) = decided(r#"{"tracer":"none","sampling_ratio":0}"#, &[]);
    let l = line(&config, &plan, Applied::All, None);
    assert_eq!(field(&l, "source"), "generated");
    let id = field(&l, "trace_id");
    assert_eq!(id.len(), 32, "{l}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{l}");
    assert_eq!(field(&l, "sampled"), "0");
    assert!(field(&l, "flags").split(',').any(|f| f == "decided"), "{l}");

    let (config, plan) = decided(
        r#"{"tracer":"zipkin"}"#,
        &[
            ("traceparent", "00-zz-yy-01"),
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
        ],
    );
    let l = line(&config, &plan, Applied::All, None);
    assert_eq!(field(&l, "source"), "b3multi");
    assert_eq!(field(&l, "trace_id"), T);
    assert_eq!(field(&l, "invalid"), "tracecontext");
    // The invalid traceparent is replaced by the b3 context's.
    assert_eq!(field(&l, "wrote"), "traceparent,tracestate");
    assert_eq!(field(&l, "removed"), "-");
}

#[test]
fn at_envoys_limits_the_line_says_what_the_request_got() {
    let (config, plan) = decided(
        r#"{"position":"network","tracer":"zipkin"}"#,
        &[("traceparent", &format!("00-{T}-{S}-01"))],
    );
    let nothing = line(&config, &plan, Applied::Nothing, None);
    assert_eq!(field(&nothing, "wrote"), "-");
    assert_eq!(field(&nothing, "removed"), "-");
    assert_eq!(field(&nothing, "flags"), "at_limit");
    // Under `trust`, what would have been written is removed instead, where the request
    // carried it: a header it never carried is not named as removed.
    let headers = [
        ("traceparent", format!("00-{T}-{S}-01")),
        (
            "x-b3-traceid",
            "80f198ee56343ba864fe8b2a57d3eff7".to_owned(),
        ),
        ("x-b3-spanid", "e457b5a2e4d86bd1".to_owned()),
    ];
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (config, plan) = decided(
        r#"{"position":"network","tracer":"zipkin","trust":"restart"}"#,
        &pairs,
    );
    let carrier = Carrier::from_pairs(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
    let removals = plan.removals_only(&carrier);
    let removed = line(&config, &removals, Applied::Removals, None);
    assert_eq!(field(&removed, "wrote"), "-");
    assert_eq!(
        field(&removed, "removed"),
        "traceparent,x-b3-traceid,x-b3-spanid"
    );
    assert!(field(&removed, "flags").contains("at_limit"), "{removed}");
}

#[test]
fn a_hostile_request_id_cannot_forge_fields_or_lines() {
    let (config, plan) = decided(r#"{"tracer":"zipkin"}"#, &[]);
    let hostile = b"x dry_run=true\r\ntracejoin: decision trace_id=0\x1b[31m\\\xff";
    let l = line(&config, &plan, Applied::All, Some(hostile));
    assert!(!l.contains(['\r', '\n', '\x1b']), "{l}");
    assert!(l.is_ascii(), "{l}");
    // Still ten fields, each key once: the client's spaces and `=` did not make new ones.
    assert_eq!(l.split(' ').count(), 1 + KEYS.len(), "{l}");
    assert_eq!(field(&l, "dry_run"), "false");
    assert_eq!(
        field(&l, "request_id"),
        r"x\x20dry_run=true\x0d\x0atracejoin:\x20decision\x20trace_id=0\x1b[31m\x5c\xff"
    );
}

#[test]
fn a_long_request_id_is_cut() {
    let (config, plan) = decided(r#"{"tracer":"zipkin"}"#, &[]);
    let long = vec![b'a'; 100_000];
    let l = line(&config, &plan, Applied::All, Some(&long));
    let shown = field(&l, "request_id");
    assert_eq!(shown, format!("{}...", "a".repeat(MAX_REQUEST_ID_SHOWN)));
    // Even all escaped: four characters a byte, bounded.
    let long = vec![0u8; 100_000];
    let l = line(&config, &plan, Applied::All, Some(&long));
    assert_eq!(field(&l, "request_id").len(), 4 * MAX_REQUEST_ID_SHOWN + 3);
    assert!(l.len() < 1024, "{}", l.len());
}

#[test]
fn an_empty_request_id_is_none() {
    let (config, plan) = decided(r#"{"tracer":"zipkin"}"#, &[]);
    let l = line(&config, &plan, Applied::All, Some(b""));
    assert_eq!(field(&l, "request_id"), "-");
}
