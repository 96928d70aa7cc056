//! The filter's counters (Envoy stats `tracejoin.*`) and the status classes of external calls.

use crate::codec::Format;
use crate::config::{Config, Position};
use crate::network::Leave;

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
    /// Network position: connections seen.
    NetworkConnection,
    /// Network position: request heads read (each also counted by the request counters).
    NetworkHead,
    /// Network position: request heads rewritten.
    NetworkRewritten,
    /// Network position: heads left as they were because a rewrite would cross Envoy's
    /// header size or count limit.
    NetworkAtLimit,
    /// Network position: connections left alone from here on, by reason.
    NetworkLeft(Leave),
    /// Network position: reads that began with bytes Envoy handed back (passed on before,
    /// not taken by its codec while it waited to answer a request).
    NetworkRepresented,
    /// Network position: connections closed instead of left (`trust` set, or a slow head).
    NetworkClosed,
    /// Network position: TLS ClientHellos read (with `external_services`).
    NetworkTls,
    /// Network position: ClientHellos with no server name, or one that is not a DNS name.
    NetworkTlsNoServerName,
    /// Network position: TLS connections to an external service (index into
    /// `external_services`), by the ClientHello's server name.
    ExternalTls(usize),
    /// Network position: TLS connections through Istio's passthrough filter chains.
    UnregisteredTls,
    /// `dry_run`: requests (network position: heads) where something would have been
    /// written. Defined only when `dry_run` is on.
    DryRunWouldChange,
}

impl Counter {
    /// The counters defined up front; those of external calls are defined on first use.
    pub const ALL: [Counter; 46] = [
        Counter::Context(Format::TraceContext),
        Counter::Context(Format::B3),
        Counter::Context(Format::B3Multi),
        Counter::Context(Format::Jaeger),
        Counter::Context(Format::Datadog),
        Counter::Context(Format::XRay),
        Counter::Context(Format::OtTrace),
        Counter::Generated,
        Counter::LeftToTracer,
        Counter::Conflict,
        Counter::Invalid(Format::TraceContext),
        Counter::Invalid(Format::B3),
        Counter::Invalid(Format::B3Multi),
        Counter::Invalid(Format::Jaeger),
        Counter::Invalid(Format::Datadog),
        Counter::Invalid(Format::XRay),
        Counter::Invalid(Format::OtTrace),
        Counter::InvalidTracestate,
        Counter::Bridged,
        Counter::ContinuedOverTracer,
        Counter::Restarted,
        Counter::Sampled,
        Counter::NotSampled,
        Counter::HostError,
        Counter::ExternalStripped,
        Counter::NetworkConnection,
        Counter::NetworkHead,
        Counter::NetworkRewritten,
        Counter::NetworkAtLimit,
        Counter::NetworkLeft(Leave::Http2),
        Counter::NetworkLeft(Leave::Hpack),
        Counter::NetworkLeft(Leave::NotHttp1),
        Counter::NetworkLeft(Leave::Tls),
        Counter::NetworkLeft(Leave::Ambiguous),
        Counter::NetworkLeft(Leave::TooLarge),
        Counter::NetworkLeft(Leave::Pipelined),
        Counter::NetworkLeft(Leave::Unsure),
        Counter::NetworkLeft(Leave::Response),
        Counter::NetworkLeft(Leave::SlowHead),
        Counter::NetworkLeft(Leave::Upgrade),
        Counter::NetworkLeft(Leave::HostError),
        Counter::NetworkRepresented,
        Counter::NetworkClosed,
        Counter::NetworkTls,
        Counter::NetworkTlsNoServerName,
        Counter::DryRunWouldChange,
    ];

    /// Whether a filter in `position` ever counts it (the others are not defined there).
    pub fn applies_to(self, position: Position) -> bool {
        let network_only = matches!(
            self,
            Counter::NetworkConnection
                | Counter::NetworkHead
                | Counter::NetworkRewritten
                | Counter::NetworkAtLimit
                | Counter::NetworkLeft(_)
                | Counter::NetworkRepresented
                | Counter::NetworkClosed
                | Counter::NetworkTls
                | Counter::NetworkTlsNoServerName
                | Counter::ExternalTls(_)
                | Counter::UnregisteredTls
        );
        let http_only = matches!(
            self,
            Counter::Bridged
                | Counter::ContinuedOverTracer
                | Counter::ExternalStripped
                | Counter::External { .. }
                | Counter::Unregistered(_)
        );
        match position {
            Position::Network => !http_only,
            Position::Downstream | Position::Upstream => !network_only,
        }
    }

    /// Whether a filter with `config` defines it as a stat.
    pub fn defined_for(self, config: &Config) -> bool {
        self.applies_to(config.position) && (self != Counter::DryRunWouldChange || config.dry_run)
    }

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
                format!(
                    "{}.rq_{}",
                    service_entry_prefix(config, service),
                    class.name()
                )
            }
            Counter::ExternalTls(service) => {
                format!("{}.tls_connections", service_entry_prefix(config, service))
            }
            Counter::UnregisteredTls => "tracejoin.external.unregistered.tls_connections".into(),
            Counter::Unregistered(class) => {
                format!("tracejoin.external.unregistered.rq_{}", class.name())
            }
            Counter::NetworkConnection => "tracejoin.network.connections".into(),
            Counter::NetworkHead => "tracejoin.network.heads".into(),
            Counter::NetworkRewritten => "tracejoin.network.rewritten".into(),
            Counter::NetworkAtLimit => "tracejoin.network.at_limit".into(),
            Counter::NetworkLeft(reason) => format!("tracejoin.network.left.{}", reason.name()),
            Counter::NetworkRepresented => "tracejoin.network.represented".into(),
            Counter::NetworkClosed => "tracejoin.network.closed".into(),
            Counter::NetworkTls => "tracejoin.network.tls.client_hellos".into(),
            Counter::NetworkTlsNoServerName => "tracejoin.network.tls.no_server_name".into(),
            Counter::DryRunWouldChange => "tracejoin.dry_run.would_change".into(),
        }
    }

    /// A dense index into [`Counter::ALL`], for the glue's table of metric ids; `None` for
    /// the counters defined on first use.
    pub fn index(self) -> Option<usize> {
        // Computed, not searched for: every increment asks. A test holds it to `ALL`.
        Some(match self {
            Counter::Context(f) => f as usize,
            Counter::Generated => 7,
            Counter::LeftToTracer => 8,
            Counter::Conflict => 9,
            Counter::Invalid(f) => 10 + f as usize,
            Counter::InvalidTracestate => 17,
            Counter::Bridged => 18,
            Counter::ContinuedOverTracer => 19,
            Counter::Restarted => 20,
            Counter::Sampled => 21,
            Counter::NotSampled => 22,
            Counter::HostError => 23,
            Counter::ExternalStripped => 24,
            Counter::NetworkConnection => 25,
            Counter::NetworkHead => 26,
            Counter::NetworkRewritten => 27,
            Counter::NetworkAtLimit => 28,
            Counter::NetworkLeft(reason) => 29 + reason as usize,
            Counter::NetworkRepresented => 41,
            Counter::NetworkClosed => 42,
            Counter::NetworkTls => 43,
            Counter::NetworkTlsNoServerName => 44,
            Counter::DryRunWouldChange => 45,
            Counter::External { .. }
            | Counter::Unregistered(_)
            | Counter::ExternalTls(_)
            | Counter::UnregisteredTls => return None,
        })
    }
}

/// `tracejoin.external.service_entry.<name>.namespace.<namespace>`: the stem of an external
/// service's counters (Envoy `stats_tags` turn both parts into tags).
fn service_entry_prefix(config: &Config, service: usize) -> String {
    let entry = config
        .external
        .as_ref()
        .and_then(|e| e.matcher.service(service));
    let (name, namespace) = entry.map_or(("unknown", "unknown"), |e| {
        (e.name.as_str(), e.namespace.as_str())
    });
    format!("tracejoin.external.service_entry.{name}.namespace.{namespace}")
}
