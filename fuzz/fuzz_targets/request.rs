//! The whole request path: a configuration (position x tracer x trust x formats x external
//! services, every combination the loader accepts) and a header list biased towards the
//! trace headers (valid, mutated and raw values, repeats, mixed-case names), driven through
//! `RequestFilter` and a fuzz `Host` (which can also fail its calls). Checks what the filter
//! writes and what the request carries afterwards.
#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use tracejoin::codec::tracestate::{self, TraceState};
use tracejoin::codec::{self, Carrier, Format, Header, PerFormat, Read, header_map};
use tracejoin::config::{Config, Position};
use tracejoin::context::SpanContext;
use tracejoin::filter::{
    Counter, RecordingHost, RequestFilter, STATE_EXTERNAL_HOST, STATE_SERVICE_ENTRY,
    STATE_SERVICE_ENTRY_NAMESPACE,
};
use tracejoin::ids::IdGenerator;
use tracejoin::policy;
use tracejoin_fuzz::{header_value_ok, hex, ids_of, pad32, show, traceparent_ok, visible_ascii};

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});

// ---------------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------------

const POSITIONS: [&str; 2] = ["downstream", "upstream"];
const TRACERS: [&str; 5] = ["none", "zipkin", "zipkin_w3c", "opentelemetry", "datadog"];
const TRUSTS: [&str; 3] = ["continue", "restart", "resample"];
const RATIOS: [&str; 3] = ["1", "0", "0.5"];
/// `None`: the default list.
const EXTRACTS: [Option<&str>; 5] = [
    None,
    Some(r#"["tracecontext","jaeger","b3multi","b3"]"#),
    Some(r#"["jaeger"]"#),
    Some("[]"),
    Some(r#"["datadog","xray","ottrace","tracecontext"]"#),
];
const PROPAGATES: [Option<&str>; 5] = [
    Some(r#"["tracecontext","b3","b3multi","jaeger"]"#),
    None,
    Some(r#"["b3"]"#),
    Some(r#"["jaeger","tracecontext"]"#),
    Some(r#"["tracecontext","datadog","xray","ottrace"]"#),
];
/// External services: none; trace headers kept in the mesh (one entry lets them through);
/// everything allowed out.
const EXTERNALS: [&str; 3] = [
    "",
    r#","external_services":[{"name":"openai-external","namespace":"default","hosts":["api.openai.com"],"ports":[80,443]},{"name":"aws-s3-external","hosts":["*.s3.amazonaws.com"],"ports":[443]},{"name":"partner","namespace":"mesh","hosts":["partner.example.com"],"propagate":true}],"external_propagate":false,"unregistered_propagate":false"#,
    r#","external_services":[{"name":"openai-external","hosts":["api.openai.com"]},{"name":"aws-cloudfront","hosts":["*.cloudfront.net"],"ports":[443]}],"external_propagate":true,"unregistered_propagate":true"#,
];

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Choice {
    position: usize,
    tracer: usize,
    trust: usize,
    ratio: usize,
    extract: usize,
    propagate: usize,
    bridge: bool,
    external: usize,
    response: bool,
    /// `dry_run`: the run is also made live, and the two compared.
    dry_run: bool,
}

impl Choice {
    fn arbitrary(u: &mut Unstructured<'_>) -> Result<Choice> {
        // Two bytes: the common shapes (all formats propagated, default extract) are the
        // zero values, so short inputs land on them.
        let a: u16 = u.arbitrary()?;
        let b: u8 = u.arbitrary()?;
        let a = usize::from(a);
        Ok(Choice {
            position: a % 2,
            tracer: (a >> 1) % TRACERS.len(),
            trust: (a >> 3) % 3,
            ratio: (a >> 5) % 3,
            extract: (a >> 7) % 4,
            propagate: (a >> 9) % 4,
            bridge: (a >> 11) & 1 == 0,
            external: usize::from(b) % 3,
            response: (b >> 2) & 1 == 1,
            // The top bit, which none of the fields above reads alone: every input keeps
            // the configuration it had, and one in two is also a dry run of it.
            dry_run: a >> 15 == 1,
        })
    }

    fn json(self) -> String {
        let tracer = TRACERS[self.tracer];
        let position = POSITIONS[self.position];
        // Restart/resample only where the loader allows them; elsewhere continue.
        let rewrites_allowed =
            tracer == "none" || (position == "upstream" && tracer != "opentelemetry");
        let trust = if rewrites_allowed {
            TRUSTS[self.trust]
        } else {
            "continue"
        };
        let mut json = format!(
            r#"{{"position":"{position}","tracer":"{tracer}","trust":"{trust}","sampling_ratio":{},"bridge":{}"#,
            RATIOS[self.ratio], self.bridge
        );
        if let Some(e) = EXTRACTS[self.extract] {
            json.push_str(&format!(r#","extract":{e}"#));
        }
        if let Some(p) = PROPAGATES[self.propagate] {
            json.push_str(&format!(r#","propagate":{p}"#));
        }
        if self.response {
            json.push_str(r#","response_header":"x-trace-id","traceresponse":true"#);
        }
        json.push_str(EXTERNALS[self.external]);
        if self.dry_run {
            json.push_str(r#","dry_run":true"#);
        }
        json.push('}');
        json
    }
}

thread_local! {
    static CONFIGS: RefCell<HashMap<Choice, Config>> = RefCell::new(HashMap::new());
}

fn config_for(choice: Choice) -> Config {
    CONFIGS.with(|c| {
        c.borrow_mut()
            .entry(choice)
            .or_insert_with(|| {
                let json = choice.json();
                Config::from_json(json.as_bytes())
                    .unwrap_or_else(|e| panic!("a valid configuration was rejected: {json}: {e}"))
            })
            .clone()
    })
}

// ---------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------

const NAMES: [&str; 11] = [
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "uber-trace-id",
    "baggage",
    ":authority",
];
const OTHER_NAMES: [&str; 8] = [
    "Traceparent",
    "TRACESTATE",
    "B3",
    "X-B3-TraceId",
    "X-B3-SpanId",
    "Uber-Trace-Id",
    "Baggage",
    "x-request-id",
];
const TRACES: [&str; 6] = [
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "5af7183fb1d4cf5f5af7183fb1d4cf5f",
    "0000000000000000a3ce929d0e0e4736",
    "0af7651916cd43dd8448eb211c80319c",
    "00000000000000000000000000000000",
    "ffffffffffffffffffffffffffffffff",
];
const SPANS: [&str; 5] = [
    "00f067aa0ba902b7",
    "6e0c63257de34c92",
    "b7ad6b7169203331",
    "0000000000000000",
    "ffffffffffffffff",
];
const AUTHORITIES: [&str; 10] = [
    "api.openai.com",
    "API.OpenAI.com:443",
    "bucket.s3.amazonaws.com:443",
    "d111111abcdef8.cloudfront.net",
    "partner.example.com",
    "reviews.default.svc.cluster.local:9080",
    "[::1]:8080",
    "localhost:10000",
    "",
    "api.openai.com:80",
];
const CLUSTERS: [&str; 7] = [
    "PassthroughCluster",
    "outbound|443||api.openai.com",
    "outbound|443||*.s3.amazonaws.com",
    "outbound|80||partner.example.com",
    "outbound|9080||reviews.default.svc.cluster.local",
    "inbound|8080||",
    "app",
];

type Headers = Vec<(Vec<u8>, Vec<u8>)>;

fn pick<'a, T: Copy>(u: &mut Unstructured<'a>, items: &[T]) -> Result<T> {
    Ok(*u.choose(items)?)
}

fn trace_id(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1, 6)? {
        let raw: [u8; 16] = u.arbitrary()?;
        return Ok(String::from_utf8_lossy(&hex(&raw)).into_owned());
    }
    Ok(pick(u, &TRACES)?.to_owned())
}

fn span_id(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1, 6)? {
        let raw: [u8; 8] = u.arbitrary()?;
        return Ok(String::from_utf8_lossy(&hex(&raw)).into_owned());
    }
    Ok(pick(u, &SPANS)?.to_owned())
}

/// 32 hex digits, or the low 16 (B3's and Jaeger's 64-bit form).
fn trace_any(u: &mut Unstructured<'_>) -> Result<String> {
    let t = trace_id(u)?;
    Ok(if u.arbitrary()? {
        t[16..].to_owned()
    } else {
        t
    })
}

fn tracestate_value(u: &mut Unstructured<'_>) -> Result<String> {
    const KEYS: [&str; 12] = [
        "rojo",
        "congo",
        "vendor",
        "t61@dd",
        "0tenant@sys",
        "foo@@bar",
        "1@2",
        "tracejoin",
        "a",
        "A",
        "a b",
        "k*/_-",
    ];
    const VALUES: [&str; 8] = [
        "00f067aa0ba902b7",
        "t61rcWkgMzE",
        "1",
        " x",
        "y ",
        "a=b",
        "",
        "x,y",
    ];
    const SEPARATORS: [&str; 5] = [",", ",", ", ", ",,", " ,\t"];
    let n = u.int_in_range(0..=40u8)?;
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push_str(pick(u, &SEPARATORS)?);
        }
        let key = pick(u, &KEYS)?;
        out.push_str(key);
        if u.ratio(1, 4)? {
            out.push_str(&i.to_string());
        }
        out.push('=');
        if u.ratio(1, 8)? {
            let len = u.int_in_range(100..=260usize)?;
            out.push_str(&"v".repeat(len));
        } else {
            out.push_str(pick(u, &VALUES)?);
        }
    }
    Ok(out)
}

/// A value as a client or a proxy would send it for `name`: mostly well-formed, with the
/// near misses the formats invite.
fn well_formed(u: &mut Unstructured<'_>, name: &str) -> Result<Vec<u8>> {
    let lower = name.to_ascii_lowercase();
    let v = match lower.as_str() {
        "traceparent" => {
            let version = pick(u, &["00", "00", "00", "01", "ff", "cc", "0G"])?;
            let flags: u8 = u.arbitrary()?;
            let flags = if u.ratio(3, 4)? { flags & 3 } else { flags };
            let mut v = format!("{version}-{}-{}-{flags:02x}", trace_id(u)?, span_id(u)?);
            if version != "00" && u.arbitrary()? {
                v.push_str("-future");
            }
            v
        }
        "tracestate" => tracestate_value(u)?,
        "b3" => {
            if u.ratio(1, 5)? {
                pick(u, &["0", "1", "d", "true", "2"])?.to_owned()
            } else {
                let mut v = format!("{}-{}", trace_any(u)?, span_id(u)?);
                if u.ratio(3, 4)? {
                    v.push('-');
                    v.push_str(pick(u, &["0", "1", "1", "d", "true", "x"])?);
                    if u.arbitrary()? {
                        v.push('-');
                        v.push_str(&span_id(u)?);
                    }
                }
                v
            }
        }
        "x-b3-traceid" => trace_any(u)?,
        "x-b3-spanid" | "x-b3-parentspanid" => span_id(u)?,
        "x-b3-sampled" => pick(
            u,
            &["1", "0", "true", "false", "True", "FALSE", "d", "2", ""],
        )?
        .to_owned(),
        // Flags other than 1 are ignored (Finagle sends its bits as a number).
        "x-b3-flags" => pick(u, &["1", "0", "2", " 1", "6", "7"])?.to_owned(),
        "uber-trace-id" => {
            let strip = |s: String, yes: bool| {
                if yes {
                    let t = s.trim_start_matches('0');
                    if t.is_empty() {
                        "0".to_owned()
                    } else {
                        t.to_owned()
                    }
                } else {
                    s
                }
            };
            let trace = strip(trace_any(u)?, u.arbitrary()?);
            let span = strip(span_id(u)?, u.arbitrary()?);
            let parent = match u.int_in_range(0..=3)? {
                0 => String::new(),
                1 | 2 => "0".to_owned(),
                _ => span_id(u)?,
            };
            let flags = pick(u, &["1", "0", "3", "2", "ff", "100", "9", "8", "0b", "a"])?;
            let sep = pick(u, &[":", ":", ":", "%3A", "%3a"])?;
            let v = [trace, span, parent, flags.to_owned()].join(sep);
            if u.ratio(1, 5)? {
                v.to_ascii_uppercase()
            } else {
                v
            }
        }
        "baggage" => "userId=alice,serverNode=DF%2028".to_owned(),
        ":authority" => pick(u, &AUTHORITIES)?.to_owned(),
        _ => "f5c1fd1e-b0fc-4e52-8b74-1b5c8a3c5a6e".to_owned(),
    };
    Ok(v.into_bytes())
}

fn mutate(u: &mut Unstructured<'_>, mut v: Vec<u8>) -> Result<Vec<u8>> {
    for _ in 0..u.int_in_range(1..=3u8)? {
        let at = if v.is_empty() {
            0
        } else {
            u.int_in_range(0..=v.len() - 1)?
        };
        match u.int_in_range(0..=6u8)? {
            0 => {
                if let Some(b) = v.get_mut(at) {
                    *b = b.to_ascii_uppercase();
                }
            }
            1 => {
                let byte: u8 = u.arbitrary()?;
                if let Some(b) = v.get_mut(at) {
                    *b = byte;
                }
            }
            2 => {
                let ows = pick(u, b" \t")?;
                if u.arbitrary()? {
                    v.insert(0, ows);
                } else {
                    v.push(ows);
                }
            }
            3 => v.truncate(at),
            4 => {
                let byte: u8 = u.arbitrary()?;
                v.insert(at.min(v.len()), byte);
            }
            5 => {
                if at < v.len() {
                    v.remove(at);
                }
            }
            _ => {
                let copy = v.clone();
                v.push(b',');
                v.extend_from_slice(&copy);
            }
        }
    }
    Ok(v)
}

fn header(u: &mut Unstructured<'_>) -> Result<(Vec<u8>, Vec<u8>)> {
    let n: u8 = u.arbitrary()?;
    let name: Vec<u8> = match n % 32 {
        0..=21 => NAMES[usize::from(n % 11)].into(),
        22..=29 => OTHER_NAMES[usize::from(n % 8)].into(),
        _ => {
            let raw: &[u8] = u.arbitrary()?;
            raw.to_vec()
        }
    };
    let name_str = String::from_utf8_lossy(&name).into_owned();
    let value = match u.int_in_range(0..=7u8)? {
        0 => {
            let raw: &[u8] = u.arbitrary()?;
            raw.to_vec()
        }
        1..=5 => well_formed(u, &name_str)?,
        _ => {
            let v = well_formed(u, &name_str)?;
            mutate(u, v)?
        }
    };
    Ok((name, value))
}

// ---------------------------------------------------------------------------------------
// The host
// ---------------------------------------------------------------------------------------

use tracejoin::filter::recording_host::fail::{
    CLUSTER as FAIL_CLUSTER, HEADER_BLOCK as FAIL_BLOCK, REMOVE as FAIL_REMOVE,
    RESPONSE as FAIL_RESPONSE, SET as FAIL_SET,
};

// ---------------------------------------------------------------------------------------
// The run and its checks
// ---------------------------------------------------------------------------------------

const STATUSES: [Option<u16>; 6] = [Some(200), Some(503), Some(302), Some(0), Some(999), None];
const FINAL_CODES: [Option<u16>; 3] = [Some(503), Some(200), None];

/// One request: the configuration, the host's answers and the request headers.
struct Input {
    choice: Choice,
    seed: u64,
    fail: u8,
    cluster: Option<Vec<u8>>,
    status: Option<u16>,
    final_code: Option<u16>,
    headers: Headers,
}

/// The generated form: a few control bytes, then headers built from the rest.
fn generated(data: &[u8]) -> Result<Input> {
    let mut u = Unstructured::new(data);
    let choice = Choice::arbitrary(&mut u)?;
    let seed: u64 = u.arbitrary()?;
    // One input in eight makes some host calls fail.
    let f: u8 = u.arbitrary()?;
    let fail = if f >= 224 { f & 0x3f } else { 0 };
    let c: u8 = u.arbitrary()?;
    let cluster = match c % 10 {
        0..=6 => Some(CLUSTERS[usize::from(c % 7)].as_bytes().to_vec()),
        7 => {
            let raw: &[u8] = u.arbitrary()?;
            Some(raw.to_vec())
        }
        _ => None,
    };
    let status = pick(&mut u, &STATUSES)?;
    let final_code = pick(&mut u, &FINAL_CODES)?;
    let mut headers: Headers = Vec::new();
    while headers.len() < 48 && !u.is_empty() {
        headers.push(header(&mut u)?);
    }
    Ok(Input {
        choice,
        seed,
        fail,
        cluster,
        status,
        final_code,
        headers,
    })
}

/// The text form (readable seeds): a first line `#! upstream zipkin restart ratio=2
/// extract=1 propagate=0 nobridge external=1 response dry_run cluster=3 status=1 final=0
/// seed=7 fail=0` (any subset, any order; indexes into the tables above), then one `name: value`
/// header per line.
fn text(data: &[u8]) -> Input {
    let mut lines = data.split(|b| *b == b'\n');
    let first = lines.next().unwrap_or_default();
    let mut input = Input {
        choice: Choice {
            position: 0,
            tracer: 0,
            trust: 0,
            ratio: 0,
            extract: 0,
            propagate: 0,
            bridge: true,
            external: 0,
            response: false,
            dry_run: false,
        },
        seed: 0,
        fail: 0,
        cluster: None,
        status: STATUSES[0],
        final_code: FINAL_CODES[0],
        headers: Vec::new(),
    };
    for token in first.split(|b| *b == b' ') {
        let token = String::from_utf8_lossy(token);
        let (key, n) = match token.split_once('=') {
            Some((k, v)) => (k, v.parse::<usize>().ok()),
            None => (token.as_ref(), None),
        };
        let c = &mut input.choice;
        match (key, n) {
            ("nobridge", _) => c.bridge = false,
            ("response", _) => c.response = true,
            ("dry_run", _) => c.dry_run = true,
            ("ratio", Some(n)) => c.ratio = n % RATIOS.len(),
            ("extract", Some(n)) => c.extract = n % EXTRACTS.len(),
            ("propagate", Some(n)) => c.propagate = n % PROPAGATES.len(),
            ("external", Some(n)) => c.external = n % EXTERNALS.len(),
            ("cluster", Some(n)) => {
                input.cluster = Some(CLUSTERS[n % CLUSTERS.len()].as_bytes().to_vec())
            }
            ("status", Some(n)) => input.status = STATUSES[n % STATUSES.len()],
            ("final", Some(n)) => input.final_code = FINAL_CODES[n % FINAL_CODES.len()],
            ("seed", Some(n)) => input.seed = n as u64,
            ("fail", Some(n)) => input.fail = (n % 64) as u8,
            (word, None) => {
                if let Some(i) = POSITIONS.iter().position(|p| *p == word) {
                    c.position = i;
                } else if let Some(i) = TRACERS.iter().position(|t| *t == word) {
                    c.tracer = i;
                } else if let Some(i) = TRUSTS.iter().position(|t| *t == word) {
                    c.trust = i;
                }
            }
            _ => {}
        }
    }
    for line in lines.take(64) {
        // `:authority: host` has a colon in its name.
        let from = usize::from(line.first() == Some(&b':'));
        let Some(colon) = line.iter().skip(from).position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(from + colon);
        let value = &value[1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        input.headers.push((name.to_vec(), value.to_vec()));
    }
    input
}

fn run(data: &[u8]) -> Result<()> {
    let input = if data.starts_with(b"#!") {
        text(data)
    } else {
        generated(data)?
    };
    let Input {
        choice,
        seed,
        fail,
        cluster,
        status,
        final_code,
        headers,
    } = input;
    // Every check below is of the live run; a dry run is checked against it.
    let dry_run = choice.dry_run;
    let choice = Choice {
        dry_run: false,
        ..choice
    };
    let config = config_for(choice);
    let request = Request {
        seed,
        fail,
        cluster: &cluster,
        status,
        final_code,
        headers: &headers,
    };
    let (host, decided, plan) = drive(&request, &config);
    if dry_run {
        let dry = Choice {
            dry_run: true,
            ..choice
        };
        check_dry_run(&request, dry, &host, decided, &plan);
    }

    let what = || {
        let hs: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{}: {}", show(k), show(v)))
            .collect();
        let after: Vec<String> = host
            .request
            .iter()
            .map(|(k, v)| format!("{}: {}", show(k), show(v)))
            .collect();
        format!(
            "\nconfig: {}\ncluster: {:?}\nfail: {fail}\nin:\n  {}\nout:\n  {}",
            choice.json(),
            cluster.as_deref().map(show),
            hs.join("\n  "),
            after.join("\n  ")
        )
    };

    if fail == 0 {
        assert_eq!(host.count(Counter::HostError), 0, "{}", what());
    }
    if !decided {
        assert!(
            fail & FAIL_BLOCK != 0,
            "no plan without a host error{}",
            what()
        );
        assert!(host.writes.is_empty() && host.response.is_empty());
        return Ok(());
    }
    if config.external.is_none() {
        assert_eq!(
            host.cluster_calls, 0,
            "cluster asked without external services"
        );
    }

    let block = header_map::serialize(headers.iter().map(|(k, v)| (k, v)));
    let carrier = Carrier::from_pairs(header_map::pairs(&block));
    let reads = codec::extract_all(&carrier);
    let stripped = host.count(Counter::ExternalStripped) > 0;

    // The decision is a pure function of the headers, the configuration and the seed.
    let again = policy::decide(&config, &carrier, &mut IdGenerator::from_seed(seed));
    assert_eq!(again.context, plan.context, "{}", what());
    assert_eq!(again.outcome, plan.outcome, "{}", what());
    if !stripped {
        assert_eq!(again.ops, plan.ops, "{}", what());
    }
    if let Some(ctx) = plan.context {
        assert!(
            ctx.trace_id.is_valid() && ctx.span_id.is_valid(),
            "{}",
            what()
        );
        assert!(ctx.sampling.is_decided(), "undecided {ctx:?}{}", what());
    }

    check_writes(&host, &carrier, &reads, plan.context.as_ref(), &what);
    check_response(&host, &config, plan.context.as_ref(), &what);
    check_external(&host, &config, choice, cluster.as_deref(), stripped, &what);
    if fail == 0 {
        check_request_after(
            &host,
            &config,
            &carrier,
            &reads,
            plan.context.as_ref(),
            &what,
        );
    }
    Ok(())
}

/// What the host answers and the request headers, for [`drive`].
struct Request<'a> {
    seed: u64,
    fail: u8,
    cluster: &'a Option<Vec<u8>>,
    status: Option<u16>,
    final_code: Option<u16>,
    headers: &'a Headers,
}

/// One request through the filter: the host afterwards, whether the request phase read the
/// headers, and its plan.
fn drive(r: &Request<'_>, config: &Config) -> (RecordingHost, bool, policy::Plan) {
    let mut host = RecordingHost::default();
    host.request = r.headers.clone();
    host.fail = r.fail;
    host.cluster = r.cluster.clone();
    host.status = r.status;
    host.final_code = r.final_code;
    let mut filter = RequestFilter::new();
    let mut plan = policy::Plan::default();
    let decided = filter.on_request_headers(
        &mut host,
        config,
        &mut IdGenerator::from_seed(r.seed),
        &mut plan,
    );
    filter.on_response_headers(&mut host, config);
    filter.on_log(&mut host);
    (host, decided, plan)
}

/// The same request as a dry run: no request header set or removed and no response header
/// set; the same decision, filter state and counters as the live run (`host`), host errors
/// apart (a dry run makes no write that could fail), and `dry_run.would_change` counted
/// once exactly where the live run changed the request.
fn check_dry_run(
    r: &Request<'_>,
    choice: Choice,
    live: &RecordingHost,
    live_decided: bool,
    live_plan: &policy::Plan,
) {
    let config = config_for(choice);
    assert!(config.dry_run);
    let (dry, decided, plan) = drive(r, &config);
    let what = || {
        let hs: Vec<String> = r
            .headers
            .iter()
            .map(|(k, v)| format!("{}: {}", show(k), show(v)))
            .collect();
        format!(
            "\nconfig: {}\nfail: {}\nin:\n  {}\nlive writes: {:?}\nlive response: {:?}",
            choice.json(),
            r.fail,
            hs.join("\n  "),
            live.writes,
            live.response,
        )
    };
    assert!(
        dry.writes.is_empty(),
        "a dry run wrote request headers: {:?}{}",
        dry.writes,
        what()
    );
    assert!(
        dry.response.is_empty(),
        "a dry run set response headers: {:?}{}",
        dry.response,
        what()
    );
    assert_eq!(&dry.request, r.headers, "the request as it came{}", what());
    assert_eq!(decided, live_decided, "{}", what());
    if decided {
        assert_eq!(plan.context, live_plan.context, "{}", what());
        assert_eq!(plan.outcome, live_plan.outcome, "{}", what());
        assert_eq!(plan.ops, live_plan.ops, "{}", what());
    }
    assert_eq!(dry.filter_state, live.filter_state, "{}", what());
    assert_eq!(dry.unregistered, live.unregistered, "{}", what());
    assert_eq!(dry.cluster_calls, live.cluster_calls, "{}", what());
    assert_eq!(
        dry.dynamic_increments(),
        live.dynamic_increments(),
        "{}",
        what()
    );
    // Every fixed counter as live, but host errors (writes that failed live) and the
    // dry run's own.
    let writes_fail = r.fail & (FAIL_SET | FAIL_REMOVE | FAIL_RESPONSE) != 0;
    for c in Counter::ALL {
        let (d, l) = (dry.count(c), live.count(c));
        match c {
            Counter::DryRunWouldChange => {
                assert_eq!(l, 0, "a live run counted a dry run's counter{}", what())
            }
            Counter::HostError if writes_fail => {
                assert!(d <= l, "host errors: dry {d}, live {l}{}", what())
            }
            _ => assert_eq!(d, l, "{c:?}: dry {d}, live {l}{}", what()),
        }
    }
    // The live run changed the request: it set a header (a set is always a change, as
    // `check_writes` holds), or removed one the request had. Failing writes are recorded.
    let changed = live.sets().next().is_some()
        || live.removes().any(|name| {
            r.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
        });
    assert_eq!(
        dry.count(Counter::DryRunWouldChange),
        u32::from(changed),
        "would change, and the live run changed the request{}",
        what()
    );
}

/// Every write: to a trace header, well-formed for its format, visible ASCII, a change,
/// and all formats written name one context.
fn check_writes(
    host: &RecordingHost,
    carrier: &Carrier<'_>,
    reads: &PerFormat<Read>,
    ctx: Option<&SpanContext>,
    what: &dyn Fn() -> String,
) {
    let mut traces: Vec<(Format, Vec<u8>)> = Vec::new();
    let mut spans: Vec<(Format, Vec<u8>)> = Vec::new();
    let mut parents: Vec<(Format, Vec<u8>)> = Vec::new();
    let mut sampled: Vec<(Header, bool)> = Vec::new();
    for (name, value) in host.sets() {
        let h = Header::from_name(name.as_bytes())
            .unwrap_or_else(|| panic!("wrote {name}, not a trace header{}", what()));
        assert_eq!(name, h.name(), "header names are written lowercase");
        assert!(
            header_value_ok(h, value),
            "wrote a malformed {name}: {}{}",
            show(value),
            what()
        );
        if h == Header::Tracestate {
            assert!(
                value.iter().all(|b| (0x20..=0x7e).contains(b)) && value.last() != Some(&b' '),
                "{}",
                what()
            );
            let parts = [value];
            assert_eq!(
                tracestate::parse(&parts),
                TraceState::Canonical,
                "wrote tracestate {}{}",
                show(value),
                what()
            );
        } else {
            assert!(visible_ascii(value), "{name}: {}{}", show(value), what());
        }
        // Only what changes is written.
        assert_ne!(
            carrier.get(h),
            tracejoin::codec::Slot::One(value),
            "rewrote {name} unchanged{}",
            what()
        );
        if ctx.is_none() {
            // Without a context, only a lone sampling decision is written (in canonical
            // form), or a repaired tracestate for Envoy's tracer to continue.
            let lone_sampling = match h {
                Header::B3 => value.len() == 1,
                Header::XB3Sampled | Header::XB3Flags | Header::Tracestate => true,
                _ => false,
            };
            assert!(
                lone_sampling,
                "wrote {name} without a context: {}{}",
                show(value),
                what()
            );
        }
        let f = h.format();
        match h {
            Header::Traceparent | Header::B3 | Header::UberTraceId => {
                if let Some((t, s)) = ids_of(h, value) {
                    traces.push((f, t));
                    spans.push((f, s));
                }
                let parts: Vec<&[u8]> = value.split(|b| *b == b'-').collect();
                let s = match h {
                    Header::Traceparent => value.get(54).is_some_and(|f| (f - b'0') & 1 == 1),
                    Header::B3 if parts.len() == 1 => value != b"0",
                    Header::B3 => parts.get(2).is_some_and(|f| *f != b"0"),
                    // Jaeger: the sampled bit of the one flags digit the filter writes.
                    _ => value
                        .last()
                        .is_some_and(|f| matches!(f, b'1' | b'3' | b'9' | b'b')),
                };
                // A b3 with ids but no sampling state says nothing about sampling.
                if h != Header::B3 || parts.len() != 2 {
                    sampled.push((h, s));
                }
                if h == Header::B3 && parts.len() == 4 {
                    parents.push((f, parts[3].to_vec()));
                }
                if h == Header::UberTraceId {
                    let parent = value.split(|b| *b == b':').nth(2).unwrap_or_default();
                    if parent != b"0" {
                        parents.push((f, parent.to_vec()));
                    }
                }
            }
            Header::XB3TraceId => traces.push((f, pad32(value))),
            Header::XB3SpanId => spans.push((f, value.to_vec())),
            Header::XB3ParentSpanId => parents.push((f, value.to_vec())),
            Header::XB3Sampled => sampled.push((h, value == b"1")),
            Header::XB3Flags => sampled.push((h, true)),
            Header::Tracestate => {}
            // The decimal trace id is only the low half (`_dd.p.tid` the high one).
            Header::XDatadogTraceId | Header::XDatadogOrigin | Header::XDatadogTags => {}
            Header::XDatadogParentId => {
                let n: u64 = std::str::from_utf8(value).unwrap().parse().unwrap();
                spans.push((f, hex(&n.to_be_bytes())));
            }
            Header::XDatadogSamplingPriority => sampled.push((h, value != b"0")),
            Header::XAmznTraceId => {
                let mut t = value[7..15].to_vec();
                t.extend_from_slice(&value[16..40]);
                traces.push((f, t));
                spans.push((f, value[48..64].to_vec()));
                if value[73] != b'?' {
                    sampled.push((h, value[73] == b'1'));
                }
            }
            Header::OtTracerTraceId => traces.push((f, pad32(value))),
            Header::OtTracerSpanId => spans.push((f, value.to_vec())),
            Header::OtTracerSampled => sampled.push((h, value == b"true")),
        }
    }
    for name in host.removes() {
        assert!(
            Header::from_name(name.as_bytes()).is_some() || name == "baggage",
            "removed {name}{}",
            what()
        );
    }
    let Some(ctx) = ctx else {
        return;
    };
    // Every format written names the request's trace. Its span is the request's, except
    // for a format that arrived with that same trace and goes on as it came (rewritten only
    // into canonical form): that keeps its own span and parent.
    let trace = hex(&ctx.trace_id.0);
    let own = |f: Format| match reads[f] {
        Read::Context(c) if c.trace_id == ctx.trace_id => Some(c),
        _ => None,
    };
    for (f, t) in &traces {
        assert_eq!(t, &trace, "{} names another trace{}", f.name(), what());
    }
    for (f, s) in &spans {
        let ok = *s == hex(&ctx.span_id.0) || own(*f).is_some_and(|c| *s == hex(&c.span_id.0));
        assert!(ok, "{} names another span{}", f.name(), what());
    }
    for (f, p) in &parents {
        let of = |c: &SpanContext| c.parent_id.map(|p| hex(&p.0));
        let ok = of(ctx).as_ref() == Some(p) || own(*f).is_some_and(|c| of(&c).as_ref() == Some(p));
        assert!(ok, "{} names another parent{}", f.name(), what());
    }
    for (h, s) in &sampled {
        assert_eq!(
            *s,
            ctx.sampling.is_sampled(),
            "{} sampling{}",
            h.name(),
            what()
        );
    }
}

fn check_response(
    host: &RecordingHost,
    config: &Config,
    ctx: Option<&SpanContext>,
    what: &dyn Fn() -> String,
) {
    let Some(ctx) = ctx else {
        assert!(
            host.response.is_empty(),
            "response headers without a context{}",
            what()
        );
        return;
    };
    let trace = hex(&ctx.trace_id.0);
    for (name, value) in &host.response {
        if name == "traceresponse" {
            assert!(config.traceresponse);
            assert!(
                traceparent_ok(value),
                "traceresponse {}{}",
                show(value),
                what()
            );
            assert_eq!(&value[3..35], trace.as_slice(), "{}", what());
            assert_eq!(&value[36..52], hex(&ctx.span_id.0).as_slice(), "{}", what());
        } else {
            assert_eq!(Some(name), config.response_header.as_ref(), "{}", what());
            assert_eq!(value, &trace, "{}", what());
        }
    }
}

fn check_external(
    host: &RecordingHost,
    config: &Config,
    choice: Choice,
    cluster: Option<&[u8]>,
    stripped: bool,
    what: &dyn Fn() -> String,
) {
    let external_counts = host
        .dynamic_increments()
        .iter()
        .filter(|c| matches!(c, Counter::External { .. } | Counter::Unregistered(_)))
        .count();
    assert!(
        external_counts <= 1,
        "an external call counted twice{}",
        what()
    );
    for (key, value) in &host.filter_state {
        assert!(
            [
                STATE_SERVICE_ENTRY,
                STATE_SERVICE_ENTRY_NAMESPACE,
                STATE_EXTERNAL_HOST
            ]
            .contains(&key.as_str()),
            "filter state {key}{}",
            what()
        );
        if key == STATE_SERVICE_ENTRY {
            assert!(visible_ascii(value), "{}", what());
        }
    }
    if config.external.is_none() || choice.external == 2 {
        // Nothing configured, or every destination allowed: headers always go out.
        assert!(!stripped, "stripped{}", what());
    }
    if choice.external == 1 && host.fail & FAIL_CLUSTER == 0 {
        // The cluster decides first: these leave the mesh for services that must not see
        // the mesh's trace ids.
        let must_strip = matches!(
            cluster,
            Some(
                b"PassthroughCluster"
                    | b"outbound|443||api.openai.com"
                    | b"outbound|443||*.s3.amazonaws.com"
            )
        );
        let must_keep = cluster == Some(b"outbound|80||partner.example.com".as_slice());
        assert!(!must_strip || stripped, "not stripped{}", what());
        assert!(
            !must_keep || !stripped,
            "stripped for a propagating entry{}",
            what()
        );
    }
    if stripped {
        assert!(
            host.sets().next().is_none(),
            "wrote on a stripped request{}",
            what()
        );
        if host.fail == 0 {
            for (k, _) in &host.request {
                assert!(
                    Header::from_name(k).is_none() && !k.eq_ignore_ascii_case(b"baggage"),
                    "{} left on a stripped request{}",
                    show(k),
                    what()
                );
            }
        }
    }
}

/// The request as the next reader gets it (no host failures).
fn check_request_after(
    host: &RecordingHost,
    config: &Config,
    before: &Carrier<'_>,
    reads_before: &PerFormat<Read>,
    ctx: Option<&SpanContext>,
    what: &dyn Fn() -> String,
) {
    let upstream = config.position == Position::Upstream;
    // The request as Envoy's tracer reads it (it takes only 55-character traceparents).
    let view = policy::tracer::view(before, reads_before);
    // Formats Envoy's tracer overwrites after a listener filter: their leftovers are Envoy's.
    let owned = if upstream {
        PerFormat::default()
    } else {
        policy::tracer::writes(config.tracer, config.envoy, &view)
    };
    // Envoy's OpenTelemetry tracer continues a traceparent it can read with its tracestate;
    // its Datadog tracer writes both on every request.
    let envoy_owns_tracestate =
        !upstream && policy::tracer::writes_tracestate(config.tracer, &view);

    let block = header_map::serialize(host.request.iter().map(|(k, v)| (k, v)));
    let after = Carrier::from_pairs(header_map::pairs(&block));
    for h in Header::ALL {
        let n = host.values(h.name()).count();
        // A repeat of a header Envoy's tracer overwrites is collapsed by that write (its
        // setCopy removes every copy; measured in test_repeated_headers.py).
        if owned[h.format()] {
            continue;
        }
        // Several tracestate headers go on as they came beside an unchanged traceparent
        // (item 10): W3C reads them as their RFC 9110 combination.
        let tracestate_as_it_came = h == Header::Tracestate
            && after.get(Header::Traceparent) == before.get(Header::Traceparent)
            && after.tracestate_parts() == before.tracestate_parts();
        if !tracestate_as_it_came && (h != Header::Tracestate || !envoy_owns_tracestate) {
            assert!(n <= 1, "{} sent {n} times{}", h.name(), what());
        }
    }

    let reads_after = codec::extract_all(&after);
    for f in Format::ALL {
        let read = reads_after[f];
        // Invalid values never travel on: each is repaired or removed.
        assert_ne!(read, Read::Invalid, "{} left invalid{}", f.name(), what());
        // A value that arrived invalid is repaired or removed, and what goes on without
        // Envoy's tracer rewriting it goes on in canonical form.
        let invalid_before = reads_before[f] == Read::Invalid;
        if invalid_before || !owned[f] {
            let fate = if invalid_before {
                "arrived invalid and left as"
            } else {
                "goes on as"
            };
            for h in Header::ALL {
                if h.format() != f || h == Header::Tracestate {
                    continue;
                }
                for v in host.values(h.name()) {
                    assert!(
                        header_value_ok(h, v),
                        "{} {fate} {}{}",
                        h.name(),
                        show(v),
                        what()
                    );
                }
            }
        }
        if owned[f] {
            continue;
        }
        match (read, ctx) {
            (Read::Absent, _) => {}
            (Read::Context(c), Some(w)) => {
                assert_eq!(
                    c.trace_id,
                    w.trace_id,
                    "{} names another trace{}",
                    f.name(),
                    what()
                );
                assert_eq!(
                    c.sampling.is_sampled(),
                    w.sampling.is_sampled(),
                    "{} disagrees on sampling{}",
                    f.name(),
                    what()
                );
                if upstream {
                    assert_eq!(
                        c.span_id,
                        w.span_id,
                        "{} names another span{}",
                        f.name(),
                        what()
                    );
                }
            }
            (Read::SamplingOnly(_), None) => {}
            (other, _) => panic!("{} reads {other:?} next to {ctx:?}{}", f.name(), what()),
        }
    }

    // tracestate: only with a traceparent, valid, and an invalid one is not forwarded.
    let ts: Vec<&[u8]> = host.values("tracestate").collect();
    if !ts.is_empty() {
        assert!(
            envoy_owns_tracestate || host.values("traceparent").next().is_some(),
            "tracestate without traceparent{}",
            what()
        );
        if !envoy_owns_tracestate {
            let parsed = after.tracestate_parts().map(tracestate::parse);
            // Beside a traceparent that goes on as it came, tracestate goes on as it came too
            // (W3C; docs/conformance.md item 10), padding included, within 512 characters and
            // without a tab.
            let as_it_came = after.get(Header::Traceparent) == before.get(Header::Traceparent)
                && after.tracestate_parts() == before.tracestate_parts()
                && ts.iter().map(|v| v.len() + 1).sum::<usize>() <= 513
                && ts.iter().all(|v| !v.contains(&b'\t'));
            // Empty is only ever one empty header (what Envoy's OpenTelemetry tracer writes).
            assert!(
                matches!(parsed, Some(TraceState::Canonical))
                    || (as_it_came && matches!(parsed, Some(TraceState::Rewritten(_))))
                    || (parsed == Some(TraceState::Empty)
                        && ts.len() == 1
                        && ts.iter().all(|v| v.is_empty())),
                "tracestate left as {parsed:?} {ts:?}{}",
                what()
            );
            let invalid_before = !matches!(
                before.tracestate_parts().map(tracestate::parse),
                Some(TraceState::Canonical | TraceState::Empty | TraceState::Rewritten(_))
                    | Some(TraceState::TooLong)
            );
            if invalid_before {
                assert!(
                    host.sets().any(|(k, _)| k == "tracestate"),
                    "an invalid tracestate was forwarded{}",
                    what()
                );
            }
        }
    }
}
