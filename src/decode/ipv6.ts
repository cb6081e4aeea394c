// IPv6 (RFC 8200): fixed header, the extension header chain (bounded), the
// jumbo payload option (RFC 2675), fragments into reassembly.

import type { Decoder } from './decoder.js';
import { DecodeError } from './errors.js';
import { FragResult } from './reassembly.js';
import { decodeTransport } from './transport.js';

const MAX_EXT_HEADERS = 16;

export const enum NextHeader {
  HopByHop = 0,
  Routing = 43,
  Fragment = 44,
  Esp = 50,
  Ah = 51,
  NoNext = 59,
  DestOpts = 60,
  // Mobility (135) and HIP (139) headers are extension headers in name only:
  // they end the chain and are the packet's payload (RFC 6275 §6.1.1).
  Shim6 = 140,
}

export function decodeIpv6(d: Decoder, buf: Uint8Array, view: DataView, off: number, end: number): void {
  if (end - off < 40) return d.fail(DecodeError.Ipv6Truncated);
  if (buf[off] >> 4 !== 6) return d.fail(DecodeError.Ipv6BadVersion);
  const p = d.pkt;
  p.ipVersion = 6;
  p.addrBuf = buf;
  p.srcOff = off + 8;
  p.dstOff = off + 24;
  p.ttl = buf[off + 7];
  p.resetL4();
  let nh = buf[off + 6];
  p.proto = nh;

  const plen = view.getUint16(off + 4);
  let pos = off + 40;
  let ipEnd: number;
  if (plen === 0 && nh === NextHeader.HopByHop) {
    const jumbo = jumboLength(buf, view, pos, end);
    if (jumbo < 0) return d.fail(DecodeError.Ipv6BadJumbo);
    ipEnd = pos + jumbo;
  } else {
    ipEnd = pos + plen;
  }
  if (ipEnd > end) {
    if (!d.snapCut) d.fail(DecodeError.Ipv6BadPayloadLength);
    ipEnd = end;
  }

  for (let i = 0; ; i++) {
    if (i >= MAX_EXT_HEADERS) return d.fail(DecodeError.Ipv6ExtChainTooLong);
    p.proto = nh;
    switch (nh) {
      case NextHeader.HopByHop:
      case NextHeader.Routing:
      case NextHeader.DestOpts:
      case NextHeader.Shim6: {
        if (ipEnd - pos < 8) return d.fail(DecodeError.Ipv6ExtTruncated);
        const hlen = (buf[pos + 1] + 1) << 3;
        if (ipEnd - pos < hlen) return d.fail(DecodeError.Ipv6ExtTruncated);
        nh = buf[pos];
        pos += hlen;
        break;
      }
      case NextHeader.Ah: {
        if (ipEnd - pos < 8) return d.fail(DecodeError.Ipv6ExtTruncated);
        const hlen = (buf[pos + 1] + 2) << 2;
        if (ipEnd - pos < hlen) return d.fail(DecodeError.Ipv6ExtTruncated);
        nh = buf[pos];
        pos += hlen;
        break;
      }
      case NextHeader.Fragment: {
        if (ipEnd - pos < 8) return d.fail(DecodeError.Ipv6ExtTruncated);
        const next = buf[pos];
        const fo = view.getUint16(pos + 2);
        const offset = fo & 0xfff8;
        const more = (fo & 1) !== 0;
        pos += 8;
        nh = next;
        p.proto = next;
        // An atomic fragment (offset 0, no more) is a whole datagram (RFC 6946).
        if (offset === 0 && !more) break;
        if (d.snapCut) return d.fail(DecodeError.FragTruncated);
        const key = `6 ${addrKey(buf, off + 8)} ${next} ${view.getUint32(pos - 4)}`;
        const r = d.reassembler;
        const res = r.add(key, offset, buf, pos, ipEnd, !more, pos - off, d.nowMs, d.reasmLevel);
        if (res === FragResult.Held) {
          p.proto = next;
          p.held = true;
          return;
        }
        if (res !== FragResult.Complete) return d.fail(res);
        d.reasmLevel++;
        p.fragmented = true;
        buf = r.outBuf;
        view = r.outView;
        p.payloadBuf = buf;
        p.payloadView = view;
        pos = 0;
        ipEnd = r.outLen;
        break;
      }
      default:
        // ESP and every upper layer end the chain.
        return decodeTransport(d, buf, view, pos, ipEnd, nh);
    }
  }
}

/**
 * Payload length from the Jumbo Payload option of the hop-by-hop header at
 * `pos` (RFC 2675), counted from the end of the fixed header; -1 when absent
 * or invalid (it must exceed 65535).
 */
function jumboLength(buf: Uint8Array, view: DataView, pos: number, end: number): number {
  if (end - pos < 8) return -1;
  const hend = pos + ((buf[pos + 1] + 1) << 3);
  if (hend > end) return -1;
  let o = pos + 2;
  while (o < hend) {
    const type = buf[o];
    if (type === 0) {
      o++; // Pad1
      continue;
    }
    if (o + 2 > hend) return -1;
    const len = buf[o + 1];
    if (type === 0xc2) {
      if (len !== 4 || o + 6 > hend) return -1;
      const jumbo = view.getUint32(o + 2);
      return jumbo > 65535 ? jumbo : -1;
    }
    o += 2 + len;
  }
  return -1;
}

function addrKey(buf: Uint8Array, off: number): string {
  let s = '';
  for (let i = 0; i < 32; i++) s += String.fromCharCode(buf[off + i]);
  return s;
}
