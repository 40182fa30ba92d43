// Export one small trace to an otel-ai daemon with the official OpenTelemetry JS SDK exporters.
//
//   node export.mjs ENDPOINT PROTOCOL [COMPRESSION]
//     ENDPOINT     gRPC: http://127.0.0.1:4317   HTTP: http://127.0.0.1:4318 (/v1/traces is appended)
//                  or "env": use OTEL_EXPORTER_OTLP_ENDPOINT / _COMPRESSION / ... instead
//     PROTOCOL     grpc | http/protobuf | http/json
//     COMPRESSION  none (default) | gzip   (ignored with "env")
//
// Prints {"trace_id", "remote_parent_id", "server_span_id", "client_span_id", "server_start_ns",
// "client_start_ns"} as JSON on stdout; exits 1 when the daemon did not acknowledge every span.
// The span contents are fixed here and asserted field by field in tests/system/test_sdk_js.py:
// change both together.

import { randomBytes } from 'node:crypto';

import { SpanKind, SpanStatusCode, TraceFlags, context, createTraceState, trace } from '@opentelemetry/api';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

const [endpoint, protocol, compression = 'none'] = process.argv.slice(2);
if (!endpoint || !protocol) {
  process.stderr.write('usage: node export.mjs ENDPOINT grpc|http/protobuf|http/json [none|gzip]\n');
  process.exit(2);
}

// ENDPOINT "env": the exporter is built without options and configures itself from the standard
// OTEL_EXPORTER_OTLP_* environment variables, as an application using them would.
function makeExporter() {
  const fromEnv = endpoint === 'env';
  const opts = (url) => (fromEnv ? undefined : { compression, timeoutMillis: 10_000, url });
  switch (protocol) {
    case 'grpc':
      return new GrpcExporter(opts(endpoint));
    case 'http/protobuf':
      return new ProtoExporter(opts(`${endpoint}/v1/traces`));
    case 'http/json':
      return new JsonExporter(opts(`${endpoint}/v1/traces`));
    default:
      process.stderr.write(`unknown protocol ${protocol}\n`);
      process.exit(2);
  }
}

// Wraps the exporter to record every export result: the SDK only logs failures.
class RecordingExporter {
  constructor(inner) {
    this.inner = inner;
    this.results = [];
  }
  export(spans, done) {
    this.inner.export(spans, (result) => {
      this.results.push(result);
      done(result);
    });
  }
  forceFlush() {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
  shutdown() {
    return this.inner.shutdown();
  }
}

const hex = (n) => randomBytes(n).toString('hex');
// Times are fixed relative to now, to the nanosecond, so the test can check them exactly.
const nowMs = Date.now();
const baseSec = Math.floor(nowMs / 1000) - 5;
const serverStart = [baseSec, 123_456_789];
const clientStart = [baseSec, 200_000_001];
const eventAt = (ns) => [baseSec, ns];
const clientEnd = [baseSec, 450_000_002]; // 250,000,001 ns
const serverEnd = [baseSec + 1, 23_456_789]; // 900,000,000 ns
const toNs = ([s, ns]) => (BigInt(s) * 1_000_000_000n + BigInt(ns)).toString();

const exporter = new RecordingExporter(makeExporter());
const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({
    'service.name': 'js-checkout',
    'service.version': '2.4.1',
    'deployment.environment.name': 'e2e',
    'host.cpus': 8,
    'app.ratio': 0.75,
    'app.canary': false,
    'app.regions': ['eu-west-1', 'us-east-2'],
  }),
  spanLimits: { eventCountLimit: 3 },
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const tracer = provider.getTracer('otel-ai-js-e2e', '1.2.3', {
  schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
});

// The SERVER span continues a remote caller's context (as a traceparent header would give it),
// so the trace id, the remote parent id, the trace state and the is-remote flag are all exercised.
const remote = {
  traceId: hex(16),
  spanId: hex(8),
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
  traceState: createTraceState('vendor=abc,other=1'),
};
const linked = {
  traceId: hex(16),
  spanId: hex(8),
  traceFlags: TraceFlags.SAMPLED,
  traceState: createTraceState('linked=yes'),
};

const server = tracer.startSpan(
  'GET /api/checkout',
  {
    kind: SpanKind.SERVER,
    startTime: serverStart,
    attributes: {
      'http.request.method': 'GET',
      'http.response.status_code': 503,
      'app.big_int': 4_294_967_296_123, // > 2^32, < 2^53: an int64 JavaScript can express exactly
      'app.negative': -17,
      'app.ratio': 0.125,
      'app.retried': true,
      'app.unicode': 'héllo ✓ "quoted"',
      'app.empty': '',
      'app.tags': ['a', 'b', 'c'],
      'app.codes': [200, 404, 503],
      'app.weights': [0.5, 1.25],
      'app.flags': [true, false],
      'app.sparse': ['x', null, 'z'],
    },
    links: [{ context: linked, attributes: { 'link.reason': 'retry-of', 'link.attempt': 2 } }],
  },
  trace.setSpanContext(context.active(), remote),
);
server.addEvent('request.received', { 'net.peer.port': 51234, 'net.sock.family': 'inet' }, eventAt(150_000_000));

const client = tracer.startSpan(
  'SELECT orders',
  {
    kind: SpanKind.CLIENT,
    startTime: clientStart,
    attributes: { 'db.system.name': 'postgresql', 'db.query.text': 'SELECT * FROM orders WHERE id = $1' },
  },
  trace.setSpan(context.active(), server),
);
// Four events with eventCountLimit 3: the SDK drops the oldest and counts it.
client.addEvent('dropped.first', {}, eventAt(210_000_000));
client.addEvent('retry', { attempt: 1, backoff_s: 0.05 }, eventAt(220_000_000));
client.addEvent('retry', { attempt: 2, backoff_s: 0.1 }, eventAt(230_000_000));
client.addEvent('exception', { 'exception.type': 'DeadlockDetected', 'exception.escaped': false }, eventAt(240_000_000));
client.setStatus({ code: SpanStatusCode.ERROR, message: 'deadlock detected' });
client.end(clientEnd);

server.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream failed' });
server.end(serverEnd);

// A root span of its own trace: no parent id, no trace state (JSON omits both fields).
const rootStart = [baseSec, 300_000_000];
const root = tracer.startSpan('cache.warmup', {
  kind: SpanKind.INTERNAL,
  root: true,
  startTime: rootStart,
  attributes: { 'cache.entries': 0 },
});
root.end([baseSec, 300_000_500]); // 500 ns

try {
  await provider.forceFlush();
  await provider.shutdown();
} catch (err) {
  process.stderr.write(`flush/shutdown failed: ${err?.stack ?? err}\n`);
  process.exit(1);
}
const failed = exporter.results.filter((r) => r.code !== 0);
if (exporter.results.length === 0 || failed.length > 0) {
  const why = failed.map((r) => String(r.error?.stack ?? r.error)).join('\n') || 'nothing exported';
  process.stderr.write(`export failed (${protocol}, ${compression}):\n${why}\n`);
  process.exit(1);
}
process.stdout.write(
  `${JSON.stringify({
    trace_id: remote.traceId,
    remote_parent_id: remote.spanId,
    server_span_id: server.spanContext().spanId,
    client_span_id: client.spanContext().spanId,
    linked_trace_id: linked.traceId,
    linked_span_id: linked.spanId,
    server_start_ns: toNs(serverStart),
    server_end_ns: toNs(serverEnd),
    client_start_ns: toNs(clientStart),
    client_end_ns: toNs(clientEnd),
    root_trace_id: root.spanContext().traceId,
    root_span_id: root.spanContext().spanId,
    root_start_ns: toNs(rootStart),
    exports: exporter.results.length,
  })}\n`,
);
