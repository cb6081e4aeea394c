// Who owns the shared memory of a run, what its names are, and what is left
// after an abnormal end: stale segments of a killed owner are removed by
// removeAllStaleSegments (live ones stay), a name someone else took first is
// a coded error, every segment and FIFO is 0600, and a consumer attached
// after the previous one was SIGKILLed mid-run loses and repeats nothing.

import assert from 'node:assert/strict';
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CaptureClock } from '../../src/shm/capture-clock.js';
import { FlowRegistry, registrySegmentName } from '../../src/shm/registry.js';
import { RingConsumer, createRing, ringSegmentName, type RingSegment } from '../../src/shm/ring.js';
import { removeAllStaleSegments, runScope, segmentName, segmentOwner } from '../../src/shm/segment.js';
import { checkRecord } from './records.js';

const PRODUCER = fileURLToPath(new URL('./ring-child.js', import.meta.url));
const CONSUMER = fileURLToPath(new URL('./consumer-child.js', import.meta.url));
const children: ChildProcess[] = [];
const cleanup: (() => void)[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const f of cleanup) f();
});

const exited = (c: ChildProcess): Promise<void> =>
  c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', () => r()));
const shm = (name: string): string => `/dev/shm${name}`;
const mode = (path: string): number => statSync(path).mode & 0o777;

describe('shared memory of a run', () => {
  it('names a run with the task id, the pid and 8 random hex digits, valid for segment names, cut to fit', () => {
    const a = runScope('voip-monitor-01');
    const b = runScope('voip-monitor-01');
    assert.match(a, new RegExp(`^voip-monitor-01\\.${process.pid}\\.[0-9a-f]{8}$`));
    assert.notEqual(a, b, 'two runs never share a name');
    const long = runScope('x'.repeat(200));
    assert.ok(long.length <= 64, long);
    assert.match(long, new RegExp(`^x+\\.${process.pid}\\.[0-9a-f]{8}$`));
    assert.match(runScope('odd id/with spaces'), /^odd_id_with_spaces\./);
    for (const s of [a, long]) assert.equal(segmentName(s, 'ring'), `/otus-${s}-ring`);
  });

  it('creates every segment and FIFO 0600, owned by the creating process', () => {
    const scope = runScope('modes');
    const ring = createRing(scope, { dataBytes: 1 << 16 });
    const reg = FlowRegistry.create(scope, { capacity: 64 });
    const clock = CaptureClock.create(scope, 2);
    cleanup.push(() => (ring.close(), reg.close(), clock.close()));
    const names = [ringSegmentName(scope), registrySegmentName(scope), segmentName(scope, 'clock')];
    for (const n of names) {
      assert.equal(mode(shm(n)), 0o600, n);
      assert.equal(segmentOwner(n)?.pid, process.pid, `${n}: owner`);
    }
    const fifo = `${shm(ringSegmentName(scope))}.wake`;
    assert.ok(statSync(fifo).isFIFO());
    assert.equal(mode(fifo), 0o600);
    ring.close();
    reg.close();
    clock.close();
    for (const n of names) assert.ok(!existsSync(shm(n)), `${n} removed on close`);
    assert.ok(!existsSync(fifo), 'FIFO removed with the ring');
  });

  it('refuses a name someone else created first, with a coded error and no trace', () => {
    const scope = runScope('taken');
    for (const kind of ['ring', 'flows', 'clock']) {
      writeFileSync(shm(segmentName(scope, kind)), 'not yours');
      cleanup.push(() => rmSync(shm(segmentName(scope, kind)), { force: true }));
    }
    const check = (e: unknown): boolean => {
      const err = e as { code?: string; message: string };
      assert.equal(err.code, 'OTUS_ERR_SHM_EXISTS');
      assert.match(err.message, /\/dev\/shm\/otus-taken\.\d+\.[0-9a-f]{8}-\w+ exists: another process holds that name/);
      return true;
    };
    assert.throws(() => createRing(scope, { dataBytes: 1 << 16 }), check);
    assert.throws(() => FlowRegistry.create(scope, { capacity: 64 }), check);
    assert.throws(() => CaptureClock.create(scope, 2), check);
    // The file in its way is left as it was.
    assert.equal(readFileSync(shm(segmentName(scope, 'ring')), 'utf8'), 'not yours');
    assert.ok(!existsSync(`${shm(segmentName(scope, 'ring'))}.wake`));
  });

  it("removes a SIGKILLed owner's segments and ring FIFO, and orphan FIFOs; keeps live ones", async () => {
    const dead = `dead${process.pid}.${Date.now() % 1e6}`;
    const mod = (p: string): string => new URL(`../../src/shm/${p}`, import.meta.url).href;
    // A "supervisor" that creates a run's three segments, then is killed without cleaning up.
    const script =
      `const [r, g, c] = await Promise.all([import('${mod('ring.js')}'), import('${mod('registry.js')}'), import('${mod('capture-clock.js')}')]);` +
      `r.createRing('${dead}', { dataBytes: 65536 }); g.FlowRegistry.create('${dead}', { capacity: 64 }); c.CaptureClock.create('${dead}', 2);` +
      `process.kill(process.pid, 'SIGKILL');`;
    const ch = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
    children.push(ch);
    await exited(ch);
    assert.equal(ch.signalCode, 'SIGKILL');
    const deadNames = ['ring', 'flows', 'clock'].map((k) => segmentName(dead, k));
    for (const n of deadNames) assert.ok(existsSync(shm(n)), `${n} left behind`);
    assert.ok(existsSync(`${shm(deadNames[0])}.wake`));
    // A FIFO whose ring is gone (its owner died between the two unlinks).
    const orphan = `/dev/shm/otus-orphan${process.pid}-ring.wake`;
    assert.equal(spawnSync('mkfifo', ['-m', '600', orphan]).status, 0);
    cleanup.push(() => rmSync(orphan, { force: true }));
    // This process's run is alive: kept.
    const live = runScope('live');
    const ring = createRing(live, { dataBytes: 1 << 16 });
    const reg = FlowRegistry.create(live, { capacity: 64 });
    cleanup.push(() => (ring.close(), reg.close()));

    const removed = removeAllStaleSegments();
    const names = removed.map((r) => r.name);
    for (const n of deadNames) {
      assert.ok(names.includes(n), `${n} reported`);
      assert.ok(!existsSync(shm(n)), `${n} removed`);
    }
    assert.equal(removed.find((r) => r.name === deadNames[0])?.ownerPid, ch.pid);
    assert.ok(!existsSync(`${shm(deadNames[0])}.wake`), "the dead ring's FIFO removed");
    assert.ok(!existsSync(orphan), 'orphan FIFO removed');
    assert.ok(existsSync(shm(ringSegmentName(live))) && existsSync(`${shm(ringSegmentName(live))}.wake`), 'live ring and FIFO kept');
    assert.ok(existsSync(shm(registrySegmentName(live))), 'live registry kept');
    assert.ok(!names.some((n) => n.includes(live)));
  });

  it('a consumer attached after the previous one was SIGKILLed mid-run reads every record not yet released, once', async () => {
    const scope = runScope('restart');
    const seg: RingSegment = createRing(scope, { dataBytes: 1 << 16, highWatermark: 1 });
    cleanup.push(() => seg.close());
    const dir = mkdtempSync(join(tmpdir(), 'otus-ring-restart-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const log = join(dir, 'consumed');
    const per = 120_000;
    // The first consumer: logs what it released, dies after 40k records with three more read and not released.
    const first = fork(CONSUMER, [scope, log, '40000'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(first);
    await new Promise((r) => first.once('message', r));
    assert.equal(seg.consumerPid(), first.pid);
    assert.throws(() => RingConsumer.open(scope), { code: 'OTUS_ERR_BAD_ARGUMENT' }, 'one consumer at a time');
    // Two producers write without loss (they retry while the ring is full), across the consumer's death.
    const producers = [0, 1].map((i) => fork(PRODUCER, [scope, String(i), String(per), 'lossless'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    children.push(...producers);
    await exited(first);
    assert.equal(first.signalCode, 'SIGKILL');
    assert.equal(seg.consumerAlive(), false, "the dead consumer's pid is not taken for a live one");

    const ring = RingConsumer.open(scope);
    cleanup.push(() => ring.close());
    const seen = [new Uint8Array(per), new Uint8Array(per)];
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      if (line === '') continue;
      const [p, s] = line.split(' ').map(Number);
      seen[p][s]++;
    }
    const before = seen[0].reduce((a, b) => a + b, 0) + seen[1].reduce((a, b) => a + b, 0);
    assert.ok(before >= 40_000, `${before} released by the first consumer`);
    let got = 0;
    const deadline = Date.now() + 60_000;
    while (before + got < 2 * per) {
      while (ring.next() >= 0) {
        const bad = checkRecord(ring.u8, ring.view, ring.off, ring.len);
        if (bad !== null) assert.fail(`record after the restart: ${bad}`);
        seen[ring.view.getUint32(ring.off, true)][ring.view.getUint32(ring.off + 4, true)]++;
        got++;
      }
      if (Date.now() > deadline) assert.fail(`timed out with ${before + got} of ${2 * per}`);
      await ring.wait(20);
    }
    await Promise.all(producers.map(exited));
    assert.equal(ring.next(), -1, 'nothing more');
    for (const p of [0, 1]) {
      const missing = seen[p].findIndex((n) => n === 0);
      const twice = seen[p].findIndex((n) => n > 1);
      assert.equal(missing, -1, `producer ${p}: record ${missing} lost`);
      assert.equal(twice, -1, `producer ${p}: record ${twice} read twice`);
    }
    assert.equal(ring.stats().abandoned, 0);
  });
});
