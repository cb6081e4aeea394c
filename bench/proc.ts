// What several benchmarks read of processes: CPU time and memory from /proc (RSS, and PSS,
// which counts a page shared by n processes as 1/n in each, so the sum over
// a process tree is what the tree costs), and a free TCP port.

import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { ControlClient } from '../src/ctl/client.js';

export interface Mem {
  rss: number;
  pss: number;
}

/** RSS and PSS of a process, bytes (/proc/PID/smaps_rollup). */
export function mem(pid: number): Mem {
  const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? 0) * 1024;
  return { rss: kb('Rss'), pss: kb('Pss') };
}

const CLK_TCK = 100;

/** utime + stime of a process, in seconds (/proc/PID/stat). */
export function cpu(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

/**
 * PSS of a process by kind of mapping, bytes (/proc/PID/smaps): `shm` the
 * task's shared segments (send ring, flow registry, stats), `packet` the
 * capture socket's ring, `heap` anonymous memory (V8's heap, malloc), `code`
 * the node binary and libraries.
 */
export function pssByKind(pid: number): Record<'shm' | 'packet' | 'heap' | 'code', number> {
  const out = { shm: 0, packet: 0, heap: 0, code: 0 };
  let kind: keyof typeof out = 'heap';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1]!;
      kind = name.startsWith('/dev/shm/') ? 'shm' : name.startsWith('socket:') || name.includes('packet') ? 'packet' : name.startsWith('/') ? 'code' : 'heap';
      continue;
    }
    const m = /^Pss:\s+(\d+)/.exec(line);
    if (m) out[kind] += Number(m[1]) * 1024;
  }
  return out;
}

export const MiB = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A control connection to a daemon just started. Its socket file appears at
 * bind, before it listens: connects until the daemon answers, 10 s at most.
 */
export async function connectDaemon(socket: string): Promise<ControlClient> {
  for (let i = 0; i < 400; i++) {
    const c = existsSync(socket) ? await ControlClient.connect(socket, { timeoutMs: 60_000 }).catch(() => null) : null;
    if (c !== null) return c;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`the daemon did not answer on ${socket} in 10 s`);
}
