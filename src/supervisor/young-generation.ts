// The supervisor's young generation. Imported first by the command line
// (src/cli/heap.ts), so it imports nothing of ours.

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
