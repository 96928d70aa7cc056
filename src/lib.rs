//! tracejoin: one trace context per request, written the same in every propagation format.
//!
//! Layout, in the direction data flows:
//! - [`context`]: the trace-context model (ids, sampling, one span context);
//! - [`codec`]: parse and render each header format (W3C, B3 single and multi, Jaeger);
//! - [`config`]: the plugin JSON, checked and compiled at load;
//! - [`policy`]: which context wins and what to write, as a pure function;
//! - [`filter`]: the request path over a small [`filter::Host`] trait (mocked in tests);
//! - `glue` (wasm only): the proxy-wasm adapter that implements `Host` with host calls.

pub mod codec;
pub mod config;
pub mod context;
pub mod external;
pub mod filter;
pub mod ids;
mod json;
pub mod policy;
pub mod sampling;

#[cfg(all(target_arch = "wasm32", not(test)))]
mod glue;

#[cfg(test)]
mod config_corpus_tests;
#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod external_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod request_path_tests;
