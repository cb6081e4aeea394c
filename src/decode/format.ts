// Printing decoded fields. Only output paths call these: the packet path keeps
// addresses as numbers and offsets.

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

/** RFC 5952: lowercase, no leading zeros, the longest run of two or more zero groups as "::" (the first on a tie), IPv4-mapped addresses in dotted form. */
export function formatIpv6(buf: Uint8Array, off: number): string {
  const g = new Array<number>(8);
  for (let i = 0; i < 8; i++) g[i] = (buf[off + 2 * i] << 8) | buf[off + 2 * i + 1];
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${formatIpv4Bytes(buf, off + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return g.map((x) => x.toString(16)).join(':');
  const head = g.slice(0, bestStart).map((x) => x.toString(16)).join(':');
  const tail = g.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':');
  return `${head}::${tail}`;
}

/** ISO 8601 UTC with `digits` fractional digits (0..9). */
export function formatTimestamp(sec: number, nsec: number, digits: number): string {
  const iso = new Date(sec * 1000).toISOString(); // 2024-01-02T03:04:05.000Z
  const base = iso.slice(0, 19);
  if (digits <= 0) return `${base}Z`;
  const frac = String(nsec).padStart(9, '0').slice(0, digits);
  return `${base}.${frac}Z`;
}
