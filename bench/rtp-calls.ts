// The RTP fast path of one capture process, in process, over many calls:
// bench/replay's capture (C calls signalled by SIP, then RTP round-robin
// over them, so flow cache, label cache and registry see C calls' worth of
// slots) through the pipeline a capture process builds from its task
// (sip + rtp), into a batch sink whose ring always has room. Several
// passes over the file: the first includes JIT warm-up, the others are
// the steady state of a long-running capture process. No other process
// competes, unlike `otus replay` on a 2-vCPU machine.
//
//   node dist/bench/rtp-calls.js [--calls C] [--packets N] [--passes P]

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { openCapture } from '../src/capture-file/open.js';
import { parseTask } from '../src/config/task.js';
import { BatchSink } from '../src/pipeline/batch-sink.js';
import { instantiateTaskPlugins, pipelineForTask } from '../src/pipeline/from-task.js';
import type { RecordSink } from '../src/pipeline/sink.js';
import { createRegistry } from '../src/plugin/builtins.js';
import { FlowRegistry } from '../src/shm/registry.js';
import type { RtpParser } from '../plugins/parser/rtp/index.js';
import { rtpCallsCapture } from './captures.js';

const args = process.argv.slice(2);
const opt = (k: string, d: number): number => (args.includes(k) ? Number(args[args.indexOf(k) + 1]) : d);
const calls = opt('--calls', 1000);
const packets = opt('--packets', 2_000_000);
const passes = opt('--passes', 4);

const dir = mkdtempSync(join(os.tmpdir(), 'otus-bench-rtp-'));
const file = join(dir, 'calls.pcap');
rtpCallsCapture(file, calls, packets);
const task = parseTask('task:\n  id: bench-rtp\n  parsers:\n    - plugin: sip\n    - plugin: rtp\n  unmatched_policy: drop\n', 'bench');
const flows = FlowRegistry.create(`benchrtp${process.pid}`, { capacity: 65536 });
try {
  const plugins = await instantiateTaskPlugins(await createRegistry([]), task, {}, 0, flows);
  const ring: RecordSink = { u8: new Uint8Array(1 << 20), reserve: (n) => (n <= 1 << 20 ? 0 : -1), commit: () => undefined };
  const batch = new BatchSink(ring, 256 * 1024);
  const pl = pipelineForTask(task, plugins, batch, 'json');
  console.log(`# ${os.cpus()[0].model}, ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, node ${process.version}; ${calls} calls, ${packets} RTP packets`);
  for (let pass = 1; pass <= passes; pass++) {
    const r = openCapture(file);
    const f = r.frame;
    const rtp = plugins.parsers[1] as RtpParser;
    const corr0 = rtp.stats.correlated;
    const c0 = process.cpuUsage();
    while (r.next()) pl.processFrame(f);
    pl.flush();
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1e6;
    const labelled = rtp.stats.correlated - corr0;
    console.log(`pass ${pass}${pass === 1 ? ' (JIT warm-up)' : ''}: ${r.framesRead} frames, ${cpu.toFixed(2)} CPU-s, ${(r.framesRead / cpu / 1e6).toFixed(2)} M packets per CPU-second, ${labelled} RTP packets labelled with their call`);
    if (labelled !== packets) console.log(`WARNING: ${labelled} of ${packets} RTP packets labelled`);
  }
} finally {
  flows.close();
  rmSync(dir, { recursive: true, force: true });
}
