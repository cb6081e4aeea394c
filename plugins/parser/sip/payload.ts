// The sip record's payload: start line, headers (as on the wire, in order,
// multi-value and compact names kept), body; written from the message's own
// bytes, valid while the parser's handle/handleStream runs (the pipeline
// encodes before it returns). JSON:
//   {"start_line":S,"method":S|null,"uri":S|null,"status":N|null,"reason":S|null,
//    "headers":[[name,value],...],"body":S,"body_truncated":B}
// Protobuf: otus.sip.v1.SipPayload (sip.proto).
// Compact (the send ring's form; SipPayloadReader reads it in the sender,
// where the escaping into JSON happens), 32-bit little-endian words:
//   0 flags (1 request, 2 body truncated) | status << 16
//   1 message length M     2 header count H
//   3..12 start line, method, uri, reason, body: offset and length each
//   13.. per header: name offset, name length, value offset, value length
//   then the message's M bytes, from its start line (offsets count from there).

import { ascii, jsonStringBytesLength, Literal, readU32LE, writeBytes, writeJsonStringBytes, writeLiteral, writeUint } from '../../../src/util/bytes.js';
import { varintSize, writeVarint } from '../../../src/pipeline/codec-protobuf.js';
import type { Payload, PayloadReader } from '../../../src/pipeline/record.js';
import { wordView } from '../../../src/pipeline/wire.js';
import { MAX_HEADERS } from './message.js';

/** What the payload reads of a message: a parsed SipMessage, or its compact form read back (CompactSip). */
export interface SipFields {
  readonly buf: Uint8Array;
  /** The message's bytes [off, end): start line through body. */
  readonly off: number;
  readonly end: number;
  readonly isRequest: boolean;
  readonly truncated: boolean;
  readonly status: number;
  readonly lineOff: number;
  readonly lineLen: number;
  readonly methodOff: number;
  readonly methodLen: number;
  readonly uriOff: number;
  readonly uriLen: number;
  readonly reasonOff: number;
  readonly reasonLen: number;
  readonly bodyOff: number;
  readonly bodyLen: number;
  readonly headerCount: number;
  readonly hNameOff: Int32Array;
  readonly hNameLen: Int32Array;
  readonly hValOff: Int32Array;
  readonly hValLen: Int32Array;
}

const FIXED_WORDS = 13;

/**
 * Where a compact payload's SIP message starts (bytes from off; it runs to
 * off + len), or -1 when the fixed words do not read back: what a reader
 * that wants the message as captured needs (the hep reporter).
 */
export function compactMessageAt(buf: Uint8Array, off: number, len: number): number {
  if (len < 4 * FIXED_WORDS) return -1;
  const h = readU32LE(buf, off + 8);
  const at = 4 * (FIXED_WORDS + 4 * h);
  return h <= MAX_HEADERS && at + readU32LE(buf, off + 4) === len ? at : -1;
}

const K_START = new Literal('{"start_line":');
const K_METHOD = new Literal(',"method":');
const K_URI = new Literal(',"uri":');
const K_STATUS = new Literal(',"status":');
const K_REASON = new Literal(',"reason":');
const K_HEADERS = new Literal(',"headers":[');
const K_BODY = new Literal('],"body":');
const K_TRUNC = new Literal(',"body_truncated":');
const NULL = new Literal('null');
const TRUE = ascii('true');
const FALSE = ascii('false');

const jsonLen = jsonStringBytesLength;

function lenField(len: number): number {
  return 1 + varintSize(len) + len;
}

export class SipPayload implements Payload {
  readonly type = 'sip';
  private m: SipFields | null = null;

  set(m: SipFields): void {
    this.m = m;
  }

  writeCompact(buf: Uint8Array, off: number, end: number): number {
    const m = this.m!;
    const base = m.off;
    const len = m.end - base;
    const h = m.headerCount;
    const at = off + 4 * (FIXED_WORDS + 4 * h);
    if (end - at < len) return -1;
    const W = wordView(buf);
    if (W === null || (off & 3) !== 0) return -1; // the wire record aligns payloads
    let k = off >> 2;
    W[k] = (m.isRequest ? 1 : 0) | (m.truncated ? 2 : 0) | (m.status << 16);
    W[k + 1] = len;
    W[k + 2] = h;
    W[k + 3] = m.lineOff - base;
    W[k + 4] = m.lineLen;
    // Requests have no reason, responses no method and uri (their spans may be stale from an earlier message).
    const req = m.isRequest;
    W[k + 5] = req ? rel(m.methodOff, m.methodLen, base) : 0;
    W[k + 6] = req ? m.methodLen : 0;
    W[k + 7] = req ? rel(m.uriOff, m.uriLen, base) : 0;
    W[k + 8] = req ? m.uriLen : 0;
    W[k + 9] = req ? 0 : rel(m.reasonOff, m.reasonLen, base);
    W[k + 10] = req ? 0 : m.reasonLen;
    W[k + 11] = rel(m.bodyOff, m.bodyLen, base);
    W[k + 12] = m.bodyLen;
    k += FIXED_WORDS;
    for (let i = 0; i < h; i++, k += 4) {
      W[k] = m.hNameOff[i] - base;
      W[k + 1] = m.hNameLen[i];
      W[k + 2] = m.hValOff[i] - base;
      W[k + 3] = m.hValLen[i];
    }
    // One copy of the whole message (memcpy; its subarray is this path's only allocation).
    buf.set(m.buf.subarray(base, base + len), at);
    return at + len;
  }

  writeJson(buf: Uint8Array, off: number, end: number): number {
    const m = this.m!;
    const b = m.buf;
    // Exact size first: one pass over the message, then write without checks.
    let need = 160 + jsonLen(b, m.lineOff, m.lineLen) + jsonLen(b, m.methodOff, m.methodLen) + jsonLen(b, m.uriOff, m.uriLen) + jsonLen(b, m.reasonOff, m.reasonLen) + jsonLen(b, m.bodyOff, m.bodyLen);
    for (let i = 0; i < m.headerCount; i++) need += 4 + jsonLen(b, m.hNameOff[i], m.hNameLen[i]) + jsonLen(b, m.hValOff[i], m.hValLen[i]);
    if (end - off < need) return -1;
    off = writeLiteral(buf, off, K_START);
    off = writeJsonStringBytes(buf, off, b, m.lineOff, m.lineLen);
    off = writeLiteral(buf, off, K_METHOD);
    off = m.isRequest ? writeJsonStringBytes(buf, off, b, m.methodOff, m.methodLen) : writeLiteral(buf, off, NULL);
    off = writeLiteral(buf, off, K_URI);
    off = m.isRequest ? writeJsonStringBytes(buf, off, b, m.uriOff, m.uriLen) : writeLiteral(buf, off, NULL);
    off = writeLiteral(buf, off, K_STATUS);
    off = m.isRequest ? writeLiteral(buf, off, NULL) : writeUint(buf, off, m.status);
    off = writeLiteral(buf, off, K_REASON);
    off = m.isRequest ? writeLiteral(buf, off, NULL) : writeJsonStringBytes(buf, off, b, m.reasonOff, m.reasonLen);
    off = writeLiteral(buf, off, K_HEADERS);
    for (let i = 0; i < m.headerCount; i++) {
      if (i > 0) buf[off++] = 44;
      buf[off++] = 91;
      off = writeJsonStringBytes(buf, off, b, m.hNameOff[i], m.hNameLen[i]);
      buf[off++] = 44;
      off = writeJsonStringBytes(buf, off, b, m.hValOff[i], m.hValLen[i]);
      buf[off++] = 93;
    }
    off = writeLiteral(buf, off, K_BODY);
    off = writeJsonStringBytes(buf, off, b, m.bodyOff, m.bodyLen);
    off = writeLiteral(buf, off, K_TRUNC);
    off = writeBytes(buf, off, m.truncated ? TRUE : FALSE);
    buf[off++] = 125;
    return off;
  }

  private headerSize(i: number): number {
    const m = this.m!;
    return lenField(m.hNameLen[i]) + lenField(m.hValLen[i]);
  }

  binarySize(): number {
    const m = this.m!;
    let n = lenField(m.lineLen);
    if (m.isRequest) n += lenField(m.methodLen) + lenField(m.uriLen);
    else n += 1 + varintSize(m.status) + lenField(m.reasonLen);
    for (let i = 0; i < m.headerCount; i++) n += lenField(this.headerSize(i));
    if (m.bodyLen > 0) n += lenField(m.bodyLen);
    if (m.truncated) n += 2;
    return n;
  }

  writeBinary(buf: Uint8Array, off: number, end: number): number {
    const m = this.m!;
    const b = m.buf;
    if (end - off < this.binarySize()) return -1;
    off = bytesField(buf, off, 0x0a, b, m.lineOff, m.lineLen); // 1 start_line
    if (m.isRequest) {
      off = bytesField(buf, off, 0x12, b, m.methodOff, m.methodLen); // 2 method
      off = bytesField(buf, off, 0x1a, b, m.uriOff, m.uriLen); // 3 uri
    } else {
      buf[off++] = 0x20; // 4 status
      off = writeVarint(buf, off, m.status);
      off = bytesField(buf, off, 0x2a, b, m.reasonOff, m.reasonLen); // 5 reason
    }
    for (let i = 0; i < m.headerCount; i++) {
      buf[off++] = 0x32; // 6 headers
      off = writeVarint(buf, off, this.headerSize(i));
      off = bytesField(buf, off, 0x0a, b, m.hNameOff[i], m.hNameLen[i]);
      off = bytesField(buf, off, 0x12, b, m.hValOff[i], m.hValLen[i]);
    }
    if (m.bodyLen > 0) off = bytesField(buf, off, 0x3a, b, m.bodyOff, m.bodyLen); // 7 body
    if (m.truncated) {
      buf[off++] = 0x40; // 8 body_truncated
      buf[off++] = 1;
    }
    return off;
  }
}

function bytesField(buf: Uint8Array, off: number, tag: number, src: Uint8Array, so: number, len: number): number {
  buf[off++] = tag;
  off = writeVarint(buf, off, len);
  for (let i = 0; i < len; i++) buf[off++] = src[so + i];
  return off;
}

/** A span's offset from the message start; 0 for an empty span (an unset one may hold any offset). */
function rel(off: number, len: number, base: number): number {
  return len > 0 ? off - base : 0;
}

/** A compact sip payload read in place (the sender's side). */
class CompactSip implements SipFields {
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  end = 0;
  isRequest = false;
  truncated = false;
  status = 0;
  lineOff = 0;
  lineLen = 0;
  methodOff = 0;
  methodLen = 0;
  uriOff = 0;
  uriLen = 0;
  reasonOff = 0;
  reasonLen = 0;
  bodyOff = 0;
  bodyLen = 0;
  headerCount = 0;
  readonly hNameOff = new Int32Array(MAX_HEADERS);
  readonly hNameLen = new Int32Array(MAX_HEADERS);
  readonly hValOff = new Int32Array(MAX_HEADERS);
  readonly hValLen = new Int32Array(MAX_HEADERS);

  /** False when the bytes are not a well-formed compact payload (every span is checked to lie in the message). */
  load(buf: Uint8Array, off: number, len: number): boolean {
    const at = compactMessageAt(buf, off, len);
    if (at < 0) return false;
    const w0 = readU32LE(buf, off);
    const mlen = len - at;
    const h = readU32LE(buf, off + 8);
    const base = off + at;
    this.buf = buf;
    this.isRequest = (w0 & 1) !== 0;
    this.truncated = (w0 & 2) !== 0;
    this.status = w0 >>> 16;
    for (let o = off + 12; o < off + 4 * FIXED_WORDS; o += 8) if (readU32LE(buf, o) + readU32LE(buf, o + 4) > mlen) return false;
    this.off = base;
    this.end = base + mlen;
    this.lineOff = base + readU32LE(buf, off + 12);
    this.lineLen = readU32LE(buf, off + 16);
    this.methodOff = base + readU32LE(buf, off + 20);
    this.methodLen = readU32LE(buf, off + 24);
    this.uriOff = base + readU32LE(buf, off + 28);
    this.uriLen = readU32LE(buf, off + 32);
    this.reasonOff = base + readU32LE(buf, off + 36);
    this.reasonLen = readU32LE(buf, off + 40);
    this.bodyOff = base + readU32LE(buf, off + 44);
    this.bodyLen = readU32LE(buf, off + 48);
    for (let i = 0, o = off + 4 * FIXED_WORDS; i < h; i++, o += 16) {
      const no = readU32LE(buf, o);
      const nl = readU32LE(buf, o + 4);
      const vo = readU32LE(buf, o + 8);
      const vl = readU32LE(buf, o + 12);
      if (no + nl > mlen || vo + vl > mlen) return false;
      this.hNameOff[i] = base + no;
      this.hNameLen[i] = nl;
      this.hValOff[i] = base + vo;
      this.hValLen[i] = vl;
    }
    this.headerCount = h;
    return true;
  }
}

/** The sender's reader of sip compact payloads (PluginDefinition.payloadReader). */
export class SipPayloadReader implements PayloadReader {
  readonly protocol = 'sip';
  private readonly fields = new CompactSip();
  private readonly payload = new SipPayload();

  read(buf: Uint8Array, off: number, len: number): Payload | null {
    if (!this.fields.load(buf, off, len)) return null;
    this.payload.set(this.fields);
    return this.payload;
  }
}
