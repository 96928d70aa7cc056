//! The HTTP filter context (listener or router upstream filter) and the [`Host`] it gives
//! the request path: host calls for headers, properties and filter state.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::Shared;
use super::abi;
use crate::filter::{Counter, Counting, Host, HostError, RequestFilter};
use crate::policy::Plan;
use crate::printable::printable;

/// At most this many unregistered hosts are remembered (and logged once each).
pub(super) const MAX_UNREGISTERED_LOGGED: usize = 1024;
/// The bytes of such a host that are logged and remembered.
const MAX_LOGGED_HOST_LEN: usize = 256;

pub struct TracejoinHttp {
    /// `None` when configuration failed: the stream passes untouched.
    pub shared: Option<Rc<Shared>>,
    pub filter: RequestFilter,
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
        let mut plan = Plan::default();
        // The decision line is logged by the filter (at debug).
        self.filter
            .on_request_headers(&mut host, &shared.config, &mut ids, &mut plan);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(shared) = &self.shared
            && (shared.config.response_header.is_some()
                || shared.config.traceresponse
                || shared.config.server_timing
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

impl Counting for WasmHost<'_> {
    fn increment(&mut self, counter: Counter) {
        self.shared.metrics.increment(counter, &self.shared.config);
    }
}

impl Host for WasmHost<'_> {
    fn request_header_block(&mut self) -> Result<Vec<u8>, HostError> {
        abi::header_map_pairs(abi::MAP_REQUEST_HEADERS)
    }

    fn set_request_header(&mut self, name: &str, value: &[u8]) -> Result<(), HostError> {
        abi::replace_header(abi::MAP_REQUEST_HEADERS, name, value)
    }

    fn remove_request_header(&mut self, name: &str) -> Result<(), HostError> {
        abi::remove_header(abi::MAP_REQUEST_HEADERS, name)
    }

    fn set_response_header(&mut self, name: &str, value: &[u8]) -> Result<(), HostError> {
        abi::replace_header(abi::MAP_RESPONSE_HEADERS, name, value)
    }

    fn response_header(&mut self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        abi::get_header(abi::MAP_RESPONSE_HEADERS, name)
    }

    fn cluster_name(&mut self) -> Result<Option<Vec<u8>>, HostError> {
        abi::get_property(&["xds", "cluster_name"])
    }

    fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), HostError> {
        abi::set_property(&[key], value)
    }

    fn response_status(&mut self) -> Result<Option<u16>, HostError> {
        let status = abi::get_header(abi::MAP_RESPONSE_HEADERS, ":status")?;
        Ok(status.and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok()))
    }

    fn final_response_code(&mut self) -> Result<Option<u16>, HostError> {
        abi::get_u16_property(&["response", "code"])
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
                printable(host, MAX_LOGGED_HOST_LEN)
            );
        }
    }
}
