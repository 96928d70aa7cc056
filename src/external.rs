//! External services: which Istio ServiceEntry a call leaves the mesh for.
//!
//! A call is matched by the host of its Envoy cluster (`outbound|PORT|SUBSET|HOST` in sidecars
//! and gateways, `inbound-vip|PORT|SUBSET|HOST` in an ambient waypoint, where a ServiceEntry's
//! wildcard host appears literally) and by its request authority, case-
//! insensitively and without a port suffix. Exact hosts beat wildcards, longer wildcards beat
//! shorter ones, and an entry listing the call's port beats one without ports; a known port
//! that an entry does not list rules it out. Wildcards
//! follow Istio: `*.example.com` matches any name below `example.com`, not `example.com`.
//! Lookups are hash-map probes, one per label of the host: no scan over the entries.

use std::collections::HashMap;

/// One ServiceEntry as the plugin configuration lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalService {
    /// The ServiceEntry's resource name (Istio's metadata only carries the host).
    pub name: String,
    pub namespace: String,
    pub hosts: Vec<String>,
    /// Empty: any port.
    pub ports: Vec<u16>,
    /// Whether trace headers (every format, tracestate, baggage) go out to this service.
    pub propagate: bool,
}

/// What a request is, as far as external services go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Matched this entry (index into the configured list).
    Service(usize),
    /// Left through Istio's `PassthroughCluster`: a host no ServiceEntry names.
    Unregistered,
    /// Not an external call (an in-mesh service, or Envoy's own cluster).
    Internal,
}

/// The cluster Istio routes unregistered hosts to (outbound traffic policy ALLOW_ANY).
pub const PASSTHROUGH_CLUSTER: &[u8] = b"PassthroughCluster";

/// The filter chains a sidecar's TCP connections to unregistered hosts take: an outbound
/// listener's default chain (a port some ServiceEntry uses, other hosts), and the catch-all
/// of `virtualOutbound` (a port no listener has). Both proxy to `PassthroughCluster`.
pub const PASSTHROUGH_CHAINS: [&[u8]; 2] =
    [b"PassthroughFilterChain", b"virtualOutbound-catchall-tcp"];

/// Whether a connection took one of Istio's passthrough chains (to an unregistered host).
pub fn is_passthrough_chain(filter_chain: Option<&[u8]>) -> bool {
    filter_chain.is_some_and(|c| PASSTHROUGH_CHAINS.contains(&c))
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matcher {
    services: Vec<ExternalService>,
    /// Lowercase host (wildcards included literally, as they appear in cluster names) to
    /// the entries that list it.
    exact: HashMap<String, Vec<usize>>,
    /// `.suffix` of a `*.suffix` host to the entries that list it.
    wildcard: HashMap<String, Vec<usize>>,
}

/// Longest host name handled (DNS allows 253).
const MAX_HOST: usize = 255;

impl Matcher {
    pub fn new(services: Vec<ExternalService>) -> Matcher {
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut wildcard: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, service) in services.iter().enumerate() {
            for host in &service.hosts {
                let host = host.to_ascii_lowercase();
                if let Some(suffix) = host.strip_prefix('*') {
                    wildcard.entry(suffix.to_owned()).or_default().push(i);
                }
                exact.entry(host).or_default().push(i);
            }
        }
        Matcher {
            services,
            exact,
            wildcard,
        }
    }

    pub fn services(&self) -> &[ExternalService] {
        &self.services
    }

    pub fn service(&self, index: usize) -> Option<&ExternalService> {
        self.services.get(index)
    }

    /// Classifies a request by its cluster name and `:authority`. Istio sends a call to
    /// `PassthroughCluster` exactly when no ServiceEntry covers its host and port, so such a
    /// call is unregistered whatever its authority looks like.
    pub fn classify(&self, cluster: Option<&[u8]>, authority: Option<&[u8]>) -> Destination {
        if cluster == Some(PASSTHROUGH_CLUSTER) {
            return Destination::Unregistered;
        }
        let (cluster_host, cluster_port) =
            cluster.and_then(outbound_cluster).unwrap_or((None, None));
        let (authority_host, authority_port) =
            authority.map(split_host_port).unwrap_or((None, None));
        let port = cluster_port.or(authority_port);
        let found = cluster_host
            .and_then(|h| self.lookup(h, port))
            .or_else(|| authority_host.and_then(|h| self.lookup(h, port)));
        match found {
            Some(i) => Destination::Service(i),
            None => Destination::Internal,
        }
    }

    /// Classifies a TCP connection by the server name it asked for (TLS SNI), the port it
    /// was sent to and the filter chain it took. A connection on Istio's passthrough chains
    /// is unregistered, as a request to `PassthroughCluster` is; elsewhere an unmatched name
    /// is an in-mesh service's (its own chain, Istio's VIP listeners).
    pub fn classify_connection(
        &self,
        server_name: &str,
        port: Option<u16>,
        filter_chain: Option<&[u8]>,
    ) -> Destination {
        if is_passthrough_chain(filter_chain) {
            return Destination::Unregistered;
        }
        match self.lookup(server_name.as_bytes(), port) {
            Some(i) => Destination::Service(i),
            None => Destination::Internal,
        }
    }

    fn lookup(&self, host: &[u8], port: Option<u16>) -> Option<usize> {
        let mut buf = [0u8; MAX_HOST];
        let lower = buf.get_mut(..host.len())?;
        for (dst, src) in lower.iter_mut().zip(host) {
            *dst = src.to_ascii_lowercase();
        }
        let host = std::str::from_utf8(lower).ok()?;
        if let Some(i) = self.exact.get(host).and_then(|c| self.pick(c, port)) {
            return Some(i);
        }
        // Suffixes from the longest (most specific) down: ".b.example.com", ".example.com", ...
        host.match_indices('.')
            .filter_map(|(at, _)| host.get(at..))
            .find_map(|suffix| self.wildcard.get(suffix).and_then(|c| self.pick(c, port)))
    }

    /// Among entries listing the same host: one naming the port, else one without ports.
    /// When the port is unknown (an authority without one, no Istio cluster name) it cannot
    /// rule an entry out: an entry without ports is preferred, else the first listed.
    fn pick(&self, candidates: &[usize], port: Option<u16>) -> Option<usize> {
        let ports_of = |i: &usize| {
            self.services
                .get(*i)
                .map(|s| s.ports.as_slice())
                .unwrap_or_default()
        };
        let portless = candidates.iter().find(|i| ports_of(i).is_empty());
        match port {
            Some(p) => candidates
                .iter()
                .find(|i| ports_of(i).contains(&p))
                .or(portless),
            None => portless.or(candidates.first()),
        }
        .copied()
    }
}

/// `outbound|443||api.openai.com` -> (host, port). A waypoint routes the services it serves
/// (a ServiceEntry bound to it with `istio.io/use-waypoint`) to `inbound-vip|443|http|HOST`
/// (Istio's `getWaypointDestinationCluster`), which names the host the same way.
fn outbound_cluster(cluster: &[u8]) -> Option<(Option<&[u8]>, Option<u16>)> {
    let mut parts = cluster.split(|b| *b == b'|');
    let direction = parts.next()?;
    if direction != b"outbound" && direction != b"inbound-vip" {
        return None;
    }
    let port = parts.next().and_then(parse_port);
    let _subset = parts.next()?;
    let host = parts.next()?;
    Some((Some(host), port))
}

/// `host[:port]`, also `[v6]:port`.
fn split_host_port(authority: &[u8]) -> (Option<&[u8]>, Option<u16>) {
    if authority.is_empty() {
        return (None, None);
    }
    if authority.first() == Some(&b'[') {
        let end = authority.iter().position(|b| *b == b']');
        let host = end.and_then(|e| authority.get(..=e));
        let port = end
            .and_then(|e| authority.get(e + 1..))
            .and_then(|rest| rest.strip_prefix(b":"))
            .and_then(parse_port);
        return (host, port);
    }
    match authority.iter().rposition(|b| *b == b':') {
        Some(colon) => (
            authority.get(..colon),
            authority.get(colon + 1..).and_then(parse_port),
        ),
        None => (Some(authority), None),
    }
}

fn parse_port(digits: &[u8]) -> Option<u16> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Checks one configured host: a DNS name, or `*.` and a DNS name (Istio's wildcard form).
pub fn valid_host(host: &str) -> Result<(), &'static str> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    if host == "*" {
        return Err("a bare `*` would match every call; list the hosts");
    }
    if name.is_empty() || name.len() > 253 {
        return Err("must be a host name of 1 to 253 characters");
    }
    if name.contains('*') {
        return Err("`*` is only allowed as the first label (`*.example.com`)");
    }
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !name.split('.').all(label_ok) {
        return Err("must be a DNS name (letters, digits, `-`, dots between labels)");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
