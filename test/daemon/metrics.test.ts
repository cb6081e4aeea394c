// The daemon's Prometheus endpoint, /healthz and /readyz, as Prometheus and
// an operator meet them: a real daemon with tasks on veth pairs, traffic
// replayed into them, scrapes checked by promtool and compared with each
// task's own summary (`otusctl task status`, `task stop`); a capture process
// SIGKILLed and restarted while the scrapes go on; and a task made to drop at
// several layers (malformed frames, unmatched traffic, a filter processor, a
// 1 MiB ring, a reporter writing into a FIFO read slowly, a stop deadline)
// whose exposition must account for every frame.

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ctl, type Daemon, startDaemon } from '../helpers/daemon.js';
import { ipv4Frame, liveSkipReason, makeVethHost, removeStaleNamespaces, tempDir, type VethHost, waitFor, writePcap, waitForAsync } from '../helpers/live.js';
import { accounting, freePort, get, havePromtool, pairs, parse, promtool, type Sample, seriesKey, sum } from '../helpers/metrics.js';

const skip = liveSkipReason() ?? (havePromtool() ? null : 'needs promtool (Debian package prometheus; scripts/setup.sh --test installs it)');


const lines = (file: string): number => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
};

/** RTP (version 2, payload type `pt`) in UDP to port 20000 from `sport`. */
function rtpFrame(sport: number, pt: number, seq: number): Uint8Array {
  const f = ipv4Frame({ src: [10, 9, 0, 1], dst: [10, 9, 0, 2], sport, dport: 20000 }, 172, seq);
  const o = 14 + 20 + 8;
  f[o] = 0x80;
  f[o + 1] = pt;
  f[o + 2] = seq >> 8;
  f[o + 3] = seq & 0xff;
  return f;
}

describe('otus daemon: metrics, health', { skip: skip ?? false }, () => {
  let tmp: ReturnType<typeof tempDir>;
  let hostA: VethHost;
  let hostB: VethHost;
  let hostC: VethHost;
  let d: Daemon;
  let socket = '';
  let port = 0;
  const N = 400;
  const pcap = (name: string): string => join(tmp.dir, name);

  const scrape = async (): Promise<{ text: string; samples: Sample[] }> => {
    const r = await get(port, '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    return { text: r.body, samples: parse(r.body) };
  };
  const checked = async (): Promise<Sample[]> => {
    const s = await scrape();
    const p = promtool(s.text);
    assert.equal(p.status, 0, `promtool check metrics:\n${p.out}`);
    return s.samples;
  };
  const status = async (id: string): Promise<any> => {
    const r = await ctl(socket, ['task', 'status', '--id', id]);
    assert.equal(r.status, 0, r.stderr);
    return r.json;
  };
  const taskYaml = (id: string, iface: string, out: string, extra = ''): string =>
    `task:\n  id: ${id}\n  capture:\n    interface: ${iface}\n    workers: 2\n  parsers:\n    - plugin: rtp\n      config: {ports: [20000]}\n${extra}  reporter:\n    type: file\n    config:\n      path: ${out}\n`;
  const create = async (id: string, yaml: string): Promise<void> => {
    writeFileSync(join(tmp.dir, `${id}.yml`), yaml);
    const r = await ctl(socket, ['task', 'create', '--file', join(tmp.dir, `${id}.yml`)]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
  };
  const mismatches = (samples: Sample[], task: string, counters: unknown): string[] =>
    pairs(samples, task, counters)
      .filter(([, a, b]) => a !== b)
      .map(([what, a, b]) => `${what}: summary ${a}, metrics ${b}`);

  before(async () => {
    removeStaleNamespaces();
    tmp = tempDir();
    hostA = makeVethHost();
    hostB = makeVethHost();
    hostC = makeVethHost();
    // 64 flows so the fanout spreads them over both capture processes.
    writePcap(pcap('rtp.pcap'), Array.from({ length: N }, (_, i) => rtpFrame(10000 + (i % 64), 0, i)));
    port = await freePort();
    socket = join(tmp.dir, 'otus.sock');
    const config =
      `otus:\n  control:\n    socket: ${socket}\n  metrics:\n    listen: 127.0.0.1:${port}\n  resources:\n    max_workers: 6\n    ring_bytes: 1048576\n` +
      `  supervisor:\n    heartbeat_ms: 200\n    watchdog_ms: 3000\n    stop_timeout_ms: 2000\n    restart:\n      initial_ms: 1500\n      max_ms: 3000\n      healthy_ms: 60000\n      budget: 10\n      window_ms: 60000\n` +
      `  reporters:\n    file: {}\n`;
    d = await startDaemon(tmp.dir, config);
  });

  after(async () => {
    await d?.stop();
    for (const h of [hostA, hostB, hostC]) h?.destroy();
    tmp?.cleanup();
  });

  test('/healthz answers; /readyz is 200 with no task; unknown paths are 404', async () => {
    const h = await get(port, '/healthz');
    assert.equal(h.status, 200);
    assert.equal(JSON.parse(h.body).pid, d.proc.pid);
    const r = await get(port, '/readyz');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body), { ready: true, problems: [], tasks: {} });
    assert.equal((await get(port, '/nope')).status, 404);
    const s = await ctl(socket, ['status']);
    assert.equal(s.json.metrics.state, 'serving');
    assert.equal(s.json.metrics.listen, `127.0.0.1:${port}`);
  });

  test('promtool accepts scrapes during a live task and after it; every counter equals the task\'s summary, running and stopped', async () => {
    const out = join(tmp.dir, 'ta.ndjson');
    await create('ta', taskYaml('ta', hostA.capIf, out, '  unmatched_policy: forward\n'));
    // Paced, so that scrapes land while traffic flows.
    const replay = hostA.startReplay(pcap('rtp.pcap'), ['--pps', '400']);
    const during = await checked();
    assert.ok(during.some((s) => s.name === 'otus_packets_captured_total' && s.labels.task === 'ta'));
    await new Promise((r) => replay.once('exit', r));
    assert.ok(await waitFor(() => lines(out) === N, 20_000), `records: ${lines(out)}`);

    // Two equal status answers around a scrape: the counters are still, so the scrape saw the same figures.
    let diff: string[] = [];
    assert.ok(
      await waitForAsync(async () => {
        const a = await status('ta');
        const samples = await checked();
        const b = await status('ta');
        if (JSON.stringify(a.counters.capture_processes.map((p: any) => p.frames)) !== JSON.stringify(b.counters.capture_processes.map((p: any) => p.frames))) return false;
        diff = mismatches(samples, 'ta', b.counters);
        return diff.length === 0;
      }, 10_000),
      diff.join('\n'),
    );
    const samples = await checked();
    assert.equal(sum(samples, 'otus_packets_captured_total', { task: 'ta' }), N);
    assert.equal(sum(samples, 'otus_packets_reported_total', { task: 'ta' }), N, 'the file reporter wrote every record');
    assert.equal(sum(samples, 'otus_processing_latency_seconds_count', { task: 'ta' }), N, 'every record has its latency');
    const buckets = samples.filter((s) => s.name === 'otus_processing_latency_seconds_bucket' && s.labels.task === 'ta').map((s) => s.value);
    assert.deepEqual(buckets, [...buckets].sort((x, y) => x - y), 'histogram buckets are cumulative');
    assert.equal(buckets[buckets.length - 1], N);
    assert.equal(sum(samples, 'otus_process_up', { task: 'ta' }), 3, 'sender and two capture processes up');
    assert.ok(sum(samples, 'otus_memory_usage_bytes', { task: 'ta', process: 'capture-0' }) > 10e6, 'a capture process reports its RSS');

    const stop = await ctl(socket, ['task', 'stop', '--id', 'ta']);
    assert.equal(stop.status, 0, stop.stderr);
    const final = await checked();
    assert.deepEqual(mismatches(final, 'ta', stop.json.counters), [], 'the stopped task is exposed with exactly its final summary');
    assert.equal(sum(final, 'otus_task_state', { task: 'ta', state: 'stopped' }), 1);
    const { inflow, outflow } = accounting(final, 'ta');
    assert.equal(inflow, outflow, 'nothing in flight once stopped');
  });

  test('kill -9 of a capture process: /readyz is 503 naming it while it is down, 200 once restarted; no _total goes backwards', async () => {
    const out = join(tmp.dir, 'tb.ndjson');
    await create('tb', taskYaml('tb', hostB.capIf, out, '  unmatched_policy: forward\n'));
    hostB.replay(pcap('rtp.pcap'));
    assert.ok(await waitFor(() => lines(out) === N, 20_000));
    assert.ok(await waitForAsync(async () => sum(await checked(), 'otus_packets_captured_total', { task: 'tb' }) === N, 10_000), 'the scrape counts every frame');
    const series: Sample[][] = [await checked()];
    assert.equal((await get(port, '/readyz')).status, 200);
    assert.equal(sum(series[0]!, 'otus_ready'), 1);

    const victim = (await status('tb')).processes.find((p: any) => p.role === 'capture' && p.index === 1);
    const framesBefore = sum(series[0]!, 'otus_packets_captured_total', { task: 'tb', process: 'capture-1' });
    assert.ok(framesBefore > 0, 'the victim had counted frames');
    process.kill(victim.pid, 'SIGKILL');
    let down: any = null;
    assert.ok(
      await waitForAsync(async () => {
        const r = await get(port, '/readyz');
        if (r.status === 503) down = JSON.parse(r.body);
        return down !== null;
      }, 10_000),
      '/readyz turns 503',
    );
    assert.equal(down.ready, false);
    assert.equal(sum(await checked(), 'otus_ready'), 0, 'otus_ready says so too');
    assert.ok(down.problems.some((p: string) => /^task tb: capture process 1 is restarting \(last exit: killed by SIGKILL\)$/.test(p)), JSON.stringify(down));
    assert.deepEqual(down.tasks.tb.state, 'degraded');
    series.push(await checked()); // while it is down
    hostB.replay(pcap('rtp.pcap')); // the other capture process takes every flow meanwhile
    assert.ok(await waitForAsync(async () => (await get(port, '/readyz')).status === 200, 20_000), '/readyz is 200 again after the restart');
    const p1 = (await status('tb')).processes.find((p: any) => p.role === 'capture' && p.index === 1);
    assert.notEqual(p1.pid, victim.pid);
    series.push(await checked());
    hostB.replay(pcap('rtp.pcap'));
    assert.ok(await waitFor(() => lines(out) === 3 * N, 20_000), `records: ${lines(out)}`);
    assert.ok(await waitForAsync(async () => sum(await checked(), 'otus_packets_captured_total', { task: 'tb' }) === 3 * N, 10_000), 'every frame counted, across the restart');
    series.push(await checked());

    const monotonic = (s: Sample): boolean => /_total$|_bucket$|_count$|_sum$/.test(s.name) && s.labels.task === 'tb';
    for (let i = 1; i < series.length; i++) {
      const before = new Map(series[i - 1]!.filter(monotonic).map((s) => [seriesKey(s), s.value]));
      for (const s of series[i]!.filter(monotonic)) {
        const was = before.get(seriesKey(s));
        if (was !== undefined) assert.ok(s.value >= was, `${seriesKey(s)} went from ${was} to ${s.value} (scrape ${i})`);
      }
    }
    const last = series[series.length - 1]!;
    assert.ok(sum(last, 'otus_packets_captured_total', { task: 'tb', process: 'capture-1' }) >= framesBefore, 'the restarted process continued its counters');
    assert.equal(sum(last, 'otus_child_restarts_total', { task: 'tb', process: 'capture-1' }), 1);
    assert.equal((await ctl(socket, ['task', 'stop', '--id', 'tb'])).status, 0);
  });

  test('drops at several layers: captured = reported + drops by layer + in flight, in flight never negative and zero once stopped', async () => {
    const fifo = join(tmp.dir, 'slow.fifo');
    execFileSync('mkfifo', [fifo]);
    // Slow: at most 64 KiB every 50 ms (~1.3 MB/s), so the reporter blocks, the 1 MiB ring fills and the stop deadline passes with records held.
    const reader: ChildProcess = spawn('sh', ['-c', `exec 3<"${fifo}"; while :; do dd bs=65536 count=1 <&3 >/dev/null 2>&1; sleep 0.05; done`], { stdio: 'ignore' });
    try {
      const filter = '  processors:\n    - plugin: filter\n      config:\n        rules:\n          - label: rtp.pt\n            values: ["13"]\n            action: drop\n  unmatched_policy: drop\n';
      await create('tc', taskYaml('tc', hostC.capIf, fifo, filter));
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 30000; i++) {
        const k = i % 10;
        if (k === 0) {
          const bad = ipv4Frame({ src: [10, 9, 0, 1], dst: [10, 9, 0, 2], sport: 10000 + (i % 64), dport: 20000 }, 64, i);
          bad[14] = 0x41; // IPv4 with a 4-byte header: malformed
          frames.push(bad);
        } else if (k === 1) frames.push(ipv4Frame({ src: [10, 9, 0, 1], dst: [10, 9, 0, 2], sport: 10000 + (i % 64), dport: 30000 }, 64, i)); // no parser wants it
        else if (k === 2) frames.push(rtpFrame(10000 + (i % 64), 13, i)); // comfort noise: the filter drops it
        else frames.push(rtpFrame(10000 + (i % 64), 0, i));
      }
      writePcap(pcap('flood.pcap'), frames);
      hostC.replay(pcap('flood.pcap'));
      // While the reporter is still behind: records in flight, never fewer than none.
      const mid = await checked();
      const m = accounting(mid, 'tc');
      assert.ok(m.inflow > 0 && m.inflow >= m.outflow, `in flight ${m.inflow - m.outflow} (in ${m.inflow}, out ${m.outflow}, ${JSON.stringify(m.byLayer)})`);

      const stop = await ctl(socket, ['task', 'stop', '--id', 'tc']);
      assert.equal(stop.status, 0, stop.stderr);
      const final = await checked();
      const f = accounting(final, 'tc');
      process.stderr.write(`# tc: captured ${f.inflow}, drops by layer ${JSON.stringify(f.byLayer)}, reported ${sum(final, 'otus_packets_reported_total', { task: 'tc' })}\n`);
      assert.equal(f.inflow, f.outflow, `captured ${f.inflow} = reported + drops ${JSON.stringify(f.byLayer)} once stopped`);
      assert.equal(sum(final, 'otus_packets_captured_total', { task: 'tc' }) + sum(final, 'otus_capture_kernel_drops_total', { task: 'tc' }), 30000, 'every frame sent was captured or dropped by the kernel');
      for (const layer of ['decode', 'unmatched', 'processor']) assert.ok((f.byLayer[layer] ?? 0) > 0, `drops at ${layer}: ${JSON.stringify(f.byLayer)}`);
      // The send ring drops at its tail (capture side) or its head (sender side), by timing; the reporter at the stop deadline.
      assert.ok((f.byLayer.ring_full ?? 0) + (f.byLayer.ring_head ?? 0) > 0, `drops at the send ring: ${JSON.stringify(f.byLayer)}`);
      assert.ok(Object.values(f.byLayer).filter((n) => n > 0).length >= 5, `five layers or more: ${JSON.stringify(f.byLayer)}`);
      if (sum(final, 'otus_capture_kernel_drops_total', { task: 'tc' }) === 0) {
        // Every tenth frame of each kind: the pipeline's layers count them exactly (before the ring, which drops what is left).
        assert.deepEqual([f.byLayer.decode, f.byLayer.unmatched, f.byLayer.processor], [3000, 3000, 3000]);
      }
      assert.deepEqual(mismatches(final, 'tc', stop.json.counters), [], 'the exposition equals the stopped task\'s summary');
    } finally {
      reader.kill('SIGKILL');
    }
  });
});
