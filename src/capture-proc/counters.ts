// What a capture process reports of its pipeline when it stops, replay or
// live: the pipeline's counters by layer, its parsers' own, and its batches'.

import { DECODE_ERROR_NAMES } from '../decode/errors.js';
import type { BatchSink } from '../pipeline/batch-sink.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { Parser } from '../plugin/types.js';
import type { PipelineCounters } from '../supervisor/messages.js';

/** Largest wire record (a SIP or HTTP message with its headers, or a jumbo frame's raw bytes). */
export const MAX_RECORD_BYTES = 256 * 1024;

/** A pipeline's counters; with `batch`, records and ring drops are what its batches met in the ring. */
export function pipelineCounters(pl: Pipeline, instances: readonly Parser[] = [], batch: BatchSink | null = null): PipelineCounters {
  const st = pl.stats;
  const parsers: PipelineCounters['parsers'] = {};
  pl.parserNames.forEach((n, i) => (parsers[n] = { records: st.parserRecords[i], noOutput: st.parserNoOutput[i], own: instances[i]?.counters?.() }));
  const processors: Record<string, number> = {};
  pl.processorNames.forEach((n, i) => (processors[n] = st.processorDrops[i]));
  const decodeErrors: Record<string, number> = {};
  const errs = pl.decoder.stats.errors;
  for (let i = 1; i < errs.length; i++) if (errs[i] > 0) decodeErrors[DECODE_ERROR_NAMES[i]] = errs[i];
  return {
    frames: st.frames,
    decodeDrops: st.decodeDrops,
    held: st.held,
    filterDrops: st.filterDrops,
    unmatchedForwarded: st.unmatchedForwarded,
    fastRecords: st.fastRecords,
    unmatchedDrops: st.unmatchedDrops,
    encodeDrops: st.encodeDrops,
    ringDrops: batch ? batch.droppedRecords : st.ringDrops,
    records: batch ? batch.records : st.records,
    bytes: st.bytes,
    parsers,
    processors,
    decodeErrors,
    labelOverflows: pl.record.labels.overflows,
    ipReassembly: { ...pl.decoder.reassembler.stats },
    tcpReassembly: pl.reassembler ? { ...pl.reassembler.stats } : null,
  };
}

