// `otus replay` ends, and ends clean, however it is stopped: real processes.
// The run writes to a FIFO nobody reads, so its sender holds what it may and
// stops reading, the send ring fills and the capture processes pace: a run
// stuck mid-way, as a user found it. SIGTERM then stops every child, removes
// the run's shared memory and exits 143 with a coded message; a SIGKILLed
// sender ends the run with OTUS_ERR_WORKER naming it and what was lost.
// While it runs, the run's segments belong to the supervisor and are 0600.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openRingStats } from '../../src/shm/ring.js';
import { segmentOwner } from '../../src/shm/segment.js';
import { writePcap } from '../helpers/live.js';
import { udpFrame } from '../helpers/udp-frames.js';
import { OTUS } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'otus-replay-life-'));
const TASK = join(dir, 'task.yml');
const PCAP = join(dir, 'big.pcap');
const started: ChildProcess[] = [];
after(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

before(() => {
  // SIP parser (so the run has a flow registry) and two capture processes (so a capture clock); every frame forwarded as a record.
  writeFileSync(TASK, 'task:\n  id: lifecycle-test\n  parsers: [{plugin: sip}]\n  unmatched_policy: forward\n');
  // Enough records to fill half the 64 MiB send ring and the reporter's 4 MiB.
  const frames: Uint8Array[] = [];
  const payload = new Uint8Array(64);
  for (let i = 0; i < 600_000; i++) frames.push(udpFrame(`10.0.${(i >> 8) & 255}.${i & 255}`, '10.1.0.1', 10000 + (i % 5000), 40000, payload));
  writePcap(PCAP, frames);
});

/** Pids whose parent is `pid`, with their command lines. */
function childrenOf(pid: number): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push({ pid: Number(e), cmd: readFileSync(`/proc/${e}/cmdline`, 'latin1').replace(/\0/g, ' ') });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The run's /dev/shm entries: its names carry its pid (src/shm/segment.ts runScope). */
const shmOf = (pid: number): string[] => readdirSync('/dev/shm').filter((n) => n.startsWith('otus-lifecycle-test.') && n.includes(`.${pid}.`));

const gone = (pid: number): boolean => !existsSync(`/proc/${pid}`);

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Run {
  proc: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number; stderr: string }>;
  kids: { pid: number; cmd: string }[];
  scope: string;
}

/** Starts `otus replay` into a FIFO nobody reads, and returns once its capture processes pace on a half-full ring. */
async function stuckRun(): Promise<Run> {
  const fifo = join(dir, `out-${started.length}.fifo`);
  assert.equal(spawnSync('mkfifo', ['-m', '600', fifo]).status, 0);
  const proc = spawn(process.execPath, [OTUS, 'replay', '--task', TASK, '--workers', '2', '--out', fifo, PCAP], { stdio: ['ignore', 'ignore', 'pipe'] });
  started.push(proc);
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let t0 = 0;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number; stderr: string }>((r) =>
    proc.once('exit', (code, signal) => r({ code, signal, ms: performance.now() - t0, stderr })),
  );
  const pid = proc.pid!;
  let scope = '';
  await until(
    () => {
      const ring = shmOf(pid).find((n) => n.endsWith('-ring'));
      if (ring === undefined) return false;
      scope = ring.slice('otus-'.length, -'-ring'.length);
      try {
        const st = openRingStats(scope);
        return st.used >= st.dataBytes / 2;
      } catch {
        return false; // not initialised yet
      }
    },
    60_000,
    'the capture processes to pace on a half-full ring',
  );
  const kids = childrenOf(pid);
  // The sender and the capture processes still pacing (one whose share of the file is done may have exited).
  assert.ok(kids.some((k) => k.cmd.includes('sender-proc')) && kids.some((k) => k.cmd.includes('capture-proc')), `sender and capture processes: ${JSON.stringify(kids)}`);
  // The run's shared memory: ring, its FIFO, flow registry and its media table, capture clock; all 0600, the segments owned by the supervisor.
  const names = shmOf(pid).sort();
  assert.deepEqual(names, [`otus-${scope}-clock`, `otus-${scope}-flows`, `otus-${scope}-media`, `otus-${scope}-ring`, `otus-${scope}-ring.wake`]);
  for (const n of names) assert.equal(statSync(`/dev/shm/${n}`).mode & 0o777, 0o600, n);
  for (const n of names.filter((x) => !x.endsWith('.wake'))) assert.equal(segmentOwner(`/${n}`)?.pid, pid, `${n}: owned by the supervisor`);
  t0 = performance.now();
  return { proc, exit, kids, scope };
}

describe('otus replay stops clean', () => {
  it('SIGTERM mid-run: every child stopped, shared memory removed, exit 143 with a coded message', async () => {
    const run = await stuckRun();
    run.proc.kill('SIGTERM');
    const r = await run.exit;
    assert.equal(r.code, 143, r.stderr);
    assert.match(r.stderr, /otus: replay stopped by SIGTERM after [\d.]+ s: children stopped, shared memory removed.* \[OTUS_ERR_INTERRUPTED\]/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.ok(r.ms < 15_000, `took ${r.ms.toFixed(0)} ms`);
    for (const k of run.kids) assert.ok(gone(k.pid), `child ${k.pid} (${k.cmd}) left running`);
    assert.deepEqual(shmOf(run.proc.pid!), [], 'nothing of the run left in /dev/shm');
  });

  it('SIGKILL of the sender mid-run: the run ends with OTUS_ERR_WORKER naming the sender and what was lost, no child left', async () => {
    const run = await stuckRun();
    const sender = run.kids.find((k) => k.cmd.includes('sender-proc/main.js'));
    assert.ok(sender, JSON.stringify(run.kids));
    process.kill(sender.pid, 'SIGKILL');
    const r = await run.exit;
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`otus: sender \\(pid ${sender.pid}\\) was killed by SIGKILL mid-run; lost: \\d+ batches \\(\\d+ bytes\\) committed to the send ring and never read.* \\[OTUS_ERR_WORKER\\]`));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.ok(r.ms < 20_000, `took ${r.ms.toFixed(0)} ms`);
    for (const k of run.kids) assert.ok(gone(k.pid), `child ${k.pid} (${k.cmd}) left running`);
    assert.deepEqual(shmOf(run.proc.pid!), [], 'nothing of the run left in /dev/shm');
  });
});
