//! Step 4: tracestate, which belongs to the traceparent it came with (W3C processing
//! model): kept (and repaired) while that traceparent is valid and its trace goes on,
//! dropped otherwise, replaced on restart; left exactly as it arrived while the traceparent
//! is; and carrying OpenTelemetry's `ot=th:` for a decision tracejoin made.

use super::plan::Op;
use crate::codec::tracestate::{self, TraceState};
use crate::codec::{Carrier, Header, Slot};
use crate::context::SpanContext;
use crate::sampling::{self, OtState};

/// What happens to the traceparent the tracestate arrived with.
#[derive(Clone, Copy, Debug)]
pub struct TraceparentFate<'a> {
    /// tracejoin writes a traceparent.
    pub written: bool,
    /// tracejoin removes the traceparent.
    pub removed: bool,
    /// Envoy's OpenTelemetry tracer continues the arriving traceparent (downstream) and
    /// writes its tracestate back itself.
    pub continued_by_tracer: bool,
    /// The arriving traceparent is valid and its trace is the one going on (or nothing goes
    /// on and it is left as it is).
    pub trace_goes_on: bool,
    /// A valid traceparent of the trace going on arrived and goes on byte for byte. W3C
    /// ("Mutating the traceparent Field"): then `tracestate` MUST NOT be modified either
    /// (an invalid one may still be discarded: processing model, step 3).
    pub unchanged: bool,
    /// tracejoin made the sampling decision and writes the traceparent: the `ot=th:` to
    /// write with it (`Some(None)`: erase the client's).
    pub th: Option<Option<&'a str>>,
}

/// OpenTelemetry's `ot` member of the tracestate that belongs to the trace going on.
#[derive(Clone, Copy, Debug, Default)]
pub struct OtOfTrace<'a> {
    pub value: Option<&'a [u8]>,
    pub state: OtState,
}

/// The arriving tracestate, parsed once per request for both [`ot_of_trace`] and [`op`].
#[derive(Debug)]
pub struct Parsed<'a> {
    pub state: TraceState,
    /// The `ot` member's value (see [`tracestate::parse_with_value`]).
    pub ot: Option<&'a [u8]>,
}

/// Parses the tracestate that arrived, when a valid traceparent did: the only case either
/// step reads it (without one it is dropped unread). `None` also when no tracestate came or
/// it is too long for [`Carrier::tracestate_parts`].
pub fn parse<'a>(carrier: &Carrier<'a>, arrived: Option<&SpanContext>) -> Option<Parsed<'a>> {
    let parts = carrier.tracestate_parts().filter(|_| arrived.is_some())?;
    let (state, ot) = tracestate::parse_with_value(parts, sampling::OT_KEY);
    Some(Parsed { state, ot })
}

/// The `ot` member, when a valid tracestate arrived with a valid traceparent of the trace
/// the winner carries on (another trace's randomness or threshold says nothing of this one).
pub fn ot_of_trace<'a>(
    parsed: Option<&Parsed<'a>>,
    arrived: Option<&SpanContext>,
    winner: Option<&SpanContext>,
) -> OtOfTrace<'a> {
    let same_trace = matches!((arrived, winner), (Some(a), Some(w)) if a.trace_id == w.trace_id);
    let Some(parsed) = parsed.filter(|_| same_trace) else {
        return OtOfTrace::default();
    };
    // An invalid or empty tracestate gives no value (`parse_with_value`).
    let value = parsed.ot;
    OtOfTrace {
        value,
        state: value.map(sampling::parse_ot).unwrap_or_default(),
    }
}

/// The tracestate operation, and whether an invalid tracestate arrived. `parsed` is the
/// arriving tracestate's [`parse`] (its state), `ot` the `ot` member's value of the
/// tracestate of the trace going on.
pub fn op(
    carrier: &Carrier<'_>,
    parsed: Option<TraceState>,
    restart: Option<String>,
    fate: &TraceparentFate<'_>,
    ot: Option<&[u8]>,
) -> (Op, bool) {
    // A threshold goes only with a traceparent tracejoin writes.
    let th = fate.th.filter(|_| fate.written);
    let fresh = || match th {
        Some(Some(t)) => Op::SetText(ot_member(t)),
        _ => Op::Remove,
    };
    if let Some(value) = restart {
        // The correlation entry travels with the new traceparent, never alone.
        let op = if fate.written {
            Op::SetText(match th {
                Some(Some(t)) => tracestate::with_member(Some(&value), "ot", &th_sub(t)),
                _ => value,
            })
        } else if carrier.is_present(Header::Tracestate) {
            Op::Remove
        } else {
            Op::Keep
        };
        return (op, false);
    }
    if !carrier.is_present(Header::Tracestate) {
        return (
            match th {
                Some(Some(t)) => Op::SetText(ot_member(t)),
                _ => Op::Keep,
            },
            false,
        );
    }
    // Envoy's OpenTelemetry tracer continues a valid traceparent with its tracestate after
    // a listener filter; with no valid traceparent it does not trace, so the rules below
    // (drop it) apply.
    if fate.continued_by_tracer {
        return (Op::Keep, false);
    }
    // Whoever writes the traceparent next (tracejoin, Envoy's tracer, or nobody when it is
    // left as is), the tracestate goes on only with its own trace.
    if fate.removed || !fate.trace_goes_on {
        return (if fate.removed { Op::Remove } else { fresh() }, false);
    }
    // Both `unchanged` and `trace_goes_on` mean a valid traceparent arrived: `parsed` is
    // what parsing `tracestate_parts` gives.
    if fate.unchanged {
        // Forwarded as it arrived (padding, empty members, several headers, past 512
        // characters): the spec allows no other mutation while traceparent has none.
        // One exception: a tracestate with no member at all, which the spec asks not to
        // send ("SHOULD avoid sending them"), goes; dropping it loses no member.
        // And where the value is past the 512 characters tracejoin propagates (the limit the
        // spec asks to document; truncated by its rule), past the grammar's 32 list members,
        // or holds a tab (which apps' parsers need not take as whitespace), it goes in
        // canonical form: such a client's header never reaches the app as it came. So does
        // one with a repeated key (item 5: the later members are discarded, which W3C allows
        // a vendor): a reader that keeps the last one would otherwise see another member.
        return match parsed {
            Some(TraceState::Invalid) | None => (Op::Remove, true),
            Some(TraceState::Empty) => (empty_op(carrier), false),
            Some(TraceState::TooLong) => (Op::Remove, false),
            Some(TraceState::Rewritten(s))
                if !forwardable(carrier) || drops_members(carrier, &s) =>
            {
                (Op::SetText(s), false)
            }
            Some(_) => (Op::Keep, false),
        };
    }
    let canonical = match parsed {
        Some(TraceState::Canonical) => match carrier.get(Header::Tracestate) {
            Slot::One(v) => Some(std::str::from_utf8(v).unwrap_or_default().to_owned()),
            _ => None,
        },
        Some(TraceState::Rewritten(s)) => Some(s),
        // The spec asks not to send an empty tracestate.
        Some(TraceState::Empty) => {
            return match th {
                Some(Some(_)) => (fresh(), false),
                _ => (empty_op(carrier), false),
            };
        }
        Some(TraceState::TooLong) => return (fresh(), false),
        Some(TraceState::Invalid) | None => return (fresh(), true),
    };
    let Some(canonical) = canonical else {
        return (Op::Remove, true);
    };
    let rewritten = match th {
        // OpenTelemetry: the stage that made the decision re-encodes `th`, or erases it when
        // it did not sample; the rest of `ot` (an `rv`) goes on.
        Some(t) => match sampling::with_th(ot, t) {
            // No `th` came and none goes: `ot` is not modified and stays where it is.
            Some(v) if Some(v.as_bytes()) == ot => canonical,
            Some(v) => tracestate::with_member(Some(&canonical), "ot", &v),
            None => without_member(&canonical, "ot"),
        },
        None => canonical,
    };
    match carrier.get(Header::Tracestate) {
        Slot::One(v) if v == rewritten.as_bytes() => (Op::Keep, false),
        _ if rewritten.is_empty() => (Op::Remove, false),
        _ => (Op::SetText(rewritten), false),
    }
}

/// Whether the tracestate headers may go on as they came: combined (RFC 9110, with the
/// commas that join them) within 512 characters and the grammar's 32 list members (empty
/// ones count there), and without a tab.
fn forwardable(carrier: &Carrier<'_>) -> bool {
    let Some(parts) = carrier.tracestate_parts() else {
        return false;
    };
    let len = parts.iter().map(|p| p.len()).sum::<usize>() + parts.len().saturating_sub(1);
    let entries = parts
        .iter()
        .map(|p| p.iter().filter(|b| **b == b',').count() + 1)
        .sum::<usize>();
    len <= tracestate::TRACESTATE_MAX_LEN
        && entries <= tracestate::TRACESTATE_MAX_MEMBERS
        && parts.iter().all(|p| !p.contains(&b'\t'))
}

/// Whether the canonical form `canonical` holds fewer members than the headers that came
/// (a repeated key's later members dropped); empty list members do not count.
fn drops_members(carrier: &Carrier<'_>, canonical: &str) -> bool {
    let Some(parts) = carrier.tracestate_parts() else {
        return false;
    };
    let arrived = parts
        .iter()
        .flat_map(|p| p.split(|b| *b == b','))
        .filter(|m| m.iter().any(|b| *b != b' ' && *b != b'\t'))
        .count();
    let kept = canonical.split(',').filter(|m| !m.is_empty()).count();
    kept < arrived
}

/// A single empty header (what Envoy's OpenTelemetry tracer injects) is left alone rather
/// than paid a host call for; padding or several empty headers are removed.
fn empty_op(carrier: &Carrier<'_>) -> Op {
    match carrier.get(Header::Tracestate) {
        Slot::One([]) => Op::Keep,
        _ => Op::Remove,
    }
}

fn th_sub(th: &str) -> String {
    let mut s = String::with_capacity(3 + th.len());
    s.push_str("th:");
    s.push_str(th);
    s
}

fn ot_member(th: &str) -> String {
    let mut s = String::with_capacity(6 + th.len());
    s.push_str("ot=th:");
    s.push_str(th);
    s
}

/// A canonical tracestate without the member `key`, the others in order.
fn without_member(canonical: &str, key: &str) -> String {
    let mut out = String::with_capacity(canonical.len());
    for m in canonical.split(',') {
        if m.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with('='))
        {
            continue;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(m);
    }
    out
}
