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
// - librdkafka (the default): the library @confluentinc/kafka-javascript
//   builds, called by the addon (native/kafka.cc) with each message's bytes
//   and the key and headers the reporter wrote into a stage, one call per
//   message; delivery reports counted in the addon. librdkafka queues, batches,
//   compresses, retries and times messages out on its own threads. (The npm
//   binding's Producer.produce() converted header objects on this thread:
//   3-4x the CPU of the rest of a message.)
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

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { native, type NativeHandle } from '../native.js';
import { KAFKA_BROKERS_SCHEMA, KAFKA_SASL_SCHEMA, KAFKA_TLS_SCHEMA, type KafkaSasl, type KafkaTls, librdkafkaSecurity } from '../config/kafka-connection.js';
import type { EncodedRecord, PluginDefinition, RecordFormat, Reporter, ReporterCounters } from '../plugin/types.js';
import type { RecordMeta } from '../pipeline/expand.js';
import { writeJsonLabels } from '../pipeline/codec-json.js';
import { LabelKind } from '../pipeline/labels.js';
import { copyBytes, readU16LE, readU32LE, writeHex32, writeU16LE, writeU32LE, writeUint } from '../util/bytes.js';
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
   * as a JSON object ('packed': librdkafka allocates and frees each header, so
   * one costs less than three); or none (false).
   */
  headers: boolean | 'packed';
}

/**
 * One message as the reporter made it; valid during send(). The key and
 * headers are in `stage`, laid out as native/kafka.cc reads them:
 * u32 key length (NO_KEY: none), key, u16 header count, then per header
 * u16 name length, name, u32 value length, value; little-endian.
 */
interface Msg {
  topic: string;
  /** The value: bytes [off, off + len) of value. */
  value: Uint8Array;
  off: number;
  len: number;
  stage: Uint8Array;
  stageLen: number;
}

const NO_KEY = 0xffffffff;

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
  /** Records queued or in flight: taken by the client, neither acknowledged nor failed yet. */
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
  private readonly msg: Msg = { topic: '', value: new Uint8Array(0), off: 0, len: 0, stage: new Uint8Array(4096), stageLen: 0 };
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
    m.value = rec.buf;
    m.off = rec.off;
    // A JSON record's line feed ends a line of NDJSON, not the message.
    m.len = rec.len - (this.format === 'json' && rec.buf[rec.off + rec.len - 1] === 0x0a ? 1 : 0);
    const meta = rec.meta;
    if (meta === undefined) {
      m.topic = this.config.topic ?? this.topicOf('records');
      m.stageLen = writeU16(m.stage, writeU32(m.stage, 0, NO_KEY), 0);
    } else {
      const w = meta.wire;
      m.topic = this.config.topic ?? this.topicOf(this.names.get(w.buf, w.protocolOff, w.protocolLen));
      while ((m.stageLen = this.stage(meta, m.stage)) < 0) m.stage = new Uint8Array(2 * m.stage.length);
    }
    this.client.send(m);
  }

  /** Writes the record's key and headers into `st` (Msg's layout); -1 when they do not fit. */
  private stage(meta: RecordMeta, st: Uint8Array): number {
    const w = meta.wire;
    const b = w.buf;
    const end = st.length;
    const c = meta.callIdLabel();
    let off: number;
    if (c >= 0) {
      const n = w.valLen[c];
      if (end < 6 + n) return -1;
      off = copyBytes(st, writeU32(st, 0, n), b, w.valOff[c], n);
    } else off = writeHex32(st, writeU32(st, 0, 8), meta.flowHash());
    const mode = this.config.headers;
    if (mode === false || w.labelCount === 0) return writeU16(st, off, 0);
    if (mode === 'packed') {
      // {"name":"value",...}: the record's labels as its JSON has them (writeJsonLabels).
      if (end - off < 2 + 2 + PACKED_NAME.length + 4 + 2) return -1;
      off = writeU16(st, off, 1);
      off = copyBytes(st, writeU16(st, off, PACKED_NAME.length), PACKED_NAME, 0, PACKED_NAME.length);
      const at = off;
      st[off + 4] = 0x7b;
      const e = writeJsonLabels(w, b, st, off + 5, end, 1);
      if (e < 0) return -1;
      st[e] = 0x7d;
      writeU32(st, at, e + 1 - (at + 4));
      return e + 1;
    }
    off = writeU16(st, off, w.labelCount);
    for (let i = 0; i < w.labelCount; i++) {
      const kl = w.keyLen[i];
      const num = w.valKind[i] !== LabelKind.Bytes;
      const vl = num ? 0 : w.valLen[i];
      if (end - off < 2 + kl + 4 + (num ? 20 : vl)) return -1;
      off = copyBytes(st, writeU16(st, off, kl), w.keyBuf[i], w.keyOff[i], kl);
      if (num) {
        const e = writeUint(st, off + 4, w.valNum[i]);
        writeU32(st, off, e - off - 4);
        off = e;
      } else off = copyBytes(st, writeU32(st, off, vl), b, w.valOff[i], vl);
    }
    return off;
  }

  private topicOf(protocol: string): string {
    let t = this.topics.get(protocol);
    if (t === undefined) {
      t = `${this.config.topic_prefix}-${protocol}`;
      this.topics.set(protocol, t);
    }
    return t;
  }

  private fail(reason: string, n: number): void {
    this.errors[reason] = (this.errors[reason] ?? 0) + n;
    this.failures += n;
  }

  counters(): ReporterCounters {
    const queued = this.abandoned ? 0 : this.client.inFlight();
    return { acked: this.acks, timeout: this.timeouts, errors: { ...this.errors }, queued };
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

const PACKED_NAME = new TextEncoder().encode(PACKED_HEADER);

/** Little-endian fields of the stage, each returning the offset after it. */
function writeU16(st: Uint8Array, off: number, v: number): number {
  writeU16LE(st, off, v);
  return off + 2;
}

function writeU32(st: Uint8Array, off: number, v: number): number {
  writeU32LE(st, off, v);
  return off + 4;
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
    // Brokers' states and topics' metadata, for health.
    'statistics.interval.ms': 1000,
  };
  Object.assign(conf, librdkafkaSecurity(c.tls, c.sasl));
  return conf;
}

/** A topic's statistics in librdkafka's statistics document (STATISTICS.md). */
interface TopicStats {
  /** Milliseconds since its metadata was last refreshed (0: never). */
  metadata_age?: number;
  partitions?: Record<string, unknown>;
}
/** Statistics (one a second) in a row without partitions before a topic counts as unknown to the cluster. */
const UNKNOWN_TOPIC_STATS = 5;
const ERR_QUEUE_FULL = -184;
/** How often a message kept aside (queue full) is offered again, and callbacks served. */
const RETRY_MS = 2;
const POLL_MS = 100;
const POLL_EVERY = 1024;

/** librdkafka's error name (err2name: `_MSG_TIMED_OUT`, `MSG_SIZE_TOO_LARGE`) as a reason: `msg_timed_out`. */
function reasonOf(name: string): string {
  return name.replace(/^_+/, '').toLowerCase();
}

/** The shared library of librdkafka that @confluentinc/kafka-javascript built (setup.sh links it dynamically). */
export function librdkafkaPath(): string {
  const dir = dirname(createRequire(import.meta.url).resolve('@confluentinc/kafka-javascript/package.json'));
  const built = join(dir, 'build', 'deps', 'librdkafka.so.1');
  const inTree = join(dir, 'deps', 'librdkafka', 'src', 'librdkafka.so.1');
  return existsSync(built) || !existsSync(inTree) ? built : inTree;
}

interface Aside {
  topic: number;
  value: Uint8Array;
  stage: Uint8Array;
}

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
  private h: NativeHandle | null = null;
  private readonly topics = new Map<string, number>();
  private aside: Aside | null = null;
  private waiters: (() => void)[] = [];
  private retry: NodeJS.Timeout | null = null;
  private poller: NodeJS.Timeout | null = null;
  /** Messages librdkafka took whose delivery report has not come in. */
  private pending = 0;
  /** Messages taken since callbacks were last served. */
  private sincePoll = 0;

  constructor(
    private readonly lib: string,
    private readonly conf: Record<string, string | number | boolean>,
    private readonly tally: Tally,
  ) {}

  async start(): Promise<void> {
    if (native.kafkaOpen === undefined) {
      throw new OtusError('OTUS_ERR_PLUGIN_INIT', 'kafka reporter: the addon was built without librdkafka (npm install builds both; see docs/reporters.md)');
    }
    const kv: string[] = [];
    for (const [k, v] of Object.entries(this.conf)) kv.push(k, String(v));
    try {
      // librdkafka connects on its own threads: a broker that is down is no error here.
      this.h = native.kafkaOpen(this.lib, kv);
    } catch (e) {
      const m = (e as Error).message;
      // The package built statically (without CKJS_LINKING=dynamic) leaves no shared library to load.
      const hint = m.startsWith('cannot load') ? ' (reinstall with CKJS_LINKING=dynamic, as scripts/setup.sh does; see docs/reporters.md)' : '';
      throw new OtusError('OTUS_ERR_PLUGIN_INIT', `kafka reporter: librdkafka: ${m}${hint}`);
    }
    this.poller = setInterval(() => this.poll(), POLL_MS);
  }

  /** Takes in what librdkafka's callbacks brought: delivery reports, statistics, errors, log lines. */
  private poll(): void {
    if (this.h === null) return;
    this.sincePoll = 0;
    const r = native.kafkaPoll!(this.h);
    if (r === undefined) return;
    this.pending -= r.acked;
    this.tally.acked(r.acked);
    for (let i = 0; i < r.failed.length; i += 2) {
      const reason = reasonOf(r.failed[i] as string);
      const n = r.failed[i + 1] as number;
      this.pending -= n;
      if (reason === 'msg_timed_out') this.tally.timeout(n);
      else this.tally.error(reason, n);
    }
    if (r.stats !== null) {
      try {
        const st = JSON.parse(r.stats) as { brokers?: Record<string, { state?: string }>; topics?: Record<string, TopicStats> };
        if (st.brokers !== undefined) this.up = Object.values(st.brokers).some((b) => b.state === 'UP');
        if (this.up) this.failed = false;
        if (st.topics !== undefined) this.checkTopics(st.topics);
      } catch {
        // a malformed statistics document leaves the last figures
      }
    }
    // Connection errors (broker down, refused) are librdkafka's to retry; their records are counted when they time out.
    // The last one is kept for the sender's warnings: from librdkafka's log, which says why ("Connect to ipv4#10.0.0.5:9092
    // failed: Connection refused"); the error callback says only "broker transport failure".
    if (r.log !== null) {
      this.lastError = r.log.replace(/^\[thrd:[^\]]*\]: /, '');
      this.failed = true;
    }
    if (r.error !== null && this.lastError === null) this.lastError = r.error;
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
    let t = this.topics.get(m.topic);
    if (t === undefined) {
      t = native.kafkaTopic!(this.h!, m.topic);
      this.topics.set(m.topic, t);
    }
    const err = native.kafkaProduce!(this.h!, t, m.value, m.off, m.len, m.stage);
    if (err === 0) {
      this.pending++;
      // A delivered message is freed once its report is served: serving them often keeps the queue's room.
      if (++this.sincePoll === POLL_EVERY) this.poll();
      return true;
    }
    if (err !== ERR_QUEUE_FULL) {
      this.tally.error(reasonOf(native.kafkaErrName!(err)), 1);
      return true;
    }
    this.aside = { topic: t, value: m.value.slice(m.off, m.off + m.len), stage: m.stage.slice(0, m.stageLen) };
    this.blocked = true;
    this.retry = setTimeout(() => this.offerAside(), RETRY_MS);
    return false;
  }

  private offerAside(): void {
    this.retry = null;
    const a = this.aside;
    if (a === null || this.h === null) return;
    this.poll();
    const err = native.kafkaProduce!(this.h, a.topic, a.value, 0, a.value.length, a.stage);
    if (err === ERR_QUEUE_FULL) {
      this.retry = setTimeout(() => this.offerAside(), RETRY_MS);
      return;
    }
    if (err === 0) this.pending++;
    else this.tally.error(reasonOf(native.kafkaErrName!(err)), 1);
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

  /** Exact: messages taken whose delivery report has not come in, after serving the reports there are. */
  inFlight(): number {
    this.poll();
    return this.pending + (this.aside !== null ? 1 : 0);
  }

  async flush(ms: number): Promise<void> {
    if (this.h === null) return;
    const t0 = Date.now();
    if (this.blocked) await within(this.writable(), ms);
    // Short steps, so the sender's event loop (heartbeats, a stop deadline) runs while a broker is slow or down.
    while (this.h !== null) {
      native.kafkaFlush!(this.h, 0);
      this.poll();
      if (this.pending === 0 || Date.now() - t0 >= ms) return;
      await sleep(10);
    }
  }

  abandon(): number {
    const n = this.inFlight();
    if (this.h !== null) native.kafkaPurge!(this.h);
    this.pending = 0;
    this.aside = null;
    if (this.retry !== null) clearTimeout(this.retry);
    this.blocked = false;
    for (const f of this.waiters.splice(0)) f();
    return n;
  }

  async stop(): Promise<void> {
    const h = this.h;
    if (h === null) return;
    if (this.retry !== null) clearTimeout(this.retry);
    if (this.poller !== null) clearInterval(this.poller);
    this.poll();
    this.h = null;
    // Flushing was done (or given up) by now: no more waiting here.
    native.kafkaClose!(h);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

/** A message's key and headers read back from its stage, for kafkajs (which copies nothing later: these are copies). */
function unstage(m: Msg, names: NameCache): { key: Buffer | null; headers: Record<string, Buffer> | undefined } {
  const st = m.stage;
  let off = 0;
  const kl = readU32LE(st, off);
  off += 4;
  let key: Buffer | null = null;
  if (kl !== NO_KEY) {
    key = Buffer.from(st.subarray(off, off + kl));
    off += kl;
  }
  const n = readU16LE(st, off);
  off += 2;
  if (n === 0) return { key, headers: undefined };
  const headers: Record<string, Buffer> = {};
  for (let i = 0; i < n; i++) {
    const nl = readU16LE(st, off);
    const name = names.get(st, off + 2, nl);
    off += 2 + nl;
    const vl = readU32LE(st, off);
    headers[name] = Buffer.from(st.subarray(off + 4, off + 4 + vl));
    off += 4 + vl;
  }
  return { key, headers };
}

// ------------------------------------------------------------------- kafkajs

type KjsModule = typeof import('kafkajs');
type KjsProducer = ReturnType<InstanceType<KjsModule['Kafka']>['producer']>;
type KjsMessage = { key: Buffer | null; value: Buffer; headers?: Record<string, Buffer> };

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
  private readonly names = new NameCache();

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
    const { key, headers } = unstage(m, this.names);
    // Copies: kafkajs encodes the batch later, after the sender's buffers moved on.
    b.messages.push({ key, value: Buffer.from(m.value.subarray(m.off, m.off + m.len)), headers });
    b.bytes += m.len + 64;
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
    let lib: string;
    try {
      lib = librdkafkaPath();
    } catch (e) {
      throw new OtusError('OTUS_ERR_PLUGIN_INIT', `${ctx.where}: the kafka reporter needs @confluentinc/kafka-javascript, which builds librdkafka (npm install; see docs/reporters.md): ${(e as Error).message}`);
    }
    const conf = librdkafkaConfig(c);
    return new KafkaReporter(c, (t) => new RdkafkaClient(lib, conf, t));
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
