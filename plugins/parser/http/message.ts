// One HTTP/1.x message (RFC 9112): the start line and header block, copied
// when complete into a block from the parser's pool (pool.ts) and indexed in
// place (offsets of names and values, no strings), and the first body_max
// body bytes, in a block that grows by doubling as they come. It is also the
// record's payload: JSON and protobuf are written from those bytes. clear()
// gives the blocks back.

import { ascii, writeBytes, writeJsonStringBytes, writeUint } from '../../../src/util/bytes.js';
import { varintSize, writeVarint } from '../../../src/pipeline/codec-protobuf.js';
import type { Labels } from '../../../src/pipeline/labels.js';
import type { Payload } from '../../../src/pipeline/record.js';
import type { BlockPool } from './pool.js';

export const enum Reject {
  /** The bytes at a message start are not a request line or status line. */
  NotHttp = 0,
  /** Start line + headers longer than header_max. */
  HeaderTooLong,
  /** Content-Length not a number, or two different ones (RFC 9112 §6.3 item 5). */
  BadContentLength,
  /** A chunk-size line that is not hex, too long, or chunk data not followed by CRLF. */
  BadChunk,
}
export const REJECT_NAMES: readonly string[] = ['not_http', 'header_too_long', 'bad_content_length', 'bad_chunk'];

const MAX_HEADERS = 128;
const K_REQ = ascii('{"type":"request","method":');
const K_RESP = ascii('{"type":"response","status":');
const K_URI = ascii(',"uri":');
const K_REASON = ascii(',"reason":');
const K_VERSION = ascii(',"version":');
const K_HEADERS = ascii(',"headers":[');
const K_BODY_LEN = ascii('],"body_len":');
const K_BODY = ascii(',"body":');
const K_BODY_TRUNC = ascii(',"body_truncated":');
const K_CHUNKED = ascii(',"chunked":');
const K_COMPLETE = ascii(',"complete":');
const TRUE = ascii('true');
const FALSE = ascii('false');

/** `HTTP/d.d` at b[q, e). */
function isVersion(b: Uint8Array, q: number, e: number): boolean {
  return e - q >= 8 && b[q] === 72 && b[q + 1] === 84 && b[q + 2] === 84 && b[q + 3] === 80 && b[q + 4] === 47 && isDigits(b, q + 5, 1) && b[q + 6] === 46 && isDigits(b, q + 7, 1);
}

function isDigits(b: Uint8Array, q: number, n: number): boolean {
  for (let i = q; i < q + n; i++) if (b[i] < 48 || b[i] > 57) return false;
  return true;
}

/** A line begun but not ended could still be a start line: a prefix of `HTTP/`, or upper-case letters (then a space and more). */
function mayStartLine(b: Uint8Array, q: number, e: number): boolean {
  let k = 0;
  while (q + k < e && k < 5 && b[q + k] === HTTP_SLASH[k]) k++;
  if (q + k === e || k === 5) return true;
  let i = q;
  while (i < e && i - q < 20 && b[i] >= 65 && b[i] <= 90) i++;
  return i > q && (i === e || b[i] === 32);
}
const HTTP_SLASH = [72, 84, 84, 80, 47];

const EMPTY = new Uint8Array(0);

/** A chunk-size line at b[q, e) (RFC 9112 §7.1): 0 when incomplete, the bytes it takes, -1 when malformed; the size in out.left. */
export function chunkSizeLine(b: Uint8Array, q: number, e: number, out: { left: number }): number {
  let i = q;
  let v = 0;
  let digits = 0;
  while (i < e) {
    const c = b[i];
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
    if (d < 0) break;
    v = v * 16 + d;
    if (++digits > 12) return -1;
    i++;
  }
  if (i === e) return 0;
  if (digits === 0) return -1;
  // chunk extensions up to the line end
  while (i < e && b[i] !== 10) i++;
  if (i === e) return i - q > 1024 ? -1 : 0;
  out.left = v;
  return i + 1 - q;
}

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

export class HttpMessage implements Payload {
  readonly type = 'http';
  /** Start line + header block (CRLFCRLF included): a pooled block once the block is complete, else empty. */
  head: Uint8Array = EMPTY;
  headLen = 0;
  /** The kept body bytes: a pooled block once there are some. */
  body: Uint8Array = EMPTY;
  bodyKept = 0;
  bodyLen = 0;
  complete = true;

  isRequest = false;
  isHead = false;
  isConnect = false;
  status = -1;
  chunked = false;
  /** -1 when absent. */
  contentLength = -1;

  // Start line parts (offsets into head)
  private a0 = 0;
  private a1 = 0;
  private b0 = 0;
  private b1 = 0;
  private c0 = 0;
  private c1 = 0;
  // Headers
  private nh = 0;
  private readonly nOff = new Int32Array(MAX_HEADERS);
  private readonly nLen = new Int32Array(MAX_HEADERS);
  private readonly vOff = new Int32Array(MAX_HEADERS);
  private readonly vLen = new Int32Array(MAX_HEADERS);
  private host = -1;
  private ua = -1;

  constructor(
    private readonly headerMax: number,
    private readonly bodyMax: number,
    private readonly pool: BlockPool,
  ) {}

  clear(): void {
    if (this.head.length > 0) {
      this.pool.give(this.head);
      this.head = EMPTY;
    }
    if (this.body.length > 0) {
      this.pool.give(this.body);
      this.body = EMPTY;
    }
    this.headLen = 0;
    this.bodyKept = 0;
    this.bodyLen = 0;
    this.nh = 0;
    this.chunked = false;
    this.contentLength = -1;
    this.status = -1;
  }

  /** Bytes that start like a start line: `HTTP/`, or 1–20 upper-case letters and a space. */
  looksLikeStart(b: Uint8Array, q: number, e: number): boolean {
    if (e - q >= 7 && b[q] === 72 && b[q + 1] === 84 && b[q + 2] === 84 && b[q + 3] === 80 && b[q + 4] === 47) return true;
    let i = q;
    while (i < e && i - q < 20 && b[i] >= 65 && b[i] <= 90) i++;
    return i > q && i < e && b[i] === 32;
  }

  /**
   * Resynchronisation after a gap, at a line start q: 1 when b[q, e) holds a
   * whole start line (`HTTP/d.d ddd`, or a method, a target and `HTTP/d.d`:
   * RFC 9112 §3, §4), 0 when its line is not complete yet and could still be
   * one (keep it), -1 when it is not one.
   */
  startLine(b: Uint8Array, q: number, e: number): number {
    let eol = q;
    while (eol < e && b[eol] !== 10) eol++;
    if (eol >= e) return e - q < this.headerMax && mayStartLine(b, q, e) ? 0 : -1;
    if (eol > q && b[eol - 1] === 13) eol--;
    if (isVersion(b, q, eol)) return eol - q >= 12 && b[q + 8] === 32 && isDigits(b, q + 9, 3) && (eol - q === 12 || b[q + 12] === 32) ? 1 : -1;
    let i = q;
    while (i < eol && i - q < 20 && b[i] >= 65 && b[i] <= 90) i++;
    if (i === q || i >= eol || b[i] !== 32) return -1;
    let j = i + 1;
    while (j < eol && b[j] !== 32) j++;
    return j > i + 1 && eol - j === 9 && isVersion(b, j + 1, eol) ? 1 : -1;
  }

  /**
   * A start line and header block at b[q, e): 0 when its end (empty line) is
   * not there yet, the bytes it takes, or -(Reject + 1).
   */
  parseHead(b: Uint8Array, q: number, e: number): number {
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    let s = q;
    while (s + 1 < e && b[s] === 13 && b[s + 1] === 10) s += 2;
    const lim = e - s > this.headerMax ? s + this.headerMax : e;
    let end = -1;
    for (let i = s; i + 1 < lim; i++) {
      if (b[i] === 10 && (b[i + 1] === 10 || (b[i + 1] === 13 && i + 2 < lim && b[i + 2] === 10))) {
        end = b[i + 1] === 10 ? i + 2 : i + 3;
        break;
      }
    }
    if (end < 0) {
      if (e - s >= 16 && !this.looksLikeStart(b, s, e)) return -(Reject.NotHttp + 1);
      return e - s >= this.headerMax ? -(Reject.HeaderTooLong + 1) : 0;
    }
    const n = end - s;
    if (this.head.length < n) {
      if (this.head.length > 0) this.pool.give(this.head);
      this.head = this.pool.take(n);
    }
    const h = this.head;
    for (let i = 0; i < n; i++) h[i] = b[s + i];
    this.headLen = n;
    const r = this.index();
    return r < 0 ? r : end - q;
  }

  /** Splits the copied block: start line, header lines (with obs-fold), framing headers. */
  private index(): number {
    const h = this.head;
    const n = this.headLen;
    let eol = 0;
    while (eol < n && h[eol] !== 10) eol++;
    let le = eol > 0 && h[eol - 1] === 13 ? eol - 1 : eol;
    // Three parts split at the first two spaces.
    let sp1 = 0;
    while (sp1 < le && h[sp1] !== 32) sp1++;
    let sp2 = sp1 + 1;
    while (sp2 < le && h[sp2] !== 32) sp2++;
    if (sp1 === 0 || sp1 >= le) return -(Reject.NotHttp + 1);
    this.a0 = 0;
    this.a1 = sp1;
    this.b0 = sp1 + 1;
    this.b1 = sp2 < le ? sp2 : le;
    this.c0 = sp2 < le ? sp2 + 1 : le;
    this.c1 = le;
    this.isRequest = !(sp1 >= 8 && h[0] === 72 && h[1] === 84 && h[2] === 84 && h[3] === 80 && h[4] === 47);
    if (this.isRequest) {
      // method SP request-target SP HTTP-version
      for (let i = 0; i < sp1; i++) if (h[i] < 33 || h[i] > 126) return -(Reject.NotHttp + 1);
      const v = this.c0;
      if (this.c1 - v !== 8 || h[v] !== 72 || h[v + 4] !== 47 || h[v + 5] !== 49 || h[v + 6] !== 46) return -(Reject.NotHttp + 1);
      this.isHead = sp1 === 4 && h[0] === 72 && h[1] === 69 && h[2] === 65 && h[3] === 68;
      this.isConnect = sp1 === 7 && h[0] === 67 && h[1] === 79 && h[2] === 78 && h[6] === 84;
      this.status = -1;
    } else {
      // HTTP-version SP status-code [SP reason-phrase]
      if (this.b1 - this.b0 !== 3) return -(Reject.NotHttp + 1);
      let st = 0;
      for (let i = this.b0; i < this.b1; i++) {
        if (h[i] < 48 || h[i] > 57) return -(Reject.NotHttp + 1);
        st = st * 10 + h[i] - 48;
      }
      this.status = st;
      this.isHead = false;
      this.isConnect = false;
    }
    // Header fields
    this.nh = 0;
    this.host = -1;
    this.ua = -1;
    this.chunked = false;
    this.contentLength = -1;
    let p = eol + 1;
    while (p < n) {
      let e = p;
      while (e < n && h[e] !== 10) e++;
      le = e > p && h[e - 1] === 13 ? e - 1 : e;
      if (le === p) break; // the empty line
      if ((h[p] === 32 || h[p] === 9) && this.nh > 0) {
        // obs-fold: the value goes on to this line (RFC 9112 §5.2)
        const k = this.nh - 1;
        this.vLen[k] = le - this.vOff[k];
      } else if (this.nh < MAX_HEADERS) {
        let c = p;
        while (c < le && h[c] !== 58) c++;
        if (c < le && c > p) {
          let v = c + 1;
          while (v < le && (h[v] === 32 || h[v] === 9)) v++;
          let ve = le;
          while (ve > v && (h[ve - 1] === 32 || h[ve - 1] === 9)) ve--;
          const k = this.nh++;
          this.nOff[k] = p;
          this.nLen[k] = c - p;
          this.vOff[k] = v;
          this.vLen[k] = ve - v;
        }
      }
      p = e + 1;
    }
    for (let k = 0; k < this.nh; k++) {
      const r = this.framing(k);
      if (r < 0) return r;
    }
    return 0;
  }

  private nameIs(k: number, lowerName: string): boolean {
    if (this.nLen[k] !== lowerName.length) return false;
    const h = this.head;
    const o = this.nOff[k];
    for (let i = 0; i < lowerName.length; i++) if (lower(h[o + i]) !== lowerName.charCodeAt(i)) return false;
    return true;
  }

  private framing(k: number): number {
    const h = this.head;
    if (this.nameIs(k, 'host')) this.host = k;
    else if (this.nameIs(k, 'user-agent')) this.ua = k;
    else if (this.nameIs(k, 'content-length')) {
      let v = 0;
      const o = this.vOff[k];
      const l = this.vLen[k];
      if (l === 0 || l > 15) return -(Reject.BadContentLength + 1);
      for (let i = o; i < o + l; i++) {
        if (h[i] < 48 || h[i] > 57) return -(Reject.BadContentLength + 1);
        v = v * 10 + h[i] - 48;
      }
      if (this.contentLength >= 0 && this.contentLength !== v) return -(Reject.BadContentLength + 1);
      this.contentLength = v;
    } else if (this.nameIs(k, 'transfer-encoding')) {
      // chunked when it is the last coding
      const o = this.vOff[k];
      let e = o + this.vLen[k];
      const w = 'chunked';
      this.chunked = e - o >= 7;
      for (let i = 0; i < 7 && this.chunked; i++) if (lower(h[e - 7 + i]) !== w.charCodeAt(i)) this.chunked = false;
      if (this.chunked && e - o > 7) {
        e -= 8;
        while (e >= o && (h[e] === 32 || h[e] === 9)) e--;
        this.chunked = e < o || h[e] === 44;
      }
    }
    return 0;
  }

  addBody(b: Uint8Array, q: number, n: number, st: { bodyBytesTruncated: number }): void {
    const max = this.bodyMax;
    if (n > this.body.length - this.bodyKept && this.body.length < max) this.grow(this.bodyKept + n < max ? this.bodyKept + n : max);
    const cap = this.body.length < max ? this.body.length : max;
    const room = cap - this.bodyKept;
    const k = n < room ? n : room;
    const d = this.body;
    for (let i = 0; i < k; i++) d[this.bodyKept + i] = b[q + i];
    this.bodyKept += k;
    this.bodyLen += n;
    st.bodyBytesTruncated += n - k;
  }

  /** A body block of at least `need` bytes: double the one held (or more when needed), the kept bytes copied over. */
  private grow(need: number): void {
    const old = this.body;
    const twice = old.length * 2;
    const b = this.pool.take(twice > need ? (twice < this.bodyMax ? twice : this.bodyMax) : need);
    for (let i = 0; i < this.bodyKept; i++) b[i] = old[i];
    if (old.length > 0) this.pool.give(old);
    this.body = b;
  }

  /** Labels from the copied header block (bytes: no strings). */
  label(l: Labels): void {
    const h = this.head;
    if (this.isRequest) {
      l.setBytes('http.method', h, this.a0, this.a1 - this.a0);
      l.setBytes('http.uri', h, this.b0, this.b1 - this.b0);
    } else l.setBytes('http.status', h, this.b0, 3);
    if (this.host >= 0) l.setBytes('http.host', h, this.vOff[this.host], this.vLen[this.host]);
    if (this.ua >= 0) l.setBytes('http.user-agent', h, this.vOff[this.ua], this.vLen[this.ua]);
  }

  // ---- Payload ----

  private o: Uint8Array = new Uint8Array(0);
  private p = 0;

  writeJson(buf: Uint8Array, off: number, end: number): number {
    if (end - off < 6 * (this.headLen + this.bodyKept) + 64 * this.nh + 256) return -1;
    this.o = buf;
    this.p = off;
    const h = this.head;
    if (this.isRequest) {
      this.lit(K_REQ);
      this.text(h, this.a0, this.a1 - this.a0);
      this.lit(K_URI);
      this.text(h, this.b0, this.b1 - this.b0);
      this.lit(K_VERSION);
      this.text(h, this.c0 + 5, this.c1 - this.c0 - 5);
    } else {
      this.lit(K_RESP);
      this.p = writeUint(buf, this.p, this.status);
      this.lit(K_REASON);
      this.text(h, this.c0, this.c1 - this.c0);
      this.lit(K_VERSION);
      this.text(h, this.a0 + 5, this.a1 - this.a0 - 5);
    }
    this.lit(K_HEADERS);
    for (let k = 0; k < this.nh; k++) {
      if (k > 0) this.ch(44);
      this.ch(91);
      this.text(h, this.nOff[k], this.nLen[k]);
      this.ch(44);
      this.text(h, this.vOff[k], this.vLen[k]);
      this.ch(93);
    }
    this.lit(K_BODY_LEN);
    this.p = writeUint(buf, this.p, this.bodyLen);
    if (this.bodyKept > 0) {
      this.lit(K_BODY);
      this.text(this.body, 0, this.bodyKept);
    }
    this.lit(K_BODY_TRUNC);
    this.lit(this.bodyKept < this.bodyLen ? TRUE : FALSE);
    this.lit(K_CHUNKED);
    this.lit(this.chunked ? TRUE : FALSE);
    this.lit(K_COMPLETE);
    this.lit(this.complete ? TRUE : FALSE);
    this.ch(125);
    return this.p;
  }

  private lit(s: Uint8Array): void {
    this.p = writeBytes(this.o, this.p, s);
  }
  private ch(c: number): void {
    this.o[this.p++] = c;
  }
  /** Bytes as a JSON string; bytes outside printable ASCII as \u00XX (Latin-1: lossless per byte). */
  private text(b: Uint8Array, at: number, len: number): void {
    this.p = writeJsonStringBytes(this.o, this.p, b, at, len);
  }


  /** otus.http.v1.HttpPayload (http.proto): the header block as received, the kept body, body length, complete. */
  binarySize(): number {
    return 1 + varintSize(this.headLen) + this.headLen + (this.bodyKept > 0 ? 1 + varintSize(this.bodyKept) + this.bodyKept : 0) + 1 + varintSize(this.bodyLen) + 2;
  }

  writeBinary(buf: Uint8Array, off: number, end: number): number {
    if (end - off < this.binarySize()) return -1;
    buf[off++] = 0x0a;
    off = writeVarint(buf, off, this.headLen);
    for (let i = 0; i < this.headLen; i++) buf[off++] = this.head[i];
    if (this.bodyKept > 0) {
      buf[off++] = 0x12;
      off = writeVarint(buf, off, this.bodyKept);
      for (let i = 0; i < this.bodyKept; i++) buf[off++] = this.body[i];
    }
    buf[off++] = 0x18;
    off = writeVarint(buf, off, this.bodyLen);
    buf[off++] = 0x20;
    buf[off++] = this.complete ? 1 : 0;
    return off;
  }
}
