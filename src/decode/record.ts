// The `otus decode` NDJSON record of one frame (docs/decode-output.md).
// Output path only: this builds strings.

import { DECODE_ERROR_NAMES } from './errors.js';
import { formatIpv4, formatIpv4Bytes, formatIpv6, formatMac, formatTimestamp } from './format.js';
import { type DecodedPacket, TUNNEL_NAMES, TunnelType } from './packet.js';

const MAX_DATE_SEC = 8.64e12; // what a JS Date can hold

export function decodeRecord(p: DecodedPacket, frame: number, hasTs: boolean, tsDigits: number): string {
  const ts = hasTs && Math.abs(p.tsSec) < MAX_DATE_SEC ? `"${formatTimestamp(p.tsSec, p.tsNsec, tsDigits)}"` : 'null';
  const ip = p.ipVersion;
  const src = ip === 4 ? `"${formatIpv4(p.src4)}"` : ip === 6 ? `"${formatIpv6(p.addrBuf, p.srcOff)}"` : 'null';
  const dst = ip === 4 ? `"${formatIpv4(p.dst4)}"` : ip === 6 ? `"${formatIpv6(p.addrBuf, p.dstOff)}"` : 'null';
  let vlans = '';
  for (let i = 0; i < p.vlanCount; i++) vlans += i === 0 ? `${p.vlans[i]}` : `,${p.vlans[i]}`;
  return (
    `{"frame":${frame},"ts":${ts},"caplen":${p.caplen},"len":${p.len}` +
    `,"src_mac":${p.srcMacOff >= 0 ? `"${formatMac(p.frameBuf, p.srcMacOff)}"` : 'null'}` +
    `,"dst_mac":${p.dstMacOff >= 0 ? `"${formatMac(p.frameBuf, p.dstMacOff)}"` : 'null'}` +
    `,"vlans":[${vlans}],"tunnel":${tunnelJson(p)}` +
    `,"ip_version":${ip === 0 ? 'null' : ip},"src":${src},"dst":${dst}` +
    `,"proto":${num(p.proto)},"ttl":${num(p.ttl)}` +
    `,"fragmented":${p.fragmented},"reassembly":${p.held ? '"held"' : 'null'}` +
    `,"sport":${num(p.sport)},"dport":${num(p.dport)},"tcp_flags":${num(p.tcpFlags)}` +
    `,"payload_len":${num(p.payloadLen)}` +
    `,"error":${p.error === 0 ? 'null' : `"${DECODE_ERROR_NAMES[p.error]}"`}}`
  );
}

function num(v: number): string {
  return v < 0 ? 'null' : String(v);
}

function tunnelJson(p: DecodedPacket): string {
  if (p.tunnelType === TunnelType.None) return 'null';
  const t = p.tunnelType;
  const id = p.tunnelId < 0 ? 'null' : String(p.tunnelId);
  const usesVni = t === TunnelType.Vxlan || t === TunnelType.Geneve;
  const usesKey = t === TunnelType.Gre || t === TunnelType.Erspan;
  const outer = (b: Uint8Array) =>
    p.outerIpVersion === 4 ? `"${formatIpv4Bytes(b, 0)}"` : p.outerIpVersion === 6 ? `"${formatIpv6(b, 0)}"` : 'null';
  return (
    `{"type":"${TUNNEL_NAMES[t]}","vni":${usesVni ? id : 'null'},"key":${usesKey ? id : 'null'}` +
    `,"outer_src":${outer(p.outerSrc)},"outer_dst":${outer(p.outerDst)}}`
  );
}
