//! The policy: from the trace headers of one request and the configuration, decide which
//! context the request carries on and what to write. Pure: no host access, no clock.
//!
//! [`decide`] runs four named steps over what the codecs read:
//! 1. [`choose`]: which context wins ([`tracer`] models what Envoy's tracer reads and writes);
//! 2. [`trust`]: what `trust` does to a client's context, and the sampling decision;
//! 3. [`write`]: which formats get the context, and the operation on each header;
//! 4. [`tracestate`]: whether tracestate goes on with its traceparent.

mod carry;
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
use crate::config::{Config, Position, Tracer, Trust};
use crate::context::SpanContext;
use crate::ids::IdGenerator;

/// Decides what one request carries on and how to write it (see [`decide_into`], which
/// spares the per-request move of the plan).
pub fn decide(config: &Config, carrier: &Carrier<'_>, ids: &mut IdGenerator) -> Plan {
    let mut plan = Plan::default();
    decide_into(&mut plan, config, carrier, ids);
    plan
}

/// [`decide`] into the caller's `plan`, every field of which it overwrites.
pub fn decide_into(plan: &mut Plan, config: &Config, carrier: &Carrier<'_>, ids: &mut IdGenerator) {
    let reads = codec::extract_all(carrier);
    let view = tracer::view_for(config.tracer, carrier, &reads);
    let mut choice = choose::choose(config, &reads, &view, ids);
    let arrived = reads[Format::TraceContext].context().copied();
    // Parsed once: `ot_of_trace` and `op` both read it (parsing may allocate).
    let parsed = tracestate::parse(carrier, arrived.as_ref());
    let ot = tracestate::ot_of_trace(parsed.as_ref(), arrived.as_ref(), choice.winner.as_ref());
    let trusted = trust::apply(config, &mut choice, ids, ot.state.rv, carrier.request_id);
    let th = trusted
        .decided
        .map(|sampled| if sampled { config.sampler.th() } else { None });
    if renews_parent_id(config, &choice, arrived.as_ref(), &ot, th)
        && let Some(w) = choice.winner.as_mut()
    {
        w.parent_id = Some(w.span_id);
        w.span_id = ids.span_id();
    }
    let targets = write::targets(config, &reads, &view, &choice);
    let winner = choice.winner.as_ref();
    let ops = &mut plan.ops;
    write::ops(ops, carrier, &reads, winner, &targets, config.trust);

    let trace_goes_on = match (arrived, winner) {
        (Some(tp), Some(w)) => tp.trace_id == w.trace_id,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let fate = tracestate::TraceparentFate {
        written: targets.write[Format::TraceContext],
        removed: ops[Header::Traceparent] == Op::Remove,
        continued_by_tracer: config.position == Position::Downstream
            && tracer::writes_tracestate(config.tracer, &view),
        trace_goes_on,
        unchanged: arrived.is_some() && trace_goes_on && ops[Header::Traceparent] == Op::Keep,
        th: th.filter(|_| matches!(ops[Header::Traceparent], Op::Set(_))),
    };
    let (tracestate_op, invalid_tracestate) = tracestate::op(
        carrier,
        parsed.map(|p| p.state),
        trusted.restart_tracestate,
        &fate,
        ot.value,
    );
    ops[Header::Tracestate] = tracestate_op;
    plan.context = choice.winner;
    plan.outcome = Outcome {
        source: choice.source,
        conflict: choice.conflict,
        invalid: reads.map(|_, r| *r == Read::Invalid),
        invalid_tracestate,
        bridged: targets.bridged,
        continued_over_tracer: choice.continued_over_tracer,
        restarted: trusted.restarted,
        decided: trusted.decided,
    };
}

/// W3C: "The `parent-id` field MUST be set to a new value with the `sampled` flag update",
/// and a `tracestate` must not change while its `traceparent` does not. So when `resample`
/// would send the client's own span id with another sampled flag, or has to re-encode or
/// erase a client's `ot=th:` (OpenTelemetry: a stage that changes the threshold must say
/// so), the context goes on under a new span id, the client's as its parent. Not where
/// Envoy's tracer reads the rewritten traceparent next (network, OpenTelemetry or Zipkin
/// W3C): its own span then gives the traceparent a new parent-id anyway.
fn renews_parent_id(
    config: &Config,
    choice: &choose::Choice,
    arrived: Option<&SpanContext>,
    ot: &tracestate::OtOfTrace<'_>,
    th: Option<Option<&str>>,
) -> bool {
    let (Some(w), Some(tp)) = (choice.winner.as_ref(), arrived) else {
        return false;
    };
    let tracer_rewrites = config.position == Position::Network
        && matches!(config.tracer, Tracer::OpenTelemetry | Tracer::ZipkinW3c);
    if config.trust != Trust::Resample
        || !choice.client_context
        || tracer_rewrites
        || w.trace_id != tp.trace_id
        || w.span_id != tp.span_id
    {
        return false;
    }
    let flipped = w.sampling.is_sampled() != tp.sampling.is_sampled();
    let wanted = th.flatten().map(|_| config.sampler.threshold());
    let th_wrong = ot.state.th.is_some() && ot.state.th != wanted;
    flipped || th_wrong
}

#[cfg(test)]
mod tests;
