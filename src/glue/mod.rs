//! The proxy-wasm adapter: Envoy's callbacks in, host calls out; everything else is in the
//! pure modules. One file per job: the root context and its configuration here, the HTTP
//! context in [`http`], stats in [`metrics`], the logger in [`logging`], and the raw ABI,
//! the only `unsafe` code, in [`abi`].

mod abi;
mod http;
mod logging;
mod metrics;
mod network;

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::config::{Config, EnvoyVersion, Position};
use crate::filter::{Counter, HostError, RequestFilter};
use crate::ids::IdGenerator;
use crate::network::Leave;
use metrics::Metrics;

proxy_wasm::main! {{
    // Our own logger: the SDK's unwraps the status of its log call.
    if log::set_logger(&logging::HOST_LOGGER).is_ok() {
        // The host's level cannot be asked for during `_initialize`; on_configure sets it.
        log::set_max_level(log::LevelFilter::Info);
    }
    // Replaces the SDK's hook, which unwraps the result of its own log call.
    std::panic::set_hook(Box::new(|info| {
        abi::log(LogLevel::Critical, &format!("tracejoin panicked: {info}"));
    }));
    proxy_wasm::set_root_context(|_| Box::new(TracejoinRoot::default()));
}}

struct Shared {
    config: Config,
    metrics: Metrics,
    ids: RefCell<IdGenerator>,
    unregistered_seen: RefCell<HashSet<Vec<u8>>>,
    /// Network position: connections holding an incomplete head, and since when (ns).
    held: RefCell<Held>,
}

/// Context ids and since when (ns), unordered: a few connections at a time hold a head, so a
/// linear scan beats a map (and a B-tree's code weighs 8 KB in the module).
#[derive(Default)]
struct Held(Vec<(u32, u64)>);

impl Held {
    fn insert(&mut self, id: u32, since: u64) {
        match self.0.iter_mut().find(|(held, _)| *held == id) {
            Some(entry) => entry.1 = since,
            None => self.0.push((id, since)),
        }
    }

    fn remove(&mut self, id: u32) {
        if let Some(i) = self.0.iter().position(|(held, _)| *held == id) {
            self.0.swap_remove(i);
        }
    }
}

/// How often the root context (one per VM, so per worker) re-reads the host's log level
/// and, in the network position, looks for heads held too long (a connection that sends
/// nothing more gets no callback of its own).
///
/// The log level is read on this tick, not per request: `proxy_get_log_level` is a host
/// call (measured with callgrind, Envoy 1.40: +1,220 instructions on a small request
/// through the filter, 217,200, if asked per request), and a level raised at runtime
/// (`/logging?wasm=debug`) then shows within a second at no cost per request.
const TICK_MS: u32 = 1000;

#[derive(Default)]
struct TracejoinRoot {
    shared: Option<Rc<Shared>>,
}

impl Context for TracejoinRoot {}

/// Envoy's own release, from the node the host describes: Envoy fills
/// `node.user_agent_build_version` itself, and hands the node to wasm as the attribute
/// `xds.node` (serialized; `node` alone is not an attribute). None where the host does not
/// tell.
fn detect_envoy_version() -> Option<EnvoyVersion> {
    match abi::get_property(&["xds", "node", "user_agent_build_version"]) {
        Ok(Some(bytes)) => EnvoyVersion::from_build_version_proto(&bytes),
        Ok(None) | Err(_) => None,
    }
}

impl RootContext for TracejoinRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        logging::follow_host_level();
        let bytes = match abi::plugin_configuration(plugin_configuration_size) {
            Ok(bytes) => bytes,
            Err(HostError(status)) => {
                log::error!("tracejoin: cannot read the plugin configuration: status {status}");
                return false;
            }
        };
        let config = match Config::from_json(&bytes) {
            Ok(config) => config.with_detected_envoy(detect_envoy_version()),
            Err(e) => {
                log::error!("{e}");
                return false;
            }
        };
        let ids = IdGenerator::from_entropy().unwrap_or_else(|e| {
            log::warn!("tracejoin: no entropy from the host ({e}); seeding ids from the clock");
            IdGenerator::from_seed(abi::current_time_nanos())
        });
        for (level, line) in config.load_lines() {
            log::log!(level, "{line}");
        }
        let metrics = Metrics::define(&config);
        self.shared = Some(Rc::new(Shared {
            config,
            metrics,
            ids: RefCell::new(ids),
            unregistered_seen: RefCell::new(HashSet::new()),
            held: RefCell::new(Held::default()),
        }));
        if let Err(e) = abi::set_tick_period_ms(TICK_MS) {
            log::warn!(
                "tracejoin: no timer ({}): the log level is the one at load, and a held head (network position) is timed only when its client sends more",
                e.0
            );
        }
        true
    }

    /// Follows the host's log level; closes the connections whose head has been held past
    /// `request_headers_timeout_ms` and that sent nothing since (those that do are timed on
    /// their own callback).
    fn on_tick(&mut self) {
        logging::follow_host_level();
        let Some(shared) = &self.shared else { return };
        if shared.config.position != Position::Network {
            return;
        }
        let now = abi::current_time_nanos();
        let limit_ns = shared
            .config
            .limits
            .held_head_timeout_ms
            .saturating_mul(1_000_000);
        let expired: Vec<u32> = match shared.held.try_borrow() {
            Ok(held) => held
                .0
                .iter()
                .filter(|(_, since)| now.saturating_sub(*since) >= limit_ns)
                .map(|(id, _)| *id)
                .collect(),
            Err(_) => return,
        };
        for id in expired {
            if let Ok(mut held) = shared.held.try_borrow_mut() {
                held.remove(id);
            }
            if abi::set_effective_context(id).is_ok() && abi::close_downstream().is_ok() {
                shared
                    .metrics
                    .increment(Counter::NetworkLeft(Leave::SlowHead), &shared.config);
                shared
                    .metrics
                    .increment(Counter::NetworkClosed, &shared.config);
                log::debug!(
                    "tracejoin: closed a connection whose request head was held past request_headers_timeout_ms"
                );
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(http::TracejoinHttp {
            shared: self.shared.clone(),
            filter: RequestFilter::new(),
        }))
    }

    fn create_stream_context(&self, context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(network::TracejoinStream {
            context_id,
            shared: self.shared.clone(),
            filter: None,
            noted: None,
        }))
    }

    /// The same module is an HTTP filter or a network filter, as its configuration says
    /// (Envoy never asks; the SDK's dispatcher does, for every new context).
    fn get_type(&self) -> Option<ContextType> {
        match &self.shared {
            Some(shared) if shared.config.position == Position::Network => {
                Some(ContextType::StreamContext)
            }
            _ => Some(ContextType::HttpContext),
        }
    }
}
