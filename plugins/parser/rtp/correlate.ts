// Media correlation through the task's flow registry (ADR-008), shared by
// the rtp and rtcp parsers: look the packet's destination, then source,
// endpoint up; copy call-id, codec and media type from the slot's bytes
// into the record's labels (Labels.setBytesId: no strings; the slot's packed
// labels parsed once per slot version, not per packet); optionally learn
// an unannounced (NATed) source endpoint of a known call. Allocates nothing
// unless it learns (once per endpoint).

import type { DecodedPacket } from '../../../src/decode/packet.js';
import { labelKeyId } from '../../../src/pipeline/label-keys.js';
import type { Labels } from '../../../src/pipeline/labels.js';
import { FlowKey, type FlowRegistry } from '../../../src/shm/registry.js';

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
/** Slots whose packed labels were last parsed (direct-mapped by slot): a call's media reuses them per packet. */
const CACHE = 4096;
const RACED = -2;

export class MediaCorrelator {
  readonly stats = new CorrelateStats();
  /** Slot of the last successful lookup, -1 none. */
  slot = -1;
  /** The packet of the last lookup (label() looks it up again after a race). */
  private pkt: DecodedPacket | null = null;
  private tick = 0;
  private readonly key = new FlowKey();
  // Parsed packed labels per slot: valid while the slot's seqlock sequence and the payload type are unchanged.
  private readonly cSlot = new Int32Array(CACHE).fill(-1);
  private readonly cSeq = new Int32Array(CACHE);
  private readonly cPt = new Int32Array(CACHE);
  private readonly cCodecOff = new Int32Array(CACHE);
  private readonly cCodecLen = new Int32Array(CACHE);
  private readonly cMediaOff = new Int32Array(CACHE);
  private readonly cMediaLen = new Int32Array(CACHE);

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
    let s = this.find(f, p);
    // Replay: the SDP may sit in an earlier frame another process has not read yet.
    if (s < 0 && p.ipVersion !== 0 && f.catchUp()) s = this.find(f, p);
    if (s >= 0) this.stats.hits++;
    else this.stats.misses++;
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
   * `media` labels from `slot`. Returns the codec's offset in flows.u8 and
   * sets codecLen, so callers can test it (telephone-event) without a string.
   */
  label(L: Labels, slot: number, pt: number): number {
    let co = this.labelOnce(L, slot, pt);
    // The slot was rewritten while we copied (its call's BYE shortening it on
    // another process, say): look the packet up again rather than lose its labels.
    for (let tries = 0; co === RACED && tries < 8; tries++) {
      const s = this.find(this.flows!, this.pkt!);
      co = s >= 0 ? this.labelOnce(L, (this.slot = s), pt) : RACED;
    }
    if (co !== RACED) return co;
    this.stats.raced++;
    this.codecLen = 0;
    return -1;
  }

  /** One copy of the slot's labels, or RACED (labels removed) when the slot changed meanwhile. */
  private labelOnce(L: Labels, slot: number, pt: number): number {
    const f = this.flows!;
    const u8 = f.u8;
    const c = slot & (CACHE - 1);
    let co: number;
    let cl: number;
    let mo: number;
    let ml: number;
    if (this.cSlot[c] === slot && this.cSeq[c] === f.lastSeq && this.cPt[c] === pt) {
      co = this.cCodecOff[c];
      cl = this.cCodecLen[c];
      mo = this.cMediaOff[c];
      ml = this.cMediaLen[c];
    } else {
      co = f.codecOffset(slot);
      cl = f.codecLength(slot);
      mo = -1;
      ml = 0;
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
      this.cSlot[c] = slot;
      this.cSeq[c] = f.lastSeq;
      this.cPt[c] = pt;
      this.cCodecOff[c] = co;
      this.cCodecLen[c] = cl;
      this.cMediaOff[c] = mo;
      this.cMediaLen[c] = ml;
    }
    L.setBytesId(K_CALL_ID, u8, f.callIdOffset(slot), f.callIdLength(slot));
    if (cl > 0) L.setBytesId(K_CODEC, u8, co, cl);
    if (mo >= 0) L.setBytesId(K_MEDIA, u8, mo, ml);
    if (!f.stillValid(slot)) {
      // Rewritten under us (its cache entry is stale by its sequence number already).
      L.delete('call-id');
      L.delete('codec');
      L.delete('media');
      return RACED;
    }
    this.codecLen = cl;
    return co;
  }

  codecLen = 0;
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
