//! The command line, parsed by hand: two subcommands and a few flags do not need a parser
//! crate (and the crate's dependencies stay those of the filter).

use std::fmt;

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    /// `check-config [FILE|-]`: no argument reads stdin, as `-` does.
    CheckConfig {
        input: Input,
    },
    Explain(ExplainArgs),
}

/// Where a configuration comes from.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Input {
    Stdin,
    File(String),
    /// `--config '{...}'`: JSON given inline (an argument starting with `{`).
    Inline(String),
}

#[derive(Debug, PartialEq, Eq, Default)]
pub struct ExplainArgs {
    /// None: the empty configuration (`{}`), as an Istio WasmPlugin without `pluginConfig`.
    pub config: Option<Input>,
    pub position: Option<String>,
    pub tracer: Option<String>,
    /// As the filter would detect it from the host (`with_detected_envoy`).
    pub envoy: Option<String>,
    /// `(name, value)` in the order given: `--header` and `--headers-file` lines together.
    pub headers: Vec<HeaderArg>,
    /// Envoy's `xds.cluster_name` for the request (external services).
    pub cluster: Option<String>,
    pub seed: Option<u64>,
    pub json: bool,
}

/// A header as given: `--header 'name: value'`, or a file to read them from.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum HeaderArg {
    One(String, String),
    File(String),
}

/// A usage error: what was wrong with the command line (exit status 2).
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

pub const USAGE: &str = "\
usage: tracejoin check-config [FILE|-]
       tracejoin explain [--config FILE|JSON|-] [--position P] [--tracer T] [--envoy VERSION]
                         [--header 'name: value']... [--headers-file FILE] [--cluster NAME]
                         [--seed N] [--json]

check-config  runs the filter's configuration loader on a plugin configuration (JSON, from FILE
              or stdin): prints the filter's load line and exits 0, or the message the filter
              logs when it refuses it and exits 1.
explain       shows what the filter reads, decides and writes for one request: position and
              tracer override the configuration's; VERSION is the Envoy release as the filter
              would detect it; ids are random unless --seed is given.
Exit status: 0 done, 1 configuration refused, 2 usage error.
";

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let Some((command, rest)) = args.split_first() else {
        return Err(usage("no command given"));
    };
    match command.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "check-config" => parse_check(rest),
        // Help wins over whatever else is on the line.
        "explain" if rest.iter().any(|a| a == "-h" || a == "--help") => Ok(Command::Help),
        "explain" => parse_explain(rest).map(Command::Explain),
        other => Err(usage(format!("unknown command `{other}`"))),
    }
}

fn parse_check(rest: &[String]) -> Result<Command, UsageError> {
    match rest {
        [] => Ok(Command::CheckConfig {
            input: Input::Stdin,
        }),
        [one] if one == "-h" || one == "--help" => Ok(Command::Help),
        [one] if one == "-" => Ok(Command::CheckConfig {
            input: Input::Stdin,
        }),
        [one] if one.starts_with('-') => {
            Err(usage(format!("check-config: unknown option `{one}`")))
        }
        [one] => Ok(Command::CheckConfig {
            input: Input::File(one.clone()),
        }),
        _ => Err(usage("check-config takes one FILE (or - for stdin)")),
    }
}

fn parse_explain(rest: &[String]) -> Result<ExplainArgs, UsageError> {
    let mut out = ExplainArgs::default();
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        // `--flag=value` and `--flag value` alike.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, UsageError> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| usage(format!("explain: {name} needs a value"))),
            }
        };
        match flag {
            "--json" if inline.is_none() => out.json = true,
            "--config" => {
                let v = value(flag)?;
                out.config = Some(config_input(v));
            }
            "--position" => set_once(&mut out.position, flag, value(flag)?)?,
            "--tracer" => set_once(&mut out.tracer, flag, value(flag)?)?,
            "--envoy" => set_once(&mut out.envoy, flag, value(flag)?)?,
            "--cluster" => set_once(&mut out.cluster, flag, value(flag)?)?,
            "--seed" => {
                let v = value(flag)?;
                let seed = v.parse::<u64>().map_err(|_| {
                    usage(format!("explain: --seed takes a whole number, not `{v}`"))
                })?;
                if out.seed.replace(seed).is_some() {
                    return Err(usage("explain: --seed is given more than once"));
                }
            }
            "--header" | "-H" => {
                let v = value(flag)?;
                let (name, val) = header_line(&v).ok_or_else(|| {
                    usage(format!("explain: --header takes `name: value`, not `{v}`"))
                })?;
                out.headers.push(HeaderArg::One(name, val));
            }
            "--headers-file" => out.headers.push(HeaderArg::File(value(flag)?)),
            other => return Err(usage(format!("explain: unknown argument `{other}`"))),
        }
    }
    Ok(out)
}

fn config_input(v: String) -> Input {
    if v == "-" {
        Input::Stdin
    } else if v.trim_start().starts_with('{') {
        Input::Inline(v)
    } else {
        Input::File(v)
    }
}

fn set_once(slot: &mut Option<String>, flag: &str, v: String) -> Result<(), UsageError> {
    if slot.replace(v).is_some() {
        return Err(usage(format!("explain: {flag} is given more than once")));
    }
    Ok(())
}

/// `name: value` (the value's surrounding whitespace trimmed, as HTTP does). A pseudo-header
/// (`:authority: host`) splits at the colon after its name.
pub fn header_line(line: &str) -> Option<(String, String)> {
    let skip = usize::from(line.starts_with(':'));
    let colon = line.get(skip..)?.find(':')? + skip;
    let name = line.get(..colon)?.trim();
    let value = line.get(colon + 1..)?.trim();
    if name.is_empty() || name.len() == skip || name.bytes().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    Some((name.to_owned(), value.to_owned()))
}

/// The lines of a headers file: `name: value`, blank lines and `#` comments skipped, and an
/// HTTP/1.1 request line (`GET / HTTP/1.1`, as copied from a capture) skipped too.
pub fn header_file_lines(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || is_request_line(trimmed) {
            continue;
        }
        let pair = header_line(line).ok_or_else(|| format!("line {}: not `name: value`", i + 1))?;
        out.push(pair);
    }
    Ok(out)
}

fn is_request_line(line: &str) -> bool {
    let mut parts = line.split(' ');
    let (Some(method), Some(_), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && version.starts_with("HTTP/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn check_config_reads_a_file_or_stdin() {
        assert_eq!(
            parse(&args(&["check-config", "c.json"])),
            Ok(Command::CheckConfig {
                input: Input::File("c.json".into())
            })
        );
        for stdin in [&["check-config"][..], &["check-config", "-"][..]] {
            assert_eq!(
                parse(&args(stdin)),
                Ok(Command::CheckConfig {
                    input: Input::Stdin
                })
            );
        }
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &[][..],
            &["frobnicate"][..],
            &["check-config", "a.json", "b.json"][..],
            &["check-config", "--verbose"][..],
            &["explain", "--position"][..],
            &["explain", "--header", "no colon"][..],
            &["explain", "--header", ": empty name"][..],
            &["explain", "--seed", "x"][..],
            &["explain", "--seed", "-1"][..],
            &["explain", "--tracer", "zipkin", "--tracer", "none"][..],
            &["explain", "--bogus"][..],
            &["explain", "--json=yes"][..],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn explain_flags() {
        let got = parse(&args(&[
            "explain",
            "--config",
            "{\"tracer\": \"zipkin\"}",
            "--position=network",
            "--tracer",
            "opentelemetry",
            "--envoy",
            "1.38",
            "-H",
            "traceparent: 00-aa-bb-01",
            "--header",
            ":authority:  example.com ",
            "--headers-file",
            "h.txt",
            "--cluster",
            "outbound|443||api.example.com",
            "--seed",
            "7",
            "--json",
        ]));
        let want = ExplainArgs {
            config: Some(Input::Inline("{\"tracer\": \"zipkin\"}".into())),
            position: Some("network".into()),
            tracer: Some("opentelemetry".into()),
            envoy: Some("1.38".into()),
            headers: vec![
                HeaderArg::One("traceparent".into(), "00-aa-bb-01".into()),
                HeaderArg::One(":authority".into(), "example.com".into()),
                HeaderArg::File("h.txt".into()),
            ],
            cluster: Some("outbound|443||api.example.com".into()),
            seed: Some(7),
            json: true,
        };
        assert_eq!(got, Ok(Command::Explain(want)));
    }

    #[test]
    fn explain_config_is_a_file_inline_json_or_stdin() {
        let config = |v: &str| match parse(&args(&["explain", "--config", v])) {
            Ok(Command::Explain(a)) => a.config,
            other => panic!("{other:?}"),
        };
        assert_eq!(config("p.json"), Some(Input::File("p.json".into())));
        assert_eq!(config(" {}"), Some(Input::Inline(" {}".into())));
        assert_eq!(config("-"), Some(Input::Stdin));
    }

    #[test]
    fn header_lines() {
        assert_eq!(
            header_line("b3: 80f198ee56343ba8-e457b5a2e4d86bd1-1"),
            Some(("b3".into(), "80f198ee56343ba8-e457b5a2e4d86bd1-1".into()))
        );
        assert_eq!(
            header_line(":path: /a:b"),
            Some((":path".into(), "/a:b".into()))
        );
        assert_eq!(header_line("x-empty:"), Some(("x-empty".into(), "".into())));
        assert_eq!(header_line("no colon"), None);
        assert_eq!(header_line("bad name: v"), None);
        assert_eq!(header_line(":"), None);
        let file = "GET /x HTTP/1.1\r\n# a comment\r\n\r\nHost: a\r\ntraceparent: t\r\n";
        assert_eq!(
            header_file_lines(file),
            Ok(vec![
                ("Host".into(), "a".into()),
                ("traceparent".into(), "t".into())
            ])
        );
        assert_eq!(
            header_file_lines("a: b\nbroken\n"),
            Err("line 2: not `name: value`".into())
        );
    }
}
