// Counting young-generation collections around a synchronous run, for the
// tests that hold hot paths to no allocation per packet.

import { PerformanceObserver, constants } from 'node:perf_hooks';

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
 * Runs `warm` until a probe run of it sees no scavenge (at most five
 * rounds). On a loaded machine the optimizing compiler, which runs
 * concurrently, can finish after a fixed warm-up, and code not yet
 * optimized boxes numbers (seen once in CI: 8 scavenges in the first tests
 * of a process, none in its later ones); garbage an earlier test left is
 * collected here too. Allocation per packet in optimized code fails every
 * probe, and then the measured run.
 */
export async function warmUp(warm: () => void): Promise<void> {
  for (let round = 0; round < 5; round++) {
    warm();
    if ((await scavengesDuring(warm)) === 0) return;
  }
}
