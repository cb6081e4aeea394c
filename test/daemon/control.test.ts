// The control socket under abuse: a peer whose uid is not allowed, 10 000
// malformed or oversized requests, and 300 clients that connect and say
// nothing must leave the daemon serving everyone else.

import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ctl, type Daemon, startDaemon } from '../helpers/daemon.js';
import { tempDir } from '../helpers/live.js';

function open(path: string): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect(path, () => res(s));
    s.once('error', rej);
  });
}

/** Sends raw bytes and collects what comes back until the daemon closes or `lines` answers arrived. */
function exchange(path: string, data: string | Buffer, lines: number): Promise<string[]> {
  return new Promise((res, rej) => {
    const s = connect(path, () => s.write(data));
    let got = '';
    const done = (): void => {
      s.destroy();
      res(got.split('\n').filter(Boolean));
    };
    s.on('data', (d) => {
      got += d.toString();
      if (got.split('\n').filter(Boolean).length >= lines) done();
    });
    s.on('close', done);
    s.on('error', rej);
  });
}

describe('control socket', () => {
  let tmp: ReturnType<typeof tempDir>;
  let d: Daemon;
  let socket = '';

  before(async () => {
    tmp = tempDir();
    chmodSync(tmp.dir, 0o711); // any user reaches the socket: its mode (0666) lets them connect, the peer check decides
    socket = join(tmp.dir, 'otus.sock');
    d = await startDaemon(tmp.dir, `otus:\n  control:\n    socket: ${socket}\n    mode: "0666"\n`);
  });

  after(async () => {
    await d?.stop();
    tmp?.cleanup();
  });

  test('malformed, unknown and oversized requests get JSON-RPC errors, on the same connection', async () => {
    const got = await exchange(
      socket,
      'not json\n{"jsonrpc":"2.0","id":1}\n{"jsonrpc":"2.0","id":2,"method":"nope"}\n{"jsonrpc":"2.0","id":3,"method":"task.status","params":[1]}\n' +
        '{"jsonrpc":"2.0","id":4,"method":"task.status","params":{}}\n{"jsonrpc":"2.0","id":5,"method":"task.status","params":{"id":"x"}}\n{"jsonrpc":"2.0","id":6,"method":"status"}\n',
      7,
    );
    const codes = got.map((l) => (JSON.parse(l) as { error?: { code: number } }).error?.code ?? 0);
    assert.deepEqual(codes, [-32700, -32600, -32601, -32602, -32602, -32000, 0]);
    const big = await exchange(socket, Buffer.alloc((1 << 20) + 10, 0x61), 1);
    assert.equal(JSON.parse(big[0]!).error.code, -32600);
  });

  test('a bad task or configuration sent by otusctl is refused naming its file, line and key', async () => {
    const file = join(tmp.dir, 'bad-task.yml');
    const cases: [string, RegExp][] = [
      ['task:\n  id: b\n  capture: {interface: lo}\n  bogus: 1\n', /^otusctl: \S*bad-task\.yml:4: task\.bogus: is not a known key \[OTUS_ERR_TASK\]$/],
      ['task:\n  id: b\n  capture:\n    interface: otus-no-such0\n', /^otusctl: \S*bad-task\.yml:4: task\.capture\.interface: interface "otus-no-such0": no such interface .*\[OTUS_ERR_BAD_ARGUMENT\]$/],
      ['task:\n  id: b\n  capture: {interface: lo}\n  parsers:\n    - plugin: sip\n    - plugin: h323\n', /^otusctl: \S*bad-task\.yml:6: task\.parsers\[1\]\.plugin: no parser plugin named "h323" .*\[OTUS_ERR_PLUGIN_NOT_FOUND\]$/],
      ['task:\n  id: b\n  capture: {interface: lo}\n  reporter:\n    type: amqp\n', /^otusctl: \S*bad-task\.yml:5: task\.reporter\.type: task "b" names reporter "amqp", which .*\[OTUS_ERR_TASK\]$/],
    ];
    for (const [yaml, re] of cases) {
      writeFileSync(file, yaml);
      const r = await ctl(socket, ['task', 'create', '--file', file], { json: false });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr.trim(), re);
    }
    writeFileSync(file, cases[0]![0]);
    const v = await ctl(socket, ['validate', '--task', file], { json: false });
    assert.equal(v.status, 1, v.stderr);
    assert.match(v.stderr.trim(), /^otusctl: \S*bad-task\.yml:4: task\.bogus: is not a known key \[OTUS_ERR_TASK\]$/);
    const g = join(tmp.dir, 'bad-global.yml');
    writeFileSync(g, 'otus:\n  node:\n    bogus: 1\n');
    const vg = await ctl(socket, ['validate', '--config', g], { json: false });
    assert.equal(vg.status, 1, vg.stderr);
    assert.match(vg.stderr.trim(), /^otusctl: \S*bad-global\.yml:3: otus\.node\.bogus: is not a known key \[OTUS_ERR_CONFIG\]$/);
    // A client's name for its text is only a name: control characters in it do not reach the message.
    const raw = await exchange(socket, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'task.create', params: { text: cases[0]![0], file: 'a\u001b[2Jb.yml' } }) + '\n', 1);
    assert.match(JSON.parse(raw[0]!).error.message, /^a\?\[2Jb\.yml:4: task\.bogus: is not a known key/);
    const t = await ctl(socket, ['task', 'list']);
    assert.deepEqual(t.json.tasks, [], 'none of them was created');
  });

  test('10 000 malformed requests and 300 silent clients leave the daemon serving', async () => {
    const silent = await Promise.all(Array.from({ length: 300 }, () => open(socket).catch(() => null)));
    const garbage: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const k = i % 5;
      garbage.push(k === 0 ? `{"jsonrpc":"2.0","id":${i},"method":` : k === 1 ? '[]' : k === 2 ? `{"jsonrpc":"1.0","id":${i},"method":"status"}` : k === 3 ? '"\\ud800"' : `{"jsonrpc":"2.0","id":${i},"method":"task.stop","params":{"id":${i}}}`);
    }
    const answers = await exchange(socket, garbage.join('\n') + '\n', 10_000);
    assert.equal(answers.length, 10_000);
    assert.ok(answers.every((l) => 'error' in JSON.parse(l)));
    const s = await ctl(socket, ['status']);
    assert.equal(s.status, 0, s.stderr);
    assert.ok(s.json.control.errors >= 10_000);
    for (const c of silent) c?.destroy();
    assert.equal(d.exited, false);
  });

  test('a peer whose uid is not allowed is refused', { skip: process.getuid?.() === 0 ? false : 'needs root to run a client as nobody' }, async () => {
    const r = await ctl(socket, ['status'], { uid: 'nobody' });
    // Refused at connect: otusctl says it cannot use the daemon (exit 3), naming the uid.
    assert.equal(r.status, 3, r.stderr + r.stdout);
    assert.match(r.stderr, /permission denied on .*\(your uid 65534 is not allowed/);
    assert.ok(d.logs().some((l) => l.msg === 'control socket: peer not allowed' && (l.peer as { uid: number }).uid === 65534), 'refused by the peer check, not by the file system');
    // The same uid in the socket's group (the daemon's: root here) is served, as the socket's mode promises.
    const member = await ctl(socket, ['status'], { uid: 'nobody', gid: 'root' });
    assert.equal(member.status, 0, member.stderr);
  });
});
