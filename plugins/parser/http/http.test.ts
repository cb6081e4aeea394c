// http parser unit tests: synthetic TCP connections through the real
// pipeline and its reassembler (segments cut anywhere), and handleStream
// directly for gaps. Pipelining, HEAD and 304 responses without bodies,
// chunked bodies with extensions and trailers, Content-Length bodies over
// several segments, body truncation at body_max, obs-fold and
// case-insensitive header names, 101 and CONNECT tunnels, rejections.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder } from '../../../src/decode/decoder.js';
import { defaultDecoderOptions } from '../../../src/decode/options.js';
import { ENCODERS } from '../../../src/pipeline/codec.js';
import { OutputRecord } from '../../../src/pipeline/record.js';
import { Pipeline } from '../../../src/pipeline/pipeline.js';
import { MemorySink } from '../../../src/pipeline/sink.js';
import type { RecordEmitter } from '../../../src/plugin/types.js';
import { TcpChunk } from '../../../src/reassembly/tcp-stream.js';
import { tcpFrame as tcpFrameTo } from '../../../test/helpers/bytes.js';
import { HttpParser } from './index.js';

const tcpFrame = (sport: number, dport: number, seq: number, flags: number, payload: ArrayLike<number>): Uint8Array =>
  tcpFrameTo(sport, dport, seq, flags, payload, 80);

/** One connection: the client's bytes, then the server's (a server answers what it has read), each cut into segments of `cut` bytes. */
function run(parser: HttpParser, client: string, server: string, cut: number): any[] {
  const sink = new MemorySink();
  const pl = new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers: [parser], processors: [], unmatched: 'drop', encode: ENCODERS.json, sink });
  const feed = (f: Uint8Array, t: number): void => pl.processBytes(f, new DataView(f.buffer), 0, f.length, f.length, 1, t, 0, true, 6);
  let t = 1000;
  feed(tcpFrame(40000, 80, 100, 0x02, new Uint8Array(0)), t++);
  feed(tcpFrame(80, 40000, 900, 0x12, new Uint8Array(0)), t++);
  const c = Buffer.from(client, 'latin1');
  const s = Buffer.from(server, 'latin1');
  let ci = 0;
  let si = 0;
  while (ci < c.length) {
    const n = Math.min(cut, c.length - ci);
    feed(tcpFrame(40000, 80, 101 + ci, 0x18, c.subarray(ci, ci + n)), t++);
    ci += n;
  }
  while (si < s.length) {
    const n = Math.min(cut, s.length - si);
    feed(tcpFrame(80, 40000, 901 + si, 0x18, s.subarray(si, si + n)), t++);
    si += n;
  }
  pl.flush();
  return sink.records().map((r) => JSON.parse(Buffer.from(r).toString('utf8')));
}

const cfg = { ports: [80], body_max: 16, header_max: 4096 };

const CLIENT =
  'GET /a?x=1 HTTP/1.1\r\nHost: example.com\r\nuser-AGENT: curl/8\r\n  folded-on\r\n\r\n' +
  'HEAD /b HTTP/1.1\r\nHost: example.com\r\n\r\n' +
  'POST /c HTTP/1.0\r\nHOST: api.example\r\nContent-Length: 20\r\n\r\n0123456789abcdefghij' +
  'GET /d HTTP/1.1\r\nHost: example.com\r\n\r\n';
const SERVER =
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n' +
  'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' + // HEAD: no body
  'HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc' +
  'HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n';

for (const cut of [1, 7, 64, 4096]) {
  test(`pipelined requests and responses, segments of ${cut} bytes`, () => {
    const p = new HttpParser(cfg);
    const recs = run(p, CLIENT, SERVER, cut);
    const req = recs.filter((r) => r.payload.type === 'request');
    const resp = recs.filter((r) => r.payload.type === 'response');
    assert.deepEqual(req.map((r) => [r.labels['http.method'], r.labels['http.uri'], r.labels['http.host']]), [
      ['GET', '/a?x=1', 'example.com'],
      ['HEAD', '/b', 'example.com'],
      ['POST', '/c', 'api.example'],
      ['GET', '/d', 'example.com'],
    ]);
    assert.equal(req[0].labels['http.user-agent'], 'curl/8\r\n  folded-on', 'obs-fold continues the value');
    assert.deepEqual([req[2].payload.body_len, req[2].payload.body, req[2].payload.body_truncated, req[2].payload.version], [20, '0123456789abcdef', true, '1.0']);
    assert.deepEqual(resp.map((r) => r.labels['http.status']), ['200', '200', '201', '304']);
    assert.deepEqual([resp[0].payload.chunked, resp[0].payload.body, resp[0].payload.body_len, resp[0].payload.complete], [true, 'hello world', 11, true]);
    assert.equal(resp[1].payload.body_len, 0, 'a response to HEAD has no body');
    assert.equal(resp[2].payload.body, 'abc');
    assert.equal(resp[3].payload.body_len, 0, '304 has no body');
    assert.deepEqual(resp[0].payload.headers, [['Transfer-Encoding', 'gzip, chunked']]);
    assert.equal(p.stats.responses, 4);
    assert.equal(p.stats.bodyBytesTruncated, 4);
    assert.deepEqual(p.stats.toJSON().rejected, {});
  });
}

test('101 Switching Protocols and CONNECT 2xx: the rest of the connection is skipped, counted', () => {
  const p = new HttpParser(cfg);
  const recs = run(p, 'GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n\x81\x05hello', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi', 5);
  assert.deepEqual(recs.map((r) => r.labels['http.method'] ?? r.labels['http.status']), ['GET', '101']);
  assert.equal(p.stats.bytesSkipped, 4, "the server's WebSocket frame after the 101");
  const q = new HttpParser(cfg);
  const t = run(q, 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03\x01\x00\x05hello', 'HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03', 1000);
  assert.deepEqual(t.map((r) => r.labels['http.method'] ?? r.labels['http.status']), ['CONNECT', '200']);
  assert.equal(t[1].payload.body_len, 0);
});

test('rejections by reason: not HTTP, bad Content-Length, bad chunk size, header too long', () => {
  const p = new HttpParser({ ports: [80], body_max: 16, header_max: 256 });
  assert.equal(run(p, 'SSH-2.0-OpenSSH_9.0\r\n' + 'x'.repeat(40), '', 100).length, 0);
  assert.equal(run(p, 'POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', '', 100).length, 0);
  const r = run(p, 'GET / HTTP/1.1\r\n\r\n', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 100);
  assert.equal(r.length, 1);
  assert.equal(run(p, 'GET /' + 'a'.repeat(400) + ' HTTP/1.1\r\n\r\n', '', 50).length, 0);
  assert.deepEqual(p.stats.toJSON().rejected, { not_http: 1, bad_content_length: 1, bad_chunk: 1, header_too_long: 1 });
});

test('a gap ends the open message (emitted incomplete) and the direction resynchronises at a start line', () => {
  const p = new HttpParser(cfg);
  const out: RecordEmitter & { recs: any[] } = {
    record: new OutputRecord(),
    recs: [],
    emit(): boolean {
      const buf = new Uint8Array(1 << 16);
      const n = ENCODERS.json(this.record, buf, 0, buf.length);
      this.recs.push(JSON.parse(Buffer.from(buf.subarray(0, n)).toString('utf8')));
      const pb = new Uint8Array(1 << 16);
      assert.equal(this.record.payload!.writeBinary(pb, 0, pb.length), this.record.payload!.binarySize());
      return true;
    },
  };
  const c = new TcpChunk();
  c.packet.ipVersion = 4;
  c.streamId = 7;
  c.dir = 1;
  const send = (s: string, gap: boolean): number => {
    c.buf = Buffer.from(s, 'latin1');
    c.off = 0;
    c.len = c.buf.length;
    c.gap = gap;
    return p.handleStream(c, out);
  };
  assert.equal(send('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst', false), 45, 'headers and the body bytes so far are consumed');
  send('middle of something', true);
  assert.deepEqual([out.recs.length, out.recs[0].payload.complete, out.recs[0].payload.body], [1, false, 'first']);
  send('still lost', false);
  send('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', false);
  assert.deepEqual(out.recs.map((r) => r.labels['http.status']), ['200', '404']);
  assert.equal(p.stats.gaps, 1);
  assert.equal(p.stats.incomplete, 1);
  assert.equal(p.stats.bytesSkipped, 'middle of something'.length + 'still lost'.length);
  p.streamEnd(7, c, out);
  assert.equal(p.counters().open_connections, 0);
});
