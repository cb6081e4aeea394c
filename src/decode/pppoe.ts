// PPPoE session stage (RFC 2516) carrying PPP (RFC 1661): 6-byte PPPoE header,
// then the 2-byte PPP protocol.

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import { decodeIpv4 } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';

export function decodePppoe(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (end - off < 8) return d.fail(DecodeError.PppoeTruncated);
  const proto = view.getUint16(off + 6);
  if (proto === 0x0021) decodeIpv4(d, buf, view, off + 8, end);
  else if (proto === 0x0057) decodeIpv6(d, buf, view, off + 8, end);
}
