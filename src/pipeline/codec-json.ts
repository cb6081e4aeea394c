// JSON record codec: one NDJSON line per record, the output contract of
// `otus replay` (docs/architecture.md, "Records"):
//
//   {"ts":ISO|null,"protocol":S,
//    "flow":{"src":S|null,"dst":S|null,"sport":N|null,"dport":N|null,"proto":N|null},
//    "network":{"ip_version":4|6|null,"src_mac":S|null,"dst_mac":S|null,"vlans":[N...],
//               "tunnel":{"type","vni","key","outer_src","outer_dst"}|null,"ttl":N|null,"len":N,"caplen":N},
//    "labels":{S:S...},"payload":<the parser's JSON>|null[,"raw":base64]}
//
// Written byte by byte into the caller's buffer: no strings, no allocation.

import { TUNNEL_NAMES, TunnelType } from '../decode/packet.js';
import {
  ascii,
  jsonStringBound,
  MAX_TS_SEC,
  writeBase64,
  writeBytes,
  writeIpv4,
  writeIpv6,
  writeIsoTimestamp,
  writeJsonString,
  writeJsonStringBytes,
  writeMac,
  writeNull,
  writeUint,
  writeUintOrNull,
} from './bytes.js';
import type { OutputRecord } from './record.js';

const K_TS = ascii('{"ts":');
const K_PROTOCOL = ascii(',"protocol":');
const K_FLOW_SRC = ascii(',"flow":{"src":');
const K_DST = ascii(',"dst":');
const K_SPORT = ascii(',"sport":');
const K_DPORT = ascii(',"dport":');
const K_PROTO = ascii(',"proto":');
const K_NET = ascii('},"network":{"ip_version":');
const K_SRC_MAC = ascii(',"src_mac":');
const K_DST_MAC = ascii(',"dst_mac":');
const K_VLANS = ascii(',"vlans":[');
const K_TUNNEL = ascii('],"tunnel":');
const K_TTYPE = ascii('{"type":');
const K_VNI = ascii(',"vni":');
const K_KEY = ascii(',"key":');
const K_OSRC = ascii(',"outer_src":');
const K_ODST = ascii(',"outer_dst":');
const K_TTL = ascii(',"ttl":');
const K_LEN = ascii(',"len":');
const K_CAPLEN = ascii(',"caplen":');
const K_LABELS = ascii('},"labels":{');
const K_PAYLOAD = ascii('},"payload":');
const K_RAW = ascii(',"raw":"');
const TUNNEL_TYPE_JSON = TUNNEL_NAMES.map((n) => ascii(n === null ? 'null' : `"${n}"`));

/** Room the fixed parts of a record can take (addresses, numbers, keys). */
const FIXED_BOUND = 1024;

function writeAddr(buf: Uint8Array, off: number, v: number, a: Uint8Array): number {
  if (v === 4) {
    buf[off++] = 34;
    off = writeIpv4(buf, off, a, 0);
    buf[off++] = 34;
    return off;
  }
  if (v === 6) {
    buf[off++] = 34;
    off = writeIpv6(buf, off, a, 0);
    buf[off++] = 34;
    return off;
  }
  return writeNull(buf, off);
}

/**
 * Encodes `r` as one JSON line (with the trailing newline) at buf[off..end).
 * Returns the offset after it, or -1 when it does not fit.
 */
export function encodeJson(r: OutputRecord, buf: Uint8Array, off: number, end: number): number {
  if (end - off < FIXED_BOUND + jsonStringBound(r.protocol.length)) return -1;
  off = writeBytes(buf, off, K_TS);
  if (r.hasTs && Math.abs(r.tsSec) < MAX_TS_SEC) {
    buf[off++] = 34;
    off = writeIsoTimestamp(buf, off, r.tsSec, r.tsNsec, r.tsDigits);
    buf[off++] = 34;
  } else off = writeNull(buf, off);
  off = writeBytes(buf, off, K_PROTOCOL);
  off = writeJsonString(buf, off, r.protocol);

  const v = r.ipVersion;
  off = writeBytes(buf, off, K_FLOW_SRC);
  off = writeAddr(buf, off, v, r.src);
  off = writeBytes(buf, off, K_DST);
  off = writeAddr(buf, off, v, r.dst);
  off = writeBytes(buf, off, K_SPORT);
  off = writeUintOrNull(buf, off, r.sport);
  off = writeBytes(buf, off, K_DPORT);
  off = writeUintOrNull(buf, off, r.dport);
  off = writeBytes(buf, off, K_PROTO);
  off = writeUintOrNull(buf, off, r.proto);

  off = writeBytes(buf, off, K_NET);
  off = writeUintOrNull(buf, off, v === 0 ? -1 : v);
  off = writeBytes(buf, off, K_SRC_MAC);
  if (r.hasSrcMac) {
    buf[off++] = 34;
    off = writeMac(buf, off, r.srcMac);
    buf[off++] = 34;
  } else off = writeNull(buf, off);
  off = writeBytes(buf, off, K_DST_MAC);
  if (r.hasDstMac) {
    buf[off++] = 34;
    off = writeMac(buf, off, r.dstMac);
    buf[off++] = 34;
  } else off = writeNull(buf, off);
  off = writeBytes(buf, off, K_VLANS);
  for (let i = 0; i < r.vlanCount; i++) {
    if (i > 0) buf[off++] = 44;
    off = writeUint(buf, off, r.vlans[i]);
  }
  off = writeBytes(buf, off, K_TUNNEL);
  const t = r.tunnelType;
  if (t === TunnelType.None) off = writeNull(buf, off);
  else {
    off = writeBytes(buf, off, K_TTYPE);
    off = writeBytes(buf, off, TUNNEL_TYPE_JSON[t]);
    const usesVni = t === TunnelType.Vxlan || t === TunnelType.Geneve;
    const usesKey = t === TunnelType.Gre || t === TunnelType.Erspan;
    off = writeBytes(buf, off, K_VNI);
    off = writeUintOrNull(buf, off, usesVni ? r.tunnelId : -1);
    off = writeBytes(buf, off, K_KEY);
    off = writeUintOrNull(buf, off, usesKey ? r.tunnelId : -1);
    off = writeBytes(buf, off, K_OSRC);
    off = writeAddr(buf, off, r.outerIpVersion, r.outerSrc);
    off = writeBytes(buf, off, K_ODST);
    off = writeAddr(buf, off, r.outerIpVersion, r.outerDst);
    buf[off++] = 125;
  }
  off = writeBytes(buf, off, K_TTL);
  off = writeUintOrNull(buf, off, r.ttl);
  off = writeBytes(buf, off, K_LEN);
  off = writeUint(buf, off, r.len);
  off = writeBytes(buf, off, K_CAPLEN);
  off = writeUint(buf, off, r.caplen);

  off = writeBytes(buf, off, K_LABELS);
  const l = r.labels;
  for (let i = 0; i < l.count; i++) {
    const k = l.keys[i];
    const val = l.values[i];
    const vlen = val === null ? l.byteLen[i] : val.length;
    if (end - off < FIXED_BOUND + jsonStringBound(k.length) + jsonStringBound(vlen)) return -1;
    if (i > 0) buf[off++] = 44;
    off = writeJsonString(buf, off, k);
    buf[off++] = 58;
    off = val === null ? writeJsonStringBytes(buf, off, l.arena, l.byteOff[i], vlen) : writeJsonString(buf, off, val);
  }
  off = writeBytes(buf, off, K_PAYLOAD);
  const p = r.payload;
  if (p === null) off = writeNull(buf, off);
  else {
    off = p.writeJson(buf, off, end - FIXED_BOUND);
    if (off < 0) return -1;
  }
  if (r.rawLen >= 0) {
    if (end - off < FIXED_BOUND + 4 * Math.ceil(r.rawLen / 3)) return -1;
    off = writeBytes(buf, off, K_RAW);
    off = writeBase64(buf, off, r.rawBuf, r.rawOff, r.rawLen);
    buf[off++] = 34;
  }
  buf[off++] = 125;
  buf[off++] = 10;
  return off;
}
