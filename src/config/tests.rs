//! Configuration: defaults, every field, and rejection messages naming the field.
//!
//! The bad-config corpus half is at the end.
use crate::codec::Format;
use crate::config::{Config, EnvoyVersion, Position, Tracer, Trust, VersionSource};

fn rejected(json: &str) -> (String, String) {
    let e = Config::from_json(json.as_bytes()).unwrap_err();
    (e.field.clone(), e.to_string())
}

#[test]
fn empty_and_missing_config_are_the_defaults() {
    for json in ["", "  ", "{}"] {
        assert_eq!(
            Config::from_json(json.as_bytes()).unwrap(),
            Config::default()
        );
    }
    let d = Config::default();
    assert_eq!(d.position, Position::Downstream);
    assert_eq!(d.tracer, Tracer::Zipkin);
    assert_eq!(
        d.extract,
        vec![
            Format::B3,
            Format::B3Multi,
            Format::TraceContext,
            Format::Jaeger
        ]
    );
    assert_eq!(d.propagate, vec![Format::TraceContext, Format::B3Multi]);
    assert_eq!(d.trust, Trust::Continue);
    assert!(d.bridge);
}

#[test]
fn every_field_is_read() {
    let c = Config::from_json(
        br#"{"position":"upstream","tracer":"zipkin_w3c","extract":["jaeger","tracecontext"],
            "propagate":["b3"],"bridge":false,"trust":"resample","sampling_ratio":0.25,
            "response_header":"x-trace-id","traceresponse":true}"#,
    )
    .unwrap();
    assert_eq!(c.position, Position::Upstream);
    assert_eq!(c.tracer, Tracer::ZipkinW3c);
    assert_eq!(c.extract, vec![Format::Jaeger, Format::TraceContext]);
    assert_eq!(c.propagate, vec![Format::B3]);
    assert!(!c.bridge);
    assert_eq!(c.trust, Trust::Resample);
    assert_eq!(c.sampler.ratio(), 0.25);
    assert_eq!(c.response_header.as_deref(), Some("x-trace-id"));
    assert!(c.traceresponse);

    let n = Config::from_json(
        br#"{"position":"network","max_request_headers_kb":8,"max_request_headers_count":50,
            "per_connection_buffer_limit_bytes":16384,"request_headers_timeout_ms":5000}"#,
    )
    .unwrap();
    assert_eq!(n.limits.max_head_bytes, 8 * 1024);
    assert_eq!(n.limits.max_headers, 50);
    assert_eq!(n.limits.max_held_bytes, 16384);
    assert_eq!(n.limits.held_head_timeout_ms, 5000);
    assert_eq!(Config::default().limits.held_head_timeout_ms, 10_000);
}

#[test]
fn bad_values_name_the_field_and_the_reason() {
    let cases = [
        (
            r#"{"sampling_ratio":1.5}"#,
            "sampling_ratio",
            "a number from 0 to 1",
        ),
        (
            r#"{"sampling_ratio":-0.1}"#,
            "sampling_ratio",
            "a number from 0 to 1",
        ),
        (
            r#"{"tracer":"jaeger"}"#,
            "tracer",
            "expected one of none, zipkin",
        ),
        (r#"{"position":"sidecar"}"#, "position", "unknown value"),
        (
            r#"{"propagate":["tracecontext","w3c"]}"#,
            "propagate[1]",
            "unknown format \"w3c\"",
        ),
        (r#"{"extract":["b3","b3"]}"#, "extract[1]", "listed twice"),
        (r#"{"propagate":[]}"#, "propagate", "at least one"),
        (r#"{"trust":"maybe"}"#, "trust", "unknown value"),
        (r#"{"trust":"restart"}"#, "trust", "position: upstream"),
        (
            r#"{"position":"upstream","tracer":"opentelemetry","trust":"resample"}"#,
            "trust",
            "opentelemetry",
        ),
        (
            r#"{"response_header":"X-Trace"}"#,
            "response_header",
            "lowercase",
        ),
        (r#"{"samplingratio":1}"#, "samplingratio", "unknown field"),
        (
            r#"{"bridge":"yes"}"#,
            "bridge",
            "invalid type: a string, expected true or false",
        ),
        (
            r#"{"sampling_ratio":"1"}"#,
            "sampling_ratio",
            "invalid type: a string, expected a number",
        ),
        (r#"{"extract":"b3"}"#, "extract", "expected a list"),
        (
            r#"{"extract":["b3",7]}"#,
            "extract[1]",
            "invalid type: a number, expected a string",
        ),
        (
            r#"{"external_services":[{"name":"a","hosts":["a.com"],"ports":[443,70000]}]}"#,
            "external_services[0].ports[1]",
            "expected an integer from 1 to 65535",
        ),
        (r#"[1]"#, "<document>", "must be a JSON object"),
        (r#"{not json"#, "<document>", "key must be a string"),
    ];
    for (json, field, reason) in cases {
        let (got_field, message) = rejected(json);
        assert_eq!(got_field, field, "{json}: {message}");
        assert!(message.contains(reason), "{json}: {message}");
        assert!(
            message.starts_with(&format!("invalid tracejoin config: field `{field}`")),
            "{message}"
        );
    }
}

#[test]
fn trust_rewrites_are_allowed_where_the_filter_sees_everything() {
    for json in [
        r#"{"tracer":"none","trust":"restart"}"#,
        r#"{"position":"upstream","tracer":"zipkin","trust":"restart"}"#,
        r#"{"position":"upstream","tracer":"zipkin_w3c","trust":"resample"}"#,
    ] {
        assert!(Config::from_json(json.as_bytes()).is_ok(), "{json}");
    }
}

/// The shipped JSON Schema describes exactly the fields, values and defaults the filter
/// reads.
#[test]
fn json_schema_matches_the_config() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../schema/tracejoin-config.schema.json")).unwrap();
    let props = schema["properties"].as_object().unwrap();
    let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut fields = crate::config::FIELDS.to_vec();
    fields.sort_unstable();
    assert_eq!(names, fields);
    assert_eq!(
        schema["additionalProperties"],
        serde_json::Value::Bool(false)
    );

    // Every enum value is accepted, and nothing else.
    for field in ["position", "tracer", "trust"] {
        for value in props[field]["enum"].as_array().unwrap() {
            let json = serde_json::json!({ field: value, "position": if field == "position" { value.clone() } else { "upstream".into() }, "tracer": if field == "tracer" { value.clone() } else { "zipkin".into() } });
            assert!(
                Config::from_json(json.to_string().as_bytes()).is_ok(),
                "{json}"
            );
        }
    }
    let formats: Vec<&str> = schema["$defs"]["format"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(formats, Format::ALL.map(Format::name));

    // The defaults written in the schema are the defaults the filter applies.
    let mut defaults = serde_json::Map::new();
    for (name, prop) in props {
        defaults.insert(name.clone(), prop["default"].clone());
    }
    let from_defaults =
        Config::from_json(serde_json::Value::Object(defaults).to_string().as_bytes()).unwrap();
    assert_eq!(from_defaults, Config::default());
}

#[test]
fn envoy_version_is_configured_detected_or_the_newest_measured() {
    let v = EnvoyVersion::new;
    let configured = Config::from_json(br#"{"envoy_version":"1.36.4"}"#).unwrap();
    assert_eq!(
        (configured.envoy, configured.envoy_source),
        (v(1, 36), VersionSource::Configured)
    );
    // The configuration wins over what the host says.
    assert_eq!(
        configured.with_detected_envoy(Some(v(1, 40))).envoy,
        v(1, 36)
    );
    let default = Config::default();
    assert_eq!(
        (default.envoy, default.envoy_source),
        (EnvoyVersion::NEWEST_MEASURED, VersionSource::Assumed)
    );
    let detected = Config::default().with_detected_envoy(Some(v(1, 38)));
    assert_eq!(
        (detected.envoy, detected.envoy_source),
        (v(1, 38), VersionSource::Detected)
    );
    assert_eq!(
        Config::default().with_detected_envoy(None).envoy_source,
        VersionSource::Assumed
    );
    assert_eq!(EnvoyVersion::parse("1.40"), Some(v(1, 40)));
    assert_eq!(EnvoyVersion::parse("2.0.1"), Some(v(2, 0)));
    for bad in [
        "",
        "1",
        "1.",
        ".36",
        "1.36.",
        "1.36.4.1",
        "v1.36",
        "1.36-dev",
        " 1.36",
        "1.+3",
        "1.9999999",
    ] {
        assert_eq!(EnvoyVersion::parse(bad), None, "{bad:?}");
    }
    assert!(Config::from_json(br#"{"tracer":"zipkin_w3c","envoy_version":"1.36"}"#).is_ok());
    assert_eq!(v(1, 36).to_string(), "1.36");
}

/// `xds.node.user_agent_build_version` as Envoy 1.36.4 and 1.40.0 returned it (measured by
/// `test_the_filter_detects_envoys_release`: the version, then the build metadata struct).
#[test]
fn envoy_version_from_the_hosts_build_version() {
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let v1_36_4 = hex(concat!(
        "0a06080110241804",
        "128d010a1a0a0f7265766973696f6e2e73746174757312071a05436c65616e0a170a0a6275696c642e7479706512091a0752454c454153450a3a0a0c7265766973696f6e2e736861122a1a28626164383238306465383563323562313437613930633164396238613863363761313365373133340a1a0a0b73736c2e76657273696f6e120b1a09426f72696e6753534c"
    ));
    assert_eq!(
        EnvoyVersion::from_build_version_proto(&v1_36_4),
        Some(EnvoyVersion::new(1, 36))
    );
    let v1_40_0 = hex(concat!(
        "0a0408011028",
        "128d010a1a0a0f7265766973696f6e2e73746174757312071a05436c65616e0a170a0a6275696c642e7479706512091a0752454c454153450a3a0a0c7265766973696f6e2e736861122a1a28396535353830393333373339373735653862636536393661353761326531626339393336386632330a1a0a0b73736c2e76657273696f6e120b1a09426f72696e6753534c"
    ));
    assert_eq!(
        EnvoyVersion::from_build_version_proto(&v1_40_0),
        Some(EnvoyVersion::new(1, 40))
    );
    // Empty, no version numbers, cut short, an unknown wire type, a varint past 10 bytes.
    for bad in [
        "",
        "0a00",
        "0a0608011024",
        "0f",
        "0a0b08ffffffffffffffffffff01",
    ] {
        assert_eq!(
            EnvoyVersion::from_build_version_proto(&hex(bad)),
            None,
            "{bad}"
        );
    }
}

#[test]
fn sampling_ratio_is_logged_to_six_decimals() {
    let text = |json: &str| {
        Config::from_json(json.as_bytes())
            .unwrap()
            .sampler
            .ratio_text()
    };
    assert_eq!(text("{}"), "1.000000");
    assert_eq!(text(r#"{"sampling_ratio":0.25}"#), "0.250000");
    assert_eq!(text(r#"{"sampling_ratio":0.0000015}"#), "0.000002");
    assert_eq!(text(r#"{"sampling_ratio":0}"#), "0.000000");
}

// ---------------------------------------------------------------------------------------
// The bad-config corpus
// ---------------------------------------------------------------------------------------

// The bad-config corpus (`tests/corpus/bad-configs.json`), natively: every case is rejected
// by [`Config::from_json`] naming the case's field, with a reason containing the case's text.
// The Envoy half (`tests/integration/test_bad_configs.py`) feeds the same cases to a real
// Envoy and expects the same line in its log.
//
// A case is `{name, config | config_generated, field, reason_contains}`; `config` is the
// plugin configuration exactly as Envoy passes it, `config_generated` (`prefix` + `repeat`
// × `times` + `suffix`) stands for the ones too big to write out.
use std::collections::HashSet;

use serde_json::Value;

const CORPUS: &str = include_str!("../../tests/corpus/bad-configs.json");

fn corpus() -> Vec<Value> {
    serde_json::from_str(CORPUS).expect("tests/corpus/bad-configs.json is a JSON list")
}

fn text<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("case {}: `{key}` must be a string", case["name"]))
}

/// The configuration bytes of a case, as Envoy would pass them.
fn config_of(case: &Value) -> String {
    if let Some(config) = case.get("config") {
        return config.as_str().expect("`config` is a string").to_owned();
    }
    let generated = &case["config_generated"];
    let times = generated["times"].as_u64().expect("`times` is a count");
    let mut config = text(generated, "prefix").to_owned();
    config.push_str(&text(generated, "repeat").repeat(usize::try_from(times).unwrap()));
    config.push_str(text(generated, "suffix"));
    config
}

#[test]
fn every_bad_config_is_rejected_naming_its_field() {
    let cases = corpus();
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let name = text(case, "name");
        let (field, reason) = (text(case, "field"), text(case, "reason_contains"));
        match Config::from_json(config_of(case).as_bytes()) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) => {
                let message = e.to_string();
                if e.field != field
                    || !e.reason.contains(reason)
                    || !message.starts_with(&format!("invalid tracejoin config: field `{field}`: "))
                {
                    let shown: String = message.chars().take(300).collect();
                    failures.push(format!(
                        "{name}: expected field `{field}` and {reason:?}, got: {shown}"
                    ));
                }
            }
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 40, "only {checked} cases");
}

#[test]
fn cases_are_named_once_and_break_different_things() {
    let cases = corpus();
    let mut names = HashSet::new();
    let mut configs = HashSet::new();
    for case in &cases {
        let name = text(case, "name");
        assert!(names.insert(name.to_owned()), "{name} is listed twice");
        assert!(configs.insert(config_of(case)), "{name} repeats a config");
        let keys: HashSet<&str> = case
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let known: HashSet<&str> = [
            "name",
            "config",
            "config_generated",
            "field",
            "reason_contains",
        ]
        .into();
        assert!(keys.is_subset(&known), "{name}: unknown keys {keys:?}");
        assert!(
            keys.contains("config") != keys.contains("config_generated"),
            "{name}: one of `config` and `config_generated`"
        );
        assert!(
            keys.contains("field") && keys.contains("reason_contains"),
            "{name}: `field` and `reason_contains`"
        );
    }
}

#[test]
fn server_timing_is_read_and_needs_an_http_position() {
    let c = Config::from_json(br#"{"server_timing":true}"#).unwrap();
    assert!(c.server_timing && !c.traceresponse);
    assert!(!Config::default().server_timing);
    let e = Config::from_json(br#"{"server_timing":1}"#).unwrap_err();
    assert_eq!(e.field, "server_timing");
    let e = Config::from_json(br#"{"position":"network","tracer":"zipkin","server_timing":true}"#)
        .unwrap_err();
    assert_eq!(e.field, "server_timing");
}

#[test]
fn dry_run_is_off_unless_set_true() {
    for (json, expected) in [
        ("{}", false),
        (r#"{"dry_run":null}"#, false),
        (r#"{"dry_run":false}"#, false),
        (r#"{"dry_run":true}"#, true),
        (r#"{"position":"network","dry_run":true}"#, true),
        (
            r#"{"tracer":"none","trust":"restart","dry_run":true}"#,
            true,
        ),
    ] {
        assert_eq!(
            Config::from_json(json.as_bytes()).unwrap().dry_run,
            expected,
            "{json}"
        );
    }
    let e = Config::from_json(br#"{"dry_run":"yes"}"#).unwrap_err();
    assert_eq!(e.field, "dry_run");
    assert_eq!(
        e.to_string(),
        "invalid tracejoin config: field `dry_run`: invalid type: a string, expected true or false"
    );
}
