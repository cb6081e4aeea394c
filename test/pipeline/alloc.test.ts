// The fast path allocates nothing per packet: decode → test parser (labels
// from strings and bytes, as a registry hit would) → filter and label
// processors → JSON or protobuf encode → sink, 2M packets after warm-up; and
// the capture process's way: wire records into a batch (one subarray per
// 32 KiB batch is its only allocation) → ring.
// Any allocation of 16 bytes or more per packet would fill the young
// generation several times over; we allow at most one scavenge (young
// garbage the test harness left before the loop). Major/incremental GCs are
// not counted: they follow old-generation growth from setup (ajv, the test
// runner), which a loop that never allocates in the young space cannot cause.
// (Standalone, `node --trace-gc` shows no GC at all over 4M packets.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openCapture } from '../../src/capture-file/open.js';
import { Decoder } from '../../src/decode/decoder.js';
import type { DecodedPacket } from '../../src/decode/packet.js';
import { BatchSink } from '../../src/pipeline/batch-sink.js';
import { ENCODERS, wireEncoder } from '../../src/pipeline/codec.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import type { OutputRecord } from '../../src/pipeline/record.js';
import type { RecordSink } from '../../src/pipeline/sink.js';
import { createRegistry } from '../../src/plugin/builtins.js';
import type { Parser } from '../../src/plugin/types.js';
import type { RecordFormat } from '../../src/plugin/types.js';
import { L4Payload } from '../../src/pipeline/unmatched.js';
import { scavengesDuring, warmUp } from '../helpers/gc.js';
import { SAMPLE } from './helpers.js';

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
  const before = pl.stats.records;
  const gcs = await scavengesDuring(() => {
    run(2_000_000);
    pl.flush();
  });
  if (batch) assert.equal(batch.droppedRecords, 0);
  return { gcs, records: pl.stats.records - before };
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
