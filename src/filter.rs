//! The request path, over a small host interface: read the trace headers once, decide,
//! write only what changes, count what happened. The proxy-wasm glue implements [`Host`]
//! with host calls; tests implement it with a header list.

use crate::codec::{Carrier, Format, Header, serialized_pairs};
use crate::config::Config;
use crate::context::SpanContext;
use crate::ids::IdGenerator;
use crate::policy::{self, Op, Plan, Source};

/// A failed host call, with the status the host returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostError(pub u32);

/// What the filter needs from its host for one request.
pub trait Host {
    /// The request headers in the proxy-wasm serialized map layout (one host call).
    fn request_header_block(&mut self) -> Result<Vec<u8>, HostError>;
    fn set_request_header(&mut self, name: &str, value: &[u8]) -> Result<(), HostError>;
    fn remove_request_header(&mut self, name: &str) -> Result<(), HostError>;
    fn set_response_header(&mut self, name: &str, value: &[u8]) -> Result<(), HostError>;
    fn increment(&mut self, counter: Counter);
}

/// The filter's counters, exposed as Envoy stats (`tracejoin.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Requests whose context came from this format (read, or injected by Envoy's tracer).
    Context(Format),
    Generated,
    /// Downstream, no context: Envoy's tracer starts the trace.
    LeftToTracer,
    Conflict,
    Invalid(Format),
    InvalidTracestate,
    Bridged,
    ContinuedOverTracer,
    Restarted,
    Sampled,
    NotSampled,
    HostError,
}

impl Counter {
    pub const ALL: [Counter; 18] = [
        Counter::Context(Format::TraceContext),
        Counter::Context(Format::B3),
        Counter::Context(Format::B3Multi),
        Counter::Context(Format::Jaeger),
        Counter::Generated,
        Counter::LeftToTracer,
        Counter::Conflict,
        Counter::Invalid(Format::TraceContext),
        Counter::Invalid(Format::B3),
        Counter::Invalid(Format::B3Multi),
        Counter::Invalid(Format::Jaeger),
        Counter::InvalidTracestate,
        Counter::Bridged,
        Counter::ContinuedOverTracer,
        Counter::Restarted,
        Counter::Sampled,
        Counter::NotSampled,
        Counter::HostError,
    ];

    /// The stat name (Envoy shows it under its `wasmcustom.` prefix).
    pub fn name(self) -> String {
        match self {
            Counter::Context(f) => format!("tracejoin.context.{}", f.name()),
            Counter::Generated => "tracejoin.context.generated".into(),
            Counter::LeftToTracer => "tracejoin.context.left_to_tracer".into(),
            Counter::Conflict => "tracejoin.conflict".into(),
            Counter::Invalid(f) => format!("tracejoin.invalid.{}", f.name()),
            Counter::InvalidTracestate => "tracejoin.invalid.tracestate".into(),
            Counter::Bridged => "tracejoin.bridged".into(),
            Counter::ContinuedOverTracer => "tracejoin.continued_over_tracer".into(),
            Counter::Restarted => "tracejoin.restarted".into(),
            Counter::Sampled => "tracejoin.sampling.sampled".into(),
            Counter::NotSampled => "tracejoin.sampling.not_sampled".into(),
            Counter::HostError => "tracejoin.host_error".into(),
        }
    }

    /// A dense index, for the glue's table of metric ids.
    pub fn index(self) -> usize {
        Counter::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// Per-request state: what the request phase decided, for the response phase.
#[derive(Default)]
pub struct RequestFilter {
    context: Option<SpanContext>,
}

impl RequestFilter {
    pub fn new() -> Self {
        RequestFilter::default()
    }

    /// The request phase. Never fails the request: a host error is counted and the request
    /// goes on with whatever was written so far.
    pub fn on_request_headers(
        &mut self,
        host: &mut dyn Host,
        config: &Config,
        ids: &mut IdGenerator,
    ) -> Option<Plan> {
        let block = match host.request_header_block() {
            Ok(block) => block,
            Err(_) => {
                host.increment(Counter::HostError);
                return None;
            }
        };
        let carrier = Carrier::from_pairs(serialized_pairs(&block));
        let plan = policy::decide(config, &carrier, ids);
        for header in Header::ALL {
            let result = match plan.op(header) {
                Op::Keep => Ok(()),
                Op::Set(v) => host.set_request_header(header.name(), v.as_bytes()),
                Op::SetText(s) => host.set_request_header(header.name(), s.as_bytes()),
                Op::Remove => host.remove_request_header(header.name()),
            };
            if result.is_err() {
                host.increment(Counter::HostError);
            }
        }
        count(host, &plan);
        self.context = plan.context;
        Some(plan)
    }

    /// The response phase: hand the trace id back to the client when configured.
    pub fn on_response_headers(&mut self, host: &mut dyn Host, config: &Config) {
        let Some(ctx) = self.context else {
            return;
        };
        if let Some(name) = &config.response_header {
            let mut v = crate::codec::HeaderValue::new();
            v.push_hex(&ctx.trace_id.0);
            if host.set_response_header(name, v.as_bytes()).is_err() {
                host.increment(Counter::HostError);
            }
        }
        if config.traceresponse {
            let v = crate::codec::tracecontext::render_traceparent(&ctx);
            if host
                .set_response_header("traceresponse", v.as_bytes())
                .is_err()
            {
                host.increment(Counter::HostError);
            }
        }
    }
}

fn count(host: &mut dyn Host, plan: &Plan) {
    let o = &plan.outcome;
    host.increment(match o.source {
        Source::Extracted(f) | Source::Injected(f) => Counter::Context(f),
        Source::Generated => Counter::Generated,
        Source::LeftToTracer => Counter::LeftToTracer,
    });
    for f in Format::ALL {
        if o.invalid.get(f.index()).copied().unwrap_or(false) {
            host.increment(Counter::Invalid(f));
        }
    }
    let flags = [
        (o.invalid_tracestate, Counter::InvalidTracestate),
        (o.conflict, Counter::Conflict),
        (o.bridged, Counter::Bridged),
        (o.continued_over_tracer, Counter::ContinuedOverTracer),
        (o.restarted, Counter::Restarted),
        (o.decided == Some(true), Counter::Sampled),
        (o.decided == Some(false), Counter::NotSampled),
    ];
    for (hit, counter) in flags {
        if hit {
            host.increment(counter);
        }
    }
}
