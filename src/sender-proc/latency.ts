// Capture → sender latency of a live task: for every record the sender
// reads, the time since the kernel stamped its packet (the wire record's
// timestamp, CLOCK_REALTIME) when its batch reached the sender. Buckets are
// logarithmic, 8 per power of two (at most 12.5% wide), so p50/p99 cost one
// increment per record and a fixed 2.5 KiB. The sender copies the buckets into
// its slot of the task's stats segment at heartbeat rate (src/shm/stats.ts),
// where the supervisor exposes them as a Prometheus histogram.

import { readI32LE, readU32LE } from '../util/bytes.js';

const SUB = 8;
export const LATENCY_BUCKETS = 40 * SUB; // up to 2^40 µs
const BUCKETS = LATENCY_BUCKETS;

/** The upper edge of bucket i, in µs. */
export function latencyBucketEdge(i: number): number {
  return 2 ** Math.floor(i / SUB) * (1 + ((i % SUB) + 1) / SUB);
}

/**
 * p50, p99 and max of bucket counts (any histogram of this layout, e.g.
 * summed over incarnations). A quantile is its bucket's upper edge, or the
 * max when that is lower (the max's own bucket): never above the max.
 */
export function latencySummary(counts: ArrayLike<number>, max: number): LatencySummary {
  let n = 0;
  for (let i = 0; i < BUCKETS; i++) n += counts[i] ?? 0;
  const quantile = (q: number): number => {
    if (n === 0) return 0;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += counts[i] ?? 0;
      if (seen >= q * n) return Math.round(Math.min(latencyBucketEdge(i), max));
    }
    return Math.round(max);
  };
  return { records: n, p50_us: quantile(0.5), p99_us: quantile(0.99), max_us: Math.round(max) };
}

export interface LatencySummary {
  /** Records measured (those with a timestamp). */
  records: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
}

export class LatencyHistogram {
  /** Records per bucket (read-only to callers). */
  readonly counts = new Float64Array(BUCKETS);
  /** The largest latency and the sum of all, in µs. */
  max = 0;
  sumUs = 0;
  /** Now, in µs since the epoch: taken once per batch by the caller (its records reach the sender together). */
  nowUs = 0;

  /** The wire record at buf[off]: its packet's age now (records without a timestamp are skipped). */
  add(buf: Uint8Array, off: number): void {
    if ((buf[off + 1]! & 1) === 0) return; // WireFlag.Ts
    const sec = readI32LE(buf, off + 12) * 4294967296 + readU32LE(buf, off + 8);
    const us = this.nowUs - (sec * 1e6 + readU32LE(buf, off + 16) / 1000);
    const v = us < 1 ? 1 : us;
    if (v > this.max) this.max = v;
    this.sumUs += v;
    const e = Math.floor(Math.log2(v));
    const i = Math.min(BUCKETS - 1, e * SUB + Math.floor((v / 2 ** e - 1) * SUB));
    this.counts[i]!++;
  }

  summary(): LatencySummary {
    return latencySummary(this.counts, this.max);
  }
}
