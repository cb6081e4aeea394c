// pcapng reader (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html).
// Walks blocks in place over the file's bytes; next() overwrites the one Frame
// and allocates nothing (objects are made per Interface Description Block,
// never per packet). A malformed or truncated tail ends the read with
// `endReason`; next() never throws.

import { Frame } from './frame.js';
import { MAX_CAPLEN } from './pcap.js';

const SHB = 0x0a0d0d0a; // palindromic: readable before the byte order is known
const IDB = 1;
const OPB = 2; // obsolete Packet Block
const SPB = 3;
const EPB = 6;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

/** Smallest section header block: header, magic, version, section length, trailer. */
export const SHB_MIN_LEN = 28;
/** Largest block accepted: a MAX_CAPLEN packet plus room for options. */
const MAX_BLOCK = MAX_CAPLEN + 1024 * 1024;

/** Byte order of a section from its byte-order magic at byte 8 of the SHB, or null. */
export function pcapngByteOrder(view: DataView, shbPos: number): boolean | null {
  const m = view.getUint32(shbPos + 8, true);
  if (m === BYTE_ORDER_MAGIC) return true;
  if (m === 0x4d3c2b1a) return false;
  return null;
}

const POW2: number[] = [];
for (let i = 0; i <= 128; i++) POW2.push(2 ** i);

/** One Interface Description Block, with its timestamp resolution pre-digested. */
class Iface {
  linkType = 0;
  snaplen = 0;
  tsDigits = 6;
  /** if_tsoffset, seconds. */
  offset = 0;
  /**
   * Fast path, for 10^-k with k ≤ 9 and 2^-n with n ≤ 32 (what writers use):
   * units / div gives seconds, floor(remainder · fracMul / fracDiv) gives
   * nanoseconds, both products exact below 2^53.
   */
  fast = true;
  div = 1e6;
  fracMul = 1000;
  fracDiv = 1;
  /**
   * hi·2^32 / div for the last upper timestamp word seen. Timestamps rise
   * slowly, so hi changes every 4.3 s at ns resolution: per packet there is
   * one division left instead of four (measured on a 64-byte-packet file:
   * 10^-9 from 15 to 25 M frames/s, 10^-6 from 15 to 35 M frames/s).
   */
  cacheHi = -1;
  cacheSec = 0;
  cacheRem = 0;
  /** Slow path: 2^-n with n > 32 (n here), or 10^-k with k > 9 (pow2 = -1). */
  pow2 = -1;
  /** 10^-k, k > 9: the units are divided by pre1 then pre2 to get nanoseconds. */
  pre1 = 1;
  pre2 = 1;

  setResolution(tsresol: number): void {
    this.cacheHi = -1;
    if (tsresol & 0x80) {
      const n = tsresol & 0x7f;
      this.tsDigits = 9;
      this.fast = n <= 32;
      this.pow2 = n;
      // 1e9 = 1953125 · 2^9, so rem·1e9 / 2^n = rem·1953125 / 2^(n-9), with rem < 2^32.
      this.div = 2 ** n;
      this.fracMul = 1953125 * 2 ** Math.max(0, 9 - n);
      this.fracDiv = 2 ** Math.max(0, n - 9);
      return;
    }
    const k = tsresol;
    this.tsDigits = Math.min(k, 9);
    this.fast = k <= 9;
    this.pow2 = -1;
    if (k <= 9) {
      this.div = 10 ** k;
      this.fracMul = 10 ** (9 - k);
      this.fracDiv = 1;
    } else {
      // Sub-nanosecond units: drop the digits below 1 ns first (the floor of a
      // floor is the floor of the whole quotient, so this stays exact). Each
      // divisor must stay below 2^37 for divmod64; 10^22 > 2^64 leaves 0.
      const e = k - 9;
      this.pre1 = 10 ** Math.min(e, 11);
      this.pre2 = e > 11 ? 10 ** Math.min(e - 11, 11) : 1;
    }
  }
}

// divmod64's results. Module state instead of a returned object: no allocation.
let qHi = 0;
let qLo = 0;
let qRem = 0;

/**
 * Exact (hi·2^32 + lo) / d for an integer 1 ≤ d < 2^37, without BigInt:
 * schoolbook long division in 16-bit digits, so r·65536 + digit < 2^53 and
 * each quotient digit (< 2^16) is computed exactly by Math.floor.
 */
function divmod64(hi: number, lo: number, d: number): void {
  let x = hi >>> 16;
  const q3 = Math.floor(x / d);
  let r = x - q3 * d;
  x = r * 65536 + (hi & 0xffff);
  const q2 = Math.floor(x / d);
  r = x - q2 * d;
  x = r * 65536 + (lo >>> 16);
  const q1 = Math.floor(x / d);
  r = x - q1 * d;
  x = r * 65536 + (lo & 0xffff);
  const q0 = Math.floor(x / d);
  qRem = x - q0 * d;
  qHi = q3 * 65536 + q2;
  qLo = q1 * 65536 + q0;
}

export class PcapngReader {
  readonly format = 'pcapng' as const;
  readonly frame = new Frame();
  framesRead = 0;
  /** Packets naming an interface that has no IDB in their section. */
  framesSkipped = 0;
  bytesRead = 0;
  readonly fileSize: number;
  endReason: string | null = null;

  /** Byte order of the current section. */
  private le = true;
  private ifaces: Iface[] = [];
  private done = false;

  /** The caller has checked the first SHB's type and byte-order magic. */
  constructor(buf: Uint8Array) {
    this.fileSize = buf.byteLength;
    this.frame.buf = buf;
    this.frame.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  next(): boolean {
    if (this.done) return false;
    const f = this.frame;
    const v = f.view;
    for (;;) {
      const pos = this.bytesRead;
      const left = this.fileSize - pos;
      if (left === 0) return this.end(null);
      if (left < 12) return this.end(`truncated block header at byte ${pos}`);
      let le = this.le;
      const type = v.getUint32(pos, le);
      if (type === SHB) {
        const order = pcapngByteOrder(v, pos);
        if (order === null) return this.end(`bad byte-order magic in section header at byte ${pos}`);
        le = order;
      }
      const blen = v.getUint32(pos + 4, le);
      if (blen < 12 || (blen & 3) !== 0) return this.end(`bad block length ${blen} at byte ${pos}`);
      if (blen > MAX_BLOCK) return this.end(`absurd block length ${blen} at byte ${pos}`);
      if (blen > left) return this.end(`truncated block at byte ${pos} (length ${blen}, ${left} bytes left)`);
      // The trailing copy of the length catches a corrupt length before we trust it.
      if (v.getUint32(pos + blen - 4, le) !== blen) return this.end(`block length mismatch at byte ${pos}`);
      const body = pos + 8;

      if (type === EPB || type === OPB) {
        // Same layout but for the interface id: EPB 32-bit, OPB 16-bit + 16-bit drops.
        if (blen < 32) return this.end(`short packet block at byte ${pos}`);
        const caplen = v.getUint32(body + 12, le);
        if (caplen > blen - 32) return this.end(`caplen ${caplen} overruns packet block at byte ${pos}`);
        this.bytesRead = pos + blen;
        const ifIndex = type === EPB ? v.getUint32(body, le) : v.getUint16(body, le);
        if (ifIndex >= this.ifaces.length) {
          this.framesSkipped++;
          continue;
        }
        const ifc = this.ifaces[ifIndex];
        f.off = body + 20;
        f.caplen = caplen;
        f.len = v.getUint32(body + 16, le);
        f.linkType = ifc.linkType;
        f.ifIndex = ifIndex;
        f.hasTs = true;
        f.tsDigits = ifc.tsDigits;
        this.setTs(ifc, v.getUint32(body + 4, le), v.getUint32(body + 8, le));
        this.framesRead++;
        return true;
      }

      if (type === SPB) {
        if (blen < 16) return this.end(`short simple packet block at byte ${pos}`);
        this.bytesRead = pos + blen;
        if (this.ifaces.length === 0) {
          this.framesSkipped++;
          continue;
        }
        const ifc = this.ifaces[0];
        const len = v.getUint32(body, le);
        // No caplen field: the body may hold padding, so bound by the wire length and snaplen.
        let caplen = Math.min(len, blen - 16);
        if (ifc.snaplen !== 0 && caplen > ifc.snaplen) caplen = ifc.snaplen;
        f.off = body + 4;
        f.caplen = caplen;
        f.len = len;
        f.linkType = ifc.linkType;
        f.ifIndex = 0;
        f.hasTs = false;
        f.tsDigits = ifc.tsDigits;
        f.tsSec = 0;
        f.tsNsec = 0;
        this.framesRead++;
        return true;
      }

      if (type === IDB) {
        if (blen < 20) return this.end(`short interface description block at byte ${pos}`);
        this.ifaces.push(this.parseIdb(v, body, pos + blen - 4, le));
      } else if (type === SHB) {
        if (blen < SHB_MIN_LEN) return this.end(`short section header block at byte ${pos}`);
        const major = v.getUint16(body + 4, le);
        const minor = v.getUint16(body + 6, le);
        // A new major version is by definition not readable as 1.x (tshark also stops here).
        if (major !== 1) return this.end(`unsupported pcapng version ${major}.${minor} at byte ${pos}`);
        this.le = le;
        this.ifaces.length = 0; // interface numbers restart in each section
      }
      // Other blocks (ISB, NRB, DSB, custom, ...) carry no packets: skip by length.
      this.bytesRead = pos + blen;
    }
  }

  private parseIdb(v: DataView, body: number, bodyEnd: number, le: boolean): Iface {
    const ifc = new Iface();
    ifc.linkType = v.getUint16(body, le);
    ifc.snaplen = v.getUint32(body + 4, le);
    for (let o = body + 8; o + 4 <= bodyEnd; ) {
      const code = v.getUint16(o, le);
      const olen = v.getUint16(o + 2, le);
      const val = o + 4;
      if (code === 0 || val + olen > bodyEnd) break; // opt_endofopt, or a malformed option: ignore the rest
      if (code === 9 && olen >= 1) ifc.setResolution(v.getUint8(val));
      else if (code === 14 && olen >= 8) {
        const hi = v.getInt32(le ? val + 4 : val, le); // signed 64-bit seconds
        const lo = v.getUint32(le ? val : val + 4, le);
        ifc.offset = hi * 4294967296 + lo;
      }
      o = val + ((olen + 3) & ~3);
    }
    return ifc;
  }

  /** Units of the interface's resolution since the epoch → exact tsSec/tsNsec, without BigInt. */
  private setTs(ifc: Iface, hi: number, lo: number): void {
    const f = this.frame;
    if (ifc.fast) {
      const div = ifc.div;
      if (hi !== ifc.cacheHi) {
        divmod64(hi, 0, div);
        ifc.cacheHi = hi;
        ifc.cacheSec = qHi * 4294967296 + qLo;
        ifc.cacheRem = qRem;
      }
      // units = cacheSec·div + cacheRem + lo, with cacheRem + lo < div + 2^32: all exact.
      const x = ifc.cacheRem + lo;
      const q = Math.floor(x / div);
      f.tsSec = ifc.cacheSec + q + ifc.offset;
      f.tsNsec = Math.floor(((x - q * div) * ifc.fracMul) / ifc.fracDiv);
      return;
    }
    let sec: number;
    let nsec: number;
    const n = ifc.pow2;
    if (n < 0) {
      // 10^-k, k > 9: to nanoseconds first, then split at 1e9.
      divmod64(hi, lo, ifc.pre1);
      if (ifc.pre2 !== 1) divmod64(qHi, qLo, ifc.pre2);
      divmod64(qHi, qLo, 1e9);
      sec = qHi * 4294967296 + qLo;
      nsec = qRem;
    } else {
      // 2^-n, n > 32: split seconds from the fraction rh·2^32 + lo by powers of
      // two, then nsec = floor(fraction·1953125 / 2^s) with s = n - 9 ≥ 24,
      // arranged so that every intermediate is an exact integer below 2^53.
      let rh = hi;
      if (n < 64) {
        sec = Math.floor(hi / POW2[n - 32]);
        rh = hi - sec * POW2[n - 32];
      } else {
        sec = 0;
      }
      const s = n - 9;
      const x = lo * 1953125;
      const y = rh * 1953125;
      if (s < 32) nsec = y * POW2[32 - s] + Math.floor(x / POW2[s]);
      else nsec = Math.floor((y + Math.floor(x / 4294967296)) / POW2[s - 32]);
    }
    f.tsSec = sec + ifc.offset;
    f.tsNsec = nsec;
  }

  private end(reason: string | null): false {
    this.done = true;
    this.endReason = reason;
    return false;
  }
}
