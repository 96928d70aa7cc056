//! `explain`: one request through the filter's own request path (HTTP positions:
//! [`RequestFilter`] over a [`RecordingHost`]; network: [`ConnectionFilter`] over the same
//! host's connection buffer, on a synthetic HTTP/1.1 head), and what it read, decided and
//! wrote, with what Envoy's tracer does next as the policy models it.

use std::io::{Read, Write};

use serde_json::{Value, json};

use super::args::{ExplainArgs, HeaderArg, header_file_lines};
use super::capture::capture;
use super::{Failure, read_input};
use crate::codec::{self, Carrier, Format, Header, PerFormat};
use crate::config::{Config, EnvoyVersion, Position, Tracer};
use crate::context::{Sampling, SpanContext};
use crate::filter::{Counter, RecordingHost, RequestFilter};
use crate::ids::IdGenerator;
use crate::network::http1::head;
use crate::network::{ConnectionFilter, Leave, Verdict};
use crate::policy::{self, Op, Plan, Source, tracer};

/// What one run found, for both renderings.
struct Report {
    config: Config,
    seed: u64,
    seeded: bool,
    /// The request as the filter got it.
    before: Vec<(String, String)>,
    /// The request as it goes on (HTTP: Envoy's header map; network: the head's fields).
    after: Vec<(String, String)>,
    plan: Plan,
    /// Whether the filter decided at all (the network position can leave a connection before
    /// its head is decided: too large, not HTTP/1.1).
    decided: bool,
    /// `(name, Some(value))` set, `(name, None)` removed, in the order written.
    writes: Vec<(String, Option<String>)>,
    filter_state: Vec<(String, String)>,
    network: Option<NetworkRun>,
    notes: Vec<String>,
    /// What the filter logged while it ran (the decision line among them).
    logged: Vec<(log::Level, String)>,
}

struct NetworkRun {
    head_in: String,
    head_out: String,
    verdict: Verdict,
    rewritten: bool,
    at_limit: bool,
    left: Option<Leave>,
}

pub(super) fn explain(
    a: &ExplainArgs,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let config = load(a, stdin)?;
    let headers = headers(a)?;
    let (seed, seeded) = match a.seed {
        Some(seed) => (seed, true),
        None => (random_seed(), false),
    };
    let (mut report, logged) = capture(|| match config.position {
        Position::Network => run_network(config, headers, seed, seeded),
        Position::Downstream | Position::Upstream => {
            run_http(config, headers, a.cluster.as_deref(), seed, seeded)
        }
    });
    report.logged = logged;
    let text = if a.json {
        let mut s = serde_json::to_string_pretty(&to_json(&report))
            .map_err(|e| Failure::Input(format!("cannot render JSON: {e}")))?;
        s.push('\n');
        s
    } else {
        to_text(&report)
    };
    let _ = out.write_all(text.as_bytes());
    Ok(0)
}

/// The configuration through the loader, with `--position` and `--tracer` written into it
/// first, so that the loader's cross-field rules hold for the combination explained.
fn load(a: &ExplainArgs, stdin: &mut dyn Read) -> Result<Config, Failure> {
    let bytes = match &a.config {
        Some(input) => read_input(input, stdin)?,
        None => b"{}".to_vec(),
    };
    let bytes = if a.position.is_none() && a.tracer.is_none() {
        bytes
    } else {
        // Writing the flags in parses the JSON, which keeps the last of two equal keys: the
        // loader's refusal of a repeated key stands.
        if let Err(e) = Config::from_json(&bytes)
            && e.reason == "is given more than once"
        {
            return Err(Failure::Refused(e.to_string()));
        }
        // The empty configuration is `{}` to the loader; what is not an object the loader
        // refuses, saying why.
        let map = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Some(map),
            Err(_) if bytes.trim_ascii().is_empty() => Some(serde_json::Map::new()),
            _ => None,
        };
        match map {
            Some(mut map) => {
                for (key, value) in [("position", &a.position), ("tracer", &a.tracer)] {
                    if let Some(v) = value {
                        map.insert(key.to_owned(), Value::String(v.clone()));
                    }
                }
                Value::Object(map).to_string().into_bytes()
            }
            None => bytes,
        }
    };
    let config = Config::from_json(&bytes).map_err(|e| Failure::Refused(e.to_string()))?;
    let detected = match &a.envoy {
        Some(text) => Some(EnvoyVersion::parse(text).ok_or_else(|| {
            Failure::Usage(format!(
                "explain: --envoy takes a release like 1.40 or 1.36.4, not `{text}`"
            ))
        })?),
        None => None,
    };
    Ok(config.with_detected_envoy(detected))
}

fn headers(a: &ExplainArgs) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    for h in &a.headers {
        match h {
            HeaderArg::One(name, value) => out.push((name.clone(), value.clone())),
            HeaderArg::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Failure::Input(format!("cannot read {path}: {e}")))?;
                let lines =
                    header_file_lines(&text).map_err(|e| Failure::Input(format!("{path}: {e}")))?;
                out.extend(lines);
            }
        }
    }
    Ok(out)
}

/// Ids are random unless `--seed` is given; the seed is shown, so a run can be repeated.
fn random_seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

fn run_http(
    config: Config,
    headers: Vec<(String, String)>,
    cluster: Option<&str>,
    seed: u64,
    seeded: bool,
) -> Report {
    let mut notes = Vec::new();
    // Envoy's header map: lowercase names, and HTTP/1's Host as `:authority`.
    let mut before: Vec<(String, String)> = headers
        .into_iter()
        .map(|(k, v)| {
            let k = k.to_ascii_lowercase();
            (
                if k == "host" {
                    ":authority".to_owned()
                } else {
                    k
                },
                v,
            )
        })
        .collect();
    if config.position == Position::Downstream
        && config.tracer != Tracer::None
        && !before.iter().any(|(k, _)| k == "x-request-id")
    {
        notes.push(
            "no x-request-id given: in Envoy the HCM adds one before the filters, recording \
             its sampling decision, which the filter reads for a B3 context without one"
                .to_owned(),
        );
    }
    before.retain(|(k, _)| !k.is_empty());
    let mut host = RecordingHost::default();
    host.request = before
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    host.cluster = cluster.map(|c| c.as_bytes().to_vec());
    let mut filter = RequestFilter::new();
    let mut ids = IdGenerator::from_seed(seed);
    let mut plan = Plan::default();
    filter.on_request_headers(&mut host, &config, &mut ids, &mut plan);
    let writes = host
        .writes
        .iter()
        .map(|(k, v)| (k.clone(), v.as_deref().map(lossy)))
        .collect();
    let filter_state = host
        .filter_state
        .iter()
        .map(|(k, v)| (k.clone(), lossy(v)))
        .collect();
    let after = host
        .request
        .iter()
        .map(|(k, v)| (lossy(k), lossy(v)))
        .collect();
    Report {
        config,
        seed,
        seeded,
        before,
        after,
        plan,
        decided: true,
        writes,
        filter_state,
        network: None,
        notes,
        logged: Vec::new(),
    }
}

/// The network position on one HTTP/1.1 request head built from the headers: `:method`
/// and `:path` make its request line, `:authority` its Host (`localhost` when neither
/// `host` nor `:authority` is given: HTTP/1.1 needs one).
fn run_network(config: Config, headers: Vec<(String, String)>, seed: u64, seeded: bool) -> Report {
    let mut notes = Vec::new();
    let pseudo = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let method = pseudo(":method").unwrap_or_else(|| "GET".to_owned());
    let path = pseudo(":path").unwrap_or_else(|| "/".to_owned());
    let mut fields: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !k.starts_with(':'))
        .cloned()
        .collect();
    if !fields.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        let host = pseudo(":authority").unwrap_or_else(|| {
            notes.push("no host or :authority given: the head says `host: localhost`".to_owned());
            "localhost".to_owned()
        });
        fields.insert(0, ("host".to_owned(), host));
    }
    let mut head_in = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in &fields {
        head_in.push_str(&format!("{k}: {v}\r\n"));
    }
    head_in.push_str("\r\n");

    let mut host = RecordingHost::default();
    host.downstream = head_in.as_bytes().to_vec();
    let mut connection = ConnectionFilter::new(&mut host);
    let mut ids = IdGenerator::from_seed(seed);
    let len = host.downstream.len();
    let verdict = connection.on_data(&mut host, &config, &mut ids, len, false);
    // The head's decision, as the framer made it: the same policy on the same carrier,
    // with ids from the same seed (the first head of a connection draws first).
    let decided = host.count(Counter::NetworkHead) > 0;
    let plan = match head::scan(head_in.as_bytes()) {
        Ok(Some(parsed)) if decided => {
            policy::decide(&config, &parsed.carrier, &mut IdGenerator::from_seed(seed))
        }
        _ => Plan::default(),
    };
    let head_out = lossy(&host.downstream);
    let left = Leave::ALL
        .into_iter()
        .find(|l| host.count(Counter::NetworkLeft(*l)) > 0);
    let rewritten = host.count(Counter::NetworkRewritten) > 0;
    let at_limit = host.count(Counter::NetworkAtLimit) > 0;
    // What the head now carries: each trace header the plan changed, as written (a head at
    // Envoy's limits keeps only the removals under `trust`, or nothing).
    // A dry run counts the rewrite it would make but passes the bytes as they came.
    let written = if !rewritten || config.dry_run {
        Plan::default()
    } else if at_limit {
        match head::scan(head_in.as_bytes()) {
            Ok(Some(parsed)) => plan.removals_only(&parsed.carrier),
            _ => Plan::default(),
        }
    } else {
        plan.clone()
    };
    let writes = Header::ALL
        .into_iter()
        .filter_map(|h| match written.op(h) {
            Op::Keep => None,
            Op::Set(v) => Some((h.name().to_owned(), Some(lossy(v.as_bytes())))),
            Op::SetText(s) => Some((h.name().to_owned(), Some(s.clone()))),
            Op::Remove => Some((h.name().to_owned(), None)),
        })
        .collect();
    let after = head_fields(&host.downstream);
    Report {
        config,
        seed,
        seeded,
        before: fields,
        after,
        plan,
        decided,
        writes,
        filter_state: Vec::new(),
        network: Some(NetworkRun {
            head_in,
            head_out,
            verdict,
            rewritten,
            at_limit,
            left,
        }),
        notes,
        logged: Vec::new(),
    }
}

/// The field lines of an HTTP/1.1 head, as `(name, value)`.
fn head_fields(head: &[u8]) -> Vec<(String, String)> {
    lossy(head)
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sampling_name(s: Sampling) -> &'static str {
    match s {
        Sampling::Deferred => "deferred",
        Sampling::NotSampled => "not_sampled",
        Sampling::Sampled => "sampled",
        Sampling::Debug => "debug",
    }
}

fn context_json(c: &SpanContext) -> Value {
    json!({
        "trace_id": hex(&c.trace_id.0),
        "span_id": hex(&c.span_id.0),
        "parent_id": c.parent_id.map(|p| hex(&p.0)),
        "sampling": sampling_name(c.sampling),
    })
}

fn context_text(c: &SpanContext) -> String {
    let parent = c
        .parent_id
        .map(|p| format!(" parent {}", hex(&p.0)))
        .unwrap_or_default();
    format!(
        "trace {} span {}{parent} {}",
        hex(&c.trace_id.0),
        hex(&c.span_id.0),
        sampling_name(c.sampling)
    )
}

/// The request's trace headers of `format`, as they arrived.
fn format_headers(pairs: &[(String, String)], format: Format) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter(|(k, _)| {
            Header::from_name(k.to_ascii_lowercase().as_bytes())
                .is_some_and(|h| h.format() == format)
        })
        .cloned()
        .collect()
}

/// One format as read: its state, its context, and how Envoy's tracer sees it if that
/// differs (Envoy takes only a 55-character traceparent, for one).
struct FormatRead {
    format: Format,
    state: &'static str,
    context: Option<SpanContext>,
    sampling_only: Option<Sampling>,
    tracer_state: Option<&'static str>,
    headers: Vec<(String, String)>,
}

fn read_state(r: &codec::Read) -> &'static str {
    match r {
        codec::Read::Absent => "absent",
        codec::Read::Invalid => "invalid",
        codec::Read::Context(_) => "valid",
        codec::Read::SamplingOnly(_) => "sampling_only",
    }
}

fn carrier_pairs(pairs: &[(String, String)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase().into_bytes(), v.clone().into_bytes()))
        .collect()
}

fn reads_of(config: &Config, pairs: &[(String, String)]) -> Vec<FormatRead> {
    let owned = carrier_pairs(pairs);
    let carrier = Carrier::from_pairs(owned.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
    let reads = codec::extract_all(&carrier);
    let view = tracer::view_for(config.tracer, &carrier, &reads);
    let tracer_reads = tracer::reads(config.tracer);
    Format::ALL
        .into_iter()
        .map(|f| FormatRead {
            format: f,
            state: read_state(&reads[f]),
            context: reads[f].context().copied(),
            sampling_only: match reads[f] {
                codec::Read::SamplingOnly(s) => Some(s),
                _ => None,
            },
            tracer_state: (tracer_reads.contains(&f) && view[f] != reads[f])
                .then(|| read_state(&view[f])),
            headers: format_headers(pairs, f),
        })
        .collect()
}

/// What Envoy's tracer does with the request, as src/policy/tracer.rs models it.
struct TracerNext {
    reads: &'static [Format],
    /// Downstream and network: the context it continues (format and context), if any.
    continues: Option<(Format, SpanContext)>,
    writes: Vec<Format>,
    leaves_stale: Vec<Format>,
    /// Upstream: the span it injected before the filter, as the request shows it.
    injected: Option<(SpanContext, Format)>,
    note: String,
}

fn formats_set(set: &PerFormat<bool>) -> Vec<Format> {
    Format::ALL.into_iter().filter(|f| set[*f]).collect()
}

fn names(formats: &[Format]) -> String {
    if formats.is_empty() {
        return "nothing".to_owned();
    }
    formats
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn tracer_next(r: &Report) -> TracerNext {
    let config = &r.config;
    let name = config.tracer.name();
    let reads = tracer::reads(config.tracer);
    if config.tracer == Tracer::None {
        return TracerNext {
            reads,
            continues: None,
            writes: Vec::new(),
            leaves_stale: Vec::new(),
            injected: None,
            note: "no tracer: the request goes on as tracejoin leaves it".to_owned(),
        };
    }
    if config.position == Position::Upstream {
        let owned = carrier_pairs(&r.before);
        let carrier = Carrier::from_pairs(owned.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
        let all = codec::extract_all(&carrier);
        let injected = tracer::injected(config.tracer, config.envoy, &all);
        let note = match &injected {
            Some((ctx, f)) => format!(
                "upstream: Envoy's {name} tracer ran before this filter; the span it injected, \
                 as the request shows it ({}): {}",
                f.name(),
                context_text(ctx)
            ),
            None => format!(
                "upstream: Envoy's {name} tracer ran before this filter and injected nothing \
                 it reads back in {}",
                names(reads)
            ),
        };
        return TracerNext {
            reads,
            continues: None,
            writes: Vec::new(),
            leaves_stale: Vec::new(),
            injected,
            note,
        };
    }
    // Downstream and network: the tracer reads the request as tracejoin left it.
    let owned = carrier_pairs(&r.after);
    let carrier = Carrier::from_pairs(owned.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
    let all = codec::extract_all(&carrier);
    let view = tracer::view_for(config.tracer, &carrier, &all);
    let continues = reads
        .iter()
        .find_map(|f| view[*f].context().map(|c| (*f, *c)));
    let writes = formats_set(&tracer::writes(config.tracer, config.envoy, &view));
    let leaves_stale = if config.position == Position::Downstream {
        formats_set(&tracer::leaves_stale(config.tracer, config.envoy, &view))
    } else {
        Vec::new()
    };
    let when = if config.position == Position::Network {
        "in the HTTP connection manager behind this filter,"
    } else {
        "after the listener filters,"
    };
    let mut note = match &continues {
        Some((f, c)) => format!(
            "{when} Envoy's {name} tracer (Envoy {}) reads {}: it continues trace {} from {} \
             (its parent: span {}) and writes {} with its own span",
            config.envoy,
            names(reads),
            hex(&c.trace_id.0),
            f.name(),
            hex(&c.span_id.0),
            names(&writes)
        ),
        None => format!(
            "{when} Envoy's {name} tracer (Envoy {}) reads {}: no context it reads, so it \
             starts a new trace and writes {}",
            config.envoy,
            names(reads),
            names(&writes)
        ),
    };
    if !leaves_stale.is_empty() {
        note.push_str(&format!(
            "; it leaves {} as it arrived (the caller's span)",
            names(&leaves_stale)
        ));
    }
    TracerNext {
        reads,
        continues,
        writes,
        leaves_stale,
        injected: None,
        note,
    }
}

fn source_parts(s: Source) -> (&'static str, Option<Format>) {
    match s {
        Source::Extracted(f) => ("extracted", Some(f)),
        Source::Injected(f) => ("injected", Some(f)),
        Source::Generated => ("generated", None),
        Source::LeftToTracer => ("left_to_tracer", None),
    }
}

/// The decision line the filter logged at debug (`tracejoin: decision key=value ...`), as
/// it logs it in Envoy (docs/observability.md); none when the network position left the
/// connection before deciding.
fn decision_line(r: &Report) -> Option<String> {
    r.logged
        .iter()
        .find(|(level, line)| {
            *level == log::Level::Debug && line.starts_with("tracejoin: decision ")
        })
        .map(|(_, line)| line.clone())
}

/// The trace headers the request brought that the filter left as they were.
fn kept(r: &Report) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (k, _) in &r.before {
        let lower = k.to_ascii_lowercase();
        let trace = Header::from_name(lower.as_bytes()).is_some();
        if trace && !names.contains(&lower) && !r.writes.iter().any(|(w, _)| *w == lower) {
            names.push(lower);
        }
    }
    names
}

fn to_json(r: &Report) -> Value {
    let o = &r.plan.outcome;
    let (source, source_format) = source_parts(o.source);
    let reads: Vec<Value> = reads_of(&r.config, &r.before)
        .into_iter()
        .map(|fr| {
            json!({
                "format": fr.format.name(),
                "state": fr.state,
                "context": fr.context.as_ref().map(context_json),
                "sampling_only": fr.sampling_only.map(sampling_name),
                "tracer_sees": fr.tracer_state,
                "headers": fr.headers,
            })
        })
        .collect();
    let invalid: Vec<&str> = Format::ALL
        .into_iter()
        .filter(|f| o.invalid[*f])
        .map(Format::name)
        .collect();
    let set: Vec<Value> = r
        .writes
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| json!({"name": k, "value": v})))
        .collect();
    let removed: Vec<&str> = r
        .writes
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    let next = tracer_next(r);
    let format_names = |fs: &[Format]| fs.iter().map(|f| f.name()).collect::<Vec<_>>();
    json!({
        "config": {
            "position": r.config.position.name(),
            "tracer": r.config.tracer.name(),
            "extract": format_names(&r.config.extract),
            "propagate": format_names(&r.config.propagate),
            "envoy": r.config.envoy.to_string(),
            "envoy_source": r.config.envoy_source.describe(),
            "load_lines": r.config.load_lines().into_iter().map(|(_, l)| l).collect::<Vec<_>>(),
        },
        "seed": r.seed,
        "seeded": r.seeded,
        "request": r.before,
        "reads": reads,
        "decision": r.decided.then(|| json!({
            "source": source,
            "source_format": source_format.map(Format::name),
            "context": r.plan.context.as_ref().map(context_json),
            "conflict": o.conflict,
            "bridged": o.bridged,
            "continued_over_tracer": o.continued_over_tracer,
            "restarted": o.restarted,
            "sampling_decision": o.decided,
            "invalid": invalid,
            "invalid_tracestate": o.invalid_tracestate,
        })),
        "writes": {"set": set, "removed": removed, "kept": kept(r), "filter_state": r.filter_state},
        "request_after": r.after,
        "network": r.network.as_ref().map(|n| json!({
            "head_in": n.head_in,
            "head_out": n.head_out,
            "verdict": format!("{:?}", n.verdict).to_ascii_lowercase(),
            "rewritten": n.rewritten,
            "at_limit": n.at_limit,
            "left": n.left.map(Leave::name),
        })),
        "tracer_next": {
            "tracer": r.config.tracer.name(),
            "reads": format_names(next.reads),
            "continues": next.continues.map(|(f, c)| json!({"format": f.name(), "context": context_json(&c)})),
            "writes": format_names(&next.writes),
            "leaves_stale": format_names(&next.leaves_stale),
            "injected": next.injected.map(|(c, f)| json!({"format": f.name(), "context": context_json(&c)})),
            "note": next.note,
        },
        "notes": r.notes,
        "decision_line": decision_line(r),
    })
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn to_text(r: &Report) -> String {
    let mut s = String::new();
    let mut line = |text: String| {
        s.push_str(&text);
        s.push('\n');
    };
    let c = &r.config;
    line(format!(
        "tracejoin explain: position {}, tracer {}, Envoy {} ({}), ids {}",
        c.position.name(),
        c.tracer.name(),
        c.envoy,
        c.envoy_source.describe(),
        if r.seeded {
            format!("from --seed {}", r.seed)
        } else {
            format!("random (--seed {} repeats them)", r.seed)
        }
    ));
    for (_, l) in c.load_lines() {
        line(format!("  {l}"));
    }
    if let Some(n) = &r.network {
        line(String::new());
        line("request head in (synthetic HTTP/1.1):".to_owned());
        for l in n.head_in.trim_end().split("\r\n") {
            line(format!("  {l}"));
        }
    }

    line(String::new());
    line("reads".to_owned());
    let mut any = false;
    for fr in reads_of(c, &r.before) {
        if fr.state == "absent" {
            continue;
        }
        any = true;
        let what = match (&fr.context, fr.sampling_only) {
            (Some(ctx), _) => format!("valid: {}", context_text(ctx)),
            (None, Some(smp)) => format!("a sampling decision only: {}", sampling_name(smp)),
            (None, None) => {
                "invalid: the codec does not read it (the value below), so it is not continued"
                    .to_owned()
            }
        };
        line(format!("  {:<13}{what}", fr.format.name()));
        if let Some(t) = fr.tracer_state {
            line(format!("  {:<13}(Envoy's tracer sees it as {t})", ""));
        }
        for (k, v) in &fr.headers {
            line(format!("  {:<13}  {k}: {v}", ""));
        }
    }
    if !any {
        line("  no trace header".to_owned());
    }

    line(String::new());
    line("decides".to_owned());
    if !r.decided {
        let why = r
            .network
            .as_ref()
            .and_then(|n| n.left)
            .map_or("", Leave::name);
        line(format!(
            "  nothing: the filter left the connection alone ({why}) before deciding"
        ));
    } else {
        decides_text(r, &mut line);
    }

    line(String::new());
    line("writes".to_owned());
    if r.writes.is_empty() && r.config.dry_run {
        line(
            "  nothing (dry_run): the decision line's wrote= and removed= say what it would write"
                .to_owned(),
        );
    } else if r.writes.is_empty() {
        line("  nothing: the request goes on as it came".to_owned());
    }
    for (k, v) in &r.writes {
        match v {
            Some(v) => line(format!("  set     {k}: {v}")),
            None => line(format!("  remove  {k}")),
        }
    }
    for k in kept(r) {
        line(format!("  keep    {k}"));
    }
    for (k, v) in &r.filter_state {
        line(format!("  filter state {k} = {v}"));
    }
    if let Some(n) = &r.network {
        if let Some(l) = n.left {
            line(format!("  connection left alone: {}", l.name()));
        } else if n.at_limit {
            line("  at Envoy's header limits: only removals written".to_owned());
        }
        line(format!("request head out (verdict {:?}):", n.verdict));
        for l in n.head_out.trim_end().split("\r\n") {
            line(format!("  {l}"));
        }
    }

    line(String::new());
    line("then".to_owned());
    line(format!("  {}", tracer_next(r).note));
    for note in &r.notes {
        line(format!("  note: {note}"));
    }

    line(String::new());
    line("decision line (debug log)".to_owned());
    match decision_line(r) {
        Some(l) => line(format!("  {l}")),
        None => line("  none: the filter left the connection before deciding".to_owned()),
    }
    s
}

/// The decision, for [`to_text`].
fn decides_text(r: &Report, line: &mut dyn FnMut(String)) {
    let c = &r.config;
    let o = &r.plan.outcome;
    let source = match o.source {
        Source::Extracted(f) => format!("the request's {} context", f.name()),
        Source::Injected(f) => format!("the span Envoy's tracer injected ({})", f.name()),
        Source::Generated => "a context tracejoin started".to_owned(),
        Source::LeftToTracer => {
            "nothing usable arrived: Envoy's tracer starts the trace after the filter".to_owned()
        }
    };
    line(format!("  source       {source}"));
    if let Some(ctx) = &r.plan.context {
        line(format!("  context      {}", context_text(ctx)));
    }
    let invalid = Format::ALL
        .into_iter()
        .filter(|f| o.invalid[*f])
        .map(Format::name)
        .collect::<Vec<_>>();
    if !invalid.is_empty() {
        line(format!("  invalid      {}", invalid.join(", ")));
    }
    if o.invalid_tracestate {
        line("  tracestate   invalid".to_owned());
    }
    line(format!(
        "  conflict {}, bridged {}, continued over the tracer {}, restarted {}",
        yes(o.conflict),
        yes(o.bridged),
        yes(o.continued_over_tracer),
        yes(o.restarted)
    ));
    line(format!(
        "  sampling     {}",
        match o.decided {
            Some(true) => format!(
                "tracejoin decided: sampled (ratio {})",
                c.sampler.ratio_text()
            ),
            Some(false) => format!(
                "tracejoin decided: not sampled (ratio {})",
                c.sampler.ratio_text()
            ),
            None => "not decided by tracejoin (as it arrived, or Envoy's)".to_owned(),
        }
    ));
}

#[cfg(test)]
mod tests {
    use super::super::run;

    fn explain(args: &[&str]) -> (u8, serde_json::Value) {
        let mut full = vec![
            "explain".to_string(),
            "--json".to_string(),
            "--seed".to_string(),
            "1".to_string(),
        ];
        full.extend(args.iter().map(|s| s.to_string()));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&full, &mut &b""[..], &mut out, &mut err);
        let value = serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null);
        (code, value)
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn w3c_app_under_zipkin_gets_b3_with_its_ids() {
        let tp = format!("traceparent: 00-{TRACE}-{SPAN}-01");
        let (code, v) = explain(&["--header", &tp]);
        assert_eq!(code, 0);
        assert_eq!(v["decision"]["source"], "extracted");
        assert_eq!(v["decision"]["source_format"], "tracecontext");
        assert_eq!(v["decision"]["bridged"], true);
        let set = v["writes"]["set"].as_array().unwrap();
        let b3 = set.iter().find(|h| h["name"] == "b3").unwrap();
        assert_eq!(b3["value"], format!("{TRACE}-{SPAN}-1"));
        assert_eq!(
            v["decision_line"],
            format!(
                "tracejoin: decision position=downstream source=tracecontext trace_id={TRACE} sampled=1 wrote=b3 removed=- invalid=- flags=bridged request_id=- dry_run=false"
            )
        );
    }

    #[test]
    fn seeded_ids_repeat() {
        let (_, a) = explain(&["--tracer", "none"]);
        let (_, b) = explain(&["--tracer", "none"]);
        assert_eq!(a["decision"]["source"], "generated");
        assert_eq!(a["decision"]["context"], b["decision"]["context"]);
    }

    #[test]
    fn overrides_go_through_the_loader() {
        let (code, _) = explain(&["--config", r#"{"trust":"restart"}"#, "--tracer", "zipkin"]);
        assert_eq!(code, super::super::EXIT_REFUSED);
        let (code, v) = explain(&[
            "--config",
            r#"{"trust":"restart"}"#,
            "--position",
            "upstream",
        ]);
        assert_eq!(code, 0);
        assert_eq!(v["config"]["position"], "upstream");
        let twice = r#"{"tracer":"none","tracer":"zipkin"}"#;
        let (code, _) = explain(&["--config", twice, "--position", "upstream"]);
        assert_eq!(code, super::super::EXIT_REFUSED);
        let (code, _) = explain(&["--envoy", "one.forty"]);
        assert_eq!(code, super::super::EXIT_USAGE);
    }

    #[test]
    fn network_rewrites_the_head() {
        let tp = format!("traceparent: 00-{TRACE}-{SPAN}-01");
        let (code, v) = explain(&["--position", "network", "--header", &tp]);
        assert_eq!(code, 0);
        let n = &v["network"];
        assert_eq!(n["rewritten"], true);
        let out = n["head_out"].as_str().unwrap();
        assert!(out.starts_with("GET / HTTP/1.1\r\n"), "{out}");
        assert!(out.contains("\r\nhost: localhost\r\n"), "{out}");
        assert!(out.contains(&format!("x-b3-traceid: {TRACE}\r\n")), "{out}");
        assert_eq!(v["tracer_next"]["continues"]["context"]["trace_id"], TRACE);
    }
}
