//! Matching calls to ServiceEntry hosts, and the external part of the request path.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::config::Config;
use crate::external::{Destination, ExternalService, Matcher, valid_host};

fn entry(name: &str, hosts: &[&str], ports: &[u16]) -> ExternalService {
    ExternalService {
        name: name.into(),
        namespace: "default".into(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        ports: ports.to_vec(),
        propagate: false,
    }
}

fn matcher() -> Matcher {
    Matcher::new(vec![
        entry("openai-external", &["api.openai.com"], &[443]),
        entry("s3-external", &["*.s3.amazonaws.com"], &[]),
        entry("s3-eu-external", &["*.eu-west-1.s3.amazonaws.com"], &[]),
        entry("s3-bucket-external", &["assets.s3.amazonaws.com"], &[]),
        entry(
            "kakao-external",
            &["kauth.kakao.com", "kapi.kakao.com"],
            &[],
        ),
        entry("cdn-plain", &["cdn.example.com"], &[80]),
        entry("cdn-tls", &["cdn.example.com"], &[443]),
    ])
}

fn name_of(m: &Matcher, d: Destination) -> &str {
    match d {
        Destination::Service(i) => m.service(i).unwrap().name.as_str(),
        Destination::Unregistered => "unregistered",
        Destination::Internal => "internal",
    }
}

fn classify<'m>(m: &'m Matcher, cluster: Option<&str>, authority: Option<&str>) -> &'m str {
    let d = m.classify(cluster.map(str::as_bytes), authority.map(str::as_bytes));
    // Rebind the lifetime to the matcher for the returned name.
    match d {
        Destination::Service(i) => m.service(i).unwrap().name.as_str(),
        Destination::Unregistered => "unregistered",
        Destination::Internal => "internal",
    }
}

#[test]
fn exact_hosts_by_cluster_and_by_authority() {
    let m = matcher();
    assert_eq!(
        classify(&m, Some("outbound|443||api.openai.com"), None),
        "openai-external"
    );
    assert_eq!(
        classify(&m, None, Some("api.openai.com")),
        "openai-external"
    );
    assert_eq!(
        classify(&m, Some("PassthroughCluster"), Some("API.OpenAI.com:443")),
        "openai-external"
    );
    assert_eq!(classify(&m, None, Some("kapi.kakao.com")), "kakao-external");
}

#[test]
fn wildcards_follow_istio_and_the_most_specific_wins() {
    let m = matcher();
    assert_eq!(
        classify(&m, None, Some("photos.s3.amazonaws.com")),
        "s3-external"
    );
    assert_eq!(
        classify(&m, None, Some("a.b.s3.amazonaws.com")),
        "s3-external"
    );
    assert_eq!(
        classify(&m, None, Some("bucket.eu-west-1.s3.amazonaws.com")),
        "s3-eu-external"
    );
    assert_eq!(
        classify(&m, None, Some("assets.s3.amazonaws.com")),
        "s3-bucket-external"
    );
    // `*.s3.amazonaws.com` does not match the bare domain.
    assert_eq!(classify(&m, None, Some("s3.amazonaws.com")), "internal");
    // A wildcard ServiceEntry (resolution NONE) shows its host literally in the cluster name.
    assert_eq!(
        classify(
            &m,
            Some("outbound|443||*.s3.amazonaws.com"),
            Some("x.s3.amazonaws.com")
        ),
        "s3-external"
    );
}

#[test]
fn ports_select_among_entries_of_one_host() {
    let m = matcher();
    assert_eq!(
        classify(&m, Some("outbound|80||cdn.example.com"), None),
        "cdn-plain"
    );
    assert_eq!(
        classify(&m, Some("outbound|443||cdn.example.com"), None),
        "cdn-tls"
    );
    assert_eq!(classify(&m, None, Some("cdn.example.com:443")), "cdn-tls");
    // No port known: it cannot rule an entry out; the first listed wins.
    assert_eq!(classify(&m, None, Some("cdn.example.com")), "cdn-plain");
    // openai lists 443 only.
    assert_eq!(
        classify(&m, Some("outbound|8443||api.openai.com"), None),
        "internal"
    );
}

#[test]
fn passthrough_without_a_match_is_unregistered() {
    let m = matcher();
    assert_eq!(
        classify(&m, Some("PassthroughCluster"), Some("example.org")),
        "unregistered"
    );
    assert_eq!(
        classify(
            &m,
            Some("outbound|8080||character-api.default.svc.cluster.local"),
            Some("character-api:8080")
        ),
        "internal"
    );
    assert_eq!(classify(&m, None, None), "internal");
    assert_eq!(name_of(&m, Destination::Internal), "internal");
}

#[test]
fn hundreds_of_entries_match_without_a_scan() {
    let mut entries: Vec<ExternalService> = (0..500)
        .map(|i| entry(&format!("svc-{i}"), &[&format!("api{i}.example.com")], &[]))
        .collect();
    entries.push(entry("wild", &["*.wild.example.net"], &[]));
    let m = Matcher::new(entries);
    for i in [0, 250, 499] {
        assert_eq!(
            classify(&m, None, Some(&format!("API{i}.example.com"))),
            format!("svc-{i}")
        );
    }
    assert_eq!(
        classify(&m, None, Some("deep.down.wild.example.net")),
        "wild"
    );
    assert_eq!(classify(&m, None, Some("api500.example.com")), "internal");
}

#[test]
fn malformed_names_never_panic() {
    let m = matcher();
    for cluster in [
        "outbound|",
        "outbound||",
        "outbound|x||",
        "outbound|99999||api.openai.com",
        "|||",
        "",
    ] {
        let _ = m.classify(Some(cluster.as_bytes()), Some(b"[::1]:443"));
    }
    let long = "a.".repeat(300);
    assert_eq!(classify(&m, None, Some(&long)), "internal");
    let _ = m.classify(None, Some(&[0xff, b'.', 0xfe]));
}

#[test]
fn configured_hosts_are_checked() {
    assert!(valid_host("api.openai.com").is_ok());
    assert!(valid_host("*.s3.amazonaws.com").is_ok());
    for bad in ["*", "", "api.*.com", "a..b", "has space.com", "**.x.com"] {
        assert!(valid_host(bad).is_err(), "{bad}");
    }
}

#[test]
fn config_rejects_bad_entries_naming_the_field() {
    let cases = [
        (
            r#"{"external_services":[{"hosts":["a.com"]}]}"#,
            "external_services[0].name",
        ),
        (
            r#"{"external_services":[{"name":"Bad_Name","hosts":["a.com"]}]}"#,
            "external_services[0].name",
        ),
        (
            r#"{"external_services":[{"name":"a","hosts":[]}]}"#,
            "external_services[0].hosts",
        ),
        (
            r#"{"external_services":[{"name":"a","hosts":["ok.com","*"]}]}"#,
            "external_services[0].hosts[1]",
        ),
        (
            r#"{"external_services":[{"name":"a","hosts":["a.com"],"ports":[0]}]}"#,
            "external_services[0].ports[0]",
        ),
        (
            r#"{"external_services":[{"name":"a","hosts":["a.com"],"port":443}]}"#,
            "external_services[0].port",
        ),
        (
            r#"{"external_services":[{"name":"a","hosts":"a.com"}]}"#,
            "external_services[0].hosts",
        ),
        (
            r#"{"external_services":[{"name":"a","hosts":["a.com"]},{"name":"b","hosts":["A.com"]}]}"#,
            "external_services[1].hosts",
        ),
        (r#"{"external_services":[1]}"#, "external_services[0]"),
        (
            r#"{"unregistered_propagate":true}"#,
            "unregistered_propagate",
        ),
    ];
    for (json, field) in cases {
        let e = Config::from_json(json.as_bytes()).unwrap_err();
        assert_eq!(e.field, field, "{json}: {e}");
    }
    let ok = Config::from_json(br#"{"external_services":[{"name":"a","hosts":["a.com"],"ports":[80]},{"name":"b","hosts":["a.com"],"ports":[443]}],"external_propagate":true}"#).unwrap();
    assert!(
        ok.external
            .unwrap()
            .matcher
            .services()
            .iter()
            .all(|s| s.propagate)
    );
}
