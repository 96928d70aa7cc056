//! A [`Host`] over an in-memory header list that records what the filter did: the mock the
//! unit tests, the native benchmark and the fuzz targets share. Never used by the glue.

use std::hint::black_box;

use super::counters::Counter;
use super::host::{Counting, Host, HostError};
use crate::codec::header_map;
use crate::network::StreamHost;

/// Host calls that can be made to fail, as a bit set (`RecordingHost::fail`).
pub mod fail {
    pub const HEADER_BLOCK: u8 = 1;
    pub const SET: u8 = 2;
    pub const REMOVE: u8 = 4;
    /// The cluster name, and in the network position the connection's port and chain.
    pub const CLUSTER: u8 = 8;
    pub const FILTER_STATE: u8 = 16;
    pub const RESPONSE: u8 = 32;
    pub const DOWNSTREAM: u8 = 64;
    pub const UPSTREAM: u8 = 128;
}

/// The failure status the host returns for a failing call.
const FAILED: HostError = HostError(2);

/// One count per fixed counter (an array longer than 32 has no derived `Default`).
struct FixedCounts([u32; Counter::ALL.len()]);

impl Default for FixedCounts {
    fn default() -> Self {
        FixedCounts([0; Counter::ALL.len()])
    }
}

#[derive(Default)]
pub struct RecordingHost {
    /// The request headers in order, as Envoy's map holds them; writes are applied to them
    /// (names compared case-insensitively), unless the host is [frozen](Self::frozen).
    pub request: Vec<(Vec<u8>, Vec<u8>)>,
    /// Response headers set by the filter.
    pub response: Vec<(String, Vec<u8>)>,
    /// Request-header writes in order: `(name, Some(value))` for a set, `None` for a remove.
    pub writes: Vec<(String, Option<Vec<u8>>)>,
    pub filter_state: Vec<(String, Vec<u8>)>,
    /// Hosts reported as unregistered (PassthroughCluster).
    pub unregistered: Vec<Vec<u8>>,
    /// What the host answers.
    pub cluster: Option<Vec<u8>>,
    /// Network position: the connection's destination port and filter chain name.
    pub destination_port: Option<u16>,
    pub filter_chain: Option<Vec<u8>>,
    pub status: Option<u16>,
    /// The stream's final code (Envoy's own replies reach a filter only here).
    pub final_code: Option<u16>,
    /// Calls that fail ([`fail`] bits); a failing write is still recorded.
    pub fail: u8,
    /// Host calls made, counter increments apart.
    pub calls: usize,
    /// Request-header writes made (also counted when frozen).
    pub write_count: usize,
    pub cluster_calls: usize,
    /// Every increment, fixed counters by [`Counter::index`], the others in order.
    fixed_counts: FixedCounts,
    other_counts: Vec<Counter>,
    /// The connection's downstream buffer (network position): what is not passed on yet.
    pub downstream: Vec<u8>,
    /// What Envoy is writing to the client in the current write (network position).
    pub upstream: Vec<u8>,
    /// The clock, in nanoseconds.
    pub now: u64,
    /// Frozen: the header block is fixed and writes are only counted (a benchmark's host,
    /// which must not allocate or change the next request).
    frozen: Option<Vec<u8>>,
}

impl RecordingHost {
    pub fn with(headers: &[(&str, &str)]) -> Self {
        RecordingHost {
            request: headers
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            ..Default::default()
        }
    }

    /// A host whose header block is `block` for every call and which applies no write.
    pub fn frozen(block: Vec<u8>) -> Self {
        RecordingHost {
            frozen: Some(block),
            ..Default::default()
        }
    }

    /// Forgets what was recorded (calls, writes, counters), keeping the request and the
    /// answers: one host for many requests, with no allocation per request.
    pub fn reset_records(&mut self) {
        self.response.clear();
        self.writes.clear();
        self.filter_state.clear();
        self.unregistered.clear();
        self.calls = 0;
        self.write_count = 0;
        self.cluster_calls = 0;
        self.fixed_counts = FixedCounts::default();
        self.other_counts.clear();
    }

    /// Every value of a request header, the name compared case-insensitively.
    pub fn values(&self, name: &str) -> impl Iterator<Item = &[u8]> {
        self.request
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    /// The request-header sets made, in order.
    pub fn sets(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.writes
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k.as_str(), v)))
    }

    /// The request-header removals made, in order.
    pub fn removes(&self) -> impl Iterator<Item = &str> {
        self.writes
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.as_str())
    }

    /// How many times `counter` was incremented.
    pub fn count(&self, counter: Counter) -> u32 {
        match counter.index() {
            Some(i) => self.fixed_counts.0.get(i).copied().unwrap_or(0),
            None => {
                let n = self.other_counts.iter().filter(|c| **c == counter).count();
                u32::try_from(n).unwrap_or(u32::MAX)
            }
        }
    }

    /// Increments of the counters defined on first use (per external service), in order.
    pub fn dynamic_increments(&self) -> &[Counter] {
        &self.other_counts
    }

    /// Counter increments made.
    pub fn increments(&self) -> u32 {
        let others = u32::try_from(self.other_counts.len()).unwrap_or(u32::MAX);
        self.fixed_counts.0.iter().sum::<u32>() + others
    }

    fn failing(&self, call: u8) -> bool {
        self.fail & call != 0
    }

    fn write(&mut self, name: &str, value: Option<&[u8]>) -> Result<(), HostError> {
        self.calls += 1;
        self.write_count += 1;
        if self.frozen.is_some() {
            black_box((name, value));
        } else {
            self.writes
                .push((name.to_owned(), value.map(<[u8]>::to_vec)));
        }
        let call = if value.is_some() {
            fail::SET
        } else {
            fail::REMOVE
        };
        if self.failing(call) {
            return Err(FAILED);
        }
        if self.frozen.is_none() {
            self.request
                .retain(|(k, _)| !k.eq_ignore_ascii_case(name.as_bytes()));
            if let Some(v) = value {
                self.request.push((name.as_bytes().to_vec(), v.to_vec()));
            }
        }
        Ok(())
    }
}

impl Counting for RecordingHost {
    fn increment(&mut self, counter: Counter) {
        match counter.index().and_then(|i| self.fixed_counts.0.get_mut(i)) {
            Some(n) => *n = n.saturating_add(1),
            None => self.other_counts.push(counter),
        }
    }
}

impl StreamHost for RecordingHost {
    fn read_downstream(&mut self, start: usize, len: usize) -> Result<Vec<u8>, HostError> {
        self.calls += 1;
        if self.failing(fail::DOWNSTREAM) {
            return Err(HostError(1));
        }
        // As Envoy does: clamped to the buffer, empty past its end.
        let end = start.saturating_add(len).min(self.downstream.len());
        Ok(self.downstream.get(start..end).unwrap_or_default().to_vec())
    }

    fn replace_downstream_prefix(&mut self, len: usize, bytes: &[u8]) -> Result<(), HostError> {
        self.calls += 1;
        self.write_count += 1;
        if self.failing(fail::DOWNSTREAM) {
            return Err(FAILED);
        }
        let len = len.min(self.downstream.len());
        self.downstream.splice(..len, bytes.iter().copied());
        Ok(())
    }

    fn read_upstream(&mut self, start: usize, len: usize) -> Result<Vec<u8>, HostError> {
        self.calls += 1;
        if self.failing(fail::UPSTREAM) {
            return Err(HostError(1));
        }
        let end = start.saturating_add(len).min(self.upstream.len());
        Ok(self.upstream.get(start..end).unwrap_or_default().to_vec())
    }

    fn now_nanos(&mut self) -> u64 {
        self.now
    }

    fn destination_port(&mut self) -> Result<Option<u16>, HostError> {
        self.calls += 1;
        if self.failing(fail::CLUSTER) {
            return Err(HostError(1));
        }
        Ok(self.destination_port)
    }

    fn filter_chain_name(&mut self) -> Result<Option<Vec<u8>>, HostError> {
        self.calls += 1;
        if self.failing(fail::CLUSTER) {
            return Err(HostError(1));
        }
        Ok(self.filter_chain.clone())
    }

    fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), HostError> {
        Host::set_filter_state(self, key, value)
    }

    fn note_unregistered_tls(&mut self, server_name: &str, _port: Option<u16>, _alpn: &str) {
        self.unregistered.push(server_name.as_bytes().to_vec());
    }
}

impl Host for RecordingHost {
    fn request_header_block(&mut self) -> Result<Vec<u8>, HostError> {
        self.calls += 1;
        if self.failing(fail::HEADER_BLOCK) {
            return Err(HostError(1));
        }
        // Like the real glue, each read is a fresh buffer (the host allocates it in the VM).
        Ok(match &self.frozen {
            Some(block) => block.clone(),
            None => header_map::serialize(self.request.iter().map(|(k, v)| (k, v))),
        })
    }

    fn set_request_header(&mut self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.write(name, Some(value))
    }

    fn remove_request_header(&mut self, name: &str) -> Result<(), HostError> {
        self.write(name, None)
    }

    fn set_response_header(&mut self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.calls += 1;
        if self.frozen.is_some() {
            black_box((name, value));
        } else {
            // A replace, as Envoy's `proxy_replace_header_map_value`.
            self.response.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            self.response.push((name.to_owned(), value.to_vec()));
        }
        if self.failing(fail::RESPONSE) {
            return Err(FAILED);
        }
        Ok(())
    }

    fn cluster_name(&mut self) -> Result<Option<Vec<u8>>, HostError> {
        self.calls += 1;
        self.cluster_calls += 1;
        if self.failing(fail::CLUSTER) {
            return Err(HostError(1));
        }
        Ok(self.cluster.clone())
    }

    fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), HostError> {
        self.calls += 1;
        if self.frozen.is_some() {
            black_box((key, value));
        } else {
            self.filter_state.push((key.to_owned(), value.to_vec()));
        }
        if self.failing(fail::FILTER_STATE) {
            return Err(FAILED);
        }
        Ok(())
    }

    fn response_header(&mut self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.calls += 1;
        if self.failing(fail::RESPONSE) {
            return Err(HostError(1));
        }
        Ok(self
            .response
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone()))
    }

    fn response_status(&mut self) -> Result<Option<u16>, HostError> {
        self.calls += 1;
        if self.failing(fail::RESPONSE) {
            return Err(HostError(1));
        }
        Ok(self.status)
    }

    fn final_response_code(&mut self) -> Result<Option<u16>, HostError> {
        self.calls += 1;
        if self.failing(fail::RESPONSE) {
            return Err(HostError(1));
        }
        Ok(self.final_code)
    }

    fn note_unregistered(&mut self, host: &[u8]) {
        if self.frozen.is_some() {
            black_box(host);
        } else {
            self.unregistered.push(host.to_vec());
        }
    }
}
