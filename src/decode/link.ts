// Link layers: which header a capture's LINKTYPE puts before the network layer.
// Values: https://www.tcpdump.org/linktypes.html

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import { decodeEtherType, decodeEthernet } from './ethernet.js';
import { decodeIpByVersion } from './ipv4.js';

export const enum LinkType {
  Null = 0,
  Ethernet = 1,
  RawOpenBsd = 12,
  RawAlt = 14,
  Raw = 101,
  Loop = 108,
  LinuxSll = 113,
  Ipv4 = 228,
  Ipv6 = 229,
  LinuxSll2 = 276,
}

export function decodeLink(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number, linkType: number): void {
  switch (linkType) {
    case LinkType.Ethernet:
      decodeEthernet(d, buf, view, off, end, true);
      return;
    case LinkType.Raw:
    case LinkType.RawOpenBsd:
    case LinkType.RawAlt:
    case LinkType.Ipv4:
    case LinkType.Ipv6:
      decodeIpByVersion(d, buf, view, off, end);
      return;
    case LinkType.LinuxSll:
      decodeSll(d, buf, view, off, end);
      return;
    case LinkType.LinuxSll2:
      decodeSll2(d, buf, view, off, end);
      return;
    case LinkType.Null:
    case LinkType.Loop:
      decodeNull(d, buf, view, off, end, linkType === LinkType.Loop);
      return;
    default:
      d.fail(DecodeError.UnsupportedLinktype);
  }
}

// Linux cooked v1: type(2) hatype(2) halen(2) addr(8) protocol(2).
function decodeSll(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (end - off < 16) return d.fail(DecodeError.LinkTruncated);
  if (view.getUint16(off + 4) === 6) d.pkt.srcMacOff = off + 6;
  decodeEtherType(d, buf, view, off + 16, end, view.getUint16(off + 14));
}

// Linux cooked v2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8).
function decodeSll2(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (end - off < 20) return d.fail(DecodeError.LinkTruncated);
  if (buf[off + 11] === 6) d.pkt.srcMacOff = off + 12;
  decodeEtherType(d, buf, view, off + 20, end, view.getUint16(off));
}

// BSD loopback: a 4-byte address family, in the capturing host's byte order
// for NULL and in network order for LOOP. AF_INET is 2 everywhere; AF_INET6 is
// 24, 28 or 30 depending on the BSD.
function decodeNull(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number, bigEndian: boolean): void {
  if (end - off < 4) return d.fail(DecodeError.LinkTruncated);
  const family = bigEndian || (buf[off] === 0 && buf[off + 1] === 0) ? view.getUint32(off) : view.getUint32(off, true);
  if (family === 2 || family === 24 || family === 28 || family === 30) {
    decodeIpByVersion(d, buf, view, off + 4, end);
  }
}
