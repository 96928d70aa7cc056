//! The B3 multi headers: published vectors, both directions.
//!
//! Vectors are taken, as data, from:
//! - the W3C Trace Context test suite (`w3c/trace-context`, `test/test.py`) and the
//!   specification's examples;
//! - the B3 specification (`openzipkin/b3-propagation`, README);
//! - OpenTelemetry's propagator tests (Go: `propagation/trace_context_test.go`,
//!   `propagators/b3/b3_data_test.go`, `propagators/jaeger/jaeger_data_test.go`;
//!   Java: `JaegerPropagatorTest`);
//! - the Jaeger propagation format (jaegertracing.io, client libraries).
//!
//! Where tracejoin deliberately differs from one of those implementations (not from a
//! specification), the test says so next to the vector.

use crate::codec::HeaderValue;
use crate::codec::b3::B3;
use crate::codec::b3multi::{self, MultiHeaders};
use crate::context::{Sampling, SpanContext};
use crate::testing::vectors::*;

// ---------------------------------------------------------------------------------------
// B3 multi headers
// ---------------------------------------------------------------------------------------

#[test]
fn b3_multi_parses_vectors() {
    let base = |s| ctx(OTEL_TRACE, OTEL_SPAN, s);
    let t = Some(OTEL_TRACE);
    let s = Some(OTEL_SPAN);
    let cases: Vec<(MultiHeaders<'_>, SpanContext)> = vec![
        // OpenTelemetry Go extract vectors.
        (multi(t, s, None, None, None), base(Sampling::Deferred)),
        (
            multi(t, s, None, Some("0"), None),
            base(Sampling::NotSampled),
        ),
        (multi(t, s, None, Some("1"), None), base(Sampling::Sampled)),
        // README: a lenient reader accepts true/false.
        (
            multi(t, s, None, Some("true"), None),
            base(Sampling::Sampled),
        ),
        (
            multi(t, s, None, Some("false"), None),
            base(Sampling::NotSampled),
        ),
        // OpenTelemetry Go lowercases x-b3-sampled before comparing: any case of
        // true/false.
        (
            multi(t, s, None, Some("True"), None),
            base(Sampling::Sampled),
        ),
        (
            multi(t, s, None, Some("TRUE"), None),
            base(Sampling::Sampled),
        ),
        (
            multi(t, s, None, Some("FALSE"), None),
            base(Sampling::NotSampled),
        ),
        (
            multi(t, s, None, Some("fAlSe"), None),
            base(Sampling::NotSampled),
        ),
        // B3: x-b3-flags other than 1 "can be ignored" (OpenTelemetry Go and Brave read
        // only "1"); Finagle sends its flag bits as a number (6: sampling known, sampled).
        (
            multi(t, s, None, Some("1"), Some("2")),
            base(Sampling::Sampled),
        ),
        (
            multi(t, s, None, Some("0"), Some("6")),
            base(Sampling::NotSampled),
        ),
        (
            multi(t, s, None, None, Some("true")),
            base(Sampling::Deferred),
        ),
        (multi(t, s, None, None, Some("")), base(Sampling::Deferred)),
        (
            multi(t, s, None, Some("1"), Some("01")),
            base(Sampling::Sampled),
        ),
        // Debug is `X-B3-Flags: 1` and implies sampled, whatever X-B3-Sampled says.
        (multi(t, s, None, None, Some("1")), base(Sampling::Debug)),
        (
            multi(t, s, None, Some("0"), Some("1")),
            base(Sampling::Debug),
        ),
        (
            multi(t, s, None, Some("1"), Some("1")),
            base(Sampling::Debug),
        ),
        (
            multi(t, s, None, Some("1"), Some("0")),
            base(Sampling::Sampled),
        ),
        (
            multi(t, s, Some("00f067aa0ba90200"), Some("1"), None),
            with_parent(base(Sampling::Sampled), "00f067aa0ba90200"),
        ),
        (
            multi(Some("a3ce929d0e0e4736"), s, None, None, None),
            short(ctx(
                "0000000000000000a3ce929d0e0e4736",
                OTEL_SPAN,
                Sampling::Deferred,
            )),
        ),
        // README example.
        (
            multi(
                Some("463ac35c9f6413ad48485a3953bb6124"),
                Some("a2fb4a1d1a96d312"),
                Some("0020000000000001"),
                Some("1"),
                None,
            ),
            with_parent(
                ctx(
                    "463ac35c9f6413ad48485a3953bb6124",
                    "a2fb4a1d1a96d312",
                    Sampling::Sampled,
                ),
                "0020000000000001",
            ),
        ),
        // OWS around each value.
        (
            multi(
                Some(" 4bf92f3577b34da6a3ce929d0e0e4736\t"),
                Some("\t00f067aa0ba902b7 "),
                Some(" 00f067aa0ba90200 "),
                Some(" 1 "),
                None,
            ),
            with_parent(base(Sampling::Sampled), "00f067aa0ba90200"),
        ),
    ];
    for (h, want) in cases {
        assert_eq!(b3multi::parse(&h), Some(B3::Context(want)), "{h:?}");
    }
}

#[test]
fn b3_multi_sampling_only() {
    let cases = [
        (
            multi(None, None, None, Some("0"), None),
            Sampling::NotSampled,
        ),
        (multi(None, None, None, Some("1"), None), Sampling::Sampled),
        (multi(None, None, None, None, Some("1")), Sampling::Debug),
        (
            multi(None, None, None, Some("0"), Some("1")),
            Sampling::Debug,
        ),
    ];
    for (h, want) in cases {
        assert_eq!(b3multi::parse(&h), Some(B3::SamplingOnly(want)), "{h:?}");
    }
    // Nothing decided and nothing else: nothing to read.
    assert_eq!(b3multi::parse(&multi(None, None, None, None, None)), None);
    assert_eq!(
        b3multi::parse(&multi(None, None, None, None, Some("0"))),
        None
    );
    assert!(!multi(None, None, None, None, None).any_present());
    assert!(multi(None, None, None, None, Some("0")).any_present());
}

#[test]
fn b3_multi_rejects_invalid_vectors() {
    let t = Some("ab000000000000000000000000000000");
    let s = Some("cd00000000000000");
    let one = Some("1");
    let cases = [
        // OpenTelemetry Go invalid multi-header vectors.
        multi(
            Some("ab00000000000000000000000000000000"),
            s,
            None,
            one,
            None,
        ),
        multi(Some("ab0000000000000000000000000000"), s, None, one, None),
        multi(Some("ab0000000000"), s, None, one, None),
        multi(t, Some("cd0000000000000000"), None, one, None),
        multi(t, s, None, Some("10"), None),
        multi(Some("qw000000000000000000000000000000"), s, None, one, None),
        multi(t, Some("qw00000000000000"), None, one, None),
        multi(t, s, None, Some("d"), None),
        multi(Some("AB000000000000000000000000000000"), s, None, one, None),
        multi(t, Some("CD00000000000000"), None, one, None),
        multi(Some("00000000000000000000000000000000"), s, None, one, None),
        multi(t, Some("0000000000000000"), None, one, None),
        multi(t, None, None, one, None),
        multi(None, s, None, one, None),
        // A parent alone, or a malformed parent.
        multi(None, None, Some("00f067aa0ba90200"), None, None),
        multi(None, None, Some("00f067aa0ba90200"), one, None),
        multi(t, s, Some("qw00000000000000"), one, None),
        multi(t, s, Some("00f067aa0ba902"), one, None),
        // Sampling values outside 0/1/true/false (any case).
        multi(t, s, None, Some(""), None),
        multi(t, s, None, Some("2"), None),
        multi(t, s, None, Some("yes"), None),
        multi(t, s, None, Some("truee"), None),
        multi(None, None, None, Some("yes"), None),
        // An ignored flags value still needs a valid x-b3-sampled next to it.
        multi(t, s, None, Some("maybe"), Some("6")),
        // Flags other than 1 alone carry nothing.
        multi(None, None, None, None, Some("6")),
        // Inner whitespace.
        multi(
            Some("ab00000000000000 0000000000000000"),
            s,
            None,
            one,
            None,
        ),
    ];
    for h in cases {
        assert_eq!(b3multi::parse(&h), None, "{h:?} must be rejected");
    }
}

fn value_str(v: &Option<HeaderValue>) -> Option<&str> {
    v.as_ref().map(HeaderValue::as_str)
}

#[test]
fn b3_multi_renders_exact_values() {
    let base = ctx(OTEL_TRACE, OTEL_SPAN, Sampling::Sampled);
    // (context, trace, span, parent, sampled, flags)
    type Row<'a> = (
        SpanContext,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let rows: Vec<Row<'_>> = vec![
        // OpenTelemetry Go inject vectors.
        (base, OTEL_TRACE, OTEL_SPAN, None, Some("1"), None),
        (
            SpanContext {
                sampling: Sampling::NotSampled,
                ..base
            },
            OTEL_TRACE,
            OTEL_SPAN,
            None,
            Some("0"),
            None,
        ),
        (
            SpanContext {
                sampling: Sampling::Deferred,
                ..base
            },
            OTEL_TRACE,
            OTEL_SPAN,
            None,
            None,
            None,
        ),
        // README: debug implies accept, so X-B3-Sampled is not sent.
        (
            SpanContext {
                sampling: Sampling::Debug,
                ..base
            },
            OTEL_TRACE,
            OTEL_SPAN,
            None,
            None,
            Some("1"),
        ),
        (
            with_parent(base, "0020000000000001"),
            OTEL_TRACE,
            OTEL_SPAN,
            Some("0020000000000001"),
            Some("1"),
            None,
        ),
        // Unlike the single header, the multi headers keep a parent when deferred.
        (
            with_parent(
                SpanContext {
                    sampling: Sampling::Deferred,
                    ..base
                },
                "0020000000000001",
            ),
            OTEL_TRACE,
            OTEL_SPAN,
            Some("0020000000000001"),
            None,
            None,
        ),
        (
            short(ctx(
                "0000000000000000a3ce929d0e0e4736",
                OTEL_SPAN,
                Sampling::Sampled,
            )),
            "a3ce929d0e0e4736",
            OTEL_SPAN,
            None,
            Some("1"),
            None,
        ),
        (
            ctx(
                "0000000000000000a3ce929d0e0e4736",
                OTEL_SPAN,
                Sampling::Sampled,
            ),
            "0000000000000000a3ce929d0e0e4736",
            OTEL_SPAN,
            None,
            Some("1"),
            None,
        ),
        (short(base), OTEL_TRACE, OTEL_SPAN, None, Some("1"), None),
    ];
    for (c, trace, span, parent, sampled, flags) in rows {
        let v = b3multi::render(&c);
        assert_eq!(v.trace_id.as_str(), trace, "{c:?}");
        assert_eq!(v.span_id.as_str(), span, "{c:?}");
        assert_eq!(value_str(&v.parent_span_id), parent, "{c:?}");
        assert_eq!(value_str(&v.sampled), sampled, "{c:?}");
        assert_eq!(value_str(&v.flags), flags, "{c:?}");
    }
}

#[test]
fn b3_multi_round_trips() {
    let short_id = "0000000000000000a3ce929d0e0e4736";
    for trace in [OTEL_TRACE, short_id] {
        for is_short in [false, true] {
            for sampling in [
                Sampling::Deferred,
                Sampling::NotSampled,
                Sampling::Sampled,
                Sampling::Debug,
            ] {
                for parent in [None, Some("0020000000000001")] {
                    let c = SpanContext {
                        parent_id: parent.map(sid),
                        short_trace_id: is_short,
                        ..ctx(trace, OTEL_SPAN, sampling)
                    };
                    let want = SpanContext {
                        short_trace_id: is_short && trace == short_id,
                        ..c
                    };
                    let v = b3multi::render(&c);
                    assert_eq!(
                        b3multi::parse(&multi_from_values(&v)),
                        Some(B3::Context(want)),
                        "{v:?}"
                    );
                }
            }
        }
    }
}
