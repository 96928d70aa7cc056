//! A request head with the plan carried out: only trace-header lines are inserted, replaced
//! or removed; the request line, every other line, their order and the empty line stay as
//! they were, byte for byte.

use super::head::RequestHead;
use crate::codec::{Header, PerHeader};
use crate::policy::{Op, Plan};

/// A rewritten head.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub head: Vec<u8>,
    /// Its field lines: what Envoy's header-count limit sees.
    pub field_count: usize,
}

/// The new head, or `None` when the plan changes nothing.
pub fn rewrite(head: &RequestHead<'_>, plan: &Plan) -> Option<Rewritten> {
    if plan.ops.iter().all(|(_, op)| *op == Op::Keep) {
        return None;
    }
    let bytes = head.bytes();
    let mut out = Vec::with_capacity(bytes.len() + 256);
    out.extend_from_slice(head.request_line());
    let mut field_count = 0usize;
    let mut written: PerHeader<bool> = PerHeader::default();
    for field in head.fields() {
        let line = bytes.get(field.line.clone()).unwrap_or_default();
        let Some(header) = Header::from_name(field.name) else {
            out.extend_from_slice(line);
            field_count += 1;
            continue;
        };
        match plan.op(header) {
            Op::Keep => {
                out.extend_from_slice(line);
                field_count += 1;
            }
            Op::Remove => {}
            // A set replaces the first line of that header; its repeats go.
            Op::Set(_) | Op::SetText(_) if written[header] => {}
            op => {
                push_field(&mut out, header, op);
                field_count += 1;
                written[header] = true;
            }
        }
    }
    for (header, op) in plan.ops.iter() {
        if matches!(op, Op::Set(_) | Op::SetText(_)) && !written[header] {
            push_field(&mut out, header, op);
            field_count += 1;
        }
    }
    out.extend_from_slice(b"\r\n");
    Some(Rewritten {
        head: out,
        field_count,
    })
}

fn push_field(out: &mut Vec<u8>, header: Header, op: &Op) {
    let value: &[u8] = match op {
        Op::Set(v) => v.as_bytes(),
        Op::SetText(s) => s.as_bytes(),
        Op::Keep | Op::Remove => return,
    };
    out.extend_from_slice(header.name().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
