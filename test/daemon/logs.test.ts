// The daemon's log as an operator sees it: a real daemon writing to stderr,
// a rolled file and a local Loki receiver; a task on a veth whose capture
// processes and sender log through the daemon; a storm of malformed packets;
// the level changed by otusctl log-level and by reload; Loki gone while the
// daemon works on.

import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/ctl/client.js';
import { ctl, type Daemon, startDaemon } from '../helpers/daemon.js';
import { ipv4Frame, liveSkipReason, makeVethHost, removeStaleNamespaces, tempDir, type VethHost, waitFor, writePcap, waitForAsync } from '../helpers/live.js';
import { startLokiReceiver, type LokiReceiver } from '../helpers/loki.js';

const skip = liveSkipReason();

type Line = Record<string, unknown> & { msg: string; component: string; level: number };

const parse = (text: string): Line[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);


describe('otus daemon logs', { skip: skip ?? false }, () => {
  let tmp: ReturnType<typeof tempDir>;
  let host: VethHost;
  let rx: LokiReceiver;
  let d: Daemon;
  let socket = '';
  let cfgFile = '';
  let config = '';
  const logFile = (): string => join(tmp.dir, 'log', 'otus.log');
  const current = (): string => join(tmp.dir, 'log', 'current.log');
  const fileLines = (): Line[] => {
    try {
      return parse(readFileSync(current(), 'utf8'));
    } catch {
      return [];
    }
  };
  const status = async (): Promise<{
    processes: { role: string; index: number; pid: number; state: string }[];
    counters: { frames: number; decode_errors: Record<string, number>; capture_processes: { index: number; wall_s: number }[] };
  }> => {
    const r = await ctl(socket, ['task', 'status', '--id', 'lg']);
    assert.equal(r.status, 0, r.stderr);
    return r.json;
  };

  before(async () => {
    removeStaleNamespaces();
    tmp = tempDir();
    host = makeVethHost();
    rx = await startLokiReceiver();
    socket = join(tmp.dir, 'otus.sock');
    config =
      `otus:\n  node:\n    id: logs-node\n  control:\n    socket: ${socket}\n  resources:\n    max_workers: 4\n` +
      `  supervisor:\n    heartbeat_ms: 200\n    watchdog_ms: 2000\n  reporters:\n    file: {}\n` +
      `  log:\n    level: info\n    rate_limit_ms: 1500\n    outputs:\n      stderr: {}\n` +
      `      file: {path: ${logFile()}, size_bytes: 10485760, count: 2}\n` +
      `      loki: {endpoint: "${rx.url}", labels: {job: otus, env: test}, batch_timeout_ms: 100, max_buffer_bytes: 65536, timeout_ms: 1000}\n`;
    d = await startDaemon(tmp.dir, config);
    cfgFile = d.proc.spawnargs[d.proc.spawnargs.length - 1]!;
    writeFileSync(
      join(tmp.dir, 'lg.yml'),
      `task:\n  id: lg\n  capture:\n    interface: ${host.capIf}\n    workers: 2\n  reporter:\n    type: file\n    config:\n      path: ${join(tmp.dir, 'out.ndjson')}\n  unmatched_policy: forward\n`,
    );
    const c = await ctl(socket, ['task', 'create', '--file', join(tmp.dir, 'lg.yml')]);
    assert.equal(c.status, 0, c.stderr);
  });

  after(async () => {
    await d?.stop();
    await rx?.close();
    host?.destroy();
    tmp?.cleanup();
  });

  test('the children log through the daemon: the same lines on stderr, in the file (0640) and in Loki, with component, node, task and pid', async () => {
    const procs = (await status()).processes;
    const want = procs.map((p) => [p.role === 'sender' ? 'sender started' : 'capture process started', p.pid] as const);
    const has = (lines: Line[]): boolean => want.every(([msg, pid]) => lines.some((l) => l.msg === msg && l.pid === pid));
    const loki = (): Line[] => rx.lines().map((l) => JSON.parse(l) as Line);
    assert.ok(await waitFor(() => has(d.logs() as Line[]) && has(fileLines()) && has(loki()), 10_000), `want ${JSON.stringify(want)}`);
    for (const lines of [d.logs() as Line[], fileLines(), loki()]) {
      for (const [msg, pid] of want) {
        const l = lines.find((x) => x.msg === msg && x.pid === pid)!;
        assert.deepEqual([l.node, l.task, l.component, typeof l.time], ['logs-node', 'lg', msg === 'sender started' ? 'sender' : 'capture', 'number'], JSON.stringify(l));
      }
      const sup = lines.find((x) => x.msg === 'task running')!;
      assert.deepEqual([sup.component, sup.task, sup.pid], ['supervisor', 'lg', d.proc.pid]);
    }
    assert.equal(statSync(current()).mode & 0o777, 0o640);
    for (const p of rx.pushes) assert.deepEqual(p.body.streams.map((s) => s.stream), [{ job: 'otus', env: 'test', node: 'logs-node' }]);
    const st = await ctl(socket, ['status']);
    assert.equal(st.json.log.level, 'info');
    assert.equal(st.json.log.outputs.loki.failed_pushes, 0);
    assert.equal(st.json.log.outputs.file.path, logFile());
  });

  test('a storm of malformed packets is counted, and logged as a few lines whose counts add up to it', async () => {
    // 3000 IPv4 frames whose header says version 6: ipv4_bad_version, each one.
    const bad = Array.from({ length: 3000 }, (_, i) => {
      const f = ipv4Frame({ src: [10, 9, 0, 1], dst: [10, 9, 0, 2], sport: 11000 + (i % 64), dport: 20000 }, 32, i);
      f[14] = 0x65;
      return f;
    });
    writePcap(join(tmp.dir, 'bad.pcap'), bad);
    // 3 s of it: the storm outlasts a 1.5 s window, so it takes a first line and summaries.
    const replay = host.startReplay(join(tmp.dir, 'bad.pcap'), ['--pps', '1000']);
    await new Promise((res) => replay.once('exit', res));
    let errors = 0;
    assert.ok(
      await waitForAsync(async () => {
        errors = Object.values((await status()).counters.decode_errors).reduce((a, n) => a + n, 0);
        return errors >= 3000;
      }, 20_000),
      `decode errors: ${errors}`,
    );
    assert.equal(errors, 3000);
    const storm = (): Line[] => fileLines().filter((l) => l.key === 'malformed');
    // Once every window has closed (1.5 s after the storm), its summary is out: nothing is left uncounted.
    assert.ok(await waitFor(() => storm().reduce((a, l) => a + (l.count as number), 0) === 3000, 15_000), JSON.stringify(storm()));
    const lines = storm();
    const perProcess = new Map<unknown, number>();
    for (const l of lines) perProcess.set(l.pid, (perProcess.get(l.pid) ?? 0) + 1);
    for (const [pid, n] of perProcess) assert.ok(n <= 4, `capture process ${pid}: ${n} lines in a 3 s storm with a 1.5 s window`);
    assert.ok(lines.some((l) => /more in the last [\d.]+ s$/.test(l.msg)), 'a summary line');
    assert.ok(lines.every((l) => l.component === 'capture' && l.task === 'lg' && l.level === 40));
    process.stderr.write(`# 3000 malformed packets: ${lines.length} log lines (${lines.map((l) => l.count).join(', ')})\n`);
  });

  test('otusctl log-level: the daemon and its children, running and restarted, take the new level', async () => {
    const set = await ctl(socket, ['log-level', 'warn']);
    assert.equal(set.status, 0, set.stderr);
    assert.deepEqual(set.json, { level: 'warn', previous: 'info' });
    const human = await ctl(socket, ['log-level', 'loud'], { json: false });
    assert.equal(human.status, 2, 'a level that does not exist is a usage error');
    assert.match(human.stderr, /Invalid values:[\s\S]*loud/);

    const victim = (await status()).processes.find((p) => p.role === 'capture' && p.index === 1)!;
    const mark = fileLines().length;
    process.kill(victim.pid, 'SIGKILL');
    assert.ok(await waitForAsync(async () => (await status()).processes.some((p) => p.role === 'capture' && p.index === 1 && p.pid !== victim.pid && p.state === 'running'), 20_000));
    const restarted = (await status()).processes.find((p) => p.role === 'capture' && p.index === 1)!;
    // A beat of the restarted process: its 'started' line, sent before it on the same channel, would have reached the daemon.
    const wall = async (): Promise<number> => (await status()).counters.capture_processes.find((c) => c.index === 1)!.wall_s;
    const w0 = await wall();
    assert.ok(await waitForAsync(async () => (await wall()) > w0, 5000), 'the restarted process beats');
    const back = await ctl(socket, ['log-level', 'info'], { json: false });
    assert.equal(back.status, 0, back.stderr);
    assert.equal(back.stdout, 'log level: info (was warn)\n');
    // The daemon's line about the change is written after everything that reached it before.
    let since: Line[] = [];
    assert.ok(
      await waitFor(() => {
        const lines = fileLines().slice(mark);
        const at = lines.findIndex((l) => l.msg === 'log level set' && l.to === 'info');
        since = lines.slice(0, at);
        return at >= 0;
      }, 5000),
    );
    assert.ok(since.some((l) => l.msg === 'child exited' && l.level === 40), 'a warning still gets through');
    assert.deepEqual(since.filter((l) => l.level < 40), [], 'nothing below warn meanwhile');
    assert.ok(!since.some((l) => l.pid === restarted.pid), 'the restarted capture process started at warn');
    // Told to the running children: the restarted one says it stops when the task stops (last test).
  });

  test('reload to debug: control requests are logged (component ctl); Loki gone: the daemon works on, holds at most max_buffer_bytes, counts failed pushes and dropped lines in otusctl status; back, lines flow again', async () => {
    writeFileSync(cfgFile, config.replace('level: info', 'level: debug'));
    const r = await ctl(socket, ['reload']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.json.applied, ['log.level']);
    assert.ok(await waitFor(() => fileLines().some((l) => l.component === 'ctl' && l.msg === 'control request' && l.method === 'reload' && l.uid === 0), 5000), 'the reload itself is logged at debug');

    await rx.close();
    const before = rx.lines().length;
    // Many debug lines, about 170 bytes each: several times the 64 KiB Loki may hold.
    const c = await ControlClient.connect(socket);
    for (let i = 0; i < 2000; i++) await c.call('status');
    c.close();
    let s: { buffered_bytes: number; failed_pushes: number; dropped_lines: number; buffered_lines: number } = { buffered_bytes: 0, failed_pushes: 0, dropped_lines: 0, buffered_lines: 0 };
    assert.ok(
      await waitForAsync(async () => {
        s = (await ctl(socket, ['status'])).json.log.outputs.loki;
        return s.failed_pushes >= 1 && s.dropped_lines > 0;
      }, 15_000),
      JSON.stringify(s),
    );
    assert.ok(s.buffered_bytes <= 65536, `Loki output holds ${s.buffered_bytes} bytes`);
    const human = await ctl(socket, ['status'], { json: false });
    assert.match(human.stdout, /^  loki http:\/\/127\.0\.0\.1:\d+\/loki\/api\/v1\/push: [\d.k]+ failed pushes?, [\d.k]+ lines\s+dropped,/m);

    // The task captures on: records still reach its reporter.
    const out = join(tmp.dir, 'out.ndjson');
    const count = (): number => readFileSync(out, 'utf8').split('\n').filter(Boolean).length;
    const n0 = count();
    writePcap(join(tmp.dir, 'ok.pcap'), Array.from({ length: 200 }, (_, i) => ipv4Frame({ src: [10, 9, 0, 1], dst: [10, 9, 0, 2], sport: 12000 + (i % 64), dport: 20000 }, 32, i)));
    host.replay(join(tmp.dir, 'ok.pcap'));
    assert.ok(await waitFor(() => count() >= n0 + 200, 10_000), `records while Loki is down: ${count() - n0}`);

    await rx.reopen();
    assert.ok(
      await waitForAsync(async () => (await ctl(socket, ['status'])).json.log.outputs.loki.buffered_lines === 0 && rx.lines().length > before, 30_000),
      'the held lines go once Loki is back',
    );

    // The children heard `log-level info` (and then debug): the restarted capture process says it stops.
    const procs = (await status()).processes;
    const stop = await ctl(socket, ['task', 'stop', '--id', 'lg']);
    assert.equal(stop.status, 0, stop.stderr);
    for (const p of procs.filter((x) => x.role === 'capture')) {
      assert.ok(await waitFor(() => fileLines().some((l) => l.msg === 'capture process stopped' && l.pid === p.pid), 5000), `capture ${p.index} (pid ${p.pid}) said it stopped`);
    }
  });
});
