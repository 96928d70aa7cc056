//! Tables keyed by format and by header: one slot per variant, looked up by a `match`, so
//! no code indexes an array by hand and no lookup can miss.

use std::ops::{Index, IndexMut};

use super::{Format, Header};

/// One `T` per propagation format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerFormat<T> {
    tracecontext: T,
    b3: T,
    b3multi: T,
    jaeger: T,
    datadog: T,
    xray: T,
    ottrace: T,
}

impl<T> PerFormat<T> {
    pub fn from_fn(mut f: impl FnMut(Format) -> T) -> Self {
        PerFormat {
            tracecontext: f(Format::TraceContext),
            b3: f(Format::B3),
            b3multi: f(Format::B3Multi),
            jaeger: f(Format::Jaeger),
            datadog: f(Format::Datadog),
            xray: f(Format::XRay),
            ottrace: f(Format::OtTrace),
        }
    }

    pub fn map<U>(&self, mut f: impl FnMut(Format, &T) -> U) -> PerFormat<U> {
        PerFormat::from_fn(|format| f(format, &self[format]))
    }

    /// Every format with its value, in [`Format::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Format, &T)> {
        Format::ALL.into_iter().map(move |f| (f, &self[f]))
    }
}

impl<T> Index<Format> for PerFormat<T> {
    type Output = T;
    fn index(&self, format: Format) -> &T {
        match format {
            Format::TraceContext => &self.tracecontext,
            Format::B3 => &self.b3,
            Format::B3Multi => &self.b3multi,
            Format::Jaeger => &self.jaeger,
            Format::Datadog => &self.datadog,
            Format::XRay => &self.xray,
            Format::OtTrace => &self.ottrace,
        }
    }
}

impl<T> IndexMut<Format> for PerFormat<T> {
    fn index_mut(&mut self, format: Format) -> &mut T {
        match format {
            Format::TraceContext => &mut self.tracecontext,
            Format::B3 => &mut self.b3,
            Format::B3Multi => &mut self.b3multi,
            Format::Jaeger => &mut self.jaeger,
            Format::Datadog => &mut self.datadog,
            Format::XRay => &mut self.xray,
            Format::OtTrace => &mut self.ottrace,
        }
    }
}

/// One `T` per trace header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerHeader<T> {
    traceparent: T,
    tracestate: T,
    b3: T,
    x_b3_traceid: T,
    x_b3_spanid: T,
    x_b3_parentspanid: T,
    x_b3_sampled: T,
    x_b3_flags: T,
    uber_trace_id: T,
    x_datadog_trace_id: T,
    x_datadog_parent_id: T,
    x_datadog_sampling_priority: T,
    x_datadog_origin: T,
    x_datadog_tags: T,
    x_amzn_trace_id: T,
    ot_tracer_traceid: T,
    ot_tracer_spanid: T,
    ot_tracer_sampled: T,
}

impl<T> PerHeader<T> {
    /// Every header with its value, in [`Header::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Header, &T)> {
        Header::ALL.into_iter().map(move |h| (h, &self[h]))
    }
}

impl<T> Index<Header> for PerHeader<T> {
    type Output = T;
    fn index(&self, header: Header) -> &T {
        match header {
            Header::Traceparent => &self.traceparent,
            Header::Tracestate => &self.tracestate,
            Header::B3 => &self.b3,
            Header::XB3TraceId => &self.x_b3_traceid,
            Header::XB3SpanId => &self.x_b3_spanid,
            Header::XB3ParentSpanId => &self.x_b3_parentspanid,
            Header::XB3Sampled => &self.x_b3_sampled,
            Header::XB3Flags => &self.x_b3_flags,
            Header::UberTraceId => &self.uber_trace_id,
            Header::XDatadogTraceId => &self.x_datadog_trace_id,
            Header::XDatadogParentId => &self.x_datadog_parent_id,
            Header::XDatadogSamplingPriority => &self.x_datadog_sampling_priority,
            Header::XDatadogOrigin => &self.x_datadog_origin,
            Header::XDatadogTags => &self.x_datadog_tags,
            Header::XAmznTraceId => &self.x_amzn_trace_id,
            Header::OtTracerTraceId => &self.ot_tracer_traceid,
            Header::OtTracerSpanId => &self.ot_tracer_spanid,
            Header::OtTracerSampled => &self.ot_tracer_sampled,
        }
    }
}

impl<T> IndexMut<Header> for PerHeader<T> {
    fn index_mut(&mut self, header: Header) -> &mut T {
        match header {
            Header::Traceparent => &mut self.traceparent,
            Header::Tracestate => &mut self.tracestate,
            Header::B3 => &mut self.b3,
            Header::XB3TraceId => &mut self.x_b3_traceid,
            Header::XB3SpanId => &mut self.x_b3_spanid,
            Header::XB3ParentSpanId => &mut self.x_b3_parentspanid,
            Header::XB3Sampled => &mut self.x_b3_sampled,
            Header::XB3Flags => &mut self.x_b3_flags,
            Header::UberTraceId => &mut self.uber_trace_id,
            Header::XDatadogTraceId => &mut self.x_datadog_trace_id,
            Header::XDatadogParentId => &mut self.x_datadog_parent_id,
            Header::XDatadogSamplingPriority => &mut self.x_datadog_sampling_priority,
            Header::XDatadogOrigin => &mut self.x_datadog_origin,
            Header::XDatadogTags => &mut self.x_datadog_tags,
            Header::XAmznTraceId => &mut self.x_amzn_trace_id,
            Header::OtTracerTraceId => &mut self.ot_tracer_traceid,
            Header::OtTracerSpanId => &mut self.ot_tracer_spanid,
            Header::OtTracerSampled => &mut self.ot_tracer_sampled,
        }
    }
}
