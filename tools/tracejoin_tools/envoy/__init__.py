"""A real Envoy on loopback: the harness, the echo upstream, trace-header readers, the shipped
configs made local, and the one-hop demos."""
