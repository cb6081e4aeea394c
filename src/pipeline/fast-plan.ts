// Whether a task's processors let the fast path (fast-path.ts) run: kept
// apart from FastFrame so that plugin/types.ts, which names FastFrame, and
// this, which names Processor, do not import each other.

import type { Processor } from '../plugin/types.js';
import { labelKeyName } from './label-keys.js';
import { LABEL_BYTES, MAX_LABELS } from './labels.js';

/**
 * What a task's processors, in the order they run, do to every record of the
 * fast path (Processor.fastVerdict), or null when that cannot be said and
 * the task takes the generic path: a processor reads a key a fast record
 * can carry (`fastKeys`, or one an earlier processor added) or gives no
 * verdict. `dropBy`: the first processor that drops them all (-1 none);
 * else `adds`: the labels they add, in order, as entries with their key ids.
 */
export interface FastPlan {
  readonly dropBy: number;
  readonly adds: Int32Array;
  readonly ids: Int32Array;
}

/** Room left for processors' labels: a fast record's own take well under 1 KiB (rtp: three numbers, a call's labels). */
const ADDS_MAX_WORDS = (LABEL_BYTES - 1024) >> 2;

export function fastPlan(fastKeys: readonly string[] | undefined, processors: readonly Processor[]): FastPlan | null {
  const none = new Int32Array(0);
  if (processors.length === 0) return { dropBy: -1, adds: none, ids: none };
  if (fastKeys === undefined) return null;
  const carried = new Set(fastKeys);
  const adds: number[] = [];
  const ids: number[] = [];
  for (let j = 0; j < processors.length; j++) {
    const v = processors[j].fastVerdict?.() ?? null;
    if (v === null || v.reads.some((k) => carried.has(k))) return null;
    if (v.drop) return { dropBy: j, adds: none, ids: none };
    if (v.adds === null) continue;
    for (const id of v.adds.ids) {
      if (id < 0) return null;
      carried.add(labelKeyName(id));
      ids.push(id);
    }
    adds.push(...v.adds.E.subarray(0, v.adds.words));
  }
  if (carried.size > MAX_LABELS || adds.length > ADDS_MAX_WORDS) return null; // the generic path counts what does not fit
  return { dropBy: -1, adds: Int32Array.from(adds), ids: Int32Array.from(ids) };
}
