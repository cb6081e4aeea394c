// Protobuf record codec: the wire form of otus.v1.Record (proto/otus.proto),
// written by hand straight into the caller's buffer. Sizes of nested
// messages are computed first (they are small sums), then everything is
// written in one pass; nothing is allocated. Tested against protobufjs
// decoding the .proto (test/pipeline/codec.test.ts).

import { TUNNEL_NAMES, TunnelType } from '../decode/packet.js';
import { copyBytes, utf8Length, writeUtf8 } from './bytes.js';
import type { OutputRecord } from './record.js';

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

const TUNNEL_TYPE_LEN = TUNNEL_NAMES.map((n) => (n === null ? 0 : n.length));

function flowSize(r: OutputRecord): number {
  const a = addrLen(r.ipVersion);
  return 2 * bytesField(a) + optUint(r.sport) + optUint(r.dport) + optUint(r.proto);
}

function tunnelVni(r: OutputRecord): number {
  return r.tunnelType === TunnelType.Vxlan || r.tunnelType === TunnelType.Geneve ? r.tunnelId : -1;
}

function tunnelKey(r: OutputRecord): number {
  return r.tunnelType === TunnelType.Gre || r.tunnelType === TunnelType.Erspan ? r.tunnelId : -1;
}

function tunnelSize(r: OutputRecord): number {
  const o = addrLen(r.outerIpVersion);
  return bytesField(TUNNEL_TYPE_LEN[r.tunnelType]) + optUint(tunnelVni(r)) + optUint(tunnelKey(r)) + 2 * bytesField(o);
}

function vlansSize(r: OutputRecord): number {
  let n = 0;
  for (let i = 0; i < r.vlanCount; i++) n += varintSize(r.vlans[i]);
  return n;
}

function networkSize(r: OutputRecord): number {
  let n = r.ipVersion === 0 ? 0 : 2;
  if (r.hasSrcMac) n += 8;
  if (r.hasDstMac) n += 8;
  if (r.vlanCount > 0) n += bytesField(vlansSize(r));
  if (r.tunnelType !== TunnelType.None) {
    const t = tunnelSize(r);
    n += 1 + varintSize(t) + t;
  }
  n += optUint(r.ttl);
  if (r.len !== 0) n += 1 + varintSize(r.len);
  if (r.caplen !== 0) n += 1 + varintSize(r.caplen);
  return n;
}

function labelValueLen(r: OutputRecord, i: number): number {
  const v = r.labels.values[i];
  return v === null ? r.labels.byteLen[i] : utf8Length(v);
}

function labelEntrySize(kl: number, vl: number): number {
  return 1 + varintSize(kl) + kl + 1 + varintSize(vl) + vl;
}

/** Exact encoded size of the record. */
export function protobufSize(r: OutputRecord): number {
  let n = 0;
  if (r.tsSec !== 0) n += 1 + int64Size(r.tsSec);
  if (r.tsNsec !== 0) n += 1 + varintSize(r.tsNsec);
  if (r.hasTs) n += 2;
  n += bytesField(utf8Length(r.protocol));
  const f = flowSize(r);
  n += 1 + varintSize(f) + f;
  const nw = networkSize(r);
  n += 1 + varintSize(nw) + nw;
  const l = r.labels;
  for (let i = 0; i < l.count; i++) {
    const e = labelEntrySize(utf8Length(l.keys[i]), labelValueLen(r, i));
    n += 1 + varintSize(e) + e;
  }
  if (r.payload !== null) n += bytesField(r.payload.binarySize());
  if (r.rawLen >= 0) n += bytesField(r.rawLen);
  return n;
}

function writeAddr(buf: Uint8Array, off: number, field: number, a: Uint8Array, len: number): number {
  if (len === 0) return off;
  off = tag(buf, off, field, LEN);
  buf[off++] = len;
  return copyBytes(buf, off, a, 0, len);
}

function writeOptUint(buf: Uint8Array, off: number, field: number, v: number): number {
  if (v < 0) return off;
  off = tag(buf, off, field, VARINT);
  return writeVarint(buf, off, v);
}

function writeString(buf: Uint8Array, off: number, field: number, s: string, byteLen: number): number {
  off = tag(buf, off, field, LEN);
  off = writeVarint(buf, off, byteLen);
  return writeUtf8(buf, off, s);
}

/**
 * Encodes `r` as one otus.v1.Record at buf[off..end), without a length
 * prefix (the ring frames records). Returns the offset after it, or -1 when
 * it does not fit.
 */
export function encodeProtobuf(r: OutputRecord, buf: Uint8Array, off: number, end: number): number {
  if (end - off < protobufSize(r)) return -1;
  if (r.tsSec !== 0) {
    off = tag(buf, off, 1, VARINT);
    off = writeInt64(buf, off, r.tsSec);
  }
  if (r.tsNsec !== 0) {
    off = tag(buf, off, 2, VARINT);
    off = writeVarint(buf, off, r.tsNsec);
  }
  if (r.hasTs) {
    off = tag(buf, off, 3, VARINT);
    buf[off++] = 1;
  }
  const pl = utf8Length(r.protocol);
  if (pl > 0) off = writeString(buf, off, 4, r.protocol, pl);

  // Flow
  const al = addrLen(r.ipVersion);
  off = tag(buf, off, 5, LEN);
  off = writeVarint(buf, off, flowSize(r));
  off = writeAddr(buf, off, 1, r.src, al);
  off = writeAddr(buf, off, 2, r.dst, al);
  off = writeOptUint(buf, off, 3, r.sport);
  off = writeOptUint(buf, off, 4, r.dport);
  off = writeOptUint(buf, off, 5, r.proto);

  // Network
  off = tag(buf, off, 6, LEN);
  off = writeVarint(buf, off, networkSize(r));
  if (r.ipVersion !== 0) {
    off = tag(buf, off, 1, VARINT);
    buf[off++] = r.ipVersion;
  }
  if (r.hasSrcMac) off = writeAddr(buf, off, 2, r.srcMac, 6);
  if (r.hasDstMac) off = writeAddr(buf, off, 3, r.dstMac, 6);
  if (r.vlanCount > 0) {
    off = tag(buf, off, 4, LEN);
    off = writeVarint(buf, off, vlansSize(r));
    for (let i = 0; i < r.vlanCount; i++) off = writeVarint(buf, off, r.vlans[i]);
  }
  if (r.tunnelType !== TunnelType.None) {
    off = tag(buf, off, 5, LEN);
    off = writeVarint(buf, off, tunnelSize(r));
    const name = TUNNEL_NAMES[r.tunnelType] as string;
    off = writeString(buf, off, 1, name, name.length);
    off = writeOptUint(buf, off, 2, tunnelVni(r));
    off = writeOptUint(buf, off, 3, tunnelKey(r));
    const ol = addrLen(r.outerIpVersion);
    off = writeAddr(buf, off, 4, r.outerSrc, ol);
    off = writeAddr(buf, off, 5, r.outerDst, ol);
  }
  off = writeOptUint(buf, off, 6, r.ttl);
  if (r.len !== 0) off = writeOptUint(buf, off, 7, r.len);
  if (r.caplen !== 0) off = writeOptUint(buf, off, 8, r.caplen);

  // Labels: map entries { 1: key, 2: value }
  const l = r.labels;
  for (let i = 0; i < l.count; i++) {
    const k = l.keys[i];
    const kl = utf8Length(k);
    const vl = labelValueLen(r, i);
    off = tag(buf, off, 7, LEN);
    off = writeVarint(buf, off, labelEntrySize(kl, vl));
    off = writeString(buf, off, 1, k, kl);
    off = tag(buf, off, 2, LEN);
    off = writeVarint(buf, off, vl);
    const v = l.values[i];
    off = v === null ? copyBytes(buf, off, l.arena, l.byteOff[i], vl) : writeUtf8(buf, off, v);
  }

  const p = r.payload;
  if (p !== null) {
    const ps = p.binarySize();
    if (ps > 0) {
      off = tag(buf, off, 8, LEN);
      off = writeVarint(buf, off, ps);
      const after = p.writeBinary(buf, off, off + ps);
      if (after !== off + ps) return -1; // a payload that lied about its size
      off = after;
    }
  }
  if (r.rawLen > 0) {
    off = tag(buf, off, 9, LEN);
    off = writeVarint(buf, off, r.rawLen);
    off = copyBytes(buf, off, r.rawBuf, r.rawOff, r.rawLen);
  }
  return off;
}
