"""The Envoys the corpus goes through: tracejoin's position, Envoy's tracer, the plugin config."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    name: str
    position: str
    tracer: str
    plugin_config: dict

    @property
    def connection_per_case(self):
        """In front of the HCM tracejoin leaves a connection alone for good after framing it
        cannot follow (by design), so each case gets a connection of its own there."""
        return self.position.startswith("network")

    @property
    def writes_every_format(self):
        """tracejoin writes (or Envoy injects, then tracejoin copies) every format present:
        no tracer, or the upstream position."""
        return self.tracer == "none" or self.position == "upstream"


SCENARIOS = (
    # Every format written, so every renderer meets the corpus.
    Scenario("downstream-none", "downstream", "none",
             {"position": "downstream", "tracer": "none",
              "propagate": ["tracecontext", "b3", "b3multi", "jaeger", "datadog", "xray", "ottrace"]}),
    Scenario("upstream-zipkin", "upstream", "zipkin", {"position": "upstream", "tracer": "zipkin"}),
    Scenario("downstream-opentelemetry", "downstream", "opentelemetry", {"position": "downstream", "tracer": "opentelemetry"}),
    # The all-WasmPlugin deployment: tracejoin in front of the tracer and behind it. Heads the
    # network filter leaves byte for byte (framing it will not touch, which Envoy may still
    # accept) are repaired by the HTTP filter behind it.
    Scenario("network+downstream-zipkin", "network+downstream", "zipkin", {"position": "downstream", "tracer": "zipkin"}),
    Scenario(
        "network+downstream-opentelemetry", "network+downstream", "opentelemetry",
        {"position": "downstream", "tracer": "opentelemetry"},
    ),
    # Envoy's Datadog tracer, after which tracejoin runs, and in front of and behind which.
    Scenario("upstream-datadog", "upstream", "datadog", {"position": "upstream", "tracer": "datadog"}),
    Scenario("network+downstream-datadog", "network+downstream", "datadog", {"position": "downstream", "tracer": "datadog"}),
)
