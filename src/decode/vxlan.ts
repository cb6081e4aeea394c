// VXLAN (RFC 7348): an 8-byte header (flags, 24-bit VNI), then an Ethernet frame.

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import { decodeEthernet } from './ethernet.js';
import { TunnelType } from './packet.js';
import { enterTunnel } from './tunnel.js';

export function decodeVxlan(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (end - off < 8) return d.fail(DecodeError.VxlanTruncated);
  if (!enterTunnel(d, TunnelType.Vxlan, view.getUint32(off + 4) >>> 8)) return;
  decodeEthernet(d, buf, view, off + 8, end, false);
}
