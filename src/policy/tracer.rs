//! Envoy's tracer, as measured with Envoy 1.40: which formats it reads, which it writes
//! after the listener filters, and what it injected (seen from the upstream position).

use crate::codec::tracecontext::VERSION_00_LEN;
use crate::codec::{Carrier, Format, Header, PerFormat, Read, Slot, hex::trim_ows};
use crate::config::Tracer;
use crate::context::SpanContext;

/// The formats Envoy's tracer extracts from, in its order.
pub fn reads(tracer: Tracer) -> &'static [Format] {
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
pub fn view(carrier: &Carrier<'_>, reads: &PerFormat<Read>) -> PerFormat<Read> {
    let mut view = *reads;
    if let Slot::One(v) = carrier.get(Header::Traceparent)
        && matches!(view[Format::TraceContext], Read::Context(_))
        && trim_ows(v).len() != VERSION_00_LEN
    {
        view[Format::TraceContext] = Read::Invalid;
    }
    view
}

/// The formats Envoy's tracer will write into this request, from [`view`] (measured with
/// Envoy 1.40: Zipkin answers a `b3` single header with `b3` alone, anything else with
/// `x-b3-*`). With OpenTelemetry, a traceparent invalid in the view is left to tracejoin:
/// Envoy does not trace on one it cannot read (zero ids, future versions with more fields),
/// and where it does continue a lenient one (uppercase, version `ff`) its write comes later
/// and wins anyway.
pub fn writes(tracer: Tracer, view: &PerFormat<Read>) -> PerFormat<bool> {
    let mut owned = PerFormat::default();
    let b3_single_in = matches!(view[Format::B3], Read::Context(_) | Read::SamplingOnly(_));
    match tracer {
        Tracer::None => {}
        Tracer::Zipkin | Tracer::ZipkinW3c => {
            owned[if b3_single_in {
                Format::B3
            } else {
                Format::B3Multi
            }] = true;
            if tracer == Tracer::ZipkinW3c {
                owned[Format::TraceContext] = true;
            }
        }
        Tracer::OpenTelemetry => {
            if view[Format::TraceContext] != Read::Invalid {
                owned[Format::TraceContext] = true;
            }
        }
    }
    owned
}

/// In front of the tracer (network): the formats to write so that the tracer reads the
/// chosen context. Zipkin gets the B3 form that arrived (`b3` single only when one did, as
/// Envoy itself answers it), else the multi headers, which every B3 reader takes.
pub fn feeds(tracer: Tracer, reads: &PerFormat<Read>) -> PerFormat<bool> {
    let mut feeds = PerFormat::default();
    match tracer {
        Tracer::None => {}
        Tracer::Zipkin | Tracer::ZipkinW3c => {
            feeds[if matches!(reads[Format::B3], Read::Context(_)) {
                Format::B3
            } else {
                Format::B3Multi
            }] = true;
        }
        Tracer::OpenTelemetry => feeds[Format::TraceContext] = true,
    }
    feeds
}

/// Upstream: the context Envoy's tracer injected for its current span.
pub fn injected(tracer: Tracer, reads: &PerFormat<Read>) -> Option<(SpanContext, Format)> {
    let ctx_of = |f: Format| reads[f].context().map(|c| (*c, f));
    match tracer {
        Tracer::None => None,
        Tracer::Zipkin | Tracer::ZipkinW3c => {
            ctx_of(Format::B3).or_else(|| ctx_of(Format::B3Multi))
        }
        Tracer::OpenTelemetry => ctx_of(Format::TraceContext),
    }
}
