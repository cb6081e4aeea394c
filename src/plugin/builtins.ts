// Built-in plugins, registered statically; reporters live in src/sender-proc/.

import filter from '../../plugins/processor/filter/index.js';
import label from '../../plugins/processor/label/index.js';
import sip from '../../plugins/parser/sip/index.js';
import rtp from '../../plugins/parser/rtp/index.js';
import rtcp from '../../plugins/parser/rtcp/index.js';
import dns from '../../plugins/parser/dns/index.js';
import webrtc from '../../plugins/parser/webrtc/index.js';
import http from '../../plugins/parser/http/index.js';
import type { TaskSpec } from '../config/task.js';
import { fileReporter, stdoutReporter } from '../sender-proc/reporters.js';
import { kafkaReporter } from '../sender-proc/kafka.js';
import { hepReporter } from '../sender-proc/hep.js';
import { grpcReporter } from '../sender-proc/grpc.js';
import { otlpReporter } from '../sender-proc/otlp.js';
import { pcapReporter } from '../sender-proc/pcap.js';
import { OtusError } from '../util/errors.js';
import { PluginRegistry } from './registry.js';
import { PluginDirectories } from './loader.js';

export const BUILTIN_PLUGINS = [filter, label, fileReporter, stdoutReporter, kafkaReporter, hepReporter, grpcReporter, otlpReporter, pcapReporter, sip, rtp, rtcp, dns, webrtc, http] as const;

/**
 * A registry with the built-ins, and the plugin directories `dirs` checked
 * (src/plugin/loader.ts: OTUS_ERR_PLUGIN_UNSAFE) but nothing imported from
 * them: a third-party plugin is imported when a task names it (load,
 * instantiate). A plugin there named like a built-in is refused: it would
 * never be loaded.
 */
export async function createRegistry(dirs: readonly string[] = []): Promise<PluginRegistry> {
  const third = dirs.length > 0 ? new PluginDirectories(dirs) : null;
  const r = new PluginRegistry(third);
  for (const p of BUILTIN_PLUGINS) r.register(p, 'built-in', true);
  for (const p of BUILTIN_PLUGINS) {
    if (third?.has(p.meta.name)) {
      throw new OtusError('OTUS_ERR_PLUGIN_DUPLICATE', `${third.fileOf(p.meta.name)}: named like the built-in ${p.meta.kind} plugin "${p.meta.name}", which it cannot replace`);
    }
  }
  return r;
}

/** Imports the third-party parsers a task names (the sender reads their records' payloads; built-ins are there already). */
export async function loadTaskParsers(r: PluginRegistry, task: TaskSpec): Promise<void> {
  for (const ref of task.parsers) await r.load('parser', ref.plugin, ref.where);
}
