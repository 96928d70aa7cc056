//! The HTTP request path, over a small host interface: read the trace headers once,
//! decide, write only what changes, count what happened. The proxy-wasm glue implements
//! [`Host`] with host calls; [`RecordingHost`] implements it with a header list for tests,
//! benchmarks and fuzz targets.

pub mod counters;
pub mod decision;
pub mod host;
pub mod recording_host;

pub use counters::{Counter, StatusClass};
pub use decision::{Applied, Decision, decision_line};
pub use host::{Counting, Host, HostError};
pub use recording_host::RecordingHost;

use crate::codec::{Carrier, Header, HeaderValue, header_map, tracecontext};
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
/// Network position, TLS connections: the ALPN protocols the client offered.
pub const STATE_TLS_ALPN: &str = "tracejoin.tls_alpn";
/// The value of [`STATE_SERVICE_ENTRY`] for calls through Istio's PassthroughCluster.
pub const UNREGISTERED: &str = "unregistered";

/// Where the span of this hop's operation is, for `traceresponse` / `server-timing` (W3C:
/// the child id is "the span ID of the server operation", not the caller's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum HopSpan {
    /// No span of this hop is known: no tracer, or downstream, where Envoy injects its span
    /// only after the filter (measured with Envoy 1.40: reading the request headers back in
    /// the response phase gave no span but the caller's). The caller's span would be a false
    /// answer, so nothing is written.
    #[default]
    Unknown,
    /// The context's own span: Envoy's injected one (upstream), or one tracejoin started.
    Context,
}

/// Per-request state: what the request phase decided, for the response phase.
#[derive(Default)]
pub struct RequestFilter {
    context: Option<SpanContext>,
    /// Whose span the response's trace metric names.
    hop: HopSpan,
    destination: Option<Destination>,
    /// The external call was counted (on response headers, or at stream end).
    counted: bool,
}

impl RequestFilter {
    pub fn new() -> Self {
        RequestFilter::default()
    }

    /// The request phase, deciding into the caller's `plan` (large: filled in place rather
    /// than returned); `false` when the request headers could not be read, `plan` then left
    /// as it was. Never fails the request: a host error is counted and the request goes on
    /// with whatever was written so far.
    pub fn on_request_headers(
        &mut self,
        host: &mut dyn Host,
        config: &Config,
        ids: &mut IdGenerator,
        plan: &mut Plan,
    ) -> bool {
        let block = match host.request_header_block() {
            Ok(block) => block,
            Err(_) => {
                host.increment(Counter::HostError);
                return false;
            }
        };
        let carrier = Carrier::from_pairs(header_map::pairs(&block));
        policy::decide_into(plan, config, &carrier, ids);
        let stripped = self.tag_external(host, config, &carrier);
        if stripped {
            policy::strip(plan, &carrier);
            if carrier.baggage && !config.dry_run && host.remove_request_header("baggage").is_err()
            {
                host.increment(Counter::HostError);
            }
            host.increment(Counter::ExternalStripped);
        }
        if config.dry_run {
            if (stripped && carrier.baggage) || plan.changes(&carrier) {
                host.increment(Counter::DryRunWouldChange);
            }
        } else {
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
        }
        count(host, plan);
        if log::log_enabled!(log::Level::Debug) {
            decision::log_decision(Decision {
                position: config.position,
                plan,
                applied: Applied::All,
                request_id: carrier.request_id,
                stripped,
                dry_run: config.dry_run,
            });
        }
        self.context = plan.context;
        self.hop = match plan.outcome.source {
            Source::Injected(_) | Source::Generated => HopSpan::Context,
            _ => HopSpan::Unknown,
        };
        true
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
        // A dry run writes nothing to the response either.
        let Some(ctx) = self.context.filter(|_| !config.dry_run) else {
            return;
        };
        if let Some(name) = &config.response_header {
            let mut v = HeaderValue::new();
            v.push_hex(&ctx.trace_id.0);
            if host.set_response_header(name, v.as_bytes()).is_err() {
                host.increment(Counter::HostError);
            }
        }
        if !(config.traceresponse || config.server_timing) {
            return;
        }
        if self.hop != HopSpan::Context {
            return;
        }
        let v = tracecontext::render(&ctx);
        if config.traceresponse
            && host
                .set_response_header("traceresponse", v.as_bytes())
                .is_err()
        {
            host.increment(Counter::HostError);
        }
        if config.server_timing {
            // Appended to the app's own metrics (one field, comma-separated, as RFC 9110
            // combines them).
            let existing = host.response_header(SERVER_TIMING).unwrap_or_else(|_| {
                host.increment(Counter::HostError);
                None
            });
            let mut value = existing.unwrap_or_default();
            if !value.trim_ascii().is_empty() {
                value.extend_from_slice(b", ");
            }
            value.extend_from_slice(b"trace;desc=");
            value.extend_from_slice(v.as_bytes());
            if host.set_response_header(SERVER_TIMING, &value).is_err() {
                host.increment(Counter::HostError);
            }
        }
    }
}

const SERVER_TIMING: &str = "server-timing";

/// The request counters for one decision (both positions kinds count the same way).
pub(crate) fn count(host: &mut dyn Counting, plan: &Plan) {
    let o = &plan.outcome;
    host.increment(match o.source {
        Source::Extracted(f) | Source::Injected(f) => Counter::Context(f),
        Source::Generated => Counter::Generated,
        Source::LeftToTracer => Counter::LeftToTracer,
    });
    for (f, invalid) in o.invalid.iter() {
        if *invalid {
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

#[cfg(test)]
mod tests;
