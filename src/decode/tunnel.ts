// Shared step of every decapsulation: remember the outermost tunnel and its
// outer addresses before the inner headers overwrite the L3 fields, and bound
// the nesting.

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import type { TunnelType } from './packet.js';

/** Returns false (and records the error) when the tunnel is nested too deep. */
export function enterTunnel(d: Decoder, type: TunnelType, id: number): boolean {
  const p = d.pkt;
  if (p.tunnelDepth >= d.maxTunnelDepth) {
    d.fail(DecodeError.TunnelTooDeep);
    return false;
  }
  if (p.tunnelDepth++ === 0) {
    p.tunnelType = type;
    p.tunnelId = id;
    p.outerIpVersion = p.ipVersion;
    if (p.ipVersion === 4) {
      writeInt32(p.outerSrc, p.src4);
      writeInt32(p.outerDst, p.dst4);
    } else if (p.ipVersion === 6) {
      for (let i = 0; i < 16; i++) {
        p.outerSrc[i] = p.addrBuf[p.srcOff + i];
        p.outerDst[i] = p.addrBuf[p.dstOff + i];
      }
    }
  }
  return true;
}

function writeInt32(b: Uint8Array, v: number): void {
  b[0] = v >>> 24;
  b[1] = (v >>> 16) & 0xff;
  b[2] = (v >>> 8) & 0xff;
  b[3] = v & 0xff;
}
