// What keeping its counters in the task's stats segment costs a capture
// process (src/capture-proc/counters.ts CaptureStats, src/util/node-stats.ts):
// the copy at the end of every ring block and before every batch enters the
// ring, and the full publish each
// heartbeat (the pipeline's counters gathered, the parsers' own, decode
// errors, reassembly, the process's own figures), for the pipeline of a
// sip + rtp + rtcp task. CPU time per call, best of --rounds; from these a
// capture process's cost per second is blocks/s x block + heartbeats/s x publish.
//
//   node dist/bench/stats.js [--rounds 5]

import { benchArgs, int, opt } from './cli.js';
import os from 'node:os';
import { CaptureStats, pipelineCounters } from '../src/capture-proc/counters.js';
import { parseTask } from '../src/config/task.js';
import { BatchSink } from '../src/pipeline/batch-sink.js';
import { instantiateTaskPlugins, pipelineForTask } from '../src/pipeline/from-task.js';
import type { RecordSink } from '../src/pipeline/sink.js';
import { createRegistry } from '../src/plugin/builtins.js';
import { captureSlot, StatsSegment, StatsWriter } from '../src/shm/stats.js';
import type { LiveCaptureDone } from '../src/supervisor/messages.js';
import { NodeProcessStats } from '../src/util/node-stats.js';

const ROUNDS = benchArgs({ rounds: opt(5, int) }).rounds;

const scope = `benchstats${process.pid}`;
const seg = StatsSegment.create(scope, 2);
try {
  const task = parseTask('task:\n  id: bench-stats\n  parsers:\n    - plugin: sip\n    - plugin: rtp\n    - plugin: rtcp\n  unmatched_policy: forward\n', 'bench');
  const plugins = await instantiateTaskPlugins(await createRegistry([]), task, {}, 0, null);
  const ring: RecordSink = { u8: new Uint8Array(1 << 20), reserve: (n) => (n <= 1 << 20 ? 0 : -1), commit: () => undefined };
  const batch = new BatchSink(ring, 256 * 1024);
  const pl = pipelineForTask(task, plugins, batch, 'json', { userFilter: false });
  const stats = new CaptureStats(StatsWriter.open(scope, captureSlot(0)), pl, batch);
  const node = new NodeProcessStats();
  const snapshot = (): LiveCaptureDone => ({
    type: 'done',
    index: 0,
    pid: process.pid,
    cpu: -1,
    why: 'running',
    failure: null,
    counters: pipelineCounters(pl, plugins.parsers, batch),
    stream: { frames: 1, blocks: 1, kernelPackets: 1, kernelDrops: 0, freezes: 0, ifDrops: 0, outgoingSkipped: 0, interfaceWaits: 0, interfaceWaitMs: 0 },
    catchUp: null,
    cpuSec: 1,
    wallSec: 1,
  });
  const cpuNs = (): number => {
    const c = process.cpuUsage();
    return (c.user + c.system) * 1000;
  };
  const time = (n: number, f: () => void): number => {
    let best = Infinity;
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = cpuNs();
      for (let k = 0; k < n; k++) f();
      best = Math.min(best, (cpuNs() - t0) / n);
    }
    return best;
  };
  const block = time(2_000_000, () => {
    pl.stats.frames++;
    stats.block();
  });
  const publish = time(2000, () => stats.publish(snapshot(), node.sample()));
  node.stop();
  console.log(`machine: ${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log(`per ring block or batch: ${block.toFixed(0)} ns; per heartbeat (publish everything): ${(publish / 1000).toFixed(1)} µs`);
  // A batch goes to the ring per 32 KiB of wire records: at 1.3 M RTP packets/s (~150 B each) about 6000 a second.
  for (const perSec of [100, 6000]) {
    const ns = perSec * block + publish;
    console.log(`at ${perSec} blocks or batches a second and one heartbeat: ${(ns / 1e3).toFixed(1)} µs of CPU per second (${(ns / 1e7).toFixed(4)} % of a core)`);
  }
} finally {
  seg.close();
}
