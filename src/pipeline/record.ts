// The data contract (docs/records.md): RawPacket (a capture-file or
// ring Frame) → DecodedPacket (src/decode/packet.ts) → OutputRecord, the
// envelope + labels + payload that parsers fill, processors see through a
// ProcessorView, and the codecs (codec-json.ts, codec-protobuf.ts) encode.
//
// One OutputRecord per pipeline, reset and overwritten per packet: every
// field exists from construction, addresses stay bytes until an encoder
// prints them, and nothing here allocates per packet.

import type { DecodedPacket } from '../decode/packet.js';
import { TunnelType } from '../decode/packet.js';
import { Labels } from './labels.js';

/** The codec a task's records are sent in (docs/records.md). */
export type RecordFormat = 'json' | 'protobuf';

/**
 * What a parser outputs besides labels (docs/records.md). Reporters serialize
 * it through the codecs; processors never see it. Writers return the offset
 * after what they wrote, or -1 when it would pass `end` (the record is then
 * dropped and counted, never thrown).
 */
export interface Payload {
  /** Equals the record's protocol. */
  readonly type: string;
  /** Writes one JSON value (normally an object) at buf[off..end). */
  writeJson(buf: Uint8Array, off: number, end: number): number;
  /** Exact size of writeBinary's output, asked before writing. */
  binarySize(): number;
  /** Writes the binary form (a protobuf message of the parser's own .proto) at buf[off..end). */
  writeBinary(buf: Uint8Array, off: number, end: number): number;
  /**
   * Optional, for parsers on a hot path: writes the payload's fields as they
   * are (no JSON, no protobuf) at buf[off..end) for the send ring; the
   * parser plugin's PayloadReader turns them back into a Payload in the
   * sender, which serializes it there (docs/reporters.md).
   */
  writeCompact?(buf: Uint8Array, off: number, end: number): number;
}

/**
 * The sender's side of Payload.writeCompact: one per parser plugin that has
 * a compact form (PluginDefinition.payloadReader), reused per record.
 */
export interface PayloadReader {
  /** The record protocol whose compact payloads this reads. */
  readonly protocol: string;
  /** A Payload over the compact bytes buf[off, off+len) (valid until the next read), or null when they are malformed. */
  read(buf: Uint8Array, off: number, len: number): Payload | null;
}

const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** The native-order word whose bytes in memory are `be`'s big-endian bytes. */
function memWord(be: number): number {
  return LE ? ((be & 0xff) << 24) | ((be & 0xff00) << 8) | ((be >>> 8) & 0xff00) | (be >>> 24) : be | 0;
}

/** Envelope + labels + payload (+ optional raw frame). Reused per packet. */
export class OutputRecord {
  // Envelope: written by the parser (or the unmatched policy), read-only after.
  hasTs = false;
  tsSec = 0;
  tsNsec = 0;
  /** Fractional digits for the JSON timestamp: 6 (µs sources) or 9 (ns). */
  tsDigits = 6;
  /** "sip", "rtp", ... or for unmatched records the transport: "udp", "tcp", "sctp", "icmp", "icmpv6", "ip", "eth". */
  protocol = '';

  // Flow five-tuple. ipVersion 0: no IP header (addresses absent).
  ipVersion = 0;
  /** 4 or 16 address bytes each; also as native-order 32-bit words (the wire encoder copies them so). */
  readonly src = new Uint8Array(16);
  readonly dst = new Uint8Array(16);
  readonly src32 = new Int32Array(this.src.buffer);
  readonly dst32 = new Int32Array(this.dst.buffer);
  /** -1 when absent. */
  sport = -1;
  dport = -1;
  proto = -1;

  // Network meta (read-only for processors).
  hasSrcMac = false;
  hasDstMac = false;
  /**
   * Source then destination MAC, 12 bytes as three little-endian 32-bit
   * words (the wire record stores them so, by words). setMacs() fills them.
   */
  macW0 = 0;
  macW1 = 0;
  macW2 = 0;
  vlanCount = 0;
  readonly vlans = new Uint16Array(8);
  tunnelType: TunnelType = TunnelType.None;
  tunnelId = -1;
  outerIpVersion = 0;
  readonly outerSrc = new Uint8Array(16);
  readonly outerDst = new Uint8Array(16);
  ttl = -1;
  /** Bytes on the wire and captured. */
  len = 0;
  caplen = 0;

  readonly labels = new Labels();

  /** Set by the parser; null only between reset() and the parser's handle(). */
  payload: Payload | null = null;

  /** Optional raw frame bytes (design: RawBytes), rawLen -1 when absent. */
  rawBuf: Uint8Array = new Uint8Array(0);
  rawOff = 0;
  rawLen = -1;
  /** LINKTYPE_* of the raw frame (the pcap reporter's file header). */
  rawLinkType = 1;

  reset(): void {
    this.hasTs = false;
    this.protocol = '';
    this.ipVersion = 0;
    this.sport = -1;
    this.dport = -1;
    this.proto = -1;
    this.hasSrcMac = false;
    this.hasDstMac = false;
    this.vlanCount = 0;
    this.tunnelType = TunnelType.None;
    this.tunnelId = -1;
    this.outerIpVersion = 0;
    this.ttl = -1;
    this.len = 0;
    this.caplen = 0;
    this.labels.clear();
    this.payload = null;
    this.rawLen = -1;
  }

  /**
   * Fills the envelope (timestamp, flow, network meta) from a decoded packet.
   * Parsers call this first, then set protocol, labels and payload.
   */
  fillEnvelope(p: DecodedPacket, hasTs: boolean, tsDigits: number): void {
    this.hasTs = hasTs;
    this.tsSec = p.tsSec;
    this.tsNsec = p.tsNsec;
    this.tsDigits = tsDigits;
    const v = p.ipVersion;
    this.ipVersion = v;
    if (v === 4) {
      // src4/dst4 hold the address bytes in network order as a big-endian read.
      this.src32[0] = memWord(p.src4);
      this.dst32[0] = memWord(p.dst4);
    } else if (v === 6) {
      const ab = p.addrBuf;
      const so = p.srcOff;
      const dof = p.dstOff;
      for (let i = 0; i < 16; i++) {
        this.src[i] = ab[so + i];
        this.dst[i] = ab[dof + i];
      }
    }
    this.sport = p.sport;
    this.dport = p.dport;
    this.proto = p.proto;
    this.ttl = p.ttl;
    this.len = p.len;
    this.caplen = p.caplen;
    this.setMacs(p.frameBuf, p.srcMacOff, p.dstMacOff);
    const n = p.vlanCount < 8 ? p.vlanCount : 8;
    this.vlanCount = n;
    for (let i = 0; i < n; i++) this.vlans[i] = p.vlans[i];
    this.tunnelType = p.tunnelType;
    if (p.tunnelType !== TunnelType.None) {
      this.tunnelId = p.tunnelId;
      this.outerIpVersion = p.outerIpVersion;
      for (let i = 0; i < 16; i++) {
        this.outerSrc[i] = p.outerSrc[i];
        this.outerDst[i] = p.outerDst[i];
      }
    }
  }

  /** MACs from 6 bytes at `s` and at `d` in buf (-1: absent). */
  setMacs(b: Uint8Array, s: number, d: number): void {
    this.hasSrcMac = s >= 0;
    this.hasDstMac = d >= 0;
    this.macW0 = s >= 0 ? b[s] | (b[s + 1] << 8) | (b[s + 2] << 16) | (b[s + 3] << 24) : 0;
    this.macW1 = (s >= 0 ? b[s + 4] | (b[s + 5] << 8) : 0) | (d >= 0 ? (b[d] << 16) | (b[d + 1] << 24) : 0);
    this.macW2 = d >= 0 ? b[d + 2] | (b[d + 3] << 8) | (b[d + 4] << 16) | (b[d + 5] << 24) : 0;
  }

  /** Attaches the frame's bytes as the record's raw frame (referenced, not copied). */
  attachRaw(p: DecodedPacket): void {
    this.rawBuf = p.frameBuf;
    this.rawOff = p.frameOff;
    this.rawLen = p.caplen;
    this.rawLinkType = p.linkType;
  }
}

/**
 * The only thing a processor is handed: the envelope read-only and
 * the labels read-write. The record sits in an ECMAScript private field, so
 * no property access, reflection (Object.keys, getOwnPropertyNames,
 * Reflect.ownKeys) or serialization reaches the payload or the raw frame.
 */
export class ProcessorView {
  readonly #r: OutputRecord;

  constructor(record: OutputRecord) {
    this.#r = record;
  }

  get labels(): Labels {
    return this.#r.labels;
  }
  get protocol(): string {
    return this.#r.protocol;
  }
  get hasTs(): boolean {
    return this.#r.hasTs;
  }
  get tsSec(): number {
    return this.#r.tsSec;
  }
  get tsNsec(): number {
    return this.#r.tsNsec;
  }
  get ipVersion(): number {
    return this.#r.ipVersion;
  }
  get sport(): number {
    return this.#r.sport;
  }
  get dport(): number {
    return this.#r.dport;
  }
  get proto(): number {
    return this.#r.proto;
  }
  get ttl(): number {
    return this.#r.ttl;
  }
  get vlanCount(): number {
    return this.#r.vlanCount;
  }
  vlan(i: number): number {
    return i >= 0 && i < this.#r.vlanCount ? this.#r.vlans[i] : -1;
  }
  /** Address byte i of the source (0..3 for IPv4, 0..15 for IPv6), -1 out of range. */
  srcByte(i: number): number {
    const r = this.#r;
    return i >= 0 && i < (r.ipVersion === 4 ? 4 : r.ipVersion === 6 ? 16 : 0) ? r.src[i] : -1;
  }
  dstByte(i: number): number {
    const r = this.#r;
    return i >= 0 && i < (r.ipVersion === 4 ? 4 : r.ipVersion === 6 ? 16 : 0) ? r.dst[i] : -1;
  }
  get hasRaw(): boolean {
    return this.#r.rawLen >= 0;
  }
  toJSON(): object {
    return { protocol: this.protocol, labels: this.labels.toObject() };
  }
}
