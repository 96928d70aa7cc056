//! Datadog headers: vectors, both directions.
//!
//! Facts from dd-trace-py (`ddtrace/propagation/http.py`, `_DatadogMultiHeader`): decimal
//! uint64 ids, `0 < id < 2**64`; the priority an integer; `_dd.p.tid` 16 hex digits with
//! the high half of a 128-bit trace id; B3 `x-b3-flags: 1` <-> priority 2. The 128-bit
//! vector is the one Datadog's W3C interop examples use (`640cfd8d00000000` /
//! `5208512171318403364`, the traceparent `640cfd8d0000000048485a3953bb6124`).

use crate::codec::datadog::{self, DatadogHeaders};
use crate::codec::{Carrier, Header, Read};
use crate::context::{Sampling, SpanContext};
use crate::testing::vectors::*;

fn dd<'a>(
    trace: Option<&'a str>,
    parent: Option<&'a str>,
    priority: Option<&'a str>,
    tags: Option<&'a str>,
) -> DatadogHeaders<'a> {
    DatadogHeaders {
        trace_id: trace.map(str::as_bytes),
        parent_id: parent.map(str::as_bytes),
        sampling_priority: priority.map(str::as_bytes),
        origin: None,
        tags: tags.map(str::as_bytes),
    }
}

fn short64(trace_low_hex: &str, span: &str, s: Sampling) -> SpanContext {
    short(ctx(&format!("{:0>32}", trace_low_hex), span, s))
}

#[test]
fn datadog_parses_vectors() {
    let cases: Vec<(DatadogHeaders, SpanContext)> = vec![
        // dd-trace-py's extract tests: 1234 / 5678.
        (
            dd(Some("1234"), Some("5678"), Some("1"), None),
            short64("4d2", "000000000000162e", Sampling::Sampled),
        ),
        (
            dd(Some("1234"), Some("5678"), Some("2"), None),
            short64("4d2", "000000000000162e", Sampling::Debug),
        ),
        (
            dd(Some("1234"), Some("5678"), Some("0"), None),
            short64("4d2", "000000000000162e", Sampling::NotSampled),
        ),
        (
            dd(Some("1234"), Some("5678"), Some("-1"), None),
            short64("4d2", "000000000000162e", Sampling::NotSampled),
        ),
        // No priority: no decision yet.
        (
            dd(Some("1234"), Some("5678"), None, None),
            short64("4d2", "000000000000162e", Sampling::Deferred),
        ),
        // The largest uint64, and OWS.
        (
            dd(Some(" 18446744073709551615 "), Some("1"), Some("1"), None),
            short64("ffffffffffffffff", "0000000000000001", Sampling::Sampled),
        ),
        // 128 bits: the high half in `_dd.p.tid`, other tags beside it.
        (
            dd(
                Some("5208512171318403364"),
                Some("5208512171318403364"),
                Some("1"),
                Some("_dd.p.dm=-4,_dd.p.tid=640cfd8d00000000"),
            ),
            ctx(
                "640cfd8d0000000048485a3953bb6124",
                "48485a3953bb6124",
                Sampling::Sampled,
            ),
        ),
        // Tags without a trace id half: still 64-bit.
        (
            dd(Some("1234"), Some("5678"), Some("1"), Some("_dd.p.dm=-1")),
            short64("4d2", "000000000000162e", Sampling::Sampled),
        ),
        (
            dd(Some("1234"), Some("5678"), Some("1"), Some("")),
            short64("4d2", "000000000000162e", Sampling::Sampled),
        ),
    ];
    for (h, want) in cases {
        assert_eq!(datadog::parse(&h), Some(want), "{h:?}");
    }
}

#[test]
fn datadog_rejects_invalid() {
    let bad = [
        // Ids: zero, negative, signed, hex, past 2**64, empty, inner space.
        dd(Some("0"), Some("5678"), Some("1"), None),
        dd(Some("1234"), Some("0"), Some("1"), None),
        dd(Some("-1234"), Some("5678"), Some("1"), None),
        dd(Some("+1234"), Some("5678"), Some("1"), None),
        dd(Some("4d2"), Some("5678"), Some("1"), None),
        dd(Some("18446744073709551616"), Some("5678"), Some("1"), None),
        dd(Some(""), Some("5678"), Some("1"), None),
        dd(Some("12 34"), Some("5678"), Some("1"), None),
        // A trace without a span to continue (Synthetics' root), a parent alone.
        dd(Some("1234"), None, Some("1"), None),
        dd(None, Some("5678"), Some("1"), None),
        // Priorities outside -1..=2.
        dd(Some("1234"), Some("5678"), Some("3"), None),
        dd(Some("1234"), Some("5678"), Some("-2"), None),
        dd(Some("1234"), Some("5678"), Some("true"), None),
        // Tags that do not decode, a bad or zero or repeated high half.
        dd(Some("1234"), Some("5678"), Some("1"), Some("_dd.p.dm")),
        dd(Some("1234"), Some("5678"), Some("1"), Some("_dd.p.dm=-4,,")),
        dd(Some("1234"), Some("5678"), Some("1"), Some("a b=1")),
        dd(
            Some("1234"),
            Some("5678"),
            Some("1"),
            Some("_dd.p.tid=640CFD8D00000000"),
        ),
        dd(
            Some("1234"),
            Some("5678"),
            Some("1"),
            Some("_dd.p.tid=640cfd8d"),
        ),
        dd(
            Some("1234"),
            Some("5678"),
            Some("1"),
            Some("_dd.p.tid=0000000000000000"),
        ),
        dd(
            Some("1234"),
            Some("5678"),
            Some("1"),
            Some("_dd.p.tid=640cfd8d00000000,_dd.p.tid=640cfd8d00000001"),
        ),
    ];
    for h in bad {
        assert_eq!(datadog::parse(&h), None, "{h:?}");
    }
    let long = format!("_dd.p.x={}", "a".repeat(datadog::MAX_TAGS_LEN));
    assert_eq!(
        datadog::parse(&dd(Some("1"), Some("2"), None, Some(&long))),
        None
    );
    let mut h = dd(Some("1234"), Some("5678"), Some("1"), None);
    h.origin = Some(b"synth\x01etics");
    assert_eq!(datadog::parse(&h), None);
    h.origin = Some(b"synthetics");
    assert!(datadog::parse(&h).is_some());
}

#[test]
fn datadog_renders_decimal_ids_and_the_high_half() {
    let c = ctx(
        "640cfd8d0000000048485a3953bb6124",
        "48485a3953bb6124",
        Sampling::Debug,
    );
    let v = datadog::render(&c);
    assert_eq!(v.trace_id.as_str(), "5208512171318403364");
    assert_eq!(v.parent_id.as_str(), "5208512171318403364");
    assert_eq!(v.sampling_priority.unwrap().as_str(), "2");
    assert_eq!(v.tags.unwrap().as_str(), "_dd.p.tid=640cfd8d00000000");

    let c = short64("4d2", "000000000000162e", Sampling::Deferred);
    let v = datadog::render(&c);
    assert_eq!(v.trace_id.as_str(), "1234");
    assert_eq!(v.parent_id.as_str(), "5678");
    assert_eq!(v.sampling_priority, None);
    assert_eq!(v.tags, None);

    for (s, p) in [(Sampling::NotSampled, "0"), (Sampling::Sampled, "1")] {
        let v = datadog::render(&ctx(OTEL_TRACE, OTEL_SPAN, s));
        assert_eq!(v.sampling_priority.unwrap().as_str(), p);
        // Round trip through the headers.
        let h = DatadogHeaders {
            trace_id: Some(v.trace_id.as_bytes()),
            parent_id: Some(v.parent_id.as_bytes()),
            sampling_priority: v.sampling_priority.as_ref().map(|p| p.as_bytes()),
            origin: None,
            tags: v.tags.as_ref().map(|t| t.as_bytes()),
        };
        assert_eq!(datadog::parse(&h), Some(ctx(OTEL_TRACE, OTEL_SPAN, s)));
    }
}

#[test]
fn datadog_extract_reads_the_first_of_a_repeat_and_rejects_partial_sets() {
    let c = Carrier::from_pairs([
        (b"x-datadog-trace-id".as_slice(), b"1234".as_slice()),
        (b"X-Datadog-Parent-Id", b"5678"),
        (b"x-datadog-trace-id", b"999"),
    ]);
    assert_eq!(
        datadog::extract(&c),
        Read::Context(short64("4d2", "000000000000162e", Sampling::Deferred))
    );
    let c = Carrier::from_pairs([(b"x-datadog-origin".as_slice(), b"synthetics".as_slice())]);
    assert_eq!(datadog::extract(&c), Read::Invalid);
    let c = Carrier::from_pairs([(b"x-datadog-origins".as_slice(), b"x".as_slice())]);
    assert_eq!(datadog::extract(&c), Read::Absent);
    let mut emitted = Vec::new();
    datadog::inject(
        &ctx(OTEL_TRACE, OTEL_SPAN, Sampling::Sampled),
        &mut |h, v| emitted.push((h, v.map(|v| v.as_str().to_string()))),
    );
    assert_eq!(
        emitted.iter().find(|(h, _)| *h == Header::XDatadogOrigin),
        Some(&(Header::XDatadogOrigin, None))
    );
}

#[test]
fn a_trace_id_whose_low_half_is_zero_has_no_datadog_form() {
    // Found by the codecs fuzz target: `x-datadog-trace-id: 0` is invalid to dd-trace.
    let c = ctx(
        "4bf92f3577b34da60000000000000000",
        OTEL_SPAN,
        Sampling::Sampled,
    );
    assert!(!datadog::carries(&c));
    let mut emitted = Vec::new();
    datadog::inject(&c, &mut |h, v| emitted.push((h, v)));
    assert_eq!(emitted.len(), 5);
    assert!(emitted.iter().all(|(_, v)| v.is_none()), "all removed");
    assert!(datadog::carries(&ctx(
        OTEL_TRACE,
        OTEL_SPAN,
        Sampling::Sampled
    )));
}
