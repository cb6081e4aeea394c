// `otus replay` end to end: real capture processes, the shared-memory ring
// and the sender. 1 and 2 workers give the same set of records on the
// sample and every fixture capture; the flow hash keeps both directions of
// a flow on one process; errors come out coded, before anything is forked.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DecodedPacket } from '../../src/decode/packet.js';
import { symmetricFlowHash } from '../../src/pipeline/flow-hash.js';
import { assignFrames } from '../../src/supervisor/replay.js';
import { openCapture } from '../../src/capture-file/open.js';
import type { PcapReader } from '../../src/capture-file/pcap.js';
import { writePcap } from '../helpers/live.js';
import { udpFrame } from '../helpers/udp-frames.js';
import { FIXTURES, OTUS, SAMPLE, allCaptures } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'otus-replay-'));
const TASK = join(dir, 'task.yml');
writeFileSync(
  TASK,
  `task:
  id: replay-test
  capture: {driver: pcap, interface: none, workers: 3}
  processors:
    - plugin: label
      config: {labels: {env: test}, node_metadata: false}
    - plugin: filter
      config:
        rules: [{label: env, values: [prod], action: drop}]
  unmatched_policy: forward
`,
);

function replay(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [OTUS, 'replay', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function lines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

test('1 and 2 workers give the same set of records, and the summary adds up', () => {
  const files = allCaptures();
  const out1 = join(dir, 'w1.ndjson');
  const out2 = join(dir, 'w2.ndjson');
  // Fixtures the reader cannot read to their end (an unsupported pcapng section, a cut tail): replayed up to there, exit 3.
  const incomplete = files.filter((f) => {
    const r = openCapture(f);
    while (r.next());
    return r.endReason !== null;
  });
  assert.ok(incomplete.length > 0, 'some fixtures end early');
  const r1 = replay(['--task', TASK, '--workers', '1', '--out', out1, '--stats-json', join(dir, 's1.json'), ...files]);
  assert.equal(r1.status, 3, r1.stderr);
  const r2 = replay(['--task', TASK, '--workers', '2', '--out', out2, '--stats-json', join(dir, 's2.json'), ...files]);
  assert.equal(r2.status, 3, r2.stderr);
  const a = lines(out1);
  const b = lines(out2);
  assert.ok(a.length > 700, `${a.length} records`);
  assert.deepEqual([...b].sort(), [...a].sort());
  for (const l of a.slice(0, 5)) assert.equal(JSON.parse(l).labels.env, 'test');

  const s1 = JSON.parse(readFileSync(join(dir, 's1.json'), 'utf8'));
  const s2 = JSON.parse(readFileSync(join(dir, 's2.json'), 'utf8'));
  assert.equal(s1.workers, 1);
  assert.equal(s2.workers, 2);
  assert.equal(s2.capture_processes.length, 2);
  assert.ok(s2.capture_processes.every((c: { frames: number }) => c.frames > 0), 'both processes got frames');
  for (const s of [s1, s2]) {
    assert.deepEqual(s.incomplete_files.map((f: { file: string }) => f.file), incomplete);
    assert.equal(s.records, a.length);
    assert.equal(s.sender.records, a.length);
    const d = s.drops;
    // Every frame is accounted for: a record, or a counted drop, or a held fragment.
    assert.equal(s.frames, s.records + d.decode + d.filter + d.unmatched + d.parser_no_output + d.encode + d.ring_tail + s.held_fragments + Object.values(d.processors as Record<string, number>).reduce((x, y) => x + y, 0));
    assert.equal(d.ring_tail + d.ring_head + d.ring_abandoned + d.sender_expand, 0);
    assert.equal(s.sender.payload_unread, 0);
    assert.ok(s.pps_per_capture_cpu_s > 0);
  }
  assert.equal(s1.frames, s2.frames);
  assert.deepEqual(s1.decode_errors, s2.decode_errors);
  assert.match(r2.stderr, /packets per capture-process CPU-second: /);
  assert.match(r2.stderr, /capture process 1: \d+ frames/);
});

test('--out - writes NDJSON to stdout; task.capture.workers is the default', () => {
  const r = replay(['--task', TASK, '--out', '-', SAMPLE]);
  assert.equal(r.status, 0, r.stderr);
  const recs = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(recs.length, 230);
  assert.match(r.stderr, /3 capture process\(es\)/);
  assert.deepEqual(Object.keys(recs[0]), ['ts', 'protocol', 'flow', 'network', 'labels', 'payload']);
});

test('the task reporter writes protobuf when configured', () => {
  const out = join(dir, 'records.pb');
  const task = join(dir, 'pb.yml');
  writeFileSync(task, `task:\n  id: pb\n  reporter:\n    type: file\n    config: {path: ${JSON.stringify(out)}, format: protobuf}\n`);
  const r = replay(['--task', task, '--workers', '2', SAMPLE]);
  assert.equal(r.status, 0, r.stderr);
  // Length-delimited: walk the varint prefixes.
  const b = readFileSync(out);
  let n = 0;
  for (let o = 0; o < b.length; n++) {
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const x = b[o++];
      len += (x & 127) * 2 ** shift;
      if (x < 128) break;
    }
    o += len;
    assert.ok(o <= b.length);
  }
  assert.equal(n, 230);
});

test('errors are coded and happen before forking: bad plugin config, unknown plugin, bad task, throwing third-party init', () => {
  const bad = join(dir, 'bad.yml');
  writeFileSync(bad, 'task:\n  id: bad\n  processors:\n    - plugin: filter\n      config: {default: maybe}\n');
  let r = replay(['--task', bad, '--out', join(dir, 'x'), SAMPLE]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad.yml:5: task.processors\[0\].config.default: must be one of "drop", "pass" \[OTUS_ERR_PLUGIN_CONFIG\]/);

  writeFileSync(bad, 'task:\n  id: bad\n  reporter: {type: amqp}\n');
  r = replay(['--task', bad, SAMPLE]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad.yml:3: task.reporter.type: no reporter plugin named "amqp" .*\[OTUS_ERR_PLUGIN_NOT_FOUND\]/);

  writeFileSync(bad, 'task:\n  id: bad\n  unmatched_policy: maybe\n');
  r = replay(['--task', bad, SAMPLE]);
  assert.match(r.stderr, /bad.yml:3: task.unmatched_policy: must be one of .*\[OTUS_ERR_TASK\]/);

  const plugins = join(dir, 'plugins');
  spawnSync('mkdir', ['-p', plugins]);
  writeFileSync(
    join(plugins, 'flaky.mjs'),
    `export default { meta: { name: 'flaky', version: '1.0.0', kind: 'processor', labels: [], configSchema: { type: 'object' } }, init() { throw new Error('cannot reach CMDB'); } };\n`,
  );
  writeFileSync(bad, 'task:\n  id: bad\n  processors: [{plugin: flaky}]\n');
  r = replay(['--task', bad, '--plugin-dir', plugins, SAMPLE]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /processor plugin "flaky" \(.*flaky.mjs\): init failed: cannot reach CMDB \[OTUS_ERR_PLUGIN_INIT\]/);
  assert.ok(!readdirSync('/dev/shm').some((f) => f.startsWith('otus-bad')), 'no ring segment left behind');
});

test('the flow hash is symmetric and spreads flows; fragments of a datagram stay together', () => {
  const p = new DecodedPacket();
  p.ipVersion = 4;
  p.proto = 17;
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    p.src4 = (10 << 24) | i;
    p.dst4 = (192 << 24) | 7;
    p.sport = 5000 + i;
    p.dport = 5060;
    const h = symmetricFlowHash(p);
    [p.src4, p.dst4, p.sport, p.dport] = [p.dst4, p.src4, p.dport, p.sport];
    assert.equal(symmetricFlowHash(p), h);
    seen.add(h % 4);
  }
  assert.equal(seen.size, 4);
  // A held fragment (no ports) and the frame completing the datagram (ports known) hash alike.
  p.held = true;
  p.sport = -1;
  p.dport = -1;
  const held = symmetricFlowHash(p);
  p.held = false;
  p.fragmented = true;
  p.sport = 1234;
  p.dport = 53;
  assert.equal(symmetricFlowHash(p), held);

  // The sample is one RTP flow (2006→2008) and one RTCP packet: the 229 RTP frames share an owner.
  const shares = assignFrames([SAMPLE], 4)[0];
  assert.ok(shares.every((s) => s.frames === 230));
  const counts = shares.map((s) => s.index!.length).sort((x, y) => y - x);
  assert.ok(counts[0] >= 229, `owners spread: ${counts}`);
  // One process: every frame, no list.
  assert.deepEqual(assignFrames([SAMPLE], 1)[0], [{ frames: 230, index: null, offset: null }]);
});

test('frame shares: every frame has one owner, and each pcap offset is where its record starts (lists past their first growth)', () => {
  const file = join(dir, 'many-flows.pcap');
  const frames = Array.from({ length: 5000 }, (_, i) => udpFrame(`10.0.${(i >> 8) & 255}.${i & 255}`, '10.9.0.1', 1024 + (i % 700), 5000, new Uint8Array(i % 50)));
  writePcap(file, frames);
  const shares = assignFrames([file, SAMPLE], 3);
  const mine = shares[0];
  assert.deepEqual(mine.flatMap((s) => Array.from(s.index!)).sort((x, y) => x - y), Array.from({ length: 5000 }, (_, i) => i));
  assert.ok(mine.some((s) => s.index!.length > 1024), 'a share grew');
  const r = openCapture(file) as PcapReader;
  for (const s of mine) {
    assert.equal(s.offset!.length, s.index!.length);
    for (let j = 0; j < s.index!.length; j += 37) {
      r.seek(s.offset![j]);
      assert.ok(r.next());
      assert.deepEqual(r.frame.buf.subarray(r.frame.off, r.frame.off + r.frame.caplen), frames[s.index![j]]);
    }
  }
  // pcapng: walked, so no offsets.
  const ng = readdirSync(FIXTURES).find((f) => f.endsWith('.pcapng'))!;
  assert.ok(assignFrames([join(FIXTURES, ng)], 2)[0].every((s) => s.offset === null && s.index !== null));
});
