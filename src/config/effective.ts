// What a task and the global configuration come to once their plugins have
// looked at them: the checks the daemon makes before it starts a task (the
// filter compiled, each enabled plugin's config validated against its
// schema and its init run, the reporter found through otus.reporters and its
// merged settings validated), and the effective form with every plugin's
// schema defaults filled in. `otus validate` prints it; the control socket's
// `config.validate` answers with it.

import { CaptureFilter } from '../pipeline/capture-filter.js';
import { instantiateTaskPlugins } from '../pipeline/from-task.js';
import type { PluginRegistry } from '../plugin/registry.js';
import type { PluginKind } from '../plugin/types.js';
import { checkPcapTask } from '../sender-proc/pcap.js';
import { type GlobalConfig, nodeContext, reporterConfigFor } from './global.js';
import { inSchemaOrder } from './schema.js';
import { TASK_BODY_SCHEMA, type TaskSpec } from './task.js';

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
  const out = structuredClone(global.effective);
  const tasks = out.tasks as unknown[];
  for (const t of global.tasks) {
    const e = await effectiveTask(registry, global, t);
    const m = /^otus\.tasks\[(\d+)\]$/.exec(t.path);
    if (m) tasks[Number(m[1])] = e.effective;
  }
  return out;
}
