// Golden test: `otus replay` with the http parser over real captures
// (zeek, PcapPlusPlus, gopacket, packetnet; provenance in
// test/fixtures/captures/PROVENANCE.md), cross-checked with tshark's
// http.request.method, http.request.uri, http.host, http.user_agent and
// http.response.code on every HTTP message tshark reports, joined by the
// capture time of the message's first byte (the first of tshark's
// tcp.segment frames when it was reassembled) and the ports.
// Skips, saying why, without tshark.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { HTTP_FILES } from './fixtures.js';
import { AGG, FIXTURES, byKey, firstByteKey, frameTimes, recordKey, replay, tsharkFields, tsharkMissing, type JsonRecord } from '../../../test/helpers/parser-golden.js';


interface Known {
  file: string;
  /** The tshark frame that has a message otus has not there. */
  frame: number;
  /** The record otus has elsewhere instead (join key), if any. */
  recordKey?: string;
  reason: string;
}
// None left: messages a close completes (or cuts short) are emitted at the stream's end, as tshark reports them at the FIN.
const KNOWN: Known[] = [];

const TASK = `task:
  id: http-golden
  parsers:
    - plugin: http
      config: {ports: [80, 1234]}
  unmatched_policy: drop
`;

const skip = tsharkMissing();

test('http labels agree with tshark on every HTTP message of the fixtures', { skip: skip ?? false }, () => {
  const paths = HTTP_FILES.map((f) => join(FIXTURES, f));
  const { records, stats } = replay(TASK, paths);
  const recs = byKey(records);
  const used = new Set<JsonRecord>();
  const problems: string[] = [];
  const hit = new Set<Known>();
  let messages = 0;
  for (let i = 0; i < HTTP_FILES.length; i++) {
    const rows = tsharkFields(paths[i], 'http.request || http.response', ['http.request.method', 'http.request.uri', 'http.host', 'http.user_agent', 'http.response.code', 'tcp.segment'], ['-d', 'tcp.port==1234,http'], 'a');
    const times = frameTimes(paths[i]);
    for (const row of rows) {
      const methods = row.f[0] === '' ? [] : row.f[0].split(AGG);
      const codes = row.f[4] === '' ? [] : row.f[4].split(AGG);
      // A frame may end several messages (pipelining): tshark lists them in order, as otus emits them.
      // The first may have been reassembled (its first byte in tcp.segment's first frame); the others start in this frame.
      const expect = methods.length > 0 ? methods.map((m, k) => ({ 'http.method': m, 'http.uri': row.f[1].split(AGG)[k] })) : codes.map((c) => ({ 'http.status': c }));
      for (const [k, exp] of expect.entries()) {
        messages++;
        const list = recs.get(k === 0 ? firstByteKey(row, row.f[5], times) : row.key) ?? [];
        const rec = list.find((r) => !used.has(r) && Object.entries(exp).every(([k, v]) => r.labels[k] === v));
        if (!rec) {
          const k = KNOWN.find((x) => x.file === HTTP_FILES[i] && x.frame === row.frame);
          if (k) hit.add(k);
          else problems.push(`${HTTP_FILES[i]} frame ${row.frame}: no record with ${JSON.stringify(exp)} (records there: ${JSON.stringify(list.map((r) => r.labels))})`);
          continue;
        }
        used.add(rec);
        if (methods.length === 1) {
          if (row.f[2] !== '' && rec.labels['http.host'] !== row.f[2]) problems.push(`${HTTP_FILES[i]} frame ${row.frame}: host ${rec.labels['http.host']} vs ${row.f[2]}`);
          if (row.f[3] !== '' && rec.labels['http.user-agent'] !== row.f[3]) problems.push(`${HTTP_FILES[i]} frame ${row.frame}: user-agent ${rec.labels['http.user-agent']} vs ${row.f[3]}`);
        }
      }
    }
  }
  for (const r of records) {
    if (used.has(r)) continue;
    const k = KNOWN.find((x) => x.recordKey === recordKey(r));
    if (k) hit.add(k);
    else problems.push(`record tshark has no message for: ${recordKey(r)} ${JSON.stringify(r.labels)}`);
  }
  assert.deepEqual(problems, []);
  assert.equal(hit.size, KNOWN.length);
  assert.ok(messages >= 40, `${messages} messages`);
  assert.equal(stats.parsers.http.records, records.length);
});
