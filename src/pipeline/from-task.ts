// Builds a capture process's pipeline from a task: its parsers and
// processors instantiated through the registry (configs validated against
// each plugin's schema, init errors coded and naming the plugin).

import type { TaskSpec } from '../config/task.js';
import { Decoder } from '../decode/decoder.js';
import { defaultDecoderOptions } from '../decode/options.js';
import type { PluginRegistry } from '../plugin/registry.js';
import type { Parser, Processor, RecordFormat } from '../plugin/types.js';
import type { FlowRegistry } from '../shm/registry.js';
import { CaptureFilter } from './capture-filter.js';
import { wireEncoder } from './codec.js';
import { Pipeline } from './pipeline.js';
import type { BatchSink } from './batch-sink.js';

export interface TaskPlugins {
  parsers: Parser[];
  parserNames: string[];
  processors: Processor[];
  processorNames: string[];
}

export async function instantiateTaskPlugins(
  registry: PluginRegistry,
  task: TaskSpec,
  node: Record<string, string>,
  worker: number,
  /** The task's flow registry, opened by this process; null where there is none. */
  flows: FlowRegistry | null = null,
  /** The task's capture processes (PluginContext.workers); absent outside a capture process. */
  workers?: number,
): Promise<TaskPlugins> {
  const base = { node, taskId: task.id, worker, flows, ...(workers !== undefined && { workers }) };
  const parsers: Parser[] = [];
  // Each plugin looked up first where the task names it, so "no such plugin" points at its `plugin:`.
  for (const r of task.parsers) {
    await registry.load('parser', r.plugin, r.named);
    parsers.push(await registry.instantiate('parser', r.plugin, r.config, { ...base, where: r.where }));
  }
  const processors: Processor[] = [];
  for (const r of task.processors) {
    await registry.load('processor', r.plugin, r.named);
    processors.push(await registry.instantiate('processor', r.plugin, r.config, { ...base, where: r.where }));
  }
  return {
    parsers,
    parserNames: task.parsers.map((r) => r.plugin),
    processors,
    processorNames: task.processors.map((r, i) => (task.processors.filter((x) => x.plugin === r.plugin).length > 1 ? `${r.plugin}#${i}` : r.plugin)),
  };
}

/**
 * A capture process's pipeline: wire records batched for the send ring,
 * expanded to `format` by the sender. The task's filter runs on each frame
 * here unless `userFilter` is false: live, the kernel runs it on the socket.
 */
export function pipelineForTask(task: TaskSpec, plugins: TaskPlugins, sink: BatchSink, format: RecordFormat, o: { userFilter?: boolean; tcpMaxBytes?: number } = {}): Pipeline {
  return new Pipeline({
    decoder: new Decoder(defaultDecoderOptions()),
    parsers: plugins.parsers,
    parserNames: plugins.parserNames,
    processors: plugins.processors,
    processorNames: plugins.processorNames,
    unmatched: task.unmatchedPolicy,
    encode: wireEncoder(format, sink.keys),
    sink,
    filter: o.userFilter === false ? null : new CaptureFilter(task.filter, task.filterWhere),
    // A fast-path record carries no frame.
    fastPath: !task.raw,
    raw: task.raw,
    ...(o.tcpMaxBytes !== undefined && { tcp: { maxBytes: o.tcpMaxBytes } }),
  });
}
