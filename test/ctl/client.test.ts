// ControlClient against a real Unix-socket JSON-RPC server in this process:
// ids and matching, the daemon's refusals, and every way of getting no answer.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlClient, CtlRefused, CtlUnreachable, MAX_REQUEST_LINE, MAX_RESPONSE_LINE } from '../../src/ctl/client.js';
import { OtusError } from '../../src/util/errors.js';
import { startRpcServer, tempDir, type RpcRequest } from './helpers.js';

const tmp = tempDir();
after(() => tmp.remove());

async function rejectsWith<E extends Error>(p: Promise<unknown>, cls: new (...a: never[]) => E, check: (e: E) => void): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    check(e);
    return true;
  });
}

describe('ControlClient', () => {
  it('requests carry increasing ids; answers are matched by id, whatever their order', async () => {
    const held: RpcRequest[] = [];
    let flush: () => void = () => {};
    const srv = await startRpcServer(join(tmp.dir, 'order.sock'), (req) => {
      if (req.method === 'first') {
        held.push(req);
        return 'hang';
      }
      flush();
      return { result: { echo: req.method, params: req.params ?? null } };
    });
    const c = await ControlClient.connect(srv.path);
    try {
      // The server answers "second" first, then writes "first"'s answer by hand.
      const first = c.call<{ echo: string }>('first');
      await waitFor(() => held.length === 1);
      const answered = new Promise<void>((resolve) => (flush = resolve));
      const second = c.call<{ echo: string; params: unknown }>('second', { id: 'x' });
      await answered;
      assert.deepEqual(await second, { echo: 'second', params: { id: 'x' } });
      assert.deepEqual(
        srv.requests.map((r) => [r.jsonrpc, r.id, r.method]),
        [
          ['2.0', 1, 'first'],
          ['2.0', 2, 'second'],
        ],
      );
      assert.equal('params' in srv.requests[0], false, 'no params member when there are none');
      // Now answer the held request out of order (late, after the second).
      srv.send({ jsonrpc: '2.0', id: held[0].id, result: { echo: 'first' } });
      assert.deepEqual(await first, { echo: 'first' });
      const third = await c.call<{ echo: string }>('third');
      assert.equal(third.echo, 'third');
      assert.equal(srv.requests[2].id, 3);
    } finally {
      c.close();
      await srv.close();
    }
  });

  it("a JSON-RPC error is CtlRefused with the daemon's codes and message", async () => {
    const srv = await startRpcServer(join(tmp.dir, 'refuse.sock'), (req) =>
      req.method === 'task.stop'
        ? { error: { code: -32000, message: 'task "nope": no such task', data: { code: 'OTUS_ERR_TASK' } } }
        : { error: { code: -32601, message: 'method not found: bogus' } },
    );
    const c = await ControlClient.connect(srv.path);
    try {
      await rejectsWith(c.call('task.stop', { id: 'nope' }), CtlRefused, (e) => {
        assert.equal(e.rpcCode, -32000);
        assert.equal(e.otusCode, 'OTUS_ERR_TASK');
        assert.equal(e.message, 'task "nope": no such task');
        assert.ok(e instanceof OtusError);
      });
      await rejectsWith(c.call('bogus'), CtlRefused, (e) => {
        assert.equal(e.rpcCode, -32601);
        assert.equal(e.otusCode, null);
      });
      // The connection is still usable after a refusal.
      await rejectsWith(c.call('bogus'), CtlRefused, () => {});
    } finally {
      c.close();
      await srv.close();
    }
  });

  it('a peer the daemon does not serve (-32001 on connect, then closed) is CtlUnreachable "permission denied"', async () => {
    const srv = await startRpcServer(
      join(tmp.dir, 'peer.sock'),
      () => 'hang',
      (conn) => conn.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'permission denied' } }) + '\n'),
    );
    const c = await ControlClient.connect(srv.path);
    try {
      await rejectsWith(c.call('status'), CtlUnreachable, (e) => {
        assert.equal(e.reason, 'denied');
        assert.match(e.message, new RegExp(`^permission denied on ${srv.path} \\(your uid \\d+ is not allowed: run as root or ask for control\\.allowed_uids/allowed_gids\\)$`));
      });
    } finally {
      c.close();
      await srv.close();
    }
  });

  it('the daemon closing the connection mid-call is CtlUnreachable naming the call', async () => {
    const srv = await startRpcServer(join(tmp.dir, 'close.sock'), () => 'close');
    const c = await ControlClient.connect(srv.path);
    try {
      await rejectsWith(c.call('task.list'), CtlUnreachable, (e) => {
        assert.equal(e.reason, 'closed');
        assert.equal(e.message, `the daemon closed the connection on ${srv.path} before answering task.list`);
      });
      await rejectsWith(c.call('status'), CtlUnreachable, (e) => assert.equal(e.reason, 'closed'));
    } finally {
      c.close();
      await srv.close();
    }
  });

  it('no answer within the timeout: CtlUnreachable; a late answer is ignored and the next call is answered', async () => {
    let answer = false;
    const srv = await startRpcServer(join(tmp.dir, 'slow.sock'), (req) => (answer ? { result: { id: req.id } } : 'hang'));
    const c = await ControlClient.connect(srv.path, { timeoutMs: 200 });
    try {
      const t0 = Date.now();
      await rejectsWith(c.call('status'), CtlUnreachable, (e) => {
        assert.equal(e.reason, 'timeout');
        assert.equal(e.message, `no answer from the daemon on ${srv.path} to status in 200 ms`);
      });
      assert.ok(Date.now() - t0 >= 190, 'not before the timeout');
      srv.send({ jsonrpc: '2.0', id: 1, result: 'late' });
      answer = true;
      assert.deepEqual(await c.call('status'), { id: 2 });
    } finally {
      c.close();
      await srv.close();
    }
  });

  it('a response line over 16 MiB is refused; one just under is read', async () => {
    const big = 'x'.repeat(MAX_RESPONSE_LINE - 64);
    const srv = await startRpcServer(join(tmp.dir, 'big.sock'), (req) =>
      req.method === 'under'
        ? { result: big }
        : req.method === 'over'
          ? { raw: '{"jsonrpc":"2.0","id":2,"result":"' + 'y'.repeat(MAX_RESPONSE_LINE) + '"}\n' }
          : { raw: 'z'.repeat(MAX_RESPONSE_LINE + 1) }, // and no newline, ever
    );
    const c = await ControlClient.connect(srv.path);
    try {
      assert.equal((await c.call<string>('under')).length, big.length);
      await rejectsWith(c.call('over'), CtlUnreachable, (e) => {
        assert.equal(e.reason, 'protocol');
        assert.match(e.message, /^bad response from the daemon on .*: a line of more than 16777216 bytes$/);
      });
    } finally {
      c.close();
    }
    // A line that never ends is refused once it passes the limit, not waited for.
    const c2 = await ControlClient.connect(srv.path, { timeoutMs: 60_000 });
    try {
      await rejectsWith(c2.call('endless'), CtlUnreachable, (e) => assert.equal(e.reason, 'protocol'));
    } finally {
      c2.close();
      await srv.close();
    }
  });

  it('a response that is not JSON is CtlUnreachable "bad response"', async () => {
    const srv = await startRpcServer(join(tmp.dir, 'junk.sock'), () => ({ raw: 'HTTP/1.1 400 Bad Request\r\n\r\n' }));
    const c = await ControlClient.connect(srv.path);
    try {
      await rejectsWith(c.call('status'), CtlUnreachable, (e) => assert.match(e.message, /: a line that is not JSON$/));
    } finally {
      c.close();
      await srv.close();
    }
  });

  it('a request over 1 MiB is refused before it is sent', async () => {
    const srv = await startRpcServer(join(tmp.dir, 'req.sock'), (req) => ({ result: req.method }));
    const c = await ControlClient.connect(srv.path);
    try {
      await rejectsWith(c.call('config.validate', { config: 'x'.repeat(MAX_REQUEST_LINE) }), OtusError, (e) => {
        assert.equal(e.code, 'OTUS_ERR_BAD_ARGUMENT');
        assert.match(e.message, /^config\.validate: the request is \d+ bytes; the daemon takes at most 1048576 per request$/);
      });
      assert.equal(await c.call('status'), 'status');
      assert.deepEqual(
        srv.requests.map((r) => r.method),
        ['status'],
      );
    } finally {
      c.close();
      await srv.close();
    }
  });

  describe('connect', () => {
    let srvPath = '';
    before(() => (srvPath = join(tmp.dir, 'absent.sock')));
    it('no socket file: "no daemon socket at PATH"', async () => {
      await rejectsWith(ControlClient.connect(srvPath), CtlUnreachable, (e) => {
        assert.equal(e.reason, 'absent');
        assert.equal(e.message, `no daemon socket at ${srvPath} (is otus daemon running? --socket / OTUS_SOCKET)`);
      });
    });
  });
});

// ---------------------------------------------------------------- helpers

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}
