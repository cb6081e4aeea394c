// sip parser (RFC 3261, SDP RFC 8866; design §4.2.2, §5.5.6): SIP over UDP
// (configured ports, plus a start-line heuristic on any port) and over TCP
// (the configured ports, through the core's stream reassembly: Content-Length
// framing, several messages per segment, one message over several).
//
// Per message: labels straight from the packet bytes (Labels.setBytes: no
// strings), a payload that writes the start line, headers and body from the
// same bytes. With the task's flow registry, SDP offers and answers register
// every media endpoint (RTP and RTCP) with call-id, codec, media type and
// payload-type map, so the rtp and rtcp parsers label media on any capture
// process; BYE, CANCEL and final error responses to INVITE shorten those
// entries to a short grace. Malformed messages are counted by reason.

import type { DecodedPacket } from '../../../src/decode/packet.js';
import type { OutputRecord, Payload } from '../../../src/pipeline/record.js';
import type { PluginDefinition, RecordEmitter, StreamParser } from '../../../src/plugin/types.js';
import type { TcpChunk } from '../../../src/reassembly/tcp-stream.js';
import { FlowKey, type FlowRegistry } from '../../../src/shm/registry.js';
import {
  addrSpec,
  H_CALL_ID,
  H_CONTENT_TYPE,
  H_CSEQ,
  H_FROM,
  H_TO,
  H_USER_AGENT,
  looksLikeStartLine,
  SIP_REJECT_NAMES,
  SipMessage,
  SipReject,
  tagParam,
} from './message.js';
import { SipPayload } from './payload.js';
import { parseSdp, sdpOfBody, type SdpMedia } from './sdp.js';

export interface SipConfig {
  ports: number[];
  heuristic: boolean;
  track_media: boolean;
  media_ttl: number;
  bye_grace: number;
  max_message: number;
}

export class SipStats {
  messages = 0;
  requests = 0;
  responses = 0;
  tcpMessages = 0;
  /** Rejected messages by reason (SIP_REJECT_NAMES). */
  readonly rejects = new Float64Array(SIP_REJECT_NAMES.length);
  sdpBodies = 0;
  endpointsRegistered = 0;
  registerFailed = 0;
  callsEnded = 0;

  toJSON(): Record<string, unknown> {
    const r: Record<string, number> = {};
    SIP_REJECT_NAMES.forEach((n, i) => i > 0 && this.rejects[i] > 0 && (r[n] = this.rejects[i]));
    return { messages: this.messages, requests: this.requests, responses: this.responses, tcp_messages: this.tcpMessages, rejects: r, sdp_bodies: this.sdpBodies, endpoints_registered: this.endpointsRegistered, register_failed: this.registerFailed, calls_ended: this.callsEnded };
  }
}

interface CallMedia {
  endpoints: { address: string; port: number; codec: string; labels: Record<string, string> }[];
}

const K_METHOD = 'sip.method';
const K_STATUS = 'sip.status';
const K_CALL_ID = 'sip.call-id';
const K_FROM = 'sip.from';
const K_TO = 'sip.to';
const K_CSEQ = 'sip.cseq';
const K_FROM_TAG = 'sip.from-tag';
const K_TO_TAG = 'sip.to-tag';
const K_UA = 'sip.user-agent';

/** Registry labels hold at most 116 bytes: keep the payload-type map within this. */
const PTMAP_MAX = 90;

export class SipParser implements StreamParser {
  readonly protocol = 'sip';
  readonly tcp: { ports: number[] };
  readonly stats = new SipStats();
  readonly msg = new SipMessage();
  private readonly payload = new SipPayload();
  private readonly udpPorts = new Uint8Array(65536);
  private readonly tmp = new Int32Array(2);
  private readonly key = new FlowKey();
  private readonly calls = new Map<string, CallMedia>();

  constructor(
    private readonly cfg: SipConfig,
    private readonly flows: FlowRegistry | null,
  ) {
    for (const p of cfg.ports) this.udpPorts[p] = 1;
    this.tcp = { ports: [...cfg.ports] };
  }

  canHandle(p: DecodedPacket): boolean {
    if (p.proto !== 17 || p.payloadLen <= 0) return false;
    if (this.udpPorts[p.dport] === 1 || this.udpPorts[p.sport] === 1) return true;
    return this.cfg.heuristic && looksLikeStartLine(p.payloadBuf, p.payloadOff, p.payloadOff + p.payloadLen);
  }

  handle(p: DecodedPacket, out: OutputRecord, hasTs: boolean, tsDigits: number): boolean {
    const m = this.msg;
    const n = m.parse(p.payloadBuf, p.payloadOff, p.payloadOff + p.payloadLen, false);
    if (n < 0) {
      this.stats.rejects[m.reject]++;
      return false;
    }
    if (m.truncated) this.stats.rejects[SipReject.BodyTruncated]++;
    if (m.badLength) this.stats.rejects[SipReject.BadContentLength]++;
    out.fillEnvelope(p, hasTs, tsDigits);
    this.fill(out);
    return true;
  }

  handleStream(c: TcpChunk, em: RecordEmitter): number {
    const m = this.msg;
    const buf = c.buf;
    const end = c.off + c.len;
    let at = c.off;
    if (c.gap) at = this.resync(buf, at, end);
    for (;;) {
      // Keep-alives (RFC 5626: CRLF) and blank lines between messages.
      while (at < end && (buf[at] === 13 || buf[at] === 10)) at++;
      if (at >= end) break;
      const n = m.parse(buf, at, end, true);
      if (n === 0) {
        if (end - at > this.cfg.max_message) {
          this.stats.rejects[SipReject.TooLarge]++;
          at = this.resync(buf, at + 1, end);
          continue;
        }
        break; // wait for more bytes
      }
      if (n < 0) {
        this.stats.rejects[m.reject]++;
        at = this.resync(buf, at + 1, end);
        continue;
      }
      const rec = em.record;
      rec.reset();
      rec.fillEnvelope(c.packet, c.hasTs, c.tsDigits);
      this.fill(rec);
      this.stats.tcpMessages++;
      em.emit();
      at += n;
    }
    return at - c.off;
  }

  /** The next line start in [at, end) that looks like a SIP start line; bytes before it are dropped (counted). */
  private resync(buf: Uint8Array, at: number, end: number): number {
    const from = at;
    for (let i = at; i < end; i++) {
      if ((i === from || buf[i - 1] === 10) && looksLikeStartLine(buf, i, end)) {
        if (i > from) this.stats.rejects[SipReject.Resync]++;
        return i;
      }
    }
    // Nothing yet: keep a short tail (a start line may be split), drop the rest.
    const keep = end - from > 16 ? end - 16 : from;
    if (keep > from) this.stats.rejects[SipReject.Resync]++;
    return keep;
  }

  /** Labels and payload of the parsed message into `out` (envelope already filled). */
  private fill(out: OutputRecord): void {
    const m = this.msg;
    const st = this.stats;
    const b = m.buf;
    const L = out.labels;
    const t = this.tmp;
    out.protocol = 'sip';
    st.messages++;
    if (m.isRequest) {
      st.requests++;
      L.setBytes(K_METHOD, b, m.methodOff, m.methodLen);
    } else {
      st.responses++;
      L.setBytes(K_STATUS, b, m.statusOff, 3);
    }
    this.headerLabel(L, K_CALL_ID, m.header(H_CALL_ID));
    const from = m.header(H_FROM);
    if (from >= 0) {
      if (m.hFolded[from] === 0) {
        if (addrSpec(b, m.hValOff[from], m.hValLen[from], t)) L.setBytes(K_FROM, b, t[0], t[1]);
        if (tagParam(b, m.hValOff[from], m.hValLen[from], t)) L.setBytes(K_FROM_TAG, b, t[0], t[1]);
      } else this.foldedAddr(L, K_FROM, K_FROM_TAG, m.valueString(from));
    }
    const to = m.header(H_TO);
    if (to >= 0) {
      if (m.hFolded[to] === 0) {
        if (addrSpec(b, m.hValOff[to], m.hValLen[to], t)) L.setBytes(K_TO, b, t[0], t[1]);
        if (tagParam(b, m.hValOff[to], m.hValLen[to], t)) L.setBytes(K_TO_TAG, b, t[0], t[1]);
      } else this.foldedAddr(L, K_TO, K_TO_TAG, m.valueString(to));
    }
    this.headerLabel(L, K_CSEQ, m.header(H_CSEQ));
    this.headerLabel(L, K_UA, m.header(H_USER_AGENT));
    this.payload.set(m);
    out.payload = this.payload;
    if (this.flows !== null && this.cfg.track_media) this.correlate(m);
  }

  private headerLabel(L: OutputRecord['labels'], key: string, i: number): void {
    if (i < 0) return;
    const m = this.msg;
    if (m.hFolded[i] === 0) L.setBytes(key, m.buf, m.hValOff[i], m.hValLen[i]);
    else L.set(key, m.valueString(i));
  }

  private foldedAddr(L: OutputRecord['labels'], key: string, tagKey: string, v: string): void {
    const b = Buffer.from(v, 'utf8');
    const u = new Uint8Array(b.buffer, b.byteOffset, b.length);
    if (addrSpec(u, 0, u.length, this.tmp)) L.setBytes(key, u, this.tmp[0], this.tmp[1]);
    if (tagParam(u, 0, u.length, this.tmp)) L.setBytes(tagKey, u, this.tmp[0], this.tmp[1]);
  }

  // ---- media correlation (slow path: SDP bodies and call ends only) ----

  private correlate(m: SipMessage): void {
    const ci = m.header(H_CALL_ID);
    if (ci < 0) return;
    const b = m.buf;
    const isInviteCseq = m.cseqMethodLen === 6 && isInvite(b, m.cseqMethodOff);
    if (m.isRequest) {
      const ml = m.methodLen;
      const o = m.methodOff;
      const bye = ml === 3 && b[o] === 66 && b[o + 1] === 89 && b[o + 2] === 69;
      const cancel = ml === 6 && b[o] === 67 && b[o + 1] === 65 && b[o + 2] === 78;
      if (bye || cancel) {
        this.endCall(m.valueString(ci));
        return;
      }
    } else if (m.status >= 300 && isInviteCseq) {
      this.endCall(m.valueString(ci));
      return;
    }
    if (m.bodyLen === 0) return;
    const cti = m.header(H_CONTENT_TYPE);
    if (cti < 0) return;
    // Content-Type starts with application/sdp or multipart/: check bytes before making strings.
    const c0 = b[m.hValOff[cti]] | 32;
    if (c0 !== 97 && c0 !== 109) return;
    const sdp = sdpOfBody(m.valueString(cti), m.bodyString());
    if (sdp === null) return;
    this.stats.sdpBodies++;
    const media = parseSdp(sdp);
    if (media.length === 0) return;
    this.register(m.valueString(ci), media);
  }

  private register(callId: string, media: SdpMedia[]): void {
    const flows = this.flows!;
    let call = this.calls.get(callId);
    if (call === undefined) {
      call = { endpoints: [] };
      this.calls.set(callId, call);
      // Bounded: forget the oldest calls (their entries still expire by TTL).
      if (this.calls.size > 100_000) this.calls.delete(this.calls.keys().next().value as string);
    }
    const ttl = this.cfg.media_ttl * 1000;
    for (const md of media) {
      let ptmap = md.ptmap;
      while (Buffer.byteLength(ptmap) > PTMAP_MAX) ptmap = ptmap.slice(0, ptmap.lastIndexOf(' '));
      const labels = { media: md.media.slice(0, 16), pt: ptmap };
      const codec = truncUtf8(md.codec, 16);
      const eps: [string, number][] = [[md.address, md.port]];
      if (md.rtcpPort > 0) eps.push([md.rtcpAddress, md.rtcpPort]);
      for (const [address, port] of eps) {
        try {
          this.key.endpoint(address, port);
          if (flows.register(this.key, { callId: truncUtf8(callId, 128), codec, labels }, ttl) < 0) this.stats.registerFailed++;
          else {
            this.stats.endpointsRegistered++;
            if (!call.endpoints.some((e) => e.address === address && e.port === port)) call.endpoints.push({ address, port, codec, labels });
          }
        } catch {
          this.stats.registerFailed++; // an address the registry does not take (e.g. a host name)
        }
      }
    }
  }

  /** BYE, CANCEL, final error to INVITE: the call's media entries live only `bye_grace` more seconds. */
  private endCall(callId: string): void {
    const call = this.calls.get(callId);
    if (call === undefined) return;
    this.calls.delete(callId);
    this.stats.callsEnded++;
    const flows = this.flows!;
    const grace = Math.max(1, this.cfg.bye_grace * 1000);
    for (const e of call.endpoints) {
      this.key.endpoint(e.address, e.port);
      flows.register(this.key, { callId: truncUtf8(callId, 128), codec: e.codec, labels: e.labels }, grace);
    }
  }

  /** Calls whose media this process registered and has not seen end (tests, stats). */
  get callsTracked(): number {
    return this.calls.size;
  }
}

function isInvite(b: Uint8Array, o: number): boolean {
  return b[o] === 73 && b[o + 1] === 78 && b[o + 2] === 86 && b[o + 3] === 73 && b[o + 4] === 84 && b[o + 5] === 69;
}

function truncUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let t = s.slice(0, max);
  while (Buffer.byteLength(t) > max) t = t.slice(0, -1);
  return t;
}

const sip: PluginDefinition<'parser', SipConfig> = {
  meta: {
    name: 'sip',
    version: '0.1.0',
    kind: 'parser',
    labels: ['sip.method', 'sip.status', 'sip.call-id', 'sip.from', 'sip.to', 'sip.cseq', 'sip.from-tag', 'sip.to-tag', 'sip.user-agent'],
    description: 'SIP over UDP and TCP (RFC 3261); registers SDP media endpoints in the flow registry for rtp/rtcp correlation.',
    configSchema: {
      type: 'object',
      properties: {
        ports: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 65535 }, default: [5060] },
        heuristic: { type: 'boolean', default: true },
        track_media: { type: 'boolean', default: true },
        media_ttl: { type: 'number', exclusiveMinimum: 0, default: 3600 },
        bye_grace: { type: 'number', minimum: 0, default: 5 },
        max_message: { type: 'integer', minimum: 1024, maximum: 1048576, default: 65536 },
      },
      additionalProperties: false,
    },
  },
  init(ctx) {
    return new SipParser(ctx.config, ctx.flows ?? null);
  },
};

export default sip;
