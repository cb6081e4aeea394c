// The fast path allocates nothing per packet: decode → test parser (labels
// from strings and bytes, as a registry hit would) → filter and label
// processors → JSON or protobuf encode → sink, 2M packets after warm-up; and
// the capture process's way: wire records into a batch (one subarray per
// 32 KiB batch is its only allocation) → ring; SIP over TCP, messages
// over several segments, through the reassembler; and HTTP connections
// through the reassembler and the http parser (its pooled connections,
// messages and blocks), records encoded.
// Any allocation of 16 bytes or more per packet would fill the young
// generation several times over; we allow at most one scavenge (young
// garbage the test harness left before the loop), in the best of up to three
// measured runs (the optimizing compiler may lag on a loaded machine:
// helpers/gc.ts). Major/incremental GCs are
// not counted: they follow old-generation growth from setup (ajv, the test
// runner), which a loop that never allocates in the young space cannot cause.
// (Standalone, `node --trace-gc` shows no GC at all over 4M packets.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openCapture } from '../../src/capture-file/open.js';
import { Decoder } from '../../src/decode/decoder.js';
import type { DecodedPacket } from '../../src/decode/packet.js';
import { BatchSink } from '../../src/pipeline/batch-sink.js';
import { ENCODERS, wireEncoder } from '../../src/pipeline/codec.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import type { OutputRecord } from '../../src/pipeline/record.js';
import type { RecordSink } from '../../src/pipeline/sink.js';
import { createRegistry } from '../../src/plugin/builtins.js';
import type { Parser, StreamParser } from '../../src/plugin/types.js';
import type { RecordFormat } from '../../src/plugin/types.js';
import { L4Payload } from '../../src/pipeline/unmatched.js';
import { fewestScavenges, warmUp } from '../helpers/gc.js';
import { SipMessage } from '../../plugins/parser/sip/message.js';
import { HttpParser } from '../../plugins/parser/http/index.js';
import { HTTP_FILES } from '../../plugins/parser/http/fixtures.js';
import type { TcpChunk } from '../../src/reassembly/tcp-stream.js';
import { FIXTURES, SAMPLE } from './helpers.js';

/** A ring that is always empty: every record lands at offset 0. */
class OverwriteSink implements RecordSink {
  readonly u8 = new Uint8Array(1 << 20);
  committed = 0;
  reserve(len: number): number {
    return len <= this.u8.length ? 0 : -1;
  }
  commit(): void {
    this.committed++;
  }
}

class FastRtp implements Parser {
  readonly protocol = 'rtp';
  private readonly payload = new L4Payload();
  canHandle(p: DecodedPacket): boolean {
    return p.dport === 2008;
  }
  handle(p: DecodedPacket, out: OutputRecord, hasTs: boolean, tsDigits: number): boolean {
    out.fillEnvelope(p, hasTs, tsDigits);
    out.protocol = 'rtp';
    out.labels.set('rtp.pt', '8');
    out.labels.setBytes('call-id', p.payloadBuf, p.payloadOff + 8, 4);
    this.payload.type = 'rtp';
    this.payload.payloadLen = p.payloadLen;
    out.payload = this.payload;
    return true;
  }
}

async function gcsDuring(format: RecordFormat, parsers: Parser[], batched = false): Promise<{ gcs: number; records: number }> {
  const r = await createRegistry();
  const ctx = { node: { hostname: 'edge-1' }, taskId: 't', worker: 0, where: 'x' };
  const procs = [
    await r.instantiate('processor', 'filter', { rules: [{ label: 'rtp.pt', values: ['13'], action: 'drop' }] }, ctx),
    await r.instantiate('processor', 'label', { labels: { env: 'test' } }, ctx),
  ];
  const ring = new OverwriteSink();
  const batch = batched ? new BatchSink(ring, 256 * 1024) : null;
  const sink = batch ?? ring;
  const encode = batch ? wireEncoder(format, batch.keys) : ENCODERS[format];
  const pl = new Pipeline({ decoder: new Decoder(), parsers, processors: procs, unmatched: 'forward', encode, sink });
  const rd = openCapture(SAMPLE);
  const offs: number[] = [];
  const lens: number[] = [];
  while (rd.next()) {
    offs.push(rd.frame.off);
    lens.push(rd.frame.caplen);
  }
  const { buf, view } = rd.frame;
  const off = Int32Array.from(offs);
  const len = Int32Array.from(lens);
  const run = (count: number): void => {
    for (let i = 0, j = 0; i < count; i++) {
      pl.processBytes(buf, view, off[j], len[j], len[j], 1, 1_700_000_000 + (i >> 10), (i & 1023) * 1000, true, 6);
      if (++j === off.length) j = 0;
    }
  };
  await warmUp(() => run(200_000));
  let records = 0;
  const gcs = await fewestScavenges(() => {
    const before = pl.stats.records;
    run(2_000_000);
    pl.flush();
    records = pl.stats.records - before;
  }, 1);
  if (batch) assert.equal(batch.droppedRecords, 0);
  return { gcs, records };
}


test('no garbage collection over 2M packets: the capture process path, wire records batched into the ring', async () => {
  for (const parsers of [[new FastRtp()], []]) {
    const { gcs, records } = await gcsDuring('json', parsers, true);
    assert.equal(records, 2_000_000);
    assert.ok(gcs <= 1, `${gcs} scavenges`);
  }
});

for (const format of ['json', 'protobuf'] as const) {
  test(`no garbage collection over 2M packets: parser fast path, processors, ${format} encode`, async () => {
    const { gcs, records } = await gcsDuring(format, [new FastRtp()]);
    assert.equal(records, 2_000_000);
    assert.ok(gcs <= 1, `${gcs} scavenges`);
  });
  test(`no garbage collection over 2M packets: unmatched forwarding, ${format} encode`, async () => {
    const { gcs, records } = await gcsDuring(format, []);
    assert.equal(records, 2_000_000);
    assert.ok(gcs <= 1, `${gcs} scavenges`);
  });
}

/** Frames SIP messages in a TCP direction's bytes as the sip parser does (SipMessage.parse), and emits nothing: the reassembly path alone (the sip parser's own records allocate one subarray each, see docs/architecture.md). */
class SipFramer implements StreamParser {
  readonly protocol = 'sip';
  readonly tcp = { ports: [5080] };
  readonly msg = new SipMessage();
  messages = 0;
  canHandle(): boolean {
    return false;
  }
  handle(): boolean {
    return false;
  }
  handleStream(c: TcpChunk): number {
    let at = c.off;
    const end = c.off + c.len;
    for (;;) {
      const n = this.msg.parse(c.buf, at, end, true, c.view);
      if (n <= 0) break;
      this.messages++;
      at += n;
    }
    return at - c.off;
  }
}

test('no garbage collection over 800k TCP segments: SIP messages over several segments each, in order, through the reassembler (bytes kept between segments)', async () => {
  // otus--sip-tcp-segmented.pcap's data segments (14 messages in 40 segments: most are kept for the
  // parser until their message is whole), replayed with sequence numbers moved on each pass.
  const rd = openCapture(join(FIXTURES, 'otus--sip-tcp-segmented.pcap'));
  const frames: Uint8Array[] = [];
  const dec = new Decoder();
  while (rd.next()) {
    const f = rd.frame;
    const p = dec.decodeBytes(f.buf, f.view, f.off, f.caplen, f.len, f.linkType, 0, 0, true);
    if (p.proto === 6 && p.payloadLen > 0) frames.push(f.buf.slice(f.off, f.off + f.caplen));
  }
  const views = frames.map((b) => new DataView(b.buffer));
  const seq0 = views.map((v) => v.getUint32(14 + 20 + 4));
  const fromCaller = views.map((v) => v.getUint16(14 + 20) === 5090);
  const perPass = [0, 0];
  frames.forEach((b, i) => (perPass[fromCaller[i] ? 0 : 1] += b.length - 14 - 20 - 32)); // Ethernet, IPv4, TCP with timestamps
  const framer = new SipFramer();
  const pl = new Pipeline({ decoder: new Decoder(), parsers: [framer], processors: [], unmatched: 'drop', encode: ENCODERS.json, sink: new OverwriteSink() });
  let pass = 0;
  const run = (passes: number): void => {
    for (let k = 0; k < passes; k++, pass++) {
      for (let i = 0; i < frames.length; i++) {
        views[i].setUint32(14 + 20 + 4, (seq0[i] + pass * perPass[fromCaller[i] ? 0 : 1]) >>> 0);
        pl.processBytes(frames[i], views[i], 0, frames[i].length, frames[i].length, 1, 1_700_000_000 + (pass >> 10), (pass & 1023) * 1000, true, 6);
      }
    }
  };
  await warmUp(() => run(2000));
  let messages = 0;
  const gcs = await fewestScavenges(() => {
    const before = framer.messages;
    run(20_000);
    messages = framer.messages - before;
  }, 1);
  assert.equal(messages, 20_000 * 14);
  const st = pl.reassembler!.stats;
  assert.equal(st.retransmissions + st.outOfOrder + st.gapsSkipped, 0);
  assert.ok(gcs <= 1, `${gcs} scavenges`);
});

test('no garbage collection over 500k frames: HTTP connections (the http fixtures, in a loop) through the reassembler and the http parser, records JSON-encoded', async () => {
  const frames: { buf: Uint8Array; view: DataView; linkType: number; sec: number; nsec: number }[] = [];
  for (const f of HTTP_FILES) {
    const rd = openCapture(join(FIXTURES, f));
    while (rd.next()) {
      const fr = rd.frame;
      const buf = fr.buf.slice(fr.off, fr.off + fr.caplen);
      frames.push({ buf, view: new DataView(buf.buffer), linkType: fr.linkType, sec: fr.tsSec, nsec: fr.tsNsec });
    }
  }
  const http = new HttpParser({ ports: [80, 1234], body_max: 1024, header_max: 16384 });
  const pl = new Pipeline({ decoder: new Decoder(), parsers: [http], processors: [], unmatched: 'drop', encode: ENCODERS.json, sink: new OverwriteSink() });
  // Each round ends every connection (flush), so the next one opens them again: connections, messages and blocks from the pools.
  const run = (rounds: number): void => {
    for (let r = 0; r < rounds; r++) {
      for (const f of frames) pl.processBytes(f.buf, f.view, 0, f.buf.length, f.buf.length, f.linkType, f.sec, f.nsec, true, 6);
      pl.flush();
    }
  };
  run(1);
  const perRound = http.stats.messages;
  await warmUp(() => run(20));
  const rounds = Math.ceil(500_000 / frames.length);
  let messages = 0;
  const gcs = await fewestScavenges(() => {
    const before = http.stats.messages;
    run(rounds);
    messages = http.stats.messages - before;
  }, 1);
  assert.equal(messages, rounds * perRound);
  assert.ok(perRound > 0);
  assert.ok(gcs <= 1, `${gcs} scavenges`);
});
