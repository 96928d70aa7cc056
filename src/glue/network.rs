//! The network filter context (`envoy.filters.network.wasm`, in front of the HTTP
//! connection manager) and the [`StreamHost`] it gives the connection filter: the
//! downstream read buffer.

use std::rc::Rc;

use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::Action;

use super::Shared;
use super::abi::{self, BUFFER_DOWNSTREAM_DATA, BUFFER_UPSTREAM_DATA};
use crate::filter::{Counter, Counting, HostError};
use crate::network::{ConnectionFilter, StreamHost, Verdict};

/// At most this many unregistered hosts are remembered (and logged once each), with the
/// HTTP filter's.
const MAX_UNREGISTERED_LOGGED: usize = super::http::MAX_UNREGISTERED_LOGGED;

pub struct TracejoinStream {
    pub context_id: u32,
    /// `None` when configuration failed: the bytes pass untouched.
    pub shared: Option<Rc<Shared>>,
    pub filter: Option<ConnectionFilter>,
    /// What the root context's timer was last told for this connection.
    pub noted: Option<u64>,
}

impl Context for TracejoinStream {
    fn on_done(&mut self) -> bool {
        if let Some(shared) = &self.shared
            && let Ok(mut held) = shared.held.try_borrow_mut()
        {
            held.remove(self.context_id);
        }
        true
    }
}

/// Tells the root context's timer whether a connection holds a head, and since when;
/// `noted` is what it was last told (most reads and writes change nothing: no map access).
fn note_held(shared: &Shared, context_id: u32, since: Option<u64>, noted: &mut Option<u64>) {
    if since == *noted {
        return;
    }
    let Ok(mut held) = shared.held.try_borrow_mut() else {
        return;
    };
    *noted = since;
    match since {
        Some(since) => {
            held.insert(context_id, since);
        }
        None => {
            held.remove(context_id);
        }
    }
}

fn act(verdict: Verdict) -> Action {
    match verdict {
        Verdict::Continue => Action::Continue,
        Verdict::Pause => Action::Pause,
        Verdict::Close => {
            // Envoy closes after the callback returns (FlushWrite); nothing is passed on.
            if let Err(e) = abi::close_downstream() {
                log::warn!("tracejoin: cannot close a connection: status {}", e.0);
            }
            Action::Pause
        }
    }
}

impl StreamContext for TracejoinStream {
    fn on_new_connection(&mut self) -> Action {
        if let Some(shared) = &self.shared {
            self.filter = Some(ConnectionFilter::new(&mut WasmStreamHost { shared }));
        }
        Action::Continue
    }

    fn on_downstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        let (Some(shared), Some(filter)) = (&self.shared, self.filter.as_mut()) else {
            return Action::Continue;
        };
        let Ok(mut ids) = shared.ids.try_borrow_mut() else {
            return Action::Continue;
        };
        let mut host = WasmStreamHost { shared };
        let verdict = filter.on_data(
            &mut host,
            &shared.config,
            &mut ids,
            data_size,
            end_of_stream,
        );
        drop(ids);
        note_held(
            shared,
            self.context_id,
            filter.held_since(),
            &mut self.noted,
        );
        act(verdict)
    }

    fn on_upstream_data(&mut self, data_size: usize, _end_of_stream: bool) -> Action {
        let (Some(shared), Some(filter)) = (&self.shared, self.filter.as_mut()) else {
            return Action::Continue;
        };
        let mut host = WasmStreamHost { shared };
        filter.on_response(&mut host, &shared.config, data_size);
        // An answer may start the time of a head held behind it.
        note_held(
            shared,
            self.context_id,
            filter.held_since(),
            &mut self.noted,
        );
        Action::Continue
    }
}

struct WasmStreamHost<'a> {
    shared: &'a Shared,
}

impl Counting for WasmStreamHost<'_> {
    fn increment(&mut self, counter: Counter) {
        self.shared.metrics.increment(counter, &self.shared.config);
    }
}

impl StreamHost for WasmStreamHost<'_> {
    fn read_downstream(&mut self, start: usize, len: usize) -> Result<Vec<u8>, HostError> {
        abi::buffer_bytes(BUFFER_DOWNSTREAM_DATA, start, len)
    }

    fn replace_downstream_prefix(&mut self, len: usize, bytes: &[u8]) -> Result<(), HostError> {
        abi::replace_buffer_prefix(BUFFER_DOWNSTREAM_DATA, len, bytes)
    }

    fn read_upstream(&mut self, start: usize, len: usize) -> Result<Vec<u8>, HostError> {
        abi::buffer_bytes(BUFFER_UPSTREAM_DATA, start, len)
    }

    fn now_nanos(&mut self) -> u64 {
        abi::current_time_nanos()
    }

    fn destination_port(&mut self) -> Result<Option<u16>, HostError> {
        abi::get_u16_property(&["destination", "port"])
    }

    fn filter_chain_name(&mut self) -> Result<Option<Vec<u8>>, HostError> {
        abi::get_property(&["xds", "filter_chain_name"])
    }

    fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), HostError> {
        abi::set_property(&[key], value)
    }

    fn note_unregistered_tls(&mut self, server_name: &str, port: Option<u16>, alpn: &str) {
        let port = port.unwrap_or(0);
        // The server name is a checked DNS name of at most 253 bytes.
        let key = format!("{server_name}:{port}");
        self.shared
            .metrics
            .increment_unregistered_host(&key, server_name, port);
        let Ok(mut seen) = self.shared.unregistered_seen.try_borrow_mut() else {
            return;
        };
        if seen.len() < MAX_UNREGISTERED_LOGGED && seen.insert(key.into_bytes()) {
            log::info!(
                "tracejoin: TLS connections to {server_name}:{port} (ALPN {alpn}) leave the mesh with no ServiceEntry (passthrough filter chain)"
            );
        }
    }
}
