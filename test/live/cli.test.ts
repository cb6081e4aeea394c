// `otus capture` as a user runs it: on a veth (one worker, two fanout
// workers, the pcap driver) it prints the same NDJSON as `otus decode` prints
// for the replayed file (timestamps aside), stops on --count or SIGINT with
// per-stream statistics, and on lo it shows a ping.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allowedCpus } from '../../src/capture/iface.js';
import { ipv4Frame, ipv6Frame, liveSkipReason, makeVethHost, removeStaleNamespaces, tempDir, type VethHost, waitFor, writePcap } from '../helpers/live.js';

const skip = liveSkipReason();
const OTUS = fileURLToPath(new URL('../../src/cli/otus.js', import.meta.url));

interface Run {
  child: ChildProcess;
  out: string;
  err: string;
  code: number | null;
  exited: boolean;
}

function otus(args: string[]): Run {
  const child = spawn(process.execPath, [OTUS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const r: Run = { child, out: '', err: '', code: null, exited: false };
  child.stdout!.on('data', (d: Buffer) => (r.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (r.err += d.toString()));
  child.on('exit', (code) => {
    r.code = code;
    r.exited = true;
  });
  return r;
}

/** NDJSON lines without the keys that differ between a live capture and the file (frame number, time). */
function normalized(ndjson: string): string[] {
  return ndjson
    .trim()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const o = JSON.parse(l) as Record<string, unknown>;
      delete o.frame;
      delete o.ts;
      return JSON.stringify(o);
    });
}

describe('otus capture', { skip: skip ?? false }, () => {
  let host: VethHost;
  let tmp: ReturnType<typeof tempDir>;
  let file = '';
  let expected: string[] = [];
  const N = 120;

  before(() => {
    if (skip) return;
    removeStaleNamespaces();
    host = makeVethHost();
    tmp = tempDir();
    const frames: Uint8Array[] = [];
    for (let i = 0; i < N; i++) {
      if (i % 5 === 4) frames.push(ipv6Frame(6000 + i, 5060, 50 + i, i));
      else frames.push(ipv4Frame({ src: [10, 3, 0, i % 16], dst: [10, 4, 0, 1], sport: 30000 + i, dport: 5060, proto: i % 3 ? 17 : 6 }, 20 + i * 3, i, { vlan: i % 7 === 0 ? 42 : undefined }));
    }
    file = join(tmp.dir, 'cli.pcap');
    writePcap(file, frames);
    const dec = spawnSync(process.execPath, [OTUS, 'decode', file], { encoding: 'utf8' });
    assert.equal(dec.status, 0, dec.stderr);
    expected = normalized(dec.stdout);
    assert.equal(expected.length, N);
  });
  after(() => {
    host?.destroy();
    tmp?.cleanup();
  });

  async function captureWhileReplaying(args: string[], whileRunning?: (pid: number) => void): Promise<Run> {
    const r = otus(['capture', '-i', host.capIf, ...args]);
    try {
      assert.ok(await waitFor(() => /capturing/.test(r.err) || r.exited, 20000), `never started: ${r.err}`);
      assert.ok(!r.exited, `exited early (${r.code}): ${r.err}`);
      whileRunning?.(r.child.pid!);
      host.replay(file);
      assert.ok(await waitFor(() => r.exited, 20000), `did not stop: ${r.err}`);
    } finally {
      if (!r.exited) r.child.kill('SIGKILL');
    }
    return r;
  }

  test('one worker: the NDJSON of otus decode, then statistics', async () => {
    const r = await captureWhileReplaying(['--count', String(N)]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(normalized(r.out), expected);
    const frames = r.out.trim().split('\n').map((l) => (JSON.parse(l) as { frame: number; ts: string }));
    assert.deepEqual(frames.map((f) => f.frame), Array.from({ length: N }, (_, i) => i + 1));
    assert.match(frames[0]!.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.match(r.err, new RegExp(`${N} frames; stopped: count ${N}`));
    assert.match(r.err, new RegExp(`stream 0: frames=${N} kernel_packets=${N} kernel_drops=0`));
  });

  test('two workers: fanout members in two pinned processes, merged and renumbered', async () => {
    const pinned: string[] = [];
    const r = await captureWhileReplaying(['--count', String(N), '--workers', '2'], (pid) => {
      // The capture processes are the otus process's children; each runs on one CPU.
      const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      for (const k of kids) pinned.push(/^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${k}/status`, 'utf8'))![1]!);
    });
    const cpus = allowedCpus();
    assert.deepEqual(pinned.sort(), [String(cpus[0]), String(cpus[1 % cpus.length])].sort(), 'auto pinning: stream i on allowed CPU i mod n');
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(normalized(r.out).sort(), [...expected].sort());
    assert.deepEqual(r.out.trim().split('\n').map((l) => (JSON.parse(l) as { frame: number }).frame), Array.from({ length: N }, (_, i) => i + 1));
    const streams = [...r.err.matchAll(/stream (\d) cpu (\d+): frames=(\d+)/g)];
    assert.equal(streams.length, 2, r.err);
    assert.equal(streams.reduce((n, m) => n + Number(m[3]), 0), N);
  });

  test('pcap driver prints the same frames', async () => {
    const r = await captureWhileReplaying(['--count', String(N), '--driver', 'pcap']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(normalized(r.out), expected);
    assert.match(r.err, /\(pcap\): 120 frames/);
  });

  test('pcap driver with two workers: two pipelines fed by flow hash, flows kept whole', async () => {
    const r = await captureWhileReplaying(['--count', String(N), '--driver', 'pcap', '--workers', '2']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(normalized(r.out).sort(), [...expected].sort());
    const pipes = [...r.err.matchAll(/pipeline (\d): frames=(\d+)/g)].map((m) => Number(m[2]));
    assert.equal(pipes.length, 2, r.err);
    assert.equal(pipes[0]! + pipes[1]!, N);
    assert.ok(pipes[0]! > 0 && pipes[1]! > 0, `both pipelines used: ${pipes}`);
  });

  test('SIGINT stops cleanly with statistics; a filter applies', async () => {
    const r = otus(['capture', '-i', host.capIf, '--filter', 'ip6']);
    try {
      assert.ok(await waitFor(() => /capturing/.test(r.err) || r.exited, 20000), r.err);
      host.replay(file);
      assert.ok(await waitFor(() => r.out.split('\n').length > N / 5, 10000), `got ${r.out.split('\n').length - 1} lines`);
      r.child.kill('SIGINT');
      assert.ok(await waitFor(() => r.exited, 10000), 'stops on SIGINT');
    } finally {
      if (!r.exited) r.child.kill('SIGKILL');
    }
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(normalized(r.out), expected.filter((l) => (JSON.parse(l) as { ip_version: number }).ip_version === 6));
    assert.match(r.err, /stopped: signal/);
    assert.match(r.err, /kernel_drops=0/);
  });

  test('bad arguments are coded errors, exit 2', () => {
    for (const [args, re] of [
      [['--filter', 'udp prot 1'], /OTUS_ERR_FILTER/],
      [['--driver', 'pcap', '--workers', '2', '--filter', 'udp prot'], /OTUS_ERR_FILTER/],
      [['--driver', 'xdp', '--filter', 'udp'], /OTUS_ERR_UNSUPPORTED/],
      [['--workers', '0'], /--workers/],
    ] as [string[], RegExp][]) {
      const r = spawnSync(process.execPath, [OTUS, 'capture', '-i', host.capIf, ...args], { encoding: 'utf8', timeout: 20000 });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    const r = spawnSync(process.execPath, [OTUS, 'capture', '-i', 'otus-no-such0'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /interface "otus-no-such0": no such interface/);
  });
});

test('otus capture -i lo --count 6 shows a ping', { skip: skip ?? (spawnSync('sh', ['-c', 'command -v ping']).status !== 0 ? 'needs ping (iputils-ping)' : false) }, async () => {
  const r = otus(['capture', '-i', 'lo', '--count', '6', '--filter', 'icmp and host 127.0.0.1']);
  try {
    assert.ok(await waitFor(() => /capturing/.test(r.err) || r.exited, 20000), r.err);
    spawnSync('ping', ['-c', '3', '-i', '0.2', '127.0.0.1']);
    assert.ok(await waitFor(() => r.exited, 10000), `did not stop: ${r.out} ${r.err}`);
  } finally {
    if (!r.exited) r.child.kill('SIGKILL');
  }
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as { src: string; dst: string; proto: number });
  assert.equal(lines.length, 6);
  for (const l of lines) assert.deepEqual([l.src, l.dst, l.proto], ['127.0.0.1', '127.0.0.1', 1]);
});

test('the interface vanishing mid-capture stops otus capture with a coded error, not a hang', { skip: skip ?? false }, async () => {
  let host = makeVethHost();
  try {
    for (const workers of ['1', '2']) {
      const r = otus(['capture', '-i', host.capIf, '--workers', workers]);
      try {
        assert.ok(await waitFor(() => /capturing/.test(r.err) || r.exited, 20000), r.err);
        spawnSync('ip', ['link', 'del', host.capIf]);
        assert.ok(await waitFor(() => r.exited, 10000), `still running: ${r.err}`);
      } finally {
        if (!r.exited) r.child.kill('SIGKILL');
      }
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, /OTUS_ERR_CAPTURE_IO/);
      assert.match(r.err, /stopped: error/);
      host.destroy();
      host = makeVethHost(); // a fresh pair for the next round
    }
  } finally {
    host.destroy();
  }
});
