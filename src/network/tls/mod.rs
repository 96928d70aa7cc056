//! TLS in the network position: a connection that begins with a ClientHello (an app's own
//! HTTPS call, proxied at TCP level by its sidecar) is named by its server name, with the
//! same ServiceEntry matcher the HTTP positions use. No byte is changed; the filter holds a
//! ClientHello cut off at the end of a read until its rest arrives (the server cannot
//! answer before either), and is out of the data path once it is read.

pub mod client_hello;
#[cfg(test)]
mod tests;

use super::{Leave, StreamHost, Verdict, held_too_long};
use crate::config::Config;
use crate::external::{Destination, is_passthrough_chain};
use crate::filter::{
    Counter, STATE_EXTERNAL_HOST, STATE_SERVICE_ENTRY, STATE_SERVICE_ENTRY_NAMESPACE,
    STATE_TLS_ALPN, UNREGISTERED,
};
use client_hello::{ClientHello, Scan};

#[derive(Debug)]
enum State {
    /// Reading the ClientHello. `first`: the bytes the HTTP/1 framer read before handing
    /// the connection over (used by the first read only); `want`: no scan goes further
    /// before the buffer holds this many bytes; `held`: the buffer's length when it was
    /// last held. Nothing else is kept between reads: the bytes stay in Envoy's buffer
    /// and are read again, so a held ClientHello costs the VM no memory.
    Reading {
        first: Vec<u8>,
        want: usize,
        held: usize,
    },
    /// Read (or left): every later callback returns at once.
    Done,
}

/// One TLS connection, from its first bytes.
#[derive(Debug)]
pub struct Connection {
    state: State,
    held_since: Option<u64>,
}

impl Connection {
    /// `seen`: the buffer's first bytes, already read by the framer that saw the record type.
    pub fn new(seen: Vec<u8>) -> Self {
        Connection {
            state: State::Reading {
                first: seen,
                want: 0,
                held: 0,
            },
            held_since: None,
        }
    }

    /// Since when a cut-off ClientHello is held, if one is.
    pub fn held_since(&self) -> Option<u64> {
        self.held_since
    }

    /// Envoy read more bytes; the buffer holds `len` bytes, from the connection's first
    /// while the filter holds them.
    pub fn on_data(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        len: usize,
        end_of_stream: bool,
    ) -> Verdict {
        let State::Reading { first, want, held } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Verdict::Continue;
        };
        if len < held.max(first.len()) {
            // Bytes held are gone: nothing this filter knows of does that.
            return self.leave(host, Leave::Unsure);
        }
        if len < want {
            // Nothing to scan yet (a ClientHello arriving byte by byte is scanned once per
            // record, not once per byte).
            return self.hold(host, config, want, len, end_of_stream);
        }
        let limit = config.limits.max_held_bytes;
        let mut seen = first;
        loop {
            let (want, at_least) = match client_hello::scan(&seen) {
                Scan::Complete(hello) => {
                    self.held_since = None;
                    name(host, config, &hello);
                    return Verdict::Continue;
                }
                Scan::Bad => return self.leave(host, Leave::Tls),
                Scan::Partial { want, at_least } => (want, at_least),
            };
            // Holding more than the connection's buffer limit would stall it.
            if at_least > limit {
                return self.leave(host, Leave::TooLarge);
            }
            if want > len {
                return self.hold(host, config, want, len, end_of_stream);
            }
            // Only up to where the scan can go on: nothing past the ClientHello is copied in.
            match host.read_downstream(seen.len(), want - seen.len()) {
                Ok(more) if !more.is_empty() => seen.extend_from_slice(&more),
                _ => return self.leave(host, Leave::HostError),
            }
        }
    }

    /// The ClientHello is cut off: held until the buffer reaches `want` bytes, within
    /// `request_headers_timeout_ms`.
    fn hold(
        &mut self,
        host: &mut dyn StreamHost,
        config: &Config,
        want: usize,
        len: usize,
        end_of_stream: bool,
    ) -> Verdict {
        if end_of_stream {
            return self.leave(host, Leave::Tls);
        }
        if held_too_long(host, config, &mut self.held_since) {
            // Nothing will read this connection on: the server waits for the rest too.
            host.increment(Counter::NetworkLeft(Leave::SlowHead));
            host.increment(Counter::NetworkClosed);
            self.held_since = None;
            return Verdict::Close;
        }
        self.state = State::Reading {
            first: Vec::new(),
            want,
            held: len,
        };
        Verdict::Pause
    }

    fn leave(&mut self, host: &mut dyn StreamHost, reason: Leave) -> Verdict {
        host.increment(Counter::NetworkLeft(reason));
        self.held_since = None;
        self.state = State::Done;
        Verdict::Continue
    }
}

/// Names the connection by its server name: counters, filter state for the TCP proxy's
/// access log, a debug line per connection (the glue logs each unregistered host once).
fn name(host: &mut dyn StreamHost, config: &Config, hello: &ClientHello) {
    host.increment(Counter::NetworkTls);
    let Some(external) = &config.external else {
        return;
    };
    let port = host.destination_port().unwrap_or_else(|_| {
        host.increment(Counter::HostError);
        None
    });
    let chain = host.filter_chain_name().unwrap_or_else(|_| {
        host.increment(Counter::HostError);
        None
    });
    let Some(server_name) = hello.server_name.as_deref() else {
        host.increment(Counter::NetworkTlsNoServerName);
        // Still a connection that leaves the mesh unregistered, if its chain says so.
        let unregistered = is_passthrough_chain(chain.as_deref());
        if unregistered {
            host.increment(Counter::UnregisteredTls);
            set_states(
                host,
                &[
                    (STATE_SERVICE_ENTRY, UNREGISTERED),
                    (STATE_TLS_ALPN, &hello.alpn),
                ],
            );
        }
        log::debug!(
            "tracejoin: TLS connection to port {} without a server name{}{}",
            port.unwrap_or(0),
            if hello.server_name_sent {
                " (not a DNS name)"
            } else {
                ""
            },
            if unregistered { ": unregistered" } else { "" }
        );
        return;
    };
    let destination = external
        .matcher
        .classify_connection(server_name, port, chain.as_deref());
    let (state_name, namespace) = match destination {
        Destination::Service(i) => match external.matcher.service(i) {
            Some(s) => {
                host.increment(Counter::ExternalTls(i));
                (s.name.as_str(), s.namespace.as_str())
            }
            None => return,
        },
        Destination::Unregistered => {
            host.increment(Counter::UnregisteredTls);
            host.note_unregistered_tls(server_name, port, &hello.alpn);
            (UNREGISTERED, "")
        }
        Destination::Internal => {
            log::debug!(
                "tracejoin: TLS connection to {server_name}:{} (ALPN {}): not an external service",
                port.unwrap_or(0),
                hello.alpn
            );
            return;
        }
    };
    set_states(
        host,
        &[
            (STATE_SERVICE_ENTRY, state_name),
            (STATE_SERVICE_ENTRY_NAMESPACE, namespace),
            (STATE_EXTERNAL_HOST, server_name),
            (STATE_TLS_ALPN, &hello.alpn),
        ],
    );
    log::debug!(
        "tracejoin: TLS connection to {server_name}:{} (TLS {}, ALPN {}{}): ServiceEntry {state_name}{}{namespace}",
        port.unwrap_or(0),
        if hello.tls13 {
            "1.3 offered"
        } else {
            "1.2 or older"
        },
        hello.alpn,
        if hello.ech {
            "; ECH extension: if not GREASE, the name is the outer one"
        } else {
            ""
        },
        if namespace.is_empty() { "" } else { "." },
    );
}

/// Sets each non-empty value as connection filter state.
fn set_states(host: &mut dyn StreamHost, states: &[(&str, &str)]) {
    for (key, value) in states {
        if !value.is_empty() && host.set_filter_state(key, value.as_bytes()).is_err() {
            host.increment(Counter::HostError);
        }
    }
}
