// `npm start`, the README's first command: the daemon on its defaults, one
// task on lo, the quick start's own SIP and DNS traffic out as records, and
// the task's summary; nothing left running or in /dev/shm afterwards.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const QUICKSTART = fileURLToPath(new URL('../../scripts/quickstart.js', import.meta.url));
const root = process.getuid?.() === 0;

test('npm start: records of the quick start calls and queries, then the summary', { skip: root ? false : 'needs root: the task captures on lo' }, async () => {
  const p = spawn(process.execPath, [QUICKSTART], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((res) => p.on('exit', res));
  assert.equal(code, 0, err);
  const records = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { protocol: string; labels: Record<string, string> });
  const calls = records.filter((r) => r.protocol === 'sip').map((r) => r.labels['sip.call-id']).sort();
  assert.deepEqual(calls, ['quickstart-0', 'quickstart-1', 'quickstart-2', 'quickstart-3', 'quickstart-4']);
  assert.equal(records.filter((r) => r.protocol === 'dns' && r.labels['dns.query'] === 'otus.example').length, 5);
  assert.match(err, /task quickstart: lo \(af_packet_v3\).*stopped: stopped by request/);
  assert.deepEqual(readdirSync('/dev/shm').filter((e) => e.startsWith('otus-quickstart.')), []);
});
