// Counting young-generation collections around a synchronous run, for the
// tests that hold hot paths to no allocation per packet.

import { PerformanceObserver, constants } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

// Optimized code on the test's own thread, when a function gets hot: the compiler's thread, on a
// loaded machine, could lag thousands of rounds behind, and code not yet optimized boxes numbers
// (timestamps, TCP sequence numbers), which the measured run then counted as garbage (the HTTP
// path collected twice in one run in five with both cores busy, in every try of three).
setFlagsFromString('--no-concurrent-recompilation');

/** Young-generation collections (scavenges) while fn runs. */
export async function scavengesDuring(fn: () => void): Promise<number> {
  let gcs = 0;
  const obs = new PerformanceObserver((l) => {
    for (const e of l.getEntries()) {
      if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) gcs++;
      if (process.env.OTUS_GC_DEBUG) console.log((e as unknown as { detail?: unknown }).detail, e.duration);
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  fn();
  await new Promise((res) => setTimeout(res, 50));
  obs.disconnect();
  return gcs;
}

/**
 * The fewest scavenges of up to `tries` runs of `fn`, stopping at the first
 * with at most `allowed`. The optimizing compiler works beside the test: on a
 * loaded machine it can still be compiling when the measured run starts,
 * though warmUp saw the growth settle, and code not yet optimized boxes
 * numbers (seen with both cores busy: the HTTP path's run collected twice in
 * one of five, never in the run after). Code that allocates per packet fails
 * every run: 16 bytes a packet fill the young generation many times over.
 * `fn` must count what it checks itself, as it may run more than once.
 */
export async function fewestScavenges(fn: () => void, allowed: number, tries = 3): Promise<number> {
  let best = Infinity;
  for (let t = 0; t < tries && best > allowed; t++) best = Math.min(best, await scavengesDuring(fn));
  return best;
}

/** Bytes in use in the young generation. */
function youngBytes(): number {
  let n = 0;
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'new_space' || s.space_name === 'new_large_object_space') n += s.space_used_size;
  return n;
}

/**
 * Runs `warm` until a probe run of it looks like optimized code's: no
 * scavenge, the young generation grown by less than 1 MiB, and by no more
 * than the probe before it (within 10 %: at least two probes; at most ten
 * rounds). On a loaded machine the optimizing compiler, which runs
 * concurrently, can finish after a fixed warm-up, and code not yet
 * optimized boxes numbers (seen in CI: 7 and 8 scavenges in the first tests
 * of a process, none in its later ones). A probe that only counted
 * scavenges passed such code whenever its garbage fit in the young
 * generation's free space, and the ten times longer measured run then
 * collected. What a path allocates per batch or per flush (tens of KiB a
 * probe) stays the same from probe to probe. Garbage an earlier test left is
 * collected here too. Allocation per packet in optimized code fails the
 * measured run.
 */
export async function warmUp(warm: () => void): Promise<void> {
  let last = -Infinity;
  for (let round = 0; round < 10; round++) {
    warm();
    let grown = 0;
    const gcs = await scavengesDuring(() => {
      const before = youngBytes();
      warm();
      grown = youngBytes() - before;
    });
    if (process.env.OTUS_GC_DEBUG) console.log('warm-up probe', round, gcs, grown);
    if (gcs === 0 && grown < 1 << 20 && grown <= 1.1 * last + 4096) return;
    last = gcs === 0 ? grown : -Infinity;
  }
}
