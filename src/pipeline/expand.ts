// The sender's half of the record path: a wire record from the send ring
// (wire.ts) expanded into the reporter's format, JSON or protobuf. Compact
// payloads are read back by the PayloadReader of the parser plugin that
// wrote them, found by the record's protocol name.

import { ascii } from '../util/bytes.js';
import { writeJsonRecord } from './codec-json.js';
import { writeProtobufRecord } from './codec-protobuf.js';
import { symmetricWireHash } from './flow-hash.js';
import type { KeyResolver } from './label-keys.js';
import type { Payload, PayloadReader, RecordFormat } from './record.js';
import { LabelKind, PayloadKind, WireRecord } from './wire.js';

export class ExpandStats {
  /** Records expanded. */
  records = 0;
  /** Dropped: not a well-formed wire record. */
  malformed = 0;
  /** Dropped: the expanded record was bigger than the output room. */
  tooBig = 0;
  /** Payload written as null: a compact payload no reader knows, or one its reader refused. */
  payloadUnread = 0;
  /** Payload written as null: pre-encoded in the other format (capture and sender disagree on the format). */
  payloadFormat = 0;
}

const CALL_ID = ascii('call-id');
const SIP_CALL_ID = ascii('sip.call-id');

/**
 * What the sender knows of a record beside its bytes, for reporters that key
 * or tag messages (Kafka: message key and headers): the wire record it was
 * expanded from, read on demand, so reporters that want none of it pay
 * nothing. One per expander, describing the record last expanded.
 */
export class RecordMeta {
  constructor(readonly wire: WireRecord) {}

  /** Index of the record's call-id label (`call-id`, else `sip.call-id`), -1 without one. */
  callIdLabel(): number {
    const w = this.wire;
    let sip = -1;
    for (let i = 0; i < w.labelCount; i++) {
      if (w.valKind[i] !== LabelKind.Bytes) continue;
      if (keyIs(w, i, CALL_ID)) return i;
      if (sip < 0 && keyIs(w, i, SIP_CALL_ID)) sip = i;
    }
    return sip;
  }

  /** Index of the label named by these ASCII bytes, -1 without it. */
  label(name: Uint8Array): number {
    const w = this.wire;
    for (let i = 0; i < w.labelCount; i++) if (keyIs(w, i, name)) return i;
    return -1;
  }

  /** The five-tuple's symmetric hash (both directions alike, flow-hash.ts); 0 without IP. */
  flowHash(): number {
    return symmetricWireHash(this.wire);
  }
}

function keyIs(w: WireRecord, i: number, name: Uint8Array): boolean {
  if (w.keyLen[i] !== name.length) return false;
  const b = w.keyBuf[i];
  const o = w.keyOff[i];
  for (let j = 0; j < name.length; j++) if (b[o + j] !== name[j]) return false;
  return true;
}

export class RecordExpander {
  readonly stats = new ExpandStats();
  readonly wire = new WireRecord();
  /** The last expanded record's labels and flow (valid until the next expand). */
  readonly meta = new RecordMeta(this.wire);
  private readonly names: Uint8Array[];
  private readonly readers: PayloadReader[];

  constructor(
    readonly format: RecordFormat,
    readers: readonly PayloadReader[],
  ) {
    this.readers = [...readers];
    this.names = this.readers.map((r) => ascii(r.protocol));
  }

  /**
   * Expands the wire record at buf[off, off+len), its key ids named by
   * `keys` (the batch's), into out[outOff..outEnd). Returns the offset after
   * it, or -1 when the record is dropped (counted).
   */
  expand(buf: Uint8Array, off: number, len: number, keys: KeyResolver, out: Uint8Array, outOff: number, outEnd: number): number {
    const w = this.wire;
    if (!w.load(buf, off, len, keys)) {
      this.stats.malformed++;
      return -1;
    }
    let compact: Payload | null = null;
    const pk = w.payloadKind;
    if (pk === PayloadKind.Compact) {
      compact = this.read(w);
      if (compact === null) this.stats.payloadUnread++;
    } else if (pk === (this.format === 'json' ? PayloadKind.Protobuf : PayloadKind.Json)) this.stats.payloadFormat++;
    const end = this.format === 'json' ? writeJsonRecord(w, compact, out, outOff, outEnd) : writeProtobufRecord(w, compact, out, outOff, outEnd);
    if (end < 0) this.stats.tooBig++;
    else this.stats.records++;
    return end;
  }

  /** Reads the wire record only (into `wire`, for `meta`), for a reporter that needs no JSON or protobuf: 0, or -1 when malformed (counted). */
  load(buf: Uint8Array, off: number, len: number, keys: KeyResolver): number {
    if (!this.wire.load(buf, off, len, keys)) {
      this.stats.malformed++;
      return -1;
    }
    this.stats.records++;
    return 0;
  }

    private read(w: WireRecord): Payload | null {
    const names = this.names;
    for (let i = 0; i < names.length; i++) if (w.protocolIs(names[i])) return this.readers[i].read(w.buf, w.payloadOff, w.payloadLen);
    return null;
  }
}
