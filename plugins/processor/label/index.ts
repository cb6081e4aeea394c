// label processor (plugins/README.md): adds static labels to every
// record: the node metadata of the global config (`otus.node`: hostname as
// `node`, ip as `node-ip`, dc, env, and any other key as itself), then the
// task's own `labels`, which win on a clash. Existing labels set by a parser
// are kept unless `overwrite: true`. The labels are encoded once at init,
// as label entries: a record whose parser set none of these keys gets them
// by reference (Labels.addShared, copied once by the wire encoder); one
// that did gets the missing ones set one by one.

import { labelKeyId } from '../../../src/pipeline/label-keys.js';
import { encodeBytesEntry } from '../../../src/pipeline/labels.js';
import type { FastVerdict, PluginDefinition, Processor } from '../../../src/plugin/types.js';
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
  /** All the labels as entries (labels.ts), and their size in words (0: none, or not encodable; set one by one). */
  private readonly block: Int32Array;
  private readonly words: number;
  constructor(
    private readonly keys: string[],
    private readonly values: string[],
    private readonly overwrite: boolean,
    priority: number,
  ) {
    this.priority = priority;
    this.ids = Int32Array.from(keys, labelKeyId);
    const utf8 = values.map((v) => new TextEncoder().encode(v));
    this.block = new Int32Array(utf8.reduce((n, b) => n + 2 + ((b.length + 3) >> 2), 0));
    const b8 = new Uint8Array(this.block.buffer);
    let w = 0;
    for (let i = 0; i < utf8.length && w >= 0; i++) w = encodeBytesEntry(this.block, b8, w, this.block.length, this.ids[i], utf8[i], 0, utf8[i].length);
    // No block when there is nothing to add, or a key has no id (setId refuses and counts it per record).
    this.words = w > 0 ? w : 0;
  }

  process(rec: ProcessorView): ProcessorView {
    const labels = rec.labels;
    const ids = this.ids;
    let present = false;
    if (!this.overwrite) for (let i = 0; i < ids.length && !present; i++) present = labels.indexOfId(ids[i]) >= 0;
    if (this.words > 0 && !present) labels.addShared(this.block, 0, this.words, ids, 0, ids.length);
    else for (let i = 0; i < ids.length; i++) if (this.overwrite || labels.indexOfId(ids[i]) < 0) labels.setId(ids[i], this.values[i]);
    return rec;
  }

  /** A record without any of these keys gets the block (setId one by one would write the same entries); none without a block to give. */
  fastVerdict(): FastVerdict | null {
    if (this.ids.length === 0) return { reads: [], drop: false, adds: null };
    if (this.words === 0) return null;
    return { reads: this.keys, drop: false, adds: { E: this.block, words: this.words, ids: this.ids } };
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
