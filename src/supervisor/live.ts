// A task on live traffic, in the foreground (`otus capture --task`): the
// shape the daemon runs (design §5.1). The supervisor checks the task, its
// plugins, the interface and the filter before anything is forked; creates
// the task's flow registry; forks the sender (which creates the send ring)
// and one capture process per stream (af_packet_v3 fanout member or XDP
// queue), each pinned to a CPU and running the task's pipeline over its
// ring; then waits for the duration, a signal, or a capture process that
// stops on its own (interface gone). It stops the capture processes (each
// commits its last batch), lets the sender drain the ring, and sums
// everyone's counters into one summary.

import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { allowedCpus, type CaptureOptions, type CpuChoice, cpuFor, createCapturer, defaultCaptureOptions } from '../capture/index.js';
import { CaptureFilter } from '../pipeline/capture-filter.js';
import { CATCH_UP_MARGIN_MS } from '../capture-proc/catch-up.js';
import { CaptureClock } from '../shm/capture-clock.js';
import { FlowRegistry } from '../shm/registry.js';
import { OtusError } from '../util/errors.js';
import type { LiveCaptureDone, LiveCaptureReady, LiveCaptureStart } from './messages.js';
import { awaitDone, awaitReady, checkTask, here, killAll, startSender, summarize, type TaskSummary } from './task-run.js';

export interface LiveTaskOptions {
  taskFile: string;
  /** null: task.capture.interface. */
  iface: string | null;
  /** null: task.capture.driver, else af_packet_v3. */
  driver: string | null;
  /** null: task.capture.workers, or 1 when that is absent or 0. */
  workers: number | null;
  /** File path, `-` for stdout, or null for the task's reporter (stdout NDJSON when it has none). */
  out: string | null;
  pluginDirs: string[];
  node?: Record<string, string>;
  /** Stop after this many seconds (0: at the signal). */
  duration: number;
  signal?: AbortSignal;
  /** 'auto': stream index over the allowed CPUs; 'off'; or one CPU per capture process. */
  cpus: CpuChoice;
  /** Ring geometry, snaplen, fanout mode and the like (the interface, streams and filter come from the task). */
  capture?: Partial<CaptureOptions>;
  /** Called once every capture process is reading. */
  onCapturing?: (what: string) => void;
  ringBytes?: number;
  flowSlots?: number;
}

/** A finished run: its summary, and the first failure (a capture process lost, a stream error), if any. */
export interface LiveTaskResult {
  summary: TaskSummary;
  failure: OtusError | null;
}

/** Capture processes get this long to report after being asked to stop; then SIGKILL. */
const STOP_GRACE_MS = 5000;

export async function runLiveTask(o: LiveTaskOptions): Promise<LiveTaskResult> {
  const t0 = process.hrtime.bigint();
  const node = o.node ?? { hostname: os.hostname() };
  const t = await checkTask(o.taskFile, o.pluginDirs, node, o.out);
  const task = t.task;
  const iface = o.iface ?? task.interface;
  if (!iface) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${task.file}: no interface: give -i IFACE or task.capture.interface`);
  const driver = o.driver ?? task.driver ?? 'af_packet_v3';
  if (driver === 'file') throw new OtusError('OTUS_ERR_BAD_ARGUMENT', 'a task over capture files is `otus replay --task TASK.yml FILE...`');
  const workers = o.workers ?? (task.workers && task.workers > 0 ? task.workers : 1);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--workers: expected 1 to 64, got ${workers}`);
  if (driver === 'pcap' && workers > 1) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--workers ${workers}: the pcap driver has one stream; use af_packet_v3 (fanout) or xdp (queues)`);
  if (!(o.duration >= 0)) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--duration: expected a non-negative number of seconds, got ${o.duration}`);

  // The task's filter runs in the kernel (attached to each socket); xdp cannot, so there the pipeline runs it.
  const filterText = new CaptureFilter(task.filter, `${task.file}: task.filter`).text;
  const userFilter = driver === 'xdp' && filterText !== '';
  const capture: CaptureOptions = {
    ...defaultCaptureOptions(iface),
    ...o.capture,
    iface,
    streams: workers,
    filter: userFilter || filterText === '' ? null : filterText,
    fanout: driver === 'af_packet_v3',
  };
  createCapturer(driver, capture).init(); // a bad interface, driver or option: a coded error now, not in a child

  const ringTask = `${task.id.slice(0, 40)}.live${process.pid}`;
  const flows = task.parsers.length > 0 ? FlowRegistry.create(ringTask, { capacity: o.flowSlots ?? 65536 }) : null;
  // A registry miss waits for the other capture processes' older frames (src/capture-proc/catch-up.ts): up to the ring's retire time.
  const clock = flows !== null && workers > 1 ? CaptureClock.create(ringTask, workers) : null;
  const clockSetup = clock === null ? null : { baseMs: Date.now(), windowMs: (driver === 'af_packet_v3' ? capture.retireMs : 0) + CATCH_UP_MARGIN_MS };
  const setup = { taskFile: t.taskFile, pluginDirs: t.pluginDirs, node, ringTask, flows: flows !== null };
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'));
  const children: ChildProcess[] = [];
  const allowed = allowedCpus();
  try {
    const { sender, done: senderDone } = await startSender(setup, t, o.ringBytes ?? 64 << 20, execArgv, children, true);
    const captures: ChildProcess[] = [];
    const dones: Promise<LiveCaptureDone>[] = [];
    const readies: Promise<LiveCaptureReady>[] = [];
    for (let i = 0; i < workers; i++) {
      const c = fork(here('../capture-proc/live.js'), [], { serialization: 'advanced', execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(c);
      captures.push(c);
      dones.push(awaitDone<LiveCaptureDone>(c, `capture process ${i}`));
      readies.push(awaitReady<LiveCaptureReady>(c, `capture process ${i}`));
      dones[i].catch(() => undefined);
      c.send({ type: 'start', ...setup, index: i, cpu: cpuFor(o.cpus, i, allowed), driver, options: capture, format: t.format, userFilter, clock: clockSetup } satisfies LiveCaptureStart);
    }
    await Promise.all(readies);
    o.onCapturing?.(`${iface} (${driver}, ${workers} stream(s)${driver === 'af_packet_v3' ? `, fanout ${capture.fanoutMode} group ${capture.fanoutGroup}` : ''})`);

    // Until the duration is over, the signal comes, or a capture process stops on its own.
    // The timer and the listener go with it: a run that ends early must not keep the event loop alive.
    let timer: NodeJS.Timeout | undefined;
    let onAbort = (): void => undefined;
    const why = await new Promise<string>((resolve) => {
      if (o.duration > 0) timer = setTimeout(() => resolve(`duration ${o.duration}s`), o.duration * 1000);
      onAbort = (): void => resolve('signal');
      o.signal?.addEventListener('abort', onAbort, { once: true });
      if (o.signal?.aborted) resolve('signal');
      dones.forEach((d, i) =>
        d.then(
          (m) => resolve(`capture process ${i}: ${m.why}`),
          () => resolve(`capture process ${i} lost`),
        ),
      );
    });
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
    for (const c of captures) if (c.connected) c.send({ type: 'stop' }, () => undefined);
    const killer = setTimeout(() => killAll(captures), STOP_GRACE_MS);
    const settled = await Promise.allSettled(dones);
    clearTimeout(killer);
    sender.send({ type: 'drain' });
    const s = await senderDone;

    const done = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    let failure: OtusError | null = null;
    const warnings: string[] = [];
    settled.forEach((r, i) => {
      if (r.status === 'rejected') {
        const e = r.reason instanceof OtusError ? r.reason : new OtusError('OTUS_ERR_WORKER', `capture process ${i}: ${String(r.reason)}`);
        warnings.push(e.message);
        failure ??= e;
      } else if (r.value.failure !== null) {
        warnings.push(`capture process ${i}: ${r.value.failure}`);
        failure ??= new OtusError('OTUS_ERR_CAPTURE_IO', `${iface}: stream ${i}: ${r.value.failure}`);
      }
    });
    const registry = flows ? { ...flows.stats() } : null;
    const summary = summarize(
      task,
      workers,
      done,
      (d) => ({
        cpu: d.cpu,
        blocks: d.stream.blocks,
        kernel_packets: d.stream.kernelPackets,
        kernel_drops: d.stream.kernelDrops,
        freezes: d.stream.freezes,
        ...(d.catchUp && {
          catchup_waits: d.catchUp.waits,
          catchup_waited_ms: Math.round(d.catchUp.waited_ms),
          catchup_deadlines: d.catchUp.deadlines,
          catchup_quiet: d.catchUp.quiet,
        }),
      }),
      s,
      Number(process.hrtime.bigint() - t0) / 1e9,
      warnings,
      registry,
    );
    return { summary: { ...summary, capture: { interface: iface, driver, stopped: why } }, failure };
  } finally {
    killAll(children);
    flows?.close();
    clock?.close();
  }
}
