//! The B3 single header: published vectors, both directions.
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

use crate::codec::b3::{self, B3};
use crate::context::{Sampling, SpanContext};
use crate::testing::vectors::*;

// ---------------------------------------------------------------------------------------
// B3 single header
// ---------------------------------------------------------------------------------------

#[test]
fn b3_single_parses_spec_vectors() {
    let readme_trace = "80f198ee56343ba864fe8b2a57d3eff7";
    let cases: Vec<(&str, SpanContext)> = vec![
        // openzipkin/b3-propagation README: `{TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}`.
        (
            "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-1-e457b5a2e4d86bd1",
            with_parent(
                ctx(readme_trace, "05e3ac9a4f6e3b90", Sampling::Sampled),
                "e457b5a2e4d86bd1",
            ),
        ),
        (
            "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-1",
            ctx(readme_trace, "05e3ac9a4f6e3b90", Sampling::Sampled),
        ),
        (
            "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-d",
            ctx(readme_trace, "05e3ac9a4f6e3b90", Sampling::Debug),
        ),
        // OpenTelemetry Go.
        (
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            ctx(OTEL_TRACE, OTEL_SPAN, Sampling::Deferred),
        ),
        (
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            ctx(OTEL_TRACE, OTEL_SPAN, Sampling::NotSampled),
        ),
        (
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            ctx(OTEL_TRACE, OTEL_SPAN, Sampling::Sampled),
        ),
        (
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-d",
            ctx(OTEL_TRACE, OTEL_SPAN, Sampling::Debug),
        ),
        (
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1-00000000000000cd",
            with_parent(
                ctx(OTEL_TRACE, OTEL_SPAN, Sampling::Sampled),
                "00000000000000cd",
            ),
        ),
        // 64-bit trace id, left-padded, remembered as short.
        (
            "a3ce929d0e0e4736-00f067aa0ba902b7",
            short(ctx(
                "0000000000000000a3ce929d0e0e4736",
                OTEL_SPAN,
                Sampling::Deferred,
            )),
        ),
        (
            "a3ce929d0e0e4736-00f067aa0ba902b7-1-00f067aa0ba90200",
            short(with_parent(
                ctx(
                    "0000000000000000a3ce929d0e0e4736",
                    OTEL_SPAN,
                    Sampling::Sampled,
                ),
                "00f067aa0ba90200",
            )),
        ),
        // A 128-bit id whose high half is zero is not short.
        (
            "0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-0",
            ctx(
                "0000000000000000a3ce929d0e0e4736",
                OTEL_SPAN,
                Sampling::NotSampled,
            ),
        ),
        // OWS.
        (
            " \t80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-1 ",
            ctx(readme_trace, "05e3ac9a4f6e3b90", Sampling::Sampled),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            b3::parse(input.as_bytes()),
            Some(B3::Context(want)),
            "b3 {input:?}"
        );
    }
}

#[test]
fn b3_single_sampling_only() {
    // README: a deny decision is `b3: 0`; the sampling state may be sent on its own.
    let cases = [
        ("0", Sampling::NotSampled),
        ("1", Sampling::Sampled),
        ("d", Sampling::Debug),
        (" 0 ", Sampling::NotSampled),
        ("\td", Sampling::Debug),
    ];
    for (input, want) in cases {
        assert_eq!(
            b3::parse(input.as_bytes()),
            Some(B3::SamplingOnly(want)),
            "b3 {input:?}"
        );
    }
}

#[test]
fn b3_single_rejects_invalid_vectors() {
    let cases = [
        // OpenTelemetry Go invalid single-header vectors.
        "ab00000000000000000000000000000000-cd00000000000000-1",
        "ab000000000000000000000000000000-cd0000000000000000-1",
        "00-ab000000000000000000000000000000-cd00000000000000-01",
        "ab000000000000000000000000000000-cd00000000000000-1-cd0000000000000000",
        "qw000000000000000000000000000000-cd00000000000000-1",
        "ab000000000000000000000000000000-qw00000000000000-1",
        "ab000000000000000000000000000000-cd00000000000000-q",
        "ab000000000000000000000000000000-cd00000000000000-1-qw00000000000000",
        "AB000000000000000000000000000000-cd00000000000000-1",
        "ab000000000000000000000000000000-CD00000000000000-1",
        "ab000000000000000000000000000000-cd00000000000000-1-EF00000000000000",
        "00000000000000000000000000000000-0000000000000000-1",
        "ab000000000000000000000000000000-cd00000000000000-true",
        // An empty sampling field (OpenTelemetry Go: "invalid single").
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-",
        // Zero ids, wrong trace id lengths, trailing dash, extra field.
        "00000000000000000000000000000000-00f067aa0ba902b7-1",
        "4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-1",
        "0000000000000000-00f067aa0ba902b7",
        "a3ce929d0e0e47360000-00f067aa0ba902b7",
        "a3ce929d0e0e473-00f067aa0ba902b7",
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1-",
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1-00f067aa0ba90200-x",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "4bf92f3577b34da6a3ce929d0e0e4736-",
        "-00f067aa0ba902b7",
        // Sampling states other than 0, 1, d.
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-2",
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-D",
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // Alone: only 0, 1, d.
        "",
        " ",
        "2",
        "D",
        "x",
        "-",
        "00",
        "true",
        "false",
        // Inner whitespace.
        "4bf92f3577b34da6a3ce929d0e0e4736 -00f067aa0ba902b7-1",
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7- 1",
    ];
    for input in cases {
        assert_eq!(
            b3::parse(input.as_bytes()),
            None,
            "b3 {input:?} must be rejected"
        );
    }
}

#[test]
fn b3_single_renders_exact_strings() {
    let base = ctx(OTEL_TRACE, OTEL_SPAN, Sampling::Sampled);
    let short_id = "0000000000000000a3ce929d0e0e4736";
    let cases: Vec<(SpanContext, &str)> = vec![
        // OpenTelemetry Go inject vectors.
        (base, "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"),
        (
            SpanContext {
                sampling: Sampling::NotSampled,
                ..base
            },
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
        ),
        (
            SpanContext {
                sampling: Sampling::Deferred,
                ..base
            },
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ),
        (
            SpanContext {
                sampling: Sampling::Debug,
                ..base
            },
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-d",
        ),
        // README: all four fields.
        (
            with_parent(
                ctx(
                    "80f198ee56343ba864fe8b2a57d3eff7",
                    "05e3ac9a4f6e3b90",
                    Sampling::Sampled,
                ),
                "e457b5a2e4d86bd1",
            ),
            "80f198ee56343ba864fe8b2a57d3eff7-05e3ac9a4f6e3b90-1-e457b5a2e4d86bd1",
        ),
        // The parent needs the sampling field in front of it; deferred drops it.
        (
            with_parent(
                SpanContext {
                    sampling: Sampling::Deferred,
                    ..base
                },
                "e457b5a2e4d86bd1",
            ),
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ),
        // The random flag is a W3C notion; B3 ignores it.
        (
            random(base),
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ),
        // 64-bit form only when it arrived short and still fits.
        (
            short(ctx(short_id, OTEL_SPAN, Sampling::Sampled)),
            "a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ),
        (
            ctx(short_id, OTEL_SPAN, Sampling::Sampled),
            "0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ),
        (
            short(base),
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ),
    ];
    for (c, want) in cases {
        assert_eq!(b3::render(&c).as_str(), want, "{c:?}");
    }
}

#[test]
fn b3_single_longest_value_fits() {
    let c = with_parent(
        ctx(OTEL_TRACE, OTEL_SPAN, Sampling::Debug),
        "ffffffffffffffff",
    );
    let v = b3::render(&c);
    assert_eq!(v.as_bytes().len(), 32 + 1 + 16 + 1 + 1 + 1 + 16);
    assert_eq!(
        v.as_str(),
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-d-ffffffffffffffff"
    );
}

#[test]
fn b3_single_round_trips() {
    let long_id = OTEL_TRACE;
    let short_id = "0000000000000000a3ce929d0e0e4736";
    for trace in [long_id, short_id] {
        for is_short in [false, true] {
            for sampling in [
                Sampling::Deferred,
                Sampling::NotSampled,
                Sampling::Sampled,
                Sampling::Debug,
            ] {
                for parent in [None, Some("e457b5a2e4d86bd1")] {
                    let c = SpanContext {
                        parent_id: parent.map(sid),
                        short_trace_id: is_short,
                        ..ctx(trace, OTEL_SPAN, sampling)
                    };
                    let want = SpanContext {
                        // B3 keeps the short form only when the id fits it.
                        short_trace_id: is_short && trace == short_id,
                        // No parent without a sampling state in front of it.
                        parent_id: if sampling == Sampling::Deferred {
                            None
                        } else {
                            c.parent_id
                        },
                        ..c
                    };
                    let rendered = b3::render(&c);
                    assert_eq!(
                        b3::parse(rendered.as_bytes()),
                        Some(B3::Context(want)),
                        "{rendered:?}"
                    );
                }
            }
        }
    }
}
