//! Step 1: which context the request carries on.

use super::plan::Source;
use super::{fresh, tracer};
use crate::codec::{Format, PerFormat, Read};
use crate::config::{Config, Position, Tracer, Trust};
use crate::context::{Sampling, SpanContext};
use crate::ids::IdGenerator;

/// The chosen context and how it was found.
#[derive(Clone, Copy, Debug)]
pub struct Choice {
    pub winner: Option<SpanContext>,
    pub source: Source,
    /// Valid contexts with different trace ids arrived together.
    pub conflict: bool,
    /// Upstream: Envoy's tracer had started a fresh trace; the request's own context won.
    pub continued_over_tracer: bool,
    /// Downstream: Envoy's tracer could not read the chosen context (the bridge's cue).
    pub tracer_missed: bool,
    /// Downstream: Envoy's Zipkin tracer read the winner and makes the sampling decision for
    /// it when it has none.
    pub tracer_decides: bool,
    /// The winner is what the client (or the previous hop) sent: `trust` applies to it.
    pub client_context: bool,
}

/// Downstream, the context Envoy's tracer read wins (the app must not see a second trace),
/// else the first valid format in `extract` order; in front of the tracer (network), the
/// same order, so that the tracer goes on with what it would have read. Upstream, Envoy's injected context wins
/// unless it is a fresh trace started over one it could not read. With nothing usable,
/// tracejoin generates a context where no tracer will (tracer none, or upstream).
pub fn choose(
    config: &Config,
    reads: &PerFormat<Read>,
    view: &PerFormat<Read>,
    ids: &mut IdGenerator,
) -> Choice {
    let tracer = config.tracer;
    let reads_of_tracer = tracer::reads(tracer);
    let upstream = config.position == Position::Upstream;
    let network = config.position == Position::Network;
    let injected = if upstream {
        tracer::injected(tracer, config.envoy, reads)
    } else {
        None
    };
    // The formats whose current values are the client's (or the previous hop's); in the
    // upstream position Envoy has already overwritten the ones its tracer writes.
    let client_owned =
        |f: Format| !(upstream && injected.is_some() && reads_of_tracer.contains(&f));
    let mut choice = Choice {
        winner: None,
        source: Source::LeftToTracer,
        conflict: has_conflict(reads, &config.extract, client_owned),
        continued_over_tracer: false,
        tracer_missed: false,
        tracer_decides: false,
        client_context: true,
    };

    if let Some((inj, inj_format)) = injected {
        over_injected(&mut choice, config, reads, inj, inj_format);
    } else if let Some((ctx, f)) = (!upstream)
        // Downstream the tracer has read what it could; in front of it (network), what it
        // reads is tracejoin's to repair, so its formats count as tracejoin reads them.
        .then(|| {
            first_context(if network { reads } else { view }, reads_of_tracer, |_| {
                false
            })
        })
        .flatten()
        .or_else(|| first_context(reads, &config.extract, |_| false))
    {
        choice.winner = Some(ctx);
        choice.source = Source::Extracted(f);
        let tracer_read_it = reads_of_tracer.contains(&f) && matches!(view[f], Read::Context(_));
        choice.tracer_missed =
            config.position == Position::Downstream && tracer != Tracer::None && !tracer_read_it;
        choice.tracer_decides = config.position == Position::Downstream
            && matches!(tracer, Tracer::Zipkin | Tracer::ZipkinW3c)
            && tracer_read_it;
    } else if tracer == Tracer::None || upstream {
        let hint = match config.trust {
            Trust::Continue => first_sampling_hint(reads, &config.extract),
            Trust::Restart | Trust::Resample => None,
        };
        choice.winner = Some(fresh::generate(config, ids, hint));
        choice.source = Source::Generated;
        choice.client_context = false;
    }

    // B3 and Jaeger cannot say whether a trace id is random; the traceparent of the same
    // trace can (W3C Level 2), and rewriting would otherwise lose it.
    if let (Some(w), Read::Context(tp)) = (choice.winner.as_mut(), reads[Format::TraceContext])
        && tp.trace_id == w.trace_id
    {
        w.random_trace_id |= tp.random_trace_id;
    }
    choice
}

/// Upstream, Envoy injected `inj`: it wins unless it is a fresh trace and another format
/// (one the tracer does not read) carries the context it could not read.
fn over_injected(
    choice: &mut Choice,
    config: &Config,
    reads: &PerFormat<Read>,
    inj: SpanContext,
    inj_format: Format,
) {
    let reads_of_tracer = tracer::reads(config.tracer);
    let other = first_context(reads, &config.extract, |f| {
        reads_of_tracer.contains(&f)
            || matches!(reads[f], Read::Context(c) if c.trace_id == inj.trace_id)
    });
    // Zipkin's fresh root span has no parent; OpenTelemetry's traceparent cannot tell,
    // so a differing context the tracer does not read is taken as what it missed.
    let fresh = match config.tracer {
        Tracer::OpenTelemetry => other.is_some(),
        Tracer::Datadog => tracer::datadog_root(&inj),
        _ => inj.parent_id.is_none(),
    };
    // A continued (not fresh) tracer context that differs from another format means the
    // client itself sent two traces.
    choice.conflict |= other.is_some() && !fresh;
    match other {
        Some((ctx, f)) if fresh => {
            choice.winner = Some(ctx);
            choice.source = Source::Extracted(f);
            choice.continued_over_tracer = true;
        }
        _ => {
            choice.winner = Some(inj);
            choice.source = Source::Injected(inj_format);
            choice.client_context = !fresh;
        }
    }
}

fn first_context(
    reads: &PerFormat<Read>,
    order: &[Format],
    skip: impl Fn(Format) -> bool,
) -> Option<(SpanContext, Format)> {
    order
        .iter()
        .copied()
        .filter(|f| !skip(*f))
        .find_map(|f| reads[f].context().map(|c| (*c, f)))
}

fn first_sampling_hint(reads: &PerFormat<Read>, order: &[Format]) -> Option<Sampling> {
    order.iter().find_map(|f| match reads[*f] {
        Read::SamplingOnly(s) => Some(s),
        _ => None,
    })
}

fn has_conflict(
    reads: &PerFormat<Read>,
    order: &[Format],
    include: impl Fn(Format) -> bool,
) -> bool {
    let mut first = None;
    for f in order.iter().copied().filter(|f| include(*f)) {
        if let Read::Context(c) = reads[f] {
            match first {
                None => first = Some(c.trace_id),
                Some(t) if t != c.trace_id => return true,
                Some(_) => {}
            }
        }
    }
    false
}
