// Byte writers for the record codecs: numbers, addresses, timestamps and
// strings written straight into an output buffer, no intermediate strings.
// Each takes (buf, off) and returns the offset after what it wrote; callers
// guarantee room (codecs check a bound per variable-size part).

const HEX = new Uint8Array([48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102]);
const B64 = new Uint8Array(64);
{
  const s = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < 64; i++) B64[i] = s.charCodeAt(i);
}

/** Writes a string made only of ASCII characters (keys, literals). */
export function writeAscii(buf: Uint8Array, off: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[off++] = s.charCodeAt(i);
  return off;
}

/** Pre-encodes an ASCII literal once, to be copied per record with writeBytes. */
export function ascii(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  writeAscii(b, 0, s);
  return b;
}

/**
 * An ASCII literal of a record format (a JSON key with its punctuation),
 * encoded once as little-endian words too, so that writeLiteral stores it
 * four bytes at a time (measured: ~4.5 ns for 12 bytes against ~15 ns byte
 * by byte).
 */
export class Literal {
  readonly bytes: Uint8Array;
  readonly words: Int32Array;
  constructor(s: string) {
    this.bytes = ascii(s);
    this.words = new Int32Array(s.length >> 2);
    const b = this.bytes;
    for (let i = 0; i < this.words.length; i++) this.words[i] = b[4 * i] | (b[4 * i + 1] << 8) | (b[4 * i + 2] << 16) | (b[4 * i + 3] << 24);
  }
}

// DataViews of the last two output buffers written to (a record and the payload pre-encoded for it alternate).
const EMPTY_VIEW: DataView = new DataView(new ArrayBuffer(0));
let viewedA: Uint8Array | null = null;
let viewA = EMPTY_VIEW;
let viewedB: Uint8Array | null = null;
let viewB = EMPTY_VIEW;
let replaceA = true;

function viewOf(buf: Uint8Array): DataView {
  if (buf === viewedA) return viewA;
  if (buf === viewedB) return viewB;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (replaceA) {
    viewedA = buf;
    viewA = v;
  } else {
    viewedB = buf;
    viewB = v;
  }
  replaceA = !replaceA;
  return v;
}

/** Writes a literal: whole words through a DataView of buf (kept for the next calls), then the rest. */
export function writeLiteral(buf: Uint8Array, off: number, lit: Literal): number {
  const dv = viewOf(buf);
  const w = lit.words;
  for (let i = 0; i < w.length; i++, off += 4) dv.setInt32(off, w[i], true);
  const b = lit.bytes;
  for (let i = w.length << 2; i < b.length; i++) buf[off++] = b[i];
  return off;
}

export function writeBytes(buf: Uint8Array, off: number, src: Uint8Array): number {
  // set() costs ~18 ns whatever the size, a byte loop ~1.3 ns a byte (measured, node 20): loop the short ones.
  const n = src.length;
  if (n > 14) {
    buf.set(src, off);
    return off + n;
  }
  for (let i = 0; i < n; i++) buf[off++] = src[i];
  return off;
}

export function copyBytes(buf: Uint8Array, off: number, src: Uint8Array, srcOff: number, len: number): number {
  for (let i = 0; i < len; i++) buf[off++] = src[srcOff + i];
  return off;
}

/** v (a 32-bit unsigned) as 8 lowercase hex digits. */
export function writeHex32(buf: Uint8Array, off: number, v: number): number {
  for (let i = 7; i >= 0; i--) buf[off++] = HEX[(v >>> (4 * i)) & 15];
  return off;
}

// Little-endian fixed-width fields (the wire record, batches, compact payloads).
export function writeU16LE(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
}

export function writeU32LE(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

export function readU16LE(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

export function readU32LE(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

export function readI32LE(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
}

/** Decimal digits of a non-negative integer (< 2^53). */
export function decimalLength(v: number): number {
  if (v < 1e5) return v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : 5;
  if (v < 1e10) return v < 1e6 ? 6 : v < 1e7 ? 7 : v < 1e8 ? 8 : v < 1e9 ? 9 : 10;
  let n = 10;
  for (let x = Math.floor(v / 1e10); x >= 1; x = Math.floor(x / 10)) n++;
  return n;
}

/** "00" to "99": numbers are written two digits at a time (the sender writes ~16 per RTP record). */
const DIGIT_PAIRS = Uint8Array.from({ length: 200 }, (_, i) => 48 + (i & 1 ? (i >> 1) % 10 : ((i >> 1) / 10) | 0));

/** Writes a non-negative integer (< 2^53) in decimal. */
export function writeUint(buf: Uint8Array, off: number, v: number): number {
  if (v < 10) {
    buf[off] = 48 + v;
    return off + 1;
  }
  const n = decimalLength(v);
  if (v < 0x80000000) {
    let p = off + n;
    let x = v | 0;
    while (x >= 100) {
      const q = (x / 100) | 0;
      const r = (x - q * 100) << 1;
      buf[--p] = DIGIT_PAIRS[r + 1];
      buf[--p] = DIGIT_PAIRS[r];
      x = q;
    }
    if (x >= 10) {
      buf[--p] = DIGIT_PAIRS[(x << 1) + 1];
      buf[--p] = DIGIT_PAIRS[x << 1];
    } else buf[--p] = 48 + x;
  } else {
    let p = off + n - 1;
    while (v > 0) {
      const q = Math.floor(v / 10);
      buf[p--] = 48 + (v - q * 10);
      v = q;
    }
  }
  return off + n;
}

/** Writes an integer, or `null` when negative (the contract's "absent"). */
export function writeUintOrNull(buf: Uint8Array, off: number, v: number): number {
  if (v < 0) {
    buf[off] = 110; // n
    buf[off + 1] = 117; // u
    buf[off + 2] = 108; // l
    buf[off + 3] = 108; // l
    return off + 4;
  }
  return writeUint(buf, off, v);
}

export function writeNull(buf: Uint8Array, off: number): number {
  return writeUintOrNull(buf, off, -1);
}

/** Dotted quad from 4 bytes. */
export function writeIpv4(buf: Uint8Array, off: number, a: Uint8Array, ao: number): number {
  off = writeUint(buf, off, a[ao]);
  buf[off++] = 46;
  off = writeUint(buf, off, a[ao + 1]);
  buf[off++] = 46;
  off = writeUint(buf, off, a[ao + 2]);
  buf[off++] = 46;
  return writeUint(buf, off, a[ao + 3]);
}

function writeHexGroup(buf: Uint8Array, off: number, g: number): number {
  let started = false;
  for (let shift = 12; shift >= 0; shift -= 4) {
    const d = (g >>> shift) & 15;
    if (d !== 0 || started || shift === 0) {
      buf[off++] = HEX[d];
      started = true;
    }
  }
  return off;
}

const groups = new Uint16Array(8);

/** RFC 5952 text of 16 bytes (as src/decode/format.ts formatIpv6, without strings). */
export function writeIpv6(buf: Uint8Array, off: number, a: Uint8Array, ao: number): number {
  const g = groups;
  for (let i = 0; i < 8; i++) g[i] = (a[ao + 2 * i] << 8) | a[ao + 2 * i + 1];
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    off = writeAscii(buf, off, '::ffff:');
    return writeIpv4(buf, off, a, ao + 12);
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
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      buf[off++] = 58;
      buf[off++] = 58;
      i += bestLen - 1;
      continue;
    }
    if (i > 0 && i !== bestStart + bestLen) buf[off++] = 58;
    off = writeHexGroup(buf, off, g[i]);
  }
  return off;
}

export function writeMac(buf: Uint8Array, off: number, m: Uint8Array, mo = 0): number {
  for (let i = 0; i < 6; i++) {
    if (i > 0) buf[off++] = 58;
    const x = m[mo + i];
    buf[off++] = HEX[x >>> 4];
    buf[off++] = HEX[x & 15];
  }
  return off;
}

function write2(buf: Uint8Array, off: number, v: number): number {
  buf[off] = 48 + ((v / 10) | 0);
  buf[off + 1] = 48 + (v % 10);
  return off + 2;
}

// The date part changes once a second: cache it.
let cachedSec = NaN;
const cachedDate = new Uint8Array(32);
let cachedLen = 0;

/** Largest |seconds| a JS Date holds; beyond it the timestamp is written as null. */
export const MAX_TS_SEC = 8.64e12;

/**
 * ISO 8601 UTC, `YYYY-MM-DDTHH:MM:SS[.fraction]Z` with `digits` fractional
 * digits, as Date.prototype.toISOString spells the date (±YYYYYY outside
 * years 0..9999). Caller checks |sec| < MAX_TS_SEC.
 */
export function writeIsoTimestamp(buf: Uint8Array, off: number, sec: number, nsec: number, digits: number): number {
  if (sec !== cachedSec) {
    cachedSec = sec;
    const days = Math.floor(sec / 86400);
    const sod = sec - days * 86400;
    // civil_from_days (H. Hinnant)
    const z = days + 719468;
    const era = Math.floor(z / 146097);
    const doe = z - era * 146097;
    const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
    let y = yoe + era * 400;
    const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
    const mp = Math.floor((5 * doy + 2) / 153);
    const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
    const m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) y++;
    const b = cachedDate;
    let p = 0;
    if (y >= 0 && y <= 9999) {
      p = write2(b, p, Math.floor(y / 100));
      p = write2(b, p, y % 100);
    } else {
      b[p++] = y < 0 ? 45 : 43;
      const ay = Math.abs(y);
      for (let k = 100000; k >= 1; k = k / 10) b[p++] = 48 + (Math.floor(ay / k) % 10);
    }
    b[p++] = 45;
    p = write2(b, p, m);
    b[p++] = 45;
    p = write2(b, p, d);
    b[p++] = 84;
    p = write2(b, p, Math.floor(sod / 3600));
    b[p++] = 58;
    p = write2(b, p, Math.floor(sod / 60) % 60);
    b[p++] = 58;
    p = write2(b, p, sod % 60);
    cachedLen = p;
  }
  off = copyBytes(buf, off, cachedDate, 0, cachedLen);
  if (digits > 0) {
    buf[off++] = 46;
    let div = 100_000_000;
    for (let i = 0; i < digits; i++) {
      buf[off++] = 48 + (Math.floor(nsec / div) % 10);
      div = div / 10;
    }
  }
  buf[off++] = 90;
  return off;
}

/** UTF-8 bytes of a string (counts without encoding). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3; // lone surrogates become U+FFFD (3 bytes), as TextEncoder does
  }
  return n;
}

/** The 4-byte UTF-8 of the code point a UTF-16 surrogate pair (hi, lo) stands for. */
function writeSurrogatePair(buf: Uint8Array, off: number, hi: number, lo: number): number {
  const cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
  buf[off] = 0xf0 | (cp >>> 18);
  buf[off + 1] = 0x80 | ((cp >>> 12) & 63);
  buf[off + 2] = 0x80 | ((cp >>> 6) & 63);
  buf[off + 3] = 0x80 | (cp & 63);
  return off + 4;
}

/** Raw UTF-8 (lone surrogates as U+FFFD). */
export function writeUtf8(buf: Uint8Array, off: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) buf[off++] = c;
    else if (c < 0x800) {
      buf[off++] = 0xc0 | (c >>> 6);
      buf[off++] = 0x80 | (c & 63);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && (next & 0xfc00) === 0xdc00) {
          off = writeSurrogatePair(buf, off, c, next);
          i++;
          continue;
        }
        c = 0xfffd;
      }
      buf[off++] = 0xe0 | (c >>> 12);
      buf[off++] = 0x80 | ((c >>> 6) & 63);
      buf[off++] = 0x80 | (c & 63);
    }
  }
  return off;
}

/** Bound on the bytes writeJsonString can take for a string of `n` UTF-16 units (quotes included). */
export function jsonStringBound(n: number): number {
  return 6 * n + 2;
}

/** A JSON string literal: quotes, escapes for `"`, `\` and control characters, UTF-8 otherwise. */
export function writeJsonString(buf: Uint8Array, off: number, s: string): number {
  buf[off++] = 34;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c < 0x80 && c !== 34 && c !== 92) {
      buf[off++] = c;
      continue;
    }
    if (c === 34 || c === 92) {
      buf[off++] = 92;
      buf[off++] = c;
    } else if (c < 0x20) {
      off = writeAscii(buf, off, '\\u00');
      buf[off++] = HEX[c >>> 4];
      buf[off++] = HEX[c & 15];
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && (next & 0xfc00) === 0xdc00) {
        off = writeSurrogatePair(buf, off, c, next);
        i++;
      } else {
        // A lone surrogate: escape it, as JSON.stringify does.
        off = writeAscii(buf, off, '\\u');
        buf[off++] = HEX[c >>> 12];
        buf[off++] = HEX[(c >>> 8) & 15];
        buf[off++] = HEX[(c >>> 4) & 15];
        buf[off++] = HEX[c & 15];
      }
    } else if (c < 0x800) {
      buf[off++] = 0xc0 | (c >>> 6);
      buf[off++] = 0x80 | (c & 63);
    } else {
      buf[off++] = 0xe0 | (c >>> 12);
      buf[off++] = 0x80 | ((c >>> 6) & 63);
      buf[off++] = 0x80 | (c & 63);
    }
  }
  buf[off++] = 34;
  return off;
}

/**
 * Length of the well-formed UTF-8 sequence (RFC 3629) at src[i], 1 to 4, or
 * 0 when the byte there does not start one that ends before `end`.
 */
export function utf8SequenceLength(src: Uint8Array, i: number, end: number): number {
  const c = src[i];
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return i + 1 < end && (src[i + 1] & 0xc0) === 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (i + 2 >= end) return 0;
    const c1 = src[i + 1];
    if ((c1 & 0xc0) !== 0x80 || (src[i + 2] & 0xc0) !== 0x80) return 0;
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f)) return 0; // overlong, surrogates
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (i + 3 >= end) return 0;
    const c1 = src[i + 1];
    if ((c1 & 0xc0) !== 0x80 || (src[i + 2] & 0xc0) !== 0x80 || (src[i + 3] & 0xc0) !== 0x80) return 0;
    if ((c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return 0; // overlong, beyond U+10FFFF
    return 4;
  }
  return 0;
}

/**
 * A JSON string literal of bytes off the wire (label values, SIP text, DNS
 * TXT): well-formed UTF-8 is kept as it is; any other byte becomes \u00XX
 * (its Latin-1 reading), so the output is always valid JSON and no byte is
 * lost. jsonStringBytesLength gives the exact size.
 */
export function writeJsonStringBytes(buf: Uint8Array, off: number, src: Uint8Array, so: number, len: number): number {
  buf[off++] = 34;
  const end = so + len;
  for (let i = so; i < end; i++) {
    const c = src[i];
    if (c === 34 || c === 92) {
      buf[off++] = 92;
      buf[off++] = c;
    } else if (c >= 0x20 && c < 0x7f) {
      buf[off++] = c;
    } else {
      const n = c < 0x80 ? 0 : utf8SequenceLength(src, i, end);
      if (n > 0) {
        for (let k = 0; k < n; k++) buf[off++] = src[i + k];
        i += n - 1;
      } else {
        buf[off++] = 92; // \u00XX
        buf[off++] = 117;
        buf[off++] = 48;
        buf[off++] = 48;
        buf[off++] = HEX[c >>> 4];
        buf[off++] = HEX[c & 15];
      }
    }
  }
  buf[off++] = 34;
  return off;
}

/** Bytes writeJsonStringBytes writes for src[so, so + len), quotes included. */
export function jsonStringBytesLength(src: Uint8Array, so: number, len: number): number {
  let n = 2;
  const end = so + len;
  for (let i = so; i < end; i++) {
    const c = src[i];
    if (c === 34 || c === 92) n += 2;
    else if (c >= 0x20 && c < 0x7f) n += 1;
    else {
      const k = c < 0x80 ? 0 : utf8SequenceLength(src, i, end);
      if (k > 0) {
        n += k;
        i += k - 1;
      } else n += 6;
    }
  }
  return n;
}

/** Standard base64 with padding. */
export function writeBase64(buf: Uint8Array, off: number, src: Uint8Array, so: number, len: number): number {
  let i = 0;
  for (; i + 2 < len; i += 3) {
    const v = (src[so + i] << 16) | (src[so + i + 1] << 8) | src[so + i + 2];
    buf[off++] = B64[v >>> 18];
    buf[off++] = B64[(v >>> 12) & 63];
    buf[off++] = B64[(v >>> 6) & 63];
    buf[off++] = B64[v & 63];
  }
  if (i < len) {
    const b1 = i + 1 < len ? src[so + i + 1] : 0;
    const v = (src[so + i] << 16) | (b1 << 8);
    buf[off++] = B64[v >>> 18];
    buf[off++] = B64[(v >>> 12) & 63];
    buf[off++] = i + 1 < len ? B64[(v >>> 6) & 63] : 61;
    buf[off++] = 61;
  }
  return off;
}
