// peerCredentials: SO_PEERCRED of accepted Unix stream connections, from this
// process and from a child running as nobody (65534).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { peerCredentials, type PeerCredentials } from '../../src/supervisor/peer.js';
import { OtusError } from '../../src/util/errors.js';

const NOBODY = 65534;
const dir = mkdtempSync(join(tmpdir(), 'otus-peer-'));
const path = join(dir, 'ctl.sock');
let server: Server;
/** Each accepted connection's credentials, read as it is accepted (as the daemon does). */
const accepted: Array<(c: PeerCredentials, sock: Socket) => void> = [];

before(async () => {
  server = createServer((sock) => {
    // A client that goes first resets the connection: that is not what is tested.
    sock.on('error', () => {});
    const creds = peerCredentials(sock);
    sock.end('ok\n');
    accepted.shift()?.(creds, sock);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  // nobody must reach the socket: the directory is 0700 from mkdtemp.
  chmodSync(dir, 0o755);
  chmodSync(path, 0o777);
});

after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

function nextAccepted(): Promise<{ creds: PeerCredentials; sock: Socket }> {
  return new Promise((resolve) => accepted.push((creds, sock) => resolve({ creds, sock })));
}

test('a connection from this process: our pid, uid and gid', async () => {
  const got = nextAccepted();
  const client = createConnection(path);
  const { creds } = await got;
  client.destroy();
  assert.deepEqual(creds, { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
});

const rootSkip =
  process.getuid?.() !== 0
    ? `needs root to run a client as nobody (running as uid ${process.getuid?.()})`
    : spawnSync('sh', ['-c', 'command -v setpriv']).status !== 0
      ? 'needs setpriv (util-linux)'
      : false;

test('a connection from a process running as nobody: its pid and uid 65534', { skip: rootSkip, timeout: 30_000 }, async () => {
  const got = nextAccepted();
  // The client waits for the server's line, so it is still connected when the server reads its credentials.
  const script = `const s = require('node:net').createConnection(${JSON.stringify(path)}); s.on('data', () => s.end()); s.on('error', (e) => { console.error(e.message); process.exit(1); });`;
  const child = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', script], { stdio: 'inherit' });
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve(sig ?? code)));
  const { creds } = await got;
  assert.equal(await exited, 0);
  // setpriv execs node in place: the peer is the child we spawned.
  assert.deepEqual(creds, { pid: child.pid, uid: NOBODY, gid: NOBODY });
});

test('a closed connection has no credentials: a coded error, not a crash', async () => {
  const got = nextAccepted();
  const client = createConnection(path);
  const { sock } = await got;
  client.destroy();
  sock.destroy();
  await new Promise((resolve) => sock.once('close', resolve));
  assert.throws(
    () => peerCredentials(sock),
    (err: unknown) => err instanceof OtusError && err.code === 'OTUS_ERR_SYSCALL' && /no file descriptor/.test(err.message),
  );
});
