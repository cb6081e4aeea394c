// What a task's processes are sized by: task.capture.buffer_bytes becomes the
// af_packet_v3 ring's block count and libpcap's buffer (the command line's
// --block-count wins), capture processes run with V8's young generation
// capped (an operator's own flag kept), the sender at 4 MiB, and `otus daemon`
// holds its own at the initial size and runs its code unoptimised.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import type { CaptureOptions } from '../../src/capture/capturer.js';
import { planLiveTask } from '../../src/supervisor/live.js';
import { captureExecArgv, checkTask, senderExecArgv } from '../../src/supervisor/task-run.js';
import { LEAN_FLAGS, leanFlags } from '../../src/supervisor/young-generation.js';
import { liveSkipReason, tempDir } from '../helpers/live.js';

test('capture processes get --max-semi-space-size=1 and a larger inlining budget, each unless one is given', () => {
  const inline = '--max-inlined-bytecode-size-cumulative=4000';
  assert.deepEqual(captureExecArgv(['--enable-source-maps']), ['--enable-source-maps', '--max-semi-space-size=1', inline]);
  assert.deepEqual(captureExecArgv(['--max-semi-space-size=8']), ['--max-semi-space-size=8', inline]);
  assert.deepEqual(captureExecArgv(['--max-inlined-bytecode-size-cumulative=500']), ['--max-inlined-bytecode-size-cumulative=500', '--max-semi-space-size=1']);
});

test("the sender drops the supervisor's young-generation flags, keeps the others and gets a 4 MiB semi-space", () => {
  const given = ['--enable-source-maps', '--max-semi-space-size=1', '--semi-space-growth-factor=1', '--min-semi-space-size=1', '--stack-size=2000'];
  assert.deepEqual(senderExecArgv(given), ['--enable-source-maps', '--stack-size=2000', '--max-semi-space-size=4']);
  assert.deepEqual(senderExecArgv([]), ['--max-semi-space-size=4']);
});

// The new space's size after a burst of short-lived garbage, in a node process
// given `flags`, that starts as `otus ARGS` does (src/cli/heap.ts first; with
// -e, argv has no script, so one stands in).
function youngGenerationAfterBurst(flags: string[], args: string[]): number {
  const heap = new URL('../../src/cli/heap.js', import.meta.url).href;
  const script = `await import(${JSON.stringify(heap)});
    const keep = [];
    for (let r = 0; r < 100; r++) { for (let i = 0; i < 100000; i++) { const o = { i, a: [i] }; if (i % 50 === 0) keep.push(o); } if (keep.length > 100000) keep.length = 0; }
    const v8 = await import('node:v8');
    process.stdout.write(String(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size));`;
  return Number(execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script, '--', 'otus.js', ...args], { encoding: 'utf8' }));
}

test('otus daemon keeps its young generation at the initial semi-space; other commands and an operator\'s flag are left alone', () => {
  const held = youngGenerationAfterBurst([], ['daemon', '--config', 'x.yml']);
  const grown = youngGenerationAfterBurst([], ['replay', 'x.pcap']);
  const operator = youngGenerationAfterBurst(['--max-semi-space-size=8'], ['daemon']);
  assert.ok(held <= 2 * 1024 * 1024, `daemon: new space ${held} bytes`);
  assert.ok(grown > 4 * 1024 * 1024, `replay: new space ${grown} bytes`);
  assert.ok(operator > 4 * 1024 * 1024, `daemon with --max-semi-space-size=8: new space ${operator} bytes`);
});

// Whether a hot function gets optimised in a node process given `flags` that
// starts as `otus ARGS` does (src/cli/heap.ts first; a script stands in, as above).
function optimisedAfterHeap(flags: string[], args: string[]): boolean {
  const heap = new URL('../../src/cli/heap.js', import.meta.url).href;
  const script = `await import(${JSON.stringify(heap)});
    function f(a) { return a * 2 + 1; }
    %PrepareFunctionForOptimization(f); f(1); f(2); %OptimizeFunctionOnNextCall(f); f(3);
    process.stdout.write(String((%GetOptimizationStatus(f) & 16) !== 0));`;
  return execFileSync(process.execPath, ['--allow-natives-syntax', ...flags, '--input-type=module', '-e', script, '--', 'otus.js', ...args], { encoding: 'utf8' }) === 'true';
}

test("otus daemon runs its own code unoptimised; other commands and an operator's --opt are left alone", () => {
  assert.equal(optimisedAfterHeap([], ['daemon', '--config', 'x.yml']), false);
  assert.equal(optimisedAfterHeap([], ['replay', 'x.pcap']), true);
  assert.equal(optimisedAfterHeap(['--opt'], ['daemon']), true);
});

test('the lean flags are each set unless the command line names the flag, with or without no-', () => {
  assert.deepEqual(leanFlags([]), LEAN_FLAGS);
  assert.deepEqual(leanFlags(['--opt', '--optimize-for-size=false', '--no-max-lazy', '--max-semi-space-size=1']), ['--no-sparkplug']);
});

const skip = liveSkipReason();

/** The capture options planLiveTask gives a task on lo with `capture` keys `keys`, and the command line's `capture` options. */
async function planCapture(dir: string, keys: string, cli?: Partial<CaptureOptions>): Promise<CaptureOptions> {
  const file = join(dir, `t-${keys.replace(/\W/g, '_')}-${JSON.stringify(cli ?? {}).replace(/\W/g, '_')}.yml`);
  writeFileSync(file, `task:\n  id: sizes\n  capture: {interface: lo${keys}}\n`);
  const checked = await checkTask(file, [], { hostname: 'test' }, '/dev/null');
  return planLiveTask(checked, {
    iface: null,
    driver: null,
    workers: 1,
    cpus: 'off',
    node: { hostname: 'test' },
    settings: { heartbeatMs: 1000, watchdogMs: 5000, stopTimeoutMs: 5000, restart: null },
    ...(cli === undefined ? {} : { capture: cli }),
  }).capture;
}

test('task.capture.buffer_bytes sizes the capture ring; --block-count overrides it', { skip: skip ?? false }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const plan = (buffer: number | null, blockCount?: number) =>
    planCapture(dir, buffer === null ? '' : `, buffer_bytes: ${buffer}`, blockCount === undefined ? undefined : { blockCount });
  const def = await plan(null);
  assert.equal(def.blockCount * def.blockSize, 32 << 20);
  const small = await plan(8 << 20);
  assert.equal(small.blockCount, 8);
  assert.equal(small.bufferBytes, 8 << 20);
  assert.equal((await plan(8 << 20, 4)).blockCount, 4);
  // Less than two blocks would leave the kernel nowhere to write while one is read.
  assert.equal((await plan(1 << 20)).blockCount, 2);
});

test('task.capture.retire_ms sets the af_packet_v3 retire timeout; --retire-ms overrides it', { skip: skip ?? false }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const plan = (retire: number | null, retireMs?: number) =>
    planCapture(dir, retire === null ? '' : `, retire_ms: ${retire}`, retireMs === undefined ? undefined : { retireMs });
  assert.equal((await plan(null)).retireMs, 10);
  assert.equal((await plan(1)).retireMs, 1);
  assert.equal((await plan(1, 5)).retireMs, 5);
  await assert.rejects(plan(0), (e: { code?: string; message: string }) => e.code === 'OTUS_ERR_TASK' && /retire_ms/.test(e.message));
});
