//! The crate's logger: `log` records to `proxy_log`, whose status is ignored (a log line
//! is never worth a panic; the SDK's logger unwraps it).

use proxy_wasm::types::LogLevel;

use super::abi;

/// Logs through `proxy_log`, ignoring its status: a log line is never worth a panic.
pub struct HostLogger;

pub static HOST_LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let level = match record.level() {
                log::Level::Error => LogLevel::Error,
                log::Level::Warn => LogLevel::Warn,
                log::Level::Info => LogLevel::Info,
                log::Level::Debug => LogLevel::Debug,
                log::Level::Trace => LogLevel::Trace,
            };
            abi::log(level, &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// The `log` level matching the host's.
pub fn level_of(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Trace => log::LevelFilter::Trace,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Critical => log::LevelFilter::Off,
    }
}

/// Sets the crate's level to the host's current one (one host call): at configure and on
/// every tick, so that a level changed at runtime takes effect within a tick.
pub fn follow_host_level() {
    log::set_max_level(level_of(abi::host_log_level()));
}
