// The writer lock the flow registry and the media table share
// (src/shm/segment.ts lockWriter): free → held; a holder that is gone →
// taken over (the caller mends); a live holder → busy after the budget;
// re-entry → an error.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Lock, lockWriter } from '../../src/shm/segment.js';

test('lockWriter: held when free, taken over from a dead holder, busy after its budget on a live one, refuses re-entry', () => {
  const i32 = new Int32Array(new SharedArrayBuffer(16));
  assert.equal(lockWriter(i32, 1, 20, 't'), Lock.Held);
  assert.equal(i32[1], process.pid);
  assert.throws(() => lockWriter(i32, 1, 20, 't'), /t: writer lock re-entered/);

  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  i32[2] = Number(gone.stdout);
  assert.equal(lockWriter(i32, 2, 20, 't'), Lock.TookOver);
  assert.equal(i32[2], process.pid);

  i32[3] = process.ppid; // alive while this test runs
  const t0 = Date.now();
  assert.equal(lockWriter(i32, 3, 20, 't'), Lock.Busy);
  assert.ok(Date.now() - t0 >= 20, 'waited its budget');
  assert.equal(i32[3], process.ppid, 'left to its holder');
});
