// What a task and the global configuration come to once their plugins have
// looked at them: the checks the daemon makes before it starts a task (the
// filter compiled, each enabled plugin's config validated against its
// schema and its init run, the reporter found through otus.reporters and its
// merged settings validated), and the effective form with every plugin's
// schema defaults filled in. `otus validate` prints it; the control socket's
// `config.validate` answers with it.

import type { ValidateFunction } from 'ajv';
import { CaptureFilter } from '../pipeline/capture-filter.js';
import { instantiateTaskPlugins } from '../pipeline/from-task.js';
import type { PluginRegistry, RegisteredPlugin } from '../plugin/registry.js';
import type { PluginKind } from '../plugin/types.js';
import { checkPcapTask } from '../sender-proc/pcap.js';
import { OtusError } from '../util/errors.js';
import { type GlobalConfig, nodeContext, reporterConfigFor } from './global.js';
import { describeAjvError, inSchemaOrder, makeAjv } from './schema.js';
import { TASK_BODY_SCHEMA, type TaskSpec } from './task.js';
import { ajvErrorSegments } from './yaml.js';

export interface EffectiveTask {
  /** The task's body (what a task file has under `task:`), plugin configs with their defaults, the reporter with its merged settings. */
  effective: Record<string, unknown>;
  /** The reporter the task runs, its settings validated by the reporter plugin (defaults filled). */
  reporter: { name: string; config: Record<string, unknown>; where: string };
}

type Ref = { plugin: string; enabled: boolean; config?: Record<string, unknown> };

/** Checks a task as the daemon would start it under `global`; throws the plugin's or the task's coded error. */
export async function effectiveTask(registry: PluginRegistry, global: GlobalConfig, task: TaskSpec): Promise<EffectiveTask> {
  new CaptureFilter(task.filter, task.filterWhere);
  const plugins = await instantiateTaskPlugins(registry, task, nodeContext(global), -1);
  for (const p of [...plugins.parsers, ...plugins.processors]) await p.stop?.();
  const effective = structuredClone(task.effective);
  const kinds: [key: 'parsers' | 'processors', kind: PluginKind][] = [
    ['parsers', 'parser'],
    ['processors', 'processor'],
  ];
  for (const [key, kind] of kinds) {
    // TaskSpec lists the enabled ones, in order: pair them up.
    const enabled = ((effective[key] as Ref[] | undefined) ?? []).filter((r) => r.enabled);
    enabled.forEach((r, i) => {
      const ref = task[key][i];
      r.config = registry.checkConfig(registry.require(kind, ref.plugin, ref.named), ref.config, ref.where) as Record<string, unknown>;
    });
  }
  const rep = reporterConfigFor(global, task);
  const config = registry.checkConfig(await registry.load('reporter', rep.name, rep.named), rep.config, rep.where) as Record<string, unknown>;
  checkPcapTask(rep.name, rep.where, task);
  effective.reporter = { type: rep.name, config };
  return { effective: inSchemaOrder(TASK_BODY_SCHEMA, effective) as Record<string, unknown>, reporter: { ...rep, config } };
}

/**
 * The effective configuration (`global.effective`) with each inline boot
 * task in its effective form; the boot tasks of tasks_dir are checked too
 * (they are not part of the file's shape: `otus validate --task FILE` shows one).
 */
export async function effectiveConfig(registry: PluginRegistry, global: GlobalConfig): Promise<Record<string, unknown>> {
  checkReporterSettings(registry, global);
  const out = structuredClone(global.effective);
  const tasks = out.tasks as unknown[];
  for (const t of global.tasks) {
    const e = await effectiveTask(registry, global, t);
    const m = /^otus\.tasks\[(\d+)\]$/.exec(t.path);
    if (m) tasks[Number(m[1])] = e.effective;
  }
  return out;
}

/**
 * `otus.reporters`: each a reporter plugin there is, its settings what the
 * plugin's schema allows (keys, types, values), though not yet whole: a
 * task's `reporter.config` completes them (`path`, `topic`...), so what only a
 * whole config must have (required keys, if/then) waits for the merge. A
 * misspelt name or setting is an error when the file is loaded (start,
 * reload, `otus validate`), not when a task first names the reporter.
 * Reporters of the plugin directories are checked when first used.
 */
export function checkReporterSettings(registry: PluginRegistry, g: GlobalConfig): void {
  for (const [name, settings] of Object.entries(g.reporters)) {
    const key = `otus.reporters.${name}`;
    const p = registry.get('reporter', name);
    if (p === undefined) {
      if (registry.has('reporter', name)) continue;
      registry.require('reporter', name, `${g.at(['otus', 'reporters', name])}: ${key}`); // throws, naming the known ones
      continue;
    }
    const validate = partialValidator(p);
    if (!validate(structuredClone(settings))) {
      throw new OtusError('OTUS_ERR_CONFIG', `${g.at(['otus', 'reporters', name, ...ajvErrorSegments(validate)])}: ${describeAjvError(key, validate.errors)}`);
    }
  }
}

const partialValidators = new WeakMap<RegisteredPlugin, ValidateFunction>();

function partialValidator(p: RegisteredPlugin): ValidateFunction {
  let v = partialValidators.get(p);
  if (v === undefined) {
    v = makeAjv().compile(partialSchema(p.meta.configSchema) as object);
    partialValidators.set(p, v);
  }
  return v;
}

/** A config schema without what only a whole config must have: `required`, and `if`/`then`/`else` (which say what is required when). */
function partialSchema(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(partialSchema);
  if (s === null || typeof s !== 'object') return s;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s as Record<string, unknown>)) {
    if (k === 'required' || k === 'if' || k === 'then' || k === 'else' || k === 'dependentRequired') continue;
    if (k === 'properties' || k === 'patternProperties') out[k] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([n, x]) => [n, partialSchema(x)]));
    else if (k === 'default' || k === 'enum' || k === 'const' || k === 'examples') out[k] = v;
    else out[k] = partialSchema(v);
  }
  return out;
}
