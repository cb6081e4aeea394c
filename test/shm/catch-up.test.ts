// Live catch-up (src/capture-proc/catch-up.ts): a registry miss on one
// capture process waits for another process's older frames, over the
// task's real shared-memory registry and capture clock, with the other
// process forked (catch-up-child.ts).

import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LiveCatchUp, QUIET_MS } from '../../src/capture-proc/catch-up.js';
import { CaptureClock } from '../../src/shm/capture-clock.js';
import { FlowRegistry } from '../../src/shm/registry.js';

const CHILD = fileURLToPath(new URL('./catch-up-child.js', import.meta.url));
const children: ChildProcess[] = [];
const closers: (() => void)[] = [];
after(() => {
  for (const ch of children) ch.kill('SIGKILL');
  for (const c of closers) c();
});

const LATE = (192 << 24) | (2 << 8) | 77; // 192.0.2.77
let seq = 0;

/** A task's registry and clock (2 capture processes; this one is 0) and a catch-up whose window is `windowMs`. */
function setup(windowMs: number): { task: string; reg: FlowRegistry; clock: CaptureClock; base: number; cu: LiveCatchUp } {
  const task = `test${process.pid}-c${seq++}`;
  const reg = FlowRegistry.create(task, { capacity: 256 });
  const clock = CaptureClock.create(task, 2);
  closers.push(() => reg.close(), () => clock.close());
  const base = Date.now() - 5000;
  return { task, reg, clock, base, cu: new LiveCatchUp(clock, 0, base, windowMs) };
}

/** Forks process 1; resolves when it has the segments open. */
function other(task: string, base: number, mode: string, delayMs: number): Promise<void> {
  const child = fork(CHILD, [task, String(base), mode, String(delayMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`catch-up child exited (${code})`)));
  });
}

let flows = 0;
/** Misses on a packet of `flow` (a new one by default) captured at `ms` (since the epoch): the wait, timed. */
function missNow(cu: LiveCatchUp, ms = Date.now(), flow = ++flows): number {
  const t0 = performance.now();
  cu.wait(Math.floor(ms / 1000), (ms % 1000) * 1e6, flow);
  return performance.now() - t0;
}

describe('live catch-up after a registry miss', () => {
  it('waits until the other process has passed the packet, and the retried lookup finds what it registered meanwhile', async () => {
    const { task, reg, base, cu } = setup(2000);
    await other(task, base, 'register', 150);
    assert.equal(reg.lookupEndpoint4(LATE, 40000), -1, 'a miss first');
    const ms = missNow(cu);
    assert.ok(reg.lookupEndpoint4(LATE, 40000) >= 0, 'registered by the other process while this one waited');
    assert.ok(ms >= 100 && ms < 1500, `woke when the other process passed the packet, not at the deadline: ${ms.toFixed(0)} ms`);
    assert.deepEqual({ ...cu.stats, waited_ms: cu.stats.waited_ms > 100 }, { waits: 1, quiet: 0, waited_ms: true, deadlines: 0 });
  });

  it('gives up at the deadline when the other process publishes nothing', async () => {
    const { task, base, cu } = setup(300);
    await other(task, base, 'idle', 0);
    const ms = missNow(cu);
    assert.ok(ms >= 290 && ms < 900, `waited the window: ${ms.toFixed(0)} ms`);
    assert.equal(cu.stats.waits, 1);
    assert.equal(cu.stats.deadlines, 1);
  });

  it('does not wait for a finished process, nor for a packet older than the window', () => {
    const { clock, cu } = setup(300);
    assert.ok(missNow(cu, Date.now() - 400) < 50, 'older than the window');
    clock.finish(1);
    assert.ok(missNow(cu) < 50, 'the other process finished');
    assert.equal(cu.stats.waits, 0);
  });

  it("waits once per flow: a flow that missed in the last two seconds of capture time does not wait again", async () => {
    const { task, base, cu } = setup(300);
    await other(task, base, 'idle', 0);
    const now = Date.now();
    assert.ok(missNow(cu, now, 7) >= 290, 'the first miss of flow 7 waits');
    assert.ok(missNow(cu, now + 20, 7) < 50, 'its next packet does not');
    assert.equal(cu.stats.quiet, 1);
    // Flow hashes are unsigned 32-bit numbers (symmetricFlowHash).
    assert.ok(missNow(cu, Date.now(), 0xf0000007) >= 290);
    assert.ok(missNow(cu, Date.now(), 0xf0000007) < 50);
    assert.ok(missNow(cu, Date.now(), 8) >= 290, 'another flow waits');
    assert.ok(missNow(cu, now + 20 + QUIET_MS, 7) >= 100, 'flow 7 after a silence waits again');
    assert.deepEqual([cu.stats.waits, cu.stats.quiet, cu.stats.deadlines], [4, 2, 4]);
  });

  it('compares positions across the 32-bit wrap', () => {
    const { clock } = setup(300);
    clock.at(1, 0x7ffffff0);
    assert.ok(clock.caughtUp(0, 0x7fffffe0));
    assert.ok(!clock.caughtUp(0, 0x7ffffff0 + 0x20), 'a position past the wrap is ahead of one before it');
    clock.at(1, (0x7ffffff0 + 0x40) | 0);
    assert.ok(clock.caughtUp(0, (0x7ffffff0 + 0x20) | 0));
  });
});
