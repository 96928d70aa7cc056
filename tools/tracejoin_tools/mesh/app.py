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
    EGRESS_PROTOCOL          http1 (default) | http2: calls to the sidecar over h2c (HTTP/2
                             with prior knowledge; httpx with h2)
    INVENTORY_GRPC           set (the gRPC service's authority, inventory-grpc:50051): the
                             character route also calls /inventory.Inventory/GetItems through
                             the outbound sidecar (grpcio's aio client, instrumented)
    KAKAO_API_URL            set (auth-api): the login also reads the Kakao user profile,
                             GET https://kapi.kakao.com/v2/user/me in the app's own TLS, from
                             this URL (the sidecar's outbound TLS listener; in a pod,
                             https://kapi.kakao.com), with SNI and Host kapi.kakao.com
    KAKAO_API_CA             the CA file that call verifies the server's certificate against
                             (default: the system's)

Run: python -m tracejoin_tools.mesh.app PORT. It imports nothing from the package, so the
native runner and the Docker image (tools/Dockerfile.mesh-app) also run it as a file. The
Node.js app (tools/mesh-node/app.js, on the OpenTelemetry JavaScript SDK) serves the same
routes with the same outbound calls (but for the gRPC one).
"""

import os
import ssl
import sys

import httpx
import uvicorn
from fastapi import FastAPI, Request

APP_NAME = os.environ.get("APP_NAME", "auth-api")
EGRESS_URL = os.environ.get("EGRESS_URL", "http://127.0.0.1:15001")
HTTP2 = os.environ.get("EGRESS_PROTOCOL", "http1") == "http2"
INVENTORY_GRPC = os.environ.get("INVENTORY_GRPC", "")
KAKAO_API_URL = os.environ.get("KAKAO_API_URL", "")
KAKAO_API_CA = os.environ.get("KAKAO_API_CA") or None
KAKAO_API_HOST = "kapi.kakao.com"

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
    if INVENTORY_GRPC:
        from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient

        # Wraps grpc.aio's channel constructors: every channel made after this traces its calls.
        GrpcAioInstrumentorClient().instrument()


def egress():
    """A client for the outbound sidecar: HTTP/1.1, or h2c with prior knowledge."""
    return httpx.AsyncClient(base_url=EGRESS_URL, timeout=5, http1=not HTTP2, http2=HTTP2)


@app.get("/healthz")
async def healthz():
    return {"app": APP_NAME}


async def kakao_user():
    """GET https://kapi.kakao.com/v2/user/me in the app's own TLS (HTTP/1.1): the connection
    goes to KAKAO_API_URL, the ClientHello names kapi.kakao.com (httpx's `sni_hostname`
    extension) and the certificate is verified against that name and KAKAO_API_CA. Returns the
    status."""
    verify = ssl.create_default_context(cafile=KAKAO_API_CA)
    async with httpx.AsyncClient(base_url=KAKAO_API_URL, verify=verify, timeout=5) as client:
        user = await client.get(
            "/v2/user/me",
            headers={"host": KAKAO_API_HOST, "authorization": "Bearer demo"},
            extensions={"sni_hostname": KAKAO_API_HOST},
        )
    return user.status_code


@app.post("/api/v1/auth/kakao/callback")
async def kakao_callback(request: Request):
    """Exchanges the OAuth code with Kakao (an external host), reads the user's Kakao profile
    over HTTPS (KAKAO_API_URL set), then asks profile-api."""
    result = {}
    async with egress() as client:
        token = await client.post("/oauth/token", headers={"host": "kauth.kakao.com"}, data={"code": "demo"})
        result["token_status"] = token.status_code
        if KAKAO_API_URL:
            result["user_status"] = await kakao_user()
        profile = await client.get("/api/v1/profiles/me", headers={"host": "profile-api:8080"})
        result["profile_status"] = profile.status_code
    return result


@app.get("/api/v1/profiles/me")
async def my_profile():
    async with egress() as client:
        character = await client.get("/api/v1/characters/me", headers={"host": "character-api:8080"})
    return {"profile": "demo-user", "character_status": character.status_code}


@app.get("/api/v1/characters/me")
async def my_character():
    character = {"name": "demo-character", "level": 7}
    if INVENTORY_GRPC:
        character["inventory_status"] = await inventory()
    return character


async def inventory():
    """One unary gRPC call to the inventory service through the outbound sidecar, which
    routes it by its authority; raw bytes, no generated code. Returns the gRPC status name."""
    import grpc

    target = EGRESS_URL.partition("://")[2]
    async with grpc.aio.insecure_channel(target, options=[("grpc.default_authority", INVENTORY_GRPC)]) as channel:
        try:
            await channel.unary_unary("/inventory.Inventory/GetItems")(b"{}", timeout=5)
        except grpc.aio.AioRpcError as e:
            return e.code().name
    return grpc.StatusCode.OK.name


setup_tracing()

if __name__ == "__main__":
    uvicorn.run(app, host=os.environ.get("APP_HOST", "127.0.0.1"), port=int(sys.argv[1]), log_level="warning")
