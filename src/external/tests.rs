//! Matching calls to ServiceEntry hosts, and the external part of the request path.
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
        entry("aws-s3-external", &["*.s3.amazonaws.com"], &[]),
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
        classify(&m, None, Some("API.OpenAI.com:443")),
        "openai-external"
    );
    // Istio chose PassthroughCluster: no ServiceEntry covers this host and port.
    assert_eq!(
        classify(&m, Some("PassthroughCluster"), Some("API.OpenAI.com:443")),
        "unregistered"
    );
    assert_eq!(classify(&m, None, Some("kapi.kakao.com")), "kakao-external");
}

#[test]
fn wildcards_follow_istio_and_the_most_specific_wins() {
    let m = matcher();
    assert_eq!(
        classify(&m, None, Some("photos.s3.amazonaws.com")),
        "aws-s3-external"
    );
    assert_eq!(
        classify(&m, None, Some("a.b.s3.amazonaws.com")),
        "aws-s3-external"
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
        "aws-s3-external"
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
fn waypoint_clusters_name_the_host_too() {
    let m = matcher();
    // An ambient waypoint's cluster for a ServiceEntry bound to it: host and port as in a
    // sidecar's `outbound|...` name.
    assert_eq!(
        classify(
            &m,
            Some("inbound-vip|443|http|api.openai.com"),
            Some("10.96.0.7")
        ),
        "openai-external"
    );
    assert_eq!(
        classify(
            &m,
            Some("inbound-vip|443|http|*.s3.amazonaws.com"),
            Some("photos.s3.amazonaws.com")
        ),
        "aws-s3-external"
    );
    assert_eq!(
        classify(&m, Some("inbound-vip|80|http|cdn.example.com"), None),
        "cdn-plain"
    );
    // openai lists 443 only: the cluster's port rules it out.
    assert_eq!(
        classify(&m, Some("inbound-vip|8443|http|api.openai.com"), None),
        "internal"
    );
    // An in-mesh service behind the waypoint stays internal; other directions are not read.
    assert_eq!(
        classify(
            &m,
            Some("inbound-vip|8080|http|character-api.default.svc.cluster.local"),
            Some("character-api:8080")
        ),
        "internal"
    );
    assert_eq!(
        classify(&m, Some("inbound|443||api.openai.com"), None),
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
        "inbound-vip|",
        "inbound-vip|443|http",
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

/// The matcher agrees with a plain reference (a scan over every entry, written from the
/// rules) on random entries and random hosts.
#[test]
fn matcher_agrees_with_a_reference_scan() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn reference(services: &[ExternalService], host: &str, port: Option<u16>) -> Option<usize> {
        let host = host.to_ascii_lowercase();
        // Specificity: exact = usize::MAX, wildcard = its suffix length.
        let mut best: Option<(usize, u8, usize)> = None; // (specificity, port rank, -index)
        for (i, s) in services.iter().enumerate() {
            let port_rank = match (port, s.ports.is_empty()) {
                (Some(p), false) if s.ports.contains(&p) => 2,
                (Some(_), false) => continue,
                (_, true) => 1,
                (None, false) => 0,
            };
            for h in &s.hosts {
                let h = h.to_ascii_lowercase();
                let specificity = if h == host {
                    usize::MAX
                } else if let Some(suffix) = h.strip_prefix('*') {
                    if host.ends_with(suffix) && host.len() > suffix.len() {
                        suffix.len()
                    } else {
                        continue;
                    }
                } else {
                    continue;
                };
                let key = (specificity, port_rank, usize::MAX - i);
                if best.is_none_or(|b| key > (b.0, b.1, usize::MAX - b.2)) {
                    best = Some((specificity, port_rank, i));
                }
            }
        }
        best.map(|b| b.2)
    }

    let labels = ["a", "b", "api", "s3", "example", "com", "net"];
    let mut hits = 0;
    let mut rng = SmallRng::seed_from_u64(42);
    let name = |rng: &mut SmallRng, n: usize| -> String {
        (0..n)
            .map(|_| labels[rng.random_range(0..labels.len())])
            .collect::<Vec<_>>()
            .join(".")
    };
    for round in 0..300 {
        let mut services = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for i in 0..rng.random_range(1..8) {
            let n = rng.random_range(1..4);
            let mut host = name(&mut rng, n);
            if rng.random_bool(0.4) {
                host = format!("*.{host}");
            }
            let ports: Vec<u16> = if rng.random_bool(0.5) {
                vec![]
            } else {
                vec![[80, 443][rng.random_range(0..2)]]
            };
            // The config rejects two entries claiming one host and port; so does this test.
            let keys: Vec<(String, Option<u16>)> = if ports.is_empty() {
                vec![(host.clone(), None)]
            } else {
                ports.iter().map(|p| (host.clone(), Some(*p))).collect()
            };
            if keys.iter().any(|k| seen.contains(k)) {
                continue;
            }
            seen.extend(keys);
            services.push(entry(&format!("e{round}-{i}"), &[&host], &ports));
        }
        let m = Matcher::new(services.clone());
        for _ in 0..50 {
            let n = rng.random_range(1..5);
            let host = name(&mut rng, n);
            let port = [None, Some(80), Some(443), Some(8080)][rng.random_range(0..4)];
            let authority = match port {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            };
            let got = match m.classify(None, Some(authority.as_bytes())) {
                Destination::Service(i) => Some(i),
                _ => None,
            };
            let want = reference(&services, &host, port);
            hits += usize::from(want.is_some());
            // Among same-specificity candidates with unknown port the first listed wins in
            // both; compare the chosen entries' names for a readable failure.
            assert_eq!(
                got.map(|i| &services[i].name),
                want.map(|i| &services[i].name),
                "host {authority} in {services:?}"
            );
        }
    }
    // The random hosts hit entries often enough for the comparison to mean something.
    assert!(hits > 500, "{hits}");
}
