"""tracejoin's test, demo and benchmark tooling (tools/README.md lists the modules)."""
