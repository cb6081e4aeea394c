// http parser (issue 5 item 6; plugins/README.md "HTTP: header deep parse; body
// skipped or truncated"): HTTP/1.0 and 1.1 over TCP, on the ordered byte
// streams of the pipeline's reassembler (src/reassembly/tcp-stream.ts).
//
// Per direction a small state machine (RFC 9112): start line and header
// block (held by the reassembler until complete: handleStream returns 0
// until CRLFCRLF arrives), then the body by Content-Length, chunked transfer
// coding (size lines, data, trailers), or until the connection closes;
// responses to HEAD, 1xx, 204 and 304 have none; after 101 or a 2xx to
// CONNECT the connection is no longer HTTP and is skipped. Pipelined
// requests are paired with their responses (a FIFO of HEAD/CONNECT flags).
// One record per message, emitted when its body ends (or the stream ends or
// breaks), with the header block and the first `body_max` body bytes copied
// into the message's buffers, everything else skipped as it streams by.
//
// Memory: a message object and its buffers (blocks from pool.ts) are taken
// when a header block is complete and given back when the message ends, so
// a connection holds what its message in progress keeps, not header_max +
// body_max up front; a connection whose state is still the initial one
// (nothing but an incomplete header block, which the reassembler holds and
// counts) has no state here at all. What messages in progress hold is
// counted; over max_held_bytes the least recently active connections'
// messages are dropped (counted in evicted_memory; the rest of each is
// skipped by its framing, no record). Connection and message objects are
// reused from free lists, not left to the GC.
//
// Malformed input never throws: a direction that stops looking like HTTP is
// skipped to its end, counted by reason; a gap (bytes lost) ends the current
// message (emitted as incomplete; a header block the gap cut is dropped by
// the reassembler, never joined to what follows) and the direction
// resynchronises on the next line that is a whole start line. A record
// carries the capture time of its message's first byte.

import type { DecodedPacket } from '../../../src/decode/packet.js';
import type { OutputRecord } from '../../../src/pipeline/record.js';
import type { PluginDefinition, RecordEmitter, StreamParser } from '../../../src/plugin/types.js';
import type { TcpChunk } from '../../../src/reassembly/tcp-stream.js';
import { chunkSizeLine, HttpMessage, Reject, REJECT_NAMES } from './message.js';
import { BlockPool } from './pool.js';

export interface HttpConfig {
  /** TCP ports (either side) whose connections are HTTP. */
  ports: number[];
  /** Body bytes kept in the payload (the rest is counted, not kept). */
  body_max: number;
  /** Largest start line + header block; beyond it the direction is skipped (counted). */
  header_max: number;
  /** Memory the messages in progress may hold together (header blocks, kept bodies); over it the least recently active connections' messages are dropped (counted). Default 64 MiB. */
  max_held_bytes?: number;
}

export const DEFAULT_MAX_HELD_BYTES = 64 << 20;

/**
 * Memory of one message in progress beside its blocks (measured on node 20:
 * heap and ArrayBuffer bytes per 100 000 HttpMessage objects after GC, with
 * their header-index arrays, rounded up). A block counts its capacity plus
 * BUFFER_COST (pool.ts).
 */
export const MESSAGE_COST = 3328;
/** Message and connection objects kept for reuse. */
const FREE_MAX = 1024;

const enum St {
  /** Waiting for a start line + headers. */
  Head = 0,
  /** Content-Length body: `left` bytes to go. */
  Body,
  /** Chunked: a chunk-size line. */
  ChunkSize,
  /** Chunked: `left` data bytes, then CRLF. */
  ChunkData,
  ChunkCrlf,
  /** Chunked: trailer lines until an empty one. */
  Trailer,
  /** Body until the connection closes. */
  UntilClose,
  /** Not (or no longer) HTTP: skip everything. */
  Skip,
  /** A gap broke framing: wait for a line that is a start line. */
  Lost,
}

/** Inside a body framed by length or chunks: ending here leaves the message unfinished. */
function inBody(s: St): boolean {
  return s === St.Body || s === St.ChunkSize || s === St.ChunkData || s === St.ChunkCrlf || s === St.Trailer;
}

/** One direction of one connection. */
class Dir {
  st: St = St.Head;
  left = 0;
  /** Capture time of the current message's first byte (TcpChunk.stamp). */
  tsSec = 0;
  tsNsec = 0;
  /** The message in progress, from its complete header block to its end; null otherwise, and when dropped for memory (its body is then skipped). */
  msg: HttpMessage | null = null;
}

/** One connection: both directions and the FIFO of requests awaiting responses. */
class Conn {
  readonly dirs: [Dir, Dir] = [new Dir(), new Dir()];
  /** Per pending request: 1 HEAD, 2 CONNECT, 0 other (a ring of 64). */
  readonly pending = new Uint8Array(64);
  head = 0;
  count = 0;
  /** Messages in progress (0-2); while > 0 the connection is on the parser's list of holders, most recently active first. */
  held = 0;
  prev: Conn | null = null;
  next: Conn | null = null;
  /** Its stream id, and the next connection in its ConnTable bucket. */
  id = 0;
  bucketNext: Conn | null = null;
  reset(): void {
    for (const d of this.dirs) {
      d.st = St.Head;
      d.left = 0;
    }
    this.head = 0;
    this.count = 0;
  }
  /** In the state a connection starts in: nothing to remember. */
  initial(): boolean {
    return this.count === 0 && this.held === 0 && this.dirs[0].st === St.Head && this.dirs[1].st === St.Head;
  }
}

/**
 * Connections by stream id, chained through Conn.bucketNext (ids are a
 * counter: their low bits spread them); the bucket array doubles as it
 * fills. Not a Map: under a flood of connections that come and go, a Map's
 * deleted entries make it rebuild its table every so often, garbage of
 * megabytes at a time that the GC collects late.
 */
class ConnTable {
  size = 0;
  private buckets: (Conn | null)[] = new Array<Conn | null>(1024).fill(null);
  private mask = 1023;

  get(id: number): Conn | null {
    let c = this.buckets[id & this.mask];
    while (c !== null && c.id !== id) c = c.bucketNext;
    return c;
  }

  add(id: number, c: Conn): void {
    if (this.size >= this.buckets.length) this.grow();
    c.id = id;
    const k = id & this.mask;
    c.bucketNext = this.buckets[k];
    this.buckets[k] = c;
    this.size++;
  }

  remove(c: Conn): void {
    const k = c.id & this.mask;
    let b = this.buckets[k];
    if (b === c) this.buckets[k] = c.bucketNext;
    else {
      while (b !== null && b.bucketNext !== c) b = b.bucketNext;
      if (b !== null) b.bucketNext = c.bucketNext;
    }
    c.bucketNext = null;
    this.size--;
  }

  private grow(): void {
    const old = this.buckets;
    this.buckets = new Array<Conn | null>(old.length * 2).fill(null);
    this.mask = this.buckets.length - 1;
    for (let c of old) {
      while (c !== null) {
        const next = c.bucketNext;
        const k = c.id & this.mask;
        c.bucketNext = this.buckets[k];
        this.buckets[k] = c;
        c = next;
      }
    }
  }
}

export class HttpStats {
  messages = 0;
  requests = 0;
  responses = 0;
  /** Records emitted before their body was complete (stream end or gap). */
  incomplete = 0;
  /** Messages still open when their connection ended (no record: the end comes without an emitter). */
  unfinished = 0;
  /** Bytes skipped: directions that are not HTTP, bytes after a gap, tunnels (CONNECT, 101). */
  bytesSkipped = 0;
  /** Body bytes seen beyond body_max (not kept). */
  bodyBytesTruncated = 0;
  gaps = 0;
  /** Messages in progress dropped to stay under max_held_bytes (no record; the rest of each is skipped). */
  evictedMemory = 0;
  readonly rejected = new Float64Array(REJECT_NAMES.length);

  toJSON(): Record<string, unknown> {
    const rejected: Record<string, number> = {};
    REJECT_NAMES.forEach((n, i) => this.rejected[i] > 0 && (rejected[n] = this.rejected[i]));
    return {
      messages: this.messages,
      requests: this.requests,
      responses: this.responses,
      incomplete: this.incomplete,
      unfinished: this.unfinished,
      bytes_skipped: this.bytesSkipped,
      body_bytes_truncated: this.bodyBytesTruncated,
      gaps: this.gaps,
      evicted_memory: this.evictedMemory,
      rejected,
    };
  }
}

export class HttpParser implements StreamParser {
  readonly protocol = 'http';
  readonly tcp: { readonly ports: readonly number[] };
  readonly stats = new HttpStats();
  private readonly conns = new ConnTable();
  private readonly free: Conn[] = [];
  private readonly headerMax: number;
  private readonly bodyMax: number;
  private readonly maxHeld: number;
  /** Blocks of the messages in progress. */
  readonly pool: BlockPool;
  private readonly freeMsgs: HttpMessage[] = [];
  /** Where a header block is parsed; it becomes the direction's message when complete (and another takes its place). */
  private spare: HttpMessage;
  /** The state of a connection not in `conns` (all start alike): stored there only once it has something to remember. */
  private fresh = new Conn();
  /** Connections holding messages: most recently active first. */
  private first: Conn | null = null;
  private last: Conn | null = null;
  /** Messages in progress, and the most memory they held together. */
  private openMessages = 0;
  private heldMax = 0;
  /** Set by startBody: the state both directions take after a body-less response (Skip after 101 / CONNECT 2xx). */
  private after: St = St.Head;

  constructor(cfg: HttpConfig) {
    this.tcp = { ports: [...cfg.ports] };
    this.headerMax = cfg.header_max;
    this.bodyMax = cfg.body_max;
    this.maxHeld = cfg.max_held_bytes ?? DEFAULT_MAX_HELD_BYTES;
    // Free blocks kept: a quarter of the bound, at most 8 MiB (counted apart: they belong to no message).
    this.pool = new BlockPool(Math.min(this.maxHeld >> 2, 8 << 20));
    this.spare = this.newMessage();
  }

  /** Memory the messages in progress hold: what max_held_bytes bounds. */
  heldBytes(): number {
    return this.pool.held + this.openMessages * MESSAGE_COST;
  }

  /** TCP reaches handleStream; nothing else is HTTP here. */
  canHandle(_p: DecodedPacket): boolean {
    return false;
  }
  handle(_p: DecodedPacket, _out: OutputRecord, _hasTs: boolean, _tsDigits: number): boolean {
    return false;
  }

  private newMessage(): HttpMessage {
    return this.freeMsgs.pop() ?? new HttpMessage(this.headerMax, this.bodyMax, this.pool);
  }

  handleStream(ch: TcpChunk, out: RecordEmitter): number {
    let c = this.conns.get(ch.streamId);
    if (c === null) c = this.fresh;
    else if (c.held > 0) this.touch(c);
    const used = this.feed(c, ch, out);
    if (c === this.fresh && !c.initial()) {
      this.conns.add(ch.streamId, c);
      this.fresh = this.free.pop() ?? new Conn();
      this.fresh.reset();
    }
    const held = this.heldBytes();
    if (held > this.heldMax) this.heldMax = held;
    if (held > this.maxHeld) this.evict();
    return used;
  }

  /** Drops the messages of the least recently active connections until under max_held_bytes. */
  private evict(): void {
    while (this.heldBytes() > this.maxHeld && this.last !== null) {
      const c = this.last;
      for (let i = 0; i < 2; i++) {
        if (c.dirs[i].msg === null) continue;
        this.stats.evictedMemory++;
        this.release(c, c.dirs[i]);
      }
    }
  }

  /** The direction's message becomes the one just parsed in `spare`. */
  private adopt(c: Conn, d: Dir): void {
    d.msg = this.spare;
    this.spare = this.newMessage();
    this.openMessages++;
    if (c.held++ === 0) this.pushFront(c);
  }

  /** The direction's message ends: its blocks and itself back to the pools. */
  private release(c: Conn, d: Dir): void {
    const m = d.msg;
    if (m === null) return;
    m.clear();
    d.msg = null;
    if (this.freeMsgs.length < FREE_MAX) this.freeMsgs.push(m);
    this.openMessages--;
    if (--c.held === 0) {
      this.unlink(c);
      c.prev = c.next = null;
    }
  }

  private unlink(c: Conn): void {
    if (c.prev !== null) c.prev.next = c.next;
    if (c.next !== null) c.next.prev = c.prev;
    if (this.first === c) this.first = c.next;
    if (this.last === c) this.last = c.prev;
  }

  private touch(c: Conn): void {
    if (this.first === c) return;
    this.unlink(c);
    this.pushFront(c);
  }

  private pushFront(c: Conn): void {
    c.prev = null;
    c.next = this.first;
    if (this.first !== null) this.first.prev = c;
    this.first = c;
    if (this.last === null) this.last = c;
  }

  private feed(c: Conn, ch: TcpChunk, out: RecordEmitter): number {
    const d = c.dirs[ch.dir];
    const st = this.stats;
    const b = ch.buf;
    const e = ch.off + ch.len;
    let q = ch.off;
    if (ch.gap) {
      st.gaps++;
      // A message whose body was still coming: emit it as incomplete.
      if (d.msg !== null && (inBody(d.st) || d.st === St.UntilClose)) {
        this.emit(c, d, ch, out, false);
      }
      if (d.st !== St.Skip) d.st = St.Lost;
    }
    if (d.st === St.Lost) {
      q = this.resync(c, d, b, q, e);
      if (d.st === St.Lost) return q - ch.off;
    }
    while (q < e) {
      switch (d.st) {
        case St.Skip:
          st.bytesSkipped += e - q;
          return ch.len;
        case St.Head: {
          const r = this.spare.parseHead(b, q, e);
          if (r === 0) {
            // Incomplete: keep the bytes (the reassembler hands them back) unless the block is already too long.
            if (e - q > this.headerMax) return this.reject(c, d, Reject.HeaderTooLong, e - q) + (q - ch.off);
            return q - ch.off;
          }
          if (r < 0) return this.reject(c, d, -r - 1, e - q) + (q - ch.off);
          this.adopt(c, d);
          ch.stamp(d, q);
          q += r;
          this.after = St.Head;
          this.startBody(c, d, ch);
          if (d.st === St.Head) {
            this.emit(c, d, ch, out, true); // no body
            if ((this.after as St) === St.Skip) {
              c.dirs[0].st = St.Skip;
              c.dirs[1].st = St.Skip;
            }
          }
          break;
        }
        case St.UntilClose:
          // Emitted by streamEnd, when the close completes it (RFC 9112 §6.3, item 8).
          this.body(d, b, q, e - q);
          q = e;
          break;
        case St.Body: {
          const n = e - q < d.left ? e - q : d.left;
          this.body(d, b, q, n);
          q += n;
          d.left -= n;
          if (d.left === 0) this.emit(c, d, ch, out, true);
          break;
        }
        case St.ChunkSize: {
          const r = chunkSizeLine(b, q, e, d);
          if (r === 0) {
            if (e - q > 1024) return this.reject(c, d, Reject.BadChunk, e - q) + (q - ch.off);
            return q - ch.off;
          }
          if (r < 0) return this.reject(c, d, Reject.BadChunk, e - q) + (q - ch.off);
          q += r;
          d.st = d.left === 0 ? St.Trailer : St.ChunkData;
          break;
        }
        case St.ChunkData: {
          const n = e - q < d.left ? e - q : d.left;
          this.body(d, b, q, n);
          q += n;
          d.left -= n;
          if (d.left === 0) d.st = St.ChunkCrlf;
          break;
        }
        case St.ChunkCrlf:
          if (e - q < 2) return q - ch.off;
          if (b[q] !== 13 || b[q + 1] !== 10) return this.reject(c, d, Reject.BadChunk, e - q) + (q - ch.off);
          q += 2;
          d.st = St.ChunkSize;
          break;
        case St.Trailer: {
          // Trailer fields until an empty line (RFC 9112 §7.1.2): kept out of the payload.
          let i = q;
          while (i + 1 < e && !(b[i] === 13 && b[i + 1] === 10)) i++;
          if (i + 1 >= e) {
            if (e - q > this.headerMax) return this.reject(c, d, Reject.HeaderTooLong, e - q) + (q - ch.off);
            return q - ch.off;
          }
          const empty = i === q;
          q = i + 2;
          if (empty) this.emit(c, d, ch, out, true);
          break;
        }
        default:
          return ch.len;
      }
    }
    return q - ch.off;
  }

  /**
   * Lost after a gap: the first place in b[q, e) that holds a whole start
   * line, at the chunk's start (a segment after a hole, as tshark takes it)
   * or after a line feed, is where the direction resumes (d.st = Head); else
   * the bytes are skipped (counted) up to e, or up to a last line not
   * complete yet that could be one (kept; d.st stays Lost). Returns where it
   * stopped.
   */
  private resync(c: Conn, d: Dir, b: Uint8Array, q: number, e: number): number {
    let i = q;
    while (i < e) {
      const r = this.spare.startLine(b, i, e);
      if (r >= 0) {
        this.stats.bytesSkipped += i - q;
        if (r > 0) {
          d.st = St.Head;
          this.release(c, d);
        }
        return i;
      }
      while (i < e && b[i] !== 10) i++;
      i++;
    }
    this.stats.bytesSkipped += e - q;
    return e;
  }

  /** After a header block: how the body is delimited (RFC 9112 §6.3). */
  private startBody(c: Conn, d: Dir, _ch: TcpChunk): void {
    const m = d.msg!;
    if (m.isRequest) {
      if (c.count < 64) {
        c.pending[(c.head + c.count) & 63] = m.isHead ? 1 : m.isConnect ? 2 : 0;
        c.count++;
      }
    } else {
      let flag = 0;
      // A 1xx is not the final response: its request keeps waiting.
      if (!(m.status >= 100 && m.status < 200) && c.count > 0) {
        flag = c.pending[c.head];
        c.head = (c.head + 1) & 63;
        c.count--;
      }
      if (flag === 1 || (m.status >= 100 && m.status < 200) || m.status === 204 || m.status === 304) {
        d.st = St.Head;
        // 101: the protocol switched (WebSocket...): after this response neither direction is HTTP.
        if (m.status === 101) this.after = St.Skip;
        return;
      }
      if (flag === 2 && m.status >= 200 && m.status < 300) {
        // A tunnel (CONNECT 2xx): the rest of the connection is not HTTP.
        d.st = St.Head;
        this.after = St.Skip;
        return;
      }
    }
    if (m.chunked) d.st = St.ChunkSize;
    else if (m.contentLength > 0) {
      d.st = St.Body;
      d.left = m.contentLength;
    } else if (m.contentLength === 0 || m.isRequest) d.st = St.Head;
    else d.st = St.UntilClose;
  }

  /** Body bytes of the direction's message: kept up to body_max, or skipped when the message was dropped for memory. */
  private body(d: Dir, b: Uint8Array, q: number, n: number): void {
    if (d.msg !== null) d.msg.addBody(b, q, n, this.stats);
    else this.stats.bytesSkipped += n;
  }

  /** The direction's message ends: its record (none when it was dropped for memory). */
  private emit(c: Conn, d: Dir, ch: TcpChunk, out: RecordEmitter, complete: boolean, packet: DecodedPacket = ch.packet): void {
    const m = d.msg;
    d.st = St.Head;
    if (m === null) return;
    const st = this.stats;
    st.messages++;
    if (m.isRequest) st.requests++;
    else st.responses++;
    if (!complete) st.incomplete++;
    m.complete = complete;
    const rec = out.record;
    rec.reset();
    rec.fillEnvelope(packet, ch.hasTs, ch.tsDigits);
    rec.tsSec = d.tsSec; // its first byte's capture time; the envelope is the segment that completed it
    rec.tsNsec = d.tsNsec;
    rec.protocol = 'http';
    m.label(rec.labels);
    rec.payload = m;
    out.emit();
    this.release(c, d);
  }

  /** Gives up on this direction (counted); returns the bytes consumed. */
  private reject(c: Conn, d: Dir, r: Reject, n: number): number {
    this.stats.rejected[r]++;
    this.stats.bytesSkipped += n;
    d.st = St.Skip;
    this.release(c, d);
    this.spare.clear(); // a header block copied, then refused
    return n;
  }

  streamEnd(streamId: number, end: TcpChunk, out: RecordEmitter): void {
    const c = this.conns.get(streamId);
    if (c === null) return;
    this.conns.remove(c);
    for (let dir = 0; dir < 2; dir++) {
      const d = c.dirs[dir];
      const s = d.st;
      const packet = dir === 0 ? end.packet : end.reverse;
      if (d.msg === null) continue;
      if (s === St.UntilClose) {
        // The close ends this body: the message is complete now.
        this.emit(c, d, end, out, true, packet);
      } else {
        // Closed before its Content-Length or last chunk: the message as far as it came.
        this.stats.unfinished++;
        this.emit(c, d, end, out, false, packet);
      }
    }
    c.reset();
    if (this.free.length < FREE_MAX) this.free.push(c);
  }

  counters(): Record<string, unknown> {
    const held = this.heldBytes();
    return { ...this.stats.toJSON(), open_connections: this.conns.size, open_messages: this.openMessages, open_message_bytes: held, open_message_bytes_max: this.heldMax > held ? this.heldMax : held };
  }
}

const PORT = { type: 'integer', minimum: 1, maximum: 65535 };

const http: PluginDefinition<'parser', HttpConfig> = {
  meta: {
    name: 'http',
    version: '0.1.0',
    kind: 'parser',
    labels: ['http.method', 'http.uri', 'http.host', 'http.status', 'http.user-agent'],
    description: 'HTTP/1.0 and 1.1 over reassembled TCP: start lines, headers, pipelining, chunked bodies, body truncated at body_max.',
    configSchema: {
      type: 'object',
      properties: {
        ports: { type: 'array', items: PORT, minItems: 1, uniqueItems: true, default: [80, 8080] },
        body_max: { type: 'integer', minimum: 0, maximum: 1048576, default: 1024 },
        header_max: { type: 'integer', minimum: 256, maximum: 1048576, default: 16384 },
        max_held_bytes: { type: 'integer', minimum: 65536, maximum: 68719476736, default: DEFAULT_MAX_HELD_BYTES },
      },
      additionalProperties: false,
    },
  },
  init(ctx) {
    return new HttpParser(ctx.config);
  },
};

export default http;
