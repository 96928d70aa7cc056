//! What arrives with a trace goes on with it, and only with it.

use crate::codec::{Header, HeaderValue};
use crate::config::Config;
use crate::ids::IdGenerator;
use crate::policy::{self, Op, Plan};
use crate::testing::generate::{Headers, carrier_of};

const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const S: &str = "00f067aa0ba902b7";
/// `T`'s low half and `S` in decimal, `T`'s high half for `_dd.p.tid`.
const T_LOW: &str = "11803532876627986230";
const T_HIGH: &str = "4bf92f3577b34da6";
const S_DEC: &str = "67667974448284343";

fn decide(config: &str, headers: &[(&str, &str)]) -> Plan {
    let config = Config::from_json(config.as_bytes()).unwrap();
    let headers: Headers = headers
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    policy::decide(
        &config,
        &carrier_of(&headers),
        &mut IdGenerator::from_seed(1),
    )
}

fn set(v: &str) -> Op {
    Op::Set(HeaderValue::from_literal(v.as_bytes()))
}

fn traceparent(trace: &str, span: &str) -> String {
    format!("00-{trace}-{span}-01")
}

const CONFIG: &str = r#"{"tracer":"none","extract":["tracecontext","datadog","xray"],"propagate":["tracecontext","datadog","xray"]}"#;

#[test]
fn datadog_origin_and_tags_go_on_with_their_trace() {
    let tags = format!("_dd.p.dm=-4,_dd.p.tid={T_HIGH}");
    // The Datadog context names the traceparent's trace, under another span: its ids are
    // rewritten, what the trace carries stays.
    let plan = decide(
        CONFIG,
        &[
            ("traceparent", &traceparent(T, S)),
            ("x-datadog-trace-id", T_LOW),
            ("x-datadog-parent-id", "1"),
            ("x-datadog-sampling-priority", "1"),
            ("x-datadog-origin", "synthetics"),
            ("x-datadog-tags", &tags),
        ],
    );
    assert_eq!(plan.op(Header::XDatadogParentId), &set(S_DEC));
    assert_eq!(plan.op(Header::XDatadogTraceId), &Op::Keep);
    assert_eq!(plan.op(Header::XDatadogOrigin), &Op::Keep);
    assert_eq!(plan.op(Header::XDatadogTags), &Op::Keep);
}

#[test]
fn datadog_origin_and_tags_go_on_as_read_without_surrounding_whitespace() {
    let tags = format!("_dd.p.dm=-4,_dd.p.tid={T_HIGH}");
    let plan = decide(
        CONFIG,
        &[
            ("traceparent", &traceparent(T, S)),
            ("x-datadog-trace-id", T_LOW),
            ("x-datadog-parent-id", "1"),
            ("x-datadog-origin", "synthetics\t\t "),
            ("x-datadog-tags", &format!(" {tags}\t")),
        ],
    );
    assert_eq!(plan.op(Header::XDatadogOrigin), &set("synthetics"));
    assert_eq!(plan.op(Header::XDatadogTags), &set(&tags));
    // Tags of whitespace alone carry nothing, nor does an origin with a space that would
    // have to be written (a 64-bit trace: no `_dd.p.tid` to write).
    let plan = decide(
        CONFIG,
        &[
            (
                "traceparent",
                &traceparent(&format!("{:0>32}", &T[16..]), S),
            ),
            ("x-datadog-trace-id", T_LOW),
            ("x-datadog-parent-id", "1"),
            ("x-datadog-tags", "\t\t"),
            ("x-datadog-origin", "- synthetics\t"),
        ],
    );
    assert_eq!(plan.op(Header::XDatadogTags), &Op::Remove);
    assert_eq!(plan.op(Header::XDatadogOrigin), &Op::Remove);
}

#[test]
fn datadog_origin_and_tags_are_dropped_with_another_trace() {
    let other = "5af7183fb1d4cf5f5af7183fb1d4cf5f";
    let plan = decide(
        CONFIG,
        &[
            ("traceparent", &traceparent(other, S)),
            ("x-datadog-trace-id", T_LOW),
            ("x-datadog-parent-id", "1"),
            ("x-datadog-origin", "synthetics"),
            ("x-datadog-tags", &format!("_dd.p.dm=-4,_dd.p.tid={T_HIGH}")),
        ],
    );
    assert_eq!(plan.op(Header::XDatadogOrigin), &Op::Remove);
    assert_eq!(
        plan.op(Header::XDatadogTags),
        &set("_dd.p.tid=5af7183fb1d4cf5f")
    );
    // A new trace gets no origin at all.
    let plan = decide(CONFIG, &[("traceparent", &traceparent(other, S))]);
    assert_eq!(plan.op(Header::XDatadogOrigin), &Op::Keep);
    assert_eq!(
        plan.op(Header::XDatadogTags),
        &set("_dd.p.tid=5af7183fb1d4cf5f")
    );
}

#[test]
fn xray_fields_go_on_with_their_trace() {
    let arrived = "Self=1-67891234-12456789abcdef012345678;Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=53995c3f42cd8ad8;Sampled=1";
    let plan = decide(
        CONFIG,
        &[
            ("traceparent", &traceparent(T, S)),
            ("x-amzn-trace-id", arrived),
        ],
    );
    // Longer than an inline value: written as text.
    assert_eq!(
        plan.op(Header::XAmznTraceId),
        &Op::SetText(format!(
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent={S};Sampled=1;Self=1-67891234-12456789abcdef012345678"
        ))
    );
    // Already the chosen context in canonical form: left alone.
    let same = format!(
        "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent={S};Sampled=1;Self=1-67891234-12456789abcdef012345678"
    );
    let plan = decide(
        CONFIG,
        &[
            ("traceparent", &traceparent(T, S)),
            ("x-amzn-trace-id", &same),
        ],
    );
    assert_eq!(plan.op(Header::XAmznTraceId), &Op::Keep);
    // Another trace: Root, Parent, Sampled alone.
    let plan = decide(
        CONFIG,
        &[
            (
                "traceparent",
                &traceparent("5af7183fb1d4cf5f5af7183fb1d4cf5f", S),
            ),
            ("x-amzn-trace-id", arrived),
        ],
    );
    assert_eq!(
        plan.op(Header::XAmznTraceId),
        &set(&format!(
            "Root=1-5af7183f-b1d4cf5f5af7183fb1d4cf5f;Parent={S};Sampled=1"
        ))
    );
}
