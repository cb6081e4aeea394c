// The TCP reassembly's memory bound holds for the process, not only for its
// own count: a flood of half-sent SIP/TCP connections (each the start of an
// INVITE the parser keeps waiting for its end, and a segment after a hole)
// through a capture process's pipeline, in a process of its own
// (test/helpers/tcp-flood-child.ts). maxBytes counts what is allocated
// (per connection, buffer capacity, out-of-order copies and their vectors),
// and buffers are reused rather than left to the GC, so the process's RSS
// stays within the bound plus a fixed overhead, and what it keeps after a
// full GC is the same after 100 000 connections as after 300 000.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHECKPOINT, flood, MAX_BYTES, mb, MiB } from '../helpers/tcp-flood.js';

/** Beyond the bound: the V8 heap's slack and what the GC has not collected yet, the pools (streams, 2 KiB blocks), code. Measured 22-34 MiB. */
const OVERHEAD = 48 * MiB;

test('a flood of half-sent SIP/TCP connections: RSS stays within maxBytes plus a fixed overhead, and what it keeps does not grow with the flood', () => {
  const f = flood('sip');
  const st = f.stats;
  assert.ok(st.evictedMemory > 3 * CHECKPOINT / 2, `the bound was reached (${st.evictedMemory} evicted)`);
  assert.ok(st.memoryHeldMax <= MAX_BYTES + 64 * 1024, `counted ${mb(st.memoryHeldMax)}`);
  assert.ok(f.peak - f.base <= MAX_BYTES + OVERHEAD, `RSS ${mb(f.base)} → ${mb(f.peak)}, over ${mb(MAX_BYTES + OVERHEAD)}`);
});
