// The `grpc` reporter (docs/reporters.md): records in batches over one
// bidirectional stream, `otus.v1.Reporter/Report` (proto/otus_report.proto):
// each RecordBatch holds records in the task's format as `bytes`, the server
// answers a BatchAck per batch it took. The batch is written here by hand
// (its seq, then each record as field 2), and grpc-js is given identity
// serializers: no protobuf library at run time. Flow control: a write the
// stream refuses (write() false: HTTP/2's window or grpc-js' buffer is full)
// stops sending until 'drain'; at most max_inflight_batches batches await
// their acknowledgement. A broken stream is opened again after a backoff
// (reconnect_initial_ms doubling to reconnect_max_ms, with jitter), and its
// unacknowledged batches are sent again on the new one; any batch not
// acknowledged within timeout_ms of closing is given up as reporter_timeout
// (batching.ts).

import { randomUUID } from 'node:crypto';
import type * as grpcTypes from '@grpc/grpc-js';
import type { EncodedRecord, PluginContext, PluginDefinition, RecordFormat } from '../plugin/types.js';
import { varintSize, writeVarint } from '../pipeline/codec-protobuf.js';
import { OtusError } from '../util/errors.js';
import { BATCHING_SCHEMA, type Batch, type BatchingConfig, BatchingReporter, backoff, readTls, TLS_SCHEMA, type TlsFiles } from './batching.js';

type Grpc = typeof grpcTypes;

export interface GrpcReporterConfig extends BatchingConfig {
  /** `host:port` of the server. */
  endpoint: string;
  format: RecordFormat;
  /** Absent: plaintext. */
  tls?: TlsFiles;
  /** The name the server's certificate must carry, when it is not the endpoint's host. */
  server_name?: string;
  max_inflight_batches: number;
  reconnect_initial_ms: number;
  reconnect_max_ms: number;
}

const REPORT_PATH = '/otus.v1.Reporter/Report';
const SEQ_TAG = 0x08; // field 1, varint
const RECORD_TAG = 0x12; // field 2, length-delimited

/** BatchAck's seq (field 1); -1 when absent or malformed. */
export function readAck(b: Buffer): number {
  let o = 0;
  while (o < b.length) {
    const t = b[o++]!;
    if ((t & 7) === 0) {
      let v = 0;
      let m = 1;
      for (;;) {
        if (o >= b.length) return -1;
        const x = b[o++]!;
        v += (x & 0x7f) * m;
        m *= 128;
        if (x < 0x80) break;
      }
      if (t >> 3 === 1) return v;
    } else if ((t & 7) === 2) {
      let len = 0;
      let m = 1;
      for (;;) {
        if (o >= b.length) return -1;
        const x = b[o++]!;
        len += (x & 0x7f) * m;
        m *= 128;
        if (x < 0x80) break;
      }
      o += len;
    } else return -1;
  }
  return -1;
}

/** grpc-js channel credentials and options of a tls/server_name config. */
export function channelSetup(grpc: Grpc, tls: TlsFiles | undefined, serverName: string | undefined, where: string, reconnect: { initial: number; max: number }): { creds: grpcTypes.ChannelCredentials; options: grpcTypes.ChannelOptions } {
  const options: grpcTypes.ChannelOptions = {
    // The channel's own reconnection backoff (grpc-js: up to 120 s by default) would hide a returned server that long.
    'grpc.initial_reconnect_backoff_ms': reconnect.initial,
    'grpc.max_reconnect_backoff_ms': reconnect.max,
    'grpc.keepalive_time_ms': 30000,
    'grpc.keepalive_timeout_ms': 10000,
  };
  if (serverName !== undefined) options['grpc.ssl_target_name_override'] = serverName;
  if (tls === undefined) return { creds: grpc.credentials.createInsecure(), options };
  const pem = readTls(tls, where);
  return { creds: grpc.credentials.createSsl(pem.ca ?? null, pem.key ?? null, pem.cert ?? null), options };
}

export class GrpcReporter extends BatchingReporter {
  readonly format: RecordFormat;
  private readonly client: grpcTypes.Client;
  private readonly metadata: grpcTypes.Metadata;
  private call: grpcTypes.ClientDuplexStream<Buffer, number> | null = null;
  /** The stream refused a write: wait for 'drain'. */
  private full = false;
  /** Streams that broke since the last acknowledgement. */
  private breaks = 0;
  private reconnect: NodeJS.Timeout | null = null;
  private stopping = false;

  constructor(
    private readonly grpc: Grpc,
    readonly config: GrpcReporterConfig,
    ctx: Pick<PluginContext, 'node' | 'taskId' | 'where'>,
  ) {
    super(config, 12);
    this.format = config.format;
    const { creds, options } = channelSetup(grpc, config.tls, config.server_name, ctx.where, { initial: config.reconnect_initial_ms, max: config.reconnect_max_ms });
    this.client = new grpc.Client(config.endpoint, creds, options);
    this.metadata = new grpc.Metadata();
    this.metadata.set('otus-node', ctx.node.hostname ?? '');
    this.metadata.set('otus-task', ctx.taskId);
    this.metadata.set('otus-stream', randomUUID());
    this.metadata.set('otus-format', config.format);
  }

  override start(): void {
    super.start();
    this.connect();
  }

  private connect(): void {
    this.reconnect = null;
    if (this.stopping) return;
    const call = this.client.makeBidiStreamRequest<Buffer, number>(REPORT_PATH, (b) => b, readAck, this.metadata, {});
    this.call = call;
    this.full = false;
    call.on('data', (seq: number) => {
      this.breaks = 0;
      this.ack(seq);
      this.pump();
    });
    call.on('drain', () => {
      if (call !== this.call) return;
      this.full = false;
      this.pump();
    });
    call.on('error', (e: grpcTypes.ServiceError) => this.broken(call, `${this.grpc.status[e.code] ?? e.code}: ${e.details}`));
    // The server ended the stream with OK: open another.
    call.on('status', (s: grpcTypes.StatusObject) => this.broken(call, `${this.grpc.status[s.code] ?? s.code}: ${s.details}`));
    this.pump();
  }

  private broken(call: grpcTypes.ClientDuplexStream<Buffer, number>, why: string): void {
    if (call !== this.call) return;
    this.call = null;
    this.lastError = why;
    this.requeue();
    if (this.stopping) return;
    this.breaks++;
    this.reconnect = setTimeout(() => this.connect(), backoff(this.breaks, this.config.reconnect_initial_ms, this.config.reconnect_max_ms));
  }

  /** The stream is up and has not broken since the last acknowledgement (otus_plugin_health). */
  get healthy(): boolean {
    return this.call !== null && this.breaks === 0;
  }

  protected ready(): boolean {
    return this.call !== null && !this.full && this.inflight.size < this.config.max_inflight_batches;
  }

  protected transmit(b: Batch): void {
    if (!this.call!.write(b.body)) this.full = true;
  }

  protected encode(rec: EncodedRecord): void {
    // A JSON record's line feed ends a line of NDJSON, not the record.
    const len = rec.len - (this.format === 'json' && rec.buf[rec.off + rec.len - 1] === 0x0a ? 1 : 0);
    this.ensure(1 + 5 + len);
    const b = this.buf;
    b[this.pos] = RECORD_TAG;
    const o = writeVarint(b, this.pos + 1, len);
    this.pos = o + this.view(rec.buf, 0).copy(b, o, rec.off, rec.off + len);
  }

  protected seal(buf: Buffer, room: number, end: number, _records: number, seq: number): Buffer {
    const start = room - 1 - varintSize(seq);
    buf[start] = SEQ_TAG;
    writeVarint(buf, start + 1, seq);
    return buf.subarray(start, end);
  }


  protected async shutdown(): Promise<void> {
    this.stopping = true;
    if (this.reconnect !== null) clearTimeout(this.reconnect);
    const call = this.call;
    this.call = null;
    if (call !== null) {
      // Half-close, and let the server see it before the channel goes.
      await new Promise<void>((res) => {
        const t = setTimeout(res, 1000);
        call.once('status', () => (clearTimeout(t), res()));
        call.once('error', () => (clearTimeout(t), res()));
        call.end();
      });
    }
    this.client.close();
  }
}

export const grpcReporter: PluginDefinition<'reporter', GrpcReporterConfig> = {
  meta: {
    name: 'grpc',
    version: '0.1.0',
    kind: 'reporter',
    labels: [],
    description: 'Streams records in batches to a gRPC server (otus.v1.Reporter/Report), each batch acknowledged.',
    configSchema: {
      type: 'object',
      required: ['endpoint'],
      properties: {
        endpoint: { type: 'string', pattern: '^[^\\s/]+:[0-9]{1,5}$' },
        format: { enum: ['json', 'protobuf'], default: 'json' },
        tls: TLS_SCHEMA,
        server_name: { type: 'string', minLength: 1 },
        max_inflight_batches: { type: 'integer', minimum: 1, maximum: 10000, default: 16 },
        reconnect_initial_ms: { type: 'integer', minimum: 10, maximum: 600000, default: 100 },
        reconnect_max_ms: { type: 'integer', minimum: 10, maximum: 600000, default: 5000 },
        ...BATCHING_SCHEMA,
      },
      additionalProperties: false,
    },
  },
  async init(ctx) {
    const c = ctx.config;
    if (c.server_name !== undefined && c.tls === undefined) {
      throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${ctx.where}.server_name: only with tls (a plaintext channel checks no name)`);
    }
    if (c.reconnect_max_ms < c.reconnect_initial_ms) {
      throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${ctx.where}.reconnect_max_ms: ${c.reconnect_max_ms} is below reconnect_initial_ms (${c.reconnect_initial_ms})`);
    }
    return new GrpcReporter(await importGrpc(ctx.where), c, ctx);
  },
};

/** @grpc/grpc-js, loaded only by a sender whose reporter speaks gRPC. */
export async function importGrpc(where: string): Promise<Grpc> {
  try {
    const m = (await import('@grpc/grpc-js')) as Grpc & { default?: Grpc };
    return m.default ?? m;
  } catch (e) {
    throw new OtusError('OTUS_ERR_PLUGIN_INIT', `${where}: this reporter needs @grpc/grpc-js (npm install; see docs/reporters.md): ${(e as Error).message}`);
  }
}
