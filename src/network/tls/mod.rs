//! TLS in the network position: a connection that begins with a ClientHello (an app's own
//! HTTPS call, proxied at TCP level by its sidecar) is named by its server name, with the
//! same ServiceEntry matcher the HTTP positions use. No byte is changed; the filter holds a
//! ClientHello cut off at the end of a read until its rest arrives (the server cannot
//! answer before either), and is out of the data path once it is read.

pub mod client_hello;
#[cfg(test)]
mod tests;

use super::{Leave, StreamHost, Verdict};
use crate::config::Config;
use crate::external::Destination;
use crate::filter::{
    Counter, STATE_EXTERNAL_HOST, STATE_SERVICE_ENTRY, STATE_SERVICE_ENTRY_NAMESPACE,
    STATE_TLS_ALPN, UNREGISTERED,
};
use client_hello::{ClientHello, Scan};

#[derive(Debug)]
enum State {
    /// The connection's first bytes, as far as they were read.
    Reading(Vec<u8>),
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
            state: State::Reading(seen),
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
        let State::Reading(mut seen) = std::mem::replace(&mut self.state, State::Done) else {
            return Verdict::Continue;
        };
        if len < seen.len() {
            // Bytes held are gone: nothing this filter knows of does that.
            return self.leave(host, Leave::Unsure);
        }
        loop {
            let want = match client_hello::scan(&seen) {
                Scan::Complete(hello) => {
                    self.held_since = None;
                    name(host, config, &hello);
                    return Verdict::Continue;
                }
                Scan::Bad => return self.leave(host, Leave::Tls),
                Scan::Partial { want } => want,
            };
            // Only up to the end of the record that is cut off, and never more than the
            // connection's buffer limit: nothing past the ClientHello is copied in.
            let limit = config.limits.max_held_bytes;
            let cap = want.min(len).min(limit);
            if seen.len() < cap {
                match host.read_downstream(seen.len(), cap - seen.len()) {
                    Ok(more) if !more.is_empty() => seen.extend_from_slice(&more),
                    _ => return self.leave(host, Leave::HostError),
                }
                continue;
            }
            // Holding more than the connection's buffer limit would stall it.
            if seen.len() >= limit {
                return self.leave(host, Leave::TooLarge);
            }
            if end_of_stream {
                return self.leave(host, Leave::Tls);
            }
            let now = host.now_nanos();
            let since = *self.held_since.get_or_insert(now);
            if now.saturating_sub(since) / 1_000_000 >= config.limits.held_head_timeout_ms {
                // Nothing will read this connection on: the server waits for the rest too.
                host.increment(Counter::NetworkLeft(Leave::SlowHead));
                host.increment(Counter::NetworkClosed);
                self.held_since = None;
                return Verdict::Close;
            }
            self.state = State::Reading(seen);
            return Verdict::Pause;
        }
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
    let Some(server_name) = hello.server_name.as_deref() else {
        host.increment(Counter::NetworkTlsNoServerName);
        log::debug!(
            "tracejoin: TLS connection without a server name{}",
            if hello.server_name_sent {
                " (not a DNS name)"
            } else {
                ""
            }
        );
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
    let destination = external
        .matcher
        .classify_connection(server_name, port, chain.as_deref());
    let entry = match destination {
        Destination::Service(i) => external.matcher.service(i),
        Destination::Unregistered | Destination::Internal => None,
    };
    let (state_name, namespace) = match (destination, entry) {
        (Destination::Service(i), Some(s)) => {
            host.increment(Counter::ExternalTls(i));
            (s.name.as_str(), Some(s.namespace.as_str()))
        }
        (Destination::Unregistered, _) => {
            host.increment(Counter::UnregisteredTls);
            host.note_unregistered_tls(server_name, port, &hello.alpn);
            (UNREGISTERED, None)
        }
        _ => {
            log::debug!(
                "tracejoin: TLS connection to {server_name}:{} (ALPN {}): not an external service",
                port.unwrap_or(0),
                hello.alpn
            );
            return;
        }
    };
    let states = [
        (STATE_SERVICE_ENTRY, state_name),
        (STATE_SERVICE_ENTRY_NAMESPACE, namespace.unwrap_or_default()),
        (STATE_EXTERNAL_HOST, server_name),
        (STATE_TLS_ALPN, hello.alpn.as_str()),
    ];
    for (key, value) in states {
        if !value.is_empty() && host.set_filter_state(key, value.as_bytes()).is_err() {
            host.increment(Counter::HostError);
        }
    }
    log::debug!(
        "tracejoin: TLS connection to {server_name}:{} (ALPN {}{}): ServiceEntry {state_name}{}{}",
        port.unwrap_or(0),
        hello.alpn,
        if hello.ech { ", ECH: outer name" } else { "" },
        if namespace.is_some() { "." } else { "" },
        namespace.unwrap_or_default()
    );
}
