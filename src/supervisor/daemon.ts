// `otus daemon`: the long-running service. Loads the global configuration
// (docs/config.md), clears shared memory left by dead runs, serves the
// control socket (docs/control.md), starts the boot tasks, and tells systemd
// (sd_notify) when it is ready, reloading, stopping, and that it is alive
// (the watchdog, only while every child beats), and serves Prometheus
// metrics, /healthz and /readyz on `metrics.listen` (metrics.ts). SIGHUP or
// `reload` re-reads the configuration; SIGTERM or SIGINT stops every task in
// order and exits.
// Every line of the daemon and of its children goes through one LogHub
// (src/log/logger.ts) to the outputs of `log.outputs`. The daemon never
// touches packets.

import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { checkReporterSettings, effectiveConfig, effectiveTask } from '../config/effective.js';
import { type GlobalConfig, loadGlobalConfig, parseGlobalConfig } from '../config/global.js';
import { isLogLevel, LOG_LEVELS, LogHub, type LogLevel } from '../log/logger.js';
import { createRegistry } from '../plugin/builtins.js';
import type { PluginRegistry } from '../plugin/registry.js';
import { parseTask, taskFromObject } from '../config/task.js';
import { clip } from '../config/yaml.js';
import { removeAllStaleSegments } from '../shm/segment.js';
import { CommandChannel, loadCommandKey } from './commands.js';
import { ControlServer, type Handler, RpcError } from './control.js';
import { Metrics, MetricsServer } from './metrics.js';
import { SdNotify } from './notify.js';
import { TaskManager } from './tasks.js';

export interface DaemonOptions {
  /** null: built-in defaults. */
  configFile: string | null;
  pluginDirs: string[];
  /** Overrides control.socket (tests, a second daemon by hand). */
  socket?: string;
  /** Resolves the daemon's stop when aborted (besides SIGTERM/SIGINT). */
  signal?: AbortSignal;
}

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Where a change to each part of the configuration takes effect (by the key's path in `otus:`). */
const LIVE = [/^log\.level$/, /^control\.allowed_(uids|gids)$/, /^resources\./, /^supervisor\./, /^reporters\b/, /^node\./];

function load(file: string | null, socket?: string): GlobalConfig {
  const cfg = loadGlobalConfig(file);
  if (socket) cfg.control.socket = socket;
  return cfg;
}

/** The leaf paths (two levels deep) where two effective configurations differ. */
function changed(a: Record<string, unknown>, b: Record<string, unknown>, prefix = '', depth = 0): string[] {
  const out: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[k];
    const y = b[k];
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    const path = prefix ? `${prefix}.${k}` : k;
    const objects = x && y && typeof x === 'object' && typeof y === 'object' && !Array.isArray(x) && !Array.isArray(y);
    if (objects && depth < 1) out.push(...changed(x as Record<string, unknown>, y as Record<string, unknown>, path, depth + 1));
    else out.push(path);
  }
  return out;
}

export async function runDaemon(o: DaemonOptions): Promise<void> {
  const cfg = load(o.configFile, o.socket);
  const registry = await createRegistry(o.pluginDirs); // an unsafe plugin directory is refused before anything starts
  checkReporterSettings(registry, cfg);
  // Outputs open once: a reload changes only the level (the node id in every line stays too).
  const logs = await LogHub.open(cfg.log, cfg.node.id);
  // A failure to start is the command's one coded line (src/cli/otus.ts), not a log line as well.
  try {
    await serve(o, cfg, logs, registry);
  } finally {
    await logs.close();
  }
}

async function serve(o: DaemonOptions, config: GlobalConfig, logs: LogHub, registry: PluginRegistry): Promise<void> {
  let cfg = config;
  const log: Logger = logs.logger('supervisor');
  const notify = SdNotify.fromEnv();
  const startedAt = new Date();
  let loadedAt = new Date();

  const stale = removeAllStaleSegments();
  if (stale.length) log.info({ removed: stale.map((s) => s.name) }, 'removed shared memory of dead runs');

  const tasks = new TaskManager(cfg, o.pluginDirs, log, logs);
  const setLogLevel = (level: LogLevel): void => {
    logs.setLevel(level);
    tasks.setLogLevel(level);
  };
  // Metrics never stop the daemon: an address in use is logged and shown by `status`, and capture goes on.
  const metricsAt = { listen: cfg.metrics.listen, path: cfg.metrics.path };
  let metricsState = cfg.metrics.enabled ? 'starting' : 'disabled';
  let metrics: MetricsServer | null = null;
  const statusLine = (): string => {
    const c = tasks.counts();
    const b = tasks.budget();
    const parts = Object.entries(c).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`);
    return `${parts.length ? parts.join(', ') : 'no tasks'}; workers ${b.used}/${b.max}`;
  };

  // Synchronous from start to end: two reloads never interleave.
  const reload = (): { applied: string[]; needs_restart: string[] } => {
    notify.reloading();
    try {
      const next = load(cfg.file, o.socket);
      checkReporterSettings(registry, next);
      const diff = changed(cfg.effective, next.effective);
      const applied = diff.filter((p) => LIVE.some((r) => r.test(p)));
      const needsRestart = diff.filter((p) => !applied.includes(p)).map((p) => `${p}: takes effect when the daemon restarts`);
      const running = tasks.ids();
      if (running.length) {
        for (const p of applied.filter((x) => /^(reporters|node|supervisor|resources)\b/.test(x))) {
          needsRestart.push(`${p}: applies to tasks created from now on; running tasks (${running.join(', ')}) keep theirs until re-created`);
        }
      }
      cfg = next;
      loadedAt = new Date();
      // Only a changed file: a level set by `otusctl log-level` stays through unrelated reloads.
      if (applied.includes('log.level')) setLogLevel(cfg.log.level);
      control.setAccess(cfg.control);
      tasks.setConfig(cfg);
      log.info({ applied, needs_restart: needsRestart }, 'configuration reloaded');
      return { applied, needs_restart: needsRestart };
    } catch (e) {
      log.error({ err: e instanceof Error ? e.message : String(e) }, 'reload refused: the configuration in use stays');
      throw e;
    } finally {
      notify.ready(statusLine());
    }
  };

  // The control socket's methods, which the command channel's commands call too.
  const methods: Record<string, Handler> = {
    status: (): Record<string, unknown> => {
      const b = tasks.budget();
      return {
        version: VERSION,
        pid: process.pid,
        node: { id: cfg.node.id, hostname: cfg.node.hostname },
        started_at: startedAt.toISOString(),
        uptime_s: Math.round((Date.now() - startedAt.getTime()) / 1000),
        config: { file: cfg.file, loaded_at: loadedAt.toISOString() },
        socket: cfg.control.socket,
        tasks: tasks.counts(),
        workers: { used: b.used, max: b.max },
        command_channel: channel?.status() ?? { state: 'disabled' },
        metrics: { state: metricsState, ...metricsAt, scrapes: metrics?.stats.scrapes ?? 0 },
        control: { ...control.stats },
        notify: { enabled: notify.enabled, failures: notify.failures },
        log: logs.stats(),
      };
    },
    stats: () => ({ tasks: tasks.stats() }),
    reload: () => reload(),
    'log.level': (p) => {
      if (!isLogLevel(p.level)) throw new RpcError(-32602, `invalid params: expected {level: one of ${LOG_LEVELS.join(', ')}}`);
      const previous = logs.level;
      // Said at the more verbose of the two levels, so the change itself is in the log.
      const louder = LOG_LEVELS.indexOf(p.level) < LOG_LEVELS.indexOf(previous);
      if (!louder) log.info({ to: p.level, from: previous }, 'log level set');
      setLogLevel(p.level);
      if (louder) log.info({ to: p.level, from: previous }, 'log level set');
      return { level: p.level, previous };
    },
    'task.create': async (p) => {
      if (p.task === undefined && typeof p.text !== 'string') throw new RpcError(-32602, 'invalid params: task.create needs {task: {...}} or {text: "YAML", file?: "its name"}');
      // otusctl sends the file's text beside its values, so that errors name the file and line (a daemon before that reads task only).
      const spec = typeof p.text === 'string' ? parseTask(p.text, sourceName(p.file, 'task.create')) : taskFromObject(p.task, 'task.create');
      return tasks.create(spec);
    },
    'task.stop': async (p) => {
      const id = idParam(p);
      return { id, state: 'stopped', counters: await tasks.stop(id) };
    },
    'task.list': () => ({ tasks: tasks.list() }),
    'task.status': (p) => tasks.status(idParam(p)),
    'config.validate': async (p) => {
      if (typeof p.config !== 'string' && p.task === undefined) throw new RpcError(-32602, 'invalid params: give config (YAML text) and/or task');
      const registry = await createRegistry(o.pluginDirs);
      const out: Record<string, unknown> = {};
      // A task is checked against the configuration given with it, else the one in use.
      const g = typeof p.config === 'string' ? parseGlobalConfig(p.config, sourceName(p.config_file, 'config.validate: config')) : cfg;
      if (typeof p.config === 'string') out.config = await effectiveConfig(registry, g);
      if (p.task !== undefined) {
        const spec = typeof p.task === 'string' ? parseTask(p.task, sourceName(p.task_file, 'config.validate: task')) : taskFromObject(p.task, 'config.validate: task');
        out.task = (await effectiveTask(registry, g, spec)).effective;
      }
      return { effective: out };
    },
  };
  const control = new ControlServer(cfg.control, methods, logs.logger('ctl'));
  // Its key is read before anything starts: a key that cannot be had is a configuration error, not an open channel.
  const channel = cfg.commandChannel.enabled
    ? new CommandChannel(cfg.commandChannel, cfg.node.id, loadCommandKey(cfg.commandChannel), methods, logs.logger('channel'), cfg.log.rateLimitMs)
    : null;
  await control.listen();
  // Served once the daemon is sure to run: a daemon that cannot take its socket has nothing to report.
  if (cfg.metrics.enabled) {
    const m = new MetricsServer(cfg.metrics.listen, cfg.metrics.path, new Metrics(() => tasks.metrics(), () => tasks.readiness().ready, () => channel?.status() ?? null), () => tasks.readiness(), log);
    try {
      await m.start();
      metrics = m;
      metricsState = 'serving';
      log.info({ listen: cfg.metrics.listen, path: cfg.metrics.path }, 'metrics served');
    } catch (e) {
      metricsState = `failed: ${e instanceof Error ? e.message : String(e)}`;
      log.error({ err: metricsState }, 'metrics not served');
    }
  }

  let stopping = false;
  let stop!: (why: string) => void;
  const stopped = new Promise<string>((res) => (stop = res));
  const onSignal = (sig: NodeJS.Signals): void => {
    if (sig === 'SIGHUP') {
      try {
        reload();
      } catch {
        // logged; the configuration in use stays
      }
    }
    else if (!stopping) {
      stopping = true;
      stop(sig);
    }
  };
  process.on('SIGHUP', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  o.signal?.addEventListener('abort', () => onSignal('SIGTERM'), { once: true });

  for (const spec of cfg.tasks) {
    try {
      await tasks.create(spec, { boot: true });
    } catch (e) {
      log.error({ task: spec.id, err: e instanceof Error ? e.message : String(e) }, 'boot task not started');
    }
  }
  tasks.onChange = () => notify.status(statusLine());
  // In the background: a broker that is down or slow never holds up the daemon.
  channel?.start();
  notify.ready(statusLine());
  const stopWatchdog = notify.startWatchdog(() => tasks.healthy());
  log.info({ socket: cfg.control.socket, config: cfg.file, tasks: tasks.ids() }, 'otus daemon ready');

  const why = await stopped;
  log.info({ why }, 'stopping');
  notify.stopping();
  stopWatchdog();
  tasks.onChange = null; // STOPPING=1 is the last word systemd hears
  await control.close();
  await channel?.stop();
  await tasks.stopAll();
  await metrics?.close();
  process.off('SIGHUP', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  log.info('stopped');
}

function idParam(p: Record<string, unknown>): string {
  if (typeof p.id !== 'string' || p.id === '') throw new RpcError(-32602, 'invalid params: expected {id: "<task id>"}');
  return p.id;
}

/** A client's name for YAML text it sent (its file), used in messages only: control characters replaced, cut short. */
function sourceName(v: unknown, fallback: string): string {
  return typeof v === 'string' && v !== '' ? clip(v.replace(/[\u0000-\u001f\u007f]/g, '?'), 256) : fallback;
}
