// filter processor (plugins/README.md): declarative drop/pass rules on
// label values. Rules are tried in order; the first whose label is set to one
// of its values decides (drop or pass); a record no rule matches gets
// `default` (pass unless configured). Reads labels only, allocates nothing:
// values are compared in place (Labels.equals).

import type { FastVerdict, PluginDefinition, Processor } from '../../../src/plugin/types.js';
import type { ProcessorView } from '../../../src/pipeline/record.js';

export interface FilterRule {
  label: string;
  values: string[];
  action: 'drop' | 'pass';
}

export interface FilterConfig {
  rules: FilterRule[];
  default: 'drop' | 'pass';
  priority: number;
}

const LABEL_KEY = '^[a-z0-9][a-z0-9.-]*$';

class FilterProcessor implements Processor {
  readonly priority: number;
  private readonly keys: string[];
  private readonly values: string[][];
  private readonly drop: boolean[];
  private readonly dropByDefault: boolean;

  constructor(cfg: FilterConfig) {
    this.priority = cfg.priority;
    this.keys = cfg.rules.map((r) => r.label);
    this.values = cfg.rules.map((r) => r.values);
    this.drop = cfg.rules.map((r) => r.action === 'drop');
    this.dropByDefault = cfg.default === 'drop';
  }

  process(rec: ProcessorView): ProcessorView | null {
    const labels = rec.labels;
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      const vals = this.values[i];
      for (let j = 0; j < vals.length; j++) {
        if (labels.equals(keys[i], vals[j])) return this.drop[i] ? null : rec;
      }
    }
    return this.dropByDefault ? null : rec;
  }

  /** A record without any rule's label matches no rule: it gets the default. */
  fastVerdict(): FastVerdict {
    return { reads: this.keys, drop: this.dropByDefault, adds: null };
  }
}

const filter: PluginDefinition<'processor', FilterConfig> = {
  meta: {
    name: 'filter',
    version: '0.1.0',
    kind: 'processor',
    labels: [],
    description: 'Drops or passes records by label values (first matching rule decides).',
    configSchema: {
      type: 'object',
      properties: {
        rules: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            required: ['label', 'values', 'action'],
            properties: {
              label: { type: 'string', pattern: LABEL_KEY },
              values: { type: 'array', minItems: 1, items: { type: 'string' } },
              action: { enum: ['drop', 'pass'] },
            },
            additionalProperties: false,
          },
        },
        default: { enum: ['drop', 'pass'], default: 'pass' },
        priority: { type: 'number', default: 10 },
      },
      additionalProperties: false,
    },
  },
  init(ctx) {
    return new FilterProcessor(ctx.config);
  },
};

export default filter;
