// The sender's capture → sender latency histogram (src/sender-proc/latency.ts):
// its p50/p99 against the exact quantiles of known ages, records without a
// timestamp skipped.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyHistogram } from '../../src/sender-proc/latency.js';

/** A wire record header with a timestamp `ageUs` before `nowUs` (flags: 1 = has ts). */
function header(nowUs: number, ageUs: number, hasTs = true): Uint8Array {
  const b = new Uint8Array(56);
  const v = new DataView(b.buffer);
  const t = nowUs - ageUs;
  const sec = Math.floor(t / 1e6);
  b[1] = hasTs ? 1 : 0;
  v.setUint32(8, sec % 4294967296, true);
  v.setInt32(12, Math.floor(sec / 4294967296), true);
  v.setUint32(16, Math.round((t - sec * 1e6) * 1000), true);
  return b;
}

test('latency quantiles fall within one bucket (12.5%) of the exact ones; untimed records are skipped', () => {
  const h = new LatencyHistogram();
  h.nowUs = 1_764_000_000_000_000; // µs since the epoch, late 2025
  // Ages 1..10000 µs with a long tail: 1% of them 50 ms.
  const ages: number[] = [];
  for (let i = 1; i <= 9900; i++) ages.push(i);
  for (let i = 0; i < 100; i++) ages.push(50_000 + i);
  for (const a of ages) h.add(header(h.nowUs, a), 0);
  h.add(header(h.nowUs, 7, false), 0);
  const s = h.summary();
  assert.equal(s.records, ages.length);
  const exact = (q: number): number => ages[Math.ceil(q * ages.length) - 1]!;
  for (const [got, want] of [
    [s.p50_us, exact(0.5)],
    [s.p99_us, exact(0.99)],
  ] as const) assert.ok(got >= want && got <= want * 1.125 + 1, `quantile ${got} vs exact ${want}`);
  assert.ok(Math.abs(s.max_us - 50_099) <= 1, `max ${s.max_us}`);
});

test('a quantile in the max\'s own bucket is the max, not the bucket\'s upper edge', () => {
  const h = new LatencyHistogram();
  h.nowUs = 1_764_000_000_000_000;
  // 12000 µs lies in the bucket [11264, 12288): p50 and p99 are there, and may not read above the max.
  for (let i = 0; i < 100; i++) h.add(header(h.nowUs, i < 50 ? 100 : 12_000), 0);
  const s = h.summary();
  assert.ok(Math.abs(s.max_us - 12_000) <= 1, `max ${s.max_us}`);
  assert.equal(s.p99_us, s.max_us);
  assert.ok(s.p50_us >= 100 && s.p50_us <= 113, `p50 ${s.p50_us}`);
});
