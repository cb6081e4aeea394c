// The supervisor's young generation and code. Imported first by the command
// line (src/cli/heap.ts), so it imports nothing of ours.

import { setFlagsFromString } from 'node:v8';

/** Whether a node flag sizes V8's young generation. */
export function sizesYoungGeneration(flag: string): boolean {
  return flag.startsWith('--max-semi-space-size') || flag.startsWith('--min-semi-space-size') || flag.startsWith('--semi-space-growth-factor');
}

/**
 * Keeps this process's young generation at its initial 1 MiB semi-space (the
 * effect of `--max-semi-space-size=1`, which V8 reads only at start-up, so it
 * cannot be set from inside): the supervisor allocates little, and V8 grows
 * the semi-space to 16 MiB on bursts of it. Measured (bench/memory.ts, 10 K
 * calls): the supervisor ~30 MiB less PSS. Does nothing when the command line
 * sizes the young generation itself; returns whether it acted. Not inherited:
 * children get their flags from execArgv.
 */
export function holdYoungGeneration(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some(sizesYoungGeneration)) return false;
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}

/**
 * V8 flags that trade the supervisor's speed for memory: nothing per packet
 * runs there (control requests, beats, log lines, a metrics scrape), so its
 * code need not be optimised. `--lite-mode` would do more, but it implies
 * `--jitless`, which takes WebAssembly and with it fetch (the Loki output),
 * and it cannot be set once V8 runs; these can, and each is read when used.
 * Measured (bench/memory.ts, 1000 calls): the supervisor's anonymous memory
 * 44 → 26 MiB (--optimize-for-size alone: 34, the two tiers off alone: 36).
 */
export const LEAN_FLAGS = ['--optimize-for-size', '--no-opt', '--no-sparkplug', '--max-lazy'];

/** A flag's name without its value and without `no-`: `--no-opt` → `opt`. */
function flagName(flag: string): string {
  return flag.replace(/^--/, '').replace(/=.*$/, '').replace(/^no-/, '').replace(/_/g, '-');
}

/** LEAN_FLAGS but those node's command line names (`--opt` given by an operator wins). */
export function leanFlags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map(flagName));
  return LEAN_FLAGS.filter((f) => !given.has(flagName(f)));
}

/** Sets leanFlags in this process; returns them. Not inherited: children get their flags from execArgv. */
export function leanCode(execArgv: readonly string[] = process.execArgv): string[] {
  const set = leanFlags(execArgv);
  for (const f of set) setFlagsFromString(f);
  return set;
}
