// Media correlation through the task's flow registry (src/shm/registry.ts), shared by
// the rtp and rtcp parsers: look the packet's destination, then source,
// endpoint up; label the record with the slot's call-id, codec and media
// type. A packet between an endpoint the SDP announced and one it did not
// (a NATed peer) is labelled through the announced one, and only that
// pair: nothing is written into the registry from a packet (see
// README.md, NAT). The call labels are encoded as label entries once per slot version
// (and payload type), inline in the flow's flow-cache entry or else in a
// label cache by slot, and each packet's labels refer to them
// (Labels.addShared): no strings, no per-packet parsing or copying of the
// slot. Allocates nothing.

import type { DecodedPacket } from '../../../src/decode/packet.js';
import { symmetricFlowHash } from '../../../src/pipeline/flow-hash.js';
import { labelKeyId, type KeyTracker } from '../../../src/pipeline/label-keys.js';
import { encodeBytesEntry, type Labels } from '../../../src/pipeline/labels.js';
import { native } from '../../../src/native.js';
import { CALL_ID_MAX, CODEC_MAX, LABELS_MAX, type FlowRegistry } from '../../../src/shm/registry.js';

export class CorrelateStats {
  hits = 0;
  misses = 0;
  /** Lookups (learn_nat) that found one end of the flow announced and the other not: a NATed or unsignalled peer, labelled through the announced end. */
  natPeers = 0;
  /** The slot changed while its bytes were copied (a concurrent write): labels dropped for this packet. */
  raced = 0;
  /** Lookups of a flow left out of the flow cache: every way of its set held a flow trusted within the last second (each packet of it is looked up). */
  cacheFull = 0;
}

const MEDIA = [109, 101, 100, 105, 97]; // "media"
const PT = [112, 116]; // "pt"
/** The keys of a call's labels (label(), writeFlowLabels). */
export const CALL_LABEL_KEYS = ['call-id', 'codec', 'media'] as const;
const K_CALL_ID = labelKeyId('call-id');
const K_CODEC = labelKeyId('codec');
const K_MEDIA = labelKeyId('media');
/**
 * Slots whose call labels were last encoded: a call's media reuses them per
 * packet. Two entries (payload types) per registry slot, up to CACHE_MAX
 * (then slots share them): shared sets were asked for three entries and
 * re-encoded labels on every packet (measured: 3% of the RTP path with
 * 1000 calls at 8192 entries, half the rate with 10000 calls at 32768).
 * Pages of entries never used stay untouched (an entry is empty while
 * zero), so a large registry costs address space, not memory.
 */
const CACHE_MIN = 8192;
const CACHE_MAX = 1 << 18;
/**
 * Flows remembered with their slot (2^flowBits, FLOW_WAYS ways per set). A flow's
 * packets skip the destination and source lookups (two random reads of the
 * registry), and for TRUST_MS (never past the slot's expiry) also the read
 * of the slot's sequence number: with many calls that line is a cache miss
 * per packet, so a change to the slot (a BYE's grace, an update) reaches a
 * flow's packets up to TRUST_MS late. TRUST_MS of wall time and of capture
 * time both: replay runs faster than real time, and a change must reach
 * the packets captured 100 ms after it, not only those read 100 ms after
 * it. A new payload type is not late: its labels are encoded afresh, which
 * checks the slot. Every RECHECK_MS both lookups are made again, so a
 * source registration that expired is learned again.
 *
 * Sized by the flows this process can see: a registry entry per media
 * endpoint, split among the task's capture processes by the fanout hash, so
 * 2^FLOW_BITS_MAX entries for one process and the default registry, half
 * for two (its pages are touched as flows spread over the sets: 8 MiB with
 * 10 K calls), at least 2^FLOW_BITS_MIN.
 */
const FLOW_BITS_MAX = 16;
const FLOW_BITS_MIN = 12;
const TRUST_MS = 100;
const RECHECK_MS = 1000;
/**
 * Ways per flow-cache set. With two, 10 K calls' RTP (20 K flows, a 65536-entry
 * cache) found about 5 % of its flows' sets full, and those flows evicted
 * each other at every packet (the generic path's lookups for them: the fast
 * path took 90.8 % of the packets, measured with bench/rtp-calls); four give
 * under 1 %. A flow goes to its set's first free way, so most flows are
 * found in the first line read.
 */
const FLOW_WAYS = 4;
/** A flow-cache entry trusted within this long (ms) is not evicted for another flow (lookup()). */
const EVICT_UNUSED_MS = 1000;
// A label-cache entry, a multiple of 16 words (64 bytes; a packet reads
// about two lines' worth for a typical call-id): the slot, its sequence
// number and the payload type it was encoded for, the entries' word count,
// META (below), then the label entries: call-id, codec and media at their
// registry maximum.
const E_SLOT = 0; // slot + 1; 0 empty
const E_SEQ = 1;
const E_PT = 2;
const E_WORDS = 3;
const E_META = 4;
const E_LABELS = 8;
// META: label count | codec kind << 4 | which of codec (1) and media (2) follow call-id << 6.
const IDS_ROW = 6;
/** Key ids of the call labels by META >> IDS_ROW (rows of 3): call-id, then codec and media when present. */
const IDS = Int32Array.from([K_CALL_ID, 0, 0, K_CALL_ID, K_CODEC, 0, K_CALL_ID, K_MEDIA, 0, K_CALL_ID, K_CODEC, K_MEDIA]);
const ENTRY_WORDS = (E_LABELS + 3 * 2 + ((CALL_ID_MAX + CODEC_MAX + LABELS_MAX + 9) >> 2) + 15) & ~15;
// A flow-cache entry, FLOW_WORDS words (128 bytes, on page-aligned memory:
// a pair of lines): source, destination, ports, slot, sequence number, when
// the lookups were made, until when the entry is trusted without reading
// the slot (both in ms since the correlator started), and the capture time
// (ms, wrapping) of the packet that started the trust; then the flow's call
// labels inline, so a packet's labels come with its flow entry instead of
// from a label-cache entry elsewhere (a second cache miss per packet with
// many calls): the slot + 1 and sequence number they were encoded for, a
// pack word (payload type | words << 8 | META << 16, NO_ROOM when they do
// not fit and the label cache holds them), the rtp parser's stream-statistics
// row and the SSRC it holds (stats.ts: so a packet on the fast path finds its
// stream's row without a lookup or a check of its own), then the label entries.
const FLOW_WORDS = 32;
const F_SRC = 0;
const F_DST = 1;
const F_PORTS = 2;
const F_SLOT = 3;
const F_SEQ = 4;
const F_LOOKED = 5;
const F_TRUST = 6;
const F_CAPTURED = 7;
const F_LSLOT = 8;
const F_LSEQ = 9;
const F_LPACK = 10;
/** The rtp parser's stream-statistics row for this flow, + 1 (0 none; stats.ts). */
const F_STATS = 11;
/** The SSRC of F_STATS's stream. */
const F_STATS_SSRC = 12;
/**
 * statsRow() for a flow whose stream (of the SSRC kept) the statistics table
 * had no room for (setStatsRow with it): its packets are counted as
 * untracked on the fast path, until the flow is looked up again (a second of
 * wall time, a new payload type) and the table asked afresh.
 */
export const STATS_UNTRACKED = -2;
const F_LABELS = 13;
/** Words a flow entry has for its call labels inline. */
export const FLOW_LABEL_WORDS = FLOW_WORDS - F_LABELS;
/** F_LPACK when the labels do not fit inline. */
const NO_ROOM = 1 << 30;
const NO_FIT = -1;
const RACED = -2;
export const CODEC_NONE = 0;
export const CODEC_NAMED = 1;
export const CODEC_EVENT = 2;
const TE = [116, 101, 108, 101, 112, 104, 111, 110, 101, 45, 101, 118, 101, 110, 116]; // telephone-event

export class MediaCorrelator {
  readonly stats = new CorrelateStats();
  /** Slot of the last successful lookup, -1 none, and the slot's sequence number it saw. */
  slot = -1;
  private seq = 0;
  /** The flow-cache entry of the last lookup, -1 none. */
  private fe = -1;
  /** The packet of the last lookup (label() looks it up again after a race). */
  private pkt: DecodedPacket | null = null;
  private tick = 0;
  /** Capture time (ms, wrapping) at the last clock refresh. */
  private clockCaptureMs = 0;
  /**
   * Label cache (labels too long for a flow entry, IPv6): entries of
   * ENTRY_WORDS, 2 ways per set (by slot); setMask picks a set's first
   * entry. A JS buffer this large starts 16 bytes past a page boundary, so
   * entries straddle lines; page-aligned memory for it measured no gain.
   */
  private readonly cache: Int32Array;
  private readonly cache8: Uint8Array;
  private readonly setMask: number;
  /** Per set (even index): the way the next miss replaces. */
  private readonly cNext: Uint8Array;
  /** Flow cache (IPv4): 2^flowBits entries of FLOW_WORDS, FLOW_WAYS ways per set (by a hash of the four-tuple: flowSet). */
  private readonly fc: Int32Array;
  private readonly fc8: Uint8Array;
  readonly flowBits: number;
  private readonly flowShift: number;
  /** encodeLabels' META. */
  private meta = 0;
  /** Time base of F_LOOKED and F_TRUST (ms; differences are taken wrapping, as int32). */
  private readonly t0: number;

  constructor(
    readonly flows: FlowRegistry | null,
    /** Look both ends up and count unannounced peers (natPeers); the labels are the same either way. */
    private readonly learnNat: boolean,
    /** The task's capture processes, among which the flows are split. */
    processes = 1,
  ) {
    const share = (flows?.capacity ?? 0) / Math.max(1, processes);
    this.flowBits = Math.min(FLOW_BITS_MAX, Math.max(FLOW_BITS_MIN, Math.ceil(Math.log2(Math.max(1, share)))));
    this.flowShift = 32 - this.flowBits;
    this.fc = new Int32Array(native.pageBuffer(4 * FLOW_WORDS << this.flowBits));
    this.fc8 = new Uint8Array(this.fc.buffer);
    const entries = Math.min(CACHE_MAX, Math.max(CACHE_MIN, 2 * (flows?.capacity ?? 0)));
    this.setMask = entries - 2;
    this.cNext = new Uint8Array(entries);
    const C = new Int32Array(entries * ENTRY_WORDS);
    this.cache = C;
    this.cache8 = new Uint8Array(C.buffer);
    // Before the registry's clock, so an empty entry (trusted until 0) is never trusted.
    this.t0 = Math.min(Date.now(), flows?.now ?? Infinity) - 1;
  }

  /** Finds the packet's media entry (destination endpoint, then source): slot or -1. */
  lookup(p: DecodedPacket): number {
    const f = this.flows;
    if (f === null) return (this.slot = -1);
    this.pkt = p;
    const captureMs = (Math.imul(p.tsSec, 1000) + ((p.tsNsec / 1e6) | 0)) | 0;
    this.refreshClock(f, captureMs);
    // An IPv4 flow seen in the last second: its slot, if unchanged, without the two lookups.
    let h = -1;
    this.fe = -1;
    const nowRel = (f.now - this.t0) | 0;
    if (p.ipVersion === 4) {
      const ports = (p.sport << 16) | p.dport;
      // FLOW_WAYS ways per set: flows whose hashes collide do not evict each other.
      h = flowSet(p.src4, p.dst4, ports, this.flowShift);
      const fc = this.fc;
      for (let e = h; e < h + FLOW_WAYS; e++) {
        const k = e * FLOW_WORDS;
        if (fc[k + F_SRC] !== p.src4 || fc[k + F_DST] !== p.dst4 || fc[k + F_PORTS] !== ports) continue;
        const slot = fc[k + F_SLOT];
        const seq = fc[k + F_SEQ];
        this.fe = e;
        if (!this.stillTrusted(k, f, nowRel, captureMs)) break;
        this.stats.hits++;
        this.seq = seq;
        return (this.slot = slot);
      }
    }
    let s = this.find(f, p);
    // The SDP may sit in an earlier frame another capture process has not handed over yet.
    if (s < 0 && p.ipVersion !== 0 && f.catchesUp && f.catchUp(p.tsSec, p.tsNsec, symmetricFlowHash(p))) s = this.find(f, p);
    if (s >= 0) {
      this.stats.hits++;
      this.seq = f.lastSeq;
      if (h >= 0) {
        // Into this flow's way if it has one, else a free way, else the way trusted longest ago, if not within the last
        // second: evicting a live flow (more flows than ways) made the set's flows evict each other at every packet.
        const fc = this.fc;
        const ports = (p.sport << 16) | p.dport;
        let e = -1;
        let free = -1;
        let victim = h;
        for (let x = h; x < h + FLOW_WAYS; x++) {
          const kx = x * FLOW_WORDS;
          if (fc[kx + F_SRC] === p.src4 && fc[kx + F_DST] === p.dst4 && fc[kx + F_PORTS] === ports) {
            e = x;
            break;
          }
          if (fc[kx + F_SRC] === 0 && fc[kx + F_DST] === 0) {
            if (free < 0) free = x;
          } else if (((fc[kx + F_TRUST] - fc[victim * FLOW_WORDS + F_TRUST]) | 0) < 0) victim = x;
        }
        const mine = e >= 0;
        if (!mine && free >= 0) e = free;
        else if (!mine) {
          if (((nowRel - fc[victim * FLOW_WORDS + F_TRUST]) | 0) < EVICT_UNUSED_MS) {
            this.stats.cacheFull++;
            return (this.slot = s);
          }
          e = victim;
        }
        const k = e * FLOW_WORDS;
        // Another flow's way: its stream-statistics row is not this flow's.
        if (!mine) fc[k + F_STATS] = 0;
        fc[k + F_SRC] = p.src4;
        fc[k + F_DST] = p.dst4;
        fc[k + F_PORTS] = ports;
        fc[k + F_SLOT] = s;
        fc[k + F_SEQ] = f.lastSeq;
        fc[k + F_LOOKED] = nowRel;
        this.fe = e;
        this.trust(k, f, captureMs);
      }
    } else this.stats.misses++;
    return (this.slot = s);
  }

  /**
   * The fast path (RtpParser.fastFrame): the flow-cache entry (its first
   * word) of an IPv4 flow looked up before, trusted now or found unchanged
   * (as lookup() does), with its call labels inline for payload type `pt`
   * and a codec other than telephone-event; else -1, and the packet goes
   * the generic way (lookup and label).
   */
  trustedFlow(src4: number, dst4: number, sport: number, dport: number, tsSec: number, tsNsec: number, pt: number): number {
    const f = this.flows;
    if (f === null) return -1;
    const captureMs = (Math.imul(tsSec, 1000) + ((tsNsec / 1e6) | 0)) | 0;
    this.refreshClock(f, captureMs);
    const ports = (sport << 16) | dport;
    const h = flowSet(src4, dst4, ports, this.flowShift);
    const fc = this.fc;
    for (let e = h; e < h + FLOW_WAYS; e++) {
      const k = e * FLOW_WORDS;
      if (fc[k + F_SRC] !== src4 || fc[k + F_DST] !== dst4 || fc[k + F_PORTS] !== ports) continue;
      const slot = fc[k + F_SLOT];
      const seq = fc[k + F_SEQ];
      const pack = fc[k + F_LPACK];
      if (fc[k + F_LSLOT] !== slot + 1 || fc[k + F_LSEQ] !== seq || pack === NO_ROOM || (pack & 255) !== pt || ((pack >>> 20) & 3) === CODEC_EVENT) return -1;
      if (!this.stillTrusted(k, f, (f.now - this.t0) | 0, captureMs)) return -1;
      this.stats.hits++;
      return k;
    }
    return -1;
  }

  /** The flow-cache entry (its first word) of the last lookup, -1 none. */
  get entry(): number {
    return this.fe < 0 ? -1 : this.fe * FLOW_WORDS;
  }

  /** The stream-statistics row flow entry k (entry, trustedFlow) links for SSRC ssrc, -1 none (not linked, or another SSRC's), or STATS_UNTRACKED. */
  statsRow(k: number, ssrc: number): number {
    const fc = this.fc;
    return fc[k + F_STATS_SSRC] === ssrc ? fc[k + F_STATS] - 1 : -1;
  }

  /** Links flow entry k to the statistics row of its stream of SSRC ssrc (the table unlinks it when that stream ends: clearStatsRow). */
  setStatsRow(k: number, row: number, ssrc: number): void {
    this.fc[k + F_STATS] = row + 1;
    this.fc[k + F_STATS_SSRC] = ssrc;
  }

  /** Row `row`'s stream ended: flow entry k no longer leads to it (if k still does: it may have moved on to another row or flow). */
  clearStatsRow(k: number, row: number): void {
    if (this.fc[k + F_STATS] === row + 1) this.fc[k + F_STATS] = 0;
  }

  /** How many call labels flow entry k (trustedFlow) holds. */
  flowLabelCount(k: number): number {
    return (this.fc[k + F_LPACK] >>> 16) & 15;
  }

  /** Copies flow entry k's call labels (trustedFlow) to W from word j, noting their keys; returns the word after them. */
  writeFlowLabels(k: number, W: Int32Array, j: number, keys: KeyTracker): number {
    const fc = this.fc;
    const pack = fc[k + F_LPACK];
    const words = (pack >> 8) & 255;
    const w = k + F_LABELS;
    for (let i = 0; i < words; i++) W[j + i] = fc[w + i];
    const meta = pack >>> 16;
    const row = 3 * (meta >> IDS_ROW);
    for (let i = 0; i < (meta & 15); i++) keys.use(IDS[row + i]);
    return j + words;
  }

  /**
   * The registry's clock (expiry checks): refreshed every 256 lookups, and
   * when 100 ms of capture time have passed (a quiet link: 256 lookups can
   * take minutes). measured: Date.now() ~25 ns.
   */
  private refreshClock(f: FlowRegistry, captureMs: number): void {
    if ((++this.tick & 255) === 0 || (captureMs - this.clockCaptureMs) >>> 0 >= 100) {
      f.setNow(Date.now());
      this.clockCaptureMs = captureMs;
    }
  }

  /**
   * Is flow entry k trusted now, or, its trust run out, is its slot as the
   * lookups saw it (then trusted again)? False when it is to be looked up
   * again (changed, or RECHECK_MS since the lookups).
   */
  private stillTrusted(k: number, f: FlowRegistry, nowRel: number, captureMs: number): boolean {
    const fc = this.fc;
    if (((fc[k + F_TRUST] - nowRel) | 0) > 0 && (captureMs - fc[k + F_CAPTURED]) >>> 0 < TRUST_MS) return true;
    if (((nowRel - fc[k + F_LOOKED]) | 0) >= RECHECK_MS || !f.isCurrent(fc[k + F_SLOT], fc[k + F_SEQ])) return false;
    this.trust(k, f, captureMs);
    return true;
  }

  /** Trusts the flow-cache entry at word k for TRUST_MS from now and from capture time `captureMs`, within the slot's expiry (f.lastExpiry). */
  private trust(k: number, f: FlowRegistry, captureMs: number): void {
    this.fc[k + F_TRUST] = (Math.min(f.now + TRUST_MS, f.lastExpiry) - this.t0) | 0;
    this.fc[k + F_CAPTURED] = captureMs;
  }

  /**
   * The destination endpoint's slot, else the source's, else -1. A flow
   * is labelled only through an endpoint the SDP announced: an earlier
   * version registered an unannounced source (a NATed peer X) under the
   * call for nat_ttl, so X's packets to endpoints nobody signalled carried
   * the call-id for an hour, and one spoofed packet was enough. Bound to
   * the pair it was learned on (X and the announced endpoint E) and ending
   * with the call, such an entry could only label packets between X and
   * E, which E's own entry labels already, until the same BYE grace: so
   * nothing is learned, and a packet never writes into the registry.
   */
  private find(f: FlowRegistry, p: DecodedPacket): number {
    let s: number;
    if (p.ipVersion === 4) {
      if (this.learnNat) {
        const src = f.lookupEndpoint4(p.src4, p.sport);
        const dst = f.lookupEndpoint4(p.dst4, p.dport);
        // A miss leaves lastSeq and lastExpiry at src's hit.
        s = dst >= 0 ? dst : src;
        if (dst >= 0 !== src >= 0) this.stats.natPeers++;
      } else {
        s = f.lookupEndpoint4(p.dst4, p.dport);
        if (s < 0) s = f.lookupEndpoint4(p.src4, p.sport);
      }
    } else if (p.ipVersion === 6) {
      if (this.learnNat) {
        const src = f.lookupEndpoint6(p.addrBuf, p.srcOff, p.sport);
        const dst = f.lookupEndpoint6(p.addrBuf, p.dstOff, p.dport);
        s = dst >= 0 ? dst : src;
        if (dst >= 0 !== src >= 0) this.stats.natPeers++;
      } else {
        s = f.lookupEndpoint6(p.addrBuf, p.dstOff, p.dport);
        if (s < 0) s = f.lookupEndpoint6(p.addrBuf, p.srcOff, p.sport);
      }
    } else s = -1;
    return s;
  }

  /**
   * Writes `call-id`, `codec` (the one of payload type `pt` from the slot's
   * map when it has one, else the slot's codec; pt -1: the slot's) and
   * `media` labels from `slot`. Returns CODEC_NONE, CODEC_NAMED or
   * CODEC_EVENT (the codec is telephone-event, RFC 4733), or -1 when the
   * slot kept changing and the packet got no call labels (counted).
   */
  label(L: Labels, slot: number, pt: number): number {
    let r = this.fe >= 0 ? this.labelInline(L, slot, pt) : this.labelOnce(L, slot, pt);
    // The slot was rewritten since the lookup saw it (its call's BYE shortening
    // it on another process, say): look the packet up again rather than lose
    // its labels, and so will the flow's next packet.
    if (r === RACED && this.fe >= 0) this.fc[this.fe * FLOW_WORDS + F_TRUST] = (this.flows!.now - this.t0) | 0;
    for (let tries = 0; r === RACED && tries < 8; tries++) {
      const f = this.flows!;
      const s = this.find(f, this.pkt!);
      this.seq = f.lastSeq;
      r = s >= 0 ? this.labelOnce(L, (this.slot = s), pt) : RACED;
    }
    if (r !== RACED) return r;
    this.stats.raced++;
    return -1;
  }

  /** The flow's labels inline in its flow-cache entry (valid for its slot, sequence number and payload type), else encoded there afresh; the label cache when they do not fit. */
  private labelInline(L: Labels, slot: number, pt: number): number {
    const fc = this.fc;
    const k = this.fe * FLOW_WORDS;
    let pack = fc[k + F_LPACK];
    if (fc[k + F_LSLOT] !== slot + 1 || fc[k + F_LSEQ] !== this.seq || ((pack & 255) !== (pt & 255) && pack !== NO_ROOM)) {
      const w = this.encodeLabels(this.flows!, slot, this.seq, pt, fc, this.fc8, k + F_LABELS, k + FLOW_WORDS);
      if (w === RACED) {
        fc[k + F_LSLOT] = 0;
        return RACED;
      }
      pack = w === NO_FIT ? NO_ROOM : (pt & 255) | ((w - k - F_LABELS) << 8) | (this.meta << 16);
      fc[k + F_LSLOT] = slot + 1;
      fc[k + F_LSEQ] = this.seq;
      fc[k + F_LPACK] = pack;
    }
    if (pack === NO_ROOM) return this.labelOnce(L, slot, pt);
    return addCallLabels(L, fc, k + F_LABELS, (pack >> 8) & 255, pack >>> 16);
  }

  /**
   * The slot's labels from the cache (valid while the slot's seqlock
   * sequence, which the lookup saw, and the payload type are unchanged),
   * else encoded afresh from the slot's bytes; RACED when the slot changed
   * since the lookup.
   */
  private labelOnce(L: Labels, slot: number, pt: number): number {
    const C = this.cache;
    const seq = this.seq;
    // Two ways per set, a set per slot (while they last); a miss replaces them in turn.
    const set = (slot << 1) & this.setMask;
    let e = set * ENTRY_WORDS;
    if (C[e + E_SLOT] !== slot + 1 || C[e + E_SEQ] !== seq || C[e + E_PT] !== pt) {
      e += ENTRY_WORDS;
      if (C[e + E_SLOT] !== slot + 1 || C[e + E_SEQ] !== seq || C[e + E_PT] !== pt) {
        e = (set + this.cNext[set]) * ENTRY_WORDS;
        this.cNext[set] ^= 1;
        C[e + E_SLOT] = 0;
        const w = this.encodeLabels(this.flows!, slot, seq, pt, C, this.cache8, e + E_LABELS, e + ENTRY_WORDS);
        if (w < 0) return RACED; // an entry holds the registry's maxima: only a race fails it
        C[e + E_SLOT] = slot + 1;
        C[e + E_SEQ] = seq;
        C[e + E_PT] = pt;
        C[e + E_WORDS] = w - e - E_LABELS;
        C[e + E_META] = this.meta;
      }
    }
    return addCallLabels(L, C, e + E_LABELS, C[e + E_WORDS], C[e + E_META]);
  }

  /**
   * Encodes the slot's call labels as label entries into C from word w0
   * (before word end; c8 is C's bytes): returns the word after them and
   * sets this.meta, or NO_FIT when they do not fit, or RACED when the
   * slot is no longer at `seq` (what was read may be torn).
   */
  private encodeLabels(f: FlowRegistry, slot: number, seq: number, pt: number, C: Int32Array, c8: Uint8Array, w0: number, end: number): number {
    const u8 = f.u8;
    let co = f.codecOffset(slot);
    let cl = f.codecLength(slot);
    let mo = -1;
    let ml = 0;
    // Packed labels: klen key vlen value ...
    const lo = f.labelsOffset(slot);
    const le = lo + f.labelsLength(slot);
    for (let p = lo; p < le; ) {
      const kl = u8[p];
      const vo = p + 2 + kl;
      const vl = u8[p + 1 + kl];
      if (kl === 5 && eq(u8, p + 1, MEDIA)) {
        mo = vo;
        ml = vl;
      } else if (kl === 2 && eq(u8, p + 1, PT) && pt >= 0) {
        const r = findPt(u8, vo, vl, pt);
        if (r >= 0) {
          co = r;
          cl = foundLen;
        }
      }
      p = vo + vl;
    }
    let w = encodeBytesEntry(C, c8, w0, end, K_CALL_ID, u8, f.callIdOffset(slot), f.callIdLength(slot));
    let n = 1;
    let row = 0;
    if (cl > 0 && w >= 0) {
      w = encodeBytesEntry(C, c8, w, end, K_CODEC, u8, co, cl);
      n++;
      row |= 1;
    }
    if (mo >= 0 && w >= 0) {
      w = encodeBytesEntry(C, c8, w, end, K_MEDIA, u8, mo, ml);
      n++;
      row |= 2;
    }
    let codec = cl === 0 ? CODEC_NONE : CODEC_NAMED;
    if (cl === TE.length) {
      let te = true;
      for (let i = 0; i < cl && te; i++) te = (u8[co + i] | 32) === TE[i];
      if (te) codec = CODEC_EVENT;
    }
    // Read under the lookup's sequence number: if it moved, what we read may be torn.
    if (!f.unchanged(slot, seq)) return RACED;
    if (w < 0) return NO_FIT;
    this.meta = n | (codec << 4) | (row << IDS_ROW);
    return w;
  }
}

/** A flow's set in the flow cache (its first way), by a hash of the four-tuple; shift: 32 - the cache's bits. */
function flowSet(src4: number, dst4: number, ports: number, shift: number): number {
  return (Math.imul(src4 ^ Math.imul(dst4 ^ ports, 0x9e3779b1), 0x85ebca6b) >>> shift) & -FLOW_WAYS;
}

/** Adds the call labels at E[w, w+words) described by `meta` to L; returns their codec kind. */
function addCallLabels(L: Labels, E: Int32Array, w: number, words: number, meta: number): number {
  L.addShared(E, w, words, IDS, 3 * (meta >> IDS_ROW), meta & 15);
  return (meta >> 4) & 3;
}

function eq(u8: Uint8Array, o: number, k: number[]): boolean {
  for (let i = 0; i < k.length; i++) if (u8[o + i] !== k[i]) return false;
  return true;
}

let foundLen = 0;

/**
 * In "8 PCMA 101 telephone-event 0": the offset of the name after payload
 * type `pt` (its length in foundLen), or -1 (absent or listed without a name).
 */
function findPt(u8: Uint8Array, o: number, len: number, pt: number): number {
  const end = o + len;
  let p = o;
  while (p < end) {
    // a number
    let v = 0;
    let digits = 0;
    while (p < end && u8[p] >= 48 && u8[p] <= 57) {
      v = v * 10 + u8[p] - 48;
      p++;
      digits++;
    }
    if (digits === 0) {
      while (p < end && u8[p] !== 32) p++;
      p++;
      continue;
    }
    while (p < end && u8[p] === 32) p++;
    // an optional name (not starting with a digit)
    const no = p;
    while (p < end && u8[p] !== 32) p++;
    let nl = p - no;
    if (nl > 0 && u8[no] >= 48 && u8[no] <= 57) {
      p = no; // next number follows directly
      nl = 0;
    } else while (p < end && u8[p] === 32) p++;
    if (v === pt) {
      foundLen = nl;
      return nl > 0 ? no : -1;
    }
  }
  return -1;
}
