// What a task's processes are sized by: task.capture.buffer_bytes becomes the
// af_packet_v3 ring's block count and libpcap's buffer (the command line's
// --block-count wins), and capture processes run with V8's young generation
// capped (an operator's own flag kept), the sender without.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { planLiveTask } from '../../src/supervisor/live.js';
import { captureExecArgv, checkTask } from '../../src/supervisor/task-run.js';
import { liveSkipReason, tempDir } from '../helpers/live.js';

test('capture processes get --max-semi-space-size=1 unless one is given', () => {
  assert.deepEqual(captureExecArgv(['--enable-source-maps']), ['--enable-source-maps', '--max-semi-space-size=1']);
  assert.deepEqual(captureExecArgv(['--max-semi-space-size=8']), ['--max-semi-space-size=8']);
});

const skip = liveSkipReason();
test('task.capture.buffer_bytes sizes the capture ring; --block-count overrides it', { skip: skip ?? false }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const plan = async (buffer: number | null, blockCount?: number) => {
    const file = join(dir, `t-${buffer}-${blockCount}.yml`);
    writeFileSync(file, `task:\n  id: sizes\n  capture: {interface: lo${buffer === null ? '' : `, buffer_bytes: ${buffer}`}}\n`);
    const checked = await checkTask(file, [], { hostname: 'test' }, '/dev/null');
    return planLiveTask(checked, {
      iface: null,
      driver: null,
      workers: 1,
      cpus: 'off',
      node: { hostname: 'test' },
      settings: { heartbeatMs: 1000, watchdogMs: 5000, stopTimeoutMs: 5000, restart: null },
      ...(blockCount === undefined ? {} : { capture: { blockCount } }),
    }).capture;
  };
  const def = await plan(null);
  assert.equal(def.blockCount * def.blockSize, 32 << 20);
  const small = await plan(8 << 20);
  assert.equal(small.blockCount, 8);
  assert.equal(small.bufferBytes, 8 << 20);
  assert.equal((await plan(8 << 20, 4)).blockCount, 4);
  // Less than two blocks would leave the kernel nowhere to write while one is read.
  assert.equal((await plan(1 << 20)).blockCount, 2);
});
