// `otus capture --workers N` forks one pinned capture process per worker, so N
// is bounded by the CPUs the process may run on: beyond that, a coded error
// before anything is forked (it once forked hundreds, printed Node-internal
// traces and never exited).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { allowedCpus } from '../../src/capture/index.js';
import { OTUS } from '../pipeline/helpers.js';

function capture(args: string[], prefix: string[] = []): { status: number | null; stderr: string; ms: number } {
  const t0 = performance.now();
  const cmd = [...prefix, process.execPath, OTUS, 'capture', ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr, ms: performance.now() - t0 };
}

test('--workers beyond the allowed CPUs: exit 2 with the limit named, nothing forked, no trace', () => {
  const n = allowedCpus().length;
  for (const args of [
    ['-i', 'lo', '--workers', '999', '--duration', '5'],
    ['-i', 'lo', '--workers', String(n + 1), '--duration', '5'],
    ['-i', 'lo', '--workers', '999', '--driver', 'xdp'],
  ]) {
    const r = capture(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^otus: --workers \\d+: at most ${n}, one capture process per CPU this process may run on \\(CPUs [0-9,-]+; .*\\) \\[OTUS_ERR_BAD_ARGUMENT\\]\\n$`));
    assert.ok(r.ms < 10_000, `${args.join(' ')}: exited after ${r.ms.toFixed(0)} ms`);
  }
});

test('the bound follows the affinity mask the process was started with', (t) => {
  if (spawnSync('sh', ['-c', 'command -v taskset']).status !== 0) {
    t.skip('needs taskset (util-linux)');
    return;
  }
  const r = capture(['-i', 'lo', '--workers', '2', '--duration', '5'], ['taskset', '-c', String(allowedCpus()[0])]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--workers 2: at most 1, .*\(CPUs \d+;/);
});
