// YAML safety for the global configuration and task files: a size limit
// checked before parsing, an alias bomb refused as a coded error (quickly:
// never expanded), and messages that quote at most ~200 bytes of a value.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { loadGlobalConfig, parseGlobalConfig, reporterConfigFor } from '../../src/config/global.js';
import { loadTaskFile, parseTask } from '../../src/config/task.js';
import { MAX_FILE_BYTES } from '../../src/config/yaml.js';
import { OtusError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(os.tmpdir(), 'otus-limits-'));

function coded(fn: () => unknown, code: string, ...parts: (string | RegExp)[]): string {
  let msg = '';
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OtusError, `not an OtusError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.ok(typeof p === 'string' ? e.message.includes(p) : p.test(e.message), `"${e.message}" lacks ${String(p)}`);
    msg = e.message;
    return true;
  });
  return msg;
}

// 9 anchors of 9 aliases each, nested 9 deep: 9^9 nodes if expanded.
function aliasBomb(prefix: string, indent: string): string {
  const lines = [`${indent}a0: &a0 [x, x, x, x, x, x, x, x, x]`];
  for (let i = 1; i < 9; i++) lines.push(`${indent}a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]`);
  return `${prefix}\n${lines.join('\n')}\n`;
}

test('size limit: the default 1 MiB and the maxBytes option, for the global configuration and task files', () => {
  const pad = (n: number, head: string): string => head + '#'.repeat(n - head.length - 1) + '\n';
  const big = join(dir, 'big.yml');
  writeFileSync(big, pad(MAX_FILE_BYTES + 1, 'otus: {}\n'));
  coded(() => loadGlobalConfig(big), 'OTUS_ERR_CONFIG', `${big}: the configuration file is larger than 1048576 bytes`);
  writeFileSync(big, pad(MAX_FILE_BYTES, 'otus: {}\n'));
  assert.equal(loadGlobalConfig(big).file, big, 'exactly the limit is read');
  coded(() => loadGlobalConfig(big, { maxBytes: 4096 }), 'OTUS_ERR_CONFIG', 'larger than 4096 bytes');
  coded(() => parseGlobalConfig(pad(101, 'otus: {}\n'), 'text.yml', { maxBytes: 100 }), 'OTUS_ERR_CONFIG', 'text.yml: the configuration file is larger than 100 bytes');

  const task = join(dir, 'task.yml');
  writeFileSync(task, pad(MAX_FILE_BYTES + 1, 'task: {id: t}\n'));
  coded(() => loadTaskFile(task), 'OTUS_ERR_TASK', `${task}: the task file is larger than 1048576 bytes`);
  coded(() => loadTaskFile(task, { maxBytes: 200 }), 'OTUS_ERR_TASK', 'larger than 200 bytes');
  coded(() => parseTask(pad(300, 'task: {id: t}\n'), 't.yml', { maxBytes: 299 }), 'OTUS_ERR_TASK', 'larger than 299 bytes');
  assert.equal(parseTask(pad(300, 'task: {id: t}\n'), 't.yml', { maxBytes: 300 }).id, 't');

  // tasks_dir files obey the configuration's limit.
  const td = join(dir, 'tasks.d');
  mkdirSync(td);
  writeFileSync(join(td, 't.yml'), pad(3000, 'task: {id: t}\n'));
  const cfg = join(dir, 'otus.yml');
  writeFileSync(cfg, 'otus:\n  tasks_dir: tasks.d\n');
  assert.equal(loadGlobalConfig(cfg).tasks[0].id, 't');
  coded(() => loadGlobalConfig(cfg, { maxBytes: 2048 }), 'OTUS_ERR_CONFIG', `${join(td, 't.yml')}: the task file is larger than 2048 bytes, the most that is read (a boot task from otus.tasks_dir of ${cfg}:2)`);
});

test('an alias bomb is a coded error, for the global configuration and task files; a few aliases are fine', () => {
  const t0 = process.hrtime.bigint();
  coded(() => parseGlobalConfig(aliasBomb('otus:\n  reporters:\n    console:', '      '), 'bomb.yml'), 'OTUS_ERR_CONFIG', 'bomb.yml: aliases refused: they expand to more than 100 nodes');
  coded(() => parseTask(aliasBomb('task:\n  id: t\n  reporter:\n    type: console\n    config:', '      '), 'bomb-task.yml'), 'OTUS_ERR_TASK', 'bomb-task.yml: aliases refused: ');
  const file = join(dir, 'bomb-task.yml');
  writeFileSync(file, aliasBomb('task:\n  id: t\n  reporter:\n    type: console\n    config:', '      '));
  coded(() => loadTaskFile(file), 'OTUS_ERR_TASK', `${file}: aliases refused`);
  // Refused before anything grew: well under a second even on a busy machine.
  assert.ok(process.hrtime.bigint() - t0 < 2_000_000_000n);
  // An alias to an anchor that is not there.
  coded(() => parseTask('task:\n  id: *nope\n', 'a.yml'), 'OTUS_ERR_TASK', 'a.yml: not valid YAML: Unresolved alias');
  const g = parseGlobalConfig('otus:\n  reporters:\n    file: &common {acks: all}\n    kafka: *common\n', 'ok.yml');
  assert.deepEqual(g.reporters, { file: { acks: 'all' }, kafka: { acks: 'all' } });
});

test('messages quote at most about 200 bytes of an offending value', () => {
  const long = 'x'.repeat(5000);
  for (const msg of [
    coded(() => parseGlobalConfig(`otus:\n  node:\n    ip: ${long}\n`, 'c.yml'), 'OTUS_ERR_CONFIG', 'c.yml:3: otus.node.ip: "xxx', '…" is not an IPv4'),
    coded(() => parseGlobalConfig(`otus:\n  node:\n    hostname: "\${${long}"\n`, 'c.yml'), 'OTUS_ERR_CONFIG', 'c.yml:3: otus.node.hostname: "${xxx', 'has no closing'),
    coded(() => parseGlobalConfig(`otus:\n  node:\n    hostname: "\${-${long}}"\n`, 'c.yml'), 'OTUS_ERR_CONFIG', 'is not ${NAME}'),
    coded(() => parseGlobalConfig(`otus:\n  node:\n    hostname: "\${${long}}"\n`, 'c.yml'), 'OTUS_ERR_CONFIG', 'environment variable xxx', 'is not set'),
    coded(() => reporterConfigFor(parseGlobalConfig('', 'c.yml'), parseTask(`task: {id: t, reporter: {type: ${long}}}`, 't.yml')), 'OTUS_ERR_TASK', 't.yml:1: task.reporter.type'),
    coded(() => parseTask(`task: {id: t, capture: {driver: ${long}}}`, 't.yml'), 'OTUS_ERR_TASK', 't.yml:1: task.capture.driver: must be one of'),
    coded(() => parseTask(`task:\n  id: t\n  "${long}": 1\n`, 't.yml'), 'OTUS_ERR_TASK', 't.yml:3'),
  ]) {
    assert.ok(Buffer.byteLength(msg) < 600, `${Buffer.byteLength(msg)} bytes: ${msg.slice(0, 300)}`);
  }
});
