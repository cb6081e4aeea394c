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
// into the direction's buffers, everything else skipped as it streams by.
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
import { HttpMessage, Reject, REJECT_NAMES } from './message.js';

export interface HttpConfig {
  /** TCP ports (either side) whose connections are HTTP. */
  ports: number[];
  /** Body bytes kept in the payload (the rest is counted, not kept). */
  body_max: number;
  /** Largest start line + header block; beyond it the direction is skipped (counted). */
  header_max: number;
}

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
  readonly msg: HttpMessage;
  constructor(headerMax: number, bodyMax: number) {
    this.msg = new HttpMessage(headerMax, bodyMax);
  }
}

/** One connection: both directions and the FIFO of requests awaiting responses. */
class Conn {
  readonly dirs: [Dir, Dir];
  /** Per pending request: 1 HEAD, 2 CONNECT, 0 other (a ring of 64). */
  readonly pending = new Uint8Array(64);
  head = 0;
  count = 0;
  constructor(headerMax: number, bodyMax: number) {
    this.dirs = [new Dir(headerMax, bodyMax), new Dir(headerMax, bodyMax)];
  }
  reset(): void {
    for (const d of this.dirs) {
      d.st = St.Head;
      d.left = 0;
      d.msg.clear();
    }
    this.head = 0;
    this.count = 0;
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
      rejected,
    };
  }
}

export class HttpParser implements StreamParser {
  readonly protocol = 'http';
  readonly tcp: { readonly ports: readonly number[] };
  readonly stats = new HttpStats();
  private readonly conns = new Map<number, Conn>();
  private readonly free: Conn[] = [];
  private readonly headerMax: number;
  private readonly bodyMax: number;
  /** Set by startBody: the state both directions take after a body-less response (Skip after 101 / CONNECT 2xx). */
  private after: St = St.Head;

  constructor(cfg: HttpConfig) {
    this.tcp = { ports: [...cfg.ports] };
    this.headerMax = cfg.header_max;
    this.bodyMax = cfg.body_max;
  }

  /** TCP reaches handleStream; nothing else is HTTP here. */
  canHandle(_p: DecodedPacket): boolean {
    return false;
  }
  handle(_p: DecodedPacket, _out: OutputRecord, _hasTs: boolean, _tsDigits: number): boolean {
    return false;
  }

  private conn(id: number): Conn {
    let c = this.conns.get(id);
    if (c === undefined) {
      c = this.free.pop() ?? new Conn(this.headerMax, this.bodyMax);
      c.reset();
      this.conns.set(id, c);
    }
    return c;
  }

  handleStream(ch: TcpChunk, out: RecordEmitter): number {
    const c = this.conn(ch.streamId);
    const d = c.dirs[ch.dir];
    const st = this.stats;
    const b = ch.buf;
    const e = ch.off + ch.len;
    let q = ch.off;
    if (ch.gap) {
      st.gaps++;
      // A message whose body was still coming: emit it as incomplete.
      if (d.msg.headLen > 0 && (inBody(d.st) || d.st === St.UntilClose)) {
        this.emit(c, d, ch, out, false);
      }
      if (d.st !== St.Skip) d.st = St.Lost;
    }
    if (d.st === St.Lost) {
      q = this.resync(d, b, q, e);
      if (d.st === St.Lost) return q - ch.off;
    }
    while (q < e) {
      switch (d.st) {
        case St.Skip:
          st.bytesSkipped += e - q;
          return ch.len;
        case St.Head: {
          const m = d.msg;
          const r = m.parseHead(b, q, e);
          if (r === 0) {
            // Incomplete: keep the bytes (the reassembler hands them back) unless the block is already too long.
            if (e - q > this.headerMax) return this.reject(d, Reject.HeaderTooLong, e - q) + (q - ch.off);
            return q - ch.off;
          }
          if (r < 0) return this.reject(d, -r - 1, e - q) + (q - ch.off);
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
          d.msg.addBody(b, q, e - q, st);
          q = e;
          break;
        case St.Body: {
          const n = e - q < d.left ? e - q : d.left;
          d.msg.addBody(b, q, n, st);
          q += n;
          d.left -= n;
          if (d.left === 0) this.emit(c, d, ch, out, true);
          break;
        }
        case St.ChunkSize: {
          const r = d.msg.chunkSizeLine(b, q, e);
          if (r === 0) {
            if (e - q > 1024) return this.reject(d, Reject.BadChunk, e - q) + (q - ch.off);
            return q - ch.off;
          }
          if (r < 0) return this.reject(d, Reject.BadChunk, e - q) + (q - ch.off);
          q += r;
          d.left = d.msg.chunkSize;
          d.st = d.left === 0 ? St.Trailer : St.ChunkData;
          break;
        }
        case St.ChunkData: {
          const n = e - q < d.left ? e - q : d.left;
          d.msg.addBody(b, q, n, st);
          q += n;
          d.left -= n;
          if (d.left === 0) d.st = St.ChunkCrlf;
          break;
        }
        case St.ChunkCrlf:
          if (e - q < 2) return q - ch.off;
          if (b[q] !== 13 || b[q + 1] !== 10) return this.reject(d, Reject.BadChunk, e - q) + (q - ch.off);
          q += 2;
          d.st = St.ChunkSize;
          break;
        case St.Trailer: {
          // Trailer fields until an empty line (RFC 9112 §7.1.2): kept out of the payload.
          let i = q;
          while (i + 1 < e && !(b[i] === 13 && b[i + 1] === 10)) i++;
          if (i + 1 >= e) {
            if (e - q > this.headerMax) return this.reject(d, Reject.HeaderTooLong, e - q) + (q - ch.off);
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
  private resync(d: Dir, b: Uint8Array, q: number, e: number): number {
    let i = q;
    while (i < e) {
      const r = d.msg.startLine(b, i, e);
      if (r >= 0) {
        this.stats.bytesSkipped += i - q;
        if (r > 0) {
          d.st = St.Head;
          d.msg.clear();
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
    const m = d.msg;
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

  private emit(c: Conn, d: Dir, ch: TcpChunk, out: RecordEmitter, complete: boolean, packet: DecodedPacket = ch.packet): void {
    const m = d.msg;
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
    d.st = St.Head;
    m.clear();
    void c;
  }

  /** Gives up on this direction (counted); returns the bytes consumed. */
  private reject(d: Dir, r: Reject, n: number): number {
    this.stats.rejected[r]++;
    this.stats.bytesSkipped += n;
    d.st = St.Skip;
    d.msg.clear();
    return n;
  }

  streamEnd(streamId: number, end: TcpChunk, out: RecordEmitter): void {
    const c = this.conns.get(streamId);
    if (c === undefined) return;
    this.conns.delete(streamId);
    for (let dir = 0; dir < 2; dir++) {
      const d = c.dirs[dir];
      const s = d.st;
      const packet = dir === 0 ? end.packet : end.reverse;
      if (s === St.UntilClose && d.msg.headLen > 0) {
        // The close ends this body: the message is complete now.
        this.emit(c, d, end, out, true, packet);
      } else if (inBody(s) && d.msg.headLen > 0) {
        // Closed before its Content-Length or last chunk: the message as far as it came.
        this.stats.unfinished++;
        this.emit(c, d, end, out, false, packet);
      } else if (s === St.Head && d.msg.headLen > 0) this.stats.unfinished++;
    }
    if (this.free.length < 1024) this.free.push(c);
  }

  counters(): Record<string, unknown> {
    return { ...this.stats.toJSON(), open_connections: this.conns.size };
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
      },
      additionalProperties: false,
    },
  },
  init(ctx) {
    return new HttpParser(ctx.config);
  },
};

export default http;
