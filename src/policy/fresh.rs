//! What tracejoin makes itself: a new context, and a sampling decision.

use crate::config::Config;
use crate::context::{Sampling, SpanContext};
use crate::ids::IdGenerator;

/// The ratio sampler's decision for this trace (the same at every hop that decides): over the
/// explicit randomness `rv` when the trace's tracestate carries one (`ot=rv:`), else over
/// the trace id's 56 rightmost bits.
pub fn decide_sampling(config: &Config, ctx: &SpanContext, rv: Option<u64>) -> Sampling {
    let keep = match rv {
        Some(rv) => config.sampler.sample_randomness(rv),
        None => config.sampler.sample(&ctx.trace_id),
    };
    if keep {
        Sampling::Sampled
    } else {
        Sampling::NotSampled
    }
}

/// A new root context: random ids (the W3C random flag set); the sampling decision is the
/// hint when one is given and decided, else the sampler's.
pub fn generate(config: &Config, ids: &mut IdGenerator, hint: Option<Sampling>) -> SpanContext {
    let mut ctx = SpanContext::new(ids.trace_id(), ids.span_id(), Sampling::Deferred);
    ctx.random_trace_id = true;
    ctx.sampling = match hint {
        Some(s) if s.is_decided() => s,
        // A new trace id: a randomness value of another trace does not apply.
        _ => decide_sampling(config, &ctx, None),
    };
    ctx
}
