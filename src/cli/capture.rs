//! The filter's own log lines, caught while `explain` runs it: the decision line it shows is
//! the one the filter logs in Envoy, not a second rendering.

use std::cell::RefCell;

thread_local! {
    /// Lines logged on this thread while a capture is open.
    static LINES: RefCell<Option<Vec<(log::Level, String)>>> = const { RefCell::new(None) };
}

struct ThreadCapture;

static LOGGER: ThreadCapture = ThreadCapture;

impl log::Log for ThreadCapture {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        LINES.with(|lines| {
            if let Some(lines) = lines.borrow_mut().as_mut() {
                lines.push((record.level(), record.args().to_string()));
            }
        });
    }

    fn flush(&self) {}
}

/// Runs `f` with the filter's debug lines on, and returns what it logged on this thread.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<(log::Level, String)>) {
    // Installed once per process; another logger already there (none in this crate) would
    // leave the capture empty and explain would say it saw no decision line.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Debug);
    LINES.with(|lines| *lines.borrow_mut() = Some(Vec::new()));
    let result = f();
    let lines = LINES.with(|lines| lines.borrow_mut().take().unwrap_or_default());
    (result, lines)
}
