// A child process's own Node.js figures, for its slot of the task's stats
// segment (src/shm/stats.ts): memory, CPU, event-loop delay and garbage
// collections. Read at heartbeat rate; nothing here runs per packet. The
// event-loop delay comes from perf_hooks' sampling timer (as prom-client's own
// default metrics use; every 50 ms rather than its 10, so an idle capture
// process wakes 20 times a second for it: a blocked loop still shows in full,
// in the firing it delays), GC from a PerformanceObserver (one entry per
// collection).

import { constants, monitorEventLoopDelay, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';

const RESOLUTION_MS = 50;

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export class NodeProcessStats {
  private readonly delay: IntervalHistogram;
  private readonly gc: PerformanceObserver;
  private readonly gcRuns: Record<string, number> = { minor: 0, major: 0, incremental: 0, weakcb: 0 };
  private readonly gcSeconds: Record<string, number> = { minor: 0, major: 0, incremental: 0, weakcb: 0 };
  private readonly c0 = process.cpuUsage();
  private lastCpu = 0;
  private lastWall = performance.now();

  constructor() {
    this.delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.delay.enable();
    this.gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = GC_KINDS[(e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'minor';
        this.gcRuns[kind]!++;
        this.gcSeconds[kind]! += e.duration / 1000;
      }
    });
    this.gc.observe({ entryTypes: ['gc'] });
  }

  /** CPU seconds (user + system) since this object was made. */
  cpuSeconds(): number {
    const c = process.cpuUsage(this.c0);
    return (c.user + c.system) / 1e6;
  }

  /**
   * Counters (since this process started) and gauges (now; the event-loop
   * delay and the CPU ratio over the time since the previous call), named
   * under `node.`.
   */
  sample(): { counters: Record<string, number>; gauges: Record<string, number> } {
    const cpu = this.cpuSeconds();
    const now = performance.now();
    const ratio = now > this.lastWall ? (cpu - this.lastCpu) / ((now - this.lastWall) / 1000) : 0;
    this.lastCpu = cpu;
    this.lastWall = now;
    const m = process.memoryUsage();
    const d = this.delay;
    // The histogram counts the timer's delay beyond its resolution, in ns; empty until it has fired once.
    const lag = (q: number): number => (d.count > 0 ? Math.max(0, d.percentile(q) / 1e9 - RESOLUTION_MS / 1000) : 0);
    const gauges = {
      'node.rss_bytes': m.rss,
      'node.heap_used_bytes': m.heapUsed,
      'node.heap_total_bytes': m.heapTotal,
      'node.external_bytes': m.external,
      'node.cpu_ratio': ratio,
      'node.eventloop_lag_p50_seconds': lag(50),
      'node.eventloop_lag_p99_seconds': lag(99),
      'node.eventloop_lag_max_seconds': d.count > 0 ? Math.max(0, d.max / 1e9 - RESOLUTION_MS / 1000) : 0,
    };
    d.reset();
    const counters: Record<string, number> = { 'node.cpu_seconds': cpu };
    for (const k in this.gcRuns) {
      counters[`node.gc_runs.${k}`] = this.gcRuns[k]!;
      counters[`node.gc_seconds.${k}`] = this.gcSeconds[k]!;
    }
    return { counters, gauges };
  }

  stop(): void {
    this.delay.disable();
    this.gc.disconnect();
  }
}
