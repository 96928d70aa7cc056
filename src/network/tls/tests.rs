//! The ClientHello reader on hand-built hellos, and TLS connections through a simulated
//! TCP proxy (which takes every byte passed on).

use super::client_hello::{ClientHello, Scan, scan};
use crate::config::Config;
use crate::filter::recording_host::RecordingHost;
use crate::filter::{Counter, STATE_EXTERNAL_HOST, STATE_SERVICE_ENTRY, STATE_TLS_ALPN};
use crate::ids::IdGenerator;
use crate::network::{ConnectionFilter, Leave, Verdict};
use crate::testing::tls::{Hello, records};

fn complete(bytes: &[u8]) -> ClientHello {
    match scan(bytes) {
        Scan::Complete(hello) => hello,
        other => panic!("{other:?}"),
    }
}

#[test]
fn reads_the_server_name_alpn_and_version() {
    let bytes = Hello::to("API.OpenAI.com").record();
    let hello = complete(&bytes);
    assert_eq!(hello.server_name.as_deref(), Some("api.openai.com"));
    assert!(hello.server_name_sent);
    assert_eq!(hello.alpn, "h2,http/1.1");
    assert!(hello.tls13);
    assert!(!hello.ech);
    assert_eq!(hello.records_len, bytes.len());
}

#[test]
fn what_follows_the_client_hello_is_not_part_of_it() {
    let mut bytes = Hello::to("kauth.kakao.com").record();
    let end = bytes.len();
    // Early data or garbage after it: not read.
    bytes.extend_from_slice(&[23, 3, 3, 0, 4, 1, 2, 3, 4]);
    assert_eq!(complete(&bytes).records_len, end);
}

#[test]
fn a_tls12_hello_without_extensions_has_no_name() {
    let hello = complete(
        &Hello {
            bare: true,
            ..Hello::default()
        }
        .record(),
    );
    assert_eq!(
        hello,
        ClientHello {
            records_len: hello.records_len,
            ..ClientHello::default()
        }
    );
}

#[test]
fn every_cut_is_partial_and_asks_for_more() {
    let bytes = Hello::to("www.googleapis.com").record();
    for cut in 0..bytes.len() {
        match scan(&bytes[..cut]) {
            Scan::Partial { want, at_least } => {
                assert!(
                    want > cut && want <= at_least && at_least <= bytes.len(),
                    "{cut}: {want} {at_least}"
                )
            }
            other => panic!("{cut}: {other:?}"),
        }
    }
}

#[test]
fn records_of_any_size_give_the_same_hello() {
    let message = Hello::to("bucket.s3.amazonaws.com").message();
    let whole = complete(&records(&message, usize::MAX));
    // Up to 64 records; more are not followed (each record end costs a scan).
    for fragment in message.len().div_ceil(64)..message.len() {
        let bytes = records(&message, fragment);
        let hello = complete(&bytes);
        assert_eq!(hello.server_name, whole.server_name, "{fragment}");
        assert_eq!(hello.alpn, whole.alpn);
        assert_eq!(hello.records_len, bytes.len());
        // And cut anywhere in between.
        for cut in [1, 5, 6, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                matches!(scan(&bytes[..cut]), Scan::Partial { .. }),
                "{fragment}/{cut}"
            );
        }
    }
}

#[test]
fn grease_and_unknown_extensions_are_skipped() {
    let mut hello = Hello::to("nid.naver.com");
    hello.grease = true;
    hello.extra = vec![(0x4469, vec![0, 3, 2, 0x68, 0x32]), (0xdada, vec![0])];
    let read = complete(&hello.record());
    assert_eq!(read.server_name.as_deref(), Some("nid.naver.com"));
    // A GREASE protocol name is not shown.
    assert_eq!(read.alpn, "h2,http/1.1");
}

#[test]
fn ech_is_noticed_and_the_outer_name_read() {
    let mut hello = Hello::to("public.example.com");
    hello.ech = true;
    let read = complete(&hello.record());
    assert!(read.ech);
    assert_eq!(read.server_name.as_deref(), Some("public.example.com"));
}

#[test]
fn names_that_are_not_dns_names_are_not_used() {
    for name in [
        &b"10.0.0.1"[..],
        b"exa mple.com",
        b"a..b",
        b"example.com..",
        b"\xc3\xa9t\xc3\xa9.fr",
        &[b'a'; 254],
    ] {
        let hello = Hello {
            names: vec![(0, name)],
            ..Hello::default()
        };
        let read = complete(&hello.record());
        assert_eq!(read.server_name, None, "{name:?}");
        assert!(read.server_name_sent);
    }
    // Another name type is skipped.
    let hello = Hello {
        names: vec![(7, b"other"), (0, b"ok.example")],
        ..Hello::default()
    };
    assert_eq!(
        complete(&hello.record()).server_name.as_deref(),
        Some("ok.example")
    );
}

#[test]
fn malformed_hellos_are_bad() {
    let good = Hello::to("a.example").record();
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut b = good.clone();
    b[0] = 23;
    cases.push(("application data first", b));
    let mut b = good.clone();
    b[1] = 2;
    cases.push(("record version 2.1", b));
    let message = Hello::to("a.example").message();
    cases.push(("70 records", records(&message, message.len() / 70)));
    cases.push(("empty record", vec![22, 3, 1, 0, 0]));
    cases.push(("record over 2^14", vec![22, 3, 1, 0x40, 1]));
    let mut b = good.clone();
    b[5] = 2;
    cases.push(("a ServerHello", b));
    let two_names = Hello {
        names: vec![(0, b"a.example"), (0, b"b.example")],
        ..Hello::default()
    };
    cases.push(("two host names", two_names.record()));
    let mut twice = Hello::to("a.example");
    twice.extra = vec![(0, vec![0, 4, 0, 0, 1, b'b'])];
    cases.push(("server_name twice", twice.record()));
    let empty_sni = Hello {
        extra: vec![(0, vec![])],
        ..Hello::default()
    };
    cases.push(("empty server_name", empty_sni.record()));
    let empty_alpn = Hello {
        extra: vec![(16, vec![0, 1, 0])],
        ..Hello::default()
    };
    cases.push(("an empty ALPN name", empty_alpn.record()));
    let many = Hello {
        extra: (0..65).map(|i| (0x1000 + i, vec![])).collect(),
        ..Hello::default()
    };
    cases.push(("65 extensions", many.record()));
    // One byte more inside the message than its extensions take.
    let mut message = Hello::to("a.example").message();
    message.push(0);
    message[3] += 1;
    cases.push(("a byte after the extensions", records(&message, usize::MAX)));
    for (what, bytes) in cases {
        assert_eq!(scan(&bytes), Scan::Bad, "{what}");
    }
}

#[test]
fn a_first_record_that_is_not_a_client_hello_is_bad_before_its_end() {
    // A ServerHello's type in a record of 512 bytes, 3 of them here.
    assert_eq!(scan(&[22, 3, 1, 2, 0, 2, 0, 1]), Scan::Bad);
    // A ClientHello's type: its length is the next byte to come.
    assert_eq!(
        scan(&[22, 3, 1, 2, 0, 1, 0, 1]),
        Scan::Partial {
            want: 9,
            at_least: 9
        }
    );
    // Its length known: it cannot end before 9 + 300 bytes.
    assert_eq!(
        scan(&[22, 3, 1, 2, 0, 1, 0, 1, 44]),
        Scan::Partial {
            want: 309,
            at_least: 309
        }
    );
}

#[test]
fn any_3_x_record_version_and_64_records_are_read() {
    let mut bytes = Hello::to("a.example").record();
    bytes[2] = 9;
    assert_eq!(complete(&bytes).server_name.as_deref(), Some("a.example"));
    let message = Hello::to("a.example").message();
    let bytes = records(&message, message.len().div_ceil(64));
    assert_eq!(complete(&bytes).server_name.as_deref(), Some("a.example"));
}

#[test]
fn a_trailing_dot_is_dropped() {
    let hello = Hello {
        names: vec![(0, b"API.openai.com.")],
        ..Hello::default()
    };
    assert_eq!(
        complete(&hello.record()).server_name.as_deref(),
        Some("api.openai.com")
    );
}

#[test]
fn alpn_names_outside_the_registry_characters_are_not_shown() {
    let hello = Hello {
        alpn: vec![b"h2", b"x\"y=1", b"acme-tls/1", b"%q"],
        ..Hello::default()
    };
    assert_eq!(complete(&hello.record()).alpn, "h2,acme-tls/1");
}

#[test]
fn sixty_four_extensions_are_read() {
    let mut hello = Hello::to("a.example");
    hello.extra = (0..61).map(|i| (0x1000 + i, vec![])).collect();
    assert_eq!(
        complete(&hello.record()).server_name.as_deref(),
        Some("a.example")
    );
}

const SERVICES: &str = r#""external_services":[
    {"name":"openai-external","hosts":["api.openai.com"],"ports":[80,443]},
    {"name":"aws-s3-external","namespace":"shop","hosts":["*.s3.amazonaws.com"]}]"#;

fn network(extra: &str) -> Config {
    Config::from_json(format!(r#"{{"position":"network"{extra}}}"#).as_bytes()).unwrap()
}

/// A TCP proxy behind the filter: each write is appended to the read buffer, and what the
/// filter passes on is taken whole. Returns what went on, and the last verdict.
fn proxy(host: &mut RecordingHost, config: &Config, writes: &[&[u8]]) -> (Vec<u8>, Verdict) {
    let mut filter = ConnectionFilter::new(host);
    let mut ids = IdGenerator::from_seed(1);
    let mut passed = Vec::new();
    let mut verdict = Verdict::Continue;
    for (i, write) in writes.iter().enumerate() {
        host.downstream.extend_from_slice(write);
        let len = host.downstream.len();
        let _last = i + 1 == writes.len();
        verdict = filter.on_data(host, config, &mut ids, len, false);
        match verdict {
            Verdict::Continue => passed.append(&mut host.downstream),
            Verdict::Pause => {}
            Verdict::Close => break,
        }
    }
    (passed, verdict)
}

/// A host for a connection to `port` on filter chain `chain`.
fn on(port: Option<u16>, chain: Option<&[u8]>) -> RecordingHost {
    let mut host = RecordingHost::default();
    host.destination_port = port;
    host.filter_chain = chain.map(<[u8]>::to_vec);
    host
}

fn stream(name: &str) -> Vec<u8> {
    let mut bytes = Hello::to(name).record();
    bytes.extend_from_slice(&[23, 3, 3, 0, 5, 9, 9, 9, 9, 9]);
    bytes
}

fn state<'a>(host: &'a RecordingHost, key: &str) -> Option<&'a [u8]> {
    host.filter_state
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_slice())
}

#[test]
fn a_registered_host_is_named_and_every_byte_passes() {
    let config = network(&format!(",{SERVICES}"));
    let mut host = on(Some(443), None);
    let bytes = stream("api.openai.com");
    let (passed, verdict) = proxy(&mut host, &config, &[&bytes, b"more bytes"]);
    assert_eq!(verdict, Verdict::Continue);
    assert_eq!(passed, [bytes.as_slice(), b"more bytes"].concat());
    assert_eq!(host.write_count, 0);
    assert_eq!(host.count(Counter::NetworkTls), 1);
    assert_eq!(host.dynamic_increments(), [Counter::ExternalTls(0)]);
    assert_eq!(
        state(&host, STATE_SERVICE_ENTRY),
        Some(&b"openai-external"[..])
    );
    assert_eq!(
        state(&host, STATE_EXTERNAL_HOST),
        Some(&b"api.openai.com"[..])
    );
    assert_eq!(state(&host, STATE_TLS_ALPN), Some(&b"h2,http/1.1"[..]));
    // One read, the port and the chain: then out of the data path.
    assert_eq!(host.calls, 3 + 4);
}

#[test]
fn a_wildcard_host_is_named_with_its_namespace() {
    let config = network(&format!(",{SERVICES}"));
    let mut host = on(Some(443), None);
    proxy(&mut host, &config, &[&stream("my-bucket.s3.amazonaws.com")]);
    assert_eq!(host.dynamic_increments(), [Counter::ExternalTls(1)]);
    assert_eq!(
        state(&host, crate::filter::STATE_SERVICE_ENTRY_NAMESPACE),
        Some(&b"shop"[..])
    );
}

#[test]
fn the_passthrough_chain_is_unregistered_and_other_names_internal() {
    let config = network(&format!(",{SERVICES}"));
    for (chain, name, counted, noted) in [
        (
            &b"PassthroughFilterChain"[..],
            "example.org",
            Some(Counter::UnregisteredTls),
            true,
        ),
        (
            b"virtualOutbound-catchall-tcp",
            "example.org",
            Some(Counter::UnregisteredTls),
            true,
        ),
        (b"0.0.0.0_443", "example.org", None, false),
        (b"", "reviews.default.svc.cluster.local", None, false),
    ] {
        let mut host = on(Some(443), Some(chain));
        let bytes = stream(name);
        let (passed, _) = proxy(&mut host, &config, &[&bytes]);
        assert_eq!(passed, bytes);
        assert_eq!(host.dynamic_increments(), counted.as_slice(), "{chain:?}");
        assert_eq!(host.unregistered.len(), usize::from(noted));
        assert_eq!(
            state(&host, STATE_SERVICE_ENTRY),
            noted.then_some(&b"unregistered"[..])
        );
    }
}

#[test]
fn a_port_the_entry_does_not_list_rules_it_out() {
    let config = network(&format!(",{SERVICES}"));
    let mut host = on(Some(8443), None);
    proxy(&mut host, &config, &[&stream("api.openai.com")]);
    assert!(host.dynamic_increments().is_empty());
}

#[test]
fn a_hello_cut_anywhere_is_held_until_whole_and_passes_unchanged() {
    let config = network(&format!(",{SERVICES}"));
    let bytes = stream("api.openai.com");
    let hello_len = Hello::to("api.openai.com").record().len();
    for cut in 1..hello_len {
        let mut host = RecordingHost::default();
        let (passed, verdict) = proxy(&mut host, &config, &[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(verdict, Verdict::Continue);
        assert_eq!(passed, bytes, "{cut}");
        assert_eq!(host.dynamic_increments(), [Counter::ExternalTls(0)]);
    }
    // One byte per write.
    let mut host = RecordingHost::default();
    let writes: Vec<&[u8]> = bytes.chunks(1).collect();
    let (passed, _) = proxy(&mut host, &config, &writes);
    assert_eq!(passed, bytes);
    assert_eq!(host.count(Counter::NetworkTls), 1);
}

#[test]
fn a_hello_over_the_buffer_limit_is_left() {
    let config = network(&format!(
        r#","per_connection_buffer_limit_bytes":1024,{SERVICES}"#
    ));
    let mut hello = Hello::to("api.openai.com");
    hello.extra = vec![(0x1234, vec![0; 2000])];
    let bytes = hello.record();
    let mut host = RecordingHost::default();
    let (passed, verdict) = proxy(&mut host, &config, &[&bytes[..600], &bytes[600..]]);
    assert_eq!(verdict, Verdict::Continue);
    assert_eq!(passed, bytes);
    assert_eq!(host.count(Counter::NetworkLeft(Leave::TooLarge)), 1);
    assert_eq!(host.count(Counter::NetworkTls), 0);
}

#[test]
fn a_hello_that_cannot_end_within_the_limit_is_left_at_once() {
    let config = network(&format!(",{SERVICES}"));
    // A handshake length of 16 MiB.
    let bytes = [22, 3, 1, 0x40, 0, 1, 0xff, 0xff, 0xff, 3, 3];
    let mut host = RecordingHost::default();
    let (passed, verdict) = proxy(&mut host, &config, &[&bytes]);
    assert_eq!(
        (passed.as_slice(), verdict),
        (&bytes[..], Verdict::Continue)
    );
    assert_eq!(host.count(Counter::NetworkLeft(Leave::TooLarge)), 1);
}

#[test]
fn a_hello_byte_by_byte_is_scanned_per_record_not_per_byte() {
    let config = network(&format!(",{SERVICES}"));
    let bytes = stream("api.openai.com");
    let mut host = RecordingHost::default();
    let writes: Vec<&[u8]> = bytes.chunks(1).collect();
    let (passed, _) = proxy(&mut host, &config, &writes);
    assert_eq!(passed, bytes);
    assert_eq!(host.dynamic_increments(), [Counter::ExternalTls(0)]);
    // The first byte, the record header, the message header, the message: a few reads
    // each, not one per byte.
    assert!(host.calls < 20, "{} host calls", host.calls);
}

#[test]
fn a_held_hello_keeps_nothing_in_the_vm() {
    let config = network(&format!(",{SERVICES}"));
    let bytes = stream("api.openai.com");
    let mut host = RecordingHost::default();
    let mut filter = ConnectionFilter::new(&mut host);
    let mut ids = IdGenerator::from_seed(1);
    host.downstream.extend_from_slice(&bytes[..100]);
    assert_eq!(
        filter.on_data(&mut host, &config, &mut ids, 100, false),
        Verdict::Pause
    );
    let ConnectionFilter::Tls(tls) = &filter else {
        panic!("not TLS: {filter:?}");
    };
    assert!(format!("{tls:?}").contains("first: []"), "{tls:?}");
}

#[test]
fn a_hello_held_too_long_closes_the_connection() {
    let config = network(&format!(r#","request_headers_timeout_ms":100,{SERVICES}"#));
    let bytes = stream("api.openai.com");
    let mut host = RecordingHost::default();
    let mut filter = ConnectionFilter::new(&mut host);
    let mut ids = IdGenerator::from_seed(1);
    host.downstream.extend_from_slice(&bytes[..50]);
    assert_eq!(
        filter.on_data(&mut host, &config, &mut ids, 50, false),
        Verdict::Pause
    );
    assert_eq!(filter.held_since(), Some(0));
    host.now = 200_000_000;
    host.downstream.extend_from_slice(&bytes[50..60]);
    assert_eq!(
        filter.on_data(&mut host, &config, &mut ids, 60, false),
        Verdict::Close
    );
    assert_eq!(host.count(Counter::NetworkLeft(Leave::SlowHead)), 1);
}

#[test]
fn tls_records_that_are_not_a_client_hello_are_left_at_once() {
    let config = network(&format!(",{SERVICES}"));
    let bytes = [22, 3, 3, 0, 4, 2, 0, 0, 0, 1, 2, 3];
    let mut host = RecordingHost::default();
    let (passed, verdict) = proxy(&mut host, &config, &[&bytes]);
    assert_eq!(
        (passed.as_slice(), verdict),
        (&bytes[..], Verdict::Continue)
    );
    assert_eq!(host.count(Counter::NetworkLeft(Leave::Tls)), 1);
}

#[test]
fn without_external_services_tls_is_not_read() {
    let mut host = RecordingHost::default();
    let bytes = stream("api.openai.com");
    let (passed, _) = proxy(&mut host, &network(""), &[&bytes]);
    assert_eq!(passed, bytes);
    assert_eq!(host.count(Counter::NetworkLeft(Leave::NotHttp1)), 1);
    assert_eq!(host.count(Counter::NetworkTls), 0);
}

#[test]
fn a_hello_without_a_name_is_counted() {
    let config = network(&format!(",{SERVICES}"));
    let mut host = RecordingHost::default();
    let bytes = Hello::default().record();
    proxy(&mut host, &config, &[&bytes]);
    assert_eq!(host.count(Counter::NetworkTlsNoServerName), 1);
    assert!(host.filter_state.is_empty());
    // On a passthrough chain it is still an unregistered connection (no host to note).
    let mut host = on(Some(443), Some(b"PassthroughFilterChain"));
    proxy(&mut host, &config, &[&bytes]);
    assert_eq!(host.dynamic_increments(), [Counter::UnregisteredTls]);
    assert!(host.unregistered.is_empty());
    assert_eq!(
        state(&host, STATE_SERVICE_ENTRY),
        Some(&b"unregistered"[..])
    );
}

#[test]
fn host_call_failures_are_counted_and_nothing_changes() {
    let config = network(&format!(",{SERVICES}"));
    let bytes = stream("api.openai.com");
    for fail in [
        crate::filter::recording_host::fail::CLUSTER,
        crate::filter::recording_host::fail::FILTER_STATE,
    ] {
        let mut host = RecordingHost::default();
        host.fail = fail;
        let (passed, _) = proxy(&mut host, &config, &[&bytes]);
        assert_eq!(passed, bytes);
        assert!(host.count(Counter::HostError) >= 1);
    }
}
