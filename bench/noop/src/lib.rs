//! The floors of any Rust proxy-wasm HTTP filter, for `make bench`:
//! - plugin configuration empty: every callback continues at once (the no-op filter);
//! - configuration `read-headers`: the request headers are read once as a whole map (one
//!   `proxy_get_header_map_pairs` call, as tracejoin does) and dropped, nothing else;
//! - configuration `network`: a network filter whose every callback continues at once (the
//!   floor of any wasm network filter, for tracejoin's network position).

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(NoopRoot { read_headers: Rc::new(false), network: false }));
}}

struct NoopRoot {
    read_headers: Rc<bool>,
    network: bool,
}

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.read_headers = Rc::new(config == b"read-headers");
        self.network = config == b"network";
        true
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(NoopStream))
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopHttp {
            read_headers: *self.read_headers,
        }))
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
    read_headers: bool,
}

impl Context for NoopHttp {}

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

impl HttpContext for NoopHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.read_headers {
            let mut data: *mut u8 = std::ptr::null_mut();
            let mut size: usize = 0;
            // SAFETY: the host writes a pointer it allocated through our allocator (the SDK's
            // proxy_on_memory_allocate) and its size; we take ownership and free it.
            unsafe {
                if proxy_get_header_map_pairs(0, &mut data, &mut size) == 0 && !data.is_null() {
                    drop(Vec::from_raw_parts(data, size, size));
                }
            }
        }
        Action::Continue
    }
}

struct NoopStream;

impl Context for NoopStream {}

impl StreamContext for NoopStream {}
