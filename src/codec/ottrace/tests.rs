//! OpenTracing `ot-tracer-*` headers: vectors, both directions.
//!
//! Vectors, as data, from OpenTelemetry's ottrace propagator tests (Go
//! `propagators/ot/ot_data_test.go`, Python `opentelemetry-propagator-ot-trace`).

use crate::codec::ottrace::{self, OtHeaders};
use crate::codec::{Carrier, Read};
use crate::context::{Sampling, SpanContext};
use crate::testing::vectors::*;

const OT_TRACE128: &str = "80f198ee56343ba864fe8b2a57d3eff7";
const OT_TRACE64: &str = "8448eb211c80319c";
const OT_SPAN: &str = "e457b5a2e4d86bd1";

fn ot<'a>(t: Option<&'a str>, s: Option<&'a str>, smp: Option<&'a str>) -> OtHeaders<'a> {
    OtHeaders {
        trace_id: t.map(str::as_bytes),
        span_id: s.map(str::as_bytes),
        sampled: smp.map(str::as_bytes),
    }
}

fn c128(s: Sampling) -> SpanContext {
    ctx(OT_TRACE128, OT_SPAN, s)
}

#[test]
fn ottrace_parses_vectors() {
    let c64 = |s| short(ctx(&format!("{:0>32}", OT_TRACE64), OT_SPAN, s));
    let cases = [
        (
            ot(Some(OT_TRACE128), Some(OT_SPAN), Some("true")),
            c128(Sampling::Sampled),
        ),
        (
            ot(Some(OT_TRACE128), Some(OT_SPAN), Some("1")),
            c128(Sampling::Sampled),
        ),
        (
            ot(Some(OT_TRACE128), Some(OT_SPAN), Some("True")),
            c128(Sampling::Sampled),
        ),
        (
            ot(Some(OT_TRACE128), Some(OT_SPAN), Some("false")),
            c128(Sampling::NotSampled),
        ),
        (
            ot(Some(OT_TRACE128), Some(OT_SPAN), Some("0")),
            c128(Sampling::NotSampled),
        ),
        (
            ot(Some(OT_TRACE128), Some(OT_SPAN), None),
            c128(Sampling::Deferred),
        ),
        // 64-bit trace ids are padded on the left and keep their form.
        (
            ot(Some(OT_TRACE64), Some(OT_SPAN), Some("true")),
            c64(Sampling::Sampled),
        ),
    ];
    for (h, want) in cases {
        assert_eq!(ottrace::parse(&h), Some(want), "{h:?}");
    }
}

#[test]
fn ottrace_rejects_invalid() {
    let bad = [
        // Only one of the two ids (Go: "require either both traceID and spanID or none").
        ot(Some(OT_TRACE128), None, Some("true")),
        ot(None, Some(OT_SPAN), Some("true")),
        // A decision alone carries no context.
        ot(None, None, Some("true")),
        // Ids: other lengths, uppercase, non-hex, zero.
        ot(Some("80f198ee56343ba864fe8b2a57d3eff"), Some(OT_SPAN), None),
        ot(
            Some("80F198EE56343BA864FE8B2A57D3EFF7"),
            Some(OT_SPAN),
            None,
        ),
        ot(Some(OT_TRACE128), Some("e457b5a2e4d86bd"), None),
        ot(Some(OT_TRACE128), Some("e457b5a2e4d86bdz"), None),
        ot(
            Some("00000000000000000000000000000000"),
            Some(OT_SPAN),
            None,
        ),
        ot(Some(OT_TRACE128), Some("0000000000000000"), None),
        // Sampled other than true/false/1/0 (Go: errInvalidSampledHeader).
        ot(Some(OT_TRACE128), Some(OT_SPAN), Some("yes")),
        ot(Some(OT_TRACE128), Some(OT_SPAN), Some("d")),
    ];
    for h in bad {
        assert_eq!(ottrace::parse(&h), None, "{h:?}");
    }
}

#[test]
fn ottrace_renders_full_ids_and_true_false() {
    let v = ottrace::render(&c128(Sampling::Sampled));
    assert_eq!(v.trace_id.as_str(), OT_TRACE128);
    assert_eq!(v.span_id.as_str(), OT_SPAN);
    assert_eq!(v.sampled.unwrap().as_str(), "true");
    assert_eq!(
        ottrace::render(&c128(Sampling::NotSampled))
            .sampled
            .unwrap()
            .as_str(),
        "false"
    );
    assert_eq!(
        ottrace::render(&c128(Sampling::Debug))
            .sampled
            .unwrap()
            .as_str(),
        "true"
    );
    assert_eq!(ottrace::render(&c128(Sampling::Deferred)).sampled, None);
    let c64 = short(ctx(
        &format!("{:0>32}", OT_TRACE64),
        OT_SPAN,
        Sampling::Sampled,
    ));
    assert_eq!(ottrace::render(&c64).trace_id.as_str(), OT_TRACE64);
}

#[test]
fn ottrace_extract_reads_the_first_of_a_repeat_and_leaves_baggage_alone() {
    let c = Carrier::from_pairs([
        (b"ot-tracer-traceid".as_slice(), OT_TRACE128.as_bytes()),
        (b"OT-Tracer-SpanId", OT_SPAN.as_bytes()),
        (b"ot-tracer-spanid", b"0000000000000001"),
        (b"ot-tracer-sampled", b"true"),
        (b"ot-baggage-user", b"alice"),
    ]);
    assert_eq!(ottrace::extract(&c), Read::Context(c128(Sampling::Sampled)));
    let c = Carrier::from_pairs([(b"ot-baggage-user".as_slice(), b"alice".as_slice())]);
    assert_eq!(ottrace::extract(&c), Read::Absent);
}
