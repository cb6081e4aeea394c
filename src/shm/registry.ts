// The flow registry (docs/architecture.md, "Processes"): one shared-memory table per
// task, shared by all its capture processes, because kernel fanout puts a
// call's SIP and its RTP on different processes. A SIP parser registers the
// media endpoints it saw in SDP; the RTP fast path looks packets up.
//
// Open addressing with linear probing inside a bounded window. Readers take
// no lock: each slot carries a sequence number (seqlock: odd while written),
// so a reader that raced a writer retries and never sees a torn context.
// Writers (rare: signalling) serialise on one lock word holding the writer's
// pid; a dead holder's lock is taken over. Entries expire (TTL); expired ones
// read as absent, are overwritten by inserts and reclaimed by sweep(). When
// the window is full the entry with the nearest expiry is evicted, counted.
//
// Keys: an endpoint (address + port) or a five-tuple, IPv4 or IPv6. IPv4
// addresses are int32 (big-endian read: view.getInt32(off)); IPv6 are four
// such words read at an offset. Five-tuples are normalised (lower endpoint
// first), so both directions find the same entry.
//
// Segment layout (little-endian, byte offsets):
//   0    u32 magic 'OTFR'  4 u32 version  8 u32 capacity (2^k slots)  12 u32 probe window
//   16   i32 owner pid     24 f64 owner start time
//   64   i32 writer lock (pid of the holder, 0 free)
//   128  f64 counters: inserts, updates, removes, evictions, expired reclaimed,
//        lock takeovers, writes given up (lock busy)
//   256  slots, 320 bytes each:
//        +0 i32 seq  +4 i32 state (0 empty, 1 live, 2 removed)
//        +8 i32 kind | proto << 8 (kind 1 endpoint4, 2 endpoint6, 3 flow4, 4 flow6)
//        +12 i32 ports (port A << 16 | port B; endpoints: port << 16)
//        +16 4×i32 address A  +32 4×i32 address B (IPv4: first word only)
//        +48 f64 expires at (ms, Date.now clock)
//        +56 u8 call-id length  +57 u8 codec length  +58 u8 labels length  +59 u8 label count
//        +60 codec (16 bytes UTF-8)  +76 call-id (128)  +204 labels (116: per label u8 klen, key, u8 vlen, value)

import { isIPv6 } from 'node:net';
import { native } from '../native.js';
import { utf8Length, writeUtf8 } from '../util/bytes.js';
import { OtusError } from '../util/errors.js';
import { MediaTable } from './media.js';
import { Lock, REGISTRY_MAGIC, createSegment, lockWriter, pause, segmentName, writeOwner } from './segment.js';

export { REGISTRY_MAGIC };
export const REGISTRY_VERSION = 1;
export const SLOT_BYTES = 320;
const HEADER_BYTES = 256;
export const CALL_ID_MAX = 128;
export const CODEC_MAX = 16;
export const LABELS_MAX = 116;

const I_MAGIC = 0;
const I_VERSION = 1;
const I_CAP = 2;
const I_WINDOW = 3;
const I_LOCK = 16;
const F_INSERTS = 16;
const F_UPDATES = 17;
const F_REMOVES = 18;
const F_EVICTIONS = 19;
const F_EXPIRED = 20;
const F_TAKEOVERS = 21;
const F_WRITE_BUSY = 22;

// slot, in i32 words
const W = SLOT_BYTES >> 2;
const O_SEQ = 0;
const O_STATE = 1;
const O_KIND = 2;
const O_PORTS = 3;
const O_A = 4;
const O_B = 8;
const O_EXP_F64 = 6; // f64 index within the slot (byte 48)
const B_LENS = 56;
const B_CODEC = 60;
const B_CALL_ID = 76;
const B_LABELS = 204;

const EMPTY = 0;
const LIVE = 1;
const REMOVED = 2;

export const KIND_ENDPOINT4 = 1;
export const KIND_ENDPOINT6 = 2;
export const KIND_FLOW4 = 3;
export const KIND_FLOW6 = 4;

export interface FlowContext {
  callId: string;
  codec: string;
  labels?: Record<string, string>;
}

export interface RegistryOptions {
  /** Slots; rounded up to a power of two (keep the table under ~70% full). */
  capacity: number;
  /** Slots probed from a key's home slot: the most an insert or lookup looks at. */
  window?: number;
}

export interface RegistryStats {
  capacity: number;
  live: number;
  inserts: number;
  updates: number;
  removes: number;
  evictions: number;
  expired: number;
  lockTakeovers: number;
  writesBusy: number;
}

export function registrySegmentName(task: string): string {
  return segmentName(task, 'flows');
}

function badArg(msg: string): never {
  throw new OtusError('OTUS_ERR_BAD_ARGUMENT', msg);
}

// murmur3-style mixing; measured: ~2 ns for an IPv4 endpoint
function round(h: number, w: number): number {
  h = Math.imul(h ^ w, 0xcc9e2d51);
  return Math.imul((h << 15) | (h >>> 17), 0x1b873593);
}
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * A dotted-quad IPv4 address in buf[off, end), exactly as net.isIPv4 takes it
 * (four decimal parts 0-255, no leading zeros): its value as an unsigned
 * number, else -1. No allocation (SDP addresses are parsed straight from the
 * message bytes).
 */
export function dottedQuadBytes(buf: Uint8Array, off: number, end: number): number {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = off; i < end; i++) {
    const c = buf[i];
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1; // leading zero
      part = part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return v * 256 + part;
}

const quadScratch = new Uint8Array(15);

/** dottedQuadBytes over a string: its code units copied into a scratch (an address is at most 15 ASCII characters). */
export function dottedQuad(text: string): number {
  const n = text.length;
  if (n > 15) return -1;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return -1;
    quadScratch[i] = c;
  }
  return dottedQuadBytes(quadScratch, 0, n);
}

/** Parses a textual IPv4/IPv6 address into 4 big-endian int32 words (IPv4: first word). */
export function parseAddress(text: string, out: Int32Array, at: number): 4 | 6 {
  // dottedQuad takes exactly what net.isIPv4 takes, without its regex and the split/map it needed.
  const v4 = dottedQuad(text);
  if (v4 >= 0) {
    out[at] = v4 | 0;
    out[at + 1] = out[at + 2] = out[at + 3] = 0;
    return 4;
  }
  if (!isIPv6(text)) badArg(`address ${JSON.stringify(text)}: not IPv4 or IPv6`);
  let s = text.split('%')[0];
  const v4m = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s); // ::ffff:192.0.2.1 -> ::ffff:c000:201
  if (v4m) {
    const p = v4m.slice(1).map(Number);
    s = s.slice(0, v4m.index) + ((p[0] << 8) | p[1]).toString(16) + ':' + ((p[2] << 8) | p[3]).toString(16);
  }
  const dbl = s.indexOf('::');
  const head = dbl >= 0 ? s.slice(0, dbl) : s;
  const rest = dbl >= 0 ? s.slice(dbl + 2) : '';
  const hs = head === '' ? [] : head.split(':').map((x) => parseInt(x, 16));
  const rs = rest === '' ? [] : rest.split(':').map((x) => parseInt(x, 16));
  const groups = [...hs, ...new Array<number>(8 - hs.length - rs.length).fill(0), ...rs];
  for (let i = 0; i < 4; i++) out[at + i] = (groups[2 * i] << 16) | groups[2 * i + 1];
  return 6;
}

/** A reusable key: fill it with one of the setters, pass it to register/unregister/lookup. */
export class FlowKey {
  readonly w = new Int32Array(10); // kind, ports, a0..a3, b0..b3

  endpoint4(ip: number, port: number): this {
    // Stores, not w.fill(0): a builtin call costs more than ten words (SIP registers per SDP, measured).
    const w = this.w;
    w[0] = KIND_ENDPOINT4;
    w[1] = (port & 0xffff) << 16;
    w[2] = ip | 0;
    w[3] = w[4] = w[5] = w[6] = w[7] = w[8] = w[9] = 0;
    return this;
  }

  endpoint6(buf: Uint8Array, off: number, port: number): this {
    this.w.fill(0);
    this.w[0] = KIND_ENDPOINT6;
    this.w[1] = (port & 0xffff) << 16;
    for (let i = 0; i < 4; i++) this.w[2 + i] = be32(buf, off + 4 * i);
    return this;
  }

  /** From text: '10.0.0.1' or '2001:db8::1'. */
  endpoint(address: string, port: number): this {
    this.w.fill(0);
    const v = parseAddress(address, this.w, 2);
    this.w[0] = v === 4 ? KIND_ENDPOINT4 : KIND_ENDPOINT6;
    this.w[1] = (port & 0xffff) << 16;
    return this;
  }

  /** A five-tuple from text, normalised so both directions are one key. */
  flow(src: string, dst: string, sport: number, dport: number, proto: number): this {
    this.w.fill(0);
    const v = parseAddress(src, this.w, 2);
    if (parseAddress(dst, this.w, 6) !== v) badArg(`flow ${src} -> ${dst}: mixed address families`);
    this.w[0] = (v === 4 ? KIND_FLOW4 : KIND_FLOW6) | ((proto & 0xff) << 8);
    this.w[1] = ((sport & 0xffff) << 16) | (dport & 0xffff);
    normalise(this.w);
    return this;
  }
}

function be32(b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}

/** Puts the lower (address, port) endpoint first. */
function normalise(w: Int32Array): void {
  const n = (w[0] & 0xff) === KIND_FLOW4 ? 1 : 4;
  let cmp = 0;
  for (let i = 0; i < n && cmp === 0; i++) cmp = (w[2 + i] >>> 0) - (w[6 + i] >>> 0);
  if (cmp === 0) cmp = (w[1] >>> 16) - (w[1] & 0xffff);
  if (cmp <= 0) return;
  for (let i = 0; i < 4; i++) {
    const t = w[2 + i];
    w[2 + i] = w[6 + i];
    w[6 + i] = t;
  }
  w[1] = ((w[1] & 0xffff) << 16) | (w[1] >>> 16);
}

function hashKey(w: Int32Array): number {
  const kind = w[0] & 0xff;
  let h = round(round(0x9747b28c, w[0]), w[1]);
  h = round(h, w[2]);
  if (kind === KIND_ENDPOINT6 || kind === KIND_FLOW6) h = round(round(round(h, w[3]), w[4]), w[5]);
  if (kind === KIND_FLOW4) h = round(h, w[6]);
  else if (kind === KIND_FLOW6) h = round(round(round(round(h, w[6]), w[7]), w[8]), w[9]);
  return fmix(h);
}

const decoder = new TextDecoder();

// A slot odd under a reader: spin a little, then sleep 20 µs at a time. A
// writer preempted mid-write (more processes than CPUs) holds it for a
// scheduler tick; skipping the slot then read a live key as missing (seen: a
// call's RTP unlabelled while its BYE shortened the entry on another
// process). ~5 ms bounds the wait on a writer that died mid-write.
const SEQ_SPINS = 64;
const SEQ_TRIES = SEQ_SPINS + 256;
function writerPause(): void {
  pause(0.02);
}
const HOST_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * A flow context written as bytes into a scratch slot image, for
 * registerScratch: reset(), then callId, codec and labels (each a copy of
 * bytes, or UTF-8 from a string). No strings needed: the SIP parser fills it
 * from message bytes. Throws OTUS_ERR_BAD_ARGUMENT when a field does not
 * fit, as register does. The content stays until the next reset(), so one
 * context can go under several keys. Shared by register(): fill and
 * register in one go.
 */
export class ContextBuilder {
  /** Slot image: lengths, codec, call-id, labels at their slot offsets. Bytes past the lengths mean nothing (never zeroed). */
  private readonly u8 = new Uint8Array(SLOT_BYTES);
  /** The same image as words, for registerScratch's copy. */
  readonly words = new Int32Array(this.u8.buffer);

  reset(): this {
    const u = this.u8;
    u[B_LENS] = u[B_LENS + 1] = u[B_LENS + 2] = u[B_LENS + 3] = 0;
    return this;
  }

  get callIdLength(): number {
    return this.u8[B_LENS];
  }
  get codecLength(): number {
    return this.u8[B_LENS + 1];
  }
  get labelsLength(): number {
    return this.u8[B_LENS + 2];
  }
  get labelCount(): number {
    return this.u8[B_LENS + 3];
  }

  callId(src: Uint8Array, off: number, len: number): this {
    if (len > CALL_ID_MAX) badArg(`flow context call-id: more than ${CALL_ID_MAX} bytes`);
    const u = this.u8;
    for (let i = 0; i < len; i++) u[B_CALL_ID + i] = src[off + i];
    u[B_LENS] = len;
    return this;
  }

  /**
   * Copies the call-id if it is plain ASCII (its bytes are then the UTF-8 a
   * string would give). False otherwise, the call-id left empty. `view`: a
   * DataView indexing the same bytes as src, to copy four at a time.
   */
  callIdAscii(src: Uint8Array, off: number, len: number, view: DataView | null = null): boolean {
    if (len > CALL_ID_MAX) badArg(`flow context call-id: more than ${CALL_ID_MAX} bytes`);
    const u = this.u8;
    let hi = 0;
    let i = 0;
    if (view !== null) {
      // `view` indexes the same bytes as src: whole words first, in the host's byte order.
      const w = this.words;
      for (; i + 4 <= len; i += 4) hi |= w[(B_CALL_ID + i) >> 2] = view.getInt32(off + i, HOST_LE);
      hi = (hi & 0x80808080) !== 0 ? 0x80 : 0;
    }
    for (; i < len; i++) hi |= u[B_CALL_ID + i] = src[off + i];
    u[B_LENS] = hi > 0x7f ? 0 : len;
    return hi <= 0x7f;
  }

  callIdString(s: string): this {
    const n = utf8Length(s);
    if (n > CALL_ID_MAX) badArg(`flow context call-id: more than ${CALL_ID_MAX} bytes`);
    writeUtf8(this.u8, B_CALL_ID, s);
    this.u8[B_LENS] = n;
    return this;
  }

  codec(src: Uint8Array, off: number, len: number): this {
    if (len > CODEC_MAX) badArg(`flow context codec: more than ${CODEC_MAX} bytes`);
    const u = this.u8;
    for (let i = 0; i < len; i++) u[B_CODEC + i] = src[off + i];
    u[B_LENS + 1] = len;
    return this;
  }

  codecString(s: string): this {
    const n = utf8Length(s);
    if (n > CODEC_MAX) badArg(`flow context codec ${JSON.stringify(s)}: more than ${CODEC_MAX} bytes`);
    writeUtf8(this.u8, B_CODEC, s);
    this.u8[B_LENS + 1] = n;
    return this;
  }

  /** Appends a label: key bytes, value bytes src[off, off + len). */
  label(key: Uint8Array, src: Uint8Array, off: number, len: number): this {
    const u = this.u8;
    let p = this.room(key.length, len);
    u[p++] = key.length;
    for (let i = 0; i < key.length; i++) u[p++] = key[i];
    u[p++] = len;
    for (let i = 0; i < len; i++) u[p++] = src[off + i];
    u[B_LENS + 2] = p - B_LABELS;
    u[B_LENS + 3]++;
    return this;
  }

  labelString(key: string, value: string): this {
    const kl = utf8Length(key);
    const vl = utf8Length(value);
    const u = this.u8;
    let p = this.room(kl, vl);
    u[p++] = kl;
    p = writeUtf8(u, p, key);
    u[p++] = vl;
    p = writeUtf8(u, p, value);
    u[B_LENS + 2] = p - B_LABELS;
    u[B_LENS + 3]++;
    return this;
  }

  /** Where the next label goes, if one of these lengths fits. */
  private room(kl: number, vl: number): number {
    const ll = this.u8[B_LENS + 2];
    if (kl > 255 || vl > 255 || ll + 2 + kl + vl > LABELS_MAX || this.u8[B_LENS + 3] === 255) {
      badArg(`flow context labels: more than ${LABELS_MAX} bytes encoded`);
    }
    return B_LABELS + ll;
  }
}

export class FlowRegistry {
  readonly name: string;
  readonly buf: ArrayBuffer;
  /** The mapping: context bytes are read in place through it (see callIdOffset). */
  readonly u8: Uint8Array;
  readonly capacity: number;
  /** Clock for expiry checks on lookup (ms, Date.now scale). Refresh it per batch with setNow(). */
  now: number;
  /** seq of the slot the last successful lookup (or isCurrent) returned (see stillValid). */
  lastSeq = 0;
  /** ... and its expiry time (ms), read under that seq. */
  lastExpiry = 0;
  /** The capture process's catch-up (setCatchUp), null with one capture process. */
  private catchUpHook: ((tsSec: number, tsNsec: number, flow: number) => boolean) | null = null;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly mask: number;
  private readonly window: number;
  private readonly owner: boolean;
  /** The scratch context registerScratch writes (register fills it from a FlowContext). */
  readonly builder = new ContextBuilder();
  private readonly key = new FlowKey();
  private closed = false;
  /** The media table made with it (create), unlinked with it. */
  private media: MediaTable | null = null;
  /** holdWrites() has the writer lock. */
  private held = false;

  private constructor(name: string, buf: ArrayBuffer, owner: boolean) {
    this.name = name;
    this.buf = buf;
    this.u8 = new Uint8Array(buf);
    this.i32 = new Int32Array(buf);
    this.f64 = new Float64Array(buf);
    this.capacity = this.i32[I_CAP];
    this.mask = this.capacity - 1;
    this.window = this.i32[I_WINDOW];
    this.owner = owner;
    this.now = Date.now();
  }

  /** Creates the task's registry (the supervisor does, once per run; it owns it). A name that exists is OTUS_ERR_SHM_EXISTS. */
  static create(task: string, opts: RegistryOptions): FlowRegistry {
    if (!Number.isInteger(opts.capacity) || opts.capacity < 16 || opts.capacity > 1 << 24) {
      badArg(`registry capacity ${opts.capacity}: an integer from 16 to 16777216`);
    }
    const capacity = 2 ** Math.ceil(Math.log2(opts.capacity));
    const window = opts.window ?? 16;
    if (!Number.isInteger(window) || window < 1 || window > capacity) badArg(`registry window ${window}: 1 to capacity`);
    const name = registrySegmentName(task);
    const size = Math.ceil((HEADER_BYTES + capacity * SLOT_BYTES) / 4096) * 4096;
    const buf = createSegment(name, size);
    writeOwner(buf);
    const i32 = new Int32Array(buf, 0, 64);
    i32[I_VERSION] = REGISTRY_VERSION;
    i32[I_CAP] = capacity;
    i32[I_WINDOW] = window;
    Atomics.store(i32, I_MAGIC, REGISTRY_MAGIC);
    const reg = new FlowRegistry(name, buf, true);
    // RTCP's summary for the rtp parser's reports (media.ts): half as many entries (two SSRCs a call, four endpoints).
    try {
      reg.media = MediaTable.create(task, Math.max(16, capacity >> 1));
    } catch (e) {
      native.shmUnlink(name);
      throw e;
    }
    return reg;
  }

  /** Maps the task's existing registry (each capture process does). */
  static open(task: string): FlowRegistry {
    const name = registrySegmentName(task);
    const buf = native.shmOpen(name, 0, false, 0);
    const i32 = new Int32Array(buf, 0, 64);
    if (Atomics.load(i32, I_MAGIC) !== REGISTRY_MAGIC || i32[I_VERSION] !== REGISTRY_VERSION) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${name}: not an Otus flow registry of version ${REGISTRY_VERSION} (or not initialised yet)`);
    }
    if (buf.byteLength < HEADER_BYTES + i32[I_CAP] * SLOT_BYTES) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${name}: size does not match its header`);
    return new FlowRegistry(name, buf, false);
  }

  setNow(ms: number): void {
    this.now = ms;
  }

  // ---- lookups: numbers in, slot index (or -1) out, nothing allocated ----

  lookupEndpoint4(ip: number, port: number): number {
    const kw = KIND_ENDPOINT4;
    const pw = (port & 0xffff) << 16;
    const h = fmix(round(round(round(0x9747b28c, kw), pw), ip));
    return this.find(h, kw, pw, ip, 0, 0, 0, 0, 0, 0, 0);
  }

  /** IPv6 address: 16 bytes at buf[off]. */
  lookupEndpoint6(buf: Uint8Array, off: number, port: number): number {
    const kw = KIND_ENDPOINT6;
    const pw = (port & 0xffff) << 16;
    const a0 = be32(buf, off);
    const a1 = be32(buf, off + 4);
    const a2 = be32(buf, off + 8);
    const a3 = be32(buf, off + 12);
    const h = fmix(round(round(round(round(round(round(0x9747b28c, kw), pw), a0), a1), a2), a3));
    return this.find(h, kw, pw, a0, a1, a2, a3, 0, 0, 0, 0);
  }

  /** Five-tuple, either direction. */
  lookupFlow4(src: number, dst: number, sport: number, dport: number, proto: number): number {
    const kw = KIND_FLOW4 | ((proto & 0xff) << 8);
    let a = src;
    let b = dst;
    let pw = ((sport & 0xffff) << 16) | (dport & 0xffff);
    if ((src >>> 0) > (dst >>> 0) || (src === dst && (sport & 0xffff) > (dport & 0xffff))) {
      a = dst;
      b = src;
      pw = ((dport & 0xffff) << 16) | (sport & 0xffff);
    }
    const h = fmix(round(round(round(round(0x9747b28c, kw), pw), a), b));
    return this.find(h, kw, pw, a, 0, 0, 0, b, 0, 0, 0);
  }

  /** Lookup through a FlowKey (any kind; the IPv6 five-tuple path). */
  lookup(key: FlowKey): number {
    const w = key.w;
    return this.find(hashKey(w), w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9]);
  }

  /** The probe: the key's ten words (kind, ports, address A, address B; unused words 0) from its home slot. */
  private find(h: number, kw: number, pw: number, a0: number, a1: number, a2: number, a3: number, b0: number, b1: number, b2: number, b3: number): number {
    const i32 = this.i32;
    const f64 = this.f64;
    const now = this.now;
    let i = h & this.mask;
    for (let k = 0; k < this.window; k++) {
      const b = HEADER_BYTES / 4 + i * W;
      // seqlock read; a writer holds a slot odd for well under a microsecond, unless it is preempted
      for (let tries = 0; tries < SEQ_TRIES; tries++) {
        const s1 = Atomics.load(i32, b + O_SEQ);
        if ((s1 & 1) !== 0) {
          if (tries >= SEQ_SPINS) writerPause();
          continue;
        }
        const st = i32[b + O_STATE];
        const same =
          st === LIVE &&
          i32[b + O_KIND] === kw &&
          i32[b + O_PORTS] === pw &&
          i32[b + O_A] === a0 &&
          i32[b + O_A + 1] === a1 &&
          i32[b + O_A + 2] === a2 &&
          i32[b + O_A + 3] === a3 &&
          i32[b + O_B] === b0 &&
          i32[b + O_B + 1] === b1 &&
          i32[b + O_B + 2] === b2 &&
          i32[b + O_B + 3] === b3;
        const exp = f64[(b >> 1) + O_EXP_F64];
        const live = same && exp > now;
        if (Atomics.load(i32, b + O_SEQ) !== s1) continue;
        if (live) {
          this.lastSeq = s1;
          this.lastExpiry = exp;
          return i;
        }
        if (st === EMPTY) return -1;
        break;
      }
      i = (i + 1) & this.mask;
    }
    return -1;
  }

  // ---- context accessors: offsets into u8 (no allocation), or decoded strings ----

  /**
   * Set by the capture process when the task has several
   * (src/shm/capture-clock.ts): `fn(tsSec, tsNsec, flow)` returns once the
   * other capture processes have handed over their frames older than that
   * capture time (replay: frames earlier in the files), or it is too late
   * to wait; false when there is nothing to wait for. `flow` is the
   * packet's symmetric flow hash (live waits once per flow, not per packet).
   */
  setCatchUp(fn: ((tsSec: number, tsNsec: number, flow: number) => boolean) | null): void {
    this.catchUpHook = fn;
  }

  /**
   * After a miss on a packet of `flow` (symmetricFlowHash) captured at
   * tsSec.tsNsec: lets earlier frames on other capture processes (an SDP
   * another process has not read yet) land. True when the lookup is worth
   * one retry.
   */
  catchUp(tsSec: number, tsNsec: number, flow: number): boolean {
    return this.catchUpHook !== null && this.catchUpHook(tsSec, tsNsec, flow);
  }

  /** Is there a catch-up to ask (several capture processes)? Lets a caller skip computing the flow hash when not. */
  get catchesUp(): boolean {
    return this.catchUpHook !== null;
  }

  /** Has the slot been rewritten since the lookup that returned it? Check after copying bytes out. */
  stillValid(slot: number): boolean {
    return this.unchanged(slot, this.lastSeq);
  }

  /** Is the slot's sequence number still `seq` (nothing written since a lookup that read it)? */
  unchanged(slot: number, seq: number): boolean {
    return Atomics.load(this.i32, HEADER_BYTES / 4 + slot * W + O_SEQ) === seq;
  }

  /**
   * Is the slot still as a lookup that read sequence number `seq` saw it:
   * unchanged since and not expired? Then the same lookup would return it
   * again (keys are unique), so a caller may remember (key → slot, seq)
   * and skip the lookup. Sets lastSeq to `seq` (and lastExpiry) when true.
   */
  isCurrent(slot: number, seq: number): boolean {
    const b = HEADER_BYTES / 4 + slot * W;
    if (Atomics.load(this.i32, b + O_SEQ) !== seq) return false;
    const exp = this.f64[(b >> 1) + O_EXP_F64];
    // The expiry read above is only consistent if the slot did not change meanwhile.
    if (exp <= this.now || Atomics.load(this.i32, b + O_SEQ) !== seq) return false;
    this.lastSeq = seq;
    this.lastExpiry = exp;
    return true;
  }

  callIdOffset(slot: number): number {
    return HEADER_BYTES + slot * SLOT_BYTES + B_CALL_ID;
  }
  callIdLength(slot: number): number {
    return this.u8[HEADER_BYTES + slot * SLOT_BYTES + B_LENS];
  }
  codecOffset(slot: number): number {
    return HEADER_BYTES + slot * SLOT_BYTES + B_CODEC;
  }
  codecLength(slot: number): number {
    return this.u8[HEADER_BYTES + slot * SLOT_BYTES + B_LENS + 1];
  }
  /** A slot's packed labels (per label: u8 key length, key bytes, u8 value length, value bytes), read in place. */
  labelsOffset(slot: number): number {
    return HEADER_BYTES + slot * SLOT_BYTES + B_LABELS;
  }
  labelsLength(slot: number): number {
    return this.u8[HEADER_BYTES + slot * SLOT_BYTES + B_LENS + 2];
  }

  /**
   * Decodes a slot's context (for a record being emitted: allocates). Returns
   * null if the slot changed since the lookup that returned it.
   */
  context(slot: number): FlowContext | null {
    const base = HEADER_BYTES + slot * SLOT_BYTES;
    const seqIdx = base >> 2;
    const u8 = this.u8;
    for (let tries = 0; tries < 64; tries++) {
      const s1 = Atomics.load(this.i32, seqIdx);
      if (s1 !== this.lastSeq) return null;
      const cl = u8[base + B_LENS];
      const kl = u8[base + B_LENS + 1];
      const ll = u8[base + B_LENS + 2];
      const n = u8[base + B_LENS + 3];
      if (cl > CALL_ID_MAX || kl > CODEC_MAX || ll > LABELS_MAX) continue;
      const callId = decoder.decode(u8.slice(base + B_CALL_ID, base + B_CALL_ID + cl));
      const codec = decoder.decode(u8.slice(base + B_CODEC, base + B_CODEC + kl));
      const lab = u8.slice(base + B_LABELS, base + B_LABELS + ll);
      if (Atomics.load(this.i32, seqIdx) !== s1) continue;
      const ctx: FlowContext = { callId, codec };
      if (n > 0) {
        const labels: Record<string, string> = {};
        let p = 0;
        for (let j = 0; j < n && p < lab.length; j++) {
          const k = decoder.decode(lab.subarray(p + 1, p + 1 + lab[p]));
          p += 1 + lab[p];
          labels[k] = decoder.decode(lab.subarray(p + 1, p + 1 + lab[p]));
          p += 1 + lab[p];
        }
        ctx.labels = labels;
      }
      return ctx;
    }
    return null;
  }

  // ---- writes (control plane: serialised by the writer lock) ----

  /**
   * Adds or replaces the entry for `key`, living `ttlMs` from now. Returns
   * its slot, or -1 if the writer lock stayed busy (counted). Throws
   * OTUS_ERR_BAD_ARGUMENT if the context does not fit its slot.
   */
  register(key: FlowKey, ctx: FlowContext, ttlMs: number): number {
    // UTF-8 written straight into the scratch slot: TextEncoder.encode cost a
    // fifth of the SIP path once (measured: bench/sip, CPU profile).
    const c = this.builder.reset().callIdString(ctx.callId).codecString(ctx.codec);
    const labels = ctx.labels;
    if (labels !== undefined) for (const k in labels) c.labelString(k, labels[k]!);
    return this.registerScratch(key, ttlMs);
  }

  /**
   * Adds or replaces the entry for `key` with the context in `builder`
   * (filled since its last reset()), living `ttlMs` from `now`. The builder
   * keeps its content, so one context can go under several keys. Returns
   * the slot, or -1 if the writer lock stayed busy (counted). `now`: a
   * Date.now() the caller read once for several writes (a clock read costs
   * as much as the write).
   */
  registerScratch(key: FlowKey, ttlMs: number, now = Date.now()): number {
    if (!(ttlMs > 0)) badArg(`flow ttl ${ttlMs}: must be > 0 ms`);
    const own = !this.held; // holdWrites() took it already
    if (own && !this.lock()) return -1;
    try {
      const w = key.w;
      const i32 = this.i32;
      const f64 = this.f64;
      let i = hashKey(w) & this.mask;
      let found = -1;
      let free = -1;
      let freeExpired = false;
      let victim = -1;
      let victimExp = Infinity;
      for (let k = 0; k < this.window; k++, i = (i + 1) & this.mask) {
        const b = HEADER_BYTES / 4 + i * W;
        const st = i32[b + O_STATE];
        if (st === EMPTY) {
          if (free < 0) free = i;
          break; // the key cannot sit past an empty slot
        }
        if (st === REMOVED) {
          if (free < 0) free = i;
          continue;
        }
        let same = true;
        for (let j = 0; same && j < 10; j++) same = i32[b + O_KIND + j] === w[j];
        if (same) {
          found = i;
          break;
        }
        const exp = f64[(b >> 1) + O_EXP_F64];
        if (exp <= now) {
          if (free < 0) {
            free = i;
            freeExpired = true;
          }
        } else if (exp < victimExp) {
          victimExp = exp;
          victim = i;
        }
      }
      let slot: number;
      if (found >= 0) {
        slot = found;
        f64[F_UPDATES]++;
      } else if (free >= 0) {
        slot = free;
        f64[F_INSERTS]++;
        if (freeExpired) f64[F_EXPIRED]++;
      } else {
        slot = victim;
        f64[F_INSERTS]++;
        f64[F_EVICTIONS]++;
      }
      const b = HEADER_BYTES / 4 + slot * W;
      const s = i32[b + O_SEQ];
      Atomics.store(i32, b + O_SEQ, (s + 1) | 0); // odd: readers back off
      if (found < 0) {
        i32[b + O_STATE] = LIVE;
        for (let j = 0; j < 10; j++) i32[b + O_KIND + j] = w[j];
      }
      f64[(b >> 1) + O_EXP_F64] = now + ttlMs;
      // Lengths, codec and call-id, then labels, as words up to their lengths: the
      // cache lines past them are not touched (a slot is five; SIP contexts need about three).
      const bld = this.builder;
      const src = bld.words;
      const cl = bld.callIdLength;
      const ll = bld.labelsLength;
      for (let j = B_LENS >> 2, e = (B_CALL_ID + cl + 3) >> 2; j < e; j++) i32[b + j] = src[j];
      for (let j = B_LABELS >> 2, e = (B_LABELS + ll + 3) >> 2; j < e; j++) i32[b + j] = src[j];
      Atomics.store(i32, b + O_SEQ, (s + 2) | 0);
      return slot;
    } finally {
      if (own) this.unlock();
    }
  }

  /**
   * Sets a live entry's expiry to `ttlMs` from now (a call that ended keeps
   * its media for a grace), its context untouched. False if there is no
   * such entry (absent or already expired) or the writer lock stayed busy.
   * `now` as for registerScratch.
   */
  expireIn(key: FlowKey, ttlMs: number, now = Date.now()): boolean {
    if (!(ttlMs > 0)) badArg(`flow ttl ${ttlMs}: must be > 0 ms`);
    const own = !this.held; // holdWrites() took it already
    if (own && !this.lock()) return false;
    try {
      const b = this.liveSlotLocked(key);
      const i32 = this.i32;
      const f64 = this.f64;
      if (b < 0 || f64[(b >> 1) + O_EXP_F64] <= now) return false;
      // A write like any other: readers that cached this slot's sequence see it change.
      const s = i32[b + O_SEQ];
      Atomics.store(i32, b + O_SEQ, (s + 1) | 0);
      f64[(b >> 1) + O_EXP_F64] = now + ttlMs;
      Atomics.store(i32, b + O_SEQ, (s + 2) | 0);
      f64[F_UPDATES]++;
      return true;
    } finally {
      if (own) this.unlock();
    }
  }

  /** With the writer lock held (no seqlock needed): the word index of key's live slot (expired or not), or -1. */
  private liveSlotLocked(key: FlowKey): number {
    const w = key.w;
    const i32 = this.i32;
    let i = hashKey(w) & this.mask;
    for (let k = 0; k < this.window; k++, i = (i + 1) & this.mask) {
      const b = HEADER_BYTES / 4 + i * W;
      const st = i32[b + O_STATE];
      if (st === EMPTY) return -1;
      if (st !== LIVE) continue;
      let same = true;
      for (let j = 0; same && j < 10; j++) same = i32[b + O_KIND + j] === w[j];
      if (same) return b;
    }
    return -1;
  }

  /** Removes the entry for `key`; false if there was none (or the writer lock stayed busy). */
  unregister(key: FlowKey): boolean {
    const own = !this.held; // holdWrites() took it already
    if (own && !this.lock()) return false;
    try {
      const b = this.liveSlotLocked(key);
      if (b < 0) return false;
      this.markRemoved(b);
      this.f64[F_REMOVES]++;
      return true;
    } finally {
      if (own) this.unlock();
    }
  }

  /**
   * Reclaims expired entries and turns removed slots back into empty ones
   * where no probe chain runs through them. Returns how many expired.
   */
  sweep(now = Date.now()): number {
    const own = !this.held; // holdWrites() took it already
    if (own && !this.lock()) return 0;
    try {
      const i32 = this.i32;
      const f64 = this.f64;
      let expired = 0;
      for (let i = 0; i < this.capacity; i++) {
        const b = HEADER_BYTES / 4 + i * W;
        if (i32[b + O_STATE] === LIVE && f64[(b >> 1) + O_EXP_F64] <= now) {
          this.markRemoved(b);
          expired++;
        }
      }
      f64[F_EXPIRED] += expired;
      // A removed slot followed by an empty one ends no chain: empty it, walking back.
      for (let pass = 0; pass < 2; pass++) {
        for (let i = this.capacity - 1; i >= 0; i--) {
          const b = HEADER_BYTES / 4 + i * W;
          const nb = HEADER_BYTES / 4 + ((i + 1) & this.mask) * W;
          if (i32[b + O_STATE] === REMOVED && i32[nb + O_STATE] === EMPTY) {
            const s = i32[b + O_SEQ];
            Atomics.store(i32, b + O_SEQ, (s + 1) | 0);
            i32[b + O_STATE] = EMPTY;
            Atomics.store(i32, b + O_SEQ, (s + 2) | 0);
          }
        }
      }
      return expired;
    } finally {
      if (own) this.unlock();
    }
  }

  private markRemoved(b: number): void {
    const i32 = this.i32;
    const s = i32[b + O_SEQ];
    Atomics.store(i32, b + O_SEQ, (s + 1) | 0);
    i32[b + O_STATE] = REMOVED;
    Atomics.store(i32, b + O_SEQ, (s + 2) | 0);
  }

  /**
   * Takes the writer lock for a run of writes (registerScratch, expireIn,
   * register, unregister, sweep), so they take it once: a SIP message
   * writes a call's few entries together. False if it stayed busy
   * (counted): each write then tries the lock on its own, as without a
   * hold. Pair with releaseWrites() in a finally.
   */
  holdWrites(): boolean {
    if (this.held) badArg(`${this.name}: writes already held`);
    if (!this.lock()) return false;
    this.held = true;
    return true;
  }

  releaseWrites(): void {
    if (!this.held) return;
    this.held = false;
    this.unlock();
  }

  /** Writer lock (lockWriter): a dead holder's half-written slots dropped, gives up after ~50 ms (counted). */
  private lock(): boolean {
    const l = lockWriter(this.i32, I_LOCK, 50, this.name);
    if (l === Lock.TookOver) {
      this.f64[F_TAKEOVERS]++;
      this.repair();
    } else if (l === Lock.Busy) this.f64[F_WRITE_BUSY]++;
    return l !== Lock.Busy;
  }

  /** After a writer died holding the lock: a slot it left odd is half written; drop it. */
  private repair(): void {
    const i32 = this.i32;
    for (let i = 0; i < this.capacity; i++) {
      const b = HEADER_BYTES / 4 + i * W;
      const s = i32[b + O_SEQ];
      if ((s & 1) === 0) continue;
      i32[b + O_STATE] = REMOVED;
      Atomics.store(i32, b + O_SEQ, (s + 1) | 0);
    }
  }

  private unlock(): void {
    Atomics.store(this.i32, I_LOCK, 0);
  }

  /** Test hook: takes the writer lock and leaves a slot half written, as a writer killed mid-register would. */
  crashMidWriteForTest(key: FlowKey): number {
    if (!this.lock()) return -1;
    const i = hashKey(key.w) & this.mask;
    const b = HEADER_BYTES / 4 + i * W;
    Atomics.store(this.i32, b + O_SEQ, (this.i32[b + O_SEQ] + 1) | 0);
    return i;
  }

  /** The counters, and the live entries counted by walking every slot (about 0.7 ms at 65536 slots). */
  stats(): RegistryStats {
    let live = 0;
    for (let i = 0; i < this.capacity; i++) if (this.i32[HEADER_BYTES / 4 + i * W + O_STATE] === LIVE) live++;
    return { ...this.counters(), live };
  }

  /**
   * The counters without walking the slots (what a scrape reads): live
   * entries derived from them, since every insert takes an empty, removed,
   * expired or evicted slot and each of those is counted.
   */
  counters(): RegistryStats {
    const f = this.f64;
    return {
      capacity: this.capacity,
      live: Math.max(0, f[F_INSERTS] - f[F_EVICTIONS] - f[F_REMOVES] - f[F_EXPIRED]),
      inserts: f[F_INSERTS],
      updates: f[F_UPDATES],
      removes: f[F_REMOVES],
      evictions: f[F_EVICTIONS],
      expired: f[F_EXPIRED],
      lockTakeovers: f[F_TAKEOVERS],
      writesBusy: f[F_WRITE_BUSY],
    };
  }

  /** The creator removes the segment name; others just drop their mapping. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.owner) native.shmUnlink(this.name);
    this.media?.close();
  }

  /** Scratch key for callers that build keys rarely (control plane). */
  get tmpKey(): FlowKey {
    return this.key;
  }
}
