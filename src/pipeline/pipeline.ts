// The pipeline loop of one capture process (docs/architecture.md, "Processes"):
//
//   frame → task filter (BPF) → core decoder → first parser whose canHandle accepts
//         → (none: unmatched policy, forward or drop) → processors by priority
//         → encode → send ring (reserve, copy, commit)
//
// TCP segments of a port a stream parser declared (`tcp: {ports}`) take
// another branch: the TCP reassembler (src/reassembly/tcp-stream.ts), which
// hands the parser's handleStream in-order bytes; it emits its records
// through this pipeline (RecordEmitter): processors → encode → ring. With a
// parser that probes (`tcp.heuristic` and probeStream), TCP on other ports
// is offered to the reassembler too, which asks the probes once per
// connection, at its first payload, and follows the connections claimed.
//
// One Pipeline per capture process; everything it touches per packet (the
// decoder's DecodedPacket, the OutputRecord, its labels, the L4 payload, the
// encode scratch) is allocated once here. Every way a packet can end without
// a record is counted by layer in PipelineStats; nothing throws per packet.

import type { Frame } from '../capture-file/frame.js';
import { Decoder } from '../decode/decoder.js';
import type { DecodedPacket } from '../decode/packet.js';
import { isStreamParser, type Parser, type Processor, type RecordEmitter, type StreamParser } from '../plugin/types.js';
import { TcpReassembler, type TcpChunk, type TcpReassemblyOptions, type TcpStreamConsumer } from '../reassembly/tcp-stream.js';
import type { CaptureFilter } from './capture-filter.js';
import type { EncodeFn } from './codec.js';
import { fastPlan } from './fast-plan.js';
import { FastFrame } from './fast-path.js';
import { OutputRecord, ProcessorView } from './record.js';
import { isDirectSink, type DirectSink, type RecordSink } from './sink.js';
import { fillUnmatched, L4Payload, type UnmatchedPolicy } from './unmatched.js';

export interface PipelineOptions {
  decoder: Decoder;
  parsers: readonly Parser[];
  /** Any order: sorted here by priority (stable, so equal priorities keep task order). */
  processors: readonly Processor[];
  /** Names for the per-processor counters, parallel to `processors`. */
  processorNames?: readonly string[];
  parserNames?: readonly string[];
  unmatched: UnmatchedPolicy;
  encode: EncodeFn;
  sink: RecordSink;
  filter?: CaptureFilter | null;
  /** Largest encoded record; bigger ones are dropped and counted (encodeDrops). */
  maxRecordBytes?: number;
  /** Limits of TCP reassembly (used only when a parser declares `tcp` ports). */
  tcp?: Partial<TcpReassemblyOptions>;
  /**
   * Offer frames to the first parser with a fast path (Parser.fastFrame).
   * Only for wire records into a batch (BatchSink), and only when the
   * processors can give their verdict on its records without seeing them
   * (fastPlan).
   */
  fastPath?: boolean;
  /** Attach its frame to every record (task `raw: true`): a stream parser's record gets the segment's that completed it. */
  raw?: boolean;
}

export class PipelineStats {
  /** Frames handed to the pipeline. */
  frames = 0;
  /** Dropped: malformed (by code in Decoder.stats.errors). */
  decodeDrops = 0;
  /** Fragments kept by reassembly (a later frame may complete the datagram). */
  held = 0;
  /** TCP segments taken by stream reassembly (their records, 0 to many each, count under the parser). */
  streamSegments = 0;
  /** Records stream parsers made from reassembled TCP bytes (counted under the parser too). */
  streamRecords = 0;
  /** Dropped by the task's filter section. */
  filterDrops = 0;
  /** Records produced by each parser, handle() calls that produced none, and packets taken into its summary records instead (Parser.summarised). */
  readonly parserRecords: Float64Array;
  readonly parserNoOutput: Float64Array;
  readonly parserSummarised: Float64Array;
  /** Unmatched packets forwarded as L3/L4 records, and dropped by `unmatched_policy: drop`. */
  unmatchedForwarded = 0;
  unmatchedDrops = 0;
  /** Records dropped by each processor (in the sorted order of Pipeline.processorNames). */
  readonly processorDrops: Float64Array;
  /** Dropped: the encoded record did not fit (maxRecordBytes). */
  encodeDrops = 0;
  /** Dropped: the ring was full (drop-tail). */
  ringDrops = 0;
  /** Records committed to the ring, and their encoded bytes. */
  records = 0;
  bytes = 0;
  /** Parser records the fast path wrote (counted under the parser too; a processor may still have dropped them). */
  fastRecords = 0;
  /** Frames the fast path took, with a record or without one (rtp with `stats.per_packet: false`). */
  fastFrames = 0;

  constructor(parsers: number, processors: number) {
    this.parserRecords = new Float64Array(parsers);
    this.parserNoOutput = new Float64Array(parsers);
    this.parserSummarised = new Float64Array(parsers);
    this.processorDrops = new Float64Array(processors);
  }
}

export class Pipeline implements RecordEmitter, TcpStreamConsumer {
  readonly decoder: Decoder;
  /** Present when a parser declared TCP ports. */
  readonly reassembler: TcpReassembler | null;
  readonly stats: PipelineStats;
  readonly record = new OutputRecord();
  readonly parserNames: readonly string[];
  readonly processorNames: readonly string[];
  private readonly view: ProcessorView;
  private readonly l4 = new L4Payload();
  private readonly parsers: readonly Parser[];
  private readonly processors: readonly Processor[];
  private readonly forward: boolean;
  private readonly encode: EncodeFn;
  private readonly sink: RecordSink;
  /** The sink when records can be encoded straight into it (BatchSink), else null. */
  private readonly direct: DirectSink | null;
  private readonly maxRecord: number;
  private readonly filter: CaptureFilter | null;
  private readonly scratch: Uint8Array;
  /** Word views of the scratch buffer and of the sink's memory (null if not 4-byte aligned), for copying records 4 bytes at a time. */
  private readonly scratch32: Int32Array;
  private readonly sink32: Int32Array | null;
  /** TCP port → index of the stream parser that asked for it, -1 none. */
  private readonly tcpOwner: Int16Array | null;
  /** Stream parsers that probe connections on other ports (tcp.heuristic), by index; null when none. */
  private readonly probers: Int32Array | null;
  /** The stream parser whose records emit() is counting, -1 outside handleStream. */
  private emitting = -1;
  /** The parser whose fastFrame runs first (and its index), or null. */
  private readonly fast: Parser | null = null;
  private readonly fastIndex: number = -1;
  private readonly fastFrame = new FastFrame();
  /** The processor that drops every fast record (fastPlan), -1 none. */
  private readonly fastDropBy: number = -1;
  private readonly raw: boolean;
  /** The frame being processed, for the raw frame of records stream parsers emit from it; null outside processBytes (a flush). */
  private current: DecodedPacket | null = null;
  /** Capture time of the last frame, and the parsers that want it (Parser.tick). */
  private lastSec = -1;
  private lastNsec = 0;
  private readonly tickers: readonly Parser[];
  /** Parsers that emit records of their own between frames (Parser.drain), null when none. */
  private readonly drainers: Parser[] | null;

  constructor(o: PipelineOptions) {
    this.decoder = o.decoder;
    this.parsers = [...o.parsers];
    this.parserNames = o.parserNames ? [...o.parserNames] : o.parsers.map((p) => p.protocol);
    const order = o.processors.map((p, i) => ({ p, i })).sort((a, b) => a.p.priority - b.p.priority || a.i - b.i);
    this.processors = order.map((x) => x.p);
    this.processorNames = order.map((x) => o.processorNames?.[x.i] ?? `processor-${x.i}`);
    this.forward = o.unmatched === 'forward';
    this.raw = o.raw === true;
    this.encode = o.encode;
    this.sink = o.sink;
    this.direct = isDirectSink(o.sink) ? o.sink : null;
    this.maxRecord = o.maxRecordBytes ?? 256 * 1024;
    this.filter = o.filter && !o.filter.empty ? o.filter : null;
    this.scratch = new Uint8Array(o.maxRecordBytes ?? 256 * 1024);
    this.scratch32 = new Int32Array(this.scratch.buffer);
    const u8 = o.sink.u8;
    this.sink32 = u8.byteOffset % 4 === 0 ? new Int32Array(u8.buffer, u8.byteOffset, u8.byteLength >> 2) : null;
    this.view = new ProcessorView(this.record);
    this.stats = new PipelineStats(this.parsers.length, this.processors.length);
    let owner: Int16Array | null = null;
    const probers: number[] = [];
    this.parsers.forEach((p, i) => {
      if (!isStreamParser(p)) return;
      owner ??= new Int16Array(65536).fill(-1);
      for (const port of p.tcp.ports) if (owner[port & 0xffff] < 0) owner[port & 0xffff] = i;
      if (p.tcp.heuristic === true && p.probeStream !== undefined) probers.push(i);
    });
    this.parsers.forEach((p, i) => p.attach?.(new ParserEmitter(this, i)));
    this.tickers = this.parsers.filter((p) => p.tick !== undefined);
    this.tcpOwner = owner;
    this.probers = probers.length > 0 ? Int32Array.from(probers) : null;
    this.reassembler = owner === null ? null : new TcpReassembler(this, o.tcp);
    const drainers = this.parsers.filter((p) => p.drain !== undefined);
    this.drainers = drainers.length > 0 ? drainers : null;
    const fi = this.parsers.findIndex((p) => p.fastFrame !== undefined);
    const plan = o.fastPath === true && this.direct !== null && this.sink32 !== null && fi >= 0 ? fastPlan(this.parsers[fi].fastKeys, this.processors) : null;
    if (plan !== null) {
      this.fastIndex = fi;
      this.fast = this.parsers[fi];
      this.fastDropBy = plan.dropBy;
      this.fastFrame.extra = plan.adds;
      this.fastFrame.extraIds = plan.ids;
    }
  }

  /** One frame from a capture source. */
  processFrame(f: Frame): void {
    this.processBytes(f.buf, f.view, f.off, f.caplen, f.len, f.linkType, f.tsSec, f.tsNsec, f.hasTs, f.tsDigits);
  }

  processBytes(
    buf: Uint8Array,
    view: DataView,
    off: number,
    caplen: number,
    len: number,
    linkType: number,
    tsSec: number,
    tsNsec: number,
    hasTs: boolean,
    tsDigits: number,
  ): void {
    const st = this.stats;
    // Parsers' own records (stream reports) every 1024 frames, so they wait for no ring block's end (replay has none).
    if ((st.frames & 1023) === 0 && this.drainers !== null) this.drain(false);
    st.frames++;
    this.lastSec = tsSec;
    this.lastNsec = tsNsec;
    // The task filter runs on the frame, as the kernel runs it in live capture.
    if (this.filter !== null && !this.filter.matches(buf, off, caplen, len, linkType)) {
      st.filterDrops++;
      return;
    }
    if (this.fast !== null && linkType === 1 && this.fastFrame.parse(buf, view, off, caplen, len, tsSec, tsNsec, hasTs, tsDigits, this.decoder.udpTunnelPorts) && this.commitFast()) return;
    const p = this.decoder.decodeBytes(buf, view, off, caplen, len, linkType, tsSec, tsNsec, hasTs);
    if (p.error !== 0) {
      st.decodeDrops++;
      return;
    }
    if (p.held) {
      st.held++;
      return;
    }
    const own = this.tcpOwner;
    if (own !== null && p.proto === 6 && p.sport >= 0) {
      let i = own[p.dport];
      let server = p.dport;
      if (i < 0) {
        i = own[p.sport];
        server = p.sport;
      }
      if (i >= 0) {
        st.streamSegments++;
        this.current = p;
        this.reassembler!.segment(p, i, server, hasTs, tsDigits);
        this.current = null;
        return;
      }
      this.current = p;
      const taken = this.probers !== null && this.reassembler!.offer(p, hasTs, tsDigits);
      this.current = null;
      if (taken) {
        st.streamSegments++;
        return;
      }
    }
    const rec = this.record;
    rec.reset();
    const parsers = this.parsers;
    let i = 0;
    for (; i < parsers.length; i++) if (parsers[i].canHandle(p)) break;
    if (i < parsers.length) {
      if (!parsers[i].handle(p, rec, hasTs, tsDigits)) {
        if (parsers[i].summarised === true) st.parserSummarised[i]++;
        else st.parserNoOutput[i]++;
        return;
      }
      st.parserRecords[i]++;
    } else if (this.forward) {
      fillUnmatched(rec, this.l4, p, hasTs, tsDigits);
      st.unmatchedForwarded++;
    } else {
      st.unmatchedDrops++;
      return;
    }
    if (this.raw && rec.rawLen < 0) rec.attachRaw(p);
    this.finish();
  }

  /** Stream parsers' emit (RecordEmitter): the current record through processors, encode and ring. */
  emit(): boolean {
    if (this.emitting >= 0) {
      this.stats.parserRecords[this.emitting]++;
      this.stats.streamRecords++;
    }
    if (this.raw && this.record.rawLen < 0 && this.current !== null) this.record.attachRaw(this.current);
    return this.finish();
  }

  /** A parser's own emit (Parser.attach): the current record, counted under parser `i`. */
  emitFor(i: number): boolean {
    this.stats.parserRecords[i]++;
    return this.finish();
  }

  /** TcpStreamConsumer: in-order bytes for the stream parser at `owner`. */
  streamData(owner: number, c: TcpChunk): number {
    this.emitting = owner;
    const used = (this.parsers[owner] as StreamParser).handleStream(c, this);
    this.emitting = -1;
    return used;
  }

  /** TcpStreamConsumer: the first payload of a connection on another port; the first probing parser that claims it, or -1. */
  probeStream(p: DecodedPacket): number {
    const pr = this.probers;
    if (pr === null) return -1;
    for (let k = 0; k < pr.length; k++) {
      const i = pr[k];
      if ((this.parsers[i] as StreamParser).probeStream!(p.payloadBuf, p.payloadOff, p.payloadLen)) return i;
    }
    return -1;
  }

  streamEnd(owner: number, streamId: number, end: TcpChunk): void {
    this.emitting = owner;
    (this.parsers[owner] as StreamParser).streamEnd?.(streamId, end, this);
    this.emitting = -1;
  }

  /** End of input: flushes reassembly (stored bytes are delivered, connections ended), then the sink. */
  flush(): void {
    this.reassembler?.flush();
    this.tick();
    for (const p of this.parsers) p.flush?.();
    if (this.drainers !== null) this.drain(true);
    this.direct?.flush();
  }

  /** End of a capture block: parsers hear the time, and a batching sink hands its records on now, so none waits for the next block. */
  batchEnd(): void {
    this.tick();
    if (this.drainers !== null) this.drain(false);
    this.direct?.flush();
  }

  private tick(): void {
    if (this.lastSec < 0) return;
    for (let i = 0; i < this.tickers.length; i++) this.tickers[i].tick!(this.lastSec, this.lastNsec);
  }

  /** Parsers' own records (Parser.drain), through processors, encode and ring like any other. */
  private drain(final: boolean): void {
    const d = this.drainers!;
    for (let i = 0; i < d.length; i++) d[i].drain!(this, final);
  }

  private finish(): boolean {
    const st = this.stats;
    const procs = this.processors;
    for (let j = 0; j < procs.length; j++) {
      if (!procs[j].process(this.view)) {
        st.processorDrops[j]++;
        return false;
      }
    }
    return this.commitRecord();
  }

  /** Encodes the current record and puts it in the sink. */
  private commitRecord(): boolean {
    if (this.direct !== null) return this.commitDirect(this.direct);
    const st = this.stats;
    const s = this.scratch;
    const n = this.encode(this.record, s, 0, s.length);
    if (n < 0) {
      st.encodeDrops++;
      return false;
    }
    const sink = this.sink;
    const at = sink.reserve(n);
    if (at < 0) {
      st.ringDrops++;
      return false;
    }
    // Records up to 1 KiB (the RTP fast path is ~600 B) by a loop of 32-bit
    // words: set() needs a subarray, an allocation per record, and a byte loop
    // was a quarter of the RTP path (measured: bench/sip, CPU profile). Large
    // records (SIP, HTTP) by set().
    const dst = sink.u8;
    const d32 = this.sink32;
    if (n > 1024) dst.set(s.subarray(0, n), at);
    else if (d32 !== null && (at & 3) === 0) {
      const words = n >> 2;
      const s32 = this.scratch32;
      const base = at >> 2;
      for (let k = 0; k < words; k++) d32[base + k] = s32[k];
      for (let k = words << 2; k < n; k++) dst[at + k] = s[k];
    } else for (let k = 0; k < n; k++) dst[at + k] = s[k];
    sink.commit(at);
    st.records++;
    st.bytes += n;
    return true;
  }

  /** The fast path (fast-path.ts): the parser writes the frame's record in place in the batch; false leaves the frame to the decoder. */
  private commitFast(): boolean {
    const d = this.direct!;
    const W = this.sink32!;
    const f = this.fastFrame;
    let at = d.open();
    let end = this.fast!.fastFrame!(f, W, at >> 2, Math.min(d.limit, at + this.maxRecord) >> 2, d.keys);
    if (end === -1 && d.pending > 0) {
      d.flush();
      at = d.open();
      end = this.fast!.fastFrame!(f, W, at >> 2, Math.min(d.limit, at + this.maxRecord) >> 2, d.keys);
    }
    if (end === -2) {
      // Taken without a record (rtp with per_packet off: counted in its stream's statistics).
      this.stats.parserSummarised[this.fastIndex]++;
      this.stats.fastFrames++;
      const ds = this.decoder.stats;
      ds.frames++;
      ds.bytes += f.caplen;
      return true;
    }
    if (end <= 0) return false;
    const st = this.stats;
    st.parserRecords[this.fastIndex]++;
    st.fastRecords++;
    st.fastFrames++;
    const ds = this.decoder.stats;
    ds.frames++;
    ds.bytes += f.caplen;
    if (this.fastDropBy >= 0) {
      st.processorDrops[this.fastDropBy]++; // written, never closed: the batch's next record overwrites it
      return true;
    }
    d.close(end << 2);
    st.records++;
    st.bytes += (end << 2) - at;
    return true;
  }

  /** Encodes the current record in place in a direct sink; when the batch has no room left, flushes it and tries once more. */
  private commitDirect(d: DirectSink): boolean {
    const st = this.stats;
    let at = d.open();
    let end = this.encode(this.record, d.u8, at, Math.min(d.limit, at + this.maxRecord));
    if (end < 0 && d.pending > 0) {
      d.flush();
      at = d.open();
      end = this.encode(this.record, d.u8, at, Math.min(d.limit, at + this.maxRecord));
    }
    if (end < 0) {
      st.encodeDrops++;
      return false;
    }
    d.close(end);
    st.records++;
    st.bytes += end - at;
    return true;
  }
}

/** What Parser.attach gets: the pipeline's record and an emit counted under the parser. */
class ParserEmitter implements RecordEmitter {
  constructor(
    private readonly pipeline: Pipeline,
    private readonly index: number,
  ) {}

  get record(): OutputRecord {
    return this.pipeline.record;
  }

  emit(): boolean {
    return this.pipeline.emitFor(this.index);
  }
}
