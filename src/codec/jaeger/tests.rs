//! Jaeger `uber-trace-id`: vectors, both directions, lenient input spellings.
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

use crate::codec::jaeger;
use crate::context::{Sampling, SpanContext};
use crate::testing::vectors::*;

// ---------------------------------------------------------------------------------------
// Jaeger
// ---------------------------------------------------------------------------------------

const J_TRACE32: &str = "a1ce929d0e0e4736a3ce929d0e0e4736";

#[test]
fn jaeger_parses_vectors() {
    let j = |s| ctx(J_TRACE32, OTEL_SPAN, s);
    let java_trace = "000000000000004d0000000000000016";
    let java_span = "0000000000017c29";
    let cases: Vec<(&str, SpanContext)> = vec![
        // OpenTelemetry Go extract vectors.
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:0",
            j(Sampling::NotSampled),
        ),
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:1",
            j(Sampling::Sampled),
        ),
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:3",
            j(Sampling::Debug),
        ),
        // Debug counts only next to sampled: Jaeger's writers set both ("debug flag implies
        // sampled flag"), and OpenTelemetry Go and Python read a lone 0x02 as not sampled.
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:2",
            j(Sampling::NotSampled),
        ),
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:a",
            firehose(j(Sampling::NotSampled)),
        ),
        // Jaeger's firehose bit (0x08) is kept, whatever the sampling bits.
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:ff",
            firehose(j(Sampling::Debug)),
        ),
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:9",
            firehose(j(Sampling::Sampled)),
        ),
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:08",
            firehose(j(Sampling::NotSampled)),
        ),
        // An empty parent field means no parent: OpenTelemetry's Jaeger propagators never
        // read that (deprecated) field.
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7::1",
            j(Sampling::Sampled),
        ),
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:01",
            j(Sampling::Sampled),
        ),
        // Shortened trace ids (60 and 64 bits) are left-padded.
        (
            "3ce929d0e0e4736:00f067aa0ba902b7:0:1",
            short(ctx(
                "000000000000000003ce929d0e0e4736",
                OTEL_SPAN,
                Sampling::Sampled,
            )),
        ),
        (
            "a3ce929d0e0e4736:00f067aa0ba902b7:0:1",
            short(ctx(
                "0000000000000000a3ce929d0e0e4736",
                OTEL_SPAN,
                Sampling::Sampled,
            )),
        ),
        // OpenTelemetry Java (a Jaeger client's rendering: ids without leading zeros,
        // flags 5 = sampled plus an unused bit).
        (
            "4d0000000000000016:17c29:0:5",
            ctx(java_trace, java_span, Sampling::Sampled),
        ),
        (
            "4d0000000000000016:17c29:0:0",
            ctx(java_trace, java_span, Sampling::NotSampled),
        ),
        (
            "236f2e:17c29:0:1",
            short(ctx(
                "00000000000000000000000000236f2e",
                java_span,
                Sampling::Sampled,
            )),
        ),
        // URL-encoded colons.
        (
            "4d0000000000000016%3A17c29%3A0%3A5",
            ctx(java_trace, java_span, Sampling::Sampled),
        ),
        (
            "4d0000000000000016%3a17c29%3a0%3a5",
            ctx(java_trace, java_span, Sampling::Sampled),
        ),
        // A 32-digit id with leading zeros, a zero parent spelled long.
        (
            "000000000000000000000000deadbeef:00000000deadbef0:00000000:01",
            ctx(
                "000000000000000000000000deadbeef",
                "00000000deadbef0",
                Sampling::Sampled,
            ),
        ),
        // A parent id.
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:00f067aa0ba90200:1",
            with_parent(j(Sampling::Sampled), "00f067aa0ba90200"),
        ),
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:1:1",
            with_parent(j(Sampling::Sampled), "0000000000000001"),
        ),
        // Jaeger clients may print uppercase hex.
        (
            "A1CE929D0E0E4736A3CE929D0E0E4736:00F067AA0BA902B7:0:1",
            j(Sampling::Sampled),
        ),
        // OWS.
        (
            " a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:1\t",
            j(Sampling::Sampled),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(jaeger::parse(input.as_bytes()), Some(want), "{input:?}");
    }
}

#[test]
fn jaeger_rejects_invalid_vectors() {
    let cases = [
        // OpenTelemetry Go invalid vectors.
        "a1ce929d0e0e4736a3ce929d0e0e47360000:00f067aa0ba902b7:0:1",
        "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b70000:0:1",
        "zcd00v0000000000a3ce929d0e0e4736:00f067aa0ba902b7:0:1",
        "a1ce929d0e0e4736a3ce929d0e0e4736:00f0wiredba902b7:0:1",
        "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:wired",
        "a1ce929d0e0e4736a3ce929d0e0e4736-00f067aa0ba902b7-0-1",
        "",
        // OpenTelemetry Java invalid vectors.
        "aa:bb:cc",
        "aa:bb:cc:dd:ee",
        "abcdefghijklmnopabcdefghijklmnop:0000000000017c29:0:0",
        "000000000000004d000000000000001600:0000000000017c29:0:0",
        "000000000000004d0000000000000016:abcdefghijklmnop:0:0",
        "000000000000004d0000000000000016:0000000000017c2900:0:0",
        "000000000000004d0000000000000016:0000000000017c29:0:",
        "000000000000004d0000000000000016:0000000000017c29:0:10220",
        "000000000000004d0000000000000016:0000000000017c29:0:abcdefr",
        // Jaeger: "one byte bitmap, as two hex digits". (OpenTelemetry Go also reads a
        // longer, zero-padded flags field: "flag can be various length".)
        "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:00001",
        "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:001",
        // tracejoin choice: a parent, when present, must be hex, as Jaeger's clients
        // require. (OpenTelemetry Go and Python ignore the deprecated field whatever it
        // holds; an empty one is read as no parent above.)
        "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:whatever:1",
        "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:-:1",
        // Zero trace or span id ("value of 0 is invalid").
        "0:00f067aa0ba902b7:0:1",
        "00000000000000000000000000000000:00f067aa0ba902b7:0:1",
        "a1ce929d0e0e4736a3ce929d0e0e4736:0:0:1",
        // Empty fields, partial encodings, whitespace inside.
        ":00f067aa0ba902b7:0:1",
        "a1ce929d0e0e4736a3ce929d0e0e4736::0:1",
        ":::",
        "a1ce929d0e0e4736a3ce929d0e0e4736%300f067aa0ba902b7%3A0%3A1",
        "a1ce929d0e0e4736a3ce929d0e0e4736%3B00f067aa0ba902b7%3B0%3B1",
        "a1ce929d0e0e4736a3ce929d0e0e4736 :00f067aa0ba902b7:0:1",
        "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:1:",
        "0x1:00f067aa0ba902b7:0:1",
    ];
    for input in cases {
        assert_eq!(
            jaeger::parse(input.as_bytes()),
            None,
            "{input:?} must be rejected"
        );
    }
}

#[test]
fn jaeger_renders_exact_strings() {
    let base = ctx(J_TRACE32, OTEL_SPAN, Sampling::Sampled);
    let cases: Vec<(SpanContext, &str)> = vec![
        // OpenTelemetry Go inject vectors.
        (
            base,
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:1",
        ),
        (
            SpanContext {
                sampling: Sampling::Debug,
                ..base
            },
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:3",
        ),
        (
            SpanContext {
                sampling: Sampling::NotSampled,
                ..base
            },
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:0",
        ),
        // Jaeger has no "undecided".
        (
            SpanContext {
                sampling: Sampling::Deferred,
                ..base
            },
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:0",
        ),
        (
            with_parent(base, "00f067aa0ba90200"),
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:00f067aa0ba90200:1",
        ),
        // The firehose bit goes on next to the sampling bits.
        (
            firehose(base),
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:9",
        ),
        (
            firehose(SpanContext {
                sampling: Sampling::Debug,
                ..base
            }),
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:b",
        ),
        (
            firehose(SpanContext {
                sampling: Sampling::NotSampled,
                ..base
            }),
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:8",
        ),
        // Written in full width, lowercase, whatever the input spelling was.
        (
            ctx(
                "000000000000004d0000000000000016",
                "0000000000017c29",
                Sampling::Sampled,
            ),
            "000000000000004d0000000000000016:0000000000017c29:0:1",
        ),
        (
            short(ctx(
                "00000000000000000000000000236f2e",
                "0000000000017c29",
                Sampling::Sampled,
            )),
            "0000000000236f2e:0000000000017c29:0:1",
        ),
        (
            ctx(
                "00000000000000000000000000236f2e",
                "0000000000017c29",
                Sampling::Sampled,
            ),
            "00000000000000000000000000236f2e:0000000000017c29:0:1",
        ),
        (
            short(base),
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:1",
        ),
    ];
    for (c, want) in cases {
        assert_eq!(jaeger::render(&c).as_str(), want, "{c:?}");
    }
}

#[test]
fn jaeger_normalizes_input_spellings() {
    let cases = [
        (
            "4d0000000000000016%3A17c29%3A0%3A5",
            "000000000000004d0000000000000016:0000000000017c29:0:1",
        ),
        ("236f2e:17c29:0:1", "0000000000236f2e:0000000000017c29:0:1"),
        (
            "A1CE929D0E0E4736A3CE929D0E0E4736:00F067AA0BA902B7:1:3",
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0000000000000001:3",
        ),
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:ff",
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:b",
        ),
        // A lone debug bit: not sampled.
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:2",
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:0",
        ),
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7::09",
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:9",
        ),
    ];
    for (input, want) in cases {
        let c = jaeger::parse(input.as_bytes()).unwrap();
        assert_eq!(jaeger::render(&c).as_str(), want, "{input:?}");
    }
}

#[test]
fn jaeger_round_trips() {
    let short_id = "0000000000000000a3ce929d0e0e4736";
    for trace in [J_TRACE32, short_id] {
        for is_short in [false, true] {
            for sampling in [
                Sampling::Deferred,
                Sampling::NotSampled,
                Sampling::Sampled,
                Sampling::Debug,
            ] {
                for (parent, hose) in [
                    (None, false),
                    (Some("00f067aa0ba90200"), false),
                    (None, true),
                ] {
                    let c = SpanContext {
                        parent_id: parent.map(sid),
                        short_trace_id: is_short,
                        firehose: hose,
                        ..ctx(trace, OTEL_SPAN, sampling)
                    };
                    let want = SpanContext {
                        short_trace_id: is_short && trace == short_id,
                        sampling: if sampling == Sampling::Deferred {
                            Sampling::NotSampled
                        } else {
                            sampling
                        },
                        ..c
                    };
                    let rendered = jaeger::render(&c);
                    assert_eq!(
                        jaeger::parse(rendered.as_bytes()),
                        Some(want),
                        "{rendered:?}"
                    );
                }
            }
        }
    }
}
