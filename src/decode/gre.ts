// GRE (RFC 2784, RFC 2890 key and sequence), PPTP's enhanced GRE (RFC 2637)
// carrying PPP, WCCP redirection, and the ERSPAN mirroring formats it carries
// (types I, II and III, draft-foschiano-erspan).

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import { EtherType, decodeEtherType, decodeEthernet } from './ethernet.js';
import { decodeIpByVersion } from './ipv4.js';
import { TunnelType } from './packet.js';
import { enterTunnel } from './tunnel.js';

const GRE_CSUM = 0x8000;
const GRE_ROUTING = 0x4000;
const GRE_KEY = 0x2000;
const GRE_SEQ = 0x1000;

const GRE_ACK = 0x0080; // enhanced GRE (version 1) only

const ERSPAN_I_II = 0x88be;
const ERSPAN_III = 0x22eb;
const PPP = 0x880b;
const WCCP = 0x883e;

export function decodeGre(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (end - off < 4) return d.fail(DecodeError.GreTruncated);
  const flags = view.getUint16(off);
  const version = flags & 0x7;
  // Version 1 is PPTP's enhanced GRE: always a key (payload length + call ID), PPP inside.
  if (version > 1 || (flags & GRE_ROUTING) !== 0) return d.fail(DecodeError.GreUnsupported);
  const type = view.getUint16(off + 2);
  let hlen = 4;
  if ((flags & GRE_CSUM) !== 0) hlen += 4;
  let key = -1;
  if ((flags & GRE_KEY) !== 0) {
    if (end - off < hlen + 4) return d.fail(DecodeError.GreTruncated);
    key = view.getUint32(off + hlen);
    hlen += 4;
  }
  if ((flags & GRE_SEQ) !== 0) hlen += 4;
  if (version === 1 && (flags & GRE_ACK) !== 0) hlen += 4;
  if (end - off < hlen) return d.fail(DecodeError.GreTruncated);
  const inner = off + hlen;
  // Nothing inside (keepalives, PPTP acknowledgements): not a tunnelled packet.
  if (inner >= end || (version === 1 && type !== PPP)) return;
  // In enhanced GRE the key field holds payload length and call ID, not a key.
  if (version === 1) key = -1;

  if (type === ERSPAN_I_II || type === ERSPAN_III) {
    if (!d.erspan) return;
    // Type I has no ERSPAN header and no GRE sequence number; II has both.
    if (type === ERSPAN_I_II && (flags & GRE_SEQ) === 0) {
      if (!enterTunnel(d, TunnelType.Erspan, -1)) return;
      return decodeEthernet(d, buf, view, inner, end, false);
    }
    return decodeErspan(d, buf, view, inner, end, type === ERSPAN_III);
  }
  if (!d.gre) return;
  if (type === EtherType.TransparentEthernet) {
    if (!enterTunnel(d, TunnelType.Gre, key)) return;
    return decodeEthernet(d, buf, view, inner, end, false);
  }
  if (type === EtherType.Ipv4 || type === EtherType.Ipv6 || type === EtherType.Mpls) {
    if (!enterTunnel(d, TunnelType.Gre, key)) return;
    return decodeEtherType(d, buf, view, inner, end, type);
  }
  if (type === PPP) {
    if (!enterTunnel(d, TunnelType.Gre, key)) return;
    return decodePpp(d, buf, view, inner, end);
  }
  if (type === WCCP) {
    if (!enterTunnel(d, TunnelType.Gre, key)) return;
    // WCCPv2 puts a 4-byte redirect header before the IP packet; v1 does not.
    // Like tcpdump and Wireshark, tell them apart by the IP version nibble.
    const ipAt = inner < end && buf[inner] >> 4 === 4 ? inner : inner + 4;
    return decodeIpByVersion(d, buf, view, ipAt, end);
  }
}

// PPP in HDLC-like framing (RFC 1662): optional address/control FF 03, then a
// protocol field of one byte (compressed, odd) or two.
function decodePpp(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (end - off >= 2 && buf[off] === 0xff && buf[off + 1] === 0x03) off += 2;
  if (off >= end) return;
  let proto = buf[off];
  if ((proto & 1) === 0) {
    if (end - off < 2) return;
    proto = view.getUint16(off);
    off += 2;
  } else {
    off += 1;
  }
  if (proto === 0x21 || proto === 0x57) decodeIpByVersion(d, buf, view, off, end); // IPv4, IPv6
}

// ERSPAN II: 8 bytes, ERSPAN III: 12 bytes plus an optional 8-byte platform
// subheader. Both start with version(4) VLAN(12) COS(3) En(2) T(1) session(10).
function decodeErspan(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number, v3: boolean): void {
  const hlen = v3 ? 12 : 8;
  if (end - off < hlen) return d.fail(DecodeError.ErspanTruncated);
  const session = view.getUint16(off + 2) & 0x03ff;
  if (!enterTunnel(d, TunnelType.Erspan, session)) return;
  if (!v3) return decodeEthernet(d, buf, view, off + 8, end, false);
  const word2 = view.getUint16(off + 10);
  const inner = off + 12 + ((word2 & 0x0001) !== 0 ? 8 : 0);
  if (inner > end) return d.fail(DecodeError.ErspanTruncated);
  // Frame type: 0 is Ethernet, 2 is an IP packet.
  const frameType = (word2 >> 10) & 0x1f;
  if (frameType === 0) decodeEthernet(d, buf, view, inner, end, false);
  else if (frameType === 2) decodeIpByVersion(d, buf, view, inner, end);
}
