// IPv4 (RFC 791): header with options, fragments into reassembly.

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import { decodeIpv6 } from './ipv6.js';
import { FragResult } from './reassembly.js';
import { decodeTransport } from './transport.js';

/** For link types that carry bare IP (RAW, NULL, MPLS): the version nibble decides. */
export function decodeIpByVersion(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (off >= end) return d.fail(DecodeError.Ipv4Truncated);
  const version = buf[off] >> 4;
  if (version === 6) decodeIpv6(d, buf, view, off, end);
  else decodeIpv4(d, buf, view, off, end);
}

export function decodeIpv4(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (end - off < 20) return d.fail(DecodeError.Ipv4Truncated);
  const b0 = buf[off];
  if (b0 >> 4 !== 4) return d.fail(DecodeError.Ipv4BadVersion);
  const hlen = (b0 & 0x0f) << 2;
  if (hlen < 20) return d.fail(DecodeError.Ipv4BadHeaderLength);
  if (end - off < hlen) return d.fail(DecodeError.Ipv4Truncated);
  let total = view.getUint16(off + 2);
  // Total length 0 is what TCP segmentation offload leaves in captures.
  if (total === 0) total = end - off;
  if (total < hlen) return d.fail(DecodeError.Ipv4BadTotalLength);
  let ipEnd = off + total;
  if (ipEnd > end) {
    // Longer than the frame: counted unless the snap length explains it, then
    // decoded as far as the bytes go, as tshark does.
    if (!d.snapCut) d.fail(DecodeError.Ipv4BadTotalLength);
    ipEnd = end;
  }

  const p = d.pkt;
  p.ipVersion = 4;
  p.src4 = view.getInt32(off + 12);
  p.dst4 = view.getInt32(off + 16);
  const proto = buf[off + 9];
  p.proto = proto;
  p.ttl = buf[off + 8];
  p.resetL4();

  const frag = view.getUint16(off + 6);
  if ((frag & 0x3fff) === 0) return decodeTransport(d, buf, view, off + hlen, ipEnd, proto);
  decodeFragment(d, buf, view, off, end, hlen, total, ipEnd, frag);
}

/**
 * A fragment: MF set or a nonzero offset. Kept out of decodeIpv4 so that it
 * stays under V8's per-function inlining limit (460 bytes of bytecode) and is
 * inlined into the decoder's frame function. bench/decode.ts, packets per
 * CPU-second: 39-40 → 45 M in cache; on `npm run bench`'s 460 MB capture,
 * 17.0-17.8 → 17.9-19.3 M (memory-bound; gopacket 23.9 M).
 */
function decodeFragment(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number, hlen: number, total: number, ipEnd: number, frag: number): void {
  const p = d.pkt;
  if (off + total > end) return d.fail(d.snapCut ? DecodeError.FragTruncated : DecodeError.Ipv4BadTotalLength);
  const proto = p.proto;
  const key = `4 ${p.src4} ${p.dst4} ${proto} ${view.getUint16(off + 4)}`;
  const r = d.reassembler;
  const res = r.add(key, (frag & 0x1fff) << 3, buf, off + hlen, ipEnd, (frag & 0x2000) === 0, hlen, d.nowMs, d.reasmLevel);
  if (res === FragResult.Held) {
    p.held = true;
    return;
  }
  if (res !== FragResult.Complete) return d.fail(res);
  d.reasmLevel++;
  p.fragmented = true;
  p.held = false;
  p.payloadBuf = r.outBuf;
  p.payloadView = r.outView;
  decodeTransport(d, r.outBuf, r.outView, 0, r.outLen, proto);
}
