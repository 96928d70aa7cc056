//! A request head with the plan carried out: only trace-header lines are inserted, replaced
//! or removed; the request line, every other line, their order and the empty line stay as
//! they were, byte for byte.

use super::head::RequestHead;
use crate::codec::{Header, PerHeader};
use crate::policy::{Op, Plan};

/// The new head, or `None` when the plan changes nothing.
pub fn rewrite(head: &RequestHead<'_>, plan: &Plan) -> Option<Vec<u8>> {
    if plan.ops.iter().all(|(_, op)| *op == Op::Keep) {
        return None;
    }
    let bytes = head.bytes();
    let mut out = Vec::with_capacity(bytes.len() + 256);
    out.extend_from_slice(head.request_line());
    let mut written: PerHeader<bool> = PerHeader::default();
    for field in head.fields() {
        let line = bytes.get(field.line.clone()).unwrap_or_default();
        let Some(header) = Header::from_name(field.name) else {
            out.extend_from_slice(line);
            continue;
        };
        match plan.op(header) {
            Op::Keep => out.extend_from_slice(line),
            Op::Remove => {}
            // A set replaces the first line of that header; its repeats go.
            Op::Set(_) | Op::SetText(_) if written[header] => {}
            op => {
                push_field(&mut out, header, op);
                written[header] = true;
            }
        }
    }
    for (header, op) in plan.ops.iter() {
        if matches!(op, Op::Set(_) | Op::SetText(_)) && !written[header] {
            push_field(&mut out, header, op);
        }
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

/// The field count after [`rewrite`]: what Envoy's header-count limit sees.
pub fn field_count_after(head: &RequestHead<'_>, plan: &Plan) -> usize {
    let mut count = head.field_count;
    let mut seen: PerHeader<bool> = PerHeader::default();
    for field in head.fields() {
        if let Some(header) = Header::from_name(field.name) {
            let first = !seen[header];
            seen[header] = true;
            match plan.op(header) {
                Op::Keep => {}
                Op::Remove => count = count.saturating_sub(1),
                Op::Set(_) | Op::SetText(_) if !first => count = count.saturating_sub(1),
                Op::Set(_) | Op::SetText(_) => {}
            }
        }
    }
    for (header, op) in plan.ops.iter() {
        if matches!(op, Op::Set(_) | Op::SetText(_)) && !seen[header] {
            count += 1;
        }
    }
    count
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
