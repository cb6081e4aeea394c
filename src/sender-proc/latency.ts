// Capture → sender latency of a live task: for every record the sender
// reads, the time since the kernel stamped its packet (the wire record's
// timestamp, CLOCK_REALTIME) when its batch reached the sender. Buckets are
// logarithmic, 8 per power of two (at most 12.5% wide), so p50/p99 cost one
// increment per record and a fixed 2 KiB.

import { readI32LE, readU32LE } from '../util/bytes.js';

const SUB = 8;
const BUCKETS = 40 * SUB; // up to 2^40 µs

export interface LatencySummary {
  /** Records measured (those with a timestamp). */
  records: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private n = 0;
  private max = 0;
  /** Now, in µs since the epoch: taken once per batch by the caller (its records reach the sender together). */
  nowUs = 0;

  /** The wire record at buf[off]: its packet's age now (records without a timestamp are skipped). */
  add(buf: Uint8Array, off: number): void {
    if ((buf[off + 1]! & 1) === 0) return; // WireFlag.Ts
    const sec = readI32LE(buf, off + 12) * 4294967296 + readU32LE(buf, off + 8);
    const us = this.nowUs - (sec * 1e6 + readU32LE(buf, off + 16) / 1000);
    const v = us < 1 ? 1 : us;
    if (v > this.max) this.max = v;
    const e = Math.floor(Math.log2(v));
    const i = Math.min(BUCKETS - 1, e * SUB + Math.floor((v / 2 ** e - 1) * SUB));
    this.counts[i]!++;
    this.n++;
  }

  summary(): LatencySummary {
    return { records: this.n, p50_us: this.quantile(0.5), p99_us: this.quantile(0.99), max_us: Math.round(this.max) };
  }

  /** The upper edge of the bucket holding the q-quantile, in µs. */
  private quantile(q: number): number {
    if (this.n === 0) return 0;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= q * this.n) return Math.round(2 ** Math.floor(i / SUB) * (1 + ((i % SUB) + 1) / SUB));
    }
    return Math.round(this.max);
  }
}
