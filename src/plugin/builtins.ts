// Built-in plugins, registered statically (design §4.3.1). Parsers arrive
// with the protocol-parser issue; reporters live in src/sender-proc/.

import filter from '../../plugins/processor/filter/index.js';
import label from '../../plugins/processor/label/index.js';
import sip from '../../plugins/parser/sip/index.js';
import rtp from '../../plugins/parser/rtp/index.js';
import rtcp from '../../plugins/parser/rtcp/index.js';
import dns from '../../plugins/parser/dns/index.js';
import webrtc from '../../plugins/parser/webrtc/index.js';
import http from '../../plugins/parser/http/index.js';
import { fileReporter, stdoutReporter } from '../sender-proc/reporters.js';
import { kafkaReporter } from '../sender-proc/kafka.js';
import { PluginRegistry } from './registry.js';
import { loadPluginDirectories } from './loader.js';

export const BUILTIN_PLUGINS = [filter, label, fileReporter, stdoutReporter, kafkaReporter, sip, rtp, rtcp, dns, webrtc, http] as const;

/** A registry with the built-ins, then the plugins of `dirs` (third-party, validated the same way). */
export async function createRegistry(dirs: readonly string[] = []): Promise<PluginRegistry> {
  const r = new PluginRegistry();
  for (const p of BUILTIN_PLUGINS) r.register(p);
  await loadPluginDirectories(r, dirs);
  return r;
}
