//! What the filter says at load about an accepted configuration: the same lines in Envoy's
//! log (the glue logs them at their level) and in `tracejoin check-config`.

use super::{Config, EnvoyVersion, Position};

impl Config {
    /// The load lines, each with the level the filter logs it at.
    pub fn load_lines(&self) -> Vec<(log::Level, String)> {
        let mut lines = vec![(
            log::Level::Info,
            format!(
                "tracejoin: configured: position {:?}, tracer {:?}, extract {:?}, propagate {:?}, trust {:?}, sampling ratio {}, envoy {} ({}){}",
                self.position,
                self.tracer,
                self.extract,
                self.propagate,
                self.trust,
                self.sampler.ratio_text(),
                self.envoy,
                self.envoy_source.describe(),
                if self.dry_run {
                    ", DRY RUN: decides, counts and logs, writes nothing"
                } else {
                    ""
                }
            ),
        )];
        if self.position == Position::Network {
            // The filter cannot read the HCM's settings: say which it assumes.
            lines.push((
                log::Level::Info,
                format!(
                    "tracejoin: network position: heads rewritten up to max_request_headers_kb {} and max_request_headers_count {}, held up to per_connection_buffer_limit_bytes {} and request_headers_timeout_ms {}: set each to the HTTP connection manager's (listener's) value",
                    self.limits.max_head_bytes / 1024,
                    self.limits.max_headers,
                    self.limits.max_held_bytes,
                    self.limits.held_head_timeout_ms
                ),
            ));
            if let Some(external) = &self.external {
                let line = match external.matcher.services().len() {
                    0 => "tracejoin: network position: TLS connections named by their server name (no external service listed: only those on Istio's passthrough chains, as unregistered)".to_owned(),
                    services => format!(
                        "tracejoin: network position: TLS connections named by their server name against {services} external services"
                    ),
                };
                lines.push((log::Level::Info, line));
            }
        }
        if self.envoy > EnvoyVersion::NEWEST_MEASURED || self.envoy < EnvoyVersion::OLDEST_MEASURED
        {
            lines.push((
                log::Level::Warn,
                format!(
                    "tracejoin: Envoy {} is outside the measured {} to {}: modelled as the nearest measured release",
                    self.envoy,
                    EnvoyVersion::OLDEST_MEASURED,
                    EnvoyVersion::NEWEST_MEASURED
                ),
            ));
        }
        lines
    }
}
