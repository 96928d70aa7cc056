// The local mesh's app on the OpenTelemetry JavaScript SDK for Node.js: the same routes and
// outbound calls as the Python app (tools/tracejoin_tools/mesh/app.py), configured by the same
// environment:
//
//   APP_NAME                 profile-api (or auth-api | character-api: any role of the mesh)
//   OTEL_ENABLED             false turns tracing off
//   OTEL_SAMPLING_RATE       parent-based ratio sampler (default 1.0)
//   OTEL_PROPAGATORS         read by the SDK itself (NodeSDK; default tracecontext,baggage)
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   where spans go (OTLP/HTTP JSON, the collector's /v1/traces)
//   EGRESS_URL               the app's outbound sidecar; calls carry the logical Host
//   EGRESS_PROTOCOL          http1 (default) | http2: calls to the sidecar over h2c (HTTP/2 with
//                            prior knowledge; Node's http2 module)
//   KAKAO_API_URL            set (auth-api): the login also reads the Kakao user profile, GET
//                            https://kapi.kakao.com/v2/user/me in the app's own TLS, from this
//                            URL (the sidecar's outbound TLS listener), SNI and Host kapi.kakao.com
//   KAKAO_API_CA             the CA file that call verifies the certificate against (default:
//                            Node's bundled CAs)
//
// The HTTP/2 variant's gRPC call (INVENTORY_GRPC) is the Python app's alone: this app ignores it.
//
// Run: node app.js PORT (after `npm ci` in this folder; `make setup` does it).
'use strict';

const APP_NAME = process.env.APP_NAME || 'profile-api';
const EGRESS_URL = new URL(process.env.EGRESS_URL || 'http://127.0.0.1:15001');

// NodeSDK also starts log and metric exporters when their variables are unset; the mesh
// collects traces only.
process.env.OTEL_LOGS_EXPORTER ??= 'none';
process.env.OTEL_METRICS_EXPORTER ??= 'none';

let sdk = null;
if ((process.env.OTEL_ENABLED || 'true').toLowerCase() !== 'false') {
  // Started before `http` is loaded, so the instrumentation wraps the module the app uses.
  const { NodeSDK, tracing } = require('@opentelemetry/sdk-node');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
  const ratio = Number(process.env.OTEL_SAMPLING_RATE || '1.0');
  sdk = new NodeSDK({
    serviceName: APP_NAME,
    sampler: new tracing.ParentBasedSampler({ root: new tracing.TraceIdRatioBasedSampler(ratio) }),
    // No textMapPropagator: NodeSDK builds it from OTEL_PROPAGATORS, as the Python SDK does.
    traceExporter: new OTLPTraceExporter(),
    instrumentations: [new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => req.url === '/healthz' })],
  });
  sdk.start();
}

const http = require('http');
const http2 = require('http2');
const https = require('https');
const fs = require('fs');
const { context, propagation, trace, SpanKind, SpanStatusCode } = require('@opentelemetry/api');

const HTTP2 = (process.env.EGRESS_PROTOCOL || 'http1') === 'http2';

// One call through the outbound sidecar, with the Host the app means (what iptables
// redirection gives a pod in Istio). Resolves to the response status.
function egress(method, path, host, body) {
  return new Promise((resolve, reject) => {
    const headers = { host };
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request(
      { hostname: EGRESS_URL.hostname, port: EGRESS_URL.port, method, path, headers, timeout: 5000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${host}${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

// The same call over h2c (prior knowledge). @opentelemetry/instrumentation-http does not cover
// Node's http2 module, so the client span is made here with the API, named and tagged as that
// instrumentation names and tags its own, and the context is injected through the SDK's
// propagator (OTEL_PROPAGATORS), as the instrumentation does for http.
const http2Tracer = trace.getTracer('http2');
function egressHttp2(method, path, host, body) {
  const span = http2Tracer.startSpan(method, {
    kind: SpanKind.CLIENT,
    attributes: { 'http.method': method, 'http.url': `${EGRESS_URL.origin}${path}`, 'http.flavor': '2.0' },
  });
  const headers = { ':method': method, ':path': path, ':authority': host };
  if (body !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers['content-length'] = Buffer.byteLength(body);
  }
  propagation.inject(trace.setSpan(context.active(), span), headers);
  return new Promise((resolve, reject) => {
    const session = http2.connect(EGRESS_URL.origin);
    let done = false;
    const finish = (err, status) => {
      if (done) return;
      done = true;
      if (status !== undefined) span.setAttribute('http.status_code', status);
      if (err || status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: err ? String(err) : undefined });
      if (err) span.recordException(err);
      span.end();
      session.close();
      if (err) {
        session.destroy();
        reject(err);
      } else resolve(status);
    };
    session.on('error', (err) => finish(err));
    const req = session.request(headers);
    let status;
    req.setTimeout(5000, () => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      finish(new Error(`${method} ${host}${path} timed out`));
    });
    req.on('response', (head) => {
      status = head[':status'];
    });
    req.on('error', (err) => finish(err));
    req.on('end', () => finish(null, status));
    req.resume();
    req.end(body);
  });
}

const call = HTTP2 ? egressHttp2 : egress;

// GET https://kapi.kakao.com/v2/user/me in the app's own TLS (HTTP/1.1, the http
// instrumentation's client span): the connection goes to KAKAO_API_URL, the ClientHello names
// kapi.kakao.com (`servername`, which Node also checks the certificate against), the
// certificate chains to KAKAO_API_CA. Resolves to the status.
const KAKAO_API_URL = process.env.KAKAO_API_URL ? new URL(process.env.KAKAO_API_URL) : null;
const KAKAO_API_CA = process.env.KAKAO_API_CA ? fs.readFileSync(process.env.KAKAO_API_CA) : undefined;
const KAKAO_API_HOST = 'kapi.kakao.com';
function kakaoUser() {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        hostname: KAKAO_API_URL.hostname,
        port: KAKAO_API_URL.port || 443,
        method: 'GET',
        path: '/v2/user/me',
        headers: { host: KAKAO_API_HOST, authorization: 'Bearer demo' },
        servername: KAKAO_API_HOST,
        ca: KAKAO_API_CA,
        agent: false,
        timeout: 5000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${KAKAO_API_HOST}/v2/user/me timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const routes = {
  'GET /healthz': async () => ({ app: APP_NAME }),
  // Exchanges the OAuth code with Kakao (an external host), reads the user's Kakao profile
  // over HTTPS (KAKAO_API_URL set), then asks profile-api.
  'POST /api/v1/auth/kakao/callback': async () => {
    const result = {};
    result.token_status = await call('POST', '/oauth/token', 'kauth.kakao.com', 'code=demo');
    if (KAKAO_API_URL) result.user_status = await kakaoUser();
    result.profile_status = await call('GET', '/api/v1/profiles/me', 'profile-api:8080');
    return result;
  },
  'GET /api/v1/profiles/me': async () => {
    const character = await call('GET', '/api/v1/characters/me', 'character-api:8080');
    return { profile: 'demo-user', character_status: character };
  },
  'GET /api/v1/characters/me': async () => ({ name: 'demo-character', level: 7 }),
};

function reply(res, status, value) {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const route = routes[`${req.method} ${req.url.split('?')[0]}`];
  req.resume(); // the routes read no body
  if (!route) {
    reply(res, 404, { detail: 'Not Found' });
    return;
  }
  route().then(
    (value) => reply(res, 200, value),
    (err) => reply(res, 502, { detail: String(err) }),
  );
});

server.listen(Number(process.argv[2] || 8080), process.env.APP_HOST || '127.0.0.1');

// Flush what the batch processor holds before going.
function stop() {
  server.close();
  const done = () => process.exit(0);
  if (!sdk) return done();
  sdk.shutdown().then(done, done);
  setTimeout(done, 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
