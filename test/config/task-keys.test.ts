// Task keys that turn on a parser's outputs (docs/task-format.md, "sip" and
// "rtp"): `rtp: {stats: ...}` sets the rtp parser's `stats`, as
// `sip: {calls: true}` sets the sip parser's `calls`; a coded error names the
// key when the parser is missing or its own config says otherwise.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseTask } from '../../src/config/task.js';
import { replay, ROOT } from '../helpers/otus-replay.js';

test('rtp.stats in the task sets the rtp parser\'s stats; without an rtp parser, or against its own stats, a coded error names the key', () => {
  const spec = parseTask('task:\n  id: t\n  parsers: [{plugin: sip}, {plugin: rtp}]\n  rtp: {stats: {interval: 5, per_packet: false}}\n', 't.yml');
  assert.deepEqual(spec.parsers.find((p) => p.plugin === 'rtp')!.config.stats, { interval: 5, per_packet: false });
  assert.equal(spec.parsers.find((p) => p.plugin === 'sip')!.config.stats, undefined);
  assert.throws(
    () => parseTask('task:\n  id: t\n  parsers: [{plugin: sip}]\n  rtp: {stats: {interval: 5}}\n', 't.yml'),
    (e: { code?: string; message: string }) => e.code === 'OTUS_ERR_TASK' && /t\.yml:4: task\.rtp\.stats: stream statistics need the rtp parser in task\.parsers/.test(e.message),
  );
  assert.throws(
    () => parseTask('task:\n  id: t\n  parsers: [{plugin: rtp, config: {stats: {interval: 10}}}]\n  rtp: {stats: {interval: 5}}\n', 't.yml'),
    (e: { code?: string; message: string }) => e.code === 'OTUS_ERR_TASK' && /task\.rtp\.stats: is \{"interval":5\}, but task\.parsers\[0\]\.config\.stats is \{"interval":10\}/.test(e.message),
  );
  assert.throws(() => parseTask('task:\n  id: t\n  parsers: [{plugin: rtp}]\n  rtp: {stats: {every: 5}}\n', 't.yml'), (e: { code?: string }) => e.code === 'OTUS_ERR_TASK');
});

test('rtp.stats in the task gives rtp.stats records on a replay', () => {
  const task = 'task:\n  id: t\n  parsers: [{plugin: sip}, {plugin: rtp, config: {heuristic: true}}]\n  rtp: {stats: {interval: 10}}\n  unmatched_policy: drop\n';
  const { records } = replay(task, [join(ROOT, 'samples/rtp-g711a.pcap')]);
  const stats = records.filter((r) => r.protocol === 'rtp.stats');
  assert.ok(stats.length >= 1, `protocols: ${[...new Set(records.map((r) => r.protocol))].join(' ')}`);
  const none = replay(task.replace('  rtp: {stats: {interval: 10}}\n', ''), [join(ROOT, 'samples/rtp-g711a.pcap')]);
  assert.equal(none.records.filter((r) => r.protocol === 'rtp.stats').length, 0);
});
