//! The codec layer: header names, the carrier, the serialized header map, HeaderValue,
//! and properties over every parser (no input panics, parse of render is identity).

use rand::rngs::SmallRng;

use crate::codec::b3::{self, B3};
use crate::codec::b3multi::{self, MultiHeaders};
use crate::codec::tracestate::{self, TraceState};
use crate::codec::value::HEADER_VALUE_CAPACITY;
use crate::codec::{
    self, Carrier, Format, Header, HeaderValue, Read, Slot, carrier::Repeated, header_map, jaeger,
    tracecontext,
};
use crate::context::{Sampling, SpanContext};
use crate::testing::generate::*;

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
        // Sharing a trace header's length and first letter (and its second pick).
        "x-b3-xampled",
        "ot-tracer-xampled",
        "ot-tracer-xpanid",
        "x-forwarded-proto",
        "user-agent",
        ":authority",
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
        assert_eq!(Format::ALL.iter().filter(|g| **g == f).count(), 1);
    }
    assert_eq!(Format::from_name("B3"), None);
    assert_eq!(Format::from_name("w3c"), None);
    for h in Header::ALL {
        assert_eq!(Header::ALL.iter().filter(|g| **g == h).count(), 1);
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
    assert_eq!(c.get(Header::Tracestate), Slot::Repeated(b"a=1"));
    assert_eq!(c.tracestate_parts(), Some(&[&b"a=1"[..], &b"b=2"[..]][..]));
    assert_eq!(c.get(Header::B3), Slot::Repeated(b"0"));
    assert_eq!(c.first(Header::B3), Some(&b"0"[..]));
    assert_eq!(c.single(Header::B3), Err(Repeated));
    assert_eq!(c.get(Header::UberTraceId), Slot::Absent);
    assert!(c.is_present(Header::B3));
    assert!(!c.is_present(Header::XB3TraceId));
}

/// A repeated header of a format: B3 says "the first value wins" (Brave, OpenTelemetry Go
/// and Python read the first); the W3C suite (`test_traceparent_duplicated`) expects two
/// traceparents to restart the trace, whatever their values.
#[test]
fn repeated_headers_first_value_wins_but_traceparent_is_invalid() {
    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const S: &str = "00f067aa0ba902b7";
    const X: &str = "5af7183fb1d4cf5f5af7183fb1d4cf5f";
    let b3_first = format!("{T}-{S}-1");
    let jaeger_first = format!("{T}:{S}:0:1");
    let want = |sampling| {
        Read::Context(SpanContext::new(
            crate::testing::vectors::tid(T),
            crate::testing::vectors::sid(S),
            sampling,
        ))
    };
    // Same value twice, a different second value, and an invalid second value.
    for second in [
        b3_first.clone(),
        format!("{X}-{S}-0"),
        "garbage".to_string(),
    ] {
        let c = Carrier::from_pairs([
            (&b"b3"[..], b3_first.as_bytes()),
            (&b"b3"[..], second.as_bytes()),
        ]);
        assert_eq!(
            codec::extract(&c, Format::B3),
            want(Sampling::Sampled),
            "{second}"
        );
    }
    for second in [
        jaeger_first.clone(),
        format!("{X}:{S}:0:0"),
        "zz".to_string(),
    ] {
        let c = Carrier::from_pairs([
            (&b"uber-trace-id"[..], jaeger_first.as_bytes()),
            (&b"Uber-Trace-Id"[..], second.as_bytes()),
        ]);
        assert_eq!(
            codec::extract(&c, Format::Jaeger),
            want(Sampling::Sampled),
            "{second}"
        );
    }
    // Every multi header may repeat; each is read by its first value.
    let c = Carrier::from_pairs([
        (&b"x-b3-traceid"[..], T.as_bytes()),
        (&b"x-b3-spanid"[..], S.as_bytes()),
        (&b"x-b3-sampled"[..], &b"0"[..]),
        (&b"x-b3-traceid"[..], X.as_bytes()),
        (&b"x-b3-spanid"[..], &b"nothex"[..]),
        (&b"x-b3-sampled"[..], &b"1"[..]),
    ]);
    assert_eq!(
        codec::extract(&c, Format::B3Multi),
        want(Sampling::NotSampled)
    );
    // A repeated lone decision too.
    let c = Carrier::from_pairs([(&b"b3"[..], &b"0"[..]), (&b"b3"[..], &b"1"[..])]);
    assert_eq!(
        codec::extract(&c, Format::B3),
        Read::SamplingOnly(Sampling::NotSampled)
    );
    // The first value decides validity: an invalid first value is not rescued.
    let c = Carrier::from_pairs([
        (&b"b3"[..], &b"garbage"[..]),
        (&b"b3"[..], b3_first.as_bytes()),
    ]);
    assert_eq!(codec::extract(&c, Format::B3), Read::Invalid);
    // traceparent: two identical values are still invalid.
    let tp = format!("00-{T}-{S}-01");
    let c = Carrier::from_pairs([
        (&b"traceparent"[..], tp.as_bytes()),
        (&b"traceparent"[..], tp.as_bytes()),
    ]);
    assert_eq!(codec::extract(&c, Format::TraceContext), Read::Invalid);
}

#[test]
fn carrier_joins_any_number_of_tracestate_headers_within_the_size_bound() {
    use crate::codec::carrier::MAX_TRACESTATE_COMBINED;
    // RFC 9110 (and the W3C text) combine every tracestate field line, however many.
    let values: Vec<String> = (0..20).map(|i| format!("k{i}=v")).collect();
    for n in [0, 1, 8, 9, 20] {
        let c = Carrier::from_pairs(
            values
                .iter()
                .take(n)
                .map(|v| (&b"tracestate"[..], v.as_bytes())),
        );
        let want: Vec<&[u8]> = values.iter().take(n).map(|v| v.as_bytes()).collect();
        assert_eq!(c.tracestate_parts(), Some(&want[..]), "{n} headers");
    }
    let parts: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
    assert_eq!(
        tracestate::parse(&parts),
        TraceState::Rewritten(values.join(","))
    );
    // The bound is on the combined size (values and joining commas), not the count.
    let long = "x".repeat(MAX_TRACESTATE_COMBINED - 9);
    let c = Carrier::from_pairs(
        std::iter::repeat_n(&b"tracestate"[..], 10)
            .zip(std::iter::once(long.as_bytes()).chain(std::iter::repeat_n(&b""[..], 9))),
    );
    assert_eq!(c.tracestate_parts().map(<[_]>::len), Some(10));
    let c = Carrier::from_pairs(
        std::iter::repeat_n(&b"tracestate"[..], 11)
            .zip(std::iter::once(long.as_bytes()).chain(std::iter::repeat_n(&b""[..], 10))),
    );
    assert_eq!(c.tracestate_parts(), None);
    let over = "x".repeat(MAX_TRACESTATE_COMBINED + 1);
    let c = Carrier::from_pairs([(&b"tracestate"[..], over.as_bytes())]);
    assert_eq!(c.tracestate_parts(), None);
}

// ---------------------------------------------------------------------------------------
// Serialized header map
// ---------------------------------------------------------------------------------------

fn pairs_of(block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    header_map::pairs(block)
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
        let block = header_map::serialize(SAMPLE_PAIRS[..n].iter().copied());
        assert_eq!(pairs_of(&block), owned(&SAMPLE_PAIRS[..n]));
    }
    // The layout: count, sizes, then each key and value NUL-terminated.
    let block = header_map::serialize([("ab", "c")]);
    assert_eq!(
        block,
        [1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, b'a', b'b', 0, b'c', 0]
    );
}

#[test]
fn serialized_pairs_stops_on_truncated_blocks() {
    let block = header_map::serialize(SAMPLE_PAIRS);
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
    let mut block = header_map::serialize([("a", "1")]);
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
    let block = header_map::serialize([
        (
            "TraceParent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (
            "uber-trace-id",
            "a1ce929d0e0e4736a3ce929d0e0e4736:00f067aa0ba902b7:0:1",
        ),
    ]);
    let c = Carrier::from_pairs(header_map::pairs(&block));
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
    v.push_str(&[b'x'; 200]);
    assert_eq!(v.as_bytes().len(), HEADER_VALUE_CAPACITY);
    assert_eq!(v.remaining(), 0);
    assert_eq!(HeaderValue::new().as_str(), "");
    // Hex that does not fit is cut at the capacity too, after what fits.
    let mut v = HeaderValue::default();
    v.push_str(&[b'x'; HEADER_VALUE_CAPACITY - 3]);
    v.push_hex(&[0xab, 0xcd]);
    assert_eq!(v.as_bytes().len(), HEADER_VALUE_CAPACITY);
    assert!(v.as_str().ends_with("xabc"), "{v:?}");
}

// ---------------------------------------------------------------------------------------
// (a) No input panics
// ---------------------------------------------------------------------------------------

/// A valid value of any format, as a seed for mutation.
fn any_valid_value(r: &mut SmallRng) -> Vec<u8> {
    let ctx = random_ctx(r);
    let h = *pick(r, &Header::ALL);
    valid_value(r, h, &ctx)
}

fn parse_everything(r: &mut SmallRng, input: &[u8]) {
    let ctx = random_ctx(r);

    // traceparent: whatever parses is valid and survives a re-render unchanged.
    if let Some(c) = tracecontext::parse(input) {
        assert!(c.trace_id.is_valid() && c.span_id.is_valid());
        assert!(c.parent_id.is_none() && !c.short_trace_id);
        assert!(matches!(
            c.sampling,
            Sampling::Sampled | Sampling::NotSampled
        ));
        let again = tracecontext::render(&c);
        assert_eq!(tracecontext::parse(again.as_bytes()), Some(c), "{input:?}");
    }

    // tracestate, alone and joined with another header.
    let other = valid_value(r, Header::Tracestate, &ctx);
    for parts in [&[input][..], &[input, &other], &[&other, input, input]] {
        // The `ot` value found while parsing is the one a scan of a valid tracestate finds.
        let (state, ot) = tracestate::parse_with_value(parts, crate::sampling::OT_KEY);
        if !matches!(state, TraceState::Invalid | TraceState::Empty) {
            assert_eq!(ot, crate::sampling::ot_value(parts), "{parts:?}");
        }
        match tracestate::parse(parts) {
            TraceState::Canonical => {
                assert_eq!(parts.len(), 1);
                assert!(input.len() <= tracestate::TRACESTATE_MAX_LEN);
            }
            TraceState::Rewritten(s) => {
                assert!(s.len() <= tracestate::TRACESTATE_MAX_LEN, "{s:?}");
                assert_eq!(
                    tracestate::parse(&[s.as_bytes()]),
                    TraceState::Canonical,
                    "{parts:?} -> {s:?}"
                );
            }
            TraceState::Empty | TraceState::TooLong | TraceState::Invalid => {}
        }
    }

    // B3 single.
    if let Some(B3::Context(c)) = b3::parse(input) {
        assert!(c.trace_id.is_valid() && c.span_id.is_valid());
        let again = b3::render(&c);
        assert_eq!(
            b3::parse(again.as_bytes()),
            Some(B3::Context(c)),
            "{input:?}"
        );
    }

    // B3 multi, the input in each field in turn, the rest valid, absent or mutated.
    let m = b3multi::render(&ctx);
    let mutated: Vec<Vec<u8>> = [
        m.trace_id.as_bytes(),
        m.span_id.as_bytes(),
        b"0020000000000001",
        b"1",
        b"1",
    ]
    .iter()
    .map(|v| {
        if one_in(r, 3) {
            mutate(r, v)
        } else {
            v.to_vec()
        }
    })
    .collect();
    for slot in 0..5 {
        let field = |i: usize, r: &mut SmallRng| -> Option<&[u8]> {
            if i == slot {
                Some(input)
            } else if one_in(r, 3) {
                None
            } else {
                Some(&mutated[i])
            }
        };
        let h = MultiHeaders {
            trace_id: field(0, r),
            span_id: field(1, r),
            parent_span_id: field(2, r),
            sampled: field(3, r),
            flags: field(4, r),
        };
        if let Some(B3::Context(c)) = b3multi::parse(&h) {
            let v = b3multi::render(&c);
            let back = MultiHeaders {
                trace_id: Some(v.trace_id.as_bytes()),
                span_id: Some(v.span_id.as_bytes()),
                parent_span_id: v.parent_span_id.as_ref().map(HeaderValue::as_bytes),
                sampled: v.sampled.as_ref().map(HeaderValue::as_bytes),
                flags: v.flags.as_ref().map(HeaderValue::as_bytes),
            };
            assert_eq!(b3multi::parse(&back), Some(B3::Context(c)), "{h:?}");
        }
    }

    // Jaeger.
    if let Some(c) = jaeger::parse(input) {
        assert!(c.trace_id.is_valid() && c.span_id.is_valid());
        assert_ne!(c.sampling, Sampling::Deferred);
        let again = jaeger::render(&c);
        assert_eq!(jaeger::parse(again.as_bytes()), Some(c), "{input:?}");
    }

    // Header names.
    let expected = Header::ALL
        .iter()
        .copied()
        .find(|h| h.name().as_bytes().eq_ignore_ascii_case(input));
    assert_eq!(Header::from_name(input), expected, "{input:?}");
}

#[test]
fn no_input_panics_any_parser() {
    let mut r = rng(0x7ace_0001);
    for _ in 0..4000 {
        let input = match below(&mut r, 4) {
            0 => random_bytes(&mut r, 120),
            1 => any_valid_value(&mut r),
            _ => {
                let seed = any_valid_value(&mut r);
                mutate(&mut r, &seed)
            }
        };
        parse_everything(&mut r, &input);
    }
    // Header names in every spelling, and their near misses.
    for _ in 0..2000 {
        let h = *pick(&mut r, &Header::ALL);
        let name = random_name(&mut r, h);
        assert_eq!(Header::from_name(&name), Some(h));
        let near = mutate(&mut r, &name);
        parse_everything(&mut r, &near);
    }
}

#[test]
fn no_header_block_panics_serialized_pairs() {
    let mut r = rng(0x7ace_0002);
    for _ in 0..2000 {
        let n = below(&mut r, 5);
        let pairs: Vec<(String, String)> = (0..n)
            .map(|_| {
                let k = String::from_utf8_lossy(&random_bytes(&mut r, 12)).into_owned();
                let v = String::from_utf8_lossy(&random_bytes(&mut r, 40)).into_owned();
                (k, v)
            })
            .collect();
        let block = header_map::serialize(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let read: Vec<(&[u8], &[u8])> = header_map::pairs(&block).collect();
        assert_eq!(read.len(), pairs.len());
        for ((k, v), (rk, rv)) in pairs.iter().zip(&read) {
            assert_eq!(k.as_bytes(), *rk);
            assert_eq!(v.as_bytes(), *rv);
        }
        // Damaged blocks end the iteration; they never panic and never invent pairs.
        let damaged = match below(&mut r, 3) {
            0 => block[..below(&mut r, block.len() + 1)].to_vec(),
            1 => mutate(&mut r, &block),
            _ => random_bytes(&mut r, 64),
        };
        let count = damaged
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
            .unwrap_or(0);
        let got = header_map::pairs(&damaged)
            .take(count.saturating_add(1))
            .count();
        assert!(got <= count);
        assert!(got <= damaged.len() / 10 + 1);
        let carrier = Carrier::from_pairs(header_map::pairs(&damaged));
        for f in Format::ALL {
            let _ = codec::extract(&carrier, f);
        }
    }
}

// ---------------------------------------------------------------------------------------
// (b) Parse of render is identity
// ---------------------------------------------------------------------------------------

#[test]
fn parse_of_render_is_identity() {
    let mut r = rng(0x7ace_0004);
    for _ in 0..5000 {
        let c = random_ctx(&mut r);
        // B3 and Jaeger keep a 64-bit trace id only when it arrived so and still fits.
        let short = c.short_trace_id && c.trace_id.fits_64_bits();

        // traceparent: no parent, no debug, no short form, no undecided, no firehose.
        let want = SpanContext {
            parent_id: None,
            short_trace_id: false,
            firehose: false,
            sampling: if c.sampling.is_sampled() {
                Sampling::Sampled
            } else {
                Sampling::NotSampled
            },
            ..c
        };
        let v = tracecontext::render(&c);
        assert_eq!(v.as_bytes().len(), 55);
        assert_eq!(tracecontext::parse(v.as_bytes()), Some(want), "{c:?}");

        // B3 single: a parent needs a sampling state in front of it.
        let want = SpanContext {
            parent_id: if c.sampling.is_decided() {
                c.parent_id
            } else {
                None
            },
            short_trace_id: short,
            random_trace_id: false,
            firehose: false,
            ..c
        };
        let v = b3::render(&c);
        assert_eq!(b3::parse(v.as_bytes()), Some(B3::Context(want)), "{c:?}");

        // B3 multi keeps everything but the W3C random flag and Jaeger's firehose.
        let want = SpanContext {
            short_trace_id: short,
            random_trace_id: false,
            firehose: false,
            ..c
        };
        let v = b3multi::render(&c);
        let h = MultiHeaders {
            trace_id: Some(v.trace_id.as_bytes()),
            span_id: Some(v.span_id.as_bytes()),
            parent_span_id: v.parent_span_id.as_ref().map(HeaderValue::as_bytes),
            sampled: v.sampled.as_ref().map(HeaderValue::as_bytes),
            flags: v.flags.as_ref().map(HeaderValue::as_bytes),
        };
        assert_eq!(b3multi::parse(&h), Some(B3::Context(want)), "{c:?}");

        // Jaeger: no undecided (renders as not sampled); parent 0 means none; the firehose
        // bit goes on.
        let want = SpanContext {
            sampling: match c.sampling {
                Sampling::Deferred => Sampling::NotSampled,
                s => s,
            },
            short_trace_id: short,
            random_trace_id: false,
            ..c
        };
        let v = jaeger::render(&c);
        assert_eq!(jaeger::parse(v.as_bytes()), Some(want), "{c:?}");
    }
}
