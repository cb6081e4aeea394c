// The `kafka` reporter (docs/reporters.md): every record becomes
// one Kafka message. Value: the record in the task's format (json or
// protobuf), the same bytes the `file` reporter writes. Key: the record's
// call-id (`call-id`, else `sip.call-id`) when it has one, else its
// five-tuple's symmetric hash as 8 hex digits, so a call's SIP and media, and
// both directions of a flow, land in one partition (both clients use the
// Java client's murmur2 partitioner, so they agree). Headers: the record's
// labels.
//
// Two clients behind one interface (KafkaClient below):
// - librdkafka (`@confluentinc/kafka-javascript`, the default): rdkafka-style
//   Producer.produce() with delivery reports for failures only (a report per
//   message cost 3× the CPU). librdkafka queues, batches, compresses,
//   retries and times messages out on its own threads.
// - kafkajs: pure JavaScript, batches built here and sent with sendBatch;
//   about ten times librdkafka's CPU per record (docs/reporters.md). For
//   machines where the native client cannot be built.
//
// Accounting: every record handed to report() ends as acknowledged, timed
// out (not delivered within delivery_timeout_ms), failed (counted by
// reason: queue_full when the client's queue was full and the sender did not
// wait, abandoned at a stop deadline, or the client's error), or is still in
// flight. Backpressure: when the client's queue is full the record is kept
// aside, `blocked` is set, and writable() resolves once it got in; a record
// reported while blocked is dropped as queue_full.

import { readFileSync } from 'node:fs';
import { KAFKA_BROKERS_SCHEMA, KAFKA_SASL_SCHEMA, KAFKA_TLS_SCHEMA, type KafkaSasl, type KafkaTls, librdkafkaSecurity } from '../config/kafka-connection.js';
import type { EncodedRecord, PluginDefinition, RecordFormat, Reporter, ReporterCounters } from '../plugin/types.js';
import type { RecordMeta } from '../pipeline/expand.js';
import { writeJsonLabels } from '../pipeline/codec-json.js';
import { LabelKind } from '../pipeline/labels.js';
import { OtusError } from '../util/errors.js';
import { within } from '../util/time.js';

export type Compression = 'lz4' | 'zstd' | 'gzip' | 'snappy' | 'none';

export interface KafkaReporterConfig {
  brokers: string[];
  client: 'librdkafka' | 'kafkajs';
  topic?: string;
  topic_prefix?: string;
  format: RecordFormat;
  compression: Compression;
  acks: 'all' | 1 | 0;
  idempotence: boolean;
  linger_ms: number;
  batch_size: number;
  queue_max_messages: number;
  delivery_timeout_ms: number;
  tls?: KafkaTls;
  sasl?: KafkaSasl;
  client_id: string;
  /**
   * Labels as message headers, one each (true); all in one header, PACKED_HEADER,
   * as a JSON object ('packed': librdkafka's binding converts each header on the
   * main thread, so one costs a third of three); or none (false).
   */
  headers: boolean | 'packed';
}

/** One message's parts as the reporter made them; views into the sender's buffers, valid during send(). */
interface Msg {
  topic: string;
  key: Buffer | string | null;
  value: Buffer;
  /** Header names and values, `headers` of them. */
  hk: string[];
  hv: (Buffer | string)[];
  headers: number;
}

/** Where a client reports outcomes it learns of asynchronously. */
interface Tally {
  acked(n: number): void;
  timeout(n: number): void;
  error(reason: string, n: number): void;
}

/** What the reporter needs of a Kafka client. */
interface KafkaClient {
  /** Its queue is full; a message was kept aside (send() returned false). */
  readonly blocked: boolean;
  /** False while no broker can be reached (librdkafka: none up in its last statistics; kafkajs: not connected). */
  readonly healthy: boolean;
  /** The last connection or delivery error the client reported, or null. */
  readonly lastError: string | null;
  /** Connects in the background: an unreachable broker is no error here, its records time out. */
  start(): Promise<void>;
  /** Queues one message (copying what it keeps); false when the queue was full (the message is kept aside, blocked set). */
  send(m: Msg): boolean;
  writable(): Promise<void>;
  /** Waits until nothing is in flight or `ms` passed. */
  flush(ms: number): Promise<void>;
  /** Records queued or in flight (librdkafka: as of its last statistics, at most a second old, exact after a flush). */
  inFlight(): number;
  /** Forgets what is in flight; returns how many records. */
  abandon(): number;
  stop(): Promise<void>;
}

const DEFAULTS = {
  client: 'librdkafka',
  format: 'json',
  compression: 'lz4',
  acks: 'all',
  idempotence: true,
  linger_ms: 5,
  batch_size: 1000000,
  queue_max_messages: 100000,
  delivery_timeout_ms: 120000,
  client_id: 'otus',
  headers: true,
} as const;

/** The one header of `headers: packed`: every label of the record, as a JSON object of strings. */
export const PACKED_HEADER = 'otus-labels';

export class KafkaReporter implements Reporter {
  readonly format: RecordFormat;
  /** Records handed to report(). */
  produced = 0;
  private acks = 0;
  private timeouts = 0;
  private readonly errors: Record<string, number> = {};
  private failures = 0;
  private readonly client: KafkaClient;
  private readonly names = new NameCache();
  private readonly topics = new Map<string, string>();
  private readonly msg: Msg = { topic: '', key: null, value: Buffer.alloc(0), hk: [], hv: [], headers: 0 };
  /** The packed header's value is written here (headers: 'packed'); the client copies it during send(). */
  private pack: Buffer = Buffer.alloc(4096);
  private outBuf: Buffer = Buffer.alloc(0);
  private outOf: Uint8Array | null = null;
  private wireBuf: Buffer = Buffer.alloc(0);
  private wireOf: Uint8Array | null = null;
  private abandoned = false;

  constructor(
    readonly config: KafkaReporterConfig,
    makeClient: (tally: Tally) => KafkaClient,
  ) {
    this.format = config.format;
    const tally: Tally = {
      acked: (n) => {
        if (!this.abandoned) this.acks += n;
      },
      timeout: (n) => {
        if (this.abandoned) return;
        this.timeouts += n;
        this.failures += n;
      },
      error: (reason, n) => {
        if (!this.abandoned) this.fail(reason, n);
      },
    };
    this.client = makeClient(tally);
  }

  async start(): Promise<void> {
    await this.client.start();
  }

  get blocked(): boolean {
    return this.client.blocked;
  }

  /** Read by the sender each heartbeat: the reporter health gauge and metric, and its warnings. */
  get healthy(): boolean {
    return this.client.healthy;
  }

  get lastError(): string | null {
    return this.client.lastError;
  }

  writable(): Promise<void> {
    return this.client.writable();
  }

  get dropped(): number {
    return this.failures;
  }

  report(rec: EncodedRecord): void {
    this.produced++;
    if (this.client.blocked) {
      this.fail('queue_full', 1);
      return;
    }
    const m = this.msg;
    // A JSON record's line feed ends a line of NDJSON, not the message.
    const end = rec.off + rec.len - (this.format === 'json' && rec.buf[rec.off + rec.len - 1] === 0x0a ? 1 : 0);
    m.value = this.view(rec.buf, true).subarray(rec.off, end);
    const meta = rec.meta;
    if (meta === undefined) {
      m.topic = this.config.topic ?? `${this.config.topic_prefix}-records`;
      m.key = null;
      m.headers = 0;
    } else this.describe(meta, m);
    this.client.send(m);
  }

  /** Topic, key and headers from what the sender read of the record. */
  private describe(meta: RecordMeta, m: Msg): void {
    const w = meta.wire;
    m.topic = this.config.topic ?? this.topicOf(this.names.get(w.buf, w.protocolOff, w.protocolLen));
    const wb = this.view(w.buf, false);
    const c = meta.callIdLabel();
    m.key = c >= 0 ? wb.subarray(w.valOff[c], w.valOff[c] + w.valLen[c]) : hex8(meta.flowHash());
    if (this.config.headers === 'packed') {
      m.headers = 0;
      if (w.labelCount === 0) return;
      let end: number;
      // {"name":"value",...}: the record's labels as its JSON has them (writeJsonLabels).
      while ((end = writeJsonLabels(w, w.buf, this.pack, 1, this.pack.length, 1)) < 0) this.pack = Buffer.alloc(2 * this.pack.length);
      this.pack[0] = 0x7b;
      this.pack[end++] = 0x7d;
      m.hk[0] = PACKED_HEADER;
      m.hv[0] = this.pack.subarray(0, end);
      m.headers = 1;
      return;
    }
    const n = this.config.headers ? w.labelCount : 0;
    for (let i = 0; i < n; i++) {
      m.hk[i] = this.names.get(w.keyBuf[i], w.keyOff[i], w.keyLen[i]);
      m.hv[i] = w.valKind[i] === LabelKind.Bytes ? wb.subarray(w.valOff[i], w.valOff[i] + w.valLen[i]) : String(w.valNum[i]);
    }
    m.headers = n;
  }

  private topicOf(protocol: string): string {
    let t = this.topics.get(protocol);
    if (t === undefined) {
      t = `${this.config.topic_prefix}-${protocol}`;
      this.topics.set(protocol, t);
    }
    return t;
  }

  /** A Buffer over the whole of u8's memory (one kept per source: the expander's output and the ring). */
  private view(u8: Uint8Array, out: boolean): Buffer {
    if (out) {
      if (u8 !== this.outOf) {
        this.outOf = u8;
        this.outBuf = Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
      }
      return this.outBuf;
    }
    if (u8 !== this.wireOf) {
      this.wireOf = u8;
      this.wireBuf = Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
    }
    return this.wireBuf;
  }

  private fail(reason: string, n: number): void {
    this.errors[reason] = (this.errors[reason] ?? 0) + n;
    this.failures += n;
  }

  counters(): ReporterCounters {
    const queued = this.abandoned ? 0 : this.client.inFlight();
    // librdkafka reports failures only: what is neither failed nor in flight was acknowledged.
    const acked = this.config.client === 'librdkafka' ? Math.max(0, this.produced - this.failures - queued) : this.acks;
    return { acked, timeout: this.timeouts, errors: { ...this.errors }, queued };
  }

  async flush(): Promise<void> {
    await this.client.flush(this.config.delivery_timeout_ms + 5000);
  }

  abandon(): number {
    if (this.abandoned) return 0;
    const n = this.client.abandon();
    if (n > 0) this.fail('abandoned', n);
    this.abandoned = true;
    return n;
  }

  async stop(): Promise<void> {
    // Whatever a bounded flush left is given up, so the counts add up.
    if (this.client.inFlight() > 0) this.abandon();
    await this.client.stop();
  }
}

function hex8(h: number): string {
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** Strings for label keys and protocol names read as bytes, made once per distinct name. */
class NameCache {
  private readonly map = new Map<number, { b: Uint8Array; s: string }[]>();
  private readonly decoder = new TextDecoder();

  get(buf: Uint8Array, off: number, len: number): string {
    let h = len;
    for (let i = 0; i < len; i++) h = Math.imul(h ^ buf[off + i], 0x01000193);
    let list = this.map.get(h);
    if (list !== undefined) {
      for (let j = 0; j < list.length; j++) {
        const e = list[j];
        if (e.b.length !== len) continue;
        let i = 0;
        while (i < len && e.b[i] === buf[off + i]) i++;
        if (i === len) return e.s;
      }
    } else this.map.set(h, (list = []));
    const b = buf.slice(off, off + len);
    const s = this.decoder.decode(b);
    list.push({ b, s });
    return s;
  }
}

// ---------------------------------------------------------------- librdkafka

/** The librdkafka configuration of a reporter config (exported for tests). */
export function librdkafkaConfig(c: KafkaReporterConfig): Record<string, string | number | boolean> {
  const conf: Record<string, string | number | boolean> = {
    'bootstrap.servers': c.brokers.join(','),
    'client.id': c.client_id,
    'compression.codec': c.compression,
    acks: c.acks === 'all' ? -1 : c.acks,
    'enable.idempotence': c.idempotence,
    'linger.ms': c.linger_ms,
    'batch.size': c.batch_size,
    'queue.buffering.max.messages': c.queue_max_messages,
    'message.timeout.ms': c.delivery_timeout_ms,
    // The Java client's partitioner, as kafkajs uses: a key lands on the same partition whichever client sent it.
    partitioner: 'murmur2_random',
    'delivery.report.only.error': true,
    dr_cb: true,
    // msg_cnt, the records in flight, comes with the statistics.
    'statistics.interval.ms': 1000,
  };
  Object.assign(conf, librdkafkaSecurity(c.tls, c.sasl));
  return conf;
}

type RdModule = typeof import('@confluentinc/kafka-javascript');
type RdProducer = InstanceType<RdModule['Producer']>;

/** A topic's statistics in librdkafka's statistics document (STATISTICS.md). */
interface TopicStats {
  /** Milliseconds since its metadata was last refreshed (0: never). */
  metadata_age?: number;
  partitions?: Record<string, unknown>;
}
/** Statistics (one a second) in a row without partitions before a topic counts as unknown to the cluster. */
const UNKNOWN_TOPIC_STATS = 5;
const ERR_QUEUE_FULL = -184;
const ERR_MSG_TIMED_OUT = -192;
/** syslog's levels, as librdkafka logs: errors and warnings are kept as the last error. */
const LOG_WARNING = 4;
/** How often a message kept aside (queue full) is offered again. */
const RETRY_MS = 2;

class RdkafkaClient implements KafkaClient {
  blocked = false;
  lastError: string | null = null;
  /** A broker connection was up at the last statistics (true until the first, a second in). */
  private up = true;
  /** librdkafka logged a failure (a connect refused...) since a connection was last up. */
  private failed = false;
  /** Per topic, consecutive statistics whose metadata had no partition for it: the cluster does not know it. */
  private readonly unknownFor = new Map<string, number>();
  /** Topics the cluster has not known for UNKNOWN_TOPIC_STATS statistics in a row. */
  private unknownTopics: string[] = [];
  private producer: RdProducer | null = null;
  private aside: Msg | null = null;
  private waiters: (() => void)[] = [];
  private retry: NodeJS.Timeout | null = null;
  /** Records in librdkafka's queues at its last statistics. */
  private msgCnt = 0;
  private readonly reasons = new Map<number, string>();

  constructor(
    private readonly mod: RdModule,
    private readonly conf: Record<string, string | number | boolean>,
    private readonly tally: Tally,
  ) {
    for (const [name, code] of Object.entries(mod.CODES.ERRORS as Record<string, number>)) {
      this.reasons.set(code, name.replace(/^ERR_+/, '').toLowerCase());
    }
  }

  async start(): Promise<void> {
    const p = new this.mod.Producer(this.conf);
    p.on('delivery-report', (err) => {
      if (err === null || err === undefined) return;
      const code = (err as { code: number }).code;
      if (code === ERR_MSG_TIMED_OUT) this.tally.timeout(1);
      else this.tally.error(this.reasons.get(code) ?? `error_${code}`, 1);
    });
    p.on('event.stats', (s: { message: string }) => {
      try {
        const st = JSON.parse(s.message) as { msg_cnt: number; brokers?: Record<string, { state?: string }>; topics?: Record<string, TopicStats> };
        this.msgCnt = st.msg_cnt;
        if (st.brokers !== undefined) this.up = Object.values(st.brokers).some((b) => b.state === 'UP');
        if (this.up) this.failed = false;
        if (st.topics !== undefined) this.checkTopics(st.topics);
      } catch {
        // a malformed statistics document leaves the last figures
      }
    });
    // Connection errors (broker down, refused) are librdkafka's to retry; their records are counted when they time out.
    // The last one is kept for the sender's warnings: from librdkafka's log, which says why ("Connect to ipv4#10.0.0.5:9092
    // failed: Connection refused"); the error event says only "broker transport failure".
    p.on('event.log', (l: { severity?: number; message?: string }) => {
      if (typeof l.severity !== 'number' || l.severity > LOG_WARNING || typeof l.message !== 'string') return;
      this.lastError = l.message.replace(/^\[thrd:[^\]]*\]: /, '');
      this.failed = true;
    });
    p.on('event.error', (e: unknown) => {
      const m = (e as { message?: unknown }).message;
      if (this.lastError === null && typeof m === 'string' && m !== '') this.lastError = m;
    });
    await connectNative(p);
    p.setPollInterval(100);
    this.producer = p;
  }

  /**
   * Healthy while a connection to some broker is up, or none failed: with sparse connections an idle
   * producer may hold none (the broker closes idle ones after 10 minutes), which is no fault.
   */
  get healthy(): boolean {
    return (this.up || !this.failed) && this.unknownTopics.length === 0;
  }

  /**
   * A topic the cluster does not have (no auto-creation) makes no error in
   * librdkafka: its records wait for the metadata, then time out. Its
   * statistics tell: the topic's metadata has no partition but the
   * unassigned one (-1). Unhealthy, with the reason, after a few seconds of
   * that (an auto-created topic appears within one or two).
   */
  private checkTopics(topics: Record<string, TopicStats>): void {
    const unknown: string[] = [];
    for (const [name, t] of Object.entries(topics)) {
      const known = t.metadata_age === 0 || Object.keys(t.partitions ?? {}).some((k) => k !== '-1');
      const n = known ? 0 : (this.unknownFor.get(name) ?? 0) + 1;
      this.unknownFor.set(name, n);
      if (n >= UNKNOWN_TOPIC_STATS) unknown.push(name);
    }
    if (unknown.length > 0 && unknown.join() !== this.unknownTopics.join()) {
      this.lastError = `topic ${unknown.map((t) => `"${t}"`).join(', ')} is not in the cluster's metadata: does it exist? (a cluster with auto.create.topics.enable=false does not make it)`;
    }
    this.unknownTopics = unknown;
  }

  send(m: Msg): boolean {
    const err = this.produce(m);
    if (err === 0) return true;
    if (err !== ERR_QUEUE_FULL) {
      this.tally.error(this.reasons.get(err) ?? `error_${err}`, 1);
      return true;
    }
    this.aside = keep(m);
    this.blocked = true;
    this.retry = setTimeout(() => this.offerAside(), RETRY_MS);
    return false;
  }

  /** 0, or the librdkafka error code of a produce() that failed at once. */
  private produce(m: Msg): number {
    let headers: Record<string, Buffer | string>[] | undefined;
    if (m.headers > 0) {
      // Made per message: reusing the array and one object per name measured no difference (the binding's own work per header dominates).
      headers = new Array(m.headers);
      for (let i = 0; i < m.headers; i++) headers[i] = { [m.hk[i]]: m.hv[i] };
    }
    try {
      this.producer!.produce(m.topic, null, m.value, m.key, null, undefined, headers);
      return 0;
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      return typeof code === 'number' ? code : -1;
    }
  }

  private offerAside(): void {
    this.retry = null;
    const m = this.aside;
    if (m === null) return;
    this.producer!.poll();
    const err = this.produce(m);
    if (err === ERR_QUEUE_FULL) {
      this.retry = setTimeout(() => this.offerAside(), RETRY_MS);
      return;
    }
    if (err !== 0) this.tally.error(this.reasons.get(err) ?? `error_${err}`, 1);
    this.aside = null;
    this.blocked = false;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  writable(): Promise<void> {
    if (!this.blocked) return Promise.resolve();
    return new Promise((res) => this.waiters.push(res));
  }

  inFlight(): number {
    return this.msgCnt + (this.aside !== null ? 1 : 0);
  }

  async flush(ms: number): Promise<void> {
    const p = this.producer;
    if (p === null) return;
    const t0 = Date.now();
    if (this.blocked) await within(this.writable(), ms);
    const left = Math.max(0, ms - (Date.now() - t0));
    const ok = await new Promise<boolean>((res) => p.flush(left, (err) => res(!err)));
    // The failures' delivery reports reach JS through the event loop after flush's callback may have: let them in.
    p.poll();
    await sleep(20);
    if (ok) this.msgCnt = 0;
  }

  abandon(): number {
    const n = this.inFlight();
    this.aside = null;
    this.msgCnt = 0;
    if (this.retry !== null) clearTimeout(this.retry);
    this.blocked = false;
    for (const f of this.waiters.splice(0)) f();
    return n;
  }

  async stop(): Promise<void> {
    const p = this.producer;
    this.producer = null;
    if (p === null) return;
    if (this.retry !== null) clearTimeout(this.retry);
    p.setPollInterval(0);
    // Flushing was done (or given up) by now: no more waiting here.
    await new Promise<void>((res) => p.disconnect(0, () => res()));
  }
}

/**
 * Connects the producer without the metadata request the wrapper's
 * connect() makes and fails on when no broker answers: the sender must start
 * with the broker down (librdkafka then queues records until they time out,
 * and sends them if it comes back). Same steps as Client.connect before its
 * metadata request (pinned @confluentinc/kafka-javascript 1.10.1).
 */
function connectNative(p: RdProducer): Promise<void> {
  const c = p as unknown as {
    _client: { configureCallbacks(on: boolean, cbs: unknown): void; connect(cb: (err: unknown) => void): void };
    _cb_configs: unknown;
    _isConnected: boolean;
  };
  c._client.configureCallbacks(true, c._cb_configs);
  return new Promise((res, rej) =>
    c._client.connect((err) => {
      if (err) rej(new OtusError('OTUS_ERR_PLUGIN_INIT', `kafka reporter: librdkafka producer: ${JSON.stringify(err)}`));
      else {
        c._isConnected = true;
        res();
      }
    }),
  );
}

/** A copy of m that outlives the sender's buffers. */
function keep(m: Msg): Msg {
  return {
    topic: m.topic,
    key: typeof m.key === 'string' || m.key === null ? m.key : Buffer.from(m.key),
    value: Buffer.from(m.value),
    hk: m.hk.slice(0, m.headers),
    hv: m.hv.slice(0, m.headers).map((v) => (typeof v === 'string' ? v : Buffer.from(v))),
    headers: m.headers,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

// ------------------------------------------------------------------- kafkajs

type KjsModule = typeof import('kafkajs');
type KjsProducer = ReturnType<InstanceType<KjsModule['Kafka']>['producer']>;
type KjsMessage = { key: Buffer | string | null; value: Buffer; headers?: Record<string, Buffer | string> };

interface Batch {
  topic: string;
  messages: KjsMessage[];
  bytes: number;
  /** When its first record was reported: it times out delivery_timeout_ms later. */
  t0: number;
}

/** LZ4 frames are single blocks (≤ 4 MiB: batches stay below), so the block-independence flag Kafka's reader wants is true. */
const LZ4_MAX_BATCH = 4 << 20;

let lz4Registered = false;

/** kafkajs has no LZ4 of its own: a codec over lz4js, for producers and consumers alike. */
export async function registerLz4(kjs: KjsModule): Promise<void> {
  if (lz4Registered) return;
  const lz4 = (await import('lz4js')).default;
  const xxh32 = (await import('lz4js/xxh32.js')).default;
  kjs.CompressionCodecs[kjs.CompressionTypes.LZ4] = () => ({
    async compress(encoder: { buffer: Buffer }): Promise<Buffer> {
      const f = Buffer.from(lz4.compress(encoder.buffer));
      // FLG: version 01, block independence; then the header checksum over FLG and BD again.
      f[4] |= 0x20;
      f[6] = (xxh32.hash(0, f, 4, 2) >>> 8) & 0xff;
      return f;
    },
    async decompress(buf: Buffer): Promise<Buffer> {
      return Buffer.from(lz4.decompress(buf));
    },
  });
  lz4Registered = true;
}

class KafkajsClient implements KafkaClient {
  blocked = false;
  lastError: string | null = null;
  private producer: KjsProducer | null = null;
  private connected = false;
  private stopping = false;
  /** Per topic, the batch being filled. */
  private readonly open = new Map<string, Batch>();
  private readonly ready: Batch[] = [];
  /** Records in batches not yet sent, and in batches being sent. */
  private waiting = 0;
  private sending = 0;
  private inflightBatches = 0;
  private readonly maxInflight: number;
  private readonly maxBatchBytes: number;
  private waiters: (() => void)[] = [];
  private idle: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly kjs: KjsModule,
    private readonly c: KafkaReporterConfig,
    private readonly tally: Tally,
  ) {
    // kafkajs' idempotent producer keeps one request in flight.
    this.maxInflight = c.idempotence ? 1 : 5;
    this.maxBatchBytes = Math.min(c.batch_size, LZ4_MAX_BATCH);
  }

  async start(): Promise<void> {
    const k = this.kjs;
    const c = this.c;
    if (c.compression === 'lz4') await registerLz4(k);
    const kafka = new k.Kafka({
      clientId: c.client_id,
      brokers: c.brokers,
      logLevel: k.logLevel.NOTHING,
      connectionTimeout: 3000,
      // Sends retry with backoff for about delivery_timeout_ms (each wait ≤ 2 s), then count as timed out.
      retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: Math.max(2, Math.ceil(c.delivery_timeout_ms / 1500)) },
      ssl: kafkajsTls(c),
      sasl: c.sasl as never,
    });
    this.producer = kafka.producer({
      idempotent: c.idempotence,
      maxInFlightRequests: this.maxInflight,
      allowAutoTopicCreation: true,
      createPartitioner: k.Partitioners.DefaultPartitioner,
    });
    this.producer.on(this.producer.events.DISCONNECT, () => {
      this.connected = false;
      if (!this.stopping) void this.connect();
    });
    this.timer = setInterval(() => this.tick(), Math.max(1, Math.min(this.c.linger_ms, 100)));
    void this.connect();
  }

  /** Connected (or still making its first attempt), and its last batch was not refused for want of a broker. kafkajs notices a broker gone only when it sends. */
  get healthy(): boolean {
    return (this.connected || this.attempts === 0) && !this.failing;
  }

  private attempts = 0;
  private failing = false;

  /** Connects, retrying every second until it succeeds or the reporter stops. */
  private async connect(): Promise<void> {
    while (!this.stopping && !this.connected) {
      try {
        await this.producer!.connect();
        this.connected = true;
        this.pump();
      } catch (e) {
        this.attempts++;
        this.lastError = e instanceof Error ? e.message : String(e);
        await sleep(1000);
      }
    }
  }

  send(m: Msg): boolean {
    let b = this.open.get(m.topic);
    if (b === undefined) {
      b = { topic: m.topic, messages: [], bytes: 0, t0: Date.now() };
      this.open.set(m.topic, b);
    }
    let headers: Record<string, Buffer | string> | undefined;
    if (m.headers > 0) {
      headers = {};
      for (let i = 0; i < m.headers; i++) {
        const v = m.hv[i];
        headers[m.hk[i]] = typeof v === 'string' ? v : Buffer.from(v);
      }
    }
    // Buffer.from copies: kafkajs encodes the batch later, after the sender's buffers moved on.
    b.messages.push({ key: typeof m.key === 'string' || m.key === null ? m.key : Buffer.from(m.key), value: Buffer.from(m.value), headers });
    b.bytes += m.value.length + 64;
    this.waiting++;
    if (b.bytes >= this.maxBatchBytes) this.close(b);
    if (this.waiting + this.sending >= this.c.queue_max_messages) this.blocked = true;
    return true;
  }

  private close(b: Batch): void {
    this.open.delete(b.topic);
    this.ready.push(b);
    this.pump();
  }

  /** Linger: closes batches older than linger_ms; times out batches that waited too long for a broker. */
  private tick(): void {
    const now = Date.now();
    for (const b of this.open.values()) if (now - b.t0 >= this.c.linger_ms) this.close(b);
    let i = 0;
    while (i < this.ready.length) {
      const b = this.ready[i];
      if (now - b.t0 >= this.c.delivery_timeout_ms) {
        this.ready.splice(i, 1);
        this.waiting -= b.messages.length;
        this.tally.timeout(b.messages.length);
      } else i++;
    }
    this.pump();
    this.settle();
  }

  private pump(): void {
    while (this.connected && this.inflightBatches < this.maxInflight && this.ready.length > 0) {
      const b = this.ready.shift()!;
      const n = b.messages.length;
      this.waiting -= n;
      this.sending += n;
      this.inflightBatches++;
      this.producer!.sendBatch({
        topicMessages: [{ topic: b.topic, messages: b.messages }],
        acks: this.c.acks === 'all' ? -1 : this.c.acks,
        compression: compressionType(this.kjs, this.c.compression),
        timeout: 30000,
      }).then(
        () => this.done(n, null, b),
        (e: unknown) => this.done(n, e, b),
      );
    }
  }

  private done(n: number, err: unknown, b: Batch): void {
    this.sending -= n;
    this.inflightBatches--;
    if (err !== null) this.lastError = err instanceof Error ? err.message : String(err);
    this.failing = err !== null;
    if (err === null) this.tally.acked(n);
    else if (Date.now() - b.t0 >= this.c.delivery_timeout_ms * 0.5) this.tally.timeout(n);
    else this.tally.error(errorName(err), n);
    this.pump();
    this.settle();
  }

  /** Wakes writable() and flush() waiters whose condition holds. */
  private settle(): void {
    if (this.blocked && this.waiting + this.sending < this.c.queue_max_messages * 0.9) {
      this.blocked = false;
      for (const f of this.waiters.splice(0)) f();
    }
    if (this.waiting + this.sending === 0) for (const f of this.idle.splice(0)) f();
  }

  writable(): Promise<void> {
    if (!this.blocked) return Promise.resolve();
    return new Promise((res) => this.waiters.push(res));
  }

  inFlight(): number {
    return this.waiting + this.sending;
  }

  async flush(ms: number): Promise<void> {
    for (const b of [...this.open.values()]) this.close(b);
    if (this.inFlight() === 0) return;
    await within(new Promise<void>((res) => this.idle.push(res)), ms);
  }

  abandon(): number {
    const n = this.inFlight();
    this.open.clear();
    this.ready.length = 0;
    this.waiting = 0;
    this.sending = 0;
    this.blocked = false;
    for (const f of this.waiters.splice(0)) f();
    return n;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const p = this.producer;
    this.producer = null;
    if (p !== null) await p.disconnect().catch(() => undefined);
  }
}

function compressionType(k: KjsModule, c: Compression): number {
  return c === 'lz4' ? k.CompressionTypes.LZ4 : c === 'gzip' ? k.CompressionTypes.GZIP : k.CompressionTypes.None;
}

function errorName(e: unknown): string {
  const n = e instanceof Error ? ((e as { type?: string }).type ?? e.name) : 'error';
  return n.replace(/^KafkaJS/, '').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

function kafkajsTls(c: KafkaReporterConfig): { ca?: Buffer[]; cert?: Buffer; key?: Buffer } | undefined {
  if (c.tls === undefined) return undefined;
  const read = (p: string | undefined): Buffer | undefined => (p === undefined ? undefined : readFileSync(p));
  const ca = read(c.tls.ca);
  return { ca: ca ? [ca] : undefined, cert: read(c.tls.cert), key: read(c.tls.key) };
}

// -------------------------------------------------------------------- plugin

export const kafkaReporter: PluginDefinition<'reporter', KafkaReporterConfig> = {
  meta: {
    name: 'kafka',
    version: '0.1.0',
    kind: 'reporter',
    labels: [],
    description: 'Sends records to Apache Kafka: one message per record, keyed by call-id or flow, labels as headers.',
    configSchema: {
      type: 'object',
      required: ['brokers'],
      properties: {
        brokers: KAFKA_BROKERS_SCHEMA,
        client: { enum: ['librdkafka', 'kafkajs'], default: DEFAULTS.client },
        topic: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' },
        topic_prefix: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,200}$' },
        format: { enum: ['json', 'protobuf'], default: DEFAULTS.format },
        compression: { enum: ['lz4', 'zstd', 'gzip', 'snappy', 'none'], default: DEFAULTS.compression },
        acks: { enum: ['all', 1, 0], default: DEFAULTS.acks },
        idempotence: { type: 'boolean', default: DEFAULTS.idempotence },
        linger_ms: { type: 'integer', minimum: 0, maximum: 900000, default: DEFAULTS.linger_ms },
        batch_size: { type: 'integer', minimum: 1, default: DEFAULTS.batch_size },
        queue_max_messages: { type: 'integer', minimum: 1, default: DEFAULTS.queue_max_messages },
        delivery_timeout_ms: { type: 'integer', minimum: 1000, default: DEFAULTS.delivery_timeout_ms },
        tls: KAFKA_TLS_SCHEMA,
        sasl: KAFKA_SASL_SCHEMA,
        client_id: { type: 'string', minLength: 1, default: DEFAULTS.client_id },
        headers: { enum: [true, false, 'packed'], default: DEFAULTS.headers },
      },
      // One of topic and topic_prefix (both: refused by init, which can say so plainly).
      if: { not: { required: ['topic'] } },
      then: { required: ['topic_prefix'] },
      additionalProperties: false,
    },
  },
  async init(ctx) {
    const c = ctx.config;
    if (c.topic !== undefined && c.topic_prefix !== undefined) {
      throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${ctx.where}: topic (one topic for every record) or topic_prefix (one per protocol), not both`);
    }
    if (c.idempotence && c.acks !== 'all') {
      throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${ctx.where}.acks: idempotence needs acks: all (or set idempotence: false)`);
    }
    if (c.client === 'kafkajs' && (c.compression === 'zstd' || c.compression === 'snappy')) {
      throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${ctx.where}.compression: ${c.compression} needs client: librdkafka (kafkajs here does lz4, gzip, none)`);
    }
    if (c.client === 'kafkajs') {
      const kjs = await importClient<KjsModule>('kafkajs', ctx.where);
      return new KafkaReporter(c, (t) => new KafkajsClient(kjs, c, t));
    }
    const rd = await importClient<RdModule>('@confluentinc/kafka-javascript', ctx.where);
    const conf = librdkafkaConfig(c);
    return new KafkaReporter(c, (t) => new RdkafkaClient(rd, conf, t));
  },
};

/** The client library, loaded only by a sender that reports to Kafka. */
async function importClient<T>(name: string, where: string): Promise<T> {
  try {
    const m = (await import(name)) as T & { default?: T };
    return (m.default ?? m) as T;
  } catch (e) {
    throw new OtusError('OTUS_ERR_PLUGIN_INIT', `${where}: the kafka reporter needs ${name} (npm install; see docs/reporters.md): ${(e as Error).message}`);
  }
}
