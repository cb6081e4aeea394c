// Where a pipeline puts encoded records: the send ring's producer side.
// src/shm/ring.ts's RingProducer has exactly this shape (reserve → write in
// `u8` → commit) and is what capture processes use; MemorySink is the
// in-process one for tests.

import type { KeyTracker } from './label-keys.js';

/** Producer side of a record ring: reserve → write in place → commit. */
export interface RecordSink {
  /**
   * Reserves `len` bytes for one record: an offset into `u8`, or -1 when full
   * (the caller drops and counts). `weight`: what the record stands for (a
   * batch: its records), for a ring that counts what it drops later.
   */
  reserve(len: number, weight?: number): number;
  /** The memory reserve()'s offsets point into. Read it after each reserve: it may change between calls. */
  readonly u8: Uint8Array;
  /** Publishes the record reserved at `off`. */
  commit(off: number): void;
}

/**
 * A sink the pipeline encodes straight into, skipping the copy from its
 * scratch buffer (BatchSink): open() is where the next record's bytes go,
 * with room up to `limit`; close(end) publishes them.
 */
export interface DirectSink extends RecordSink {
  open(): number;
  readonly limit: number;
  close(end: number): void;
  /** Records waiting to be flushed. */
  readonly pending: number;
  /** Publishes what is pending (makes room). */
  flush(): boolean;
  /** The label keys the pending wire records use (the batch names them). */
  readonly keys: KeyTracker;
}

export function isDirectSink(s: RecordSink): s is DirectSink {
  return typeof (s as Partial<DirectSink>).open === 'function' && typeof (s as Partial<DirectSink>).close === 'function';
}

/**
 * In-process sink: records framed as [u32 LE length][bytes] in one growing
 * (or, with maxBytes, bounded) buffer. For tests and in-process consumers.
 */
export class MemorySink implements RecordSink {
  u8: Uint8Array;
  private used = 0;
  private pending = -1;
  count = 0;
  /** reserve() refusals (only with maxBytes). */
  full = 0;

  constructor(
    initial = 1 << 20,
    private readonly maxBytes = Infinity,
  ) {
    this.u8 = new Uint8Array(initial);
  }

  reserve(len: number): number {
    const need = this.used + 4 + len;
    if (need > this.maxBytes) {
      this.full++;
      return -1;
    }
    if (need > this.u8.length) {
      const next = new Uint8Array(Math.min(Math.max(need, this.u8.length * 2), this.maxBytes));
      next.set(this.u8.subarray(0, this.used));
      this.u8 = next;
    }
    const b = this.u8;
    const at = this.used;
    b[at] = len;
    b[at + 1] = len >>> 8;
    b[at + 2] = len >>> 16;
    b[at + 3] = len >>> 24;
    this.used = at + 4 + len;
    this.pending = at + 4;
    return at + 4;
  }

  commit(off: number): void {
    if (off !== this.pending) throw new Error(`MemorySink: commit(${off}) without a matching reserve`);
    this.pending = -1;
    this.count++;
  }

  /** Copies of the committed records, in order. */
  records(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let at = 0; at < this.used; ) {
      const len = this.u8[at] | (this.u8[at + 1] << 8) | (this.u8[at + 2] << 16) | (this.u8[at + 3] << 24);
      out.push(this.u8.slice(at + 4, at + 4 + len));
      at += 4 + len;
    }
    return out;
  }

  clear(): void {
    this.used = 0;
    this.count = 0;
  }
}
