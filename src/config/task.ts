// Task files (design §4.4.2): YAML with one top-level `task:`. Loaded with
// `yaml`, validated with ajv against TASK_SCHEMA; every error is
// OTUS_ERR_TASK naming the file, the key path and its line
// (`task.yml:12: task.processors[0].plugin: is required`). Plugin configs
// are validated later against each plugin's own schema, with `where`
// naming the same file and path.

import { readFileSync } from 'node:fs';
import { isNode, LineCounter, parseDocument } from 'yaml';
import type { TaskFilter } from '../pipeline/capture-filter.js';
import type { UnmatchedPolicy } from '../pipeline/unmatched.js';
import { OtusError } from '../util/errors.js';
import { describeAjvError, makeAjv } from './schema.js';

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

export const TASK_SCHEMA = {
  type: 'object',
  required: ['task'],
  additionalProperties: false,
  properties: {
    task: {
      type: 'object',
      required: ['id'],
      additionalProperties: false,
      properties: {
        id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
        capture: {
          type: 'object',
          additionalProperties: false,
          properties: {
            driver: { enum: ['af_packet_v3', 'xdp', 'pcap'] },
            interface: { type: 'string' },
            workers: { type: 'integer', minimum: 0, maximum: 256 },
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
      },
    },
  },
} as const;

export interface PluginRef {
  plugin: string;
  config: Record<string, unknown>;
  /** `FILE: task.processors[0].config`, for error messages. */
  where: string;
}

export interface TaskSpec {
  file: string;
  id: string;
  /** task.capture.workers; null when absent (0 means auto). */
  workers: number | null;
  /** task.capture.driver and .interface (live runs); null when absent. */
  driver: string | null;
  interface: string | null;
  filter: TaskFilter;
  parsers: PluginRef[];
  processors: PluginRef[];
  reporter: PluginRef | null;
  unmatchedPolicy: UnmatchedPolicy;
}

const validateTask = makeAjv().compile(TASK_SCHEMA);

/** Reads and validates a task file. */
export function loadTaskFile(file: string): TaskSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new OtusError('OTUS_ERR_TASK', `${file}: cannot read task file (${(e as Error).message})`);
  }
  return parseTask(text, file);
}

interface AjvLikeError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
}

/** Validates task YAML text; `file` names it in errors. */
export function parseTask(text: string, file: string): TaskSpec {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = lc.linePos(e.pos[0]).line;
    throw new OtusError('OTUS_ERR_TASK', `${file}${line ? `:${line}` : ''}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const data: unknown = doc.toJS();
  if (!validateTask(data)) {
    const err = validateTask.errors?.[0] as AjvLikeError | undefined;
    const segs: (string | number)[] = err ? err.instancePath.split('/').slice(1).map((s) => (/^\d+$/.test(s) ? Number(s) : s)) : [];
    // An unknown key: point at the key itself.
    if (err?.keyword === 'additionalProperties') segs.push(String(err.params.additionalProperty));
    let line: number | undefined;
    for (let n = segs.length; n >= 0 && line === undefined; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(segs.slice(0, n), true);
      if (isNode(node) && node.range) line = lc.linePos(node.range[0]).line;
    }
    throw new OtusError('OTUS_ERR_TASK', `${file}${line ? `:${line}` : ''}: ${describeAjvError('', validateTask.errors).replace(/^\./, '').replace(/^:/, 'top level:')}`);
  }
  const t = (data as { task: Record<string, unknown> }).task;
  const refs = (key: 'parsers' | 'processors'): PluginRef[] =>
    ((t[key] as { plugin: string; enabled: boolean; config?: Record<string, unknown> }[] | undefined) ?? [])
      .map((r, i) => ({ r, i }))
      .filter(({ r }) => r.enabled)
      .map(({ r, i }) => ({ plugin: r.plugin, config: r.config ?? {}, where: `${file}: task.${key}[${i}].config` }));
  const rep = t.reporter as { type: string; config?: Record<string, unknown> } | undefined;
  return {
    file,
    id: t.id as string,
    workers: (t.capture as { workers?: number } | undefined)?.workers ?? null,
    driver: (t.capture as { driver?: string } | undefined)?.driver ?? null,
    interface: (t.capture as { interface?: string } | undefined)?.interface ?? null,
    filter: (t.filter as TaskFilter | undefined) ?? {},
    parsers: refs('parsers'),
    processors: refs('processors'),
    reporter: rep ? { plugin: rep.type, config: rep.config ?? {}, where: `${file}: task.reporter.config` } : null,
    unmatchedPolicy: t.unmatched_policy as UnmatchedPolicy,
  };
}
