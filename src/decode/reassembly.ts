// IPv4 and IPv6 fragment reassembly (docs/architecture.md, "The path of one packet"), always on: a
// SIP INVITE with SDP often exceeds the MTU, and without the SDP no RTP can be
// correlated. Datagrams are keyed by (version, src, dst, protocol, id).
//
// Policy on overlap follows Linux (since 4.19, for IPv4 too) and RFC 5722 for
// IPv6: an exact duplicate fragment is ignored, any other overlap drops the
// whole datagram, and its fragments still to come are dropped too until the
// datagram would have timed out (RFC 5722 §4: "including those not yet
// received"). Memory is bounded by datagram count, bytes held and
// fragments per datagram; the oldest datagram is evicted first. This runs only
// for fragments (<0.1% of traffic), so it may allocate: one copy per fragment.

import { DecodeError } from './errors.js';

/** Largest reassembled IP datagram (header + payload). */
export const MAX_DATAGRAM = 65535;

export const enum FragResult {
  Held = -1,
  Complete = -2,
  // otherwise a DecodeError
}

interface Piece {
  start: number;
  end: number;
  bytes: Uint8Array;
}

class Datagram {
  pieces: Piece[] = [];
  /** Payload length, known once the last fragment arrived; -1 before. */
  total = -1;
  /** Unique payload bytes received. */
  have = 0;
  held = 0;
  /** Discarded for overlap: later fragments are dropped, not reassembled. */
  dead = false;
  constructor(readonly key: string, readonly firstMs: number) {}
}

export interface ReassemblyLimits {
  timeoutMs: number;
  maxDatagrams: number;
  maxMemoryBytes: number;
  maxFragments: number;
}

export class ReassemblyStats {
  fragments = 0;
  completed = 0;
  duplicates = 0;
  overlaps = 0;
  /** Fragments dropped because their datagram was discarded for overlap. */
  discarded = 0;
  timeouts = 0;
  evicted = 0;
  tooLarge = 0;
  invalid = 0;
  /** Bytes held in fragments now. */
  memoryBytes = 0;
  /** Datagrams under reassembly now. */
  pending = 0;
}

// Nested reassembly (a fragmented datagram inside a reassembled tunnel) needs
// one output buffer per level.
const LEVELS = 3;

export class Reassembler {
  readonly stats = new ReassemblyStats();
  private readonly table = new Map<string, Datagram>();
  private readonly out: Uint8Array[] = [];
  private readonly outViews: DataView[] = [];
  /** Set by add() on Complete: the payload is out[level][0, outLen). */
  outBuf: Uint8Array;
  outView: DataView;
  outLen = 0;

  constructor(private readonly limits: ReassemblyLimits) {
    for (let i = 0; i < LEVELS; i++) {
      const b = new Uint8Array(MAX_DATAGRAM);
      this.out.push(b);
      this.outViews.push(new DataView(b.buffer));
    }
    this.outBuf = this.out[0];
    this.outView = this.outViews[0];
  }

  /**
   * Adds one fragment: payload bytes buf[start, end) at payload offset `offset`.
   * `headerLen` is the IP header length that precedes the payload in the
   * reassembled datagram (for the 65535-byte bound).
   */
  add(
    key: string,
    offset: number,
    buf: Uint8Array,
    start: number,
    end: number,
    last: boolean,
    headerLen: number,
    nowMs: number,
    level: number,
  ): number {
    const st = this.stats;
    st.fragments++;
    this.expire(nowMs);
    const len = end - start;
    if (level >= LEVELS) {
      st.invalid++;
      return DecodeError.FragTooDeep;
    }
    // Every fragment but the last carries a multiple of 8 bytes (RFC 791, RFC 8200).
    if ((!last && (len & 7) !== 0) || (len === 0 && !last)) {
      st.invalid++;
      return DecodeError.FragBadLength;
    }
    let dg = this.table.get(key);
    if (offset + len + headerLen > MAX_DATAGRAM) {
      st.tooLarge++;
      if (dg !== undefined) this.drop(dg);
      return DecodeError.FragTooLarge;
    }
    if (dg === undefined) {
      while (this.table.size >= this.limits.maxDatagrams) this.evictOldest();
      dg = new Datagram(key, nowMs);
      this.table.set(key, dg);
      st.pending = this.table.size;
    }
    if (dg.dead) {
      st.discarded++;
      return DecodeError.FragOverlap;
    }
    const newEnd = offset + len;
    if (last) {
      if ((dg.total >= 0 && dg.total !== newEnd) || this.maxEnd(dg) > newEnd) {
        st.invalid++;
        this.drop(dg);
        return DecodeError.FragInconsistent;
      }
      dg.total = newEnd;
    } else if (dg.total >= 0 && newEnd > dg.total) {
      st.invalid++;
      this.drop(dg);
      return DecodeError.FragInconsistent;
    }
    for (let i = 0; i < dg.pieces.length; i++) {
      const p = dg.pieces[i];
      if (newEnd <= p.start || offset >= p.end) continue;
      if (p.start === offset && p.end === newEnd && sameBytes(p.bytes, buf, start, len)) {
        st.duplicates++;
        return dg.total >= 0 && dg.have === dg.total ? this.complete(dg, level) : FragResult.Held;
      }
      st.overlaps++;
      this.kill(dg);
      return DecodeError.FragOverlap;
    }
    if (dg.pieces.length >= this.limits.maxFragments) {
      st.invalid++;
      this.drop(dg);
      return DecodeError.FragTooMany;
    }
    while (st.memoryBytes + len > this.limits.maxMemoryBytes && this.table.size > 1) {
      if (!this.evictOldestExcept(dg)) break;
    }
    dg.pieces.push({ start: offset, end: newEnd, bytes: buf.slice(start, end) });
    dg.have += len;
    dg.held += len;
    st.memoryBytes += len;
    if (dg.total >= 0 && dg.have === dg.total) return this.complete(dg, level);
    return FragResult.Held;
  }

  /** Drops datagrams whose first fragment is older than the timeout. */
  expire(nowMs: number): void {
    const cutoff = nowMs - this.limits.timeoutMs;
    // Map iteration is insertion order, i.e. by first fragment.
    for (const dg of this.table.values()) {
      if (dg.firstMs > cutoff) break;
      this.stats.timeouts++;
      this.drop(dg);
    }
  }

  private complete(dg: Datagram, level: number): number {
    const out = this.out[level];
    for (const p of dg.pieces) out.set(p.bytes, p.start);
    this.outBuf = out;
    this.outView = this.outViews[level];
    this.outLen = dg.total;
    this.stats.completed++;
    this.drop(dg);
    return FragResult.Complete;
  }

  private maxEnd(dg: Datagram): number {
    let m = 0;
    for (const p of dg.pieces) if (p.end > m) m = p.end;
    return m;
  }

  /** Frees a datagram's fragments but keeps its key until the timeout, to drop the rest. */
  private kill(dg: Datagram): void {
    this.stats.memoryBytes -= dg.held;
    dg.held = 0;
    dg.pieces = [];
    dg.dead = true;
  }

  private drop(dg: Datagram): void {
    this.stats.memoryBytes -= dg.held;
    this.table.delete(dg.key);
    this.stats.pending = this.table.size;
  }

  private evictOldest(): void {
    const first = this.table.values().next();
    if (first.done) return;
    this.stats.evicted++;
    this.drop(first.value);
  }

  private evictOldestExcept(keep: Datagram): boolean {
    for (const dg of this.table.values()) {
      if (dg === keep) continue;
      this.stats.evicted++;
      this.drop(dg);
      return true;
    }
    return false;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array, off: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[i] !== b[off + i]) return false;
  return true;
}
