// Per-stream RTP statistics (README.md, "Stream statistics"): a bounded
// table of streams keyed by SSRC and flow, updated by every packet on the
// generic and the fast path, reported as `rtp.stats` records every
// `interval` seconds of capture time and once at the stream's end.
//
// Everything per packet is stores into typed arrays: a row of doubles per
// stream (ROW below) and its key words. A packet at or past its stream's
// next report time first copies the row into the report queue (so a report
// holds exactly the packets before its boundary, whatever the ring blocks
// or the number of capture processes); the queue is emitted between blocks
// (RtpParser.drain), where strings are made for the records alone.
//
// Loss: RFC 3550 A.1 and A.3 (sequence wrap, a restart after two
// sequential packets past a large jump, expected minus received).
// Jitter: RFC 3550 A.8, between packets in arrival order.

import { native } from '../../../src/native.js';

export interface RtpStatsConfig {
  /** Seconds of capture time between a stream's reports; 0: stats off. */
  interval: number;
  /** Send each packet's record as well. */
  per_packet: boolean;
  /** Streams tracked at once per capture process (a power of two). */
  max_streams: number;
  /** Seconds of capture time without a packet that end a stream. */
  idle: number;
}

// A stream's row of doubles, 64-byte aligned. Times are seconds since the
// stream's first packet's whole second (F.BASE), so differences keep
// nanoseconds. What a media packet reads or writes is the first two lines
// (the hot fields, the clock rate's inverse among them).
// Measured with 1000 calls (README.md, "Stream statistics"): the row's lines
// are cache misses per packet.
//
// The fast path (fastPacket: the next sequence number, time going forward)
// leaves three figures behind that it would change the same way every
// packet, and writes fewer words: the window of sequence numbers seen gains
// a 1, the delta count one, the delta sum telescopes to F.REF_T's advance.
// sync() adds what the packets since F.RUN_P (F.PACKETS then) and F.RUN_T
// (F.REF_T then) changed, before any other code reads or changes them.
// Numbers, not module constants: an access is then one bytecode, which keeps
// fastPacket under V8's inlining limit.
const enum F {
  BASE = 0,
  LAST = 1,
  PACKETS = 2, // also RFC 3550 A.3's received: every packet counts in both
  BYTES = 3,
  NEXT = 4, // next report time
  MAX_SEQ = 5,
  REF_T = 6, // arrival and RTP timestamp of the last media packet (F.REF_TS -1: none yet, or a restart)
  REF_TS = 7,
  JITTER = 8, // seconds
  MAX_DELTA = 9,
  MAX_JITTER = 10,
  SUM_JITTER = 11,
  INV_RATE = 12, // 1 / the clock rate, 0 none: the jitter multiplies (a division's latency was a fifth of fastPacket's time)
  FAST_PT = 13, // the payload type fastPacket counts (the clock rate's and the last one; a timing reference), else -1: synced()
  // Seldom touched.
  FIRST = 16,
  EXP_BASE = 17,
  BASE_SEQ = 18,
  BAD_SEQ = 19,
  DUPS = 20,
  OOO = 21,
  JUMPS = 22,
  RESTARTS = 23,
  PT_CHANGES = 24,
  EVENTS = 25,
  EXP_PRIOR = 26, // expected and packets at the last report (A.3's interval figures)
  PKT_PRIOR = 27,
  EV_CODE = 28, // the RFC 4733 event in progress: code (-1 none), RTP timestamp, start, duration (units), ended
  EV_TS = 29,
  EV_START = 30,
  EV_DUR = 31,
  EV_ENDED = 32,
  NDIG = 33,
  DIG_DROPPED = 34,
  MARKERS = 35,
  CYCLES = 36,
  // For reports: the clock rate (setRate) and a copy of meta's last payload type (enqueue).
  RATE = 37,
  LAST_PT = 38,
  N_NO_RATE = 39, // F.N_DELTA's packets without a clock rate, so without a jitter figure
  WIN = 40, // bitmap of the 32 sequence numbers up to max_seq that were seen (bit 0: max_seq); sync() first
  SUM_DELTA = 41, // sync() first
  N_DELTA = 42, // sync() first
  RUN_P = 43,
  RUN_T = 44,
  DIGITS = 45, // DIGITS_MAX of code, start, duration (seconds)
}
/** Digits kept per report: code, start, duration (seconds) each. */
export const DIGITS_MAX = 16;
export const ROW = Math.ceil((F.DIGITS + 3 * DIGITS_MAX) / 8) * 8; // 96: whole lines

// meta's words per row (a quarter of a line): what the fast path reads
// besides the row's two hot lines. Whether a row still holds the packet's
// stream is not checked per packet: the flow-cache entry that leads a packet
// here is unlinked when the row's stream ends (link, below), and the entry
// keeps the SSRC it was linked for (correlate.ts, statsRow).
const M_RATE_PT = 0; // the payload type F.RATE is for, -1 none yet
const M_LAST_PT = 1; // -1 none yet
export const META = 4;

// Key words: SSRC, ports, IP version, source and destination (IPv4: word 0; IPv6: four big-endian words), tag.
const K_SSRC = 0;
const K_PORTS = 1;
const K_IPV = 2;
const K_SRC = 3;
const K_DST = 7;
const K_USED = 11; // the row's tag (find sets it)
export const KEY = 12;

/**
 * A stream silent this long (seconds of capture time) may be ended for a new
 * one when the table is full; one heard from since is not: ending live
 * streams in turn (more streams than max_streams, round-robin) made every
 * packet end one, with a report of a packet or two each (bench/rtp-calls
 * with 10 K calls and stats on: 0.11 M packets per CPU-second).
 */
const EVICT_SILENT = 1;
/** Ways per set; the table has twice max_streams rows, so sets seldom fill. */
const WAYS = 8;
const SEQ_MOD = 65536;
const MAX_DROPOUT = 3000;
const MAX_MISORDER = 100;
// What sequence() found.
const SEQ_OK = 0;
const SEQ_JUMP = 1;
const SEQ_RESTART = 2;
/** Telephone events' clock (RFC 4733 §2.1: the audio's rate; 8000 for every rtpmap seen in practice). */
const EVENT_RATE = 8000;

/** Why a report was made. */
export const enum ReportKind {
  Interval = 0,
  /**
   * The stream ended: no packet for `idle` seconds of capture time, or the
   * end of the input or capture. (One kind for both: which of them a
   * capture process sees first depends on the other streams it was given.)
   */
  End = 1,
  /** Its row was needed for a new stream (the table was full). */
  Evicted = 2,
}
export const REPORT_KIND_NAMES = ['interval', 'end', 'evicted'] as const;

/** RFC 3551 static payload types' clock rates (Table 4 and 5). */
const STATIC_RATE = new Float64Array(128);
for (const [pt, r] of [
  [0, 8000], [3, 8000], [4, 8000], [5, 8000], [6, 16000], [7, 8000], [8, 8000], [9, 8000], [10, 44100], [11, 44100], [12, 8000], [13, 8000],
  [14, 90000], [15, 8000], [16, 11025], [17, 22050], [18, 8000], [19, 8000], [25, 90000], [26, 90000], [28, 90000], [31, 90000], [32, 90000],
  [33, 90000], [34, 90000],
] as const)
  STATIC_RATE[pt] = r;

/** Clock rates of dynamic payload types by encoding name (IANA's media types registry; lower case). */
const NAMED_RATE: Readonly<Record<string, number>> = {
  pcmu: 8000, pcma: 8000, g722: 8000, g729: 8000, g723: 8000, gsm: 8000, 'gsm-efr': 8000, ilbc: 8000, speex: 8000, amr: 8000, 'amr-wb': 16000,
  g7221: 16000, 'g726-16': 8000, 'g726-24': 8000, 'g726-32': 8000, 'g726-40': 8000, evs: 16000, opus: 48000, silk: 16000, 'telephone-event': 8000,
  cn: 8000, red: 1000, t140: 1000, h263: 90000, 'h263-1998': 90000, 'h263-2000': 90000, h264: 90000, h265: 90000, vp8: 90000, vp9: 90000, av1: 90000,
};

/** A payload type's clock rate: the codec's (SDP name) when known, else RFC 3551's static one, else 0 (no jitter). */
export function clockRate(pt: number, codec: string | null): number {
  if (codec !== null) {
    const r = NAMED_RATE[codec.toLowerCase()];
    if (r !== undefined) return r;
  }
  return STATIC_RATE[pt & 127];
}

/**
 * ITU-T G.113 Appendix I planning values (Table I.1 for Ie, Table I.3 for
 * Ie with Bpl under random loss) by codec name: [Ie, Bpl]. README.md lists them.
 */
const EMODEL: Readonly<Record<string, readonly [number, number]>> = {
  pcmu: [0, 25.1], // G.711 with packet loss concealment
  pcma: [0, 25.1],
  g729: [11, 19.0], // G.729A + VAD
  g723: [15, 16.1], // G.723.1 6.3 kbit/s + VAD
  'gsm-efr': [5, 10.0],
};

/** EMODEL by codec name as the SDP wrote it (no lower-case copy per report); as many entries as names seen. */
const emodelOf = new Map<string, readonly [number, number] | null>();

/**
 * R-factor of the simplified E-model (ITU-T G.107 with its default values:
 * R = 93.2 - Id - Ie,eff), -1 when the codec has no planning values.
 * Ie,eff = Ie + (95 - Ie) · Ppl / (Ppl + Bpl) (random loss, BurstR 1);
 * Id from the one-way delay estimate d in ms (G.107's Id for Ta = d, as
 * simplified by Cole and Rosenbluth: 0.024 d + 0.11 (d - 177.3) above 177.3 ms).
 */
export function rFactor(codec: string | null, lossPct: number, delayMs: number): number {
  if (codec === null) return -1;
  let v = emodelOf.get(codec);
  if (v === undefined) emodelOf.set(codec, (v = EMODEL[codec.toLowerCase()] ?? null));
  if (v === null) return -1;
  const ppl = lossPct > 0 ? lossPct : 0;
  const ie = v[0] + ((95 - v[0]) * ppl) / (ppl + v[1]);
  const id = 0.024 * delayMs + (delayMs > 177.3 ? 0.11 * (delayMs - 177.3) : 0);
  return 93.2 - id - ie;
}

/** MOS-CQE from R (ITU-T G.107 Annex B). */
export function mosOf(r: number): number {
  if (r <= 0) return 1;
  if (r >= 100) return 4.5;
  return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6;
}

export class StreamTableStats {
  streams = 0;
  evictions = 0;
  /** Packets of streams not tracked: both their sets were full of streams heard from within EVICT_SILENT (more streams than max_streams). */
  untracked = 0;
  reports = 0;
  /** Reports lost because the queue was full (more streams crossed a boundary in one ring block than it holds). */
  reportsDropped = 0;
  /** RFC 4733 digits beyond DIGITS_MAX in one report. */
  digitsDropped = 0;
}

/**
 * The table. `find` sets the key from `key` (fill it first) and returns the
 * stream's row (or -1 when it has none and `create` is false); `packet`
 * counts one packet in it.
 */
export class RtpStreamTable {
  readonly stats = new StreamTableStats();
  readonly rows: Float64Array;
  readonly keys: Int32Array;
  /** Per row, a hash of its key with the low bit set (0: free): a set's eight are one 32-byte run, compared before any key. */
  readonly tags: Int32Array;
  /** Per row, META words: the clock rate's payload type, the last payload type. */
  readonly meta: Int32Array;
  /** Call labels by row, strings made when the stream starts (or its codec changes). */
  readonly callId: (string | null)[];
  readonly codec: (string | null)[];
  readonly media: (string | null)[];
  /** Direction by row (rtcp-summary.ts: 0 unknown), set when the stream starts. */
  readonly direction: Uint8Array;
  /** Hash of the row's call-id (src/shm/media.ts callHash; 0 none), set when the stream starts: its call's end ends it. */
  readonly callHash: Int32Array;
  /** The key `find` looks for. */
  readonly key = new Int32Array(KEY);
  /** Set by find: the row was made for this packet. */
  created = false;
  // Report queue: snapshots of rows, their keys, labels and why.
  readonly qRows: Float64Array;
  readonly qKeys: Int32Array;
  readonly qKind: Uint8Array;
  /** Report time: seconds since qRows' F.BASE. */
  readonly qTime: Float64Array;
  readonly qCallId: (string | null)[];
  /** The call-id's hash (callHash), for the report's RTCP summary. */
  readonly qCallHash: Int32Array;
  readonly qCodec: (string | null)[];
  readonly qMedia: (string | null)[];
  readonly qDirection: Uint8Array;
  qLen = 0;
  /**
   * The rows in use, in no order (liveCount of them), and each row's place
   * there: the once-a-second scans (expire, CallEnds) visit the streams
   * there are, not the whole table (twice max_streams rows).
   */
  readonly live: Int32Array;
  liveCount = 0;
  private readonly liveAt: Int32Array;
  /**
   * Per row, the flow-cache entry (its first word + 1; 0 none) whose fast
   * path counts in the row, and what unlinks it when the row's stream ends
   * (MediaCorrelator.clearStatsRow): the fast path trusts the link instead
   * of comparing the row's stream with its packet's, so it reads no key.
   */
  readonly link: Int32Array;
  unlink: ((entry: number, row: number) => void) | null = null;
  /** The latest packet's capture time (seconds), for idle streams. */
  clock = 0;
  private lastScan = 0;
  private readonly setMask: number;
  private readonly interval: number;
  private readonly idle: number;

  constructor(cfg: RtpStatsConfig, queue = 2048) {
    let cap = WAYS;
    while (cap < 2 * cfg.max_streams) cap <<= 1;
    this.rows = new Float64Array(native.pageBuffer(8 * cap * ROW));
    this.tags = new Int32Array(cap);
    this.keys = new Int32Array(cap * KEY);
    this.meta = new Int32Array(cap * META);
    this.callId = new Array<string | null>(cap).fill(null);
    this.codec = new Array<string | null>(cap).fill(null);
    this.media = new Array<string | null>(cap).fill(null);
    this.direction = new Uint8Array(cap);
    this.callHash = new Int32Array(cap);
    this.live = new Int32Array(cap);
    this.link = new Int32Array(cap);
    this.liveAt = new Int32Array(cap);
    this.setMask = cap / WAYS - 1;
    this.interval = cfg.interval;
    this.idle = cfg.idle;
    this.qRows = new Float64Array(queue * ROW);
    this.qKeys = new Int32Array(queue * KEY);
    this.qKind = new Uint8Array(queue);
    this.qTime = new Float64Array(queue);
    this.qCallId = new Array<string | null>(queue).fill(null);
    this.qCallHash = new Int32Array(queue);
    this.qCodec = new Array<string | null>(queue).fill(null);
    this.qMedia = new Array<string | null>(queue).fill(null);
    this.qDirection = new Uint8Array(queue);
  }

  get capacity(): number {
    return this.callId.length;
  }

  /**
   * The stream of `key` at capture time sec + nsec: its row, or -1 (not
   * tracked, and `create` false; or no room: stats.untracked). A key has two sets (the power of two
   * choices) and a new stream takes the emptier: with one set a key, about
   * 1 % of max_streams streams found their set full while the table had room,
   * and each of their packets ended a live stream (an `evicted` report of a
   * packet or two); measured with 1000 calls, 4500 evictions a 10-second pass.
   */
  find(sec: number, nsec: number, create: boolean): number {
    const h = this.hash();
    const tag = h | 1;
    this.key[K_USED] = tag;
    const s1 = ((h >>> 8) & this.setMask) * WAYS;
    const s2 = ((Math.imul(h, 0x9e3779b1) >>> 16) & this.setMask) * WAYS;
    this.created = false;
    let r = this.match(s1, tag);
    if (r < 0 && s2 !== s1) r = this.match(s2, tag);
    if (r >= 0) {
      const t = sec - this.rows[r * ROW + F.BASE] + nsec * 1e-9;
      if (t - this.rows[r * ROW + F.LAST] <= this.idle) return r;
      if (!create) return -1;
      // Silent for longer than `idle`: that stream ended, this one starts afresh.
      this.end(r, ReportKind.End);
      return this.start(r, sec, nsec);
    }
    if (!create) return -1;
    const T = this.tags;
    const f2 = s2 === s1 ? 0 : this.free(s2);
    const s = f2 > this.free(s1) ? s2 : s1;
    for (let x = s; x < s + WAYS; x++) if (T[x] === 0) return this.start(x, sec, nsec);
    // Both sets full (more streams than max_streams): the stream heard from longest ago makes room, if it has been silent for EVICT_SILENT.
    let pick = s1;
    for (let x = s1; x < s1 + WAYS; x++) if (this.lastAbs(x) < this.lastAbs(pick)) pick = x;
    if (s2 !== s1) for (let x = s2; x < s2 + WAYS; x++) if (this.lastAbs(x) < this.lastAbs(pick)) pick = x;
    if (sec + nsec * 1e-9 - this.lastAbs(pick) < EVICT_SILENT) {
      this.stats.untracked++;
      return -1;
    }
    this.end(pick, ReportKind.Evicted);
    this.stats.evictions++;
    return this.start(pick, sec, nsec);
  }

  /** The row of set s (its first row) holding `key` (tagged `tag`), or -1. */
  private match(s: number, tag: number): number {
    const T = this.tags;
    const K = this.keys;
    const k = this.key;
    for (let r = s; r < s + WAYS; r++) {
      if (T[r] !== tag) continue;
      const b = r * KEY;
      if (K[b + K_SSRC] === k[K_SSRC] && K[b + K_PORTS] === k[K_PORTS] && K[b + K_SRC] === k[K_SRC] && K[b + K_DST] === k[K_DST] && K[b + K_IPV] === k[K_IPV] && this.sameV6(b)) return r;
    }
    return -1;
  }

  /** Free rows in set s. */
  private free(s: number): number {
    let n = 0;
    for (let r = s; r < s + WAYS; r++) if (this.tags[r] === 0) n++;
    return n;
  }

  /** A hash of `key` (SSRC, flow): each word mixed in, then murmur3's finaliser (SSRCs, addresses and ports often differ in their low bits alone). */
  hash(): number {
    const k = this.key;
    let h = Math.imul(k[K_SSRC], 0x9e3779b1) ^ k[K_SRC] ^ k[K_SRC + 3];
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) ^ k[K_DST] ^ k[K_DST + 3];
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) ^ k[K_PORTS];
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    return h ^ (h >>> 13);
  }

  /**
   * The fast path's packet: counts it in row r (the one the packet's
   * flow-cache entry links, for the packet's SSRC: so the row holds the
   * packet's stream) if the stream is not idle at sec + nsec and the row has
   * its clock rate for payload type pt; else false, and the packet takes the
   * generic path (find, labels, the rate). The common packet (media, the
   * next sequence number, no marker, no report due) is counted here, as
   * packet() would, without its branches and calls; any other goes through
   * packet().
   */
  fastPacket(r: number, sec: number, nsec: number, seq: number, ts: number, pt: number, marker: boolean, bytes: number): boolean {
    if (r < 0) return false;
    const R = this.rows;
    const o = r * ROW;
    const t = sec - R[o + F.BASE] + nsec * 1e-9;
    const refT = R[o + F.REF_T];
    if (R[o + F.FAST_PT] !== pt || marker || seq !== R[o + F.MAX_SEQ] + 1 || t >= R[o + F.NEXT] || t < refT || t - R[o + F.LAST] > this.idle) {
      return this.notFast(r, sec, nsec, seq, ts, pt, marker, bytes);
    }
    // packet() for this case: sequence() is A.1's in-order step (no wrap: seq is max + 1), the jitter A.8's;
    // the window, delta count and delta sum are left to sync().
    this.clock = sec + nsec * 1e-9;
    R[o + F.PACKETS]++;
    R[o + F.BYTES] += bytes;
    R[o + F.LAST] = t;
    R[o + F.MAX_SEQ] = seq;
    const dts = (ts - R[o + F.REF_TS]) | 0;
    const delta = t - refT;
    const d = Math.abs(delta - dts * R[o + F.INV_RATE]);
    const j = R[o + F.JITTER] + (d - R[o + F.JITTER]) / 16;
    R[o + F.JITTER] = j;
    R[o + F.REF_T] = t;
    R[o + F.REF_TS] = ts;
    if (delta > R[o + F.MAX_DELTA]) R[o + F.MAX_DELTA] = delta;
    if (j > R[o + F.MAX_JITTER]) R[o + F.MAX_JITTER] = j;
    R[o + F.SUM_JITTER] += j;
    return true;
  }

  /**
   * fastPacket's packet that is not the common one: false for the generic
   * path (a payload type without its clock rate, a stream ended by silence),
   * else counted by packet(). Apart, so that fastPacket stays small enough
   * for V8 to inline into the fast path (460 bytes of bytecode): inlined,
   * stats on measured 5 % faster.
   */
  private notFast(r: number, sec: number, nsec: number, seq: number, ts: number, pt: number, marker: boolean, bytes: number): boolean {
    if (this.meta[r * META + M_RATE_PT] !== pt) return false;
    const R = this.rows;
    const o = r * ROW;
    if (sec - R[o + F.BASE] + nsec * 1e-9 - R[o + F.LAST] > this.idle) return false;
    this.packet(r, sec, nsec, seq, ts, pt, marker, bytes, -1, false, 0);
    return true;
  }

  /** Adds to row o's window, delta count and delta sum what fastPacket's packets since the last sync left to it. */
  private sync(o: number): void {
    const R = this.rows;
    const k = R[o + F.PACKETS] - R[o + F.RUN_P];
    if (k === 0) return;
    R[o + F.WIN] = k >= 32 ? 0xffffffff : ((R[o + F.WIN] << k) | ((1 << k) - 1)) >>> 0;
    R[o + F.N_DELTA] += k;
    R[o + F.SUM_DELTA] += R[o + F.REF_T] - R[o + F.RUN_T];
    this.runFrom(o);
  }

  /** Nothing left to sync() in row o: the next run starts from here. */
  private runFrom(o: number): void {
    this.rows[o + F.RUN_P] = this.rows[o + F.PACKETS];
    this.rows[o + F.RUN_T] = this.rows[o + F.REF_T];
  }

  /** Row r after packet(): nothing left to sync(), and whether fastPacket may count its packets. */
  private synced(r: number): void {
    const R = this.rows;
    const o = r * ROW;
    this.runFrom(o);
    const M = this.meta;
    const pt = M[r * META + M_LAST_PT];
    R[o + F.FAST_PT] = pt === M[r * META + M_RATE_PT] && R[o + F.INV_RATE] !== 0 && R[o + F.REF_TS] >= 0 ? pt : -1;
  }

  private start(r: number, sec: number, nsec: number): number {
    this.init(r, sec, nsec);
    this.created = true;
    return r;
  }

  /** Counts a packet in row r. `event` is the RFC 4733 event code, -1 for media. */
  packet(r: number, sec: number, nsec: number, seq: number, ts: number, pt: number, marker: boolean, bytes: number, event: number, eventEnd: boolean, eventDur: number): void {
    const o = r * ROW;
    this.sync(o);
    this.count(r, o, sec, nsec, seq, ts, pt, marker, bytes, event, eventEnd, eventDur);
    this.synced(r);
  }

  private count(r: number, o: number, sec: number, nsec: number, seq: number, ts: number, pt: number, marker: boolean, bytes: number, event: number, eventEnd: boolean, eventDur: number): void {
    const R = this.rows;
    const t = sec - R[o + F.BASE] + nsec * 1e-9;
    // The latest packet's time, not the largest seen: files replayed one after another go back in time, and a stream
    // of an earlier file must not end a later file's streams (nor one capture process's order of them differ from another's).
    this.clock = sec + nsec * 1e-9;
    if (t >= R[o + F.NEXT]) this.due(r, t);
    if (R[o + F.PACKETS] === 0) R[o + F.FIRST] = t;
    R[o + F.PACKETS]++;
    R[o + F.BYTES] += bytes;
    R[o + F.LAST] = t;
    if (marker) R[o + F.MARKERS]++;
    const sq = this.sequence(o, seq);
    // A jump the next packet may confirm as a restart is left out of the timing; a restart (the sender's timestamps start again too) starts its reference afresh.
    if (sq === SEQ_JUMP) return;
    if (sq === SEQ_RESTART) R[o + F.REF_TS] = -1;
    if (event >= 0) {
      R[o + F.EVENTS]++;
      this.dtmf(r, o, t, ts, event, eventEnd, eventDur);
      return;
    }
    const M = this.meta;
    const m = r * META;
    const lastPt = M[m + M_LAST_PT];
    if (lastPt !== pt) {
      if (lastPt >= 0) R[o + F.PT_CHANGES]++;
      M[m + M_LAST_PT] = pt;
    }
    const inv = R[o + F.INV_RATE];
    if (R[o + F.REF_TS] < 0) {
      R[o + F.REF_T] = t;
      R[o + F.REF_TS] = ts;
      return;
    }
    // RFC 3550 A.8, in arrival order: D = (Rj - Ri) - (Sj - Si) / rate, Si's wrap at 2^32 taken as a signed difference.
    const dts = (ts - R[o + F.REF_TS]) | 0;
    const delta = t - R[o + F.REF_T];
    if (inv > 0) {
      const d = Math.abs(delta - dts * inv);
      R[o + F.JITTER] += (d - R[o + F.JITTER]) / 16;
    }
    R[o + F.REF_T] = t;
    R[o + F.REF_TS] = ts;
    // Max and mean figures leave out what is not a regular interval: a marker (a talkspurt's start), time going back.
    if (!marker && delta >= 0) {
      if (delta > R[o + F.MAX_DELTA]) R[o + F.MAX_DELTA] = delta;
      R[o + F.SUM_DELTA] += delta;
      R[o + F.N_DELTA]++;
      if (inv > 0) {
        const j = R[o + F.JITTER];
        if (j > R[o + F.MAX_JITTER]) R[o + F.MAX_JITTER] = j;
        R[o + F.SUM_JITTER] += j;
      } else {
        R[o + F.N_NO_RATE]++;
      }
    }
  }

  /** Sets row r's clock rate for media payload type pt (codec: its SDP name, or null) when it changed. */
  setRate(r: number, pt: number, codec: string | null): void {
    const m = r * META;
    if (this.meta[m + M_RATE_PT] === pt) return;
    this.meta[m + M_RATE_PT] = pt;
    const rate = clockRate(pt, codec);
    this.rows[r * ROW + F.RATE] = rate;
    this.rows[r * ROW + F.INV_RATE] = rate > 0 ? 1 / rate : 0;
    this.rows[r * ROW + F.FAST_PT] = -1; // the next packet() sets it
  }

  /** The payload type row r's clock rate is for (-1 none yet). */
  ratePt(r: number): number {
    return this.meta[r * META + M_RATE_PT];
  }

  /**
   * Streams silent for `idle` seconds of capture time end (a scan of the
   * streams in the table once per second of capture time); with `all`, every stream ends.
   * False when the queue filled first (emit it, then call again).
   */
  expire(all: boolean): boolean {
    if (!all && Math.abs(this.clock - this.lastScan) < 1) return true;
    this.lastScan = this.clock;
    const qCap = this.qKind.length;
    // Backwards: end() moves the last live row into the place it frees, one already visited.
    for (let i = this.liveCount - 1; i >= 0; i--) {
      const r = this.live[i];
      if (this.qLen >= qCap) {
        this.lastScan = -Infinity; // the queue is full: the rest once it is emitted
        return false;
      }
      if (all || this.clock - this.lastAbs(r) > this.idle) this.end(r, ReportKind.End);
    }
    return true;
  }

  private lastAbs(r: number): number {
    return this.rows[r * ROW + F.BASE] + this.rows[r * ROW + F.LAST];
  }

  private sameV6(b: number): boolean {
    const K = this.keys;
    const k = this.key;
    for (let i = 1; i < 4; i++) if (K[b + K_SRC + i] !== k[K_SRC + i] || K[b + K_DST + i] !== k[K_DST + i]) return false;
    return true;
  }

  private init(r: number, sec: number, nsec: number): void {
    const R = this.rows;
    const o = r * ROW;
    for (let i = o; i < o + ROW; i++) R[i] = 0;
    R[o + F.BASE] = sec;
    R[o + F.FIRST] = nsec * 1e-9;
    R[o + F.LAST] = nsec * 1e-9;
    R[o + F.LAST_PT] = -1;
    R[o + F.REF_TS] = -1;
    R[o + F.EV_CODE] = -1;
    R[o + F.FAST_PT] = -1;
    R[o + F.NEXT] = nsec * 1e-9 + this.interval;
    const K = this.keys;
    const b = r * KEY;
    for (let i = 0; i < KEY; i++) K[b + i] = this.key[i];
    this.tags[r] = this.key[K_USED];
    this.liveAt[r] = this.liveCount;
    this.live[this.liveCount++] = r;
    const m = r * META;
    this.meta[m + M_RATE_PT] = -1;
    this.meta[m + M_LAST_PT] = -1;
    this.callId[r] = null;
    this.codec[r] = null;
    this.media[r] = null;
    this.direction[r] = 0;
    this.callHash[r] = 0;
    this.stats.streams++;
  }

  /** RFC 3550 A.1 (update_seq, without probation: a passive observer takes the first packet), with A.3's counts. */
  private sequence(o: number, seq: number): number {
    const R = this.rows;
    let r = SEQ_OK;
    if (R[o + F.PACKETS] === 1) {
      R[o + F.BASE_SEQ] = seq;
      R[o + F.MAX_SEQ] = seq;
      R[o + F.BAD_SEQ] = SEQ_MOD + 1;
      R[o + F.WIN] = 1;
      return r;
    }
    const max = R[o + F.MAX_SEQ];
    const udelta = (seq - max) & 0xffff;
    if (udelta === 0) {
      R[o + F.DUPS]++;
    } else if (udelta < MAX_DROPOUT) {
      if (seq < max) R[o + F.CYCLES] += SEQ_MOD;
      R[o + F.MAX_SEQ] = seq;
      if (udelta > 1) R[o + F.JUMPS]++;
      R[o + F.WIN] = udelta >= 32 ? 1 : ((R[o + F.WIN] << udelta) | 1) >>> 0;
    } else if (udelta <= SEQ_MOD - MAX_MISORDER) {
      // A very large jump: a restart once two sequential packets say so.
      if (seq === R[o + F.BAD_SEQ]) {
        // The expected count so far is kept; counting starts again from the packet before this one.
        // (Expected stays continuous, so the interval's prior count holds.)
        R[o + F.EXP_BASE] += R[o + F.CYCLES] + max - R[o + F.BASE_SEQ] + 1;
        R[o + F.BASE_SEQ] = (seq - 1) & 0xffff;
        R[o + F.MAX_SEQ] = seq;
        R[o + F.CYCLES] = seq === 0 ? SEQ_MOD : 0;
        R[o + F.WIN] = 3;
        R[o + F.RESTARTS]++;
        R[o + F.BAD_SEQ] = SEQ_MOD + 1;
        r = SEQ_RESTART;
      } else {
        R[o + F.JUMPS]++;
        R[o + F.BAD_SEQ] = (seq + 1) & 0xffff;
        r = SEQ_JUMP;
      }
    } else {
      // Late: a duplicate when it is in the window and was seen.
      const back = (max - seq) & 0xffff;
      const bit = back < 32 ? 1 << back : 0;
      if (bit !== 0 && (R[o + F.WIN] & bit) !== 0) R[o + F.DUPS]++;
      else {
        R[o + F.OOO]++;
        if (bit !== 0) R[o + F.WIN] = (R[o + F.WIN] | bit) >>> 0;
      }
    }
    return r;
  }

  /** RFC 4733 §2.5: the packets of one event share its timestamp; the end bit (sent three times) ends it; a new timestamp starts another. */
  private dtmf(r: number, o: number, t: number, ts: number, code: number, end: boolean, dur: number): void {
    const R = this.rows;
    if (R[o + F.EV_CODE] >= 0 && R[o + F.EV_TS] === ts) {
      if (R[o + F.EV_ENDED] !== 0) return; // the end's retransmissions
      if (dur > R[o + F.EV_DUR]) R[o + F.EV_DUR] = dur;
      if (end) {
        R[o + F.EV_ENDED] = 1;
        this.digit(r, o);
      }
      return;
    }
    if (R[o + F.EV_CODE] >= 0 && R[o + F.EV_ENDED] === 0) this.digit(r, o); // its end was lost
    R[o + F.EV_CODE] = code;
    R[o + F.EV_TS] = ts;
    R[o + F.EV_START] = t;
    R[o + F.EV_DUR] = dur;
    R[o + F.EV_ENDED] = end ? 1 : 0;
    if (end) this.digit(r, o);
  }

  private digit(r: number, o: number): void {
    const R = this.rows;
    const n = R[o + F.NDIG];
    if (n >= DIGITS_MAX) {
      R[o + F.DIG_DROPPED]++;
      this.stats.digitsDropped++;
      return;
    }
    const d = o + F.DIGITS + 3 * n;
    R[d] = R[o + F.EV_CODE];
    R[d + 1] = R[o + F.EV_START];
    R[d + 2] = R[o + F.EV_DUR] / EVENT_RATE;
    R[o + F.NDIG] = n + 1;
  }

  /** Row r's report boundary has passed (t is the packet past it): queue an interval report, then count on. */
  private due(r: number, t: number): void {
    const R = this.rows;
    const o = r * ROW;
    const at = R[o + F.NEXT];
    this.enqueue(r, ReportKind.Interval, at);
    // The next boundary after t, on the stream's grid.
    const n = Math.floor((t - at) / this.interval) + 1;
    R[o + F.NEXT] = at + n * this.interval;
    R[o + F.EXP_PRIOR] = this.expected(o);
    R[o + F.PKT_PRIOR] = R[o + F.PACKETS];
    R[o + F.NDIG] = 0;
  }

  /** Ends row r: its last report, then the row is free. */
  end(r: number, kind: ReportKind): void {
    const o = r * ROW;
    // A pending event's digit (its end bit lost) is reported with the stream.
    if (this.rows[o + F.EV_CODE] >= 0 && this.rows[o + F.EV_ENDED] === 0) {
      this.rows[o + F.EV_ENDED] = 1;
      this.digit(r, o);
    }
    this.enqueue(r, kind, this.rows[o + F.LAST]);
    this.tags[r] = 0;
    const last = this.live[--this.liveCount];
    this.live[this.liveAt[r]] = last;
    this.liveAt[last] = this.liveAt[r];
    const l = this.link[r];
    if (l !== 0) {
      this.link[r] = 0;
      this.unlink?.(l - 1, r);
    }
  }

  private expected(o: number): number {
    const R = this.rows;
    return R[o + F.PACKETS] === 0 ? 0 : R[o + F.EXP_BASE] + R[o + F.CYCLES] + R[o + F.MAX_SEQ] - R[o + F.BASE_SEQ] + 1;
  }

  private enqueue(r: number, kind: ReportKind, time: number): void {
    const q = this.qLen;
    if (q * ROW >= this.qRows.length) {
      this.stats.reportsDropped++;
      return;
    }
    const R = this.rows;
    this.sync(r * ROW);
    R[r * ROW + F.LAST_PT] = this.meta[r * META + M_LAST_PT];
    const Q = this.qRows;
    for (let i = 0; i < ROW; i++) Q[q * ROW + i] = R[r * ROW + i];
    const K = this.keys;
    for (let i = 0; i < KEY; i++) this.qKeys[q * KEY + i] = K[r * KEY + i];
    this.qKind[q] = kind;
    this.qTime[q] = time;
    this.qCallId[q] = this.callId[r];
    this.qCallHash[q] = this.callHash[r];
    this.qCodec[q] = this.codec[r];
    this.qMedia[q] = this.media[r];
    this.qDirection[q] = this.direction[r];
    this.qLen = q + 1;
  }
}

/** What a queued report says, derived from its row (the payload's fields). */
export class StreamReport {
  R: Float64Array = new Float64Array(0);
  o = 0;
  kind = 0;
  codec: string | null = null;

  at(R: Float64Array, o: number, kind: number, codec: string | null): this {
    this.R = R;
    this.o = o;
    this.kind = kind;
    this.codec = codec;
    return this;
  }
  get base(): number {
    return this.R[this.o + F.BASE];
  }
  get first(): number {
    return this.R[this.o + F.FIRST];
  }
  get last(): number {
    return this.R[this.o + F.LAST];
  }
  get packets(): number {
    return this.R[this.o + F.PACKETS];
  }
  get bytes(): number {
    return this.R[this.o + F.BYTES];
  }
  get expected(): number {
    const R = this.R;
    const o = this.o;
    return R[o + F.PACKETS] === 0 ? 0 : R[o + F.EXP_BASE] + R[o + F.CYCLES] + R[o + F.MAX_SEQ] - R[o + F.BASE_SEQ] + 1;
  }
  /** RFC 3550 A.3: expected minus received (negative with duplicates). */
  get lost(): number {
    return this.expected - this.R[this.o + F.PACKETS];
  }
  get intervalPackets(): number {
    return this.packets - this.R[this.o + F.PKT_PRIOR];
  }
  get intervalExpected(): number {
    return this.expected - this.R[this.o + F.EXP_PRIOR];
  }
  get intervalLost(): number {
    return this.intervalExpected - (this.R[this.o + F.PACKETS] - this.R[this.o + F.PKT_PRIOR]);
  }
  get duplicates(): number {
    return this.R[this.o + F.DUPS];
  }
  get outOfOrder(): number {
    return this.R[this.o + F.OOO];
  }
  get seqJumps(): number {
    return this.R[this.o + F.JUMPS];
  }
  get restarts(): number {
    return this.R[this.o + F.RESTARTS];
  }
  get clockRate(): number {
    return this.R[this.o + F.RATE];
  }
  /** Milliseconds. */
  get jitter(): number {
    return this.R[this.o + F.JITTER] * 1000;
  }
  get maxJitter(): number {
    return this.R[this.o + F.MAX_JITTER] * 1000;
  }
  get meanJitter(): number {
    const n = this.R[this.o + F.N_DELTA] - this.R[this.o + F.N_NO_RATE];
    return n > 0 ? (this.R[this.o + F.SUM_JITTER] / n) * 1000 : 0;
  }
  get maxDelta(): number {
    return this.R[this.o + F.MAX_DELTA] * 1000;
  }
  get meanDelta(): number {
    const n = this.R[this.o + F.N_DELTA];
    return n > 0 ? (this.R[this.o + F.SUM_DELTA] / n) * 1000 : 0;
  }
  get markers(): number {
    return this.R[this.o + F.MARKERS];
  }
  get ptChanges(): number {
    return this.R[this.o + F.PT_CHANGES];
  }
  get pt(): number {
    return this.R[this.o + F.LAST_PT];
  }
  get events(): number {
    return this.R[this.o + F.EVENTS];
  }
  get digits(): number {
    return this.R[this.o + F.NDIG];
  }
  get digitsDropped(): number {
    return this.R[this.o + F.DIG_DROPPED];
  }
  digitCode(i: number): number {
    return this.R[this.o + F.DIGITS + 3 * i];
  }
  digitStart(i: number): number {
    return this.R[this.o + F.DIGITS + 3 * i + 1];
  }
  digitDuration(i: number): number {
    return this.R[this.o + F.DIGITS + 3 * i + 2];
  }
  /** Loss in percent of expected, 0 without expected packets. */
  get lossPct(): number {
    const e = this.expected;
    const l = this.lost;
    return e > 0 && l > 0 ? (100 * l) / e : 0;
  }
  /**
   * The one-way delay the E-model is given (ms): the packet interval (the
   * sender's framing) plus a jitter buffer of twice the mean jitter. The
   * network's own delay is not seen from one capture point.
   */
  get delayEstimate(): number {
    return this.meanDelta + 2 * this.meanJitter;
  }
  get rFactor(): number {
    return rFactor(this.codec, this.lossPct, this.delayEstimate);
  }
}

/** The RFC 4733 event code's digit (0-9, *, #, A-D), or null for other events. */
export function digitOf(code: number): string | null {
  return code >= 0 && code < 16 ? '0123456789*#ABCD'[code] : null;
}
