//! `external_services`: the ServiceEntries the operator lists, checked one by one and
//! against each other.

use super::json::Json;
use super::raw::{convert, convert_list, dns1123, given_once, listed, quoted, shown_key};
use super::{ConfigError, err};
use crate::external::{ExternalService, valid_host};

/// The fields of one `external_services` entry.
pub(super) const EXTERNAL_SERVICE_FIELDS: [&str; 5] =
    ["name", "namespace", "hosts", "ports", "propagate"];

/// One `external_services` entry: `{name, namespace?, hosts, ports?, propagate?}`.
pub(super) fn external_service(
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
                        listed(&EXTERNAL_SERVICE_FIELDS)
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
pub(super) fn check_overlaps(services: &[ExternalService]) -> Result<(), ConfigError> {
    // `host|port` -> [entry, host index]: one pass, also catching repeats within an entry.
    // The matcher's map type (one hash map less in the module); a checked host has no `|`.
    let mut seen: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
    for (i, service) in services.iter().enumerate() {
        let ports: Vec<Option<u16>> = if service.ports.is_empty() {
            vec![None]
        } else {
            service.ports.iter().copied().map(Some).collect()
        };
        for (h, host) in service.hosts.iter().enumerate() {
            for (p, port) in ports.iter().enumerate() {
                let mut key = host.to_ascii_lowercase();
                key.push('|');
                if let Some(port) = port {
                    key.push_str(&port.to_string());
                }
                let Some(&[other, other_host]) = seen.insert(key, vec![i, h]).as_deref() else {
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
