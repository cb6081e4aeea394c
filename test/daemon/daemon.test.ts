// `otus daemon` as an operator runs it: a real daemon process on a temporary
// socket and configuration, systemd's notify socket played by a receiver,
// tasks created with otusctl on veth pairs in network namespaces, traffic
// replayed into them; then capture processes and the sender killed, hung
// and made to crash, a reload, a stop, the daemon stopped and SIGKILLed.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ctl, type Daemon, startDaemon } from '../helpers/daemon.js';
import { ipv4Frame, liveSkipReason, makeVethHost, removeStaleNamespaces, run, tempDir, type VethHost, waitFor, writePcap, waitForAsync } from '../helpers/live.js';
import { notifySkip, Receiver } from '../helpers/notify-receiver.js';

const skip = liveSkipReason() ?? (notifySkip || null);


const lines = (file: string): string[] => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

/** Records of our replayed frames in a reporter's NDJSON (by their UDP source ports). */
function ours(file: string, base: number): number {
  let n = 0;
  for (const l of lines(file)) {
    const r = JSON.parse(l) as { flow?: { sport?: number } };
    const p = r.flow?.sport ?? -1;
    if (p >= base && p < base + 64) n++;
  }
  return n;
}

/**
 * Shared memory of this test's tasks (ta, tb, tc) made by the daemon `pid`
 * (segment names carry their creator's pid: src/shm/segment.ts runScope), so
 * that another suite running on the machine, with its own ta, is not counted.
 */
function shmEntries(pid: number): string[] {
  return readdirSync('/dev/shm').filter((e) => e.startsWith('otus-t') && /^otus-t[abc]\.(\d+)\./.exec(e)?.[1] === String(pid));
}

interface Proc {
  role: string;
  index: number;
  pid: number;
  state: string;
  restarts: number;
  last_exit: string | null;
}

describe('otus daemon', { skip: skip ?? false }, () => {
  let tmp: ReturnType<typeof tempDir>;
  let hostA: VethHost;
  let hostB: VethHost;
  let hostC: VethHost;
  let rx: Receiver;
  let d: Daemon;
  let socket = '';
  let config = '';
  const N = 300;
  const pcapA = (): string => join(tmp.dir, 'a.pcap');
  const pcapB = (): string => join(tmp.dir, 'b.pcap');

  const taskYaml = (id: string, iface: string, out: string, workers: number): string =>
    `task:\n  id: ${id}\n  capture:\n    interface: ${iface}\n    workers: ${workers}\n  parsers:\n    - plugin: rtp\n  reporter:\n    type: file\n    config:\n      path: ${out}\n  unmatched_policy: forward\n`;

  const status = async (id: string): Promise<{ state: string; reason: string | null; processes: Proc[]; counters: { frames: number } }> => {
    const r = await ctl(socket, ['task', 'status', '--id', id]);
    assert.equal(r.status, 0, r.stderr);
    return r.json;
  };

  before(async () => {
    removeStaleNamespaces();
    tmp = tempDir();
    hostA = makeVethHost();
    hostB = makeVethHost();
    hostC = makeVethHost();
    const frames = (base: number): Uint8Array[] =>
      Array.from({ length: N }, (_, i) => ipv4Frame({ src: [10, 9, 0, 1], dst: [10, 9, 0, 2], sport: base + (i % 64), dport: 20000 }, 64, i));
    writePcap(pcapA(), frames(10000));
    writePcap(pcapB(), frames(30000));
    socket = join(tmp.dir, 'otus.sock');
    config =
      `otus:\n  node:\n    id: test-node\n  control:\n    socket: ${socket}\n  log:\n    level: info\n  resources:\n    max_workers: 6\n` +
      `  supervisor:\n    heartbeat_ms: 200\n    watchdog_ms: 2000\n    stop_timeout_ms: 5000\n    restart:\n      initial_ms: 100\n      max_ms: 800\n      healthy_ms: 60000\n      budget: 4\n      window_ms: 60000\n` +
      `  reporters:\n    file: {}\n    console: {}\n`;
    rx = await Receiver.start(join(tmp.dir, 'notify.sock'));
    d = await startDaemon(tmp.dir, config, { NOTIFY_SOCKET: join(tmp.dir, 'notify.sock'), WATCHDOG_USEC: '1000000' });
  });

  after(async () => {
    await d?.stop();
    rx?.stop();
    for (const h of [hostA, hostB, hostC]) h?.destroy();
    tmp?.cleanup();
  });

  test('READY once the socket is up; status answers', async () => {
    assert.ok(await waitFor(() => rx.got.some((g) => g.data.startsWith('READY=1\nSTATUS=no tasks')), 10_000), rx.got.map((g) => g.data).join(' | '));
    const s = await ctl(socket, ['status']);
    assert.equal(s.status, 0, s.stderr);
    assert.equal(s.json.node.id, 'test-node');
    assert.equal(s.json.pid, d.proc.pid);
  });

  test('two tasks at once, each on its own veth, records in their file reporters', async () => {
    const outA = join(tmp.dir, 'a.ndjson');
    const outB = join(tmp.dir, 'b.ndjson');
    writeFileSync(join(tmp.dir, 'a.yml'), taskYaml('ta', hostA.capIf, outA, 2));
    writeFileSync(join(tmp.dir, 'b.yml'), taskYaml('tb', hostB.capIf, outB, 1));
    const a = await ctl(socket, ['task', 'create', '--file', join(tmp.dir, 'a.yml')]);
    assert.equal(a.status, 0, a.stderr + a.stdout);
    assert.equal(a.json.state, 'running');
    const b = await ctl(socket, ['task', 'create', '--file', join(tmp.dir, 'b.yml')]);
    assert.equal(b.status, 0, b.stderr + b.stdout);
    const dup = await ctl(socket, ['task', 'create', '--file', join(tmp.dir, 'a.yml')]);
    assert.equal(dup.status, 1, 'a second task with the same id is refused');
    assert.match(dup.stderr, /exists.*\[OTUS_ERR_TASK\]/);

    hostA.replay(pcapA());
    hostB.replay(pcapB());
    assert.ok(await waitFor(() => ours(outA, 10000) === N && ours(outB, 30000) === N, 20_000), `records: ${ours(outA, 10000)} ${ours(outB, 30000)}`);
    assert.equal(ours(outA, 30000), 0, 'task A saw none of task B traffic');

    const list = await ctl(socket, ['task', 'list']);
    assert.deepEqual(list.json.tasks.map((t: { id: string; state: string }) => [t.id, t.state]).sort(), [['ta', 'running'], ['tb', 'running']]);
    const st = await status('ta');
    assert.deepEqual(st.processes.map((p) => [p.role, p.state]), [['sender', 'running'], ['capture', 'running'], ['capture', 'running']]);
    assert.ok(await waitForAsync(async () => (await status('ta')).counters.frames >= N, 10_000), 'the status counters come from the children beats');

    // Every segment and FIFO of a task is private to its owner.
    const entries = shmEntries(d.proc.pid!);
    assert.ok(entries.length >= 4, `shared memory: ${entries}`);
    for (const e of entries) assert.equal(statSync(join('/dev/shm', e)).mode & 0o777, 0o600, e);
  });

  test('kill -9 of a capture process: it alone is restarted, the other takes its flows meanwhile, records resume', async () => {
    const outA = join(tmp.dir, 'a.ndjson');
    const before = await status('ta');
    const victim = before.processes.find((p) => p.role === 'capture' && p.index === 1)!;
    const other = before.processes.find((p) => p.role === 'capture' && p.index === 0)!;
    const framesOf = (s: Awaited<ReturnType<typeof status>>, i: number): number =>
      (s.counters as unknown as { capture_processes: { index: number; frames: number }[] }).capture_processes.find((c) => c.index === i)?.frames ?? 0;
    const frames0 = framesOf(before, 0);
    const killedAt = Date.now();
    process.kill(victim.pid, 'SIGKILL');
    // Sent while process 1 is down: the kernel's fanout hands every flow to the member left, so nothing is lost.
    hostA.replay(pcapA());
    assert.ok(await waitFor(() => ours(outA, 10000) === 2 * N, 20_000), `records while process 1 was down: ${ours(outA, 10000)}`);
    assert.ok(await waitForAsync(async () => framesOf(await status('ta'), 0) >= frames0 + N, 10_000), 'process 0 counted every frame meanwhile');
    let back = 0;
    assert.ok(
      await waitForAsync(async () => {
        const s = await status('ta');
        const p = s.processes.find((x) => x.role === 'capture' && x.index === 1)!;
        if (p.state === 'running' && p.pid !== victim.pid) back = Date.now() - killedAt;
        return back > 0;
      }, 20_000),
      'capture process 1 is back',
    );
    const after = await status('ta');
    const p1 = after.processes.find((x) => x.role === 'capture' && x.index === 1)!;
    assert.equal(p1.restarts, 1);
    assert.match(p1.last_exit ?? '', /SIGKILL/);
    assert.equal(after.processes.find((x) => x.role === 'capture' && x.index === 0)!.pid, other.pid, 'process 0 was left alone');
    assert.equal(after.state, 'running');
    process.stderr.write(`# capture process back ${back} ms after kill -9\n`);

    hostA.replay(pcapA());
    assert.ok(await waitFor(() => ours(outA, 10000) === 3 * N, 20_000), `records after the restart: ${ours(outA, 10000)}`);
  });

  test('kill -9 of the sender: restarted, and what the ring held still reaches the reporter', async () => {
    const outA = join(tmp.dir, 'a.ndjson');
    const sender = (await status('ta')).processes.find((p) => p.role === 'sender')!;
    // Stop the sender so the capture processes commit into the ring while nobody reads it, then kill it.
    process.kill(sender.pid, 'SIGSTOP');
    hostA.replay(pcapA());
    const s = await status('ta');
    assert.ok(s.processes.every((p) => p.role === 'sender' || p.state === 'running'));
    await new Promise((r) => setTimeout(r, 300)); // blocks retire after 10 ms: every frame is in the ring
    // On a busy machine the watchdog (2 s) may have killed the stopped sender first: the same path, so the rest holds either way.
    if ((await status('ta')).processes.find((p) => p.role === 'sender')!.pid === sender.pid) {
      assert.equal(ours(outA, 10000), 3 * N, 'nothing new was written while the sender was stopped');
      try {
        process.kill(sender.pid, 'SIGKILL');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
    } else process.stderr.write('# the watchdog killed the stopped sender before the test did\n');
    assert.ok(await waitFor(() => ours(outA, 10000) === 4 * N, 20_000), `records: ${ours(outA, 10000)} (want ${4 * N})`);
    const p = (await status('ta')).processes.find((x) => x.role === 'sender')!;
    assert.notEqual(p.pid, sender.pid);
    assert.equal(p.restarts, 1);
  });

  test('a hung capture process is killed by the watchdog and restarted; systemd pings stop meanwhile', async () => {
    const victim = (await status('tb')).processes.find((p) => p.role === 'capture')!;
    const pings = (): number => rx.got.filter((g) => g.data === 'WATCHDOG=1').length;
    assert.ok(await waitFor(() => pings() > 0, 5000), 'WATCHDOG=1 while every child beats');
    process.kill(victim.pid, 'SIGSTOP');
    // Once the child is 2 s late the daemon stops pinging; it kills the child, restarts it, and pings again.
    assert.ok(
      await waitForAsync(async () => {
        const p = (await status('tb')).processes.find((x) => x.role === 'capture')!;
        return p.pid !== victim.pid && p.state === 'running';
      }, 20_000),
      'restarted after the watchdog',
    );
    const p = (await status('tb')).processes.find((x) => x.role === 'capture')!;
    assert.match(p.last_exit ?? '', /no heartbeat/);
    const seen = pings();
    assert.ok(await waitFor(() => pings() > seen, 5000), 'the pings resume once every child beats again');
    const gaps = rx.got.filter((g) => g.data === 'WATCHDOG=1').map((g) => g.monoUs);
    let longest = 0;
    for (let i = 1; i < gaps.length; i++) longest = Math.max(longest, gaps[i]! - gaps[i - 1]!);
    assert.ok(longest > 1_500_000, `the pings paused while the child hung (longest gap ${longest} µs)`);
  });

  test('an interface that goes down, or is deleted and made again: the capture processes wait for it, nothing restarts, capture resumes', async () => {
    const outC = join(tmp.dir, 'c-link.ndjson');
    writeFileSync(join(tmp.dir, 'c-link.yml'), taskYaml('tc', hostC.capIf, outC, 2));
    const c = await ctl(socket, ['task', 'create', '--file', join(tmp.dir, 'c-link.yml')]);
    assert.equal(c.status, 0, c.stderr);
    hostC.replay(pcapA());
    assert.ok(await waitFor(() => ours(outC, 10000) === N, 20_000), `records: ${ours(outC, 10000)}`);
    const pids = (await status('tc')).processes.map((p) => p.pid);
    const captures = (s: Awaited<ReturnType<typeof status>>): Proc[] => s.processes.filter((p) => p.role === 'capture');
    const waitingFor = async (what: RegExp): Promise<void> => {
      let last: Awaited<ReturnType<typeof status>> | null = null;
      const ok = await waitForAsync(async () => {
        last = await status('tc');
        return last.state === 'degraded' && captures(last).every((p) => p.state === 'waiting') && what.test(last.reason ?? '');
      }, 10_000);
      assert.ok(ok, `waiting: ${JSON.stringify(last)}`);
    };
    const runningAgain = async (): Promise<void> => {
      assert.ok(await waitForAsync(async () => (await status('tc')).state === 'running', 10_000), 'running again');
    };

    run('ip', ['link', 'set', hostC.capIf, 'down']);
    await waitingFor(new RegExp(`interface ${hostC.capIf} is down`));
    // Longer than the restart budget (4 restarts from 100 ms, at most 800 ms apart) would last: a waiting process is no failing one.
    await new Promise((r) => setTimeout(r, 3000));
    let s = await status('tc');
    assert.equal(s.state, 'degraded');
    assert.deepEqual(s.processes.map((p) => p.pid), pids, 'nothing was restarted');
    assert.ok(s.processes.every((p) => p.restarts === 0));
    run('ip', ['link', 'set', hostC.capIf, 'up']);
    await runningAgain();
    hostC.replay(pcapA());
    assert.ok(await waitFor(() => ours(outC, 10000) === 2 * N, 20_000), `records after the link came up: ${ours(outC, 10000)}`);

    hostC.recreate(); // another device under the same name
    // Back on the new device: each process has waited a second time and runs (it may be back before the test looks).
    const waitsOf = (x: Awaited<ReturnType<typeof status>>): (number | undefined)[] =>
      (x.counters as unknown as { capture_processes: { interface_waits?: number }[] }).capture_processes.map((p) => p.interface_waits);
    let seen: unknown = null;
    assert.ok(
      await waitForAsync(async () => {
        const x = await status('tc');
        seen = { state: x.state, waits: waitsOf(x) };
        return x.state === 'running' && waitsOf(x).every((w) => w === 2);
      }, 15_000),
      `capturing on the new device: ${JSON.stringify(seen)}`,
    );
    hostC.replay(pcapA());
    assert.ok(await waitFor(() => ours(outC, 10000) === 3 * N, 20_000), `records after the interface was made again: ${ours(outC, 10000)}`);
    s = await status('tc');
    assert.equal(s.state, 'running');
    assert.deepEqual(s.processes.map((p) => p.pid), pids, 'still nothing restarted');
    const per = (s.counters as unknown as { capture_processes: { index: number; frames: number; interface_waits?: number }[] }).capture_processes;
    assert.deepEqual(per.map((p) => p.interface_waits), [2, 2], JSON.stringify(per));
    assert.equal(per.reduce((a, p) => a + p.frames, 0), 3 * N, 'the frames of every stream each process opened are counted');
    const stop = await ctl(socket, ['task', 'stop', '--id', 'tc']);
    assert.equal(stop.status, 0, stop.stderr);
  });

  test('a capture process that fails on every start: backoff, then the task is failed and the daemon serves on', async () => {
    const outC = join(tmp.dir, 'c.ndjson');
    writeFileSync(join(tmp.dir, 'c.yml'), taskYaml('tc', hostC.capIf, outC, 1));
    const c = await ctl(socket, ['task', 'create', '--file', join(tmp.dir, 'c.yml')]);
    assert.equal(c.status, 0, c.stderr);
    // Its shared memory removed under it (as systemd's RemoveIPC, or a cleanup of /dev/shm, would), a capture process cannot start again.
    const victim = (await status('tc')).processes.find((p) => p.role === 'capture')!;
    for (const e of shmEntries(d.proc.pid!).filter((x) => x.startsWith('otus-tc.'))) unlinkSync(join('/dev/shm', e));
    process.kill(victim.pid, 'SIGKILL');
    assert.ok(await waitForAsync(async () => (await status('tc')).state === 'failed', 30_000), 'task tc failed');
    const s = await status('tc');
    assert.match(s.reason ?? '', /capture process 0: restarted 4 times, still failing/);
    assert.equal((await ctl(socket, ['status'])).status, 0);
    assert.equal((await status('ta')).state, 'running', 'the other tasks run on');
    const stop = await ctl(socket, ['task', 'stop', '--id', 'tc']);
    assert.equal(stop.status, 0, stop.stderr);
  });

  test('reload: a valid config is applied, an invalid one refused whole', async () => {
    writeFileSync(d.proc.spawnargs[d.proc.spawnargs.length - 1]!, config.replace('level: info', 'level: debug'));
    const ok = await ctl(socket, ['reload']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(ok.json.applied, ['log.level']);
    writeFileSync(d.proc.spawnargs[d.proc.spawnargs.length - 1]!, config.replace('level: info', 'level: loud'));
    const bad = await ctl(socket, ['reload']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /log\.level.*\[OTUS_ERR_CONFIG\]/);
    assert.equal((await ctl(socket, ['status'])).status, 0, 'still serving on the old configuration');
    const seq = rx.got.map((g) => g.data.split('\n')[0]);
    assert.ok(seq.lastIndexOf('RELOADING=1') > seq.indexOf('READY=1') && seq.lastIndexOf('READY=1') > seq.lastIndexOf('RELOADING=1'), seq.join(' '));
  });

  test('task stop drains and releases; SIGTERM stops the daemon in order; a SIGKILLed daemon leaves nothing behind for the next', async () => {
    const stop = await ctl(socket, ['task', 'stop', '--id', 'tb']);
    assert.equal(stop.status, 0, stop.stderr);
    assert.equal(stop.json.state, 'stopped');
    assert.ok(stop.json.counters.frames >= N);
    assert.deepEqual(shmEntries(d.proc.pid!).filter((e) => e.startsWith('otus-tb.')), [], 'a stopped task leaves no shared memory');
    const stopped = d.proc.pid!;
    await d.stop();
    assert.equal(d.code, 0, d.err);
    assert.equal(rx.got[rx.got.length - 1]!.data, 'STOPPING=1');
    assert.deepEqual(shmEntries(stopped), [], 'every segment and FIFO is gone after the daemon exits');

    // Killed outright: its segments stay until the next daemon starts.
    writeFileSync(join(tmp.dir, 'a.yml'), taskYaml('ta', hostA.capIf, join(tmp.dir, 'a2.ndjson'), 1));
    d = await startDaemon(tmp.dir, config);
    assert.equal((await ctl(socket, ['task', 'create', '--file', join(tmp.dir, 'a.yml')])).status, 0);
    const kids = (await status('ta')).processes.map((p) => p.pid);
    const killed = d.proc.pid!;
    d.proc.kill('SIGKILL');
    assert.ok(await waitFor(() => d.exited, 10_000));
    // Its children see the supervisor gone and end by themselves.
    assert.ok(await waitFor(() => kids.every((pid) => !alive(pid)), 20_000), 'children of a killed daemon end');
    // A killed daemon leaves its segments (unless another Otus run on the machine cleared them already).
    process.stderr.write(`# a killed daemon left ${shmEntries(killed).length} shared-memory entries\n`);
    d = await startDaemon(tmp.dir, config);
    assert.deepEqual(shmEntries(killed), [], 'the next daemon cleared them');
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
