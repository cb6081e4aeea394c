// Retransmitted SIP messages over UDP (RFC 3261 17.1.1.2, 17.2.1: a client
// resends its request, a server its final response, until the other side
// answers or 64*T1 = 32 s pass). A message is a retransmission when one with
// the same start line, Call-ID, CSeq, From and To tags and top Via, between
// the same addresses and ports in the same direction, was seen less than
// 32 s before. Those fields are a 32-bit hash and a check word; the table is a fixed
// direct-mapped array of (hash, check hash, time): no allocation per
// message, and an entry another message overwrote only misses a
// retransmission, never invents one (hash and check must both match).

import type { DecodedPacket } from '../../../src/decode/packet.js';
import { H_CALL_ID, H_CSEQ, H_VIA, type SipMessage } from './message.js';

/** 64 * T1 (T1 = 500 ms): how long a transaction's messages may be resent. */
export const RETRANS_WINDOW_MS = 32_000;

export class RetransTable {
  private readonly mask: number;
  /** Per slot, in one 16-byte run (one cache line; three arrays cost three misses per message): hash, check, time (ms mod 2^32), spare. */
  private readonly slots: Int32Array;
  private h = 0;

  /** `slots`: a power of two. */
  constructor(slots = 1 << 15) {
    this.mask = slots - 1;
    this.slots = new Int32Array(4 * slots);
  }

  /**
   * True when message `m` (its From and To tags at buf offsets, length 0
   * when absent) between p's addresses is a retransmission of one seen less
   * than RETRANS_WINDOW_MS before `nowMs`; remembers it otherwise.
   *
   * What is hashed is chosen for cost (measured: hashing every byte of the
   * start line, Call-ID, CSeq and Via took the call mix of bench/sip from
   * 615 k to 420 k messages per CPU-second): the Call-ID, CSeq and tags, the
   * method or status, the start line's and the message's lengths, and the
   * top Via's length and last 16 bytes (where its branch usually is). A
   * resent message is byte for byte the same, so it matches; two different
   * messages must agree on all of that and on a second check word.
   */
  seen(m: SipMessage, p: DecodedPacket, fromTagOff: number, fromTagLen: number, toTagOff: number, toTagLen: number, nowMs: number): boolean {
    this.h = 0x811c9dc5 | 0;
    const b = m.buf;
    this.header(m, H_CALL_ID);
    this.header(m, H_CSEQ);
    this.mixView(b, m.view, fromTagOff, fromTagLen);
    this.mixView(b, m.view, toTagOff, toTagLen);
    const vi = m.first[H_VIA];
    const viaLen = vi >= 0 ? m.hValLen[vi] : 0;
    if (vi >= 0) this.mixView(b, m.view, m.hValOff[vi] + Math.max(0, viaLen - 16), Math.min(viaLen, 16));
    this.word(m.isRequest ? m.methodOff - m.lineOff + (b[m.methodOff] << 8) + (m.methodLen << 16) : m.status);
    if (p.ipVersion === 4) {
      this.word(p.src4);
      this.word(p.dst4);
    } else if (p.ipVersion === 6) {
      this.mix(p.addrBuf, p.srcOff, 16);
      this.mix(p.addrBuf, p.dstOff, 16);
    }
    this.word((p.sport << 16) | p.dport);
    const check = Math.imul(m.end - m.off, 0x9e3779b1) ^ (viaLen << 20) ^ (m.lineLen << 8) ^ fromTagLen ^ (toTagLen << 4);
    const S = this.slots;
    const i = (this.h & this.mask) << 2;
    // Times as ms modulo 2^32: the difference is exact within the window (and a slot never written has check 0 and mark 0).
    const now = nowMs % 4294967296 | 0;
    if (S[i] === this.h && S[i + 1] === check && S[i + 3] === 1 && (now - S[i + 2]) >>> 0 < RETRANS_WINDOW_MS) return true;
    S[i] = this.h;
    S[i + 1] = check;
    S[i + 2] = now;
    S[i + 3] = 1;
    return false;
  }

  private header(m: SipMessage, id: number): void {
    const i = m.first[id];
    if (i >= 0) this.mixView(m.buf, m.view, m.hValOff[i], m.hValLen[i]);
    this.word(i);
  }

  /** mix, four bytes at a time through `view` (indexing buf's bytes) when there is one. */
  private mixView(buf: Uint8Array, view: DataView | null, off: number, len: number): void {
    if (view === null) return this.mix(buf, off, len);
    let h = this.h;
    let k = 0;
    for (; k + 4 <= len; k += 4) {
      h = Math.imul(h ^ view.getInt32(off + k, true), 0x01000193);
      h ^= h >>> 15;
    }
    for (; k < len; k++) h = Math.imul(h ^ buf[off + k], 0x01000193);
    this.h = h;
  }

  private mix(buf: Uint8Array, off: number, len: number): void {
    let h = this.h;
    for (let k = 0; k < len; k++) h = Math.imul(h ^ buf[off + k], 0x01000193);
    this.h = h;
  }

  private word(w: number): void {
    this.h = Math.imul(this.h ^ w, 0x01000193);
  }
}
