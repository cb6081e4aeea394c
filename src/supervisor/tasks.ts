// The daemon's tasks: created and stopped at run time (control socket, boot
// tasks, later the Kafka command channel), each a SupervisedTask with its own
// fanout group, shared memory and sender. Checks before anything is forked:
// the id is new, the reporter is one the global config defines, the task and
// its plugins validate, the interface and driver work, and its capture
// processes fit the worker budget (resources.max_workers, summed over tasks).

import type { Logger } from 'pino';
import { allowedCpus } from '../capture/index.js';
import { type GlobalConfig, nodeContext, reporterConfigFor } from '../config/global.js';
import type { TaskSpec } from '../config/task.js';
import type { LogHub, LogLevel } from '../log/logger.js';
import { OtusError } from '../util/errors.js';
import { planLiveTask } from './live.js';
import type { Readiness } from './metrics.js';
import { type TaskBrief, type TaskMetricsView, type TaskStatus, SupervisedTask } from './task.js';
import { checkTaskSpec, type TaskSummary } from './task-run.js';

/** Stopped tasks whose final counters the metrics keep. */
const KEEP_STOPPED = 16;

/**
 * What a task takes from the worker budget: its capture processes, and its
 * senders beyond the first (the first has always come with every task; each
 * further one is there to take a core of its own).
 */
export function workersOf(workers: number, senders: number): number {
  return workers + senders - 1;
}

export class TaskManager {
  private readonly tasks = new Map<string, SupervisedTask>();
  /** Tasks stopped, newest last: the metrics keep their final counters until the id is created again (at most KEEP_STOPPED). */
  private readonly stopped = new Map<string, SupervisedTask>();
  /** Ids being created: a second create of one id is refused while the first is checked and forked. */
  private readonly pending = new Set<string>();
  /** Called whenever a task changes state or comes and goes. */
  onChange: (() => void) | null = null;

  /** `logs`: where the children of every task log (null: they do not). */
  constructor(
    private cfg: GlobalConfig,
    private readonly pluginDirs: string[],
    private readonly log: Logger,
    private readonly logs: LogHub | null = null,
  ) {}

  /** A reloaded configuration: applies to tasks created from now on. */
  setConfig(cfg: GlobalConfig): void {
    this.cfg = cfg;
  }

  /** The CPUs capture processes may use, and how many of them at most (all tasks together). */
  budget(): { allowed: number[]; max: number; used: number } {
    const allowed = this.cfg.resources.cpus.length > 0 ? this.cfg.resources.cpus : allowedCpus();
    const max = this.cfg.resources.maxWorkers > 0 ? this.cfg.resources.maxWorkers : allowed.length;
    let used = 0;
    for (const t of this.tasks.values()) if (t.state !== 'failed' && t.state !== 'stopped') used += workersOf(t.plan.workers, t.plan.checked.task.senders);
    return { allowed, max, used };
  }

  /** `boot`: a boot task, whose interface may not exist yet (it is waited for, not refused). */
  async create(spec: TaskSpec, opts: { boot?: boolean } = {}): Promise<TaskBrief> {
    if (this.tasks.has(spec.id) || this.pending.has(spec.id)) {
      throw new OtusError('OTUS_ERR_TASK', `task ${spec.id}: a task with this id exists (${this.tasks.get(spec.id)?.state ?? 'starting'}); stop it first`);
    }
    this.pending.add(spec.id);
    try {
      const cfg = this.cfg;
      const node = nodeContext(cfg);
      const checked = await checkTaskSpec(spec, this.pluginDirs, node, reporterConfigFor(cfg, spec));
      const b = this.budget();
      const plan = planLiveTask(checked, {
        iface: null,
        driver: null,
        workers: null,
        maxWorkers: Math.max(1, b.max - b.used - (spec.senders - 1)),
        allowed: b.allowed,
        cpus: 'auto',
        ringBytes: cfg.resources.ringBytes,
        flowSlots: cfg.resources.flowRegistrySlots,
        tcpMaxBytes: cfg.resources.tcpReassemblyBytes,
        node,
        settings: cfg.supervisor,
        absentInterface: opts.boot ? 'wait' : 'error',
      });
      if (plan.interfaceAbsent) this.log.warn({ task: spec.id, interface: plan.iface }, `boot task ${spec.id}: interface ${plan.iface} does not exist yet; its capture processes wait for it`);
      const need = workersOf(plan.workers, spec.senders);
      if (need > b.max - b.used) {
        const extra = spec.senders > 1 ? ` and ${spec.senders - 1} more sender(s)` : '';
        throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `task ${spec.id}: ${plan.workers} capture processes${extra}, but only ${b.max - b.used} of ${b.max} workers are free`);
      }
      const hub = this.logs;
      const childLog = hub && { sink: (line: string) => hub.write(line), level: hub.level, node: hub.node, rateLimitMs: cfg.log.rateLimitMs };
      const task = new SupervisedTask(plan, this.log.child({ task: spec.id }), childLog);
      this.stopped.delete(spec.id);
      task.onState = () => this.onChange?.();
      this.tasks.set(spec.id, task);
      try {
        await task.start();
      } catch (e) {
        this.tasks.delete(spec.id);
        throw e;
      }
      this.onChange?.();
      return task.brief();
    } finally {
      this.pending.delete(spec.id);
      this.onChange?.();
    }
  }

  /** Stops a task in order and forgets it; resolves with its counters. */
  async stop(id: string): Promise<TaskSummary> {
    const task = this.get(id);
    const summary = await task.stop('stopped by request');
    this.tasks.delete(id);
    this.stopped.delete(id);
    this.stopped.set(id, task);
    for (const old of this.stopped.keys()) {
      if (this.stopped.size <= KEEP_STOPPED) break;
      this.stopped.delete(old);
    }
    this.onChange?.();
    return summary;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.tasks.keys()].map((id) => this.stop(id).catch(() => undefined)));
  }

  /** Every task's children log at `level` from now on. */
  setLogLevel(level: LogLevel): void {
    for (const t of this.tasks.values()) t.setLogLevel(level);
  }

  list(): TaskBrief[] {
    return [...this.tasks.values()].map((t) => t.brief());
  }

  status(id: string): TaskStatus {
    return this.get(id).status();
  }

  stats(): Record<string, TaskSummary> {
    const out: Record<string, TaskSummary> = {};
    for (const [id, t] of this.tasks) out[id] = t.counters();
    return out;
  }

  /** What the metrics read: the tasks running, then those stopped whose final counters are kept. */
  metrics(): TaskMetricsView[] {
    return [...[...this.tasks.values()].map((t) => t.metrics()), ...[...this.stopped.values()].map((t) => t.metrics())];
  }

  /** /readyz: ready when every task runs with every child up and beating (a failed task is not ready until it is stopped). */
  readiness(): Readiness {
    const tasks: Readiness['tasks'] = {};
    const problems: string[] = [];
    for (const [id, t] of this.tasks) {
      const p = t.problems();
      tasks[id] = { state: t.state, problems: p };
      for (const x of p) problems.push(`task ${id}: ${x}`);
    }
    if (this.pending.size > 0) problems.push(`starting: ${[...this.pending].join(', ')}`);
    return { ready: problems.length === 0, problems, tasks };
  }

  /** Every task's every child beats (the daemon's systemd watchdog pings only then). */
  healthy(): boolean {
    for (const t of this.tasks.values()) if (t.state !== 'failed' && !t.healthy()) return false;
    return true;
  }

  /** Tasks by state, for `status` and the systemd status line. */
  counts(): Record<'starting' | 'running' | 'degraded' | 'failed' | 'stopping', number> {
    const c = { starting: this.pending.size, running: 0, degraded: 0, failed: 0, stopping: 0 };
    for (const t of this.tasks.values()) if (t.state in c) c[t.state as keyof typeof c]++;
    return c;
  }

  /** Running tasks whose settings came from `section` of the old configuration. */
  ids(): string[] {
    return [...this.tasks.keys()];
  }

  private get(id: string): SupervisedTask {
    const t = this.tasks.get(id);
    if (!t) throw new OtusError('OTUS_ERR_TASK', `no task ${JSON.stringify(id)}${this.tasks.size ? ` (tasks: ${[...this.tasks.keys()].join(', ')})` : ' (no tasks are running)'}`);
    return t;
  }
}
