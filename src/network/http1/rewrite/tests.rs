//! Head rewrites: only trace-header lines change.

use crate::codec::{Header, HeaderValue, PerHeader};
use crate::network::http1::head::parse;
use crate::network::http1::rewrite::{Rewritten, rewrite};
use crate::policy::plan::{Outcome, Source};
use crate::policy::{Op, Plan};

fn plan(ops: &[(Header, Op)]) -> Plan {
    let mut table: PerHeader<Op> = PerHeader::default();
    for (h, op) in ops {
        table[*h] = op.clone();
    }
    Plan {
        ops: table,
        context: None,
        outcome: Outcome {
            source: Source::LeftToTracer,
            conflict: false,
            invalid: Default::default(),
            invalid_tracestate: false,
            bridged: false,
            continued_over_tracer: false,
            restarted: false,
            decided: None,
        },
    }
}

/// The head as Envoy's buffer holds it after the rewrite.
fn applied(head: &[u8], rewritten: &Rewritten) -> Vec<u8> {
    let mut out = rewritten.bytes.clone();
    out.extend_from_slice(&head[rewritten.replaced..]);
    assert_eq!(out.len(), rewritten.head_len);
    out
}

const HEAD: &str = "POST /a?b=c HTTP/1.1\r\nHost: api\r\nX-B3-TraceId: 1\r\nContent-Length: 3\r\nx-b3-traceid: 2\r\ntraceparent:  00-old \r\nUser-Agent:  spaced  value \r\n\r\n";

#[test]
fn nothing_to_do_is_no_rewrite() {
    let head = parse(HEAD.as_bytes()).unwrap();
    assert_eq!(rewrite(&head, &plan(&[])), None);
}

#[test]
fn sets_replace_the_first_line_removes_drop_and_new_headers_go_first() {
    let head = parse(HEAD.as_bytes()).unwrap();
    let p = plan(&[
        (
            Header::XB3TraceId,
            Op::Set(HeaderValue::from_literal(b"abc")),
        ),
        (Header::Traceparent, Op::Remove),
        (Header::B3, Op::Set(HeaderValue::from_literal(b"t-s-1"))),
        (Header::Tracestate, Op::SetText("k=v".into())),
    ]);
    let rewritten = rewrite(&head, &p).unwrap();
    let count = rewritten.field_count;
    let out = applied(HEAD.as_bytes(), &rewritten);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "POST /a?b=c HTTP/1.1\r\ntracestate: k=v\r\nb3: t-s-1\r\nHost: api\r\nx-b3-traceid: abc\r\nContent-Length: 3\r\nUser-Agent:  spaced  value \r\n\r\n"
    );
    // The last line the plan changes is the traceparent: the User-Agent line stays in
    // Envoy's buffer.
    assert_eq!(rewritten.replaced, HEAD.find("User-Agent").unwrap());
    let again = parse(&out).unwrap();
    assert_eq!(again.field_count, count);
    assert_eq!(again.body, head.body);
}

#[test]
fn field_counts_follow_the_plan() {
    let head = parse(HEAD.as_bytes()).unwrap();
    assert_eq!(head.field_count, 6);
    let cases = [
        plan(&[(Header::XB3TraceId, Op::Remove)]),
        plan(&[(
            Header::Traceparent,
            Op::Set(HeaderValue::from_literal(b"x")),
        )]),
        plan(&[(
            Header::UberTraceId,
            Op::Set(HeaderValue::from_literal(b"x")),
        )]),
        plan(&[(Header::XB3TraceId, Op::Set(HeaderValue::from_literal(b"x")))]),
    ];
    for p in cases {
        let out = rewrite(&head, &p).unwrap();
        let bytes = applied(HEAD.as_bytes(), &out);
        assert_eq!(parse(&bytes).unwrap().field_count, out.field_count);
    }
}

#[test]
fn only_additions_replace_the_request_line_alone() {
    let head = parse(HEAD.as_bytes()).unwrap();
    let p = plan(&[(Header::B3, Op::Set(HeaderValue::from_literal(b"t-s-1")))]);
    let rewritten = rewrite(&head, &p).unwrap();
    assert_eq!(rewritten.replaced, "POST /a?b=c HTTP/1.1\r\n".len());
    assert_eq!(
        rewritten.bytes,
        b"POST /a?b=c HTTP/1.1\r\nb3: t-s-1\r\n".to_vec()
    );
    assert_eq!(rewritten.field_count, head.field_count + 1);
}
