// The unmatched policy's record (docs/architecture.md, "Processes", task `unmatched_policy`):
// a packet no parser accepted is, under `forward`, emitted with its L3/L4
// envelope, the transport as protocol, and an L4Payload payload
// ({"payload_len": N} in JSON); under `drop` it is counted and dropped.

import type { DecodedPacket } from '../decode/packet.js';
import { Literal, writeLiteral, writeUintOrNull } from '../util/bytes.js';
import { varintSize, writeVarint } from './codec-protobuf.js';
import type { OutputRecord, Payload } from './record.js';

export type UnmatchedPolicy = 'forward' | 'drop';

/** Protocol name of an unmatched record from the innermost IP protocol number. */
export function transportName(ipVersion: number, proto: number): string {
  if (ipVersion === 0) return 'eth';
  switch (proto) {
    case 17:
      return 'udp';
    case 6:
      return 'tcp';
    case 132:
      return 'sctp';
    case 1:
      return 'icmp';
    case 58:
      return 'icmpv6';
    default:
      return 'ip';
  }
}

const K_PAYLOAD_LEN = new Literal('{"payload_len":');

/** otus.v1.L4Payload; one instance per pipeline, overwritten per record. */
export class L4Payload implements Payload {
  type = '';
  payloadLen = -1;

  writeJson(buf: Uint8Array, off: number, end: number): number {
    if (end - off < 40) return -1;
    off = writeLiteral(buf, off, K_PAYLOAD_LEN);
    off = writeUintOrNull(buf, off, this.payloadLen);
    buf[off++] = 125;
    return off;
  }

  binarySize(): number {
    return this.payloadLen < 0 ? 0 : 1 + varintSize(this.payloadLen);
  }

  writeBinary(buf: Uint8Array, off: number, end: number): number {
    if (this.payloadLen < 0) return off;
    if (end - off < this.binarySize()) return -1;
    buf[off++] = 0x08; // field 1, varint
    return writeVarint(buf, off, this.payloadLen);
  }
}

/** Fills `out` as the unmatched policy's forward record. */
export function fillUnmatched(out: OutputRecord, payload: L4Payload, p: DecodedPacket, hasTs: boolean, tsDigits: number): void {
  out.fillEnvelope(p, hasTs, tsDigits);
  const name = transportName(p.ipVersion, p.proto);
  out.protocol = name;
  payload.type = name;
  payload.payloadLen = p.ipVersion === 0 ? -1 : p.payloadLen;
  out.payload = payload;
}
