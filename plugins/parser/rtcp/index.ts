// rtcp parser (RFC 3550 §6, XR RFC 3611, feedback RFC 4585): compound
// packets (SR, RR, SDES, BYE, APP, RTPFB, PSFB, XR) on endpoints the sip
// parser registered (RTCP port: a=rtcp or RTP port + 1; with rtcp-mux the
// RTP port, told apart by packet type, RFC 5761), on configured ports, or
// (option) any UDP whose payload walks as a valid compound packet.
//
// Labels: rtcp.type (the first packet's type), rtcp.ssrc (its sender SSRC),
// call-id / codec / media from the registry. The payload lists every packet
// with its report blocks (fraction lost, cumulative lost, highest sequence,
// jitter, LSR, DLSR), SDES items, BYE sources and reason, APP name; it is
// written by walking the validated bytes again, so nothing is stored.

import type { DecodedPacket } from '../../../src/decode/packet.js';
import type { OutputRecord } from '../../../src/pipeline/record.js';
import type { Parser, PluginDefinition } from '../../../src/plugin/types.js';
import { labelKeyId } from '../../../src/pipeline/label-keys.js';
import { MediaCorrelator } from '../rtp/correlate.js';
import { byName } from '../rtp/index.js';
import { callHashBytes, MediaTable } from '../../../src/shm/media.js';
import { RtcpPayload, RTCP_TYPE_NAMES } from './payload.js';
import { RtcpSummaryWriter } from './summary.js';

export interface RtcpConfig {
  ports: number[];
  heuristic: boolean;
  /** Count flows with one end no SDP announced (correlate.ts); the labels are the same either way. */
  learn_nat: boolean;
  /** No effect since nothing is learned into the registry; accepted so existing task files still validate. */
  nat_ttl: number;
}

const K_TYPE = labelKeyId('rtcp.type');
const K_SSRC = labelKeyId('rtcp.ssrc');

export const RTCP_REJECT_NAMES = ['none', 'short', 'version', 'length', 'not_rtcp'] as const;

export class RtcpStats {
  compounds = 0;
  packets = 0;
  correlated = 0;
  readonly rejects = new Float64Array(RTCP_REJECT_NAMES.length);
}

/**
 * Walks a compound packet: 0 when every packet has version 2, a known
 * packet type range (192-223) and a length that fits, ending exactly at the
 * datagram's end; else the RTCP_REJECT_NAMES index.
 */
export function checkCompound(b: Uint8Array, o: number, len: number): number {
  if (len < 4) return 1;
  const end = o + len;
  let p = o;
  while (p < end) {
    if (end - p < 4) return 1;
    if ((b[p] & 0xc0) !== 0x80) return 2;
    const pt = b[p + 1];
    if (pt < 192 || pt > 223) return 4;
    const n = 4 + 4 * ((b[p + 2] << 8) | b[p + 3]);
    if (n > end - p) return 3;
    p += n;
  }
  return 0;
}

export class RtcpParser implements Parser {
  readonly protocol = 'rtcp';
  readonly stats = new RtcpStats();
  readonly corr: MediaCorrelator;
  private readonly payload = new RtcpPayload();
  private readonly ports = new Uint8Array(65536);
  private readonly heuristic: boolean;
  private slot = -1;
  /** Reports into the task's media table (rtp.stats' RTCP summary), null without one. */
  readonly summary: RtcpSummaryWriter | null;

  constructor(cfg: RtcpConfig, corr: MediaCorrelator) {
    this.corr = corr;
    const media = corr.flows !== null ? MediaTable.besideRegistry(corr.flows.name) : null;
    this.summary = media !== null ? new RtcpSummaryWriter(media) : null;
    for (const p of cfg.ports) this.ports[p] = 1;
    this.heuristic = cfg.heuristic;
  }

  canHandle(p: DecodedPacket): boolean {
    if (p.proto !== 17 || p.payloadLen < 8) return false;
    const b = p.payloadBuf;
    const o = p.payloadOff;
    if ((b[o] & 0xc0) !== 0x80 || b[o + 1] < 200 || b[o + 1] > 207) return false;
    this.slot = this.corr.lookup(p);
    if (this.slot >= 0 || this.ports[p.dport] === 1 || this.ports[p.sport] === 1) return true;
    return this.heuristic && checkCompound(b, o, p.payloadLen) === 0;
  }

  handle(p: DecodedPacket, out: OutputRecord, hasTs: boolean, tsDigits: number): boolean {
    const st = this.stats;
    const b = p.payloadBuf;
    const o = p.payloadOff;
    const len = p.payloadLen;
    const bad = checkCompound(b, o, len);
    if (bad !== 0) {
      st.rejects[bad]++;
      return false;
    }
    st.compounds++;
    const pl = this.payload;
    pl.buf = b;
    pl.off = o;
    pl.len = len;
    st.packets += pl.count();
    out.fillEnvelope(p, hasTs, tsDigits);
    out.protocol = 'rtcp';
    const L = out.labels;
    const pt = b[o + 1];
    const name = RTCP_TYPE_NAMES[pt - 192];
    L.setId(K_TYPE, name);
    const pktLen = 4 + 4 * ((b[o + 2] << 8) | b[o + 3]);
    // The sender SSRC: every type but an SDES/BYE without sources carries one at +4.
    if (pktLen >= 8 && !((pt === 202 || pt === 203) && (b[o] & 31) === 0)) {
      const ssrc = ((b[o + 4] << 24) | (b[o + 5] << 16) | (b[o + 6] << 8) | b[o + 7]) >>> 0;
      L.setUintId(K_SSRC, ssrc);
    }
    if (this.slot >= 0) {
      st.correlated++;
      this.corr.label(L, this.slot, -1);
    }
    if (this.summary !== null) {
      const f = this.corr.flows!;
      const s = this.corr.slot;
      const call = s >= 0 ? callHashBytes(f.u8, f.callIdOffset(s), f.callIdLength(s)) : 0;
      this.summary.write(b, o, len, p.tsSec, p.tsNsec, call);
    }
    out.payload = pl;
    return true;
  }

  counters(): Record<string, unknown> {
    const st = this.stats;
    return { compounds: st.compounds, packets: st.packets, correlated: st.correlated, rejects: byName(RTCP_REJECT_NAMES, st.rejects), registry: { ...this.corr.stats }, ...(this.summary !== null ? { summary: { ...this.summary.stats } } : {}) };
  }
}

const rtcp: PluginDefinition<'parser', RtcpConfig> = {
  meta: {
    name: 'rtcp',
    version: '0.1.0',
    kind: 'parser',
    labels: ['rtcp.type', 'rtcp.ssrc', 'call-id', 'codec', 'media'],
    description: 'RTCP compound packets (RFC 3550, 3611, 4585); labels them with their call through the flow registry.',
    configSchema: {
      type: 'object',
      properties: {
        ports: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 65535 }, default: [] },
        heuristic: { type: 'boolean', default: false },
        learn_nat: { type: 'boolean', default: true },
        nat_ttl: { type: 'number', exclusiveMinimum: 0, default: 3600 },
      },
      additionalProperties: false,
    },
  },
  init(ctx) {
    return new RtcpParser(ctx.config, new MediaCorrelator(ctx.flows ?? null, ctx.config.learn_nat, ctx.workers ?? 1));
  },
};

export default rtcp;
