//! Header codecs: the request's trace headers in ([`Carrier`]), one module per format out.
//! Pure functions over bytes; nothing here knows about Envoy.
//!
//! Every format module has the same shape, after OpenTelemetry's propagators:
//! - `parse` / `render`: one header value to and from a [`SpanContext`];
//! - `extract(&Carrier) -> Read`: what the request holds in this format;
//! - `inject(&SpanContext, emit)`: the header values that carry a context in this format
//!   (`None` for a header that must be absent), and, for the B3 formats, `inject_sampling`
//!   for a lone decision.
//!
//! [`extract`], [`inject`] and [`inject_sampling`] dispatch on [`Format`].

pub mod b3;
pub mod b3multi;
pub mod carrier;
pub mod datadog;
pub mod header_map;
pub mod hex;
pub mod jaeger;
pub mod ottrace;
pub mod table;
pub mod tracecontext;
pub mod tracestate;
pub mod value;
pub mod xray;

pub use carrier::{Carrier, Slot};
pub use table::{PerFormat, PerHeader};
pub use value::HeaderValue;

use crate::context::{Sampling, SpanContext};

/// The propagation formats, named as OpenTelemetry names its propagators.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Format {
    TraceContext,
    B3,
    B3Multi,
    Jaeger,
    Datadog,
    XRay,
    OtTrace,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::TraceContext,
        Format::B3,
        Format::B3Multi,
        Format::Jaeger,
        Format::Datadog,
        Format::XRay,
        Format::OtTrace,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::TraceContext => "tracecontext",
            Format::B3 => "b3",
            Format::B3Multi => "b3multi",
            Format::Jaeger => "jaeger",
            Format::Datadog => "datadog",
            Format::XRay => "xray",
            Format::OtTrace => "ottrace",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Every request header the filter reads or writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Header {
    Traceparent,
    Tracestate,
    B3,
    XB3TraceId,
    XB3SpanId,
    XB3ParentSpanId,
    XB3Sampled,
    XB3Flags,
    UberTraceId,
    XDatadogTraceId,
    XDatadogParentId,
    XDatadogSamplingPriority,
    XDatadogOrigin,
    XDatadogTags,
    XAmznTraceId,
    OtTracerTraceId,
    OtTracerSpanId,
    OtTracerSampled,
}

impl Header {
    pub const COUNT: usize = 18;
    pub const ALL: [Header; Header::COUNT] = [
        Header::Traceparent,
        Header::Tracestate,
        Header::B3,
        Header::XB3TraceId,
        Header::XB3SpanId,
        Header::XB3ParentSpanId,
        Header::XB3Sampled,
        Header::XB3Flags,
        Header::UberTraceId,
        Header::XDatadogTraceId,
        Header::XDatadogParentId,
        Header::XDatadogSamplingPriority,
        Header::XDatadogOrigin,
        Header::XDatadogTags,
        Header::XAmznTraceId,
        Header::OtTracerTraceId,
        Header::OtTracerSpanId,
        Header::OtTracerSampled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Header::Traceparent => "traceparent",
            Header::Tracestate => "tracestate",
            Header::B3 => "b3",
            Header::XB3TraceId => "x-b3-traceid",
            Header::XB3SpanId => "x-b3-spanid",
            Header::XB3ParentSpanId => "x-b3-parentspanid",
            Header::XB3Sampled => "x-b3-sampled",
            Header::XB3Flags => "x-b3-flags",
            Header::UberTraceId => "uber-trace-id",
            Header::XDatadogTraceId => "x-datadog-trace-id",
            Header::XDatadogParentId => "x-datadog-parent-id",
            Header::XDatadogSamplingPriority => "x-datadog-sampling-priority",
            Header::XDatadogOrigin => "x-datadog-origin",
            Header::XDatadogTags => "x-datadog-tags",
            Header::XAmznTraceId => "x-amzn-trace-id",
            Header::OtTracerTraceId => "ot-tracer-traceid",
            Header::OtTracerSpanId => "ot-tracer-spanid",
            Header::OtTracerSampled => "ot-tracer-sampled",
        }
    }

    /// Matches a header name case-insensitively (HTTP/1 names may arrive in any case).
    /// The length check first keeps the common miss to one comparison.
    pub fn from_name(name: &[u8]) -> Option<Header> {
        let candidates: &[Header] = match name.len() {
            2 => &[Header::B3],
            10 => &[Header::Tracestate, Header::XB3Flags],
            11 => &[Header::Traceparent, Header::XB3SpanId],
            12 => &[Header::XB3TraceId, Header::XB3Sampled],
            13 => &[Header::UberTraceId],
            14 => &[Header::XDatadogTags],
            15 => &[Header::XAmznTraceId],
            16 => &[Header::XDatadogOrigin, Header::OtTracerSpanId],
            17 => &[
                Header::XB3ParentSpanId,
                Header::OtTracerTraceId,
                Header::OtTracerSampled,
            ],
            18 => &[Header::XDatadogTraceId],
            19 => &[Header::XDatadogParentId],
            27 => &[Header::XDatadogSamplingPriority],
            _ => return None,
        };
        candidates
            .iter()
            .copied()
            .find(|h| h.name().as_bytes().eq_ignore_ascii_case(name))
    }

    pub fn format(self) -> Format {
        match self {
            Header::Traceparent | Header::Tracestate => Format::TraceContext,
            Header::B3 => Format::B3,
            Header::XB3TraceId
            | Header::XB3SpanId
            | Header::XB3ParentSpanId
            | Header::XB3Sampled
            | Header::XB3Flags => Format::B3Multi,
            Header::UberTraceId => Format::Jaeger,
            Header::XDatadogTraceId
            | Header::XDatadogParentId
            | Header::XDatadogSamplingPriority
            | Header::XDatadogOrigin
            | Header::XDatadogTags => Format::Datadog,
            Header::XAmznTraceId => Format::XRay,
            Header::OtTracerTraceId | Header::OtTracerSpanId | Header::OtTracerSampled => {
                Format::OtTrace
            }
        }
    }
}

/// What one format of the request holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Read {
    #[default]
    Absent,
    Invalid,
    Context(SpanContext),
    /// A sampling decision without ids (`b3: 0`, a lone `x-b3-sampled`).
    SamplingOnly(Sampling),
}

impl Read {
    pub fn context(&self) -> Option<&SpanContext> {
        match self {
            Read::Context(c) => Some(c),
            _ => None,
        }
    }
}

/// Reads one format from the request.
pub fn extract(carrier: &Carrier<'_>, format: Format) -> Read {
    match format {
        Format::TraceContext => tracecontext::extract(carrier),
        Format::B3 => b3::extract(carrier),
        Format::B3Multi => b3multi::extract(carrier),
        Format::Jaeger => jaeger::extract(carrier),
        Format::Datadog => datadog::extract(carrier),
        Format::XRay => xray::extract(carrier),
        Format::OtTrace => ottrace::extract(carrier),
    }
}

/// Every format of the request.
pub fn extract_all(carrier: &Carrier<'_>) -> PerFormat<Read> {
    PerFormat::from_fn(|f| extract(carrier, f))
}

/// The header values that carry `ctx` in `format`.
pub fn inject(
    format: Format,
    ctx: &SpanContext,
    emit: &mut impl FnMut(Header, Option<HeaderValue>),
) {
    match format {
        Format::TraceContext => tracecontext::inject(ctx, emit),
        Format::B3 => b3::inject(ctx, emit),
        Format::B3Multi => b3multi::inject(ctx, emit),
        Format::Jaeger => jaeger::inject(ctx, emit),
        Format::Datadog => datadog::inject(ctx, emit),
        Format::XRay => xray::inject(ctx, emit),
        Format::OtTrace => ottrace::inject(ctx, emit),
    }
}

/// A lone sampling decision in `format`, where the format can carry one (B3 only); nothing
/// for an undecided state.
pub fn inject_sampling(
    format: Format,
    sampling: Sampling,
    emit: &mut impl FnMut(Header, Option<HeaderValue>),
) {
    if !sampling.is_decided() {
        return;
    }
    match format {
        Format::B3 => b3::inject_sampling(sampling, emit),
        Format::B3Multi => b3multi::inject_sampling(sampling, emit),
        Format::TraceContext
        | Format::Jaeger
        | Format::Datadog
        | Format::XRay
        | Format::OtTrace => {}
    }
}

#[cfg(test)]
mod tests;
