// The TCP reassembly's memory bound holds for the process, not only for its
// own count: a flood of half-sent SIP/TCP connections (each the start of an
// INVITE the parser keeps waiting for its end, and a segment after a hole)
// through a capture process's pipeline, in a process of its own
// (test/helpers/tcp-flood-child.ts). maxBytes counts what is allocated
// (per connection, buffer capacity, out-of-order copies and their vectors),
// and buffers are reused rather than left to the GC, so the process's RSS
// stays within the bound plus a fixed overhead, and what it keeps after a
// full GC is the same after 100 000 connections as after 300 000.
//
// Peaks between GCs are not compared across flood sizes: on a busy machine
// the GC runs late and the peak holds garbage of whatever age; what the
// process keeps is the property.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHILD = join(fileURLToPath(new URL('.', import.meta.url)), '../helpers/tcp-flood-child.js');
const MiB = 1 << 20;
const MAX_BYTES = 64 * MiB;
/** Beyond the bound: the V8 heap's slack and what the GC has not collected yet, the pools (streams, 2 KiB blocks), code. Measured 22-34 MiB. */
const OVERHEAD = 48 * MiB;
const CHECKPOINT = 100_000;
/** Kept RSS after 300 000 connections against after 100 000: measured +0.3 MiB. A leak of 32 bytes a connection would show 6 MiB. */
const KEPT_SLACK = 4 * MiB;

interface Flood {
  base: number;
  peak: number;
  kept: number[];
  stats: Record<string, number>;
}

test('a flood of half-sent SIP/TCP connections: RSS stays within maxBytes plus a fixed overhead, and what it keeps does not grow with the flood', () => {
  const out = execFileSync(process.execPath, ['--expose-gc', CHILD, String(3 * CHECKPOINT), String(MAX_BYTES), String(CHECKPOINT)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  const f = JSON.parse(out) as Flood;
  const mb = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
  const st = f.stats;
  assert.equal(f.kept.length, 3);
  assert.ok(st.evictedMemory > 3 * CHECKPOINT / 2, `the bound was reached (${st.evictedMemory} evicted)`);
  assert.ok(st.memoryHeldMax <= MAX_BYTES + 64 * 1024, `counted ${mb(st.memoryHeldMax)}`);
  assert.ok(f.peak - f.base <= MAX_BYTES + OVERHEAD, `RSS ${mb(f.base)} → ${mb(f.peak)}, over ${mb(MAX_BYTES + OVERHEAD)}`);
  const [after100k, , after300k] = f.kept as [number, number, number];
  assert.ok(after300k - after100k <= KEPT_SLACK, `kept RSS grew with the flood: ${mb(after100k)} after 100 000 connections → ${mb(after300k)} after 300 000`);
});
