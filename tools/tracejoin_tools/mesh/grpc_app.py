"""The local mesh's gRPC service (the HTTP/2 variant's inventory-grpc): a grpcio server on the
OpenTelemetry Python SDK (BatchSpanProcessor, OTLP/HTTP export, opentelemetry-instrumentation-grpc's
server interceptor), configured by the same environment as the HTTP app (app.py):

    APP_NAME                 inventory-grpc
    OTEL_ENABLED             false turns tracing off
    OTEL_SAMPLING_RATE       parent-based ratio sampler (default 1.0)
    OTEL_PROPAGATORS         read by the SDK itself (default tracecontext,baggage)
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   where spans go (the collector's /v1/traces)

It serves one unary method, /inventory.Inventory/GetItems, through a generic handler with no
serializers: requests and answers are raw bytes (JSON here), so no .proto is compiled. The
gRPC client is app.py's character-api (INVENTORY_GRPC).

Run: python grpc_app.py PORT. Like app.py it imports nothing from the package.
"""

import asyncio
import json
import os
import signal
import sys

import grpc

APP_NAME = os.environ.get("APP_NAME", "inventory-grpc")
SERVICE = "inventory.Inventory"
METHOD = "GetItems"


def setup_tracing():
    if os.environ.get("OTEL_ENABLED", "true").lower() == "false":
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    ratio = float(os.environ.get("OTEL_SAMPLING_RATE", "1.0"))
    provider = TracerProvider(
        resource=Resource.create({"service.name": APP_NAME}),
        sampler=ParentBased(TraceIdRatioBased(ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    # Wraps grpc.aio.server: every server made after this gets the tracing interceptor.
    GrpcAioInstrumentorServer().instrument()


async def get_items(request, context):
    """The character's items, as JSON bytes (the request's bytes are not read)."""
    return json.dumps({"items": ["sword", "shield"]}).encode()


async def serve(port, host):
    server = grpc.aio.server()
    handlers = {METHOD: grpc.unary_unary_rpc_method_handler(get_items)}  # no serializers: bytes in, bytes out
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    setup_tracing()
    # On SIGTERM the server stops and the interpreter exits normally: the SDK's exit hook
    # flushes what the batch processor holds.
    asyncio.run(serve(int(sys.argv[1]), os.environ.get("APP_HOST", "127.0.0.1")))
