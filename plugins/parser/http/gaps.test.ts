// HTTP over TCP with segments lost: real captures (zeek, PcapPlusPlus;
// provenance in test/fixtures/captures/PROVENANCE.md) with frames removed by
// editcap, each result checked against tshark on the same file. A header
// block a hole cut is dropped, never joined to the bytes after the hole;
// every message tshark finds is there, at the capture time of its first
// byte; a message otus reports that tshark does not is one whose body the
// hole cut (complete: false), its header block whole.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AGG, FIXTURES, frameTimes, type JsonRecord } from '../../../test/helpers/parser-golden.js';
import { runParsers, tsharkRows, tsKey, wiresharkToolsMissing, withoutFrames } from '../../../test/helpers/tcp-gaps.js';
import { HttpParser } from './index.js';

const skip = wiresharkToolsMissing();
const http = (): HttpParser => new HttpParser({ ports: [80, 1234], body_max: 1024, header_max: 16384 });

/** A message: first byte's capture time, ports, start (method and URI, or status). */
function keyOf(r: JsonRecord): string {
  return `${tsKey(r.ts)}:${r.flow.sport}:${r.flow.dport} ${r.labels['http.method'] ?? ''} ${r.labels['http.uri'] ?? ''}${r.labels['http.status'] ?? ''}`;
}

/** tshark's HTTP messages, keyed as keyOf (the first byte: the first of tcp.segment for a reassembled one). */
function tsharkHttp(file: string): string[] {
  const times = frameTimes(file);
  const out: string[] = [];
  const fields = ['tcp.srcport', 'tcp.dstport', 'http.request.method', 'http.request.uri', 'http.response.code', 'tcp.segment'];
  for (const [frame, sport, dport, methods, uris, codes, segments] of tsharkRows(file, 'http.request || http.response', fields, ['-d', 'tcp.port==1234,http'])) {
    const u = uris.split(AGG);
    const starts = methods !== '' ? methods.split(AGG).map((m, k) => `${m} ${u[k]}`) : codes.split(AGG).map((c) => ` ${c}`);
    starts.forEach((s, k) => {
      const first = k === 0 && segments !== '' ? Number(segments.split(AGG)[0]) : Number(frame);
      out.push(`${times.get(first)}:${sport}:${dport} ${s}`);
    });
  }
  return out;
}

// [file, frames removed, what is lost]
const EDITS: [string, number[], string][] = [
  ['zeek--http-11-request-then-cruft.pcap', [6], 'the second segment of a request header block (before: joined to the cruft after it)'],
  ['zeek--http-pipelined-requests.pcap', [4], 'a whole request: the next one after the hole'],
  ['zeek--http-pipelined-requests.pcap', [6], 'a pipelined request'],
  ['zeek--http-pipelined-requests.pcap', [7], "a response's first segment: its header block"],
  ['zeek--http-pipelined-requests.pcap', [9], 'the middle of a response body'],
  ['zeek--http-pipelined-requests.pcap', [9, 14, 22], 'three holes, both directions'],
  ['zeek--http-100-continue.pcap', [8], 'the middle of a request body'],
  ['PcapPlusPlus--three_http_streams.pcap', [17], "a direction's first segment (no hole: it starts at the next)"],
];

test('HTTP with a segment lost (editcap): no header block joined across the hole; every message tshark has, at its first byte; the others cut short', { skip: skip ?? false }, () => {
  const wholes = new Map<string, Map<string, JsonRecord>>();
  for (const [name, frames, what] of EDITS) {
    const original = join(FIXTURES, name);
    let whole = wholes.get(name);
    if (whole === undefined) {
      whole = new Map(runParsers(original, [http()]).records.map((r) => [keyOf(r), r]));
      wholes.set(name, whole);
    }
    const file = withoutFrames(original, frames);
    const { records, pipeline } = runParsers(file, [http()]);
    const label = `${name} without ${frames.join(', ')} (${what})`;
    for (const r of records) {
      const w = whole.get(keyOf(r));
      assert.ok(w !== undefined, `${label}: a message the capture does not have: ${keyOf(r)} ${JSON.stringify(r.payload.headers)}`);
      assert.deepEqual(r.payload.headers, w.payload.headers, `${label}: ${keyOf(r)} headers`);
    }
    const got = new Set(records.map(keyOf));
    const want = tsharkHttp(file);
    for (const k of want) assert.ok(got.has(k), `${label}: tshark's ${k} missing; otus has ${[...got].join(', ')}`);
    for (const r of records) if (!want.includes(keyOf(r))) assert.equal(r.payload.complete, false, `${label}: ${keyOf(r)} is not in tshark's, so it must be cut short`);
    assert.equal(pipeline.reassembler!.stats.gapsSkipped >= 1, !what.startsWith("a direction's first"), label);
  }
});

test('HTTP: a header block cut by a hole is dropped and counted, not emitted', { skip: skip ?? false }, () => {
  const { records, pipeline } = runParsers(withoutFrames(join(FIXTURES, 'zeek--http-11-request-then-cruft.pcap'), [6]), [http()]);
  assert.deepEqual(records.map((r) => r.labels['http.method'] ?? r.labels['http.status']), ['301', '400']);
  const st = pipeline.reassembler!.stats;
  assert.equal(st.keptDropped, 1);
  assert.equal(st.keptBytesDropped, 15, "the request line kept from the first segment: 'GET / HTTP/1.1\\n'");
});
