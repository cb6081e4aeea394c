// Printing decoded fields. Only output paths call these: the packet path keeps
// addresses as numbers and offsets.

import { writeIpv6 } from '../util/bytes.js';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function formatMac(buf: Uint8Array, off: number): string {
  return `${HEX[buf[off]]}:${HEX[buf[off + 1]]}:${HEX[buf[off + 2]]}:${HEX[buf[off + 3]]}:${HEX[buf[off + 4]]}:${HEX[buf[off + 5]]}`;
}

export function formatIpv4(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

export function formatIpv4Bytes(buf: Uint8Array, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

const scratch = new Uint8Array(64);

/** RFC 5952 (the byte writer in util/bytes.ts is the one implementation). */
export function formatIpv6(buf: Uint8Array, off: number): string {
  const n = writeIpv6(scratch, 0, buf, off);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(scratch[i]);
  return s;
}

/** ISO 8601 UTC with `digits` fractional digits (0..9). */
export function formatTimestamp(sec: number, nsec: number, digits: number): string {
  const iso = new Date(sec * 1000).toISOString(); // 2024-01-02T03:04:05.000Z
  const base = iso.slice(0, 19);
  if (digits <= 0) return `${base}Z`;
  const frac = String(nsec).padStart(9, '0').slice(0, digits);
  return `${base}.${frac}Z`;
}
