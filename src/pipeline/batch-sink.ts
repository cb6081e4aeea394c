// Records batched into one send-ring record. A ring reservation costs a
// handful of atomic operations on a cache line every capture process of
// the task writes; per record that was a third of the RTP fast path. So a
// capture process writes records straight into a local batch buffer and
// moves the batch into the ring with one reserve, one copy and one commit:
// when it passes FLUSH_BYTES, at the end of each capture block (latency
// stays within one block), and at the end of input.
//
// A batch names the label keys its records use (their ids are per process,
// label-keys.ts), so it is read on its own:
//
//    0  u32 offset of the key names, from the batch's start
//    4  records: u32 length, the wire record, padding to 4 bytes
//    D  u16 key count, then per key: u16 id, u8 length, the name (UTF-8)
//
// Ring full: the whole batch is dropped and its records counted
// (droppedRecords), as drop-tail would have counted them one by one.

import { readU32LE, writeU32LE } from '../util/bytes.js';
import { BatchKeys, KeyTracker, labelKeyBytes } from './label-keys.js';
import type { DirectSink, RecordSink } from './sink.js';

/** A batch goes to the ring once it holds this many bytes. */
export const FLUSH_BYTES = 32 * 1024;
/** ... or names this many keys (so the names always fit in NAMES_ROOM: 256 keys of 255 bytes). */
const FLUSH_KEYS = 192;
const NAMES_ROOM = 80 * 1024;

const align4 = (n: number): number => (n + 3) & ~3;

export class BatchSink implements DirectSink {
  readonly u8: Uint8Array;
  readonly limit: number;
  /** The key ids used by the records in the batch. */
  readonly keys = new KeyTracker();
  private used = 4;
  private count = 0;
  /** Records committed to the ring, and batches. */
  records = 0;
  batches = 0;
  /** Records (and their batches) dropped because the ring was full. */
  droppedRecords = 0;
  droppedBatches = 0;
  /** Called before a batch goes to the ring (a live capture process copies its counters then: src/capture-proc/counters.ts). */
  onFlush: (() => void) | null = null;

  constructor(
    private readonly ring: RecordSink,
    /** Largest record: after a flush there is always room for one. */
    maxRecordBytes: number,
  ) {
    this.limit = align4(FLUSH_BYTES + 8 + maxRecordBytes);
    this.u8 = new Uint8Array(this.limit + NAMES_ROOM);
  }

  /** Records waiting in the batch. */
  get pending(): number {
    return this.count;
  }

  open(): number {
    return this.used + 4;
  }

  close(end: number): void {
    writeU32LE(this.u8, this.used, end - this.used - 4);
    this.publish(end);
  }

  /** Moves the batch into the ring. False when the ring had no room (the batch is dropped and counted). */
  flush(): boolean {
    if (this.count === 0) return true;
    this.onFlush?.();
    const b = this.u8;
    const k = this.keys;
    let n = this.used;
    writeU32LE(b, 0, n);
    b[n] = k.count;
    b[n + 1] = k.count >>> 8;
    n += 2;
    for (let i = 0; i < k.count; i++) {
      const id = k.used[i];
      const name = labelKeyBytes(id);
      b[n] = id;
      b[n + 1] = id >>> 8;
      b[n + 2] = name.length;
      b.set(name, n + 3);
      n += 3 + name.length;
    }
    const count = this.count;
    this.used = 4;
    this.count = 0;
    k.reset();
    const ring = this.ring;
    const at = ring.reserve(n, count);
    if (at < 0) {
      this.droppedRecords += count;
      this.droppedBatches++;
      return false;
    }
    ring.u8.set(b.subarray(0, n), at);
    ring.commit(at);
    this.records += count;
    this.batches++;
    return true;
  }

  // RecordSink, for callers that know the length first.
  reserve(len: number): number {
    if (this.used + 4 + len > this.limit) this.flush();
    if (this.used + 4 + len > this.limit) return -1;
    writeU32LE(this.u8, this.used, len);
    return this.used + 4;
  }

  commit(off: number): void {
    this.publish(off + readU32LE(this.u8, off - 4));
  }

  private publish(end: number): void {
    this.used = align4(end);
    this.count++;
    if (this.used >= FLUSH_BYTES || this.keys.count > FLUSH_KEYS) this.flush();
  }
}

/** Walks the records of one batch in place: start(), then next() until it returns -1. */
export class BatchReader {
  /** The key names of the batch being read. */
  readonly keys = new BatchKeys();
  /** Offset and length of the record last returned by next(). */
  off = 0;
  len = 0;
  /** Batches whose framing was broken (what was left of them is skipped). */
  broken = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private base = 0;
  private pos = 0;
  private end = 0;

  /** Starts on the batch at buf[off, off+len); false (counted) when its framing is broken. */
  start(buf: Uint8Array, off: number, len: number): boolean {
    this.buf = buf;
    this.base = off;
    this.pos = this.end = off;
    const d = len >= 6 ? readU32LE(buf, off) : 0;
    if (d < 4 || d + 2 > len) return this.fail();
    const keys = this.keys;
    keys.begin(buf);
    const stop = off + len;
    let p = off + d;
    const n = buf[p] | (buf[p + 1] << 8);
    p += 2;
    for (let i = 0; i < n; i++) {
      if (p + 3 > stop) return this.fail();
      const kl = buf[p + 2];
      if (p + 3 + kl > stop) return this.fail();
      keys.add(buf[p] | (buf[p + 1] << 8), p + 3, kl);
      p += 3 + kl;
    }
    this.pos = off + 4;
    this.end = off + d;
    return true;
  }

  next(): number {
    const p = this.pos;
    if (p >= this.end) return -1;
    const n = this.end - p >= 4 ? readU32LE(this.buf, p) : -1;
    if (n < 0 || n > this.end - p - 4) {
      this.fail();
      return -1;
    }
    this.off = p + 4;
    this.len = n;
    this.pos = this.base + align4(p + 4 + n - this.base);
    return n;
  }

  private fail(): false {
    this.broken++;
    this.pos = this.end;
    return false;
  }
}
