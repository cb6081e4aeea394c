// The send ring: one POSIX shared-memory segment per task, written by every
// capture process of the task (producers) and read by its sender (the one
// consumer). The supervisor creates it (createRing) and owns it, so a sender
// that dies or is restarted leaves the ring, and what it holds, in place: the
// next sender attaches (RingConsumer.open) and resumes at the published
// consumer position. Modelled on the Linux BPF ring buffer (cilium/ebpf ringbuf):
// power-of-two data area mapped twice back to back so no record is split,
// 8-byte record headers with busy/discard bits, producers reserve by moving
// the producer position, write in place and commit; the consumer reads in
// order, stops at a busy record and publishes its position in batches.
//
// Differences from the kernel's, and why:
// - Producers are separate processes without a shared lock, so a reservation
//   is a compare-and-swap on the producer position and the header is written
//   just after it. The consumer zeroes every byte it releases, so a zero
//   header means "reserved, header not written yet" and is treated as busy.
// - Producers never block or wait for each other. Ring full: the record is
//   dropped (drop-tail) and counted in the producer's slot.
// - The consumer drops the oldest records (drop-head) when the backlog is above
//   the high watermark, down to the low watermark, and counts them.
// - A producer killed between reserve and commit must not wedge the ring: a
//   record still busy after `abandonMs` whose producer is dead (or after
//   `forceAbandonMs` in any case) is skipped and counted. Its length comes from
//   its header, or, when the producer died between the compare-and-swap and
//   writing the header, from the reservation it announced in its slot first.
//
// Segment layout (little-endian, byte offsets):
//   0     u32 magic 'OTRG'          4   u32 version          8  u32 data bytes (2^k)
//   12    u32 producer slots (64)   16  i32 owner pid        24 f64 owner start time
//   32    u32 high watermark bytes  36  u32 low watermark    40 u32 abandonMs  44 u32 forceAbandonMs
//   48    i32 consumer pid (0: none attached)  52 u32 position a release is zeroing up to
//   56    f64 consumer start time
//   64    u32 producer position (bytes, wraps at 2^32)            own cache line
//   128   u32 consumer position                                   own cache line
//   192   i32 consumer sleeping flag                               own cache line
//   256   f64 consumer counters: records, bytes, drop-head records, drop-head bytes,
//             abandoned records, abandoned bytes, discarded records, wakeups,
//             drop-head weight, abandoned weight
//   4096  producer slots, 64 bytes each:
//         +0 i32 pid  +4 u32 announced reservation position  +8 u32 announced length (0: none)
//         +12 u32 announced weight  +16 f64 start time  +24 f64 records  +32 f64 bytes  +40 f64 drop-tail records
//         +48 f64 drop-tail bytes  +56 f64 abandoned records (written by the consumer)
//   8192  data area, 2^k bytes, then the same pages again (the mirror)
// Record: i32 length | BUSY (1<<31) | DISCARD (1<<30), i32 producer slot + 1 | weight << 8,
// payload, padded to 8 bytes. The weight is what the record stands for to its
// producer (a batch: its wire records), so records the ring drops or skips are
// counted in the producer's units too.
//
// Wakeups: a consumer about to sleep sets the sleeping flag; a producer that
// commits a record and finds it set clears it and writes a byte into the
// ring's FIFO (/dev/shm/<segment>.wake), which the consumer's event loop
// polls. The creator keeps a read end of the FIFO open for the ring's life,
// so producers can open it and signal while no consumer is attached. Its main thread wakes directly: a futex wait needs a thread-pool
// thread, and then a second wakeup to reach the main thread (measured at
// 20 k records a second, one wakeup each: see docs/architecture.md).

import { closeSync, constants, fstatSync, openSync, rmSync } from 'node:fs';
import { native, type NativeHandle } from '../native.js';
import { OtusError } from '../util/errors.js';
import { RING_MAGIC, createSegment, isProcessAlive, processStartTime, segmentName, wakePath, writeOwner } from './segment.js';

export { RING_MAGIC };
export const RING_VERSION = 3;
export const RING_CTRL_BYTES = 8192;
export const RING_MAX_PRODUCERS = 64;
const SLOT_BYTES = 64;
const SLOTS_OFF = 4096;

// i32 indices into the control area
const I_MAGIC = 0;
const I_VERSION = 1;
const I_DATA = 2;
const I_SLOTS = 3;
const I_HIGH = 8;
const I_LOW = 9;
const I_ABANDON = 10;
const I_FORCE = 11;
const I_CONS_PID = 12;
const I_RELEASING = 13;
const I_PROD = 16;
const I_CONS = 32;
const I_SLEEP = 48;
// f64 indices
const F_RECORDS = 32;
const F_BYTES = 33;
const F_DROP_HEAD = 34;
const F_DROP_HEAD_BYTES = 35;
const F_ABANDONED = 36;
const F_ABANDONED_BYTES = 37;
const F_DISCARDED = 38;
const F_WAKEUPS = 39;
const F_DROP_HEAD_WEIGHT = 40;
const F_ABANDONED_WEIGHT = 41;
const F_CONS_START = 7;
// producer slot: i32 offsets and f64 offsets from the slot's start
const S_PID = 0;
const S_PEND_POS = 1;
const S_PEND_LEN = 2;
const S_PEND_WEIGHT = 3;
const SF_START = 2;
const SF_RECORDS = 3;
const SF_BYTES = 4;
const SF_DROP_TAIL = 5;
const SF_DROP_TAIL_BYTES = 6;
const SF_ABANDONED = 7;

const BUSY = 1 << 31;
const DISCARD = 1 << 30;
const LEN_MASK = DISCARD - 1;
const HDR = 8;
const TAG_MASK = 0xff;
/** Largest weight of one record (the tag's upper 24 bits). */
export const RING_MAX_WEIGHT = (1 << 24) - 1;

export interface RingOptions {
  /** Data area in bytes: a power of two, 64 KiB to 256 MiB. */
  dataBytes: number;
  /** Backlog fraction above which the consumer drops the oldest records (design: 0.8). */
  highWatermark?: number;
  /** Backlog fraction drop-head brings the ring down to (design: 0.3). */
  lowWatermark?: number;
  /** A busy record whose producer is dead is skipped after this long (ms). */
  abandonMs?: number;
  /** A busy record is skipped after this long even if its producer looks alive (ms). */
  forceAbandonMs?: number;
}

export interface RingProducerStats {
  index: number;
  pid: number;
  records: number;
  bytes: number;
  dropTail: number;
  dropTailBytes: number;
  abandoned: number;
}

export interface RingStats {
  dataBytes: number;
  used: number;
  records: number;
  bytes: number;
  dropHead: number;
  dropHeadBytes: number;
  abandoned: number;
  abandonedBytes: number;
  discarded: number;
  wakeups: number;
  /** Drop-head and abandoned records in their producers' units (the weights they were reserved with). */
  dropHeadWeight: number;
  abandonedWeight: number;
  producers: RingProducerStats[];
}

/** `/otus-<task>-ring`, and `-ring<i>` for a task's further send rings (one per sender). */
export function ringSegmentName(task: string, ring = 0): string {
  return segmentName(task, ring === 0 ? 'ring' : `ring${ring}`);
}

function badArg(msg: string): never {
  throw new OtusError('OTUS_ERR_BAD_ARGUMENT', msg);
}

/** The mapping and its views, shared by producer and consumer. */
class RingMap {
  readonly name: string;
  readonly buf: ArrayBuffer;
  readonly u8: Uint8Array;
  readonly view: DataView;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly size: number;
  readonly mask: number;

  constructor(name: string, buf: ArrayBuffer) {
    this.name = name;
    this.buf = buf;
    this.u8 = new Uint8Array(buf);
    this.view = new DataView(buf);
    this.i32 = new Int32Array(buf, 0, buf.byteLength >> 2);
    this.f64 = new Float64Array(buf, 0, RING_CTRL_BYTES >> 3);
    this.size = this.i32[I_DATA] >>> 0;
    this.mask = this.size - 1;
  }

  /** Bytes written and not yet consumed (no allocation: replay paces on it). */
  used(): number {
    return (Atomics.load(this.i32, I_PROD) - Atomics.load(this.i32, I_CONS)) >>> 0;
  }

  /** Pid of the attached consumer, 0 when none is. */
  consumerPid(): number {
    return Atomics.load(this.i32, I_CONS_PID);
  }

  /** Is a consumer attached and its process alive? (A killed one leaves its pid behind.) */
  consumerAlive(): boolean {
    const pid = this.consumerPid();
    return pid !== 0 && isProcessAlive(pid, this.f64[F_CONS_START]);
  }

  stats(): RingStats {
    const f = this.f64;
    const producers: RingProducerStats[] = [];
    for (let i = 0; i < RING_MAX_PRODUCERS; i++) {
      const s = (SLOTS_OFF + i * SLOT_BYTES) >> 3;
      const pid = this.i32[(SLOTS_OFF + i * SLOT_BYTES) >> 2];
      if (pid === 0 && f[s + SF_RECORDS] === 0 && f[s + SF_DROP_TAIL] === 0 && f[s + SF_ABANDONED] === 0) continue;
      producers.push({
        index: i,
        pid,
        records: f[s + SF_RECORDS],
        bytes: f[s + SF_BYTES],
        dropTail: f[s + SF_DROP_TAIL],
        dropTailBytes: f[s + SF_DROP_TAIL_BYTES],
        abandoned: f[s + SF_ABANDONED],
      });
    }
    return {
      dataBytes: this.size,
      used: this.used(),
      records: f[F_RECORDS],
      bytes: f[F_BYTES],
      dropHead: f[F_DROP_HEAD],
      dropHeadBytes: f[F_DROP_HEAD_BYTES],
      abandoned: f[F_ABANDONED],
      abandonedBytes: f[F_ABANDONED_BYTES],
      discarded: f[F_DISCARDED],
      wakeups: f[F_WAKEUPS],
      dropHeadWeight: f[F_DROP_HEAD_WEIGHT],
      abandonedWeight: f[F_ABANDONED_WEIGHT],
      producers,
    };
  }
}

function mapExisting(name: string): RingMap {
  const buf = native.shmOpen(name, 0, false, RING_CTRL_BYTES, true);
  const i32 = new Int32Array(buf, 0, 16);
  if (Atomics.load(i32, I_MAGIC) !== RING_MAGIC || i32[I_VERSION] !== RING_VERSION) {
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${name}: not an Otus send ring of version ${RING_VERSION} (or not initialised yet)`);
  }
  if (buf.byteLength !== RING_CTRL_BYTES + 2 * (i32[I_DATA] >>> 0)) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${name}: size does not match its header`);
  return new RingMap(name, buf);
}

/**
 * A producer: one per capture process. reserve() returns the byte offset in
 * `u8`/`view` to write `len` bytes at, or -1 (ring full, dropped and counted);
 * commit(off) or discard(off) publishes it. Allocates nothing per record.
 */
export class RingProducer {
  readonly map: RingMap;
  readonly index: number;
  readonly u8: Uint8Array;
  readonly view: DataView;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly size: number;
  private readonly mask: number;
  private readonly maxLen: number;
  private readonly slot: number; // i32 index of the slot
  private readonly fslot: number; // f64 index of the slot
  private readonly tag: number;
  /** The consumer's wakeup FIFO, write end. */
  private readonly wakeFd: number;
  private closed = false;

  private constructor(map: RingMap, index: number) {
    this.map = map;
    this.index = index;
    this.wakeFd = native.fifoOpen(wakePath(map.name), false);
    this.u8 = map.u8;
    this.view = map.view;
    this.i32 = map.i32;
    this.f64 = map.f64;
    this.size = map.size;
    this.mask = map.mask;
    this.maxLen = Math.min(map.size >>> 2, LEN_MASK);
    this.slot = (SLOTS_OFF + index * SLOT_BYTES) >> 2;
    this.fslot = (SLOTS_OFF + index * SLOT_BYTES) >> 3;
    this.tag = index + 1;
  }

  /**
   * Attaches to the task's ring. With `index`, takes that producer slot (a
   * capture process pins itself by its index) if it is free or its holder is
   * dead; otherwise the first such slot. Counters in a slot carry over.
   */
  static open(task: string, index = -1, ring = 0): RingProducer {
    const map = mapExisting(ringSegmentName(task, ring));
    const pid = process.pid;
    const start = processStartTime(pid);
    const first = index >= 0 ? index : 0;
    const last = index >= 0 ? index : RING_MAX_PRODUCERS - 1;
    if (index >= RING_MAX_PRODUCERS) badArg(`producer index ${index}: at most ${RING_MAX_PRODUCERS - 1}`);
    for (let i = first; i <= last; i++) {
      const s = (SLOTS_OFF + i * SLOT_BYTES) >> 2;
      const fs = (SLOTS_OFF + i * SLOT_BYTES) >> 3;
      const holder = Atomics.load(map.i32, s + S_PID);
      if (holder !== 0 && holder !== pid && isProcessAlive(holder, map.f64[fs + SF_START])) continue;
      if (Atomics.compareExchange(map.i32, s + S_PID, holder, pid) !== holder) continue;
      map.f64[fs + SF_START] = start;
      Atomics.store(map.i32, s + S_PEND_LEN, 0);
      return new RingProducer(map, i);
    }
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${map.name}: no free producer slot${index >= 0 ? ` at index ${index}` : ''}`);
  }

  /** Largest record payload accepted (a quarter of the data area). */
  get maxRecord(): number {
    return this.maxLen;
  }

  /**
   * Reserves `len` payload bytes. Returns the offset of the payload in `u8`,
   * or -1: no room (drop-tail) or too large; both counted as drop-tail.
   * `weight` (0 to RING_MAX_WEIGHT): what the record stands for, counted if
   * the consumer drops or skips it (a batch: its number of wire records).
   */
  reserve(len: number, weight = 0): number {
    const i32 = this.i32;
    if (len > this.maxLen || len < 0) return this.dropTail(len);
    const need = (len + HDR + 7) & ~7;
    const s = this.slot;
    for (;;) {
      const p = Atomics.load(i32, I_PROD);
      const c = Atomics.load(i32, I_CONS);
      const used = (p - c) | 0;
      // Negative: other producers and the consumer both moved on between the
      // two loads, so `p` is stale, not the ring full. Read again.
      if (used < 0) continue;
      if (used + need > this.size) return this.dropTail(len);
      // Announce the reservation before taking it, so a consumer can skip it
      // even if this process dies before the header is written. Plain stores:
      // the compare-and-swap below orders them (x86 TSO, and V8 does not move
      // memory operations across Atomics).
      i32[s + S_PEND_POS] = p;
      i32[s + S_PEND_WEIGHT] = weight;
      i32[s + S_PEND_LEN] = need;
      if (Atomics.compareExchange(i32, I_PROD, p, (p + need) | 0) === p) {
        const h = (RING_CTRL_BYTES + (p & this.mask)) >> 2;
        i32[h + 1] = this.tag | (weight << 8);
        Atomics.store(i32, h, len | BUSY);
        i32[s + S_PEND_LEN] = 0;
        return (h << 2) + HDR;
      }
      i32[s + S_PEND_LEN] = 0;
    }
  }

  /** Test hook: takes a reservation but "dies" before writing its header. */
  reserveWithoutHeader(len: number): number {
    const i32 = this.i32;
    const need = (len + HDR + 7) & ~7;
    for (;;) {
      const p = Atomics.load(i32, I_PROD);
      const used = (p - Atomics.load(i32, I_CONS)) | 0;
      if (used < 0) continue;
      if (used + need > this.size) return -1;
      i32[this.slot + S_PEND_POS] = p;
      i32[this.slot + S_PEND_LEN] = need;
      if (Atomics.compareExchange(i32, I_PROD, p, (p + need) | 0) === p) return RING_CTRL_BYTES + (p & this.mask) + HDR;
    }
  }

  /** Publishes the record whose payload starts at `off` (from reserve). */
  commit(off: number): void {
    const i32 = this.i32;
    const h = (off - HDR) >> 2;
    const len = i32[h] & LEN_MASK;
    Atomics.store(i32, h, len);
    const f = this.f64;
    f[this.fslot + SF_RECORDS]++;
    f[this.fslot + SF_BYTES] += len;
    // Wake the consumer only if it said it is going to sleep: no syscall on the hot path.
    if (Atomics.load(i32, I_SLEEP) !== 0) this.wake();
  }

  /** Gives a reservation back: the consumer skips it. */
  discard(off: number): void {
    const h = (off - HDR) >> 2;
    Atomics.store(this.i32, h, (this.i32[h] & LEN_MASK) | DISCARD);
  }

  private wake(): void {
    if (Atomics.compareExchange(this.i32, I_SLEEP, 1, 0) === 1) native.fdSignal(this.wakeFd);
  }

  private dropTail(len: number): number {
    this.f64[this.fslot + SF_DROP_TAIL]++;
    this.f64[this.fslot + SF_DROP_TAIL_BYTES] += len;
    return -1;
  }

  stats(): RingProducerStats {
    const f = this.f64;
    const s = this.fslot;
    return {
      index: this.index,
      pid: this.i32[this.slot + S_PID],
      records: f[s + SF_RECORDS],
      bytes: f[s + SF_BYTES],
      dropTail: f[s + SF_DROP_TAIL],
      dropTailBytes: f[s + SF_DROP_TAIL_BYTES],
      abandoned: f[s + SF_ABANDONED],
    };
  }

  /** Frees the producer slot (its counters stay). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.compareExchange(this.i32, this.slot + S_PID, process.pid, 0);
    closeSync(this.wakeFd);
  }
}

/**
 * The consumer: the task's sender process; attaches to the ring its supervisor created.
 * next() returns the length of the next record (its payload at `off` in
 * `u8`/`view`), or -1 when none is ready; the record stays valid until the
 * next call to next() or release(). Allocates nothing per record.
 */
export class RingConsumer {
  readonly map: RingMap;
  readonly u8: Uint8Array;
  readonly view: DataView;
  /** Payload offset of the record last returned by next(). */
  off = 0;
  /** Payload length of the record last returned by next(). */
  len = 0;
  /** Producer slot index of the record last returned by next(), and the weight it was reserved with. */
  producer = 0;
  weight = 0;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly size: number;
  private readonly mask: number;
  private readonly high: number;
  private readonly low: number;
  private readonly batchBytes: number;
  private pos = 0; // local consumer position: end of the record last returned
  private released = 0; // position published to producers
  private stuckPos = 0;
  private stuck = false;
  private stuckSince = 0;
  private closed = false;
  /** The wakeup FIFO (read end), its poll (from the first wait until close), the pending wait's resolve and timer. */
  private readonly wakeFd: number;
  private poll: NativeHandle | null = null;
  private waiter: ((timedOut: boolean) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timerMs = 0;

  private constructor(map: RingMap, wakeFd: number) {
    this.wakeFd = wakeFd;
    this.map = map;
    this.u8 = map.u8;
    this.view = map.view;
    this.i32 = map.i32;
    this.f64 = map.f64;
    this.size = map.size;
    this.mask = map.mask;
    this.high = map.i32[I_HIGH] >>> 0;
    this.low = map.i32[I_LOW] >>> 0;
    this.batchBytes = Math.max(4096, map.size >>> 4);
    this.pos = this.released = Atomics.load(map.i32, I_CONS);
  }

  /**
   * Attaches to the task's ring (created by the supervisor: createRing) as its
   * one consumer. Resumes at the consumer position published in the ring, so
   * a restarted sender reads every record committed and not yet released by
   * the one before it; finishes a release the previous consumer died in.
   */
  static open(scope: string, ring = 0): RingConsumer {
    const map = mapExisting(ringSegmentName(scope, ring));
    const i32 = map.i32;
    const holder = Atomics.load(i32, I_CONS_PID);
    if (holder !== 0 && holder !== process.pid && isProcessAlive(holder, map.f64[F_CONS_START])) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${map.name}: already has a consumer (process ${holder}); a ring has one sender`);
    }
    const wakeFd = openWakeFifo(map.name);
    map.f64[F_CONS_START] = processStartTime(process.pid);
    Atomics.store(i32, I_CONS_PID, process.pid);
    // A consumer killed inside release(): its space is zeroed up to I_RELEASING at most; finish it.
    const cons = Atomics.load(i32, I_CONS);
    const releasing = Atomics.load(i32, I_RELEASING);
    const n = (releasing - cons) >>> 0;
    if (n !== 0 && n <= ((Atomics.load(i32, I_PROD) - cons) >>> 0)) {
      const start = RING_CTRL_BYTES + (cons & map.mask);
      map.u8.fill(0, start, start + n);
      Atomics.store(i32, I_CONS, releasing);
    }
    Atomics.store(i32, I_RELEASING, Atomics.load(i32, I_CONS));
    // The previous consumer may have died asleep: producers would keep waking nobody.
    Atomics.store(i32, I_SLEEP, 0);
    return new RingConsumer(map, wakeFd);
  }

  get name(): string {
    return this.map.name;
  }

  /** Bytes reserved and not yet released by the consumer. */
  get backlog(): number {
    return (Atomics.load(this.i32, I_PROD) - this.released) >>> 0;
  }

  next(): number {
    const i32 = this.i32;
    let c = this.pos;
    if (((c - this.released) >>> 0) >= this.batchBytes) this.release();
    for (;;) {
      const prod = Atomics.load(i32, I_PROD);
      if (c === prod) return -1;
      if (((prod - c) >>> 0) > this.high) {
        this.dropHead(c, prod); // stops early at a busy record, judged below
        c = this.pos;
        if (c === prod) return -1;
      }
      const h = (RING_CTRL_BYTES + (c & this.mask)) >> 2;
      const w = Atomics.load(i32, h);
      if (w === 0 || (w & BUSY) !== 0) {
        if (!this.skipAbandoned(c, w)) return -1;
        c = this.pos;
        continue;
      }
      this.stuck = false;
      const len = w & LEN_MASK;
      this.pos = c = (c + ((len + HDR + 7) & ~7)) | 0;
      if ((w & DISCARD) !== 0) {
        this.f64[F_DISCARDED]++;
        continue;
      }
      this.off = (h << 2) + HDR;
      this.len = len;
      const tag = i32[h + 1];
      this.producer = (tag & TAG_MASK) - 1;
      this.weight = tag >>> 8;
      this.f64[F_RECORDS]++;
      this.f64[F_BYTES] += len;
      return len;
    }
  }

  /**
   * Hands the space of every record returned so far back to the producers:
   * zeroes it (a zero header is how a fresh reservation looks) and publishes
   * the consumer position. next() does this every 1/16 of the ring.
   */
  release(): void {
    const from = this.released;
    const n = (this.pos - from) >>> 0;
    if (n === 0) return;
    const start = RING_CTRL_BYTES + (from & this.mask);
    // Announced first: a consumer opened after this one died mid-fill finishes the release.
    Atomics.store(this.i32, I_RELEASING, this.pos);
    this.u8.fill(0, start, start + n); // contiguous thanks to the mirror
    Atomics.store(this.i32, I_CONS, this.pos);
    this.released = this.pos;
  }

  /** Drop-head: skip the oldest committed records until the backlog is at the low watermark. */
  private dropHead(c: number, prod: number): void {
    const i32 = this.i32;
    const f = this.f64;
    while (((prod - c) >>> 0) > this.low) {
      const h = (RING_CTRL_BYTES + (c & this.mask)) >> 2;
      const w = Atomics.load(i32, h);
      if (w === 0 || (w & BUSY) !== 0) break; // never skip a record still being written
      const len = w & LEN_MASK;
      c = (c + ((len + HDR + 7) & ~7)) | 0;
      if ((w & DISCARD) !== 0) f[F_DISCARDED]++;
      else {
        f[F_DROP_HEAD]++;
        f[F_DROP_HEAD_BYTES] += len;
        f[F_DROP_HEAD_WEIGHT] += i32[h + 1] >>> 8;
      }
    }
    this.pos = c;
    this.release();
  }

  /**
   * The record at `c` is busy (or its header is not written yet). Skips it if
   * it has been so for longer than the bounds allow; returns whether it did.
   */
  private skipAbandoned(c: number, w: number): boolean {
    const now = performance.now();
    if (!this.stuck || this.stuckPos !== c) {
      this.stuck = true;
      this.stuckPos = c;
      this.stuckSince = now;
      return false;
    }
    const waited = now - this.stuckSince;
    const i32 = this.i32;
    if (waited < i32[I_ABANDON]) return false;
    let need = 0;
    let owner = -1;
    let weight = 0;
    if (w !== 0) {
      need = ((w & LEN_MASK) + HDR + 7) & ~7;
      const tag = i32[((RING_CTRL_BYTES + (c & this.mask)) >> 2) + 1];
      owner = (tag & TAG_MASK) - 1;
      weight = tag >>> 8;
    } else {
      // Died between the compare-and-swap and the header: its announcement says how long.
      for (let i = 0; i < RING_MAX_PRODUCERS; i++) {
        const s = (SLOTS_OFF + i * SLOT_BYTES) >> 2;
        if (i32[s + S_PEND_LEN] !== 0 && i32[s + S_PEND_POS] === c) {
          need = i32[s + S_PEND_LEN];
          weight = i32[s + S_PEND_WEIGHT];
          owner = i;
          break;
        }
      }
      if (need === 0) return false; // nobody announced it (yet): keep waiting
    }
    if (owner < 0 || owner >= RING_MAX_PRODUCERS || need <= 0 || need > this.size) return false;
    const s = (SLOTS_OFF + owner * SLOT_BYTES) >> 2;
    const fs = (SLOTS_OFF + owner * SLOT_BYTES) >> 3;
    const pid = i32[s + S_PID];
    const dead = pid === 0 || !isProcessAlive(pid, this.f64[fs + SF_START]);
    if (!dead && waited < i32[I_FORCE]) return false;
    this.pos = (c + need) | 0;
    this.stuck = false;
    if (w === 0) i32[s + S_PEND_LEN] = 0;
    this.f64[F_ABANDONED]++;
    this.f64[F_ABANDONED_BYTES] += need;
    this.f64[F_ABANDONED_WEIGHT] += weight;
    this.f64[fs + SF_ABANDONED]++;
    return true;
  }

  /** Is a committed (or discarded) record waiting at the consumer position? */
  private ready(): boolean {
    const w = Atomics.load(this.i32, (RING_CTRL_BYTES + (this.pos & this.mask)) >> 2);
    return w !== 0 && (w & BUSY) === 0;
  }

  /**
   * Sleeps until a record is ready or `timeoutMs` passes; returns at once if
   * one is. Releases what was read first, so producers get the space back.
   * If the head record is busy, sleeps at most a few ms at a time so that an
   * abandoned record is noticed. With spinUs, polls that long before sleeping.
   */
  async wait(timeoutMs: number, spinUs = 0): Promise<void> {
    this.release();
    const i32 = this.i32;
    if (spinUs > 0) {
      // Bounded polling first: under steady traffic a wakeup round trip per
      // record costs more than it saves (measured in bench/ring: see docs/architecture.md).
      const until = performance.now() + spinUs / 1000;
      while (performance.now() < until) if (this.ready()) return;
    }
    Atomics.store(i32, I_SLEEP, 1);
    // Dekker with commit(): we store the flag then read the head; a producer
    // stores the head then reads the flag. One of us sees the other.
    if (this.ready()) {
      Atomics.store(i32, I_SLEEP, 0);
      return;
    }
    const busy = Atomics.load(i32, I_PROD) !== this.pos;
    const t = busy ? Math.min(timeoutMs, Math.max(1, i32[I_ABANDON] >> 2)) : timeoutMs;
    this.poll ??= native.pollStart(this.wakeFd, this.onWake);
    // One timer, re-armed per wait (refresh: no allocation); a wakeup leaves it armed, and it finds no waiter when it fires.
    if (this.timer !== null && this.timerMs === t) this.timer.refresh();
    else {
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = setTimeout(this.onTimeout, t);
      this.timerMs = t;
    }
    const timedOut = await new Promise<boolean>(this.arm);
    Atomics.store(i32, I_SLEEP, 0);
    if (!timedOut) this.f64[F_WAKEUPS]++;
  }

  private readonly arm = (resolve: (timedOut: boolean) => void): void => {
    this.waiter = resolve;
  };

  /** The FIFO is readable: a producer's wakeup (or a late one from an earlier wait: harmless, the caller looks and waits again). */
  private readonly onWake = (): void => {
    native.fdDrain(this.wakeFd);
    this.settle(false);
  };

  private readonly onTimeout = (): void => {
    this.settle(true);
  };

  private settle(timedOut: boolean): void {
    const w = this.waiter;
    if (w === null) return;
    this.waiter = null;
    w(timedOut);
  }

  stats(): RingStats {
    return this.map.stats();
  }

  /** Detaches: releases what was read, closes its end of the FIFO; the ring stays (its creator removes it). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
    if (this.poll !== null) native.pollStop(this.poll);
    this.poll = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.settle(true);
    closeSync(this.wakeFd);
    Atomics.compareExchange(this.i32, I_CONS_PID, process.pid, 0);
  }
}

/** The consumer's end of the ring's FIFO: read-write (never end-of-file), non-blocking, and a FIFO (not a file put in its place). */
function openWakeFifo(segment: string): number {
  const path = wakePath(segment);
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  if (!fstatSync(fd).isFIFO()) {
    closeSync(fd);
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${path}: not a FIFO`);
  }
  return fd;
}

/**
 * A task's ring as its creator holds it (the supervisor): the segment, owned
 * by this process, and a read end of the wakeup FIFO, kept open so that
 * producers can signal while no consumer is attached. close() removes both.
 */
export class RingSegment {
  readonly name: string;
  readonly scope: string;
  private readonly map: RingMap;
  private wakeFd: number;

  constructor(scope: string, map: RingMap, wakeFd: number) {
    this.scope = scope;
    this.name = map.name;
    this.map = map;
    this.wakeFd = wakeFd;
  }

  /** Bytes committed or reserved and not yet released by a consumer. */
  used(): number {
    return this.map.used();
  }

  /** Pid of the attached consumer (0: none). */
  consumerPid(): number {
    return this.map.consumerPid();
  }

  consumerAlive(): boolean {
    return this.map.consumerAlive();
  }

  stats(): RingStats {
    return this.map.stats();
  }

  /** Unlinks the segment and its FIFO (mapped processes keep their mapping). Idempotent. */
  close(): void {
    if (this.wakeFd < 0) return;
    closeSync(this.wakeFd);
    this.wakeFd = -1;
    native.shmUnlink(this.name);
    rmSync(wakePath(this.name), { force: true });
  }
}

/**
 * Creates a task's ring exclusively (segment and FIFO 0600, owned by this
 * process). A name that exists is OTUS_ERR_SHM_EXISTS.
 */
export function createRing(scope: string, opts: RingOptions, ring = 0): RingSegment {
  const { dataBytes } = opts;
  if (!Number.isInteger(dataBytes) || dataBytes < 65536 || dataBytes > 1 << 28 || (dataBytes & (dataBytes - 1)) !== 0) {
    badArg(`ring dataBytes ${dataBytes}: a power of two from 65536 to 268435456`);
  }
  const high = opts.highWatermark ?? 0.8;
  const low = opts.lowWatermark ?? 0.3;
  if (!(high > 0 && high <= 1 && low >= 0 && low < high)) badArg(`ring watermarks high ${high} low ${low}: need 0 <= low < high <= 1`);
  const abandonMs = opts.abandonMs ?? 200;
  const forceMs = opts.forceAbandonMs ?? 10_000;
  if (!(abandonMs >= 1 && forceMs >= abandonMs && forceMs < 2 ** 31)) badArg(`ring abandonMs ${abandonMs} forceAbandonMs ${forceMs}`);
  const name = ringSegmentName(scope, ring);
  const buf = createSegment(name, RING_CTRL_BYTES + dataBytes, RING_CTRL_BYTES, true);
  let wakeFd = -1;
  try {
    writeOwner(buf);
    const i32 = new Int32Array(buf, 0, RING_CTRL_BYTES >> 2);
    i32[I_VERSION] = RING_VERSION;
    i32[I_DATA] = dataBytes;
    i32[I_SLOTS] = RING_MAX_PRODUCERS;
    // high = 1 disables drop-head (backlog can never exceed the data area)
    i32[I_HIGH] = high >= 1 ? dataBytes + 1 : Math.floor(dataBytes * high);
    i32[I_LOW] = Math.floor(dataBytes * low);
    i32[I_ABANDON] = abandonMs;
    i32[I_FORCE] = forceMs;
    // The FIFO before the magic: a producer or consumer that finds the ring finds its FIFO.
    wakeFd = native.fifoOpen(wakePath(name), true);
    Atomics.store(i32, I_MAGIC, RING_MAGIC);
  } catch (e) {
    if (wakeFd >= 0) closeSync(wakeFd);
    native.shmUnlink(name);
    rmSync(wakePath(name), { force: true });
    throw e;
  }
  return new RingSegment(scope, new RingMap(name, buf), wakeFd);
}

/** Maps an existing ring read-only-in-spirit, for stats (otusctl, tests). */
export function openRingStats(task: string, ring = 0): RingStats {
  return mapExisting(ringSegmentName(task, ring)).stats();
}
