//! The request path natively, without Envoy: nanoseconds, host calls and heap allocations
//! per request for the common header sets, and the live heap after many requests (no
//! growth). `cargo bench --bench request_path` (part of `make bench`).
#![allow(clippy::expect_used, clippy::indexing_slicing)] // a benchmark, not the filter

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Instant;

use tracejoin::codec::header_map;
use tracejoin::config::Config;
use tracejoin::filter::{RecordingHost, RequestFilter};
use tracejoin::ids::IdGenerator;
use tracejoin::policy::Plan;

/// Counts allocations and live bytes, so a per-request allocation or a leak shows.
struct CountingAlloc;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// What every request carries besides trace headers (as Envoy hands them to a filter).
const COMMON: [(&str, &str); 7] = [
    (":authority", "character-api.default.svc.cluster.local:8080"),
    (":path", "/api/v1/characters/42"),
    (":method", "GET"),
    (":scheme", "http"),
    ("user-agent", "python-httpx/0.28.1"),
    ("x-request-id", "a0b1c2d3-e4f5-4a6b-8c7d-8e9f0a1b2c3d"),
    ("x-forwarded-proto", "http"),
];

/// What a browser and an ingress add (as `make bench`'s browser-like request: about 1 KB).
const BROWSER: [(&str, &str); 15] = [
    (
        "accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    ),
    ("accept-language", "en-GB,en;q=0.9,de;q=0.8"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    (
        "cookie",
        "session=3f9a1c0e7b2d4e6f8a0b1c2d3e4f5a6b; _ga=GA1.1.1234567890.1733140000; \
         prefs=theme%3Ddark%26lang%3Den; csrftoken=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0",
    ),
    (
        "authorization",
        "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ik\
         pvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyLCJleHAiOjE3MzMxNDAwMDB9.c2lnbmF0dXJlLXBsYWNlaG9sZGVy",
    ),
    (
        "referer",
        "https://shop.example.com/catalog/items?page=2&sort=price",
    ),
    ("origin", "https://shop.example.com"),
    ("x-forwarded-for", "203.0.113.7, 10.0.3.12"),
    ("x-forwarded-host", "shop.example.com"),
    ("x-envoy-external-address", "203.0.113.7"),
    ("sec-fetch-site", "same-origin"),
    ("sec-fetch-mode", "cors"),
    ("sec-fetch-dest", "empty"),
    (
        "sec-ch-ua",
        "\"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"",
    ),
    ("baggage", "userId=alice,tenant=shop,experiment=checkout-b"),
];

struct Scenario {
    name: &'static str,
    config: &'static str,
    trace_headers: Vec<(&'static str, String)>,
}

fn scenarios() -> Vec<Scenario> {
    // 32 members in 415 bytes: the most W3C allows (32 members, 512 bytes).
    let full_tracestate = (0..32)
        .map(|i| format!("k{i:02}=v{i:02}abcdef"))
        .collect::<Vec<_>>()
        .join(",");
    // Over 512 bytes: truncated by the spec's rule.
    let oversized_tracestate = (0..32)
        .map(|i| format!("vendor{i:02}=opaque-value-{i:02}-abcdef"))
        .collect::<Vec<_>>()
        .join(",");
    let b3multi = |tid: &str| {
        vec![
            ("x-b3-traceid", tid.to_owned()),
            ("x-b3-spanid", "a2fb4a1d1a96d312".to_owned()),
            ("x-b3-parentspanid", "0020000000000001".to_owned()),
            ("x-b3-sampled", "1".to_owned()),
        ]
    };
    vec![
        Scenario {
            name: "default, no trace headers (Envoy starts the trace)",
            config: "{}",
            trace_headers: vec![],
        },
        Scenario {
            name: "default, W3C app (traceparent)",
            config: "{}",
            trace_headers: vec![("traceparent", TRACEPARENT.to_owned())],
        },
        Scenario {
            name: "default, W3C app, browser-like request (15 more headers)",
            config: "{}",
            trace_headers: BROWSER
                .iter()
                .map(|(k, v)| (*k, (*v).to_owned()))
                .chain([("traceparent", TRACEPARENT.to_owned())])
                .collect(),
        },
        Scenario {
            name: "all seven formats written, W3C app",
            config: r#"{"propagate":["tracecontext","b3","b3multi","jaeger","datadog","xray","ottrace"]}"#,
            trace_headers: vec![("traceparent", TRACEPARENT.to_owned())],
        },
        Scenario {
            name: "default, Zipkin app (x-b3-*)",
            config: "{}",
            trace_headers: b3multi("4bf92f3577b34da6a3ce929d0e0e4736"),
        },
        Scenario {
            name: "upstream, Envoy's x-b3-* + W3C app's traceparent",
            config: r#"{"position":"upstream"}"#,
            trace_headers: {
                let mut h = b3multi("5af7183fb1d4cf5f5af7183fb1d4cf5f");
                h.push(("traceparent", TRACEPARENT.to_owned()));
                h
            },
        },
        Scenario {
            name: "all four formats written, 32-member tracestate",
            config: r#"{"propagate":["tracecontext","b3","b3multi","jaeger"]}"#,
            trace_headers: vec![
                ("traceparent", TRACEPARENT.to_owned()),
                ("tracestate", full_tracestate),
            ],
        },
        Scenario {
            name: "default, 1,023-byte tracestate (truncated to 512)",
            config: "{}",
            trace_headers: vec![
                ("traceparent", TRACEPARENT.to_owned()),
                ("tracestate", oversized_tracestate),
            ],
        },
        Scenario {
            name: "tracer none, no trace headers (tracejoin generates)",
            config: r#"{"tracer":"none"}"#,
            trace_headers: vec![],
        },
        Scenario {
            name: "default, invalid traceparent (uppercase)",
            config: "{}",
            trace_headers: vec![("traceparent", TRACEPARENT.to_uppercase())],
        },
        Scenario {
            name: "external call tagged (external_services), headers stripped",
            config: r#"{"external_services":[{"name":"openai","namespace":"egress","hosts":["api.openai.com"]}]}"#,
            trace_headers: vec![("traceparent", TRACEPARENT.to_owned())],
        },
    ]
}

struct Measured {
    ns_per_request: f64,
    host_calls: usize,
    header_writes: usize,
    increments: usize,
    allocations: f64,
}

fn measure(scenario: &Scenario, iterations: usize) -> Measured {
    let config = Config::from_json(scenario.config.as_bytes()).expect("valid config");
    let headers: Vec<(&str, &str)> = COMMON
        .iter()
        .copied()
        .chain(scenario.trace_headers.iter().map(|(k, v)| (*k, v.as_str())))
        .collect();
    // Like Envoy's: the block is handed over afresh for each read, writes go nowhere.
    let mut host = RecordingHost::frozen(header_map::serialize(headers));
    host.cluster = Some(b"outbound|443||api.openai.com".to_vec());
    host.status = Some(200);
    host.final_code = Some(200);
    let mut ids = IdGenerator::from_seed(7);
    let mut one = |host: &mut RecordingHost| {
        host.reset_records();
        let mut filter = RequestFilter::new();
        let mut plan = Plan::default();
        black_box(filter.on_request_headers(host, &config, &mut ids, &mut plan));
        black_box(&plan);
        filter.on_response_headers(host, &config);
        filter.on_log(host);
    };
    one(&mut host);
    let (host_calls, header_writes, increments) = (
        host.calls + host.increments() as usize,
        host.write_count,
        host.increments() as usize,
    );
    // Best of several batches: the least disturbed by the rest of the machine.
    let mut best = f64::MAX;
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    let batches = 5;
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..iterations / batches {
            one(&mut host);
        }
        let ns = start.elapsed().as_nanos() as f64 / (iterations / batches) as f64;
        best = best.min(ns);
    }
    let allocations = (ALLOCATIONS.load(Ordering::Relaxed) - allocations_before) as f64
        / ((iterations / batches) * batches) as f64;
    Measured {
        ns_per_request: best,
        host_calls,
        header_writes,
        increments,
        allocations,
    }
}

fn main() {
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500_000);
    println!(
        "| header set | ns/request | host calls | of which header writes | counter increments | heap allocations/request |"
    );
    println!("|---|---|---|---|---|---|");
    for scenario in scenarios() {
        let m = measure(&scenario, iterations);
        println!(
            "| {} | {:.0} | {} | {} | {} | {:.2} |",
            scenario.name,
            m.ns_per_request,
            m.host_calls,
            m.header_writes,
            m.increments,
            m.allocations
        );
    }
    // Growth: the live heap after a warm-up and after a million more requests.
    let scenario = &scenarios()[4];
    measure(scenario, 10_000);
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    measure(scenario, 1_000_000);
    let after = LIVE_BYTES.load(Ordering::Relaxed);
    println!(
        "\nlive heap around 1,000,000 requests ({}): {before} B before, {after} B after ({:+} B)",
        scenario.name,
        after - before
    );
}
