// The daemon as an operator meets it: memory (RSS and PSS, from
// /proc/<pid>/smaps_rollup) of the supervisor idle and with one task of two
// capture processes on `lo`, and the time from `kill -9` of a capture
// process to its successor capturing (task status says running with a new
// pid), 20 times. Needs root (the capture sockets).
//
//   node dist/bench/daemon.js [--kills 20] [--workers 2]

import { benchArgs, int, opt } from './cli.js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MiB, connectDaemon, mem } from './proc.js';

const o = benchArgs({ kills: opt(20, int), workers: opt(2, int) });
const KILLS = o.kills;
const WORKERS = o.workers;
const OTUS = fileURLToPath(new URL('../src/cli/otus.js', import.meta.url));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Proc {
  role: string;
  index: number;
  pid: number;
  state: string;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'otus-bench-daemon-'));
  const socket = join(dir, 'otus.sock');
  // healthy_ms short, so every kill meets the first backoff step (100 ms) rather than a grown one.
  writeFileSync(
    join(dir, 'otus.yml'),
    `otus:\n  log:\n    level: warn\n  control:\n    socket: ${socket}\n  supervisor:\n    heartbeat_ms: 1000\n    watchdog_ms: 5000\n    restart:\n      initial_ms: 100\n      healthy_ms: 300\n      budget: ${KILLS + 5}\n      window_ms: 60000\n`,
  );
  const d = spawn(process.execPath, [OTUS, 'daemon', '--config', join(dir, 'otus.yml')], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const c = await connectDaemon(socket);
    await sleep(500);
    const idle = mem(d.pid!);
    await c.call('task.create', {
      task: { id: 'bench', capture: { interface: 'lo', workers: WORKERS }, parsers: [{ plugin: 'sip' }, { plugin: 'rtp' }], reporter: { type: 'console' }, unmatched_policy: 'drop' },
    });
    await sleep(1000);
    const status = (): Promise<{ processes: Proc[] }> => c.call('task.status', { id: 'bench' });
    const procs = (await status()).processes;
    const withTask = mem(d.pid!);
    const children = procs.map((p) => ({ name: p.role === 'sender' ? 'sender' : `capture ${p.index}`, ...mem(p.pid) }));
    const times: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      await sleep(400); // past healthy_ms: the next restart waits the first backoff step
      const victim = (await status()).processes.find((p) => p.role === 'capture' && p.index === k % WORKERS)!;
      const t0 = performance.now();
      process.kill(victim.pid, 'SIGKILL');
      for (;;) {
        const p = (await status()).processes.find((x) => x.role === 'capture' && x.index === victim.index)!;
        if (p.state === 'running' && p.pid !== victim.pid) break;
        await sleep(5);
      }
      times.push(performance.now() - t0);
    }
    c.close();
    times.sort((a, b) => a - b);
    const q = (f: number): number => times[Math.min(times.length - 1, Math.floor(f * times.length))]!;
    const total = children.reduce((a, m) => a + m.pss, withTask.pss);
    console.log(`machine: ${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}`);
    console.log(`supervisor idle: RSS ${MiB(idle.rss)}, PSS ${MiB(idle.pss)}`);
    console.log(`supervisor with one ${WORKERS}-process task: RSS ${MiB(withTask.rss)}, PSS ${MiB(withTask.pss)}`);
    for (const m of children) console.log(`  ${m.name}: RSS ${MiB(m.rss)}, PSS ${MiB(m.pss)}`);
    console.log(`  whole agent PSS: ${MiB(total)}`);
    console.log(`kill -9 of a capture process → its successor capturing, ${KILLS} kills (first backoff step 100 ms included): median ${q(0.5).toFixed(0)} ms, p90 ${q(0.9).toFixed(0)} ms, max ${times[times.length - 1]!.toFixed(0)} ms`);
  } finally {
    d.kill('SIGTERM');
    await new Promise((r) => d.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
