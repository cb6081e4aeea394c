// JSON record codec: one NDJSON line per record, the output contract of
// `otus replay` (docs/architecture.md, "Records"):
//
//   {"ts":ISO|null,"protocol":S,
//    "flow":{"src":S|null,"dst":S|null,"sport":N|null,"dport":N|null,"proto":N|null},
//    "network":{"ip_version":4|6|null,"src_mac":S|null,"dst_mac":S|null,"vlans":[N...],
//               "tunnel":{"type","vni","key","outer_src","outer_dst"}|null,"ttl":N|null,"len":N,"caplen":N},
//    "labels":{S:S...},"payload":<the parser's JSON>|null[,"raw":base64]}
//
// Written from a wire record (wire.ts) byte by byte into the caller's
// buffer: no strings, no allocation. The sender expands ring records this
// way; encodeJson does the same for an in-process OutputRecord.

import { TUNNEL_NAMES, TunnelType } from '../decode/packet.js';
import {
  ascii,
  copyBytes,
  Literal,
  MAX_TS_SEC,
  writeBase64,
  writeBytes,
  writeIpv4,
  writeIpv6,
  writeIsoTimestamp,
  writeJsonStringBytes,
  writeLiteral,
  writeMac,
  writeNull,
  writeUint,
  writeUintOrNull,
} from '../util/bytes.js';
import type { OutputRecord, Payload } from './record.js';
import { LabelKind, PayloadKind, WIRE_SLACK, wireInProcess, type WireRecord } from './wire.js';

const K_TS = new Literal('{"ts":');
const K_PROTOCOL = new Literal(',"protocol":');
const K_FLOW_SRC = new Literal(',"flow":{"src":');
const K_DST = new Literal(',"dst":');
const K_SPORT = new Literal(',"sport":');
const K_DPORT = new Literal(',"dport":');
const K_PROTO = new Literal(',"proto":');
const K_NET = new Literal('},"network":{"ip_version":');
const K_SRC_MAC = new Literal(',"src_mac":');
const K_DST_MAC = new Literal(',"dst_mac":');
const K_VLANS = new Literal(',"vlans":[');
const K_TUNNEL = new Literal('],"tunnel":');
const K_TTYPE = new Literal('{"type":');
const K_VNI = new Literal(',"vni":');
const K_KEY = new Literal(',"key":');
const K_OSRC = new Literal(',"outer_src":');
const K_ODST = new Literal(',"outer_dst":');
const K_TTL = new Literal(',"ttl":');
/** The common case in one copy: no VLAN tags, no tunnel, up to the TTL's value. */
const NO_VLANS_NO_TUNNEL_TTL = new Literal(',"vlans":[],"tunnel":null,"ttl":');
const K_LEN = new Literal(',"len":');
const K_CAPLEN = new Literal(',"caplen":');
const K_LABELS = new Literal('},"labels":{');
const K_PAYLOAD = new Literal('},"payload":');
const K_RAW = new Literal(',"raw":"');
const TUNNEL_TYPE_JSON = TUNNEL_NAMES.map((n) => ascii(n === null ? 'null' : `"${n}"`));

/** Room the fixed parts of a record can take (addresses, numbers, keys). */
const FIXED_BOUND = 1024;

function writeAddr(buf: Uint8Array, off: number, v: number, a: Uint8Array, ao: number): number {
  if (v === 4 && ao >= 0) {
    buf[off++] = 34;
    off = writeIpv4(buf, off, a, ao);
    buf[off++] = 34;
    return off;
  }
  if (v === 6 && ao >= 0) {
    buf[off++] = 34;
    off = writeIpv6(buf, off, a, ao);
    buf[off++] = 34;
    return off;
  }
  return writeNull(buf, off);
}

/** The `tunnel` object of a record that has one. */
function writeTunnel(w: WireRecord, buf: Uint8Array, off: number): number {
  const t = w.tunnelType;
  const b = w.buf;
  off = writeLiteral(buf, off, K_TTYPE);
  off = writeBytes(buf, off, TUNNEL_TYPE_JSON[t]);
  const usesVni = t === TunnelType.Vxlan || t === TunnelType.Geneve;
  const usesKey = t === TunnelType.Gre || t === TunnelType.Erspan;
  off = writeLiteral(buf, off, K_VNI);
  off = writeUintOrNull(buf, off, usesVni ? w.tunnelId : -1);
  off = writeLiteral(buf, off, K_KEY);
  off = writeUintOrNull(buf, off, usesKey ? w.tunnelId : -1);
  off = writeLiteral(buf, off, K_OSRC);
  off = writeAddr(buf, off, w.outerIpVersion, b, w.outerSrcOff);
  off = writeLiteral(buf, off, K_ODST);
  off = writeAddr(buf, off, w.outerIpVersion, b, w.outerDstOff);
  buf[off++] = 125;
  return off;
}

/**
 * Writes the wire record `w` as one JSON line (with the trailing newline) at
 * buf[off..end). `compact` is the payload read from a PayloadKind.Compact
 * payload (null otherwise, or when it could not be read: then `null`).
 * Returns the offset after it, or -1 when it does not fit.
 */
/**
 * A wire record's labels as the members of a JSON object (`"k":"v",...`,
 * numbers as decimal strings), from `b`, the record's buffer; -1 when they do
 * not fit before `end - reserve`. The record's `labels` and the kafka
 * reporter's packed header (src/sender-proc/kafka.ts) both write them here.
 */
export function writeJsonLabels(w: WireRecord, b: Uint8Array, buf: Uint8Array, off: number, end: number, reserve: number): number {
  for (let i = 0; i < w.labelCount; i++) {
    const kl = w.keyLen[i];
    const isNum = w.valKind[i] === LabelKind.Uint;
    if (end - off < reserve + 6 * kl + (isNum ? 12 : 6 * w.valLen[i])) return -1;
    if (i > 0) buf[off++] = 44;
    off = writeJsonStringBytes(buf, off, w.keyBuf[i], w.keyOff[i], kl);
    buf[off++] = 58;
    if (isNum) {
      buf[off++] = 34;
      off = writeUint(buf, off, w.valNum[i]);
      buf[off++] = 34;
    } else off = writeJsonStringBytes(buf, off, b, w.valOff[i], w.valLen[i]);
  }
  return off;
}

export function writeJsonRecord(w: WireRecord, compact: Payload | null, buf: Uint8Array, off: number, end: number): number {
  const b = w.buf;
  if (end - off < FIXED_BOUND + 6 * w.protocolLen) return -1;
  off = writeLiteral(buf, off, K_TS);
  if (w.hasTs && Math.abs(w.tsSec) < MAX_TS_SEC) {
    buf[off++] = 34;
    off = writeIsoTimestamp(buf, off, w.tsSec, w.tsNsec, w.tsDigits);
    buf[off++] = 34;
  } else off = writeNull(buf, off);
  off = writeLiteral(buf, off, K_PROTOCOL);
  off = writeJsonStringBytes(buf, off, b, w.protocolOff, w.protocolLen);

  const v = w.ipVersion;
  off = writeLiteral(buf, off, K_FLOW_SRC);
  off = writeAddr(buf, off, v, b, w.srcOff);
  off = writeLiteral(buf, off, K_DST);
  off = writeAddr(buf, off, v, b, w.dstOff);
  off = writeLiteral(buf, off, K_SPORT);
  off = writeUintOrNull(buf, off, w.sport);
  off = writeLiteral(buf, off, K_DPORT);
  off = writeUintOrNull(buf, off, w.dport);
  off = writeLiteral(buf, off, K_PROTO);
  off = writeUintOrNull(buf, off, w.proto);

  off = writeLiteral(buf, off, K_NET);
  off = writeUintOrNull(buf, off, v === 0 ? -1 : v);
  off = writeLiteral(buf, off, K_SRC_MAC);
  if (w.srcMacOff >= 0) {
    buf[off++] = 34;
    off = writeMac(buf, off, b, w.srcMacOff);
    buf[off++] = 34;
  } else off = writeNull(buf, off);
  off = writeLiteral(buf, off, K_DST_MAC);
  if (w.dstMacOff >= 0) {
    buf[off++] = 34;
    off = writeMac(buf, off, b, w.dstMacOff);
    buf[off++] = 34;
  } else off = writeNull(buf, off);
  const t = w.tunnelType;
  if (w.vlanCount === 0 && t === TunnelType.None) off = writeLiteral(buf, off, NO_VLANS_NO_TUNNEL_TTL);
  else {
    off = writeLiteral(buf, off, K_VLANS);
    for (let i = 0, o = w.vlansOff; i < w.vlanCount; i++, o += 2) {
      if (i > 0) buf[off++] = 44;
      off = writeUint(buf, off, b[o] | (b[o + 1] << 8));
    }
    off = writeLiteral(buf, off, K_TUNNEL);
    off = t === TunnelType.None ? writeNull(buf, off) : writeTunnel(w, buf, off);
    off = writeLiteral(buf, off, K_TTL);
  }
  off = writeUintOrNull(buf, off, w.ttl);
  off = writeLiteral(buf, off, K_LEN);
  off = writeUint(buf, off, w.len);
  off = writeLiteral(buf, off, K_CAPLEN);
  off = writeUint(buf, off, w.caplen);

  off = writeLiteral(buf, off, K_LABELS);
  off = writeJsonLabels(w, b, buf, off, end, FIXED_BOUND);
  if (off < 0) return -1;
  off = writeLiteral(buf, off, K_PAYLOAD);
  const pk = w.payloadKind;
  if (pk === PayloadKind.Json) {
    if (end - off < FIXED_BOUND + w.payloadLen) return -1;
    off = copyBytes(buf, off, b, w.payloadOff, w.payloadLen);
  } else if (pk === PayloadKind.Compact && compact !== null) {
    off = compact.writeJson(buf, off, end - FIXED_BOUND);
    if (off < 0) return -1;
  } else off = writeNull(buf, off);
  if (w.rawLen >= 0) {
    if (end - off < FIXED_BOUND + 4 * Math.ceil(w.rawLen / 3)) return -1;
    off = writeLiteral(buf, off, K_RAW);
    off = writeBase64(buf, off, b, w.rawOff, w.rawLen);
    buf[off++] = 34;
  }
  buf[off++] = 125;
  buf[off++] = 10;
  return off;
}

/**
 * Encodes an in-process record `r` as one JSON line at buf[off..end) (the
 * payload through its writeJson). Returns the offset after it, or -1 when it
 * does not fit.
 */
export function encodeJson(r: OutputRecord, buf: Uint8Array, off: number, end: number): number {
  const w = wireInProcess(r, end - off + WIRE_SLACK, 'json');
  return w === null ? -1 : writeJsonRecord(w, null, buf, off, end);
}
