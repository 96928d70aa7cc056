//! AWS X-Ray `X-Amzn-Trace-Id`: vectors, both directions, kept fields.
//!
//! Vectors, as data, from AWS's X-Ray tracing-header documentation and OpenTelemetry's
//! xray propagator tests (Go `propagators/aws/xray`, Python
//! `opentelemetry-propagator-aws-xray`).

use crate::codec::value::XRayValue;
use crate::codec::xray;
use crate::codec::{Carrier, Read};
use crate::context::{Sampling, SpanContext};
use crate::testing::vectors::*;

const OTEL_XRAY_TRACE: &str = "8a3c60f7d188f8fa79d48a391a778fa6";
const OTEL_XRAY_SPAN: &str = "53995c3f42cd8ad8";
const OTEL_XRAY: &str =
    "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=1";

fn otel(s: Sampling) -> SpanContext {
    ctx(OTEL_XRAY_TRACE, OTEL_XRAY_SPAN, s)
}

#[test]
fn xray_parses_vectors() {
    let cases = [
        (OTEL_XRAY, otel(Sampling::Sampled)),
        (
            "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=0",
            otel(Sampling::NotSampled),
        ),
        // Fields in any order, with whitespace (Python strips keys and values).
        (
            " Sampled = 1 ; Parent = 53995c3f42cd8ad8 ;Root=1-8a3c60f7-d188f8fa79d48a391a778fa6 ",
            otel(Sampling::Sampled),
        ),
        // Other fields are allowed (Python's `Foo=Bar`, an ALB's Self, Lambda's Lineage).
        (
            "Self=1-67891234-12456789abcdef012345678;Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5;Foo=Bar",
            otel(Sampling::Sampled),
        ),
        // `?` and no Sampled at all: not decided (AWS; see the module for the SDKs).
        (
            "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=?",
            otel(Sampling::Deferred),
        ),
        (
            "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8",
            otel(Sampling::Deferred),
        ),
        // AWS's documentation example.
        (
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            ctx(
                "5759e988bd862e3fe1be46a994272793",
                OTEL_XRAY_SPAN,
                Sampling::Sampled,
            ),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(xray::parse(input.as_bytes()), Some(want), "{input}");
    }
}

#[test]
fn xray_rejects_invalid() {
    let bad = [
        "",
        // A Root alone (what an ALB starts a trace with) has no span to continue.
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6",
        "Self=1-67891234-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678",
        "Parent=53995c3f42cd8ad8;Sampled=1",
        // Root: version, length, separators, case, hex, zero.
        "Root=2-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=1",
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa;Parent=53995c3f42cd8ad8;Sampled=1",
        "Root=1-8a3c60f7d188f8fa79d48a391a778fa6a;Parent=53995c3f42cd8ad8;Sampled=1",
        "Root=1-8A3C60F7-D188F8FA79D48A391A778FA6;Parent=53995c3f42cd8ad8;Sampled=1",
        "Root=1-12345678-abcdefghijklmnopqrstuvwx;Parent=53995c3f42cd8ad8;Sampled=1",
        "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8;Sampled=1",
        // Parent: length, hex, zero.
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad;Sampled=1",
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8adz;Sampled=1",
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=0000000000000000;Sampled=1",
        // Sampled other than 0, 1, ? (Python: one character of 0 or 1).
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=2",
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=11",
        // A field without `=`, an empty field, repeated own fields, lowercase keys.
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled",
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=1;",
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;;Parent=53995c3f42cd8ad8",
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Parent=53995c3f42cd8ad9",
        "root=1-8a3c60f7-d188f8fa79d48a391a778fa6;parent=53995c3f42cd8ad8;sampled=1",
        // Control bytes in a field tracejoin would carry.
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Foo=B\x01r",
    ];
    for input in bad {
        assert_eq!(xray::parse(input.as_bytes()), None, "{input:?}");
    }
}

#[test]
fn xray_renders_as_the_reference_propagators() {
    // OpenTelemetry Go's and Python's inject vectors.
    assert_eq!(xray::render(&otel(Sampling::Sampled)).as_str(), OTEL_XRAY);
    assert_eq!(
        xray::render(&otel(Sampling::NotSampled)).as_str(),
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=0"
    );
    assert_eq!(
        xray::render(&otel(Sampling::Debug)).as_str(),
        OTEL_XRAY,
        "debug is sampled"
    );
    let deferred = xray::render(&otel(Sampling::Deferred));
    assert!(deferred.as_str().ends_with(";Sampled=?"));
    // A 64-bit trace id is the low half of a 128-bit Root.
    let c = short(ctx(
        "0000000000000000a3ce929d0e0e4736",
        OTEL_SPAN,
        Sampling::Sampled,
    ));
    assert_eq!(
        xray::render(&c).as_str(),
        "Root=1-00000000-00000000a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
    );
    for s in [Sampling::Sampled, Sampling::NotSampled, Sampling::Deferred] {
        let v = xray::render(&otel(s));
        assert_eq!(xray::parse(v.as_bytes()), Some(otel(s)));
    }
}

#[test]
fn xray_keeps_other_fields_on_the_same_trace_only() {
    let arrived = "Self=1-67891234-12456789abcdef012345678;Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5";
    // The same context: canonical order, ours first, the others in theirs, no whitespace.
    let canonical = "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=1;Self=1-67891234-12456789abcdef012345678;Lineage=a87bd80c:1|68fd508a:5";
    assert_eq!(
        xray::render_keeping(&otel(Sampling::Sampled), arrived.as_bytes()),
        Some(XRayValue::from_literal(canonical.as_bytes()))
    );
    assert_eq!(
        xray::render_keeping(&otel(Sampling::Sampled), canonical.as_bytes()),
        Some(XRayValue::from_literal(canonical.as_bytes()))
    );
    let spaced =
        "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6 ; Parent=53995c3f42cd8ad8;Sampled=1; Foo = Bar ";
    assert_eq!(
        xray::render_keeping(&otel(Sampling::Sampled), spaced.as_bytes()),
        Some(XRayValue::from_literal(
            format!("{OTEL_XRAY};Foo=Bar").as_bytes()
        ))
    );
    // A new parent on the same trace: the other fields follow, in order.
    let child = ctx(OTEL_XRAY_TRACE, OTEL_SPAN, Sampling::Sampled);
    assert_eq!(
        xray::render_keeping(&child, arrived.as_bytes()),
        Some(XRayValue::from_literal(
            b"Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=00f067aa0ba902b7;Sampled=1;Self=1-67891234-12456789abcdef012345678;Lineage=a87bd80c:1|68fd508a:5"
        ))
    );
    // Another trace: nothing is kept.
    let other = ctx(OTEL_TRACE, OTEL_SPAN, Sampling::Sampled);
    assert_eq!(xray::render_keeping(&other, arrived.as_bytes()), None);
    // Fields past the value's bound are dropped whole.
    let long = format!("{OTEL_XRAY};A={};B=1", "x".repeat(120));
    match xray::render_keeping(&child, long.as_bytes()) {
        Some(v) => {
            assert!(v.as_str().ends_with(";B=1"), "{v:?}");
            assert!(!v.as_str().contains("A="), "{v:?}");
            assert_eq!(xray::parse(v.as_bytes()), Some(child));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn xray_extract_reads_the_first_of_a_repeat() {
    let c = Carrier::from_pairs([
        (b"X-Amzn-Trace-Id".as_slice(), OTEL_XRAY.as_bytes()),
        (
            b"x-amzn-trace-id",
            b"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        ),
    ]);
    assert_eq!(xray::extract(&c), Read::Context(otel(Sampling::Sampled)));
    let c = Carrier::from_pairs([(b"x-amzn-trace-id".as_slice(), b"Root=1".as_slice())]);
    assert_eq!(xray::extract(&c), Read::Invalid);
}
