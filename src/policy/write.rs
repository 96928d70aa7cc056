//! Step 3: which formats get the chosen context, and the operation on each header.

use super::choose::Choice;
use super::plan::Op;
use super::tracer;
use crate::codec::{self, Carrier, Format, Header, HeaderValue, PerFormat, PerHeader, Read, Slot};
use crate::config::{Config, Position, Tracer, Trust};
use crate::context::SpanContext;

/// Which formats get what.
#[derive(Clone, Copy, Debug)]
pub struct Targets {
    /// tracejoin writes the chosen context into these.
    pub write: PerFormat<bool>,
    /// Envoy's tracer overwrites these after this filter (downstream only).
    pub tracer_writes: PerFormat<bool>,
    /// Envoy's tracer continues these in another format and leaves them behind with the
    /// caller's span, which their readers would prefer: removed (Zipkin before 1.40: `b3`).
    pub remove: PerFormat<bool>,
    /// `b3` is written as a bridge for the next hop's Zipkin tracer.
    pub bridged: bool,
}

/// The configured formats, but for those Envoy's tracer overwrites anyway; upstream, also
/// every format that arrived with a context; in front of the tracer (network), also the
/// format the tracer reads; downstream with Zipkin, `b3` as a bridge when this hop's tracer
/// could not read the context.
pub fn targets(
    config: &Config,
    reads: &PerFormat<Read>,
    view: &PerFormat<Read>,
    choice: &Choice,
) -> Targets {
    let upstream = config.position == Position::Upstream;
    let (tracer, envoy) = (config.tracer, config.envoy);
    let tracer_writes = match config.position {
        Position::Downstream => tracer::writes(tracer, envoy, view),
        Position::Upstream | Position::Network => PerFormat::default(),
    };
    let remove = match config.position {
        Position::Downstream => tracer::leaves_stale(tracer, envoy, view),
        Position::Network => tracer::unfed(tracer, envoy, reads),
        Position::Upstream => PerFormat::default(),
    };
    let mut write = PerFormat::default();
    for f in &config.propagate {
        write[*f] = !tracer_writes[*f] && !remove[*f];
    }
    // In front of the tracer, its own format carries the context it is to continue.
    if config.position == Position::Network {
        for (f, feeds) in tracer::feeds(tracer, envoy, reads).iter() {
            write[f] |= *feeds;
        }
    }
    // Upstream, the app's parent must be exactly this hop's span whatever format the app
    // reads: a format that arrived with a valid context is rewritten too, not only the
    // configured ones (an app on `b3` would otherwise find the previous hop's span there).
    if upstream {
        for (f, read) in reads.iter() {
            if matches!(read, Read::Context(_)) {
                write[f] = true;
            }
        }
    }
    let zipkin_next_hop = matches!(tracer, Tracer::Zipkin | Tracer::ZipkinW3c);
    let bridged = choice.tracer_missed
        && config.bridge
        && zipkin_next_hop
        && !tracer_writes[Format::B3]
        && !remove[Format::B3];
    if bridged {
        write[Format::B3] = true;
    }
    Targets {
        write,
        tracer_writes,
        remove,
        bridged,
    }
}

/// The operation on every header but tracestate, into `ops` (every one overwritten): the
/// chosen context into the targets; elsewhere, what would mislead the next reader removed
/// and the rest made canonical.
pub fn ops(
    ops: &mut PerHeader<Op>,
    carrier: &Carrier<'_>,
    reads: &PerFormat<Read>,
    winner: Option<&SpanContext>,
    targets: &Targets,
    trust: Trust,
) {
    for header in Header::ALL {
        ops[header] = Op::Keep;
    }
    for (f, read) in reads.iter() {
        let envoy_overwrites = targets.tracer_writes[f];
        if targets.remove[f] {
            remove_format(ops, carrier, f);
            continue;
        }
        match winner {
            Some(ctx) if targets.write[f] => write_format(ops, carrier, f, ctx),
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
                    // Nothing goes on and the tracer decides: an untrusted client's decision
                    // must not reach it (only in front of the tracer does this happen).
                    (Read::SamplingOnly(_), None) => trust != Trust::Continue,
                    _ => false,
                };
                if stale {
                    remove_format(ops, carrier, f);
                } else if !envoy_overwrites {
                    // What goes on as it arrived goes on in canonical form: a lenient
                    // spelling (uppercase, `%3A`, `x-b3-sampled: true`, a debug bit without
                    // the sampled bit) can read differently to each SDK.
                    // It carries the chosen sampling decision: debug and sampled both read as
                    // sampled above, but a client's `d` must not outlive `resample`.
                    match *read {
                        Read::Context(mut c) => {
                            if let Some(w) = winner {
                                c.sampling = w.sampling;
                            }
                            write_format(ops, carrier, f, &c)
                        }
                        Read::SamplingOnly(s) => codec::inject_sampling(f, s, &mut |h, v| {
                            set_if_changed(ops, carrier, h, v)
                        }),
                        Read::Absent | Read::Invalid => {}
                    }
                }
            }
        }
    }
}

fn write_format(ops: &mut PerHeader<Op>, carrier: &Carrier<'_>, f: Format, ctx: &SpanContext) {
    codec::inject(f, ctx, &mut |h, v| set_if_changed(ops, carrier, h, v));
    super::carry::carry(ops, carrier, f, ctx);
}

/// A header that already holds the value is not written (a host call saved).
fn set_if_changed(
    ops: &mut PerHeader<Op>,
    carrier: &Carrier<'_>,
    header: Header,
    value: Option<HeaderValue>,
) {
    ops[header] = match (value, carrier.get(header)) {
        (Some(v), Slot::One(cur)) if v.as_bytes() == cur => Op::Keep,
        (Some(v), _) => Op::Set(v),
        (None, Slot::Absent) => Op::Keep,
        (None, _) => Op::Remove,
    };
}

fn remove_format(ops: &mut PerHeader<Op>, carrier: &Carrier<'_>, format: Format) {
    for h in Header::ALL {
        // tracestate follows its traceparent; decided in `super::tracestate`.
        if h.format() == format && h != Header::Tracestate && carrier.is_present(h) {
            ops[h] = Op::Remove;
        }
    }
}
