//! The policy: from the trace headers of one request and the configuration, decide which
//! context the request carries on and what to write. Pure: no host access, no clock.
//!
//! Data flows one way: [`Carrier`] (what arrived) -> per-format reads -> the chosen
//! context -> a [`Plan`] of header operations and an [`Outcome`] for the counters.

use crate::codec::tracecontext::{self, TraceState};
use crate::codec::{Carrier, Format, Header, HeaderValue, Slot, b3, jaeger};
use crate::config::{Config, Position, Tracer, Trust};
use crate::context::{Sampling, SpanContext, trim_ows};
use crate::ids::IdGenerator;

/// The tracestate key under which a restarted trace keeps the client's trace id.
pub const RESTART_TRACESTATE_KEY: &str = "tracejoin";

/// What one format of the request holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    Absent,
    Invalid,
    Context(SpanContext),
    /// A sampling decision without ids (`b3: 0`, a lone `x-b3-sampled`).
    SamplingOnly(Sampling),
}

/// Reads one format from the request.
pub fn read(carrier: &Carrier<'_>, format: Format) -> Read {
    let one = |h: Header| -> Result<Option<&[u8]>, ()> {
        match carrier.get(h) {
            Slot::Absent => Ok(None),
            Slot::One(v) => Ok(Some(v)),
            Slot::Repeated => Err(()),
        }
    };
    let from_b3 = |parsed: Option<b3::B3>| match parsed {
        Some(b3::B3::Context(c)) => Read::Context(c),
        Some(b3::B3::SamplingOnly(s)) => Read::SamplingOnly(s),
        None => Read::Invalid,
    };
    match format {
        Format::TraceContext => match one(Header::Traceparent) {
            Ok(None) => Read::Absent,
            Ok(Some(v)) => tracecontext::parse_traceparent(v).map_or(Read::Invalid, Read::Context),
            // The spec: more than one traceparent makes the context invalid.
            Err(()) => Read::Invalid,
        },
        Format::B3 => match one(Header::B3) {
            Ok(None) => Read::Absent,
            Ok(Some(v)) => from_b3(b3::parse_single(v)),
            Err(()) => Read::Invalid,
        },
        Format::B3Multi => {
            let headers = (|| -> Result<b3::MultiHeaders<'_>, ()> {
                Ok(b3::MultiHeaders {
                    trace_id: one(Header::XB3TraceId)?,
                    span_id: one(Header::XB3SpanId)?,
                    parent_span_id: one(Header::XB3ParentSpanId)?,
                    sampled: one(Header::XB3Sampled)?,
                    flags: one(Header::XB3Flags)?,
                })
            })();
            match headers {
                Ok(h) if !h.any_present() => Read::Absent,
                Ok(h) => from_b3(b3::parse_multi(&h)),
                Err(()) => Read::Invalid,
            }
        }
        Format::Jaeger => match one(Header::UberTraceId) {
            Ok(None) => Read::Absent,
            Ok(Some(v)) => jaeger::parse(v).map_or(Read::Invalid, Read::Context),
            Err(()) => Read::Invalid,
        },
    }
}

/// The formats Envoy's tracer extracts from, in its order.
pub fn tracer_reads(tracer: Tracer) -> &'static [Format] {
    match tracer {
        Tracer::None => &[],
        Tracer::Zipkin => &[Format::B3, Format::B3Multi],
        Tracer::ZipkinW3c => &[Format::B3, Format::B3Multi, Format::TraceContext],
        Tracer::OpenTelemetry => &[Format::TraceContext],
    }
}

/// The request as Envoy's tracer reads it: Envoy 1.40 takes a traceparent of exactly 55
/// characters only, so a valid future-version one with more fields is invalid to it
/// (measured: the OpenTelemetry tracer then does not trace, Zipkin starts a fresh trace).
pub fn tracer_view(carrier: &Carrier<'_>, reads: &[Read; 4]) -> [Read; 4] {
    let mut view = *reads;
    if let (Slot::One(v), Some(tc)) = (
        carrier.get(Header::Traceparent),
        view.get_mut(Format::TraceContext.index()),
    ) && matches!(tc, Read::Context(_))
        && trim_ows(v).len() != tracecontext::VERSION_00_LEN
    {
        *tc = Read::Invalid;
    }
    view
}

/// The formats Envoy's tracer will write into this request, from [`tracer_view`] (measured
/// with Envoy 1.40: Zipkin answers a `b3` single header with `b3` alone, anything else with
/// `x-b3-*`). With OpenTelemetry, a traceparent invalid in the view is left to tracejoin:
/// Envoy does not trace on one it cannot read (zero ids, future versions with more fields),
/// and where it does continue a lenient one (uppercase, version `ff`) its write comes later
/// and wins anyway.
pub fn tracer_writes(tracer: Tracer, view: &[Read; 4]) -> [bool; 4] {
    let mut owned = [false; 4];
    let mut own = |f: Format| {
        if let Some(slot) = owned.get_mut(f.index()) {
            *slot = true;
        }
    };
    let b3_single_in = matches!(
        view.get(Format::B3.index()),
        Some(Read::Context(_) | Read::SamplingOnly(_))
    );
    match tracer {
        Tracer::None => {}
        Tracer::Zipkin | Tracer::ZipkinW3c => {
            own(if b3_single_in {
                Format::B3
            } else {
                Format::B3Multi
            });
            if tracer == Tracer::ZipkinW3c {
                own(Format::TraceContext);
            }
        }
        Tracer::OpenTelemetry => {
            if view.get(Format::TraceContext.index()) != Some(&Read::Invalid) {
                own(Format::TraceContext);
            }
        }
    }
    owned
}

/// Where the chosen context came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Read from the request as it arrived, in this format.
    Extracted(Format),
    /// Injected by Envoy's tracer for its current span (upstream position).
    Injected(Format),
    /// Generated by tracejoin (no usable context, no tracer).
    Generated,
    /// Nothing usable arrived and Envoy's tracer will start the trace after this filter
    /// (downstream position): there is nothing to write.
    LeftToTracer,
}

/// What happened, for counters and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub source: Source,
    /// Valid contexts with different trace ids arrived together.
    pub conflict: bool,
    /// Per format (by [`Format::index`]): an invalid value arrived.
    pub invalid: [bool; 4],
    pub invalid_tracestate: bool,
    /// A `b3` header was added so that the next hop's Zipkin tracer continues a context
    /// this hop's tracer could not read.
    pub bridged: bool,
    /// Upstream: Envoy's tracer had started a fresh trace; the request's own context was
    /// carried on instead.
    pub continued_over_tracer: bool,
    /// `trust: restart` replaced the client's trace.
    pub restarted: bool,
    /// Set when tracejoin made the sampling decision itself: the decision.
    pub decided: Option<bool>,
}

/// One operation on a request header.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Op {
    #[default]
    Keep,
    Set(HeaderValue),
    /// A longer value (only tracestate).
    SetText(String),
    Remove,
}

/// Everything the filter does to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// By [`Header::index`].
    pub ops: [Op; Header::COUNT],
    /// The context the request carries on, when known at this point.
    pub context: Option<SpanContext>,
    pub outcome: Outcome,
}

impl Plan {
    pub fn op(&self, header: Header) -> &Op {
        self.ops.get(header.index()).unwrap_or(&Op::Keep)
    }
}

fn first_context(
    reads: &[Read; 4],
    order: &[Format],
    skip: impl Fn(Format) -> bool,
) -> Option<(SpanContext, Format)> {
    order
        .iter()
        .copied()
        .filter(|f| !skip(*f))
        .find_map(|f| match reads.get(f.index()) {
            Some(Read::Context(c)) => Some((*c, f)),
            _ => None,
        })
}

fn first_sampling_hint(reads: &[Read; 4], order: &[Format]) -> Option<Sampling> {
    order.iter().find_map(|f| match reads.get(f.index()) {
        Some(Read::SamplingOnly(s)) => Some(*s),
        _ => None,
    })
}

fn decide_sampling(config: &Config, ctx: &SpanContext) -> Sampling {
    if config.sampler.sample(&ctx.trace_id) {
        Sampling::Sampled
    } else {
        Sampling::NotSampled
    }
}

fn generate(config: &Config, ids: &mut IdGenerator, hint: Option<Sampling>) -> SpanContext {
    let mut ctx = SpanContext::new(ids.trace_id(), ids.span_id(), Sampling::Deferred);
    ctx.random_trace_id = true;
    ctx.sampling = match hint {
        Some(s) if s.is_decided() => s,
        _ => decide_sampling(config, &ctx),
    };
    ctx
}

/// Decides what one request carries on and how to write it.
pub fn decide(config: &Config, carrier: &Carrier<'_>, ids: &mut IdGenerator) -> Plan {
    let reads = Format::ALL.map(|f| read(carrier, f));
    let view = tracer_view(carrier, &reads);
    let mut outcome = Outcome {
        source: Source::LeftToTracer,
        conflict: false,
        invalid: reads.map(|r| r == Read::Invalid),
        invalid_tracestate: false,
        bridged: false,
        continued_over_tracer: false,
        restarted: false,
        decided: None,
    };
    let tracer = config.tracer;
    let reads_of_tracer = tracer_reads(tracer);
    let upstream = config.position == Position::Upstream;
    let injected = if upstream {
        injected_context(tracer, &reads)
    } else {
        None
    };

    // The formats whose current values are the client's (or the previous hop's); in the
    // upstream position Envoy has already overwritten the ones its tracer writes.
    let client_owned =
        |f: Format| !(upstream && injected.is_some() && reads_of_tracer.contains(&f));
    outcome.conflict = has_conflict(&reads, &config.extract, client_owned);

    let mut tracer_missed = false;
    let mut client_context = true;
    let mut winner: Option<SpanContext> = None;
    if let Some((inj, inj_format)) = injected {
        let other = first_context(&reads, &config.extract, |f| {
            reads_of_tracer.contains(&f)
                || matches!(reads.get(f.index()), Some(Read::Context(c)) if c.trace_id == inj.trace_id)
        });
        // Zipkin's fresh root span has no parent; OpenTelemetry's traceparent cannot tell,
        // so a differing context the tracer does not read is taken as what it missed.
        let fresh = match tracer {
            Tracer::OpenTelemetry => other.is_some(),
            _ => inj.parent_id.is_none(),
        };
        // A continued (not fresh) tracer context that differs from another format means
        // the client itself sent two traces.
        outcome.conflict |= other.is_some() && !fresh;
        match other {
            Some((ctx, f)) if fresh => {
                winner = Some(ctx);
                outcome.source = Source::Extracted(f);
                outcome.continued_over_tracer = true;
            }
            _ => {
                winner = Some(inj);
                outcome.source = Source::Injected(inj_format);
                client_context = !fresh;
            }
        }
    } else if let Some((ctx, f)) = (!upstream)
        .then(|| first_context(&view, reads_of_tracer, |_| false))
        .flatten()
        .or_else(|| first_context(&reads, &config.extract, |_| false))
    {
        winner = Some(ctx);
        outcome.source = Source::Extracted(f);
        let tracer_read_it =
            reads_of_tracer.contains(&f) && matches!(view.get(f.index()), Some(Read::Context(_)));
        tracer_missed = !upstream && tracer != Tracer::None && !tracer_read_it;
    } else if tracer == Tracer::None || upstream {
        let hint = match config.trust {
            Trust::Continue => first_sampling_hint(&reads, &config.extract),
            Trust::Restart | Trust::Resample => None,
        };
        winner = Some(generate(config, ids, hint));
        outcome.source = Source::Generated;
        client_context = false;
    }

    // B3 and Jaeger cannot say whether a trace id is random; the traceparent of the same
    // trace can (W3C Level 2), and rewriting would otherwise lose it.
    if let (Some(w), Some(Read::Context(tp))) =
        (winner.as_mut(), reads.get(Format::TraceContext.index()))
        && tp.trace_id == w.trace_id
    {
        w.random_trace_id |= tp.random_trace_id;
    }

    let mut restart_tracestate: Option<String> = None;
    if let Some(ctx) = winner.as_mut() {
        if client_context && outcome.source != Source::Generated {
            match config.trust {
                Trust::Continue => {}
                Trust::Restart => {
                    let client_trace = ctx.trace_id;
                    *ctx = generate(config, ids, None);
                    let mut hex = HeaderValue::new();
                    hex.push_hex(&client_trace.0);
                    restart_tracestate = Some(tracecontext::with_member(
                        None,
                        RESTART_TRACESTATE_KEY,
                        hex.as_str(),
                    ));
                    outcome.restarted = true;
                    outcome.source = Source::Generated;
                }
                Trust::Resample => {
                    ctx.sampling = decide_sampling(config, ctx);
                    outcome.decided = Some(ctx.sampling.is_sampled());
                }
            }
        }
        if outcome.source == Source::Generated || !ctx.sampling.is_decided() {
            if !ctx.sampling.is_decided() {
                ctx.sampling = decide_sampling(config, ctx);
            }
            outcome.decided = Some(ctx.sampling.is_sampled());
        }
    }

    let owned = if upstream {
        [false; 4]
    } else {
        tracer_writes(tracer, &view)
    };
    let mut targets = [false; 4];
    for f in &config.propagate {
        if let (Some(t), Some(o)) = (targets.get_mut(f.index()), owned.get(f.index())) {
            *t = !o;
        }
    }
    // Upstream, the app's parent must be exactly this hop's span whatever format the app
    // reads: a format that arrived with a valid context is rewritten too, not only the
    // configured ones (an app on `b3` would otherwise find the previous hop's span there).
    if upstream {
        for f in Format::ALL {
            if let (Some(t), Some(Read::Context(_))) =
                (targets.get_mut(f.index()), reads.get(f.index()))
            {
                *t = true;
            }
        }
    }
    let zipkin_next_hop = matches!(tracer, Tracer::Zipkin | Tracer::ZipkinW3c);
    if tracer_missed
        && config.bridge
        && zipkin_next_hop
        && !owned.get(Format::B3.index()).copied().unwrap_or(true)
    {
        if let Some(t) = targets.get_mut(Format::B3.index()) {
            *t = true;
        }
        outcome.bridged = true;
    }

    let mut ops: [Op; Header::COUNT] = Default::default();
    for f in Format::ALL {
        let is_target = targets.get(f.index()).copied().unwrap_or(false);
        let read = reads.get(f.index()).copied().unwrap_or(Read::Absent);
        let envoy_overwrites = owned.get(f.index()).copied().unwrap_or(false);
        match winner {
            Some(ctx) if is_target => write_format(&mut ops, carrier, f, &ctx),
            _ => {
                // Not written by us: drop what would mislead the next reader. Invalid values
                // always go (Envoy would pass leftovers it does not overwrite); a different
                // trace goes unless Envoy's tracer is about to overwrite it anyway.
                let stale = match (read, winner) {
                    (Read::Invalid, _) => true,
                    // Another trace, or the same trace with another sampling decision (a
                    // client's forced `d` after `resample`, say), misleads its readers.
                    (Read::Context(c), Some(w)) => {
                        (c.trace_id != w.trace_id
                            || c.sampling.is_sampled() != w.sampling.is_sampled())
                            && !envoy_overwrites
                    }
                    // Nothing goes on and Envoy's tracer starts a trace after this filter: a
                    // context it does not overwrite could only be a second trace.
                    (Read::Context(_), None) => !envoy_overwrites,
                    // A lone sampling decision next to a context with ids: B3 readers
                    // prefer the `b3` header and would find no ids in it.
                    (Read::SamplingOnly(_), Some(_)) => !envoy_overwrites,
                    _ => false,
                };
                if stale {
                    remove_format(&mut ops, carrier, f);
                } else if !envoy_overwrites {
                    // What goes on as it arrived goes on in canonical form: a lenient
                    // spelling (uppercase, `%3A`, `x-b3-sampled: true`, a debug bit without
                    // the sampled bit) can read differently to each SDK.
                    // It carries the chosen sampling decision: debug and sampled both read as
                    // sampled above, but a client's `d` must not outlive `resample`.
                    match read {
                        Read::Context(mut c) => {
                            if let Some(w) = winner {
                                c.sampling = w.sampling;
                            }
                            write_format(&mut ops, carrier, f, &c)
                        }
                        Read::SamplingOnly(s) => write_sampling_only(&mut ops, carrier, f, s),
                        Read::Absent | Read::Invalid => {}
                    }
                }
            }
        }
    }
    let tracestate = tracestate_op(
        carrier,
        &reads,
        winner.as_ref(),
        &targets,
        restart_tracestate,
        !upstream
            && tracer == Tracer::OpenTelemetry
            && matches!(
                view.get(Format::TraceContext.index()),
                Some(Read::Context(_))
            ),
        *ops.get(Header::Traceparent.index()).unwrap_or(&Op::Keep) == Op::Remove,
        &mut outcome,
    );
    set_op(&mut ops, Header::Tracestate, tracestate);

    Plan {
        ops,
        context: winner,
        outcome,
    }
}

/// Upstream: the context Envoy's tracer injected for its current span.
fn injected_context(tracer: Tracer, reads: &[Read; 4]) -> Option<(SpanContext, Format)> {
    let ctx_of = |f: Format| match reads.get(f.index()) {
        Some(Read::Context(c)) => Some((*c, f)),
        _ => None,
    };
    match tracer {
        Tracer::None => None,
        Tracer::Zipkin | Tracer::ZipkinW3c => {
            ctx_of(Format::B3).or_else(|| ctx_of(Format::B3Multi))
        }
        Tracer::OpenTelemetry => ctx_of(Format::TraceContext),
    }
}

fn has_conflict(reads: &[Read; 4], order: &[Format], include: impl Fn(Format) -> bool) -> bool {
    let mut first = None;
    for f in order.iter().copied().filter(|f| include(*f)) {
        if let Some(Read::Context(c)) = reads.get(f.index()) {
            match first {
                None => first = Some(c.trace_id),
                Some(t) if t != c.trace_id => return true,
                Some(_) => {}
            }
        }
    }
    false
}

fn set_if_changed(
    ops: &mut [Op; Header::COUNT],
    carrier: &Carrier<'_>,
    header: Header,
    value: Option<HeaderValue>,
) {
    let current = carrier.get(header);
    let op = match (value, current) {
        (Some(v), Slot::One(cur)) if v.as_bytes() == cur => Op::Keep,
        (Some(v), _) => Op::Set(v),
        (None, Slot::Absent) => Op::Keep,
        (None, _) => Op::Remove,
    };
    set_op(ops, header, op);
}

fn set_op(ops: &mut [Op; Header::COUNT], header: Header, op: Op) {
    if let Some(slot) = ops.get_mut(header.index()) {
        *slot = op;
    }
}

fn write_format(
    ops: &mut [Op; Header::COUNT],
    carrier: &Carrier<'_>,
    format: Format,
    ctx: &SpanContext,
) {
    match format {
        Format::TraceContext => set_if_changed(
            ops,
            carrier,
            Header::Traceparent,
            Some(tracecontext::render_traceparent(ctx)),
        ),
        Format::B3 => set_if_changed(ops, carrier, Header::B3, Some(b3::render_single(ctx))),
        Format::B3Multi => {
            let v = b3::render_multi(ctx);
            set_if_changed(ops, carrier, Header::XB3TraceId, Some(v.trace_id));
            set_if_changed(ops, carrier, Header::XB3SpanId, Some(v.span_id));
            set_if_changed(ops, carrier, Header::XB3ParentSpanId, v.parent_span_id);
            set_if_changed(ops, carrier, Header::XB3Sampled, v.sampled);
            set_if_changed(ops, carrier, Header::XB3Flags, v.flags);
        }
        Format::Jaeger => {
            set_if_changed(ops, carrier, Header::UberTraceId, Some(jaeger::render(ctx)))
        }
    }
}

/// A lone sampling decision, canonical: `b3: 0|1|d`, `x-b3-sampled: 0|1` or `x-b3-flags: 1`.
fn write_sampling_only(
    ops: &mut [Op; Header::COUNT],
    carrier: &Carrier<'_>,
    format: Format,
    sampling: Sampling,
) {
    if !sampling.is_decided() {
        return;
    }
    match format {
        Format::B3 => set_if_changed(ops, carrier, Header::B3, b3::render_sampling_only(sampling)),
        Format::B3Multi => {
            let (sampled, flags) = b3::multi_sampling(sampling);
            set_if_changed(ops, carrier, Header::XB3Sampled, sampled);
            set_if_changed(ops, carrier, Header::XB3Flags, flags);
        }
        Format::TraceContext | Format::Jaeger => {}
    }
}

fn remove_format(ops: &mut [Op; Header::COUNT], carrier: &Carrier<'_>, format: Format) {
    for h in Header::ALL {
        // tracestate follows its traceparent; decided in `tracestate_op`.
        if h.format() == format && h != Header::Tracestate && carrier.is_present(h) {
            set_op(ops, h, Op::Remove);
        }
    }
}

/// tracestate belongs to the traceparent it came with: kept (and repaired) while that
/// traceparent is valid and its trace goes on, dropped otherwise; replaced on restart.
#[allow(clippy::too_many_arguments)]
fn tracestate_op(
    carrier: &Carrier<'_>,
    reads: &[Read; 4],
    winner: Option<&SpanContext>,
    targets: &[bool; 4],
    restart: Option<String>,
    otel_continues_traceparent: bool,
    traceparent_removed: bool,
    outcome: &mut Outcome,
) -> Op {
    let writes_traceparent = targets
        .get(Format::TraceContext.index())
        .copied()
        .unwrap_or(false);
    if let Some(value) = restart {
        // The correlation entry travels with the new traceparent, never alone.
        return if writes_traceparent {
            Op::SetText(value)
        } else if carrier.is_present(Header::Tracestate) {
            Op::Remove
        } else {
            Op::Keep
        };
    }
    if !carrier.is_present(Header::Tracestate) {
        return Op::Keep;
    }
    // Envoy's OpenTelemetry tracer continues a valid traceparent with its tracestate after
    // a listener filter; with no valid traceparent it does not trace, so the rules below
    // (drop it) apply.
    if otel_continues_traceparent {
        return Op::Keep;
    }
    // tracestate belongs to its traceparent (W3C processing model): it goes on only while
    // that traceparent is valid and its trace is the one going on, whoever writes the
    // traceparent next (tracejoin, Envoy's tracer, or nobody when it is left as is).
    let keep = !traceparent_removed
        && match (reads.get(Format::TraceContext.index()), winner) {
            (Some(Read::Context(tp)), Some(w)) => tp.trace_id == w.trace_id,
            (Some(Read::Context(_)), None) => true,
            _ => false,
        };
    if !keep {
        return Op::Remove;
    }
    match carrier
        .tracestate_parts()
        .map(tracecontext::parse_tracestate)
    {
        Some(TraceState::Canonical) => Op::Keep,
        // The spec asks not to send an empty tracestate; a single empty header (what Envoy's
        // OpenTelemetry tracer injects) is left alone rather than paid a host call for.
        Some(TraceState::Empty) => match carrier.get(Header::Tracestate) {
            Slot::One([]) => Op::Keep,
            _ => Op::Remove,
        },
        Some(TraceState::Rewritten(s)) => Op::SetText(s),
        Some(TraceState::TooLong) => Op::Remove,
        Some(TraceState::Invalid) | None => {
            outcome.invalid_tracestate = true;
            Op::Remove
        }
    }
}

/// Removes every trace header of the request instead of writing any: for calls to third
/// parties that must not learn the mesh's trace ids.
pub fn strip(plan: &mut Plan, carrier: &Carrier<'_>) {
    for header in Header::ALL {
        let op = if carrier.is_present(header) {
            Op::Remove
        } else {
            Op::Keep
        };
        set_op(&mut plan.ops, header, op);
    }
}
