//! The proxy-wasm adapter: Envoy's callbacks in, host calls out. Everything else is in the
//! pure modules. Host calls go through [`sys`], which maps every status to a `Result`
//! (the SDK's own wrappers panic on unexpected statuses, and a panic kills the VM).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::config::Config;
use crate::filter::{Counter, Host, HostError, RequestFilter};
use crate::ids::IdGenerator;

proxy_wasm::main! {{
    // Our own logger: the SDK's unwraps the status of its log call.
    if log::set_logger(&HOST_LOGGER).is_ok() {
        // The host's level cannot be asked for during `_initialize`; on_configure sets it.
        log::set_max_level(log::LevelFilter::Info);
    }
    // Replaces the SDK's hook, which unwraps the result of its own log call.
    std::panic::set_hook(Box::new(|info| {
        sys::log(LogLevel::Critical, &format!("tracejoin panicked: {info}"));
    }));
    proxy_wasm::set_root_context(|_| Box::new(TracejoinRoot::default()));
}}

/// Logs through `proxy_log`, ignoring its status: a log line is never worth a panic.
struct HostLogger;

static HOST_LOGGER: HostLogger = HostLogger;

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
            sys::log(level, &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// Metric ids: the fixed counters defined at configure time, the per-service ones on
/// first use (an entry nobody calls costs no stat).
struct Metrics {
    fixed: Vec<Option<u32>>,
    dynamic: RefCell<HashMap<Counter, u32>>,
    /// `tracejoin.vm.memory_bytes`: this VM's linear memory (it only grows, so a leak shows).
    memory: Option<u32>,
    /// Requests until the next memory sample.
    until_memory_sample: Cell<u32>,
}

/// The memory gauge is sampled once per this many requests (per VM): a leak shows within a
/// few thousand requests at one extra host call per thousand.
const MEMORY_SAMPLE_EVERY: u32 = 1024;

impl Metrics {
    fn define(config: &Config) -> Metrics {
        let fixed = Counter::ALL
            .iter()
            .map(|c| define_counter(&c.name(config)))
            .collect();
        let memory = match sys::define_gauge("tracejoin.vm.memory_bytes") {
            Ok(id) => Some(id),
            Err(HostError(status)) => {
                log::warn!("tracejoin: cannot define the memory gauge: status {status}");
                None
            }
        };
        let metrics = Metrics {
            fixed,
            dynamic: RefCell::new(HashMap::new()),
            memory,
            until_memory_sample: Cell::new(MEMORY_SAMPLE_EVERY),
        };
        metrics.record_memory();
        metrics
    }

    fn record_memory(&self) {
        if let Some(id) = self.memory {
            let bytes = core::arch::wasm32::memory_size(0) as u64 * 65536;
            let _ = sys::record_metric(id, bytes);
        }
    }

    /// Counts a request; every [`MEMORY_SAMPLE_EVERY`]th samples the memory gauge.
    fn on_request(&self) {
        let left = self.until_memory_sample.get().saturating_sub(1);
        if left == 0 {
            self.record_memory();
            self.until_memory_sample.set(MEMORY_SAMPLE_EVERY);
        } else {
            self.until_memory_sample.set(left);
        }
    }

    fn increment(&self, counter: Counter, config: &Config) {
        let id = match counter.index() {
            Some(i) => self.fixed.get(i).copied().flatten(),
            None => {
                let Ok(mut dynamic) = self.dynamic.try_borrow_mut() else {
                    return;
                };
                match dynamic.get(&counter) {
                    Some(id) => Some(*id),
                    None => {
                        let id = define_counter(&counter.name(config));
                        if let Some(id) = id {
                            dynamic.insert(counter, id);
                        }
                        id
                    }
                }
            }
        };
        if let Some(id) = id {
            // A failed increment is not worth failing or logging a request over.
            let _ = sys::increment_metric(id);
        }
    }
}

fn define_counter(name: &str) -> Option<u32> {
    match sys::define_counter(name) {
        Ok(id) => Some(id),
        Err(HostError(status)) => {
            log::warn!("tracejoin: cannot define metric {name}: status {status}");
            None
        }
    }
}

/// At most this many unregistered hosts are remembered (and logged once each).
const MAX_UNREGISTERED_LOGGED: usize = 1024;
/// The bytes of such a host that are logged and remembered.
const MAX_LOGGED_HOST_LEN: usize = 256;

struct Shared {
    config: Config,
    metrics: Metrics,
    ids: RefCell<IdGenerator>,
    unregistered_seen: RefCell<HashSet<Vec<u8>>>,
}

#[derive(Default)]
struct TracejoinRoot {
    shared: Option<Rc<Shared>>,
}

impl Context for TracejoinRoot {}

impl RootContext for TracejoinRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        log::set_max_level(match sys::host_log_level() {
            LogLevel::Trace => log::LevelFilter::Trace,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Critical => log::LevelFilter::Off,
        });
        let bytes = match sys::plugin_configuration(plugin_configuration_size) {
            Ok(bytes) => bytes,
            Err(HostError(status)) => {
                log::error!("tracejoin: cannot read the plugin configuration: status {status}");
                return false;
            }
        };
        let config = match Config::from_json(&bytes) {
            Ok(config) => config,
            Err(e) => {
                log::error!("{e}");
                return false;
            }
        };
        let ids = IdGenerator::from_entropy().unwrap_or_else(|e| {
            log::warn!("tracejoin: no entropy from the host ({e}); seeding ids from the clock");
            IdGenerator::from_seed(sys::current_time_nanos())
        });
        log::info!(
            "tracejoin: configured: position {:?}, tracer {:?}, extract {:?}, propagate {:?}, trust {:?}, sampling ratio {}",
            config.position,
            config.tracer,
            config.extract,
            config.propagate,
            config.trust,
            config.sampler.ratio_text()
        );
        let metrics = Metrics::define(&config);
        self.shared = Some(Rc::new(Shared {
            config,
            metrics,
            ids: RefCell::new(ids),
            unregistered_seen: RefCell::new(HashSet::new()),
        }));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(TracejoinHttp {
            shared: self.shared.clone(),
            filter: RequestFilter::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct TracejoinHttp {
    /// `None` when configuration failed: the stream passes untouched.
    shared: Option<Rc<Shared>>,
    filter: RequestFilter,
}

impl Context for TracejoinHttp {}

impl HttpContext for TracejoinHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(shared) = &self.shared else {
            return Action::Continue;
        };
        shared.metrics.on_request();
        let Ok(mut ids) = shared.ids.try_borrow_mut() else {
            return Action::Continue;
        };
        let mut host = WasmHost { shared };
        let plan = self
            .filter
            .on_request_headers(&mut host, &shared.config, &mut ids);
        if let Some(plan) = plan.filter(|_| log::log_enabled!(log::Level::Debug)) {
            {
                let mut trace = crate::codec::HeaderValue::new();
                if let Some(ctx) = plan.context {
                    trace.push_hex(&ctx.trace_id.0);
                }
                log::debug!(
                    "tracejoin: trace_id={} outcome={:?}",
                    trace.as_str(),
                    plan.outcome
                );
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(shared) = &self.shared
            && (shared.config.response_header.is_some()
                || shared.config.traceresponse
                || shared.config.external.is_some())
        {
            {
                let mut host = WasmHost { shared };
                self.filter.on_response_headers(&mut host, &shared.config);
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Some(shared) = &self.shared
            && shared.config.external.is_some()
        {
            let mut host = WasmHost { shared };
            self.filter.on_log(&mut host);
        }
    }
}

struct WasmHost<'a> {
    shared: &'a Shared,
}

impl Host for WasmHost<'_> {
    fn request_header_block(&mut self) -> Result<Vec<u8>, HostError> {
        sys::header_map_pairs(sys::MAP_REQUEST_HEADERS)
    }

    fn set_request_header(&mut self, name: &str, value: &[u8]) -> Result<(), HostError> {
        sys::replace_header(sys::MAP_REQUEST_HEADERS, name, value)
    }

    fn remove_request_header(&mut self, name: &str) -> Result<(), HostError> {
        sys::remove_header(sys::MAP_REQUEST_HEADERS, name)
    }

    fn set_response_header(&mut self, name: &str, value: &[u8]) -> Result<(), HostError> {
        sys::replace_header(sys::MAP_RESPONSE_HEADERS, name, value)
    }

    fn increment(&mut self, counter: Counter) {
        self.shared.metrics.increment(counter, &self.shared.config);
    }

    fn cluster_name(&mut self) -> Result<Option<Vec<u8>>, HostError> {
        sys::get_property(&["xds", "cluster_name"])
    }

    fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), HostError> {
        sys::set_property(&[key], value)
    }

    fn response_status(&mut self) -> Result<Option<u16>, HostError> {
        let status = sys::get_header(sys::MAP_RESPONSE_HEADERS, ":status")?;
        Ok(status.and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok()))
    }

    fn final_response_code(&mut self) -> Result<Option<u16>, HostError> {
        // An integer property: 8 bytes, little-endian.
        let code = sys::get_property(&["response", "code"])?;
        Ok(code
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .and_then(|b| u16::try_from(u64::from_le_bytes(b)).ok()))
    }

    fn note_unregistered(&mut self, host: &[u8]) {
        let Ok(mut seen) = self.shared.unregistered_seen.try_borrow_mut() else {
            return;
        };
        // Remembered by their first bytes only: 1024 hosts stay within 256 KiB.
        let key = host.get(..MAX_LOGGED_HOST_LEN).unwrap_or(host);
        if seen.len() < MAX_UNREGISTERED_LOGGED && seen.insert(key.to_vec()) {
            log::info!(
                "tracejoin: calls to {} leave the mesh with no ServiceEntry (PassthroughCluster)",
                crate::filter::printable(host, MAX_LOGGED_HOST_LEN)
            );
        }
    }
}

/// Raw proxy-wasm ABI calls (ABI 0.2.1), every status mapped to a `Result`.
mod sys {
    use std::ptr::null_mut;

    use proxy_wasm::types::LogLevel;

    use crate::filter::HostError;

    pub const MAP_REQUEST_HEADERS: u32 = 0;
    pub const MAP_RESPONSE_HEADERS: u32 = 2;
    const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;
    const METRIC_COUNTER: u32 = 0;
    const METRIC_GAUGE: u32 = 1;
    const OK: u32 = 0;

    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
        fn proxy_get_log_level(return_level: *mut u32) -> u32;
        fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
        fn proxy_get_buffer_bytes(
            buffer_type: u32,
            start: usize,
            max_size: usize,
            return_buffer_data: *mut *mut u8,
            return_buffer_size: *mut usize,
        ) -> u32;
        fn proxy_get_header_map_pairs(
            map_type: u32,
            return_map_data: *mut *mut u8,
            return_map_size: *mut usize,
        ) -> u32;
        fn proxy_replace_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        fn proxy_remove_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
        ) -> u32;
        fn proxy_define_metric(
            metric_type: u32,
            name_data: *const u8,
            name_size: usize,
            return_id: *mut u32,
        ) -> u32;
        fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
        fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
        fn proxy_get_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        fn proxy_get_property(
            path_data: *const u8,
            path_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        fn proxy_set_property(
            path_data: *const u8,
            path_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
    }

    const NOT_FOUND: u32 = 1;

    /// Property paths are parts separated (not terminated) by NUL.
    fn property_path(parts: &[&str]) -> Vec<u8> {
        let mut path = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                path.push(0);
            }
            path.extend_from_slice(part.as_bytes());
        }
        path
    }

    pub fn get_property(parts: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        let path = property_path(parts);
        let mut data = null_mut();
        let mut len = 0usize;
        // SAFETY: path is live; out-pointers are live locals; the buffer is adopted by `owned`.
        let code = unsafe { proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut len) };
        if code == NOT_FOUND {
            return Ok(None);
        }
        status(code)?;
        // SAFETY: on success the host allocated `len` bytes at `data` through the SDK.
        Ok(Some(unsafe { owned(data, len) }))
    }

    pub fn get_header(map: u32, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        let mut data = null_mut();
        let mut len = 0usize;
        // SAFETY: as in `get_property`.
        let code = unsafe {
            proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut len)
        };
        if code == NOT_FOUND {
            return Ok(None);
        }
        status(code)?;
        // SAFETY: on success the host allocated `len` bytes at `data` through the SDK.
        Ok(Some(unsafe { owned(data, len) }))
    }

    pub fn set_property(parts: &[&str], value: &[u8]) -> Result<(), HostError> {
        let path = property_path(parts);
        // SAFETY: pointers and lengths describe live buffers.
        status(unsafe {
            proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len())
        })
    }

    fn status(code: u32) -> Result<(), HostError> {
        if code == OK {
            Ok(())
        } else {
            Err(HostError(code))
        }
    }

    /// Takes ownership of memory the host allocated through `proxy_on_memory_allocate`.
    ///
    /// # Safety
    /// `data` must be null or point to `size` bytes the host obtained from the SDK's
    /// allocator for this call.
    unsafe fn owned(data: *mut u8, size: usize) -> Vec<u8> {
        if data.is_null() {
            Vec::new()
        } else {
            // SAFETY: the SDK's allocator handed out exactly `size` bytes at `data`.
            unsafe { Vec::from_raw_parts(data, size, size) }
        }
    }

    pub fn log(level: LogLevel, message: &str) {
        // SAFETY: pointer and length describe a live &str.
        unsafe {
            proxy_log(level as u32, message.as_ptr(), message.len());
        }
    }

    pub fn host_log_level() -> LogLevel {
        let mut level = 0u32;
        // SAFETY: the host writes one u32 to a live local.
        let code = unsafe { proxy_get_log_level(&mut level) };
        match (code, level) {
            (OK, 0) => LogLevel::Trace,
            (OK, 1) => LogLevel::Debug,
            (OK, 2) => LogLevel::Info,
            (OK, 3) => LogLevel::Warn,
            (OK, 4) => LogLevel::Error,
            (OK, _) => LogLevel::Critical,
            _ => LogLevel::Info,
        }
    }

    pub fn current_time_nanos() -> u64 {
        let mut t = 0u64;
        // SAFETY: the host writes one u64 to a live local.
        unsafe {
            proxy_get_current_time_nanoseconds(&mut t);
        }
        t
    }

    pub fn plugin_configuration(size: usize) -> Result<Vec<u8>, HostError> {
        let mut data = null_mut();
        let mut len = 0usize;
        // SAFETY: out-pointers are live locals; the returned buffer is adopted by `owned`.
        let code = unsafe {
            proxy_get_buffer_bytes(BUFFER_PLUGIN_CONFIGURATION, 0, size, &mut data, &mut len)
        };
        // NotFound (1): no configuration at all, which means the defaults.
        if code == 1 {
            return Ok(Vec::new());
        }
        status(code)?;
        // SAFETY: on success the host allocated `len` bytes at `data` through the SDK.
        Ok(unsafe { owned(data, len) })
    }

    pub fn header_map_pairs(map: u32) -> Result<Vec<u8>, HostError> {
        let mut data = null_mut();
        let mut len = 0usize;
        // SAFETY: as in `plugin_configuration`.
        status(unsafe { proxy_get_header_map_pairs(map, &mut data, &mut len) })?;
        // SAFETY: on success the host allocated `len` bytes at `data` through the SDK.
        Ok(unsafe { owned(data, len) })
    }

    pub fn replace_header(map: u32, name: &str, value: &[u8]) -> Result<(), HostError> {
        // SAFETY: pointers and lengths describe live slices.
        status(unsafe {
            proxy_replace_header_map_value(
                map,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        })
    }

    pub fn remove_header(map: u32, name: &str) -> Result<(), HostError> {
        // SAFETY: pointer and length describe a live &str.
        status(unsafe { proxy_remove_header_map_value(map, name.as_ptr(), name.len()) })
    }

    pub fn define_counter(name: &str) -> Result<u32, HostError> {
        define_metric(METRIC_COUNTER, name)
    }

    pub fn define_gauge(name: &str) -> Result<u32, HostError> {
        define_metric(METRIC_GAUGE, name)
    }

    fn define_metric(kind: u32, name: &str) -> Result<u32, HostError> {
        let mut id = 0u32;
        // SAFETY: name is a live &str; the host writes one u32 to a live local.
        status(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
        Ok(id)
    }

    pub fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
        // SAFETY: plain values.
        status(unsafe { proxy_record_metric(id, value) })
    }

    pub fn increment_metric(id: u32) -> Result<(), HostError> {
        // SAFETY: plain values.
        status(unsafe { proxy_increment_metric(id, 1) })
    }
}
