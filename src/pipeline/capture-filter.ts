// The task's `filter:` section (design §4.4.2) applied in user space, for
// replay: live capture compiles it to BPF in the kernel. All keys given must
// match: src_ip / dst_ip (any of the CIDRs), ports / port_range (either
// port of the packet, any listed port or the range), protocol (udp, tcp,
// any). A raw `bpf:` string has no user-space engine yet: the caller warns
// and ignores it. Matching allocates nothing.

import type { DecodedPacket } from '../decode/packet.js';
import { OtusError } from '../util/errors.js';

export interface TaskFilter {
  src_ip?: string[];
  dst_ip?: string[];
  ports?: number[];
  port_range?: string;
  protocol?: 'udp' | 'tcp' | 'any';
  bpf?: string;
}

interface Cidr {
  v: 4 | 6;
  bytes: Uint8Array;
  bits: number;
}

function parseCidr(text: string, where: string): Cidr {
  const [addr, bitsText] = text.split('/');
  const bad = (): OtusError => new OtusError('OTUS_ERR_TASK', `${where}: "${text}" is not an IPv4 or IPv6 address or CIDR`);
  if (addr.includes(':')) {
    const bytes = parseIpv6(addr);
    if (!bytes) throw bad();
    const bits = bitsText === undefined ? 128 : Number(bitsText);
    if (!Number.isInteger(bits) || bits < 0 || bits > 128) throw bad();
    return { v: 6, bytes, bits };
  }
  const parts = addr.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw bad();
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw bad();
  return { v: 4, bytes: Uint8Array.from(parts.map(Number)), bits };
}

function parseIpv6(text: string): Uint8Array | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parse = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  if (!head || !tail) return null;
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0) return null;
  const groups = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const b = new Uint8Array(16);
  groups.forEach((g, i) => {
    b[2 * i] = g >> 8;
    b[2 * i + 1] = g & 0xff;
  });
  return b;
}

function inCidr(c: Cidr, p: DecodedPacket, src: boolean): boolean {
  if (p.ipVersion !== c.v) return false;
  let bits = c.bits;
  const b = c.bytes;
  if (c.v === 4) {
    const a = src ? p.src4 : p.dst4;
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    const net = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
    return ((a >>> 0) & mask) >>> 0 === (net & mask) >>> 0;
  }
  const ab = p.addrBuf;
  const o = src ? p.srcOff : p.dstOff;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const m = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ab[o + i] & m) !== (b[i] & m)) return false;
  }
  return true;
}

export class CaptureFilter {
  private readonly src: Cidr[];
  private readonly dst: Cidr[];
  private readonly ports = new Uint8Array(65536);
  private readonly anyPort: boolean;
  /** IP protocol number required, or -1. */
  private readonly proto: number;
  readonly ignoredBpf: string | null;

  constructor(f: TaskFilter, where: string) {
    this.src = (f.src_ip ?? []).map((c, i) => parseCidr(c, `${where}.src_ip[${i}]`));
    this.dst = (f.dst_ip ?? []).map((c, i) => parseCidr(c, `${where}.dst_ip[${i}]`));
    for (const p of f.ports ?? []) this.ports[p] = 1;
    let any = (f.ports ?? []).length === 0;
    if (f.port_range !== undefined) {
      const m = /^(\d+)-(\d+)$/.exec(f.port_range);
      const lo = m ? Number(m[1]) : NaN;
      const hi = m ? Number(m[2]) : NaN;
      if (!m || lo > hi || hi > 65535) {
        throw new OtusError('OTUS_ERR_TASK', `${where}.port_range: "${f.port_range}" is not LOW-HIGH within 0-65535`);
      }
      this.ports.fill(1, lo, hi + 1);
      any = false;
    }
    this.anyPort = any;
    this.proto = f.protocol === 'udp' ? 17 : f.protocol === 'tcp' ? 6 : -1;
    this.ignoredBpf = f.bpf ?? null;
  }

  /** True when nothing would be filtered. */
  get empty(): boolean {
    return this.src.length === 0 && this.dst.length === 0 && this.anyPort && this.proto < 0;
  }

  matches(p: DecodedPacket): boolean {
    if (this.proto >= 0 && p.proto !== this.proto) return false;
    if (!this.anyPort && !((p.sport >= 0 && this.ports[p.sport] === 1) || (p.dport >= 0 && this.ports[p.dport] === 1))) return false;
    if (this.src.length > 0) {
      let ok = false;
      for (let i = 0; i < this.src.length && !ok; i++) ok = inCidr(this.src[i], p, true);
      if (!ok) return false;
    }
    if (this.dst.length > 0) {
      let ok = false;
      for (let i = 0; i < this.dst.length && !ok; i++) ok = inCidr(this.dst[i], p, false);
      if (!ok) return false;
    }
    return true;
  }
}
