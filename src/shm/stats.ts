// A task's counters in shared memory: one segment per task
// (/otus-<scope>-stats), created by the supervisor with the send ring (so it
// outlives any child), one slot per process (0: the sender, 1 + i: capture
// process i). Each slot is written by the one process that holds it, with
// plain stores, no lock and no IPC; the supervisor reads every slot when it
// is scraped or asked for a task's counters. A process that takes a slot
// left by an earlier incarnation (a restart) reads its counters and adds its
// own to them, so a counter never goes backwards.
//
// A slot names its values: a list of names ('\n'-separated, each prefixed
// with its kind: `c` a counter, carried over a restart; `g` a gauge, the
// current process's own) and a Float64Array of values in the same order.
// Names are appended (a counter that appears later, such as a new decode
// error code), never removed or reordered, so a value's index is fixed once
// named; the writer stores the value first, then the name, then bumps the
// generation, and a reader retries when the generation moved while it read.
// One value is one aligned 8-byte store: a reader never sees half of it. A
// copy of several values is bracketed by a sequence number (odd while
// writing, as a seqlock), so a reader that wants one moment's values (the
// accounting of a task: frames against drops) retries until it has them; the
// writer never waits.
//
// Layout (little-endian, byte offsets):
//   0  u32 magic 'OTST'   4 u32 version   8 u32 slots   12 u32 slot bytes
//   16 i32 owner pid      24 f64 owner start time (segment.ts)
//   4096 + s * SLOT_BYTES, slot s:
//     +0  i32 pid of the process holding it (0: none)
//     +4  u32 names generation (bumped after names were appended)
//     +8  u32 bytes of names
//     +12 u32 names given up (no room left)
//     +16 f64 holder's start time   +24 f64 incarnations (times a process took the slot)
//     +32 u32 sequence number (odd while a copy is being written)
//     +64 names, NAMES_BYTES
//     +VALUES_OFF values, f64 × MAX_VALUES

import { native } from '../native.js';
import { OtusError } from '../util/errors.js';
import { STATS_MAGIC, createSegment, isProcessAlive, processStartTime, segmentName, unlinkSegment, writeOwner } from './segment.js';

export { STATS_MAGIC };
export const STATS_VERSION = 1;
const HEADER_BYTES = 4096;
export const SLOT_BYTES = 64 * 1024;
const NAMES_OFF = 64;
const VALUES_OFF = 32 * 1024;
const NAMES_BYTES = VALUES_OFF - NAMES_OFF;
export const MAX_VALUES = (SLOT_BYTES - VALUES_OFF) / 8;
/** 64 capture processes (the ring's producer slots) and 16 senders (MAX_SENDERS in src/config/task.ts). */
export const MAX_STATS_SLOTS = 80;

// i32 indices of the header and of a slot (relative to the slot)
const I_MAGIC = 0;
const I_VERSION = 1;
const I_SLOTS = 2;
const I_SLOT_BYTES = 3;
const S_PID = 0;
const S_GEN = 1;
const S_NAMES_LEN = 2;
const S_GIVEN_UP = 3;
const S_SEQ = 8;
/**
 * A reader retries for a moment's values while the writer copies: a copy
 * takes about a microsecond, unless the writer is descheduled in it. Past
 * 1 ms it looks whether the writer is alive (one killed mid-copy leaves its
 * sequence odd: then the values are taken as they are), and past 100 ms it
 * takes them anyway.
 */
const CHECK_WRITER_MS = 1;
const GIVE_UP_MS = 100;
// f64 indices relative to the slot
const SF_START = 2;
const SF_INCARNATIONS = 3;

export type StatKind = 'c' | 'g';

export function statsSegmentName(scope: string): string {
  return segmentName(scope, 'stats');
}

/** The slot of a task's sender (0) and of its capture process `i` (1 + i). */
export const SENDER_SLOT = 0;
export const captureSlot = (i: number): number => 1 + i;
/** Sender `j` of a task with `workers` capture processes: the first keeps slot 0, the others follow the capture processes. */
export const senderSlot = (j: number, workers: number): number => (j === 0 ? SENDER_SLOT : workers + j);

/** One slot's names and values, as a reader sees them. */
export interface SlotValues {
  pid: number;
  incarnations: number;
  /** name → value, in the order they were named. */
  values: Map<string, number>;
  kinds: Map<string, StatKind>;
}

/** Reads the slots of a stats segment (the live mapping, or a copy kept after the task stopped). */
export class StatsView {
  readonly slots: number;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly u8: Uint8Array;
  private readonly cache: ({ gen: number; len: number; names: string[]; kinds: StatKind[] } | null)[];
  private readonly decoder = new TextDecoder();
  private readonly scratch = new Float64Array(MAX_VALUES);

  constructor(readonly buf: ArrayBuffer) {
    this.i32 = new Int32Array(buf);
    this.f64 = new Float64Array(buf);
    this.u8 = new Uint8Array(buf);
    this.slots = this.i32[I_SLOTS]!;
    this.cache = Array.from({ length: this.slots }, () => null);
  }

  /**
   * Slot `s`: its names and values, one moment's: the values are copied out
   * (a few hundred ns) between two reads of the sequence number, and again
   * while the writer is mid-copy or appending names.
   */
  read(s: number): SlotValues {
    const base = HEADER_BYTES + s * SLOT_BYTES;
    const bi = base >> 2;
    const bf = base >> 3;
    const v0 = (base + VALUES_OFF) >> 3;
    let c = this.cache[s]!;
    const vals = this.scratch;
    const t0 = performance.now();
    let settle = false; // take the values as they are
    for (let attempt = 0; ; attempt++) {
      if (!settle && (attempt & 63) === 63) settle = this.waitedEnough(bi, performance.now() - t0);
      const seq = Atomics.load(this.i32, bi + S_SEQ);
      if ((seq & 1) !== 0 && !settle) continue;
      const gen = Atomics.load(this.i32, bi + S_GEN);
      const len = Math.min(this.i32[bi + S_NAMES_LEN]!, NAMES_BYTES);
      if (c === null || c.gen !== gen || c.len !== len) {
        const text = this.decoder.decode(this.u8.subarray(base + NAMES_OFF, base + NAMES_OFF + len));
        const lines = text === '' ? [] : text.split('\n');
        if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
        c = { gen, len, names: lines.map((l) => l.slice(1)), kinds: lines.map((l) => l[0] as StatKind) };
        continue; // names took long to read: take the values afresh
      }
      const n = Math.min(c.names.length, MAX_VALUES);
      vals.set(this.f64.subarray(v0, v0 + n));
      if ((Atomics.load(this.i32, bi + S_GEN) === gen && Atomics.load(this.i32, bi + S_SEQ) === seq) || settle) {
        this.cache[s] = c;
        const values = new Map<string, number>();
        const kinds = new Map<string, StatKind>();
        for (let i = 0; i < n; i++) {
          values.set(c.names[i]!, vals[i]!);
          kinds.set(c.names[i]!, c.kinds[i]!);
        }
        return { pid: this.i32[bi + S_PID]!, incarnations: this.f64[bf + SF_INCARNATIONS]!, values, kinds };
      }
    }
  }

  /** Whether to stop waiting for a slot's writer to finish its copy. */
  private waitedEnough(bi: number, ms: number): boolean {
    if (ms >= GIVE_UP_MS) return true;
    if (ms < CHECK_WRITER_MS) return false;
    const pid = this.i32[bi + S_PID]!;
    return pid === 0 || !isProcessAlive(pid);
  }

  /** A copy of the whole segment, to read after it is gone. */
  copy(): StatsView {
    return new StatsView(this.buf.slice(0));
  }
}

/** A task's stats segment as its creator (the supervisor) holds it. close() removes it. */
export class StatsSegment {
  readonly name: string;
  readonly view: StatsView;
  private closed = false;

  private constructor(name: string, buf: ArrayBuffer) {
    this.name = name;
    this.view = new StatsView(buf);
  }

  /** Creates the segment exclusively (0600, owned by this process) with `slots` slots. */
  static create(scope: string, slots: number): StatsSegment {
    if (!Number.isInteger(slots) || slots < 1 || slots > MAX_STATS_SLOTS) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `stats segment: 1 to ${MAX_STATS_SLOTS} slots, got ${slots}`);
    }
    const name = statsSegmentName(scope);
    const buf = createSegment(name, HEADER_BYTES + slots * SLOT_BYTES);
    try {
      writeOwner(buf);
      const i32 = new Int32Array(buf, 0, 16);
      i32[I_VERSION] = STATS_VERSION;
      i32[I_SLOTS] = slots;
      i32[I_SLOT_BYTES] = SLOT_BYTES;
      Atomics.store(i32, I_MAGIC, STATS_MAGIC);
    } catch (e) {
      unlinkSegment(name);
      throw e;
    }
    return new StatsSegment(name, buf);
  }

  /** Unlinks the segment (mapped processes keep their mapping). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    unlinkSegment(this.name);
  }
}

/**
 * The writer of one slot: a child process's own counters. open() takes the
 * slot and adopts what an earlier incarnation left in it: its names (same
 * order) and, for counters, its values as the base this process adds to.
 * Control plane (names, open) may allocate; set() and the typed views are
 * plain stores.
 */
export class StatsWriter {
  /** The slot's values: index i is the i-th name. */
  readonly values: Float64Array;
  /** What earlier incarnations counted, per index (0 for gauges and new names). */
  readonly base: Float64Array;
  private readonly i32: Int32Array;
  private readonly u8: Uint8Array;
  private readonly slotI: number;
  private readonly index = new Map<string, number>();
  private namesLen: number;
  private readonly encoder = new TextEncoder();

  private constructor(
    readonly name: string,
    readonly slot: number,
    buf: ArrayBuffer,
  ) {
    const base = HEADER_BYTES + slot * SLOT_BYTES;
    this.i32 = new Int32Array(buf);
    this.u8 = new Uint8Array(buf, base + NAMES_OFF, NAMES_BYTES);
    this.slotI = base >> 2;
    this.values = new Float64Array(buf, base + VALUES_OFF, MAX_VALUES);
    this.base = new Float64Array(MAX_VALUES);
    this.namesLen = this.i32[this.slotI + S_NAMES_LEN]!;
    const prior = new StatsView(buf).read(slot);
    let i = 0;
    for (const [n, k] of prior.kinds) {
      this.index.set(n, i);
      if (k === 'c') this.base[i] = this.values[i]!;
      i++;
    }
  }

  /** Takes slot `slot` of the task's segment (free, or held by a dead process). */
  static open(scope: string, slot: number): StatsWriter {
    const name = statsSegmentName(scope);
    const buf = native.shmOpen(name, 0, false, 0);
    const i32 = new Int32Array(buf, 0, 16);
    if (buf.byteLength < HEADER_BYTES || Atomics.load(i32, I_MAGIC) !== STATS_MAGIC || i32[I_VERSION] !== STATS_VERSION) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${name}: not an Otus stats segment of version ${STATS_VERSION} (or not initialised yet)`);
    }
    if (!(slot >= 0 && slot < i32[I_SLOTS]!) || buf.byteLength < HEADER_BYTES + i32[I_SLOTS]! * SLOT_BYTES) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${name}: no slot ${slot} (it has ${i32[I_SLOTS]})`);
    }
    const si = (HEADER_BYTES + slot * SLOT_BYTES) >> 2;
    const sf = (HEADER_BYTES + slot * SLOT_BYTES) >> 3;
    const all = new Int32Array(buf, 0, (HEADER_BYTES + (slot + 1) * SLOT_BYTES) >> 2);
    const f64 = new Float64Array(buf, 0, (HEADER_BYTES + (slot + 1) * SLOT_BYTES) >> 3);
    const holder = Atomics.load(all, si + S_PID);
    if (holder !== 0 && holder !== process.pid && isProcessAlive(holder, f64[sf + SF_START])) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${name}: slot ${slot} is held by process ${holder}`);
    }
    if (Atomics.compareExchange(all, si + S_PID, holder, process.pid) !== holder) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${name}: slot ${slot} was taken meanwhile`);
    }
    f64[sf + SF_START] = processStartTime(process.pid);
    f64[sf + SF_INCARNATIONS]!++;
    // A predecessor killed mid-copy left its sequence odd.
    Atomics.store(all, si + S_SEQ, (Atomics.load(all, si + S_SEQ) + 1) & ~1);
    return new StatsWriter(name, slot, buf);
  }

  /** The index of `name` (appended with its kind when new); -1 when the slot has no room left (counted). */
  id(name: string, kind: StatKind = 'c'): number {
    const i = this.index.get(name);
    if (i !== undefined) return i;
    const line = this.encoder.encode(`${kind}${name}\n`);
    const n = this.index.size;
    if (n >= MAX_VALUES || this.namesLen + line.length > NAMES_BYTES || name.includes('\n')) {
      this.i32[this.slotI + S_GIVEN_UP]!++;
      return -1;
    }
    this.values[n] = 0;
    this.base[n] = 0;
    this.u8.set(line, this.namesLen);
    this.namesLen += line.length;
    this.i32[this.slotI + S_NAMES_LEN] = this.namesLen;
    Atomics.add(this.i32, this.slotI + S_GEN, 1);
    this.index.set(name, n);
    return n;
  }

  /** Before a copy of several values: readers wait for end() to take them as one moment's. */
  begin(): void {
    Atomics.add(this.i32, this.slotI + S_SEQ, 1);
  }

  end(): void {
    Atomics.add(this.i32, this.slotI + S_SEQ, 1);
  }

  /** A counter: what this process counted, added to what earlier incarnations left. */
  count(i: number, v: number): void {
    if (i >= 0) this.values[i] = this.base[i]! + v;
  }

  /** A gauge: this process's value now. */
  gauge(i: number, v: number): void {
    if (i >= 0) this.values[i] = v;
  }

  /** Publishes named values (control-plane rate): counters added to the base, gauges as they are. */
  publish(counters: Record<string, number>, gauges: Record<string, number> = {}): void {
    this.begin();
    for (const k in counters) this.count(this.id(k, 'c'), counters[k]!);
    for (const k in gauges) this.gauge(this.id(k, 'g'), gauges[k]!);
    this.end();
  }

  /** Lets the slot go (its values stay for the supervisor and the next incarnation). */
  close(): void {
    Atomics.compareExchange(this.i32, this.slotI + S_PID, process.pid, 0);
  }
}

/** Flattens nested counters ({a: 1, b: {c: 2}} → a, b.c) under `prefix`; non-numbers are skipped. */
export function flatten(o: Record<string, unknown>, prefix: string, out: Record<string, number> = {}): Record<string, number> {
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'number') out[prefix + k] = v;
    else if (v !== null && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, `${prefix}${k}.`, out);
  }
  return out;
}

/** The values of `s` under `prefix`, the prefix cut off. */
export function under(s: Map<string, number>, prefix: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of s) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

/** The inverse of flatten: dotted names back into nested objects. */
export function unflatten(flat: Record<string, number>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(flat)) {
    const parts = k.split('.');
    let o = out;
    for (let i = 0; i < parts.length - 1; i++) o = (o[parts[i]!] ??= {}) as Record<string, unknown>;
    o[parts[parts.length - 1]!] = v;
  }
  return out;
}
