//! What the filter needs from its host for one HTTP request ([`Host`]; the network
//! position's is [`crate::network::StreamHost`]). The proxy-wasm glue implements them with
//! host calls, [`super::recording_host::RecordingHost`] with a header list and a buffer.

use super::counters::Counter;

/// A failed host call, with the status the host returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostError(pub u32);

/// Counting what happened (Envoy stats).
pub trait Counting {
    fn increment(&mut self, counter: Counter);
}

/// What the filter needs from its host for one request.
pub trait Host: Counting {
    /// The request headers in the proxy-wasm serialized map layout (one host call).
    fn request_header_block(&mut self) -> Result<Vec<u8>, HostError>;
    fn set_request_header(&mut self, name: &str, value: &[u8]) -> Result<(), HostError>;
    fn remove_request_header(&mut self, name: &str) -> Result<(), HostError>;
    fn set_response_header(&mut self, name: &str, value: &[u8]) -> Result<(), HostError>;
    /// A response header's value (the first, when repeated), in the response phase.
    fn response_header(&mut self, name: &str) -> Result<Option<Vec<u8>>, HostError>;
    /// Envoy's `xds.cluster_name` for this request (one host call; only asked when
    /// external services are configured).
    fn cluster_name(&mut self) -> Result<Option<Vec<u8>>, HostError>;
    fn set_filter_state(&mut self, key: &str, value: &[u8]) -> Result<(), HostError>;
    /// The response's `:status` (in the response-headers phase).
    fn response_status(&mut self) -> Result<Option<u16>, HostError>;
    /// The stream's response code at its end (`response.code`, Envoy's own replies too).
    fn final_response_code(&mut self) -> Result<Option<u16>, HostError>;
    /// A call left for a host no ServiceEntry names (the glue logs each host once).
    fn note_unregistered(&mut self, host: &[u8]);
}
