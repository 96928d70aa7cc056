//! Codec unit tests (published vectors, both directions).
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
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::b3::{self, B3, MultiHeaders};
use super::jaeger;
use super::tracecontext::{
    TRACESTATE_MAX_LEN, TRACESTATE_MAX_MEMBERS, TraceState, join_truncated, parse_traceparent,
    parse_tracestate, render_traceparent, with_member,
};
use super::{Carrier, Format, Header, HeaderValue, Slot, serialize_pairs, serialized_pairs};
use crate::context::{Sampling, SpanContext, SpanId, TraceId};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn hex<const N: usize>(s: &str) -> [u8; N] {
    assert_eq!(s.len(), 2 * N, "test vector {s:?} has the wrong length");
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// A trace id from its full 32-hex spelling.
fn tid(s: &str) -> TraceId {
    TraceId(hex::<16>(s))
}

fn sid(s: &str) -> SpanId {
    SpanId(hex::<8>(s))
}

/// A context as a parser returns it before format-specific fields are set.
fn ctx(trace32: &str, span: &str, sampling: Sampling) -> SpanContext {
    SpanContext::new(tid(trace32), sid(span), sampling)
}

fn with_parent(c: SpanContext, parent: &str) -> SpanContext {
    SpanContext {
        parent_id: Some(sid(parent)),
        ..c
    }
}

fn short(c: SpanContext) -> SpanContext {
    SpanContext {
        short_trace_id: true,
        ..c
    }
}

fn random(c: SpanContext) -> SpanContext {
    SpanContext {
        random_trace_id: true,
        ..c
    }
}

fn multi<'a>(
    trace_id: Option<&'a str>,
    span_id: Option<&'a str>,
    parent_span_id: Option<&'a str>,
    sampled: Option<&'a str>,
    flags: Option<&'a str>,
) -> MultiHeaders<'a> {
    MultiHeaders {
        trace_id: trace_id.map(str::as_bytes),
        span_id: span_id.map(str::as_bytes),
        parent_span_id: parent_span_id.map(str::as_bytes),
        sampled: sampled.map(str::as_bytes),
        flags: flags.map(str::as_bytes),
    }
}

fn multi_from_values(v: &b3::MultiValues) -> MultiHeaders<'_> {
    MultiHeaders {
        trace_id: Some(v.trace_id.as_bytes()),
        span_id: Some(v.span_id.as_bytes()),
        parent_span_id: v.parent_span_id.as_ref().map(HeaderValue::as_bytes),
        sampled: v.sampled.as_ref().map(HeaderValue::as_bytes),
        flags: v.flags.as_ref().map(HeaderValue::as_bytes),
    }
}

fn ts(parts: &[&str]) -> TraceState {
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    parse_tracestate(&parts)
}

// W3C test-suite ids.
const W3C_TRACE: &str = "12345678901234567890123456789012";
const W3C_SPAN: &str = "1234567890123456";
// W3C specification / OpenTelemetry ids.
const OTEL_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const OTEL_SPAN: &str = "00f067aa0ba902b7";

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
            parse_traceparent(input.as_bytes()),
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
            parse_traceparent(input.as_bytes()),
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
        assert_eq!(render_traceparent(&c).as_str(), want, "{c:?}");
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
        let c = parse_traceparent(input.as_bytes()).unwrap();
        assert_eq!(render_traceparent(&c).as_str(), want, "{input:?}");
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
                let rendered = render_traceparent(&c);
                assert_eq!(rendered.as_bytes().len(), 55);
                assert_eq!(parse_traceparent(rendered.as_bytes()), Some(c));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// tracestate
// ---------------------------------------------------------------------------------------

#[test]
fn tracestate_canonical_values_are_kept_as_is() {
    let cases = [
        "foo=1",
        "foo=1,bar=2",
        "key1=value1,key2=value2",
        // Specification examples.
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7",
        // Multi-tenant keys.
        "fw529a3039@dt=00f067aa0ba902b7",
        "t@s=1",
        "1tenant@sys=x",
        "foo=1,foo@bar=2",
        // A key that is a prefix of another key is not a duplicate.
        "foo=1,foobar=2,fo=3",
        // Spaces inside a value are allowed (only a trailing one is not).
        "foo=a b",
        "foo= leading",
    ];
    for v in cases {
        assert_eq!(ts(&[v]), TraceState::Canonical, "tracestate {v:?}");
    }
}

#[test]
fn tracestate_all_allowed_characters() {
    // W3C suite: every legal key character, with and without a vendor, and every legal
    // value character (0x20-0x2b, 0x2d-0x3c, 0x3e-0x7e).
    let key_without_vendor = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    let key_with_vendor = format!("{key_without_vendor}@a-z0-9_-*/");
    let value: String = (0x20u8..=0x2b)
        .chain(0x2d..=0x3c)
        .chain(0x3e..=0x7e)
        .map(char::from)
        .collect();
    assert_eq!(value.len(), 0x5f - 2);
    for key in [key_without_vendor.to_string(), key_with_vendor] {
        let member = format!("{key}={value}");
        assert_eq!(ts(&[&member]), TraceState::Canonical, "{member:?}");
    }
}

#[test]
fn tracestate_ows_and_empty_members_are_rewritten_canonically() {
    let cases = [
        // W3C suite: OWS handling.
        ("foo=1 \t , \t bar=2, \t baz=3", "foo=1,bar=2,baz=3"),
        ("foo=1\t \t,\t \tbar=2,\t \tbaz=3", "foo=1,bar=2,baz=3"),
        (" foo=1", "foo=1"),
        ("\tfoo=1", "foo=1"),
        ("foo=1 ", "foo=1"),
        ("foo=1\t", "foo=1"),
        ("\t foo=1 \t", "foo=1"),
        // Empty list members are allowed and dropped.
        ("foo=1,,bar=2", "foo=1,bar=2"),
        (",foo=1", "foo=1"),
        ("foo=1,", "foo=1"),
        ("foo=1, ,\t,bar=2", "foo=1,bar=2"),
    ];
    for (input, want) in cases {
        assert_eq!(
            ts(&[input]),
            TraceState::Rewritten(want.to_string()),
            "tracestate {input:?}"
        );
    }
}

#[test]
fn tracestate_empty_header() {
    assert_eq!(ts(&[]), TraceState::Empty);
    for v in ["", " ", ",", ",,", " , \t, "] {
        assert_eq!(ts(&[v]), TraceState::Empty, "{v:?}");
    }
    assert_eq!(ts(&["", ""]), TraceState::Empty);
    // W3C suite: an empty tracestate header next to a valid one.
    assert_eq!(
        ts(&["foo=1", ""]),
        TraceState::Rewritten("foo=1".to_string())
    );
    assert_eq!(
        ts(&["", "foo=1"]),
        TraceState::Rewritten("foo=1".to_string())
    );
}

#[test]
fn tracestate_repeated_headers_are_joined_in_order() {
    // W3C suite: multiple headers with different keys.
    assert_eq!(
        ts(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]),
        TraceState::Rewritten("foo=1,bar=2,rojo=1,congo=2,baz=3".to_string())
    );
    assert_eq!(
        ts(&["a=1", "b=2"]),
        TraceState::Rewritten("a=1,b=2".to_string())
    );
}

#[test]
fn tracestate_duplicate_keys_are_invalid() {
    // W3C suite.
    for parts in [
        &["foo=1,foo=1"][..],
        &["foo=1,foo=2"],
        &["foo=1", "foo=1"],
        &["foo=1", "foo=2"],
        &["foo=1,bar=2,foo=3"],
        &["t@s=1,x=2,t@s=3"],
        &["foo=1, foo=2"],
    ] {
        assert_eq!(ts(parts), TraceState::Invalid, "{parts:?}");
    }
}

#[test]
fn tracestate_member_count_limit() {
    let members: Vec<String> = (1..=33).map(|i| format!("bar{i:02}={i:02}")).collect();
    let join = |n: usize| members[..n].join(",");
    // W3C suite: 32 members over four headers are kept, 33 are discarded.
    let h1 = members[0..10].join(",");
    let h2 = members[10..20].join(",");
    let h3 = members[20..30].join(",");
    let h4_32 = members[30..32].join(",");
    let h4_33 = members[30..33].join(",");
    assert_eq!(
        ts(&[&h1, &h2, &h3, &h4_32]),
        TraceState::Rewritten(join(32))
    );
    assert_eq!(ts(&[&h1, &h2, &h3, &h4_33]), TraceState::Invalid);
    // The same in one header.
    assert_eq!(TRACESTATE_MAX_MEMBERS, 32);
    assert_eq!(ts(&[&join(32)]), TraceState::Canonical);
    assert_eq!(ts(&[&join(33)]), TraceState::Invalid);
    // Empty members do not count.
    let padded = format!("{},,,", join(32));
    assert_eq!(ts(&[&padded]), TraceState::Rewritten(join(32)));
}

#[test]
fn tracestate_key_rules() {
    let z256 = format!("{}=1", "z".repeat(256));
    let z257 = format!("{}=1", "z".repeat(257));
    let tenant241 = format!("{}@{}=1", "t".repeat(241), "v".repeat(14));
    let tenant242 = format!("{}@v=1", "t".repeat(242));
    let system15 = format!("t@{}=1", "v".repeat(15));
    // W3C suite: key length limits (next to a valid `foo=1` header).
    assert_eq!(
        ts(&["foo=1", &z256]),
        TraceState::Rewritten(format!("foo=1,{z256}"))
    );
    assert_eq!(ts(&["foo=1", &z257]), TraceState::Invalid);
    assert_eq!(
        ts(&["foo=1", &tenant241]),
        TraceState::Rewritten(format!("foo=1,{tenant241}"))
    );
    assert_eq!(ts(&["foo=1", &tenant242]), TraceState::Invalid);
    assert_eq!(ts(&["foo=1", &system15]), TraceState::Invalid);

    let invalid = [
        // W3C suite: illegal characters.
        "foo =1",
        "FOO=1",
        "foo.bar=1",
        // W3C suite: illegal vendor format (the whole header is dropped).
        "foo@=1,bar=2",
        "@foo=1,bar=2",
        "foo@@bar=1,bar=2",
        "foo@bar@baz=1,bar=2",
        // OpenTelemetry Go.
        "key1=value1,invalid$@#=invalid",
        "key1=value1,invalid",
        // A simple key starts with a lowercase letter; a system id too.
        "1foo=1",
        "_foo=1",
        "*foo=1",
        "t@1s=1",
        "T@s=1",
        "t@S=1",
        "=1",
        "foo",
        "foo=1,bar",
        "f\u{e9}e=1",
    ];
    for v in invalid {
        assert_eq!(ts(&[v]), TraceState::Invalid, "tracestate {v:?}");
    }
}

#[test]
fn tracestate_value_rules() {
    let v256 = format!("foo={}", "v".repeat(256));
    let v257 = format!("foo={}", "v".repeat(257));
    assert_eq!(ts(&[&v256]), TraceState::Canonical);
    assert_eq!(ts(&[&v257]), TraceState::Invalid);
    let invalid = [
        // W3C suite: `=` in a value, empty value.
        "foo=bar=baz",
        "foo=,bar=3",
        "foo=",
        // A value of blanks only: the member trims to `foo=`, an empty value.
        "foo= ",
        "foo=  \t",
        // Characters outside 0x20-0x7e (tab, DEL, NUL, non-ASCII).
        "foo=a\tb",
        "foo=a\u{7f}",
        "foo=a\u{0}b",
        "foo=caf\u{e9}",
    ];
    for v in invalid {
        assert_eq!(ts(&[v]), TraceState::Invalid, "tracestate {v:?}");
    }
}

/// `n` characters long: `k<i>=` then padding.
fn member_of_len(i: usize, n: usize) -> String {
    let key = format!("k{i:02}=");
    assert!(n > key.len());
    format!("{key}{}", "x".repeat(n - key.len()))
}

#[test]
fn tracestate_512_limit_boundary() {
    assert_eq!(TRACESTATE_MAX_LEN, 512);
    // 128 + 3 * 127 + 3 commas = 512: kept as is.
    let at_limit = [
        member_of_len(1, 128),
        member_of_len(2, 127),
        member_of_len(3, 127),
        member_of_len(4, 127),
    ]
    .join(",");
    assert_eq!(at_limit.len(), 512);
    assert_eq!(ts(&[&at_limit]), TraceState::Canonical);

    // One more character (the first member becomes 129 > 128): that member goes first,
    // although it is at the front.
    let over = [
        member_of_len(1, 129),
        member_of_len(2, 127),
        member_of_len(3, 127),
        member_of_len(4, 127),
    ];
    let joined = over.join(",");
    assert_eq!(joined.len(), 513);
    assert_eq!(ts(&[&joined]), TraceState::Rewritten(over[1..].join(",")));
}

#[test]
fn tracestate_truncation_drops_long_members_then_from_the_end() {
    // Only short members: dropped from the end until the value fits.
    let shorts: Vec<String> = (1..=8).map(|i| member_of_len(i, 64)).collect();
    let joined = shorts.join(",");
    assert_eq!(joined.len(), 519);
    assert_eq!(ts(&[&joined]), TraceState::Rewritten(shorts[..7].join(",")));

    // A long member (> 128) goes first; then short ones from the end.
    let mut members = vec![member_of_len(1, 129)];
    members.extend((2..=6).map(|i| member_of_len(i, 120)));
    let joined = members.join(",");
    assert_eq!(joined.len(), 129 + 5 * 120 + 5);
    assert_eq!(
        ts(&[&joined]),
        TraceState::Rewritten(members[1..5].join(","))
    );

    // A long member in the middle goes before any short one at the end.
    let members = [
        member_of_len(1, 100),
        member_of_len(2, 250),
        member_of_len(3, 100),
        member_of_len(4, 100),
    ];
    let joined = members.join(",");
    assert_eq!(joined.len(), 553);
    assert_eq!(
        ts(&[&joined]),
        TraceState::Rewritten(
            [&members[0], &members[2], &members[3]]
                .map(String::as_str)
                .join(",")
        )
    );

    // Several long members: only as many go as needed, no short member is dropped, and
    // the order of what is kept is preserved.
    let members = [
        member_of_len(1, 100),
        member_of_len(2, 200),
        member_of_len(3, 100),
        member_of_len(4, 200),
        member_of_len(5, 100),
    ];
    let slices: Vec<&[u8]> = members.iter().map(|m| m.as_bytes()).collect();
    let out = join_truncated(&slices);
    assert!(out.len() <= 512, "{}", out.len());
    let kept: Vec<&str> = out.split(',').collect();
    assert_eq!(kept.len(), 4);
    for short_member in [&members[0], &members[2], &members[4]] {
        assert!(kept.contains(&short_member.as_str()));
    }
    let positions: Vec<usize> = kept
        .iter()
        .map(|k| members.iter().position(|m| m == k).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

#[test]
fn tracestate_truncation_never_splits_members() {
    let members: Vec<String> = (1..=32).map(|i| member_of_len(i, 40)).collect();
    let joined = members.join(",");
    assert!(joined.len() > 512);
    match ts(&[&joined]) {
        TraceState::Rewritten(s) => {
            assert!(s.len() <= 512);
            for m in s.split(',') {
                assert!(members.iter().any(|x| x == m), "split member {m:?}");
            }
            // 12 members of 40 + 11 commas = 491; a 13th would make 532.
            assert_eq!(s, members[..12].join(","));
        }
        other => panic!("expected a rewrite, got {other:?}"),
    }
}

/// W3C Trace Context (tracestate header): "Vendors MUST accept empty `tracestate` headers
/// but SHOULD avoid sending them." A single member may be longer than 512 characters (a
/// 256-character key, `=`, a 256-character value); truncation must not turn a non-empty
/// header into an empty one to send on.
#[test]
fn tracestate_truncation_never_produces_an_empty_header() {
    let long = format!("{}={}", "z".repeat(256), "v".repeat(256));
    assert_eq!(long.len(), 513);
    // Still a valid member: key and value are at their maximum lengths.
    let with_short = format!("a=1,{long}");
    assert_eq!(ts(&[&with_short]), TraceState::Rewritten("a=1".to_string()));
    // Truncation leaves nothing: the header is not to be sent at all.
    assert_eq!(ts(&[&long]), TraceState::TooLong);
}

#[test]
fn join_truncated_plain_join_when_short() {
    assert_eq!(join_truncated(&[]), "");
    assert_eq!(join_truncated(&[b"a=1"]), "a=1");
    assert_eq!(join_truncated(&[b"a=1", b"b=2", b"c@d=3"]), "a=1,b=2,c@d=3");
}

#[test]
fn with_member_prepends_and_replaces() {
    assert_eq!(with_member(None, "tracejoin", "abc"), "tracejoin=abc");
    assert_eq!(with_member(Some(""), "tracejoin", "abc"), "tracejoin=abc");
    assert_eq!(
        with_member(Some("foo=1,bar=2"), "tracejoin", "x"),
        "tracejoin=x,foo=1,bar=2"
    );
    // An existing member with the key is replaced, and the new one moves to the front.
    assert_eq!(
        with_member(Some("foo=1,tracejoin=old,bar=2"), "tracejoin", "new"),
        "tracejoin=new,foo=1,bar=2"
    );
    assert_eq!(
        with_member(Some("tracejoin=old"), "tracejoin", "new"),
        "tracejoin=new"
    );
    assert_eq!(
        with_member(Some(" tracejoin=old , foo=1"), "tracejoin", "new"),
        "tracejoin=new,foo=1"
    );
    // Keys that merely start with the key, or carry a tenant, are other keys.
    assert_eq!(
        with_member(Some("tracejoinx=1,tracejoin@sys=2"), "tracejoin", "v"),
        "tracejoin=v,tracejoinx=1,tracejoin@sys=2"
    );
    // OWS and empty members are cleaned.
    assert_eq!(
        with_member(Some(" foo=1 ,, \tbar=2\t,"), "tracejoin", "x"),
        "tracejoin=x,foo=1,bar=2"
    );
}

#[test]
fn with_member_keeps_the_member_limit() {
    let existing: Vec<String> = (1..=32).map(|i| format!("k{i:02}={i}")).collect();
    let out = with_member(Some(&existing.join(",")), "tracejoin", "v");
    let kept: Vec<&str> = out.split(',').collect();
    assert_eq!(kept.len(), 32);
    assert_eq!(kept[0], "tracejoin=v");
    // The last existing member is the one dropped.
    assert_eq!(
        &kept[1..],
        &existing[..31]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()[..]
    );
    assert_eq!(ts(&[&out]), TraceState::Canonical);

    // Replacing a key at the limit does not drop anything else.
    let mut with_key = existing.clone();
    with_key[31] = "tracejoin=old".to_string();
    let out = with_member(Some(&with_key.join(",")), "tracejoin", "new");
    let kept: Vec<&str> = out.split(',').collect();
    assert_eq!(kept.len(), 32);
    assert_eq!(kept[0], "tracejoin=new");
    assert!(!out.contains("tracejoin=old"));
}

#[test]
fn with_member_keeps_the_length_limit() {
    let existing: Vec<String> = (1..=10).map(|i| member_of_len(i, 100)).collect();
    let value = "0123456789abcdef0123456789abcdef";
    let out = with_member(Some(&existing.join(",")), "tracejoin", value);
    assert!(out.len() <= 512, "{}", out.len());
    assert!(out.starts_with("tracejoin=0123456789abcdef0123456789abcdef,"));
    // tracejoin (42) + 4 members of 100 + 4 commas = 446; a fifth would make 547.
    assert_eq!(
        out,
        format!("tracejoin={value},{}", existing[..4].join(","))
    );
    assert_eq!(ts(&[&out]), TraceState::Canonical);
}

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
            b3::parse_single(input.as_bytes()),
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
            b3::parse_single(input.as_bytes()),
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
            b3::parse_single(input.as_bytes()),
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
        assert_eq!(b3::render_single(&c).as_str(), want, "{c:?}");
    }
}

#[test]
fn b3_single_longest_value_fits() {
    let c = with_parent(
        ctx(OTEL_TRACE, OTEL_SPAN, Sampling::Debug),
        "ffffffffffffffff",
    );
    let v = b3::render_single(&c);
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
                    let rendered = b3::render_single(&c);
                    assert_eq!(
                        b3::parse_single(rendered.as_bytes()),
                        Some(B3::Context(want)),
                        "{rendered:?}"
                    );
                }
            }
        }
    }
}

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
        assert_eq!(b3::parse_multi(&h), Some(B3::Context(want)), "{h:?}");
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
        assert_eq!(b3::parse_multi(&h), Some(B3::SamplingOnly(want)), "{h:?}");
    }
    // Nothing decided and nothing else: nothing to read.
    assert_eq!(b3::parse_multi(&multi(None, None, None, None, None)), None);
    assert_eq!(
        b3::parse_multi(&multi(None, None, None, None, Some("0"))),
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
        // Sampling values outside 0/1/true/false; flags outside 0/1.
        multi(t, s, None, Some(""), None),
        multi(t, s, None, Some("True"), None),
        multi(t, s, None, Some("2"), None),
        multi(None, None, None, Some("yes"), None),
        multi(t, s, None, None, Some("true")),
        multi(t, s, None, None, Some("")),
        // tracejoin choice: X-B3-Flags other than 0/1 invalidates the headers.
        // (OpenTelemetry Go ignores such a value: "debug flag set to not 1 (ignored)".)
        multi(t, s, None, one, Some("2")),
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
        assert_eq!(b3::parse_multi(&h), None, "{h:?} must be rejected");
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
        let v = b3::render_multi(&c);
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
                    let v = b3::render_multi(&c);
                    assert_eq!(
                        b3::parse_multi(&multi_from_values(&v)),
                        Some(B3::Context(want)),
                        "{v:?}"
                    );
                }
            }
        }
    }
}

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
        // Jaeger's format: "debug flag implies sampled flag". (OpenTelemetry Go reads a
        // lone 0x02 as not sampled: "debug but sampled bit didn't set".)
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:2",
            j(Sampling::Debug),
        ),
        (
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:ff",
            j(Sampling::Debug),
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
        // tracejoin choice: the parent must be hex too. (OpenTelemetry Go ignores the
        // deprecated parent field: "ignore parent span id".)
        "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:whatever:1",
        "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7::1",
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
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:3",
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
                for parent in [None, Some("00f067aa0ba90200")] {
                    let c = SpanContext {
                        parent_id: parent.map(sid),
                        short_trace_id: is_short,
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

// ---------------------------------------------------------------------------------------
// Header names, formats, carrier
// ---------------------------------------------------------------------------------------

#[test]
fn header_from_name_is_case_insensitive() {
    for h in Header::ALL {
        let name = h.name();
        assert_eq!(Header::from_name(name.as_bytes()), Some(h));
        assert_eq!(Header::from_name(name.to_uppercase().as_bytes()), Some(h));
        let alternating: String = name
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        assert_eq!(Header::from_name(alternating.as_bytes()), Some(h));
    }
    // W3C suite casings; the canonical spellings of the B3 and Jaeger specifications.
    let cases = [
        ("TraceParent", Header::Traceparent),
        ("TrAcEpArEnT", Header::Traceparent),
        ("TRACEPARENT", Header::Traceparent),
        ("TraceState", Header::Tracestate),
        ("TrAcEsTaTe", Header::Tracestate),
        ("TRACESTATE", Header::Tracestate),
        ("B3", Header::B3),
        ("X-B3-TraceId", Header::XB3TraceId),
        ("X-B3-SpanId", Header::XB3SpanId),
        ("X-B3-ParentSpanId", Header::XB3ParentSpanId),
        ("X-B3-Sampled", Header::XB3Sampled),
        ("X-B3-Flags", Header::XB3Flags),
        ("Uber-Trace-Id", Header::UberTraceId),
    ];
    for (name, want) in cases {
        assert_eq!(Header::from_name(name.as_bytes()), Some(want), "{name:?}");
    }
}

#[test]
fn header_from_name_rejects_other_names() {
    let cases = [
        // W3C suite: wrong names.
        "trace-parent",
        "trace.parent",
        "trace-state",
        "trace.state",
        // Near misses of every length class.
        "",
        "b",
        "b4",
        "b3 ",
        " b3",
        "tracestatex",
        "traceparen",
        "traceparentt",
        "x-b3-flag",
        "x-b3-flagz",
        "x-b3-spanld",
        "x-b3-trace-id",
        "x-b3-sampld",
        "uber-trace-i",
        "uber_trace_id",
        "uber-trace-id ",
        "x-b3-parentspani",
        "x-b3-parentspanidd",
        "x-b3-parent-span-id",
        "uberctx-foo",
        "baggage",
        "x-request-id",
        "traceparent\u{0}",
    ];
    for name in cases {
        assert_eq!(Header::from_name(name.as_bytes()), None, "{name:?}");
    }
    // Non-ASCII bytes of the right length.
    assert_eq!(Header::from_name(&[0xffu8; 11]), None);
    assert_eq!(Header::from_name(&[0x80, 0x80]), None);
}

#[test]
fn header_and_format_names() {
    for f in Format::ALL {
        assert_eq!(Format::from_name(f.name()), Some(f));
        assert_eq!(Format::ALL[f.index()], f);
    }
    assert_eq!(Format::from_name("B3"), None);
    assert_eq!(Format::from_name("w3c"), None);
    for h in Header::ALL {
        assert_eq!(Header::ALL[h.index()], h);
    }
    assert_eq!(Header::Traceparent.format(), Format::TraceContext);
    assert_eq!(Header::Tracestate.format(), Format::TraceContext);
    assert_eq!(Header::B3.format(), Format::B3);
    assert_eq!(Header::XB3Flags.format(), Format::B3Multi);
    assert_eq!(Header::XB3ParentSpanId.format(), Format::B3Multi);
    assert_eq!(Header::UberTraceId.format(), Format::Jaeger);
}

#[test]
fn carrier_collects_trace_headers() {
    let pairs: Vec<(&[u8], &[u8])> = vec![
        (b":path", b"/"),
        (
            b"TraceParent",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (b"tracestate", b"a=1"),
        (b"x-request-id", b"abc"),
        (b"TRACESTATE", b"b=2"),
        (b"b3", b"0"),
        (b"B3", b"1"),
    ];
    let c = Carrier::from_pairs(pairs);
    assert_eq!(
        c.get(Header::Traceparent),
        Slot::One(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    // Only tracestate may repeat; it is kept in order.
    assert_eq!(c.get(Header::Tracestate), Slot::Repeated);
    assert_eq!(c.tracestate_parts(), Some(&[&b"a=1"[..], &b"b=2"[..]][..]));
    assert_eq!(c.get(Header::B3), Slot::Repeated);
    assert_eq!(c.get(Header::UberTraceId), Slot::Absent);
    assert!(c.is_present(Header::B3));
    assert!(!c.is_present(Header::XB3TraceId));
}

#[test]
fn carrier_gives_up_on_too_many_tracestate_headers() {
    let values: Vec<String> = (0..9).map(|i| format!("k{i}=v")).collect();
    let c = Carrier::from_pairs(
        values
            .iter()
            .take(8)
            .map(|v| (&b"tracestate"[..], v.as_bytes())),
    );
    assert_eq!(c.tracestate_parts().map(<[_]>::len), Some(8));
    let c = Carrier::from_pairs(values.iter().map(|v| (&b"tracestate"[..], v.as_bytes())));
    assert_eq!(c.tracestate_parts(), None);
    let c = Carrier::from_pairs(std::iter::empty());
    assert_eq!(c.tracestate_parts(), Some(&[][..]));
}

// ---------------------------------------------------------------------------------------
// Serialized header map
// ---------------------------------------------------------------------------------------

fn pairs_of(block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    serialized_pairs(block)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

const SAMPLE_PAIRS: [(&str, &str); 4] = [
    (":authority", "example.com"),
    (
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ),
    ("empty", ""),
    ("", "empty-name"),
];

#[test]
fn serialized_pairs_round_trip() {
    for n in 0..=SAMPLE_PAIRS.len() {
        let block = serialize_pairs(SAMPLE_PAIRS[..n].iter().copied());
        assert_eq!(pairs_of(&block), owned(&SAMPLE_PAIRS[..n]));
    }
    // The layout: count, sizes, then each key and value NUL-terminated.
    let block = serialize_pairs([("ab", "c")]);
    assert_eq!(
        block,
        [1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, b'a', b'b', 0, b'c', 0]
    );
}

#[test]
fn serialized_pairs_stops_on_truncated_blocks() {
    let block = serialize_pairs(SAMPLE_PAIRS);
    let all = owned(&SAMPLE_PAIRS);
    for len in 0..block.len() {
        let got = pairs_of(&block[..len]);
        // Whatever is read is exactly a prefix of what was written, never garbage.
        assert_eq!(got[..], all[..got.len()], "len {len}");
        // Only the last pair's terminating NUL is not needed to read it.
        if len + 1 < block.len() {
            assert!(got.len() < all.len(), "len {len}: read everything");
        }
    }
    assert_eq!(pairs_of(&block), all);
}

#[test]
fn serialized_pairs_malformed_blocks() {
    // Empty and short blocks.
    for block in [&[][..], &[1], &[1, 0, 0], &[0, 0, 0, 0]] {
        assert!(pairs_of(block).is_empty(), "{block:?}");
    }
    // A count with no sizes behind it.
    assert!(pairs_of(&[2, 0, 0, 0]).is_empty());
    assert!(pairs_of(&[0xff, 0xff, 0xff, 0xff]).is_empty());
    assert!(
        pairs_of(&[
            0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1, 0, 0, 0, b'a', 0, b'b', 0
        ])
        .is_empty()
    );
    // Sizes larger than the block, including u32::MAX.
    assert!(pairs_of(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]).is_empty());
    assert!(pairs_of(&[1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0]).is_empty());
    assert!(pairs_of(&[1, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, b'a', 0, b'b', 0]).is_empty());
    // A count larger than the pairs present: the valid first pair, then a stop.
    let mut block = Vec::new();
    block.extend_from_slice(&3u32.to_le_bytes());
    for _ in 0..3 {
        block.extend_from_slice(&1u32.to_le_bytes());
        block.extend_from_slice(&1u32.to_le_bytes());
    }
    block.extend_from_slice(b"a\x001\x00");
    assert_eq!(pairs_of(&block), owned(&[("a", "1")]));
    // A count that does not match the layout at all: no panic, no more than it claims.
    let mut block = serialize_pairs([("a", "1")]);
    block[0] = 3;
    assert!(pairs_of(&block).len() <= 3);
    // The second pair's sizes point past the end: only the first is read.
    let mut block = Vec::new();
    block.extend_from_slice(&2u32.to_le_bytes());
    block.extend_from_slice(&1u32.to_le_bytes());
    block.extend_from_slice(&1u32.to_le_bytes());
    block.extend_from_slice(&1u32.to_le_bytes());
    block.extend_from_slice(&100u32.to_le_bytes());
    block.extend_from_slice(b"a\x001\x00b\x00short\x00");
    assert_eq!(pairs_of(&block), owned(&[("a", "1")]));
    // Non-UTF-8 bytes pass through untouched.
    let mut block = Vec::new();
    block.extend_from_slice(&1u32.to_le_bytes());
    block.extend_from_slice(&1u32.to_le_bytes());
    block.extend_from_slice(&2u32.to_le_bytes());
    block.extend_from_slice(&[0xff, 0, 0xc3, 0x28, 0]);
    assert_eq!(pairs_of(&block), vec![(vec![0xff], vec![0xc3, 0x28])]);
}

#[test]
fn serialized_pairs_feed_the_carrier() {
    let block = serialize_pairs([
        (
            "TraceParent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (
            "uber-trace-id",
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:1",
        ),
    ]);
    let c = Carrier::from_pairs(serialized_pairs(&block));
    assert_eq!(
        c.get(Header::Traceparent),
        Slot::One(&b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..])
    );
    assert_eq!(
        c.get(Header::UberTraceId),
        Slot::One(&b"a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:1"[..])
    );
}

// ---------------------------------------------------------------------------------------
// HeaderValue
// ---------------------------------------------------------------------------------------

#[test]
fn header_value_hex_and_capacity() {
    let mut v = HeaderValue::new();
    v.push_hex(&[0x00, 0x0f, 0xa0, 0xff]);
    assert_eq!(v.as_str(), "000fa0ff");
    assert_eq!(format!("{v:?}"), "\"000fa0ff\"");
    // Pushing past the capacity drops the excess instead of panicking.
    let mut v = HeaderValue::default();
    v.push_str(&[b'x'; 100]);
    assert_eq!(v.as_bytes().len(), 72);
    assert_eq!(HeaderValue::new().as_str(), "");
}
