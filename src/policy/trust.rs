//! Step 2: what `trust` does to a client's context, and the sampling decision where none
//! was made.

use super::choose::Choice;
use super::plan::Source;
use super::{fresh, tracer};
use crate::codec::{HeaderValue, tracestate};
use crate::config::{Config, Position, Tracer, Trust};
use crate::ids::IdGenerator;

/// The tracestate key under which a restarted trace keeps the client's trace id.
pub const RESTART_TRACESTATE_KEY: &str = "tracejoin";

/// What applying trust did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trusted {
    /// `restart`: the tracestate the new trace starts with (the client's trace id).
    pub restart_tracestate: Option<String>,
    pub restarted: bool,
    /// tracejoin made the sampling decision: the decision.
    pub decided: Option<bool>,
}

/// `continue` keeps the client's context; `restart` replaces it with a generated one and
/// keeps the client's trace id in tracestate (in front of a tracer: removes it, and the
/// tracer starts the trace); `resample` keeps the ids and decides
/// sampling anew. A context without a decision (deferred B3) gets the sampler's. `rv` is the
/// explicit randomness (`ot=rv:`) of the trace the winner carries on, when it has one.
pub fn apply(
    config: &Config,
    choice: &mut Choice,
    ids: &mut IdGenerator,
    rv: Option<u64>,
    request_id: Option<&[u8]>,
) -> Trusted {
    let mut trusted = Trusted::default();
    let Some(ctx) = choice.winner.as_mut() else {
        return trusted;
    };
    if choice.client_context && choice.source != Source::Generated {
        match config.trust {
            Trust::Continue => {}
            // In front of a tracer, a new trace is the tracer's to start: it then makes a
            // root span, not a child of an id no span has. The client's id is not carried
            // (a tracestate without its traceparent is discarded by the next W3C reader).
            Trust::Restart
                if config.position == Position::Network && config.tracer != Tracer::None =>
            {
                choice.winner = None;
                choice.source = Source::LeftToTracer;
                trusted.restarted = true;
                return trusted;
            }
            Trust::Restart => {
                let client_trace = ctx.trace_id;
                *ctx = fresh::generate(config, ids, None);
                let mut hex = HeaderValue::new();
                hex.push_hex(&client_trace.0);
                trusted.restart_tracestate = Some(tracestate::with_member(
                    None,
                    RESTART_TRACESTATE_KEY,
                    hex.as_str(),
                ));
                trusted.restarted = true;
                choice.source = Source::Generated;
            }
            Trust::Resample => {
                ctx.sampling = fresh::decide_sampling(config, ctx, rv);
                trusted.decided = Some(ctx.sampling.is_sampled());
            }
        }
    }
    // Downstream, Envoy's Zipkin tracer decides a B3 context that came without a decision
    // itself, by the HCM's decision: that one, not a second one of tracejoin's, goes into
    // the formats tracejoin writes (one request, one decision).
    if !ctx.sampling.is_decided()
        && choice.tracer_decides
        && let Some(s) = tracer::hcm_decision(request_id)
    {
        ctx.sampling = s;
        return trusted;
    }
    if choice.source == Source::Generated || !ctx.sampling.is_decided() {
        if !ctx.sampling.is_decided() {
            ctx.sampling = fresh::decide_sampling(config, ctx, rv);
        }
        trusted.decided = Some(ctx.sampling.is_sampled());
    }
    trusted
}
