// The wire record: what a capture process puts in the send ring. Design
// §4.2.4 puts serialization in the sender; so the capture side writes the
// record's fields as they are (numbers as numbers, addresses as bytes, label
// values as bytes or integers, the payload in its parser's compact form)
// and the sender expands it into JSON or protobuf (codec-json.ts,
// codec-protobuf.ts, expand.ts). On the RTP fast path that is the
// difference between printing ~600 bytes of JSON per packet and copying
// ~150 bytes.
//
// Layout, little-endian; records start 4-byte aligned so the fixed header
// is fourteen 32-bit stores:
//
//    0  u8   version (1)
//    1  u8   flags: 1 ts, 2 src MAC, 4 dst MAC, 8 raw frame, 16 nanosecond ts
//    2  u8   ip version (0 none, 4, 6)
//    3  u8   protocol name length P
//    4  i16  L4 protocol (-1 none)
//    6  i16  TTL / hop limit (-1 none)
//    8  u32  ts seconds, low 32 bits
//   12  i32  ts seconds, high 32 bits
//   16  u32  ts nanoseconds
//   20  i32  source port (-1 none)
//   24  i32  destination port (-1 none)
//   28  u32  length on the wire
//   32  u32  captured length
//   36  u8   VLAN count V
//   37  u8   tunnel type (TunnelType)
//   38  u8   outer ip version
//   39  u8   label count N
//   40  u32  tunnel id (VNI or GRE key; 0xffffffff none)
//   44  6 bytes src MAC, 6 bytes dst MAC (zeros unless flagged)
//   56  src, dst addresses (4 or 16 bytes each, none without IP)
//       P bytes protocol name (UTF-8)
//       V × u16 VLAN ids
//       outer src, outer dst (4 or 16 each) when there is a tunnel
//       padding to 4 bytes, u32 length of the labels, then N labels, each
//                 4-byte aligned (labels.ts): u16 key id (label-keys.ts),
//                 u8 kind, u8 0, then kind 0: u32 length + UTF-8 bytes
//                 zero-padded to 4; kind 1: u32 number
//       u8 payload kind (PayloadKind); unless None: padding to 4 bytes,
//                 u32 length, the payload (so it starts 4-byte aligned)
//       when flagged: u32 raw length, u16 the frame's LINKTYPE_*, the frame's bytes

import { TunnelType } from '../decode/packet.js';
import type { FastFrame } from './fast-path.js';
import { LOCAL_KEYS, type KeyResolver, type KeyTracker } from './label-keys.js';
import { LabelKind, MAX_LABELS } from './labels.js';

export { LabelKind };
import type { OutputRecord, RecordFormat } from './record.js';
import { copyBytes, readI32LE, readU16LE, readU32LE, writeU16LE, writeU32LE, writeUtf8 } from '../util/bytes.js';

export const WIRE_VERSION = 2;
export const WIRE_HEADER = 56;
/** A wire record is at most this much bigger than the same record in JSON or protobuf (header, length fields). */
export const WIRE_SLACK = 4096;

export const enum WireFlag {
  Ts = 1,
  SrcMac = 2,
  DstMac = 4,
  Raw = 8,
  TsNanos = 16,
}

export const enum PayloadKind {
  None = 0,
  /** The payload's JSON, written by the capture process (parsers without a compact form). */
  Json = 1,
  /** The payload's protobuf message, written by the capture process. */
  Protobuf = 2,
  /** The parser's compact form, expanded in the sender by the plugin's PayloadReader. */
  Compact = 3,
}


function addrLen(v: number): number {
  return v === 4 ? 4 : v === 6 ? 16 : 0;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
let wordsOf: Uint8Array | null = null;
let words: Int32Array | null = null;

/** A 32-bit view of buf (one cached: the batch or scratch buffer), null when it cannot be word-aligned. */
export function wordView(buf: Uint8Array): Int32Array | null {
  if (buf !== wordsOf) {
    wordsOf = buf;
    words = LITTLE_ENDIAN && buf.byteOffset % 4 === 0 ? new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength >> 2) : null;
  }
  return words;
}

/** Timestamp flags: a timestamp at all, and nanosecond digits. */
function tsFlags(hasTs: boolean, tsDigits: number): number {
  return (hasTs ? WireFlag.Ts : 0) | (tsDigits === 9 ? WireFlag.TsNanos : 0);
}

/** The high 32 bits of a seconds count (0 for the years 1970 to 2106). */
function secondsHigh(sec: number): number {
  return sec >= 0 && sec <= 0xffffffff ? 0 : Math.floor(sec / 4294967296);
}

/** The fixed header (layout above) as fourteen word stores from W[k]; w0, w1 and w9 are its packed words. */
function writeHeader(
  W: Int32Array,
  k: number,
  w0: number,
  w1: number,
  sec: number,
  nsec: number,
  sport: number,
  dport: number,
  len: number,
  caplen: number,
  w9: number,
  tunnelId: number,
  mac0: number,
  mac1: number,
  mac2: number,
): void {
  const hi = secondsHigh(sec);
  W[k] = w0;
  W[k + 1] = w1;
  W[k + 2] = (sec - hi * 4294967296) | 0;
  W[k + 3] = hi;
  W[k + 4] = nsec;
  W[k + 5] = sport;
  W[k + 6] = dport;
  W[k + 7] = len;
  W[k + 8] = caplen;
  W[k + 9] = w9;
  W[k + 10] = tunnelId;
  W[k + 11] = mac0;
  W[k + 12] = mac1;
  W[k + 13] = mac2;
}

/**
 * Writes `r` as a wire record at buf[off..end). The payload goes in its
 * compact form when `compact` is set and the payload has one, otherwise
 * pre-encoded as `fallback` (the format the reporter wants). Key ids used
 * are noted in `keys` (the batch names them), unless they are read back in
 * this process (null). Returns the offset after the record, or -1 when it
 * does not fit.
 */
export function encodeWire(
  r: OutputRecord,
  buf: Uint8Array,
  off: number,
  end: number,
  compact: boolean,
  fallback: RecordFormat,
  keys: KeyTracker | null,
): number {
  const proto = r.protocol;
  const al = addrLen(r.ipVersion);
  const tunnel = r.tunnelType !== TunnelType.None;
  const ol = tunnel ? addrLen(r.outerIpVersion) : 0;
  const vc = r.vlanCount;
  if (end - off < WIRE_HEADER + 3 * proto.length + 2 * al + 12 + 2 * vc + 2 * ol + 5 + 4) return -1;
  const L = r.labels;
  let flags = tsFlags(r.hasTs, r.tsDigits);
  if (r.hasSrcMac) flags |= WireFlag.SrcMac;
  if (r.hasDstMac) flags |= WireFlag.DstMac;
  if (r.rawLen >= 0) flags |= WireFlag.Raw;
  const sec = r.tsSec;
  const hi = secondsHigh(sec);
  const lo = sec - hi * 4294967296;
  const w0 = WIRE_VERSION | (flags << 8) | (r.ipVersion << 16);
  const w1 = (r.proto & 0xffff) | (r.ttl << 16);
  const w9 = vc | (r.tunnelType << 8) | (r.outerIpVersion << 16) | (L.count << 24);
  const W = wordView(buf);
  if (W !== null && (off & 3) === 0) {
    writeHeader(W, off >> 2, w0, w1, sec, r.tsNsec, r.sport, r.dport, r.len, r.caplen, w9, r.tunnelId, r.macW0, r.macW1, r.macW2);
  } else {
    writeU32LE(buf, off, w0);
    writeU32LE(buf, off + 4, w1);
    writeU32LE(buf, off + 8, lo);
    writeU32LE(buf, off + 12, hi);
    writeU32LE(buf, off + 16, r.tsNsec);
    writeU32LE(buf, off + 20, r.sport);
    writeU32LE(buf, off + 24, r.dport);
    writeU32LE(buf, off + 28, r.len);
    writeU32LE(buf, off + 32, r.caplen);
    writeU32LE(buf, off + 36, w9);
    writeU32LE(buf, off + 40, r.tunnelId);
    writeU32LE(buf, off + 44, r.macW0);
    writeU32LE(buf, off + 48, r.macW1);
    writeU32LE(buf, off + 52, r.macW2);
  }
  let o = off + WIRE_HEADER;
  if (al === 4) {
    if (W !== null && (off & 3) === 0) {
      W[o >> 2] = r.src32[0];
      W[(o >> 2) + 1] = r.dst32[0];
      o += 8;
    } else {
      o = copyBytes(buf, o, r.src, 0, 4);
      o = copyBytes(buf, o, r.dst, 0, 4);
    }
  } else if (al === 16) {
    o = copyBytes(buf, o, r.src, 0, 16);
    o = copyBytes(buf, o, r.dst, 0, 16);
  }
  const po = o;
  for (let i = 0; i < proto.length; i++) {
    const c = proto.charCodeAt(i);
    if (c >= 0x80) {
      o = writeUtf8(buf, po, proto);
      break;
    }
    buf[o++] = c;
  }
  const pl = o - po;
  if (pl > 255) return -1;
  buf[off + 3] = pl;
  for (let i = 0; i < vc; i++, o += 2) writeU16LE(buf, o, r.vlans[i]);
  if (ol > 0) {
    o = copyBytes(buf, o, r.outerSrc, 0, ol);
    o = copyBytes(buf, o, r.outerDst, 0, ol);
  }

  // Labels: the entries Labels keeps in wire form, then those it holds by reference (addShared), at a 4-byte boundary, by words.
  const own = L.encUsed;
  const sw = L.sharedWords;
  const lb = own + (sw << 2);
  o = off + ((o - off + 3) & ~3);
  if (end - o < 4 + lb + 3 + 5 + 4) return -1;
  if (W !== null && (o & 3) === 0) {
    let k = o >> 2;
    W[k++] = lb;
    const E = L.enc32;
    const n = own >> 2;
    for (let j = 0; j < n; j++) W[k + j] = E[j];
    k += n;
    const S = L.shared;
    const sa = L.sharedAt;
    for (let j = 0; j < sw; j++) W[k + j] = S[sa + j];
  } else {
    writeU32LE(buf, o, lb);
    copyBytes(buf, o + 4, L.enc, 0, own);
    if (sw > 0) copyBytes(buf, o + 4 + own, new Uint8Array(L.shared.buffer, L.shared.byteOffset), L.sharedAt << 2, sw << 2);
  }
  o += 4 + lb;
  if (keys !== null) for (let i = 0; i < L.count; i++) keys.use(L.ids[i]);

  const p = r.payload;
  if (p === null) buf[o++] = PayloadKind.None;
  else {
    // kind, padding, u32 length at a 4-byte boundary, the payload (4-byte aligned: compact forms may store words).
    const lenAt = off + ((o - off + 4) & ~3);
    const at = lenAt + 4;
    if (at > end) return -1;
    let after: number;
    if (compact && p.writeCompact !== undefined) {
      buf[o] = PayloadKind.Compact;
      after = p.writeCompact(buf, at, end);
    } else if (fallback === 'json') {
      buf[o] = PayloadKind.Json;
      after = p.writeJson(buf, at, end);
    } else {
      buf[o] = PayloadKind.Protobuf;
      const n = p.binarySize();
      after = n <= end - at ? p.writeBinary(buf, at, at + n) : -1;
      if (after >= 0 && after !== at + n) return -1; // a payload that lied about its size
    }
    if (after < 0) return -1;
    if (W !== null && (lenAt & 3) === 0) W[lenAt >> 2] = after - at;
    else writeU32LE(buf, lenAt, after - at);
    o = after;
  }
  if (r.rawLen >= 0) {
    if (end - o < 6 + r.rawLen) return -1;
    writeU32LE(buf, o, r.rawLen);
    writeU16LE(buf, o + 4, r.rawLinkType);
    o = copyBytes(buf, o + 6, r.rawBuf, r.rawOff, r.rawLen);
  }
  return o;
}

/** A protocol name as the words of a wire record (ASCII, zero-padded to 4 bytes), for wireEnvelopeUdp4. */
export function protocolWords(name: string): Int32Array {
  const b = new Uint8Array((name.length + 3) & ~3);
  for (let i = 0; i < name.length; i++) b[i] = name.charCodeAt(i) & 0x7f;
  return new Int32Array(b.buffer);
}

/**
 * The fast path's envelope (fast-path.ts): what encodeWire writes for the
 * same frame after the decoder and fillEnvelope, read straight from the
 * frame (IPv4, UDP, at most one VLAN id). Writes from word k of W (the batch's words, little-endian);
 * `proto` is the protocol name (protocolWords, `protoLen` bytes). Returns
 * the word of the labels block's length: the caller writes the block,
 * then the payload (wireCompactPayload).
 */
export function wireEnvelopeUdp4(W: Int32Array, k: number, f: FastFrame, proto: Int32Array, protoLen: number, labelCount: number): number {
  const flags = tsFlags(f.hasTs, f.tsDigits) | WireFlag.SrcMac | WireFlag.DstMac;
  const vc = f.vlan >= 0 ? 1 : 0;
  const w0 = WIRE_VERSION | (flags << 8) | (4 << 16) | (protoLen << 24);
  writeHeader(W, k, w0, 17 | (f.ttl << 16), f.tsSec, f.tsNsec, f.sport, f.dport, f.len, f.caplen, vc | (labelCount << 24), -1, f.mac0, f.mac1, f.mac2);
  W[k + 14] = f.srcWord;
  W[k + 15] = f.dstWord;
  // The protocol name, then the VLAN id (u16), padded to a word.
  const j = k + 16;
  const words = (protoLen + 2 * vc + 3) >> 2;
  for (let i = 0; i < words; i++) W[j + i] = i < proto.length ? proto[i] : 0;
  if (vc !== 0) {
    W[j + (protoLen >> 2)] |= (f.vlan & 0xff) << (8 * (protoLen & 3));
    W[j + ((protoLen + 1) >> 2)] |= (f.vlan >>> 8) << (8 * ((protoLen + 1) & 3));
  }
  return j + words;
}

/** After a fast-path record's labels block (ending at word j): the payload's kind and length words; returns the word its compact form starts at. */
export function wireCompactPayload(W: Int32Array, j: number, bytes: number): number {
  W[j] = PayloadKind.Compact;
  W[j + 1] = bytes;
  return j + 2;
}

/**
 * A wire record read in place (the sender's side): load() checks every
 * length against the record's bounds once, then the codecs read fields and
 * offsets from here. One per consumer, reused.
 */
export class WireRecord {
  buf: Uint8Array = new Uint8Array(0);
  flags = 0;
  ipVersion = 0;
  proto = -1;
  ttl = -1;
  tsSec = 0;
  tsNsec = 0;
  sport = -1;
  dport = -1;
  len = 0;
  caplen = 0;
  vlanCount = 0;
  tunnelType: TunnelType = TunnelType.None;
  outerIpVersion = 0;
  tunnelId = -1;
  protocolOff = 0;
  protocolLen = 0;
  /** Offsets of the parts in buf; addresses are 4 or 16 bytes by ipVersion / outerIpVersion. */
  srcOff = 0;
  dstOff = 0;
  srcMacOff = -1;
  dstMacOff = -1;
  vlansOff = 0;
  outerSrcOff = -1;
  outerDstOff = -1;
  labelCount = 0;
  /** Where each label's key bytes are (the batch's names, or this process's). */
  readonly keyBuf: Uint8Array[] = new Array<Uint8Array>(MAX_LABELS).fill(new Uint8Array(0));
  readonly keyOff = new Int32Array(MAX_LABELS);
  readonly keyLen = new Int32Array(MAX_LABELS);
  /** LabelKind.Bytes: valOff/valLen; LabelKind.Uint: the number in valNum. */
  readonly valKind = new Uint8Array(MAX_LABELS);
  readonly valOff = new Int32Array(MAX_LABELS);
  readonly valLen = new Int32Array(MAX_LABELS);
  readonly valNum = new Float64Array(MAX_LABELS);
  payloadKind: PayloadKind = PayloadKind.None;
  payloadOff = 0;
  payloadLen = 0;
  rawOff = 0;
  rawLen = -1;
  /** LINKTYPE_* of the raw frame. */
  rawLinkType = 1;

  get hasTs(): boolean {
    return (this.flags & WireFlag.Ts) !== 0;
  }

  get tsDigits(): number {
    return (this.flags & WireFlag.TsNanos) !== 0 ? 9 : 6;
  }

  /** Reads the record at buf[off, off+len), key ids resolved by `keys`. False when it is not a well-formed wire record. */
  load(buf: Uint8Array, off: number, len: number, keys: KeyResolver): boolean {
    const end = off + len;
    if (len < WIRE_HEADER + 1 || buf[off] !== WIRE_VERSION) return false;
    this.buf = buf;
    const flags = (this.flags = buf[off + 1]);
    const v = (this.ipVersion = buf[off + 2]);
    const al = addrLen(v);
    if (al === 0 && v !== 0) return false;
    this.protocolLen = buf[off + 3];
    this.proto = (readU16LE(buf, off + 4) << 16) >> 16;
    this.ttl = (readU16LE(buf, off + 6) << 16) >> 16;
    this.tsSec = readI32LE(buf, off + 12) * 4294967296 + readU32LE(buf, off + 8);
    this.tsNsec = readU32LE(buf, off + 16);
    this.sport = readI32LE(buf, off + 20);
    this.dport = readI32LE(buf, off + 24);
    this.len = readU32LE(buf, off + 28);
    this.caplen = readU32LE(buf, off + 32);
    const vc = (this.vlanCount = buf[off + 36]);
    const tt = (this.tunnelType = buf[off + 37]);
    const ov = (this.outerIpVersion = buf[off + 38]);
    const n = (this.labelCount = buf[off + 39]);
    const tid = readU32LE(buf, off + 40);
    this.tunnelId = tid === 0xffffffff ? -1 : tid;
    if (n > MAX_LABELS || tt > TunnelType.IpIp) return false;
    const ol = tt === TunnelType.None ? 0 : addrLen(ov);
    this.srcMacOff = (flags & WireFlag.SrcMac) !== 0 ? off + 44 : -1;
    this.dstMacOff = (flags & WireFlag.DstMac) !== 0 ? off + 50 : -1;
    let o = off + WIRE_HEADER;
    this.srcOff = o;
    this.dstOff = o + al;
    o += 2 * al;
    this.protocolOff = o;
    o += this.protocolLen;
    this.vlansOff = o;
    o += 2 * vc;
    this.outerSrcOff = ol > 0 ? o : -1;
    this.outerDstOff = ol > 0 ? o + ol : -1;
    o += 2 * ol;
    o = off + ((o - off + 3) & ~3);
    if (o + 4 > end) return false;
    const lend = o + 4 + readU32LE(buf, o);
    if (lend > end) return false;
    o += 4;
    for (let i = 0; i < n; i++) {
      if (o + 8 > lend || !keys.find(readU16LE(buf, o))) return false;
      this.keyBuf[i] = keys.buf;
      this.keyOff[i] = keys.off;
      this.keyLen[i] = keys.len;
      const kind = (this.valKind[i] = buf[o + 2]);
      if (buf[o + 3] !== 0) return false;
      if (kind === LabelKind.Uint) {
        this.valNum[i] = readU32LE(buf, o + 4);
        o += 8;
      } else if (kind === LabelKind.Bytes) {
        const vl = readU32LE(buf, o + 4);
        if (vl > lend - o - 8) return false;
        this.valOff[i] = o + 8;
        this.valLen[i] = vl;
        o += 8 + ((vl + 3) & ~3);
        if (o > lend) return false;
      } else return false;
    }
    if (o !== lend) return false;
    if (o + 1 > end) return false;
    const pk = (this.payloadKind = buf[o]);
    if (pk === PayloadKind.None) o++;
    else {
      o = off + ((o - off + 4) & ~3);
      if (pk > PayloadKind.Compact || o + 4 > end) return false;
      this.payloadLen = readU32LE(buf, o);
      this.payloadOff = o + 4;
      o += 4 + this.payloadLen;
    }
    this.rawLen = -1;
    if ((flags & WireFlag.Raw) !== 0) {
      if (o + 6 > end) return false;
      this.rawLen = readU32LE(buf, o);
      this.rawLinkType = readU16LE(buf, o + 4);
      this.rawOff = o + 6;
      o += 6 + this.rawLen;
    }
    return o === end;
  }

  /** Does the protocol name equal these ASCII bytes? */
  protocolIs(name: Uint8Array): boolean {
    if (name.length !== this.protocolLen) return false;
    const b = this.buf;
    const o = this.protocolOff;
    for (let i = 0; i < name.length; i++) if (b[o + i] !== name[i]) return false;
    return true;
  }
}

let scratch = new Uint8Array(64 * 1024);
const inProcess = new WireRecord();

/**
 * `r` as a wire record read back in this process (the in-process codecs:
 * one JSON and one protobuf writer for both paths), its payload pre-encoded
 * as `format`; `room` bounds its size. Null when it does not fit. The
 * record is valid until the next call.
 */
export function wireInProcess(r: OutputRecord, room: number, format: RecordFormat): WireRecord | null {
  if (scratch.length < room) scratch = new Uint8Array(room); // grows to the largest record size asked for, once
  const n = encodeWire(r, scratch, 0, room, false, format, null);
  return n >= 0 && inProcess.load(scratch, 0, n, LOCAL_KEYS) ? inProcess : null;
}
