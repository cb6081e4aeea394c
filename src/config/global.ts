// The global configuration of `otus daemon` (docs/config.md): one YAML file
// with a top-level `otus:`. Read with the size and alias limits of
// src/config/yaml.ts; `${NAME}` expanded in string values (src/config/env.ts);
// validated against GLOBAL_CONFIG_SCHEMA with defaults filled; boot tasks
// (`otus.tasks`, and the task files of `otus.tasks_dir`) checked as tasks.
// Every error is OTUS_ERR_CONFIG: `FILE:LINE: otus.key.path: what was expected`.

import { readdirSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { LogSettings } from '../log/logger.js';
import { OtusError } from '../util/errors.js';
import { expandEnv } from './env.js';
import type { KafkaSasl, KafkaTls } from './kafka-connection.js';
import { GLOBAL_CONFIG_SCHEMA } from './global-schema.js';
import { inSchemaOrder, makeAjv } from './schema.js';
import { loadTaskFile, taskSpec, type TaskSpec } from './task.js';
import { clip, keyPath, type KeyPath, nullsAsAbsent, parseYaml, readLimited, type YamlSource } from './yaml.js';

export interface GlobalConfig {
  /** The file read (absolute when loaded by loadGlobalConfig); null: built-in defaults. */
  file: string | null;
  /** `FILE:LINE` of a key path in the file (`['otus', 'reporters', 'file']`), for messages; `built-in defaults` without a file. */
  at: (segs: KeyPath) => string;
  node: { id: string; hostname: string; ip: string | null; labels: Record<string, string> };
  control: { socket: string; mode: number; group: string | number | null; allowedUids: number[]; allowedGids: number[] };
  resources: { maxWorkers: number; cpus: number[]; flowRegistrySlots: number; ringBytes: number; tcpReassemblyBytes: number };
  supervisor: {
    heartbeatMs: number;
    watchdogMs: number;
    stopTimeoutMs: number;
    restart: { initialMs: number; maxMs: number; healthyMs: number; budget: number; windowMs: number };
  };
  /** Reporter name → its settings, which each task naming it gets under its own `reporter.config`. */
  reporters: Record<string, Record<string, unknown>>;
  /** Boot tasks: `otus.tasks`, then the files of `otus.tasks_dir` (by name). */
  tasks: TaskSpec[];
  /** `otus.command_channel` as in the file (snake_case), defaults filled. */
  commandChannel: CommandChannelConfig;
  metrics: { enabled: boolean; listen: string; path: string };
  log: LogSettings;
  /**
   * The effective configuration: what the file has under `otus:`, in its own snake_case shape, every default
   * filled (`otus validate` prints it under `otus:`). Key paths into it are those of docs/config.md (`log.level`).
   */
  effective: Record<string, unknown>;
}

/** `otus.command_channel` (docs/config.md, "command_channel"). */
export interface CommandChannelConfig {
  enabled: boolean;
  type: 'kafka';
  kafka: {
    brokers: string[];
    topic: string;
    status_topic: string;
    group_id: string;
    client_id: string;
    create_topics: boolean;
    tls?: KafkaTls;
    sasl?: KafkaSasl;
  };
  /** The HMAC key: from a file, or `${NAME}` (src/supervisor/commands.ts reads it); both null: commands need no signature. */
  auth: { key_file: string | null; key: string | null; max_age_ms: number };
  heartbeat_ms: number;
  retry_max_ms: number;
}

export interface GlobalConfigOptions {
  /** Where `${NAME}` is looked up (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Refuse the configuration file, and each task file of tasks_dir, over this many bytes (default 1 MiB). */
  maxBytes?: number;
}

const validateGlobal = makeAjv().compile(GLOBAL_CONFIG_SCHEMA);
const NODE_ID = new RegExp(GLOBAL_CONFIG_SCHEMA.properties.otus.properties.node.properties.id.pattern);

/** The configuration with nothing set: every default. */
export function defaultGlobalConfig(): GlobalConfig {
  return build({}, null, null, {});
}

/** Reads the global configuration file; null gives the defaults. */
export function loadGlobalConfig(file: string | null, opts: GlobalConfigOptions = {}): GlobalConfig {
  if (file === null) return defaultGlobalConfig();
  const abs = resolve(file);
  return parseGlobalConfig(readLimited(abs, 'OTUS_ERR_CONFIG', 'configuration file', opts.maxBytes), abs, opts);
}

/** Validates configuration YAML text; `file` names it in errors, and a relative tasks_dir is taken from its directory. */
export function parseGlobalConfig(text: string, file: string, opts: GlobalConfigOptions = {}): GlobalConfig {
  const { src, data } = parseYaml(text, file, 'OTUS_ERR_CONFIG', 'configuration file', opts.maxBytes);
  // Checked before expansion: a key written inline would be readable by whoever reads the file.
  const key = (data as { otus?: { command_channel?: { auth?: { key?: unknown } } } } | null)?.otus?.command_channel?.auth?.key;
  if (typeof key === 'string' && !/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(key)) {
    throw src.error(['otus', 'command_channel', 'auth', 'key'], 'must be ${NAME}, an environment variable holding the key, or use key_file: never the key itself in this file');
  }
  const env = opts.env ?? process.env;
  const expanded = expandEnv(data, {
    env,
    fail: (segs, msg) => {
      throw src.error(segs, msg);
    },
    isPlain: (segs) => src.isPlain(segs),
  });
  return build(expanded, file, src, opts);
}

type Obj = Record<string, unknown>;

function build(data: unknown, file: string | null, src: YamlSource | null, opts: GlobalConfigOptions): GlobalConfig {
  const fail = (segs: KeyPath, msg: string): never => {
    throw src ? src.error(segs, msg) : new OtusError('OTUS_ERR_CONFIG', `built-in defaults: ${keyPath(segs)}: ${msg}`);
  };
  // An empty file, or `otus:` with everything under it commented out: the defaults.
  const root = nullsAsAbsent(GLOBAL_CONFIG_SCHEMA, data ?? {});
  const mode = (root as { otus?: { control?: { mode?: unknown } } } | null)?.otus?.control?.mode;
  if (typeof mode === 'number') fail(['otus', 'control', 'mode'], `must be a quoted octal string such as "0660" (unquoted, YAML reads it as the number ${mode})`);
  if (!validateGlobal(root)) {
    if (src) throw src.schemaError(validateGlobal);
    throw new OtusError('OTUS_ERR_CONFIG', `built-in defaults do not validate: ${JSON.stringify(validateGlobal.errors?.[0])}`);
  }
  const o = (root as { otus: Obj }).otus;
  const node = o.node as Obj;
  const control = o.control as Obj;
  const resources = o.resources as Obj;
  const sup = o.supervisor as Obj;
  const restart = sup.restart as Obj;
  const cc = o.command_channel as CommandChannelConfig;
  const metrics = o.metrics as GlobalConfig['metrics'];
  const log = o.log as { level: LogSettings['level']; format: LogSettings['format']; rate_limit_ms: number; outputs: Obj };

  // Defaults that depend on the machine.
  node.hostname ??= os.hostname();
  if (node.id === undefined) {
    node.id = node.hostname;
    if (!NODE_ID.test(node.id as string)) {
      fail(['otus', 'node', 'id'], `the default, the hostname "${clip(node.id as string)}", is not a node id (1 to 64 of A-Z a-z 0-9 _ . -, not starting with _ . -): set otus.node.id`);
    }
  }
  cc.kafka.group_id ??= `otus-${node.id as string}`;
  cc.kafka.client_id ??= `otus-${node.id as string}`;

  // What a schema cannot say.
  if (node.ip !== null && isIP(node.ip as string) === 0) fail(['otus', 'node', 'ip'], `"${clip(node.ip as string)}" is not an IPv4 or IPv6 address`);
  if (Buffer.byteLength(control.socket as string) > 107) fail(['otus', 'control', 'socket'], 'a Unix socket path holds at most 107 bytes');
  if ((sup.watchdog_ms as number) <= (sup.heartbeat_ms as number)) {
    fail(['otus', 'supervisor', 'watchdog_ms'], `must be more than heartbeat_ms (${sup.heartbeat_ms as number}): a child is killed after this long without a heartbeat`);
  }
  if ((restart.initial_ms as number) > (restart.max_ms as number)) {
    fail(['otus', 'supervisor', 'restart', 'initial_ms'], `must be at most max_ms (${restart.max_ms as number})`);
  }
  if (cc.enabled && cc.kafka.brokers.length === 0) {
    fail(['otus', 'command_channel', 'kafka', 'brokers'], 'must name at least one broker when command_channel.enabled is true');
  }
  if (cc.auth.key !== null && cc.auth.key_file !== null) fail(['otus', 'command_channel', 'auth', 'key'], 'give key or key_file, not both');
  if (cc.kafka.topic === cc.kafka.status_topic) fail(['otus', 'command_channel', 'kafka', 'status_topic'], `must differ from topic (${cc.kafka.topic}): the daemon would read its own answers`);
  const port = Number(/:([0-9]+)$/.exec(metrics.listen)?.[1]);
  if (port < 1 || port > 65535) fail(['otus', 'metrics', 'listen'], `port ${port}: must be 1 to 65535`);
  const group = control.group as string | number | null;

  // Boot tasks: inline, then the files of tasks_dir by name.
  const where = file ?? 'built-in defaults';
  const tasks = (o.tasks as Obj[]).map((t, i) => taskSpec(t, where, `otus.tasks[${i}]`, (sub) => (src ? src.at(['otus', 'tasks', i, ...sub]) : where)));
  const seen = new Map<string, string>();
  tasks.forEach((t, i) => {
    const prev = seen.get(t.id);
    if (prev !== undefined) fail(['otus', 'tasks', i, 'id'], `duplicate task id "${t.id}" (also ${prev})`);
    seen.set(t.id, `otus.tasks[${i}]${src ? ` at ${src.at(['otus', 'tasks', i, 'id'])}` : ''}`);
  });
  if (o.tasks_dir !== null) {
    const dir = resolve(file === null ? '.' : dirname(file), o.tasks_dir as string);
    o.tasks_dir = dir;
    for (const f of taskFiles(dir, (msg) => fail(['otus', 'tasks_dir'], msg))) {
      let t: TaskSpec;
      try {
        t = loadTaskFile(f, { maxBytes: opts.maxBytes });
      } catch (e) {
        if (!(e instanceof OtusError)) throw e;
        throw new OtusError('OTUS_ERR_CONFIG', `${e.message} (a boot task from otus.tasks_dir of ${src ? src.at(['otus', 'tasks_dir']) : where})`, { cause: e });
      }
      const prev = seen.get(t.id);
      if (prev !== undefined) throw new OtusError('OTUS_ERR_CONFIG', `${f}: task.id: duplicate task id "${t.id}" (also ${prev})`);
      seen.set(t.id, f);
      tasks.push(t);
    }
  }

  const effective = inSchemaOrder(GLOBAL_CONFIG_SCHEMA.properties.otus, o) as Obj;
  return {
    file,
    at: (segs) => (src ? src.at(segs) : (file ?? 'built-in defaults')),
    node: { id: node.id as string, hostname: node.hostname as string, ip: node.ip as string | null, labels: { ...(node.labels as Record<string, string>) } },
    control: {
      socket: control.socket as string,
      mode: parseInt(control.mode as string, 8),
      group: typeof group === 'string' && /^[0-9]+$/.test(group) ? Number(group) : group,
      allowedUids: [...(control.allowed_uids as number[])],
      allowedGids: [...(control.allowed_gids as number[])],
    },
    resources: {
      maxWorkers: resources.max_workers as number,
      cpus: [...(resources.cpus as number[])],
      flowRegistrySlots: resources.flow_registry_slots as number,
      ringBytes: resources.ring_bytes as number,
      tcpReassemblyBytes: resources.tcp_reassembly_bytes as number,
    },
    supervisor: {
      heartbeatMs: sup.heartbeat_ms as number,
      watchdogMs: sup.watchdog_ms as number,
      stopTimeoutMs: sup.stop_timeout_ms as number,
      restart: {
        initialMs: restart.initial_ms as number,
        maxMs: restart.max_ms as number,
        healthyMs: restart.healthy_ms as number,
        budget: restart.budget as number,
        windowMs: restart.window_ms as number,
      },
    },
    reporters: structuredClone(o.reporters as GlobalConfig['reporters']),
    tasks,
    commandChannel: structuredClone(cc),
    metrics: { ...metrics },
    log: logSettings(log),
    effective,
  };
}

/** `otus.log` (snake_case, defaults filled) as the log module takes it. */
function logSettings(log: { level: LogSettings['level']; format: LogSettings['format']; rate_limit_ms: number; outputs: Obj }): LogSettings {
  const out = log.outputs as { stderr?: Obj; stdout?: Obj; file?: Obj; loki?: Obj };
  const f = out.file;
  const l = out.loki;
  return {
    level: log.level,
    format: log.format,
    rateLimitMs: log.rate_limit_ms,
    outputs: {
      ...(out.stderr && { stderr: {} }),
      ...(out.stdout && { stdout: {} }),
      ...(f && { file: { path: f.path as string, sizeBytes: f.size_bytes as number, intervalMs: f.interval_ms as number | null, count: f.count as number } }),
      ...(l && {
        loki: {
          endpoint: l.endpoint as string,
          labels: { ...(l.labels as Record<string, string>) },
          headers: { ...(l.headers as Record<string, string>) },
          batchSize: l.batch_size as number,
          batchTimeoutMs: l.batch_timeout_ms as number,
          maxBufferBytes: l.max_buffer_bytes as number,
          timeoutMs: l.timeout_ms as number,
        },
      }),
    },
  };
}

/** The *.yml and *.yaml files of a directory, by name. */
function taskFiles(dir: string, fail: (msg: string) => never): string[] {
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true })
      .filter((d) => (d.isFile() || d.isSymbolicLink()) && /\.ya?ml$/.test(d.name))
      .map((d) => d.name);
  } catch (e) {
    fail(`cannot read directory ${dir} (${(e as Error).message})`);
  }
  return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((n) => join(dir, n));
}

/** Node metadata for plugins (PluginContext.node; the label processor adds it to records): the labels, hostname and ip. */
export function nodeContext(g: GlobalConfig): Record<string, string> {
  return { ...g.node.labels, hostname: g.node.hostname, ...(g.node.ip !== null ? { ip: g.node.ip } : {}) };
}

/**
 * The reporter a task runs and its settings: `otus.reporters[name]` with the
 * task's `reporter.config` merged over it (objects key by key, recursively;
 * anything else the task sets replaces). A task without a reporter gets
 * `console`. OTUS_ERR_TASK when the global configuration does not define it.
 */
export function reporterConfigFor(g: GlobalConfig, task: TaskSpec): { name: string; config: Record<string, unknown>; where: string; named: string } {
  const name = task.reporter?.plugin ?? 'console';
  const base = Object.hasOwn(g.reporters, name) ? g.reporters[name] : undefined;
  if (base === undefined) {
    const at = task.reporter ? `${task.reporter.at}: ${task.path}.reporter.type` : `${task.file}: ${task.path}`;
    const defined = Object.keys(g.reporters);
    throw new OtusError(
      'OTUS_ERR_TASK',
      `${at}: task "${task.id}" ${task.reporter ? 'names' : 'names no reporter, so it uses'} reporter "${clip(name)}", which the global configuration ` +
        `(${g.file ?? 'built-in defaults'}) does not define under otus.reporters (defined: ${defined.length ? defined.join(', ') : 'none'})`,
    );
  }
  // Ends in a key path: a reporter's schema error appends its own (`...reporter.config.path: is required`).
  const globalAt = `${g.file ?? 'built-in defaults'}: otus.reporters.${name}`;
  const where = task.reporter ? `${globalAt} merged under ${task.reporter.where}` : globalAt;
  return { name, config: mergeConfig(base, task.reporter?.config ?? {}), where, named: task.reporter?.named ?? globalAt };
}

function isPlainObject(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `over` merged into a copy of `base`: objects key by key, recursively; anything else in `over` replaces. */
export function mergeConfig(base: Obj, over: Obj): Obj {
  const out = structuredClone(base);
  for (const [k, v] of Object.entries(over)) {
    const cur = Object.hasOwn(out, k) ? out[k] : undefined;
    const val = isPlainObject(cur) && isPlainObject(v) ? mergeConfig(cur, v) : structuredClone(v);
    // defineProperty: a key named __proto__ stays a key.
    Object.defineProperty(out, k, { value: val, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
