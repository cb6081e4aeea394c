// One live task under supervision: its shared memory (send rings, flow
// registry, capture clock, all owned by this process so they outlive any
// child), its senders (one per send ring: `senders` in the task; capture
// process i writes ring i mod senders) and one capture process per stream. The daemon runs
// many (src/supervisor/tasks.ts); `otus capture --task` runs one in the
// foreground (src/supervisor/live.ts).
//
// Children beat every heartbeatMs; one silent for watchdogMs (a hung event
// loop, a stopped process) is killed. Their counters are in the task's stats
// segment (src/shm/stats.ts, one slot per process, carried over a restart),
// read here for status, stats, the summary and the metrics. A child that
// dies is restarted alone, into the same ring slot, fanout group and CPU,
// with backoff (restart.ts); past its restart budget the task fails and its
// other processes are stopped in order. Foreground runs restart nothing: a
// child that dies ends the run. Stop: capture processes first (each hands
// over what its kernel ring holds and commits its last batch), then every
// sender drains its ring; TERM, then KILL after stopTimeoutMs.

import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { CaptureOptions } from '../capture/capturer.js';
import { CATCH_UP_MARGIN_MS } from '../capture-proc/catch-up.js';
import { captureFromSlot } from '../capture-proc/counters.js';
import { latencySummary, LATENCY_BUCKETS } from '../sender-proc/latency.js';
import type { ChildLogSetup, LogLevel, LogLevelMessage, LogLine } from '../log/logger.js';
import { CaptureClock } from '../shm/capture-clock.js';
import { FlowRegistry, type RegistryStats } from '../shm/registry.js';
import { createRing, type RingSegment, type RingStats } from '../shm/ring.js';
import { runScope } from '../shm/segment.js';
import { captureSlot, senderSlot, type SlotValues, StatsSegment, type StatsView, under } from '../shm/stats.js';
import { OtusError, type OtusErrorCode } from '../util/errors.js';
import type { Beat, ChildError, LiveCaptureStart, SenderDone, SenderStart } from './messages.js';
import { SdNotify } from './notify.js';
import { RestartPolicy, type RestartSettings } from './restart.js';
import { captureExecArgv, type CheckedTask, here, senderExecArgv, senderFigures, summarize, type TaskSummary } from './task-run.js';

export type TaskState = 'starting' | 'running' | 'degraded' | 'failed' | 'stopping' | 'stopped';
/** `waiting`: a capture process alive and beating whose interface is down or gone (it captures again once the interface is up). */
export type ProcessState = 'starting' | 'running' | 'waiting' | 'restarting' | 'stopped' | 'failed';

export interface TaskSettings {
  heartbeatMs: number;
  watchdogMs: number;
  stopTimeoutMs: number;
  /** null: a child that dies ends the task (foreground runs). */
  restart: RestartSettings | null;
}

/** Everything decided before anything is forked (src/supervisor/live.ts planLiveTask). */
export interface LiveTaskPlan {
  checked: CheckedTask;
  node: Record<string, string>;
  iface: string;
  driver: string;
  workers: number;
  capture: CaptureOptions;
  /** The pipeline runs the task's filter (xdp cannot filter in the kernel). */
  userFilter: boolean;
  /** Per capture process: its CPU, or -1. */
  cpus: number[];
  ringBytes: number;
  flowSlots: number;
  /** The TCP reassembly's memory bound per capture process, or null for its default. */
  tcpMaxBytes: number | null;
  settings: TaskSettings;
  /** The interface did not exist when the task was planned (a boot task: its capture processes wait for it). */
  interfaceAbsent?: boolean;
}

export interface ProcessStatus {
  role: 'capture' | 'sender';
  index: number;
  pid: number | null;
  cpu: number;
  state: ProcessState;
  rss_bytes: number;
  cpu_s: number;
  restarts: number;
  last_exit: string | null;
  started_at: string | null;
}

/** Where a task's children log (src/log/logger.ts): their lines go to `sink` (the supervisor's LogHub.write). */
export interface ChildLogging {
  sink(line: string): void;
  level: LogLevel;
  node: string;
  rateLimitMs: number;
}

export interface TaskBrief {
  id: string;
  state: TaskState;
  interface: string;
  driver: string;
  workers: number;
  started_at: string;
  restarts: number;
}

export interface TaskStatus extends TaskBrief {
  reason: string | null;
  processes: ProcessStatus[];
  counters: TaskSummary;
  /** The send ring: its data bytes and how many hold records not yet read by the sender (null once released). */
  ring: { data_bytes: number; used_bytes: number } | null;
}

/** One child of the task: the process of the moment (its counters are in its stats slot). */
class Slot {
  proc: ChildProcess | null = null;
  state: ProcessState = 'starting';
  restarts = 0;
  lastExit: string | null = null;
  startedAt = 0;
  lastBeat = 0;
  /** Why the current incarnation is ending, when known before its exit (its error message, the watchdog). */
  ending: string | null = null;
  /** While `waiting`: why (`interface eth1 is down`). */
  waiting: string | null = null;
  exited: Promise<void> = Promise.resolve();
  restartTimer: NodeJS.Timeout | null = null;
  readonly policy: RestartPolicy | null;

  /** Its slot in the task's stats segment. */
  readonly statsSlot: number;

  /** `workers`, `senders`: the task's capture processes and senders (a sender's stats slot follows the capture processes'). */
  constructor(
    readonly role: 'capture' | 'sender',
    readonly index: number,
    readonly cpu: number,
    restart: RestartSettings | null,
    private readonly senders = 1,
    workers = 0,
  ) {
    this.policy = restart ? new RestartPolicy(restart) : null;
    this.statsSlot = role === 'sender' ? senderSlot(index, workers) : captureSlot(index);
  }

  get name(): string {
    if (this.role === 'capture') return `capture process ${this.index}`;
    return this.senders > 1 ? `sender ${this.index}` : 'sender';
  }

  /** Its `process` label in the metrics. */
  get label(): string {
    if (this.role === 'capture') return `capture-${this.index}`;
    return this.senders > 1 ? `sender-${this.index}` : 'sender';
  }
}

const CLK_TCK = 100; // USER_HZ: fixed at 100 on Linux for /proc times
const PAGE = 4096;

/** RSS bytes and CPU seconds of a process from /proc, or zeros when it is gone. */
function usage(pid: number | null): { rss: number; cpu: number } {
  if (pid === null) return { rss: 0, cpu: 0 };
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const rss = Number(readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')[1]) * PAGE;
    return { rss, cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK };
  } catch {
    return { rss: 0, cpu: 0 };
  }
}

function exitText(code: number | null, sig: NodeJS.Signals | null): string {
  return sig ? `killed by ${sig}` : `exit code ${code}`;
}

/** What the metrics read of a task (src/supervisor/metrics.ts): live, or as it was when it stopped. */
export interface TaskMetricsView {
  id: string;
  state: TaskState;
  reporter: string;
  /** A sender's `ring`: the send ring it reads (null for capture processes, and once released without a copy). */
  processes: { name: string; role: 'capture' | 'sender'; index: number; state: ProcessState; restarts: number; slot: SlotValues | null; ring: RingStats | null }[];
  registry: RegistryStats | null;
}

/** Several senders' slots as one: counters add (in flight too), the latency's maximum is the largest. */
function sumSlots(slots: (SlotValues | null)[]): SlotValues | null {
  const present = slots.filter((s): s is SlotValues => s !== null);
  if (present.length <= 1) return present[0] ?? null;
  const values = new Map<string, number>();
  for (const s of present) for (const [k, v] of s.values) values.set(k, k === 'latency.maxUs' ? Math.max(values.get(k) ?? 0, v) : (values.get(k) ?? 0) + v);
  return { pid: 0, incarnations: present.reduce((a, s) => a + s.incarnations, 0), values, kinds: present[0]!.kinds };
}

/** Several rings' counters as one: their sums, and every producer slot. */
function sumRings(rings: (RingStats | null)[]): RingStats | null {
  const present = rings.filter((r): r is RingStats => r !== null);
  if (present.length <= 1) return present[0] ?? null;
  const sum = { ...present[0]!, producers: present.flatMap((r) => r.producers) };
  for (const r of present.slice(1)) for (const k of Object.keys(sum) as (keyof RingStats)[]) if (typeof r[k] === 'number') (sum[k] as number) += r[k] as number;
  return sum;
}

/** The sender's counters as its slot holds them, with the ring's (read from the ring itself), in the shape of its done message. */
function senderFromSlot(s: SlotValues | null, ring: RingStats | null): SenderDone {
  const v = s?.values ?? new Map<string, number>();
  const n = (k: string): number => v.get(k) ?? 0;
  const buckets = under(v, 'latency.b.');
  const counts = new Float64Array(LATENCY_BUCKETS);
  for (const [i, c] of Object.entries(buckets)) counts[Number(i)] = c;
  return {
    type: 'done',
    records: n('records'),
    bytes: n('bytes'),
    ring: {
      dropHead: ring?.dropHead ?? 0,
      abandoned: ring?.abandoned ?? 0,
      discarded: ring?.discarded ?? 0,
      dropTail: ring?.producers.reduce((a, p) => a + p.dropTail, 0) ?? 0,
      records: ring?.records ?? 0,
      dropHeadRecords: ring?.dropHeadWeight ?? 0,
      abandonedRecords: ring?.abandonedWeight ?? 0,
    },
    expand: { records: n('expand.records'), malformed: n('expand.malformed'), tooBig: n('expand.tooBig'), payloadUnread: n('expand.payloadUnread'), payloadFormat: n('expand.payloadFormat') },
    reporterDropped: n('reporter.dropped'),
    reporterDrops: { buffer: n('reporter.drops.buffer'), timeout: n('reporter.drops.timeout'), error: n('reporter.drops.error') },
    reporterAcked: n('reporter.acked'),
    stopAbandoned: n('stopAbandoned'),
    cpuSec: n('cpuSec'),
    latency: v.has('latency.count') ? latencySummary(counts, n('latency.maxUs')) : null,
    // The reporter's delivery counters (Reporter.counters), summed over incarnations in the slot; in flight is the latest's.
    reporter: v.has('reporter.timeout')
      ? { acked: n('reporter.acked'), timeout: n('reporter.timeout'), errors: under(v, 'reporter.errors.'), queued: n('reporter.queued'), ...(n('reporter.skipped') > 0 && { skipped: n('reporter.skipped') }) }
      : null,
  };
}

export class SupervisedTask {
  state: TaskState = 'starting';
  reason: string | null = null;
  /** Set with a failure: the code a foreground run exits with. */
  failureCode: OtusErrorCode = 'OTUS_ERR_WORKER';
  readonly id: string;
  readonly startedAt = new Date();
  /** Called on every change of state. */
  onState: ((t: SupervisedTask) => void) | null = null;
  /** Resolves with the reason when the task fails on its own. */
  readonly failed: Promise<string>;
  private resolveFailed!: (why: string) => void;
  private readonly t0 = process.hrtime.bigint();
  private readonly scope: string;
  private readonly captures: Slot[];
  /** One per send ring (`senders` in the task); capture process i writes ring i mod senders. */
  private readonly senders: Slot[];
  private flows: FlowRegistry | null = null;
  private clock: CaptureClock | null = null;
  private rings: RingSegment[] = [];
  private stats: StatsSegment | null = null;
  /** Once stopped: the counters as they were at the end (the segments are gone). */
  private final: { stats: StatsView; rings: RingStats[]; registry: RegistryStats | null } | null = null;
  private clockSetup: LiveCaptureStart['clock'] = null;
  private watchdog: NodeJS.Timeout | null = null;
  private stopping: Promise<TaskSummary> | null = null;
  private readonly execArgv = process.execArgv.filter((a) => !a.startsWith('--test'));
  private readonly captureExecArgv = captureExecArgv(this.execArgv);
  private readonly senderExecArgv = senderExecArgv(this.execArgv);
  /** Children talk to the supervisor, never to systemd. */
  private readonly env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SdNotify.envKeys.includes(k)));

  /** `log`: the task's logger (its lines carry the task id); `childLog`: where its children log (null: they do not). */
  constructor(
    readonly plan: LiveTaskPlan,
    private readonly log: Logger,
    private readonly childLog: ChildLogging | null = null,
  ) {
    this.id = plan.checked.task.id;
    this.scope = runScope(this.id);
    const r = plan.settings.restart;
    const n = plan.checked.task.senders;
    this.captures = Array.from({ length: plan.workers }, (_, i) => new Slot('capture', i, plan.cpus[i] ?? -1, r));
    this.senders = Array.from({ length: n }, (_, j) => new Slot('sender', j, -1, r, n, plan.workers));
    this.failed = new Promise((res) => (this.resolveFailed = res));
  }

  /** Creates the shared memory, forks the sender and the capture processes; resolves once every one is capturing. */
  async start(): Promise<void> {
    const p = this.plan;
    try {
      this.flows = p.checked.task.parsers.length > 0 ? FlowRegistry.create(this.scope, { capacity: p.flowSlots }) : null;
      // A registry miss waits for the other capture processes' older frames (src/capture-proc/catch-up.ts): up to the ring's retire time.
      if (this.flows !== null && p.workers > 1) {
        this.clock = CaptureClock.create(this.scope, p.workers);
        this.clockSetup = { baseMs: Date.now(), windowMs: (p.driver === 'af_packet_v3' ? p.capture.retireMs : 0) + CATCH_UP_MARGIN_MS };
      }
      for (let j = 0; j < this.senders.length; j++) this.rings.push(createRing(this.scope, { dataBytes: p.ringBytes }, j));
      this.stats = StatsSegment.create(this.scope, p.workers + this.senders.length);
      // One after the other: the first opens (truncates) an output file the others append to.
      for (const s of this.senders) await this.spawn(s);
      await Promise.all(this.captures.map((s) => this.spawn(s)));
    } catch (e) {
      for (const s of this.slots()) if (s.proc) s.proc.kill('SIGKILL');
      await Promise.all(this.slots().map((s) => s.exited));
      this.release();
      this.setState('failed', e instanceof Error ? e.message : String(e));
      throw e;
    }
    if (p.settings.watchdogMs > 0) {
      this.watchdog = setInterval(() => this.checkBeats(), Math.max(50, Math.min(p.settings.heartbeatMs, p.settings.watchdogMs / 2)));
    }
    const waiting = this.captures.find((s) => s.waiting !== null);
    if (waiting) this.setState('degraded', this.waitingReason(waiting));
    else this.setState('running');
    this.log.info({ scope: this.scope, workers: p.workers, senders: this.senders.length, iface: p.iface, driver: p.driver }, 'task running');
  }

  /** Stops the task in order (idempotent); resolves with its counters once every process is gone and the memory released. */
  stop(why = 'stopped'): Promise<TaskSummary> {
    this.stopping ??= this.shutdown(why);
    return this.stopping;
  }

  /** Every child is up and has beaten within its last three heartbeats (well before the watchdog would kill it). */
  healthy(): boolean {
    const now = Date.now();
    const late = 3 * this.plan.settings.heartbeatMs;
    return this.slots().every((s) => (s.state === 'running' || s.state === 'waiting') && (late <= 0 || now - s.lastBeat <= late));
  }

  /** Why the task is not ready (/readyz), or nothing: it runs and every child is up and has beaten within three heartbeats. */
  problems(): string[] {
    if (this.state === 'failed') return [`failed: ${this.reason}`];
    if (this.state !== 'running' && this.state !== 'degraded') return [this.state];
    const now = Date.now();
    const late = 3 * this.plan.settings.heartbeatMs;
    const out: string[] = [];
    for (const s of this.slots()) {
      if (s.state === 'waiting') out.push(`${s.name} is waiting: ${s.waiting}`);
      else if (s.state !== 'running') out.push(`${s.name} is ${s.state}${s.lastExit ? ` (last exit: ${s.lastExit})` : ''}`);
      else if (late > 0 && now - s.lastBeat > late) out.push(`${s.name}: no heartbeat for ${now - s.lastBeat} ms`);
    }
    return out;
  }

  brief(): TaskBrief {
    return {
      id: this.id,
      state: this.state,
      interface: this.plan.iface,
      driver: this.plan.driver,
      workers: this.plan.workers,
      started_at: this.startedAt.toISOString(),
      restarts: this.slots().reduce((a, s) => a + s.restarts, 0),
    };
  }

  /** The children's new level: sent to those running, given to those started later. */
  setLogLevel(level: LogLevel): void {
    if (this.childLog === null) return;
    this.childLog.level = level;
    for (const s of this.slots()) if (s.proc?.connected) s.proc.send({ type: 'log-level', level } satisfies LogLevelMessage, () => undefined);
  }

  status(): TaskStatus {
    const ring = sumRings(this.rings.map((r) => r.stats()));
    const view = this.stats?.view ?? null;
    return {
      ...this.brief(),
      reason: this.reason,
      processes: this.slots().map((s) => {
        const u = usage(s.proc?.pid ?? null);
        const healthy = s.role === 'sender' && view !== null ? view.read(s.statsSlot).values.get('reporter.healthy') : undefined;
        return {
          role: s.role,
          index: s.index,
          pid: s.proc?.pid ?? null,
          cpu: s.cpu,
          state: s.state,
          rss_bytes: u.rss,
          cpu_s: u.cpu,
          restarts: s.restarts,
          last_exit: s.lastExit,
          started_at: s.startedAt ? new Date(s.startedAt).toISOString() : null,
          ...(s.role === 'sender' && { reporter_healthy: healthy === undefined ? null : healthy === 1 }),
        };
      }),
      counters: this.counters(),
      ring: ring ? { data_bytes: ring.dataBytes, used_bytes: ring.used } : null,
    };
  }

  /** The task's counters so far: every incarnation of every process, summed in their stats slots (a process killed loses what it had not copied there: at most a ring block, or a heartbeat of the rest). */
  counters(warnings: string[] = []): TaskSummary {
    const view = this.final?.stats ?? this.stats?.view ?? null;
    // Downstream first (rings, senders, then capture processes): nothing a sender counted is missing upstream.
    const rings = this.final?.rings ?? this.rings.map((r) => r.stats());
    const slots = this.senders.map((s) => (view === null ? null : view.read(s.statsSlot)));
    const task = this.plan.checked.task;
    const done = view === null ? [] : this.captures.map((s) => ({ s, v: view.read(s.statsSlot) })).filter((x) => x.v.incarnations > 0).map((x) => captureFromSlot(x.v, x.s.index, x.s.cpu));
    const summary = summarize(
      task,
      this.plan.workers,
      done,
      (d) => ({
        cpu: d.cpu,
        blocks: d.stream.blocks,
        kernel_packets: d.stream.kernelPackets,
        ...(d.stream.outgoingSkipped > 0 && { outgoing_skipped: d.stream.outgoingSkipped }),
        kernel_drops: d.stream.kernelDrops,
        freezes: d.stream.freezes,
        ...(d.stream.interfaceWaits > 0 && { interface_waits: d.stream.interfaceWaits, interface_wait_ms: d.stream.interfaceWaitMs }),
        restarts: this.captures[d.index]?.restarts ?? 0,
        ...(d.catchUp && {
          catchup_waits: d.catchUp.waits,
          catchup_waited_ms: Math.round(d.catchUp.waited_ms),
          catchup_deadlines: d.catchUp.deadlines,
          catchup_quiet: d.catchUp.quiet,
        }),
      }),
      senderFromSlot(sumSlots(slots), sumRings(rings)),
      Number(process.hrtime.bigint() - this.t0) / 1e9,
      warnings,
      this.final ? (this.final.registry ? { ...this.final.registry } : null) : this.flows ? { ...this.flows.stats() } : null,
      this.senders.map((s, j) => ({ ...senderFigures(j, senderFromSlot(slots[j] ?? null, rings[j] ?? null)), restarts: s.restarts })),
    );
    return { ...summary, capture: { interface: this.plan.iface, driver: this.plan.driver, stopped: this.reason ?? this.state } };
  }

  /** What the metrics read: every process's slot, the ring and the registry (live, or as they were at the stop). */
  metrics(): TaskMetricsView {
    const view = this.final?.stats ?? this.stats?.view ?? null;
    // Downstream first (rings, then the senders, then capture processes), so a scrape never counts a record a sender has and its frame not.
    const rings = this.final?.rings ?? this.rings.map((r) => r.stats());
    const processes = this.slots().map((s) => {
      const slot = view === null ? null : view.read(s.statsSlot);
      const ring = s.role === 'sender' ? (rings[s.index] ?? null) : null;
      return { name: s.label, role: s.role, index: s.index, state: s.state, restarts: s.restarts, slot: slot !== null && slot.incarnations > 0 ? slot : null, ring };
    });
    return { id: this.id, state: this.state, reporter: this.plan.checked.reporter.name, processes, registry: this.final?.registry ?? this.flows?.counters() ?? null };
  }

  private slots(): Slot[] {
    return [...this.senders, ...this.captures];
  }

  private setState(state: TaskState, reason?: string): void {
    if (reason !== undefined) this.reason = reason;
    if (this.state === state) return;
    this.state = state;
    this.onState?.(this);
  }

  private startMessage(s: Slot): LiveCaptureStart | SenderStart {
    const p = this.plan;
    const c = this.childLog;
    const log: ChildLogSetup | undefined = c ? { level: c.level, node: c.node, task: this.id, rateLimitMs: c.rateLimitMs } : undefined;
    const setup = { task: p.checked.task, pluginDirs: p.checked.pluginDirs, node: p.node, ringTask: this.scope, flows: this.flows !== null, log };
    if (s.role === 'sender') {
      const r = p.checked.reporter;
      return {
        type: 'start',
        ...setup,
        ring: s.index,
        reporter: r.name,
        reporterConfig: r.config,
        reporterWhere: r.where,
        ringBytes: p.ringBytes,
        latency: true,
        heartbeatMs: p.settings.heartbeatMs,
        stats: true,
        statsSlot: s.statsSlot,
        resumed: s.restarts > 0 || s.index > 0,
      };
    }
    return {
      type: 'start',
      ...setup,
      ring: s.index % this.senders.length,
      index: s.index,
      workers: p.workers,
      cpu: s.cpu,
      driver: p.driver,
      options: p.capture,
      format: p.checked.format,
      userFilter: p.userFilter,
      clock: this.clockSetup,
      heartbeatMs: p.settings.heartbeatMs,
      stats: true,
      tcpMaxBytes: p.tcpMaxBytes,
      waitForInterface: p.settings.restart !== null,
    };
  }

  /** Forks the slot's process; resolves when it is ready, rejects when it fails or exits first. */
  private spawn(s: Slot): Promise<void> {
    const mod = here(s.role === 'sender' ? '../sender-proc/main.js' : '../capture-proc/live.js');
    const proc = fork(mod, [], { serialization: 'advanced', execArgv: s.role === 'sender' ? this.senderExecArgv : this.captureExecArgv, env: this.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    s.proc = proc;
    s.state = 'starting';
    s.startedAt = s.lastBeat = Date.now();
    s.ending = null;
    let exitDone!: () => void;
    s.exited = new Promise((res) => (exitDone = res));
    const ready = new Promise<void>((resolve, reject) => {
      proc.on('message', (m: { type: string }) => {
        // A line of any incarnation, even one being replaced.
        if (m.type === 'log') return this.childLog?.sink((m as LogLine).line);
        if (s.proc !== proc) return;
        if (m.type === 'beat') {
          s.lastBeat = Date.now();
          const w = (m as Beat).waiting;
          if (w !== undefined) this.setWaiting(s, w);
        } else if (m.type === 'ready') {
          s.state = 'running';
          s.lastBeat = Date.now();
          resolve();
        } else if (m.type === 'done') {
          const d = m as unknown as { why?: string; failure?: string | null };
          if (d.failure) s.ending = `stream failed: ${d.failure}`;
          else if (d.why && d.why !== 'stopped') s.ending = d.why;
        } else if (m.type === 'error') {
          const e = m as ChildError;
          s.ending = `error: ${e.message}`;
          reject(new OtusError(e.code as OtusErrorCode, `${this.id}: ${s.name}: ${e.message}`));
        }
      });
      proc.on('exit', (code, sig) => {
        exitDone();
        if (s.proc !== proc) return;
        const why = s.ending ?? exitText(code, sig);
        reject(new OtusError('OTUS_ERR_WORKER', `${this.id}: ${s.name} ${why} before it was ready`));
        this.exited(s, why);
      });
    });
    ready.catch(() => undefined);
    proc.send(this.startMessage(s));
    return ready;
  }

  /** A capture process's interface went down or away (`why`), or it captures again (null). */
  private setWaiting(s: Slot, why: string | null): void {
    if (s.state !== 'running' && s.state !== 'waiting') return;
    s.waiting = why;
    s.state = why === null ? 'running' : 'waiting';
    if (this.state !== 'running' && this.state !== 'degraded') return; // starting: start() decides; stopping, failed: stays
    if (why !== null) {
      this.setState('degraded', this.waitingReason(s));
      this.log.info({ process: s.name, why }, 'capture process waiting for its interface');
      return;
    }
    this.log.info({ process: s.name }, 'capture process capturing again');
    this.settle();
  }

  /** Running again once every child runs; degraded while a capture process waits for its interface. */
  private settle(): void {
    const waiting = this.captures.find((x) => x.waiting !== null);
    if (waiting) this.setState('degraded', this.waitingReason(waiting));
    else if (this.slots().every((x) => x.state === 'running')) this.setState('running', '');
  }

  private waitingReason(s: Slot): string {
    return `${s.name}: ${s.waiting}; it captures again once the interface is up`;
  }

  private exited(s: Slot, why: string): void {
    s.proc = null;
    s.waiting = null;
    s.lastExit = why;
    if (this.stopping !== null) {
      s.state = 'stopped';
      return;
    }
    if (this.state === 'starting') {
      s.state = 'failed';
      return; // start() fails and cleans up
    }
    this.log.warn({ process: s.name, why }, 'child exited');
    const delay = s.policy?.next(s.startedAt, Date.now()) ?? null;
    if (delay === null) {
      s.state = 'failed';
      this.failureCode = why.startsWith('stream failed') ? 'OTUS_ERR_CAPTURE_IO' : 'OTUS_ERR_WORKER';
      const reason = s.policy ? `${s.name}: restarted ${s.restarts} times, still failing (last: ${why})` : `${s.name}: ${why}`;
      this.setState('failed', reason);
      this.log.error({ reason }, 'task failed');
      this.resolveFailed(reason);
      void this.stop(reason);
      return;
    }
    s.state = 'restarting';
    this.setState('degraded', `${s.name}: ${why}; restarting in ${delay} ms`);
    s.restartTimer = setTimeout(() => {
      s.restartTimer = null;
      if (this.stopping !== null) return;
      s.restarts++;
      this.spawn(s).then(
        () => {
          this.log.info({ process: s.name, pid: s.proc?.pid, restarts: s.restarts }, 'child restarted');
          this.settle();
        },
        () => undefined, // its exit is handled like any other
      );
    }, delay);
  }

  /** Kills a child that has not beaten for watchdogMs: its exit then restarts it like a crash. */
  private checkBeats(): void {
    const now = Date.now();
    for (const s of this.slots()) {
      if (s.proc === null || (s.state !== 'running' && s.state !== 'waiting') || s.ending !== null) continue;
      const silent = now - s.lastBeat;
      if (silent > this.plan.settings.watchdogMs) {
        s.ending = `no heartbeat for ${silent} ms (watchdog)`;
        s.proc.kill('SIGKILL');
      }
    }
  }

  private async shutdown(why: string): Promise<TaskSummary> {
    if (this.state !== 'failed') this.setState('stopping', why);
    if (this.watchdog) clearInterval(this.watchdog);
    for (const s of this.slots()) if (s.restartTimer) clearTimeout(s.restartTimer);
    let summary: TaskSummary;
    try {
      await Promise.all(this.captures.map((s) => this.end(s, 'stop')));
      await Promise.all(this.senders.map((s) => this.end(s, 'drain')));
      const warnings = this.slots().flatMap((s) => (s.lastExit && !/^exit code 0$/.test(s.lastExit) ? [`${s.name}: ${s.lastExit}`] : []));
      // The counters as the segments hold them at the end, kept for status and the metrics once they are gone.
      if (this.stats !== null) this.final = { stats: this.stats.view.copy(), rings: this.rings.map((r) => r.stats()), registry: this.flows?.stats() ?? null };
      summary = this.counters(warnings);
      summary.warnings.push(...this.plan.checked.hints(summary.parsers)); // what the parsers skipped, and what would take it
    } finally {
      this.release(); // whatever happened above, the task's shared memory goes with it
    }
    if (this.state !== 'failed') this.setState('stopped', why);
    this.log.info({ why, frames: summary.frames, records: summary.records }, 'task stopped');
    return summary;
  }

  /** Asks a child to finish; the sender is told to abandon what it holds at the deadline; KILL after it. */
  private async end(s: Slot, msg: 'stop' | 'drain'): Promise<void> {
    const proc = s.proc;
    if (proc === null) return;
    const timeout = this.plan.settings.stopTimeoutMs;
    const within = (ms: number): Promise<boolean> =>
      new Promise((res) => {
        const t = setTimeout(() => res(false), ms);
        s.exited.then(() => {
          clearTimeout(t);
          res(true);
        });
      });
    if (proc.connected) proc.send({ type: msg }, () => undefined);
    if (await within(timeout)) return;
    if (msg === 'drain' && proc.connected) {
      proc.send({ type: 'abandon' }, () => undefined);
      if (await within(Math.min(1000, timeout))) return;
    }
    s.ending = `did not stop within ${timeout} ms: killed`;
    proc.kill('SIGKILL');
    await s.exited;
  }

  private release(): void {
    this.flows?.close();
    this.clock?.close();
    for (const r of this.rings) r.close();
    this.stats?.close();
    this.flows = this.clock = null;
    this.rings = [];
    this.stats = null;
  }
}
