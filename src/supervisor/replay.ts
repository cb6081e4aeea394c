// `otus replay`: a task over capture files through the real multi-process
// path (docs/architecture.md, "Processes"). The supervisor validates the task and its plugins
// (failing before anything is forked), hashes every frame with the
// symmetric flow hash to the capture process the kernel's fanout would have
// given it, removes the segments of dead runs, creates this run's send rings
// (one per sender: the task's `senders`), flow registry and capture clock (it
// owns them, under names no one can guess), forks the senders (each attaches
// to its ring) and N capture processes (process i runs the task's pipeline
// into ring i mod senders), waits for them,
// then lets the senders drain and collects everyone's counters into one
// summary. It never returns with a child still running: on a signal it stops
// them (capture processes by SIGTERM, the sender drains and flushes; SIGKILL
// for whoever is left after STOP_GRACE_MS) and throws OTUS_ERR_INTERRUPTED; a
// sender that dies mid-run stops the run with OTUS_ERR_WORKER saying what was
// lost.

import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { resolve } from 'node:path';
import { openCapture } from '../capture-file/open.js';
import { Decoder } from '../decode/decoder.js';
import { defaultDecoderOptions } from '../decode/options.js';
import { CaptureFilter } from '../pipeline/capture-filter.js';
import { symmetricFlowHash } from '../pipeline/flow-hash.js';
import { checkFileOutput } from '../sender-proc/reporters.js';
import { FlowRegistry } from '../shm/registry.js';
import { CaptureClock } from '../shm/capture-clock.js';
import { createRing, type RingSegment } from '../shm/ring.js';
import { removeAllStaleSegments, runScope } from '../shm/segment.js';
import { OtusError } from '../util/errors.js';
import type { CaptureDone, CaptureStart, FrameShare, SenderDone } from './messages.js';
import { awaitDone, captureExecArgv, checkTask, here, type IncompleteFile, killAll, senderExecArgv, senderFigures, startSender, summarize, sumSenders, type TaskSummary, tooManySenders, undelivered } from './task-run.js';
import { DEFAULT_FLOW_SLOTS, DEFAULT_RING_BYTES } from '../config/global-schema.js';

export { formatSummary, type TaskSummary } from './task-run.js';

export interface ReplayOptions {
  taskFile: string;
  files: string[];
  /** null: task.capture.workers, or 1 when that is absent or 0. */
  workers: number | null;
  /** File path, `-` for stdout, or null for the task's reporter (stdout NDJSON when it has none). */
  out: string | null;
  pluginDirs: string[];
  node?: Record<string, string>;
  /** Ring data area (power of two). */
  ringBytes?: number;
  /** Flow registry slots (created when the task has parsers). */
  flowSlots?: number;
  /** Keep capture order across capture processes (default true; see src/shm/capture-clock.ts). */
  ordered?: boolean;
  /** Aborting (the CLI's SIGTERM and SIGINT, reason: the signal's name) stops the run: OTUS_ERR_INTERRUPTED. */
  signal?: AbortSignal;
}

/** The summary's warning for a file that could not be read to its end. */
export function incompleteWarning(f: IncompleteFile): string {
  return `${f.file}: stopped: ${f.stopped}; ${f.frames} frames before it were replayed, the last ${f.file_size - f.bytes_read} of ${f.file_size} bytes were not`;
}

/**
 * Each capture process's share of each file ([file][process]), by the
 * symmetric flow hash as kernel fanout would share the traffic out. A file
 * whose reading stops before its end is added to `incomplete`.
 */
export function assignFrames(files: string[], workers: number, incomplete: IncompleteFile[] = []): FrameShare[][] {
  const decoder = new Decoder(defaultDecoderOptions());
  const ended = (file: string, r: ReturnType<typeof openCapture>): void => {
    if (r.endReason !== null) incomplete.push({ file, stopped: r.endReason, frames: r.framesRead, bytes_read: r.bytesRead, file_size: r.fileSize });
  };
  return files.map((file) => {
    const reader = openCapture(file);
    if (workers === 1) {
      while (reader.next());
      ended(file, reader);
      return [{ frames: reader.framesRead, index: null, offset: null }];
    }
    // pcap records need nothing from earlier ones, so a process can jump to its own (pcapng blocks can: walk those).
    const seekable = reader.format === 'pcap';
    // Typed arrays that double as they fill: 12 bytes per frame (a number[] took 8 or more, twice while it grew).
    const index = Array.from({ length: workers }, () => new Uint32Array(1024));
    const offset = Array.from({ length: workers }, () => new Float64Array(seekable ? 1024 : 0));
    const n = new Array<number>(workers).fill(0);
    const f = reader.frame;
    let at = reader.bytesRead;
    for (let i = 0; reader.next(); i++) {
      const w = symmetricFlowHash(decoder.decode(f)) % workers;
      const k = n[w]++;
      if (k === index[w].length) {
        index[w] = grown(index[w], new Uint32Array(2 * k));
        if (seekable) offset[w] = grown(offset[w], new Float64Array(2 * k));
      }
      index[w][k] = i;
      if (seekable) offset[w][k] = at;
      at = reader.bytesRead;
    }
    ended(file, reader);
    return index.map((ix, w) => ({ frames: reader.framesRead, index: ix.slice(0, n[w]), offset: seekable ? offset[w].slice(0, n[w]) : null }));
  });
}

function grown<T extends Uint32Array | Float64Array>(a: T, b: T): T {
  b.set(a);
  return b;
}

/** Children get this long to exit after SIGTERM (the sender: to drain the ring and flush) before SIGKILL. */
export const STOP_GRACE_MS = 5000;

/** Why a run ended early: a signal (SIGTERM, SIGINT), or null. */
function abortReason(signal: AbortSignal | undefined): string | null {
  if (!signal?.aborted) return null;
  return typeof signal.reason === 'string' ? signal.reason : 'a signal';
}

function interrupted(reason: string, t0: bigint): OtusError {
  const s = (Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1);
  return new OtusError('OTUS_ERR_INTERRUPTED', `replay stopped by ${reason} after ${s} s: children stopped, shared memory removed; the output holds the records written until then`);
}

const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;
const exited = (c: ChildProcess): Promise<void> => (alive(c) ? new Promise((r) => c.once('exit', () => r())) : Promise.resolve());

/** SIGTERM to every child still running, SIGKILL to those left after `graceMs`; resolves when all have exited. */
export async function stopChildren(children: ChildProcess[], graceMs: number, term = true): Promise<void> {
  if (term) for (const c of children) if (alive(c)) c.kill('SIGTERM');
  const all = Promise.all(children.map(exited));
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
  await Promise.race([all, late]);
  clearTimeout(timer);
  killAll(children);
  await all;
}

/** What a sender that died mid-run took with it, from its ring's counters; `index`: which of several. */
function senderLoss(sender: ChildProcess, how: string, ring: RingSegment, index: number | null): OtusError {
  const st = ring.stats();
  const committed = st.producers.reduce((a, p) => a + p.records, 0);
  const unread = Math.max(0, committed - st.records - st.dropHead - st.abandoned);
  return new OtusError(
    'OTUS_ERR_WORKER',
    `sender${index !== null ? ` ${index}` : ''} (pid ${sender.pid}) ${how} mid-run; lost: ${unread} batches (${st.used} bytes) committed to the send ring and never read, ` +
      `whatever it had read and not yet written, and the frames the capture processes had not reached; the run was stopped (the output ends where the sender stopped)`,
  );
}

export async function runReplay(o: ReplayOptions): Promise<TaskSummary> {
  const t0 = process.hrtime.bigint();
  const node = o.node ?? { hostname: os.hostname() };
  const t = await checkTask(o.taskFile, o.pluginDirs, node, o.out);
  const task = t.task;
  const workers = o.workers ?? (task.workers && task.workers > 0 ? task.workers : 1);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--workers: expected 1 to 64, got ${workers}`);
  }
  if (o.files.length === 0) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', 'name at least one capture file');
  const senders = task.senders;
  if (senders > workers) throw tooManySenders(task, workers);
  if (t.reporter.name === 'file' || t.reporter.name === 'pcap') checkFileOutput(`reporter ${t.reporter.name}`, t.reporter.config); // OTUS_ERR_CONFIG now, not in the sender
  const files = o.files.map((f) => resolve(f));
  const filter = new CaptureFilter(task.filter, `${task.file}: task.filter`);
  // OTUS_ERR_CAPTURE_IO / _NOT_A_CAPTURE now, not in a child; and a filter libpcap cannot compile for a file's link type.
  for (const f of files) {
    const r = openCapture(f);
    if (!filter.empty && r.next()) filter.program(r.frame.linkType);
  }

  const incomplete: IncompleteFile[] = [];
  const shares = assignFrames(files, workers, incomplete);
  let why = abortReason(o.signal);
  if (why !== null) throw interrupted(why, t0);
  // Segments of runs that died without cleaning up (killed, crashed) go first; this run's names are its own and unguessable.
  removeAllStaleSegments();
  const ringTask = runScope(task.id);
  // One send ring per sender; capture process i writes ring i mod senders (a flow is one capture process's, so its order is kept).
  const rings: RingSegment[] = [];
  for (let j = 0; j < senders; j++) rings.push(createRing(ringTask, { dataBytes: o.ringBytes ?? DEFAULT_RING_BYTES }, j));
  let flows: FlowRegistry | null = null;
  let clock: CaptureClock | null = null;
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'));
  const children: ChildProcess[] = [];
  const aborted = new Promise<'signal'>((r) => {
    if (o.signal?.aborted) r('signal');
    o.signal?.addEventListener('abort', () => r('signal'), { once: true });
  });
  try {
    // The task's flow registry: created here, opened by every capture process.
    flows = task.parsers.length > 0 ? FlowRegistry.create(ringTask, { capacity: o.flowSlots ?? DEFAULT_FLOW_SLOTS }) : null;
    // Capture order across processes matters once a parser correlates through the registry.
    clock = flows !== null && workers > 1 && o.ordered !== false ? CaptureClock.create(ringTask, workers) : null;
    const setup = { task: t.task, pluginDirs: t.pluginDirs, node, ringTask, flows: flows !== null, ordered: clock !== null };
    // One after the other: the first opens (truncates) the output the others append to.
    const senderProcs: ChildProcess[] = [];
    const senderDones: Promise<SenderDone>[] = [];
    for (let j = 0; j < senders; j++) {
      const started = startSender({ ...setup, ring: j }, t, rings[j]!, senderExecArgv(execArgv), children, false, j > 0);
      started.catch(() => undefined);
      if ((await Promise.race([started, aborted])) === 'signal') {
        await stopChildren(children, STOP_GRACE_MS);
        throw interrupted(abortReason(o.signal)!, t0);
      }
      const { sender, done } = await started;
      senderProcs.push(sender);
      senderDones.push(done);
    }
    const senderExit: (string | null)[] = senderProcs.map(() => null);
    senderProcs.forEach((s, j) => s.once('exit', (code, sig) => (senderExit[j] = sig !== null ? `was killed by ${sig}` : `exited with code ${code}`)));
    const senderLost = new Promise<'sender'>((r) => senderProcs.forEach((s) => s.once('exit', () => r('sender'))));
    // `--out - | head`: the reader of stdout left; the rest of the run would be written to no one.
    const outputGone = new Promise<'output-gone'>((r) => senderProcs.forEach((s) => s.on('message', (m: { type: string }) => m.type === 'output-gone' && r('output-gone'))));
    const tell = (type: 'drain' | 'abandon'): void => {
      for (const s of senderProcs) if (s.connected) s.send({ type }, () => undefined);
    };
    /** The first sender that died by a signal (or, with `any`, exited at all) mid-run: what it took with it. */
    const lost = (any: boolean): OtusError | null => {
      const j = senderExit.findIndex((e, k) => e !== null && (any || senderProcs[k]!.signalCode !== null));
      return j < 0 ? null : senderLoss(senderProcs[j]!, senderExit[j]!, rings[j]!, senders > 1 ? j : null);
    };
    const captureProcs: ChildProcess[] = [];
    const captures: Promise<CaptureDone>[] = [];
    for (let i = 0; i < workers; i++) {
      const c = fork(here('../capture-proc/replay.js'), [], { serialization: 'advanced', execArgv: captureExecArgv(execArgv), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(c);
      captureProcs.push(c);
      captures.push(awaitDone<CaptureDone>(c, `capture process ${i}`));
      c.send({ type: 'start', ...setup, ring: i % senders, index: i, workers, files, shares: shares.map((s) => s[i]), format: t.format } satisfies CaptureStart);
    }
    const all = Promise.all(captures);
    all.catch(() => undefined);
    const outcome = await Promise.race([all.then(() => 'done' as const, () => 'capture' as const), senderLost, aborted, outputGone]);
    const endOutputGone = async (): Promise<never> => {
      tell('abandon');
      await stopChildren(captureProcs, STOP_GRACE_MS);
      await stopChildren(senderProcs, STOP_GRACE_MS, false);
      throw new OtusError('OTUS_ERR_OUTPUT_CLOSED', 'the reader of standard output went away: replay stopped early');
    };
    if (outcome === 'output-gone') await endOutputGone();
    if (outcome === 'signal') {
      // The senders drain what the rings hold and flush, within the grace time; capture processes die on SIGTERM.
      tell('drain');
      await stopChildren(captureProcs, STOP_GRACE_MS);
      await stopChildren(senderProcs, STOP_GRACE_MS, false);
      throw interrupted(abortReason(o.signal)!, t0);
    }
    if (outcome !== 'done') {
      await stopChildren(captureProcs, STOP_GRACE_MS);
      // A capture process that failed because a sender had gone: the sender is the news.
      const loss = lost(true);
      if (loss !== null) throw loss;
      await all; // throws the capture process's error
    }
    const done = await all;
    tell('drain');
    const every = Promise.all(senderDones);
    const last = await Promise.race([every.then((d) => d, () => 'sender' as const), aborted, outputGone]);
    if (last === 'output-gone') await endOutputGone();
    if (last === 'signal') {
      await stopChildren(senderProcs, STOP_GRACE_MS, false);
      throw interrupted(abortReason(o.signal)!, t0);
    }
    if (last === 'sender') {
      // The first to fail: let the others finish or fail too, then name it.
      await Promise.allSettled(senderDones);
      await Promise.all(senderProcs.map(exited));
      const loss = lost(false);
      if (loss !== null) throw loss;
      await every; // its own error
    }
    const ds = last as SenderDone[];
    const s = sumSenders(ds);
    const registry = flows ? { ...flows.stats() } : null;
    const warnings = incomplete.map(incompleteWarning);
    const summary = summarize(task, workers, done, (d) => ({ ring_waits: d.ringWaits }), s, Number(process.hrtime.bigint() - t0) / 1e9, warnings, registry, ds.map((d, j) => senderFigures(j, d)));
    summary.warnings.push(...t.hints(summary.parsers));
    const notDelivered = undelivered(summary).total;
    const why = ds.find((d) => d.lastError)?.lastError;
    if (notDelivered > 0 && why) summary.warnings.push(`reporter ${t.reporter.name}: ${notDelivered} records not delivered; its last error: ${why}`);
    return { ...summary, files, incomplete_files: incomplete };
  } finally {
    killAll(children);
    await Promise.all(children.map(exited));
    for (const r of rings) r.close();
    flows?.close();
    clock?.close();
  }
}
