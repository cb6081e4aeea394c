// Protobuf record codec: the wire form of otus.v1.Record (proto/otus.proto),
// written by hand from a wire record (wire.ts) straight into the caller's
// buffer. Sizes of nested messages are computed first (they are small
// sums), then everything is written in one pass; nothing is allocated. Tested against protobufjs
// decoding the .proto (test/pipeline/codec.test.ts).

import { TUNNEL_NAMES, TunnelType } from '../decode/packet.js';
import { copyBytes, decimalLength, writeUint } from '../util/bytes.js';
import type { OutputRecord, Payload } from './record.js';
import { LabelKind, PayloadKind, WIRE_SLACK, wireInProcess, type WireRecord } from './wire.js';

// Wire types
const VARINT = 0;
const LEN = 2;

export function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Non-negative integer < 2^53. */
export function writeVarint(buf: Uint8Array, off: number, v: number): number {
  while (v >= 128) {
    buf[off++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  buf[off++] = v;
  return off;
}

/** int64 (two's complement, 10 bytes when negative). */
function int64Size(v: number): number {
  return v < 0 ? 10 : varintSize(v);
}

function writeInt64(buf: Uint8Array, off: number, v: number): number {
  if (v >= 0) return writeVarint(buf, off, v);
  let u = BigInt.asUintN(64, BigInt(v)); // negative timestamps only: rare, may allocate
  for (let i = 0; i < 9; i++) {
    buf[off++] = Number(u & 127n) | 128;
    u >>= 7n;
  }
  buf[off++] = Number(u);
  return off;
}

function tag(buf: Uint8Array, off: number, field: number, wt: number): number {
  buf[off] = (field << 3) | wt; // every field number here is < 16: one byte
  return off + 1;
}

function addrLen(v: number): number {
  return v === 4 ? 4 : v === 6 ? 16 : 0;
}

function bytesField(n: number): number {
  return n === 0 ? 0 : 1 + varintSize(n) + n;
}

function optUint(v: number): number {
  return v < 0 ? 0 : 1 + varintSize(v);
}

const TUNNEL_TYPE_BYTES = TUNNEL_NAMES.map((n) => new TextEncoder().encode(n ?? ''));

function flowSize(w: WireRecord): number {
  const a = addrLen(w.ipVersion);
  return 2 * bytesField(a) + optUint(w.sport) + optUint(w.dport) + optUint(w.proto);
}

function tunnelVni(w: WireRecord): number {
  return w.tunnelType === TunnelType.Vxlan || w.tunnelType === TunnelType.Geneve ? w.tunnelId : -1;
}

function tunnelKey(w: WireRecord): number {
  return w.tunnelType === TunnelType.Gre || w.tunnelType === TunnelType.Erspan ? w.tunnelId : -1;
}

function tunnelSize(w: WireRecord): number {
  const o = addrLen(w.outerIpVersion);
  return bytesField(TUNNEL_TYPE_BYTES[w.tunnelType].length) + optUint(tunnelVni(w)) + optUint(tunnelKey(w)) + 2 * bytesField(o);
}

function vlan(w: WireRecord, i: number): number {
  const o = w.vlansOff + 2 * i;
  return w.buf[o] | (w.buf[o + 1] << 8);
}

function vlansSize(w: WireRecord): number {
  let n = 0;
  for (let i = 0; i < w.vlanCount; i++) n += varintSize(vlan(w, i));
  return n;
}

function networkSize(w: WireRecord): number {
  let n = w.ipVersion === 0 ? 0 : 2;
  if (w.srcMacOff >= 0) n += 8;
  if (w.dstMacOff >= 0) n += 8;
  if (w.vlanCount > 0) n += bytesField(vlansSize(w));
  if (w.tunnelType !== TunnelType.None) {
    const t = tunnelSize(w);
    n += 1 + varintSize(t) + t;
  }
  n += optUint(w.ttl);
  if (w.len !== 0) n += 1 + varintSize(w.len);
  if (w.caplen !== 0) n += 1 + varintSize(w.caplen);
  return n;
}

/** Label i's value length in bytes (numbers print in decimal). */
function labelValueLen(w: WireRecord, i: number): number {
  return w.valKind[i] === LabelKind.Uint ? decimalLength(w.valNum[i]) : w.valLen[i];
}

function labelEntrySize(kl: number, vl: number): number {
  return 1 + varintSize(kl) + kl + 1 + varintSize(vl) + vl;
}

/** The payload's protobuf size: pre-encoded bytes, the compact payload's binarySize, or nothing. */
function payloadSize(w: WireRecord, compact: Payload | null): number {
  if (w.payloadKind === PayloadKind.Protobuf) return w.payloadLen;
  if (w.payloadKind === PayloadKind.Compact && compact !== null) return compact.binarySize();
  return 0;
}

/** Exact encoded size of the wire record `w` as otus.v1.Record. */
export function protobufRecordSize(w: WireRecord, compact: Payload | null): number {
  let n = 0;
  if (w.tsSec !== 0) n += 1 + int64Size(w.tsSec);
  if (w.tsNsec !== 0) n += 1 + varintSize(w.tsNsec);
  if (w.hasTs) n += 2;
  n += bytesField(w.protocolLen);
  const f = flowSize(w);
  n += 1 + varintSize(f) + f;
  const nw = networkSize(w);
  n += 1 + varintSize(nw) + nw;
  for (let i = 0; i < w.labelCount; i++) {
    const e = labelEntrySize(w.keyLen[i], labelValueLen(w, i));
    n += 1 + varintSize(e) + e;
  }
  n += bytesField(payloadSize(w, compact));
  if (w.rawLen >= 0) n += bytesField(w.rawLen);
  return n;
}

function writeBytesField(buf: Uint8Array, off: number, field: number, src: Uint8Array, so: number, len: number): number {
  if (len === 0) return off;
  off = tag(buf, off, field, LEN);
  off = writeVarint(buf, off, len);
  return copyBytes(buf, off, src, so, len);
}

function writeOptUint(buf: Uint8Array, off: number, field: number, v: number): number {
  if (v < 0) return off;
  off = tag(buf, off, field, VARINT);
  return writeVarint(buf, off, v);
}

/**
 * Writes the wire record `w` as one otus.v1.Record at buf[off..end), without
 * a length prefix (reporters frame records). `compact` as for
 * writeJsonRecord. Returns the offset after it, or -1 when it does not fit.
 */
export function writeProtobufRecord(w: WireRecord, compact: Payload | null, buf: Uint8Array, off: number, end: number): number {
  if (end - off < protobufRecordSize(w, compact)) return -1;
  const b = w.buf;
  if (w.tsSec !== 0) {
    off = tag(buf, off, 1, VARINT);
    off = writeInt64(buf, off, w.tsSec);
  }
  if (w.tsNsec !== 0) {
    off = tag(buf, off, 2, VARINT);
    off = writeVarint(buf, off, w.tsNsec);
  }
  if (w.hasTs) {
    off = tag(buf, off, 3, VARINT);
    buf[off++] = 1;
  }
  off = writeBytesField(buf, off, 4, b, w.protocolOff, w.protocolLen);

  // Flow
  const al = addrLen(w.ipVersion);
  off = tag(buf, off, 5, LEN);
  off = writeVarint(buf, off, flowSize(w));
  off = writeBytesField(buf, off, 1, b, w.srcOff, al);
  off = writeBytesField(buf, off, 2, b, w.dstOff, al);
  off = writeOptUint(buf, off, 3, w.sport);
  off = writeOptUint(buf, off, 4, w.dport);
  off = writeOptUint(buf, off, 5, w.proto);

  // Network
  off = tag(buf, off, 6, LEN);
  off = writeVarint(buf, off, networkSize(w));
  if (w.ipVersion !== 0) {
    off = tag(buf, off, 1, VARINT);
    buf[off++] = w.ipVersion;
  }
  if (w.srcMacOff >= 0) off = writeBytesField(buf, off, 2, b, w.srcMacOff, 6);
  if (w.dstMacOff >= 0) off = writeBytesField(buf, off, 3, b, w.dstMacOff, 6);
  if (w.vlanCount > 0) {
    off = tag(buf, off, 4, LEN);
    off = writeVarint(buf, off, vlansSize(w));
    for (let i = 0; i < w.vlanCount; i++) off = writeVarint(buf, off, vlan(w, i));
  }
  if (w.tunnelType !== TunnelType.None) {
    off = tag(buf, off, 5, LEN);
    off = writeVarint(buf, off, tunnelSize(w));
    const name = TUNNEL_TYPE_BYTES[w.tunnelType];
    off = writeBytesField(buf, off, 1, name, 0, name.length);
    off = writeOptUint(buf, off, 2, tunnelVni(w));
    off = writeOptUint(buf, off, 3, tunnelKey(w));
    const ol = w.outerSrcOff >= 0 ? addrLen(w.outerIpVersion) : 0;
    off = writeBytesField(buf, off, 4, b, w.outerSrcOff, ol);
    off = writeBytesField(buf, off, 5, b, w.outerDstOff, ol);
  }
  off = writeOptUint(buf, off, 6, w.ttl);
  if (w.len !== 0) off = writeOptUint(buf, off, 7, w.len);
  if (w.caplen !== 0) off = writeOptUint(buf, off, 8, w.caplen);

  // Labels: map entries { 1: key, 2: value }
  for (let i = 0; i < w.labelCount; i++) {
    const kl = w.keyLen[i];
    const vl = labelValueLen(w, i);
    off = tag(buf, off, 7, LEN);
    off = writeVarint(buf, off, labelEntrySize(kl, vl));
    off = tag(buf, off, 1, LEN);
    off = writeVarint(buf, off, kl);
    off = copyBytes(buf, off, w.keyBuf[i], w.keyOff[i], kl);
    off = tag(buf, off, 2, LEN);
    off = writeVarint(buf, off, vl);
    off = w.valKind[i] === LabelKind.Uint ? writeUint(buf, off, w.valNum[i]) : copyBytes(buf, off, b, w.valOff[i], vl);
  }

  const ps = payloadSize(w, compact);
  if (ps > 0) {
    off = tag(buf, off, 8, LEN);
    off = writeVarint(buf, off, ps);
    if (w.payloadKind === PayloadKind.Protobuf) off = copyBytes(buf, off, b, w.payloadOff, ps);
    else {
      const after = compact!.writeBinary(buf, off, off + ps);
      if (after !== off + ps) return -1; // a payload that lied about its size
      off = after;
    }
  }
  if (w.rawLen > 0) off = writeBytesField(buf, off, 9, b, w.rawOff, w.rawLen);
  return off;
}

/** Exact encoded size of an in-process record (tests). */
export function protobufSize(r: OutputRecord): number {
  const w = wireInProcess(r, 1 << 20, 'protobuf');
  return w === null ? -1 : protobufRecordSize(w, null);
}

/**
 * Encodes an in-process record `r` as one otus.v1.Record at buf[off..end).
 * Returns the offset after it, or -1 when it does not fit.
 */
export function encodeProtobuf(r: OutputRecord, buf: Uint8Array, off: number, end: number): number {
  const w = wireInProcess(r, end - off + WIRE_SLACK, 'protobuf');
  return w === null ? -1 : writeProtobufRecord(w, null, buf, off, end);
}
