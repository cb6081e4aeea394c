// Media correlation through the task's flow registry (ADR-008), shared by
// the rtp and rtcp parsers: look the packet's destination, then source,
// endpoint up; label the record with the slot's call-id, codec and media
// type; optionally learn an unannounced (NATed) source endpoint of a known
// call. The call labels are encoded as label entries once per slot version
// (and payload type) into a local cache, which each packet's labels refer
// to (Labels.addShared): no strings, no per-packet parsing or copying of the
// slot. Allocates
// nothing unless it learns (once per endpoint).

import type { DecodedPacket } from '../../../src/decode/packet.js';
import { labelKeyId } from '../../../src/pipeline/label-keys.js';
import { encodeBytesEntry, type Labels } from '../../../src/pipeline/labels.js';
import { CALL_ID_MAX, CODEC_MAX, FlowKey, LABELS_MAX, type FlowRegistry } from '../../../src/shm/registry.js';

export class CorrelateStats {
  hits = 0;
  misses = 0;
  natLearned = 0;
  /** The slot changed while its bytes were copied (a concurrent write): labels dropped for this packet. */
  raced = 0;
}

const MEDIA = [109, 101, 100, 105, 97]; // "media"
const PT = [112, 116]; // "pt"
const K_CALL_ID = labelKeyId('call-id');
const K_CODEC = labelKeyId('codec');
const K_MEDIA = labelKeyId('media');
/** Slots whose call labels were last encoded (2-way by slot): a call's media reuses them per packet. */
const CACHE = 8192;
/**
 * Flows remembered with their slot (2^FLOW_BITS, 2 ways per set). A flow's
 * packets skip the destination and source lookups (two random reads of the
 * registry) while its slot is unchanged, for up to RECHECK_MS: then both
 * are looked up again, so a source registration that expired is learned
 * again.
 */
const FLOW_BITS = 14;
const RECHECK_MS = 1000;
/** Room per cached slot: call-id, codec and media at their registry maximum, as label entries. */
const BLOCK_WORDS = 3 * 2 + ((CALL_ID_MAX + CODEC_MAX + LABELS_MAX + 9) >> 2);
const RACED = -2;
export const CODEC_NONE = 0;
export const CODEC_NAMED = 1;
export const CODEC_EVENT = 2;
const TE = [116, 101, 108, 101, 112, 104, 111, 110, 101, 45, 101, 118, 101, 110, 116]; // telephone-event

export class MediaCorrelator {
  readonly stats = new CorrelateStats();
  /** Slot of the last successful lookup, -1 none. */
  slot = -1;
  /** The packet of the last lookup (label() looks it up again after a race). */
  private pkt: DecodedPacket | null = null;
  private tick = 0;
  private readonly key = new FlowKey();
  // Per cached slot: the sequence number and payload type it was encoded for, its label entries, and its codec kind.
  private readonly cSlot = new Int32Array(CACHE).fill(-1);
  private readonly cSeq = new Int32Array(CACHE);
  private readonly cPt = new Int32Array(CACHE);
  private readonly cWords = new Int32Array(CACHE);
  private readonly cCount = new Int32Array(CACHE);
  private readonly cCodec = new Int32Array(CACHE);
  private readonly block = new Int32Array(CACHE * BLOCK_WORDS);
  private readonly block8 = new Uint8Array(this.block.buffer);
  private readonly cIds = new Int32Array(CACHE * 3);
  /** Per set (even index): the way the next miss replaces. */
  private readonly cNext = new Uint8Array(CACHE);
  // Flow cache (IPv4), by a hash of the four-tuple: src, dst, ports, slot; the slot's sequence number; when the lookups were made.
  private readonly fKey = new Int32Array(4 << FLOW_BITS);
  private readonly fSeq = new Int32Array(1 << FLOW_BITS);
  private readonly fAt = new Float64Array(1 << FLOW_BITS).fill(-Infinity);

  constructor(
    readonly flows: FlowRegistry | null,
    private readonly learnNat: boolean,
    private readonly natTtlMs: number,
  ) {}

  /** Finds the packet's media entry (destination endpoint, then source): slot or -1. */
  lookup(p: DecodedPacket): number {
    const f = this.flows;
    if (f === null) return (this.slot = -1);
    this.pkt = p;
    // The registry's clock (expiry checks): refreshed every 256 lookups. measured: Date.now() ~25 ns.
    if ((++this.tick & 255) === 0) f.setNow(Date.now());
    // An IPv4 flow seen in the last second: its slot, if unchanged, without the two lookups.
    let h = -1;
    if (p.ipVersion === 4) {
      const ports = (p.sport << 16) | p.dport;
      // Two ways per set: flows whose hashes collide do not evict each other.
      h = (Math.imul(p.src4 ^ Math.imul(p.dst4 ^ ports, 0x9e3779b1), 0x85ebca6b) >>> (32 - FLOW_BITS)) & ~1;
      const fk = this.fKey;
      for (let e = h; e < h + 2; e++) {
        const k = e * 4;
        if (fk[k] === p.src4 && fk[k + 1] === p.dst4 && fk[k + 2] === ports && f.now - this.fAt[e] < RECHECK_MS && f.isCurrent(fk[k + 3], this.fSeq[e])) {
          this.stats.hits++;
          return (this.slot = fk[k + 3]);
        }
      }
    }
    let s = this.find(f, p);
    // Replay: the SDP may sit in an earlier frame another process has not read yet.
    if (s < 0 && p.ipVersion !== 0 && f.catchUp()) s = this.find(f, p);
    if (s >= 0) {
      this.stats.hits++;
      if (h >= 0) {
        // Into this flow's way if it has one, else the way looked up longer ago.
        const fk = this.fKey;
        const ports = (p.sport << 16) | p.dport;
        const mine = fk[4 * h] === p.src4 && fk[4 * h + 1] === p.dst4 && fk[4 * h + 2] === ports;
        const e = mine || (!(fk[4 * h + 4] === p.src4 && fk[4 * h + 5] === p.dst4 && fk[4 * h + 6] === ports) && this.fAt[h] <= this.fAt[h + 1]) ? h : h + 1;
        const k = e * 4;
        fk[k] = p.src4;
        fk[k + 1] = p.dst4;
        fk[k + 2] = ports;
        fk[k + 3] = s;
        this.fSeq[e] = f.lastSeq;
        this.fAt[e] = f.now;
      }
    } else this.stats.misses++;
    return (this.slot = s);
  }

  private find(f: FlowRegistry, p: DecodedPacket): number {
    let s: number;
    if (p.ipVersion === 4) {
      if (this.learnNat) {
        const src = f.lookupEndpoint4(p.src4, p.sport);
        s = f.lookupEndpoint4(p.dst4, p.dport);
        if (s >= 0 && src < 0) this.learn(p, s);
        else if (s < 0) s = src; // a miss leaves lastSeq at src's hit
      } else {
        s = f.lookupEndpoint4(p.dst4, p.dport);
        if (s < 0) s = f.lookupEndpoint4(p.src4, p.sport);
      }
    } else if (p.ipVersion === 6) {
      if (this.learnNat) {
        const src = f.lookupEndpoint6(p.addrBuf, p.srcOff, p.sport);
        s = f.lookupEndpoint6(p.addrBuf, p.dstOff, p.dport);
        if (s >= 0 && src < 0) this.learn(p, s);
        else if (s < 0) s = src;
      } else {
        s = f.lookupEndpoint6(p.addrBuf, p.dstOff, p.dport);
        if (s < 0) s = f.lookupEndpoint6(p.addrBuf, p.srcOff, p.sport);
      }
    } else s = -1;
    return s;
  }

  /** A known call's packet from an endpoint nobody announced: register it with the call's context. */
  private learn(p: DecodedPacket, slot: number): void {
    const f = this.flows!;
    const ctx = f.context(slot);
    if (ctx === null) return;
    const v4 = p.ipVersion === 4;
    if (v4) this.key.endpoint4(p.src4, p.sport);
    else this.key.endpoint6(p.addrBuf, p.srcOff, p.sport);
    if (f.register(this.key, ctx, this.natTtlMs) >= 0) this.stats.natLearned++;
    // register moved lastSeq on; look the destination up again so stillValid() holds for it.
    if (v4) f.lookupEndpoint4(p.dst4, p.dport);
    else f.lookupEndpoint6(p.addrBuf, p.dstOff, p.dport);
  }

  /**
   * Writes `call-id`, `codec` (the one of payload type `pt` from the slot's
   * map when it has one, else the slot's codec; pt -1: the slot's) and
   * `media` labels from `slot`. Returns CODEC_NONE, CODEC_NAMED or
   * CODEC_EVENT (the codec is telephone-event, RFC 4733), or -1 when the
   * slot kept changing and the packet got no call labels (counted).
   */
  label(L: Labels, slot: number, pt: number): number {
    let r = this.labelOnce(L, slot, pt);
    // The slot was rewritten while we read it (its call's BYE shortening it on
    // another process, say): look the packet up again rather than lose its labels.
    for (let tries = 0; r === RACED && tries < 8; tries++) {
      const s = this.find(this.flows!, this.pkt!);
      r = s >= 0 ? this.labelOnce(L, (this.slot = s), pt) : RACED;
    }
    if (r !== RACED) return r;
    this.stats.raced++;
    return -1;
  }

  /**
   * The slot's labels from the cache (valid while the slot's seqlock
   * sequence, which the lookup just read, and the payload type are
   * unchanged), else encoded afresh from the slot's bytes; RACED when the
   * slot changed meanwhile.
   */
  private labelOnce(L: Labels, slot: number, pt: number): number {
    const f = this.flows!;
    // Two ways per set; a miss replaces them in turn.
    let c = slot & (CACHE - 2);
    if (this.cSlot[c] !== slot || this.cSeq[c] !== f.lastSeq || this.cPt[c] !== pt) {
      c++;
      if (this.cSlot[c] !== slot || this.cSeq[c] !== f.lastSeq || this.cPt[c] !== pt) {
        c = (slot & (CACHE - 2)) + this.cNext[slot & (CACHE - 2)];
        this.cNext[slot & (CACHE - 2)] ^= 1;
        if (!this.encode(f, slot, c, pt)) return RACED;
      }
    }
    L.addShared(this.block, c * BLOCK_WORDS, this.cWords[c], this.cIds, c * 3, this.cCount[c]);
    return this.cCodec[c];
  }

  /** Encodes the slot's call labels into cache entry c; false when the slot changed under us. */
  private encode(f: FlowRegistry, slot: number, c: number, pt: number): boolean {
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
    const B = this.block;
    const b8 = this.block8;
    const w0 = c * BLOCK_WORDS;
    const end = w0 + BLOCK_WORDS;
    const ids = this.cIds;
    let w = encodeBytesEntry(B, b8, w0, end, K_CALL_ID, u8, f.callIdOffset(slot), f.callIdLength(slot));
    ids[c * 3] = K_CALL_ID;
    let n = 1;
    if (cl > 0 && w >= 0) {
      w = encodeBytesEntry(B, b8, w, end, K_CODEC, u8, co, cl);
      ids[c * 3 + n++] = K_CODEC;
    }
    if (mo >= 0 && w >= 0) {
      w = encodeBytesEntry(B, b8, w, end, K_MEDIA, u8, mo, ml);
      ids[c * 3 + n++] = K_MEDIA;
    }
    let codec = cl === 0 ? CODEC_NONE : CODEC_NAMED;
    if (cl === TE.length) {
      let te = true;
      for (let i = 0; i < cl && te; i++) te = (u8[co + i] | 32) === TE[i];
      if (te) codec = CODEC_EVENT;
    }
    // Read under the lookup's sequence number: if it moved, what we read may be torn.
    if (!f.stillValid(slot) || w < 0) {
      this.cSlot[c] = -1;
      return false;
    }
    this.cSlot[c] = slot;
    this.cSeq[c] = f.lastSeq;
    this.cPt[c] = pt;
    this.cWords[c] = w - w0;
    this.cCount[c] = n;
    this.cCodec[c] = codec;
    return true;
  }
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
