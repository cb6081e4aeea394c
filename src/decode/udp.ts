// UDP (RFC 768), and the UDP-carried tunnels (VXLAN, Geneve) by destination port.

import { type Decoder, UdpTunnel } from './decoder.js';
import { DecodeError } from './errors.js';
import { decodeGeneve } from './geneve.js';
import { setPayload, truncatedPorts } from './transport.js';
import { decodeVxlan } from './vxlan.js';

export function decodeUdp(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  const p = d.pkt;
  if (end - off < 8) return truncatedPorts(d, view, off, end, DecodeError.UdpTruncated);
  p.sport = view.getUint16(off);
  const dport = view.getUint16(off + 2);
  p.dport = dport;
  const ulen = view.getUint16(off + 4);
  let uend = end;
  // Length 0 is legal only in IPv6 jumbograms (RFC 2675): the IP length rules.
  if (ulen !== 0) {
    if (ulen < 8) return d.fail(DecodeError.UdpBadLength);
    if (off + ulen <= end) uend = off + ulen;
    else if (!d.snapCut) d.fail(DecodeError.UdpBadLength);
  }
  setPayload(d, buf, view, off + 8, uend);
  const tunnel = d.udpTunnelPorts[dport];
  if (tunnel === UdpTunnel.None) return;
  if (tunnel === UdpTunnel.Vxlan) decodeVxlan(d, buf, view, off + 8, uend);
  else decodeGeneve(d, buf, view, off + 8, uend);
}
