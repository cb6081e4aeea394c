// Runs test/helpers/tcp-flood-child.ts (a flood of half-sent TCP
// connections through a capture process's pipeline, in a process of its
// own) for the memory tests (test/pipeline/tcp-memory.test.ts,
// http-memory.test.ts), and checks what they share: what the process keeps
// after a full GC is the same after 100 000 connections as after 300 000.
// Peaks between GCs hold garbage of whatever age on a busy machine and are
// not compared across flood sizes.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHILD = join(fileURLToPath(new URL('.', import.meta.url)), 'tcp-flood-child.js');
export const MiB = 1 << 20;
/** The reassembler's maxBytes in every flood. */
export const MAX_BYTES = 64 * MiB;
export const CHECKPOINT = 100_000;
/** Kept RSS after 300 000 connections against after 100 000: measured +0.1 to +1.3 MiB. A leak of 32 bytes a connection would show 6 MiB. */
const KEPT_SLACK = 4 * MiB;

export interface Flood {
  /** RSS before the flood, the most it reached, after a full GC at each checkpoint. */
  base: number;
  peak: number;
  kept: number[];
  /** The reassembler's counters, and the http parser's (http kinds). */
  stats: Record<string, number>;
  parser: Record<string, number>;
}

export const mb = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;

/** 300 000 connections of `kind` (sip, http-head, http-body; the http parser's max_held_bytes `maxHeld`), their kept RSS checked flat. */
export function flood(kind: string, maxHeld = 64 * MiB): Flood {
  const out = execFileSync(process.execPath, ['--expose-gc', CHILD, String(3 * CHECKPOINT), String(MAX_BYTES), String(CHECKPOINT), kind, String(maxHeld)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  const f = JSON.parse(out) as Flood;
  assert.equal(f.kept.length, 3);
  const [after100k, , after300k] = f.kept as [number, number, number];
  assert.ok(after300k - after100k <= KEPT_SLACK, `${kind}: kept RSS grew with the flood: ${mb(after100k)} after 100 000 connections → ${mb(after300k)} after 300 000`);
  return f;
}
