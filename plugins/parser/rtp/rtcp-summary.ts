// The RTCP summary and the direction of an `rtp.stats` record (README.md,
// "RTCP in rtp.stats", "Direction"): read when the report is emitted, from
// the task's media table (src/shm/media.ts, written by the rtcp parser on
// whichever capture process its RTCP landed) and from the side the sip
// parser wrote into the flow registry with each SDP's endpoints.
//
//   "direction": "caller_to_callee" | "callee_to_caller" | null,
//   "rtcp": {"receiver": B | null, "sender": B | null}
//   B = {"ssrc":N,"at":S,"fraction_lost":N,"cumulative_lost":N,"jitter":N,"jitter_ms":X,"rtt_ms":X|null}
//
// receiver: the last report block on this stream's SSRC (ssrc: the
// reporter): how its receiver saw it. sender: the last report block the
// stream's own SSRC sent (ssrc: the source it reports on): how this
// stream's sender sees the other direction. jitter_ms at the stream's
// clock rate.

import type { DecodedPacket } from '../../../src/decode/packet.js';
import { writeVarint } from '../../../src/pipeline/codec-protobuf.js';
import { emptyBlock, type MediaTable, type RtcpBlock } from '../../../src/shm/media.js';
import type { FlowRegistry } from '../../../src/shm/registry.js';
import { ReportKind, ROW, type RtpStreamTable } from './stats.js';
import { Literal, writeLiteral, writeUint } from '../../../src/util/bytes.js';

export const DIRECTION_NONE = 0;
export const CALLER_TO_CALLEE = 1;
export const CALLEE_TO_CALLER = 2;
export const DIRECTION_NAMES = [null, 'caller_to_callee', 'callee_to_caller'] as const;

/** The registry label the sip parser writes with each endpoint: whose SDP announced it. */
export const SIDE_LABEL = 'side';
const SIDE = [115, 105, 100, 101]; // "side"
const CALLER = [99, 97, 108, 108, 101, 114]; // "caller"
const CALLEE = [99, 97, 108, 108, 101, 101]; // "callee"

/** The side ("caller" 1, "callee" 2, else 0) slot's context names. */
function sideOf(f: FlowRegistry, slot: number): number {
  const u8 = f.u8;
  const lo = f.labelsOffset(slot);
  const le = lo + f.labelsLength(slot);
  for (let p = lo; p < le; ) {
    const kl = u8[p];
    const vo = p + 2 + kl;
    const vl = u8[p + 1 + kl];
    if (kl === 4 && eq(u8, p + 1, SIDE) && vl === 6) return eq(u8, vo, CALLER) ? 1 : eq(u8, vo, CALLEE) ? 2 : 0;
    p = vo + vl;
  }
  return 0;
}

function eq(u8: Uint8Array, o: number, k: number[]): boolean {
  for (let i = 0; i < k.length; i++) if (u8[o + i] !== k[i]) return false;
  return true;
}

/**
 * A stream's direction from the packet that started it: towards an
 * endpoint the callee's SDP announced (or from one the caller's did) is
 * caller to callee. Once per stream (two registry lookups).
 */
export function streamDirection(f: FlowRegistry | null, p: DecodedPacket): number {
  if (f === null || (p.ipVersion !== 4 && p.ipVersion !== 6)) return DIRECTION_NONE;
  const v4 = p.ipVersion === 4;
  const d = v4 ? f.lookupEndpoint4(p.dst4, p.dport) : f.lookupEndpoint6(p.addrBuf, p.dstOff, p.dport);
  if (d >= 0) {
    const s = sideOf(f, d);
    if (s !== 0) return s === 2 ? CALLER_TO_CALLEE : CALLEE_TO_CALLER;
  }
  const s0 = v4 ? f.lookupEndpoint4(p.src4, p.sport) : f.lookupEndpoint6(p.addrBuf, p.srcOff, p.sport);
  if (s0 >= 0) {
    const s = sideOf(f, s0);
    if (s !== 0) return s === 1 ? CALLER_TO_CALLEE : CALLEE_TO_CALLER;
  }
  return DIRECTION_NONE;
}

/** One report's RTCP summary, read from the media table. */
export class RtcpSummary {
  readonly receiver: RtcpBlock = emptyBlock();
  readonly sender: RtcpBlock = emptyBlock();
  /** Bit 1: receiver read; bit 2: sender read. */
  has = 0;
  /** The stream's clock rate, for jitter_ms. */
  rate = 0;

  /** Reads SSRC ssrc's blocks of the call whose call-id hashes to h (callHash; else those of no call: RTCP nobody signalled). */
  load(table: MediaTable | null, ssrc: number, h: number, rate: number): this {
    this.rate = rate;
    this.has = 0;
    if (table === null) return this;
    this.has = table.read(ssrc, h, this.receiver, this.sender);
    if (this.has === 0 && h !== 0) this.has = table.read(ssrc, 0, this.receiver, this.sender);
    return this;
  }

  jitterMs(b: RtcpBlock): number {
    return this.rate > 0 ? Math.round((b.jitter / this.rate) * 1e6) / 1e3 : 0;
  }

  /** As in the JSON record. */
  json(): { receiver: BlockJson | null; sender: BlockJson | null } {
    return { receiver: (this.has & 1) !== 0 ? this.blockJson(this.receiver) : null, sender: (this.has & 2) !== 0 ? this.blockJson(this.sender) : null };
  }

  private blockJson(b: RtcpBlock): BlockJson {
    return {
      ssrc: b.ssrc,
      at: Math.round(b.at * 1e6) / 1e6,
      fraction_lost: b.fractionLost,
      cumulative_lost: b.cumulativeLost,
      jitter: b.jitter,
      jitter_ms: this.jitterMs(b),
      rtt_ms: b.roundTrip >= 0 ? Math.round(b.roundTrip * 1e6) / 1e3 : null,
    };
  }

  /** Writes `,"direction":…,"rtcp":{…}` (JSON.stringify's numbers, so it reads back as json() says). */
  writeJson(buf: Uint8Array, off: number, direction: number): number {
    off = writeLiteral(buf, off, J_DIRECTION[direction] ?? J_DIRECTION[0]);
    off = writeLiteral(buf, off, J_RECEIVER);
    off = (this.has & 1) !== 0 ? this.writeBlock(buf, off, this.receiver) : writeLiteral(buf, off, J_NULL);
    off = writeLiteral(buf, off, J_SENDER);
    off = (this.has & 2) !== 0 ? this.writeBlock(buf, off, this.sender) : writeLiteral(buf, off, J_NULL);
    buf[off++] = 125; // }
    return off;
  }

  private writeBlock(buf: Uint8Array, off: number, b: RtcpBlock): number {
    // Once per report: the numbers go through JSON's own formatting.
    const j = this.blockJson(b);
    off = writeLiteral(buf, off, J_SSRC);
    off = writeUint(buf, off, j.ssrc);
    off = writeAscii(buf, off, `,"at":${j.at},"fraction_lost":${j.fraction_lost},"cumulative_lost":${j.cumulative_lost},"jitter":${j.jitter},"jitter_ms":${j.jitter_ms},"rtt_ms":${j.rtt_ms}}`);
    return off;
  }

  /** otus.rtp.v1.RtcpSummary (rtp.proto) into w: field 1 receiver, 2 sender (RtcpBlock). */
  encode(w: { buf: Uint8Array; n: number }, scratch: Uint8Array): void {
    for (let side = 1; side <= 2; side++) {
      if ((this.has & side) === 0) continue;
      const b = side === 1 ? this.receiver : this.sender;
      const j = this.blockJson(b);
      let n = 0;
      scratch[n++] = 0x08;
      n = writeVarint(scratch, n, j.ssrc);
      n = writeDouble(scratch, n, 2, j.at);
      scratch[n++] = 0x18;
      n = writeVarint(scratch, n, j.fraction_lost);
      scratch[n++] = 0x20;
      n = writeVarint(scratch, n, j.cumulative_lost >= 0 ? 2 * j.cumulative_lost : -2 * j.cumulative_lost - 1);
      scratch[n++] = 0x28;
      n = writeVarint(scratch, n, j.jitter);
      n = writeDouble(scratch, n, 6, j.jitter_ms);
      if (j.rtt_ms !== null) n = writeDouble(scratch, n, 7, j.rtt_ms);
      w.buf[w.n++] = (side << 3) | 2;
      w.n = writeVarint(w.buf, w.n, n);
      w.buf.set(scratch.subarray(0, n), w.n);
      w.n += n;
    }
  }
}

export interface BlockJson {
  ssrc: number;
  at: number;
  fraction_lost: number;
  cumulative_lost: number;
  jitter: number;
  jitter_ms: number;
  rtt_ms: number | null;
}

const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function writeDouble(buf: Uint8Array, n: number, field: number, v: number): number {
  buf[n++] = (field << 3) | 1;
  f64[0] = v;
  for (let i = 0; i < 8; i++) buf[n + i] = f64b[LE ? i : 7 - i];
  return n + 8;
}

function writeAscii(buf: Uint8Array, off: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[off++] = s.charCodeAt(i);
  return off;
}

const J_DIRECTION = DIRECTION_NAMES.map((d) => new Literal(d === null ? ',"direction":null' : `,"direction":"${d}"`));
const J_RECEIVER = new Literal(',"rtcp":{"receiver":');
const J_SENDER = new Literal(',"sender":');
const J_NULL = new Literal('null');
const J_SSRC = new Literal('{"ssrc":');

/**
 * Streams whose call ended (BYE, CANCEL, final error: the sip parser marks
 * the call in the media table, on whichever process read it) end once
 * its bye_grace has passed in capture time, with their final report
 * (`end`), instead of `idle` seconds after their last packet. A scan of
 * the table's streams once per second of capture time (the latest frame this
 * capture process saw: Parser.tick at each ring block's end; in replay,
 * which has no blocks, its latest RTP packet), from Parser.drain.
 */
export class CallEnds {
  private lastScan = -Infinity;
  /** Streams ended by their call's end. */
  ended = 0;

  constructor(
    private readonly media: MediaTable,
    private readonly flows: FlowRegistry | null,
  ) {}

  /** Ends the streams whose call ended by capture time `clock` (s: the latest frame, any protocol). */
  scan(t: RtpStreamTable, clock: number): void {
    if (Math.abs(clock - this.lastScan) < 1) return;
    this.lastScan = clock;
    // A BYE captured before now may be on its way on another capture process: let it land.
    const f = this.flows;
    if (f !== null && f.catchesUp) f.catchUp(Math.floor(clock), Math.floor((clock % 1) * 1e9), 0);
    const H = t.callHash;
    // Backwards: end() moves the last live row into the place it frees, one already visited.
    for (let i = t.liveCount - 1; i >= 0; i--) {
      const r = t.live[i];
      if (H[r] === 0 || !this.media.callEnded(H[r], clock)) continue;
      if ((t.qLen + 1) * ROW > t.qRows.length) {
        this.lastScan = -Infinity; // the queue is full: the rest once it is emitted
        return;
      }
      t.end(r, ReportKind.End);
      this.ended++;
    }
  }
}
