//! The native `tracejoin` command (src/bin/tracejoin.rs): `check-config` runs the filter's
//! configuration loader, `explain` runs the filter's request path on one request. Both call
//! the same code the module runs in Envoy, natively; nothing here is built into the .wasm
//! (lib.rs compiles this module on native targets only).

pub mod args;
mod capture;
mod explain;

use std::io::{Read, Write};

use crate::config::Config;
use args::{Command, Input, USAGE, UsageError};

/// Exit statuses: the configuration was refused (as the filter refuses it at load), and the
/// command line or an input could not be used.
pub const EXIT_REFUSED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// Runs the command line `args` (without the program name); returns the exit status.
pub fn run(args: &[String], stdin: &mut dyn Read, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let status = match args::parse(args) {
        Ok(Command::Help) => {
            let _ = out.write_all(USAGE.as_bytes());
            Ok(0)
        }
        Ok(Command::CheckConfig { input }) => check_config(&input, stdin, out),
        Ok(Command::Explain(a)) => explain::explain(&a, stdin, out),
        Err(e) => Err(Failure::Usage(e.0)),
    };
    match status {
        Ok(code) => code,
        Err(Failure::Refused(message)) => {
            let _ = writeln!(err, "{message}");
            EXIT_REFUSED
        }
        Err(Failure::Usage(message)) => {
            if !message.is_empty() {
                let _ = writeln!(err, "tracejoin: {message}");
            }
            let _ = err.write_all(USAGE.as_bytes());
            EXIT_USAGE
        }
        Err(Failure::Input(message)) => {
            let _ = writeln!(err, "tracejoin: {message}");
            EXIT_USAGE
        }
    }
}

/// Why a command did not finish with status 0.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The loader refused the configuration: its message, as the filter logs it.
    Refused(String),
    /// The command line is wrong (usage follows).
    Usage(String),
    /// An input could not be read or is not what it should be.
    Input(String),
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Self {
        Failure::Usage(e.0)
    }
}

/// The bytes of a configuration input.
pub(crate) fn read_input(input: &Input, stdin: &mut dyn Read) -> Result<Vec<u8>, Failure> {
    match input {
        Input::Stdin => {
            let mut bytes = Vec::new();
            stdin
                .read_to_end(&mut bytes)
                .map_err(|e| Failure::Input(format!("cannot read stdin: {e}")))?;
            Ok(bytes)
        }
        Input::File(path) => {
            std::fs::read(path).map_err(|e| Failure::Input(format!("cannot read {path}: {e}")))
        }
        Input::Inline(json) => Ok(json.as_bytes().to_vec()),
    }
}

/// `check-config`: the loader's verdict, worded as the filter logs it.
fn check_config(input: &Input, stdin: &mut dyn Read, out: &mut dyn Write) -> Result<u8, Failure> {
    let bytes = read_input(input, stdin)?;
    let config = Config::from_json(&bytes).map_err(|e| Failure::Refused(e.to_string()))?;
    for (_, line) in config.load_lines() {
        let _ = writeln!(out, "{line}");
    }
    Ok(0)
}

/// The process entry point: `std::env::args`, the standard streams, the exit status.
pub fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = run(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::ExitCode::from(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(args: &[&str], stdin: &str) -> (u8, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&args, &mut stdin.as_bytes(), &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn check_config_accepts_and_prints_the_load_line() {
        let (code, out, err) = run_with(&["check-config"], "{}");
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out,
            "tracejoin: configured: position Downstream, tracer Zipkin, extract [B3, B3Multi, \
             TraceContext, Jaeger], propagate [TraceContext, B3Multi], trust Continue, sampling \
             ratio 1.000000, envoy 1.40 (not detected: newest measured model)\n"
        );
    }

    #[test]
    fn check_config_refuses_with_the_filters_message() {
        let (code, out, err) = run_with(&["check-config", "-"], r#"{"trust":"restart"}"#);
        assert_eq!(code, EXIT_REFUSED);
        assert_eq!(out, "");
        assert!(
            err.starts_with("invalid tracejoin config: field `trust`: restart/resample need"),
            "{err}"
        );
    }

    #[test]
    fn network_and_unmeasured_releases_get_their_load_lines() {
        let (code, out, _) = run_with(
            &["check-config"],
            r#"{"position":"network","envoy_version":"1.30"}"#,
        );
        assert_eq!(code, 0);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].ends_with("envoy 1.30 (configured)"), "{out}");
        assert!(lines[1].contains("max_request_headers_kb 60"), "{out}");
        assert!(
            lines[2].contains("outside the measured 1.36 to 1.40"),
            "{out}"
        );
    }

    #[test]
    fn usage_errors_exit_2_with_the_usage() {
        let (code, _, err) = run_with(&["check-config", "a", "b"], "");
        assert_eq!(code, EXIT_USAGE);
        assert!(err.contains("usage: tracejoin check-config"), "{err}");
        let (code, _, err) = run_with(&["check-config", "/nonexistent/tracejoin.json"], "");
        assert_eq!(code, EXIT_USAGE);
        assert!(
            err.contains("cannot read /nonexistent/tracejoin.json"),
            "{err}"
        );
        let (code, out, _) = run_with(&["--help"], "");
        assert_eq!(code, 0);
        assert!(out.starts_with("usage:"), "{out}");
    }
}
