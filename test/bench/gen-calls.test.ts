// The call generator (bench/gen-calls.ts): N copies of a call, each its own
// Call-ID, addresses, media ports and SSRCs; tshark reads the file as SIP,
// SDP and RTP; `otus replay` labels every RTP packet with its own call.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { callTemplate, generateCalls } from '../../bench/gen-calls.js';
import { tempDir } from '../helpers/live.js';

const OTUS = fileURLToPath(new URL('../../src/cli/otus.js', import.meta.url));
const CALLS = 40;
const RTP = 6;

test('generated calls: distinct Call-IDs, readable by tshark, RTP labelled with its call by otus replay', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const pcap = join(dir, 'calls.pcap');
  const perCall = callTemplate(RTP).length;
  const g = generateCalls(pcap, { calls: CALLS, rampUs: 1000, template: callTemplate(RTP) });
  assert.equal(g.frames, CALLS * perCall);

  const task = join(dir, 'task.yml');
  writeFileSync(task, 'task:\n  id: gen\n  parsers:\n    - plugin: sip\n    - plugin: rtp\n');
  const out = join(dir, 'out.ndjson');
  const r = spawnSync(process.execPath, [OTUS, 'replay', '--task', task, '--out', out, pcap], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const recs = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { protocol: string; flow: { src: string; dst: string; sport: number; dport: number }; labels: Record<string, string> });
  assert.equal(recs.length, g.frames);
  const rtp = recs.filter((x) => x.protocol === 'rtp');
  assert.equal(rtp.length, CALLS * RTP * 2);
  // The call each media endpoint was announced for, from the SIP records' Call-IDs and the RTP flows' addresses.
  const callOf = new Map<string, string>();
  for (const x of rtp) {
    const id = x.labels['call-id'];
    assert.ok(id, `RTP ${x.flow.src}:${x.flow.sport} has no call-id`);
    const prev = callOf.get(x.flow.src);
    if (prev !== undefined) assert.equal(id, prev, `${x.flow.src} labelled with two calls`);
    callOf.set(x.flow.src, id);
  }
  const ids = new Set(callOf.values());
  assert.equal(ids.size, CALLS, 'every call has its own Call-ID on its RTP');
  assert.equal(new Set(rtp.map((x) => x.labels['rtp.ssrc'])).size, CALLS * 2, 'every stream has its own SSRC');

  const tshark = spawnSync('tshark', ['-v'], { encoding: 'utf8' });
  if (tshark.error) {
    t.diagnostic(`tshark check skipped: tshark not installed (${tshark.error.message})`);
    return;
  }
  const ts = spawnSync('tshark', ['-r', pcap, '-Y', 'sip', '-T', 'fields', '-e', 'sip.Call-ID', '-e', 'sdp.media.port'], { encoding: 'utf8' });
  assert.equal(ts.status, 0, ts.stderr);
  const lines = ts.stdout.trim().split('\n');
  assert.equal(lines.length, CALLS * (perCall - 2 * RTP), 'tshark reads every SIP message');
  assert.equal(new Set(lines.map((l) => l.split('\t')[0])).size, CALLS);
  assert.deepEqual(new Set(ids), new Set(lines.map((l) => l.split('\t')[0])));
  // SDP ports as rewritten: 2 per call, all distinct.
  const ports = lines.map((l) => l.split('\t')[1]).filter((p) => p);
  assert.equal(new Set(ports).size, CALLS * 2);
});
