// The sip record's payload: start line, headers (as on the wire, in order,
// multi-value and compact names kept), body; written from the message's own
// bytes, valid while the parser's handle/handleStream runs (the pipeline
// encodes before it returns). JSON:
//   {"start_line":S,"method":S|null,"uri":S|null,"status":N|null,"reason":S|null,
//    "headers":[[name,value],...],"body":S,"body_truncated":B}
// Protobuf: otus.sip.v1.SipPayload (sip.proto).

import { ascii, jsonStringBytesLength, writeBytes, writeJsonStringBytes, writeUint } from '../../../src/pipeline/bytes.js';
import { varintSize, writeVarint } from '../../../src/pipeline/codec-protobuf.js';
import type { Payload } from '../../../src/pipeline/record.js';
import type { SipMessage } from './message.js';

const K_START = ascii('{"start_line":');
const K_METHOD = ascii(',"method":');
const K_URI = ascii(',"uri":');
const K_STATUS = ascii(',"status":');
const K_REASON = ascii(',"reason":');
const K_HEADERS = ascii(',"headers":[');
const K_BODY = ascii('],"body":');
const K_TRUNC = ascii(',"body_truncated":');
const NULL = ascii('null');
const TRUE = ascii('true');
const FALSE = ascii('false');

const jsonLen = jsonStringBytesLength;

function lenField(len: number): number {
  return 1 + varintSize(len) + len;
}

export class SipPayload implements Payload {
  readonly type = 'sip';
  private m: SipMessage | null = null;

  set(m: SipMessage): void {
    this.m = m;
  }

  writeJson(buf: Uint8Array, off: number, end: number): number {
    const m = this.m!;
    const b = m.buf;
    // Exact size first: one pass over the message, then write without checks.
    let need = 160 + jsonLen(b, m.lineOff, m.lineLen) + jsonLen(b, m.methodOff, m.methodLen) + jsonLen(b, m.uriOff, m.uriLen) + jsonLen(b, m.reasonOff, m.reasonLen) + jsonLen(b, m.bodyOff, m.bodyLen);
    for (let i = 0; i < m.headerCount; i++) need += 4 + jsonLen(b, m.hNameOff[i], m.hNameLen[i]) + jsonLen(b, m.hValOff[i], m.hValLen[i]);
    if (end - off < need) return -1;
    off = writeBytes(buf, off, K_START);
    off = writeJsonStringBytes(buf, off, b, m.lineOff, m.lineLen);
    off = writeBytes(buf, off, K_METHOD);
    off = m.isRequest ? writeJsonStringBytes(buf, off, b, m.methodOff, m.methodLen) : writeBytes(buf, off, NULL);
    off = writeBytes(buf, off, K_URI);
    off = m.isRequest ? writeJsonStringBytes(buf, off, b, m.uriOff, m.uriLen) : writeBytes(buf, off, NULL);
    off = writeBytes(buf, off, K_STATUS);
    off = m.isRequest ? writeBytes(buf, off, NULL) : writeUint(buf, off, m.status);
    off = writeBytes(buf, off, K_REASON);
    off = m.isRequest ? writeBytes(buf, off, NULL) : writeJsonStringBytes(buf, off, b, m.reasonOff, m.reasonLen);
    off = writeBytes(buf, off, K_HEADERS);
    for (let i = 0; i < m.headerCount; i++) {
      if (i > 0) buf[off++] = 44;
      buf[off++] = 91;
      off = writeJsonStringBytes(buf, off, b, m.hNameOff[i], m.hNameLen[i]);
      buf[off++] = 44;
      off = writeJsonStringBytes(buf, off, b, m.hValOff[i], m.hValLen[i]);
      buf[off++] = 93;
    }
    off = writeBytes(buf, off, K_BODY);
    off = writeJsonStringBytes(buf, off, b, m.bodyOff, m.bodyLen);
    off = writeBytes(buf, off, K_TRUNC);
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
