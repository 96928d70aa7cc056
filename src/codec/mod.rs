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

    /// Matches a header name case-insensitively (the network position reads HTTP/1 names
    /// as sent; Envoy's header map and HTTP/2 give them in lowercase). Runs for every
    /// request header: the length and the first letter, then at most one more letter,
    /// leave one candidate or none, so most other names cost two compares; the candidate
    /// is compared exactly first (the common lowercase name), then ignoring case.
    pub fn from_name(name: &[u8]) -> Option<Header> {
        let letter = |i: usize| name.get(i).map(u8::to_ascii_lowercase);
        let candidate = match (name.len(), letter(0)?) {
            (2, b'b') => Header::B3,
            (10, b't') => Header::Tracestate,
            (10, b'x') => Header::XB3Flags,
            (11, b't') => Header::Traceparent,
            (11, b'x') => Header::XB3SpanId,
            // x-b3-[t]raceid, x-b3-[s]ampled
            (12, b'x') => match letter(5)? {
                b't' => Header::XB3TraceId,
                b's' => Header::XB3Sampled,
                _ => return None,
            },
            (13, b'u') => Header::UberTraceId,
            (14, b'x') => Header::XDatadogTags,
            (15, b'x') => Header::XAmznTraceId,
            (16, b'x') => Header::XDatadogOrigin,
            (16, b'o') => Header::OtTracerSpanId,
            (17, b'x') => Header::XB3ParentSpanId,
            // ot-tracer-[t]raceid, ot-tracer-[s]ampled
            (17, b'o') => match letter(10)? {
                b't' => Header::OtTracerTraceId,
                b's' => Header::OtTracerSampled,
                _ => return None,
            },
            (18, b'x') => Header::XDatadogTraceId,
            (19, b'x') => Header::XDatadogParentId,
            (27, b'x') => Header::XDatadogSamplingPriority,
            _ => return None,
        };
        let want = candidate.name().as_bytes();
        (name == want || name.eq_ignore_ascii_case(want)).then_some(candidate)
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
