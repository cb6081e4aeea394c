// The rtp record's payload: the fixed header, CSRC list, extension header
// (profile, length in words), sizes, and an RFC 4733 event when there is one.
// JSON:
//   {"version":2,"padding":B,"extension":B,"marker":B,"pt":N,"seq":N,"timestamp":N,"ssrc":N,
//    "csrc":[N...],"ext_profile":N|null,"ext_len":N|null,"payload_len":N,"pad_len":N,
//    "event":{"event":N,"end":B,"volume":N,"duration":N}|null}
// Protobuf: otus.rtp.v1.RtpPayload (rtp.proto).
// Compact (the send ring's form, expanded in the sender by RtpPayloadReader),
// eight little-endian 32-bit words then the CSRCs as in the packet:
//    0 u8 bits (1 padding, 2 extension, 4 marker, 8 event, 16 event end)
//    1 u8 CSRC count, 2 u8 payload type, 3 u8 padding length,
//    4 u32 seq, 8 u32 timestamp, 12 u32 SSRC, 16 i32 extension profile,
//   20 i32 extension length, 24 u32 payload length, 28 u8 event,
//   29 u8 volume, 30 u16 duration, 32 the CSRCs.

import { ascii, Literal, readU16LE, readU32LE, writeBytes, writeLiteral, writeU32LE, writeUint, writeUintOrNull } from '../../../src/util/bytes.js';
import { varintSize, writeVarint } from '../../../src/pipeline/codec-protobuf.js';
import type { Payload, PayloadReader } from '../../../src/pipeline/record.js';
import { wordView } from '../../../src/pipeline/wire.js';

/** Bytes of the compact form without CSRCs. */
export const COMPACT = 32;

/** `{"version":2,"padding":…,"extension":…,"marker":…,"pt":` by padding << 2 | extension << 1 | marker. */
const FLAGS_PREFIX = Array.from({ length: 8 }, (_, f) => new Literal(`{"version":2,"padding":${(f & 4) !== 0},"extension":${(f & 2) !== 0},"marker":${(f & 1) !== 0},"pt":`));
const K_SEQ = new Literal(',"seq":');
const K_TS = new Literal(',"timestamp":');
const K_SSRC = new Literal(',"ssrc":');
const K_CSRC = new Literal(',"csrc":[');
const K_EXTP = new Literal('],"ext_profile":');
const K_EXTL = new Literal(',"ext_len":');
const NO_EXT = new Literal('],"ext_profile":null,"ext_len":null');
const K_PLEN = new Literal(',"payload_len":');
const K_PAD = new Literal(',"pad_len":');
const K_EV = new Literal(',"event":');
const NO_EVENT = new Literal(',"event":null}');
const K_EV1 = new Literal('{"event":');
const K_END = new Literal(',"end":');
const K_VOL = new Literal(',"volume":');
const K_DUR = new Literal(',"duration":');
const TRUE = ascii('true');
const FALSE = ascii('false');

/**
 * The compact form of a packet without padding, extension, CSRCs or event
 * (the fast path, RtpParser.fastFrame), from word k of the record's words:
 * what writeCompact writes for it. Returns the word after it.
 */
export function writePlainCompact(W: Int32Array, k: number, marker: boolean, pt: number, seq: number, ts: number, ssrc: number, payloadLen: number): number {
  W[k] = (marker ? 4 : 0) | (pt << 16);
  W[k + 1] = seq;
  W[k + 2] = ts;
  W[k + 3] = ssrc;
  W[k + 4] = -1;
  W[k + 5] = -1;
  W[k + 6] = payloadLen;
  W[k + 7] = 255; // event -1
  return k + 8;
}

export class RtpPayload implements Payload {
  readonly type = 'rtp';
  buf: Uint8Array = new Uint8Array(0);
  /** Offset of the RTP header in buf (CSRCs read from there). */
  off = 0;
  cc = 0;
  padding = false;
  extension = false;
  marker = false;
  pt = 0;
  seq = 0;
  ts = 0;
  ssrc = 0;
  extProfile = -1;
  extLen = -1;
  payloadLen = 0;
  padLen = 0;
  /** RFC 4733 event code, -1 none. */
  event = -1;
  eventEnd = false;
  volume = 0;
  duration = 0;

  writeCompact(buf: Uint8Array, off: number, end: number): number {
    const cc = this.cc;
    if (end - off < COMPACT + 4 * cc) return -1;
    const w0 = (this.padding ? 1 : 0) | (this.extension ? 2 : 0) | (this.marker ? 4 : 0) | (this.event >= 0 ? 8 : 0) | (this.eventEnd ? 16 : 0) | (cc << 8) | (this.pt << 16) | (this.padLen << 24);
    const w7 = (this.event & 255) | (this.volume << 8) | (this.duration << 16);
    const W = wordView(buf);
    if (W !== null && (off & 3) === 0) {
      // The wire record aligns payloads: eight word stores.
      const k = off >> 2;
      W[k] = w0;
      W[k + 1] = this.seq;
      W[k + 2] = this.ts;
      W[k + 3] = this.ssrc;
      W[k + 4] = this.extProfile;
      W[k + 5] = this.extLen;
      W[k + 6] = this.payloadLen;
      W[k + 7] = w7;
    } else {
      writeU32LE(buf, off, w0);
      writeU32LE(buf, off + 4, this.seq);
      writeU32LE(buf, off + 8, this.ts);
      writeU32LE(buf, off + 12, this.ssrc);
      writeU32LE(buf, off + 16, this.extProfile);
      writeU32LE(buf, off + 20, this.extLen);
      writeU32LE(buf, off + 24, this.payloadLen);
      writeU32LE(buf, off + 28, w7);
    }
    const b = this.buf;
    const c = this.off + 12;
    for (let i = 0; i < 4 * cc; i++) buf[off + COMPACT + i] = b[c + i];
    return off + COMPACT + 4 * cc;
  }

  /** Loads a compact form written by writeCompact; false when it is malformed. */
  loadCompact(buf: Uint8Array, off: number, len: number): boolean {
    if (len < COMPACT) return false;
    const bits = buf[off];
    const cc = buf[off + 1];
    if (cc > 15 || len !== COMPACT + 4 * cc) return false;
    this.padding = (bits & 1) !== 0;
    this.extension = (bits & 2) !== 0;
    this.marker = (bits & 4) !== 0;
    this.cc = cc;
    this.pt = buf[off + 2] & 127;
    this.padLen = buf[off + 3];
    this.seq = readU16LE(buf, off + 4);
    this.ts = readU32LE(buf, off + 8);
    this.ssrc = readU32LE(buf, off + 12);
    this.extProfile = readU32LE(buf, off + 16) | 0;
    this.extLen = readU32LE(buf, off + 20) | 0;
    this.payloadLen = readU32LE(buf, off + 24);
    this.event = (bits & 8) !== 0 ? buf[off + 28] : -1;
    this.eventEnd = (bits & 16) !== 0;
    this.volume = buf[off + 29];
    this.duration = readU16LE(buf, off + 30);
    // csrc(i) reads 4i bytes after off + 12, as in a packet.
    this.buf = buf;
    this.off = off + COMPACT - 12;
    return true;
  }

  csrc(i: number): number {
    const b = this.buf;
    const o = this.off + 12 + 4 * i;
    return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  }

  writeJson(buf: Uint8Array, off: number, end: number): number {
    if (end - off < 400 + 11 * this.cc) return -1;
    // The three flags and the keys around them as one of eight ready prefixes (one copy instead of seven).
    off = writeLiteral(buf, off, FLAGS_PREFIX[(this.padding ? 4 : 0) | (this.extension ? 2 : 0) | (this.marker ? 1 : 0)]);
    off = writeUint(buf, off, this.pt);
    off = writeLiteral(buf, off, K_SEQ);
    off = writeUint(buf, off, this.seq);
    off = writeLiteral(buf, off, K_TS);
    off = writeUint(buf, off, this.ts);
    off = writeLiteral(buf, off, K_SSRC);
    off = writeUint(buf, off, this.ssrc);
    off = writeLiteral(buf, off, K_CSRC);
    for (let i = 0; i < this.cc; i++) {
      if (i > 0) buf[off++] = 44;
      off = writeUint(buf, off, this.csrc(i));
    }
    if (this.extProfile < 0 && this.extLen < 0) off = writeLiteral(buf, off, NO_EXT);
    else {
      off = writeLiteral(buf, off, K_EXTP);
      off = writeUintOrNull(buf, off, this.extProfile);
      off = writeLiteral(buf, off, K_EXTL);
      off = writeUintOrNull(buf, off, this.extLen);
    }
    off = writeLiteral(buf, off, K_PLEN);
    off = writeUint(buf, off, this.payloadLen);
    off = writeLiteral(buf, off, K_PAD);
    off = writeUint(buf, off, this.padLen);
    if (this.event < 0) off = writeLiteral(buf, off, NO_EVENT);
    else {
      off = writeLiteral(buf, off, K_EV);
      off = writeLiteral(buf, off, K_EV1);
      off = writeUint(buf, off, this.event);
      off = writeLiteral(buf, off, K_END);
      off = writeBytes(buf, off, this.eventEnd ? TRUE : FALSE);
      off = writeLiteral(buf, off, K_VOL);
      off = writeUint(buf, off, this.volume);
      off = writeLiteral(buf, off, K_DUR);
      off = writeUint(buf, off, this.duration);
      buf[off++] = 125;
      buf[off++] = 125;
    }
    return off;
  }

  private eventSize(): number {
    return 1 + varintSize(this.event) + (this.eventEnd ? 2 : 0) + 1 + varintSize(this.volume) + 1 + varintSize(this.duration);
  }

  private csrcSize(): number {
    let n = 0;
    for (let i = 0; i < this.cc; i++) n += varintSize(this.csrc(i));
    return n;
  }

  binarySize(): number {
    let n = 0;
    if (this.padding) n += 2;
    if (this.extension) n += 2;
    if (this.marker) n += 2;
    n += 1 + varintSize(this.pt) + 1 + varintSize(this.seq) + 1 + varintSize(this.ts) + 1 + varintSize(this.ssrc);
    if (this.cc > 0) {
      const c = this.csrcSize();
      n += 1 + varintSize(c) + c;
    }
    if (this.extProfile >= 0) n += 1 + varintSize(this.extProfile) + 1 + varintSize(this.extLen);
    n += 1 + varintSize(this.payloadLen) + 1 + varintSize(this.padLen);
    if (this.event >= 0) {
      const e = this.eventSize();
      n += 1 + varintSize(e) + e;
    }
    return n;
  }

  writeBinary(buf: Uint8Array, off: number, end: number): number {
    if (end - off < this.binarySize()) return -1;
    if (this.padding) ((buf[off++] = 0x08), (buf[off++] = 1)); // 1 padding
    if (this.extension) ((buf[off++] = 0x10), (buf[off++] = 1)); // 2 extension
    if (this.marker) ((buf[off++] = 0x18), (buf[off++] = 1)); // 3 marker
    buf[off++] = 0x20; // 4 pt (always written: 0 is PCMU)
    off = writeVarint(buf, off, this.pt);
    buf[off++] = 0x28; // 5 seq
    off = writeVarint(buf, off, this.seq);
    buf[off++] = 0x30; // 6 timestamp
    off = writeVarint(buf, off, this.ts);
    buf[off++] = 0x38; // 7 ssrc
    off = writeVarint(buf, off, this.ssrc);
    if (this.cc > 0) {
      buf[off++] = 0x42; // 8 csrc, packed
      off = writeVarint(buf, off, this.csrcSize());
      for (let i = 0; i < this.cc; i++) off = writeVarint(buf, off, this.csrc(i));
    }
    if (this.extProfile >= 0) {
      buf[off++] = 0x48; // 9 ext_profile
      off = writeVarint(buf, off, this.extProfile);
      buf[off++] = 0x50; // 10 ext_len
      off = writeVarint(buf, off, this.extLen);
    }
    buf[off++] = 0x58; // 11 payload_len
    off = writeVarint(buf, off, this.payloadLen);
    buf[off++] = 0x60; // 12 pad_len
    off = writeVarint(buf, off, this.padLen);
    if (this.event >= 0) {
      buf[off++] = 0x6a; // 13 event
      off = writeVarint(buf, off, this.eventSize());
      buf[off++] = 0x08;
      off = writeVarint(buf, off, this.event);
      if (this.eventEnd) ((buf[off++] = 0x10), (buf[off++] = 1));
      buf[off++] = 0x18;
      off = writeVarint(buf, off, this.volume);
      buf[off++] = 0x20;
      off = writeVarint(buf, off, this.duration);
    }
    return off;
  }
}

/** The sender's reader of rtp compact payloads (PluginDefinition.payloadReader). */
export class RtpPayloadReader implements PayloadReader {
  readonly protocol = 'rtp';
  private readonly payload = new RtpPayload();

  read(buf: Uint8Array, off: number, len: number): Payload | null {
    return this.payload.loadCompact(buf, off, len) ? this.payload : null;
  }
}
