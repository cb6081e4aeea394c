// The layer above IP: UDP and TCP in full, SCTP and ICMP recognised, and the
// IP protocols that carry tunnels (GRE, IP-in-IP) when those are switched on.

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import { decodeGre } from './gre.js';
import { decodeIpv4 } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';
import { TunnelType } from './packet.js';
import { decodeTcp } from './tcp.js';
import { enterTunnel } from './tunnel.js';
import { decodeUdp } from './udp.js';

export const enum IpProto {
  Icmp = 1,
  IpIp = 4,
  Tcp = 6,
  Udp = 17,
  Ipv6 = 41,
  Gre = 47,
  Icmpv6 = 58,
  Sctp = 132,
}

export function decodeTransport(
  d: Decoder,
  buf: Uint8Array,
  view: DataView,
  off: number,
  end: number,
  proto: number,
): void {
  switch (proto) {
    case IpProto.Udp:
      return decodeUdp(d, buf, view, off, end);
    case IpProto.Tcp:
      return decodeTcp(d, buf, view, off, end);
    case IpProto.Sctp:
      return decodeSctp(d, buf, view, off, end);
    case IpProto.Icmp:
    case IpProto.Icmpv6:
      if (end - off < 8) return d.fail(DecodeError.IcmpTruncated);
      return setPayload(d, buf, view, off + 8, end);
    case IpProto.Gre:
      setPayload(d, buf, view, off, end);
      if (d.gre || d.erspan) decodeGre(d, buf, view, off, end);
      return;
    case IpProto.IpIp:
    case IpProto.Ipv6:
      setPayload(d, buf, view, off, end);
      if (d.ipip && enterTunnel(d, TunnelType.IpIp, -1)) {
        if (proto === IpProto.IpIp) decodeIpv4(d, buf, view, off, end);
        else decodeIpv6(d, buf, view, off, end);
      }
      return;
    default:
      return setPayload(d, buf, view, off, end);
  }
}

/** The payload is what a parser reads; it lives in `buf` (frame or reassembly buffer). */
export function setPayload(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  const p = d.pkt;
  p.payloadBuf = buf;
  p.payloadView = view;
  p.payloadOff = off;
  p.payloadLen = end > off ? end - off : 0;
}

/** A transport header cut short: keep the ports if they are there, and count the error. */
export function truncatedPorts(d: Decoder, view: DataView, off: number, end: number, code: DecodeError): void {
  if (end - off >= 4) {
    d.pkt.sport = view.getUint16(off);
    d.pkt.dport = view.getUint16(off + 2);
  }
  d.fail(code);
}

// SCTP common header (RFC 9260): ports, verification tag, checksum; chunks follow.
function decodeSctp(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (end - off < 12) return d.fail(DecodeError.SctpTruncated);
  const p = d.pkt;
  p.sport = view.getUint16(off);
  p.dport = view.getUint16(off + 2);
  setPayload(d, buf, view, off + 12, end);
}
