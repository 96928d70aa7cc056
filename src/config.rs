//! Plugin configuration: the JSON an operator writes, checked and compiled once at load.

use std::fmt;

use crate::codec::Format;
use crate::external::{ExternalService, Matcher, valid_host};
use crate::json::Json;
use crate::sampling::RatioSampler;

/// Where the filter runs in Envoy.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Position {
    /// A listener HTTP filter (what Istio's WasmPlugin installs): after Envoy's tracer has
    /// extracted, before it injects.
    Downstream,
    /// A router upstream HTTP filter: after Envoy's tracer injected its span's context.
    Upstream,
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
    /// Tagging of calls that leave the mesh; `None` when `external_services` is not set
    /// (then no request pays for it).
    pub external: Option<External>,
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
            external: None,
        }
    }
}

/// The JSON as written. Every field is optional; unknown fields are rejected so a typo is
/// an error at load, not a silently ignored setting.
#[derive(Default)]
struct RawConfig {
    position: Option<String>,
    tracer: Option<String>,
    extract: Option<Vec<String>>,
    propagate: Option<Vec<String>>,
    bridge: Option<bool>,
    trust: Option<String>,
    sampling_ratio: Option<f64>,
    response_header: Option<String>,
    traceresponse: Option<bool>,
    external_services: Option<Vec<Json>>,
    external_propagate: Option<bool>,
    unregistered_propagate: Option<bool>,
}

/// The field names, as written in JSON (also the JSON Schema's `properties`).
pub const FIELDS: [&str; 12] = [
    "position",
    "tracer",
    "extract",
    "propagate",
    "bridge",
    "trust",
    "sampling_ratio",
    "response_header",
    "traceresponse",
    "external_services",
    "external_propagate",
    "unregistered_propagate",
];

impl RawConfig {
    /// Reads field by field so that a type error names its field (serde's own messages
    /// for nested type errors do not).
    fn from_value(value: Json) -> Result<RawConfig, ConfigError> {
        let Json::Object(map) = value else {
            return Err(err("<document>", "the configuration must be a JSON object"));
        };
        let mut raw = RawConfig::default();
        let mut given = 0u32;
        for (key, v) in map {
            given_once(&mut given, &FIELDS, &key, "")?;
            match key.as_str() {
                "position" => raw.position = optional(&key, v, convert)?,
                "tracer" => raw.tracer = optional(&key, v, convert)?,
                "extract" => raw.extract = optional(&key, v, convert_list)?,
                "propagate" => raw.propagate = optional(&key, v, convert_list)?,
                "bridge" => raw.bridge = optional(&key, v, convert)?,
                "trust" => raw.trust = optional(&key, v, convert)?,
                "sampling_ratio" => raw.sampling_ratio = optional(&key, v, convert)?,
                "response_header" => raw.response_header = optional(&key, v, convert)?,
                "traceresponse" => raw.traceresponse = optional(&key, v, convert)?,
                "external_services" => raw.external_services = optional(&key, v, convert_list)?,
                "external_propagate" => raw.external_propagate = optional(&key, v, convert)?,
                "unregistered_propagate" => {
                    raw.unregistered_propagate = optional(&key, v, convert)?
                }
                _ => {
                    return Err(err(
                        shown_key(&key),
                        format!("unknown field; expected one of {}", FIELDS.join(", ")),
                    ));
                }
            }
        }
        Ok(raw)
    }
}

/// A JSON value converted to a config type. Hand-written rather than serde's `from_value`:
/// its messages format the offending value (floats pull a float printer into the .wasm)
/// and do not name the field; these name the JSON kinds only.
trait FromJson: Sized {
    const EXPECTED: &'static str;
    fn from_json(value: Json) -> Option<Self>;
}

impl FromJson for String {
    const EXPECTED: &'static str = "a string";
    fn from_json(value: Json) -> Option<Self> {
        match value {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

impl FromJson for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_json(value: Json) -> Option<Self> {
        match value {
            Json::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl FromJson for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_json(value: Json) -> Option<Self> {
        match value {
            Json::Number(n) => Some(n),
            _ => None,
        }
    }
}

impl FromJson for u16 {
    const EXPECTED: &'static str = "an integer from 1 to 65535";
    fn from_json(value: Json) -> Option<Self> {
        match value {
            // f64 holds every u16 exactly; 443.5 and 1e6 are not ports.
            Json::Number(n) if n.fract() == 0.0 && (0.0..=65535.0).contains(&n) => Some(n as u16),
            _ => None,
        }
    }
}

impl FromJson for Json {
    const EXPECTED: &'static str = "a JSON value";
    fn from_json(value: Json) -> Option<Self> {
        Some(value)
    }
}

/// Converts one field's value; a type error names the field.
fn convert<T: FromJson>(field: &str, value: Json) -> Result<T, ConfigError> {
    let found = value.kind();
    T::from_json(value).ok_or_else(|| {
        err(
            field,
            format!("invalid type: {found}, expected {}", T::EXPECTED),
        )
    })
}

/// Converts a list; a type error names the element (`field[i]`).
fn convert_list<T: FromJson>(field: &str, value: Json) -> Result<Vec<T>, ConfigError> {
    let Json::Array(items) = value else {
        return Err(err(
            field,
            format!("invalid type: {}, expected a list", value.kind()),
        ));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| convert(&format!("{field}[{i}]"), item))
        .collect()
}

/// An optional field: JSON `null` is the same as leaving it out.
fn optional<T>(
    field: &str,
    value: Json,
    convert: fn(&str, Json) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    if value == Json::Null {
        return Ok(None);
    }
    convert(field, value).map(Some)
}

/// The fields of one `external_services` entry.
const EXTERNAL_SERVICE_FIELDS: [&str; 5] = ["name", "namespace", "hosts", "ports", "propagate"];

/// JSON allows repeated keys and parsers keep the last; a config that says two things about
/// one field is a mistake worth a load error. `given` has a bit per known field; unknown
/// keys are left to the caller.
fn given_once(given: &mut u32, known: &[&str], key: &str, prefix: &str) -> Result<(), ConfigError> {
    if let Some(i) = known.iter().position(|k| *k == key) {
        let bit = 1u32 << i;
        if *given & bit != 0 {
            return Err(err(format!("{prefix}{key}"), "is given more than once"));
        }
        *given |= bit;
    }
    Ok(())
}

/// Operator text quoted for a log line: escaped, and cut to 64 characters.
fn quoted(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", text.get(..cut).unwrap_or_default()),
        None => format!("{text:?}"),
    }
}

/// A key as it appears in an error's field name: as written when it is a short plain word,
/// quoted otherwise (an empty key would vanish, a long or odd one would flood the log).
fn shown_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain { key.to_owned() } else { quoted(key) }
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

fn one_of<T: Copy>(field: &str, value: &str, choices: &[(&str, T)]) -> Result<T, ConfigError> {
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            err(
                field,
                format!(
                    "unknown value {}; expected one of {}",
                    quoted(value),
                    names.join(", ")
                ),
            )
        })
}

fn formats(field: &str, names: &[String]) -> Result<Vec<Format>, ConfigError> {
    let mut out: Vec<Format> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let format = Format::from_name(name).ok_or_else(|| {
            err(
                format!("{field}[{i}]"),
                format!(
                    "unknown format {}; expected one of tracecontext, b3, b3multi, jaeger",
                    quoted(name)
                ),
            )
        })?;
        if out.contains(&format) {
            return Err(err(
                format!("{field}[{i}]"),
                format!("format {} is listed twice", quoted(name)),
            ));
        }
        out.push(format);
    }
    Ok(out)
}

/// A Kubernetes DNS-1123 name: a label (lowercase letters, digits and `-`, starting and
/// ending with a letter or digit, at most 63) or, with `dots`, labels joined by `.`.
fn dns1123(name: &str, max_len: usize, dots: bool) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let label = |l: &[u8]| match (l.first(), l.last()) {
        (Some(first), Some(last)) => {
            l.len() <= 63 && alnum(first) && alnum(last) && l.iter().all(|b| alnum(b) || *b == b'-')
        }
        _ => false,
    };
    let bytes = name.as_bytes();
    bytes.len() <= max_len
        && if dots {
            bytes.split(|b| *b == b'.').all(label)
        } else {
            label(bytes)
        }
}

/// The longest `response_header` name accepted (Envoy's whole header block defaults to 60 KiB).
const MAX_HEADER_NAME_LEN: usize = 128;

/// An HTTP header name the filter may add: a lowercase token (HTTP/2 requires lowercase).
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HEADER_NAME_LEN
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b)
        })
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
            config.position = one_of(
                "position",
                p,
                &[
                    ("downstream", Position::Downstream),
                    ("upstream", Position::Upstream),
                ],
            )?;
        }
        if let Some(t) = raw.tracer.as_deref() {
            config.tracer = one_of(
                "tracer",
                t,
                &[
                    ("none", Tracer::None),
                    ("zipkin", Tracer::Zipkin),
                    ("zipkin_w3c", Tracer::ZipkinW3c),
                    ("opentelemetry", Tracer::OpenTelemetry),
                ],
            )?;
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
        if let Some(entries) = raw.external_services {
            let default_propagate = raw.external_propagate.unwrap_or(false);
            let services = entries
                .into_iter()
                .enumerate()
                .map(|(i, v)| external_service(i, v, default_propagate))
                .collect::<Result<Vec<_>, _>>()?;
            check_overlaps(&services)?;
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
        config.check_trust()?;
        Ok(config)
    }

    /// Restart and resample rewrite the context a client sent. That is only possible where
    /// the filter can see and overwrite everything Envoy's tracer does with it.
    fn check_trust(&self) -> Result<(), ConfigError> {
        if self.trust == Trust::Continue || self.tracer == Tracer::None {
            return Ok(());
        }
        if self.position == Position::Downstream {
            return Err(err(
                "trust",
                "restart/resample need `position: upstream` (or `tracer: none`): Envoy's tracer \
                 continues the client's context and overwrites its headers after every listener filter",
            ));
        }
        if self.tracer == Tracer::OpenTelemetry {
            return Err(err(
                "trust",
                "restart/resample cannot be told apart from Envoy's own fresh trace with the \
                 opentelemetry tracer (traceparent carries no parent id); use tracer zipkin or none",
            ));
        }
        Ok(())
    }
}

/// One `external_services` entry: `{name, namespace?, hosts, ports?, propagate?}`.
fn external_service(
    index: usize,
    value: Json,
    default_propagate: bool,
) -> Result<ExternalService, ConfigError> {
    let at = |field: &str| format!("external_services[{index}].{field}");
    let Json::Object(map) = value else {
        return Err(err(
            format!("external_services[{index}]"),
            "must be an object",
        ));
    };
    let mut service = ExternalService {
        name: String::new(),
        namespace: "default".to_owned(),
        hosts: Vec::new(),
        ports: Vec::new(),
        propagate: default_propagate,
    };
    let mut given = 0u32;
    for (key, v) in map {
        let field = at(&shown_key(&key));
        given_once(
            &mut given,
            &EXTERNAL_SERVICE_FIELDS,
            &key,
            &format!("external_services[{index}]."),
        )?;
        match key.as_str() {
            "name" => service.name = convert(&field, v)?,
            "namespace" => service.namespace = convert(&field, v)?,
            "hosts" => service.hosts = convert_list(&field, v)?,
            "ports" => service.ports = convert_list(&field, v)?,
            "propagate" => service.propagate = convert(&field, v)?,
            _ => {
                return Err(err(
                    field,
                    format!(
                        "unknown field; expected one of {}",
                        EXTERNAL_SERVICE_FIELDS.join(", ")
                    ),
                ));
            }
        }
    }
    // Names become stat names and filter-state values: keep them to Kubernetes' own rules
    // (a resource name is a DNS-1123 subdomain, a namespace a DNS-1123 label).
    if !dns1123(&service.name, 253, true) {
        return Err(err(
            at("name"),
            format!(
                "{} is not a Kubernetes resource name (lowercase labels of letters, digits and \
                 `-` joined by `.`, each starting and ending with a letter or digit, at most 253)",
                quoted(&service.name)
            ),
        ));
    }
    if !dns1123(&service.namespace, 63, false) {
        return Err(err(
            at("namespace"),
            format!(
                "{} is not a Kubernetes namespace name (lowercase letters, digits, `-`, \
                 starting and ending with a letter or digit, at most 63)",
                quoted(&service.namespace)
            ),
        ));
    }
    if service.hosts.is_empty() {
        return Err(err(at("hosts"), "must list at least one host"));
    }
    for (h, host) in service.hosts.iter().enumerate() {
        valid_host(host).map_err(|reason| {
            err(
                format!("external_services[{index}].hosts[{h}]"),
                format!("{}: {reason}", quoted(host)),
            )
        })?;
    }
    if let Some((p, _)) = service.ports.iter().enumerate().find(|(_, p)| **p == 0) {
        return Err(err(
            format!("external_services[{index}].ports[{p}]"),
            "0 is not a port",
        ));
    }
    Ok(service)
}

/// Two entries claiming the same host for the same ports would make the match arbitrary.
fn check_overlaps(services: &[ExternalService]) -> Result<(), ConfigError> {
    // (host, port) -> (entry, host index): one pass, also catching repeats within an entry.
    let mut seen: std::collections::HashMap<(String, Option<u16>), (usize, usize)> =
        std::collections::HashMap::new();
    for (i, service) in services.iter().enumerate() {
        let ports: Vec<Option<u16>> = if service.ports.is_empty() {
            vec![None]
        } else {
            service.ports.iter().copied().map(Some).collect()
        };
        for (h, host) in service.hosts.iter().enumerate() {
            for (p, port) in ports.iter().enumerate() {
                let Some((other, other_host)) =
                    seen.insert((host.to_ascii_lowercase(), *port), (i, h))
                else {
                    continue;
                };
                return Err(if other == i && other_host == h {
                    err(
                        format!("external_services[{i}].ports[{p}]"),
                        format!("port {} is listed twice", port.unwrap_or(0)),
                    )
                } else if other == i {
                    err(
                        format!("external_services[{i}].hosts[{h}]"),
                        format!("{} is listed twice", quoted(host)),
                    )
                } else {
                    let on = port.map(|p| format!(" on port {p}")).unwrap_or_default();
                    err(
                        format!("external_services[{i}].hosts"),
                        format!(
                            "{}{on} is already listed by external_services[{other}] ({})",
                            quoted(host),
                            services.get(other).map(|s| s.name.as_str()).unwrap_or("")
                        ),
                    )
                });
            }
        }
    }
    Ok(())
}
