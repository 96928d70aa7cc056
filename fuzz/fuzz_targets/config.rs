//! `Config::from_json` on arbitrary bytes: never panics; accepts only JSON objects (or
//! empty input, meaning the defaults); what it accepts is consistent; what it rejects
//! names a known field (or the unknown key itself) with a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracejoin::config::{Config, FIELDS, Position, Tracer, Trust};
use tracejoin::external::valid_host;

const SERVICE_FIELDS: [&str; 5] = ["name", "namespace", "hosts", "ports", "propagate"];

fuzz_target!(|data: &[u8]| {
    let result = Config::from_json(data);
    let value = serde_json::from_slice::<serde_json::Value>(data.trim_ascii());
    match result {
        Ok(config) => {
            let object =
                data.trim_ascii().is_empty() || matches!(value, Ok(serde_json::Value::Object(_)));
            assert!(
                object,
                "accepted a non-object {:?}",
                String::from_utf8_lossy(data)
            );
            check_config(&config);
            // Loading is deterministic.
            assert_eq!(Config::from_json(data).ok(), Some(config));
        }
        Err(e) => {
            assert!(!e.reason.is_empty());
            assert!(
                known_field(&e.field, &e.reason),
                "error names {:?} ({})",
                e.field,
                e.reason
            );
            // Display never panics and carries both.
            let shown = e.to_string();
            assert!(shown.contains(&e.field) && shown.contains(&e.reason));
            // The loader's JSON reading agrees with serde_json's on what is JSON at all.
            let not_json = e.field == "<document>" && e.reason.starts_with("not valid JSON");
            assert_eq!(
                not_json,
                value.is_err() && !data.trim_ascii().is_empty(),
                "{e}; serde_json: {value:?}"
            );
        }
    }
});

/// A field an error may name: a top-level field, `<document>`, a list element
/// (`extract[2]`), an `external_services` entry or its fields; or, for an unknown field,
/// the key as written.
fn known_field(field: &str, reason: &str) -> bool {
    if reason.starts_with("unknown field") {
        // The key as written (top level, or `external_services[i].<key>`).
        return !FIELDS.contains(&field);
    }
    if reason == "is given more than once" {
        // A repeated key, as written.
        return true;
    }
    if field == "<document>" || FIELDS.contains(&field) {
        return true;
    }
    let indexed = |s: &str, prefix: &str| -> bool {
        s.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|i| i.parse::<usize>().is_ok())
    };
    if indexed(field, "extract")
        || indexed(field, "propagate")
        || indexed(field, "external_services")
    {
        return true;
    }
    let Some(rest) = field.strip_prefix("external_services[") else {
        return false;
    };
    let Some((index, sub)) = rest.split_once("].") else {
        return false;
    };
    index.parse::<usize>().is_ok()
        && (SERVICE_FIELDS.contains(&sub) || indexed(sub, "hosts") || indexed(sub, "ports"))
}

fn check_config(c: &Config) {
    assert!(!c.propagate.is_empty());
    for list in [&c.extract, &c.propagate] {
        for (i, f) in list.iter().enumerate() {
            assert!(!list[..i].contains(f), "{list:?} lists a format twice");
        }
    }
    let ratio = c.sampler.ratio();
    assert!((0.0..=1.0).contains(&ratio), "ratio {ratio}");
    if let Some(name) = &c.response_header {
        assert!(!name.is_empty());
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase() && b != b':'),
            "{name:?}"
        );
    }
    if c.trust != Trust::Continue {
        assert!(
            c.tracer == Tracer::None
                || (c.position == Position::Upstream && c.tracer != Tracer::OpenTelemetry),
            "{c:?}"
        );
    }
    if let Some(external) = &c.external {
        let mut seen: Vec<(String, Option<u16>)> = Vec::new();
        for s in external.matcher.services() {
            // Kubernetes: labels of [a-z0-9-], alphanumeric at both ends, at most 63; a name
            // joins labels with dots (at most 253), a namespace is one label.
            let label = |l: &str| {
                let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
                (1..=63).contains(&l.len())
                    && l.starts_with(ok)
                    && l.ends_with(ok)
                    && l.chars().all(|c| ok(c) || c == '-')
            };
            assert!(s.name.len() <= 253 && s.name.split('.').all(label), "{s:?}");
            assert!(label(&s.namespace), "{s:?}");
            assert!(!s.hosts.is_empty(), "{s:?}");
            assert!(!s.ports.contains(&0), "{s:?}");
            for h in &s.hosts {
                assert!(valid_host(h).is_ok(), "{h:?}");
                assert!(h != "*" && !h[1..].contains('*'), "{h:?}");
                let ports: Vec<Option<u16>> = if s.ports.is_empty() {
                    vec![None]
                } else {
                    s.ports.iter().copied().map(Some).collect()
                };
                for p in ports {
                    let key = (h.to_ascii_lowercase(), p);
                    assert!(!seen.contains(&key), "{key:?} listed twice");
                    seen.push(key);
                }
            }
        }
    }
}
