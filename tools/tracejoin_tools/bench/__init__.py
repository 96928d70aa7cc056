"""Load runs: tracejoin against its peers (`make bench`) and the soak (`make soak`)."""
