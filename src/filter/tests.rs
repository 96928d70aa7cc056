//! The whole request path driven natively through the recording host: the same decisions
//! the Envoy integration tests check, without Envoy, on every target (also wasm32-wasip1).

use crate::codec::tracecontext;
use crate::config::Config;
use crate::filter::recording_host::fail;
use crate::filter::{Counter, RecordingHost, RequestFilter, StatusClass};
use crate::ids::IdGenerator;
use crate::policy::Plan;

const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const S: &str = "00f067aa0ba902b7";
const X: &str = "5af7183fb1d4cf5f5af7183fb1d4cf5f";
const XS: &str = "6e0c63257de34c92";

type MockHost = RecordingHost;

/// Reading a recorded request as text.
trait Inspect {
    /// The header's value, asserting it was not repeated.
    fn get(&self, name: &str) -> Option<&str>;
    fn response_text(&self, i: usize) -> (String, String);
    fn get_response(&self, name: &str) -> Option<String>;
}

impl Inspect for RecordingHost {
    fn get(&self, name: &str) -> Option<&str> {
        let mut values = self.values(name).map(|v| std::str::from_utf8(v).unwrap());
        let first = values.next();
        assert!(values.next().is_none(), "{name} repeated");
        first
    }

    fn get_response(&self, name: &str) -> Option<String> {
        let (_, v) = self.response.iter().find(|(k, _)| k == name)?;
        Some(String::from_utf8(v.clone()).unwrap())
    }

    fn response_text(&self, i: usize) -> (String, String) {
        let (k, v) = &self.response[i];
        (k.clone(), String::from_utf8(v.clone()).unwrap())
    }
}

fn run(config_json: &str, headers: &[(&str, &str)]) -> MockHost {
    let config = Config::from_json(config_json.as_bytes()).unwrap();
    let mut host = MockHost::with(headers);
    let mut filter = RequestFilter::new();
    filter.on_request_headers(
        &mut host,
        &config,
        &mut IdGenerator::from_seed(7),
        &mut Plan::default(),
    );
    filter.on_response_headers(&mut host, &config);
    host
}

/// Envoy's Zipkin tracer as measured: what it injects after a listener filter ran.
fn zipkin_injects(host: &mut MockHost, trace: &str, span: &str, parent: Option<&str>) {
    host.request.retain(|(k, _)| !k.starts_with(b"x-b3-"));
    host.request.push(("x-b3-traceid".into(), trace.into()));
    host.request.push(("x-b3-spanid".into(), span.into()));
    if let Some(p) = parent {
        host.request.push(("x-b3-parentspanid".into(), p.into()));
    }
    host.request.push(("x-b3-sampled".into(), "1".into()));
}

#[test]
fn tracer_none_generates_one_context_in_every_configured_format() {
    let host = run(
        r#"{"tracer":"none","propagate":["tracecontext","b3","b3multi","jaeger"]}"#,
        &[],
    );
    let tp = host.get("traceparent").unwrap();
    let trace = &tp[3..35];
    let span = &tp[36..52];
    assert!(tp.ends_with("-03"), "random flag and sampled: {tp}");
    assert_eq!(host.get("b3").unwrap(), format!("{trace}-{span}-1"));
    assert_eq!(host.get("x-b3-traceid").unwrap(), trace);
    assert_eq!(host.get("x-b3-spanid").unwrap(), span);
    assert_eq!(host.get("x-b3-sampled").unwrap(), "1");
    assert_eq!(
        host.get("uber-trace-id").unwrap(),
        format!("{trace}:{span}:0:1")
    );
    assert_eq!(host.count(Counter::Generated), 1);
    assert_eq!(host.count(Counter::Sampled), 1);
}

#[test]
fn unchanged_headers_cost_no_write() {
    // Already consistent, no external services configured: one read, no writes, no
    // cluster lookup.
    let host = run(
        r#"{"tracer":"none"}"#,
        &[
            ("traceparent", &format!("00-{T}-{S}-01")),
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
            ("x-b3-sampled", "1"),
        ],
    );
    assert_eq!(host.calls, 1);
}

#[test]
fn downstream_zipkin_bridges_a_w3c_only_app_into_b3() {
    let host = run("{}", &[("traceparent", &format!("00-{T}-{S}-01"))]);
    assert_eq!(host.get("b3").unwrap(), format!("{T}-{S}-1"));
    // x-b3-* are Envoy's to write after this filter: untouched here.
    assert_eq!(host.get("x-b3-traceid"), None);
    assert_eq!(host.count(Counter::Bridged), 1);
    assert_eq!(
        host.count(Counter::Context(crate::codec::Format::TraceContext)),
        1
    );
}

#[test]
fn downstream_zipkin_copies_the_tracers_context_to_traceparent() {
    let host = run(
        "{}",
        &[
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
            ("x-b3-sampled", "1"),
            ("traceparent", &format!("00-{X}-{XS}-01")),
        ],
    );
    assert_eq!(host.get("traceparent").unwrap(), format!("00-{T}-{S}-01"));
    assert_eq!(host.count(Counter::Conflict), 1);
    assert_eq!(
        host.get("b3"),
        None,
        "no bridge when the tracer read the context"
    );
}

#[test]
fn downstream_with_tracer_and_no_context_leaves_it_to_the_tracer() {
    let host = run("{}", &[]);
    assert!(host.request.is_empty());
    assert_eq!(host.count(Counter::LeftToTracer), 1);
}

#[test]
fn upstream_zipkin_makes_every_format_name_envoys_span() {
    let config = Config::from_json(br#"{"position":"upstream"}"#).unwrap();
    let mut host = MockHost::with(&[("traceparent", &format!("00-{T}-{S}-01"))]);
    // Envoy continued T (it read b3 multi from an earlier hop) with its span E, parent S.
    zipkin_injects(&mut host, T, "1111111111111111", Some(S));
    RequestFilter::new().on_request_headers(
        &mut host,
        &config,
        &mut IdGenerator::from_seed(1),
        &mut Plan::default(),
    );
    assert_eq!(
        host.get("traceparent").unwrap(),
        format!("00-{T}-1111111111111111-01")
    );
}

// Before Envoy 1.40 Zipkin answers a `b3` single header with `x-b3-*` and leaves the `b3`
// that arrived (the caller's span) in the request; B3 readers would take it first.
#[test]
fn downstream_zipkin_before_1_40_removes_the_b3_its_tracer_answers_with_x_b3() {
    let b3 = format!("{T}-{S}-1");
    let old = run(
        r#"{"tracer":"zipkin","envoy_version":"1.38"}"#,
        &[("b3", &b3)],
    );
    assert_eq!(old.get("b3"), None);
    assert_eq!(old.get("traceparent").unwrap(), format!("00-{T}-{S}-01"));
    // Envoy writes x-b3-* for its own span after the filter: left to it.
    assert_eq!(old.get("x-b3-traceid"), None);
    // From 1.40 Envoy rewrites `b3` itself: left to it.
    let new = run(
        r#"{"tracer":"zipkin","envoy_version":"1.40"}"#,
        &[("b3", &b3)],
    );
    assert_eq!(new.get("b3").unwrap(), b3);
    // A lone decision, too: Envoy answers `b3: 0` with x-b3-* ids before 1.40.
    let decision = run(
        r#"{"tracer":"zipkin","envoy_version":"1.36"}"#,
        &[("b3", "0")],
    );
    assert_eq!(decision.get("b3"), None);
}

#[test]
fn upstream_zipkin_before_1_40_takes_envoys_x_b3_over_the_clients_b3() {
    let config = Config::from_json(br#"{"position":"upstream","envoy_version":"1.36"}"#).unwrap();
    let mut host = MockHost::with(&[("b3", &format!("{T}-{S}-1"))]);
    // Envoy continued the client's b3 with its span E in x-b3-*, the b3 left as it was.
    zipkin_injects(&mut host, T, "1111111111111111", Some(S));
    RequestFilter::new().on_request_headers(
        &mut host,
        &config,
        &mut IdGenerator::from_seed(1),
        &mut Plan::default(),
    );
    assert_eq!(
        host.get("b3").unwrap(),
        format!("{T}-1111111111111111-1-{S}")
    );
    assert_eq!(
        host.get("traceparent").unwrap(),
        format!("00-{T}-1111111111111111-01")
    );
    assert_eq!(host.count(Counter::ContinuedOverTracer), 0);
}

#[test]
fn upstream_zipkin_continues_the_apps_trace_over_a_fresh_tracer_trace() {
    let config = Config::from_json(br#"{"position":"upstream"}"#).unwrap();
    let mut host = MockHost::with(&[("traceparent", &format!("00-{T}-{S}-01"))]);
    // Envoy's B3-only tracer could not read traceparent: a fresh root (no parent).
    zipkin_injects(&mut host, X, XS, None);
    RequestFilter::new().on_request_headers(
        &mut host,
        &config,
        &mut IdGenerator::from_seed(1),
        &mut Plan::default(),
    );
    assert_eq!(host.get("x-b3-traceid").unwrap(), T);
    assert_eq!(host.get("x-b3-spanid").unwrap(), S);
    assert_eq!(host.get("traceparent").unwrap(), format!("00-{T}-{S}-01"));
    assert_eq!(host.count(Counter::ContinuedOverTracer), 1);
}

#[test]
fn restart_keeps_the_clients_trace_id_in_tracestate() {
    let host = run(
        r#"{"tracer":"none","trust":"restart"}"#,
        &[
            ("traceparent", &format!("00-{T}-{S}-01")),
            ("tracestate", "vendor=secret"),
        ],
    );
    let tp = host.get("traceparent").unwrap();
    assert!(!tp.contains(T));
    // The new trace's own decision (ratio 1: `th:0`) goes in front, as W3C asks of a new
    // member; the client's members do not go on.
    assert_eq!(
        host.get("tracestate").unwrap(),
        format!("ot=th:0,tracejoin={T}")
    );
    assert_eq!(host.count(Counter::Restarted), 1);
}

#[test]
fn resample_drops_forced_sampling() {
    let host = run(
        r#"{"tracer":"none","trust":"resample","sampling_ratio":0}"#,
        &[("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-flags", "1")],
    );
    assert_eq!(host.get("traceparent").unwrap(), format!("00-{T}-{S}-00"));
    assert_eq!(host.get("x-b3-sampled").unwrap(), "0");
    assert_eq!(host.get("x-b3-flags"), None);
    assert_eq!(host.count(Counter::NotSampled), 1);
}

#[test]
fn sampling_ratio_is_the_same_decision_at_every_hop() {
    // Deferred B3 (no sampled state): the ratio decides, from the trace id alone.
    let decide = |seed| {
        let config = Config::from_json(br#"{"tracer":"none","sampling_ratio":0.5}"#).unwrap();
        let mut host = MockHost::with(&[("x-b3-traceid", T), ("x-b3-spanid", S)]);
        RequestFilter::new().on_request_headers(
            &mut host,
            &config,
            &mut IdGenerator::from_seed(seed),
            &mut Plan::default(),
        );
        host.get("traceparent").unwrap().to_string()
    };
    assert_eq!(decide(1), decide(2));
}

#[test]
fn invalid_headers_are_removed_not_forwarded() {
    let host = run(
        r#"{"tracer":"none"}"#,
        &[
            ("traceparent", &format!("00-{}-{S}-01", T.to_uppercase())),
            ("tracestate", "a=1"),
            ("uber-trace-id", "zz:1:0:1"),
        ],
    );
    let tp = host.get("traceparent").unwrap();
    assert!(!tp.contains(&T.to_uppercase()));
    // The new trace carries only the threshold of tracejoin's own decision, not `a=1`.
    assert_eq!(host.get("tracestate").unwrap(), "ot=th:0");
    assert_eq!(host.get("uber-trace-id"), None);
    assert_eq!(
        host.count(Counter::Invalid(crate::codec::Format::TraceContext)),
        1
    );
    assert_eq!(
        host.count(Counter::Invalid(crate::codec::Format::Jaeger)),
        1
    );
}

#[test]
fn response_carries_the_trace_id_when_configured() {
    let host = run(
        r#"{"tracer":"none","response_header":"x-trace-id","traceresponse":true}"#,
        &[("b3", &format!("{T}-{S}-1"))],
    );
    assert_eq!(
        host.response_text(0),
        ("x-trace-id".to_string(), T.to_string())
    );
    // With no tracer this hop has no span of its own: echoing the caller's span (S) as the
    // server operation would be false, so no trace metric is written (item 11).
    assert_eq!(host.response.len(), 1, "{:?}", host.response);
}

/// Item 11. W3C "Trace Context Server Timing Metric Format": `server-timing:
/// trace;desc=00-{trace}-{child}-{flags}`, the child id being the server operation's span.
#[test]
fn response_trace_metric_names_this_hops_span() {
    // Upstream: Envoy's injected span is this hop's operation.
    let config = Config::from_json(
        br#"{"position":"upstream","tracer":"zipkin","server_timing":true,"traceresponse":true}"#,
    )
    .unwrap();
    let mut host = MockHost::with(&[("x-b3-traceid", T), ("x-b3-spanid", S)]);
    zipkin_injects(&mut host, T, XS, Some(S));
    let mut f = RequestFilter::new();
    f.on_request_headers(
        &mut host,
        &config,
        &mut IdGenerator::from_seed(1),
        &mut Plan::default(),
    );
    host.response
        .push(("server-timing".to_string(), b"app;dur=12".to_vec()));
    f.on_response_headers(&mut host, &config);
    let want = format!("00-{T}-{XS}-01");
    assert_eq!(host.get_response("traceresponse"), Some(want.clone()));
    assert_eq!(
        host.get_response("server-timing"),
        Some(format!("app;dur=12, trace;desc={want}"))
    );
    // Downstream, Envoy's span is not known to the filter: nothing rather than the
    // caller's S.
    let config = Config::from_json(br#"{"tracer":"zipkin","server_timing":true}"#).unwrap();
    let host = run(
        r#"{"tracer":"zipkin","server_timing":true}"#,
        &[
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
            ("x-b3-sampled", "1"),
        ],
    );
    assert!(config.server_timing);
    assert_eq!(host.get_response("server-timing"), None);
    // A trace tracejoin started: its own span.
    let config = Config::from_json(br#"{"tracer":"none","server_timing":true}"#).unwrap();
    let mut host = MockHost::default();
    let mut f = RequestFilter::new();
    let mut plan = Plan::default();
    assert!(f.on_request_headers(
        &mut host,
        &config,
        &mut IdGenerator::from_seed(1),
        &mut plan
    ));
    f.on_response_headers(&mut host, &config);
    let ctx = plan.context.unwrap();
    assert_eq!(
        host.get_response("server-timing"),
        Some(format!(
            "trace;desc={}",
            tracecontext::render(&ctx).as_str()
        ))
    );
}

#[test]
fn host_errors_are_counted_never_fatal() {
    let config = Config::from_json(br#"{"tracer":"none"}"#).unwrap();
    let mut host = MockHost::default();
    host.fail = fail::SET;
    let decided = RequestFilter::new().on_request_headers(
        &mut host,
        &config,
        &mut IdGenerator::from_seed(3),
        &mut Plan::default(),
    );
    assert!(decided);
    assert!(host.count(Counter::HostError) >= 1);
}

#[test]
fn counter_names_are_distinct_and_indexed() {
    let config = Config::default();
    let mut names: Vec<String> = Counter::ALL.iter().map(|c| c.name(&config)).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), Counter::ALL.len());
    for (i, c) in Counter::ALL.iter().enumerate() {
        assert_eq!(c.index(), Some(i));
    }
    // Those defined on first use have no index.
    for c in [
        Counter::External {
            service: 0,
            class: StatusClass::Success,
        },
        Counter::Unregistered(StatusClass::ServerError),
        Counter::ExternalTls(0),
        Counter::UnregisteredTls,
    ] {
        assert_eq!(c.index(), None, "{c:?}");
    }
}

// Regression tests for review findings.

#[test]
fn resample_leaves_no_forced_decision_in_formats_it_does_not_write() {
    let host = run(
        r#"{"tracer":"none","trust":"resample","sampling_ratio":0}"#,
        &[
            ("traceparent", &format!("00-{T}-{S}-00")),
            ("b3", &format!("{T}-{S}-d")),
        ],
    );
    assert_eq!(
        host.get("b3"),
        None,
        "a forced debug b3 would make the next Zipkin hop sample"
    );
    assert_eq!(host.get("x-b3-sampled").unwrap(), "0");
}

#[test]
fn debug_does_not_excuse_a_bad_sampled_value() {
    let host = run(
        r#"{"tracer":"none","propagate":["tracecontext"]}"#,
        &[
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
            ("x-b3-flags", "1"),
            ("x-b3-sampled", "maybe"),
        ],
    );
    assert_eq!(host.get("x-b3-sampled"), None);
    assert_eq!(
        host.count(Counter::Invalid(crate::codec::Format::B3Multi)),
        1
    );
}

#[test]
fn a_context_nobody_continues_is_not_left_beside_the_tracers_trace() {
    // traceparent is not extracted, and Zipkin will start a trace of its own.
    let host = run(
        r#"{"extract":["b3","b3multi"]}"#,
        &[("traceparent", &format!("00-{T}-{S}-01"))],
    );
    assert_eq!(host.get("traceparent"), None);
    assert_eq!(host.count(Counter::LeftToTracer), 1);
}

#[test]
fn the_w3c_random_flag_survives_when_b3_wins() {
    let host = run(
        "{}",
        &[
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
            ("x-b3-sampled", "1"),
            ("traceparent", &format!("00-{T}-{S}-03")),
        ],
    );
    assert_eq!(host.get("traceparent").unwrap(), format!("00-{T}-{S}-03"));
    assert_eq!(host.calls, 1, "already consistent: nothing to write");
}

#[test]
fn downstream_opentelemetry_drops_tracestate_of_an_invalid_traceparent() {
    let host = run(
        r#"{"tracer":"opentelemetry"}"#,
        &[
            ("traceparent", &format!("00-{}-{S}-01", "0".repeat(32))),
            ("tracestate", "a=1"),
        ],
    );
    assert_eq!(host.get("traceparent"), None);
    assert_eq!(host.get("tracestate"), None);
}

// External services.

const EXTERNAL: &str = r#"{"tracer":"none","external_services":[
    {"name":"openai-external","namespace":"ai","hosts":["api.openai.com"],"ports":[443]},
    {"name":"kakao-external","hosts":["kauth.kakao.com"],"propagate":true}]}"#;

#[test]
fn a_future_traceparent_envoy_cannot_read_is_not_left_to_its_tracer() {
    // Envoy 1.40 reads a traceparent of exactly 55 characters only. Its OpenTelemetry
    // tracer then does not trace: tracejoin writes version 00 itself.
    let future = format!("01-{T}-{S}-01-extra");
    let host = run(
        r#"{"tracer":"opentelemetry"}"#,
        &[("traceparent", future.as_str())],
    );
    assert_eq!(host.get("traceparent").unwrap(), format!("00-{T}-{S}-01"));
    assert_eq!(host.get("x-b3-traceid").unwrap(), T);
    // Zipkin with W3C starts a fresh trace: the client's trace goes on in `b3`.
    let host = run(
        r#"{"tracer":"zipkin_w3c"}"#,
        &[("traceparent", future.as_str())],
    );
    assert_eq!(host.get("b3").unwrap(), format!("{T}-{S}-1"));
    assert_eq!(host.count(Counter::Bridged), 1);
    // A version-00 traceparent is Envoy's to continue: nothing written.
    let host = run(
        r#"{"tracer":"opentelemetry","propagate":["tracecontext"]}"#,
        &[("traceparent", &format!("00-{T}-{S}-01"))],
    );
    assert_eq!(host.calls, 1);
}

#[test]
fn formats_that_go_on_unwritten_go_on_canonical() {
    // Downstream OpenTelemetry, propagate tracecontext + b3multi: uber-trace-id is not
    // written, but its trace goes on, so its lenient spellings are made canonical.
    let lower = format!("{X}:{XS}:0:1");
    for lenient in [
        X.to_uppercase() + ":" + &XS.to_uppercase() + ":0:1",
        format!("{X}%3A{XS}%3A0%3A1"),
    ] {
        let host = run(
            r#"{"tracer":"opentelemetry"}"#,
            &[
                ("x-b3-traceid", X),
                ("x-b3-spanid", XS),
                ("x-b3-sampled", "1"),
                ("uber-trace-id", lenient.as_str()),
            ],
        );
        assert_eq!(host.get("uber-trace-id").unwrap(), lower, "{lenient}");
    }
    // Jaeger's firehose bit survives the canonical rewrite.
    let host = run(
        r#"{"tracer":"opentelemetry"}"#,
        &[
            ("x-b3-traceid", X),
            ("x-b3-spanid", XS),
            ("x-b3-sampled", "1"),
            ("uber-trace-id", &format!("{}:{XS}::09", X.to_uppercase())),
        ],
    );
    assert_eq!(host.get("uber-trace-id").unwrap(), format!("{X}:{XS}:0:9"));
    // Jaeger's debug bit without the sampled bit reads as not sampled (OpenTelemetry's
    // Jaeger propagators): it disagrees with the debug B3 context and is removed.
    let host = run(
        r#"{"tracer":"opentelemetry"}"#,
        &[
            ("x-b3-traceid", X),
            ("x-b3-spanid", XS),
            ("x-b3-flags", "1"),
            ("uber-trace-id", &format!("{X}:{XS}:0:2")),
        ],
    );
    assert_eq!(host.get("uber-trace-id"), None);
    // A lone B3 decision in a lenient spelling, next to nothing Envoy's tracer reads.
    let host = run(r#"{"tracer":"opentelemetry"}"#, &[("x-b3-sampled", "true")]);
    assert_eq!(host.get("x-b3-sampled").unwrap(), "1");
    let host = run(
        r#"{"tracer":"opentelemetry"}"#,
        &[("x-b3-sampled", "0"), ("x-b3-flags", "0")],
    );
    assert_eq!(host.get("x-b3-sampled").unwrap(), "0");
    assert_eq!(host.get("x-b3-flags"), None);
}

#[test]
fn an_empty_tracestate_is_not_passed_on_repeated_or_padded() {
    let tp = format!("00-{T}-{S}-01");
    for parts in [vec![",,,"], vec!["", ""], vec![" , "]] {
        let mut headers = vec![("traceparent", tp.as_str())];
        headers.extend(parts.iter().map(|p| ("tracestate", *p)));
        let host = run(r#"{"tracer":"none"}"#, &headers);
        assert_eq!(host.get("tracestate"), None, "{parts:?}");
    }
    // One empty header is left as it is (no write for nothing).
    let host = run(
        r#"{"tracer":"none"}"#,
        &[("traceparent", tp.as_str()), ("tracestate", "")],
    );
    assert_eq!(host.get("tracestate"), Some(""));
}

#[test]
fn resample_leaves_no_debug_flag_in_formats_it_does_not_write() {
    // Ratio 1 decides "sampled": a client's debug in a format not written must not survive.
    let host = run(
        r#"{"tracer":"none","trust":"resample","propagate":["tracecontext"]}"#,
        &[("b3", &format!("{T}-{S}-d")), ("x-b3-flags", "1")],
    );
    assert_eq!(host.get("traceparent").unwrap(), format!("00-{T}-{S}-01"));
    assert_eq!(host.get("b3").unwrap(), format!("{T}-{S}-1"));
    // A lone debug flag next to a context goes (B3 readers prefer the ids of `b3`).
    assert_eq!(host.get("x-b3-flags"), None);
    assert_eq!(host.get("x-b3-sampled"), None);
}

fn run_external(cluster: &str, headers: &[(&str, &str)], status: u16) -> MockHost {
    let config = Config::from_json(EXTERNAL.as_bytes()).unwrap();
    let mut host = MockHost::with(headers);
    host.cluster = Some(cluster.as_bytes().to_vec());
    host.status = Some(status);
    host.final_code = Some(status);
    let mut filter = RequestFilter::new();
    filter.on_request_headers(
        &mut host,
        &config,
        &mut IdGenerator::from_seed(9),
        &mut Plan::default(),
    );
    filter.on_response_headers(&mut host, &config);
    filter.on_log(&mut host);
    host
}

fn state<'h>(host: &'h MockHost, key: &str) -> Option<&'h str> {
    host.filter_state
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| std::str::from_utf8(v).unwrap())
}

#[test]
fn a_listed_service_is_tagged_and_its_trace_headers_stripped() {
    let host = run_external(
        "outbound|443||api.openai.com",
        &[
            (":authority", "api.openai.com"),
            ("traceparent", &format!("00-{T}-{S}-01")),
            ("tracestate", "a=1"),
            ("baggage", "user=1"),
        ],
        200,
    );
    assert_eq!(
        state(&host, "tracejoin.service_entry"),
        Some("openai-external")
    );
    assert_eq!(
        state(&host, "tracejoin.service_entry_namespace"),
        Some("ai")
    );
    assert_eq!(
        state(&host, "tracejoin.external_host"),
        Some("api.openai.com")
    );
    for name in ["traceparent", "tracestate", "baggage", "x-b3-traceid", "b3"] {
        assert_eq!(host.get(name), None, "{name} leaked to a third party");
    }
    assert_eq!(host.count(Counter::ExternalStripped), 1);
    assert_eq!(
        host.count(Counter::External {
            service: 0,
            class: crate::filter::StatusClass::Success
        }),
        1
    );
}

#[test]
fn a_service_that_may_see_traces_keeps_them() {
    let host = run_external(
        "outbound|443||kauth.kakao.com",
        &[
            (":authority", "kauth.kakao.com"),
            ("traceparent", &format!("00-{T}-{S}-01")),
        ],
        503,
    );
    assert_eq!(
        state(&host, "tracejoin.service_entry"),
        Some("kakao-external")
    );
    assert_eq!(host.get("traceparent").unwrap(), format!("00-{T}-{S}-01"));
    assert_eq!(host.count(Counter::ExternalStripped), 0);
    assert_eq!(
        host.count(Counter::External {
            service: 1,
            class: crate::filter::StatusClass::ServerError
        }),
        1
    );
}

#[test]
fn passthrough_calls_are_tagged_unregistered_with_their_host() {
    let host = run_external(
        "PassthroughCluster",
        &[
            (":authority", "example.org:8443"),
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
        ],
        404,
    );
    assert_eq!(
        state(&host, "tracejoin.service_entry"),
        Some("unregistered")
    );
    assert_eq!(state(&host, "tracejoin.external_host"), Some("example.org"));
    assert_eq!(host.unregistered, vec![b"example.org".to_vec()]);
    assert_eq!(host.get("x-b3-traceid"), None);
    assert_eq!(
        host.count(Counter::Unregistered(
            crate::filter::StatusClass::ClientError
        )),
        1
    );
}

#[test]
fn in_mesh_calls_pay_one_property_read_and_are_not_tagged() {
    let host = run_external(
        "outbound|8080||character-api.default.svc.cluster.local",
        &[
            (":authority", "character-api:8080"),
            ("traceparent", &format!("00-{T}-{S}-01")),
            ("x-b3-traceid", T),
            ("x-b3-spanid", S),
            ("x-b3-sampled", "1"),
        ],
        200,
    );
    assert!(host.filter_state.is_empty());
    // Header read + cluster name; no writes, no response status read.
    assert_eq!(host.calls, 2);
}

#[test]
fn upstream_rewrites_every_format_that_arrived_to_name_this_hops_span() {
    // An app on `b3` single reads `b3` first: it must name Envoy's span, not the caller's.
    let config = Config::from_json(br#"{"position":"upstream","tracer":"opentelemetry"}"#).unwrap();
    let envoy_span = "2222222222222222";
    let mut host = MockHost::with(&[
        ("b3", &format!("{T}-{S}-1")),
        ("traceparent", &format!("00-{T}-{envoy_span}-01")),
    ]);
    RequestFilter::new().on_request_headers(
        &mut host,
        &config,
        &mut IdGenerator::from_seed(5),
        &mut Plan::default(),
    );
    assert_eq!(host.get("b3").unwrap(), format!("{T}-{envoy_span}-1"));
    assert_eq!(host.get("x-b3-spanid").unwrap(), envoy_span);
}

#[test]
fn envoys_own_reply_is_counted_at_stream_end_once() {
    let config = Config::from_json(EXTERNAL.as_bytes()).unwrap();
    // Normal response: counted on headers, not again at the end.
    let mut host = MockHost::with(&[(":authority", "api.openai.com")]);
    host.cluster = Some("outbound|443||api.openai.com".into());
    host.status = Some(200);
    let mut filter = RequestFilter::new();
    filter.on_request_headers(
        &mut host,
        &config,
        &mut IdGenerator::from_seed(1),
        &mut Plan::default(),
    );
    filter.on_response_headers(&mut host, &config);
    filter.on_log(&mut host);
    assert_eq!(
        host.count(Counter::External {
            service: 0,
            class: crate::filter::StatusClass::Success
        }),
        1
    );
    // Envoy's 503 (no response headers through the filter): counted at the end.
    let mut host = MockHost::with(&[(":authority", "api.openai.com")]);
    host.cluster = Some("outbound|443||api.openai.com".into());
    host.final_code = Some(503);
    let mut filter = RequestFilter::new();
    filter.on_request_headers(
        &mut host,
        &config,
        &mut IdGenerator::from_seed(1),
        &mut Plan::default(),
    );
    filter.on_log(&mut host);
    assert_eq!(
        host.count(Counter::External {
            service: 0,
            class: crate::filter::StatusClass::ServerError
        }),
        1
    );
}

// ---------------------------------------------------------------------------------------
// docs/conformance.md items 8, 9, 10
// ---------------------------------------------------------------------------------------

/// Item 9. W3C ("Mutating the traceparent Field", Update `sampled`): "The `parent-id` field
/// MUST be set to a new value with the `sampled` flag update".
#[test]
fn resample_that_flips_the_flag_sends_a_new_parent_id() {
    let host = run(
        r#"{"tracer":"none","trust":"resample","sampling_ratio":0}"#,
        &[("traceparent", &format!("00-{T}-{S}-01"))],
    );
    let tp = host.get("traceparent").unwrap().to_string();
    let c = crate::codec::tracecontext::parse(tp.as_bytes()).unwrap();
    assert_eq!(c.trace_id, crate::testing::vectors::tid(T), "{tp}");
    assert!(tp.ends_with("-00"), "{tp}");
    assert_ne!(c.span_id, crate::testing::vectors::sid(S), "{tp}");
    // The same new id in every format, the client's span as its parent.
    assert_eq!(host.get("x-b3-spanid").unwrap(), &tp[36..52]);
    assert_eq!(host.get("x-b3-parentspanid").unwrap(), S);
    // The decision the client sent is kept: the same traceparent goes on.
    let host = run(
        r#"{"tracer":"none","trust":"resample","sampling_ratio":1}"#,
        &[("traceparent", &format!("00-{T}-{S}-01"))],
    );
    assert_eq!(host.get("traceparent").unwrap(), format!("00-{T}-{S}-01"));
}

/// Item 10. W3C: "If the value of the traceparent field wasn't changed before propagation,
/// tracestate MUST NOT be modified as well."
#[test]
fn tracestate_is_left_as_it_arrived_while_traceparent_is() {
    let tp = format!("00-{T}-{S}-01");
    for ts in ["a=1 , b=2", "a=1,,b=2", "a=1,b=2 "] {
        let host = run(
            r#"{"tracer":"none","propagate":["tracecontext"]}"#,
            &[("traceparent", &tp), ("tracestate", ts)],
        );
        assert_eq!(host.get("traceparent").unwrap(), tp);
        assert_eq!(host.get("tracestate").unwrap(), ts);
    }
    // A traceparent tracejoin rewrites (here a future version downgraded to 00) may carry
    // its tracestate in canonical form.
    let host = run(
        r#"{"tracer":"none","propagate":["tracecontext"]}"#,
        &[
            ("traceparent", &format!("01-{T}-{S}-01-extra")),
            ("tracestate", "a=1 , b=2"),
        ],
    );
    assert_eq!(host.get("traceparent").unwrap(), tp);
    assert_eq!(host.get("tracestate").unwrap(), "a=1,b=2");
    // An invalid one is still discarded (processing model, step 3).
    let host = run(
        r#"{"tracer":"none"}"#,
        &[("traceparent", &tp), ("tracestate", "A=1")],
    );
    assert_eq!(host.get("tracestate"), None);
}

/// Items 5 and 10 together: beside an unchanged traceparent a tracestate goes on as it came,
/// but not with a repeated key: its later members are dropped (W3C lets a vendor discard
/// duplicates), so no reader that keeps the last one sees another member than tracejoin did.
#[test]
fn a_repeated_tracestate_key_is_dropped_also_beside_an_unchanged_traceparent() {
    let tp = format!("00-{T}-{S}-01");
    for (ts, want) in [
        (&["a=1,a=2"][..], "a=1"),
        (&["a=1 , b=2", "a=3"][..], "a=1,b=2"),
    ] {
        let mut headers = vec![("traceparent", tp.as_str())];
        headers.extend(ts.iter().map(|v| ("tracestate", *v)));
        let host = run(
            r#"{"tracer":"none","propagate":["tracecontext"]}"#,
            &headers,
        );
        assert_eq!(host.get("traceparent").unwrap(), tp);
        assert_eq!(host.get("tracestate").unwrap(), want, "{ts:?}");
    }
}

/// Item 8. OpenTelemetry tracestate-probability-sampling: the stage that decides writes
/// its threshold `ot=th:`, decides over `ot=rv:` when present, and re-encodes or erases a
/// client's `th` it overrode.
#[test]
fn decisions_carry_the_otel_threshold_and_honour_rv() {
    // Deferred B3, no tracer: tracejoin decides, with the sampler's threshold (ratio 1: `0`).
    let host = run(
        r#"{"tracer":"none","sampling_ratio":1}"#,
        &[("x-b3-traceid", T), ("x-b3-spanid", S)],
    );
    assert_eq!(host.get("tracestate").unwrap(), "ot=th:0");
    // The trace id alone would be kept at 0.5 (0xce92... >= 0x80...); rv decides.
    let tp = format!("00-{T}-{S}-01");
    for (rv, sampled) in [("00000000000000", false), ("ffffffffffffff", true)] {
        let host = run(
            r#"{"tracer":"none","trust":"resample","sampling_ratio":0.5}"#,
            &[
                ("traceparent", &tp),
                ("tracestate", &format!("x=1,ot=rv:{rv}")),
            ],
        );
        let out = host.get("traceparent").unwrap();
        assert_eq!(out.ends_with("-01"), sampled, "rv {rv}: {out}");
        // No client `th` and no threshold when not sampled: the randomness goes on where
        // it was (sampled: traceparent and tracestate go on as they came).
        let want = format!("x=1,ot=rv:{rv}");
        assert_eq!(host.get("tracestate").unwrap(), want, "rv {rv}");
    }
    // A client's `th` that says 1% is re-encoded as tracejoin's (ratio 1: `th:0`); the
    // changed tracestate comes with a new parent-id, and `ot` moves to the front.
    let host = run(
        r#"{"tracer":"none","trust":"resample","sampling_ratio":1}"#,
        &[
            ("traceparent", &tp),
            ("tracestate", "a=1,ot=th:fd70a;rv:00f067aa0ba902"),
        ],
    );
    let out = host.get("traceparent").unwrap();
    assert!(out.ends_with("-01") && !out.contains(S), "{out}");
    assert_eq!(
        host.get("tracestate").unwrap(),
        "ot=th:0;rv:00f067aa0ba902,a=1"
    );
    // Not sampled after `resample`: the client's `th` is erased.
    let host = run(
        r#"{"tracer":"none","trust":"resample","sampling_ratio":0}"#,
        &[("traceparent", &tp), ("tracestate", "ot=th:0,a=1")],
    );
    assert!(host.get("traceparent").unwrap().ends_with("-00"));
    assert_eq!(host.get("tracestate").unwrap(), "a=1");
}

/// Item 1. Downstream under Zipkin, a B3 context without a decision is decided by Envoy's
/// tracer with the HCM's decision, which Envoy's UUID request-id extension records in
/// `x-request-id` (character 15: `9` sampled, `4` not) before the HTTP filters run: the formats
/// tracejoin writes carry that decision, not the sampler's.
#[test]
fn deferred_b3_downstream_takes_envoys_decision() {
    let deferred = [("x-b3-traceid", T), ("x-b3-spanid", S)];
    for (tracer, ratio, rid, flag) in [
        ("zipkin", 1, "9c1a8d31-6f0e-4a43-8f5e-2b7c1d0e9f11", "-00"),
        ("zipkin", 0, "9c1a8d31-6f0e-9a43-8f5e-2b7c1d0e9f11", "-01"),
        (
            "zipkin_w3c",
            1,
            "9c1a8d31-6f0e-4a43-8f5e-2b7c1d0e9f11",
            "-00",
        ),
    ] {
        let json = format!(
            r#"{{"tracer":"{tracer}","sampling_ratio":{ratio},"propagate":["tracecontext","jaeger"]}}"#
        );
        let mut headers = deferred.to_vec();
        headers.push(("x-request-id", rid));
        let host = run(&json, &headers);
        let jaeger = host.get("uber-trace-id").unwrap();
        assert_eq!(
            jaeger.ends_with(":1"),
            flag == "-01",
            "{tracer} {rid}: {jaeger}"
        );
        if tracer == "zipkin" {
            assert!(host.get("traceparent").unwrap().ends_with(flag), "{rid}");
        }
        // Envoy's decision, not one tracejoin made.
        assert_eq!(
            host.count(Counter::Sampled) + host.count(Counter::NotSampled),
            0
        );
    }
    // Without Envoy's record (no UUID request id), and with no tracer, tracejoin decides.
    let host = run(r#"{"tracer":"zipkin","sampling_ratio":1}"#, &deferred);
    assert!(host.get("traceparent").unwrap().ends_with("-01"));
    let mut headers = deferred.to_vec();
    headers.push(("x-request-id", "9c1a8d31-6f0e-4a43-8f5e-2b7c1d0e9f11"));
    let host = run(r#"{"tracer":"none","sampling_ratio":1}"#, &headers);
    assert!(host.get("traceparent").unwrap().ends_with("-01"));
}

/// Item 10's limits: past 512 characters or with a tab, an unchanged traceparent's
/// tracestate still goes out canonical.
#[test]
fn an_unchanged_traceparents_tracestate_is_still_bounded() {
    let tp = format!("00-{T}-{S}-01");
    let long = (0..6)
        .map(|i| format!("k{i}={}", "v".repeat(100)))
        .collect::<Vec<_>>();
    let host = run(
        r#"{"tracer":"none"}"#,
        &[("traceparent", &tp), ("tracestate", &long.join(" , "))],
    );
    assert_eq!(host.get("tracestate").unwrap(), long[..4].join(","));
    let host = run(
        r#"{"tracer":"none"}"#,
        &[("traceparent", &tp), ("tracestate", "a=1,\tb=2")],
    );
    assert_eq!(host.get("tracestate").unwrap(), "a=1,b=2");
}

#[test]
fn datadog_xray_ottrace_are_read_written_and_counted() {
    use crate::codec::Format;
    let all = r#"{"tracer":"none","extract":["datadog","xray","ottrace","tracecontext"],"propagate":["tracecontext","datadog","xray","ottrace"]}"#;
    // Each one alone is continued and written into every other format with the same ids.
    let cases: [(Format, &[(&str, &str)]); 3] = [
        (
            Format::Datadog,
            &[
                ("x-datadog-trace-id", "11803532876627986230"),
                ("x-datadog-parent-id", "67667974448284343"),
                ("x-datadog-sampling-priority", "1"),
                ("x-datadog-tags", "_dd.p.tid=4bf92f3577b34da6"),
            ],
        ),
        (
            Format::XRay,
            &[(
                "x-amzn-trace-id",
                "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1",
            )],
        ),
        (
            Format::OtTrace,
            &[
                ("ot-tracer-traceid", T),
                ("ot-tracer-spanid", S),
                ("ot-tracer-sampled", "true"),
            ],
        ),
    ];
    for (format, headers) in cases {
        let host = run(all, headers);
        assert_eq!(
            host.get("traceparent"),
            Some(format!("00-{T}-{S}-01").as_str())
        );
        assert_eq!(host.get("x-datadog-trace-id"), Some("11803532876627986230"));
        assert_eq!(host.get("x-datadog-parent-id"), Some("67667974448284343"));
        assert_eq!(
            host.get("x-datadog-tags"),
            Some("_dd.p.tid=4bf92f3577b34da6")
        );
        assert_eq!(
            host.get("x-amzn-trace-id"),
            Some("Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1")
        );
        assert_eq!(host.get("ot-tracer-traceid"), Some(T));
        assert_eq!(host.get("ot-tracer-sampled"), Some("true"));
        assert_eq!(host.count(Counter::Context(format)), 1, "{format:?}");
    }
    // Invalid values are removed and counted per format.
    let host = run(
        all,
        &[
            ("traceparent", &format!("00-{T}-{S}-01")),
            ("x-datadog-trace-id", "0"),
            ("x-datadog-parent-id", "1"),
            ("x-amzn-trace-id", "Root=1-nothex"),
            ("ot-tracer-traceid", T),
        ],
    );
    for (format, name) in [
        (Format::Datadog, "x-datadog-parent-id"),
        (Format::XRay, "x-amzn-trace-id"),
        (Format::OtTrace, "ot-tracer-spanid"),
    ] {
        assert_eq!(host.count(Counter::Invalid(format)), 1, "{format:?}");
        assert!(
            host.get(name).is_some(),
            "{name} rewritten from the traceparent"
        );
    }
    assert_eq!(host.get("x-datadog-trace-id"), Some("11803532876627986230"));
    assert_eq!(host.count(Counter::Context(Format::TraceContext)), 1);
}

// Dry run: decided and counted as usual, nothing written.

/// Every counter's count, by name (the fixed ones).
fn counts(host: &MockHost) -> Vec<(Counter, u32)> {
    Counter::ALL.iter().map(|c| (*c, host.count(*c))).collect()
}

#[test]
fn a_dry_run_writes_nothing_and_counts_as_a_live_run() {
    let tp = format!("00-{T}-{S}-01");
    let headers = [("traceparent", tp.as_str()), ("x-request-id", "r-1")];
    for config in [
        r#"{"tracer":"zipkin","response_header":"x-trace-id","server_timing":true}"#,
        r#"{"tracer":"none","trust":"restart","traceresponse":true}"#,
        r#"{"position":"upstream","tracer":"zipkin","trust":"resample"}"#,
    ] {
        let live = run(config, &headers);
        let dry_config = format!(r#"{{"dry_run":true,{}"#, &config[1..]);
        let dry = run(&dry_config, &headers);
        assert!(!live.writes.is_empty(), "{config}: the live run writes");
        assert_eq!(dry.writes, [], "{config}");
        assert_eq!(dry.response, [], "{config}");
        assert_eq!(
            dry.request,
            MockHost::with(&headers).request,
            "{config}: the request as it came"
        );
        // Every counter as live, and one more: the request would have changed.
        let mut expected = counts(&live);
        for (c, n) in &mut expected {
            if *c == Counter::DryRunWouldChange {
                *n = 1;
            }
        }
        assert_eq!(counts(&dry), expected, "{config}");
    }
}

#[test]
fn a_dry_run_counts_no_change_where_nothing_would_change() {
    // Downstream, nothing arrives: Envoy's tracer starts the trace, tracejoin writes nothing.
    let host = run(r#"{"tracer":"zipkin","dry_run":true}"#, &[]);
    assert_eq!(host.writes, []);
    assert_eq!(host.count(Counter::LeftToTracer), 1);
    assert_eq!(host.count(Counter::DryRunWouldChange), 0);
}

#[test]
fn a_dry_run_strips_nothing_but_still_names_the_call() {
    let config = format!(r#"{{"dry_run":true,{}"#, &EXTERNAL[1..]);
    let config = Config::from_json(config.as_bytes()).unwrap();
    let tp = format!("00-{T}-{S}-01");
    let headers = [
        ("traceparent", tp.as_str()),
        ("baggage", "k=v"),
        (":authority", "api.openai.com"),
    ];
    let mut host = MockHost::with(&headers);
    host.cluster = Some(b"outbound|443||api.openai.com".to_vec());
    host.status = Some(200);
    let mut filter = RequestFilter::new();
    filter.on_request_headers(
        &mut host,
        &config,
        &mut IdGenerator::from_seed(9),
        &mut Plan::default(),
    );
    filter.on_response_headers(&mut host, &config);
    assert_eq!(host.writes, []);
    assert_eq!(host.request, MockHost::with(&headers).request);
    // Filter state is not a change to the request: access logs still name the call.
    assert_eq!(
        state(&host, "tracejoin.service_entry"),
        Some("openai-external")
    );
    assert_eq!(host.count(Counter::ExternalStripped), 1);
    assert_eq!(host.count(Counter::DryRunWouldChange), 1);
}

#[test]
fn the_dry_run_counter_is_defined_only_in_a_dry_run() {
    for position in ["downstream", "upstream", "network"] {
        let live = Config::from_json(format!(r#"{{"position":"{position}"}}"#).as_bytes()).unwrap();
        let dry =
            Config::from_json(format!(r#"{{"position":"{position}","dry_run":true}}"#).as_bytes())
                .unwrap();
        assert!(!Counter::DryRunWouldChange.defined_for(&live));
        assert!(Counter::DryRunWouldChange.defined_for(&dry));
        assert_eq!(
            Counter::DryRunWouldChange.name(&dry),
            "tracejoin.dry_run.would_change"
        );
        // The others as before.
        for c in Counter::ALL {
            if c != Counter::DryRunWouldChange {
                assert_eq!(c.defined_for(&dry), c.applies_to(dry.position));
                assert_eq!(c.defined_for(&live), c.applies_to(live.position));
            }
        }
    }
}
