// A daemon task with `senders: 2` on a veth: two send rings, two sender
// processes appending to one file. Each sender is supervised alone: one
// stopped and then killed is restarted into its own ring, the other sender
// and the capture processes keep their pids, nothing its ring held is lost,
// and the accounting holds summed over the senders (status, stop summary,
// metrics with their `sender` label).

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ctl, type Daemon, startDaemon } from '../helpers/daemon.js';
import { ipv4Frame, liveSkipReason, makeVethHost, removeStaleNamespaces, tempDir, type VethHost, waitFor, waitForAsync, writePcap } from '../helpers/live.js';
import { accounting, freePort, get, parse, sum } from '../helpers/metrics.js';

const skip = liveSkipReason();

interface Proc {
  role: string;
  index: number;
  pid: number;
  state: string;
  restarts: number;
}

describe('a task with two senders', { skip: skip ?? false }, () => {
  let tmp: ReturnType<typeof tempDir>;
  let host: VethHost;
  let d: Daemon;
  let socket = '';
  let port = 0;
  const N = 640;
  const out = (): string => join(tmp.dir, 's.ndjson');
  const pcap = (): string => join(tmp.dir, 's.pcap');
  const ours = (): number => {
    try {
      return readFileSync(out(), 'utf8').split('\n').filter((l) => l.includes('"sport":5')).length;
    } catch {
      return 0;
    }
  };
  const status = async (): Promise<{ state: string; processes: Proc[]; counters: any }> => {
    const r = await ctl(socket, ['task', 'status', '--id', 'ts']);
    assert.equal(r.status, 0, r.stderr);
    return r.json;
  };

  before(async () => {
    removeStaleNamespaces();
    tmp = tempDir();
    host = makeVethHost();
    // 64 flows (source ports 50000-50063): the fanout hash spreads them over both capture processes.
    writePcap(pcap(), Array.from({ length: N }, (_, i) => ipv4Frame({ src: [10, 9, 0, 1], dst: [10, 9, 0, 2], sport: 50000 + (i % 64), dport: 20000 }, 64, i)));
    socket = join(tmp.dir, 'otus.sock');
    port = await freePort();
    const config =
      `otus:\n  control:\n    socket: ${socket}\n  metrics:\n    listen: 127.0.0.1:${port}\n  resources:\n    max_workers: 3\n` +
      `  supervisor:\n    heartbeat_ms: 200\n    watchdog_ms: 30000\n    stop_timeout_ms: 5000\n    restart:\n      initial_ms: 100\n      max_ms: 800\n      healthy_ms: 60000\n      budget: 4\n      window_ms: 60000\n` +
      `  reporters:\n    file: {}\n`;
    d = await startDaemon(tmp.dir, config);
  });

  after(async () => {
    await d?.stop();
    host?.destroy();
    tmp?.cleanup();
  });

  test('created within the worker budget (two capture processes and one more sender), both senders write', async () => {
    const yaml = (senders: number, workers: number): string =>
      `task:\n  id: ts\n  senders: ${senders}\n  capture:\n    interface: ${host.capIf}\n    workers: ${workers}\n  reporter:\n    type: file\n    config:\n      path: ${out()}\n  unmatched_policy: forward\n`;
    writeFileSync(join(tmp.dir, 'big.yml'), yaml(3, 3));
    const big = await ctl(socket, ['task', 'create', '--file', join(tmp.dir, 'big.yml')]);
    assert.equal(big.status, 1, 'three capture processes and two more senders do not fit in 3 workers');
    assert.match(big.stderr, /\[OTUS_ERR_BAD_ARGUMENT\]/);
    writeFileSync(join(tmp.dir, 's.yml'), yaml(2, 2));
    const c = await ctl(socket, ['task', 'create', '--file', join(tmp.dir, 's.yml')]);
    assert.equal(c.status, 0, c.stderr + c.stdout);
    const st = await status();
    assert.deepEqual(st.processes.map((p) => [p.role, p.index, p.state]), [['sender', 0, 'running'], ['sender', 1, 'running'], ['capture', 0, 'running'], ['capture', 1, 'running']]);
    host.replay(pcap());
    assert.ok(await waitFor(() => ours() === N, 20_000), `records: ${ours()}`);
    assert.ok(await waitForAsync(async () => (await status()).counters.sender.records === N, 10_000), 'the senders counted every record');
    const s = (await status()).counters;
    assert.equal(s.senders.length, 2);
    assert.equal(s.senders[0].records + s.senders[1].records, N);
    for (const x of s.senders) assert.ok(x.records > 0, `sender ${x.index} read records: ${JSON.stringify(s.senders)}`);
    const text = (await get(port, '/metrics')).body;
    const samples = parse(text);
    assert.equal(sum(samples, 'otus_sender_records_total', { task: 'ts', sender: '0' }), s.senders[0].records);
    assert.equal(sum(samples, 'otus_sender_records_total', { task: 'ts', sender: '1' }), s.senders[1].records);
    assert.match(text, /otus_process_up\{task="ts",process="sender-1"\} 1/);
  });

  test('kill -9 of sender 1 while its ring fills: it alone is restarted, its ring reaches the file, the invariant holds', async () => {
    const before = await status();
    const victim = before.processes.find((p) => p.role === 'sender' && p.index === 1)!;
    const others = before.processes.filter((p) => !(p.role === 'sender' && p.index === 1));
    const heldBefore = before.counters.senders[1].records;
    // Stopped, its ring keeps what capture processes commit; then killed.
    process.kill(victim.pid, 'SIGSTOP');
    host.replay(pcap());
    const committed = (c: { capture_processes: { records: number }[] }): number => c.capture_processes.reduce((x, p) => x + p.records, 0);
    assert.ok(await waitForAsync(async () => committed((await status()).counters) >= 2 * N, 10_000), 'the capture processes committed the second replay');
    const mid = await status();
    assert.equal(mid.counters.senders[1].records, heldBefore, `sender 1 read nothing while it was stopped: ${JSON.stringify(mid.counters.senders)} ${JSON.stringify(mid.processes)} ${ours()}`);
    process.kill(victim.pid, 'SIGKILL');
    assert.ok(
      await waitForAsync(async () => {
        const p = (await status()).processes.find((x) => x.role === 'sender' && x.index === 1)!;
        return p.state === 'running' && p.pid !== victim.pid;
      }, 20_000),
      'sender 1 is back',
    );
    assert.ok(await waitFor(() => ours() === 2 * N, 20_000), `records after the restart: ${ours()} of ${2 * N}`);
    // The counters come from the stats slot, which the restarted sender writes at its next beat.
    assert.ok(await waitForAsync(async () => (await status()).counters.senders[1].records > heldBefore, 10_000), 'sender 1 counts what it read after the restart');
    const after = await status();
    for (const o of others) assert.equal(after.processes.find((p) => p.role === o.role && p.index === o.index)!.pid, o.pid, `${o.role} ${o.index} was left alone`);
    assert.equal(after.processes.find((p) => p.role === 'sender' && p.index === 1)!.restarts, 1);

    const stop = await ctl(socket, ['task', 'stop', '--id', 'ts']);
    assert.equal(stop.status, 0, stop.stderr);
    const c = stop.json.counters;
    const produced = c.capture_processes.reduce((a: number, p: { records: number }) => a + p.records, 0);
    const dr = c.drops;
    const drops = dr.ring_head + dr.ring_abandoned + dr.sender_expand + dr.reporter_queue + dr.reporter_timeout + dr.reporter_error + dr.stop_deadline;
    assert.equal(produced, 2 * N);
    assert.equal(c.reporter.queued, 0, 'nothing in flight after the stop');
    assert.equal(produced, c.reporter.acked + drops, `produced = acked + drops: ${JSON.stringify({ drops: dr, reporter: c.reporter })}`);
    assert.equal(c.reporter.acked, 2 * N);
    assert.equal(c.senders[0].acked + c.senders[1].acked, c.reporter.acked);
    const a = accounting(parse((await get(port, '/metrics')).body), 'ts');
    assert.equal(a.inflow, a.outflow, `metrics: in ${a.inflow}, out ${a.outflow} ${JSON.stringify(a.byLayer)}`);
  });
});
