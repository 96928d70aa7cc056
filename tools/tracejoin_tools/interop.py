"""The interop matrix's propagators: the real SDK propagators from PyPI, each as the tracejoin
format it corresponds to, a way to inject a span context with it and a way to extract one
(tests/integration/test_interop.py, docs/interop.md).

Each propagator is used as an app would use it: OpenTelemetry's through its TextMapPropagator
`inject`/`extract` with a non-recording span in the context, ddtrace's through
`HTTPPropagator` with the Datadog style only (no tracer, no agent, nothing patched).
"""

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from ddtrace import config as _dd_config
from ddtrace.propagation.http import HTTPPropagator
from ddtrace.trace import Context as DatadogContext
from opentelemetry import trace as otel_trace
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.propagators.jaeger import JaegerPropagator
from opentelemetry.propagators.ot_trace import OTTracePropagator
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


@contextlib.contextmanager
def _datadog_style_only():
    """ddtrace's styles as DD_TRACE_PROPAGATION_STYLE=datadog sets them, for one call. The
    variable is read once, when ddtrace is imported, and ddtrace's own pytest plugin (its
    pytest11 entry point) imports it before any test module could set it; its default
    (datadog,tracecontext,baggage, or OTEL_PROPAGATORS) would make the Datadog reader read
    traceparent too. So the two settings the variable fills are set around each call."""
    saved = _dd_config._propagation_style_inject, _dd_config._propagation_style_extract
    _dd_config._propagation_style_inject, _dd_config._propagation_style_extract = ["datadog"], ["datadog"]
    try:
        yield
    finally:
        _dd_config._propagation_style_inject, _dd_config._propagation_style_extract = saved


MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Read:
    """What a reader extracted: the ids as integers and the sampling decision."""

    trace_id: int
    span_id: int
    sampled: bool


@dataclass(frozen=True)
class Propagator:
    """One row and column of the matrix."""

    name: str  # as the docs' table names it
    format: str  # tracejoin's `extract`/`propagate` name
    package: str  # where it comes from (PyPI)
    trace_bits: int  # trace id bits the format always carries (64: the low half)
    inject: Callable[[int, int, bool], list]  # (trace id, span id, sampled) -> [(name, value)]
    extract: Callable[[list], Read | None]  # [(name, value)] -> what the reader continues


class _CaseInsensitiveGetter(Getter):
    """Header names as Envoy delivers them (lowercase); the X-Ray propagator asks for
    `X-Amzn-Trace-Id`. Repeated headers are given to the propagator as the list they are."""

    def get(self, carrier, key):
        values = [v for n, v in carrier if n.lower() == key.lower()]
        return values or None

    def keys(self, carrier):
        return [n for n, _ in carrier]


_GETTER = _CaseInsensitiveGetter()


def _otel(propagator):
    def inject(trace_id, span_id, sampled):
        context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1 if sampled else 0))
        carrier = {}
        propagator.inject(carrier, context=otel_trace.set_span_in_context(NonRecordingSpan(context)))
        return list(carrier.items())

    def extract(headers):
        context = otel_trace.get_current_span(propagator.extract(headers, getter=_GETTER)).get_span_context()
        if not context.is_valid:
            return None
        return Read(context.trace_id, context.span_id, context.trace_flags.sampled)

    return inject, extract


def _datadog_inject(trace_id, span_id, sampled):
    headers = {}
    # A Context with its sampling priority set needs no tracer to inject (1: auto keep, 0: auto reject).
    with _datadog_style_only():
        HTTPPropagator.inject(DatadogContext(trace_id=trace_id, span_id=span_id, sampling_priority=1 if sampled else 0), headers)
    return list(headers.items())


def _datadog_extract(headers):
    joined = {}
    for name, value in headers:
        joined[name.lower()] = f"{joined[name.lower()]},{value}" if name.lower() in joined else value
    with _datadog_style_only():
        context = HTTPPropagator.extract(joined)
    if not context.trace_id or not context.span_id:
        return None
    return Read(context.trace_id, context.span_id, (context.sampling_priority or 0) > 0)


def _row(name, fmt, package, bits, inject_extract):
    return Propagator(name, fmt, package, bits, *inject_extract)


PROPAGATORS = (
    _row("tracecontext", "tracecontext", "opentelemetry-api", 128, _otel(TraceContextTextMapPropagator())),
    _row("b3 single", "b3", "opentelemetry-propagator-b3", 128, _otel(B3SingleFormat())),
    _row("b3 multi", "b3multi", "opentelemetry-propagator-b3", 128, _otel(B3MultiFormat())),
    _row("jaeger", "jaeger", "opentelemetry-propagator-jaeger", 128, _otel(JaegerPropagator())),
    _row("aws-xray", "xray", "opentelemetry-propagator-aws-xray", 128, _otel(AwsXRayPropagator())),
    # OTTracePropagator writes the low 64 bits of the trace id (ot-tracer-traceid: 16 hex).
    _row("ot-trace", "ottrace", "opentelemetry-propagator-ot-trace", 64, _otel(OTTracePropagator())),
    # x-datadog-trace-id is the low 64 bits in decimal; ddtrace writes the high half of a
    # 128-bit id as `_dd.p.tid` in x-datadog-tags and reads it back, so the
    # matrix holds it to all 128 bits (a 64-bit Datadog client would carry the low half only).
    Propagator("ddtrace", "datadog", "ddtrace", 128, _datadog_inject, _datadog_extract),
)
FORMATS = tuple(p.format for p in PROPAGATORS)


def fresh_ids(rng=random):
    """A new trace and span id. The trace id starts with the time in seconds, as an X-Ray id's
    first 32 bits must (epoch), and is otherwise random, so it is valid in every format. The
    span id and the trace id's low half never start with a 0 digit: OTTracePropagator writes
    its ids without leading zeros (`hex(id)[2:]`), which would make its row depend on the
    draw (the short form is the codec tests' matter, not the matrix's)."""
    low = rng.randrange(1 << 60, 1 << 64)
    trace_id = (int(time.time()) & 0xFFFFFFFF) << 96 | rng.getrandbits(32) << 64 | low
    return trace_id, rng.randrange(1 << 60, 1 << 64)


def same_trace(a, b, bits):
    """Trace ids compared at `bits` (64: the low half, what a 64-bit format carries)."""
    mask = (1 << bits) - 1
    return (a & mask) == (b & mask)


def judge(reader, got, trace_id, parents, sampled, bits):
    """What a reader got wrong, or None: the trace id compared at `bits`, the parent one of
    `parents` (the writer's span, or Envoy's where its tracer added one), the decision."""
    if got is None:
        return "reads nothing"
    wrong = []
    if not same_trace(got.trace_id, trace_id, bits):
        wrong.append("another trace")
    if got.span_id not in parents:
        wrong.append("another parent")
    if got.sampled != sampled:
        wrong.append("sampled" if got.sampled else "not sampled")
    return ", ".join(wrong) or None
