// The pipeline's TCP branch on real captures: a parser declaring TCP ports
// gets, per connection and direction, exactly the bytes tshark's
// "follow tcp" shows; other TCP and all UDP still go through canHandle.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { openCapture } from '../../src/capture-file/open.js';
import { Decoder } from '../../src/decode/decoder.js';
import type { DecodedPacket } from '../../src/decode/packet.js';
import { defaultDecoderOptions } from '../../src/decode/options.js';
import { ENCODERS } from '../../src/pipeline/codec.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import type { OutputRecord } from '../../src/pipeline/record.js';
import { MemorySink } from '../../src/pipeline/sink.js';
import type { RecordEmitter, StreamParser } from '../../src/plugin/types.js';
import type { TcpChunk } from '../../src/reassembly/tcp-stream.js';
import { FIXTURES } from './helpers.js';

class Follow implements StreamParser {
  readonly protocol = 'follow';
  readonly tcp: { ports: number[] };
  readonly bytes = new Map<number, [string, string]>();
  ended: number[] = [];
  canHandleCalls = 0;
  constructor(ports: number[]) {
    this.tcp = { ports };
  }
  canHandle(_p: DecodedPacket): boolean {
    this.canHandleCalls++;
    return false;
  }
  handle(_p: DecodedPacket, _o: OutputRecord): boolean {
    return false;
  }
  handleStream(c: TcpChunk, out: RecordEmitter): number {
    const e = this.bytes.get(c.streamId) ?? ['', ''];
    e[c.dir] += Buffer.from(c.buf.subarray(c.off, c.off + c.len)).toString('hex');
    this.bytes.set(c.streamId, e);
    // One record per chunk, to see that emit() reaches the sink.
    out.record.reset();
    out.record.fillEnvelope(c.packet, c.hasTs, c.tsDigits);
    out.record.protocol = 'follow';
    out.record.payload = { type: 'follow', writeJson: (b, o) => ((b[o] = 110), (b[o + 1] = 117), (b[o + 2] = 108), (b[o + 3] = 108), o + 4), binarySize: () => 0, writeBinary: (_b, o) => o };
    out.emit();
    return c.len;
  }
  streamEnd(id: number): void {
    this.ended.push(id);
  }
}

function tsharkFollow(file: string): [string, string][] {
  const conv = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'tcp.stream'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const ids = [...new Set(conv.split('\n').filter(Boolean))];
  return ids.map((id) => {
    const out = execFileSync('tshark', ['-r', file, '-q', '-z', `follow,tcp,raw,${id}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 });
    const body = out.split('\n').filter((l) => /^\t?[0-9a-f]+$/.test(l));
    let a = '';
    let b = '';
    for (const l of body) if (l.startsWith('\t')) b += l.trim();
    else a += l.trim();
    return [a, b];
  });
}

for (const [name, ports] of [
  ['suricata-verify--sip-body-large.pcap', [5060]],
  ['suricata-verify--sip-tcp-method.pcap', [5060]],
  ['suricata-verify--sip-tcp-pattern-matching.pcap', [5062, 5555]],
  ['PcapPlusPlus--sip_resp.pcap', [5060, 5054, 51806]],
] as const) {
  test(`${name}: each direction's bytes equal tshark's follow tcp`, () => {
    const file = join(FIXTURES, name);
    const parser = new Follow([...ports]);
    const sink = new MemorySink();
    const pl = new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers: [parser], processors: [], unmatched: 'forward', encode: ENCODERS.json, sink });
    const r = openCapture(file);
    while (r.next()) pl.processFrame(r.frame);
    pl.flush();
    const want = tsharkFollow(file)
      .filter(([a, b]) => a + b !== '')
      .map((x) => x.sort().join('|'))
      .sort();
    const got = [...parser.bytes.values()].map((x) => x.sort().join('|')).sort();
    assert.ok(want.length >= 1);
    assert.deepEqual(got, want);
    const st = pl.reassembler!.stats;
    assert.equal(st.bytesHeld, 0);
    assert.equal(st.active, 0, 'flush ends every connection');
    assert.equal(parser.ended.length, st.streams);
    // Records went through emit(); counted under the parser; frames accounted for.
    assert.equal(pl.stats.parserRecords[0], sink.count - pl.stats.unmatchedForwarded);
    assert.ok(pl.stats.streamSegments > 0);
  });
}
