// The plugin registry (fastify's plugin-utils as the model):
// register() validates a definition's metadata and compiles its config
// schema once (a built-in's when first used: each compiled schema is code,
// ~0.3 MiB a process for the ones a task does not use), then gives it an id; instantiate() validates one config
// against that schema (defaults applied), calls init, and checks that what
// came back is an instance of the declared kind. Every failure is an
// OtusError with an OTUS_ERR_PLUGIN_* code and a message naming the plugin.
// Third-party plugins come from its PluginDirectories, imported by load()
// (and so by instantiate()) only when asked for by name.

import { describeAjvError, makeAjv, type ValidateFunction } from '../config/schema.js';
import { LABEL_KEY } from '../pipeline/labels.js';
import type { PayloadReader } from '../pipeline/record.js';
import { OtusError } from '../util/errors.js';
import type { PluginDirectories } from './loader.js';
import {
  type InstanceOfKind,
  PLUGIN_KINDS,
  type PluginContext,
  type PluginDefinition,
  type PluginKind,
  type PluginMeta,
} from './types.js';

export const PLUGIN_NAME = /^[a-z][a-z0-9_-]*$/;
export const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;

const META_SCHEMA = {
  type: 'object',
  required: ['name', 'version', 'kind', 'labels', 'configSchema'],
  properties: {
    name: { type: 'string', pattern: PLUGIN_NAME.source },
    version: { type: 'string', pattern: SEMVER.source },
    kind: { enum: PLUGIN_KINDS },
    labels: { type: 'array', items: { type: 'string' } },
    configSchema: { type: 'object' },
    description: { type: 'string' },
  },
  additionalProperties: false,
} as const;

export interface RegisteredPlugin<K extends PluginKind = PluginKind> {
  /** Small integer, stable for this registry's lifetime (what port tables will hold). */
  readonly id: number;
  readonly meta: PluginMeta & { readonly kind: K };
  /** `built-in` or the file it was loaded from. */
  readonly source: string;
  readonly def: PluginDefinition<K>;
  readonly validateConfig: ValidateFunction;
}

/** `processor plugin "filter" (built-in)`: how every message names a plugin. */
export function pluginLabel(kind: string, name: string, source: string): string {
  return `${kind} plugin "${name}" (${source})`;
}

export class PluginRegistry {
  private readonly byKey = new Map<string, RegisteredPlugin>();
  private readonly all: RegisteredPlugin[] = [];
  private readonly metaValidator: ValidateFunction;
  private readonly ajv = makeAjv();

  /** `third`: the checked plugin directories to load named plugins from (src/plugin/loader.ts). */
  constructor(private readonly third: PluginDirectories | null = null) {
    this.metaValidator = makeAjv().compile(META_SCHEMA);
  }

  /**
   * Validates and registers a plugin definition; throws OTUS_ERR_PLUGIN_METADATA / _SCHEMA / _DUPLICATE.
   * `lazy`: compile the config schema when a config is first checked (built-ins, whose schemas a test compiles).
   */
  register(def: unknown, source = 'built-in', lazy = false): RegisteredPlugin {
    const d = def as Partial<PluginDefinition> | null;
    const meta = d && typeof d === 'object' ? (d.meta as PluginMeta | undefined) : undefined;
    const who =
      meta && typeof meta === 'object' && typeof meta.name === 'string'
        ? pluginLabel(typeof meta.kind === 'string' ? meta.kind : 'unknown-kind', meta.name, source)
        : `plugin from ${source}`;
    if (!d || typeof d !== 'object') throw new OtusError('OTUS_ERR_PLUGIN_METADATA', `${who}: a plugin must be an object { meta, init }`);
    if (!meta || typeof meta !== 'object') throw new OtusError('OTUS_ERR_PLUGIN_METADATA', `${who}: meta is missing`);
    if (!this.metaValidator(meta)) {
      throw new OtusError('OTUS_ERR_PLUGIN_METADATA', `${who}: ${describeAjvError('meta', this.metaValidator.errors)}`);
    }
    if (typeof d.init !== 'function') throw new OtusError('OTUS_ERR_PLUGIN_METADATA', `${who}: init must be a function`);
    if (d.payloadReader !== undefined && (typeof d.payloadReader !== 'function' || meta.kind !== 'parser')) {
      throw new OtusError('OTUS_ERR_PLUGIN_METADATA', `${who}: payloadReader must be a function, and only parsers have one`);
    }
    for (const [i, l] of meta.labels.entries()) {
      const base = l.endsWith('.*') ? l.slice(0, -2) : l;
      if (!LABEL_KEY.test(base)) {
        throw new OtusError(
          'OTUS_ERR_PLUGIN_METADATA',
          `${who}: meta.labels[${i}]: "${l}" is not a label key ([a-z0-9][a-z0-9.-]*, optionally ending in .*)`,
        );
      }
    }
    const schema = meta.configSchema as Record<string, unknown>;
    if (schema.type !== 'object') {
      throw new OtusError('OTUS_ERR_PLUGIN_SCHEMA', `${who}: meta.configSchema must describe an object (type: "object")`);
    }
    const ajv = this.ajv;
    const compile = (): ValidateFunction => {
      try {
        return ajv.compile(schema);
      } catch (e) {
        const err = new OtusError('OTUS_ERR_PLUGIN_SCHEMA', `${who}: meta.configSchema does not compile: ${(e as Error).message}`);
        err.cause = e;
        throw err;
      }
    };
    let validateConfig: ValidateFunction | null = lazy ? null : compile();
    const key = `${meta.kind}/${meta.name}`;
    const prev = this.byKey.get(key);
    if (prev) {
      throw new OtusError('OTUS_ERR_PLUGIN_DUPLICATE', `${who}: a ${meta.kind} plugin named "${meta.name}" is already registered from ${prev.source}`);
    }
    const reg: RegisteredPlugin = {
      id: this.all.length + 1,
      meta,
      source,
      def: d as PluginDefinition,
      get validateConfig(): ValidateFunction {
        return (validateConfig ??= compile());
      },
    };
    this.byKey.set(key, reg);
    this.all.push(reg);
    return reg;
  }

  get<K extends PluginKind>(kind: K, name: string): RegisteredPlugin<K> | undefined {
    return this.byKey.get(`${kind}/${name}`) as RegisteredPlugin<K> | undefined;
  }

  list(kind?: PluginKind): RegisteredPlugin[] {
    return kind ? this.all.filter((p) => p.meta.kind === kind) : [...this.all];
  }

  /** One PayloadReader per parser plugin that has a compact payload form (for the sender's expander). */
  payloadReaders(): PayloadReader[] {
    return this.list('parser').flatMap((p) => (p.def.payloadReader ? [p.def.payloadReader()] : []));
  }

  /** Whether a `kind` plugin named `name` can be had: registered, or in a plugin directory (loaded when first used). */
  has(kind: PluginKind, name: string): boolean {
    return this.get(kind, name) !== undefined || this.third?.has(name) === true;
  }

  /** A registered plugin (built-in, or loaded before) or OTUS_ERR_PLUGIN_NOT_FOUND naming where the task asked for it. */
  require<K extends PluginKind>(kind: K, name: string, where: string): RegisteredPlugin<K> {
    const p = this.get(kind, name);
    if (!p) {
      const known = this.list(kind).map((x) => x.meta.name);
      const file = this.third?.fileOf(name);
      const dirs = this.third?.names().filter((n) => !known.includes(n)) ?? [];
      throw new OtusError(
        'OTUS_ERR_PLUGIN_NOT_FOUND',
        file !== undefined
          ? `${where}: no ${kind} plugin named "${name}": ${file} provides ${this.list().filter((x) => x.meta.name === name).map((x) => `a ${x.meta.kind}`).join(' and ') || 'none'}`
          : `${where}: no ${kind} plugin named "${name}" (known: ${known.length ? known.join(', ') : 'none'}${dirs.length ? `; in the plugin directories: ${dirs.join(', ')}` : ''})`,
      );
    }
    return p;
  }

  /** As require(), importing the plugin from the plugin directories first if that is where it is (and it is not built in). */
  async load<K extends PluginKind>(kind: K, name: string, where: string): Promise<RegisteredPlugin<K>> {
    if (!this.get(kind, name) && this.third?.has(name)) await this.third.load(this, name);
    return this.require(kind, name, where);
  }

  /** Validates `config` (a copy: defaults are applied to it), then init; checks the instance's shape. */
  checkConfig<K extends PluginKind>(p: RegisteredPlugin<K>, config: unknown, where: string): unknown {
    const copy = structuredClone(config ?? {});
    if (!p.validateConfig(copy)) {
      const who = pluginLabel(p.meta.kind, p.meta.name, p.source);
      throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${who}: ${describeAjvError(where, p.validateConfig.errors)}`);
    }
    return copy;
  }

  async instantiate<K extends PluginKind>(
    kind: K,
    name: string,
    config: unknown,
    ctx: Omit<PluginContext, 'config'>,
  ): Promise<InstanceOfKind[K]> {
    const p = await this.load(kind, name, ctx.where);
    const cfg = this.checkConfig(p, config, ctx.where);
    const who = pluginLabel(kind, name, p.source);
    let inst: unknown;
    try {
      inst = await p.def.init({ ...ctx, config: cfg });
    } catch (e) {
      const err = new OtusError('OTUS_ERR_PLUGIN_INIT', `${who}: init failed: ${e instanceof Error ? e.message : String(e)}`);
      err.cause = e;
      throw err;
    }
    const bad = checkInstance(kind, inst);
    if (bad) throw new OtusError('OTUS_ERR_PLUGIN_INIT', `${who}: init returned ${bad}`);
    return inst as InstanceOfKind[K];
  }
}

/** What is wrong with an instance of `kind`, or null. */
function checkInstance(kind: PluginKind, inst: unknown): string | null {
  if (!inst || typeof inst !== 'object') return `${inst === null ? 'null' : typeof inst}, not a ${kind} instance`;
  const o = inst as Record<string, unknown>;
  const fn = (k: string): string | null => (typeof o[k] === 'function' ? null : `an object without a ${k}() method`);
  switch (kind) {
    case 'parser':
      if (typeof o.protocol !== 'string' || !LABEL_KEY.test(o.protocol)) return 'a parser without a protocol name';
      return fn('canHandle') ?? fn('handle');
    case 'processor':
      if (typeof o.priority !== 'number' || !Number.isFinite(o.priority)) return 'a processor without a numeric priority';
      return fn('process');
    case 'reporter':
      if (o.format !== 'json' && o.format !== 'protobuf') return 'a reporter whose format is not "json" or "protobuf"';
      return fn('report') ?? fn('flush');
    case 'capturer':
      return fn('streams');
  }
}
