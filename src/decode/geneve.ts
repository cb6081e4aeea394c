// Geneve (RFC 8926): 8-byte header, options (length in 4-byte words), then the
// payload named by an EtherType (usually 0x6558, Ethernet).

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import { EtherType, decodeEtherType, decodeEthernet } from './ethernet.js';
import { TunnelType } from './packet.js';
import { enterTunnel } from './tunnel.js';

export function decodeGeneve(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (end - off < 8) return d.fail(DecodeError.GeneveTruncated);
  const b0 = buf[off];
  if (b0 >> 6 !== 0) return d.fail(DecodeError.GeneveBadVersion);
  const inner = off + 8 + ((b0 & 0x3f) << 2);
  if (inner > end) return d.fail(DecodeError.GeneveTruncated);
  if (!enterTunnel(d, TunnelType.Geneve, view.getUint32(off + 4) >>> 8)) return;
  const type = view.getUint16(off + 2);
  if (type === EtherType.TransparentEthernet) decodeEthernet(d, buf, view, inner, end, false);
  else decodeEtherType(d, buf, view, inner, end, type);
}
