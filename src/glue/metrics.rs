//! Envoy stats: the filter's counters, defined once per VM, and the VM memory gauge.

use std::cell::{Cell, RefCell};

use super::abi;
use crate::config::Config;
use crate::filter::{Counter, HostError, StatusClass};

/// Metric ids: the fixed counters defined at configure time, the per-service ones on
/// first use (an entry nobody calls costs no stat).
pub struct Metrics {
    fixed: Vec<Option<u32>>,
    /// The counters defined on first use, by [`dynamic_slot`]; `None` until defined.
    dynamic: RefCell<Vec<Option<u32>>>,
    /// `tracejoin.vm.memory_bytes`: this VM's linear memory (it only grows, so a leak shows).
    memory: Option<u32>,
    /// Requests until the next memory sample.
    until_memory_sample: Cell<u32>,
    /// Per-host counters of unregistered TLS connections, by `host:port`; `None` where Envoy
    /// refused to define one (not asked again). A list: at most
    /// [`MAX_UNREGISTERED_HOST_STATS`], scanned once per such connection (a hash map's code
    /// weighs more).
    unregistered_hosts: RefCell<Vec<(String, Option<u32>)>>,
}

/// At most this many unregistered hosts get a counter of their own per VM: the names come
/// from clients, and Envoy keeps every stat for the proxy's life. Past it, connections are
/// counted in `tracejoin.external.unregistered.tls_connections` only.
pub const MAX_UNREGISTERED_HOST_STATS: usize = 100;

/// The memory gauge is sampled once per this many requests (per VM): a leak shows within a
/// few thousand requests at one extra host call per thousand.
const MEMORY_SAMPLE_EVERY: u32 = 1024;

impl Metrics {
    pub fn define(config: &Config) -> Metrics {
        // Only the counters this position can count become stats.
        let fixed = Counter::ALL
            .iter()
            .map(|c| {
                c.defined_for(config)
                    .then(|| define_counter(&c.name(config)))
                    .flatten()
            })
            .collect();
        let memory = match abi::define_gauge("tracejoin.vm.memory_bytes") {
            Ok(id) => Some(id),
            Err(HostError(status)) => {
                log::warn!("tracejoin: cannot define the memory gauge: status {status}");
                None
            }
        };
        let metrics = Metrics {
            fixed,
            dynamic: RefCell::new(vec![None; dynamic_slots(config)]),
            memory,
            until_memory_sample: Cell::new(MEMORY_SAMPLE_EVERY),
            unregistered_hosts: RefCell::new(Vec::new()),
        };
        metrics.record_memory();
        metrics
    }

    fn record_memory(&self) {
        if let Some(id) = self.memory {
            let bytes = core::arch::wasm32::memory_size(0) as u64 * 65536;
            let _ = abi::record_metric(id, bytes);
        }
    }

    /// Counts a request; every [`MEMORY_SAMPLE_EVERY`]th samples the memory gauge.
    pub fn on_request(&self) {
        let left = self.until_memory_sample.get().saturating_sub(1);
        if left == 0 {
            self.record_memory();
            self.until_memory_sample.set(MEMORY_SAMPLE_EVERY);
        } else {
            self.until_memory_sample.set(left);
        }
    }

    pub fn increment(&self, counter: Counter, config: &Config) {
        let id = match counter.index() {
            Some(i) => self.fixed.get(i).copied().flatten(),
            None => {
                let Ok(mut dynamic) = self.dynamic.try_borrow_mut() else {
                    return;
                };
                let slot = dynamic_slot(counter).and_then(|i| dynamic.get_mut(i));
                match slot {
                    Some(Some(id)) => Some(*id),
                    Some(slot) => {
                        *slot = define_counter(&counter.name(config));
                        *slot
                    }
                    None => None,
                }
            }
        };
        if let Some(id) = id {
            // A failed increment is not worth failing or logging a request over.
            let _ = abi::increment_metric(id);
        }
    }
}

impl Metrics {
    /// `tracejoin.external.unregistered_host.<host>.port.<port>.tls_connections`, for the
    /// first [`MAX_UNREGISTERED_HOST_STATS`] hosts: what a ServiceEntry for them needs.
    /// `key`: `host:port`.
    pub fn increment_unregistered_host(&self, key: &str, server_name: &str, port: u16) {
        let Ok(mut hosts) = self.unregistered_hosts.try_borrow_mut() else {
            return;
        };
        let id = match hosts.iter().find(|(k, _)| k == key) {
            Some((_, id)) => *id,
            None if hosts.len() < MAX_UNREGISTERED_HOST_STATS => {
                let id = define_counter(&format!(
                    "tracejoin.external.unregistered_host.{server_name}.port.{port}.tls_connections"
                ));
                hosts.push((key.to_owned(), id));
                if hosts.len() == MAX_UNREGISTERED_HOST_STATS {
                    log::warn!(
                        "tracejoin: {MAX_UNREGISTERED_HOST_STATS} unregistered hosts have a counter in this VM; further ones are counted in tracejoin.external.unregistered.tls_connections only"
                    );
                }
                id
            }
            None => None,
        };
        if let Some(id) = id {
            let _ = abi::increment_metric(id);
        }
    }
}

/// Counters per service (and for unregistered hosts): the five response classes, then TLS
/// connections.
const PER_SERVICE: usize = 6;
const _: () = assert!(StatusClass::ServerError as usize == PER_SERVICE - 2);

fn dynamic_slots(config: &Config) -> usize {
    let services = config
        .external
        .as_ref()
        .map_or(0, |e| e.matcher.services().len());
    PER_SERVICE * (1 + services)
}

/// A dense index for a counter defined on first use (a table, not a map: no hashing per
/// count, and one hash map less in the module): unregistered hosts', then each service's.
fn dynamic_slot(counter: Counter) -> Option<usize> {
    let (service, k) = match counter {
        Counter::Unregistered(class) => (None, class as usize),
        Counter::UnregisteredTls => (None, PER_SERVICE - 1),
        Counter::External { service, class } => (Some(service), class as usize),
        Counter::ExternalTls(service) => (Some(service), PER_SERVICE - 1),
        _ => return None,
    };
    let first = service.map_or(Some(0), |s| s.checked_add(1)?.checked_mul(PER_SERVICE))?;
    first.checked_add(k)
}

fn define_counter(name: &str) -> Option<u32> {
    match abi::define_counter(name) {
        Ok(id) => Some(id),
        Err(HostError(status)) => {
            log::warn!("tracejoin: cannot define metric {name}: status {status}");
            None
        }
    }
}
