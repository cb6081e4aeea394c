// The payload of `rtp.stats` records (docs/records.md, "rtp.stats"): one
// queued stream report (stats.ts) as JSON or as protobuf
// otus.rtp.v1.RtpStats (rtp.proto). Written in the capture process (no
// compact form): a report is one record per stream per interval, not per
// packet: JSON is written field by field (no object, no strings: measured,
// JSON.stringify of an object per report was most of the stats' cost with
// 1000 calls, a report per 500 packets); protobuf goes through the object.

import { writeVarint } from '../../../src/pipeline/codec-protobuf.js';
import type { Payload } from '../../../src/pipeline/record.js';
import { Literal, utf8Length, writeLiteral, writeUint, writeUtf8 } from '../../../src/util/bytes.js';
import { DIRECTION_NAMES, RtcpSummary, type BlockJson } from './rtcp-summary.js';
import { digitOf, mosOf, REPORT_KIND_NAMES, StreamReport } from './stats.js';

/** Seconds with microseconds, as a JSON number. */
function us(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** Milliseconds with three decimals (tshark's precision). */
function ms(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export interface RtpStatsJson {
  report: string;
  first: number;
  last: number;
  packets: number;
  bytes: number;
  expected: number;
  lost: number;
  duplicates: number;
  out_of_order: number;
  seq_jumps: number;
  restarts: number;
  pt: number | null;
  clock_rate: number;
  pt_changes: number;
  markers: number;
  events: number;
  jitter_ms: number;
  max_jitter_ms: number;
  mean_jitter_ms: number;
  max_delta_ms: number;
  mean_delta_ms: number;
  interval: { packets: number; expected: number; lost: number };
  r_factor: number | null;
  mos: number | null;
  dtmf: { digit: string | null; event: number; start: number; duration: number }[];
  digits_dropped: number;
  direction?: (typeof DIRECTION_NAMES)[number];
  rtcp?: { receiver: BlockJson | null; sender: BlockJson | null };
}

/** The report as its JSON object (rounded as written); with its RTCP summary and direction when given. */
export function reportJson(s: StreamReport, rtcp: RtcpSummary | null = null, direction = 0): RtpStatsJson {
  const base = s.base;
  const dtmf: RtpStatsJson['dtmf'] = [];
  for (let i = 0; i < s.digits; i++) {
    const code = s.digitCode(i);
    dtmf.push({ digit: digitOf(code), event: code, start: base + us(s.digitStart(i)), duration: us(s.digitDuration(i)) });
  }
  const r = s.rFactor;
  return {
    report: REPORT_KIND_NAMES[s.kind],
    first: base + us(s.first),
    last: base + us(s.last),
    packets: s.packets,
    bytes: s.bytes,
    expected: s.expected,
    lost: s.lost,
    duplicates: s.duplicates,
    out_of_order: s.outOfOrder,
    seq_jumps: s.seqJumps,
    restarts: s.restarts,
    pt: s.pt >= 0 ? s.pt : null,
    clock_rate: s.clockRate,
    pt_changes: s.ptChanges,
    markers: s.markers,
    events: s.events,
    jitter_ms: ms(s.jitter),
    max_jitter_ms: ms(s.maxJitter),
    mean_jitter_ms: ms(s.meanJitter),
    max_delta_ms: ms(s.maxDelta),
    mean_delta_ms: ms(s.meanDelta),
    interval: { packets: s.intervalPackets, expected: s.intervalExpected, lost: s.intervalLost },
    r_factor: r >= 0 ? Math.round(r * 100) / 100 : null,
    mos: r >= 0 ? Math.round(mosOf(r) * 100) / 100 : null,
    dtmf,
    digits_dropped: s.digitsDropped,
    ...(rtcp !== null ? { direction: DIRECTION_NAMES[direction] ?? null, rtcp: rtcp.json() } : {}),
  };
}

const DIGITS = '0123456789*#ABCD';
const J_KIND = ['interval', 'end', 'evicted'].map((k) => new Literal(`{"report":"${k}"`));
const J = {
  first: new Literal(',"first":'),
  last: new Literal(',"last":'),
  packets: new Literal(',"packets":'),
  bytes: new Literal(',"bytes":'),
  expected: new Literal(',"expected":'),
  lost: new Literal(',"lost":'),
  duplicates: new Literal(',"duplicates":'),
  outOfOrder: new Literal(',"out_of_order":'),
  seqJumps: new Literal(',"seq_jumps":'),
  restarts: new Literal(',"restarts":'),
  pt: new Literal(',"pt":'),
  null: new Literal('null'),
  clockRate: new Literal(',"clock_rate":'),
  ptChanges: new Literal(',"pt_changes":'),
  markers: new Literal(',"markers":'),
  events: new Literal(',"events":'),
  jitter: new Literal(',"jitter_ms":'),
  maxJitter: new Literal(',"max_jitter_ms":'),
  meanJitter: new Literal(',"mean_jitter_ms":'),
  maxDelta: new Literal(',"max_delta_ms":'),
  meanDelta: new Literal(',"mean_delta_ms":'),
  interval: new Literal(',"interval":{"packets":'),
  iExpected: new Literal(',"expected":'),
  iLost: new Literal(',"lost":'),
  rFactor: new Literal('},"r_factor":'),
  mos: new Literal(',"mos":'),
  noScore: new Literal('},"r_factor":null,"mos":null'),
  dtmf: new Literal(',"dtmf":['),
  digit: new Literal('{"digit":"'),
  noDigit: new Literal('{"digit":null'),
  event: new Literal(',"event":'),
  start: new Literal(',"start":'),
  duration: new Literal(',"duration":'),
  dropped: new Literal('],"digits_dropped":'),
};

/** Writes an integer (negative too). */
function writeInt(buf: Uint8Array, off: number, v: number): number {
  if (v < 0) {
    buf[off++] = 45; // -
    v = -v;
  }
  return writeUint(buf, off, v);
}

/**
 * Writes whole + x (whole an integer, x ≥ 0) rounded to 1/scale (1e6, 1e3, 1e2)
 * as a JSON number with its fraction's trailing zeros dropped, as
 * JSON.stringify would print the rounded value.
 */
function writeFixed(buf: Uint8Array, off: number, whole: number, x: number, scale: number): number {
  if (!(x >= 0)) x = 0;
  let units = Math.round(x * scale);
  const w = Math.floor(units / scale);
  units -= w * scale;
  off = writeUint(buf, off, whole + w);
  if (units === 0) return off;
  buf[off++] = 46; // .
  let digits = scale === 1e6 ? 6 : scale === 1000 ? 3 : 2;
  while (units % 10 === 0) {
    units /= 10;
    digits--;
  }
  for (let d = digits - 1, u = units; d >= 0; d--) {
    const q = Math.floor(u / 10);
    buf[off + d] = 48 + (u - q * 10);
    u = q;
  }
  return off + digits;
}

// Protobuf field numbers and wire types of otus.rtp.v1.RtpStats (rtp.proto).
const VARINT = 0;
const F64 = 1;
const LEN = 2;
/** Protobuf doubles are little-endian. */
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A protobuf writer into a growing scratch buffer (one report at a time). */
class ProtoWriter {
  buf = new Uint8Array(512);
  n = 0;
  private readonly f64 = new Float64Array(1);
  private readonly f64b = new Uint8Array(this.f64.buffer);

  reset(): this {
    this.n = 0;
    return this;
  }
  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }
  tag(field: number, wire: number): void {
    this.room(5);
    this.n = writeVarint(this.buf, this.n, field * 8 + wire);
  }
  uint(field: number, v: number): void {
    if (v === 0) return;
    this.tag(field, VARINT);
    this.room(10);
    this.n = writeVarint(this.buf, this.n, v);
  }
  /** sint64 (zigzag). */
  sint(field: number, v: number): void {
    this.uint(field, v >= 0 ? 2 * v : -2 * v - 1);
  }
  double(field: number, v: number, always = false): void {
    if (v === 0 && !always) return;
    this.tag(field, F64);
    this.room(8);
    this.f64[0] = v;
    for (let i = 0; i < 8; i++) this.buf[this.n + i] = this.f64b[LE ? i : 7 - i];
    this.n += 8;
  }
  string(field: number, s: string): void {
    const len = utf8Length(s);
    this.tag(field, LEN);
    this.room(5 + len);
    this.n = writeVarint(this.buf, this.n, len);
    this.n = writeUtf8(this.buf, this.n, s);
  }
  /** A nested message, written into `inner` first. */
  message(field: number, inner: ProtoWriter): void {
    this.tag(field, LEN);
    this.room(5 + inner.n);
    this.n = writeVarint(this.buf, this.n, inner.n);
    this.buf.set(inner.buf.subarray(0, inner.n), this.n);
    this.n += inner.n;
  }
}

/** One queued report as a record payload. */
export class RtpStatsPayload implements Payload {
  readonly type = 'rtp.stats';
  readonly report = new StreamReport();
  /** The report's RTCP summary (rtcp-summary.ts), loaded before each record. */
  readonly rtcp = new RtcpSummary();
  /** The stream's direction (rtcp-summary.ts). */
  direction = 0;
  private readonly scratch = new Uint8Array(128);
  private readonly pw = new ProtoWriter();
  private readonly inner = new ProtoWriter();
  private encoded = false;

  /** Points at a report (after StreamReport.at). */
  loaded(): this {
    this.encoded = false;
    return this;
  }

  writeJson(buf: Uint8Array, off: number, end: number): number {
    const s = this.report;
    if (end - off < 1700 + 80 * s.digits) return -1;
    const base = s.base;
    off = writeLiteral(buf, off, J_KIND[s.kind]);
    off = writeLiteral(buf, off, J.first);
    off = writeFixed(buf, off, base, s.first, 1e6);
    off = writeLiteral(buf, off, J.last);
    off = writeFixed(buf, off, base, s.last, 1e6);
    off = writeLiteral(buf, off, J.packets);
    off = writeUint(buf, off, s.packets);
    off = writeLiteral(buf, off, J.bytes);
    off = writeUint(buf, off, s.bytes);
    off = writeLiteral(buf, off, J.expected);
    off = writeUint(buf, off, s.expected);
    off = writeLiteral(buf, off, J.lost);
    off = writeInt(buf, off, s.lost);
    off = writeLiteral(buf, off, J.duplicates);
    off = writeUint(buf, off, s.duplicates);
    off = writeLiteral(buf, off, J.outOfOrder);
    off = writeUint(buf, off, s.outOfOrder);
    off = writeLiteral(buf, off, J.seqJumps);
    off = writeUint(buf, off, s.seqJumps);
    off = writeLiteral(buf, off, J.restarts);
    off = writeUint(buf, off, s.restarts);
    off = writeLiteral(buf, off, J.pt);
    off = s.pt >= 0 ? writeUint(buf, off, s.pt) : writeLiteral(buf, off, J.null);
    off = writeLiteral(buf, off, J.clockRate);
    off = writeUint(buf, off, s.clockRate);
    off = writeLiteral(buf, off, J.ptChanges);
    off = writeUint(buf, off, s.ptChanges);
    off = writeLiteral(buf, off, J.markers);
    off = writeUint(buf, off, s.markers);
    off = writeLiteral(buf, off, J.events);
    off = writeUint(buf, off, s.events);
    off = writeLiteral(buf, off, J.jitter);
    off = writeFixed(buf, off, 0, s.jitter, 1000);
    off = writeLiteral(buf, off, J.maxJitter);
    off = writeFixed(buf, off, 0, s.maxJitter, 1000);
    off = writeLiteral(buf, off, J.meanJitter);
    off = writeFixed(buf, off, 0, s.meanJitter, 1000);
    off = writeLiteral(buf, off, J.maxDelta);
    off = writeFixed(buf, off, 0, s.maxDelta, 1000);
    off = writeLiteral(buf, off, J.meanDelta);
    off = writeFixed(buf, off, 0, s.meanDelta, 1000);
    off = writeLiteral(buf, off, J.interval);
    off = writeUint(buf, off, s.intervalPackets);
    off = writeLiteral(buf, off, J.iExpected);
    off = writeUint(buf, off, s.intervalExpected);
    off = writeLiteral(buf, off, J.iLost);
    off = writeInt(buf, off, s.intervalLost);
    const r = s.rFactor;
    if (r >= 0) {
      off = writeLiteral(buf, off, J.rFactor);
      off = writeFixed(buf, off, 0, r, 100);
      off = writeLiteral(buf, off, J.mos);
      off = writeFixed(buf, off, 0, mosOf(r), 100);
    } else off = writeLiteral(buf, off, J.noScore);
    off = writeLiteral(buf, off, J.dtmf);
    for (let i = 0; i < s.digits; i++) {
      if (i > 0) buf[off++] = 44; // ,
      const code = s.digitCode(i);
      if (code < 16) {
        off = writeLiteral(buf, off, J.digit);
        buf[off++] = DIGITS.charCodeAt(code);
        buf[off++] = 34; // "
      } else off = writeLiteral(buf, off, J.noDigit);
      off = writeLiteral(buf, off, J.event);
      off = writeUint(buf, off, code);
      off = writeLiteral(buf, off, J.start);
      off = writeFixed(buf, off, base, s.digitStart(i), 1e6);
      off = writeLiteral(buf, off, J.duration);
      off = writeFixed(buf, off, 0, s.digitDuration(i), 1e6);
      buf[off++] = 125; // }
    }
    off = writeLiteral(buf, off, J.dropped);
    off = writeUint(buf, off, s.digitsDropped);
    off = this.rtcp.writeJson(buf, off, this.direction);
    buf[off++] = 125;
    return off;
  }

  binarySize(): number {
    if (!this.encoded) this.encode();
    return this.pw.n;
  }

  writeBinary(buf: Uint8Array, off: number, end: number): number {
    const n = this.binarySize();
    if (end - off < n) return -1;
    buf.set(this.pw.buf.subarray(0, n), off);
    return off + n;
  }

  private encode(): void {
    const j = reportJson(this.report, this.rtcp, this.direction);
    const w = this.pw.reset();
    w.string(1, j.report);
    w.double(2, j.first);
    w.double(3, j.last);
    w.uint(4, j.packets);
    w.uint(5, j.bytes);
    w.uint(6, j.expected);
    w.sint(7, j.lost);
    w.uint(8, j.duplicates);
    w.uint(9, j.out_of_order);
    w.uint(10, j.seq_jumps);
    w.uint(11, j.restarts);
    if (j.pt !== null) {
      // optional: present even when 0 (PCMU).
      w.tag(12, VARINT);
      w.n = writeVarint(w.buf, w.n, j.pt);
    }
    w.uint(13, j.clock_rate);
    w.uint(14, j.pt_changes);
    w.uint(15, j.markers);
    w.uint(16, j.events);
    w.double(17, j.jitter_ms);
    w.double(18, j.max_jitter_ms);
    w.double(19, j.mean_jitter_ms);
    w.double(20, j.max_delta_ms);
    w.double(21, j.mean_delta_ms);
    const i = this.inner.reset();
    i.uint(1, j.interval.packets);
    i.uint(2, j.interval.expected);
    i.sint(3, j.interval.lost);
    w.message(22, i);
    if (j.r_factor !== null) w.double(23, j.r_factor, true);
    if (j.mos !== null) w.double(24, j.mos, true);
    for (const d of j.dtmf) {
      i.reset();
      if (d.digit !== null) i.string(1, d.digit);
      i.uint(2, d.event);
      i.double(3, d.start);
      i.double(4, d.duration);
      w.message(25, i);
    }
    w.uint(26, j.digits_dropped);
    if (j.direction) w.string(27, j.direction);
    if (this.rtcp.has !== 0) {
      this.rtcp.encode(i.reset(), this.scratch);
      w.message(28, i);
    }
    this.encoded = true;
  }
}
