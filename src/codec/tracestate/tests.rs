//! tracestate: validation, canonical form, truncation, adding a member.
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

use crate::codec::tracestate::{
    TRACESTATE_MAX_LEN, TRACESTATE_MAX_MEMBERS, TraceState, join_truncated, parse_with_value,
    with_member,
};
use crate::testing::vectors::*;

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
fn tracestate_duplicate_keys_keep_the_first_member() {
    // W3C suite (`test_tracestate_duplicated_keys`, strict level 2): the header is
    // inherited, a duplicate kept or discarded; the spec lets a vendor discard duplicates
    // and puts the most recent member leftmost, so the first one stays.
    for (parts, want) in [
        (&["foo=1,foo=1"][..], "foo=1"),
        (&["foo=1,foo=2"], "foo=1"),
        (&["foo=1", "foo=1"], "foo=1"),
        (&["foo=1", "foo=2"], "foo=1"),
        (&["foo=1,bar=2,foo=3"], "foo=1,bar=2"),
        (&["t@s=1,x=2,t@s=3"], "t@s=1,x=2"),
        (&["foo=1, foo=2"], "foo=1"),
        (&["a=1,b=2,a=3,b=4,c=5"], "a=1,b=2,c=5"),
    ] {
        assert_eq!(
            ts(parts),
            TraceState::Rewritten(want.to_string()),
            "{parts:?}"
        );
    }
    // A duplicate is still validated: an invalid one drops the header.
    assert_eq!(ts(&["foo=1,foo=bad=x"]), TraceState::Invalid);
    // Duplicates do not count towards the 32 members.
    let members: Vec<String> = (1..=32).map(|i| format!("bar{i:02}={i:02}")).collect();
    let with_dup = format!("{},bar01=again", members.join(","));
    assert_eq!(ts(&[&with_dup]), TraceState::Rewritten(members.join(",")));
}

#[test]
fn tracestate_parse_with_value_finds_the_kept_member() {
    let parse = |parts: &[&str]| {
        let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
        let (state, value) = parse_with_value(&parts, b"ot");
        (
            state,
            value.map(|v| String::from_utf8_lossy(v).into_owned()),
        )
    };
    let value = |parts: &[&str]| parse(parts).1;
    assert_eq!(
        value(&["a=1, ot=th:c;rv:6e6d1a75832a2f "]).as_deref(),
        Some("th:c;rv:6e6d1a75832a2f")
    );
    // A repeated key's first member is the one kept; `otx` is another key.
    assert_eq!(
        value(&["otx=0,ot=th:8", "ot=th:4"]).as_deref(),
        Some("th:8")
    );
    assert_eq!(value(&["a=1,b=2"]), None);
    // Nothing from an invalid or empty tracestate.
    assert_eq!(parse(&["ot=th:8,A=1"]), (TraceState::Invalid, None));
    assert_eq!(parse(&[" , "]), (TraceState::Empty, None));
    // Found as it arrived, also when truncation then drops it (from the end: 504
    // characters come before it).
    let before: Vec<String> = (0..5).map(|i| format!("m{i}={}", "x".repeat(97))).collect();
    let (state, found) = parse(&[&before.join(","), "ot=rv:6e6d1a75832a2f"]);
    assert_eq!(state, TraceState::Rewritten(before.join(",")));
    assert_eq!(found.as_deref(), Some("rv:6e6d1a75832a2f"));
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
    // The current key grammar: `( lcalpha / DIGIT ) 0*255 ( keychar )`, `@` a keychar.
    let z256 = format!("{}=1", "z".repeat(256));
    let z257 = format!("{}=1", "z".repeat(257));
    let tenant241 = format!("{}@{}=1", "t".repeat(241), "v".repeat(14));
    let tenant242 = format!("{}@v=1", "t".repeat(242));
    let system15 = format!("t@{}=1", "v".repeat(15));
    let at256 = format!("{}@{}=1", "t".repeat(128), "v".repeat(127));
    let at257 = format!("{}@{}=1", "t".repeat(128), "v".repeat(128));
    // W3C suite (`test_tracestate_key_length_limit`): a key of 256 characters is kept, of
    // 257 drops the header; keys with an at sign within 256 characters are kept, whatever
    // the lengths around the `@` (Level 1's 241/14 split is gone).
    for key in [&z256, &tenant241, &tenant242, &system15, &at256] {
        assert_eq!(
            ts(&["foo=1", key]),
            TraceState::Rewritten(format!("foo=1,{key}")),
            "{key}"
        );
    }
    assert_eq!(ts(&["foo=1", &z257]), TraceState::Invalid);
    assert_eq!(ts(&["foo=1", &at257]), TraceState::Invalid);

    // W3C suite (`test_tracestate_key_illegal_vendor_format`): keys that follow the
    // grammar are inherited, whatever their at signs.
    for v in [
        "foo@=1,bar=2",
        "foo@@bar=1,bar=2",
        "foo@bar@baz=1,bar=2",
        // A key may start with a digit; so may what follows an `@`.
        "1foo=1",
        "t@1s=1",
        "0=1",
        "a@*/_-=1",
    ] {
        assert_eq!(ts(&[v]), TraceState::Canonical, "tracestate {v:?}");
    }

    let invalid = [
        // W3C suite: illegal characters.
        "foo =1",
        "FOO=1",
        "foo.bar=1",
        // W3C suite: a key starting with an at sign (the whole header is dropped).
        "@foo=1,bar=2",
        // OpenTelemetry Go.
        "key1=value1,invalid$@#=invalid",
        "key1=value1,invalid",
        // A key starts with a lowercase letter or a digit.
        "_foo=1",
        "*foo=1",
        "/foo=1",
        "-foo=1",
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
