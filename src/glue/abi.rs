//! Raw proxy-wasm ABI calls (ABI 0.2.1), every status mapped to a `Result`; the only
//! `unsafe` code of the crate. The SDK's own wrappers panic on unexpected statuses, and a
//! panic kills the VM.

use std::ptr::null_mut;

use proxy_wasm::types::LogLevel;

use crate::filter::HostError;

pub const MAP_REQUEST_HEADERS: u32 = 0;
pub const MAP_RESPONSE_HEADERS: u32 = 2;
const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;
pub const BUFFER_DOWNSTREAM_DATA: u32 = 2;
/// What Envoy writes to the client (the network filter's write side: the responses).
pub const BUFFER_UPSTREAM_DATA: u32 = 3;
const STREAM_DOWNSTREAM: u32 = 2;
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
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
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
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
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
    fn proxy_close_stream(stream_type: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
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

/// An integer property (Envoy hands it over as 8 bytes, little-endian) that fits a u16.
pub fn get_u16_property(parts: &[&str]) -> Result<Option<u16>, HostError> {
    Ok(get_property(parts)?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .and_then(|b| u16::try_from(u64::from_le_bytes(b)).ok()))
}

pub fn get_header(map: u32, name: &str) -> Result<Option<Vec<u8>>, HostError> {
    let mut data = null_mut();
    let mut len = 0usize;
    // SAFETY: as in `get_property`.
    let code =
        unsafe { proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut len) };
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
    status(unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) })
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

/// Up to `max` bytes of a buffer from `start` (Envoy clamps to the buffer; empty past it).
pub fn buffer_bytes(buffer: u32, start: usize, max: usize) -> Result<Vec<u8>, HostError> {
    let mut data = null_mut();
    let mut len = 0usize;
    // SAFETY: as in `plugin_configuration`.
    let code = unsafe { proxy_get_buffer_bytes(buffer, start, max, &mut data, &mut len) };
    if code == NOT_FOUND {
        return Ok(Vec::new());
    }
    status(code)?;
    // SAFETY: on success the host allocated `len` bytes at `data` through the SDK.
    Ok(unsafe { owned(data, len) })
}

/// Replaces the first `size` bytes of a buffer with `bytes` (Envoy: drain, then prepend).
pub fn replace_buffer_prefix(buffer: u32, size: usize, bytes: &[u8]) -> Result<(), HostError> {
    // SAFETY: pointer and length describe a live slice.
    status(unsafe { proxy_set_buffer_bytes(buffer, 0, size, bytes.as_ptr(), bytes.len()) })
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
        proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
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

/// Closes the current context's downstream connection (Envoy: after the callback returns,
/// `close(FlushWrite)`: what was written already still goes out).
pub fn close_downstream() -> Result<(), HostError> {
    // SAFETY: no pointers.
    status(unsafe { proxy_close_stream(STREAM_DOWNSTREAM) })
}

/// Makes `context_id` the context later host calls act on (from the root context's tick).
pub fn set_effective_context(context_id: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    status(unsafe { proxy_set_effective_context(context_id) })
}

pub fn set_tick_period_ms(period: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    status(unsafe { proxy_set_tick_period_milliseconds(period) })
}
