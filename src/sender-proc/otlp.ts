// The `otlp` reporter (docs/reporters.md): records as OpenTelemetry log
// records, batched into ExportLogsServiceRequest messages
// (proto/opentelemetry/, vendored), sent over OTLP/HTTP (protobuf, POST
// {endpoint}{path}) or OTLP/gRPC (LogsService/Export). Each record is one
// LogRecord: body = the record's JSON text (a string AnyValue, the line the
// file reporter writes without its line feed), attributes = its labels
// (string values, numbers in decimal), time_unix_nano = its capture time,
// observed_time_unix_nano = when its batch opened, event_name = its protocol.
// One resource per reporter: service.name, host.name, otus.task.id,
// otus.node.* (the global config's node metadata) and resource_attributes.
//
// The request is written here by hand into the batch buffer (LogRecords as
// they come; the request, resource and scope header in front when the batch
// closes). Retries follow the OTLP specification (docs/specification.md of
// opentelemetry-proto, "Failures"): HTTP 429, 502, 503, 504 and connection
// failures are retried, honouring Retry-After, else with exponential
// backoff; any other status fails the batch (counted as `http_<status>`);
// gRPC CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and
// DATA_LOSS are retried, RESOURCE_EXHAUSTED only with a RetryInfo (whose
// delay is honoured), any other code fails the batch (counted by code name).
// A partial success's rejected_log_records are counted as `rejected`. Retries
// end at the batch's deadline (timeout_ms): reporter_timeout.

import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import type * as grpcTypes from '@grpc/grpc-js';
import type { EncodedRecord, PluginContext, PluginDefinition } from '../plugin/types.js';
import { varintSize, writeVarint } from '../pipeline/codec-protobuf.js';
import { LabelKind } from '../pipeline/labels.js';
import { WireFlag } from '../pipeline/wire.js';
import { decimalLength, writeUint } from '../util/bytes.js';
import { OtusError } from '../util/errors.js';
import { BATCHING_SCHEMA, type Batch, type BatchingConfig, BatchingReporter, backoff, readTls, TLS_SCHEMA, type TlsFiles } from './batching.js';
import { channelSetup, importGrpc } from './grpc.js';

type Grpc = typeof grpcTypes;

export interface OtlpReporterConfig extends BatchingConfig {
  protocol: 'http/protobuf' | 'grpc';
  /** http/protobuf: `http(s)://host:port` (path below); grpc: `host:port`. */
  endpoint: string;
  path: string;
  tls?: TlsFiles;
  server_name?: string;
  /** Request headers (http) or metadata (grpc): an API key... */
  headers: Record<string, string>;
  service_name: string;
  resource_attributes: Record<string, string>;
  max_inflight: number;
  retry_initial_ms: number;
  retry_max_ms: number;
}

const EXPORT_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';
/** A response body beyond this is refused (the specification's recommended client limit). */
const MAX_RESPONSE = 4 << 20;
const RETRYABLE_HTTP = new Set([429, 502, 503, 504]);

/** What answered a request: acknowledged (with rejected records), retry after a delay (-1: backoff), or failed by reason. */
type Outcome = { ok: true; rejected: number } | { ok: false; retryMs: number | null; reason: string };

// ---------------------------------------------------------------- encoding

const enc = new TextEncoder();

function lenField(tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + varintSize(body.length) + body.length);
  out[0] = tag;
  out.set(body, writeVarint(out, 1, body.length));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}

/** KeyValue{key, value: AnyValue{string_value}}. */
function keyValue(k: string, v: string): Uint8Array {
  return concat([lenField(0x0a, enc.encode(k)), lenField(0x12, lenField(0x0a, enc.encode(v)))]);
}

/** Resource{attributes} and InstrumentationScope{name, version}, as fields 1 of ResourceLogs and ScopeLogs. */
export function resourceAndScope(attrs: Record<string, string>): { resource: Uint8Array; scope: Uint8Array } {
  const resource = lenField(0x0a, concat(Object.entries(attrs).map(([k, v]) => lenField(0x0a, keyValue(k, v)))));
  const scope = lenField(0x0a, concat([lenField(0x0a, enc.encode('otus')), lenField(0x12, enc.encode('0.1.0'))]));
  return { resource, scope };
}

/** fixed64 nanoseconds of sec.nsec, exactly (sec·1e9 passes 2^53): little-endian at off. */
function writeNanos(b: Uint8Array, off: number, sec: number, nsec: number): void {
  // 1e9 = 0x3b9a·2^16 + 0xca00: every partial product stays below 2^53.
  const x = sec * 0xca00 + nsec;
  const y = sec * 0x3b9a;
  const yh = Math.floor(y / 65536);
  const z = (y - yh * 65536) * 65536 + x;
  const zh = Math.floor(z / 4294967296);
  const lo = z - zh * 4294967296;
  const hi = yh + zh;
  b[off] = lo & 255;
  b[off + 1] = (lo >>> 8) & 255;
  b[off + 2] = (lo >>> 16) & 255;
  b[off + 3] = lo >>> 24;
  b[off + 4] = hi & 255;
  b[off + 5] = (hi >>> 8) & 255;
  b[off + 6] = (hi >>> 16) & 255;
  b[off + 7] = hi >>> 24;
}

function anyStringSize(n: number): number {
  return 1 + varintSize(n) + n;
}

// ---------------------------------------------------------------- reporter

export class OtlpReporter extends BatchingReporter {
  readonly format = 'json' as const;
  private readonly resource: Uint8Array;
  private readonly scope: Uint8Array;
  private readonly transport: Transport;
  private sending = 0;
  /** The last request failed (otus_plugin_health). */
  private failing = false;
  /** observed_time_unix_nano of the open batch's records. */
  private readonly observed = new Uint8Array(8);
  private observedAt = 0;

  constructor(
    readonly config: OtlpReporterConfig,
    ctx: Pick<PluginContext, 'node' | 'taskId' | 'where'>,
    grpc: Grpc | null,
  ) {
    const attrs: Record<string, string> = { 'service.name': config.service_name, 'host.name': ctx.node.hostname ?? os.hostname(), 'otus.task.id': ctx.taskId };
    for (const [k, v] of Object.entries(ctx.node)) if (k !== 'hostname') attrs[`otus.node.${k}`] = v;
    Object.assign(attrs, config.resource_attributes);
    const { resource, scope } = resourceAndScope(attrs);
    // Request, ResourceLogs and ScopeLogs tags and lengths, the resource and the scope.
    super(config, resource.length + scope.length + 3 * 11);
    this.resource = resource;
    this.scope = scope;
    this.transport = grpc !== null ? new GrpcTransport(grpc, config, ctx.where) : new HttpTransport(config, ctx.where);
  }

  protected encode(rec: EncodedRecord): void {
    const now = Date.now();
    if (now !== this.observedAt) {
      this.observedAt = now;
      writeNanos(this.observed, 0, Math.floor(now / 1000), (now % 1000) * 1e6);
    }
    const jl = rec.len - (rec.buf[rec.off + rec.len - 1] === 0x0a ? 1 : 0);
    const meta = rec.meta;
    const w = meta?.wire;
    // LogRecord's size: times, event_name, body, attributes.
    const hasTs = w !== undefined && (w.flags & WireFlag.Ts) !== 0;
    const bodyLen = anyStringSize(jl);
    let n = (hasTs ? 9 : 0) + 9 + 1 + varintSize(bodyLen) + bodyLen;
    const labels = w?.labelCount ?? 0;
    if (w !== undefined) n += anyStringSize(w.protocolLen);
    for (let i = 0; i < labels; i++) {
      const vl = w!.valKind[i] === LabelKind.Uint ? decimalLength(w!.valNum[i]) : w!.valLen[i];
      const av = anyStringSize(vl);
      const kv = anyStringSize(w!.keyLen[i]) + 1 + varintSize(av) + av;
      n += 1 + varintSize(kv) + kv;
    }
    this.ensure(1 + 5 + n);
    const b = this.buf;
    let o = this.pos;
    b[o++] = 0x12; // ScopeLogs.log_records
    o = writeVarint(b, o, n);
    if (hasTs) {
      b[o++] = 0x09; // time_unix_nano, fixed64
      writeNanos(b, o, w!.tsSec, w!.tsNsec);
      o += 8;
    }
    b[o++] = 0x2a; // body
    o = writeVarint(b, o, bodyLen);
    b[o++] = 0x0a; // AnyValue.string_value
    o = writeVarint(b, o, jl);
    o += this.view(rec.buf, 0).copy(b, o, rec.off, rec.off + jl);
    for (let i = 0; i < labels; i++) {
      const num = w!.valKind[i] === LabelKind.Uint;
      const vl = num ? decimalLength(w!.valNum[i]) : w!.valLen[i];
      const kl = w!.keyLen[i];
      const av = anyStringSize(vl);
      b[o++] = 0x32; // attributes
      o = writeVarint(b, o, anyStringSize(kl) + 1 + varintSize(av) + av);
      b[o++] = 0x0a; // KeyValue.key
      o = writeVarint(b, o, kl);
      const kb = w!.keyBuf[i];
      for (let j = 0, ko = w!.keyOff[i]; j < kl; j++) b[o++] = kb[ko + j]!; // short: no view made
      b[o++] = 0x12; // KeyValue.value
      o = writeVarint(b, o, av);
      b[o++] = 0x0a; // AnyValue.string_value
      o = writeVarint(b, o, vl);
      if (num) o = writeUint(b, o, w!.valNum[i]);
      else o += this.view(w!.buf, 1).copy(b, o, w!.valOff[i], w!.valOff[i] + vl);
    }
    b[o++] = 0x59; // observed_time_unix_nano (11), fixed64
    b.set(this.observed, o);
    o += 8;
    if (w !== undefined) {
      b[o++] = 0x62; // event_name (12)
      o = writeVarint(b, o, w.protocolLen);
      o += this.view(w.buf, 1).copy(b, o, w.protocolOff, w.protocolOff + w.protocolLen);
    }
    this.pos = o;
  }

  protected seal(buf: Buffer, room: number, end: number): Buffer {
    // ScopeLogs{scope, log_records...} inside ResourceLogs{resource, scope_logs} inside the request's resource_logs.
    const sl = this.scope.length + (end - room);
    const rl = this.resource.length + 1 + varintSize(sl) + sl;
    let o = room - this.scope.length;
    buf.set(this.scope, o);
    o -= varintSize(sl);
    writeVarint(buf, o, sl);
    buf[--o] = 0x12;
    o -= this.resource.length;
    buf.set(this.resource, o);
    o -= varintSize(rl);
    writeVarint(buf, o, rl);
    buf[--o] = 0x0a;
    return buf.subarray(o, end);
  }


  get healthy(): boolean {
    return !this.failing;
  }

  protected ready(): boolean {
    return this.sending < this.config.max_inflight;
  }

  protected transmit(b: Batch): void {
    this.sending++;
    const timeoutMs = Math.max(100, b.t0 + this.config.timeout_ms - Date.now());
    this.transport.send(b.body, timeoutMs).then((r) => {
      this.sending--;
      this.failing = !r.ok;
      if (r.ok) this.ack(b.seq, r.rejected);
      else {
        this.lastError = r.reason;
        if (r.retryMs === null) this.fail(b.seq, r.reason);
        else this.retry(b.seq, r.retryMs >= 0 ? r.retryMs : backoff(b.attempts, this.config.retry_initial_ms, this.config.retry_max_ms));
      }
      this.pump();
    });
  }

  protected async shutdown(): Promise<void> {
    this.transport.close();
  }
}

// ---------------------------------------------------------------- responses

/** Reads varint-keyed fields of a protobuf message: calls f(field, wiretype, value or [start, end)). */
function fields(b: Uint8Array, start: number, end: number, f: (field: number, v: number, s: number, e: number) => void): boolean {
  let o = start;
  const varint = (): number => {
    let v = 0;
    let m = 1;
    for (;;) {
      if (o >= end) throw new RangeError('truncated');
      const x = b[o++]!;
      v += (x & 0x7f) * m;
      m *= 128;
      if (x < 0x80) return v;
    }
  };
  try {
    while (o < end) {
      const t = varint();
      const wt = t % 8;
      const field = Math.floor(t / 8);
      if (wt === 0) f(field, varint(), 0, 0);
      else if (wt === 2) {
        const n = varint();
        if (o + n > end) return false;
        f(field, -1, o, o + n);
        o += n;
      } else if (wt === 1) o += 8;
      else if (wt === 5) o += 4;
      else return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** ExportLogsServiceResponse.partial_success.rejected_log_records; 0 when absent or malformed. */
export function rejectedOf(b: Uint8Array): number {
  let rejected = 0;
  fields(b, 0, b.length, (f, _v, s, e) => {
    if (f === 1 && s < e) fields(b, s, e, (g, v) => g === 1 && v >= 0 && (rejected = v));
  });
  return rejected;
}

/** The RetryInfo delay (ms) in a google.rpc.Status (grpc-status-details-bin), or null without one. */
export function retryInfoMs(b: Uint8Array): number | null {
  let ms: number | null = null;
  const dec = new TextDecoder();
  fields(b, 0, b.length, (f, _v, s, e) => {
    if (f !== 3 || s >= e) return; // details: Any
    let type = '';
    let vs = 0;
    let ve = 0;
    fields(b, s, e, (g, _w, gs, ge) => {
      if (g === 1) type = dec.decode(b.subarray(gs, ge));
      else if (g === 2) (vs = gs), (ve = ge);
    });
    if (!type.endsWith('/google.rpc.RetryInfo')) return;
    let sec = 0;
    let nanos = 0;
    fields(b, vs, ve, (h, _x, hs, he) => h === 1 && fields(b, hs, he, (k, v) => (k === 1 ? (sec = v) : k === 2 ? (nanos = v) : 0)));
    ms = sec * 1000 + Math.floor(nanos / 1e6);
  });
  return ms;
}

/** Retry-After as milliseconds: a number of seconds or an HTTP date; -1 when absent or unreadable. */
export function retryAfterMs(v: string | undefined, now = Date.now()): number {
  if (v === undefined) return -1;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? -1 : Math.max(0, t - now);
}

// ---------------------------------------------------------------- transports

interface Transport {
  send(body: Buffer, timeoutMs: number): Promise<Outcome>;
  close(): void;
}

class HttpTransport implements Transport {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;
  private readonly headers: Record<string, string>;

  constructor(c: OtlpReporterConfig, where: string) {
    this.url = new URL(c.endpoint.replace(/\/+$/, '') + c.path);
    const secure = this.url.protocol === 'https:';
    if (c.tls !== undefined && !secure) throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${where}.tls: the endpoint ${c.endpoint} is not https://`);
    const pem = c.tls !== undefined ? readTls(c.tls, where) : {};
    this.mod = secure ? https : http;
    // Keep-alive (the specification's SHOULD), one connection per request in flight.
    this.agent = secure
      ? new https.Agent({ keepAlive: true, maxSockets: c.max_inflight, ca: pem.ca, cert: pem.cert, key: pem.key, servername: c.server_name })
      : new http.Agent({ keepAlive: true, maxSockets: c.max_inflight });
    this.headers = { ...c.headers, 'content-type': 'application/x-protobuf' };
  }

  send(body: Buffer, timeoutMs: number): Promise<Outcome> {
    return new Promise((res) => {
      const req = this.mod.request(this.url, { method: 'POST', agent: this.agent, headers: { ...this.headers, 'content-length': String(body.length) }, timeout: timeoutMs }, (resp) => {
        const chunks: Buffer[] = [];
        let size = 0;
        resp.on('data', (d: Buffer) => {
          size += d.length;
          if (size <= MAX_RESPONSE) chunks.push(d);
        });
        resp.on('error', () => res({ ok: false, retryMs: -1, reason: 'connection' }));
        resp.on('end', () => {
          const st = resp.statusCode ?? 0;
          if (size > MAX_RESPONSE) res({ ok: false, retryMs: null, reason: 'response_too_large' });
          else if (st >= 200 && st < 300) res({ ok: true, rejected: rejectedOf(Buffer.concat(chunks)) });
          else if (RETRYABLE_HTTP.has(st)) res({ ok: false, retryMs: retryAfterMs(resp.headers['retry-after']), reason: `http_${st}` });
          else res({ ok: false, retryMs: null, reason: `http_${st}` });
        });
      });
      // No answer (refused, reset, timed out): the specification retries with backoff.
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => res({ ok: false, retryMs: -1, reason: 'connection' }));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

class GrpcTransport implements Transport {
  private readonly client: grpcTypes.Client;
  private readonly metadata: grpcTypes.Metadata;
  private readonly retryable: Set<number>;

  constructor(
    private readonly grpc: Grpc,
    c: OtlpReporterConfig,
    where: string,
  ) {
    const { creds, options } = channelSetup(grpc, c.tls, c.server_name, where, { initial: c.retry_initial_ms, max: c.retry_max_ms });
    this.client = new grpc.Client(c.endpoint, creds, options);
    this.metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(c.headers)) this.metadata.set(k.toLowerCase(), v);
    const s = grpc.status;
    this.retryable = new Set([s.CANCELLED, s.DEADLINE_EXCEEDED, s.ABORTED, s.OUT_OF_RANGE, s.UNAVAILABLE, s.DATA_LOSS]);
  }

  send(body: Buffer, timeoutMs: number): Promise<Outcome> {
    return new Promise((res) => {
      this.client.makeUnaryRequest<Buffer, Buffer>(EXPORT_PATH, (b) => b, (b) => b, body, this.metadata, { deadline: Date.now() + timeoutMs }, (err, resp) => {
        if (err === null || err === undefined) return res({ ok: true, rejected: resp !== undefined ? rejectedOf(resp) : 0 });
        const reason = (this.grpc.status[err.code] ?? `code_${err.code}`).toLowerCase();
        const details = err.metadata?.get('grpc-status-details-bin')[0];
        const info = details instanceof Buffer ? retryInfoMs(details) : null;
        if (err.code === this.grpc.status.RESOURCE_EXHAUSTED) return res({ ok: false, retryMs: info, reason });
        if (this.retryable.has(err.code)) return res({ ok: false, retryMs: info ?? -1, reason });
        res({ ok: false, retryMs: null, reason });
      });
    });
  }

  close(): void {
    this.client.close();
  }
}

// ---------------------------------------------------------------- plugin

export const otlpReporter: PluginDefinition<'reporter', OtlpReporterConfig> = {
  meta: {
    name: 'otlp',
    version: '0.1.0',
    kind: 'reporter',
    labels: [],
    description: 'Sends records as OpenTelemetry log records (OTLP/HTTP protobuf or OTLP/gRPC), labels as attributes.',
    configSchema: {
      type: 'object',
      required: ['endpoint'],
      properties: {
        protocol: { enum: ['http/protobuf', 'grpc'], default: 'http/protobuf' },
        endpoint: { type: 'string', minLength: 1 },
        path: { type: 'string', pattern: '^/', default: '/v1/logs' },
        tls: TLS_SCHEMA,
        server_name: { type: 'string', minLength: 1 },
        headers: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
        service_name: { type: 'string', minLength: 1, default: 'otus' },
        resource_attributes: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
        max_inflight: { type: 'integer', minimum: 1, maximum: 256, default: 4 },
        retry_initial_ms: { type: 'integer', minimum: 10, maximum: 600000, default: 1000 },
        retry_max_ms: { type: 'integer', minimum: 10, maximum: 600000, default: 30000 },
        ...BATCHING_SCHEMA,
      },
      additionalProperties: false,
    },
  },
  async init(ctx) {
    const c = ctx.config;
    if (c.protocol === 'grpc') {
      if (!/^[^\s/]+:[0-9]{1,5}$/.test(c.endpoint)) throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${ctx.where}.endpoint: "${c.endpoint}" is not host:port (protocol grpc)`);
    } else if (!/^https?:\/\/[^\s/]+(\/.*)?$/.test(c.endpoint)) {
      throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${ctx.where}.endpoint: "${c.endpoint}" is not an http:// or https:// URL (protocol http/protobuf)`);
    }
    if (c.retry_max_ms < c.retry_initial_ms) {
      throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${ctx.where}.retry_max_ms: ${c.retry_max_ms} is below retry_initial_ms (${c.retry_initial_ms})`);
    }
    return new OtlpReporter(c, ctx, c.protocol === 'grpc' ? await importGrpc(ctx.where) : null);
  },
};
