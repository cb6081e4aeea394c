// label processor (design §4.2.3, §4.4.1): adds static labels to every
// record: the node metadata of the global config (`otus.node`: hostname as
// `node`, ip as `node-ip`, dc, env, and any other key as itself), then the
// task's own `labels`, which win on a clash. Existing labels set by a parser
// are kept unless `overwrite: true`. Keys and values are made once at init;
// per record it only stores references.

import { labelKeyId } from '../../../src/pipeline/label-keys.js';
import type { PluginDefinition, Processor } from '../../../src/plugin/types.js';
import type { ProcessorView } from '../../../src/pipeline/record.js';

export interface LabelConfig {
  labels: Record<string, string>;
  node_metadata: boolean;
  overwrite: boolean;
  priority: number;
}

const LABEL_KEY = /^[a-z0-9][a-z0-9.-]*$/;
const NODE_KEYS: Record<string, string> = { hostname: 'node', ip: 'node-ip' };

class LabelProcessor implements Processor {
  readonly priority: number;
  /** Key ids, taken once (label-keys.ts): no key lookup per record. */
  private readonly ids: Int32Array;
  constructor(
    keys: string[],
    private readonly values: string[],
    private readonly overwrite: boolean,
    priority: number,
  ) {
    this.priority = priority;
    this.ids = Int32Array.from(keys, labelKeyId);
  }

  process(rec: ProcessorView): ProcessorView {
    const labels = rec.labels;
    const ids = this.ids;
    for (let i = 0; i < ids.length; i++) {
      if (this.overwrite || labels.indexOfId(ids[i]) < 0) labels.setId(ids[i], this.values[i]);
    }
    return rec;
  }
}

const label: PluginDefinition<'processor', LabelConfig> = {
  meta: {
    name: 'label',
    version: '0.1.0',
    kind: 'processor',
    labels: ['node', 'node-ip', 'dc', 'env'],
    description: 'Adds static labels: node metadata from the global config, then the configured ones.',
    configSchema: {
      type: 'object',
      properties: {
        labels: {
          type: 'object',
          default: {},
          propertyNames: { pattern: LABEL_KEY.source },
          additionalProperties: { type: 'string' },
        },
        node_metadata: { type: 'boolean', default: true },
        overwrite: { type: 'boolean', default: false },
        priority: { type: 'number', default: 20 },
      },
      additionalProperties: false,
    },
  },
  init(ctx) {
    const all = new Map<string, string>();
    if (ctx.config.node_metadata) {
      for (const [k, v] of Object.entries(ctx.node)) {
        const key = NODE_KEYS[k] ?? k;
        if (LABEL_KEY.test(key) && typeof v === 'string' && v !== '') all.set(key, v);
      }
    }
    for (const [k, v] of Object.entries(ctx.config.labels)) all.set(k, v);
    return new LabelProcessor([...all.keys()], [...all.values()], ctx.config.overwrite, ctx.config.priority);
  },
};

export default label;
