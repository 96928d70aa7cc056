"""A demo app of the system tracejoin serves: FastAPI with the OpenTelemetry Python SDK
(BatchSpanProcessor, OTLP/HTTP export, FastAPI and httpx instrumentation), configured the way
the real apps are, by environment:

    APP_NAME                 auth-api | character-api (or profile-api: any role of the mesh)
    OTEL_ENABLED             false turns tracing off
    OTEL_SAMPLING_RATE       parent-based ratio sampler (default 1.0)
    OTEL_PROPAGATORS         read by the SDK itself (default tracecontext,baggage)
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   where spans go (the collector's /v1/traces)
    EGRESS_URL               the app's outbound sidecar; calls carry the logical Host
                             (what iptables redirection gives a pod in Istio)

Run: python -m tracejoin_tools.mesh.app PORT. It imports nothing from the package, so the
native runner and the Docker image (tools/Dockerfile.mesh-app) also run it as a file. The
Node.js app (tools/mesh-node/app.js, on the OpenTelemetry JavaScript SDK) serves the same
routes with the same outbound calls.
"""

import os
import sys

import httpx
import uvicorn
from fastapi import FastAPI, Request

APP_NAME = os.environ.get("APP_NAME", "auth-api")
EGRESS_URL = os.environ.get("EGRESS_URL", "http://127.0.0.1:15001")

app = FastAPI(title=APP_NAME)


def setup_tracing():
    if os.environ.get("OTEL_ENABLED", "true").lower() == "false":
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
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
    FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])
    HTTPXClientInstrumentor().instrument()


@app.get("/healthz")
async def healthz():
    return {"app": APP_NAME}


@app.post("/api/v1/auth/kakao/callback")
async def kakao_callback(request: Request):
    """Exchanges the OAuth code with Kakao (an external host), then asks profile-api."""
    async with httpx.AsyncClient(base_url=EGRESS_URL, timeout=5) as client:
        token = await client.post("/oauth/token", headers={"host": "kauth.kakao.com"}, data={"code": "demo"})
        profile = await client.get("/api/v1/profiles/me", headers={"host": "profile-api:8080"})
    return {"token_status": token.status_code, "profile_status": profile.status_code}


@app.get("/api/v1/profiles/me")
async def my_profile():
    async with httpx.AsyncClient(base_url=EGRESS_URL, timeout=5) as client:
        character = await client.get("/api/v1/characters/me", headers={"host": "character-api:8080"})
    return {"profile": "demo-user", "character_status": character.status_code}


@app.get("/api/v1/characters/me")
async def my_character():
    return {"name": "demo-character", "level": 7}


setup_tracing()

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ.get("APP_HOST", "127.0.0.1"), port=int(sys.argv[1]), log_level="warning")
