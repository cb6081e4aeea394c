// `senders: 2` in a task: two send rings, two sender processes appending to
// one output file. The records are those of `senders: 1` (as a multiset: the
// two senders interleave), each flow's records keep their capture order
// (capture process i writes ring i mod senders, and a flow is one capture
// process's), and the summary's per-sender figures add up to its totals.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writePcap } from '../helpers/live.js';
import { FIXTURES, OTUS, replay, type Rec } from '../helpers/otus-replay.js';
import { udpFrame } from '../helpers/udp-frames.js';
import { spawnSync } from 'node:child_process';

const dir = mkdtempSync(join(tmpdir(), 'otus-senders-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const task = (senders: number): string => `task:
  id: senders-${senders}
  senders: ${senders}
  parsers: [{plugin: sip}, {plugin: rtp}, {plugin: rtcp}]
  unmatched_policy: forward
`;

/** 40 flows of 500 datagrams each, interleaved, each carrying its flow and sequence number. */
function flows(): string {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 20000; i++) frames.push(udpFrame(`10.7.0.${i % 40}`, '10.8.0.1', 41000 + (i % 40), 7777, `flow ${i % 40} seq ${Math.floor(i / 40)}`));
  const file = join(dir, 'flows.pcap');
  writePcap(file, frames);
  return file;
}

const key = (r: Rec): string => JSON.stringify(r);

test('senders: 2 gives the records of senders: 1, each flow in capture order, and per-sender figures that add up', () => {
  const files = [flows(), join(FIXTURES, 'rtpproxy--dtmf.pcapng'), join(FIXTURES, 'suricata-verify--sip-sdp.pcap')];
  const one = replay(task(1), files, 3);
  const two = replay(task(2), files, 3);
  assert.ok(one.records.length > 20000, `records: ${one.records.length}`);
  assert.equal(two.records.length, one.records.length);
  assert.deepEqual(two.records.map(key).sort(), one.records.map(key).sort(), 'the same records');

  // Per flow (both directions), the capture timestamps never go backwards in the output.
  const last = new Map<string, string>();
  let checked = 0;
  for (const r of two.records) {
    const f = r.flow;
    const id = [`${f.src}:${f.sport}`, `${f.dst}:${f.dport}`].sort().join('-') + `/${f.proto}`;
    const prev = last.get(id);
    if (prev !== undefined) {
      assert.ok(prev <= r.ts, `flow ${id}: ${r.ts} after ${prev}`);
      checked++;
    }
    last.set(id, r.ts);
  }
  assert.ok(checked > 19000, `records checked for order: ${checked}`);

  const st = two.stats;
  assert.equal(st.senders.length, 2);
  for (const s of st.senders) assert.ok(s.records > 0, `sender ${s.index} read records: ${JSON.stringify(s)}`);
  const sum = (k: string): number => st.senders.reduce((a: number, s: Record<string, number>) => a + s[k]!, 0);
  assert.equal(sum('records'), st.sender.records);
  assert.equal(sum('acked'), st.reporter.acked);
  assert.equal(st.sender.records, one.stats.sender.records);
  // The accounting invariant, summed over senders: every record committed was written.
  assert.equal(st.reporter.acked, st.records);
  assert.equal(sum('in_flight'), 0);
});

test('senders: more senders than capture processes, or sharing standard output, is refused before anything runs', () => {
  const t = join(dir, 'task.yml');
  writeFileSync(t, task(3));
  const r = spawnSync(process.execPath, [OTUS, 'replay', '--task', t, '--workers', '2', '--out', join(dir, 'x.ndjson'), join(FIXTURES, 'suricata-verify--sip-sdp.pcap')], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /task\.senders: 3 senders for 2 capture process\(es\).*\[OTUS_ERR_BAD_ARGUMENT\]/);
  writeFileSync(t, task(2));
  const c = spawnSync(process.execPath, [OTUS, 'replay', '--task', t, '--workers', '2', '--out', '-', join(FIXTURES, 'suricata-verify--sip-sdp.pcap')], { encoding: 'utf8' });
  assert.equal(c.status, 2, c.stderr);
  assert.match(c.stderr, /task\.senders: 2 senders would interleave their lines on one standard output.*\[OTUS_ERR_CONFIG\]/);
});

test('senders: 2 into rotating files: each sender has its own prefix, and every record is in exactly one completed file', () => {
  const out = join(dir, 'rotating');
  mkdirSync(out, { mode: 0o700 });
  const t = join(dir, 'rotating.yml');
  writeFileSync(t, task(2) + `  reporter: {type: file, config: {dir: ${out}, max_bytes: 262144, keep: 1000}}\n`);
  const r = spawnSync(process.execPath, [OTUS, 'replay', '--task', t, '--workers', '2', flows()], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const names = readdirSync(out);
  assert.deepEqual(names.filter((n) => n.startsWith('.')), [], 'no temporary file left');
  const first = names.filter((n) => /^otus-senders-2-\d{8}T/.test(n));
  const second = names.filter((n) => n.startsWith('otus-senders-2-s1-'));
  assert.ok(first.length > 0 && second.length > 0, `files: ${names.join(' ')}`);
  assert.equal(first.length + second.length, names.length);
  const lines = names.flatMap((n) => readFileSync(join(out, n), 'utf8').split('\n').filter(Boolean));
  assert.equal(lines.length, 20000);
  assert.equal(new Set(lines).size, 20000, 'no record twice');
});

test('senders: 2 with per-call pcap files is refused: a call may reach both senders', () => {
  const t = join(dir, 'percall.yml');
  writeFileSync(t, task(2) + `  raw: true\n  reporter: {type: pcap, config: {dir: ${dir}, per_call: true}}\n`);
  const r = spawnSync(process.execPath, [OTUS, 'replay', '--task', t, '--workers', '2', join(FIXTURES, 'suricata-verify--sip-sdp.pcap')], { encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /task\.senders: 2 senders would split a call's files.*\[OTUS_ERR_CONFIG\]/);
});
