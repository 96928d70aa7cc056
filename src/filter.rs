//! The request path, over a small host interface: read the trace headers once, decide,
//! write only what changes, count what happened. The proxy-wasm glue implements [`Host`]
//! with host calls; tests implement it with a header list.

use crate::codec::{Carrier, Format, Header, serialized_pairs};
use crate::config::Config;
use crate::context::SpanContext;
use crate::external::Destination;
use crate::ids::IdGenerator;
use crate::policy::{self, Op, Plan, Source};

/// Filter-state keys (Envoy stores them as `wasm.<key>`: read them in access logs with
/// `%FILTER_STATE(wasm.tracejoin.service_entry:PLAIN)%`).
pub const STATE_SERVICE_ENTRY: &str = "tracejoin.service_entry";
pub const STATE_SERVICE_ENTRY_NAMESPACE: &str = "tracejoin.service_entry_namespace";
pub const STATE_EXTERNAL_HOST: &str = "tracejoin.external_host";
/// The value of [`STATE_SERVICE_ENTRY`] for calls through Istio's PassthroughCluster.
pub const UNREGISTERED: &str = "unregistered";

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
    /// Envoy's `xds.cluster_name` for this request (one host call; only asked when
    /// external services are configured).
    fn cluster_name(&mut self) -> Result<Option<Vec<u8>>, HostError>;
    fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), HostError>;
    /// The response's `:status` (in the response-headers phase).
    fn response_status(&mut self) -> Result<Option<u16>, HostError>;
    /// The stream's response code at its end (`response.code`, Envoy's own replies too).
    fn final_response_code(&mut self) -> Result<Option<u16>, HostError>;
    /// A call left for a host no ServiceEntry names (the glue logs each host once).
    fn note_unregistered(&mut self, host: &[u8]);
}

/// HTTP status classes, for the external-call counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusClass {
    Informational,
    Success,
    Redirect,
    ClientError,
    ServerError,
}

impl StatusClass {
    pub fn of(status: u16) -> Option<StatusClass> {
        match status {
            100..=199 => Some(StatusClass::Informational),
            200..=299 => Some(StatusClass::Success),
            300..=399 => Some(StatusClass::Redirect),
            400..=499 => Some(StatusClass::ClientError),
            500..=599 => Some(StatusClass::ServerError),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StatusClass::Informational => "1xx",
            StatusClass::Success => "2xx",
            StatusClass::Redirect => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
        }
    }
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
    /// Trace headers were removed from a call to a third party.
    ExternalStripped,
    /// Responses from an external service (index into `external_services`), by class.
    External {
        service: usize,
        class: StatusClass,
    },
    /// Responses from hosts no ServiceEntry names (Istio's PassthroughCluster), by class.
    Unregistered(StatusClass),
}

impl Counter {
    /// The counters defined up front; `External` and `Unregistered` are defined on first use.
    pub const ALL: [Counter; 19] = [
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
        Counter::ExternalStripped,
    ];

    /// The stat name (Envoy shows it under its `wasmcustom.` prefix).
    pub fn name(self, config: &Config) -> String {
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
            Counter::ExternalStripped => "tracejoin.external.stripped".into(),
            Counter::External { service, class } => {
                let entry = config
                    .external
                    .as_ref()
                    .and_then(|e| e.matcher.service(service));
                let (name, namespace) = entry.map_or(("unknown", "unknown"), |e| {
                    (e.name.as_str(), e.namespace.as_str())
                });
                format!(
                    "tracejoin.external.service_entry.{name}.namespace.{namespace}.rq_{}",
                    class.name()
                )
            }
            Counter::Unregistered(class) => {
                format!("tracejoin.external.unregistered.rq_{}", class.name())
            }
        }
    }

    /// A dense index into [`Counter::ALL`], for the glue's table of metric ids; `None` for
    /// the counters defined on first use.
    pub fn index(self) -> Option<usize> {
        Counter::ALL.iter().position(|c| *c == self)
    }
}

/// Per-request state: what the request phase decided, for the response phase.
#[derive(Default)]
pub struct RequestFilter {
    context: Option<SpanContext>,
    destination: Option<Destination>,
    /// The external call was counted (on response headers, or at stream end).
    counted: bool,
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
        let mut plan = policy::decide(config, &carrier, ids);
        if self.tag_external(host, config, &carrier) {
            policy::strip(&mut plan, &carrier);
            if carrier.baggage && host.remove_request_header("baggage").is_err() {
                host.increment(Counter::HostError);
            }
            host.increment(Counter::ExternalStripped);
        }
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

    /// The end of the stream: count an external call that no response headers counted
    /// (Envoy's own replies, such as a connect failure's 503, reach a listener filter only
    /// here). Envoy does not call this for router upstream filters.
    pub fn on_log(&mut self, host: &mut dyn Host) {
        let external = matches!(
            self.destination,
            Some(Destination::Service(_) | Destination::Unregistered)
        );
        if external && !self.counted {
            let code = host.final_response_code();
            self.count_response(host, code);
        }
    }

    /// Counts an external call by response class, once.
    fn count_response(&mut self, host: &mut dyn Host, status: Result<Option<u16>, HostError>) {
        let Some(destination @ (Destination::Service(_) | Destination::Unregistered)) =
            self.destination
        else {
            return;
        };
        match status {
            Ok(Some(status)) => {
                if let Some(class) = StatusClass::of(status) {
                    host.increment(match destination {
                        Destination::Service(service) => Counter::External { service, class },
                        _ => Counter::Unregistered(class),
                    });
                    self.counted = true;
                }
            }
            Ok(None) => {}
            Err(_) => host.increment(Counter::HostError),
        }
    }

    /// Classifies the call (when external services are configured), records it in filter
    /// state, and says whether its trace headers must be removed.
    fn tag_external(
        &mut self,
        host: &mut dyn Host,
        config: &Config,
        carrier: &Carrier<'_>,
    ) -> bool {
        let Some(external) = &config.external else {
            return false;
        };
        let cluster = host.cluster_name().unwrap_or_else(|_| {
            host.increment(Counter::HostError);
            None
        });
        let destination = external
            .matcher
            .classify(cluster.as_deref(), carrier.authority);
        self.destination = Some(destination);
        let host_name = carrier.authority.map(strip_port).unwrap_or_default();
        let (entry, namespace, propagate) = match destination {
            Destination::Internal => return false,
            Destination::Service(i) => match external.matcher.service(i) {
                Some(s) => (s.name.as_str(), Some(s.namespace.as_str()), s.propagate),
                None => return false,
            },
            Destination::Unregistered => {
                host.note_unregistered(host_name);
                (UNREGISTERED, None, external.unregistered_propagate)
            }
        };
        let mut states = [
            (STATE_SERVICE_ENTRY, entry.as_bytes()),
            (STATE_EXTERNAL_HOST, host_name),
            ("", b""),
        ];
        if let (Some(ns), Some(slot)) = (namespace, states.get_mut(2)) {
            *slot = (STATE_SERVICE_ENTRY_NAMESPACE, ns.as_bytes());
        }
        for (key, value) in states {
            if !key.is_empty() && host.set_filter_state(key, value).is_err() {
                host.increment(Counter::HostError);
            }
        }
        !propagate
    }

    /// The response phase: count an external call by response class, and hand the trace id
    /// back to the client when configured.
    pub fn on_response_headers(&mut self, host: &mut dyn Host, config: &Config) {
        if matches!(
            self.destination,
            Some(Destination::Service(_) | Destination::Unregistered)
        ) {
            let status = host.response_status();
            self.count_response(host, status);
        }
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

/// A client-supplied value made safe for a log line: bytes outside visible ASCII become
/// `\xNN` (no terminal escapes, no forged line breaks), at most `max` bytes are shown.
pub fn printable(value: &[u8], max: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(value.len().min(max));
    for b in value.iter().take(max) {
        if b.is_ascii_graphic() && *b != b'\\' {
            out.push(char::from(*b));
        } else {
            out.push_str("\\x");
            out.push(char::from(
                HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
            ));
            out.push(char::from(
                HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'),
            ));
        }
    }
    if value.len() > max {
        out.push_str("...");
    }
    out
}

/// `host:port` -> `host` (IPv6 literals keep their brackets).
fn strip_port(authority: &[u8]) -> &[u8] {
    if authority.first() == Some(&b'[') {
        let end = authority
            .iter()
            .position(|b| *b == b']')
            .map_or(authority.len(), |e| e + 1);
        return authority.get(..end).unwrap_or(authority);
    }
    match authority.iter().rposition(|b| *b == b':') {
        Some(colon) => authority.get(..colon).unwrap_or(authority),
        None => authority,
    }
}
