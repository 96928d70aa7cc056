//! The network filter context (`envoy.filters.network.wasm`, in front of the HTTP
//! connection manager) and the [`StreamHost`] it gives the connection filter: the
//! downstream read buffer.

use std::rc::Rc;

use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::Action;

use super::Shared;
use super::abi::{self, BUFFER_DOWNSTREAM_DATA};
use crate::filter::connection::{ConnectionFilter, Verdict};
use crate::filter::{Counter, Counting, HostError, StreamHost};

pub struct TracejoinStream {
    /// `None` when configuration failed: the bytes pass untouched.
    pub shared: Option<Rc<Shared>>,
    pub filter: Option<ConnectionFilter>,
}

impl Context for TracejoinStream {}

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
        match filter.on_data(
            &mut host,
            &shared.config,
            &mut ids,
            data_size,
            end_of_stream,
        ) {
            Verdict::Continue => Action::Continue,
            Verdict::Pause => Action::Pause,
        }
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
}
