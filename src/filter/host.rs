//! What the filter needs from its host for one request; the proxy-wasm glue implements it
//! with host calls, [`super::recording_host::RecordingHost`] with a header list.

use super::counters::Counter;

/// A failed host call, with the status the host returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostError(pub u32);

/// What the filter needs from its host for one request.
pub trait Host {
    /// The request headers in the proxy-wasm serialized map layout (one host call).
    fn request_header_block(&mut self) -> Result<Vec<u8>, HostError>;
    fn set_request_header(&mut self, name: &str, value: &[u8]) -> Result<(), HostError>;
    fn remove_request_header(&mut self, name: &str) -> Result<(), HostError>;
    fn set_response_header(&mut self, name: &str, value: &[u8]) -> Result<(), HostError>;
    fn increment(&mut self, counter: Counter);
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
