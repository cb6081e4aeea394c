// What a Prometheus scrape costs the supervisor: a daemon with 2 tasks of 2
// capture processes each (sip + rtp, on `lo`), scraped --scrapes times one
// after another; reports the exposition's size, the wall time per scrape
// (request to last byte, p50/p99) and the supervisor's CPU time per scrape
// (its utime + stime from /proc over all scrapes, idle time subtracted: the
// same span measured without scrapes first). Needs root (capture sockets).
//
//   node dist/bench/metrics.js [--scrapes 500] [--tasks 2] [--workers 2]
//
// Recorded `node dist/bench/metrics.js --scrapes 500`, 2 x AMD EPYC (KVM),
// Node 20.20.2, load average ~6 (machine shared): exposition 60 KB, 604-613
// samples; wall per scrape p50 2.1 ms, p99 12-16 ms; supervisor CPU per
// scrape 2.2-2.3 ms. Before the registry's live entries were derived from its
// counters, the walk of its 65536 slots per task made it 3.8-4.0 ms.

import { benchArgs, int, opt } from './cli.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectDaemon, cpu, freePort } from './proc.js';

const o = benchArgs({ scrapes: opt(500, int), tasks: opt(2, int), workers: opt(2, int) });
const SCRAPES = o.scrapes;
const TASKS = o.tasks;
const WORKERS = o.workers;
const OTUS = fileURLToPath(new URL('../src/cli/otus.js', import.meta.url));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


async function main(): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'otus-bench-metrics-'));
  const socket = join(dir, 'otus.sock');
  const port = await freePort();
  writeFileSync(join(dir, 'otus.yml'), `otus:\n  control:\n    socket: ${socket}\n  metrics:\n    listen: 127.0.0.1:${port}\n  resources:\n    max_workers: ${TASKS * WORKERS}\n    ring_bytes: 1048576\n`);
  const d = spawn(process.execPath, [...(process.env.OTUS_BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.OTUS_BENCH_PROF] : []), OTUS, 'daemon', '--config', join(dir, 'otus.yml')], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const c = await connectDaemon(socket);
    for (let t = 0; t < TASKS; t++) {
      await c.call('task.create', {
        task: { id: `bench${t}`, capture: { interface: 'lo', workers: WORKERS }, parsers: [{ plugin: 'sip' }, { plugin: 'rtp' }], reporter: { type: 'console' }, unmatched_policy: 'drop' },
      });
    }
    c.close();
    await sleep(2500); // every child has beaten and published
    const url = `http://127.0.0.1:${port}/metrics`;
    const first = await (await fetch(url)).text();
    const series = first.split('\n').filter((l) => l && !l.startsWith('#')).length;
    // Warm up, then the same span idle and scraping.
    for (let i = 0; i < 50; i++) await (await fetch(url)).text();
    const times: number[] = [];
    const c0 = cpu(d.pid!);
    const t0 = performance.now();
    for (let i = 0; i < SCRAPES; i++) {
      const s = performance.now();
      await (await fetch(url)).text();
      times.push(performance.now() - s);
    }
    const span = performance.now() - t0;
    const busy = cpu(d.pid!) - c0;
    const i0 = cpu(d.pid!);
    await sleep(span);
    const idle = cpu(d.pid!) - i0;
    times.sort((a, b) => a - b);
    const q = (f: number): number => times[Math.min(times.length - 1, Math.floor(f * times.length))]!;
    console.log(`machine: ${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    console.log(`${TASKS} tasks x ${WORKERS} capture processes: exposition ${Buffer.byteLength(first)} bytes, ${series} samples`);
    console.log(`${SCRAPES} scrapes: wall per scrape p50 ${q(0.5).toFixed(2)} ms, p99 ${q(0.99).toFixed(2)} ms; supervisor CPU per scrape ${(((busy - idle) / SCRAPES) * 1000).toFixed(2)} ms (${busy.toFixed(2)} s scraping, ${idle.toFixed(2)} s idle over the same ${(span / 1000).toFixed(1)} s)`);
  } finally {
    d.kill('SIGTERM');
    await new Promise((r) => d.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
