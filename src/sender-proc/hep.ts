// The `hep` reporter (docs/reporters.md): records as HEPv3 packets to a
// Homer / heplify-server collector, over UDP, TCP or TLS. A SIP record is
// sent as payload type 1 with the SIP message as captured (its bytes travel
// in the sip parser's compact payload: src/pipeline/wire.ts,
// plugins/parser/sip/payload.ts); an RTCP record as type 5, JSON in the
// layout Homer reads (homerRtcp), the call's Call-ID in the correlation
// chunk; an `rtp.stats` record as type 34, the per-stream report of Homer's
// RTP agents (homerRtpStats), with the Call-ID and a MOS chunk; a
// `sip.call` record as type 100 (a log Homer shows with the call), its JSON
// as it is, with the Call-ID. Other records are not HEP's: counted as
// failed, reason `skipped`.
//
// HEP3 (sipcapture's "HEP3 Network Protocol Specification"): a packet is
// "HEP3", a u16 total length, then chunks, each u16 vendor id (0, generic),
// u16 chunk type, u16 chunk length (its 6-byte header included), the value;
// every number big-endian. Over TCP and TLS packets follow each other on the
// stream, framed by their length (what heplify-server reads).
//
// Accounting, as the Kafka reporter's: every record handed to report() ends
// as sent (`acked`: handed to the kernel; HEP has no acknowledgement),
// timed out (waited longer than delivery_timeout_ms for a connection),
// failed by reason (skipped, too_big, bad_payload, the socket's error code,
// connection_lost, queue_full, abandoned), or is still queued. Backpressure:
// when queue_max_messages are queued or being written, `blocked` is set and
// the sender waits for writable().

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TaskSpec } from '../config/task.js';
import type { EncodedRecord, PluginDefinition, Reporter, ReporterCounters } from '../plugin/types.js';
import { LabelKind, PayloadKind, type WireRecord } from '../pipeline/wire.js';
import { ascii, writeIpv4, writeIpv6 } from '../util/bytes.js';
import { OtusError } from '../util/errors.js';
import type { RtpStatsJson } from '../../plugins/parser/rtp/stats-payload.js';
import { compactMessageAt } from '../../plugins/parser/sip/payload.js';

export interface HepReporterConfig {
  /** Collector `host:port`. */
  address: string;
  transport: 'udp' | 'tcp' | 'tls';
  /** Capture agent id (chunk 0x000c; heplify-server's NodeID). */
  capture_id: number;
  /** Authentication key (chunk 0x000e; heplify-server's NodePW). */
  password?: string;
  /** Node name (chunk 0x0013); default: the node's hostname. */
  node_name?: string;
  queue_max_messages: number;
  delivery_timeout_ms: number;
  reconnect_max_ms: number;
  tls?: { ca?: string; cert?: string; key?: string; servername?: string; reject_unauthorized?: boolean };
}

const DEFAULTS = {
  transport: 'udp',
  capture_id: 2001,
  queue_max_messages: 10000,
  delivery_timeout_ms: 10000,
  reconnect_max_ms: 5000,
} as const;

// Chunk types (vendor 0x0000), by the specification's numbers.
const C_IP_FAMILY = 0x0001; // u8: 2 IPv4, 10 IPv6
const C_IP_PROTO = 0x0002; // u8: IP protocol number (17 UDP, 6 TCP)
const C_IPV4_SRC = 0x0003; // 4 bytes
const C_IPV4_DST = 0x0004;
const C_IPV6_SRC = 0x0005; // 16 bytes
const C_IPV6_DST = 0x0006;
const C_SRC_PORT = 0x0007; // u16
const C_DST_PORT = 0x0008;
const C_TS_SEC = 0x0009; // u32: Unix seconds
const C_TS_USEC = 0x000a; // u32: microseconds within the second
const C_PROTO_TYPE = 0x000b; // u8: 1 SIP, 5 RTCP (JSON)...
const C_CAPTURE_ID = 0x000c; // u32
const C_AUTH_KEY = 0x000e; // octets
const C_PAYLOAD = 0x000f; // octets
const C_CORRELATION_ID = 0x0011; // octets
const C_NODE_NAME = 0x0013; // octets (heplify-server: NodeName)
const C_MOS = 0x0020; // u16: MOS x 100 (hep-js's `mos`, what Homer's agents send with type 34)

export const HEP_TYPE_SIP = 1;
export const HEP_TYPE_RTCP = 5;
/**
 * Per-stream RTP quality reports, JSON: protocol type 0x22, which HEP
 * implementations list as the JSON "MOS full report" (0x23 the short one,
 * RTCP-XR). heplify-server reads type 34 as "RTPAgent" reports
 * (metric/prometheus.go: dissectRTPStats reads DELTA, JITTER, MOS,
 * PACKET_LOSS, RFACTOR, SKEW) and stores types other than 1, 5, 53, 54, 100
 * that carry a correlation id in its report table, the correlation id as
 * the call's sid (database/postgres.go); the field names are those of the
 * reports in sipcapture/hepgen.js (config/reports_rtp.js,
 * config/hepgen_caller_sbc_kam_fs_app.js: TYPE PERIODIC and FINAL, the MOS
 * chunk as MOS x 100).
 */
export const HEP_TYPE_RTP_STATS = 34;
/**
 * Logs, JSON: heplify-server stores type 100 in its log table with the
 * correlation id as the call's sid, and Homer shows them with the call. A
 * `sip.call` record goes as one: its JSON payload as the file reporter
 * writes it, the Call-ID as correlation id.
 */
export const HEP_TYPE_LOG = 100;

/** A HEP packet's length is a u16. */
export const HEP_MAX = 0xffff;

const SIP = ascii('sip');
const RTCP = ascii('rtcp');
const RTP_STATS = ascii('rtp.stats');
const SIP_CALL = ascii('sip.call');
const CALL_ID = ascii('call-id');
const CODEC = ascii('codec');
const SSRC = ascii('rtp.ssrc');

/**
 * Writes HEP3 packets from wire records: the node's chunks (capture id,
 * name, password) made once, the record's read from the wire record in
 * place.
 */
export class HepEncoder {
  private readonly password: Uint8Array | null;
  private readonly nodeName: Uint8Array | null;
  /** Bytes of every packet besides the address, correlation and payload chunks. */
  private readonly fixed: number;
  private readonly text = new TextDecoder();
  /** Where the last pick() found the payload and correlation id, and the type. */
  type = 0;
  payloadBuf: Uint8Array = new Uint8Array(0);
  payloadOff = 0;
  payloadLen = 0;
  cidOff = 0;
  cidLen = 0;
  /** The MOS chunk's value (MOS x 100), -1 for none. */
  mos = -1;
  private readonly addr = new Uint8Array(64);

  constructor(
    private readonly captureId: number,
    password: string | undefined,
    nodeName: string | undefined,
  ) {
    this.password = password !== undefined && password !== '' ? Buffer.from(password, 'utf8') : null;
    this.nodeName = nodeName !== undefined && nodeName !== '' ? Buffer.from(nodeName, 'utf8') : null;
    // header 6; family, proto 7 each; ports 8 each; seconds, microseconds 10 each; type 7; capture id 10.
    this.fixed = 6 + 7 + 7 + 8 + 8 + 10 + 10 + 7 + 10 + (this.password ? 6 + this.password.length : 0) + (this.nodeName ? 6 + this.nodeName.length : 0);
  }

  /**
   * What of the record HEP carries: its type and payload span (and the
   * correlation id's), or why not: 'skipped' (not SIP, RTCP, rtp.stats or sip.call,
   * or without IP), 'bad_payload' (not in the form expected: a third-party
   * parser of that name, a payload that does not read back).
   */
  pick(w: WireRecord): 'ok' | 'skipped' | 'bad_payload' {
    if (w.ipVersion !== 4 && w.ipVersion !== 6) return 'skipped';
    this.cidLen = 0;
    this.mos = -1;
    if (w.protocolIs(SIP)) {
      const at = w.payloadKind === PayloadKind.Compact ? compactMessageAt(w.buf, w.payloadOff, w.payloadLen) : -1;
      if (at < 0) return 'bad_payload';
      this.type = HEP_TYPE_SIP;
      this.payloadBuf = w.buf;
      this.payloadOff = w.payloadOff + at;
      this.payloadLen = w.payloadLen - at;
      return 'ok';
    }
    if (w.protocolIs(RTCP)) {
      if (w.payloadKind !== PayloadKind.Json) return 'bad_payload';
      const json = homerRtcp(this.text.decode(w.buf.subarray(w.payloadOff, w.payloadOff + w.payloadLen)));
      if (json === null) return 'bad_payload';
      // Per RTCP record (a few per call and minute), not per packet: a string and its bytes are affordable here.
      this.payloadBuf = Buffer.from(json, 'utf8');
      this.type = HEP_TYPE_RTCP;
      this.payloadOff = 0;
      this.payloadLen = this.payloadBuf.length;
      this.callId(w);
      return 'ok';
    }
    if (w.protocolIs(RTP_STATS)) {
      if (w.payloadKind !== PayloadKind.Json) return 'bad_payload';
      this.callId(w);
      const ssrc = labelIndex(w, SSRC);
      const codec = labelIndex(w, CODEC);
      const r = homerRtpStats(this.text.decode(w.buf.subarray(w.payloadOff, w.payloadOff + w.payloadLen)), {
        callId: this.cidLen > 0 ? this.text.decode(w.buf.subarray(this.cidOff, this.cidOff + this.cidLen)) : '',
        codec: codec >= 0 ? labelText(w, codec, this.text) : null,
        ssrc: ssrc >= 0 ? Number(labelText(w, ssrc, this.text)) : null,
        src: this.address(w, w.srcOff),
        sport: w.sport,
        dst: this.address(w, w.dstOff),
        dport: w.dport,
        ts: w.tsSec + Math.floor(w.tsNsec / 1000) / 1e6,
      });
      if (r === null) return 'bad_payload';
      // Per stream and interval, not per packet: a string and its bytes are affordable here.
      this.payloadBuf = Buffer.from(r.json, 'utf8');
      this.type = HEP_TYPE_RTP_STATS;
      this.payloadOff = 0;
      this.payloadLen = this.payloadBuf.length;
      if (r.mos !== null) this.mos = Math.round(r.mos * 100);
      return 'ok';
    }
    if (w.protocolIs(SIP_CALL)) {
      if (w.payloadKind !== PayloadKind.Json) return 'bad_payload';
      this.type = HEP_TYPE_LOG;
      this.payloadBuf = w.buf;
      this.payloadOff = w.payloadOff;
      this.payloadLen = w.payloadLen;
      this.callId(w);
      return 'ok';
    }
    return 'skipped';
  }

  /** The record's `call-id` label as the correlation id (cidOff, cidLen), when it has one. */
  private callId(w: WireRecord): void {
    const i = labelIndex(w, CALL_ID);
    if (i < 0 || w.valKind[i] !== LabelKind.Bytes) return;
    this.cidOff = w.valOff[i];
    this.cidLen = w.valLen[i];
  }

  private address(w: WireRecord, off: number): string {
    const end = w.ipVersion === 4 ? writeIpv4(this.addr, 0, w.buf, off) : writeIpv6(this.addr, 0, w.buf, off);
    return this.text.decode(this.addr.subarray(0, end));
  }

  /** The packet's size for the record last pick()ed. */
  size(w: WireRecord): number {
    const al = w.ipVersion === 4 ? 4 : 16;
    return this.fixed + 2 * (6 + al) + (this.cidLen > 0 ? 6 + this.cidLen : 0) + (this.mos >= 0 ? 8 : 0) + 6 + this.payloadLen;
  }

  /** Writes the packet of the record last pick()ed at out[off..], size(w) bytes (the caller made room). */
  write(w: WireRecord, out: Uint8Array, off: number, nowMs: number): number {
    const start = off;
    const b = w.buf;
    out[off] = 0x48; // "HEP3"
    out[off + 1] = 0x45;
    out[off + 2] = 0x50;
    out[off + 3] = 0x33;
    off += 6; // the total length is written last
    const v6 = w.ipVersion === 6;
    off = u8Chunk(out, off, C_IP_FAMILY, v6 ? 10 : 2);
    off = u8Chunk(out, off, C_IP_PROTO, w.proto < 0 ? 0 : w.proto);
    const al = v6 ? 16 : 4;
    off = bytesChunk(out, off, v6 ? C_IPV6_SRC : C_IPV4_SRC, b, w.srcOff, al);
    off = bytesChunk(out, off, v6 ? C_IPV6_DST : C_IPV4_DST, b, w.dstOff, al);
    off = u16Chunk(out, off, C_SRC_PORT, w.sport < 0 ? 0 : w.sport);
    off = u16Chunk(out, off, C_DST_PORT, w.dport < 0 ? 0 : w.dport);
    // A record without a capture time (pcapng Simple Packet Block) gets the time it is sent.
    const sec = w.hasTs ? w.tsSec : Math.floor(nowMs / 1000);
    const usec = w.hasTs ? Math.floor(w.tsNsec / 1000) : (nowMs % 1000) * 1000;
    off = u32Chunk(out, off, C_TS_SEC, sec >>> 0);
    off = u32Chunk(out, off, C_TS_USEC, usec);
    off = u8Chunk(out, off, C_PROTO_TYPE, this.type);
    off = u32Chunk(out, off, C_CAPTURE_ID, this.captureId);
    if (this.nodeName !== null) off = bytesChunk(out, off, C_NODE_NAME, this.nodeName, 0, this.nodeName.length);
    if (this.password !== null) off = bytesChunk(out, off, C_AUTH_KEY, this.password, 0, this.password.length);
    if (this.cidLen > 0) off = bytesChunk(out, off, C_CORRELATION_ID, b, this.cidOff, this.cidLen);
    if (this.mos >= 0) off = u16Chunk(out, off, C_MOS, this.mos);
    off = bytesChunk(out, off, C_PAYLOAD, this.payloadBuf, this.payloadOff, this.payloadLen);
    const len = off - start;
    out[start + 4] = len >>> 8;
    out[start + 5] = len & 0xff;
    return off;
  }
}

interface RtcpReport {
  ssrc: number;
  fraction_lost: number;
  cumulative_lost: number;
  highest_seq: number;
  jitter: number;
  lsr: number;
  dlsr: number;
}

interface RtcpJsonPacket {
  type: string;
  pt: number;
  count: number;
  ssrc?: number;
  ntp_sec?: number;
  ntp_frac?: number;
  rtp_ts?: number;
  packet_count?: number;
  octet_count?: number;
  reports?: RtcpReport[];
  chunks?: { ssrc: number }[];
}

/**
 * An rtcp record's JSON payload (docs/records.md) in the layout Homer reads
 * from HEP type 5, the one its agents (heplify, captagent) send: the
 * compound's sender report or receiver report as `type`, `ssrc`,
 * `report_count`, `sender_information` and `report_blocks`, the SDES
 * chunk's SSRC as `sdes_ssrc`. Null when it is not an rtcp payload.
 */
export function homerRtcp(json: string): string | null {
  let packets: RtcpJsonPacket[];
  try {
    packets = (JSON.parse(json) as { packets: RtcpJsonPacket[] }).packets;
  } catch {
    return null;
  }
  if (!Array.isArray(packets) || packets.length === 0) return null;
  const report = packets.find((p) => p.pt === 200 || p.pt === 201) ?? packets[0]!;
  const sdes = packets.find((p) => p.pt === 202);
  const out = {
    sender_information: {
      ntp_timestamp_sec: report.ntp_sec ?? 0,
      ntp_timestamp_usec: report.ntp_frac ?? 0,
      rtp_timestamp: report.rtp_ts ?? 0,
      packets: report.packet_count ?? 0,
      octets: report.octet_count ?? 0,
    },
    ssrc: report.ssrc ?? 0,
    type: report.pt,
    report_count: report.count,
    report_blocks: (report.reports ?? []).map((r) => ({
      source_ssrc: r.ssrc,
      fraction_lost: r.fraction_lost,
      packets_lost: r.cumulative_lost,
      highest_seq_no: r.highest_seq,
      ia_jitter: r.jitter,
      lsr: r.lsr,
      dlsr: r.dlsr,
    })),
    sdes_ssrc: sdes?.chunks?.[0]?.ssrc ?? 0,
  };
  return JSON.stringify(out);
}

/** Index of the label named by these ASCII bytes, -1 without it. */
function labelIndex(w: WireRecord, name: Uint8Array): number {
  for (let i = 0; i < w.labelCount; i++) {
    if (w.keyLen[i] !== name.length) continue;
    const kb = w.keyBuf[i];
    const ko = w.keyOff[i];
    let j = 0;
    while (j < name.length && kb[ko + j] === name[j]) j++;
    if (j === name.length) return i;
  }
  return -1;
}

function labelText(w: WireRecord, i: number, text: TextDecoder): string {
  return w.valKind[i] === LabelKind.Uint ? String(w.valNum[i]) : text.decode(w.buf.subarray(w.valOff[i], w.valOff[i] + w.valLen[i]));
}

/** What an rtp.stats report's HEP payload takes from its record's envelope and labels. */
export interface RtpStream {
  /** The `call-id` label, '' without one. */
  callId: string;
  codec: string | null;
  ssrc: number | null;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** The report's time, seconds since 1970 (microseconds). */
  ts: number;
}


/**
 * An rtp.stats record's JSON payload as the report Homer's RTP agents send
 * in HEP type 34 (HEP_TYPE_RTP_STATS): packets (TOTAL_PK, EXPECTED_PK,
 * PACKET_LOSS, TL_BYTE, OUT_ORDER), jitter and inter-packet delta in ms
 * (JITTER, MAX_JITTER, MEAN_JITTER; DELTA the mean, MAX_DELTA), MOS and
 * RFACTOR, the stream (SRC_IP...DST_PORT, SSRC, CODEC_PT, CLOCK,
 * CODEC_NAME), the call (CORRELATION_ID, RTP_SIP_CALL_ID), the report's time
 * (REPORT_TS; REPORT_START and REPORT_END its stream's first and last
 * packet) and TYPE: PERIODIC for an interval report, FINAL for the
 * stream's last (end, evicted). Figures the rtp parser does not measure
 * (SKEW, MIN_MOS, MEAN_MOS, MACs, DIR, PARTY) are left out rather than
 * made up; MOS and RFACTOR are left out for codecs without a score. The MOS
 * as its chunk's value is `mos`. Null when it is not an rtp.stats payload.
 */
export function homerRtpStats(json: string, s: RtpStream): { json: string; mos: number | null } | null {
  let p: RtpStatsJson;
  try {
    p = JSON.parse(json) as RtpStatsJson;
  } catch {
    return null;
  }
  if (p === null || typeof p !== 'object' || typeof p.report !== 'string' || typeof p.packets !== 'number') return null;
  const out: Record<string, unknown> = {
    CORRELATION_ID: s.callId,
    RTP_SIP_CALL_ID: s.callId,
    DELTA: p.mean_delta_ms,
    JITTER: p.jitter_ms,
    REPORT_TS: s.ts,
    TL_BYTE: p.bytes,
    TOTAL_PK: p.packets,
    EXPECTED_PK: p.expected,
    PACKET_LOSS: p.lost,
    MAX_JITTER: p.max_jitter_ms,
    MAX_DELTA: p.max_delta_ms,
    MEAN_JITTER: p.mean_jitter_ms,
  };
  if (p.mos !== null && p.r_factor !== null) {
    out.MOS = p.mos;
    out.RFACTOR = p.r_factor;
  }
  Object.assign(out, { SRC_IP: s.src, SRC_PORT: s.sport, DST_IP: s.dst, DST_PORT: s.dport, OUT_ORDER: p.out_of_order });
  if (p.pt !== null) out.CODEC_PT = p.pt;
  out.CLOCK = p.clock_rate;
  if (s.codec !== null) out.CODEC_NAME = s.codec;
  if (s.ssrc !== null) out.SSRC = `0x${s.ssrc.toString(16).padStart(8, '0')}`;
  Object.assign(out, { REPORT_NAME: `${s.src}:${s.sport}`, REPORT_START: p.first, REPORT_END: p.last, TYPE: p.report === 'interval' ? 'PERIODIC' : 'FINAL' });
  return { json: JSON.stringify(out), mos: p.mos };
}

function chunkHead(out: Uint8Array, off: number, type: number, len: number): number {
  out[off] = 0; // vendor 0x0000: the generic chunks
  out[off + 1] = 0;
  out[off + 2] = type >>> 8;
  out[off + 3] = type & 0xff;
  out[off + 4] = len >>> 8;
  out[off + 5] = len & 0xff;
  return off + 6;
}

function u8Chunk(out: Uint8Array, off: number, type: number, v: number): number {
  off = chunkHead(out, off, type, 7);
  out[off] = v;
  return off + 1;
}

function u16Chunk(out: Uint8Array, off: number, type: number, v: number): number {
  off = chunkHead(out, off, type, 8);
  out[off] = v >>> 8;
  out[off + 1] = v & 0xff;
  return off + 2;
}

function u32Chunk(out: Uint8Array, off: number, type: number, v: number): number {
  off = chunkHead(out, off, type, 10);
  out[off] = v >>> 24;
  out[off + 1] = (v >>> 16) & 0xff;
  out[off + 2] = (v >>> 8) & 0xff;
  out[off + 3] = v & 0xff;
  return off + 4;
}

function bytesChunk(out: Uint8Array, off: number, type: number, src: Uint8Array, so: number, len: number): number {
  off = chunkHead(out, off, type, 6 + len);
  out.set(src.subarray(so, so + len), off);
  return off + len;
}

/** Where a transport reports outcomes it learns of asynchronously. */
interface Tally {
  acked(n: number): void;
  timeout(n: number): void;
  error(reason: string, n: number): void;
  /** A connection failed (its records are counted when they time out): the reason, for the sender's warning. */
  note(reason: string): void;
}

/** What the reporter needs of a transport. */
interface HepTransport {
  readonly blocked: boolean;
  start(): Promise<void>;
  /** Room for a packet of `size` bytes: write it there, then commit(). */
  reserve(size: number): { buf: Uint8Array; off: number };
  commit(end: number): void;
  writable(): Promise<void>;
  flush(ms: number): Promise<void>;
  inFlight(): number;
  abandon(): number;
  stop(): Promise<void>;
}

export class HepReporter implements Reporter {
  readonly format = 'json' as const;
  /** Records handed to report(). */
  produced = 0;
  private acks = 0;
  private timeouts = 0;
  private failures = 0;
  private readonly errors: Record<string, number> = {};
  /** Records HEP does not carry (ReporterCounters.skipped). */
  private skipped = 0;
  private readonly transport: HepTransport;
  private readonly enc: HepEncoder;
  private abandoned = false;
  /** The last failure's reason, for the sender's warning. */
  lastError: string | null = null;

  constructor(
    readonly config: HepReporterConfig,
    nodeName: string | undefined,
    makeTransport: (t: Tally) => HepTransport,
  ) {
    this.enc = new HepEncoder(config.capture_id, config.password, nodeName);
    this.transport = makeTransport({
      acked: (n) => {
        if (!this.abandoned) this.acks += n;
      },
      timeout: (n) => {
        if (this.abandoned) return;
        this.timeouts += n;
        this.failures += n;
      },
      error: (reason, n) => {
        if (!this.abandoned) this.fail(reason, n);
      },
      note: (reason) => (this.lastError = reason),
    });
  }

  start(): Promise<void> {
    return this.transport.start();
  }

  get blocked(): boolean {
    return this.transport.blocked;
  }

  writable(): Promise<void> {
    return this.transport.writable();
  }

  get dropped(): number {
    return this.failures;
  }

  report(rec: EncodedRecord): void {
    this.produced++;
    const meta = rec.meta;
    const why = meta === undefined ? 'skipped' : this.enc.pick(meta.wire);
    if (why === 'skipped') {
      this.skipped++;
      return;
    }
    if (why !== 'ok') {
      this.fail(why, 1);
      return;
    }
    const w = meta!.wire;
    const e = this.enc;
    const size = e.size(w);
    if (size > HEP_MAX) {
      this.fail('too_big', 1);
      return;
    }
    if (this.transport.blocked) {
      this.fail('queue_full', 1);
      return;
    }
    const at = this.transport.reserve(size);
    this.transport.commit(e.write(w, at.buf, at.off, Date.now()));
  }

  private fail(reason: string, n: number): void {
    this.errors[reason] = (this.errors[reason] ?? 0) + n;
    this.failures += n;
    this.lastError = reason;
  }

  counters(): ReporterCounters {
    const c: ReporterCounters = { acked: this.acks, timeout: this.timeouts, errors: { ...this.errors }, queued: this.abandoned ? 0 : this.transport.inFlight() };
    if (this.skipped > 0) c.skipped = this.skipped;
    return c;
  }

  async flush(): Promise<void> {
    await this.transport.flush(this.config.delivery_timeout_ms + 5000);
  }

  abandon(): number {
    if (this.abandoned) return 0;
    const n = this.transport.abandon();
    if (n > 0) this.fail('abandoned', n);
    this.abandoned = true;
    return n;
  }

  async stop(): Promise<void> {
    if (this.transport.inFlight() > 0) this.abandon();
    await this.transport.stop();
  }
}

/** `host:port` (IPv6 hosts in brackets) split; null when it is not one. */
export function parseAddress(a: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):([0-9]{1,5})$/.exec(a);
  const port = m ? Number(m[3]) : 0;
  return m && port >= 1 && port <= 65535 ? { host: m[1] ?? m[2]!, port } : null;
}

// ----------------------------------------------------------------------- UDP

/** Datagrams handed to the kernel one per record; each completes (sent or failed) in its send callback. */
class UdpTransport implements HepTransport {
  blocked = false;
  private sock: UdpSocket | null = null;
  private sending = 0;
  private scratch = Buffer.allocUnsafe(HEP_MAX);
  private waiters: (() => void)[] = [];
  private idle: (() => void)[] = [];
  /** abandon() gave up what was sending: their callbacks count nothing. */
  private gone = false;
  private readonly done = (err: Error | null): void => {
    if (this.gone) return;
    this.sending--;
    if (err) this.tally.error(errCode(err), 1);
    else this.tally.acked(1);
    this.settle();
  };

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly max: number,
    private readonly tally: Tally,
  ) {}

  async start(): Promise<void> {
    const sock = createSocket(this.host.includes(':') ? 'udp6' : 'udp4');
    // Errors reach each send's callback; an 'error' event without a listener would end the process.
    sock.on('error', () => undefined);
    // Connected: the kernel reports a collector that refuses (ICMP port unreachable) on later sends.
    await new Promise<void>((res, rej) => {
      sock.once('error', rej);
      sock.connect(this.port, this.host, () => {
        sock.off('error', rej);
        res();
      });
    }).catch((e: unknown) => {
      sock.close();
      throw new OtusError('OTUS_ERR_PLUGIN_INIT', `hep reporter: udp ${this.host}:${this.port}: ${(e as Error).message}`);
    });
    this.sock = sock;
  }

  private readonly slot = { buf: this.scratch as Uint8Array, off: 0 };

  reserve(): { buf: Uint8Array; off: number } {
    return this.slot;
  }

  commit(end: number): void {
    // The kernel may take the datagram after send() returns: a copy, not the scratch buffer.
    const d = Buffer.allocUnsafe(end);
    this.scratch.copy(d, 0, 0, end);
    this.sending++;
    this.sock!.send(d, this.done);
    if (this.sending >= this.max) this.blocked = true;
  }

  private settle(): void {
    if (this.blocked && this.sending < this.max * 0.9) {
      this.blocked = false;
      for (const f of this.waiters.splice(0)) f();
    }
    if (this.sending === 0) for (const f of this.idle.splice(0)) f();
  }

  writable(): Promise<void> {
    if (!this.blocked) return Promise.resolve();
    return new Promise((res) => this.waiters.push(res));
  }

  async flush(ms: number): Promise<void> {
    if (this.sending === 0) return;
    await within(new Promise<void>((res) => this.idle.push(res)), ms);
  }

  inFlight(): number {
    return this.sending;
  }

  abandon(): number {
    const n = this.sending;
    this.gone = true;
    this.sending = 0;
    this.blocked = false;
    for (const f of this.waiters.splice(0)) f();
    return n;
  }

  async stop(): Promise<void> {
    const s = this.sock;
    this.sock = null;
    if (s !== null) await new Promise<void>((res) => s.close(() => res()));
  }
}

// ------------------------------------------------------------------ TCP, TLS

/** Packets appended to a buffer, written as one socket write; `n` records, queued at `t0`. */
interface Block {
  buf: Buffer;
  used: number;
  n: number;
  t0: number;
}

/** A write handed to the socket, settled once: by its callback or by the connection's close. */
interface Write {
  n: number;
  settled: boolean;
}

const BLOCK = 64 * 1024;
const RECONNECT_MIN_MS = 100;
const TICK_MS = 100;

/**
 * One connection, reconnected with exponential backoff (100 ms doubling to
 * reconnect_max_ms). Records queue in blocks while it is down or the
 * socket's buffer is full, and time out after delivery_timeout_ms; a write
 * the connection's end cut short counts its records as `connection_lost`
 * (or the socket's error code).
 */
class StreamTransport implements HepTransport {
  blocked = false;
  private sock: Socket | null = null;
  private connected = false;
  /** The socket's buffer is over its high watermark: wait for 'drain'. */
  private full = false;
  private stopping = false;
  private backoff = RECONNECT_MIN_MS;
  private readonly queue: Block[] = [];
  private queued = 0;
  private writing = 0;
  private writes = new Set<Write>();
  private waiters: (() => void)[] = [];
  private idle: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private pumpSoon = false;
  private lastErr = 'connection_lost';
  private readonly slot: { buf: Uint8Array; off: number } = { buf: new Uint8Array(0), off: 0 };

  constructor(
    private readonly c: HepReporterConfig,
    private readonly host: string,
    private readonly port: number,
    private readonly tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | null,
    private readonly tally: Tally,
  ) {}

  async start(): Promise<void> {
    this.timer = setInterval(() => this.tick(), TICK_MS);
    // Not awaited: a collector that is down is no error, its records queue and time out.
    this.connect();
  }

  private connect(): void {
    this.retry = null;
    if (this.stopping) return;
    const t = this.tls;
    const tc = this.c.tls;
    const sock: Socket =
      t === null
        ? netConnect({ host: this.host, port: this.port })
        : tlsConnect({ host: this.host, port: this.port, ca: t.ca, cert: t.cert, key: t.key, servername: tc?.servername ?? (isIP(this.host) ? undefined : this.host), rejectUnauthorized: tc?.reject_unauthorized !== false });
    sock.setNoDelay(true);
    this.sock = sock;
    sock.once(t === null ? 'connect' : 'secureConnect', () => {
      this.connected = true;
      this.full = false;
      this.backoff = RECONNECT_MIN_MS;
      this.pump();
    });
    sock.on('drain', () => {
      this.full = false;
      this.pump();
    });
    sock.on('error', (e) => {
      this.lastErr = errCode(e);
      this.tally.note(`${this.host}:${this.port}: ${e.message}`);
    });
    // The collector says nothing back; its end of the stream is the connection's.
    sock.on('data', () => undefined);
    sock.on('end', () => sock.destroy());
    sock.on('close', () => this.closed(sock));
  }

  private closed(sock: Socket): void {
    if (this.sock !== sock) return;
    this.sock = null;
    this.connected = false;
    this.full = false;
    // Writes the connection did not finish are lost with it.
    for (const w of this.writes) this.settle(w, this.lastErr);
    this.writes.clear();
    this.lastErr = 'connection_lost';
    if (this.stopping) return;
    this.retry = setTimeout(() => this.connect(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, this.c.reconnect_max_ms);
  }

  private settle(w: Write, err: string | null): void {
    if (w.settled) return;
    w.settled = true;
    this.writing -= w.n;
    if (err === null) this.tally.acked(w.n);
    else this.tally.error(err, w.n);
  }

  reserve(size: number): { buf: Uint8Array; off: number } {
    let b = this.queue.length > 0 ? this.queue[this.queue.length - 1]! : null;
    if (b === null || b.buf.length - b.used < size) {
      b = { buf: Buffer.allocUnsafe(Math.max(BLOCK, size)), used: 0, n: 0, t0: Date.now() };
      this.queue.push(b);
    }
    return this.at(b);
  }

  private at(b: Block): { buf: Uint8Array; off: number } {
    this.slot.buf = b.buf;
    this.slot.off = b.used;
    return this.slot;
  }

  commit(end: number): void {
    const b = this.queue[this.queue.length - 1]!;
    b.used = end;
    b.n++;
    this.queued++;
    if (this.queued + this.writing >= this.c.queue_max_messages) this.blocked = true;
    // Written once the sender's loop yields: a batch of records, one write.
    if (!this.pumpSoon && this.connected) {
      this.pumpSoon = true;
      setImmediate(() => {
        this.pumpSoon = false;
        this.pump();
      });
    }
  }

  private pump(): void {
    const s = this.sock;
    while (this.connected && !this.full && s !== null && this.queue.length > 0) {
      const b = this.queue.shift()!;
      this.queued -= b.n;
      this.writing += b.n;
      const w: Write = { n: b.n, settled: false };
      this.writes.add(w);
      const ok = s.write(b.buf.subarray(0, b.used), (err) => {
        this.writes.delete(w);
        this.settle(w, err ? errCode(err) : null);
        this.wake();
      });
      if (!ok) this.full = true;
    }
    this.wake();
  }

  /** Times out queued blocks older than delivery_timeout_ms. */
  private tick(): void {
    const limit = Date.now() - this.c.delivery_timeout_ms;
    while (this.queue.length > 0 && this.queue[0]!.t0 <= limit) {
      const b = this.queue.shift()!;
      this.queued -= b.n;
      if (b.n > 0) this.tally.timeout(b.n);
    }
    this.pump();
  }

  /** Wakes writable() and flush() waiters whose condition holds. */
  private wake(): void {
    if (this.blocked && this.queued + this.writing < this.c.queue_max_messages * 0.9) {
      this.blocked = false;
      for (const f of this.waiters.splice(0)) f();
    }
    if (this.queued + this.writing === 0) for (const f of this.idle.splice(0)) f();
  }

  writable(): Promise<void> {
    if (!this.blocked) return Promise.resolve();
    return new Promise((res) => this.waiters.push(res));
  }

  async flush(ms: number): Promise<void> {
    this.pump();
    if (this.inFlight() === 0) return;
    await within(new Promise<void>((res) => this.idle.push(res)), ms);
  }

  inFlight(): number {
    return this.queued + this.writing;
  }

  abandon(): number {
    const n = this.inFlight();
    this.queue.length = 0;
    for (const w of this.writes) w.settled = true;
    this.writes.clear();
    this.queued = 0;
    this.writing = 0;
    this.blocked = false;
    for (const f of this.waiters.splice(0)) f();
    for (const f of this.idle.splice(0)) f();
    return n;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer !== null) clearInterval(this.timer);
    if (this.retry !== null) clearTimeout(this.retry);
    this.timer = this.retry = null;
    const s = this.sock;
    if (s === null) return;
    await new Promise<void>((res) => {
      s.once('close', () => res());
      s.end();
      // A collector that does not close its side within a second is not waited for.
      setTimeout(() => s.destroy(), 1000).unref();
    });
  }
}

function errCode(e: Error): string {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'string' ? c.toLowerCase() : 'error';
}

/** p, or after ms whichever comes first; the timer does not outlive it. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((res) => (timer = setTimeout(res, ms)))]);
  clearTimeout(timer);
}

// -------------------------------------------------------------------- plugin

/**
 * The task must have a parser whose records HEP carries (sip, rtcp, rtp with stats):
 * refused before anything starts otherwise (src/supervisor/task-run.ts).
 */
export function checkHepTask(task: TaskSpec, where: string): void {
  const names = task.parsers.map((p) => p.plugin);
  if (names.includes('sip') || names.includes('rtcp')) return;
  if (task.parsers.some((p) => p.plugin === 'rtp' && p.config?.stats !== undefined)) return;
  throw new OtusError(
    'OTUS_ERR_PLUGIN_CONFIG',
    `${where}: the hep reporter sends SIP messages (the sip parser), RTCP reports (the rtcp parser) and RTP stream reports (the rtp parser with stats), but task "${task.id}" has none of them: add - plugin: sip to its parsers`,
  );
}

export const hepReporter: PluginDefinition<'reporter', HepReporterConfig> = {
  meta: {
    name: 'hep',
    version: '0.1.0',
    kind: 'reporter',
    labels: [],
    description: 'Sends SIP messages, RTCP reports and RTP stream reports as HEPv3 to a Homer / heplify-server collector over UDP, TCP or TLS.',
    configSchema: {
      type: 'object',
      required: ['address'],
      properties: {
        address: { type: 'string', pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\]]+):[0-9]{1,5}$' },
        transport: { enum: ['udp', 'tcp', 'tls'], default: DEFAULTS.transport },
        capture_id: { type: 'integer', minimum: 0, maximum: 4294967295, default: DEFAULTS.capture_id },
        password: { type: 'string', maxLength: 1024 },
        node_name: { type: 'string', minLength: 1, maxLength: 1024 },
        queue_max_messages: { type: 'integer', minimum: 1, default: DEFAULTS.queue_max_messages },
        delivery_timeout_ms: { type: 'integer', minimum: 100, default: DEFAULTS.delivery_timeout_ms },
        reconnect_max_ms: { type: 'integer', minimum: 100, default: DEFAULTS.reconnect_max_ms },
        tls: {
          type: 'object',
          properties: {
            ca: { type: 'string' },
            cert: { type: 'string' },
            key: { type: 'string' },
            servername: { type: 'string', minLength: 1 },
            reject_unauthorized: { type: 'boolean' },
          },
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },
  },
  init(ctx) {
    const c = ctx.config;
    const addr = parseAddress(c.address);
    if (addr === null) throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${ctx.where}.address: "${c.address}" is not host:port with a port 1-65535`);
    if (c.tls !== undefined && c.transport !== 'tls') {
      throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${ctx.where}.tls: set transport: tls to use it (transport is ${c.transport})`);
    }
    const nodeName = c.node_name ?? ctx.node.hostname;
    if (c.transport === 'udp') return new HepReporter(c, nodeName, (t) => new UdpTransport(addr.host, addr.port, c.queue_max_messages, t));
    let tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | null = null;
    if (c.transport === 'tls') {
      const read = (key: 'ca' | 'cert' | 'key'): Buffer | undefined => {
        const p = c.tls?.[key];
        if (p === undefined) return undefined;
        try {
          return readFileSync(p);
        } catch (e) {
          throw new OtusError('OTUS_ERR_PLUGIN_CONFIG', `${ctx.where}.tls.${key}: cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      };
      tls = { ca: read('ca'), cert: read('cert'), key: read('key') };
    }
    return new HepReporter(c, nodeName, (t) => new StreamTransport(c, addr.host, addr.port, tls, t));
  },
};
