// MPLS label stack (RFC 3032). The payload type is not signalled; like
// tcpdump and Wireshark we look at the first nibble after bottom-of-stack.

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import { decodeIpv4 } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';

const MAX_LABELS = 8;

export function decodeMpls(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  for (let i = 0; ; i++) {
    if (i >= MAX_LABELS) return d.fail(DecodeError.MplsTooDeep);
    if (end - off < 4) return d.fail(DecodeError.MplsTruncated);
    const bottom = (buf[off + 2] & 0x01) !== 0;
    off += 4;
    if (bottom) break;
  }
  if (off >= end) return;
  const version = buf[off] >> 4;
  if (version === 4) decodeIpv4(d, buf, view, off, end);
  else if (version === 6) decodeIpv6(d, buf, view, off, end);
}
