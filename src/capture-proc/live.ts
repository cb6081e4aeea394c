// A capture process of a live task (`otus capture --task`, forked by
// src/supervisor/live.ts): one stream of the capture driver (one
// af_packet_v3 fanout member or XDP queue), pinned to its CPU, running the
// task's pipeline over the frames of each ring block in place and
// committing wire-record batches to the task's send ring (at the end of
// every block, so a quiet link's records do not wait). It never waits for
// the sender: a full ring drops the batch and counts it (docs/architecture.md, "Counters, and where they are kept").
// Controlled over IPC: start → ready, then a beat every heartbeatMs (the
// supervisor's watchdog); stop, or a lost parent → the frames the kernel
// still holds are processed, done, exit. In a daemon's task, an interface
// that goes down or away closes the stream, not the process: it beats on
// with `waiting` and opens a new stream once the interface is up
// (docs/architecture.md, "Supervision and restarts").
// Its counters live in its slot of the task's stats segment
// (src/shm/stats.ts): the pipeline's by layer copied at the end of every
// ring block, everything at each heartbeat and at the end.
// Logs through the supervisor (src/log/logger.ts); drops and malformed
// packets are checked at each beat, never per packet, and warned about
// rate-limited.

import { createCapturer } from '../capture/index.js';
import { type CaptureStream, type FrameSink, StreamStats } from '../capture/capturer.js';
import { interfaceIndex, interfaceState } from '../capture/iface.js';
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
  /** Capture time of the last frame. */
  private sec = 0;
  private nsec = 0;
  constructor(
    private readonly pl: Pipeline,
    private readonly catchUp: LiveCatchUp | null,
    private readonly stats: CaptureStats | null,
    private readonly onFailure: (message: string) => void,
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
    this.onFailure(message);
  }
}

/** How often a capture process waiting for its interface looks for it (ms). */
const INTERFACE_POLL_MS = 500;

/** The stream while the interface is away: nothing open, nothing counted (the closed stream's counters are kept beside it). */
const CLOSED_STREAM: CaptureStream = {
  index: -1,
  linkType: 0,
  stopped: true,
  failure: null,
  start: () => undefined,
  pause: () => undefined,
  resume: () => undefined,
  walkReady: () => 0,
  drain: () => Promise.resolve(),
  setFilter: () => undefined,
  stats: () => new StreamStats(),
  stop: () => undefined,
};

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** a += b, for the counters of a stream that was closed (its interface went away) and one opened after it. */
function addStreamStats(a: StreamStats, b: StreamStats): void {
  a.frames += b.frames;
  a.batches += b.batches;
  a.kernelPackets += b.kernelPackets;
  a.kernelDrops += b.kernelDrops;
  a.freezes += b.freezes;
  a.ifDrops += b.ifDrops;
  a.outgoingSkipped += b.outgoingSkipped;
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
  const iface = m.options.iface;
  /** The index of the interface the stream was opened on. */
  let ifindex = -1;
  const open = (): CaptureStream => {
    const capturer = createCapturer(m.driver, m.options);
    capturer.init();
    ifindex = interfaceIndex(iface);
    return capturer.capture(m.index);
  };
  // The daemon's tasks wait for an interface that went down or away: the stream is closed (its counters kept), the interface looked for.
  const canWait = m.waitForInterface === true;
  let stream: CaptureStream;
  try {
    stream = open();
  } catch (e) {
    // Restarted while the interface is down or gone: wait for it (below) rather than fail again and again.
    if (!canWait || interfaceState(iface) === 'up') throw e;
    stream = CLOSED_STREAM;
  }
  const stats = m.stats ? new CaptureStats(StatsWriter.open(m.ringTask, captureSlot(m.index)), pipeline, batch) : null;
  const node = stats !== null ? new NodeProcessStats() : null;

  let stopped = false;
  /** Why the stream failed, when that ends the process. */
  let failure: string | null = null;
  const closed = new StreamStats();
  let waiting: string | null = null;
  let waitingSince = 0;
  let waits = 0;
  let waitedMs = 0;
  let poll: NodeJS.Timeout | null = null;
  const seen: Seen = { kernelDrops: 0, ringDrops: 0, malformed: 0 };
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const snapshot = (why: string): LiveCaptureDone => {
    const c = process.cpuUsage(c0);
    const st = stream.stats();
    const sum = (k: keyof StreamStats): number => closed[k] + st[k];
    return {
      type: 'done',
      index: m.index,
      pid: process.pid,
      cpu: m.cpu,
      why,
      failure,
      counters: pipelineCounters(pipeline, plugins.parsers, batch),
      stream: {
        frames: sum('frames'),
        blocks: sum('batches'),
        kernelPackets: sum('kernelPackets'),
        kernelDrops: sum('kernelDrops'),
        freezes: sum('freezes'),
        ifDrops: sum('ifDrops'),
        outgoingSkipped: sum('outgoingSkipped'),
        interfaceWaits: waits,
        interfaceWaitMs: Math.round(waitedMs + (waiting !== null ? Date.now() - waitingSince : 0)),
      },
      catchUp: catchUp === null ? null : { ...catchUp.stats },
      cpuSec: (c.user + c.system) / 1e6,
      wallSec: Number(process.hrtime.bigint() - t0) / 1e9,
    };
  };
  const setWaiting = (why: string | null): void => {
    waiting = why;
    process.send?.({ type: 'beat', waiting: why } satisfies Beat);
  };
  const startWaiting = (why: string, detail: Record<string, unknown>): void => {
    waits++;
    waitingSince = Date.now();
    setWaiting(why);
    log.warn({ interface: iface, ...detail }, `${why}: capture paused until it is back`);
  };
  let beat: NodeJS.Timeout | null = null;
  const stop = async (why: string): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (beat) clearInterval(beat);
    if (poll) clearTimeout(poll);
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
    if (failure !== null) log.error({ failure }, 'capture stream failed');
    log.info({ why, frames: done.counters.frames, records: done.counters.records, kernel_drops: done.stream.kernelDrops }, 'capture process stopped');
    producer.close();
    flows?.close();
    if (process.connected) process.send!(done, () => process.exit(0));
    else process.exit(0);
  };
  /** Looks for the interface every INTERFACE_POLL_MS; once it is up, opens a new stream on it (the same fanout group, filter and ring slot). */
  const lookForInterface = (): void => {
    poll = setTimeout(() => {
      poll = null;
      if (stopped) return;
      const state = interfaceState(iface);
      if (state === 'up') {
        try {
          stream = open();
        } catch (e) {
          // Back, but not as it was (another link type, an address that xdp refuses): say why, and keep looking.
          const why = `interface ${iface} is back but cannot be captured: ${messageOf(e)}`;
          if (why !== waiting) {
            log.warn({ interface: iface }, why);
            setWaiting(why);
          }
          lookForInterface();
          return;
        }
        const downMs = Date.now() - waitingSince;
        waitedMs += downMs;
        setWaiting(null);
        stream.start(feed);
        log.info({ interface: iface, down_ms: downMs }, `interface ${iface} is up: capturing again`);
        return;
      }
      const why = `interface ${iface} is ${state}`;
      if (why !== waiting) setWaiting(why);
      lookForInterface();
    }, INTERFACE_POLL_MS);
  };
  /** The stream failed: a socket error, or its interface went down or was deleted (a new index under the name: made again since). */
  const streamFailed = async (message: string): Promise<void> => {
    if (stopped || waiting !== null) return;
    const state = canWait ? interfaceState(iface) : 'up';
    const deleted = canWait && interfaceIndex(iface) !== ifindex;
    // In the foreground the run ends; a socket that failed on the same interface, up, is no link event either: the process ends, and the supervisor's restart policy decides.
    if (!canWait || (state === 'up' && !deleted)) {
      failure = message;
      return stop(`error: ${message}`);
    }
    startWaiting(deleted ? `interface ${iface} was deleted` : `interface ${iface} is ${state}`, { error: message });
    // Frames the ring took before the interface went are processed and counted; then the socket is closed.
    try {
      await stream.drain();
    } catch {
      // a stream whose device is gone may not drain: what it had delivered is counted
    }
    if (stopped) return; // stop() took over this stream
    stream.stop();
    addStreamStats(closed, stream.stats());
    stream = CLOSED_STREAM;
    lookForInterface();
  };
  const failed = (message: string): void => {
    streamFailed(message).catch((e: unknown) => stop(`error: ${messageOf(e)}`));
  };
  const feed = new PipelineFeed(pipeline, catchUp, stats, (message) => failed(message));
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'stop') void stop('stopped');
  });
  process.on('disconnect', () => void stop('supervisor gone'));
  stream.start(feed);
  catchUp?.start();
  process.send!({ type: 'ready', index: m.index, cpu: m.cpu });
  log.info({ cpu: m.cpu, driver: m.driver, interface: m.options.iface }, 'capture process started');
  if (stream === CLOSED_STREAM) {
    startWaiting(`interface ${iface} is ${interfaceState(iface)}`, {});
    lookForInterface();
  }
  if (m.heartbeatMs > 0) {
    beat = setInterval(() => {
      const s = snapshot('running');
      if (stats !== null) stats.publish(s, node!.sample());
      process.send?.({ type: 'beat' } satisfies Beat);
      watch(s, seen, warn);
      // An AF_XDP socket says nothing when its device is deleted: it just gets no more frames. Every driver is checked here.
      if (waiting === null && ifindex > 0 && interfaceIndex(iface) !== ifindex) failed(`interface ${iface} was deleted`);
    }, m.heartbeatMs);
  }
}

process.once('message', (m: LiveCaptureStart) => {
  run(m).catch((e: unknown) => {
    exitWithError(e, `capture process ${m.index}`);
  });
});
