"""Generators for the Istio kit in istio/: external_services from ServiceEntries, pinned
manifests, the vendored CRD schemas."""
