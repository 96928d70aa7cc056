//! Properties of the policy over generated requests and every configuration shape: no input
//! panics, what the plan writes reads back as its context, tracestate travels only with its
//! traceparent.

use crate::codec::Read;
use crate::codec::tracestate::{self, TraceState};
use crate::codec::{self, Format, Header, PerFormat};
use crate::config::{Config, Position, Tracer};
use crate::context::SpanContext;
use crate::ids::IdGenerator;
use crate::policy::{self, Op, Plan, Source};
use crate::testing::generate::*;

fn same_context(got: &SpanContext, want: &SpanContext) -> bool {
    got.trace_id == want.trace_id
        && got.span_id == want.span_id
        && got.sampling.is_sampled() == want.sampling.is_sampled()
}

/// The checks of property (c) on one decided request.
fn check_plan(config: &Config, headers: &Headers, plan: &Plan, what: &str) {
    let out = apply(headers, plan);
    let carrier = carrier_of(&out);
    let sets = |h: Header| matches!(plan.op(h), Op::Set(_) | Op::SetText(_));

    // Nothing is written without a context to write, but a lone sampling decision in
    // canonical form (`b3: 0|1|d`, `x-b3-sampled: 0|1`, `x-b3-flags: 1`), which in front of
    // the tracer (network) is what Envoy's tracer then decides by.
    for h in Header::ALL {
        if h == Header::Tracestate || !sets(h) || plan.context.is_some() {
            continue;
        }
        let value = match plan.op(h) {
            Op::Set(v) => v.as_bytes().to_vec(),
            _ => Vec::new(),
        };
        let lone_decision = match h {
            Header::B3 => matches!(value.as_slice(), b"0" | b"1" | b"d"),
            Header::XB3Sampled => matches!(value.as_slice(), b"0" | b"1"),
            Header::XB3Flags => value == b"1",
            _ => false,
        };
        assert!(
            lone_decision,
            "{what}: writes {h:?} without a context: {plan:?}\nin: {}",
            show(headers)
        );
    }
    if let Some(ctx) = plan.context {
        assert!(ctx.trace_id.is_valid() && ctx.span_id.is_valid(), "{what}");
        assert!(ctx.sampling.is_decided(), "{what}: undecided {ctx:?}");
    }

    // Every format the plan wrote reads back as the plan's context.
    for f in Format::ALL {
        let wrote = Header::ALL
            .iter()
            .any(|h| h.format() == f && *h != Header::Tracestate && sets(*h));
        // (Without a context only a lone decision was written, checked above.)
        let Some(ctx) = plan.context.filter(|_| wrote) else {
            continue;
        };
        // A format that goes on as it arrived (same trace, same decision) may be rewritten
        // in canonical form without being a target: a repeated B3 header is, by its first
        // value.
        let arrived = codec::extract(&carrier_of(headers), f);
        let canonical_of_arrived = |c: &SpanContext| {
            arrived.context().is_some_and(|a| {
                a.trace_id == ctx.trace_id
                    && a.span_id == c.span_id
                    && c.trace_id == ctx.trace_id
                    && c.sampling.is_sampled() == ctx.sampling.is_sampled()
            })
        };
        match codec::extract(&carrier, f) {
            Read::Context(c) if same_context(&c, &ctx) || canonical_of_arrived(&c) => {}
            other => panic!(
                "{what}: wrote {f:?} but it reads {other:?}, plan context {ctx:?}\nout: {}",
                show(&out)
            ),
        }
    }

    // A rewritten tracestate is canonical and within the limits.
    if let Op::SetText(s) = plan.op(Header::Tracestate) {
        assert!(s.len() <= tracestate::TRACESTATE_MAX_LEN, "{what}");
        assert_eq!(
            tracestate::parse(&[s.as_bytes()]),
            TraceState::Canonical,
            "{what}: tracestate {s:?}"
        );
    }

    // Invalid values never travel on: each is rewritten or removed.
    for f in Format::ALL {
        assert_ne!(
            codec::extract(&carrier, f),
            Read::Invalid,
            "{what}: {f:?} left invalid\nout: {}",
            show(&out)
        );
    }

    // A lone sampling decision left next to the chosen context agrees with it (unless
    // Envoy's tracer is about to overwrite that format).
    if let Some(ctx) = plan.context {
        let reads = codec::extract_all(&carrier_of(headers));
        let owned = match config.position {
            Position::Downstream => policy::tracer::writes(
                config.tracer,
                config.envoy,
                &policy::tracer::view(&carrier_of(headers), &reads),
            ),
            Position::Upstream | Position::Network => PerFormat::default(),
        };
        for f in Format::ALL {
            if let Read::SamplingOnly(s) = codec::extract(&carrier, f) {
                assert!(
                    owned[f] || s.is_sampled() == ctx.sampling.is_sampled(),
                    "{what}: {f:?} says {s:?}, the context {ctx:?}\nout: {}",
                    show(&out)
                );
            }
        }
    }

    // Upstream, every context left in the request names the chosen trace.
    if config.position == Position::Upstream {
        let ctx = plan.context.unwrap();
        for f in Format::ALL {
            if let Read::Context(c) = codec::extract(&carrier, f) {
                assert_eq!(
                    c.trace_id,
                    ctx.trace_id,
                    "{what}: {f:?} names another trace\nout: {}",
                    show(&out)
                );
            }
        }
    }
}

#[test]
fn no_header_set_panics_decide() {
    let configs = all_configs();
    let mut r = rng(0x7ace_0003);
    let mut ids = IdGenerator::from_seed(3);
    for (i, config) in configs.iter().enumerate() {
        for j in 0..20 {
            let headers = random_headers(&mut r, true);
            let plan = policy::decide(config, &carrier_of(&headers), &mut ids);
            check_plan(config, &headers, &plan, &format!("config {i} case {j}"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// (c) What the plan writes reads back as the plan's context
// ---------------------------------------------------------------------------------------

#[test]
fn plan_writes_read_back_as_the_plan_context() {
    let configs = all_configs();
    let mut r = rng(0x7ace_0005);
    let mut ids = IdGenerator::from_seed(5);
    let mut written: PerFormat<usize> = PerFormat::default();
    let mut sources = [0usize; 4];
    for (i, config) in configs.iter().enumerate() {
        for j in 0..25 {
            let headers = random_headers(&mut r, false);
            let plan = policy::decide(config, &carrier_of(&headers), &mut ids);
            check_plan(config, &headers, &plan, &format!("config {i} case {j}"));
            for f in Format::ALL {
                if Header::ALL
                    .iter()
                    .any(|h| h.format() == f && matches!(plan.op(*h), Op::Set(_)))
                {
                    written[f] += 1;
                }
            }
            sources[match plan.outcome.source {
                Source::Extracted(_) => 0,
                Source::Injected(_) => 1,
                Source::Generated => 2,
                Source::LeftToTracer => 3,
            }] += 1;
        }
    }
    // The generator reaches every format and every kind of decision.
    assert!(written.iter().all(|(_, n)| *n > 50), "{written:?}");
    assert!(sources.iter().all(|n| *n > 50), "{sources:?}");
}

// ---------------------------------------------------------------------------------------
// Specification rules the policy once broke (tracestate without its traceparent)
// ---------------------------------------------------------------------------------------

/// W3C Trace Context, processing model (4.2, 4.3): a `tracestate` belongs to the
/// `traceparent` it arrived with. Received without a `traceparent` it "is invalid and MUST
/// be discarded"; when the trace restarts, "the vendor creates a new `traceparent` header and
/// deletes `tracestate`". So whatever tracestate leaves the filter must travel next to a valid
/// traceparent of the trace that goes on. (Downstream with the OpenTelemetry tracer is left
/// out: Envoy's tracer writes both headers itself after the filter.)
fn check_tracestate_follows_traceparent(config: &Config, headers: &Headers, plan: &Plan) {
    // Downstream, these tracers write tracestate back after the filter (Datadog: always,
    // replacing the header), whatever the filter left.
    if config.position == Position::Downstream
        && matches!(config.tracer, Tracer::OpenTelemetry | Tracer::Datadog)
    {
        return;
    }
    let out = apply(headers, plan);
    let carrier = carrier_of(&out);
    if !carrier.is_present(Header::Tracestate) {
        return;
    }
    let traceparent = codec::extract(&carrier, Format::TraceContext);
    let ok = match (traceparent, plan.context) {
        (Read::Context(tp), Some(ctx)) => tp.trace_id == ctx.trace_id,
        (Read::Context(_), None) => true,
        _ => false,
    };
    assert!(
        ok,
        "tracestate travels without the traceparent of its trace\nconfig: {:?} {:?} {:?} \
         propagate {:?}\nin:\n{}\nout:\n{}\ncontext: {:?}",
        config.position,
        config.tracer,
        config.trust,
        config.propagate,
        show(headers),
        show(&out),
        plan.context
    );
}

#[test]
fn tracestate_travels_only_with_its_traceparent() {
    let headers = |pairs: &[(&str, &str)]| -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    };
    let tp_a = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let b3_b = "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-1";
    let mut ids = IdGenerator::from_seed(7);
    let cases = [
        // The b3 context wins; the traceparent of another trace is removed as stale, its
        // tracestate is kept.
        (
            r#"{"tracer":"none","propagate":["b3"]}"#,
            headers(&[("b3", b3_b), ("traceparent", tp_a), ("tracestate", "foo=1")]),
        ),
        // Downstream zipkin_w3c: Envoy rewrites traceparent to the b3 trace, the tracestate of
        // the other trace stays with it.
        (
            r#"{"tracer":"zipkin_w3c"}"#,
            headers(&[("b3", b3_b), ("traceparent", tp_a), ("tracestate", "foo=1")]),
        ),
        // Restart without tracecontext in `propagate`: `tracestate: tracejoin=<id>` is sent
        // with no traceparent at all.
        (
            r#"{"tracer":"none","trust":"restart","propagate":["b3"]}"#,
            headers(&[("b3", b3_b)]),
        ),
    ];
    for (json, h) in &cases {
        let config = Config::from_json(json.as_bytes()).unwrap();
        let plan = policy::decide(&config, &carrier_of(h), &mut ids);
        check_tracestate_follows_traceparent(&config, h, &plan);
    }
    let mut r = rng(0x7ace_0007);
    for config in &all_configs() {
        for _ in 0..25 {
            let h = random_headers(&mut r, false);
            let plan = policy::decide(config, &carrier_of(&h), &mut ids);
            check_tracestate_follows_traceparent(config, &h, &plan);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Envoy releases
// ---------------------------------------------------------------------------------------

/// In front of Zipkin, a `b3` context is fed as `b3` from Envoy 1.40 on (Envoy answers it in
/// kind) and as `x-b3-*` before (Envoy answers with `x-b3-*` and would leave the `b3` behind
/// with the caller's span).
#[test]
fn network_feeds_zipkin_the_b3_form_its_release_answers_in_kind() {
    let t = "4bf92f3577b34da6a3ce929d0e0e4736";
    let s = "00f067aa0ba902b7";
    let headers: Headers = vec![(b"b3".to_vec(), format!("{t}-{s}-1").into_bytes())];
    let mut ids = IdGenerator::from_seed(9);
    // (x-b3-* goes out on every release: it is in the default `propagate`.)
    for (envoy, b3_out) in [
        ("1.36", false),
        ("1.38", false),
        ("1.40", true),
        ("1.41", true),
    ] {
        let json =
            format!(r#"{{"position":"network","tracer":"zipkin","envoy_version":"{envoy}"}}"#);
        let config = Config::from_json(json.as_bytes()).unwrap();
        let plan = policy::decide(&config, &carrier_of(&headers), &mut ids);
        check_plan(&config, &headers, &plan, envoy);
        let out = apply(&headers, &plan);
        let carrier = carrier_of(&out);
        assert_eq!(
            carrier.is_present(Header::B3),
            b3_out,
            "{envoy}: {}",
            show(&out)
        );
        let want = codec::extract(&carrier_of(&headers), Format::B3);
        let fed = codec::extract(&carrier, if b3_out { Format::B3 } else { Format::B3Multi });
        assert_eq!(fed, want, "{envoy}");
    }
}

// ---------------------------------------------------------------------------------------
// Envoy's Datadog tracer (measured: tests/integration/test_datadog_tracer.py)
// ---------------------------------------------------------------------------------------

const DD_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const DD_SPAN: &str = "b7ad6b7169203331";

fn headers_of(pairs: &[(&str, String)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.clone().into_bytes()))
        .collect()
}

fn decimal_of(hex16: &str) -> String {
    u64::from_str_radix(hex16, 16).unwrap().to_string()
}

fn plan_of(json: &str, headers: &Headers) -> (Config, Plan) {
    let config = Config::from_json(json.as_bytes()).unwrap();
    let plan = policy::decide(
        &config,
        &carrier_of(headers),
        &mut IdGenerator::from_seed(3),
    );
    check_plan(&config, headers, &plan, json);
    (config, plan)
}

#[test]
fn datadog_tracer_reads_datadog_then_traceparent_and_writes_both() {
    assert_eq!(
        policy::tracer::reads(Tracer::Datadog),
        &[Format::Datadog, Format::TraceContext]
    );
    let owned = policy::tracer::writes(
        Tracer::Datadog,
        crate::config::EnvoyVersion::new(1, 40),
        &PerFormat::default(),
    );
    for f in Format::ALL {
        assert_eq!(
            owned[f],
            matches!(f, Format::Datadog | Format::TraceContext),
            "{f:?}"
        );
    }
    // Downstream, the traceparent it continues goes into b3multi; the two formats it writes
    // are left to it, and so is tracestate (it writes one back on every request).
    let headers = headers_of(&[
        ("traceparent", format!("00-{DD_TRACE}-{DD_SPAN}-01")),
        ("tracestate", "foo=bar".to_string()),
    ]);
    let (_, plan) = plan_of(
        r#"{"tracer":"datadog","propagate":["tracecontext","datadog","b3multi"]}"#,
        &headers,
    );
    assert_eq!(plan.outcome.source, Source::Extracted(Format::TraceContext));
    let applied = apply(&headers, &plan);
    let out = carrier_of(&applied);
    assert_eq!(
        out.first(Header::XB3TraceId),
        Some(DD_TRACE.as_bytes()),
        "{plan:?}"
    );
    assert!(!out.is_present(Header::XDatadogTraceId), "{plan:?}");
    assert_eq!(plan.op(Header::Traceparent), &Op::Keep);
    assert_eq!(plan.op(Header::Tracestate), &Op::Keep);
}

#[test]
fn datadog_tracer_starts_fresh_over_an_invalid_datadog_context() {
    // x-datadog-trace-id without a parent id next to a valid traceparent: dd-trace-cpp
    // does not fall back to the traceparent, it starts a trace.
    let headers = headers_of(&[
        ("traceparent", format!("00-{DD_TRACE}-{DD_SPAN}-01")),
        ("x-datadog-trace-id", "42".to_string()),
    ]);
    let carrier = carrier_of(&headers);
    let reads = codec::extract_all(&carrier);
    assert!(matches!(reads[Format::TraceContext], Read::Context(_)));
    let view = policy::tracer::view_for(Tracer::Datadog, &carrier, &reads);
    assert_eq!(view[Format::TraceContext], Read::Invalid);
    assert_eq!(view[Format::Datadog], Read::Invalid);
    // The other tracers still see the traceparent.
    let view = policy::tracer::view_for(Tracer::OpenTelemetry, &carrier, &reads);
    assert!(matches!(view[Format::TraceContext], Read::Context(_)));
    // Without the Datadog header, the traceparent is what it reads, future versions too
    // (its own W3C parser), unlike Envoy's OpenTelemetry and Zipkin tracers.
    let future = headers_of(&[("traceparent", format!("01-{DD_TRACE}-{DD_SPAN}-01-xyz"))]);
    let carrier = carrier_of(&future);
    let reads = codec::extract_all(&carrier);
    let dd = policy::tracer::view_for(Tracer::Datadog, &carrier, &reads);
    let otel = policy::tracer::view_for(Tracer::OpenTelemetry, &carrier, &reads);
    assert!(matches!(dd[Format::TraceContext], Read::Context(_)));
    assert_eq!(otel[Format::TraceContext], Read::Invalid);
}

#[test]
fn network_feeds_the_datadog_tracer_its_own_headers() {
    // An app on B3 alone: in front of the Datadog tracer, tracejoin writes x-datadog-*
    // (the 128-bit id's high half in _dd.p.tid), which the tracer continues.
    let headers = headers_of(&[("b3", format!("{DD_TRACE}-{DD_SPAN}-1"))]);
    let (_, plan) = plan_of(r#"{"position":"network","tracer":"datadog"}"#, &headers);
    let out = apply(&headers, &plan);
    let carrier = carrier_of(&out);
    let low = DD_TRACE.get(16..).unwrap();
    assert_eq!(
        carrier.first(Header::XDatadogTraceId),
        Some(decimal_of(low).as_bytes()),
        "{plan:?}"
    );
    assert_eq!(
        carrier.first(Header::XDatadogParentId),
        Some(decimal_of(DD_SPAN).as_bytes())
    );
    match codec::extract(&carrier, Format::Datadog) {
        Read::Context(c) => assert_eq!(c.trace_id, plan.context.unwrap().trace_id),
        other => panic!("{other:?}"),
    }
}

#[test]
fn upstream_datadog_root_span_is_a_fresh_trace() {
    // What Envoy's Datadog tracer injected, next to a B3 context it does not read: its root
    // span (span id = the trace id's low half) means it started a trace, and the app's B3
    // trace is carried on; a span with its own id continued one, and wins.
    let b3 = format!("{DD_TRACE}-{DD_SPAN}-1");
    let fresh_trace = "6b100af000000000b65ac78fbec7ad34";
    let injected = |span: &str| {
        headers_of(&[
            ("b3", b3.clone()),
            ("x-datadog-trace-id", decimal_of(&fresh_trace[16..])),
            ("x-datadog-parent-id", decimal_of(span)),
            ("x-datadog-sampling-priority", "1".to_string()),
            (
                "x-datadog-tags",
                format!("_dd.p.tid={}", &fresh_trace[..16]),
            ),
        ])
    };
    let json = r#"{"position":"upstream","tracer":"datadog","propagate":["datadog","b3"]}"#;
    let (_, plan) = plan_of(json, &injected(&fresh_trace[16..]));
    assert_eq!(plan.outcome.source, Source::Extracted(Format::B3));
    assert!(plan.outcome.continued_over_tracer);
    let (_, plan) = plan_of(json, &injected("2e066680d32c2bc5"));
    assert_eq!(plan.outcome.source, Source::Injected(Format::Datadog));
    assert!(plan.outcome.conflict);
}
