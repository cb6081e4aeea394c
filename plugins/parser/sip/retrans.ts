// Retransmitted SIP messages over UDP (RFC 3261 17.1.1.2, 17.2.1: a client
// resends its request, a server its final response, until the other side
// answers or 64*T1 = 32 s pass). A message is a retransmission when one with
// the same start line, Call-ID, CSeq, From and To tags and top Via, between
// the same addresses and ports in the same direction, was seen less than
// 32 s before. Those fields are two 32-bit hashes; the table is a fixed
// direct-mapped array of (hash, check hash, time): no allocation per
// message, and an entry another message overwrote only misses a
// retransmission, never invents one (both hashes must match).

import type { DecodedPacket } from '../../../src/decode/packet.js';
import { H_CALL_ID, H_CSEQ, H_VIA, type SipMessage } from './message.js';

/** 64 * T1 (T1 = 500 ms): how long a transaction's messages may be resent. */
export const RETRANS_WINDOW_MS = 32_000;

export class RetransTable {
  private readonly mask: number;
  private readonly h1: Int32Array;
  private readonly h2: Int32Array;
  private readonly ms: Float64Array;
  private a = 0;
  private b = 0;

  /** `slots`: a power of two. */
  constructor(slots = 1 << 16) {
    this.mask = slots - 1;
    this.h1 = new Int32Array(slots);
    this.h2 = new Int32Array(slots);
    this.ms = new Float64Array(slots).fill(-Infinity);
  }

  /**
   * True when message `m` (tags from the parser: buf offsets and lengths,
   * len 0 when absent) between p's addresses is a retransmission of one seen
   * less than RETRANS_WINDOW_MS before `nowMs`; remembers it otherwise.
   */
  seen(m: SipMessage, p: DecodedPacket, fromTagOff: number, fromTagLen: number, toTagOff: number, toTagLen: number, nowMs: number): boolean {
    this.a = 0x811c9dc5 | 0;
    this.b = 0x9747b28c | 0;
    const b = m.buf;
    this.mix(b, m.lineOff, m.lineLen);
    this.header(m, H_CALL_ID);
    this.header(m, H_CSEQ);
    this.header(m, H_VIA);
    this.mix(b, fromTagOff, fromTagLen);
    this.word(fromTagLen);
    this.mix(b, toTagOff, toTagLen);
    this.word(toTagLen);
    if (p.ipVersion === 4) {
      this.word(p.src4);
      this.word(p.dst4);
    } else if (p.ipVersion === 6) {
      this.mix(p.addrBuf, p.srcOff, 16);
      this.mix(p.addrBuf, p.dstOff, 16);
    }
    this.word((p.sport << 16) | p.dport);
    const i = this.a & this.mask;
    if (this.h1[i] === this.a && this.h2[i] === this.b && nowMs - this.ms[i] < RETRANS_WINDOW_MS && nowMs >= this.ms[i]) return true;
    this.h1[i] = this.a;
    this.h2[i] = this.b;
    this.ms[i] = nowMs;
    return false;
  }

  private header(m: SipMessage, id: number): void {
    const i = m.first[id];
    if (i >= 0) this.mix(m.buf, m.hValOff[i], m.hValLen[i]);
    this.word(i);
  }

  private mix(buf: Uint8Array, off: number, len: number): void {
    let a = this.a;
    let b = this.b;
    for (let k = 0; k < len; k++) {
      const c = buf[off + k];
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    this.a = a;
    this.b = b;
  }

  private word(w: number): void {
    this.a = Math.imul(this.a ^ w, 0x01000193);
    this.b = Math.imul(this.b ^ w, 0x5bd1e995);
    this.b ^= this.b >>> 13;
  }
}
