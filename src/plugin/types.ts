// Plugin interfaces (design §4). A plugin module declares itself, then binds:
// a PluginDefinition carries the metadata the registry validates at load time
// (name, version, kind, labels emitted, config JSON Schema) and an init that
// turns one validated config into an instance of its kind. Built-ins are
// registered statically (builtins.ts); third-party ones are JS modules loaded
// from directories (loader.ts) and validated the same way.

import type { DecodedPacket } from '../decode/packet.js';
import type { OutputRecord, ProcessorView } from '../pipeline/record.js';

export type PluginKind = 'capturer' | 'parser' | 'processor' | 'reporter';
export const PLUGIN_KINDS: readonly PluginKind[] = ['capturer', 'parser', 'processor', 'reporter'];

export interface PluginMeta {
  /** Lowercase, `[a-z][a-z0-9_-]*`; unique per kind. */
  readonly name: string;
  /** Semantic version, `1.2.3` or `1.2.3-pre`. */
  readonly version: string;
  readonly kind: PluginKind;
  /** Label keys the plugin emits (`[a-z0-9][a-z0-9.-]*`; a trailing `*` for a family, e.g. `sip.*`). */
  readonly labels: readonly string[];
  /** JSON Schema of the plugin's `config:`; compiled once by ajv at registration. */
  readonly configSchema: object;
  readonly description?: string;
}

/** What init gets: its own config subtree, validated and with schema defaults applied. */
export interface PluginContext<C = unknown> {
  readonly config: C;
  /** Node metadata from the global config (`otus.node`): ip, hostname, dc, env. */
  readonly node: Readonly<Record<string, string>>;
  /** The task id. */
  readonly taskId: string;
  /** Index of this capture process (0-based); -1 in the sender or supervisor. */
  readonly worker: number;
  /** Where this plugin's config sits, for messages: `FILE: task.processors[0].config`. */
  readonly where: string;
}

/** Lifecycle hooks every instance may have (design §4.1). */
export interface PluginInstance {
  start?(): void | Promise<void>;
  stop?(): void | Promise<void>;
  /** Throws (or rejects) when unhealthy. */
  health?(): void | Promise<void>;
}

/**
 * Parser (design §4.2.2, ADR-007). canHandle must be cheap (ports, a table
 * lookup); the first parser that accepts gets handle(). handle fills the
 * pipeline's one reused record (fillEnvelope, protocol, labels, payload) and
 * returns true to emit it, false for "nothing to output". Neither allocates
 * on a fast path; neither throws on a malformed packet (count it instead).
 */
export interface Parser extends PluginInstance {
  readonly protocol: string;
  canHandle(p: DecodedPacket): boolean;
  handle(p: DecodedPacket, out: OutputRecord, hasTs: boolean, tsDigits: number): boolean;
}

/**
 * Processor (design §4.2.3, ADR-011): sees the envelope and labels only.
 * Returning the view (or anything truthy) passes the record on; returning
 * nothing (undefined, null, false) drops it, counted per processor.
 * Lower priority runs first; equal priorities keep task order.
 */
export interface Processor extends PluginInstance {
  readonly priority: number;
  process(rec: ProcessorView): unknown;
}

/** One encoded record as the sender hands it to a reporter. Valid only during report(). */
export interface EncodedRecord {
  readonly format: RecordFormat;
  readonly buf: Uint8Array;
  readonly off: number;
  readonly len: number;
}

export type RecordFormat = 'json' | 'protobuf';

/** Reporter (design §4.2.4): runs in the sender process, reads everything. */
export interface Reporter extends PluginInstance {
  /** The record encoding this reporter wants the capture processes to produce. */
  readonly format: RecordFormat;
  report(rec: EncodedRecord): void;
  flush(): Promise<void>;
}

/** Capturer (design §4.2.1): the live drivers arrive with the capture-driver issue. */
export interface Capturer extends PluginInstance {
  streams(): number;
}

export interface InstanceOfKind {
  capturer: Capturer;
  parser: Parser;
  processor: Processor;
  reporter: Reporter;
}

export interface PluginDefinition<K extends PluginKind = PluginKind, C = any> {
  readonly meta: PluginMeta & { readonly kind: K };
  /** Builds one instance from a validated config. May be async (third-party plugins). */
  init(ctx: PluginContext<C>): InstanceOfKind[K] | Promise<InstanceOfKind[K]>;
}
