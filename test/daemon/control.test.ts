// The control socket under abuse: a peer whose uid is not allowed, 10 000
// malformed or oversized requests, and 300 clients that connect and say
// nothing must leave the daemon serving everyone else.

import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
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
