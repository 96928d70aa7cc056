//! tracejoin: one trace context per request, written the same in every propagation format.
//!
//! Data flows one way; the modules in that order:
//! - [`codec`]: headers in ([`codec::Carrier`]), one module per format that parses and
//!   renders it ([`context`] is the model they share);
//! - [`policy`]: decide, in named steps (choose the context, apply trust, what each format
//!   gets, tracestate), as a pure function from a carrier and the [`config`] to a plan;
//! - [`filter`]: the request path that reads headers from a [`filter::Host`], runs the
//!   policy, writes the plan back and counts what happened;
//! - [`network`]: the same in front of Envoy's HTTP connection manager, on the request
//!   heads (HTTP/1.1) and header blocks (HTTP/2) in a connection's byte stream;
//! - `glue` (wasm only): the proxy-wasm adapter that implements the host with host calls.
//!
//! Beside them: [`external`] (ServiceEntry matching), [`sampling`] and [`ids`] (decisions
//! and ids tracejoin makes itself), [`printable`] (client bytes made safe for a log line).

pub mod codec;
pub mod config;
pub mod context;
pub mod external;
pub mod filter;
pub mod ids;
pub mod network;
pub mod policy;
pub mod printable;
pub mod sampling;

/// The native `tracejoin` command's code (src/bin/tracejoin.rs); never in the .wasm.
#[cfg(not(target_arch = "wasm32"))]
pub mod cli;

#[cfg(all(target_arch = "wasm32", not(test)))]
mod glue;

#[cfg(test)]
mod testing;
