// A flood of half-sent TCP connections through one capture process's
// pipeline (TCP reassembly with maxBytes from argv), run in a process of its
// own by test/pipeline/tcp-memory.test.ts and http-memory.test.ts. KIND:
//   sip (default): the first part of an INVITE (no end of headers: the
//     reassembler keeps it for the parser) and a segment after a hole
//     (stored out of order);
//   http-head: a request line and a few headers, no end of headers (kept
//     by the reassembler, nothing by the http parser);
//   http-body: a whole header block announcing a body of 1 MB, and the
//     first 1000 bytes of it (the http parser's message in progress; its
//     memory bound is MAX_HELD);
// then never another byte. Prints one JSON line: RSS before the flood, the
// most it reached (sampled every 500 connections), RSS after a full GC
// every CHECKPOINT connections (what the process keeps, without the garbage
// a busy machine's GC has not reached yet), the reassembler's counters and
// the parser's.
//
//   node --expose-gc dist/test/helpers/tcp-flood-child.js CONNECTIONS MAX_BYTES CHECKPOINT [KIND [MAX_HELD]]

import { Decoder } from '../../src/decode/decoder.js';
import { defaultDecoderOptions } from '../../src/decode/options.js';
import { ENCODERS } from '../../src/pipeline/codec.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { MemorySink } from '../../src/pipeline/sink.js';
import type { StreamParser } from '../../src/plugin/types.js';
import { HttpParser } from '../../plugins/parser/http/index.js';
import { SipParser } from '../../plugins/parser/sip/index.js';
import { tcpFrame } from './bytes.js';

const connections = Number(process.argv[2]);
const maxBytes = Number(process.argv[3]);
const checkpoint = Number(process.argv[4]);
const kind = process.argv[5] ?? 'sip';
const maxHeld = Number(process.argv[6] ?? 64 << 20);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

const parser: StreamParser =
  kind === 'sip'
    ? new SipParser({ ports: [5060], heuristic: true, track_media: false, media_ttl: 60, bye_grace: 1, max_message: 65536 }, null)
    : new HttpParser({ ports: [5060], body_max: 1024, header_max: 16384, max_held_bytes: maxHeld });
// Records (http's incomplete ones, at each evicted stream's end) go to a sink that stops taking them at 1 MiB.
const pl = new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers: [parser], processors: [], unmatched: 'drop', encode: ENCODERS.json, sink: new MemorySink(1 << 20, 1 << 20), tcp: { maxBytes } });

const SIP_HEAD = `INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\nX-Pad: ${'x'.repeat(1100)}\r\n`;
const HTTP_HEAD = 'POST /upload HTTP/1.1\r\nHost: example.com\r\nUser-Agent: flood/1\r\nContent-Type: application/octet-stream\r\n';
const head = Buffer.from(kind === 'sip' ? SIP_HEAD : kind === 'http-head' ? HTTP_HEAD : `${HTTP_HEAD}Content-Length: 1000000\r\n\r\n${'b'.repeat(1000)}`, 'latin1');
const tail = Buffer.from(`Contact: <sip:alice@192.0.2.1>\r\n${'X-More: y\r\n'.repeat(50)}`, 'latin1');
// Client 10.0.0.1 → server 10.0.0.2:5060 (tcpFrame); the client's address and port vary per connection, in place.
const first = tcpFrame(40000, 5060, 1000, 0x18, head, 5060);
const later = kind === 'sip' ? tcpFrame(40000, 5060, 1000 + head.length + 700, 0x18, tail, 5060) : null;
const fv = new DataView(first.buffer);
const lv = later === null ? null : new DataView(later.buffer);
const SRC = 14 + 12; // IPv4 source address
const SPORT = 14 + 20; // TCP source port

function send(frame: Uint8Array, view: DataView, i: number, t: number): void {
  view.setUint32(SRC, (10 << 24) | (1 + (i >>> 14)));
  view.setUint16(SPORT, 1024 + (i & 0x3fff));
  pl.processBytes(frame, view, 0, frame.length, frame.length, 1, 1_700_000_000 + Math.floor(t / 1000), (t % 1000) * 1e6, true, 6);
}

gc();
const base = process.memoryUsage.rss();
let peak = base;
const kept: number[] = [];
for (let i = 0; i < connections; i++) {
  send(first, fv, i, i);
  if (later !== null) send(later, lv!, i, i);
  if (i % 500 === 499) peak = Math.max(peak, process.memoryUsage.rss());
  if (i % checkpoint === checkpoint - 1) {
    gc();
    kept.push(process.memoryUsage.rss());
  }
}
peak = Math.max(peak, process.memoryUsage.rss());
const st = pl.reassembler!.stats;
process.stdout.write(JSON.stringify({ base, peak, kept, stats: { ...st }, parser: parser.counters?.() ?? null }) + '\n');
