// TCP (RFC 9293): ports, flags, sequence numbers; options skipped by data offset.

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import { setPayload, truncatedPorts } from './transport.js';

export function decodeTcp(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (end - off < 20) return truncatedPorts(d, view, off, end, DecodeError.TcpTruncated);
  const p = d.pkt;
  p.sport = view.getUint16(off);
  p.dport = view.getUint16(off + 2);
  p.tcpSeq = view.getUint32(off + 4);
  p.tcpAck = view.getUint32(off + 8);
  const b12 = buf[off + 12];
  // The 12 flag bits as tshark's tcp.flags: 3 reserved, AE (ex-NS), CWR … FIN.
  p.tcpFlags = ((b12 & 0x0f) << 8) | buf[off + 13];
  const hlen = (b12 >> 4) << 2;
  if (hlen < 20) return d.fail(DecodeError.TcpBadDataOffset);
  if (end - off < hlen) return d.fail(DecodeError.TcpTruncated);
  setPayload(d, buf, view, off + hlen, end);
}
