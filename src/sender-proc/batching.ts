// What the `grpc` and `otlp` reporters share (docs/reporters.md): records
// are encoded into the open batch as they are reported; a batch closes when
// it holds `batch_records` records or `batch_bytes` bytes, or is `linger_ms`
// old; closed batches wait in a queue until the transport can take one, and
// each ends acknowledged, failed (by reason) or timed out: a batch not
// acknowledged within `timeout_ms` of closing (queueing, retries and
// reconnections included) is given up as `reporter_timeout`. So every record
// handed to report() is acknowledged, counted as a drop, or held (open,
// queued or in flight), exactly. Records held are bounded by
// `queue_max_records`: beyond it `blocked` is set and the sender waits on
// writable(); a record reported while blocked is dropped as queue_full.
//
// Subclasses encode (encode(): the record into the open batch; seal(): its
// header, written into room left in front) and send (transmit(), with
// ready() saying whether the transport takes a batch now); they report
// outcomes with ack(), fail(), retry() and requeue().

import { readFileSync } from 'node:fs';
import type { EncodedRecord, RecordFormat, Reporter, ReporterCounters } from '../plugin/types.js';
import { OtusError } from '../util/errors.js';

export interface BatchingConfig {
  batch_records: number;
  batch_bytes: number;
  linger_ms: number;
  queue_max_records: number;
  timeout_ms: number;
}

export const BATCHING_DEFAULTS = {
  batch_records: 1000,
  batch_bytes: 1 << 20,
  linger_ms: 50,
  queue_max_records: 100000,
  timeout_ms: 30000,
} as const;

/** The schema of BatchingConfig's keys, for a reporter's configSchema. */
export const BATCHING_SCHEMA = {
  batch_records: { type: 'integer', minimum: 1, maximum: 1000000, default: BATCHING_DEFAULTS.batch_records },
  batch_bytes: { type: 'integer', minimum: 1024, maximum: 64 << 20, default: BATCHING_DEFAULTS.batch_bytes },
  linger_ms: { type: 'integer', minimum: 1, maximum: 60000, default: BATCHING_DEFAULTS.linger_ms },
  queue_max_records: { type: 'integer', minimum: 1, default: BATCHING_DEFAULTS.queue_max_records },
  timeout_ms: { type: 'integer', minimum: 100, maximum: 86400000, default: BATCHING_DEFAULTS.timeout_ms },
} as const;

/** PEM file paths of a TLS client: CA to trust, and the client's own certificate and key for mutual TLS. */
export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

export const TLS_SCHEMA = {
  type: 'object',
  properties: { ca: { type: 'string', minLength: 1 }, cert: { type: 'string', minLength: 1 }, key: { type: 'string', minLength: 1 } },
  dependencies: { cert: ['key'], key: ['cert'] },
  additionalProperties: false,
} as const;

/** The PEM files read, or OTUS_ERR_PLUGIN_CONFIG naming the key whose file cannot be read. */
export function readTls(tls: TlsFiles, where: string): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const read = (k: keyof TlsFiles): Buffer | undefined => {
    const p = tls[k];
    if (p === undefined) return undefined;
    try {
      return readFileSync(p);
    } catch (e) {
      throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${where}.tls.${k}: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  return { ca: read('ca'), cert: read('cert'), key: read('key') };
}

export interface Batch {
  seq: number;
  /** The encoded request. */
  body: Buffer;
  records: number;
  /** When it closed: given up timeout_ms later. */
  t0: number;
  /** Sends so far. */
  attempts: number;
  /** Not sent again before this time (a retry's backoff). */
  notBefore: number;
}

/** Exponential backoff with ±20 % jitter: initial·2^(attempt-1), at most max. */
export function backoff(attempt: number, initialMs: number, maxMs: number): number {
  const d = Math.min(maxMs, initialMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.round(d * (0.8 + 0.4 * Math.random()));
}

export abstract class BatchingReporter implements Reporter {
  abstract readonly format: RecordFormat;
  /** Records handed to report(). */
  produced = 0;
  /** The last transport error, for the sender's warnings. */
  lastError: string | null = null;
  blocked = false;
  private acks = 0;
  private timeouts = 0;
  private readonly errors: Record<string, number> = {};
  private failures = 0;
  /** Records open, queued and in flight. */
  private held = 0;
  private seq = 0;
  /** The open batch: buf[room, pos) holds its records; room bytes in front are left for seal(). */
  protected buf: Buffer;
  protected pos: number;
  private openRecords = 0;
  private openT0 = 0;
  private readonly queue: Batch[] = [];
  /** Batches sent and not yet answered, by seq. */
  protected readonly inflight = new Map<number, Batch>();
  private waiters: (() => void)[] = [];
  private idle: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private abandoned = false;
  private stopped = false;
  /** view()'s Buffers, one per source (the expander's output, the ring's wire records), and what they cover. */
  private readonly src: Buffer[] = [Buffer.alloc(0), Buffer.alloc(0)];
  private readonly srcOf: (Uint8Array | null)[] = [null, null];

  constructor(
    protected readonly batching: BatchingConfig,
    /** Bytes in front of each batch for its header. */
    private readonly room: number,
  ) {
    this.buf = Buffer.allocUnsafe(room + Math.min(batching.batch_bytes, 1 << 16));
    this.pos = room;
  }

  /** Appends one record to buf at pos (ensure() first), advancing pos. */
  protected abstract encode(rec: EncodedRecord): void;
  /** The request of the batch in buf[room, end): its header written in front (from at most `room` bytes before), seq as given. */
  protected abstract seal(buf: Buffer, room: number, end: number, records: number, seq: number): Buffer;
  /** The transport takes a batch now (connected, under its window). */
  protected abstract ready(): boolean;
  /** Sends b; it is in `inflight` until ack(), fail(), retry() or requeue(). */
  protected abstract transmit(b: Batch): void;

  start(): void | Promise<void> {
    this.timer = setInterval(() => this.tick(), Math.max(5, Math.min(this.batching.linger_ms, 100)));
  }

  /** Room for n more bytes at pos. */
  protected ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.pos + n));
    this.buf.copy(b, 0, 0, this.pos);
    this.buf = b;
  }

  /** A Buffer over u8's memory, made once per source (slot 0: the record's bytes, 1: its wire record's): native copies with no view per record. */
  protected view(u8: Uint8Array, slot: 0 | 1): Buffer {
    if (u8 !== this.srcOf[slot]) {
      this.srcOf[slot] = u8;
      this.src[slot] = Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
    }
    return this.src[slot]!;
  }

  report(rec: EncodedRecord): void {
    this.produced++;
    if (this.blocked) {
      this.drop('queue_full', 1);
      return;
    }
    if (this.openRecords === 0) this.openT0 = Date.now();
    this.encode(rec);
    this.openRecords++;
    this.held++;
    if (this.openRecords >= this.batching.batch_records || this.pos - this.room >= this.batching.batch_bytes) this.close();
    if (this.held >= this.batching.queue_max_records) this.blocked = true;
  }

  /** Closes the open batch into the queue, and sends what the transport takes. */
  private close(): void {
    if (this.openRecords === 0) return;
    const seq = ++this.seq;
    const body = this.seal(this.buf, this.room, this.pos, this.openRecords, seq);
    this.queue.push({ seq, body, records: this.openRecords, t0: Date.now(), attempts: 0, notBefore: 0 });
    this.openRecords = 0;
    this.buf = Buffer.allocUnsafe(this.buf.length);
    this.pos = this.room;
    this.pump();
  }

  /** Sends queued batches, oldest first, while the transport takes them. */
  protected pump(): void {
    if (this.stopped) return;
    const now = Date.now();
    while (this.queue.length > 0 && this.ready()) {
      const i = this.queue.findIndex((b) => b.notBefore <= now);
      if (i < 0) break;
      const b = this.queue.splice(i, 1)[0]!;
      b.attempts++;
      this.inflight.set(b.seq, b);
      this.transmit(b);
    }
  }

  /** Linger, and the deadline of queued and in-flight batches. */
  private tick(): void {
    const now = Date.now();
    if (this.openRecords > 0 && now - this.openT0 >= this.batching.linger_ms) this.close();
    const limit = now - this.batching.timeout_ms;
    for (let i = 0; i < this.queue.length; ) {
      const b = this.queue[i]!;
      if (b.t0 <= limit) {
        this.queue.splice(i, 1);
        this.timedOut(b);
      } else i++;
    }
    for (const b of this.inflight.values()) if (b.t0 <= limit) (this.inflight.delete(b.seq), this.timedOut(b));
    this.pump();
    this.settle();
  }

  private timedOut(b: Batch): void {
    this.held -= b.records;
    if (this.abandoned) return;
    this.timeouts += b.records;
    this.failures += b.records;
  }

  /** Batch seq acknowledged (nothing if it was given up meanwhile); `rejected` of its records refused by the peer. */
  protected ack(seq: number, rejected = 0): void {
    const b = this.take(seq);
    if (b === undefined) return;
    const r = Math.min(Math.max(0, rejected), b.records);
    if (r > 0) this.drop('rejected', r);
    this.acks += b.records - r;
    this.settle();
  }

  /** Batch seq failed for good. */
  protected fail(seq: number, reason: string): void {
    const b = this.take(seq);
    if (b === undefined) return;
    this.drop(reason, b.records);
    this.settle();
  }

  /** Batch seq is sent again, not before delayMs from now (within its deadline). */
  protected retry(seq: number, delayMs: number): void {
    const b = this.inflight.get(seq);
    if (b === undefined) return;
    this.inflight.delete(seq);
    b.notBefore = Date.now() + delayMs;
    this.queue.push(b);
    this.queue.sort((x, y) => x.seq - y.seq);
  }

  /** Every batch in flight goes back to the queue (a broken stream): sent again on the next one, oldest first. */
  protected requeue(): void {
    for (const b of this.inflight.values()) this.queue.push(b);
    this.inflight.clear();
    this.queue.sort((x, y) => x.seq - y.seq);
  }

  private take(seq: number): Batch | undefined {
    const b = this.inflight.get(seq);
    if (b === undefined) return undefined;
    this.inflight.delete(seq);
    this.held -= b.records;
    return this.abandoned ? undefined : b;
  }

  private drop(reason: string, n: number): void {
    this.errors[reason] = (this.errors[reason] ?? 0) + n;
    this.failures += n;
  }

  /** Wakes writable() and flush() waiters whose condition holds. */
  protected settle(): void {
    if (this.blocked && this.held < this.batching.queue_max_records * 0.9) {
      this.blocked = false;
      for (const f of this.waiters.splice(0)) f();
    }
    if (this.held === 0) for (const f of this.idle.splice(0)) f();
  }

  writable(): Promise<void> {
    if (!this.blocked) return Promise.resolve();
    return new Promise((res) => this.waiters.push(res));
  }

  get dropped(): number {
    return this.failures;
  }

  counters(): ReporterCounters {
    return { acked: this.acks, timeout: this.timeouts, errors: { ...this.errors }, queued: this.abandoned ? 0 : this.held };
  }

  /** Sends what is open; waits until nothing is held (every batch is answered or times out by timeout_ms), bounded by that plus 5 s. */
  async flush(): Promise<void> {
    this.close();
    if (this.held === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((res) => this.idle.push(res)), new Promise((res) => (timer = setTimeout(res, this.batching.timeout_ms + 5000)))]);
    clearTimeout(timer);
  }

  abandon(): number {
    if (this.abandoned) return 0;
    const n = this.held;
    if (n > 0) this.drop('abandoned', n);
    this.abandoned = true;
    this.queue.length = 0;
    this.inflight.clear();
    this.openRecords = 0;
    this.pos = this.room;
    this.held = 0;
    this.blocked = false;
    for (const f of this.waiters.splice(0)) f();
    for (const f of this.idle.splice(0)) f();
    return n;
  }

  async stop(): Promise<void> {
    // Whatever a bounded flush left is given up, so the counts add up.
    if (this.held > 0) this.abandon();
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.shutdown();
  }

  /** The transport's own shutdown. */
  protected abstract shutdown(): Promise<void>;
}
