// Call records (docs/records.md, "sip.call"): with `calls` on, each call
// (an initial INVITE's Call-ID) is followed from its INVITE to its end, and
// one `sip.call` record is emitted when it ends: BYE (ended by the side that
// sent it), the final error response to the INVITE (after a CANCEL, ended by
// the caller, else by the callee), no message for `call_timeout` seconds of
// capture time (timeout), or forgotten by a full table (evicted). With
// `call_updates`, also one at each state change (calling, ringing, answered).
//
// State lives in the call table the media correlation uses (calls.ts: keyed
// by the Call-ID's bytes, at most 100 000 calls, ordered by last activity
// when calls are recorded, so a full table forgets the quietest call and a
// timeout sweep stops at the first live one). Forked dialogs of one INVITE
// share the Call-ID and so one record. The fields a record prints are kept
// as strings, made once per call (the INVITE, SDP bodies, INFO digits): the
// per-message work on a known call is its Call-ID's hash, a table probe and
// a few number compares.

import type { DecodedPacket } from '../../../src/decode/packet.js';
import { writeVarint } from '../../../src/pipeline/codec-protobuf.js';
import { labelKeyId } from '../../../src/pipeline/label-keys.js';
import type { Payload } from '../../../src/pipeline/record.js';
import type { RecordEmitter } from '../../../src/plugin/types.js';
import type { CallMedia, CallTable } from './calls.js';
import { ADDR_FOUND, addrAndTag, H_CALL_ID, H_CONTENT_TYPE, H_CSEQ, H_FROM, H_TO, HOST_FOUND, type SipMessage, TAG_FOUND, USER_FOUND, uriParts } from './message.js';
import { parseSdp, sdpOfBody } from './sdp.js';

/** Media descriptions and DTMF digits kept per call (more are counted, not kept). */
const MAX_MEDIA = 8;
const MAX_DTMF = 64;

export interface CallsConfig {
  /** Also a record at each state change. */
  readonly updates: boolean;
  /** A call with no message for this long (capture time) ends as a timeout. */
  readonly timeoutMs: number;
}

export interface CallMediaInfo {
  side: 'caller' | 'callee';
  type: string;
  address: string;
  port: number;
  codecs: string[];
}

export interface DtmfDigit {
  digit: string;
  sec: number;
  nsec: number;
  /** -1: not given. */
  durationMs: number;
}

/** One call's record state; reused with its table entry. */
export class CallState {
  callId = '';
  state: 'calling' | 'ringing' | 'answered' | 'ended' = 'calling';
  fromUser = '';
  fromDomain = '';
  toUser = '';
  toDomain = '';
  ruriUser = '';
  /** The caller's From tag (bytes), to tell who sent a later request. */
  callerTag = new Uint8Array(64);
  callerTagLen = 0;
  inviteCseq = -1;
  tsDigits = 6;
  /** Times as capture seconds and nanoseconds; sec -1: not yet. */
  startSec = 0;
  startNsec = 0;
  /** First response other than 100 (post-dial delay, RFC 6076's session request delay). */
  firstSec = -1;
  firstNsec = 0;
  ringSec = -1;
  ringNsec = 0;
  answerSec = -1;
  answerNsec = 0;
  endSec = -1;
  endNsec = 0;
  lastSec = 0;
  lastNsec = 0;
  finalStatus = 0;
  finalReason = '';
  cancelled = false;
  /** A 401 or 407 to the INVITE: the caller may send it again with credentials (a new CSeq, still the same call). */
  challenge = 0;
  endedBy = '';
  endMethod = '';
  messages = 0;
  retransmissions = 0;
  reinvites = 0;
  callerMedia: CallMediaInfo[] = [];
  calleeMedia: CallMediaInfo[] = [];
  dtmf: DtmfDigit[] = [];
  /** The INVITE's flow: the record's envelope. */
  ipVersion = 0;
  readonly src = new Uint8Array(16);
  readonly dst = new Uint8Array(16);
  sport = -1;
  dport = -1;
  proto = -1;

  reset(): void {
    this.state = 'calling';
    this.fromUser = this.fromDomain = this.toUser = this.toDomain = this.ruriUser = '';
    this.callerTagLen = 0;
    this.inviteCseq = -1;
    this.firstSec = this.ringSec = this.answerSec = this.endSec = -1;
    this.finalStatus = 0;
    this.finalReason = '';
    this.cancelled = false;
    this.challenge = 0;
    this.endedBy = this.endMethod = '';
    this.messages = this.retransmissions = this.reinvites = 0;
    this.callerMedia = [];
    this.calleeMedia = [];
    this.dtmf = [];
  }

  /** The negotiated codec: the answer's first, else the offer's. */
  codec(): string {
    const m = this.calleeMedia.find((x) => x.type === 'audio') ?? this.calleeMedia[0] ?? this.callerMedia.find((x) => x.type === 'audio') ?? this.callerMedia[0];
    return m?.codecs[0] ?? '';
  }
}

const K_CALL_ID = labelKeyId('call-id');
const K_FROM_USER = labelKeyId('sip.from-user');
const K_TO_USER = labelKeyId('sip.to-user');
const K_RURI_USER = labelKeyId('sip.ruri-user');

export class CallStats {
  /** Calls opened (initial INVITEs), records emitted, calls that timed out or were evicted. */
  opened = 0;
  records = 0;
  timeouts = 0;
  evicted = 0;
  /** DTMF digits and media descriptions beyond what a call keeps. */
  dropped = 0;
}

export class Dialogs {
  readonly stats = new CallStats();
  emitter: RecordEmitter | null = null;
  private readonly payload = new CallPayload();
  private readonly tmp = new Int32Array(4);
  private lastSweepMs = -Infinity;

  constructor(
    private readonly table: CallTable,
    private readonly cfg: CallsConfig,
  ) {
    table.onEvict = (c) => {
      if (c.call === null) return;
      this.stats.evicted++;
      this.finish(c.call, 'evicted', '', c.call.lastSec, c.call.lastNsec, c.call.lastSec, c.call.lastNsec);
    };
  }

  /**
   * One parsed message at capture time (sec, nsec) on packet p, `retrans`
   * when it is a retransmission (counted, otherwise ignored). Emits the
   * records it completes (before the message's own record is filled).
   */
  message(m: SipMessage, p: DecodedPacket, sec: number, nsec: number, tsDigits: number, retrans: boolean): void {
    const nowMs = sec * 1000 + nsec / 1e6;
    if (nowMs - this.lastSweepMs >= 1000 || nowMs < this.lastSweepMs) this.sweep(sec, nsec);
    const ci = m.header(H_CALL_ID);
    if (ci < 0) return;
    const b = m.buf;
    let e = this.find(m, ci);
    if (e === null || e.call === null) {
      // Only an initial INVITE (no To tag) opens a call.
      if (!m.isRequest || retrans || !isMethod(m, INVITE) || this.toTag(m) > 0) {
        if (e !== null) this.touch(e, nowMs);
        return;
      }
      e ??= this.add(m, ci);
      e.call ??= new CallState();
      this.open(e.call, m, p, ci, sec, nsec, tsDigits);
      this.touch(e, nowMs);
      if (this.cfg.updates) this.emit(e.call, sec, nsec);
      return;
    }
    const c = e.call;
    this.touch(e, nowMs);
    c.messages++;
    c.lastSec = sec;
    c.lastNsec = nsec;
    if (retrans) {
      c.retransmissions++;
      return;
    }
    const cseq = cseqNumber(m);
    const invite = m.cseqMethodLen === 6 && isAt(b, m.cseqMethodOff, INVITE);
    const fromCaller = this.fromCaller(m, c);
    if (m.isRequest) {
      if (isMethod(m, INVITE)) {
        if (cseq !== c.inviteCseq) {
          // Sent again after a 401/407 (no To tag, not answered): the same call's INVITE, not a re-INVITE.
          if (c.answerSec < 0 && c.finalStatus === 0 && this.toTag(m) === 0) {
            c.inviteCseq = cseq;
            c.challenge = 0;
          } else c.reinvites++;
        }
      } else if (isMethod(m, BYE)) {
        if (c.state !== 'ended') {
          this.finish(c, fromCaller ? 'caller' : 'callee', 'BYE', sec, nsec, sec, nsec);
          this.table.remove(e);
          return;
        }
      } else if (isMethod(m, CANCEL)) {
        if (c.state !== 'ended' && !c.cancelled) {
          c.cancelled = true;
          c.endSec = sec;
          c.endNsec = nsec;
          c.endMethod = 'CANCEL';
        }
      } else if (isMethod(m, INFO)) this.dtmf(m, c, sec, nsec);
    } else if (invite && cseq === c.inviteCseq && c.finalStatus === 0) {
      const st = m.status;
      // Post-dial delay: to the first response other than 100 (a 401/407 challenge is not one: the call has not gone out yet).
      if (st !== 100 && st !== 401 && st !== 407 && c.firstSec < 0) {
        c.firstSec = sec;
        c.firstNsec = nsec;
      }
      if ((st === 180 || st === 183) && c.ringSec < 0) {
        c.ringSec = sec;
        c.ringNsec = nsec;
        if (c.state === 'calling') {
          c.state = 'ringing';
          if (this.cfg.updates) this.emit(c, sec, nsec);
        }
      } else if (st >= 200) {
        if ((st === 401 || st === 407) && !c.cancelled) {
          c.challenge = st;
          c.finalReason = m.reasonLen > 0 ? latin1(b, m.reasonOff, m.reasonLen) : '';
          return;
        }
        c.finalStatus = st;
        c.finalReason = m.reasonLen > 0 ? latin1(b, m.reasonOff, m.reasonLen) : '';
        if (st < 300) {
          c.answerSec = sec;
          c.answerNsec = nsec;
          c.state = 'answered';
          this.media(m, c, fromCaller);
          if (this.cfg.updates) this.emit(c, sec, nsec);
          return;
        }
        const es = c.cancelled ? c.endSec : sec;
        const en = c.cancelled ? c.endNsec : nsec;
        this.finish(c, c.cancelled ? 'caller' : 'callee', c.cancelled ? 'CANCEL' : '', es, en, sec, nsec);
        this.table.remove(e);
        return;
      }
    }
    this.media(m, c, fromCaller);
  }

  /** Capture time passes without a SIP message: sweep at most once a second of it. */
  tick(sec: number, nsec: number): void {
    const nowMs = sec * 1000 + nsec / 1e6;
    if (nowMs - this.lastSweepMs >= 1000) this.sweep(sec, nsec);
  }

  /** Calls idle for the timeout (capture time) end as timeouts; their entries go. */
  sweep(sec: number, nsec: number): void {
    const nowMs = sec * 1000 + nsec / 1e6;
    this.lastSweepMs = nowMs;
    const limit = nowMs - this.cfg.timeoutMs;
    for (let e = this.table.oldest(); e !== null && e.lastMs <= limit; e = this.table.oldest()) {
      const c = e.call;
      if (c !== null) {
        this.stats.timeouts++;
        // The record's time is when the call timed out, not when a sweep saw it: the same on any capture process.
        const t = this.cfg.timeoutMs * 1e6 + c.lastNsec;
        const ts = c.lastSec + Math.floor(t / 1e9);
        const tn = Math.round(t % 1e9);
        // A cancelled call whose final response never came ended at its CANCEL, by its caller.
        if (c.cancelled) this.finish(c, 'caller', 'CANCEL', c.endSec, c.endNsec, ts, tn);
        else if (c.challenge !== 0 && c.finalStatus === 0) {
          c.finalStatus = c.challenge; // challenged and never sent again
          this.finish(c, 'callee', '', c.lastSec, c.lastNsec, ts, tn);
        } else this.finish(c, 'timeout', '', c.lastSec, c.lastNsec, ts, tn);
      }
      this.table.remove(e);
    }
  }

  /** End of input: each call still open is emitted as it stands (a cancelled one as ended). */
  flush(): void {
    for (let e = this.table.oldest(); e !== null; e = this.table.oldest()) {
      const c = e.call;
      if (c !== null) {
        if (c.cancelled) this.finish(c, 'caller', 'CANCEL', c.endSec, c.endNsec, c.lastSec, c.lastNsec);
        else this.emit(c, c.lastSec, c.lastNsec);
      }
      this.table.remove(e);
    }
  }

  private touch(e: CallMedia, nowMs: number): void {
    e.lastMs = nowMs;
    this.table.touch(e);
  }

  private find(m: SipMessage, ci: number): CallMedia | null {
    if (m.hFolded[ci] !== 0) {
      const k = Buffer.from(m.valueString(ci));
      return this.table.find(k, 0, k.length);
    }
    return this.table.find(m.buf, m.hValOff[ci], m.hValLen[ci]);
  }

  private add(m: SipMessage, ci: number): CallMedia {
    if (m.hFolded[ci] !== 0) {
      const k = Buffer.from(m.valueString(ci));
      return this.table.getOrAdd(k, 0, k.length);
    }
    return this.table.getOrAdd(m.buf, m.hValOff[ci], m.hValLen[ci]);
  }

  private open(c: CallState, m: SipMessage, p: DecodedPacket, ci: number, sec: number, nsec: number, tsDigits: number): void {
    this.stats.opened++;
    c.reset();
    const b = m.buf;
    const t = this.tmp;
    c.callId = m.valueString(ci);
    c.inviteCseq = cseqNumber(m);
    c.tsDigits = tsDigits;
    c.startSec = c.lastSec = sec;
    c.startNsec = c.lastNsec = nsec;
    c.messages = 1;
    const from = m.header(H_FROM);
    if (from >= 0 && (addrAndTag(b, m.hValOff[from], m.hValLen[from], t) & TAG_FOUND) !== 0) {
      const len = Math.min(t[3], c.callerTag.length);
      for (let i = 0; i < len; i++) c.callerTag[i] = b[t[2] + i];
      c.callerTagLen = len;
    }
    [c.fromUser, c.fromDomain] = this.userHost(m, from);
    [c.toUser, c.toDomain] = this.userHost(m, m.header(H_TO));
    const f = uriParts(b, m.uriOff, m.uriLen, t);
    c.ruriUser = (f & USER_FOUND) !== 0 ? latin1(b, t[0], t[1]) : '';
    c.ipVersion = p.ipVersion;
    if (p.ipVersion === 4) {
      be32(c.src, p.src4);
      be32(c.dst, p.dst4);
    } else if (p.ipVersion === 6) {
      for (let i = 0; i < 16; i++) {
        c.src[i] = p.addrBuf[p.srcOff + i];
        c.dst[i] = p.addrBuf[p.dstOff + i];
      }
    }
    c.sport = p.sport;
    c.dport = p.dport;
    c.proto = p.proto;
    this.media(m, c, true);
  }

  /** [user, host] of a From/To header's URI ('' when absent). */
  private userHost(m: SipMessage, h: number): [string, string] {
    if (h < 0) return ['', ''];
    const t = this.tmp;
    let b = m.buf;
    let off = m.hValOff[h];
    let len = m.hValLen[h];
    if (m.hFolded[h] !== 0) {
      b = Buffer.from(m.valueString(h));
      off = 0;
      len = b.length;
    }
    if ((addrAndTag(b, off, len, t) & ADDR_FOUND) === 0) return ['', ''];
    const f = uriParts(b, t[0], t[1], t);
    return [(f & USER_FOUND) !== 0 ? latin1(b, t[0], t[1]) : '', (f & HOST_FOUND) !== 0 ? latin1(b, t[2], t[3]) : ''];
  }

  private toTag(m: SipMessage): number {
    const to = m.header(H_TO);
    if (to < 0 || m.hFolded[to] !== 0) return 0;
    return (addrAndTag(m.buf, m.hValOff[to], m.hValLen[to], this.tmp) & TAG_FOUND) !== 0 ? this.tmp[3] : 0;
  }

  /** The message was sent by the caller: a request carrying the caller's From tag, or a response to the callee's request. */
  private fromCaller(m: SipMessage, c: CallState): boolean {
    const from = m.header(H_FROM);
    let same = false;
    if (from >= 0 && (addrAndTag(m.buf, m.hValOff[from], m.hValLen[from], this.tmp) & TAG_FOUND) !== 0 && this.tmp[3] === c.callerTagLen) {
      same = true;
      for (let i = 0; i < c.callerTagLen; i++) {
        if (m.buf[this.tmp[2] + i] !== c.callerTag[i]) {
          same = false;
          break;
        }
      }
    }
    return m.isRequest === same;
  }

  /** An SDP body: the sender's side's media (a later offer or answer replaces the side's earlier one; hold keeps it). */
  private media(m: SipMessage, c: CallState, fromCaller: boolean): void {
    if (m.bodyLen === 0) return;
    const cti = m.header(H_CONTENT_TYPE);
    if (cti < 0) return;
    const ct = m.valueString(cti).toLowerCase();
    let sdp: string | null;
    if (ct.startsWith('application/sdp')) sdp = m.bodyString();
    else if (ct.startsWith('multipart/')) sdp = sdpOfBody(m.valueString(cti), m.bodyString());
    else return;
    if (sdp === null) return;
    const list: CallMediaInfo[] = [];
    for (const d of parseSdp(sdp)) {
      if (list.length >= MAX_MEDIA) {
        this.stats.dropped++;
        break;
      }
      // parseSdp lists each port of a `/count` range: one description is enough here.
      if (list.some((x) => x.type === d.media && x.address === d.address)) continue;
      const codecs: string[] = [];
      const parts = d.ptmap.split(' ');
      for (let i = 0; i < parts.length; i++) {
        if (/^\d+$/.test(parts[i])) {
          const name = i + 1 < parts.length && !/^\d+$/.test(parts[i + 1]) ? parts[i + 1] : parts[i];
          codecs.push(name);
        }
      }
      list.push({ side: fromCaller ? 'caller' : 'callee', type: d.media, address: d.address, port: d.port, codecs });
    }
    if (list.length === 0) return;
    if (fromCaller) c.callerMedia = list;
    else c.calleeMedia = list;
  }

  /** SIP INFO digits (application/dtmf-relay: `Signal=` and `Duration=` lines; application/dtmf: the digit). */
  private dtmf(m: SipMessage, c: CallState, sec: number, nsec: number): void {
    const cti = m.header(H_CONTENT_TYPE);
    if (cti < 0 || m.bodyLen === 0) return;
    const ct = m.valueString(cti).trim().toLowerCase();
    const body = m.bodyString();
    let digit = '';
    let duration = -1;
    if (ct.startsWith('application/dtmf-relay')) {
      for (const line of body.split(/\r?\n/)) {
        const kv = /^\s*([A-Za-z]+)\s*=\s*(\S+)\s*$/.exec(line);
        if (kv === null) continue;
        const k = kv[1].toLowerCase();
        if (k === 'signal') digit = dtmfDigit(kv[2]);
        else if (k === 'duration' && /^\d+$/.test(kv[2])) duration = Number(kv[2]);
      }
    } else if (ct.startsWith('application/dtmf')) digit = dtmfDigit(body.trim());
    if (digit === '') return;
    if (c.dtmf.length >= MAX_DTMF) {
      this.stats.dropped++;
      return;
    }
    c.dtmf.push({ digit, sec, nsec, durationMs: duration });
  }

  /** The call ended (by `who`, with `method`) at (es, en); its record at (sec, nsec). */
  private finish(c: CallState, who: string, method: string, es: number, en: number, sec: number, nsec: number): void {
    c.state = 'ended';
    c.endedBy = who;
    c.endMethod = method;
    c.endSec = es;
    c.endNsec = en;
    this.emit(c, sec, nsec);
  }

  private emit(c: CallState, sec: number, nsec: number): void {
    const em = this.emitter;
    if (em === null) return;
    const out = em.record;
    out.reset();
    out.hasTs = true;
    out.tsSec = sec;
    out.tsNsec = nsec;
    out.tsDigits = c.tsDigits;
    out.protocol = 'sip.call';
    out.ipVersion = c.ipVersion;
    for (let i = 0; i < 16; i++) {
      out.src[i] = c.src[i];
      out.dst[i] = c.dst[i];
    }
    out.sport = c.sport;
    out.dport = c.dport;
    out.proto = c.proto;
    const L = out.labels;
    L.setId(K_CALL_ID, c.callId);
    if (c.fromUser !== '') L.setId(K_FROM_USER, c.fromUser);
    if (c.toUser !== '') L.setId(K_TO_USER, c.toUser);
    if (c.ruriUser !== '') L.setId(K_RURI_USER, c.ruriUser);
    this.payload.set(c);
    out.payload = this.payload;
    this.stats.records++;
    em.emit();
  }
}

const INVITE = [73, 78, 86, 73, 84, 69];
const BYE = [66, 89, 69];
const CANCEL = [67, 65, 78, 67, 69, 76];
const INFO = [73, 78, 70, 79];

function isAt(b: Uint8Array, o: number, w: number[]): boolean {
  for (let i = 0; i < w.length; i++) if (b[o + i] !== w[i]) return false;
  return true;
}

function isMethod(m: SipMessage, w: number[]): boolean {
  return m.isRequest && m.methodLen === w.length && isAt(m.buf, m.methodOff, w);
}

/** The CSeq number, -1 without one. */
function cseqNumber(m: SipMessage): number {
  const i = m.header(H_CSEQ);
  if (i < 0) return -1;
  const b = m.buf;
  let o = m.hValOff[i];
  const end = o + m.hValLen[i];
  while (o < end && (b[o] === 32 || b[o] === 9)) o++;
  let n = 0;
  let digits = 0;
  for (; o < end && b[o] >= 48 && b[o] <= 57 && digits < 10; o++, digits++) n = n * 10 + b[o] - 48;
  return digits > 0 ? n : -1;
}

function latin1(b: Uint8Array, off: number, len: number): string {
  return Buffer.from(b.buffer, b.byteOffset + off, len).toString('latin1');
}

function be32(a: Uint8Array, v: number): void {
  a[0] = v >>> 24;
  a[1] = (v >>> 16) & 255;
  a[2] = (v >>> 8) & 255;
  a[3] = v & 255;
}

/** A DTMF signal as a digit: 0-9 * # A-D, or the RFC 4733 event codes 10-15 for * # A-D. */
function dtmfDigit(s: string): string {
  if (/^[0-9*#A-Da-d]$/.test(s)) return s.toUpperCase();
  const n = /^1[0-5]$/.test(s) ? Number(s) : -1;
  return n >= 10 ? '*#ABCD'[n - 10] : '';
}

/** ms between two capture times. */
function msBetween(s1: number, n1: number, s2: number, n2: number): number {
  return (s2 - s1) * 1000 + (n2 - n1) / 1e6;
}

function iso(sec: number, nsec: number, digits: number): string {
  const d = new Date(sec * 1000).toISOString().slice(0, 19);
  const frac = String(nsec).padStart(9, '0').slice(0, digits);
  return `${d}.${frac}Z`;
}

/** The sip.call payload, written once per record: JSON text and protobuf bytes (otus.sip.v1.SipCall, sip.proto). */
export class CallPayload implements Payload {
  readonly type = 'sip.call';
  private c: CallState | null = null;
  private json: Buffer | null = null;
  private bin: Uint8Array | null = null;

  set(c: CallState): void {
    this.c = c;
    this.json = null;
    this.bin = null;
  }

  /** The payload as the JSON form prints it (a plain object, keys in order). */
  object(): Record<string, unknown> {
    const c = this.c!;
    const d = c.tsDigits;
    const t = (s: number, n: number): string | null => (s < 0 ? null : iso(s, n, d));
    const answered = c.answerSec >= 0;
    return {
      call_id: c.callId,
      state: c.state,
      from_user: c.fromUser || null,
      from_domain: c.fromDomain || null,
      to_user: c.toUser || null,
      to_domain: c.toDomain || null,
      ruri_user: c.ruriUser || null,
      start: t(c.startSec, c.startNsec),
      ringing: t(c.ringSec, c.ringNsec),
      answer: t(c.answerSec, c.answerNsec),
      end: c.state === 'ended' ? t(c.endSec, c.endNsec) : null,
      post_dial_delay_ms: c.firstSec >= 0 ? msBetween(c.startSec, c.startNsec, c.firstSec, c.firstNsec) : null,
      setup_time_ms: answered ? msBetween(c.startSec, c.startNsec, c.answerSec, c.answerNsec) : null,
      duration_ms: answered && c.state === 'ended' ? msBetween(c.answerSec, c.answerNsec, c.endSec, c.endNsec) : null,
      final_status: c.finalStatus || null,
      final_reason: c.finalStatus ? c.finalReason : null,
      ended_by: c.state === 'ended' ? c.endedBy : null,
      end_method: c.endMethod || null,
      messages: c.messages,
      retransmissions: c.retransmissions,
      reinvites: c.reinvites,
      codec: c.codec() || null,
      media: [...c.callerMedia, ...c.calleeMedia].map((m) => ({ side: m.side, type: m.type, address: m.address, port: m.port, codecs: m.codecs })),
      dtmf: c.dtmf.map((x) => ({ digit: x.digit, ts: iso(x.sec, x.nsec, d), duration_ms: x.durationMs >= 0 ? x.durationMs : null })),
    };
  }

  writeJson(buf: Uint8Array, off: number, end: number): number {
    this.json ??= Buffer.from(JSON.stringify(this.object()));
    if (end - off < this.json.length) return -1;
    buf.set(this.json, off);
    return off + this.json.length;
  }

  binarySize(): number {
    this.bin ??= this.encode();
    return this.bin.length;
  }

  writeBinary(buf: Uint8Array, off: number, end: number): number {
    const b = (this.bin ??= this.encode());
    if (end - off < b.length) return -1;
    buf.set(b, off);
    return off + b.length;
  }

  private encode(): Uint8Array {
    const c = this.c!;
    const w = new ProtoWriter();
    const o = this.object();
    w.str(1, c.callId);
    w.str(2, c.state);
    w.str(3, c.fromUser);
    w.str(4, c.fromDomain);
    w.str(5, c.toUser);
    w.str(6, c.toDomain);
    w.str(7, c.ruriUser);
    w.time(8, c.startSec, c.startNsec);
    w.time(9, c.ringSec, c.ringNsec);
    w.time(10, c.answerSec, c.answerNsec);
    if (c.state === 'ended') w.time(11, c.endSec, c.endNsec);
    w.double(12, o.post_dial_delay_ms as number | null);
    w.double(13, o.setup_time_ms as number | null);
    w.double(14, o.duration_ms as number | null);
    w.uint(15, c.finalStatus);
    if (c.finalStatus) w.str(16, c.finalReason);
    if (c.state === 'ended') w.str(17, c.endedBy);
    w.str(18, c.endMethod);
    w.uint(19, c.messages);
    w.uint(20, c.retransmissions);
    w.uint(21, c.reinvites);
    w.str(22, c.codec());
    for (const m of [...c.callerMedia, ...c.calleeMedia]) {
      const s = new ProtoWriter();
      s.str(1, m.side);
      s.str(2, m.type);
      s.str(3, m.address);
      s.uint(4, m.port);
      for (const k of m.codecs) s.str(5, k, true);
      w.message(23, s);
    }
    for (const x of c.dtmf) {
      const s = new ProtoWriter();
      s.str(1, x.digit);
      s.time(2, x.sec, x.nsec);
      if (x.durationMs >= 0) s.uint(3, x.durationMs, true);
      w.message(24, s);
    }
    return Uint8Array.from(w.bytes);
  }
}

/** A protobuf message built field by field (once per call record: plain arrays are fine). Proto3: zero values are left out. */
class ProtoWriter {
  readonly bytes: number[] = [];

  private varint(v: number): void {
    const tmp = new Uint8Array(10);
    const n = writeVarint(tmp, 0, v);
    for (let i = 0; i < n; i++) this.bytes.push(tmp[i]);
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** `always`: written even when empty or zero (repeated and optional fields). */
  str(field: number, s: string, always = false): void {
    if (s === '' && !always) return;
    const b = Buffer.from(s, 'utf8');
    this.tag(field, 2);
    this.varint(b.length);
    for (const x of b) this.bytes.push(x);
  }

  uint(field: number, v: number, always = false): void {
    if (v === 0 && !always) return;
    this.tag(field, 0);
    this.varint(v);
  }

  /** An optional double: absent when null. */
  double(field: number, v: number | null): void {
    if (v === null) return;
    this.tag(field, 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    for (const x of b) this.bytes.push(x);
  }

  /** An otus.sip.v1.Time (sec, nsec); absent when sec < 0. */
  time(field: number, sec: number, nsec: number): void {
    if (sec < 0) return;
    const s = new ProtoWriter();
    s.uint(1, sec);
    s.uint(2, nsec);
    this.message(field, s);
  }

  message(field: number, m: ProtoWriter): void {
    this.tag(field, 2);
    this.varint(m.bytes.length);
    for (const x of m.bytes) this.bytes.push(x);
  }
}

