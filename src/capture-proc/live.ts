// A capture process of a live task (`otus capture --task`, forked by
// src/supervisor/live.ts): one stream of the capture driver (one
// af_packet_v3 fanout member or XDP queue), pinned to its CPU, running the
// task's pipeline over the frames of each ring block in place and
// committing wire-record batches to the task's send ring (at the end of
// every block, so a quiet link's records do not wait). It never waits for
// the sender: a full ring drops the batch and counts it (docs/architecture.md, "Counters, and where they are kept").
// Controlled over IPC: start → ready, then a beat every heartbeatMs (the
// supervisor's watchdog); stop, or a lost parent → the frames the kernel
// still holds are processed, done, exit. Its counters live in its slot of the
// task's stats segment (src/shm/stats.ts): the pipeline's by layer copied at
// the end of every ring block, everything at each heartbeat and at the end.
// Logs through the supervisor (src/log/logger.ts); drops and malformed
// packets are checked at each beat, never per packet, and warned about
// rate-limited.

import { createCapturer } from '../capture/index.js';
import type { FrameSink } from '../capture/capturer.js';
import { childLogger } from '../log/logger.js';
import { RateLimitedLog } from '../log/rate-limit.js';
import { native } from '../native.js';
import { BatchSink } from '../pipeline/batch-sink.js';
import { instantiateTaskPlugins, pipelineForTask } from '../pipeline/from-task.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import { createRegistry } from '../plugin/builtins.js';
import { CaptureClock } from '../shm/capture-clock.js';
import { FlowRegistry } from '../shm/registry.js';
import { RingProducer } from '../shm/ring.js';
import { captureSlot, StatsWriter } from '../shm/stats.js';
import { type Beat, exitWithError, type LiveCaptureDone, type LiveCaptureStart } from '../supervisor/messages.js';
import { NodeProcessStats } from '../util/node-stats.js';
import { LiveCatchUp } from './catch-up.js';
import { CaptureStats, MAX_RECORD_BYTES, pipelineCounters } from './counters.js';

/** The capture driver's frames into the pipeline: nanosecond kernel timestamps; a batch to the ring per block. */
class PipelineFeed implements FrameSink {
  failure: string | null = null;
  /** Capture time of the last frame. */
  private sec = 0;
  private nsec = 0;
  constructor(
    private readonly pl: Pipeline,
    private readonly catchUp: LiveCatchUp | null,
    private readonly stats: CaptureStats | null,
    private readonly onEnd: (why: string) => void,
  ) {}

  frame(buf: Uint8Array, view: DataView, off: number, caplen: number, len: number, linkType: number, sec: number, nsec: number): void {
    this.sec = sec;
    this.nsec = nsec;
    this.pl.processBytes(buf, view, off, caplen, len, linkType, sec, nsec, true, 9);
  }

  batchEnd(): void {
    this.pl.batchEnd();
    this.catchUp?.handled(this.sec, this.nsec);
    this.stats?.block();
  }

  error(_stream: number, message: string): void {
    this.failure = message;
    this.onEnd(`error: ${message}`);
  }
}

process.on('SIGINT', () => {}); // the terminal's SIGINT is the supervisor's to act on: it stops us in order
process.on('SIGTERM', () => {});

/** What the last beat had seen, so a warning says what is new. */
interface Seen {
  kernelDrops: number;
  ringDrops: number;
  malformed: number;
}

/** Warns (rate-limited) about what grew since the last beat: kernel drops, ring-full drops, malformed packets. */
function watch(d: LiveCaptureDone, seen: Seen, warn: RateLimitedLog): void {
  const malformed = Object.values(d.counters.decodeErrors).reduce((a, n) => a + n, 0);
  const kernel = d.stream.kernelDrops - seen.kernelDrops;
  const ring = d.counters.ringDrops - seen.ringDrops;
  const bad = malformed - seen.malformed;
  if (kernel > 0) warn.warn('kernel_drops', kernel, { kernel_drops: d.stream.kernelDrops }, 'the kernel dropped packets: this capture process is not keeping up');
  if (ring > 0) warn.warn('ring_full', ring, { ring_tail: d.counters.ringDrops }, 'send ring full: records dropped (the sender is not keeping up)');
  if (bad > 0) warn.warn('malformed', bad, { decode_errors: d.counters.decodeErrors }, 'malformed packets (counted in decode_errors)');
  seen.kernelDrops = d.stream.kernelDrops;
  seen.ringDrops = d.counters.ringDrops;
  seen.malformed = malformed;
}

async function run(m: LiveCaptureStart): Promise<void> {
  const log = childLogger(m.log, 'capture', { index: m.index });
  const warn = new RateLimitedLog(log, m.log?.rateLimitMs);
  if (m.cpu >= 0) native.setAffinity(m.cpu);
  const task = m.task;
  const registry = await createRegistry(m.pluginDirs);
  const flows = m.flows ? FlowRegistry.open(m.ringTask) : null;
  // Several capture processes: a registry miss waits for the others' older frames (catch-up.ts).
  const catchUp = flows !== null && m.clock !== null ? new LiveCatchUp(CaptureClock.open(m.ringTask), m.index, m.clock.baseMs, m.clock.windowMs) : null;
  if (catchUp !== null) flows!.setCatchUp((sec, nsec, flow) => catchUp.wait(sec, nsec, flow));
  const plugins = await instantiateTaskPlugins(registry, task, m.node, m.index, flows, m.workers);
  const producer = RingProducer.open(m.ringTask, m.index, m.ring ?? 0);
  const batch = new BatchSink(producer, MAX_RECORD_BYTES);
  // The kernel runs the task's filter (attached to the socket) unless the driver cannot (xdp): then the pipeline does.
  const pipeline = pipelineForTask(task, plugins, batch, m.format, { userFilter: m.userFilter, tcpMaxBytes: m.tcpMaxBytes ?? undefined });
  for (const p of [...plugins.parsers, ...plugins.processors]) await p.start?.();
  const capturer = createCapturer(m.driver, m.options);
  capturer.init();
  const stream = capturer.capture(m.index);
  const stats = m.stats ? new CaptureStats(StatsWriter.open(m.ringTask, captureSlot(m.index)), pipeline, batch) : null;
  const node = stats !== null ? new NodeProcessStats() : null;

  let stopped = false;
  const seen: Seen = { kernelDrops: 0, ringDrops: 0, malformed: 0 };
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const snapshot = (why: string): LiveCaptureDone => {
    const c = process.cpuUsage(c0);
    const st = stream.stats();
    return {
      type: 'done',
      index: m.index,
      pid: process.pid,
      cpu: m.cpu,
      why,
      failure: feed.failure,
      counters: pipelineCounters(pipeline, plugins.parsers, batch),
      stream: { frames: st.frames, blocks: st.batches, kernelPackets: st.kernelPackets, kernelDrops: st.kernelDrops, freezes: st.freezes, ifDrops: st.ifDrops, outgoingSkipped: st.outgoingSkipped },
      catchUp: catchUp === null ? null : { ...catchUp.stats },
      cpuSec: (c.user + c.system) / 1e6,
      wallSec: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  };
  let beat: NodeJS.Timeout | null = null;
  const stop = async (why: string): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (beat) clearInterval(beat);
    node?.stop();
    // What the kernel had queued when asked to stop is processed and counted, not lost.
    await stream.drain();
    stream.stop();
    pipeline.flush(); // stored TCP bytes delivered, connections ended, the last batch committed
    catchUp?.stop();
    for (const p of [...plugins.parsers, ...plugins.processors]) await p.stop?.();
    const done = snapshot(why);
    if (stats !== null) stats.publish(done, node!.sample());
    watch(done, seen, warn);
    warn.flush();
    if (feed.failure !== null) log.error({ failure: feed.failure }, 'capture stream failed');
    log.info({ why, frames: done.counters.frames, records: done.counters.records, kernel_drops: done.stream.kernelDrops }, 'capture process stopped');
    producer.close();
    flows?.close();
    if (process.connected) process.send!(done, () => process.exit(0));
    else process.exit(0);
  };
  const feed = new PipelineFeed(pipeline, catchUp, stats, (why) => void stop(why));
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'stop') void stop('stopped');
  });
  process.on('disconnect', () => void stop('supervisor gone'));
  stream.start(feed);
  catchUp?.start();
  process.send!({ type: 'ready', index: m.index, cpu: m.cpu });
  log.info({ cpu: m.cpu, driver: m.driver, interface: m.options.iface }, 'capture process started');
  if (m.heartbeatMs > 0) {
    beat = setInterval(() => {
      const s = snapshot('running');
      if (stats !== null) stats.publish(s, node!.sample());
      process.send?.({ type: 'beat' } satisfies Beat);
      watch(s, seen, warn);
    }, m.heartbeatMs);
  }
}

process.once('message', (m: LiveCaptureStart) => {
  run(m).catch((e: unknown) => {
    exitWithError(e, `capture process ${m.index}`);
  });
});
