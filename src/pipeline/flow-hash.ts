// Symmetric flow hash for spreading frames over capture processes as the
// kernel's PACKET_FANOUT_HASH does (its flow dissector orders the two
// endpoints before hashing, so A→B and B→A land on the same socket). Used by
// `otus replay` to give each capture process the frames the kernel would
// have given it. IP fragments (held or completing a datagram) hash on
// addresses and protocol only, so all fragments of a datagram meet in one
// process; frames without IP hash to 0.

import type { DecodedPacket } from '../decode/packet.js';
import type { WireRecord } from './wire.js';

function mix(h: number, v: number): number {
  // FNV-1a over 32-bit words, then a murmur3 finalizer at the end.
  return Math.imul(h ^ v, 0x01000193);
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function word(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** 32-bit hash, equal for both directions of a flow. */
export function symmetricFlowHash(p: DecodedPacket): number {
  const v = p.ipVersion;
  if (v !== 4 && v !== 6) return 0;
  const frag = p.held || p.fragmented;
  const sp = frag || p.sport < 0 ? 0 : p.sport;
  const dp = frag || p.dport < 0 ? 0 : p.dport;
  return addressHash(v, p.src4, p.dst4, p.addrBuf, p.srcOff, p.dstOff, sp, dp, p.proto);
}

/**
 * The same hash of a wire record's five-tuple (the sender's side: the Kafka
 * reporter's message key for records without a call-id). A record carries
 * no fragment flag; its ports are those of the reassembled datagram.
 */
export function symmetricWireHash(w: WireRecord): number {
  const v = w.ipVersion;
  if (v !== 4 && v !== 6) return 0;
  const b = w.buf;
  const s4 = v === 4 ? word(b, w.srcOff) | 0 : 0;
  const d4 = v === 4 ? word(b, w.dstOff) | 0 : 0;
  return addressHash(v, s4, d4, b, w.srcOff, w.dstOff, w.sport < 0 ? 0 : w.sport, w.dport < 0 ? 0 : w.dport, w.proto);
}

function addressHash(v: number, src4: number, dst4: number, b: Uint8Array, srcOff: number, dstOff: number, sp: number, dp: number, proto: number): number {
  let h = 0x811c9dc5;
  // Order the endpoints: (address, port) of A vs B, lexicographically.
  let aFirst: boolean;
  if (v === 4) {
    const s = src4 >>> 0;
    const d = dst4 >>> 0;
    aFirst = s < d || (s === d && sp <= dp);
    h = mix(h, aFirst ? s : d);
    h = mix(h, aFirst ? d : s);
  } else {
    let cmp = 0;
    for (let i = 0; i < 16 && cmp === 0; i++) cmp = b[srcOff + i] - b[dstOff + i];
    aFirst = cmp < 0 || (cmp === 0 && sp <= dp);
    const first = aFirst ? srcOff : dstOff;
    const second = aFirst ? dstOff : srcOff;
    for (let i = 0; i < 16; i += 4) h = mix(h, word(b, first + i));
    for (let i = 0; i < 16; i += 4) h = mix(h, word(b, second + i));
  }
  h = mix(h, aFirst ? (sp << 16) | dp : (dp << 16) | sp);
  h = mix(h, proto < 0 ? 0 : proto);
  return fmix(h);
}
