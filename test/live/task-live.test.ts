// `otus capture --task` when things go wrong: usage errors are coded and name
// what to fix, before anything is forked; a capture process or the sender
// killed mid-run stops the run at once with a failure naming it, while what
// the others captured still reaches the reporter (the sender drains the
// ring) and the summary.
// The happy path, real calls on two fanout members, is in sipp-calls.test.ts.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native } from '../../src/native.js';
import { ipv4Frame, liveSkipReason, makeVethHost, removeStaleNamespaces, tempDir, type VethHost, waitFor, writePcap } from '../helpers/live.js';

const skip = liveSkipReason();
const OTUS = fileURLToPath(new URL('../../src/cli/otus.js', import.meta.url));

interface Run {
  child: ChildProcess;
  err: string;
  code: number | null;
  exited: boolean;
}

function start(args: string[]): Run {
  const child = spawn(process.execPath, [OTUS, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const r: Run = { child, err: '', code: null, exited: false };
  child.stderr!.on('data', (d: Buffer) => (r.err += d.toString()));
  child.on('exit', (code) => {
    r.code = code;
    r.exited = true;
  });
  return r;
}

const TASK = 'task:\n  id: live-failures\n  parsers:\n    - plugin: rtp\n  unmatched_policy: forward\n';

describe('otus capture --task: bad usage, a lost capture process', { skip: skip ?? false }, () => {
  let host: VethHost;
  let tmp: ReturnType<typeof tempDir>;
  let task = '';
  let file = '';
  const N = 400;

  before(() => {
    removeStaleNamespaces();
    host = makeVethHost();
    tmp = tempDir();
    task = join(tmp.dir, 'task.yml');
    writeFileSync(task, TASK);
    // Many flows, so the hash spreads them over both fanout members.
    const frames = Array.from({ length: N }, (_, i) => ipv4Frame({ src: [10, 9, 0, 1], dst: [10, 9, 0, 2], sport: 10000 + (i % 64), dport: 20000 }, 64, i));
    file = join(tmp.dir, 'frames.pcap');
    writePcap(file, frames);
  });

  after(() => {
    host?.destroy();
    tmp?.cleanup();
  });

  test('usage errors are coded and name what to fix', () => {
    const cases: [string[], RegExp][] = [
      [['capture', '--task', task], /no interface: give -i IFACE or task\.capture\.interface \[OTUS_ERR_BAD_ARGUMENT\]/],
      [['capture', '--task', task, '-i', host.capIf, '--driver', 'pcap', '--workers', '2'], /pcap driver has one stream.*\[OTUS_ERR_BAD_ARGUMENT\]/],
      [['capture', '--task', task, '-i', host.capIf, '--filter', 'udp'], /task file's filter section applies \[OTUS_ERR_BAD_ARGUMENT\]/],
      [['capture', '--task', task, '-i', 'otus-no-such-if0'], /otus-no-such-if0/],
      [['capture', '--task', join(tmp.dir, 'missing.yml'), '-i', host.capIf], /missing\.yml.*\[OTUS_ERR_TASK\]/],
      [['capture', '-i', host.capIf, '--out', 'x'], /--out: only with --task/],
      [['capture', '--task', task, '-i', host.capIf, '--tunnels', 'vxlan'], /--tunnels with --task.*\[OTUS_ERR_BAD_ARGUMENT\]/],
    ];
    for (const [args, want] of cases) {
      const r = spawnSync(process.execPath, [OTUS, ...args], { encoding: 'utf8', timeout: 30000 });
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, want, args.join(' '));
    }
  });

  test('a capture process SIGKILLed mid-run: the run stops, names it, and keeps what the other captured', async () => {
    const out = join(tmp.dir, 'out.ndjson');
    const stats = join(tmp.dir, 'stats.json');
    const run = start(['capture', '--task', task, '-i', host.capIf, '--workers', '2', '--out', out, '--stats-json', stats]);
    assert.ok(await waitFor(() => /capturing/.test(run.err) || run.exited, 20000), run.err);
    host.replay(file);
    await new Promise((r) => setTimeout(r, 300)); // a block retires after 10 ms: every frame is in a record by now
    // The supervisor's children: the sender first, then capture processes 0 and 1.
    const kids = execFileSync('pgrep', ['-P', String(run.child.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
    assert.equal(kids.length, 3, `children: ${kids}`);
    process.kill(kids[2]!, 'SIGKILL');
    assert.ok(await waitFor(() => run.exited, 20000), 'the run stopped on its own');
    assert.notEqual(run.code, 0);
    assert.match(run.err, /stopped: capture process 1: killed by SIGKILL/);
    assert.match(run.err, /capture process 1: killed by SIGKILL \[OTUS_ERR_WORKER\]/);
    const summary = JSON.parse(readFileSync(stats, 'utf8'));
    // Process 1's counters are those of its last heartbeat, if it beat before it was killed: at most what it had.
    const procs = summary.capture_processes as { index: number; frames: number }[];
    assert.equal(procs[0]!.index, 0);
    assert.ok(procs[0]!.frames > 0 && procs[0]!.frames < N, `process 0 got part of the flows: ${procs[0]!.frames}`);
    assert.ok(summary.frames <= N);
    // Process 1 committed its batch at the end of each block, before it was killed: the sender drained both.
    const records = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { flow: { sport: number } });
    const ours = records.filter((r) => r.flow.sport >= 10000 && r.flow.sport < 10064);
    assert.equal(ours.length, N, `records of the replayed frames: ${ours.length}`);
  });

  test('the sender SIGKILLed mid-run: noticed at once, the run stops with the summary and its --stats-json', async () => {
    const out = join(tmp.dir, 'out2.ndjson');
    const stats = join(tmp.dir, 'stats2.json');
    const run = start(['capture', '--task', task, '-i', host.capIf, '--workers', '1', '--out', out, '--stats-json', stats]);
    assert.ok(await waitFor(() => /capturing/.test(run.err) || run.exited, 20000), run.err);
    host.replay(file);
    assert.ok(await waitFor(() => readFileSync(out, 'utf8').split('\n').filter(Boolean).length >= N, 20000), 'records before the kill');
    const kids = execFileSync('pgrep', ['-P', String(run.child.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
    process.kill(kids[0]!, 'SIGKILL');
    assert.ok(await waitFor(() => run.exited, 20000), 'the run stopped on its own');
    assert.equal(run.code, 2);
    assert.match(run.err, /stopped: sender: killed by SIGKILL/);
    const summary = JSON.parse(readFileSync(stats, 'utf8'));
    assert.equal(summary.frames, N);
    // The sender's counters are those of its last heartbeat: at most what it wrote.
    assert.ok(summary.sender.records <= N, `sender records ${summary.sender.records}`);
  });

  // Last: it deletes the interface. An AF_XDP socket reports nothing when its device goes (no poll error): the heartbeat notices.
  test('the interface deleted under xdp: the run ends naming it, instead of capturing nothing', { skip: native.xdpAvailable() ? `xdp driver not built: ${native.xdpAvailable()}` : false }, async () => {
    const out = join(tmp.dir, 'out3.ndjson');
    const run = start(['capture', '--task', task, '-i', host.capIf, '--driver', 'xdp', '--workers', '1', '--out', out]);
    assert.ok(await waitFor(() => /capturing/.test(run.err) || run.exited, 20000), run.err);
    host.replay(file);
    assert.ok(await waitFor(() => readFileSync(out, 'utf8').split('\n').filter(Boolean).length >= N, 20000), 'records before the deletion');
    host.destroy();
    const ended = await waitFor(() => run.exited, 20000);
    if (!ended) run.child.kill('SIGKILL'); // the failure below, not a run left capturing nothing
    assert.ok(ended, 'the run stopped on its own');
    assert.equal(run.code, 2, run.err);
    assert.match(run.err, new RegExp(`interface ${host.capIf} was deleted \\[OTUS_ERR_CAPTURE_IO\\]`));
  });
});
