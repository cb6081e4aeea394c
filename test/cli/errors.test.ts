// Every failure of `otus` and `otusctl` ends in one coded line and the
// documented exit status: never a stack trace, and never the usage text for
// an error that is not about usage. Each case here once printed a stack, the
// help, a crash of Node's IPC, or hung.

import assert from 'node:assert/strict';
import { fork, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { allowedCpus } from '../../src/capture/iface.js';
import { asOtusError, OtusError } from '../../src/util/errors.js';
import { startDaemon } from '../helpers/daemon.js';
import { writePcap, ipv4Frame } from '../helpers/live.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const OTUS = join(ROOT, 'dist/src/cli/otus.js');
const OTUSCTL = join(ROOT, 'dist/src/ctl/main.js');
const CAPTURE_CHILD = join(ROOT, 'dist/src/capture-proc/main.js');
const TASK = join(ROOT, 'configs/task-voip.yml');
const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync('sh', ['-c', 'command -v setpriv']).status === 0;
const hasUnshare = spawnSync('sh', ['-c', 'command -v unshare']).status === 0;

function run(args: string[], opts: { prefix?: string[]; timeoutMs?: number; cmd?: string } = {}): SpawnSyncReturns<string> {
  const cmd = opts.prefix ? opts.prefix[0]! : process.execPath;
  const argv = [...(opts.prefix ? [...opts.prefix.slice(1), process.execPath] : []), opts.cmd ?? OTUS, ...args];
  return spawnSync(cmd, argv, { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, cwd: ROOT });
}

/** One line, `otus: MESSAGE [CODE]`, exit `status`; nothing else on stderr (no stack, no usage). */
function codedFailure(r: SpawnSyncReturns<string>, code: string, message: RegExp, status = 2, prog = 'otus'): void {
  assert.equal(r.signal, null, `ended on its own (not killed by the timeout); stderr: ${r.stderr}`);
  assert.equal(r.status, status, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, new RegExp(`^${prog}: .* \\[${code}\\]$`));
  assert.match(lines[0]!, message);
}

/** 9 anchors of 9 aliases each, nested 9 deep: 9^9 nodes if expanded. */
function aliasBomb(prefix: string, indent: string): string {
  let y = `${prefix}\n${indent}a0: &a0 [x, x, x, x, x, x, x, x, x]\n`;
  for (let i = 1; i < 9; i++) y += `${indent}a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(', ')}]\n`;
  return y;
}

let tmp = '';
let pcap = '';
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'otus-errors-'));
  pcap = join(tmp, 'few.pcap');
  writePcap(pcap, Array.from({ length: 20 }, (_, i) => ipv4Frame({ src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 4000 + i, dport: 9999 }, 40, i)));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('otus: usage errors', () => {
  it('an unknown flag: one coded line and status 2, not the help', () => {
    codedFailure(run(['capture', '-i', 'lo', '--frobnicate']), 'OTUS_ERR_BAD_ARGUMENT', /^otus: Unknown argument: frobnicate \(otus --help\)/);
    codedFailure(run(['replay']), 'OTUS_ERR_BAD_ARGUMENT', /Not enough non-option arguments|Missing required argument/);
  });
});

describe('otus capture: what the host refuses', () => {
  it('without root or CAP_NET_RAW: says what it needs (af_packet_v3, pcap, a task), no stack, no help', { skip: !isRoot || !hasSetpriv ? 'needs root and setpriv to drop to nobody' : false }, () => {
    const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
    for (const driver of ['af_packet_v3', 'pcap']) {
      codedFailure(run(['capture', '-i', 'lo', '--driver', driver, '-c', '1'], { prefix: nobody }), 'OTUS_ERR_PERMISSION', new RegExp(`^otus: ${driver} on lo: live capture needs root or CAP_NET_RAW`));
    }
    codedFailure(run(['capture', '--task', TASK, '-i', 'lo', '--workers', '1', '--duration', '1'], { prefix: nobody }), 'OTUS_ERR_PERMISSION', /needs root or CAP_NET_RAW/);
  });

  it('--cpus naming a CPU this process may not use: a coded error before anything runs', () => {
    const allowed = allowedCpus();
    const bad = String(Math.max(...allowed) + 1);
    const msg = new RegExp(`^otus: --cpus: CPU ${bad} is not one this process may run on`);
    codedFailure(run(['capture', '-i', 'lo', '--cpus', bad, '-c', '1']), 'OTUS_ERR_BAD_ARGUMENT', msg);
    codedFailure(run(['capture', '--task', TASK, '-i', 'lo', '--workers', '1', '--cpus', bad, '--duration', '1']), 'OTUS_ERR_BAD_ARGUMENT', msg);
    if (allowed.length >= 2) codedFailure(run(['capture', '-i', 'lo', '--workers', '2', '--cpus', `${allowed[0]},${bad}`, '-c', '1']), 'OTUS_ERR_BAD_ARGUMENT', msg);
  });

  it('a capture process that cannot start reports its coded error over IPC and exits 2, with nothing on stderr', async () => {
    // As if the parent had not checked --cpus: the child's own failure path (it used to crash in Node's IPC code).
    const child = fork(CAPTURE_CHILD, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const messages: { type: string; code?: string; message?: string }[] = [];
    child.on('message', (m: { type: string }) => messages.push(m));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.send({ type: 'start', driver: 'af_packet_v3', options: { iface: 'lo' }, index: 0, cpu: Math.max(...allowedCpus()) + 1, decoder: {} });
    assert.equal(await exited, 2);
    assert.deepEqual(messages.map((m) => m.type), ['error']);
    assert.equal(messages[0]!.code, 'OTUS_ERR_SYSCALL');
    assert.match(messages[0]!.message!, /^sched_setaffinity \d+: Invalid argument$/);
    assert.equal(stderr, '');
  });
});

describe('otus: shared memory the system refuses', () => {
  it('a read-only /dev/shm: a coded message naming the segment, not the addon\'s stack', { skip: !isRoot || !hasUnshare ? 'needs root and unshare for a private read-only /dev/shm' : false }, () => {
    const task = join(tmp, 'fwd.yml');
    writeFileSync(task, 'task:\n  id: shm-ro\n  unmatched_policy: forward\n');
    const script = `mount -t tmpfs -o ro,size=1m tmpfs /dev/shm && exec "${process.execPath}" "${OTUS}" replay --task "${task}" --out /dev/null "${pcap}"`;
    const r = spawnSync('unshare', ['-m', 'sh', '-c', script], { encoding: 'utf8', timeout: 60_000 });
    codedFailure(r, 'OTUS_ERR_SYSCALL', /^otus: shared memory \/dev\/shm\/otus-shm-ro\.\S+-ring: cannot create \d+ bytes \(shm_open .*Read-only file system\)/);
  });
});

describe('YAML alias bombs: refused with a coded error wherever a file is read', () => {
  it('otus validate, replay, capture --task, daemon --config and otusctl task create', () => {
    const taskBomb = join(tmp, 'bomb-task.yml');
    writeFileSync(taskBomb, aliasBomb('task:\n  id: t\n  reporter:\n    type: console\n    config:', '      '));
    const cfgBomb = join(tmp, 'bomb-config.yml');
    writeFileSync(cfgBomb, aliasBomb('otus:\n  reporters:\n    console:', '      '));
    const aliases = /aliases refused: they expand to more than \d+ nodes/;
    codedFailure(run(['validate', '--task', taskBomb]), 'OTUS_ERR_TASK', aliases);
    codedFailure(run(['replay', '--task', taskBomb, pcap]), 'OTUS_ERR_TASK', aliases);
    codedFailure(run(['capture', '--task', taskBomb, '-i', 'lo', '--duration', '1']), 'OTUS_ERR_TASK', aliases);
    codedFailure(run(['daemon', '--config', cfgBomb, '--socket', join(tmp, 'bomb.sock')]), 'OTUS_ERR_CONFIG', aliases);
    codedFailure(run(['task', 'create', '--file', taskBomb, '--socket', join(tmp, 'none.sock')], { cmd: OTUSCTL }), 'OTUS_ERR_BAD_ARGUMENT', /Excessive alias count/, 2, 'otusctl');
  });
});

describe('otus replay --out - | head', () => {
  it('ends quietly, status 0, as otus decode does: no summary, no error, and not after the whole input', async () => {
    const many = join(tmp, 'many.pcap');
    writePcap(many, Array.from({ length: 100_000 }, (_, i) => ipv4Frame({ src: [10, 0, 0, 1 + (i % 50)], dst: [10, 0, 1, 1], sport: 10000 + (i % 1000), dport: 9999 }, 20, i)));
    const task = join(tmp, 'fwd-head.yml');
    writeFileSync(task, 'task:\n  id: head\n  unmatched_policy: forward\n');
    const p = spawn(process.execPath, [OTUS, 'replay', '--task', task, '--out', '-', '--stats-json', join(tmp, 'head.json'), many], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // The reader takes one line and leaves, as `head -1` does.
    await new Promise<void>((r) => p.stdout.once('data', () => r()));
    p.stdout.destroy();
    const code = await new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    assert.equal(code, 0);
    assert.equal(stderr, '');
  });
});

describe('otus daemon: every way it cannot start ends in one coded line', () => {
  it('a bad configuration', () => {
    const cfg = join(tmp, 'bad.yml');
    writeFileSync(cfg, 'otus:\n  control:\n    sokcet: /tmp/x.sock\n');
    codedFailure(run(['daemon', '--config', cfg]), 'OTUS_ERR_CONFIG', /otus\.control\.sokcet: is not a known key/);
  });

  it('a socket path it cannot create (under a file; under /proc, where it once hung)', () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, '');
    codedFailure(run(['daemon', '--socket', join(file, 'otus.sock')]), 'OTUS_ERR_CONFIG', /^otus: control\.socket \S+: cannot (create its directory|listen) \(.*not a directory/i);
    codedFailure(run(['daemon', '--socket', '/proc/otus-nope/otus.sock'], { timeoutMs: 20_000 }), 'OTUS_ERR_CONFIG', /^otus: control\.socket \/proc\/otus-nope\/otus\.sock: cannot create its directory/);
  });

  it('a socket another daemon holds', async () => {
    const dir = join(tmp, 'held');
    mkdirSync(dir);
    const socket = join(dir, 'otus.sock');
    const first = await startDaemon(dir, `otus:\n  control:\n    socket: ${socket}\n`);
    try {
      codedFailure(run(['daemon', '--socket', socket]), 'OTUS_ERR_CONFIG', /another daemon is listening there/);
    } finally {
      await first.stop();
    }
  });
});

describe('asOtusError: the last line of any failure', () => {
  it('keeps an OtusError, the addon\'s coded errors and system errors; anything else is internal, without its stack', () => {
    const o = new OtusError('OTUS_ERR_TASK', 'x');
    assert.equal(asOtusError(o), o);
    const native = Object.assign(new Error('shm_open /x: No space left on device'), { code: 'OTUS_ERR_SYSCALL', errno: 28 });
    assert.deepEqual([asOtusError(native).code, asOtusError(native).message], ['OTUS_ERR_SYSCALL', native.message]);
    const sys = Object.assign(new Error("EACCES: permission denied, open '/x'"), { code: 'EACCES', syscall: 'open', errno: -13 });
    assert.equal(asOtusError(sys).code, 'OTUS_ERR_SYSCALL');
    const bug = asOtusError(new TypeError('Cannot read properties of undefined'));
    assert.equal(bug.code, 'OTUS_ERR_INTERNAL');
    assert.match(bug.message, /^internal error: Cannot read properties of undefined \(a bug/);
    assert.doesNotMatch(bug.message, /\n/);
    assert.equal(asOtusError('thrown string').message.startsWith('internal error: thrown string'), true);
  });
});
