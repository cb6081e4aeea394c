// Capturing on lo, where every packet passes twice (out, then in). The
// stream keeps the incoming copy, as libpcap does; a fanout socket (every
// task's, and `--workers N`) cannot ask the kernel to ignore the outgoing
// one, so the kernel counts both: the summary says how many copies were
// skipped, and kernel_packets = frames + outgoing_skipped + kernel_drops.
// (It used to show kernel_packets as twice the frames, unexplained.) And a
// live task says what its rtp parser skipped, as replay does, exits 4
// when its reporter did not deliver every record, and counts what its
// reporter does not carry (hep: RTP) as skipped, not dropped.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { allowedCpus } from '../../src/capture/iface.js';
import { liveSkipReason, tempDir, waitFor } from '../helpers/live.js';
import { freePort } from '../helpers/metrics.js';
import { assertUndelivered } from '../helpers/otus-replay.js';

const OTUS = fileURLToPath(new URL('../../src/cli/otus.js', import.meta.url));
const skip = liveSkipReason();
const N = 25;

/** Runs otus until it says it is capturing, sends N datagrams to 127.0.0.1:port, stops it with SIGINT; returns its stderr. */
async function captureWhileSending(args: string[], port: number, payload: (i: number) => Buffer = (i) => Buffer.from(`loopback ${i}`)): Promise<{ code: number | null; err: string }> {
  const p = spawn(process.execPath, [OTUS, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
  assert.ok(await waitFor(() => /: capturing\n/.test(err), 30_000), err);
  const s = createSocket('udp4');
  for (let i = 0; i < N; i++) await new Promise<void>((r) => s.send(payload(i), port, '127.0.0.1', () => r()));
  s.close();
  p.kill('SIGINT'); // stopping drains what the kernel holds: every datagram sent is walked or counted
  return { code: await exited, err };
}

describe('capture on lo: the outgoing copies the kernel counts', { skip: skip ?? false }, () => {
  let tmp: ReturnType<typeof tempDir>;
  before(() => {
    tmp = tempDir();
  });
  after(() => tmp?.cleanup());

  it('otus capture --task (a fanout member): outgoing_skipped in the summary and --stats-json, and the counts add up', async () => {
    const port = 41000 + (process.pid % 1000);
    const task = join(tmp.dir, 'lo.yml');
    writeFileSync(task, `task:\n  id: lo-count\n  capture: {interface: lo, workers: 1}\n  filter: {ports: [${port}], protocol: udp}\n  unmatched_policy: forward\n`);
    const stats = join(tmp.dir, 'lo.json');
    const { code, err } = await captureWhileSending(['capture', '--task', task, '--out', join(tmp.dir, 'lo.ndjson'), '--stats-json', stats], port);
    assert.equal(code, 0, err);
    const s = JSON.parse(readFileSync(stats, 'utf8'));
    const c = s.capture_processes[0];
    assert.equal(c.frames, N);
    assert.equal(c.outgoing_skipped, N);
    assert.equal(c.kernel_packets, c.frames + c.outgoing_skipped + c.kernel_drops);
    assert.equal(s.records, N);
    assert.match(err, new RegExp(`kernel_packets=${2 * N} outgoing_skipped=${N} kernel_drops=0 `));
  });

  it('otus capture --workers 2 (fanout): each stream line says outgoing_skipped', { skip: allowedCpus().length < 2 ? 'needs 2 CPUs for 2 capture processes' : false }, async () => {
    const port = 42000 + (process.pid % 1000);
    const { code, err } = await captureWhileSending(['capture', '-i', 'lo', '--workers', '2', '--filter', `udp port ${port}`], port);
    assert.equal(code, 0, err);
    let frames = 0;
    let skipped = 0;
    let kernel = 0;
    for (const m of err.matchAll(/stream \d cpu \d+: frames=(\d+) kernel_packets=(\d+)(?: outgoing_skipped=(\d+))? kernel_drops=0/g)) {
      frames += Number(m[1]);
      kernel += Number(m[2]);
      skipped += Number(m[3] ?? 0);
    }
    assert.deepEqual([frames, skipped, kernel], [N, N, 2 * N], err);
  });

  it('a live task with sip and rtp: RTP nobody signalled is named in the summary with the setting that takes it', async () => {
    const port = 43000 + (process.pid % 1000);
    const task = join(tmp.dir, 'rtp.yml');
    writeFileSync(task, `task:\n  id: lo-rtp\n  capture: {interface: lo, workers: 1}\n  filter: {ports: [${port}], protocol: udp}\n  parsers: [{plugin: sip}, {plugin: rtp}]\n  unmatched_policy: drop\n`);
    const stats = join(tmp.dir, 'rtp.json');
    // RTP version 2, PCMA, sequence i: RTP to look at, announced by no SDP.
    const rtp = (i: number): Buffer => Buffer.concat([Buffer.from([0x80, 0x08, 0, i, 0, 0, 0, 160 * i, 0, 0, 0x12, 0x34]), Buffer.alloc(160, 0xd5)]);
    const { code, err } = await captureWhileSending(['capture', '--task', task, '--out', join(tmp.dir, 'rtp.ndjson'), '--stats-json', stats], port, rtp);
    assert.equal(code, 0, err);
    const s = JSON.parse(readFileSync(stats, 'utf8'));
    assert.equal(s.records, 0);
    assert.deepEqual(s.parsers.rtp.counters.unsignalled, { packets: N, events: 0, ports: { [port]: N } });
    assert.match(err, new RegExp(`  warning: rtp: ${N} RTP-looking UDP packets skipped: no SDP announced .* heuristic: true, or ports: \\[${port}\\]`));
  });

  it('a live task whose reporter delivers nothing (no server at its endpoint): every record counted, exit status 4', async () => {
    const port = 44000 + (process.pid % 1000);
    const closed = await freePort(); // nothing listens there
    const task = join(tmp.dir, 'down.yml');
    writeFileSync(
      task,
      `task:\n  id: lo-down\n  capture: {interface: lo, workers: 1}\n  filter: {ports: [${port}], protocol: udp}\n  unmatched_policy: forward\n` +
        `  reporter: {type: grpc, config: {endpoint: "127.0.0.1:${closed}", format: json, timeout_ms: 500}}\n`,
    );
    const stats = join(tmp.dir, 'down.json');
    const { code, err } = await captureWhileSending(['capture', '--task', task, '--stats-json', stats], port);
    assertUndelivered({ status: code, stderr: err }, N);
    const s = JSON.parse(readFileSync(stats, 'utf8'));
    assert.equal(s.sender.records, N);
    assert.equal(s.drops.reporter_timeout + s.drops.reporter_error + s.drops.stop_deadline, N);
  });

  it('a live task for Homer that also parses RTP: the RTP records are skipped by hep, counted as such, not as drops; status 0', async () => {
    const port = 45000 + (process.pid % 1000);
    const homer = createSocket('udp4');
    await new Promise<void>((r) => homer.bind(0, '127.0.0.1', () => r()));
    const task = join(tmp.dir, 'homer.yml');
    writeFileSync(
      task,
      `task:\n  id: lo-homer\n  capture: {interface: lo, workers: 1}\n  filter: {ports: [${port}], protocol: udp}\n  parsers: [{plugin: sip}, {plugin: rtp, config: {heuristic: true}}]\n  unmatched_policy: drop\n` +
        `  reporter: {type: hep, config: {address: "127.0.0.1:${homer.address().port}", transport: udp}}\n`,
    );
    const stats = join(tmp.dir, 'homer.json');
    const rtp = (i: number): Buffer => Buffer.concat([Buffer.from([0x80, 0x08, 0, i, 0, 0, 0, 160 * i, 0, 0, 0x12, 0x34]), Buffer.alloc(160, 0xd5)]);
    const { code, err } = await captureWhileSending(['capture', '--task', task, '--stats-json', stats], port, rtp);
    homer.close();
    assert.equal(code, 0, err);
    const s = JSON.parse(readFileSync(stats, 'utf8'));
    assert.equal(s.sender.records, N);
    assert.equal(s.reporter.skipped, N, JSON.stringify(s.reporter));
    assert.equal(s.reporter.acked, 0);
    assert.deepEqual(s.reporter.errors, {});
    assert.equal(s.drops.reporter_error, 0);
    assert.match(err, new RegExp(`reporter: acked 0, timed out 0, in flight 0, skipped ${N} \\(its format does not carry them\\)`));
  });
});

