//! A request head with the plan carried out: only trace-header lines are inserted, replaced
//! or removed; the request line, every other line, their order and the empty line stay as
//! they were, byte for byte.

use super::head::RequestHead;
use crate::codec::{Header, PerHeader};
use crate::policy::{Op, Plan};

/// A rewritten head: the bytes that replace its first `replaced` bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewritten {
    /// How many of the head's first bytes `bytes` replaces: up to the end of the last line
    /// the plan changes; the rest of the head stays where it is.
    pub replaced: usize,
    pub bytes: Vec<u8>,
    /// The new head's length.
    pub head_len: usize,
    /// Its field lines: what Envoy's header-count limit sees.
    pub field_count: usize,
}

/// The rewrite, or `None` when the plan changes nothing. Lines the plan adds go right after
/// the request line, so that what is written back ends at the last trace line that
/// changes: the rest of the head is not copied, however long it is.
pub fn rewrite(head: &RequestHead<'_>, plan: &Plan) -> Option<Rewritten> {
    if plan.ops.iter().all(|(_, op)| *op == Op::Keep) {
        return None;
    }
    let bytes = head.bytes();
    let mut has_line: PerHeader<bool> = PerHeader::default();
    for trace in &head.trace_lines {
        has_line[trace.header] = true;
    }
    let request_line = head.request_line();
    let replaced = head
        .trace_lines
        .iter()
        .rev()
        .find(|trace| *plan.op(trace.header) != Op::Keep)
        .map_or(request_line.len(), |trace| trace.line.end);
    let mut out = Vec::with_capacity(replaced + 256);
    out.extend_from_slice(request_line);
    let mut field_count = head.field_count;
    for (header, op) in plan.ops.iter() {
        if matches!(op, Op::Set(_) | Op::SetText(_)) && !has_line[header] {
            push_field(&mut out, header, op);
            field_count += 1;
        }
    }
    let mut at = request_line.len();
    let mut written: PerHeader<bool> = PerHeader::default();
    for trace in head
        .trace_lines
        .iter()
        .take_while(|t| t.line.end <= replaced)
    {
        out.extend_from_slice(bytes.get(at..trace.line.start).unwrap_or_default());
        at = trace.line.end;
        match plan.op(trace.header) {
            Op::Keep => out.extend_from_slice(bytes.get(trace.line.clone()).unwrap_or_default()),
            Op::Remove => field_count = field_count.saturating_sub(1),
            // A set replaces the first line of that header; its repeats go.
            Op::Set(_) | Op::SetText(_) if written[trace.header] => {
                field_count = field_count.saturating_sub(1)
            }
            op => {
                push_field(&mut out, trace.header, op);
                written[trace.header] = true;
            }
        }
    }
    Some(Rewritten {
        replaced,
        head_len: bytes.len() - replaced + out.len(),
        bytes: out,
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
