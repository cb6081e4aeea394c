// `otus replay`: a task over capture files through the real multi-process
// path (design §5.1). The supervisor validates the task and its plugins
// (failing before anything is forked), hashes every frame with the
// symmetric flow hash to the capture process the kernel's fanout would have
// given it, forks the sender (which creates the task's send ring) and N
// capture processes (each running the task's pipeline into the ring), waits
// for them, then lets the sender drain and collects everyone's counters
// into one summary.

import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { resolve } from 'node:path';
import { openCapture } from '../capture-file/open.js';
import { Decoder } from '../decode/decoder.js';
import { defaultDecoderOptions } from '../decode/options.js';
import { CaptureFilter } from '../pipeline/capture-filter.js';
import { symmetricFlowHash } from '../pipeline/flow-hash.js';
import { FlowRegistry } from '../shm/registry.js';
import type { RingSegment } from '../shm/ring.js';
import { CaptureClock } from '../shm/capture-clock.js';
import { OtusError } from '../util/errors.js';
import type { CaptureDone, CaptureStart, FrameShare } from './messages.js';
import { awaitDone, checkTask, here, killAll, startSender, summarize, type TaskSummary } from './task-run.js';

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
}

/**
 * Each capture process's share of each file ([file][process]), by the
 * symmetric flow hash as kernel fanout would share the traffic out.
 */
export function assignFrames(files: string[], workers: number): FrameShare[][] {
  const decoder = new Decoder(defaultDecoderOptions());
  return files.map((file) => {
    const reader = openCapture(file);
    if (workers === 1) {
      while (reader.next());
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
    return index.map((ix, w) => ({ frames: reader.framesRead, index: ix.slice(0, n[w]), offset: seekable ? offset[w].slice(0, n[w]) : null }));
  });
}

function grown<T extends Uint32Array | Float64Array>(a: T, b: T): T {
  b.set(a);
  return b;
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
  const files = o.files.map((f) => resolve(f));
  const filter = new CaptureFilter(task.filter, `${task.file}: task.filter`);
  // OTUS_ERR_CAPTURE_IO / _NOT_A_CAPTURE now, not in a child; and a filter libpcap cannot compile for a file's link type.
  for (const f of files) {
    const r = openCapture(f);
    if (!filter.empty && r.next()) filter.program(r.frame.linkType);
  }

  const shares = assignFrames(files, workers);
  const ringTask = `${task.id.slice(0, 40)}.replay${process.pid}`;
  // The task's flow registry (ADR-008): created here, opened by every capture process.
  const flows = task.parsers.length > 0 ? FlowRegistry.create(ringTask, { capacity: o.flowSlots ?? 65536 }) : null;
  // Capture order across processes matters once a parser correlates through the registry.
  const clock = flows !== null && workers > 1 && o.ordered !== false ? CaptureClock.create(ringTask, workers) : null;
  const setup = { task: t.task, pluginDirs: t.pluginDirs, node, ringTask, flows: flows !== null, ordered: clock !== null };
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'));
  const children: ChildProcess[] = [];
  let ring: RingSegment | null = null;
  try {
    const started = await startSender(setup, t, o.ringBytes ?? 64 << 20, execArgv, children);
    const { sender, done: senderDone } = started;
    ring = started.ring;
    const captures: Promise<CaptureDone>[] = [];
    for (let i = 0; i < workers; i++) {
      const c = fork(here('../capture-proc/replay.js'), [], { serialization: 'advanced', execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(c);
      captures.push(awaitDone<CaptureDone>(c, `capture process ${i}`));
      c.send({ type: 'start', ...setup, index: i, files, shares: shares.map((s) => s[i]), format: t.format } satisfies CaptureStart);
    }
    const done = await Promise.all(captures);
    sender.send({ type: 'drain' });
    const s = await senderDone;
    const registry = flows ? { ...flows.stats() } : null;
    const summary = summarize(task, workers, done, (d) => ({ ring_waits: d.ringWaits }), s, Number(process.hrtime.bigint() - t0) / 1e9, [], registry);
    return { ...summary, files };
  } finally {
    killAll(children);
    flows?.close();
    clock?.close();
    ring?.close();
  }
}
