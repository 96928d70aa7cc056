//! The floors of any Rust proxy-wasm HTTP filter, for `make bench`:
//! - plugin configuration empty: every callback continues at once (the no-op filter);
//! - configuration `read-headers`: the request headers are read once as a whole map (one
//!   `proxy_get_header_map_pairs` call, as tracejoin does) and dropped, nothing else;
//! - configuration `targeted:N`: the first N of the 21 header names tracejoin reads are asked
//!   for one by one (`proxy_get_header_map_value` each), nothing else: the other way to read
//!   the trace headers, to find where it crosses the whole-map read;
//! - configuration `read-write`: the whole-map read, then one header written
//!   (`proxy_replace_header_map_value`, the `b3` bridge's size): the part of tracejoin's
//!   default job the ABI makes unavoidable, so its own work is what lies above it;
//! - configuration `network`: a network filter whose every callback continues at once (the
//!   floor of any wasm network filter, for tracejoin's network position).

use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(NoopRoot { read: Read::Nothing, network: false }));
}}

/// The names tracejoin looks for, in the order a targeted read asks for them.
const TRACE_HEADER_NAMES: [&str; 21] = [
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "uber-trace-id",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "x-datadog-origin",
    "x-datadog-tags",
    "x-amzn-trace-id",
    "ot-tracer-traceid",
    "ot-tracer-spanid",
    "ot-tracer-sampled",
    ":authority",
    "x-request-id",
    "baggage",
];

#[derive(Clone, Copy)]
enum Read {
    Nothing,
    WholeMap,
    /// The whole map, then one header written.
    WholeMapAndWrite,
    /// The first N names, one host call each.
    Targeted(usize),
}

struct NoopRoot {
    read: Read,
    network: bool,
}

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.network = config == b"network";
        self.read = if config == b"read-headers" {
            Read::WholeMap
        } else if config == b"read-write" {
            Read::WholeMapAndWrite
        } else if let Some(n) = config.strip_prefix(b"targeted:") {
            let n = std::str::from_utf8(n).ok().and_then(|n| n.parse().ok());
            Read::Targeted(
                n.unwrap_or(TRACE_HEADER_NAMES.len())
                    .min(TRACE_HEADER_NAMES.len()),
            )
        } else {
            Read::Nothing
        };
        true
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(NoopStream))
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopHttp { read: self.read }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(if self.network {
            ContextType::StreamContext
        } else {
            ContextType::HttpContext
        })
    }
}

struct NoopHttp {
    read: Read,
}

impl Context for NoopHttp {}

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

/// A `b3` value as tracejoin's bridge writes it: trace id, span id, sampled.
const B3_VALUE: &str = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1";

/// Takes ownership of a buffer the host allocated through our allocator (the SDK's
/// proxy_on_memory_allocate) and frees it.
unsafe fn free_host_buffer(data: *mut u8, size: usize) {
    if !data.is_null() {
        // SAFETY: the caller passes a pointer and size the host returned.
        unsafe { drop(Vec::from_raw_parts(data, size, size)) };
    }
}

impl HttpContext for NoopHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        match self.read {
            Read::Nothing => {}
            // SAFETY: the host writes a pointer it allocated and its size; we free it.
            Read::WholeMap => unsafe {
                if proxy_get_header_map_pairs(0, &mut data, &mut size) == 0 {
                    free_host_buffer(data, size);
                }
            },
            // SAFETY: as above; the name and value are live slices.
            Read::WholeMapAndWrite => unsafe {
                if proxy_get_header_map_pairs(0, &mut data, &mut size) == 0 {
                    free_host_buffer(data, size);
                }
                proxy_replace_header_map_value(
                    0,
                    "b3".as_ptr(),
                    2,
                    B3_VALUE.as_ptr(),
                    B3_VALUE.len(),
                );
            },
            Read::Targeted(n) => {
                for name in TRACE_HEADER_NAMES.iter().take(n) {
                    data = std::ptr::null_mut();
                    // SAFETY: as above, for each value found.
                    unsafe {
                        if proxy_get_header_map_value(
                            0,
                            name.as_ptr(),
                            name.len(),
                            &mut data,
                            &mut size,
                        ) == 0
                        {
                            free_host_buffer(data, size);
                        }
                    }
                }
            }
        }
        Action::Continue
    }
}

struct NoopStream;

impl Context for NoopStream {}

impl StreamContext for NoopStream {}
