//! The policy: from the trace headers of one request and the configuration, decide which
//! context the request carries on and what to write. Pure: no host access, no clock.
//!
//! [`decide`] runs four named steps over what the codecs read:
//! 1. [`choose`]: which context wins ([`tracer`] models what Envoy's tracer reads and writes);
//! 2. [`trust`]: what `trust` does to a client's context, and the sampling decision;
//! 3. [`write`]: which formats get the context, and the operation on each header;
//! 4. [`tracestate`]: whether tracestate goes on with its traceparent.

pub mod choose;
mod fresh;
pub mod plan;
pub mod tracer;
pub mod tracestate;
pub mod trust;
pub mod write;

pub use plan::{Op, Outcome, Plan, Source, strip};
pub use trust::RESTART_TRACESTATE_KEY;

use crate::codec::{self, Carrier, Format, Header, Read};
use crate::config::{Config, Position, Tracer};
use crate::ids::IdGenerator;

/// Decides what one request carries on and how to write it.
pub fn decide(config: &Config, carrier: &Carrier<'_>, ids: &mut IdGenerator) -> Plan {
    let reads = codec::extract_all(carrier);
    let view = tracer::view(carrier, &reads);
    let mut choice = choose::choose(config, &reads, &view, ids);
    let trusted = trust::apply(config, &mut choice, ids);
    let targets = write::targets(config, &reads, &view, &choice);
    let winner = choice.winner.as_ref();
    let mut ops = write::ops(carrier, &reads, winner, &targets, config.trust);

    let arrived = reads[Format::TraceContext].context();
    let fate = tracestate::TraceparentFate {
        written: targets.write[Format::TraceContext],
        removed: ops[Header::Traceparent] == Op::Remove,
        continued_by_tracer: config.position == Position::Downstream
            && config.tracer == Tracer::OpenTelemetry
            && matches!(view[Format::TraceContext], Read::Context(_)),
        trace_goes_on: match (arrived, winner) {
            (Some(tp), Some(w)) => tp.trace_id == w.trace_id,
            (Some(_), None) => true,
            (None, _) => false,
        },
    };
    let (tracestate_op, invalid_tracestate) =
        tracestate::op(carrier, trusted.restart_tracestate, &fate);
    ops[Header::Tracestate] = tracestate_op;

    Plan {
        ops,
        context: choice.winner,
        outcome: Outcome {
            source: choice.source,
            conflict: choice.conflict,
            invalid: reads.map(|_, r| *r == Read::Invalid),
            invalid_tracestate,
            bridged: targets.bridged,
            continued_over_tracer: choice.continued_over_tracer,
            restarted: trusted.restarted,
            decided: trusted.decided,
        },
    }
}

#[cfg(test)]
mod tests;
