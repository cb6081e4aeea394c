// A task's counters in shared memory (src/shm/stats.ts), with real processes:
// a slot's writer is SIGKILLed and the next one to take the slot continues
// its counters (gauges start afresh), names keep their order, a slot held by
// a live process is refused, the segment is 0600 and gone at close, and one
// whose owner died is removed by the next supervisor's cleanup.

import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { removeAllStaleSegments, runScope } from '../../src/shm/segment.js';
import { StatsSegment, StatsWriter, flatten, statsSegmentName, unflatten } from '../../src/shm/stats.js';

const CHILD = fileURLToPath(new URL('./stats-child.js', import.meta.url));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function child(scope: string, slot: number, mode: 'create' | 'write' | 'spin'): { proc: ChildProcess; next: () => Promise<any> } {
  const proc = fork(CHILD, [scope, String(slot), mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(proc);
  const queue: unknown[] = [];
  const waiting: ((m: unknown) => void)[] = [];
  proc.on('message', (m) => (waiting.length ? waiting.shift()!(m) : queue.push(m)));
  const next = (): Promise<any> => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r)));
  return { proc, next };
}

const killed = (c: ChildProcess): Promise<void> =>
  new Promise((r) => {
    if (c.exitCode !== null || c.signalCode !== null) return r();
    c.once('exit', () => r());
    c.kill('SIGKILL');
  });

describe('stats segment', () => {
  it('a restarted writer continues its slot: counters carry over, gauges do not, names keep their order', async () => {
    const scope = runScope('stats-test');
    const seg = StatsSegment.create(scope, 3);
    try {
      assert.equal(statSync(`/dev/shm${seg.name}`).mode & 0o777, 0o600);
      const a = child(scope, 1, 'write');
      assert.deepEqual((await a.next()).base, [0, 0, 0, 0, 0, 0, 0, 0], 'a fresh slot has nothing to carry over');
      a.proc.send({ counters: { frames: 100, 'drops.decode': 3 }, gauges: { rss: 5000 } });
      await a.next();
      const other = StatsWriter.open; // the slot is held by a live process: refused
      assert.throws(() => other(scope, 1), /slot 1 is held by process/);
      await killed(a.proc);

      const b = child(scope, 1, 'write');
      assert.deepEqual((await b.next()).base.slice(0, 3), [100, 3, 0], 'counters carried over, the gauge not');
      b.proc.send({ counters: { frames: 7, 'decodeErrors.SHORT': 1 }, gauges: { rss: 4000 } });
      await b.next();
      const s = seg.view.read(1);
      assert.deepEqual([...s.values.keys()], ['frames', 'drops.decode', 'rss', 'decodeErrors.SHORT']);
      assert.equal(s.values.get('frames'), 107, 'the new incarnation adds to the old one');
      assert.equal(s.values.get('drops.decode'), 3, 'a counter the new incarnation has not published yet keeps its value');
      assert.equal(s.values.get('rss'), 4000);
      assert.equal(s.kinds.get('rss'), 'g');
      assert.equal(s.incarnations, 2);
      assert.equal(s.pid, b.proc.pid);
      assert.equal(seg.view.read(0).incarnations, 0, 'other slots untouched');

      const copy = seg.view.copy();
      await killed(b.proc);
      seg.close();
      assert.equal(existsSync(`/dev/shm${seg.name}`), false, 'closed: unlinked');
      assert.equal(copy.read(1).values.get('frames'), 107, 'a copy reads the same after the segment is gone');
    } finally {
      seg.close();
    }
  });

  it('a reader gets one moment of a copy: counters copied one after the other never read apart', async () => {
    const scope = runScope('stats-seq');
    const seg = StatsSegment.create(scope, 2);
    try {
      const c = child(scope, 1, 'spin');
      await c.next();
      let reads = 0;
      let last = 0;
      const end = Date.now() + 500;
      while (Date.now() < end) {
        const v = [...seg.view.read(1).values.values()];
        const a = v[0] ?? 0;
        assert.equal(v.length === 0 ? 0 : v[v.length - 1], a, `read ${reads}: first ${a}, last ${v[v.length - 1]}`);
        assert.ok(a >= last, 'never backwards');
        last = a;
        reads++;
      }
      assert.ok(last > 0 && reads > 100, `reads ${reads}, last ${last}`);
      await killed(c.proc);
    } finally {
      seg.close();
    }
  });

  it("a segment whose owner died is removed by the next supervisor's cleanup", async () => {
    const scope = runScope('stats-stale');
    const c = child(scope, 0, 'create');
    assert.deepEqual(await c.next(), { created: true });
    const name = statsSegmentName(scope);
    assert.ok(existsSync(`/dev/shm${name}`));
    assert.ok(!removeAllStaleSegments().some((r) => r.name === name), 'a live owner keeps it');
    await killed(c.proc);
    const removed = removeAllStaleSegments();
    assert.ok(removed.some((r) => r.name === name && r.removed), JSON.stringify(removed));
    assert.equal(existsSync(`/dev/shm${name}`), false);
  });

  it('nested counters flatten to dotted names and back', () => {
    const o = { messages: 2, rejected: { short: 1, bad: 0 }, name: 'x' };
    const flat = flatten(o, 'parsers.dns.own.');
    assert.deepEqual(flat, { 'parsers.dns.own.messages': 2, 'parsers.dns.own.rejected.short': 1, 'parsers.dns.own.rejected.bad': 0 });
    assert.deepEqual(unflatten({ messages: 2, 'rejected.short': 1 }), { messages: 2, rejected: { short: 1 } });
  });
});
