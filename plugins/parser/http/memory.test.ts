// The http parser's memory (pool.ts, max_held_bytes): connections through
// the real pipeline and its reassembler, several at once. A message takes
// blocks as it needs them (a header block larger than one block, a body
// grown block by block) and gives them back at its end; a connection that
// has sent only part of a header block has no state in the parser; over
// max_held_bytes the least recently active connections' messages are
// dropped (counted), their bodies skipped by their framing, and the
// connections go on with their next messages.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder } from '../../../src/decode/decoder.js';
import { defaultDecoderOptions } from '../../../src/decode/options.js';
import { ENCODERS } from '../../../src/pipeline/codec.js';
import { Pipeline } from '../../../src/pipeline/pipeline.js';
import { MemorySink } from '../../../src/pipeline/sink.js';
import { BUFFER_COST } from '../../../src/reassembly/tcp-stream.js';
import { tcpFrame } from '../../../test/helpers/bytes.js';
import { createRegistry } from '../../../src/plugin/builtins.js';
import { OtusError } from '../../../src/util/errors.js';
import { DEFAULT_MAX_HELD_BYTES, HttpParser, MESSAGE_COST } from './index.js';
import { BlockPool, MIN_BLOCK } from './pool.js';

/** Client connections to port 80, each from its own port, each direction's bytes cut into segments of at most 1400. */
class Clients {
  readonly sink = new MemorySink();
  readonly pl: Pipeline;
  private t = 0;
  private readonly seq = new Map<number, number>();
  constructor(readonly parser: HttpParser) {
    this.pl = new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers: [parser], processors: [], unmatched: 'drop', encode: ENCODERS.json, sink: this.sink });
  }
  /** `port`'s bytes (client → server; a negative port: server → client port -port). */
  send(port: number, s: string): void {
    const b = Buffer.from(s, 'latin1');
    for (let i = 0; i < b.length; i += 1400) {
      const seq = this.seq.get(port) ?? 1000;
      const part = b.subarray(i, Math.min(b.length, i + 1400));
      const f = port > 0 ? tcpFrame(port, 80, seq, 0x18, part, 80) : tcpFrame(80, -port, seq, 0x18, part, 80);
      const ms = this.t++; // a millisecond apart: no connection times out
      this.pl.processBytes(f, new DataView(f.buffer), 0, f.length, f.length, 1, 1_700_000_000 + Math.floor(ms / 1000), (ms % 1000) * 1e6, true, 6);
      this.seq.set(port, seq + part.length);
    }
  }
  records(): any[] {
    return this.sink.records().map((r) => JSON.parse(Buffer.from(r).toString('utf8')));
  }
  counters(): Record<string, number> {
    return this.parser.counters() as Record<string, number>;
  }
}

test('the block pool: power-of-two blocks from MIN_BLOCK up, reused, counted, free ones kept up to their bound', () => {
  const pool = new BlockPool(3 * MIN_BLOCK);
  const a = pool.take(1);
  const b = pool.take(MIN_BLOCK + 1);
  const c = pool.take(5000);
  assert.deepEqual([a.length, b.length, c.length], [MIN_BLOCK, 2 * MIN_BLOCK, 8192]);
  assert.equal(pool.held, MIN_BLOCK + 2 * MIN_BLOCK + 8192 + 3 * BUFFER_COST);
  pool.give(b);
  pool.give(c); // over idleMax: left to the GC
  pool.give(a);
  assert.deepEqual([pool.held, pool.idle], [0, 3 * MIN_BLOCK]);
  assert.equal(pool.take(400), b, 'the free block of that size is reused');
  assert.notEqual(pool.take(8000), c);
});

test('a header block larger than one block and a body over several: parsed whole (up to header_max), the blocks given back at the end', () => {
  const p = new HttpParser({ ports: [80], body_max: 5000, header_max: 16384 });
  const net = new Clients(p);
  const fields = Array.from({ length: 60 }, (_, i) => [`X-Field-${i}`, `${i}-${'v'.repeat(250)}`]);
  const head = `POST /big HTTP/1.1\r\nHost: example.com\r\n${fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}Content-Length: 8000\r\n\r\n`;
  assert.ok(head.length > 15_000 && head.length < 16_384);
  const body = Array.from({ length: 8000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
  net.send(40001, head + body.slice(0, 300));
  const c = net.counters();
  // In progress: one message, its header block in a 16 KiB block and 300 body bytes in the smallest that holds them.
  assert.deepEqual([c.open_connections, c.open_messages], [1, 1]);
  assert.equal(c.open_message_bytes, MESSAGE_COST + 16384 + BUFFER_COST + 2 * MIN_BLOCK + BUFFER_COST);
  net.send(40001, body.slice(300));
  const [r] = net.records();
  assert.deepEqual(r.payload.headers, [['Host', 'example.com'], ...fields, ['Content-Length', '8000']]);
  assert.deepEqual([r.payload.body_len, r.payload.body, r.payload.body_truncated, r.payload.complete], [8000, body.slice(0, 5000), true, true]);
  assert.deepEqual([net.counters().open_messages, net.counters().open_message_bytes, p.pool.held], [0, 0, 0]);
  // A small message after it takes small blocks.
  net.send(40001, 'PUT /small HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345');
  assert.equal(net.counters().open_message_bytes, MESSAGE_COST + MIN_BLOCK + BUFFER_COST + MIN_BLOCK + BUFFER_COST);
  net.send(40001, '67890');
  assert.equal(net.records()[1].payload.body, '1234567890');
  assert.equal(net.counters().open_message_bytes_max, MESSAGE_COST + 16384 + 8192 + 2 * BUFFER_COST, 'the big body grew to the block that holds body_max');
});

test('a connection that has sent part of a header block has no state in the parser', () => {
  const p = new HttpParser({ ports: [80], body_max: 1024, header_max: 16384 });
  const net = new Clients(p);
  for (let i = 0; i < 100; i++) net.send(41000 + i, 'GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\n');
  assert.deepEqual([net.counters().open_connections, net.counters().open_message_bytes_max], [0, 0]);
  assert.ok(net.pl.reassembler!.stats.bytesHeld > 0, 'the reassembler holds them');
  net.send(41007, '\r\n');
  assert.equal(net.records()[0].labels['http.uri'], '/index.html');
  assert.equal(net.counters().open_connections, 1, 'a request awaiting its response');
});

test('over max_held_bytes the least recently active connections lose their messages in progress (counted, no record); their framing goes on', () => {
  const MAX = 65536;
  const p = new HttpParser({ ports: [80], body_max: 8192, header_max: 16384, max_held_bytes: MAX });
  const net = new Clients(p);
  const N = 20;
  const head = (i: number): string => `POST /up/${i} HTTP/1.1\r\nHost: example.com\r\nContent-Length: 20000\r\n\r\n`;
  for (let i = 0; i < N; i++) {
    net.send(42000 + i, head(i) + 'a'.repeat(9000));
    assert.ok(net.counters().open_message_bytes <= MAX, `held ${net.counters().open_message_bytes} after connection ${i}`);
  }
  const c = net.counters();
  // Each message holds MESSAGE_COST, a 256-byte header block and an 8 KiB body block (with their objects): 5 fit.
  const each = MESSAGE_COST + MIN_BLOCK + 8192 + 2 * BUFFER_COST;
  const kept = Math.floor(MAX / each);
  assert.deepEqual([c.open_messages, c.evicted_memory, c.open_connections], [kept, N - kept, N]);
  assert.ok(c.open_message_bytes_max <= MAX + each);
  // Least recently active, not oldest: the oldest kept one sends more, then a new connection's message pushes out the next one's.
  const oldest = N - kept;
  net.send(42000 + oldest, 'c'.repeat(100));
  net.send(42000 + N, head(N) + 'a'.repeat(9000));
  assert.equal(net.counters().evicted_memory, N - kept + 1);
  // The rest of every body, then another request on every connection.
  for (let i = 0; i <= N; i++) net.send(42000 + i, 'b'.repeat(i === oldest ? 10900 : 11000) + 'GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n');
  const recs = net.records();
  const posts = recs.filter((r) => r.labels['http.method'] === 'POST');
  const expected = [oldest, ...Array.from({ length: kept - 2 }, (_, k) => oldest + 2 + k), N].map((i) => `/up/${i}`);
  assert.deepEqual(posts.map((r) => r.labels['http.uri']), expected, 'the most recently active kept their messages');
  for (const r of posts) assert.deepEqual([r.payload.body_len, r.payload.complete], [20000, true]);
  assert.equal(recs.filter((r) => r.labels['http.uri'] === '/next').length, N + 1, 'every connection parses its next request: the dropped bodies were skipped by their Content-Length');
  assert.equal(p.stats.bytesSkipped, (N - kept + 1) * 11000, 'the rest of each dropped body');
  assert.deepEqual([net.counters().open_messages, p.pool.held], [0, 0]);
  assert.equal(net.counters().evicted_memory, N - kept + 1, 'finished messages are not counted as evicted');
});

test('max_held_bytes in the task config: 64 MiB by default, at least 65536', async () => {
  const r = await createRegistry();
  const ctx = { node: { hostname: 'edge-1' }, taskId: 't', worker: 0, where: 'task.yml: parsers[0]' };
  const p = (await r.instantiate('parser', 'http', {}, ctx)) as HttpParser;
  assert.equal(p.pool.held, 0);
  await assert.rejects(r.instantiate('parser', 'http', { max_held_bytes: 1000 }, ctx), (e: unknown) => e instanceof OtusError && e.code === 'OTUS_ERR_PLUGIN_CONFIG' && e.message.includes('max_held_bytes'));
  const q = (await r.instantiate('parser', 'http', { max_held_bytes: 65536, body_max: 0 }, ctx)) as HttpParser;
  const net = new Clients(q);
  for (let i = 0; i < 30; i++) net.send(43000 + i, `POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n`);
  assert.equal(net.counters().evicted_memory, 30 - Math.floor(65536 / (MESSAGE_COST + MIN_BLOCK + BUFFER_COST)), 'the configured bound is the one kept');
  assert.equal(DEFAULT_MAX_HELD_BYTES, 64 << 20);
});
