// Task files (docs/task-format.md): YAML with one top-level `task:`. Loaded with
// `yaml`, validated with ajv against TASK_SCHEMA; every error is
// OTUS_ERR_TASK naming the file, the key path and its line
// (`task.yml:12: task.processors[0].plugin: is required`). Plugin configs
// are validated later against each plugin's own schema, with `where`
// naming the same file and path. Files over 1 MiB and alias bombs are
// refused (src/config/yaml.ts).

import type { TaskFilter } from '../pipeline/capture-filter.js';
import type { UnmatchedPolicy } from '../pipeline/unmatched.js';
import { OtusError } from '../util/errors.js';
import { inSchemaOrder, makeAjv, rootAjvError } from './schema.js';
import { clip, type KeyPath, nullsAsAbsent, parseYaml, readLimited } from './yaml.js';

/** The most senders a task may run (`senders`): each is a process with its own send ring. */
export const MAX_SENDERS = 16;

const PLUGIN_REF = {
  type: 'object',
  required: ['plugin'],
  properties: {
    plugin: { type: 'string', minLength: 1 },
    enabled: { type: 'boolean', default: true },
    config: { type: 'object' },
  },
  additionalProperties: false,
} as const;

/** What a task file has under `task:` (and each of the global configuration's `otus.tasks`). */
export const TASK_BODY_SCHEMA = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: {
    // At most 64 bytes: the id names the task's shared-memory segments.
    id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
    capture: {
      type: 'object',
      additionalProperties: false,
      properties: {
        driver: { enum: ['af_packet_v3', 'xdp', 'pcap'] },
        interface: { type: 'string' },
        workers: { type: 'integer', minimum: 0, maximum: 256 },
        // The kernel's buffer of each capture process (af_packet_v3 ring, libpcap buffer): 1 MiB to 1 GiB.
        buffer_bytes: { type: 'integer', minimum: 1_048_576, maximum: 1_073_741_824 },
        retire_ms: { type: 'integer', minimum: 1, maximum: 60000 },
        // xdp on an interface that carries the host's own traffic (lo, an address, a bridge port): refused unless true.
        xdp_steal: { type: 'boolean', default: false },
      },
    },
    filter: {
      type: 'object',
      additionalProperties: false,
      properties: {
        src_ip: { type: 'array', items: { type: 'string' } },
        dst_ip: { type: 'array', items: { type: 'string' } },
        ports: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 65535 } },
        port_range: { type: 'string' },
        protocol: { enum: ['udp', 'tcp', 'any'] },
        bpf: { type: 'string' },
      },
    },
    parsers: { type: 'array', items: PLUGIN_REF },
    processors: { type: 'array', items: PLUGIN_REF },
    reporter: {
      type: 'object',
      required: ['type'],
      additionalProperties: false,
      properties: { type: { type: 'string', minLength: 1 }, config: { type: 'object' } },
    },
    unmatched_policy: { enum: ['forward', 'drop'], default: 'forward' },
    // Send rings, each with its own sender process (docs/task-format.md); bounded by the stats segment's slots.
    senders: { type: 'integer', minimum: 1, maximum: MAX_SENDERS },
    // Every record carries its frame (the pcap reporter writes them); such records leave the fast path.
    raw: { type: 'boolean' },
    // VoIP outputs beside the per-message records: `calls` turns on the sip parser's call records (sip.call).
    sip: {
      type: 'object',
      additionalProperties: false,
      properties: { calls: { type: 'boolean', default: false } },
    },
    // `stats` turns on the rtp parser's per-stream statistics (rtp.stats); its keys are the parser's own `stats`.
    rtp: {
      type: 'object',
      additionalProperties: false,
      properties: {
        stats: {
          type: 'object',
          additionalProperties: false,
          properties: {
            interval: { type: 'number', exclusiveMinimum: 0 },
            per_packet: { type: 'boolean' },
            max_streams: { type: 'integer', minimum: 4, maximum: 1048576 },
            idle: { type: 'number', exclusiveMinimum: 0 },
          },
        },
      },
    },
  },
} as const;

export const TASK_SCHEMA = {
  type: 'object',
  required: ['task'],
  additionalProperties: false,
  properties: { task: TASK_BODY_SCHEMA },
} as const;

export interface PluginRef {
  plugin: string;
  config: Record<string, unknown>;
  /** `FILE:LINE: task.processors[0].config` (no line for a task given as values), for error messages. */
  where: string;
  /** `FILE:LINE` of the reference itself (its `plugin:`, or the reporter's `type:`), for messages about the choice of plugin. */
  at: string;
  /** `FILE:LINE: task.parsers[0].plugin` (or `...reporter.type`): where the plugin is named, for "no such plugin". */
  named: string;
}

export interface TaskSpec {
  /** The task file, or what the task came from (the global configuration file, `task.create`...). */
  file: string;
  /** The key path of the task's body in messages: `task`, or `otus.tasks[1]` for a boot task. */
  path: string;
  id: string;
  /** task.capture.workers; null when absent (0 means auto). */
  workers: number | null;
  /** task.capture.driver and .interface (live runs); null when absent. */
  driver: string | null;
  interface: string | null;
  /** `FILE:LINE: task.capture.interface`, for messages about the interface the task names. */
  interfaceWhere: string;
  /** task.capture.xdp_steal: the xdp driver may take an interface that carries host traffic (src/capture/xdp.ts). */
  xdpSteal: boolean;
  /** task.capture.buffer_bytes: the kernel's buffer of each capture process; null: the driver's default. */
  bufferBytes: number | null;
  /** task.capture.retire_ms: af_packet_v3 hands over a partly filled block after this; null: the driver's default (10 ms). */
  retireMs: number | null;
  filter: TaskFilter;
  /** `FILE:LINE: task.filter`, for CaptureFilter's messages. */
  filterWhere: string;
  parsers: PluginRef[];
  processors: PluginRef[];
  reporter: PluginRef | null;
  unmatchedPolicy: UnmatchedPolicy;
  /** `senders`: send rings, each with its own sender (1 when absent); capture process i writes ring i mod senders. */
  senders: number;
  /** task.raw: every record carries the frame it was made from (docs/records.md `raw`). */
  raw: boolean;
  /** The body as validated (what a task file has under `task:`), schema defaults filled; plugin configs as written. */
  effective: Record<string, unknown>;
}

export interface TaskReadOptions {
  /** Refuse files larger than this (default MAX_FILE_BYTES, 1 MiB). */
  maxBytes?: number;
}

const validateTask = makeAjv().compile(TASK_SCHEMA);

/** Reads and validates a task file. */
export function loadTaskFile(file: string, opts: TaskReadOptions = {}): TaskSpec {
  return parseTask(readLimited(file, 'OTUS_ERR_TASK', 'task file', opts.maxBytes), file, opts);
}

/** Validates task YAML text; `file` names it in errors. */
export function parseTask(text: string, file: string, opts: TaskReadOptions = {}): TaskSpec {
  const { src, data } = parseYaml(text, file, 'OTUS_ERR_TASK', 'task file', opts.maxBytes);
  const d = nullsAsAbsent(TASK_SCHEMA, data);
  if (!validateTask(d)) throw src.schemaError(validateTask);
  return taskSpec((d as { task: Record<string, unknown> }).task, file, 'task', (sub) => src.at(['task', ...sub]));
}

/**
 * A task given as values (`task.create` over the control socket): `{task: {...}}`
 * or the body alone. Not modified. Errors are OTUS_ERR_TASK naming `where` and the key path.
 */
export function taskFromObject(data: unknown, where: string): TaskSpec {
  let copy: unknown;
  try {
    copy = structuredClone(data);
  } catch (e) {
    throw new OtusError('OTUS_ERR_TASK', `${where}: a task must be plain data (${clip((e as Error).message)})`);
  }
  const wrapped = nullsAsAbsent(TASK_SCHEMA, copy !== null && typeof copy === 'object' && !Array.isArray(copy) && 'task' in copy ? copy : { task: copy });
  if (!validateTask(wrapped)) throw new OtusError('OTUS_ERR_TASK', `${where}: ${rootAjvError(validateTask.errors)}`);
  return taskSpec((wrapped as { task: Record<string, unknown> }).task, where, 'task');
}

/**
 * A TaskSpec from a body that passed TASK_BODY_SCHEMA (defaults filled); `path`
 * names the body in messages, and `at` gives `FILE:LINE` for a key under it.
 */
export function taskSpec(t: Record<string, unknown>, file: string, path: string, at: (sub: KeyPath) => string = () => file): TaskSpec {
  const effective = inSchemaOrder(TASK_BODY_SCHEMA, t) as Record<string, unknown>;
  const refs = (key: 'parsers' | 'processors'): PluginRef[] =>
    ((t[key] as { plugin: string; enabled: boolean; config?: Record<string, unknown> }[] | undefined) ?? [])
      .map((r, i) => ({ r, i }))
      .filter(({ r }) => r.enabled)
      .map(({ r, i }) => ({
        plugin: r.plugin,
        config: r.config ?? {},
        where: `${at([key, i, 'config'])}: ${path}.${key}[${i}].config`,
        at: at([key, i, 'plugin']),
        named: `${at([key, i, 'plugin'])}: ${path}.${key}[${i}].plugin`,
      }));
  const parsers = refs('parsers');
  // Task keys that set a parser's config key (docs/task-format.md, "sip", "rtp").
  const lift = (plugin: 'sip' | 'rtp', key: 'calls' | 'stats', on: (v: unknown) => boolean, what: string): void => {
    const v = (t[plugin] as Record<string, unknown> | undefined)?.[key];
    if (v === undefined) return;
    const where = `${at([plugin, key])}: ${path}.${plugin}.${key}`;
    const own = parsers.filter((r) => r.plugin === plugin);
    if (on(v) && own.length === 0) throw new OtusError('OTUS_ERR_TASK', `${where}: ${what} need the ${plugin} parser in ${path}.parsers`);
    for (const r of own) {
      const c = r.config[key];
      if (c !== undefined && JSON.stringify(c) !== JSON.stringify(v)) {
        throw new OtusError('OTUS_ERR_TASK', `${where}: is ${JSON.stringify(v)}, but ${r.where.split(': ').pop()}.${key} is ${JSON.stringify(c)}`);
      }
      r.config = { ...r.config, [key]: v };
    }
  };
  lift('sip', 'calls', (v) => v === true, 'call records');
  lift('rtp', 'stats', () => true, 'stream statistics');
  const rep = t.reporter as { type: string; config?: Record<string, unknown> } | undefined;
  const capture = t.capture as { workers?: number; driver?: string; interface?: string; xdp_steal?: boolean; buffer_bytes?: number; retire_ms?: number } | undefined;
  return {
    file,
    path,
    id: t.id as string,
    workers: capture?.workers ?? null,
    driver: capture?.driver ?? null,
    interface: capture?.interface ?? null,
    interfaceWhere: `${at(['capture', 'interface'])}: ${path}.capture.interface`,
    xdpSteal: capture?.xdp_steal === true,
    bufferBytes: capture?.buffer_bytes ?? null,
    retireMs: capture?.retire_ms ?? null,
    filter: (t.filter as TaskFilter | undefined) ?? {},
    filterWhere: `${at(['filter'])}: ${path}.filter`,
    parsers,
    processors: refs('processors'),
    reporter: rep
      ? { plugin: rep.type, config: rep.config ?? {}, where: `${at(['reporter', 'config'])}: ${path}.reporter.config`, at: at(['reporter', 'type']), named: `${at(['reporter', 'type'])}: ${path}.reporter.type` }
      : null,
    unmatchedPolicy: t.unmatched_policy as UnmatchedPolicy,
    senders: (t.senders as number | undefined) ?? 1,
    raw: t.raw === true,
    effective,
  };
}
