// User-space flow dispatch (docs/architecture.md, "Processes"): a driver with one stream (pcap)
// feeding N pipelines must still send both directions of a flow to the same
// pipeline. flowHash is symmetric (A→B hashes as B→A), reads the frame in
// place and allocates nothing. Like the kernel's flow dissector, IP fragments
// hash on addresses and protocol only (later fragments carry no ports), so
// all fragments of a datagram meet in one pipeline's reassembler.

import type { FrameSink } from './capturer.js';

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;

function mix(h: number, v: number): number {
  h = Math.imul(h ^ v, 0x9e3779b1);
  return (h ^ (h >>> 15)) >>> 0;
}

function fold16(buf: Uint8Array, o: number): number {
  let h = 0;
  for (let i = 0; i < 16; i += 4) h = mix(h, ((buf[o + i]! << 24) | (buf[o + i + 1]! << 16) | (buf[o + i + 2]! << 8) | buf[o + i + 3]!) >>> 0);
  return h;
}

function u32(buf: Uint8Array, o: number): number {
  return ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0;
}

/** Symmetric hash of the frame's IP flow; frames without IP (or cut short) hash to 0. */
export function flowHash(buf: Uint8Array, off: number, caplen: number, linkType: number): number {
  const end = off + caplen;
  let p = off;
  let etherType: number;
  if (linkType === LINKTYPE_ETHERNET) {
    if (caplen < 14) return 0;
    etherType = (buf[p + 12]! << 8) | buf[p + 13]!;
    p += 14;
    for (let tags = 0; tags < 2 && (etherType === 0x8100 || etherType === 0x88a8) && p + 4 <= end; tags++) {
      etherType = (buf[p + 2]! << 8) | buf[p + 3]!;
      p += 4;
    }
  } else if (linkType === LINKTYPE_RAW) {
    if (caplen < 1) return 0;
    etherType = buf[p]! >> 4 === 6 ? 0x86dd : 0x0800;
  } else {
    return 0;
  }
  let a: number;
  let b: number;
  let proto: number;
  let l4: number;
  let fragment: boolean;
  if (etherType === 0x0800) {
    if (p + 20 > end) return 0;
    a = u32(buf, p + 12);
    b = u32(buf, p + 16);
    proto = buf[p + 9]!;
    fragment = (((buf[p + 6]! << 8) | buf[p + 7]!) & 0x3fff) !== 0; // MF or an offset
    l4 = p + (buf[p]! & 0x0f) * 4;
  } else if (etherType === 0x86dd) {
    if (p + 40 > end) return 0;
    a = fold16(buf, p + 8);
    b = fold16(buf, p + 24);
    proto = buf[p + 6]!;
    fragment = proto === 44;
    if (fragment && p + 48 <= end) proto = buf[p + 40]!;
    l4 = p + 40;
  } else {
    return 0;
  }
  let sa = 0;
  let sb = 0;
  if (!fragment && (proto === 6 || proto === 17 || proto === 132) && l4 + 4 <= end) {
    sa = (buf[l4]! << 8) | buf[l4 + 1]!;
    sb = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
  }
  // Order the two endpoints so both directions hash alike.
  if (a > b || (a === b && sa > sb)) {
    const t = a;
    a = b;
    b = t;
    const s = sa;
    sa = sb;
    sb = s;
  }
  return mix(mix(mix(mix(0x811c9dc5, a), b), (sa << 16) | sb), proto);
}

/** Hands each frame to one of N sinks by flow hash. */
export class FlowDispatcher implements FrameSink {
  /** Frames sent to each sink. */
  readonly counts: Float64Array;

  constructor(private readonly sinks: FrameSink[]) {
    this.counts = new Float64Array(sinks.length);
  }

  frame(buf: Uint8Array, view: DataView, off: number, caplen: number, len: number, linkType: number, sec: number, nsec: number): void {
    const i = flowHash(buf, off, caplen, linkType) % this.sinks.length;
    this.counts[i]++;
    this.sinks[i]!.frame(buf, view, off, caplen, len, linkType, sec, nsec);
  }

  batchEnd(): void {
    for (const s of this.sinks) s.batchEnd?.();
  }

  error(stream: number, message: string): void {
    for (const s of this.sinks) s.error?.(stream, message);
  }

  end(stream: number): void {
    for (const s of this.sinks) s.end?.(stream);
  }
}
