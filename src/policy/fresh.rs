//! What tracejoin makes itself: a new context, and a sampling decision.

use crate::config::Config;
use crate::context::{Sampling, SpanContext};
use crate::ids::IdGenerator;

/// The ratio sampler's decision for this trace (the same at every hop that decides).
pub fn decide_sampling(config: &Config, ctx: &SpanContext) -> Sampling {
    if config.sampler.sample(&ctx.trace_id) {
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
        _ => decide_sampling(config, &ctx),
    };
    ctx
}
