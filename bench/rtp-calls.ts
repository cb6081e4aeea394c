// The RTP fast path of capture processes, over many calls, without the
// sender: bench/replay's capture (C calls signalled by SIP, then RTP
// round-robin over them) through the pipeline a capture process builds from
// its task (sip + rtp), into a batch sink whose ring always has room.
//
// The calls' SIP is parsed first, into one flow registry shared by all
// workers. The RTP frames are split by the symmetric flow hash, as kernel
// fanout would, into one capture per worker; N worker processes (pinned to
// CPUs where there are enough) each run P passes over theirs, reading only
// the frames fanout would have given them: the first pass includes JIT
// warm-up, the later ones are a long-running capture process's steady
// state. Per pass: packets per CPU-second of each worker, and the aggregate
// rate (all workers' packets over the slowest worker's wall time), so the
// scaling from 1 to N workers of the capture side can be read off; unlike
// `otus replay`, no sender competes for the CPUs.
//
//   node dist/bench/rtp-calls.js [--calls C] [--packets N] [--passes P] [--workers 1,2] [--task FILE] [--stats on|only]
//
// --task: a task file's parsers and processors instead of sip + rtp (e.g.
// configs/task-voip.yml, whose filter rides the fast path). --stats: sip +
// rtp with rtp.stats on (per_packet true), or only (per_packet false), so
// the cost of the statistics reads off against the same task without.

import { benchArgs, file, int, list, oneOf, opt } from './cli.js';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCapture } from '../src/capture-file/open.js';
import { parseTask, type TaskSpec } from '../src/config/task.js';
import { Decoder } from '../src/decode/decoder.js';
import { native } from '../src/native.js';
import { BatchSink } from '../src/pipeline/batch-sink.js';
import { symmetricFlowHash } from '../src/pipeline/flow-hash.js';
import { instantiateTaskPlugins, pipelineForTask } from '../src/pipeline/from-task.js';
import type { Pipeline } from '../src/pipeline/pipeline.js';
import type { RecordSink } from '../src/pipeline/sink.js';
import { createRegistry } from '../src/plugin/builtins.js';
import { captureExecArgv } from '../src/supervisor/task-run.js';
import { FlowRegistry } from '../src/shm/registry.js';
import type { RtpParser } from '../plugins/parser/rtp/index.js';
import { writePcap } from '../test/helpers/live.js';
import { rtpCallsCapture } from './captures.js';

const args = process.argv.slice(2);
// --worker JSON: one worker, forked by run().
const o = benchArgs(
  {
    calls: opt(1000, int),
    packets: opt(2_000_000, int),
    passes: opt(4, int),
    workers: opt([1, 2], list(int)),
    task: opt('', file),
    stats: opt('', oneOf('on', 'only')),
  },
  { internal: ['--worker'] },
);
/** The task file given (--task), or sip + rtp with stats as --stats says. */
const taskOf = (file: string, stats: string): TaskSpec => {
  const rtpStats = stats === 'on' ? '\n      config: {stats: {per_packet: true}}' : stats === 'only' ? '\n      config: {stats: {per_packet: false}}' : '';
  return file !== ''
    ? parseTask(readFileSync(file, 'utf8'), file)
    : parseTask(`task:\n  id: bench-rtp\n  parsers:\n    - plugin: sip\n    - plugin: rtp${rtpStats}\n  unmatched_policy: drop\n`, 'bench');
};

interface Job {
  /** This worker's frames. */
  file: string;
  registry: string;
  index: number;
  workers: number;
  passes: number;
  task: string;
  stats: string;
}
interface PassResult {
  frames: number;
  labelled: number;
  /** Of the frames, those the pipeline's fast path took. */
  fast: number;
  /** Streams the rtp.stats table ended to make room for another (--stats). */
  evictions: number;
  cpuSec: number;
  wallSec: number;
}

async function pipelineOn(flows: FlowRegistry, taskFile: string, stats: string): Promise<{ pl: Pipeline; rtp: RtpParser }> {
  const task = taskOf(taskFile, stats);
  const plugins = await instantiateTaskPlugins(await createRegistry([]), task, {}, 0, flows);
  const ring: RecordSink = { u8: new Uint8Array(1 << 20), reserve: (n) => (n <= 1 << 20 ? 0 : -1), commit: () => undefined };
  const rtp = plugins.parsers.find((p) => p.protocol === 'rtp') as RtpParser;
  return { pl: pipelineForTask(task, plugins, new BatchSink(ring, 256 * 1024), 'json'), rtp };
}

const evictionsOf = (rtp: RtpParser): number => (rtp.counters().stats as { evictions?: number } | undefined)?.evictions ?? 0;

/** A worker: its RTP frames (by flow hash), P timed passes, one result per pass. */
async function worker(job: Job, send: (m: unknown) => void, go: Promise<void>): Promise<void> {
  if (job.workers > 1 && os.cpus().length >= job.workers) native.setAffinity(job.index);
  const flows = FlowRegistry.open(job.registry);
  const { pl, rtp } = await pipelineOn(flows, job.task, job.stats);
  send({ ready: true });
  await go;
  for (let pass = 0; pass < job.passes; pass++) {
    const r = openCapture(job.file);
    const f = r.frame;
    const before = rtp.stats.correlated;
    const fast0 = pl.stats.fastFrames;
    const evictions0 = evictionsOf(rtp);
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    while (r.next()) pl.processFrame(f);
    pl.flush();
    const c = process.cpuUsage(c0);
    const res: PassResult = { frames: r.framesRead, labelled: rtp.stats.correlated - before, fast: pl.stats.fastFrames - fast0, evictions: evictionsOf(rtp) - evictions0, cpuSec: (c.user + c.system) / 1e6, wallSec: Number(process.hrtime.bigint() - t0) / 1e9 };
    send({ pass: res });
  }
  flows.close();
}

/** Splits the RTP frames (after the signalling) by flow hash, one capture per worker, their timestamps kept. */
function fanout(file: string, sipFrames: number, workers: number, dir: string): string[] {
  const parts: Uint8Array[][] = Array.from({ length: workers }, () => []);
  const times: number[][] = Array.from({ length: workers }, () => []);
  const decoder = new Decoder();
  const r = openCapture(file);
  let t0 = -1;
  for (let i = 0; r.next(); i++) {
    if (i < sipFrames) continue;
    const f = r.frame;
    const us = (f.tsSec * 1e9 + f.tsNsec) / 1000;
    if (t0 < 0) t0 = us;
    const w = symmetricFlowHash(decoder.decode(f)) % workers;
    parts[w].push(f.buf.slice(f.off, f.off + f.caplen));
    times[w].push(us - t0);
  }
  return parts.map((frames, w) => {
    const out = join(dir, `worker-${workers}-${w}.pcap`);
    writePcap(out, frames, (i) => times[w][i]);
    return out;
  });
}

async function run(files: string[], passes: number, registry: string, task: string, stats: string): Promise<PassResult[][]> {
  const workers = files.length;
  const here = fileURLToPath(import.meta.url);
  const kids: ChildProcess[] = [];
  const results: PassResult[][] = Array.from({ length: passes }, () => []);
  let ready = 0;
  let finished = 0;
  await new Promise<void>((resolve, reject) => {
    for (let index = 0; index < workers; index++) {
      const job: Job = { file: files[index], registry, index, workers, passes, task, stats };
      const k = fork(here, ['--worker', JSON.stringify(job)], { execArgv: captureExecArgv(process.execArgv), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      kids.push(k);
      let pass = 0;
      k.on('message', (m: { ready?: boolean; pass?: PassResult }) => {
        if (m.ready && ++ready === workers) for (const c of kids) c.send('go');
        if (m.pass) results[pass++].push(m.pass);
      });
      k.on('exit', (code) => {
        if (code !== 0) reject(new Error(`worker ${index} exited with ${code}`));
        else if (++finished === workers) resolve();
      });
    }
  });
  return results;
}

async function main(): Promise<void> {
  const { calls, packets, passes, task, stats, workers: workerList } = o;
  const dir = mkdtempSync(join(os.tmpdir(), 'otus-bench-rtp-'));
  const file = join(dir, 'calls.pcap');
  const name = `benchrtp${process.pid}`;
  const flows = FlowRegistry.create(name, { capacity: 65536 });
  try {
    rtpCallsCapture(file, calls, packets);
    // The signalling, once, into the shared registry (INVITE and 200 of every call come first).
    const { pl } = await pipelineOn(flows, task, stats);
    const r = openCapture(file);
    for (let i = 0; i < 2 * calls && r.next(); i++) pl.processFrame(r.frame);
    console.log(`# ${os.cpus()[0].model}, ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, node ${process.version}; ${calls} calls, ${packets} RTP packets${stats !== "" ? `, rtp.stats ${stats}` : ""}`);
    const aggregate: Record<number, number> = {};
    for (const workers of workerList) {
      const results = await run(fanout(file, 2 * calls, workers, dir), passes, name, task, stats);
      results.forEach((per, p) => {
        const frames = per.reduce((a, x) => a + x.frames, 0);
        const labelled = per.reduce((a, x) => a + x.labelled, 0);
        const fast = per.reduce((a, x) => a + x.fast, 0);
        const wall = Math.max(...per.map((x) => x.wallSec));
        const rates = per.map((x) => `${(x.frames / x.cpuSec / 1e6).toFixed(2)} M`).join(', ');
        const agg = frames / wall;
        if (p > 0) aggregate[workers] = Math.max(aggregate[workers] ?? 0, agg);
        console.log(`${workers} worker(s), pass ${p + 1}${p === 0 ? ' (JIT warm-up)' : ''}: packets per CPU-second ${rates}; aggregate ${(agg / 1e6).toFixed(2)} M packets per second; fast path ${((100 * fast) / frames).toFixed(1)}%`);
        if (labelled !== packets) console.log(`WARNING: ${labelled} of ${packets} RTP packets labelled with their call`);
        const evictions = per.reduce((a, x) => a + x.evictions, 0);
        // A stream ended to make room while the table has rows to spare (max_streams 4096 a process) is a table that misplaces streams.
        if (evictions > 0) console.log(`WARNING: the rtp.stats table evicted ${evictions} live streams`);
      });
    }
    if (aggregate[1] && aggregate[2]) console.log(`2 workers / 1 worker, best steady pass: ${(aggregate[2] / aggregate[1]).toFixed(2)}x`);
  } finally {
    flows.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (args[0] === '--worker') {
  let start: () => void = () => undefined;
  const go = new Promise<void>((res) => (start = res));
  process.on('message', (m) => m === 'go' && start());
  worker(JSON.parse(args[1]) as Job, (m) => process.send!(m), go).then(
    () => process.disconnect(),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
} else await main();
