// Selective TCP stream reassembly (docs/architecture.md, "TCP stream reassembly").
//
// Only TCP segments of connections a parser asked for (by port, see
// Pipeline) come here; everything else never touches this state. Output is
// an ordered byte stream per direction, handed to the consumer (the
// pipeline, which calls the owning parser's handleStream) in chunks; the
// parser frames its own PDUs and says how many bytes it consumed. Bytes it
// did not consume are kept and handed back, in front of the next bytes, so
// a parser never needs its own buffer for a PDU split over segments.
//
// Per direction: the next expected sequence number is the SYN's + 1, or
// (mid-stream join) the first sequence number seen. A segment
// entirely before it is a retransmission; one that starts before it overlaps
// (the delivered bytes win, the rest is used); one that starts after it is
// out of order and kept (copied) until the hole fills. A hole still open
// after gapTimeoutMs (capture time), or when the direction's buffered bytes
// pass maxStreamBytes, is skipped: the next chunk carries `gap`, and bytes
// the parser kept from before the hole are dropped (counted), never joined
// to the bytes after it: the parser resynchronises on what follows.
//
// Time: each segment's capture time travels with its bytes (out-of-order
// copies keep theirs), and a chunk says when its first kept byte and its
// new bytes were captured (TcpChunk.stamp), so a record carries the capture
// time of its message's first byte, not the time the hole was given up on.
//
// Limits: maxStreams connections (the least recently used is evicted),
// maxStreamBytes per direction, maxBytes for the memory of all streams
// together (LRU streams are evicted until under), streamTimeoutMs of
// silence. Memory is counted as allocated: a fixed cost per connection, the
// capacity of each kept-bytes buffer (it grows by doubling), each
// out-of-order copy and the vectors that list them, with their objects'
// overhead (measured, below). Buffers of the usual size (BLOCK) and stream
// objects are reused, not left to the GC: under a flood of connections
// that come and go, garbage the GC collects late would otherwise take the
// process well past the bound. Every one of these events is counted in
// TcpStreamStats. A stream ends on RST, when both FINs have been reached,
// on timeout or eviction; its remaining bytes are flushed first (with `gap`
// when a hole is skipped).
//
// Connections on ports no parser declared can be claimed by a parser's
// probe (StreamParser.probeStream, e.g. sip with `heuristic`): offer()
// decides once per connection, from its first payload, and remembers the
// answer in a direct-mapped table keyed by a symmetric flow hash, so the
// other segments of a connection nobody claimed cost one table read.
//
// Cost: an in-order segment with nothing kept is delivered from the frame's
// own memory; no allocation per segment. Only out-of-order segments and
// bytes a parser kept are copied.

import type { DecodedPacket } from '../decode/packet.js';
import { DecodedPacket as Packet } from '../decode/packet.js';

export interface TcpReassemblyOptions {
  /** Concurrent connections; at the limit the least recently used is evicted. */
  maxStreams: number;
  /** Bytes one direction may hold: kept for its parser; out-of-order copies (their memory) up to twice this. */
  maxStreamBytes: number;
  /** Memory all streams may hold together (default 128 MiB): per-connection cost, kept-buffer capacity, out-of-order copies. */
  maxBytes: number;
  /** A hole older than this (capture time) is skipped. */
  gapTimeoutMs: number;
  /** A connection silent for this long (capture time) is flushed and forgotten. */
  streamTimeoutMs: number;
}

export const DEFAULT_TCP_REASSEMBLY: Readonly<TcpReassemblyOptions> = {
  maxStreams: 65536,
  maxStreamBytes: 1 << 20,
  maxBytes: 128 << 20,
  gapTimeoutMs: 2000,
  streamTimeoutMs: 120_000,
};

export class TcpStreamStats {
  /** Connections opened, and open now. */
  streams = 0;
  active = 0;
  /** Segments seen, and payload bytes handed to parsers. */
  segments = 0;
  bytesDelivered = 0;
  /** Segments wholly before the next expected byte (dropped). */
  retransmissions = 0;
  /** Segments partly before it (the delivered part dropped). */
  overlaps = 0;
  /** Segments stored because a hole came before them. */
  outOfOrder = 0;
  /** Holes skipped (timeout, buffer limit, flush), and the bytes missing in them. */
  gapsSkipped = 0;
  bytesSkipped = 0;
  /** Out-of-order segments dropped: the direction's copies were at their bound (2 × maxStreamBytes of memory). */
  oooDropped = 0;
  /** Bytes a parser kept that passed maxStreamBytes: dropped (the next chunk has `gap`). */
  keepOverflows = 0;
  /** Holes that dropped bytes a parser had kept from before them (an incomplete message), and those bytes. */
  keptDropped = 0;
  keptBytesDropped = 0;
  /** Ends: FIN both ways, RST, timeout, evicted at maxStreams, evicted for memory, flushed by the owner. */
  closedFin = 0;
  closedRst = 0;
  timedOut = 0;
  evictedLru = 0;
  evictedMemory = 0;
  flushed = 0;
  /** Payload bytes held now (out of order + kept) and the most ever held. */
  bytesHeld = 0;
  bytesHeldMax = 0;
  /** Memory held now (what maxBytes bounds: connections, kept-buffer capacity, out-of-order copies) and the most ever held. */
  memoryHeld = 0;
  memoryHeldMax = 0;
  /** Connections on other ports offered to the parsers' probes (at their first payload), and those a parser claimed. */
  probes = 0;
  claimed = 0;
}

/**
 * One chunk of a direction's byte stream, as the consumer gets it: bytes
 * buf[off, off+len), in order. Reused: valid only during the call.
 */
export class TcpChunk {
  /** Unique per connection within this reassembler (this capture process). */
  streamId = 0;
  /** 0: client → server (the SYN's sender; without a SYN, toward the port the parser asked for), 1: the reverse. */
  dir = 0;
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  len = 0;
  /** A DataView indexing the same bytes as buf (parsers scan four bytes at a time with it), or null. */
  view: DataView | null = null;
  /** Bytes are missing before this chunk (hole skipped, parser's kept bytes dropped). Bytes kept from before a hole are never in a chunk with `gap`. */
  gap = false;
  /** The first keptLen bytes (from off) were kept from earlier segments; the first of them was captured at keptSec/keptNsec. */
  keptLen = 0;
  keptSec = 0;
  keptNsec = 0;
  /** Capture time of the segment the rest of the bytes came from (an out-of-order one keeps its own). */
  tsSec = 0;
  tsNsec = 0;
  /** For the record's envelope (fillEnvelope): the segment that made these bytes deliverable, or a packet built from the stream's addresses when flushing. Its direction is `dir`'s. */
  packet: DecodedPacket = new Packet();
  /** At stream end only: the same addresses in the other direction (for a record of direction 1). */
  reverse: DecodedPacket = new Packet();
  hasTs = true;
  tsDigits = 6;

  /**
   * Sets t's capture time to that of the byte at buf[at] (a message that
   * starts there): kept bytes carry the time of the first of them (a parser
   * keeps from a message's start), the others their segment's.
   */
  stamp(t: { tsSec: number; tsNsec: number }, at: number): void {
    if (at < this.off + this.keptLen) {
      t.tsSec = this.keptSec;
      t.tsNsec = this.keptNsec;
    } else {
      t.tsSec = this.tsSec;
      t.tsNsec = this.tsNsec;
    }
  }
}

/** Who receives the bytes: the pipeline (which calls the owning parser). */
export interface TcpStreamConsumer {
  /** In-order bytes of one direction; returns how many were consumed (the rest are handed back next time). */
  streamData(owner: number, c: TcpChunk): number;
  /** The connection is gone (after its last bytes were delivered). */
  streamEnd(owner: number, streamId: number, dir0: TcpChunk): void;
  /** A connection on a port no parser declared, at its first payload: the owner that claims it, or -1 (see offer). */
  probeStream?(p: DecodedPacket): number;
}

/**
 * Memory, as counted against maxBytes (measured on node 20: heap and
 * ArrayBuffer bytes per 100 000 streams after GC, rounded up): one
 * connection (the Stream, its two Directions, its hash-map entry: 1124
 * bytes); the objects of one buffer beside its capacity (a kept-bytes buffer
 * or an out-of-order copy: Uint8Array, ArrayBuffer, DataView, the backing
 * store's header: 262); a direction's out-of-order vectors once it stores a
 * segment (their objects: about 800), then per slot (sequence, length,
 * time, a pointer).
 */
export const STREAM_COST = 1216;
export const BUFFER_COST = 320;
export const VECTORS_COST = 832;
export const SLOT_BYTES = 32;
/** Slots of the table of connections offered to probes (a power of two). */
const VERDICT_SLOTS = 1 << 16;

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

/**
 * A direction's out-of-order segments, sorted by sequence (relative order
 * from `next`): parallel vectors grown by doubling and kept when emptied, so
 * a stream reused from the pool stores again without garbage. A copy of up
 * to BLOCK bytes sits in a pooled block of BLOCK bytes, so `len` says how
 * many of its bytes are the segment's.
 */
class OooList {
  n = 0;
  cap = 0;
  // Shared empty vectors until the first segment: most streams never store one.
  seq = NO_U32;
  len = NO_I32;
  sec = NO_F64;
  nsec = NO_I32;
  data: (Uint8Array | null)[] = NO_DATA;

  /** The memory the vectors take (counted while their stream lives). */
  get bytes(): number {
    return this.cap === 0 ? 0 : VECTORS_COST + this.cap * SLOT_BYTES;
  }

  /** Makes room for one more; returns the memory that added. */
  grow(): number {
    if (this.n < this.cap) return 0;
    const before = this.bytes;
    const cap = this.cap === 0 ? 4 : this.cap * 2;
    const seq = new Uint32Array(cap);
    const len = new Int32Array(cap);
    const sec = new Float64Array(cap);
    const nsec = new Int32Array(cap);
    seq.set(this.seq);
    len.set(this.len);
    sec.set(this.sec);
    nsec.set(this.nsec);
    this.seq = seq;
    this.len = len;
    this.sec = sec;
    this.nsec = nsec;
    if (this.cap === 0) this.data = [];
    for (let k = this.cap; k < cap; k++) this.data.push(null);
    this.cap = cap;
    return this.bytes - before;
  }

  insert(i: number, seq: number, data: Uint8Array, len: number, sec: number, nsec: number): void {
    const n = this.n;
    this.seq.copyWithin(i + 1, i, n);
    this.len.copyWithin(i + 1, i, n);
    this.sec.copyWithin(i + 1, i, n);
    this.nsec.copyWithin(i + 1, i, n);
    for (let k = n; k > i; k--) this.data[k] = this.data[k - 1];
    this.seq[i] = seq;
    this.len[i] = len;
    this.sec[i] = sec;
    this.nsec[i] = nsec;
    this.data[i] = data;
    this.n = n + 1;
  }

  removeFirst(): void {
    const n = this.n - 1;
    this.seq.copyWithin(0, 1, n + 1);
    this.len.copyWithin(0, 1, n + 1);
    this.sec.copyWithin(0, 1, n + 1);
    this.nsec.copyWithin(0, 1, n + 1);
    for (let k = 0; k < n; k++) this.data[k] = this.data[k + 1];
    this.data[n] = null;
    this.n = n;
  }

  /** Gives the vectors up (back to capacity 0). */
  release(): void {
    this.n = 0;
    this.cap = 0;
    this.seq = NO_U32;
    this.len = NO_I32;
    this.sec = NO_F64;
    this.nsec = NO_I32;
    this.data = NO_DATA;
  }
}

const NO_U32 = new Uint32Array(0);
const NO_I32 = new Int32Array(0);
const NO_F64 = new Float64Array(0);
const NO_DATA: (Uint8Array | null)[] = [];

class Direction {
  started = false;
  next = 0;
  finSeq = -1;
  /** Capture time of this direction's FIN (seconds, nanoseconds); finSec -1 before. */
  finSec = -1;
  finNsec = 0;
  done = false;
  /** Out-of-order segments, and their bytes. */
  readonly ooo = new OooList();
  oooBytes = 0;
  /** Memory of the copies (capacity and objects), bounded per direction by 2 × maxStreamBytes. */
  oooMem = 0;
  /** Capture time (ms) the oldest open hole was first seen; -1 none. */
  gapSince = -1;
  keep: Uint8Array = EMPTY;
  /** keep's DataView, made when keep is (null while it is EMPTY). */
  keepView: DataView | null = null;
  keepLen = 0;
  /** Capture time of keep[0]. */
  keepSec = 0;
  keepNsec = 0;
  pendingGap = false;

  reset(): void {
    this.started = false;
    this.next = 0;
    this.finSeq = -1;
    this.finSec = -1;
    this.done = false;
    this.oooBytes = 0;
    this.oooMem = 0;
    this.gapSince = -1;
    this.keepLen = 0;
    this.pendingGap = false;
  }
}

const EMPTY = new Uint8Array(0);

class Stream {
  id = 0;
  hash = 0;
  owner = 0;
  /** Addresses and ports of direction 0 (client → server). */
  ipVersion = 0;
  src4 = 0;
  dst4 = 0;
  readonly src6 = new Uint8Array(16);
  readonly dst6 = new Uint8Array(16);
  sport = 0;
  dport = 0;
  readonly d0 = new Direction();
  readonly d1 = new Direction();
  lastSeen = 0;
  /** Capture time of this stream's own last segment, for records made at its end. */
  lastSec = 0;
  lastNsec = 0;
  /** LRU list (head = most recent) and hash bucket chain. */
  prev: Stream | null = null;
  next: Stream | null = null;
  bucketNext: Stream | null = null;
  live = false;
  /** Its entry in the probe table when a probe claimed it (cleared at its end), else -1. */
  vSlot = -1;
  vTag = 0;
}

function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export class TcpReassembler {
  readonly stats = new TcpStreamStats();
  readonly opts: TcpReassemblyOptions;
  private readonly consumer: TcpStreamConsumer;
  /**
   * Hash buckets (chained through bucketNext), a power of two at least
   * maxStreams, made once: a Map rehashed as connections come and go, and
   * left a table of garbage each time (a flood of short connections grew the
   * heap by ~60 bytes per connection until the next full GC).
   */
  private readonly buckets: (Stream | null)[];
  private readonly mask: number;
  private head: Stream | null = null;
  private tail: Stream | null = null;
  private readonly pool: Stream[] = [];
  private nextId = 1;
  private readonly chunk = new TcpChunk();
  private readonly flushPkt = new Packet();
  private readonly flushPktRev = new Packet();
  private now = 0;
  /** Capture time of the bytes deliver() hands over next. */
  private segSec = 0;
  private segNsec = 0;
  /** The stream the last segment() call went to (null if it opened none). */
  private cur: Stream | null = null;
  /**
   * Blocks of BLOCK bytes given back by ended streams, drained holes and
   * grown buffers, reused for kept bytes and out-of-order copies: a flood of
   * connections that come and go makes no garbage for them (which the GC
   * collects late: RSS beyond the bound). At most BLOCK_POOL_MAX, not
   * counted (a fixed overhead). Their DataViews, where made (else null).
   */
  private readonly blocks: Uint8Array[] = [];
  private readonly blockViews: (DataView | null)[] = [];
  /** The DataView of the block takeBlock() returned last, or null. */
  private takenView: DataView | null = null;
  /** Probe table (made by the first offer): a flow's tag, and its owner or -1 (no parser wanted it). */
  private vTag: Int32Array | null = null;
  private vOwner: Int16Array | null = null;

  constructor(consumer: TcpStreamConsumer, opts: Partial<TcpReassemblyOptions> = {}) {
    this.consumer = consumer;
    this.opts = { ...DEFAULT_TCP_REASSEMBLY, ...opts };
    let n = 1024;
    while (n < this.opts.maxStreams && n < 1 << 22) n *= 2;
    this.buckets = new Array<Stream | null>(n).fill(null);
    this.mask = n - 1;
  }

  /**
   * One TCP segment of a connection owned by consumer index `owner`, which
   * is also told whose port the rule matched: `serverPort` (-1: unknown).
   */
  segment(p: DecodedPacket, owner: number, serverPort: number, hasTs: boolean, tsDigits: number): void {
    const st = this.stats;
    st.segments++;
    const now = p.tsSec * 1000 + p.tsNsec / 1e6;
    if (now > this.now) this.now = now;
    this.expire();
    const flags = p.tcpFlags;
    let s = this.find(p);
    let dir = 0;
    this.cur = null;
    if (s === null) {
      const hasData = p.payloadLen > 0;
      if ((flags & RST) !== 0 || (!hasData && (flags & SYN) === 0)) return; // nothing to follow
      // Client: the SYN's sender; the SYN-ACK's receiver; else whoever talks to the server port.
      let reverse = false;
      if ((flags & SYN) !== 0) reverse = (flags & ACK) !== 0;
      else if (serverPort >= 0) reverse = p.sport === serverPort && p.dport !== serverPort;
      s = this.open(p, owner, reverse);
      if (!s.live) return; // maxBytes below one connection's cost
      dir = reverse ? 1 : 0;
    } else dir = this.dirOf(s, p);
    this.cur = s;
    s.lastSeen = this.now;
    s.lastSec = p.tsSec;
    s.lastNsec = p.tsNsec;
    this.touch(s);
    const d = dir === 0 ? s.d0 : s.d1;
    const seq = p.tcpSeq;
    const c = this.chunk;
    c.hasTs = hasTs;
    c.tsDigits = tsDigits;
    if ((flags & SYN) !== 0) {
      if (!d.started) {
        d.started = true;
        d.next = (seq + 1) >>> 0;
      }
    } else if (!d.started && p.payloadLen > 0) {
      d.started = true; // mid-stream join: the first byte seen is the base
      d.next = seq;
    }
    if (d.started) {
      const syn = (flags & SYN) !== 0 ? 1 : 0;
      const dataSeq = (seq + syn) >>> 0;
      if (p.payloadLen > 0) this.data(s, dir, d, dataSeq, p.payloadBuf, p.payloadOff, p.payloadLen, p);
      if ((flags & FIN) !== 0 && d.finSeq < 0) {
        d.finSeq = (dataSeq + (p.payloadLen > 0 ? p.payloadLen : 0)) >>> 0;
        d.finSec = p.tsSec;
        d.finNsec = p.tsNsec;
      }
      if (d.ooo.n > 0 && s.live && (this.now - d.gapSince > this.opts.gapTimeoutMs || d.oooMem > this.opts.maxStreamBytes)) {
        this.skipGap(s, dir, d, p);
      }
      if (d.finSeq >= 0 && d.next === d.finSeq && !d.done) d.done = true;
    }
    if (!s.live) return; // evicted for memory while its own bytes were delivered
    if ((flags & RST) !== 0) {
      st.closedRst++;
      this.close(s, true);
      return;
    }
    if (s.d0.done && s.d1.done) {
      st.closedFin++;
      this.close(s, false);
    }
  }

  /**
   * A TCP segment on a port no parser declared. Its connection is followed
   * when a probe claimed it (then the segment goes to segment() and this
   * returns true); each connection is offered to the consumer's probeStream
   * once, at its first payload, and the answer is remembered per flow (a
   * SYN clears a "no": a new connection is decided again). False: the
   * segment is not for a stream parser.
   */
  offer(p: DecodedPacket, hasTs: boolean, tsDigits: number): boolean {
    let tags = this.vTag;
    let owners = this.vOwner;
    if (tags === null || owners === null) {
      tags = this.vTag = new Int32Array(VERDICT_SLOTS);
      owners = this.vOwner = new Int16Array(VERDICT_SLOTS);
    }
    const tag = probeHash(p);
    const slot = tag & (VERDICT_SLOTS - 1);
    if (tags[slot] === tag) {
      const o = owners[slot];
      if (o >= 0) {
        this.segment(p, o, -1, hasTs, tsDigits);
        return true;
      }
      if ((p.tcpFlags & (SYN | ACK)) === SYN) tags[slot] = 0;
      return false;
    }
    // Not in the table (its first segments, or its entry went to another flow): a stream already followed?
    const s = this.find(p);
    if (s !== null) {
      const o = s.owner;
      this.segment(p, o, -1, hasTs, tsDigits);
      if (s.live && s.vSlot < 0 && (tags[slot] === 0 || owners[slot] < 0)) this.remember(s, slot, tag);
      return true;
    }
    if (p.payloadLen <= 0 || this.consumer.probeStream === undefined) return false;
    this.stats.probes++;
    const o = this.consumer.probeStream(p);
    if (o < 0) {
      // A connection some probe claimed keeps its entry; this one is then asked again at its next payload.
      if (tags[slot] === 0 || owners[slot] < 0) {
        tags[slot] = tag;
        owners[slot] = -1;
      }
      return false;
    }
    this.stats.claimed++;
    // Its first payload's sender is direction 0 (the client, as far as this stream knows).
    this.segment(p, o, p.dport, hasTs, tsDigits);
    const claimed = this.cur;
    if (claimed !== null && claimed.live) this.remember(claimed, slot, tag);
    return true;
  }

  private remember(s: Stream, slot: number, tag: number): void {
    this.vTag![slot] = tag;
    this.vOwner![slot] = s.owner;
    s.vSlot = slot;
    s.vTag = tag;
  }

  /** Flushes and forgets every connection (end of input, shutdown). */
  flush(): void {
    while (this.tail !== null) {
      this.stats.flushed++;
      this.close(this.tail, true);
    }
  }

  /** Open connections now. */
  get size(): number {
    return this.stats.active;
  }

  // ---- data path ----

  private data(s: Stream, dir: number, d: Direction, seq: number, buf: Uint8Array, off: number, len: number, p: DecodedPacket): void {
    const st = this.stats;
    let diff = seqDiff(seq, d.next);
    if (diff + len <= 0) {
      st.retransmissions++;
      return;
    }
    if (diff < 0) {
      st.overlaps++;
      off -= diff;
      len += diff;
      seq = d.next;
      diff = 0;
    }
    if (diff > 0) {
      this.storeOoo(d, seq, buf, off, len, p);
      return;
    }
    this.segSec = p.tsSec;
    this.segNsec = p.tsNsec;
    this.deliver(s, dir, d, buf, off, len, p);
    this.drainOoo(s, dir, d, p);
  }

  private storeOoo(d: Direction, seq: number, buf: Uint8Array, off: number, len: number, p: DecodedPacket): void {
    const st = this.stats;
    // Usual sizes go into pooled blocks (no garbage when a flood of them comes and goes); tiny and big ones are copied exactly.
    const block = len >= BLOCK >> 2 && len <= BLOCK;
    const mem = (block ? BLOCK : len) + BUFFER_COST;
    if (d.oooMem + mem + d.keepLen > this.opts.maxStreamBytes * 2) {
      st.oooDropped++;
      return;
    }
    st.outOfOrder++;
    const rel = seqDiff(seq, d.next);
    const o = d.ooo;
    let i = o.n;
    while (i > 0 && seqDiff(o.seq[i - 1], d.next) > rel) i--;
    // A segment already stored at the same place with as many bytes: a retransmission.
    if (i > 0 && o.seq[i - 1] === seq && o.len[i - 1] >= len) {
      st.retransmissions++;
      st.outOfOrder--;
      return;
    }
    let copy: Uint8Array;
    if (block) {
      copy = this.takeBlock();
      for (let k = 0; k < len; k++) copy[k] = buf[off + k];
    } else copy = buf.slice(off, off + len);
    const grown = o.grow();
    o.insert(i, seq, copy, len, p.tsSec, p.tsNsec);
    d.oooBytes += len;
    d.oooMem += mem;
    if (d.gapSince < 0) d.gapSince = this.now;
    this.held(len);
    this.memory(mem + grown);
  }

  /** Delivers stored segments the stream has reached. */
  private drainOoo(s: Stream, dir: number, d: Direction, p: DecodedPacket): void {
    const o = d.ooo;
    while (o.n > 0 && s.live) {
      const diff = seqDiff(o.seq[0], d.next);
      if (diff > 0) return;
      const data = o.data[0]!;
      const len = o.len[0];
      this.segSec = o.sec[0];
      this.segNsec = o.nsec[0];
      o.removeFirst();
      d.oooBytes -= len;
      d.oooMem -= data.length + BUFFER_COST;
      d.gapSince = o.n === 0 ? -1 : this.now;
      this.held(-len);
      this.memory(-(data.length + BUFFER_COST));
      if (diff + len <= 0) this.stats.retransmissions++;
      else {
        if (diff < 0) this.stats.overlaps++;
        this.deliver(s, dir, d, data, -diff, len + diff, p);
      }
      this.giveBlock(data, null); // the consumer is done with it (what it kept was copied)
    }
  }

  /** Skips the hole before the first stored segment. */
  private skipGap(s: Stream, dir: number, d: Direction, p: DecodedPacket | null): void {
    if (d.ooo.n === 0) return;
    const st = this.stats;
    st.gapsSkipped++;
    st.bytesSkipped += seqDiff(d.ooo.seq[0], d.next);
    d.next = d.ooo.seq[0];
    d.pendingGap = true;
    this.drainOoo(s, dir, d, p ?? this.envelope(s, dir));
  }

  /**
   * Hands bytes (captured at segSec/segNsec) to the consumer, in front of
   * any it kept; keeps what it did not consume. After a hole the kept bytes
   * are dropped first: they belong to a message the hole cut.
   */
  private deliver(s: Stream, dir: number, d: Direction, buf: Uint8Array, off: number, len: number, p: DecodedPacket): void {
    // The time comes in fields, not arguments: a number past 2^30 (seconds since 1970) passed to a call is boxed, an allocation per segment.
    const sec = this.segSec;
    const nsec = this.segNsec;
    d.next = (d.next + len) >>> 0;
    const gap = d.pendingGap;
    if (gap) {
      d.pendingGap = false;
      if (d.keepLen > 0) {
        this.stats.keptDropped++;
        this.stats.keptBytesDropped += d.keepLen;
        this.held(-d.keepLen);
        d.keepLen = 0;
      }
    }
    const c = this.chunk;
    if (d.keepLen === 0) {
      this.aim(c, s, dir, p, gap);
      c.tsSec = sec;
      c.tsNsec = nsec;
      c.buf = buf;
      c.view = buf === p.payloadBuf ? p.payloadView : null; // a segment delivered in place (an out-of-order one is a copy)
      c.off = off;
      c.len = len;
      c.keptLen = 0;
      const used = this.consume(s, c);
      if (used < len) {
        d.keepSec = sec;
        d.keepNsec = nsec;
        this.keep(d, buf, off + used, len - used);
      }
    } else {
      const kept = d.keepLen;
      if (!this.keep(d, buf, off, len) || !s.live) return; // overflowed and dropped, or evicted for memory
      // keep() may have evicted other streams, whose flush used the chunk: fill it now.
      this.aim(c, s, dir, p, gap);
      c.tsSec = sec;
      c.tsNsec = nsec;
      c.buf = d.keep;
      c.view = d.keepView;
      c.off = 0;
      c.len = d.keepLen;
      c.keptLen = kept;
      c.keptSec = d.keepSec;
      c.keptNsec = d.keepNsec;
      const used = this.consume(s, c);
      if (used > 0) {
        d.keep.copyWithin(0, used, d.keepLen);
        d.keepLen -= used;
        this.held(-used);
        if (used >= kept) {
          d.keepSec = sec;
          d.keepNsec = nsec;
        }
      }
    }
  }

  /** The chunk's connection, direction, envelope and gap flag. */
  private aim(c: TcpChunk, s: Stream, dir: number, p: DecodedPacket, gap: boolean): void {
    c.streamId = s.id;
    c.dir = dir;
    c.packet = p;
    c.gap = gap;
  }

  private consume(s: Stream, c: TcpChunk): number {
    const used = this.consumer.streamData(s.owner, c);
    const n = used > c.len ? c.len : used > 0 ? used : 0;
    this.stats.bytesDelivered += n;
    return n;
  }

  /**
   * Appends bytes to the direction's kept buffer (grown by doubling, its
   * capacity counted, bounded by maxStreamBytes); false when they passed the
   * bound and everything kept was dropped (the next chunk has `gap`). The
   * memory is counted last, once the direction is consistent: that may
   * evict this very stream (callers check s.live).
   */
  private keep(d: Direction, buf: Uint8Array, off: number, len: number): boolean {
    const need = d.keepLen + len;
    if (need > this.opts.maxStreamBytes) {
      this.stats.keepOverflows++;
      this.held(-d.keepLen);
      d.keepLen = 0;
      d.pendingGap = true;
      return false;
    }
    let grown = 0;
    if (need > d.keep.length) {
      const old = d.keep.length;
      let cap = old === 0 ? BLOCK : old * 2;
      while (cap < need) cap *= 2;
      if (cap === BLOCK) {
        d.keep = this.takeBlock();
        d.keepView = this.takenView ?? new DataView(d.keep.buffer);
      } else {
        const k = new Uint8Array(cap);
        k.set(d.keep.subarray(0, d.keepLen));
        this.giveBlock(d.keep, d.keepView);
        d.keep = k;
        d.keepView = new DataView(k.buffer);
      }
      grown = cap - old + (old === 0 ? BUFFER_COST : 0);
    }
    for (let i = 0; i < len; i++) d.keep[d.keepLen + i] = buf[off + i];
    d.keepLen = need;
    this.held(len);
    if (grown > 0) this.memory(grown);
    return true;
  }

  private takeBlock(): Uint8Array {
    const b = this.blocks.pop();
    if (b === undefined) {
      this.takenView = null;
      return new Uint8Array(BLOCK);
    }
    this.takenView = this.blockViews.pop()!;
    return b;
  }

  private giveBlock(b: Uint8Array, view: DataView | null): void {
    if (b.length !== BLOCK || this.blocks.length >= BLOCK_POOL_MAX) return;
    this.blocks.push(b);
    this.blockViews.push(view);
  }

  private held(n: number): void {
    const st = this.stats;
    st.bytesHeld += n;
    if (st.bytesHeld > st.bytesHeldMax) st.bytesHeldMax = st.bytesHeld;
  }

  /** Memory allocated (n > 0) or freed; over maxBytes, the least recently used streams are evicted. */
  private memory(n: number): void {
    const st = this.stats;
    st.memoryHeld += n;
    if (st.memoryHeld > st.memoryHeldMax) st.memoryHeldMax = st.memoryHeld;
    if (n > 0 && st.memoryHeld > this.opts.maxBytes) this.evictForMemory();
  }

  private evictForMemory(): void {
    // The oldest streams go first; the one being written is the head, evicted only if alone.
    while (this.stats.memoryHeld > this.opts.maxBytes && this.tail !== null) {
      this.stats.evictedMemory++;
      this.close(this.tail, true);
    }
  }

  // ---- connections ----

  private hashOf(p: DecodedPacket): number {
    let a: number;
    let b: number;
    if (p.ipVersion === 4) {
      a = p.src4;
      b = p.dst4;
    } else {
      const ab = p.addrBuf;
      a = (ab[p.srcOff + 12] << 24) | (ab[p.srcOff + 13] << 16) | (ab[p.srcOff + 14] << 8) | ab[p.srcOff + 15];
      b = (ab[p.dstOff + 12] << 24) | (ab[p.dstOff + 13] << 16) | (ab[p.dstOff + 14] << 8) | ab[p.dstOff + 15];
    }
    // Symmetric: both directions hash alike.
    const h = Math.imul(a ^ b, 0x9e3779b1) ^ Math.imul(p.sport ^ p.dport, 0x85ebca6b) ^ (p.sport + p.dport);
    return h & 0x3fffffff;
  }

  private find(p: DecodedPacket): Stream | null {
    let s = this.buckets[this.hashOf(p) & this.mask];
    while (s !== null) {
      if (this.dirOf(s, p) >= 0) return s;
      s = s.bucketNext;
    }
    return null;
  }

  /** 0 or 1 when the packet belongs to s, -1 otherwise. */
  private dirOf(s: Stream, p: DecodedPacket): number {
    if (s.ipVersion !== p.ipVersion) return -1;
    if (p.sport === s.sport && p.dport === s.dport && this.sameAddrs(s, p, false)) return 0;
    if (p.sport === s.dport && p.dport === s.sport && this.sameAddrs(s, p, true)) return 1;
    return -1;
  }

  private sameAddrs(s: Stream, p: DecodedPacket, rev: boolean): boolean {
    if (p.ipVersion === 4) return rev ? p.src4 === s.dst4 && p.dst4 === s.src4 : p.src4 === s.src4 && p.dst4 === s.dst4;
    const ab = p.addrBuf;
    const x = rev ? s.dst6 : s.src6;
    const y = rev ? s.src6 : s.dst6;
    for (let i = 0; i < 16; i++) if (ab[p.srcOff + i] !== x[i] || ab[p.dstOff + i] !== y[i]) return false;
    return true;
  }

  private open(p: DecodedPacket, owner: number, reverse: boolean): Stream {
    const st = this.stats;
    if (st.active >= this.opts.maxStreams && this.tail !== null) {
      st.evictedLru++;
      this.close(this.tail, true);
    }
    const s = this.pool.pop() ?? new Stream();
    s.id = this.nextId++;
    s.owner = owner;
    s.ipVersion = p.ipVersion;
    if (p.ipVersion === 4) {
      s.src4 = reverse ? p.dst4 : p.src4;
      s.dst4 = reverse ? p.src4 : p.dst4;
    } else {
      const ab = p.addrBuf;
      const so = reverse ? p.dstOff : p.srcOff;
      const dof = reverse ? p.srcOff : p.dstOff;
      for (let i = 0; i < 16; i++) {
        s.src6[i] = ab[so + i];
        s.dst6[i] = ab[dof + i];
      }
    }
    s.sport = reverse ? p.dport : p.sport;
    s.dport = reverse ? p.sport : p.dport;
    s.d0.reset();
    s.d1.reset();
    s.live = true;
    s.vSlot = -1;
    s.hash = this.hashOf(p);
    s.bucketNext = this.buckets[s.hash & this.mask];
    this.buckets[s.hash & this.mask] = s;
    s.prev = null;
    s.next = this.head;
    if (this.head !== null) this.head.prev = s;
    this.head = s;
    if (this.tail === null) this.tail = s;
    st.streams++;
    st.active++;
    // Counted once linked: at the bound, the oldest others are evicted (this one is the head). A pooled stream brings its vectors.
    this.memory(STREAM_COST + s.d0.ooo.bytes + s.d1.ooo.bytes);
    return s;
  }

  private touch(s: Stream): void {
    if (this.head === s) return;
    // unlink
    if (s.prev !== null) s.prev.next = s.next;
    if (s.next !== null) s.next.prev = s.prev;
    if (this.tail === s) this.tail = s.prev;
    s.prev = null;
    s.next = this.head;
    if (this.head !== null) this.head.prev = s;
    this.head = s;
    if (this.tail === null) this.tail = s;
  }

  private expire(): void {
    const limit = this.now - this.opts.streamTimeoutMs;
    for (let n = 0; n < 16 && this.tail !== null && this.tail.lastSeen < limit; n++) {
      this.stats.timedOut++;
      this.close(this.tail, true);
    }
  }

  /** Flushes what is stored (skipping holes when `flush`), tells the consumer, frees the stream. */
  private close(s: Stream, flush: boolean): void {
    if (!s.live) return;
    if (flush) {
      for (let dir = 0; dir < 2 && s.live; dir++) {
        const d = dir === 0 ? s.d0 : s.d1;
        while (d.ooo.n > 0 && s.live) this.skipGap(s, dir, d, null);
      }
    }
    if (!s.live) return; // evicted re-entrantly while flushing
    s.live = false;
    let freed = STREAM_COST;
    for (let dir = 0; dir < 2; dir++) {
      const d = dir === 0 ? s.d0 : s.d1;
      this.stats.bytesHeld -= d.oooBytes + d.keepLen;
      const o = d.ooo;
      for (let k = 0; k < o.n; k++) {
        freed += o.data[k]!.length + BUFFER_COST;
        this.giveBlock(o.data[k]!, null);
        o.data[k] = null;
      }
      o.n = 0;
      // The vectors stay with the stream in the pool unless big (the pool's memory is not counted: keep it small).
      freed += o.bytes;
      if (o.cap > 64) o.release();
      d.oooBytes = 0;
      d.oooMem = 0;
      d.keepLen = 0;
      // A pooled stream holds no buffer (it would not be counted); its block goes back to the pool.
      if (d.keep.length > 0) {
        freed += d.keep.length + BUFFER_COST;
        this.giveBlock(d.keep, d.keepView);
        d.keep = EMPTY;
        d.keepView = null;
      }
    }
    this.stats.memoryHeld -= freed;
    if (s.vSlot >= 0) {
      // A claimed connection's entry goes with it: the next one on these addresses and ports is decided again.
      if (this.vTag![s.vSlot] === s.vTag) this.vTag![s.vSlot] = 0;
      s.vSlot = -1;
    }
    // unlink from bucket
    let b = this.buckets[s.hash & this.mask];
    if (b === s) this.buckets[s.hash & this.mask] = s.bucketNext;
    else {
      while (b !== null && b.bucketNext !== s) b = b.bucketNext;
      if (b !== null) b.bucketNext = s.bucketNext;
    }
    s.bucketNext = null;
    // unlink from LRU
    if (s.prev !== null) s.prev.next = s.next;
    if (s.next !== null) s.next.prev = s.prev;
    if (this.head === s) this.head = s.next;
    if (this.tail === s) this.tail = s.prev;
    s.prev = s.next = null;
    this.stats.active--;
    const c = this.chunk;
    c.streamId = s.id;
    c.dir = 0;
    c.packet = this.envelope(s, 0, this.flushPkt);
    c.reverse = this.envelope(s, 1, this.flushPktRev);
    c.buf = EMPTY;
    c.view = null;
    c.off = 0;
    c.len = 0;
    c.keptLen = 0;
    c.tsSec = c.packet.tsSec;
    c.tsNsec = c.packet.tsNsec;
    c.gap = false;
    this.consumer.streamEnd(s.owner, s.id, c);
    if (this.pool.length < POOL_MAX) this.pool.push(s);
  }

  /** A packet with the stream's addresses in direction `dir`, for records made without a current segment. */
  private envelope(s: Stream, dir: number, p: Packet = this.flushPkt): DecodedPacket {
    p.reset();
    p.ipVersion = s.ipVersion;
    p.proto = 6;
    // A record made at the end belongs to the direction's FIN when it had one (it is what ended a close-delimited body).
    const d = dir === 0 ? s.d0 : s.d1;
    p.tsSec = d.finSec >= 0 ? d.finSec : s.lastSec;
    p.tsNsec = d.finSec >= 0 ? d.finNsec : s.lastNsec;
    if (s.ipVersion === 4) {
      p.src4 = dir === 0 ? s.src4 : s.dst4;
      p.dst4 = dir === 0 ? s.dst4 : s.src4;
    } else {
      if (p.addrBuf.length < 32) p.addrBuf = new Uint8Array(32);
      p.addrBuf.set(dir === 0 ? s.src6 : s.dst6, 0);
      p.addrBuf.set(dir === 0 ? s.dst6 : s.src6, 16);
      p.srcOff = 0;
      p.dstOff = 16;
    }
    p.sport = dir === 0 ? s.sport : s.dport;
    p.dport = dir === 0 ? s.dport : s.sport;
    p.payloadLen = 0;
    return p;
  }
}

/** Streams kept for reuse (without buffers): a bounded, fixed overhead. */
const POOL_MAX = 1024;
/** A kept-bytes buffer's first capacity, and the block an out-of-order segment up to this size is copied into. */
export const BLOCK = 2048;
/** Free blocks kept for reuse (4 MiB). */
const BLOCK_POOL_MAX = 2048;

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * The probe table's symmetric flow hash (each address bound to its port, all
 * IPv6 bytes), never 0: its low bits pick the slot, all 32 are the tag.
 */
function probeHash(p: DecodedPacket): number {
  let a: number;
  let b: number;
  if (p.ipVersion === 4) {
    a = p.src4;
    b = p.dst4;
  } else {
    const v = p.addrBuf;
    a = 0;
    b = 0;
    for (let i = 0; i < 16; i += 4) {
      a = Math.imul(a ^ ((v[p.srcOff + i] << 24) | (v[p.srcOff + i + 1] << 16) | (v[p.srcOff + i + 2] << 8) | v[p.srcOff + i + 3]), 0x9e3779b1);
      b = Math.imul(b ^ ((v[p.dstOff + i] << 24) | (v[p.dstOff + i + 1] << 16) | (v[p.dstOff + i + 2] << 8) | v[p.dstOff + i + 3]), 0x9e3779b1);
    }
  }
  const x = Math.imul(a ^ Math.imul(p.sport + 1, 0x27d4eb2f), 0x85ebca6b);
  const y = Math.imul(b ^ Math.imul(p.dport + 1, 0x27d4eb2f), 0x85ebca6b);
  return fmix((x ^ (x >>> 15)) + (y ^ (y >>> 15))) | 1;
}
