//! traceparent: published vectors, both directions.
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

use crate::codec::tracecontext;
use crate::context::{Sampling, SpanContext};
use crate::testing::vectors::*;

// ---------------------------------------------------------------------------------------
// traceparent
// ---------------------------------------------------------------------------------------

#[test]
fn traceparent_parses_valid_vectors() {
    let w3c = |s| ctx(W3C_TRACE, W3C_SPAN, s);
    let otel = |s| ctx(OTEL_TRACE, OTEL_SPAN, s);
    let cases: Vec<(&str, SpanContext)> = vec![
        // W3C suite: the canonical valid value, sampled and not sampled.
        (
            "00-12345678901234567890123456789012-1234567890123456-01",
            w3c(Sampling::Sampled),
        ),
        (
            "00-12345678901234567890123456789012-1234567890123456-00",
            w3c(Sampling::NotSampled),
        ),
        // W3C suite: a future version (0xcc) is read by its version-00 prefix.
        (
            "cc-12345678901234567890123456789012-1234567890123456-01",
            w3c(Sampling::Sampled),
        ),
        (
            "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
            w3c(Sampling::Sampled),
        ),
        // W3C suite: OWS around the value.
        (
            " 00-12345678901234567890123456789012-1234567890123456-01",
            w3c(Sampling::Sampled),
        ),
        (
            "\t00-12345678901234567890123456789012-1234567890123456-01",
            w3c(Sampling::Sampled),
        ),
        (
            "00-12345678901234567890123456789012-1234567890123456-01 ",
            w3c(Sampling::Sampled),
        ),
        (
            "00-12345678901234567890123456789012-1234567890123456-01\t",
            w3c(Sampling::Sampled),
        ),
        (
            "\t 00-12345678901234567890123456789012-1234567890123456-01 \t",
            w3c(Sampling::Sampled),
        ),
        // Specification example / OpenTelemetry Go.
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            otel(Sampling::Sampled),
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            otel(Sampling::NotSampled),
        ),
        (
            "02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            otel(Sampling::Sampled),
        ),
        // Unknown flag bits are ignored; only 0x01 (sampled) and 0x02 (random) are read.
        (
            "02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
            otel(Sampling::Sampled),
        ),
        (
            "02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-08",
            otel(Sampling::NotSampled),
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
            otel(Sampling::Sampled),
        ),
        (
            "02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-XYZxsf09",
            otel(Sampling::Sampled),
        ),
        (
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-",
            otel(Sampling::Sampled),
        ),
        // Level 2: the random-trace-id flag (0x02).
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02",
            random(otel(Sampling::NotSampled)),
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
            random(otel(Sampling::Sampled)),
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff",
            random(otel(Sampling::Sampled)),
        ),
        // A trace id whose high half is zero is still a 128-bit id here: never "short".
        (
            "00-0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ctx(
                "0000000000000000a3ce929d0e0e4736",
                OTEL_SPAN,
                Sampling::Sampled,
            ),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            tracecontext::parse(input.as_bytes()),
            Some(want),
            "traceparent {input:?}"
        );
    }
}

#[test]
fn traceparent_rejects_invalid_vectors() {
    let cases = [
        // W3C suite, version 00 must be exactly 55 characters.
        "00-12345678901234567890123456789012-1234567890123456-01.",
        "00-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
        // A future version may only append behind a dash.
        "cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like",
        // Version ff is forbidden.
        "ff-12345678901234567890123456789012-1234567890123456-01",
        // Version: illegal characters, too long, too short.
        ".0-12345678901234567890123456789012-1234567890123456-01",
        "0.-12345678901234567890123456789012-1234567890123456-01",
        "000-12345678901234567890123456789012-1234567890123456-01",
        "0000-12345678901234567890123456789012-1234567890123456-01",
        "0-12345678901234567890123456789012-1234567890123456-01",
        // Trace id: all zero, illegal characters, too long, too short.
        "00-00000000000000000000000000000000-1234567890123456-01",
        "00-.2345678901234567890123456789012-1234567890123456-01",
        "00-1234567890123456789012345678901.-1234567890123456-01",
        "00-123456789012345678901234567890123-1234567890123456-01",
        "00-1234567890123456789012345678901-1234567890123456-01",
        // Parent id: all zero, illegal characters, too long, too short.
        "00-12345678901234567890123456789012-0000000000000000-01",
        "00-12345678901234567890123456789012-.234567890123456-01",
        "00-12345678901234567890123456789012-123456789012345.-01",
        "00-12345678901234567890123456789012-12345678901234567-01",
        "00-12345678901234567890123456789012-123456789012345-01",
        // Flags: illegal characters, too long, too short.
        "00-12345678901234567890123456789012-1234567890123456-.0",
        "00-12345678901234567890123456789012-1234567890123456-0.",
        "00-12345678901234567890123456789012-1234567890123456-001",
        "00-12345678901234567890123456789012-1234567890123456-1",
        // OpenTelemetry Go invalid vectors.
        "0000-00000000000000000000000000000000-0000000000000000-01",
        "00-ab00000000000000000000000000000000-cd00000000000000-01",
        "00-ab000000000000000000000000000000-cd0000000000000000-01",
        "00-ab000000000000000000000000000000-cd00000000000000-0100",
        "qw-00000000000000000000000000000000-0000000000000000-01",
        "00-qw000000000000000000000000000000-cd00000000000000-01",
        "00-ab000000000000000000000000000000-qw00000000000000-01",
        "00-ab000000000000000000000000000000-cd00000000000000-qw",
        "00-00000000000000000000000000000000-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-",
        // Uppercase hex anywhere (HEXDIGLC).
        "A0-00000000000000000000000000000000-0000000000000000-01",
        "00-AB000000000000000000000000000000-cd00000000000000-01",
        "00-ab000000000000000000000000000000-CD00000000000000-01",
        "00-ab000000000000000000000000000000-cd00000000000000-A1",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "CC-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // Version 00 followed by a dash is still longer than 55 characters.
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
        // Wrong delimiters, inner whitespace, empty.
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01-x",
        "00-4bf92f3577b34da6a3ce929d0e0e4736 -00f067aa0ba902b7-01",
        "00 -4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "",
        " ",
        "\t \t",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\u{0}",
    ];
    for input in cases {
        assert_eq!(
            tracecontext::parse(input.as_bytes()),
            None,
            "traceparent {input:?} must be rejected"
        );
    }
}

#[test]
fn traceparent_renders_exact_strings() {
    let base = ctx(OTEL_TRACE, OTEL_SPAN, Sampling::Sampled);
    let cases: Vec<(SpanContext, &str)> = vec![
        (
            base,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (
            SpanContext {
                sampling: Sampling::NotSampled,
                ..base
            },
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        ),
        // traceparent has no "undecided": deferred renders as not sampled.
        (
            SpanContext {
                sampling: Sampling::Deferred,
                ..base
            },
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        ),
        // Debug implies sampled; traceparent has no debug bit.
        (
            SpanContext {
                sampling: Sampling::Debug,
                ..base
            },
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (
            random(base),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
        ),
        (
            random(SpanContext {
                sampling: Sampling::NotSampled,
                ..base
            }),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02",
        ),
        // No parent field in traceparent; a parent id is not rendered.
        (
            with_parent(base, "e457b5a2e4d86bd1"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        // A 64-bit trace id is always left-padded to 32 hex characters.
        (
            short(ctx(
                "0000000000000000a3ce929d0e0e4736",
                OTEL_SPAN,
                Sampling::Sampled,
            )),
            "00-0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    ];
    for (c, want) in cases {
        assert_eq!(tracecontext::render(&c).as_str(), want, "{c:?}");
    }
}

#[test]
fn traceparent_render_zeroes_unknown_flags_and_downgrades_future_versions() {
    let cases = [
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (
            "cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
        (
            " 02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-08 ",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        ),
    ];
    for (input, want) in cases {
        let c = tracecontext::parse(input.as_bytes()).unwrap();
        assert_eq!(tracecontext::render(&c).as_str(), want, "{input:?}");
    }
}

#[test]
fn traceparent_round_trips() {
    for trace in [W3C_TRACE, OTEL_TRACE, "0000000000000000a3ce929d0e0e4736"] {
        for sampling in [Sampling::Sampled, Sampling::NotSampled] {
            for rnd in [false, true] {
                let c = SpanContext {
                    random_trace_id: rnd,
                    ..ctx(trace, OTEL_SPAN, sampling)
                };
                let rendered = tracecontext::render(&c);
                assert_eq!(rendered.as_bytes().len(), 55);
                assert_eq!(tracecontext::parse(rendered.as_bytes()), Some(c));
            }
        }
    }
}
