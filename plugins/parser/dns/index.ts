// dns parser (issue 5 item 5; plugins/README.md: "port 53, every packet parsed
// on its own, stateless"). DNS over UDP, and over TCP (RFC 1035 §4.2.2,
// RFC 7766) through the pipeline's TCP reassembly (src/reassembly/): the
// parser frames length-prefixed messages in each direction's ordered bytes.
//
// Per message: the whole message is validated by one dry walk (message.ts),
// labels are set from bytes (no strings made per packet except through the
// precomputed tables), and the payload object is this parser's one reused
// DnsPayload, which writes the JSON (or protobuf) on the output path by
// walking the message again. A message under 12 bytes (or, over TCP, a zero
// length prefix) is rejected (no record) and counted by reason; a message malformed after its header is emitted with what parsed
// and `"malformed":"<reason>"`, counted by reason too.

import type { DecodedPacket } from '../../../src/decode/packet.js';
import { writeUint } from '../../../src/util/bytes.js';
import { varintSize, writeVarint } from '../../../src/pipeline/codec-protobuf.js';
import type { OutputRecord, Payload } from '../../../src/pipeline/record.js';
import type { PluginDefinition, RecordEmitter, StreamParser } from '../../../src/plugin/types.js';
import type { TcpChunk } from '../../../src/reassembly/tcp-stream.js';
import { DnsMessage, Malformed, MALFORMED_NAMES } from './message.js';
import { SMALL_DECIMAL, TYPE_NAME } from './names.js';

export interface DnsConfig {
  /** UDP/TCP ports whose traffic is DNS (either side). */
  ports: number[];
  /** Parse DNS over TCP as well (the pipeline reassembles connections on `ports`). */
  tcp: boolean;
}

/** Why a message gave no record. */
export const enum Reject {
  /** Shorter than a DNS header (12 bytes). */
  ShortHeader = 0,
  /** TCP: a length prefix of 0. */
  TcpEmpty,
}
export const REJECT_NAMES: readonly string[] = ['short_header', 'tcp_empty'];

export class DnsStats {
  /** Packets handed to handle(). */
  messages = 0;
  /** Records emitted (malformed ones included). */
  records = 0;
  /** No record, by Reject. */
  readonly rejected = new Float64Array(REJECT_NAMES.length);
  /** Emitted with "malformed", by Malformed (index 0 unused). */
  readonly malformed = new Float64Array(MALFORMED_NAMES.length);
  /** TCP: bytes skipped after a gap in the stream (framing lost). */
  tcpBytesSkipped = 0;
  /** Messages with the TC bit set. */
  truncatedTc = 0;

  toJSON(): Record<string, unknown> {
    const rejected: Record<string, number> = {};
    REJECT_NAMES.forEach((n, i) => this.rejected[i] > 0 && (rejected[n] = this.rejected[i]));
    const malformed: Record<string, number> = {};
    MALFORMED_NAMES.forEach((n, i) => i > 0 && this.malformed[i] > 0 && (malformed[n] = this.malformed[i]));
    return {
      messages: this.messages,
      records: this.records,
      rejected,
      malformed,
      tcp_bytes_skipped: this.tcpBytesSkipped,
      tc: this.truncatedTc,
    };
  }
}

/**
 * Payload: the JSON object of message.ts; protobuf `otus.dns.v1.DnsPayload`
 * (dns.proto): id, flags, the message bytes as received, malformed reason.
 */
export class DnsPayload implements Payload {
  readonly type = 'dns';
  constructor(private readonly msg: DnsMessage) {}

  writeJson(buf: Uint8Array, off: number, end: number): number {
    return this.msg.writeJson(buf, off, end);
  }

  binarySize(): number {
    const m = this.msg;
    const len = m.end - m.base;
    let n = 1 + varintSize(m.id) + 1 + varintSize(m.flags) + 1 + varintSize(len) + len;
    if (m.malformed !== Malformed.None) {
      const r = MALFORMED_NAMES[m.malformed].length;
      n += 1 + varintSize(r) + r;
    }
    return n;
  }

  writeBinary(buf: Uint8Array, off: number, end: number): number {
    if (end - off < this.binarySize()) return -1;
    const m = this.msg;
    buf[off++] = 0x08; // 1: id
    off = writeVarint(buf, off, m.id);
    buf[off++] = 0x10; // 2: flags
    off = writeVarint(buf, off, m.flags);
    buf[off++] = 0x1a; // 3: wire
    const len = m.end - m.base;
    off = writeVarint(buf, off, len);
    const b = m.b;
    for (let i = m.base; i < m.end; i++) buf[off++] = b[i];
    if (m.malformed !== Malformed.None) {
      const r = MALFORMED_NAMES[m.malformed];
      buf[off++] = 0x22; // 4: malformed
      off = writeVarint(buf, off, r.length);
      for (let i = 0; i < r.length; i++) buf[off++] = r.charCodeAt(i);
    }
    return off;
  }
}

export class DnsParser implements StreamParser {
  readonly protocol = 'dns';
  readonly stats = new DnsStats();
  readonly msg = new DnsMessage();
  private readonly payload: DnsPayload;
  private readonly ports = new Uint8Array(65536);
  /** StreamParser: the TCP ports whose connections the pipeline reassembles for this parser. */
  readonly tcp: { readonly ports: readonly number[] };
  private readonly digits = new Uint8Array(16);
  /** streamId * 2 + dir of directions whose framing a gap broke. */
  private readonly lost = new Set<number>();

  constructor(cfg: DnsConfig) {
    for (const p of cfg.ports) this.ports[p] = 1;
    this.tcp = { ports: cfg.tcp ? [...cfg.ports] : [] };
    this.payload = new DnsPayload(this.msg);
  }

  /** UDP only: TCP on these ports reaches handleStream through the pipeline's reassembler. */
  canHandle(p: DecodedPacket): boolean {
    return p.proto === 17 && p.payloadLen > 0 && (this.ports[p.sport] === 1 || this.ports[p.dport] === 1);
  }

  handle(p: DecodedPacket, out: OutputRecord, hasTs: boolean, tsDigits: number): boolean {
    this.stats.messages++;
    if (p.payloadLen < 12) return this.reject(Reject.ShortHeader);
    this.fill(out, p, hasTs, tsDigits, p.payloadBuf, p.payloadOff, p.payloadLen);
    return true;
  }

  /**
   * DNS over TCP (RFC 1035 §4.2.2, RFC 7766 §8): in-order bytes of one
   * direction, each message behind its 2-byte length; one record per
   * message. After a gap the framing is lost: the rest of that direction is
   * skipped and counted (no resynchronisation guess).
   */
  handleStream(c: TcpChunk, out: RecordEmitter): number {
    const key = c.streamId * 2 + c.dir;
    if (c.gap) this.lost.add(key);
    if (this.lost.has(key)) {
      this.stats.tcpBytesSkipped += c.len;
      return c.len;
    }
    const b = c.buf;
    const e = c.off + c.len;
    let q = c.off;
    while (e - q >= 2) {
      const l = (b[q] << 8) | b[q + 1];
      if (l === 0) {
        this.stats.messages++;
        this.reject(Reject.TcpEmpty);
        q += 2;
        continue;
      }
      if (e - q < 2 + l) break; // the rest comes with later segments
      this.stats.messages++;
      if (l < 12) this.reject(Reject.ShortHeader);
      else {
        const rec = out.record;
        rec.reset();
        this.fill(rec, c.packet, c.hasTs, c.tsDigits, b, q + 2, l);
        c.stamp(rec, q); // its first byte's capture time
        out.emit();
      }
      q += 2 + l;
    }
    return q - c.off;
  }

  streamEnd(streamId: number): void {
    this.lost.delete(streamId * 2);
    this.lost.delete(streamId * 2 + 1);
  }

  private fill(out: OutputRecord, p: DecodedPacket, hasTs: boolean, tsDigits: number, b: Uint8Array, off: number, len: number): void {
    const st = this.stats;
    const m = this.msg;
    m.reset(b, off, len);
    const bad = m.validate();
    if (bad !== Malformed.None) st.malformed[bad]++;
    const flags = m.flags;
    if ((flags & 0x200) !== 0) st.truncatedTc++;

    out.fillEnvelope(p, hasTs, tsDigits);
    out.protocol = 'dns';
    const labels = out.labels;
    const d = this.digits;
    labels.setBytes('dns.id', d, 0, writeUint(d, 0, m.id));
    labels.set('dns.qr', SMALL_DECIMAL[flags >>> 15]);
    if (m.qType >= 0) {
      labels.setBytes('dns.query', m.qName, 0, m.qNameLen);
      const t = TYPE_NAME.get(m.qType);
      if (t !== '') labels.set('dns.type', t);
      else {
        d[0] = 84; // TYPE<n> (RFC 3597 §5)
        d[1] = 89;
        d[2] = 80;
        d[3] = 69;
        labels.setBytes('dns.type', d, 0, writeUint(d, 4, m.qType));
      }
    }
    labels.set('dns.rcode', SMALL_DECIMAL[flags & 15]);
    out.payload = this.payload;
    st.records++;
  }

  private reject(r: Reject): boolean {
    this.stats.rejected[r]++;
    return false;
  }

  counters(): Record<string, unknown> {
    return this.stats.toJSON();
  }
}

const PORT = { type: 'integer', minimum: 1, maximum: 65535 };

const dns: PluginDefinition<'parser', DnsConfig> = {
  meta: {
    name: 'dns',
    version: '0.1.0',
    kind: 'parser',
    labels: ['dns.id', 'dns.qr', 'dns.query', 'dns.type', 'dns.rcode'],
    description: 'DNS messages over UDP and TCP (RFC 1035, 6891, 7766, 9460): header, questions, every RR section.',
    configSchema: {
      type: 'object',
      properties: {
        ports: { type: 'array', items: PORT, minItems: 1, uniqueItems: true, default: [53] },
        tcp: { type: 'boolean', default: true },
      },
      additionalProperties: false,
    },
  },
  init(ctx) {
    return new DnsParser(ctx.config);
  },
};

export default dns;
