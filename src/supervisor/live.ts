// A task on live traffic. planLiveTask checks the task, its plugins, the
// interface, the driver, the filter and the worker count before anything is
// forked; src/supervisor/task.ts runs it (shared memory, the sender, one
// pinned capture process per stream). The daemon runs tasks planned here;
// `otus capture --task` runs one in the foreground (runLiveTask): until the
// duration, a signal, or a child that dies (a foreground run restarts
// nothing), then stops it in order and returns everyone's counters summed.
// A foreground run's log (its own and its children's, component `command`
// and theirs) goes to stderr, warnings and errors only: the summary is what
// it prints.

import os from 'node:os';
import { allowedCpus, type CaptureOptions, type CpuChoice, checkCpus, cpuFor, createCapturer, defaultCaptureOptions, interfaceInfo, interfaceState } from '../capture/index.js';
import { LogHub } from '../log/logger.js';
import { CaptureFilter } from '../pipeline/capture-filter.js';
import { removeAllStaleSegments } from '../shm/segment.js';
import { OtusError } from '../util/errors.js';
import { SupervisedTask, type LiveTaskPlan, type TaskSettings } from './task.js';
import { checkTask, type CheckedTask, type TaskSummary, tooManySenders } from './task-run.js';
import { DEFAULT_FLOW_SLOTS, DEFAULT_RING_BYTES } from '../config/global-schema.js';

export interface LiveTaskOptions {
  taskFile: string;
  /** null: task.capture.interface. */
  iface: string | null;
  /** null: task.capture.driver, else af_packet_v3. */
  driver: string | null;
  /** null: task.capture.workers (absent: 1; 0: one per allowed CPU). */
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

/** A foreground run: children beat once a second, a silent one is killed after 5 s, and one that dies ends the run. */
const FOREGROUND: TaskSettings = { heartbeatMs: 1000, watchdogMs: 5000, stopTimeoutMs: 5000, restart: null };

export interface PlanInput {
  /** null: task.capture.interface. */
  iface: string | null;
  /** null: task.capture.driver, else af_packet_v3. */
  driver: string | null;
  /** null: task.capture.workers; 0 there means one per allowed CPU. */
  workers: number | null;
  /** At most this many capture processes (the daemon's budget left; the allowed CPUs by default). */
  maxWorkers?: number;
  /** The CPUs capture processes may be pinned to (default: this process's affinity mask). */
  allowed?: number[];
  cpus: CpuChoice;
  capture?: Partial<CaptureOptions>;
  ringBytes?: number;
  flowSlots?: number;
  tcpMaxBytes?: number;
  node: Record<string, string>;
  settings: TaskSettings;
  /**
   * The task's interface does not exist: `error` (default: a typo is caught
   * when the task is created), or `wait` (the daemon's boot tasks: a device
   * made later at boot; the capture processes wait for it).
   */
  absentInterface?: 'error' | 'wait';
}

/** Decides how a checked task runs, failing with a coded error on anything wrong, before anything is forked. */
export function planLiveTask(t: CheckedTask, o: PlanInput): LiveTaskPlan {
  const task = t.task;
  const iface = o.iface ?? task.interface;
  if (!iface) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${task.file}: no interface: give -i IFACE or task.capture.interface`);
  const absent = o.absentInterface === 'wait' && interfaceState(iface) === 'gone';
  if (!o.iface && !absent) {
    // The task's own interface: a name that is not there is an error in the task, so say where it names it.
    try {
      interfaceInfo(iface);
    } catch (e) {
      if (e instanceof OtusError) throw new OtusError(e.code, `${task.interfaceWhere}: ${e.message}`, { cause: e });
      throw e;
    }
  }
  const driver = o.driver ?? task.driver ?? 'af_packet_v3';
  if (driver === 'file') throw new OtusError('OTUS_ERR_BAD_ARGUMENT', 'a task over capture files is `otus replay --task TASK.yml FILE...`');
  const allowed = o.allowed && o.allowed.length > 0 ? o.allowed : allowedCpus();
  const limit = Math.min(o.maxWorkers ?? allowed.length, 64);
  const asked = o.workers ?? task.workers ?? 1;
  const workers = asked === 0 ? Math.min(allowed.length, limit) : asked;
  if (!Number.isInteger(workers) || workers < 1) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `workers: expected a positive integer (0: one per allowed CPU), got ${asked}`);
  if (workers > limit) {
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${task.id}: ${workers} capture processes asked for, at most ${limit} allowed (${allowed.length} CPUs allowed${o.maxWorkers !== undefined ? `, worker budget ${o.maxWorkers}` : ''})`);
  }
  if (task.senders > workers) throw tooManySenders(task, workers);
  if (driver === 'pcap' && workers > 1) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--workers ${workers}: the pcap driver has one stream; use af_packet_v3 (fanout) or xdp (queues)`);
  // The task's filter runs in the kernel (attached to each socket); xdp cannot, so there the pipeline runs it.
  const filterText = new CaptureFilter(task.filter, task.filterWhere).text;
  const userFilter = driver === 'xdp' && filterText !== '';
  const capture: CaptureOptions = {
    ...defaultCaptureOptions(iface),
    // Each task its own fanout group: two tasks on one interface must not share their traffic.
    fanoutGroup: (Math.random() * 0xffff) | 0,
    ...o.capture,
    // The operator's word on the command line, or the task's.
    xdpSteal: o.capture?.xdpSteal === true || task.xdpSteal,
    iface,
    streams: workers,
    filter: userFilter || filterText === '' ? null : filterText,
    fanout: driver === 'af_packet_v3',
  };
  // task.capture.buffer_bytes, unless the command line gave the size itself.
  if (task.bufferBytes !== null) {
    if (o.capture?.blockCount === undefined) capture.blockCount = Math.max(2, Math.floor(task.bufferBytes / capture.blockSize));
    if (o.capture?.bufferBytes === undefined) capture.bufferBytes = task.bufferBytes;
  }
  if (task.retireMs !== null && o.capture?.retireMs === undefined) capture.retireMs = task.retireMs;
  if (!absent) createCapturer(driver, capture).init(); // a bad interface, driver or option: a coded error now, not in a child
  const cpus = Array.from({ length: workers }, (_, i) => cpuFor(o.cpus, i, allowed));
  checkCpus(cpus, Array.isArray(o.cpus) ? '--cpus' : o.allowed?.length ? 'resources.cpus' : 'cpus');
  return {
    checked: t,
    node: o.node,
    iface,
    driver,
    workers,
    capture,
    userFilter,
    cpus,
    ringBytes: o.ringBytes ?? DEFAULT_RING_BYTES,
    flowSlots: o.flowSlots ?? DEFAULT_FLOW_SLOTS,
    tcpMaxBytes: o.tcpMaxBytes ?? null,
    settings: o.settings,
    interfaceAbsent: absent,
  };
}

export async function runLiveTask(o: LiveTaskOptions): Promise<LiveTaskResult> {
  if (!(o.duration >= 0)) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--duration: expected a non-negative number of seconds, got ${o.duration}`);
  const node = o.node ?? { hostname: os.hostname() };
  const t = await checkTask(o.taskFile, o.pluginDirs, node, o.out);
  const plan = planLiveTask(t, { ...o, node, settings: FOREGROUND });
  removeAllStaleSegments();
  const logs = await LogHub.open({ level: 'warn', format: 'json', rateLimitMs: 60_000, outputs: { stderr: {} } }, os.hostname());
  try {
    return await runPlanned(o, plan, logs);
  } finally {
    await logs.close();
  }
}

async function runPlanned(o: LiveTaskOptions, plan: LiveTaskPlan, logs: LogHub): Promise<LiveTaskResult> {
  const childLog = { sink: (line: string) => logs.write(line), level: logs.level, node: logs.node, rateLimitMs: 60_000 };
  const task = new SupervisedTask(plan, logs.logger('command').child({ task: plan.checked.task.id }), childLog);
  await task.start();
  o.onCapturing?.(`${plan.iface} (${plan.driver}, ${plan.workers} stream(s)${plan.driver === 'af_packet_v3' ? `, fanout ${plan.capture.fanoutMode} group ${plan.capture.fanoutGroup}` : ''})`);

  // Until the duration is over, the signal comes, or a child dies.
  // The timer and the listener go with it: a run that ends early must not keep the event loop alive.
  let timer: NodeJS.Timeout | undefined;
  let onAbort = (): void => undefined;
  const why = await new Promise<string>((resolve) => {
    if (o.duration > 0) timer = setTimeout(() => resolve(`duration ${o.duration}s`), o.duration * 1000);
    onAbort = (): void => resolve('signal');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    if (o.signal?.aborted) resolve('signal');
    void task.failed.then(resolve);
  });
  clearTimeout(timer);
  o.signal?.removeEventListener('abort', onAbort);
  const summary = await task.stop(why);
  const failure = task.state === 'failed' ? new OtusError(task.failureCode, `${plan.iface}: ${task.reason}`) : null;
  return { summary: { ...summary, capture: { interface: plan.iface, driver: plan.driver, stopped: why } }, failure };
}
