// The media table (docs/architecture.md, "memory they share"): what RTCP
// said about each RTP source, shared by a task's capture processes, because
// a stream's RTCP (port + 1) hashes to another process than its RTP. The
// rtcp parser writes it per report; the rtp parser reads it when it emits a
// stream's `rtp.stats` record (plugins/parser/rtp/rtcp-summary.ts).
//
// Keyed by SSRC and a hash of the call-id (0: no call), so two calls whose
// endpoints chose the same SSRC do not mix. Open addressing inside a probe
// window; when the window is full the entry touched longest ago (capture
// time) is evicted, counted. Readers take no lock (seqlock per entry, as
// the flow registry's); writers serialise on one lock word holding the
// writer's pid (RTCP is a few packets per stream every five seconds), a
// dead holder's lock taken over. Created with the flow registry (its
// owner unlinks both), opened beside it by the parsers.
//
// Segment layout (little-endian, byte offsets):
//   0 u32 magic 'OTMD'  4 u32 version  8 u32 capacity (2^k)  12 u32 probe window
//   16 i32 owner pid  24 f64 owner start time  64 i32 writer lock
//   128 f64 counters: inserts, updates, evictions, writes given up, lock takeovers
//   256 entries of 128 bytes (as f64 index e, i32 index 2e):
//     i32 +0 seq  +1 ssrc  +2 call hash  +3 flags (USED | HAS_SR | HAS_ABOUT | HAS_BY)
//     f64 +2 touched (capture s)  i32 +6 NTP middle 32 bits of its last SR  f64 +4 that SR's capture time
//     block "about" (the last report block on this source, by its receiver): f64 +5 at, i32 +12 reporter,
//       +13 fraction lost (/256), +14 cumulative lost, +15 jitter (RTP units), f64 +8 round trip (s, -1 none)
//     block "by" (the last report block this source sent, on the other direction): f64 +9 at, i32 +20 about,
//       +21 fraction, +22 cumulative, +23 jitter, f64 +12 round trip
//     f64 +13 the call's media end (capture s: its BYE, CANCEL or final error plus the sip parser's bye_grace),
//       kept in the call's entry of SSRC 0 (flag HAS_END; a stream with SSRC 0 shares it, field apart)

import { native } from '../native.js';
import { OtusError } from '../util/errors.js';
import { Lock, MEDIA_MAGIC, createSegment, lockWriter, pause, segmentName, writeOwner } from './segment.js';

export const MEDIA_VERSION = 1;
const HEADER_BYTES = 256;
const ENTRY_BYTES = 128;
const E_F = ENTRY_BYTES >> 3; // f64 per entry
const I_MAGIC = 0;
const I_VERSION = 1;
const I_CAP = 2;
const I_WINDOW = 3;
const I_LOCK = 16;
const C_INSERTS = 16;
const C_UPDATES = 17;
const C_EVICTIONS = 18;
const C_BUSY = 19;
const C_TAKEOVERS = 20;

const USED = 1;
const HAS_SR = 2;
const HAS_ABOUT = 4;
const HAS_BY = 8;
const HAS_END = 16;

// i32 offsets in an entry
const O_SEQ = 0;
const O_SSRC = 1;
const O_CALL = 2;
const O_FLAGS = 3;
const O_SR_NTP = 6;
// f64 offsets
const D_TOUCHED = 2;
const D_SR_AT = 4;
/** A block's first f64 (at), its i32 words from 2 × (that + 1), its round trip at + 3. */
const D_ABOUT = 5;
const D_BY = 9;
const D_END = 13;

/** One side's last report block, as read (readSummary). */
export interface RtcpBlock {
  /** Capture time (s) of the packet that carried it. */
  at: number;
  /** The other SSRC: the reporter (about) or the source reported on (by). */
  ssrc: number;
  fractionLost: number;
  cumulativeLost: number;
  /** RTP timestamp units. */
  jitter: number;
  /** Seconds, -1 when the block's LSR matched no SR seen. */
  roundTrip: number;
}

export interface MediaTableStats {
  capacity: number;
  inserts: number;
  updates: number;
  evictions: number;
  writesBusy: number;
  lockTakeovers: number;
}

export function mediaSegmentName(task: string): string {
  return segmentName(task, 'media');
}

/** FNV-1a of a call-id's bytes, never 0 (0: no call). */
export function callHashBytes(b: Uint8Array, off: number, len: number): number {
  if (len === 0) return 0;
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ b[off + i], 0x01000193);
  return h === 0 ? 1 : h;
}

const enc = new TextEncoder();
/** callHashBytes of a string's UTF-8 (a report's call-id: once per report). */
export function callHash(s: string | null): number {
  if (s === null || s === '') return 0;
  const b = enc.encode(s);
  return callHashBytes(b, 0, b.length);
}


export class MediaTable {
  readonly name: string;
  readonly capacity: number;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly mask: number;
  private readonly window: number;
  private readonly owner: boolean;
  private closed = false;
  /**
   * The writer's times: capture time of the compound being written (s), and
   * the round trip roundTrip() found. In a typed array, not passed as
   * arguments: a double argument or return value of a call V8 does not
   * inline is a heap number (measured: 8 scavenges per million compounds).
   */
  private readonly t = new Float64Array(2);

  private constructor(name: string, buf: ArrayBuffer, owner: boolean) {
    this.name = name;
    this.i32 = new Int32Array(buf);
    this.f64 = new Float64Array(buf);
    this.capacity = this.i32[I_CAP];
    this.mask = this.capacity - 1;
    this.window = this.i32[I_WINDOW];
    this.owner = owner;
  }

  /** Creates the task's table (with its flow registry). `capacity`: entries, rounded up to a power of two. */
  static create(task: string, capacity: number, window = 16): MediaTable {
    if (!Number.isInteger(capacity) || capacity < 16 || capacity > 1 << 22) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `media table capacity ${capacity}: an integer from 16 to 4194304`);
    }
    const cap = 2 ** Math.ceil(Math.log2(capacity));
    const name = mediaSegmentName(task);
    const buf = createSegment(name, Math.ceil((HEADER_BYTES + cap * ENTRY_BYTES) / 4096) * 4096);
    writeOwner(buf);
    const i32 = new Int32Array(buf, 0, 64);
    i32[I_VERSION] = MEDIA_VERSION;
    i32[I_CAP] = cap;
    i32[I_WINDOW] = Math.min(window, cap);
    Atomics.store(i32, I_MAGIC, MEDIA_MAGIC);
    return new MediaTable(name, buf, true);
  }

  /** Maps the task's table, or null when it has none (a registry made without one, as unit tests do). */
  static open(task: string): MediaTable | null {
    const name = mediaSegmentName(task);
    let buf: ArrayBuffer;
    try {
      buf = native.shmOpen(name, 0, false, 0);
    } catch {
      return null;
    }
    const i32 = new Int32Array(buf, 0, 64);
    if (Atomics.load(i32, I_MAGIC) !== MEDIA_MAGIC || i32[I_VERSION] !== MEDIA_VERSION || buf.byteLength < HEADER_BYTES + i32[I_CAP] * ENTRY_BYTES) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${name}: not an Otus media table of version ${MEDIA_VERSION}`);
    }
    return new MediaTable(name, buf, false);
  }

  /** The table beside a flow registry's segment (its name ends in -flows), or null. Mapped once per process. */
  static besideRegistry(registryName: string): MediaTable | null {
    let t = opened.get(registryName);
    if (t === undefined) {
      const task = registryName.replace(/^\/otus-/, '').replace(/-flows$/, '');
      opened.set(registryName, (t = MediaTable.open(task)));
    }
    return t;
  }

  // ---- writes (the rtcp parser; one hold per compound packet) ----

  /** Takes the writer lock (lockWriter); false when it stayed busy (~20 ms, counted): the compound's reports are dropped. */
  lock(): boolean {
    const l = lockWriter(this.i32, I_LOCK, 20, 'media table');
    if (l === Lock.TookOver) {
      // A writer that died holding it (an entry it left odd is dropped).
      this.f64[C_TAKEOVERS]++;
      this.repair();
    } else if (l === Lock.Busy) this.f64[C_BUSY]++;
    return l !== Lock.Busy;
  }

  unlock(): void {
    Atomics.store(this.i32, I_LOCK, 0);
  }

  /** The capture time of what is written next (entry, setSr, setBlock). */
  setNow(sec: number, nsec: number): void {
    this.t[0] = sec + nsec * 1e-9;
  }

  /**
   * With the lock held: the entry (its f64 index) of (ssrc, call), made
   * if absent (evicting the window's least recently touched, counted),
   * touched at setNow's time, and left odd (being written): end the
   * write with done().
   */
  entry(ssrc: number, call: number): number {
    const i32 = this.i32;
    const f64 = this.f64;
    const now = this.t[0];
    let i = hash(ssrc, call) & this.mask;
    let free = -1;
    let victim = -1;
    for (let k = 0; k < this.window; k++, i = (i + 1) & this.mask) {
      const e = (HEADER_BYTES >> 3) + i * E_F;
      const b = e << 1;
      if ((i32[b + O_FLAGS] & USED) === 0) {
        if (free < 0) free = e;
        continue;
      }
      if (i32[b + O_SSRC] === (ssrc | 0) && i32[b + O_CALL] === call) {
        this.f64[C_UPDATES]++;
        return this.begin(e);
      }
      if (victim < 0 || f64[e + D_TOUCHED] < f64[victim + D_TOUCHED]) victim = e;
    }
    let e = free;
    if (e < 0) {
      e = victim;
      f64[C_EVICTIONS]++;
    }
    f64[C_INSERTS]++;
    const b = e << 1;
    this.begin(e);
    for (let j = 1; j < ENTRY_BYTES >> 2; j++) i32[b + j] = 0;
    i32[b + O_SSRC] = ssrc | 0;
    i32[b + O_CALL] = call;
    i32[b + O_FLAGS] = USED;
    f64[e + D_TOUCHED] = now;
    return e;
  }

  private begin(e: number): number {
    const b = e << 1;
    Atomics.store(this.i32, b + O_SEQ, (this.i32[b + O_SEQ] + 1) | 0);
    this.f64[e + D_TOUCHED] = this.t[0];
    return e;
  }

  done(e: number): void {
    const b = e << 1;
    Atomics.store(this.i32, b + O_SEQ, (this.i32[b + O_SEQ] + 1) | 0);
  }

  /** Entry e's source sent an SR now (setNow) with these NTP middle 32 bits (what an LSR echoes). */
  setSr(e: number, ntpMiddle: number): void {
    const b = e << 1;
    this.i32[b + O_SR_NTP] = ntpMiddle | 0;
    this.f64[e + D_SR_AT] = this.t[0];
    this.i32[b + O_FLAGS] |= HAS_SR;
  }

  /**
   * A block naming entry e's last SR by `lsr`, held `dlsr` (1/65536 s) by
   * its reporter: the round trip (now minus the SR's capture time minus
   * DLSR), kept for setBlock; false (none kept) when e's last SR is not
   * the one named.
   */
  roundTrip(e: number, lsr: number, dlsr: number): boolean {
    const b = e << 1;
    this.t[1] = -1;
    if ((this.i32[b + O_FLAGS] & HAS_SR) === 0 || this.i32[b + O_SR_NTP] !== (lsr | 0)) return false;
    this.t[1] = this.t[0] - this.f64[e + D_SR_AT] - dlsr / 65536;
    return true;
  }

  /** No round trip for the next setBlock. */
  noRoundTrip(): void {
    this.t[1] = -1;
  }

  /** A report block in entry e, captured now: `about` it (by reporter `other`) or `by` it (on source `other`), with roundTrip()'s result. */
  setBlock(e: number, about: boolean, other: number, fraction: number, cumulative: number, jitter: number): void {
    const d = about ? D_ABOUT : D_BY;
    const f64 = this.f64;
    const i32 = this.i32;
    const w = (e + d + 1) << 1;
    f64[e + d] = this.t[0];
    i32[w] = other | 0;
    i32[w + 1] = fraction;
    i32[w + 2] = cumulative;
    i32[w + 3] = jitter | 0;
    f64[e + d + 3] = this.t[1];
    i32[(e << 1) + O_FLAGS] |= about ? HAS_ABOUT : HAS_BY;
  }

  /**
   * The call (its call-id hash) ended at sec.nsec (capture time): its
   * streams end `graceS` seconds later (the rtp parser's reports). False
   * when the writer lock stayed busy (counted).
   */
  markCallEnd(call: number, sec: number, nsec: number, graceS: number): boolean {
    if (call === 0 || !this.lock()) return false;
    try {
      this.setNow(sec, nsec);
      const e = this.entry(0, call);
      this.f64[e + D_END] = this.t[0] + graceS;
      this.i32[(e << 1) + O_FLAGS] |= HAS_END;
      this.done(e);
      return true;
    } finally {
      this.unlock();
    }
  }

  // ---- reads (the rtp parser, at a report: no lock) ----

  /** Has the call (call-id hash) ended, its grace passed, by capture time `clock` (s)? */
  callEnded(call: number, clock: number): boolean {
    const i32 = this.i32;
    let i = hash(0, call) & this.mask;
    for (let k = 0; k < this.window; k++, i = (i + 1) & this.mask) {
      const e = (HEADER_BYTES >> 3) + i * E_F;
      const b = e << 1;
      for (let tries = 0; tries < 256; tries++) {
        const s1 = Atomics.load(i32, b + O_SEQ);
        if ((s1 & 1) !== 0) continue;
        const flags = i32[b + O_FLAGS];
        const same = (flags & USED) !== 0 && i32[b + O_SSRC] === 0 && i32[b + O_CALL] === call;
        const ended = same && (flags & HAS_END) !== 0 && this.f64[e + D_END] <= clock;
        if (Atomics.load(i32, b + O_SEQ) !== s1) continue;
        if (same) return ended;
        break;
      }
    }
    return false;
  }

  /**
   * Reads (ssrc, call)'s blocks into `about` and `by` (each left untouched
   * and the bit unset when absent): bit 1 about, bit 2 by; 0 when there is no entry.
   */
  read(ssrc: number, call: number, about: RtcpBlock, by: RtcpBlock): number {
    const i32 = this.i32;
    let i = hash(ssrc, call) & this.mask;
    for (let k = 0; k < this.window; k++, i = (i + 1) & this.mask) {
      const e = (HEADER_BYTES >> 3) + i * E_F;
      const b = e << 1;
      for (let tries = 0; tries < 256; tries++) {
        const s1 = Atomics.load(i32, b + O_SEQ);
        if ((s1 & 1) !== 0) {
          if (tries > 64) pause(0.02);
          continue;
        }
        const flags = i32[b + O_FLAGS];
        if ((flags & USED) === 0 || i32[b + O_SSRC] !== (ssrc | 0) || i32[b + O_CALL] !== call) {
          if (Atomics.load(i32, b + O_SEQ) !== s1) continue;
          break;
        }
        let r = 0;
        if ((flags & HAS_ABOUT) !== 0) {
          this.block(e, D_ABOUT, about);
          r |= 1;
        }
        if ((flags & HAS_BY) !== 0) {
          this.block(e, D_BY, by);
          r |= 2;
        }
        if (Atomics.load(i32, b + O_SEQ) !== s1) continue;
        return r;
      }
    }
    return 0;
  }

  private block(e: number, d: number, out: RtcpBlock): void {
    const w = (e + d + 1) << 1;
    out.at = this.f64[e + d];
    out.ssrc = this.i32[w] >>> 0;
    out.fractionLost = this.i32[w + 1];
    out.cumulativeLost = this.i32[w + 2];
    out.jitter = this.i32[w + 3] >>> 0;
    out.roundTrip = this.f64[e + d + 3];
  }

  /** After a writer died holding the lock: an entry it left odd is half written; drop it. */
  private repair(): void {
    const i32 = this.i32;
    for (let i = 0; i < this.capacity; i++) {
      const b = (HEADER_BYTES >> 2) + i * (ENTRY_BYTES >> 2);
      const s = i32[b + O_SEQ];
      if ((s & 1) === 0) continue;
      i32[b + O_FLAGS] = 0;
      Atomics.store(i32, b + O_SEQ, (s + 1) | 0);
    }
  }

  counters(): MediaTableStats {
    const f = this.f64;
    return { capacity: this.capacity, inserts: f[C_INSERTS], updates: f[C_UPDATES], evictions: f[C_EVICTIONS], writesBusy: f[C_BUSY], lockTakeovers: f[C_TAKEOVERS] };
  }

  /** The creator removes the segment name; others just drop their mapping. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.owner) native.shmUnlink(this.name);
  }
}

const opened = new Map<string, MediaTable | null>();

function hash(ssrc: number, call: number): number {
  let h = Math.imul(ssrc ^ 0x9747b28c, 0xcc9e2d51) ^ call;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** An empty block (readers fill it). */
export function emptyBlock(): RtcpBlock {
  return { at: 0, ssrc: 0, fractionLost: 0, cumulativeLost: 0, jitter: 0, roundTrip: -1 };
}
