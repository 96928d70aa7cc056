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
use crate::filter::{HostError, RequestFilter};
use crate::ids::IdGenerator;
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
}

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
        log::set_max_level(logging::level_of(abi::host_log_level()));
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
        log::info!(
            "tracejoin: configured: position {:?}, tracer {:?}, extract {:?}, propagate {:?}, trust {:?}, sampling ratio {}, envoy {} ({})",
            config.position,
            config.tracer,
            config.extract,
            config.propagate,
            config.trust,
            config.sampler.ratio_text(),
            config.envoy,
            config.envoy_source.describe()
        );
        if config.envoy > EnvoyVersion::NEWEST_MEASURED
            || config.envoy < EnvoyVersion::OLDEST_MEASURED
        {
            log::warn!(
                "tracejoin: Envoy {} is outside the measured {} to {}: modelled as the nearest measured release",
                config.envoy,
                EnvoyVersion::OLDEST_MEASURED,
                EnvoyVersion::NEWEST_MEASURED
            );
        }
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
        Some(Box::new(http::TracejoinHttp {
            shared: self.shared.clone(),
            filter: RequestFilter::new(),
        }))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(network::TracejoinStream {
            shared: self.shared.clone(),
            filter: None,
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
