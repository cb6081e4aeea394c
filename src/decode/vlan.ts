// 802.1Q and 802.1ad (QinQ) tags: 4 bytes each, IDs recorded outermost first.

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import { decodeEtherType } from './ethernet.js';
import { MAX_VLANS } from './packet.js';

export function decodeVlan(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (end - off < 4) return d.fail(DecodeError.VlanTruncated);
  const p = d.pkt;
  if (p.vlanCount >= MAX_VLANS) return d.fail(DecodeError.VlanTooDeep);
  p.vlans[p.vlanCount++] = view.getUint16(off) & 0x0fff;
  decodeEtherType(d, buf, view, off + 4, end, view.getUint16(off + 2));
}
