//! Plugin configuration: the JSON an operator writes, checked and compiled once at load.

mod describe;
mod envoy;
mod json;
mod raw;
mod services;

use std::fmt;

use self::json::Json;
use self::raw::{RawConfig, formats, one_of, quoted, valid_header_name};
use crate::codec::Format;
use crate::external::Matcher;
use crate::sampling::RatioSampler;

pub use self::envoy::{EnvoyVersion, VersionSource};
pub use self::raw::FIELDS;

/// Where the filter runs in Envoy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Position {
    /// A listener HTTP filter (what Istio's WasmPlugin installs): after Envoy's tracer has
    /// extracted, before it injects.
    Downstream,
    /// A router upstream HTTP filter: after Envoy's tracer injected its span's context.
    Upstream,
    /// A network filter in front of the HTTP connection manager: it rewrites each HTTP/1.1
    /// request head in the byte stream before Envoy's tracer extracts.
    Network,
}

impl Position {
    pub const ALL: [Position; 3] = [Position::Downstream, Position::Upstream, Position::Network];

    /// The name in the plugin JSON (and in the decision line).
    pub fn name(self) -> &'static str {
        match self {
            Position::Downstream => "downstream",
            Position::Upstream => "upstream",
            Position::Network => "network",
        }
    }

    /// The HTTP filter positions (the network position sees no route and no response).
    pub fn is_http(self) -> bool {
        self != Position::Network
    }
}

/// Which tracer the Envoy around the filter runs; decides which headers Envoy reads and
/// overwrites.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tracer {
    None,
    /// Zipkin with the default `trace_context_option` (B3 only): Istio's classic setup.
    Zipkin,
    /// Zipkin with `USE_B3_WITH_W3C_PROPAGATION` (Envoy >= 1.36).
    ZipkinW3c,
    OpenTelemetry,
    /// Envoy's Datadog tracer (dd-trace-cpp): reads `x-datadog-*`, then `traceparent`.
    Datadog,
}

impl Tracer {
    pub const ALL: [Tracer; 5] = [
        Tracer::None,
        Tracer::Zipkin,
        Tracer::ZipkinW3c,
        Tracer::OpenTelemetry,
        Tracer::Datadog,
    ];

    /// The name in the plugin JSON.
    pub fn name(self) -> &'static str {
        match self {
            Tracer::None => "none",
            Tracer::Zipkin => "zipkin",
            Tracer::ZipkinW3c => "zipkin_w3c",
            Tracer::OpenTelemetry => "opentelemetry",
            Tracer::Datadog => "datadog",
        }
    }
}

/// What to do with a context that arrives with the request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Trust {
    /// Continue it (internal hops, trusted clients).
    Continue,
    /// Start a new trace; the client's trace id is kept in tracestate (`tracejoin=<id>`).
    Restart,
    /// Keep the ids, make the sampling decision anew (clients cannot force sampling).
    Resample,
}

/// The configuration after checking; what the request path reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub position: Position,
    pub tracer: Tracer,
    pub extract: Vec<Format>,
    pub propagate: Vec<Format>,
    pub bridge: bool,
    pub trust: Trust,
    pub sampler: RatioSampler,
    pub response_header: Option<String>,
    pub traceresponse: bool,
    /// W3C's `server-timing: trace;desc=...` metric on the response.
    pub server_timing: bool,
    /// Tagging of calls that leave the mesh; `None` when `external_services` is not set
    /// (then no request pays for it).
    pub external: Option<External>,
    /// Network position: the limits of Envoy's HTTP/1 codec behind the filter.
    pub limits: HeadLimits,
    /// The Envoy release around the filter, whose tracer the policy models.
    pub envoy: EnvoyVersion,
    pub envoy_source: VersionSource,
    /// Decide, count and log as usual, write nothing: no header, no byte of the stream, no
    /// connection closed for `trust` (filter state for access logs is still set).
    pub dry_run: bool,
}

/// Envoy's request-head limits (HCM `max_request_headers_kb`, `common_http_protocol_options.
/// max_headers_count`): the network position never rewrites a head past them, so that what
/// Envoy accepts or refuses with 431 stays the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLimits {
    pub max_head_bytes: usize,
    pub max_headers: usize,
    /// The most bytes held back while a head is incomplete. Held bytes stay in the
    /// connection's read buffer; past the listener's `per_connection_buffer_limit_bytes`
    /// Envoy stops reading, and a held head would never complete (measured: the request
    /// stalls). So a head still incomplete at this size is passed on as it is.
    pub max_held_bytes: usize,
    /// The longest a head is held while incomplete (ms). Envoy's own
    /// `request_headers_timeout` starts only when its codec sees the head's first byte, so
    /// a held head would switch it off: past this the connection is closed instead.
    pub held_head_timeout_ms: u64,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 60 * 1024,
            max_headers: 100,
            // Envoy's default is 1 MiB; 32 KiB is what edge deployments (Envoy's edge
            // guidance, Istio's gateways) set, and what is safe under both.
            max_held_bytes: 32 * 1024,
            // Envoy's edge guidance for `request_headers_timeout`.
            held_head_timeout_ms: 10_000,
        }
    }
}

/// The external-services part of the configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct External {
    pub matcher: Matcher,
    /// Whether trace headers go out on calls to hosts no ServiceEntry names.
    pub unregistered_propagate: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            position: Position::Downstream,
            tracer: Tracer::Zipkin,
            extract: vec![
                Format::B3,
                Format::B3Multi,
                Format::TraceContext,
                Format::Jaeger,
            ],
            propagate: vec![Format::TraceContext, Format::B3Multi],
            bridge: true,
            trust: Trust::Continue,
            sampler: RatioSampler::new(1.0),
            response_header: None,
            traceresponse: false,
            server_timing: false,
            external: None,
            limits: HeadLimits::default(),
            envoy: EnvoyVersion::NEWEST_MEASURED,
            envoy_source: VersionSource::Assumed,
            dry_run: false,
        }
    }
}

/// Why a configuration was rejected: the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid tracejoin config: field `{}`: {}",
            self.field, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

fn err(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Config {
    /// Parses and checks plugin configuration bytes. Empty input means the defaults.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        let trimmed = bytes.trim_ascii();
        let raw = if trimmed.is_empty() {
            RawConfig::default()
        } else {
            let value = Json::parse(trimmed)
                .map_err(|e| err("<document>", format!("not valid JSON: {e}")))?;
            RawConfig::from_value(value)?
        };
        Config::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(p) = raw.position.as_deref() {
            config.position = one_of("position", p, &Position::ALL.map(|p| (p.name(), p)))?;
        }
        config.limits = head_limits(&raw, config.position)?;
        config.check_network(&raw)?;
        if let Some(t) = raw.tracer.as_deref() {
            config.tracer = one_of("tracer", t, &Tracer::ALL.map(|t| (t.name(), t)))?;
        }
        if let Some(names) = &raw.extract {
            config.extract = formats("extract", names)?;
        }
        if let Some(names) = &raw.propagate {
            config.propagate = formats("propagate", names)?;
            if config.propagate.is_empty() {
                return Err(err("propagate", "must name at least one format"));
            }
        }
        if let Some(bridge) = raw.bridge {
            config.bridge = bridge;
        }
        if let Some(t) = raw.trust.as_deref() {
            config.trust = one_of(
                "trust",
                t,
                &[
                    ("continue", Trust::Continue),
                    ("restart", Trust::Restart),
                    ("resample", Trust::Resample),
                ],
            )?;
        }
        if let Some(ratio) = raw.sampling_ratio {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(err("sampling_ratio", "must be a number from 0 to 1"));
            }
            config.sampler = RatioSampler::new(ratio);
        }
        if let Some(name) = raw.response_header {
            if !valid_header_name(&name) {
                return Err(err(
                    "response_header",
                    format!(
                        "{} is not a lowercase HTTP header name of at most 128 characters",
                        quoted(&name)
                    ),
                ));
            }
            config.response_header = Some(name);
        }
        if let Some(t) = raw.traceresponse {
            config.traceresponse = t;
        }
        if let Some(t) = raw.server_timing {
            config.server_timing = t;
        }
        if let Some(d) = raw.dry_run {
            config.dry_run = d;
        }
        if let Some(entries) = raw.external_services {
            let default_propagate = raw.external_propagate.unwrap_or(false);
            let mut services = Vec::with_capacity(entries.len());
            for (i, v) in entries.into_iter().enumerate() {
                services.push(services::external_service(i, v, default_propagate)?);
            }
            services::check_overlaps(&services)?;
            config.external = Some(External {
                matcher: Matcher::new(services),
                unregistered_propagate: raw.unregistered_propagate.unwrap_or(false),
            });
        } else if raw.external_propagate == Some(true) || raw.unregistered_propagate == Some(true) {
            let field = if raw.external_propagate == Some(true) {
                "external_propagate"
            } else {
                "unregistered_propagate"
            };
            return Err(err(
                field,
                "has no effect without `external_services` (an empty list enables unregistered-call tagging)",
            ));
        }
        if let Some(text) = raw.envoy_version.as_deref() {
            config.envoy = EnvoyVersion::parse(text).ok_or_else(|| {
                err(
                    "envoy_version",
                    format!(
                        "{} is not an Envoy release like \"1.36\" or \"1.36.4\"",
                        quoted(text)
                    ),
                )
            })?;
            config.envoy_source = VersionSource::Configured;
            if config.tracer == Tracer::ZipkinW3c && config.envoy < EnvoyVersion::ZIPKIN_W3C_SINCE {
                return Err(err(
                    "envoy_version",
                    format!(
                        "tracer zipkin_w3c needs Envoy {} or later (Zipkin's trace_context_option)",
                        EnvoyVersion::ZIPKIN_W3C_SINCE
                    ),
                ));
            }
        }
        config.check_trust()?;
        Ok(config)
    }

    /// The Envoy version read from the host at load, where the configuration names none.
    pub fn with_detected_envoy(mut self, detected: Option<EnvoyVersion>) -> Config {
        if let (VersionSource::Assumed, Some(version)) = (self.envoy_source, detected) {
            self.envoy = version;
            self.envoy_source = VersionSource::Detected;
        }
        self
    }

    /// The network position sees request heads only: no route and no response (so no
    /// response headers, and no header stripping: `external_services` there names TLS
    /// connections by their server name); and the tracer behind it reads what it writes
    /// (so no bridge).
    fn check_network(&self, raw: &RawConfig) -> Result<(), ConfigError> {
        if self.position != Position::Network {
            return Ok(());
        }
        let http_only = [
            ("response_header", raw.response_header.is_some()),
            ("traceresponse", raw.traceresponse == Some(true)),
            ("server_timing", raw.server_timing == Some(true)),
            ("external_propagate", raw.external_propagate.is_some()),
            (
                "unregistered_propagate",
                raw.unregistered_propagate.is_some(),
            ),
        ];
        if let Some((field, _)) = http_only.iter().find(|(_, given)| *given) {
            return Err(err(
                *field,
                "needs an HTTP position (downstream or upstream): the network position sees \
                 neither the route nor the response",
            ));
        }
        if raw.bridge.is_some() {
            return Err(err(
                "bridge",
                "has no effect with position network: Envoy's tracer reads the format \
                 tracejoin writes in front of it",
            ));
        }
        Ok(())
    }

    /// Whether a connection the network position stops following is closed rather than
    /// left: under `trust` no later request may reach the tracer with a client's context;
    /// a dry run closes nothing.
    pub fn closes_for_trust(&self) -> bool {
        self.trust != Trust::Continue && !self.dry_run
    }

    /// Restart and resample rewrite the context a client sent. That is only possible where
    /// the filter can see and overwrite everything Envoy's tracer does with it.
    fn check_trust(&self) -> Result<(), ConfigError> {
        // In front of the tracer, everything it reads is tracejoin's to rewrite.
        if self.trust == Trust::Continue
            || self.tracer == Tracer::None
            || self.position == Position::Network
        {
            return Ok(());
        }
        if self.position == Position::Downstream {
            return Err(err(
                "trust",
                "restart/resample need `position: upstream` (or `tracer: none`), or \
                 `position: network` in front of the tracer: Envoy's tracer continues the client's context and overwrites its headers after every listener filter",
            ));
        }
        if self.tracer == Tracer::OpenTelemetry {
            return Err(err(
                "trust",
                "restart/resample cannot be told apart from Envoy's own fresh trace with the \
                 opentelemetry tracer (traceparent carries no parent id); use tracer zipkin, zipkin_w3c, datadog or none",
            ));
        }
        Ok(())
    }
}

/// `max_request_headers_kb` (1 to 8192, as Envoy allows), `max_request_headers_count`,
/// the listener's `per_connection_buffer_limit_bytes` and the HCM's
/// `request_headers_timeout` (in ms).
fn head_limits(raw: &RawConfig, position: Position) -> Result<HeadLimits, ConfigError> {
    let given = [
        (
            "max_request_headers_kb",
            raw.max_request_headers_kb.is_some(),
        ),
        (
            "max_request_headers_count",
            raw.max_request_headers_count.is_some(),
        ),
        (
            "per_connection_buffer_limit_bytes",
            raw.per_connection_buffer_limit_bytes.is_some(),
        ),
        (
            "request_headers_timeout_ms",
            raw.request_headers_timeout_ms.is_some(),
        ),
    ];
    if position != Position::Network
        && let Some((field, _)) = given.iter().find(|(_, v)| *v)
    {
        return Err(err(*field, "has no effect without `position: network`"));
    }
    let mut limits = HeadLimits::default();
    if let Some(kb) = raw.max_request_headers_kb {
        if !(1..=8192).contains(&kb) {
            return Err(err("max_request_headers_kb", "must be from 1 to 8192"));
        }
        limits.max_head_bytes = usize::from(kb) * 1024;
    }
    if let Some(count) = raw.max_request_headers_count {
        if count == 0 {
            return Err(err("max_request_headers_count", "must be at least 1"));
        }
        limits.max_headers = usize::from(count);
    }
    if let Some(bytes) = raw.per_connection_buffer_limit_bytes {
        if !(1024.0..=f64::from(u32::MAX)).contains(&bytes) || bytes.fract() != 0.0 {
            return Err(err(
                "per_connection_buffer_limit_bytes",
                "must be a whole number of bytes from 1024 to 4294967295",
            ));
        }
        limits.max_held_bytes = bytes as usize;
    }
    if let Some(ms) = raw.request_headers_timeout_ms {
        if !(100.0..=3_600_000.0).contains(&ms) || ms.fract() != 0.0 {
            return Err(err(
                "request_headers_timeout_ms",
                "must be a whole number of milliseconds from 100 to 3600000",
            ));
        }
        limits.held_head_timeout_ms = ms as u64;
    }
    Ok(limits)
}

#[cfg(test)]
mod tests;
