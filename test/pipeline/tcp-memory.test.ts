// The TCP reassembly's memory bound holds for the process, not only for its
// own count: a flood of half-sent SIP/TCP connections (each the start of an
// INVITE the parser keeps waiting for its end, and a segment after a hole)
// through a capture process's pipeline, in a process of its own
// (test/helpers/tcp-flood-child.ts). maxBytes counts what is allocated
// (per connection, buffer capacity, out-of-order copies and their vectors),
// and buffers are reused rather than left to the GC, so the process's RSS
// stays within the bound plus a fixed overhead, however many connections
// come: 100 000 and 300 000 reach the same peak.

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

interface Flood {
  base: number;
  peak: number;
  stats: Record<string, number>;
}

function flood(connections: number): Flood {
  const out = execFileSync(process.execPath, ['--expose-gc', CHILD, String(connections), String(MAX_BYTES)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out) as Flood;
}

test('a flood of half-sent SIP/TCP connections: RSS stays within maxBytes plus a fixed overhead, and does not grow with the flood', () => {
  const a = flood(100_000);
  const b = flood(300_000);
  const mb = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;
  for (const [n, f] of [[100_000, a], [300_000, b]] as const) {
    const st = f.stats;
    assert.ok(st.evictedMemory > n / 2, `${n}: the bound was reached (${st.evictedMemory} evicted)`);
    assert.ok(st.memoryHeldMax <= MAX_BYTES + 64 * 1024, `${n}: counted ${mb(st.memoryHeldMax)}`);
    assert.ok(f.peak - f.base <= MAX_BYTES + OVERHEAD, `${n} connections: RSS ${mb(f.base)} → ${mb(f.peak)}, over ${mb(MAX_BYTES + OVERHEAD)}`);
  }
  assert.ok(b.peak - a.peak <= 16 * MiB, `RSS peak grew with the flood: ${mb(a.peak)} → ${mb(b.peak)}`);
});
