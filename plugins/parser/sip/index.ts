// sip parser (RFC 3261, SDP RFC 8866; plugins/README.md): SIP over UDP
// (configured ports, plus a start-line heuristic on any port) and over TCP
// (the configured ports, plus with the heuristic any connection whose first
// payload is a whole SIP start line; through the core's stream reassembly:
// Content-Length framing, several messages per segment, one message over
// several; after a hole, resynchronised on the next start line).
//
// Per message: labels straight from the packet bytes (Labels.setBytes: no
// strings), a payload that writes the start line, headers and body from the
// same bytes. With the task's flow registry, SDP offers and answers register
// every media endpoint (RTP and RTCP) with call-id, codec, media type and
// payload-type map, so the rtp and rtcp parsers label media on any capture
// process; BYE, CANCEL and final error responses to INVITE shorten those
// entries to a short grace. Malformed messages are counted by reason.

import type { DecodedPacket } from '../../../src/decode/packet.js';
import { labelKeyId } from '../../../src/pipeline/label-keys.js';
import type { OutputRecord, Payload } from '../../../src/pipeline/record.js';
import type { PluginDefinition, RecordEmitter, StreamParser } from '../../../src/plugin/types.js';
import type { TcpChunk } from '../../../src/reassembly/tcp-stream.js';
import { CALL_ID_MAX, CODEC_MAX, FlowKey, type FlowRegistry } from '../../../src/shm/registry.js';
import { callHashBytes, MediaTable } from '../../../src/shm/media.js';
import {
  ADDR_FOUND,
  addrAndTag,
  addrSpec,
  H_CALL_ID,
  H_CONTENT_TYPE,
  H_CSEQ,
  H_FROM,
  H_TO,
  H_USER_AGENT,
  isSipStartLine,
  looksLikeStartLine,
  startLinePrefix,
  SIP_REJECT_NAMES,
  SipMessage,
  SipReject,
  TAG_FOUND,
  tagParam,
  USER_FOUND,
  uriParts,
} from './message.js';
import { CallMedia, CallTable, EP_WORDS } from './calls.js';
import { Dialogs } from './dialogs.js';
import { RetransTable } from './retrans.js';
import { SipPayload, SipPayloadReader } from './payload.js';
import { ADDR_NONE, ADDR_V4, parseSdp, PTMAP_CAP, SdpScanner, sdpOfBody, staticName, type SdpMedia } from './sdp.js';

export interface SipConfig {
  ports: number[];
  heuristic: boolean;
  track_media: boolean;
  media_ttl: number;
  bye_grace: number;
  max_message: number;
  /** Call records (schema defaults: off, no updates, 3600 s); optional for callers that build a config by hand. */
  calls?: boolean;
  call_updates?: boolean;
  call_timeout?: number;
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
  /** UDP messages marked sip.retransmission. */
  retransmissions = 0;

  toJSON(): Record<string, unknown> {
    const r: Record<string, number> = {};
    SIP_REJECT_NAMES.forEach((n, i) => i > 0 && this.rejects[i] > 0 && (r[n] = this.rejects[i]));
    return { messages: this.messages, requests: this.requests, responses: this.responses, tcp_messages: this.tcpMessages, retransmissions: this.retransmissions, rejects: r, sdp_bodies: this.sdpBodies, endpoints_registered: this.endpointsRegistered, register_failed: this.registerFailed, calls_ended: this.callsEnded };
  }
}

const K_METHOD = labelKeyId('sip.method');
const K_STATUS = labelKeyId('sip.status');
const K_CALL_ID = labelKeyId('sip.call-id');
const K_FROM = labelKeyId('sip.from');
const K_TO = labelKeyId('sip.to');
const K_CSEQ = labelKeyId('sip.cseq');
const K_FROM_TAG = labelKeyId('sip.from-tag');
const K_TO_TAG = labelKeyId('sip.to-tag');
const K_UA = labelKeyId('sip.user-agent');
const K_FROM_USER = labelKeyId('sip.from-user');
const K_TO_USER = labelKeyId('sip.to-user');
const K_RURI_USER = labelKeyId('sip.ruri-user');
const K_RETRANS = labelKeyId('sip.retransmission');

/** Registry labels hold at most 116 bytes: keep the payload-type map within this. */
// 77: media (up to 23 bytes), pt and side (12) fit the registry's 116 bytes of labels.
const PTMAP_MAX = 77;

export class SipParser implements StreamParser {
  readonly protocol = 'sip';
  readonly tcp: { ports: number[]; heuristic: boolean };
  readonly stats = new SipStats();
  readonly msg = new SipMessage();
  private readonly payload = new SipPayload();
  private readonly udpPorts = new Uint8Array(65536);
  private readonly tmp = new Int32Array(4);
  private readonly tmp2 = new Int32Array(4);
  /** The message's From and To, scanned once (addrAndTag: address, tag); -1: no header, or folded (the slow path). */
  private fromF = -1;
  private readonly fromT = new Int32Array(4);
  private toF = -1;
  private readonly toT = new Int32Array(4);
  /** Retransmitted UDP messages (retrans.ts). */
  private readonly retrans = new RetransTable();
  /** The current message is a retransmission. */
  private isRetrans = false;
  /** A TCP message's capture time (TcpChunk.stamp), for its call. */
  private readonly when = { tsSec: 0, tsNsec: 0 };
  /** Call records (dialogs.ts), with `calls`; null without. */
  private readonly dialogs: Dialogs | null;
  private readonly key = new FlowKey();
  /** Call-ID → the endpoints the call registered, for BYE/CANCEL/final errors (bounded: the oldest are forgotten, their entries still expire by TTL). */
  private readonly calls = new CallTable(100_000);
  private readonly sdp = new SdpScanner();
  /** SDP media go to the flow registry: a registry and track_media. */
  private readonly tracking: boolean;
  /** Where a call's end goes for the rtp parser's streams (src/shm/media.ts), null without one. */
  private readonly media: MediaTable | null;
  /** The capture time of the message being handled (a call's end is marked at it). */
  private sec = 0;
  private nsec = 0;

  constructor(
    private readonly cfg: SipConfig,
    private readonly flows: FlowRegistry | null,
  ) {
    for (const p of cfg.ports) this.udpPorts[p] = 1;
    this.tracking = flows !== null && cfg.track_media;
    this.media = this.tracking ? MediaTable.besideRegistry(flows!.name) : null;
    this.tcp = { ports: [...cfg.ports], heuristic: cfg.heuristic };
    this.dialogs = cfg.calls === true ? new Dialogs(this.calls, { updates: cfg.call_updates === true, timeoutMs: (cfg.call_timeout ?? 3600) * 1000 }) : null;
  }

  /** The pipeline's emitter for call records. */
  attach(out: RecordEmitter): void {
    if (this.dialogs !== null) this.dialogs.emitter = out;
  }

  /** Capture time passes (any frame): calls idle past call_timeout end. */
  tick(sec: number, nsec: number): void {
    this.dialogs?.tick(sec, nsec);
  }

  /** End of input: the calls still open are emitted as they stand. */
  flush(): void {
    this.dialogs?.flush();
  }

  /** A TCP connection on another port whose first payload (either direction) starts with a whole SIP start line is SIP. */
  probeStream(buf: Uint8Array, off: number, len: number): boolean {
    return this.cfg.heuristic && isSipStartLine(buf, off, off + len);
  }

  canHandle(p: DecodedPacket): boolean {
    if (p.proto !== 17 || p.payloadLen <= 0) return false;
    if (this.udpPorts[p.dport] === 1 || this.udpPorts[p.sport] === 1) return true;
    return this.cfg.heuristic && looksLikeStartLine(p.payloadBuf, p.payloadOff, p.payloadOff + p.payloadLen);
  }

  handle(p: DecodedPacket, out: OutputRecord, hasTs: boolean, tsDigits: number): boolean {
    const m = this.msg;
    const n = m.parse(p.payloadBuf, p.payloadOff, p.payloadOff + p.payloadLen, false, p.payloadView);
    if (n < 0) {
      this.stats.rejects[m.reject]++;
      return false;
    }
    if (m.truncated) this.stats.rejects[SipReject.BodyTruncated]++;
    if (m.badLength) this.stats.rejects[SipReject.BadContentLength]++;
    this.scanAddrs(m);
    this.isRetrans = this.retransmitted(m, p);
    if (this.isRetrans) this.stats.retransmissions++;
    // Correlation and call records first: a call record is emitted through the same record, before this message fills it.
    this.sec = p.tsSec;
    this.nsec = p.tsNsec;
    if (this.tracking) this.correlate(m);
    if (this.dialogs !== null) {
      this.dialogs.message(m, p, p.tsSec, p.tsNsec, tsDigits, this.isRetrans);
      out.reset();
    }
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
      const n = m.parse(buf, at, end, true, c.view);
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
      this.scanAddrs(m);
      this.isRetrans = false; // TCP resends below SIP: a message arrives once
      this.sec = c.packet.tsSec;
      this.nsec = c.packet.tsNsec;
      if (this.tracking) this.correlate(m);
      if (this.dialogs !== null) {
        c.stamp(this.when, at);
        this.dialogs.message(m, c.packet, this.when.tsSec, this.when.tsNsec, c.tsDigits, false);
      }
      rec.reset();
      rec.fillEnvelope(c.packet, c.hasTs, c.tsDigits);
      c.stamp(rec, at); // its first byte's capture time
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
    // Nothing yet: keep the last line if it could be a start line cut short by the segment's end, drop the rest.
    let last = end;
    while (last > from && buf[last - 1] !== 10) last--;
    const keep = last < end && startLinePrefix(buf, last, end) ? last : end;
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
      this.label(L, K_METHOD, m.methodOff, m.methodLen);
    } else {
      st.responses++;
      this.label(L, K_STATUS, m.statusOff, 3);
    }
    this.headerLabel(L, K_CALL_ID, m.header(H_CALL_ID));
    const from = m.header(H_FROM);
    if (from >= 0) {
      if (m.hFolded[from] === 0) {
        const f = this.fromF;
        const t = this.fromT;
        if ((f & ADDR_FOUND) !== 0) {
          this.label(L, K_FROM, t[0], t[1]);
          this.userLabel(L, K_FROM_USER, t[0], t[1]);
        }
        if ((f & TAG_FOUND) !== 0) this.label(L, K_FROM_TAG, t[2], t[3]);
      } else this.foldedAddr(L, K_FROM, K_FROM_TAG, K_FROM_USER, m.valueString(from));
    }
    const to = m.header(H_TO);
    if (to >= 0) {
      if (m.hFolded[to] === 0) {
        const f = this.toF;
        const t = this.toT;
        if ((f & ADDR_FOUND) !== 0) {
          this.label(L, K_TO, t[0], t[1]);
          this.userLabel(L, K_TO_USER, t[0], t[1]);
        }
        if ((f & TAG_FOUND) !== 0) this.label(L, K_TO_TAG, t[2], t[3]);
      } else this.foldedAddr(L, K_TO, K_TO_TAG, K_TO_USER, m.valueString(to));
    }
    if (m.isRequest) this.userLabel(L, K_RURI_USER, m.uriOff, m.uriLen);
    if (this.isRetrans) L.setBytesId(K_RETRANS, TRUE, 0, 4);
    this.headerLabel(L, K_CSEQ, m.header(H_CSEQ));
    this.headerLabel(L, K_UA, m.header(H_USER_AGENT));
    this.payload.set(m);
    out.payload = this.payload;
  }

  private headerLabel(L: OutputRecord['labels'], key: number, i: number): void {
    if (i < 0) return;
    const m = this.msg;
    if (m.hFolded[i] === 0) this.label(L, key, m.hValOff[i], m.hValLen[i]);
    else L.setId(key, m.valueString(i));
  }

  /** The message's bytes [off, off+len) as label `key`: by words through the payload's view when there is one (datagrams). */
  private label(L: OutputRecord['labels'], key: number, off: number, len: number): void {
    const m = this.msg;
    if (m.view !== null) L.setBytesViewId(key, m.buf, m.view, off, len);
    else L.setBytesId(key, m.buf, off, len);
  }

  /** The user part of the URI at the message's bytes [off, off+len) as label `key`, when it has one. */
  private userLabel(L: OutputRecord['labels'], key: number, off: number, len: number): void {
    const u = this.tmp2;
    if ((uriParts(this.msg.buf, off, len, u) & USER_FOUND) !== 0) this.label(L, key, u[0], u[1]);
  }

  private foldedAddr(L: OutputRecord['labels'], key: number, tagKey: number, userKey: number, v: string): void {
    const b = Buffer.from(v, 'utf8');
    const u = new Uint8Array(b.buffer, b.byteOffset, b.length);
    if (addrSpec(u, 0, u.length, this.tmp)) {
      L.setBytesId(key, u, this.tmp[0], this.tmp[1]);
      if ((uriParts(u, this.tmp[0], this.tmp[1], this.tmp2) & USER_FOUND) !== 0) L.setBytesId(userKey, u, this.tmp2[0], this.tmp2[1]);
    }
    if (tagParam(u, 0, u.length, this.tmp)) L.setBytesId(tagKey, u, this.tmp[0], this.tmp[1]);
  }

  /** A UDP message seen less than 32 s before between the same endpoints (retrans.ts). */
  private retransmitted(m: SipMessage, p: DecodedPacket): boolean {
    const ft = this.fromF >= 0 && (this.fromF & TAG_FOUND) !== 0;
    const tt = this.toF >= 0 && (this.toF & TAG_FOUND) !== 0;
    return this.retrans.seen(m, p, this.fromT[2], ft ? this.fromT[3] : 0, this.toT[2], tt ? this.toT[3] : 0, p.tsSec * 1000 + p.tsNsec / 1e6);
  }

  /** From and To of the parsed message, scanned once for the labels and the retransmission check. */
  private scanAddrs(m: SipMessage): void {
    const from = m.header(H_FROM);
    this.fromF = from >= 0 && m.hFolded[from] === 0 ? addrAndTag(m.buf, m.hValOff[from], m.hValLen[from], this.fromT) : -1;
    const to = m.header(H_TO);
    this.toF = to >= 0 && m.hFolded[to] === 0 ? addrAndTag(m.buf, m.hValOff[to], m.hValLen[to], this.toT) : -1;
  }

  // ---- media correlation: SDP bodies and call ends only, from the message bytes ----

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
        this.endCall(m, ci);
        return;
      }
    } else if (m.status >= 300 && isInviteCseq) {
      this.endCall(m, ci);
      return;
    }
    if (m.bodyLen === 0) return;
    const cti = m.header(H_CONTENT_TYPE);
    if (cti < 0) return;
    // Content-Type starts with application/sdp or multipart/: check bytes before making strings.
    const c0 = b[m.hValOff[cti]] | 32;
    if (c0 !== 97 && c0 !== 109) return;
    let media: SdpMedia[];
    if (m.hFolded[cti] === 0 && isSdpType(b, m.hValOff[cti], m.hValLen[cti])) {
      this.stats.sdpBodies++;
      const n = this.sdp.scan(b, m.view, m.bodyOff, m.bodyOff + m.bodyLen);
      if (n === 0) return;
      if (n > 0) {
        this.registerScanned(m, ci, n);
        return;
      }
      media = parseSdp(m.bodyString()); // declined by the scanner: rare forms
    } else {
      // Multipart bodies (SIP-I), folded Content-Type: strings, rare.
      const sdp = sdpOfBody(m.valueString(cti), m.bodyString());
      if (sdp === null) return;
      this.stats.sdpBodies++;
      media = parseSdp(sdp);
    }
    if (media.length === 0) return;
    this.registerParsed(m, ci, media);
  }

  /** Registers the scanner's endpoints: contexts written from the message bytes. */
  private registerScanned(m: SipMessage, ci: number, n: number): void {
    const call = this.callOf(m, ci, true)!;
    const ttl = this.cfg.media_ttl * 1000;
    const now = Date.now(); // one clock read for the message's writes
    const held = this.flows!.holdWrites(); // one lock for them too (if busy, each write tries on its own, as before)
    try {
      for (let i = 0; i < n; i++) this.registerDescription(m, ci, call, i, ttl, now);
    } finally {
      if (held) this.flows!.releaseWrites();
    }
  }

  /** The scanner's media description i: its context, then its RTP and RTCP endpoints. */
  private registerDescription(m: SipMessage, ci: number, call: CallMedia, i: number, ttl: number, now: number): void {
    const sc = this.sdp;
    const buf = m.buf;
    const ctx = this.flows!.builder;
    let ok = true;
    try {
      ctx.reset();
      this.writeCallId(m, ci);
      if (sc.codecStatic[i] >= 0) {
        const name = staticName(sc.codecStatic[i]);
        ctx.codec(name, 0, Math.min(name.length, CODEC_MAX));
      } else ctx.codec(buf, sc.codecOff[i], Math.min(sc.codecLen[i], CODEC_MAX));
      ctx.label(L_MEDIA, buf, sc.mediaOff[i], Math.min(sc.mediaLen[i], 16));
      const po = i * PTMAP_CAP;
      ctx.label(L_PT, sc.ptmap, po, ptmapCut(sc.ptmap, po, sc.ptmapLen[i]));
      const side = this.sideOf(m, call);
      ctx.label(L_SIDE, side, 0, side.length);
    } catch {
      ok = false; // does not fit the slot (media type and ptmap at their longest): counted per endpoint
    }
    for (let k = 0; k < sc.nports[i]; k++) {
      const port = sc.port[i] + 2 * k;
      this.registerEndpoint(call, ok, this.keyOf(sc.addrKind[i], sc.addr4[i], buf, sc.addrOff[i], sc.addrLen[i], port), ttl, now);
      const rtcp = sc.mux[i] ? -1 : sc.rtcpPort[i] > 0 && k === 0 ? sc.rtcpPort[i] : port + 1;
      if (rtcp <= 0) continue;
      const keyed =
        sc.rtcpKind[i] !== ADDR_NONE
          ? this.keyOf(sc.rtcpKind[i], sc.rtcp4[i], buf, sc.rtcpOff[i], sc.rtcpLen[i], rtcp)
          : this.keyOf(sc.addrKind[i], sc.addr4[i], buf, sc.addrOff[i], sc.addrLen[i], rtcp);
      this.registerEndpoint(call, ok, keyed, ttl, now);
    }
  }

  /** Registers parseSdp's endpoints (multipart bodies, bodies the scanner declined). */
  private registerParsed(m: SipMessage, ci: number, media: SdpMedia[]): void {
    const callId = m.valueString(ci);
    const call = this.callOf(m, ci, true)!;
    const ctx = this.flows!.builder;
    const ttl = this.cfg.media_ttl * 1000;
    const now = Date.now();
    const held = this.flows!.holdWrites();
    try {
      for (const md of media) {
        let ptmap = md.ptmap;
        while (Buffer.byteLength(ptmap) > PTMAP_MAX) ptmap = ptmap.slice(0, ptmap.lastIndexOf(' '));
        let ok = true;
        try {
          ctx.reset().callIdString(truncUtf8(callId, CALL_ID_MAX)).codecString(truncUtf8(md.codec, CODEC_MAX));
          ctx.labelString('media', md.media.slice(0, 16)).labelString('pt', ptmap);
          const side = this.sideOf(m, call);
          ctx.label(L_SIDE, side, 0, side.length);
        } catch {
          ok = false;
        }
        this.registerEndpoint(call, ok, this.keyOfText(md.address, md.port), ttl, now);
        if (md.rtcpPort > 0) this.registerEndpoint(call, ok, this.keyOfText(md.rtcpAddress, md.rtcpPort), ttl, now);
      }
    } finally {
      if (held) this.flows!.releaseWrites();
    }
  }

  /**
   * Whose SDP this is, for the rtp parser's direction: the caller's when
   * the message's sender (a request's From, a response's To) has the tag
   * the call's first message had in From, so a re-INVITE the callee sends
   * is the callee's. Without tags: a request's is the caller's.
   */
  private sideOf(m: SipMessage, call: CallMedia): Uint8Array {
    const b = m.buf;
    const from = this.fromF >= 0 && (this.fromF & TAG_FOUND) !== 0 ? callHashBytes(b, this.fromT[2], this.fromT[3]) : 0;
    if (call.callerTag === 0) call.callerTag = from;
    const own = m.isRequest ? from : this.toF >= 0 && (this.toF & TAG_FOUND) !== 0 ? callHashBytes(b, this.toT[2], this.toT[3]) : 0;
    if (own === 0 || call.callerTag === 0) return m.isRequest ? CALLER : CALLEE;
    return own === call.callerTag ? CALLER : CALLEE;
  }

  /** The call's Call-ID into the context: its bytes when plain ASCII (nearly always), else the string's UTF-8. */
  private writeCallId(m: SipMessage, ci: number): void {
    const ctx = this.flows!.builder;
    if (m.hFolded[ci] === 0 && ctx.callIdAscii(m.buf, m.hValOff[ci], Math.min(m.hValLen[ci], CALL_ID_MAX), m.view)) return;
    ctx.callIdString(truncUtf8(m.valueString(ci), CALL_ID_MAX));
  }

  /** this.key for an SDP address (ADDR_V4: the number; text: parsed), or false if the registry does not take it. */
  private keyOf(kind: number, v4: number, buf: Uint8Array, off: number, len: number, port: number): boolean {
    if (kind === ADDR_V4) {
      this.key.endpoint4(v4, port);
      return true;
    }
    return this.keyOfText(Buffer.from(buf.buffer, buf.byteOffset + off, len).toString('latin1'), port);
  }

  private keyOfText(address: string, port: number): boolean {
    try {
      this.key.endpoint(address, port);
      return true;
    } catch {
      return false; // e.g. a host name
    }
  }

  /** Registers this.key with the builder's context; on success the call remembers the endpoint. */
  private registerEndpoint(call: CallMedia, ctxOk: boolean, keyed: boolean, ttl: number, now: number): void {
    if (!ctxOk || !keyed || this.flows!.registerScratch(this.key, ttl, now) < 0) {
      this.stats.registerFailed++;
      return;
    }
    this.stats.endpointsRegistered++;
    call.add(this.key.w);
  }

  /** The call of the message's Call-ID (Call-ID header `ci`), added when new if `add`, else null when unknown. */
  private callOf(m: SipMessage, ci: number, add: boolean): CallMedia | null {
    let b = m.buf;
    let off = m.hValOff[ci];
    let len = m.hValLen[ci];
    if (m.hFolded[ci] !== 0) {
      b = Buffer.from(m.valueString(ci)); // folded: rare
      off = 0;
      len = b.length;
    }
    return add ? this.calls.getOrAdd(b, off, len) : this.calls.find(b, off, len);
  }

  /** BYE, CANCEL, final error to INVITE: the call's media entries live only `bye_grace` more seconds. */
  private endCall(m: SipMessage, ci: number): void {
    const call = this.callOf(m, ci, false);
    if (call === null) return;
    this.stats.callsEnded++;
    const flows = this.flows!;
    const grace = Math.max(1, this.cfg.bye_grace * 1000);
    const w = this.key.w;
    const now = Date.now();
    const held = flows.holdWrites();
    try {
      for (let e = 0; e < call.n; e++) {
        for (let j = 0; j < EP_WORDS; j++) w[j] = call.w[e * EP_WORDS + j];
        w[6] = w[7] = w[8] = w[9] = 0; // endpoint keys: no second address
        flows.expireIn(this.key, grace, now);
      }
    } finally {
      if (held) flows.releaseWrites();
    }
    // Its RTP streams end bye_grace later in capture time (the rtp parser's stats), on whichever process has them.
    if (this.media !== null) this.media.markCallEnd(callHashBytes(call.key, 0, Math.min(call.keyLen, CALL_ID_MAX)), this.sec, this.nsec, this.cfg.bye_grace);
    if (call.call === null) this.calls.remove(call);
    else call.n = 0; // its record is emitted, and the entry removed, by dialogs.ts
  }

  /** Calls whose media this process registered and has not seen end (tests, stats). */
  get callsTracked(): number {
    return this.calls.size;
  }

  counters(): Record<string, unknown> {
    const c = this.stats.toJSON();
    if (this.dialogs !== null) {
      const d = this.dialogs.stats;
      c.calls = { opened: d.opened, records: d.records, timeouts: d.timeouts, evicted: d.evicted, dropped: d.dropped };
    }
    return c;
  }
}

const TRUE = Uint8Array.from('true', (c) => c.charCodeAt(0));
const L_MEDIA = Uint8Array.from('media', (c) => c.charCodeAt(0));
const L_PT = Uint8Array.from('pt', (c) => c.charCodeAt(0));
/** The registry label the rtp parser's direction reads (plugins/parser/rtp/rtcp-summary.ts). */
const L_SIDE = Uint8Array.from('side', (c) => c.charCodeAt(0));
const CALLER = Uint8Array.from('caller', (c) => c.charCodeAt(0));
const CALLEE = Uint8Array.from('callee', (c) => c.charCodeAt(0));

/** Content-Type value starts with application/sdp (ASCII, any case). */
function isSdpType(b: Uint8Array, off: number, len: number): boolean {
  if (len < APP_SDP.length) return false;
  for (let i = 0; i < APP_SDP.length; i++) {
    const c = b[off + i];
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== APP_SDP[i]) return false;
  }
  return true;
}
const APP_SDP = Uint8Array.from('application/sdp', (c) => c.charCodeAt(0));

/**
 * The ptmap's length within PTMAP_MAX bytes, cut at a space as the string
 * path's loop does (ASCII: bytes are characters): the longest prefix ending
 * before a space, else the first PTMAP_MAX bytes.
 */
function ptmapCut(b: Uint8Array, off: number, len: number): number {
  if (len <= PTMAP_MAX) return len;
  for (let i = PTMAP_MAX; i >= 0; i--) if (b[off + i] === 32) return i;
  return PTMAP_MAX;
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
    labels: [
      'sip.method', 'sip.status', 'sip.call-id', 'sip.from', 'sip.to', 'sip.cseq', 'sip.from-tag', 'sip.to-tag', 'sip.user-agent',
      'sip.from-user', 'sip.to-user', 'sip.ruri-user', 'sip.retransmission', 'call-id',
    ],
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
        calls: { type: 'boolean', default: false },
        call_updates: { type: 'boolean', default: false },
        call_timeout: { type: 'number', exclusiveMinimum: 0, default: 3600 },
      },
      additionalProperties: false,
    },
  },
  payloadReader: () => new SipPayloadReader(),
  init(ctx) {
    return new SipParser(ctx.config, ctx.flows ?? null);
  },
};

export default sip;
