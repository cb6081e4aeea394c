// A test process killed mid-file never runs its after() hook: its broker
// (scripts/kafka.sh with OTUS_KAFKA_OWNER, set by test/helpers/kafka.ts)
// is killed and its state directory removed when the process is gone,
// rather than left running for the rest of the suite and beyond.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { waitForAsync } from '../helpers/live.js';
import { kafkaSkipReason } from '../helpers/kafka.js';

const skip = kafkaSkipReason();
const CHILD = join(fileURLToPath(new URL('.', import.meta.url)), '../helpers/broker-owner-child.js');
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('a broker whose test process is SIGKILLed is killed and its state removed', { skip: skip ?? false }, async () => {
  const child = spawn(process.execPath, [CHILD], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  assert.ok(await waitForAsync(async () => out.includes('\n') || child.exitCode !== null, 180_000), 'the child started its broker');
  const { state } = JSON.parse(out) as { state: string };
  const pid = Number(/^pid=(\d+)$/m.exec(readFileSync(join(state, 'state'), 'utf8'))![1]);
  assert.ok(alive(pid), 'the broker runs');
  child.kill('SIGKILL');
  assert.ok(await waitForAsync(async () => !alive(pid), 30_000), `broker ${pid} still runs 30 s after its owner was killed`);
  assert.ok(await waitForAsync(async () => !existsSync(state), 10_000), `${state} left behind`);
});
