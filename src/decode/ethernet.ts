// Ethernet II and IEEE 802.3 with LLC/SNAP, and the EtherType dispatch shared
// by every layer that carries an EtherType (VLAN, SLL, GRE, Geneve, ...).

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import { decodeIpv4 } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';
import { decodeMpls } from './mpls.js';
import { decodePppoe } from './pppoe.js';
import { decodeVlan } from './vlan.js';

export const enum EtherType {
  Ipv4 = 0x0800,
  Ipv6 = 0x86dd,
  Vlan = 0x8100,
  QinQ = 0x88a8,
  QinQOld = 0x9100,
  Mpls = 0x8847,
  MplsMulticast = 0x8848,
  PppoeSession = 0x8864,
  TransparentEthernet = 0x6558,
}

/** `outermost`: this Ethernet header's MACs are the frame's (not a tunnel's inner frame). */
export function decodeEthernet(
  d: Decoder,
  buf: Uint8Array,
  view: DataView,
  off: number,
  end: number,
  outermost: boolean,
): void {
  if (end - off < 14) return d.fail(DecodeError.LinkTruncated);
  if (outermost) {
    d.pkt.dstMacOff = off;
    d.pkt.srcMacOff = off + 6;
  }
  const type = view.getUint16(off + 12);
  if (type >= 0x0600) return decodeEtherType(d, buf, view, off + 14, end, type);
  // 802.3: the field is a length; IP is only reachable through LLC/SNAP.
  if (end - off >= 22 && buf[off + 14] === 0xaa && buf[off + 15] === 0xaa && buf[off + 16] === 0x03) {
    decodeEtherType(d, buf, view, off + 22, end, view.getUint16(off + 20));
  }
}

export function decodeEtherType(
  d: Decoder,
  buf: Uint8Array,
  view: DataView,
  off: number,
  end: number,
  type: number,
): void {
  switch (type) {
    case EtherType.Ipv4:
      return decodeIpv4(d, buf, view, off, end);
    case EtherType.Ipv6:
      return decodeIpv6(d, buf, view, off, end);
    case EtherType.Vlan:
    case EtherType.QinQ:
    case EtherType.QinQOld:
      return decodeVlan(d, buf, view, off, end);
    case EtherType.Mpls:
    case EtherType.MplsMulticast:
      return decodeMpls(d, buf, view, off, end);
    case EtherType.PppoeSession:
      return decodePppoe(d, buf, view, off, end);
    default:
    // Not IP (ARP, LLDP, ...): nothing more to decode, and not an error.
  }
}
