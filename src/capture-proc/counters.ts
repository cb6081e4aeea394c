// What a capture process reports of its pipeline when it stops, replay or
// live: the pipeline's counters by layer, its parsers' own, and its batches';
// and, live, how they are kept in the task's stats segment.

import { DECODE_ERROR_NAMES } from '../decode/errors.js';
import type { BatchSink } from '../pipeline/batch-sink.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { Parser } from '../plugin/types.js';
import { flatten, type SlotValues, type StatsWriter, under, unflatten } from '../shm/stats.js';
import type { LiveCaptureDone, PipelineCounters } from '../supervisor/messages.js';
import type { CatchUpStats } from './catch-up.js';

/** Largest wire record (a SIP or HTTP message with its headers, or a jumbo frame's raw bytes). */
export const MAX_RECORD_BYTES = 256 * 1024;

/** A pipeline's counters; with `batch`, records and ring drops are what its batches met in the ring. */
export function pipelineCounters(pl: Pipeline, instances: readonly Parser[] = [], batch: BatchSink | null = null): PipelineCounters {
  const st = pl.stats;
  const parsers: PipelineCounters['parsers'] = {};
  pl.parserNames.forEach((n, i) => (parsers[n] = { records: st.parserRecords[i], noOutput: st.parserNoOutput[i], summarised: st.parserSummarised[i], own: instances[i]?.counters?.() }));
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


/**
 * A capture process's counters in its slot of the task's stats segment
 * (src/shm/stats.ts). block(): the pipeline's counters by layer, copied at the
 * end of every ring block and before each batch enters the ring, with plain
 * stores (no allocation), so the slot is never more than a block behind and
 * a process killed loses at most the block it was in; publish(): everything, at heartbeat rate and at the end
 * (parsers' own counters, decode errors, reassembly, the kernel's counters,
 * catch-up, the process's own figures).
 */
export class CaptureStats {
  private readonly frames: number;
  private readonly decodeDrops: number;
  private readonly held: number;
  private readonly streamSegments: number;
  private readonly streamRecords: number;
  private readonly filterDrops: number;
  private readonly unmatchedForwarded: number;
  private readonly unmatchedDrops: number;
  private readonly encodeDrops: number;
  private readonly fastRecords: number;
  private readonly records: number;
  private readonly ringDrops: number;
  private readonly bytes: number;
  private readonly frameBytes: number;
  private readonly pending: number;
  private readonly wallSec: number;
  /** When this process started counting (ms): wallSec goes with each copy, so a rate over two copies is exact (otusctl top). */
  private readonly t0 = performance.now();
  private readonly parserRecords: Int32Array;
  private readonly parserNoOutput: Int32Array;
  private readonly parserSummarised: Int32Array;
  private readonly processorDrops: Int32Array;

  constructor(
    readonly writer: StatsWriter,
    private readonly pl: Pipeline,
    private readonly batch: BatchSink,
  ) {
    const w = writer;
    this.frames = w.id('frames');
    this.decodeDrops = w.id('decodeDrops');
    this.held = w.id('held');
    this.streamSegments = w.id('streamSegments');
    this.streamRecords = w.id('streamRecords');
    this.filterDrops = w.id('filterDrops');
    this.unmatchedForwarded = w.id('unmatchedForwarded');
    this.unmatchedDrops = w.id('unmatchedDrops');
    this.encodeDrops = w.id('encodeDrops');
    this.fastRecords = w.id('fastRecords');
    this.records = w.id('records');
    this.ringDrops = w.id('ringDrops');
    this.bytes = w.id('bytes');
    this.frameBytes = w.id('frameBytes');
    this.pending = w.id('pending', 'g');
    this.wallSec = w.id('wallSec');
    this.parserRecords = Int32Array.from(pl.parserNames, (n) => w.id(`parsers.${n}.records`));
    this.parserNoOutput = Int32Array.from(pl.parserNames, (n) => w.id(`parsers.${n}.noOutput`));
    this.parserSummarised = Int32Array.from(pl.parserNames, (n) => w.id(`parsers.${n}.summarised`));
    this.processorDrops = Int32Array.from(pl.processorNames, (n) => w.id(`processors.${n}`));
    // Copied before each batch goes into the ring too: the sender can count no record whose frame the slot does not count yet.
    batch.onFlush = this.block;
  }

  /** The pipeline's counters by layer into the slot, as one moment's: plain stores, at the end of each ring block and before each batch enters the ring. */
  readonly block = (): void => {
    const st = this.pl.stats;
    const w = this.writer;
    const b = this.batch;
    w.begin();
    w.count(this.frames, st.frames);
    w.count(this.decodeDrops, st.decodeDrops);
    w.count(this.held, st.held);
    w.count(this.streamSegments, st.streamSegments);
    w.count(this.streamRecords, st.streamRecords);
    w.count(this.filterDrops, st.filterDrops);
    w.count(this.unmatchedForwarded, st.unmatchedForwarded);
    w.count(this.unmatchedDrops, st.unmatchedDrops);
    w.count(this.encodeDrops, st.encodeDrops);
    w.count(this.fastRecords, st.fastRecords);
    w.count(this.records, b.records);
    w.count(this.ringDrops, b.droppedRecords);
    w.count(this.bytes, st.bytes);
    w.count(this.frameBytes, this.pl.decoder.stats.bytes);
    w.gauge(this.pending, b.pending);
    w.count(this.wallSec, (performance.now() - this.t0) / 1000);
    for (let i = 0; i < this.parserRecords.length; i++) {
      w.count(this.parserRecords[i]!, st.parserRecords[i]!);
      w.count(this.parserNoOutput[i]!, st.parserNoOutput[i]!);
      w.count(this.parserSummarised[i]!, st.parserSummarised[i]!);
    }
    for (let i = 0; i < this.processorDrops.length; i++) w.count(this.processorDrops[i]!, st.processorDrops[i]!);
    w.end();
  };

  /** Everything the summary has (heartbeat rate and at the end; allocates). `d`: the process's snapshot. */
  publish(d: LiveCaptureDone, node: { counters: Record<string, number>; gauges: Record<string, number> }): void {
    this.block();
    const c = d.counters;
    const counters: Record<string, number> = { labelOverflows: c.labelOverflows, cpuSec: d.cpuSec, ...node.counters };
    for (const [k, v] of Object.entries(c.decodeErrors)) counters[`decodeErrors.${k}`] = v;
    for (const [k, p] of Object.entries(c.parsers)) if (p.own) flatten(p.own, `parsers.${k}.own.`, counters);
    const gauges: Record<string, number> = { ...node.gauges };
    for (const [k, v] of Object.entries(c.ipReassembly)) (IP_GAUGES.has(k) ? gauges : counters)[`ipReassembly.${k}`] = v;
    if (c.tcpReassembly) for (const [k, v] of Object.entries(c.tcpReassembly)) (TCP_GAUGES.has(k) ? gauges : counters)[`tcpReassembly.${k}`] = v;
    for (const [k, v] of Object.entries(d.stream)) counters[`stream.${k}`] = v;
    if (d.catchUp) for (const [k, v] of Object.entries(d.catchUp)) counters[`catchUp.${k}`] = v;
    this.writer.publish(counters, gauges);
  }
}

/** The parsers a capture slot counts for, in the pipeline's order. */
export function slotParsers(s: SlotValues): string[] {
  const out: string[] = [];
  for (const k of s.values.keys()) {
    const m = /^parsers\.(.+)\.records$/.exec(k);
    if (m) out.push(m[1]!);
  }
  return out;
}

/** Reassembly figures that are state now, not counts: not carried over a restart. */
const IP_GAUGES = new Set(['pending', 'memoryBytes']);
const TCP_GAUGES = new Set(['active', 'bytesHeld', 'bytesHeldMax', 'memoryHeld', 'memoryHeldMax']);

/** A capture process's counters as its slot holds them, in the shape of its done message (the supervisor's summary). */
export function captureFromSlot(s: SlotValues, index: number, cpu: number): LiveCaptureDone {
  const v = s.values;
  const n = (k: string): number => v.get(k) ?? 0;
  const parsers: PipelineCounters['parsers'] = {};
  for (const p of slotParsers(s)) {
    const own = under(v, `parsers.${p}.own.`);
    parsers[p] = { records: n(`parsers.${p}.records`), noOutput: n(`parsers.${p}.noOutput`), summarised: n(`parsers.${p}.summarised`), ...(Object.keys(own).length > 0 && { own: unflatten(own) }) };
  }
  const processors = under(v, 'processors.');
  const tcp = under(v, 'tcpReassembly.');
  const catchUp = under(v, 'catchUp.');
  const stream = under(v, 'stream.');
  return {
    type: 'done',
    index,
    pid: s.pid,
    cpu,
    why: 'running',
    failure: null,
    counters: {
      frames: n('frames'),
      decodeDrops: n('decodeDrops'),
      held: n('held'),
      filterDrops: n('filterDrops'),
      unmatchedForwarded: n('unmatchedForwarded'),
      fastRecords: n('fastRecords'),
      unmatchedDrops: n('unmatchedDrops'),
      encodeDrops: n('encodeDrops'),
      ringDrops: n('ringDrops'),
      records: n('records'),
      bytes: n('bytes'),
      parsers,
      processors,
      decodeErrors: under(v, 'decodeErrors.'),
      labelOverflows: n('labelOverflows'),
      ipReassembly: under(v, 'ipReassembly.'),
      tcpReassembly: Object.keys(tcp).length > 0 ? tcp : null,
    },
    stream: {
      frames: stream.frames ?? 0,
      blocks: stream.blocks ?? 0,
      kernelPackets: stream.kernelPackets ?? 0,
      kernelDrops: stream.kernelDrops ?? 0,
      freezes: stream.freezes ?? 0,
      ifDrops: stream.ifDrops ?? 0,
      outgoingSkipped: stream.outgoingSkipped ?? 0,
      interfaceWaits: stream.interfaceWaits ?? 0,
      interfaceWaitMs: stream.interfaceWaitMs ?? 0,
    },
    catchUp: Object.keys(catchUp).length > 0 ? (catchUp as unknown as CatchUpStats) : null,
    cpuSec: n('cpuSec'),
    wallSec: n('wallSec'),
  };
}
