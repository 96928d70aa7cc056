//! Step 4: tracestate, which belongs to the traceparent it came with (W3C processing
//! model): kept (and repaired) while that traceparent is valid and its trace goes on,
//! dropped otherwise, replaced on restart.

use super::plan::Op;
use crate::codec::tracestate::{self, TraceState};
use crate::codec::{Carrier, Header, Slot};

/// What happens to the traceparent the tracestate arrived with.
#[derive(Clone, Copy, Debug)]
pub struct TraceparentFate {
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
}

/// The tracestate operation, and whether an invalid tracestate arrived.
pub fn op(carrier: &Carrier<'_>, restart: Option<String>, fate: &TraceparentFate) -> (Op, bool) {
    if let Some(value) = restart {
        // The correlation entry travels with the new traceparent, never alone.
        let op = if fate.written {
            Op::SetText(value)
        } else if carrier.is_present(Header::Tracestate) {
            Op::Remove
        } else {
            Op::Keep
        };
        return (op, false);
    }
    if !carrier.is_present(Header::Tracestate) {
        return (Op::Keep, false);
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
        return (Op::Remove, false);
    }
    match carrier.tracestate_parts().map(tracestate::parse) {
        Some(TraceState::Canonical) => (Op::Keep, false),
        // The spec asks not to send an empty tracestate; a single empty header (what Envoy's
        // OpenTelemetry tracer injects) is left alone rather than paid a host call for.
        Some(TraceState::Empty) => match carrier.get(Header::Tracestate) {
            Slot::One([]) => (Op::Keep, false),
            _ => (Op::Remove, false),
        },
        Some(TraceState::Rewritten(s)) => (Op::SetText(s), false),
        Some(TraceState::TooLong) => (Op::Remove, false),
        Some(TraceState::Invalid) | None => (Op::Remove, true),
    }
}
