// Fuzz: 1 M mutated segments of the real HTTP connections in the fixture
// captures, fed as byte streams (random cuts, occasional gaps, pooled
// connections ended and reused) through handleStream. No exception escapes,
// no chunk is slow when run again, the heap stays bounded, every record's
// JSON is valid and within its end, protobuf sizes are exact, the counters
// add up (every record a request or a response; rejections by reason), and
// every message and block is back in its pool at the end.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OutputRecord } from '../../../src/pipeline/record.js';
import type { RecordEmitter } from '../../../src/plugin/types.js';
import { TcpChunk } from '../../../src/reassembly/tcp-stream.js';
import { FIXTURES } from '../../../test/helpers/parser-golden.js';
import { Rng, checkPayloadWriters, mutate, seedsFrom } from '../../../test/helpers/parser-fuzz.js';
import { HttpParser } from './index.js';
import { HTTP_FILES } from './fixtures.js';

const N = 1_000_000;

test(`fuzz: ${N} mutated HTTP segments in streams`, { timeout: 600_000 }, () => {
  const seeds = seedsFrom(HTTP_FILES.map((f) => join(FIXTURES, f)), (p) => p.proto === 6 && (p.sport === 80 || p.dport === 80));
  assert.ok(seeds.length > 100, `${seeds.length} seeds`);
  // Runs start at a segment that starts a message, as a connection does.
  const starts = seeds.map((s, i) => (/^(HTTP\/1\.|[A-Z]+ )/.test(Buffer.from(s.subarray(0, 8)).toString('latin1')) ? i : -1)).filter((i) => i >= 0);
  assert.ok(starts.length > 40, `${starts.length} message starts`);
  const parser = new HttpParser({ ports: [80], body_max: 256, header_max: 8192 });
  const out = new Uint8Array(1 << 20);
  const pb = new Uint8Array(1 << 18);
  const rng = new Rng(0xbeef);
  let emitted = 0;
  let checked = 0;
  const emitter: RecordEmitter = {
    record: new OutputRecord(),
    emit(): boolean {
      emitted++;
      const p = this.record.payload!;
      const limit = (emitted & 7) === 3 ? 16 + rng.int(4000) : out.length - 64;
      const end = checkPayloadWriters(p, out, pb, limit, `record ${emitted}`);
      if (end > 0 && (emitted & 15) === 0) {
        const j = JSON.parse(Buffer.from(out.subarray(0, end)).toString('utf8'));
        assert.ok(j.type === 'request' || j.type === 'response');
        checked++;
      }
      return true;
    },
  };
  const chunk = new TcpChunk();
  const stream = new Uint8Array(1 << 18);
  const seg = new Uint8Array(1 << 16);
  let segments = 0;
  let maxMs = 0;
  let slow = { buf: new Uint8Array(0), dir: 0 };
  const heap0 = process.memoryUsage().heapUsed;
  for (let sid = 0; segments < N; sid++) {
    // One connection direction: a run of consecutive seeds (one connection's segments), each mutated.
    let len = 0;
    const first = starts[rng.int(starts.length)];
    const count = 1 + rng.int(12);
    for (let k = 0; k < count && segments < N; k++, segments++) {
      const s = seeds[(first + k) % seeds.length];
      const n = rng.int(4) === 0 ? mutate(rng, s, seeds[rng.int(seeds.length)], seg) : (seg.set(s), s.length);
      if (len + n > stream.length) break;
      stream.set(seg.subarray(0, n), len);
      len += n;
    }
    chunk.streamId = sid;
    chunk.dir = rng.int(2);
    chunk.buf = stream;
    let off = 0;
    let kept = 0;
    while (off < len) {
      const cut = Math.min(len - off, 1 + rng.int(1500));
      chunk.off = off - kept;
      chunk.len = kept + cut;
      chunk.gap = rng.int(100) === 0;
      const t0 = performance.now();
      const used = parser.handleStream(chunk, emitter);
      const dt = performance.now() - t0;
      if (dt > maxMs) {
        maxMs = dt;
        slow = { buf: stream.slice(chunk.off, chunk.off + chunk.len), dir: chunk.dir };
      }
      assert.ok(used >= 0 && used <= chunk.len, `stream ${sid}: consumed ${used} of ${chunk.len}`);
      kept = chunk.len - used;
      if (kept > 1 << 17) kept = 0; // the reassembler's per-stream bound would drop these (with a gap)
      off += cut;
    }
    parser.streamEnd(sid, chunk, emitter);
  }
  const heapGrowth = process.memoryUsage().heapUsed - heap0;
  const st = parser.stats;
  assert.equal(st.messages, emitted);
  assert.equal(st.requests + st.responses, st.messages);
  assert.ok(st.requests > 1000 && st.responses > 1000, JSON.stringify(parser.counters()));
  assert.ok(st.rejected.reduce((a, b) => a + b, 0) > 0, 'some directions rejected, by reason');
  assert.ok(checked > 1000);
  assert.equal(parser.counters().open_connections, 0, 'streamEnd forgets every connection');
  assert.deepEqual([parser.counters().open_messages, parser.pool.held], [0, 0], 'every message and block went back to the pools');
  const again: number[] = [];
  const c2 = new TcpChunk();
  for (let k = 0; k < 21; k++) {
    c2.streamId = 1e9 + k;
    c2.dir = slow.dir;
    c2.buf = slow.buf;
    c2.off = 0;
    c2.len = slow.buf.length;
    const t0 = performance.now();
    parser.handleStream(c2, emitter);
    again.push(performance.now() - t0);
    parser.streamEnd(c2.streamId, c2, emitter);
  }
  again.sort((a, b) => a - b);
  assert.ok(again[10] < 5, `slowest chunk (${maxMs.toFixed(1)} ms) takes ${again[10].toFixed(3)} ms again`);
  assert.ok(heapGrowth < 64 << 20, `heap grew ${heapGrowth} bytes`);
  console.log(`# http fuzz: ${segments} segments, ${JSON.stringify(parser.counters())}, slowest ${maxMs.toFixed(2)} ms, heap +${(heapGrowth / 1048576).toFixed(1)} MiB`);
});
