//! Envoy's tracer, as measured with Envoy 1.36, 1.38 and 1.40 (docs/envoy-versions.md):
//! which formats it reads, which it writes after the listener filters, which it leaves
//! behind stale, and what it injected (seen from the upstream position).

use crate::codec::tracecontext::VERSION_00_LEN;
use crate::codec::{Carrier, Format, Header, PerFormat, Read, Slot, hex::trim_ows};
use crate::config::{EnvoyVersion, Tracer};
use crate::context::{Sampling, SpanContext};

/// From Envoy 1.40 on, Zipkin answers a `b3` single header with `b3`
/// (`zipkin_preserve_b3_single_header_format`); before, with `x-b3-*` alone, leaving the
/// `b3` that arrived in the request as it was (measured:
/// `tests/integration/test_envoy_versions.py`, `test_zipkin_answers_b3_single`).
pub const ZIPKIN_KEEPS_B3_SINCE: EnvoyVersion = EnvoyVersion::new(1, 40);

/// Whether a `b3` single header arrived in a form Envoy's Zipkin tracer reads.
fn b3_single_in(view: &PerFormat<Read>) -> bool {
    matches!(view[Format::B3], Read::Context(_) | Read::SamplingOnly(_))
}

/// Zipkin in a release before 1.40: answers `b3` with `x-b3-*`, leaving the `b3` as it came.
fn zipkin_leaves_b3(tracer: Tracer, envoy: EnvoyVersion) -> bool {
    matches!(tracer, Tracer::Zipkin | Tracer::ZipkinW3c) && envoy < ZIPKIN_KEEPS_B3_SINCE
}

/// `b3` alone, if `set`.
fn b3_only(set: bool) -> PerFormat<bool> {
    let mut formats = PerFormat::default();
    formats[Format::B3] = set;
    formats
}

/// The formats Envoy's tracer extracts from, in its order.
pub fn reads(tracer: Tracer) -> &'static [Format] {
    match tracer {
        Tracer::None => &[],
        Tracer::Zipkin => &[Format::B3, Format::B3Multi],
        Tracer::ZipkinW3c => &[Format::B3, Format::B3Multi, Format::TraceContext],
        Tracer::OpenTelemetry => &[Format::TraceContext],
        Tracer::Datadog => &[Format::Datadog, Format::TraceContext],
    }
}

/// The request as Envoy's tracer reads it: Envoy (1.36 to 1.40) takes a traceparent of
/// exactly 55 characters only, so a valid future-version one with more fields is invalid to it
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

/// [`view`] for `tracer`. Envoy's Datadog tracer (dd-trace-cpp, 1.36 to 1.40) has its own
/// W3C parser, which continues a future-version traceparent with more fields; and when
/// `x-datadog-trace-id` is present but the Datadog context is not valid (no or zero parent
/// id, a bad id or priority) it starts a fresh trace instead of reading `traceparent`
/// (measured: `tests/integration/test_datadog_tracer.py`).
pub fn view_for(tracer: Tracer, carrier: &Carrier<'_>, reads: &PerFormat<Read>) -> PerFormat<Read> {
    if tracer != Tracer::Datadog {
        return view(carrier, reads);
    }
    let mut view = *reads;
    if carrier.is_present(Header::XDatadogTraceId)
        && !matches!(view[Format::Datadog], Read::Context(_))
    {
        view[Format::Datadog] = Read::Invalid;
        if matches!(view[Format::TraceContext], Read::Context(_)) {
            view[Format::TraceContext] = Read::Invalid;
        }
    }
    view
}

/// Downstream: whether Envoy's tracer writes `tracestate` after the listener filters, as
/// it extracted it (OpenTelemetry: when it continued the traceparent; Datadog: always, its
/// `dd=` member first, the other members when it continued the traceparent).
pub fn writes_tracestate(tracer: Tracer, view: &PerFormat<Read>) -> bool {
    match tracer {
        Tracer::OpenTelemetry => matches!(view[Format::TraceContext], Read::Context(_)),
        Tracer::Datadog => true,
        Tracer::None | Tracer::Zipkin | Tracer::ZipkinW3c => false,
    }
}

/// The formats Envoy's tracer will write into this request, from [`view`] (Zipkin answers a
/// `b3` single header with `b3` alone from Envoy 1.40 on, anything else, and everything
/// before 1.40, with `x-b3-*`). With OpenTelemetry, a traceparent invalid in the view is left
/// to tracejoin: Envoy does not trace on one it cannot read (zero ids, future versions with
/// more fields), and where it does continue a lenient one (uppercase, version `ff`) its write
/// comes later and wins anyway.
pub fn writes(tracer: Tracer, envoy: EnvoyVersion, view: &PerFormat<Read>) -> PerFormat<bool> {
    let mut owned = PerFormat::default();
    match tracer {
        Tracer::None => {}
        Tracer::Zipkin | Tracer::ZipkinW3c => {
            owned[if b3_single_in(view) && envoy >= ZIPKIN_KEEPS_B3_SINCE {
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
        // Both, always (a fresh trace too), with x-datadog-tags and x-datadog-origin.
        Tracer::Datadog => {
            owned[Format::Datadog] = true;
            owned[Format::TraceContext] = true;
        }
    }
    owned
}

/// Downstream: the formats Envoy's tracer reads and continues but answers in another format,
/// leaving them in the request as they arrived: a stale parent (the caller's span, not
/// Envoy's) that their readers would prefer. Before Envoy 1.40, Zipkin answers `b3` with
/// `x-b3-*`, and B3 readers take `b3` first.
pub fn leaves_stale(
    tracer: Tracer,
    envoy: EnvoyVersion,
    view: &PerFormat<Read>,
) -> PerFormat<bool> {
    b3_only(zipkin_leaves_b3(tracer, envoy) && b3_single_in(view))
}

/// In front of the tracer (network): the formats to write so that the tracer reads the
/// chosen context. Zipkin gets the B3 form that arrived (`b3` single only when one did and
/// the release answers it with `b3`, as Envoy itself does), else the multi headers, which
/// every B3 reader takes.
pub fn feeds(tracer: Tracer, envoy: EnvoyVersion, reads: &PerFormat<Read>) -> PerFormat<bool> {
    let mut feeds = PerFormat::default();
    match tracer {
        Tracer::None => {}
        Tracer::Zipkin | Tracer::ZipkinW3c => {
            feeds[if matches!(reads[Format::B3], Read::Context(_)) && envoy >= ZIPKIN_KEEPS_B3_SINCE
            {
                Format::B3
            } else {
                Format::B3Multi
            }] = true;
        }
        Tracer::OpenTelemetry => feeds[Format::TraceContext] = true,
        // The Datadog headers, which it reads first (a 128-bit id's high half in
        // `_dd.p.tid`, which it continues).
        Tracer::Datadog => feeds[Format::Datadog] = true,
    }
    feeds
}

/// In front of the tracer (network): the formats to remove because the tracer would leave
/// them behind stale (see [`leaves_stale`]): before Envoy 1.40, a `b3` that carries the
/// context is fed to Zipkin as `x-b3-*` instead, which Envoy then overwrites with its span.
pub fn unfed(tracer: Tracer, envoy: EnvoyVersion, reads: &PerFormat<Read>) -> PerFormat<bool> {
    b3_only(zipkin_leaves_b3(tracer, envoy) && matches!(reads[Format::B3], Read::Context(_)))
}

/// Downstream: the sampling decision Envoy's HCM made before the HTTP filters, as its UUID
/// request-id extension records it in `x-request-id` (the trace-reason nibble, character
/// 15: `9` sampled, `a` forced, `b` client, `4` not traced; Envoy
/// source/extensions/request_id/uuid/config.cc). Envoy's Zipkin tracer takes that decision for
/// a B3 context without one (measured on 1.36.4, 1.38.2 and 1.40.0 at 50% random sampling,
/// with and without a client `x-request-id`: the nibble and `x-b3-sampled` agreed on every
/// request). `None` when the id is not such a UUID.
pub fn hcm_decision(request_id: Option<&[u8]>) -> Option<Sampling> {
    let id = request_id?;
    if id.len() != 36 || id.get(8) != Some(&b'-') || id.get(13) != Some(&b'-') {
        return None;
    }
    match id.get(14)? {
        b'9' | b'a' | b'b' => Some(Sampling::Sampled),
        b'4' => Some(Sampling::NotSampled),
        _ => None,
    }
}

/// Upstream: the context Envoy's tracer injected for its current span (Zipkin: `b3` from
/// Envoy 1.40 on when one arrived, else `x-b3-*`; a `b3` next to `x-b3-*` before 1.40 is the
/// client's, left as it arrived).
pub fn injected(
    tracer: Tracer,
    envoy: EnvoyVersion,
    reads: &PerFormat<Read>,
) -> Option<(SpanContext, Format)> {
    let ctx_of = |f: Format| reads[f].context().map(|c| (*c, f));
    match tracer {
        Tracer::None => None,
        Tracer::Zipkin | Tracer::ZipkinW3c if envoy >= ZIPKIN_KEEPS_B3_SINCE => {
            ctx_of(Format::B3).or_else(|| ctx_of(Format::B3Multi))
        }
        Tracer::Zipkin | Tracer::ZipkinW3c => ctx_of(Format::B3Multi),
        Tracer::OpenTelemetry => ctx_of(Format::TraceContext),
        Tracer::Datadog => ctx_of(Format::Datadog).or_else(|| ctx_of(Format::TraceContext)),
    }
}

/// Upstream: whether the Datadog tracer's injected span is the root of a trace it started:
/// dd-trace-cpp gives a root span the low 64 bits of its trace id as span id (measured on
/// 1.36.4, 1.38.2, 1.40.0: `x-datadog-parent-id` equals `x-datadog-trace-id`); a span that
/// continues a context gets a random one.
pub fn datadog_root(injected: &SpanContext) -> bool {
    injected.span_id.0 == injected.trace_id.low_half()
}
