// The rtcp record's payload: every packet of the compound, written by
// walking the (already validated) bytes. JSON:
//   {"packets":[
//     {"type":"SR","pt":200,"count":N,"ssrc":N,"ntp_sec":N,"ntp_frac":N,"rtp_ts":N,"packet_count":N,"octet_count":N,"reports":[R...]},
//     {"type":"RR","pt":201,"count":N,"ssrc":N,"reports":[R...]},
//     {"type":"SDES","pt":202,"count":N,"chunks":[{"ssrc":N,"items":[{"type":N,"text":S}...]}...]},
//     {"type":"BYE","pt":203,"count":N,"sources":[N...],"reason":S|null},
//     {"type":"APP","pt":204,"count":N,"ssrc":N,"name":S,"data_len":N},
//     {"type":"XR"|"RTPFB"|"PSFB"|...,"pt":N,"count":N,"ssrc":N,"len":N}]}
//   R = {"ssrc":N,"fraction_lost":N,"cumulative_lost":N,"highest_seq":N,"jitter":N,"lsr":N,"dlsr":N}
// Protobuf: otus.rtcp.v1.RtcpPayload (rtcp.proto): per packet pt, count,
// ssrc, report blocks, and the packet's bytes after its header.

import { ascii, Literal, writeBytes, writeJsonStringBytes, writeLiteral, writeUint } from '../../../src/util/bytes.js';
import { varintSize, writeVarint } from '../../../src/pipeline/codec-protobuf.js';
import type { Payload } from '../../../src/pipeline/record.js';

/** Names by packet type − 192 (RFC 3550, 3611, 4585, 5760, 6051...); numbers for the rest. */
export const RTCP_TYPE_NAMES: readonly string[] = Array.from({ length: 32 }, (_, i) => {
  const n: Record<number, string> = { 192: 'FIR', 193: 'NACK', 195: 'IJ', 200: 'SR', 201: 'RR', 202: 'SDES', 203: 'BYE', 204: 'APP', 205: 'RTPFB', 206: 'PSFB', 207: 'XR', 208: 'AVB', 209: 'RSI', 210: 'TOKEN', 211: 'IDMS' };
  return n[192 + i] ?? String(192 + i);
});
const NAME_BYTES = RTCP_TYPE_NAMES.map(ascii);

const K_OPEN = new Literal('{"packets":[');
const K_TYPE = new Literal('{"type":"');
const K_PT = new Literal('","pt":');
const K_COUNT = new Literal(',"count":');
const K_SSRC = new Literal(',"ssrc":');
const K_NTP = new Literal(',"ntp_sec":');
const K_FRAC = new Literal(',"ntp_frac":');
const K_RTPTS = new Literal(',"rtp_ts":');
const K_PKTS = new Literal(',"packet_count":');
const K_OCT = new Literal(',"octet_count":');
const K_REPORTS = new Literal(',"reports":[');
const K_R_SSRC = new Literal('{"ssrc":');
const K_FL = new Literal(',"fraction_lost":');
const K_CL = new Literal(',"cumulative_lost":');
const K_HS = new Literal(',"highest_seq":');
const K_JIT = new Literal(',"jitter":');
const K_LSR = new Literal(',"lsr":');
const K_DLSR = new Literal(',"dlsr":');
const K_CHUNKS = new Literal(',"chunks":[');
const K_ITEMS = new Literal(',"items":[');
const K_ITYPE = new Literal('{"type":');
const K_TEXT = new Literal(',"text":');
const K_SOURCES = new Literal(',"sources":[');
const K_REASON = new Literal('],"reason":');
const K_NAME = new Literal(',"name":');
const K_DLEN = new Literal(',"data_len":');
const K_LEN = new Literal(',"len":');
const NULL = new Literal('null');

function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

function writeInt(buf: Uint8Array, off: number, v: number): number {
  if (v < 0) {
    buf[off++] = 45;
    v = -v;
  }
  return writeUint(buf, off, v);
}

export class RtcpPayload implements Payload {
  readonly type = 'rtcp';
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  len = 0;

  /** Packets in the compound. */
  count(): number {
    const b = this.buf;
    const end = this.off + this.len;
    let n = 0;
    for (let p = this.off; p + 4 <= end; p += 4 + 4 * ((b[p + 2] << 8) | b[p + 3])) n++;
    return n;
  }

  writeJson(buf: Uint8Array, off: number, end: number): number {
    if (end - off < 20 * this.len + 256) return -1;
    const b = this.buf;
    const e = this.off + this.len;
    off = writeLiteral(buf, off, K_OPEN);
    for (let p = this.off; p + 4 <= e; ) {
      const pe = p + 4 + 4 * ((b[p + 2] << 8) | b[p + 3]);
      const pt = b[p + 1];
      const rc = b[p] & 31;
      if (p > this.off) buf[off++] = 44;
      off = writeLiteral(buf, off, K_TYPE);
      off = writeBytes(buf, off, NAME_BYTES[pt - 192]);
      off = writeLiteral(buf, off, K_PT);
      off = writeUint(buf, off, pt);
      off = writeLiteral(buf, off, K_COUNT);
      off = writeUint(buf, off, rc);
      if (pt === 200 || pt === 201) {
        let q = p + 4;
        if (q + 4 <= pe) {
          off = writeLiteral(buf, off, K_SSRC);
          off = writeUint(buf, off, u32(b, q));
        }
        q += 4;
        if (pt === 200 && q + 20 <= pe) {
          off = writeLiteral(buf, off, K_NTP);
          off = writeUint(buf, off, u32(b, q));
          off = writeLiteral(buf, off, K_FRAC);
          off = writeUint(buf, off, u32(b, q + 4));
          off = writeLiteral(buf, off, K_RTPTS);
          off = writeUint(buf, off, u32(b, q + 8));
          off = writeLiteral(buf, off, K_PKTS);
          off = writeUint(buf, off, u32(b, q + 12));
          off = writeLiteral(buf, off, K_OCT);
          off = writeUint(buf, off, u32(b, q + 16));
          q += 20;
        }
        off = writeLiteral(buf, off, K_REPORTS);
        for (let i = 0; i < rc && q + 24 <= pe; i++, q += 24) {
          if (i > 0) buf[off++] = 44;
          off = writeLiteral(buf, off, K_R_SSRC);
          off = writeUint(buf, off, u32(b, q));
          off = writeLiteral(buf, off, K_FL);
          off = writeUint(buf, off, b[q + 4]);
          off = writeLiteral(buf, off, K_CL);
          off = writeInt(buf, off, ((b[q + 5] << 24) | (b[q + 6] << 16) | (b[q + 7] << 8)) >> 8);
          off = writeLiteral(buf, off, K_HS);
          off = writeUint(buf, off, u32(b, q + 8));
          off = writeLiteral(buf, off, K_JIT);
          off = writeUint(buf, off, u32(b, q + 12));
          off = writeLiteral(buf, off, K_LSR);
          off = writeUint(buf, off, u32(b, q + 16));
          off = writeLiteral(buf, off, K_DLSR);
          off = writeUint(buf, off, u32(b, q + 20));
          buf[off++] = 125;
        }
        buf[off++] = 93;
      } else if (pt === 202) {
        off = writeLiteral(buf, off, K_CHUNKS);
        let q = p + 4;
        for (let c = 0; c < rc && q + 4 <= pe; c++) {
          if (c > 0) buf[off++] = 44;
          off = writeLiteral(buf, off, K_R_SSRC);
          off = writeUint(buf, off, u32(b, q));
          off = writeLiteral(buf, off, K_ITEMS);
          q += 4;
          let first = true;
          while (q < pe && b[q] !== 0) {
            const it = b[q];
            const il = q + 1 < pe ? b[q + 1] : 0;
            if (q + 2 + il > pe) {
              q = pe;
              break;
            }
            if (!first) buf[off++] = 44;
            first = false;
            off = writeLiteral(buf, off, K_ITYPE);
            off = writeUint(buf, off, it);
            off = writeLiteral(buf, off, K_TEXT);
            off = writeJsonStringBytes(buf, off, b, q + 2, il);
            buf[off++] = 125;
            q += 2 + il;
          }
          off = writeBytes(buf, off, ascii_close2);
          // The null terminator, then padding to the next 32-bit boundary.
          q = this.off + ((q - this.off + 4) & ~3);
        }
        buf[off++] = 93;
      } else if (pt === 203) {
        off = writeLiteral(buf, off, K_SOURCES);
        let q = p + 4;
        for (let i = 0; i < rc && q + 4 <= pe; i++, q += 4) {
          if (i > 0) buf[off++] = 44;
          off = writeUint(buf, off, u32(b, q));
        }
        off = writeLiteral(buf, off, K_REASON);
        if (q < pe && q + 1 + b[q] <= pe) off = writeJsonStringBytes(buf, off, b, q + 1, b[q]);
        else off = writeLiteral(buf, off, NULL);
      } else if (pt === 204 && pe - p >= 12) {
        off = writeLiteral(buf, off, K_SSRC);
        off = writeUint(buf, off, u32(b, p + 4));
        off = writeLiteral(buf, off, K_NAME);
        off = writeJsonStringBytes(buf, off, b, p + 8, 4);
        off = writeLiteral(buf, off, K_DLEN);
        off = writeUint(buf, off, pe - p - 12);
      } else {
        if (pe - p >= 8) {
          off = writeLiteral(buf, off, K_SSRC);
          off = writeUint(buf, off, u32(b, p + 4));
        }
        off = writeLiteral(buf, off, K_LEN);
        off = writeUint(buf, off, pe - p);
      }
      buf[off++] = 125;
      p = pe;
    }
    buf[off++] = 93;
    buf[off++] = 125;
    return off;
  }

  // ---- protobuf: RtcpPayload { repeated Packet packets = 1; } ----

  private packetSize(p: number, pe: number): number {
    const b = this.buf;
    const pt = b[p + 1];
    let n = 1 + varintSize(pt) + 1 + varintSize(b[p] & 31);
    let q = p + 4;
    if (pe - p >= 8) {
      n += 1 + varintSize(u32(b, p + 4));
    }
    if (pt === 200 || pt === 201) {
      q = p + 8 + (pt === 200 ? 20 : 0);
      for (let i = 0; i < (b[p] & 31) && q + 24 <= pe; i++, q += 24) {
        const r = this.reportSize(q);
        n += 1 + varintSize(r) + r;
      }
    }
    const body = pe - (p + 4);
    n += 1 + varintSize(body) + body;
    return n;
  }

  private reportSize(q: number): number {
    const b = this.buf;
    const cl = ((b[q + 5] << 24) | (b[q + 6] << 16) | (b[q + 7] << 8)) >> 8;
    return (
      1 + varintSize(u32(b, q)) + 1 + varintSize(b[q + 4]) + 1 + varintSize(zigzag(cl)) + 1 + varintSize(u32(b, q + 8)) +
      1 + varintSize(u32(b, q + 12)) + 1 + varintSize(u32(b, q + 16)) + 1 + varintSize(u32(b, q + 20))
    );
  }

  binarySize(): number {
    const b = this.buf;
    const e = this.off + this.len;
    let n = 0;
    for (let p = this.off; p + 4 <= e; ) {
      const pe = p + 4 + 4 * ((b[p + 2] << 8) | b[p + 3]);
      const s = this.packetSize(p, pe);
      n += 1 + varintSize(s) + s;
      p = pe;
    }
    return n;
  }

  writeBinary(buf: Uint8Array, off: number, end: number): number {
    if (end - off < this.binarySize()) return -1;
    const b = this.buf;
    const e = this.off + this.len;
    for (let p = this.off; p + 4 <= e; ) {
      const pe = p + 4 + 4 * ((b[p + 2] << 8) | b[p + 3]);
      const pt = b[p + 1];
      const rc = b[p] & 31;
      buf[off++] = 0x0a; // 1 packets
      off = writeVarint(buf, off, this.packetSize(p, pe));
      buf[off++] = 0x08; // 1 pt
      off = writeVarint(buf, off, pt);
      buf[off++] = 0x10; // 2 count
      off = writeVarint(buf, off, rc);
      if (pe - p >= 8) {
        buf[off++] = 0x18; // 3 ssrc (first word after the header)
        off = writeVarint(buf, off, u32(b, p + 4));
      }
      if (pt === 200 || pt === 201) {
        let q = p + 8 + (pt === 200 ? 20 : 0);
        for (let i = 0; i < rc && q + 24 <= pe; i++, q += 24) {
          buf[off++] = 0x22; // 4 reports
          off = writeVarint(buf, off, this.reportSize(q));
          buf[off++] = 0x08;
          off = writeVarint(buf, off, u32(b, q));
          buf[off++] = 0x10;
          off = writeVarint(buf, off, b[q + 4]);
          buf[off++] = 0x18;
          off = writeVarint(buf, off, zigzag(((b[q + 5] << 24) | (b[q + 6] << 16) | (b[q + 7] << 8)) >> 8));
          buf[off++] = 0x20;
          off = writeVarint(buf, off, u32(b, q + 8));
          buf[off++] = 0x28;
          off = writeVarint(buf, off, u32(b, q + 12));
          buf[off++] = 0x30;
          off = writeVarint(buf, off, u32(b, q + 16));
          buf[off++] = 0x38;
          off = writeVarint(buf, off, u32(b, q + 20));
        }
      }
      const body = pe - (p + 4);
      buf[off++] = 0x2a; // 5 body
      off = writeVarint(buf, off, body);
      for (let i = 0; i < body; i++) buf[off++] = b[p + 4 + i];
      p = pe;
    }
    return off;
  }
}

const ascii_close2 = ascii(']}');

function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}
