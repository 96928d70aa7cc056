//! The bad-config corpus (`tests/corpus/bad-configs.json`), natively: every case is rejected
//! by [`Config::from_json`] naming the case's field, with a reason containing the case's text.
//! The Envoy half (`tests/integration/test_bad_configs.py`) feeds the same cases to a real
//! Envoy and expects the same line in its log.
//!
//! A case is `{name, config | config_generated, field, reason_contains}`; `config` is the
//! plugin configuration exactly as Envoy passes it, `config_generated` (`prefix` + `repeat`
//! × `times` + `suffix`) stands for the ones too big to write out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashSet;

use serde_json::Value;

use crate::config::Config;

const CORPUS: &str = include_str!("../tests/corpus/bad-configs.json");

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
