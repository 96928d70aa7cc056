//! The plugin JSON as written, read field by field so that every error names its field,
//! and the checks on single values (names, formats, header names).

use super::json::Json;
use super::{ConfigError, err};
use crate::codec::Format;

/// The JSON as written. Every field is optional; unknown fields are rejected so a typo is
/// an error at load, not a silently ignored setting.
#[derive(Default)]
pub(super) struct RawConfig {
    pub(super) position: Option<String>,
    pub(super) tracer: Option<String>,
    pub(super) extract: Option<Vec<String>>,
    pub(super) propagate: Option<Vec<String>>,
    pub(super) bridge: Option<bool>,
    pub(super) trust: Option<String>,
    pub(super) sampling_ratio: Option<f64>,
    pub(super) response_header: Option<String>,
    pub(super) traceresponse: Option<bool>,
    pub(super) server_timing: Option<bool>,
    pub(super) external_services: Option<Vec<Json>>,
    pub(super) external_propagate: Option<bool>,
    pub(super) unregistered_propagate: Option<bool>,
    pub(super) max_request_headers_kb: Option<u16>,
    pub(super) max_request_headers_count: Option<u16>,
    pub(super) per_connection_buffer_limit_bytes: Option<f64>,
    pub(super) request_headers_timeout_ms: Option<f64>,
    pub(super) envoy_version: Option<String>,
    pub(super) dry_run: Option<bool>,
}

/// The field names, as written in JSON (also the JSON Schema's `properties`).
pub const FIELDS: [&str; 19] = [
    "position",
    "tracer",
    "extract",
    "propagate",
    "bridge",
    "trust",
    "sampling_ratio",
    "response_header",
    "traceresponse",
    "server_timing",
    "external_services",
    "external_propagate",
    "unregistered_propagate",
    "max_request_headers_kb",
    "max_request_headers_count",
    "per_connection_buffer_limit_bytes",
    "request_headers_timeout_ms",
    "envoy_version",
    "dry_run",
];

impl RawConfig {
    /// Reads field by field so that a type error names its field (serde's own messages
    /// for nested type errors do not).
    pub(super) fn from_value(value: Json) -> Result<RawConfig, ConfigError> {
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
                "server_timing" => raw.server_timing = optional(&key, v, convert)?,
                "external_services" => raw.external_services = optional(&key, v, convert_list)?,
                "external_propagate" => raw.external_propagate = optional(&key, v, convert)?,
                "unregistered_propagate" => {
                    raw.unregistered_propagate = optional(&key, v, convert)?
                }
                "max_request_headers_kb" => {
                    raw.max_request_headers_kb = optional(&key, v, convert)?
                }
                "max_request_headers_count" => {
                    raw.max_request_headers_count = optional(&key, v, convert)?
                }
                "per_connection_buffer_limit_bytes" => {
                    raw.per_connection_buffer_limit_bytes = optional(&key, v, convert)?
                }
                "request_headers_timeout_ms" => {
                    raw.request_headers_timeout_ms = optional(&key, v, convert)?
                }
                "envoy_version" => raw.envoy_version = optional(&key, v, convert)?,
                "dry_run" => raw.dry_run = optional(&key, v, convert)?,
                _ => {
                    return Err(err(
                        shown_key(&key),
                        format!("unknown field; expected one of {}", listed(&FIELDS)),
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
pub(super) trait FromJson: Sized {
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
pub(super) fn convert<T: FromJson>(field: &str, value: Json) -> Result<T, ConfigError> {
    let found = value.kind();
    T::from_json(value).ok_or_else(|| {
        err(
            field,
            format!("invalid type: {found}, expected {}", T::EXPECTED),
        )
    })
}

/// Converts a list; a type error names the element (`field[i]`).
pub(super) fn convert_list<T: FromJson>(field: &str, value: Json) -> Result<Vec<T>, ConfigError> {
    let Json::Array(items) = value else {
        return Err(err(
            field,
            format!("invalid type: {}, expected a list", value.kind()),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        out.push(convert(&format!("{field}[{i}]"), item)?);
    }
    Ok(out)
}

/// An optional field: JSON `null` is the same as leaving it out.
pub(super) fn optional<T>(
    field: &str,
    value: Json,
    convert: fn(&str, Json) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    if value == Json::Null {
        return Ok(None);
    }
    convert(field, value).map(Some)
}

/// JSON allows repeated keys and parsers keep the last; a config that says two things about
/// one field is a mistake worth a load error. `given` has a bit per known field; unknown
/// keys are left to the caller.
pub(super) fn given_once(
    given: &mut u32,
    known: &[&str],
    key: &str,
    prefix: &str,
) -> Result<(), ConfigError> {
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
pub(super) fn quoted(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", text.get(..cut).unwrap_or_default()),
        None => format!("{text:?}"),
    }
}

/// A key as it appears in an error's field name: as written when it is a short plain word,
/// quoted otherwise (an empty key would vanish, a long or odd one would flood the log).
pub(super) fn shown_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain { key.to_owned() } else { quoted(key) }
}

/// `a, b, c`: what `[&str]::join` gives, without its generic code in the module.
pub(super) fn listed(names: &[&str]) -> String {
    let mut out = String::new();
    for name in names {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(name);
    }
    out
}

pub(super) fn one_of<T: Copy>(
    field: &str,
    value: &str,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            let names = listed(&names);
            err(
                field,
                format!("unknown value {}; expected one of {names}", quoted(value)),
            )
        })
}

pub(super) fn formats(field: &str, names: &[String]) -> Result<Vec<Format>, ConfigError> {
    let mut out: Vec<Format> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let format = Format::from_name(name).ok_or_else(|| {
            err(
                format!("{field}[{i}]"),
                format!(
                    "unknown format {}; expected one of tracecontext, b3, b3multi, jaeger, datadog, xray, ottrace",
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
pub(super) fn dns1123(name: &str, max_len: usize, dots: bool) -> bool {
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
pub(super) const MAX_HEADER_NAME_LEN: usize = 128;

/// An HTTP header name the filter may add: a lowercase token (HTTP/2 requires lowercase).
pub(super) fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HEADER_NAME_LEN
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b)
        })
}
