// rtp parser (RFC 3550, RFC 4733 events; README.md: the fast path, NAT):
// media the sip parser announced in SDP is found in the task's flow
// registry (destination endpoint, then source) on whichever capture process
// it lands; the record gets rtp.ssrc, rtp.pt, rtp.seq and the call's
// call-id, codec (by payload type, from the SDP's map) and media type. Also
// RTP on configured ports, and (option) any UDP that looks like RTP.
//
// The fast path allocates nothing: header read from the packet, numbers
// kept as numbers (Labels.setUint; the sender prints them), call labels
// appended from the correlator's per-slot cache (a word copy), one reused
// payload that goes into the ring in its compact form.

import type { DecodedPacket } from '../../../src/decode/packet.js';
import type { FastFrame } from '../../../src/pipeline/fast-path.js';
import { labelKeyId, type KeyTracker } from '../../../src/pipeline/label-keys.js';
import { encodeUintEntry, type Labels } from '../../../src/pipeline/labels.js';
import { protocolWords, wireCompactPayload, wireEnvelopeUdp4 } from '../../../src/pipeline/wire.js';
import type { OutputRecord } from '../../../src/pipeline/record.js';
import type { Parser, PluginDefinition, RecordEmitter } from '../../../src/plugin/types.js';
import { STATIC_PT } from '../sip/sdp.js';
import { CALL_LABEL_KEYS, CODEC_EVENT, CODEC_NAMED, FLOW_LABEL_WORDS, MediaCorrelator, STATS_UNTRACKED } from './correlate.js';
import { COMPACT, RtpPayload, RtpPayloadReader, writePlainCompact } from './payload.js';
import { KEY, ROW, RtpStreamTable, type RtpStatsConfig } from './stats.js';
import { RtpStatsPayload } from './stats-payload.js';
import { MediaTable } from '../../../src/shm/media.js';
import { callHash } from '../../../src/shm/media.js';
import { CallEnds, streamDirection } from './rtcp-summary.js';

export interface RtpConfig {
  ports: number[];
  heuristic: boolean;
  /** Count flows with one end no SDP announced (correlate.ts); the labels are the same either way. */
  learn_nat: boolean;
  /** No effect since nothing is learned into the registry; accepted so existing task files still validate. */
  nat_ttl: number;
  event_payload_types: number[];
  raw: boolean;
  /** Per-stream statistics (stats.ts); absent: off. */
  stats?: RtpStatsConfig;
}

/** Parser.fastFrame's "taken, no record" (stats on, per_packet off). */
const FAST_TAKEN = -2;

export const RTP_REJECT_NAMES = ['none', 'short', 'csrc_truncated', 'extension_truncated', 'bad_padding'] as const;

export class RtpStats {
  packets = 0;
  correlated = 0;
  events = 0;
  readonly rejects = new Float64Array(RTP_REJECT_NAMES.length);
  /** RTP-looking UDP not taken: no SDP announced it, not on `ports`, `heuristic` off. */
  unsignalled = 0;
  /** Of those, payload types in `event_payload_types` (RFC 4733 events: DTMF). */
  unsignalledEvents = 0;
  /** Of those, by destination port (made at the first one). */
  unsignalledPorts: Uint32Array | null = null;
}

/** Ports named in the counters and the hint: the most frequent few. */
const TOP_PORTS = 8;

const K_SSRC = labelKeyId('rtp.ssrc');
const K_PT = labelKeyId('rtp.pt');
const K_SEQ = labelKeyId('rtp.seq');
const K_EVENT = labelKeyId('rtp.event');
const K_EVENT_END = labelKeyId('rtp.event-end');
const K_CODEC = labelKeyId('codec');
const K_CALL_ID = labelKeyId('call-id');
const K_MEDIA = labelKeyId('media');
const PROTO = protocolWords('rtp');
/** The most words a fast-path record takes: envelope 18 (with a VLAN id), labels block 1 + 6 + a flow entry's inline call labels, payload 10. */
const FAST_WORDS = 18 + 7 + FLOW_LABEL_WORDS + 10;

/** Names of the static payload types, made once (labels keep a reference). */
const STATIC_NAMES: (string | null)[] = Array.from({ length: 128 }, (_, i) => STATIC_PT[i] ?? null);

/** The most frequent ports of a per-port count table, as {port: count}. */
function topPorts(counts: Uint32Array | null): Record<string, number> {
  const out: Record<string, number> = {};
  if (counts === null) return out;
  const top: number[] = [];
  for (let port = 0; port < counts.length; port++) {
    if (counts[port] === 0) continue;
    top.push(port);
    top.sort((a, b) => counts[b] - counts[a]);
    if (top.length > TOP_PORTS) top.pop();
  }
  for (const port of top) out[port] = counts[port];
  return out;
}

/** Non-zero counts by name (index 0, "none", skipped). */
export function byName(names: readonly string[], counts: Float64Array): Record<string, number> {
  const o: Record<string, number> = {};
  for (let i = 1; i < names.length; i++) if (counts[i] > 0) o[names[i]] = counts[i];
  return o;
}

/** Does the UDP payload start like RTP (version 2, not an RTCP packet type, CSRCs fit)? */
export function looksLikeRtp(b: Uint8Array, o: number, len: number): boolean {
  if (len < 12 || (b[o] & 0xc0) !== 0x80) return false;
  const b1 = b[o + 1];
  if (b1 >= 192 && b1 <= 223) return false; // RTCP (RFC 5761 §4)
  return 12 + 4 * (b[o] & 15) <= len;
}

export class RtpParser implements Parser {
  readonly protocol = 'rtp';
  readonly fastKeys = ['rtp.ssrc', 'rtp.pt', 'rtp.seq', ...CALL_LABEL_KEYS];
  readonly stats = new RtpStats();
  readonly corr: MediaCorrelator;
  private readonly payload = new RtpPayload();
  private readonly ports = new Uint8Array(65536);
  private readonly eventPt = new Uint8Array(128);
  private readonly heuristic: boolean;
  private readonly raw: boolean;
  /** canHandle's lookup, for handle (the same packet, right after). */
  private slot = -1;
  /** Per-stream statistics, null when off. */
  readonly table: RtpStreamTable | null;
  private readonly perPacket: boolean;
  /** Parser.summarised: the last handle() counted its packet in its stream's statistics and, per_packet off, made no record. */
  summarised = false;
  private readonly statsPayload = new RtpStatsPayload();
  /** The digits of the last packet's timestamp (the reports' timestamps print as the packets' do). */
  private tsDigits = 6;
  /** What RTCP said about the streams (their reports' rtcp summary), null without it. */
  private readonly media: MediaTable | null;
  /** Streams end with their call (rtcp-summary.ts), null without the media table. */
  private readonly callEnds: CallEnds | null;
  /** Capture time of the latest frame of any protocol (Parser.tick; s), -1 before the first. */
  private frameClock = -1;

  constructor(cfg: RtpConfig, corr: MediaCorrelator) {
    this.corr = corr;
    for (const p of cfg.ports) this.ports[p] = 1;
    for (const pt of cfg.event_payload_types) this.eventPt[pt & 127] = 1;
    this.heuristic = cfg.heuristic;
    this.raw = cfg.raw;
    this.table = cfg.stats !== undefined && cfg.stats.interval > 0 ? new RtpStreamTable(cfg.stats) : null;
    if (this.table !== null) this.table.unlink = (entry, row) => corr.clearStatsRow(entry, row);
    this.perPacket = this.table === null || cfg.stats!.per_packet;
    this.media = this.table !== null && corr.flows !== null ? MediaTable.besideRegistry(corr.flows.name) : null;
    this.callEnds = this.media !== null ? new CallEnds(this.media, corr.flows) : null;
  }

  canHandle(p: DecodedPacket): boolean {
    if (p.proto !== 17 || !looksLikeRtp(p.payloadBuf, p.payloadOff, p.payloadLen)) return false;
    this.slot = this.corr.lookup(p);
    if (this.slot >= 0 || this.heuristic || this.ports[p.dport] === 1 || this.ports[p.sport] === 1) return true;
    this.skipped(p);
    return false;
  }

  /** Counts an RTP-looking packet nobody signalled, so the run's summary can say why it made no record. Not the fast path. */
  private skipped(p: DecodedPacket): void {
    const st = this.stats;
    st.unsignalled++;
    if (this.eventPt[p.payloadBuf[p.payloadOff + 1] & 127] === 1) st.unsignalledEvents++;
    (st.unsignalledPorts ??= new Uint32Array(65536))[p.dport]++;
  }

  handle(p: DecodedPacket, out: OutputRecord, hasTs: boolean, tsDigits: number): boolean {
    this.summarised = false;
    const st = this.stats;
    const b = p.payloadBuf;
    const o = p.payloadOff;
    const len = p.payloadLen;
    const pl = this.payload;
    const b0 = b[o];
    const cc = b0 & 15;
    let hdr = 12 + 4 * cc;
    if (len < hdr) return this.reject(len < 12 ? 1 : 2);
    pl.extProfile = -1;
    pl.extLen = -1;
    if ((b0 & 0x10) !== 0) {
      if (len < hdr + 4) return this.reject(3);
      pl.extProfile = (b[o + hdr] << 8) | b[o + hdr + 1];
      pl.extLen = (b[o + hdr + 2] << 8) | b[o + hdr + 3];
      hdr += 4 + 4 * pl.extLen;
      if (len < hdr) return this.reject(3);
    }
    let pad = 0;
    if ((b0 & 0x20) !== 0) {
      pad = b[o + len - 1];
      if (pad === 0 || hdr + pad > len) return this.reject(4);
    }
    st.packets++;
    const pt = b[o + 1] & 127;
    pl.buf = b;
    pl.off = o;
    pl.cc = cc;
    pl.padding = (b0 & 0x20) !== 0;
    pl.extension = (b0 & 0x10) !== 0;
    pl.marker = (b[o + 1] & 0x80) !== 0;
    pl.pt = pt;
    pl.seq = (b[o + 2] << 8) | b[o + 3];
    pl.ts = ((b[o + 4] << 24) | (b[o + 5] << 16) | (b[o + 6] << 8) | b[o + 7]) >>> 0;
    pl.ssrc = ((b[o + 8] << 24) | (b[o + 9] << 16) | (b[o + 10] << 8) | b[o + 11]) >>> 0;
    pl.payloadLen = len - hdr - pad;
    pl.padLen = pad;
    pl.event = -1;

    out.fillEnvelope(p, hasTs, tsDigits);
    out.protocol = 'rtp';
    const L = out.labels;
    L.setUintId(K_SSRC, pl.ssrc);
    L.setUintId(K_PT, pt);
    L.setUintId(K_SEQ, pl.seq);
    let isEvent = false;
    const slot = this.slot;
    if (slot >= 0) {
      st.correlated++;
      const codec = this.corr.label(L, slot, pt);
      isEvent = codec === CODEC_EVENT || (codec !== CODEC_NAMED && this.eventPt[pt] === 1);
    } else {
      const name = STATIC_NAMES[pt];
      if (name !== null) L.setId(K_CODEC, name);
      else isEvent = this.eventPt[pt] === 1;
    }
    if (isEvent && pl.payloadLen >= 4) {
      const e = o + hdr;
      st.events++;
      pl.event = b[e];
      pl.eventEnd = (b[e + 1] & 0x80) !== 0;
      pl.volume = b[e + 1] & 63;
      pl.duration = (b[e + 2] << 8) | b[e + 3];
      L.setUintId(K_EVENT, pl.event);
      L.setId(K_EVENT_END, pl.eventEnd ? '1' : '0');
    }
    out.payload = pl;
    if (this.raw) out.attachRaw(p);
    if (this.table !== null) this.summarised = this.count(p, L, pl, isEvent && pl.event >= 0, tsDigits) && !this.perPacket;
    return this.perPacket;
  }

  /**
   * Counts a packet handle() took in its stream's statistics (made at the
   * stream's first packet, with its call labels); false when the table had
   * no room for its stream (counted as untracked).
   */
  private count(p: DecodedPacket, L: Labels, pl: RtpPayload, isEvent: boolean, tsDigits: number): boolean {
    const t = this.table!;
    const k = t.key;
    k.fill(0);
    k[0] = pl.ssrc;
    k[1] = (p.sport << 16) | p.dport;
    k[2] = p.ipVersion;
    if (p.ipVersion === 4) {
      k[3] = p.src4;
      k[7] = p.dst4;
    } else if (p.ipVersion === 6) {
      const a = p.addrBuf;
      for (let i = 0; i < 4; i++) {
        k[3 + i] = readBE32(a, p.srcOff + 4 * i);
        k[7 + i] = readBE32(a, p.dstOff + 4 * i);
      }
    }
    const row = t.find(p.tsSec, p.tsNsec, true);
    if (p.ipVersion !== 6) {
      // Kept with the flow, for the fast path (IPv4); so is a stream the full table left out (counted there as here).
      const fe = this.corr.entry;
      if (fe >= 0) {
        this.corr.setStatsRow(fe, row < 0 ? STATS_UNTRACKED : row, pl.ssrc);
        if (row >= 0) t.link[row] = fe + 1;
      }
    }
    if (row < 0) return false; // no room (counted)
    if (t.created) {
      // Strings once per stream: what its reports are labelled with.
      t.callId[row] = L.get('call-id') ?? null;
      t.media[row] = L.get('media') ?? null;
      t.direction[row] = this.slot >= 0 ? streamDirection(this.corr.flows, p) : 0;
      t.callHash[row] = callHash(t.callId[row]);
    }
    if (!isEvent && t.ratePt(row) !== pl.pt) {
      const codec = L.get('codec') ?? null;
      t.codec[row] = codec;
      t.setRate(row, pl.pt, codec);
    }
    this.tsDigits = tsDigits;
    t.packet(row, p.tsSec, p.tsNsec, pl.seq, pl.ts, pl.pt, pl.marker, p.payloadLen, isEvent ? pl.event : -1, pl.eventEnd, pl.duration);
    return true;
  }

  /** Parser.tick: capture time passes (any frame), for the streams whose call ended. */
  tick(sec: number, nsec: number): void {
    this.frameClock = sec + nsec * 1e-9;
  }

  /**
   * Parser.drain: the queued stream reports as `rtp.stats` records (the
   * call labels the stream started with, rtp.ssrc, the flow), after the
   * streams silent for `idle` are ended; `final` ends every stream.
   */
  drain(out: RecordEmitter, final: boolean): void {
    const t = this.table;
    if (t === null) return;
    for (;;) {
      // Replay ticks only at its end: there the streams' own clock moves it.
      if (!final) this.callEnds?.scan(t, Math.max(this.frameClock, t.clock));
      const done = t.expire(final);
      this.emitReports(out);
      if (done) return;
    }
  }

  private emitReports(out: RecordEmitter): void {
    const t = this.table!;
    const n = t.qLen;
    if (n === 0) return;
    const rec = out.record;
    const K = t.qKeys;
    // With several capture processes, RTCP captured before these reports may still be on its way on another: let it land.
    const f = this.corr.flows;
    if (this.media !== null && f !== null && f.catchesUp) f.catchUp(Math.floor(t.clock), Math.floor((t.clock % 1) * 1e9), 0);
    for (let q = 0; q < n; q++) {
      const b = q * KEY;
      rec.reset();
      // The stream's whole second plus the report's offset from it (a sum of both as one double would lose the microseconds).
      const rel = t.qTime[q];
      const whole = Math.floor(rel);
      const ns = Math.round((rel - whole) * 1e9);
      rec.hasTs = true;
      rec.tsSec = t.qRows[q * ROW] + whole + (ns >= 1e9 ? 1 : 0);
      rec.tsNsec = ns >= 1e9 ? 0 : ns;
      rec.tsDigits = this.tsDigits;
      rec.protocol = 'rtp.stats';
      const v = K[b + 2];
      rec.ipVersion = v;
      for (let i = 0; i < (v === 6 ? 4 : v === 4 ? 1 : 0); i++) {
        writeBE32(rec.src, 4 * i, K[b + 3 + i]);
        writeBE32(rec.dst, 4 * i, K[b + 7 + i]);
      }
      rec.sport = K[b + 1] >>> 16;
      rec.dport = K[b + 1] & 0xffff;
      rec.proto = 17;
      const L = rec.labels;
      L.setUintId(K_SSRC, K[b] >>> 0);
      const callId = t.qCallId[q];
      if (callId !== null) L.setId(K_CALL_ID, callId);
      const codec = t.qCodec[q];
      if (codec !== null) L.setId(K_CODEC, codec);
      const media = t.qMedia[q];
      if (media !== null) L.setId(K_MEDIA, media);
      const sp = this.statsPayload;
      sp.report.at(t.qRows, q * ROW, t.qKind[q], codec);
      sp.rtcp.load(this.media, K[b] >>> 0, t.qCallHash[q], sp.report.clockRate);
      sp.direction = t.qDirection[q];
      rec.payload = sp.loaded();
      t.stats.reports++;
      out.emit();
    }
    t.qLen = 0;
  }

  /**
   * The fast path (Parser.fastFrame): a packet of a flow canHandle looked up
   * before, still trusted, in the common shape (no padding, extension, CSRCs
   * or event; no raw frame), written as handle() and encodeWire would.
   */
  fastFrame(f: FastFrame, W: Int32Array, k: number, end: number, keys: KeyTracker): number {
    const b = f.buf;
    const o = f.payloadOff;
    const len = f.payloadLen;
    if (len < 12 || b[o] !== 0x80 || this.raw) return 0;
    const b1 = b[o + 1];
    const pt = b1 & 127;
    if ((b1 >= 192 && b1 <= 223) || this.eventPt[pt] === 1) return 0; // RTCP (RFC 5761 §4), an event
    if (end - k < FAST_WORDS + f.extra.length) return -1;
    f.load();
    const corr = this.corr;
    const e = corr.trustedFlow(f.src4, f.dst4, f.sport, f.dport, f.tsSec, f.tsNsec, pt);
    if (e < 0) return 0;
    const seq = (b[o + 2] << 8) | b[o + 3];
    const ssrc = (b[o + 8] << 24) | (b[o + 9] << 16) | (b[o + 10] << 8) | b[o + 11];
    const ts = (b[o + 4] << 24) | (b[o + 5] << 16) | (b[o + 6] << 8) | b[o + 7];
    const t = this.table;
    const row = t !== null ? corr.statsRow(e, ssrc) : -1;
    if (t !== null && !this.perPacket) {
      // A stream the full table left out is neither summarised nor recorded: the generic path counts it as no output.
      if (row === STATS_UNTRACKED || !this.countFast(t, row, f, pt, seq, ts, (b1 & 0x80) !== 0, len)) return 0;
      const st = this.stats;
      st.packets++;
      st.correlated++;
      return FAST_TAKEN;
    }
    let j = wireEnvelopeUdp4(W, k, f, PROTO, 3, 3 + corr.flowLabelCount(e) + f.extraIds.length);
    const labelsAt = j++;
    j = encodeUintEntry(W, j, K_SSRC, ssrc);
    j = encodeUintEntry(W, j, K_PT, pt);
    j = encodeUintEntry(W, j, K_SEQ, seq);
    j = corr.writeFlowLabels(e, W, j, keys);
    j = f.writeExtra(W, j, keys);
    W[labelsAt] = (j - labelsAt - 1) << 2;
    j = wireCompactPayload(W, j, COMPACT);
    j = writePlainCompact(W, j, (b1 & 0x80) !== 0, pt, seq, ts, ssrc, len - 12);
    // Left to the generic path, the words written are overwritten by the next record.
    if (t !== null && !this.countFast(t, row, f, pt, seq, ts, (b1 & 0x80) !== 0, len)) return 0;
    keys.use(K_SSRC);
    keys.use(K_PT);
    keys.use(K_SEQ);
    const st = this.stats;
    st.packets++;
    st.correlated++;
    return j;
  }

  /**
   * A fast-path packet in its stream's statistics: the row its flow entry
   * links for its SSRC (set by the generic path, unlinked when the stream
   * ends), no table lookup; or, the table having had no room for the
   * stream, counted as untracked. False leaves the packet to the generic
   * path: its stream's first packet, a new payload type, a stream ended by
   * silence.
   */
  private countFast(t: RtpStreamTable, row: number, f: FastFrame, pt: number, seq: number, ts: number, marker: boolean, len: number): boolean {
    if (row === STATS_UNTRACKED) {
      t.stats.untracked++;
      return true;
    }
    if (!t.fastPacket(row, f.tsSec, f.tsNsec, seq, ts >>> 0, pt, marker, len)) return false;
    this.tsDigits = f.tsDigits;
    return true;
  }

  counters(): Record<string, unknown> {
    const st = this.stats;
    return {
      packets: st.packets,
      correlated: st.correlated,
      events: st.events,
      rejects: byName(RTP_REJECT_NAMES, st.rejects),
      registry: { ...this.corr.stats },
      ...(this.table !== null ? { stats: { ...this.table.stats, ...(this.callEnds !== null ? { endedByCall: this.callEnds.ended } : {}) } } : {}),
      unsignalled: { packets: st.unsignalled, events: st.unsignalledEvents, ports: topPorts(st.unsignalledPorts) },
    };
  }

  /** The summary's word on RTP it skipped (counters summed over capture processes): how much, and what would take it. */
  hints(counters: Record<string, unknown>): string[] {
    const hints: string[] = [];
    const untracked = (counters.stats as { untracked?: number } | undefined)?.untracked;
    if (untracked) hints.push(`rtp: ${untracked} RTP packets left out of rtp.stats: more streams at once than stats.max_streams a capture process tracks; raise it in the rtp parser's config`);
    const u = counters.unsignalled as { packets?: number; events?: number; ports?: Record<string, number> } | undefined;
    if (!u?.packets) return hints;
    const ports = Object.entries(u.ports ?? {}).sort((a, b) => b[1] - a[1]).slice(0, TOP_PORTS).map(([port]) => port);
    hints.push(
      `rtp: ${u.packets} RTP-looking UDP packets skipped${u.events ? ` (${u.events} of them RFC 4733 events: DTMF)` : ''}: no SDP announced their endpoints ` +
        `(the call's SIP is not in this traffic, or not on a port the sip parser reads); the rtp parser's config takes them with heuristic: true, ` +
        `or ports: [${ports.join(', ')}] (where they were sent)`,
    );
    return hints;
  }

  private reject(reason: number): boolean {
    this.stats.rejects[reason]++;
    return false;
  }
}

function readBE32(a: Uint8Array, o: number): number {
  return (a[o] << 24) | (a[o + 1] << 16) | (a[o + 2] << 8) | a[o + 3];
}

function writeBE32(a: Uint8Array, o: number, v: number): void {
  a[o] = v >>> 24;
  a[o + 1] = (v >>> 16) & 255;
  a[o + 2] = (v >>> 8) & 255;
  a[o + 3] = v & 255;
}

const rtp: PluginDefinition<'parser', RtpConfig> = {
  meta: {
    name: 'rtp',
    version: '0.1.0',
    kind: 'parser',
    labels: ['rtp.ssrc', 'rtp.pt', 'rtp.seq', 'rtp.event', 'rtp.event-end', 'call-id', 'codec', 'media'],
    description: 'RTP (RFC 3550) with RFC 4733 events; labels media with its call through the flow registry.',
    configSchema: {
      type: 'object',
      properties: {
        ports: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 65535 }, default: [] },
        heuristic: { type: 'boolean', default: false },
        learn_nat: { type: 'boolean', default: true },
        nat_ttl: { type: 'number', exclusiveMinimum: 0, default: 3600 },
        event_payload_types: { type: 'array', items: { type: 'integer', minimum: 96, maximum: 127 }, default: [101] },
        raw: { type: 'boolean', default: false },
        stats: {
          type: 'object',
          properties: {
            interval: { type: 'number', exclusiveMinimum: 0, default: 10 },
            per_packet: { type: 'boolean', default: true },
            max_streams: { type: 'integer', minimum: 4, maximum: 1048576, default: 4096 },
            idle: { type: 'number', exclusiveMinimum: 0, default: 30 },
          },
          additionalProperties: false,
        },
      },
      additionalProperties: false,
    },
  },
  payloadReader: () => new RtpPayloadReader(),
  init(ctx) {
    return new RtpParser(ctx.config, new MediaCorrelator(ctx.flows ?? null, ctx.config.learn_nat, ctx.workers ?? 1));
  },
};

export default rtp;
