// otusctl as a real process (node dist/src/ctl/main.js) against real Unix
// sockets: none, a stale one, one it may not open, and a small JSON-RPC
// server in this process. Exit status and stderr are the contract:
// 0 done, 1 refused, 2 usage, 3 unreachable; never a stack trace.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { CTL_MAIN, runCtl, STACK_LINE, startRpcServer, tempDir, type CtlRun, type RpcAction, type RpcRequest, type RpcServer } from './helpers.js';
import { counters, stats, status, taskList, taskStatus } from './results.js';
import { signatureValid, signCommand } from '../../src/supervisor/command-message.js';

const tmp = tempDir();
after(() => tmp.remove());

function assertClean(r: CtlRun): void {
  assert.doesNotMatch(r.stderr, STACK_LINE, `no stack trace: ${r.stderr}`);
  assert.equal(r.signal, null, 'otusctl exited on its own');
}

let n = 0;
async function withServer(handle: (req: RpcRequest) => RpcAction, body: (srv: RpcServer) => Promise<void>): Promise<void> {
  const srv = await startRpcServer(join(tmp.dir, `s${n++}.sock`), handle);
  try {
    await body(srv);
  } finally {
    await srv.close();
  }
}

/** Answers as the daemon would, from the realistic results. */
function daemon(req: RpcRequest): RpcAction {
  switch (req.method) {
    case 'status':
      return { result: status };
    case 'stats':
      return { result: stats };
    case 'task.list':
      return { result: taskList };
    case 'task.status':
      return req.params?.id === 'voip-monitor-01'
        ? { result: taskStatus }
        : { error: { code: -32000, message: `task "${String(req.params?.id)}": no such task`, data: { code: 'OTUS_ERR_TASK' } } };
    case 'task.create':
      return { result: { id: 'voip-monitor-01', state: 'running' } };
    case 'task.stop':
      return { result: { id: req.params?.id, state: 'stopped', counters: counters() } };
    case 'reload':
      return { result: { applied: ['task dns-edge'], needs_restart: ['control.socket'] } };
    case 'config.validate':
      return { result: { effective: { control: { socket: '/run/otus/otus.sock', mode: '0660' } } } };
    default:
      return { error: { code: -32601, message: `method not found: ${req.method}` } };
  }
}

describe('otusctl: cannot reach the daemon (exit 3)', () => {
  it('no socket file: says which socket, and how to name another', async () => {
    const path = join(tmp.dir, 'none.sock');
    const r = await runCtl(['status', '--socket', path]);
    assertClean(r);
    assert.equal(r.code, 3);
    assert.equal(r.stderr, `otusctl: no daemon socket at ${path} (is otus daemon running? --socket / OTUS_SOCKET)\n`);
    assert.equal(r.stdout, '');
  });

  it('OTUS_SOCKET names the socket when --socket is not given', async () => {
    const path = join(tmp.dir, 'from-env.sock');
    const r = await runCtl(['task', 'list'], { env: { OTUS_SOCKET: path } });
    assert.equal(r.code, 3);
    assert.ok(r.stderr.includes(`no daemon socket at ${path} `), r.stderr);
  });

  it('a stale socket file (its daemon died): "nothing listening"', async () => {
    const path = join(tmp.dir, 'stale.sock');
    // A process binds the socket and is killed: the file stays, nobody listens.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.stdout.write('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const r = await runCtl(['status', '--socket', path]);
    assertClean(r);
    assert.equal(r.code, 3);
    assert.equal(r.stderr, `otusctl: nothing listening on ${path} (stale socket: the daemon is not running)\n`);
  });

  it('a path that is not a socket', async () => {
    const path = join(tmp.dir, 'plain-file');
    writeFileSync(path, 'not a socket\n');
    const r = await runCtl(['status', '--socket', path]);
    assert.equal(r.code, 3);
    assert.equal(r.stderr, `otusctl: ${path} is not a socket (--socket / OTUS_SOCKET)\n`);
  });

  it('a socket the caller may not open (0600, root\'s; otusctl run as nobody): "permission denied"', async (t) => {
    if (process.getuid?.() !== 0) return t.skip(`needs root to run otusctl as nobody (running as uid ${process.getuid?.()})`);
    const asNobody = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'];
    if (spawnSync('sh', ['-c', 'command -v setpriv']).status !== 0) return t.skip('needs setpriv (util-linux)');
    const canRead = spawnSync(asNobody[0], [...asNobody.slice(1), process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(CTL_MAIN)}, require('fs').constants.R_OK)`]);
    if (canRead.status !== 0) return t.skip(`nobody cannot read ${CTL_MAIN} (a checkout in a private directory)`);
    // The directory open to all, so only the socket's own mode stands in the way.
    chmodSync(tmp.dir, 0o755);
    const srv = await startRpcServer(join(tmp.dir, 'root-only.sock'), daemon);
    try {
      chmodSync(srv.path, 0o600);
      const r = await runCtl(['task', 'list', '--socket', srv.path], { prefix: asNobody });
      assertClean(r);
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stderr, `otusctl: permission denied on ${srv.path} (your uid 65534 is not allowed: run as root or ask for control.allowed_uids/allowed_gids)\n`);
      assert.equal(srv.connections, 0);
      // The same socket opened to everyone: nobody is answered (so the refusal above was the file's mode).
      chmodSync(srv.path, 0o666);
      const ok = await runCtl(['task', 'list', '--socket', srv.path], { prefix: asNobody });
      assert.equal(ok.code, 0, ok.stderr);
    } finally {
      await srv.close();
    }
  });

  it('the daemon closes the connection mid-call', async () => {
    await withServer(
      () => 'close',
      async (srv) => {
        const r = await runCtl(['task', 'list', '--socket', srv.path]);
        assertClean(r);
        assert.equal(r.code, 3);
        assert.equal(r.stderr, `otusctl: the daemon closed the connection on ${srv.path} before answering task.list\n`);
      },
    );
  });

  it('the daemon never answers: gives up after --timeout', async () => {
    await withServer(
      () => 'hang',
      async (srv) => {
        const r = await runCtl(['task', 'status', '--id', 'x', '--timeout', '300', '--socket', srv.path]);
        assertClean(r);
        assert.equal(r.code, 3);
        assert.equal(r.stderr, `otusctl: no answer from the daemon on ${srv.path} to task.status in 300 ms\n`);
        assert.ok(r.ms >= 300, `waited ${r.ms} ms`);
        assert.equal(srv.requests.length, 1);
      },
    );
  });
});

describe('otusctl: answers', () => {
  it('task list prints the table; --json prints the result object', async () => {
    await withServer(daemon, async (srv) => {
      const r = await runCtl(['task', 'list', '--socket', srv.path]);
      assertClean(r);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      const lines = r.stdout.trimEnd().split('\n');
      assert.match(lines[0], /^ID +STATE +IFACE +DRIVER +WORKERS +RESTARTS +UPTIME$/);
      assert.match(lines[1], /^voip-monitor-01 +running +eth0 +af_packet_v3 +2 +0 +\S+$/);
      assert.match(lines[3], /^http-probe +failed +lo +pcap +1 +5 +-$/);
      assert.deepEqual(
        srv.requests.map((q) => [q.jsonrpc, typeof q.id, q.method, q.params]),
        [['2.0', 'number', 'task.list', undefined]],
      );

      const j = await runCtl(['task', 'list', '--json', '--socket', srv.path]);
      assert.equal(j.code, 0, j.stderr);
      assert.deepEqual(JSON.parse(j.stdout), taskList);
    });
  });

  it('status, stats, task status, reload: human output from each result', async () => {
    await withServer(daemon, async (srv) => {
      const s = await runCtl(['status', '--socket', srv.path]);
      assert.equal(s.code, 0, s.stderr);
      assert.match(s.stdout, /^otus: +0\.1\.0, pid 4000, up 2d02h since 2025-02-27T10:00:00Z\n/);
      const st = await runCtl(['stats', '--socket', srv.path]);
      assert.equal(st.code, 0, st.stderr);
      assert.match(st.stdout, /^TASK +FRAMES +RECORDS +DROPS +DROPS BY LAYER\nvoip-monitor-01 +12\.3M +1\.2M +1\.2M /);
      for (const l of st.stdout.trimEnd().split('\n')) assert.ok(l.length <= 80, `80 columns when stdout is not a terminal: ${l}`);
      const ts = await runCtl(['task', 'status', '--id', 'voip-monitor-01', '--socket', srv.path]);
      assert.equal(ts.code, 0, ts.stderr);
      assert.match(ts.stdout, /^task voip-monitor-01: degraded\n[^]*\nROLE +INDEX +PID +CPU +STATE +RSS +CPU-S +RESTARTS +LAST EXIT\ncapture +0 +4101 /);
      assert.deepEqual(srv.requests.at(-1)?.params, { id: 'voip-monitor-01' });
      const rl = await runCtl(['reload', '--socket', srv.path]);
      assert.equal(rl.code, 0, rl.stderr);
      assert.equal(rl.stdout, 'applied (1):\n  task dns-edge\nneeds restart (1):\n  control.socket\n');
    });
  });

  it("the daemon's refusal: exit 1, `otusctl: <message> [<code>]`", async () => {
    await withServer(daemon, async (srv) => {
      const r = await runCtl(['task', 'status', '--id', 'nope', '--socket', srv.path]);
      assertClean(r);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, 'otusctl: task "nope": no such task [OTUS_ERR_TASK]\n');
      assert.equal(r.stdout, '');
    });
    // A standard JSON-RPC error has no Otus code: the JSON-RPC one is shown.
    await withServer(
      () => ({ error: { code: -32601, message: 'method not found: task.list' } }),
      async (srv) => {
        const r = await runCtl(['task', 'list', '--socket', srv.path]);
        assert.equal(r.code, 1);
        assert.equal(r.stderr, 'otusctl: method not found: task.list [JSON-RPC -32601]\n');
      },
    );
  });

  it('task create reads the YAML file and sends the object, with its text and name (for errors that give the line); - reads stdin', async () => {
    const file = join(tmp.dir, 'task.yml');
    const yaml = 'task:\n  id: voip-monitor-01\n  capture:\n    interface: eth0\n    workers: 2\n  parsers:\n    - plugin: sip\n';
    writeFileSync(file, yaml);
    const want = { task: { id: 'voip-monitor-01', capture: { interface: 'eth0', workers: 2 }, parsers: [{ plugin: 'sip' }] } };
    await withServer(daemon, async (srv) => {
      const r = await runCtl(['task', 'create', '--file', file, '--socket', srv.path]);
      assertClean(r);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'task voip-monitor-01: running\n');
      assert.equal(srv.requests[0].method, 'task.create');
      assert.deepEqual(srv.requests[0].params, { task: want, text: yaml, file });

      const s = await runCtl(['task', 'create', '--file', '-', '--socket', srv.path], { input: yaml });
      assert.equal(s.code, 0, s.stderr);
      assert.deepEqual(srv.requests[1].params, { task: want, text: yaml, file: 'stdin' });

      const stop = await runCtl(['task', 'stop', '--id', 'voip-monitor-01', '--socket', srv.path]);
      assert.equal(stop.code, 0, stop.stderr);
      assert.match(stop.stdout, /^task voip-monitor-01: stopped\nframes 12\.3M, records 1\.2M, drops 1\.2M\n/);
      assert.deepEqual(srv.requests[2].params, { id: 'voip-monitor-01' });
    });
  });

  it("validate sends the file's text and prints the effective configuration as YAML", async () => {
    const file = join(tmp.dir, 'otus.yml');
    const text = '# comments and all\ncontrol:\n  socket: /run/otus/otus.sock\n';
    writeFileSync(file, text);
    await withServer(daemon, async (srv) => {
      const r = await runCtl(['validate', '--config', file, '--socket', srv.path]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(parse(r.stdout), { control: { socket: '/run/otus/otus.sock', mode: '0660' } });
      assert.deepEqual(srv.requests[0], { jsonrpc: '2.0', id: 1, method: 'config.validate', params: { config: text, config_file: file } });
      const t = await runCtl(['validate', '--task', '-', '--socket', srv.path], { input: 'task: {id: x}\n' });
      assert.equal(t.code, 0, t.stderr);
      assert.deepEqual(srv.requests[1].params, { task: 'task: {id: x}\n', task_file: 'stdin' });
    });
  });
});

describe('otusctl: usage (exit 2, nothing sent)', () => {
  const cases: [string, string[], RegExp][] = [
    ['no command', [], /^otusctl: name a command: status, stats, top, reload, log-level, task, validate, sign-command, completion \(otusctl --help\)\n$/],
    ['an unknown command', ['frobnicate'], /^otusctl: Unknown argument: frobnicate/],
    ['an unknown task command', ['task', 'pause', '--id', 'x'], /^otusctl: Unknown arguments?: .*pause/],
    ['task stop without --id', ['task', 'stop'], /^otusctl: Missing required argument: id/],
    ['task status with an empty --id', ['task', 'status', '--id', ''], /^otusctl: --id: a value is required \[OTUS_ERR_BAD_ARGUMENT\]\n$/],
    ['an unknown flag', ['status', '--frobnicate'], /^otusctl: Unknown argument: frobnicate/],
    ['a bad --timeout', ['status', '--timeout', 'soon'], /^otusctl: --timeout: expected a positive number of milliseconds, got NaN \[OTUS_ERR_BAD_ARGUMENT\]\n$/],
    ['a --timeout setTimeout cannot wait for', ['status', '--timeout', String(2 ** 31)], /^otusctl: --timeout: expected a positive number of milliseconds, got 2147483648 /],
    ['log-level without a level', ['log-level'], /^otusctl: Not enough non-option arguments/],
    ['log-level with a level that does not exist', ['log-level', 'loud'], /^otusctl: Invalid values:\n\s+Argument: level, Given: "loud", Choices: "trace", "debug", "info", "warn", "error", "fatal"/],
    ['top with a refresh too fast', ['top', '--interval', '5'], /^otusctl: --interval: expected 100 to 3600000 milliseconds, got 5 \[OTUS_ERR_BAD_ARGUMENT\]\n$/],
    ['top --json', ['top', '--json'], /^otusctl: --json: top is a terminal view/],
    ['validate with neither file', ['validate'], /^otusctl: give --config FILE or --task FILE/],
    ['validate with both files', ['validate', '--config', 'a', '--task', 'b'], /^otusctl: Arguments config and task are mutually exclusive/],
  ];
  for (const [what, args, want] of cases) {
    it(what, async () => {
      await withServer(daemon, async (srv) => {
        const r = await runCtl([...args, '--socket', srv.path]);
        assertClean(r);
        assert.equal(r.code, 2, `${r.stdout}${r.stderr}`);
        assert.match(r.stderr, want);
        assert.equal(srv.connections, 0, 'nothing sent');
      });
    });
  }

  it('task files: unreadable, not YAML, not a mapping, over 1 MiB', async () => {
    const bad = join(tmp.dir, 'bad.yml');
    writeFileSync(bad, 'task:\n  id: x\n  capture: [unclosed\n');
    const list = join(tmp.dir, 'list.yml');
    writeFileSync(list, '- a\n- b\n');
    const big = join(tmp.dir, 'big.yml');
    writeFileSync(big, '# ' + 'x'.repeat(1024 * 1024) + '\n');
    const missing = join(tmp.dir, 'missing.yml');
    await withServer(daemon, async (srv) => {
      const cases: [string[], RegExp, string?][] = [
        [['task', 'create', '--file', missing], new RegExp(`^otusctl: --file ${missing}: cannot read \\(ENOENT: no such file or directory[^\\n]*\\) \\[OTUS_ERR_BAD_ARGUMENT\\]\\n$`)],
        [['task', 'create', '--file', bad], new RegExp(`^otusctl: ${bad}:\\d+: not valid YAML: .* \\[OTUS_ERR_BAD_ARGUMENT\\]\\n$`)],
        [['task', 'create', '--file', list], new RegExp(`^otusctl: ${list}: not a task \\(expected a mapping with task: \\{\\.\\.\\.\\}\\) \\[OTUS_ERR_BAD_ARGUMENT\\]\\n$`)],
        [['task', 'create', '--file', big], new RegExp(`^otusctl: --file ${big}: larger than 1 MiB, refused \\[OTUS_ERR_BAD_ARGUMENT\\]\\n$`)],
        [['task', 'create', '--file', '-'], /^otusctl: --file stdin: larger than 1 MiB, refused/, 'x'.repeat(1024 * 1024 + 1)],
        [['validate', '--config', big], /^otusctl: --config .*: larger than 1 MiB, refused/],
      ];
      for (const [args, want, input] of cases) {
        const r = await runCtl([...args, '--socket', srv.path], { input });
        assertClean(r);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, want);
      }
      assert.equal(srv.connections, 0, 'nothing sent');
    });
  });

  it('--help exits 0; completion prints a bash completion script', async () => {
    const h = await runCtl(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /otusctl task +create, list, stop and inspect tasks/);
    const c = await runCtl(['completion']);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /complete -o bashdefault -o default -F _otusctl_yargs_completions otusctl/);
    // What the script asks otusctl for: the task subcommands.
    const words = await runCtl(['--get-yargs-completions', 'otusctl', 'task', '']);
    assert.deepEqual(words.stdout.trim().split('\n').slice(0, 4), ['create', 'list', 'stop', 'status']);
  });
});

describe('otusctl sign-command (no daemon)', () => {
  const key = 'k'.repeat(40);
  it('completes and signs a message: one JSON line the daemon would accept; the key from a file or OTUS_COMMAND_KEY', async () => {
    const msg = join(tmp.dir, 'cmd.json');
    writeFileSync(msg, JSON.stringify({ target: '*', command: 'stop_task', payload: { task_id: 'voip' }, timestamp: '2020-01-01T00:00:00Z' }));
    const keyFile = join(tmp.dir, 'cmd.key');
    writeFileSync(keyFile, `${key}\n`);
    chmodSync(keyFile, 0o600);
    const a = await runCtl(['sign-command', msg, '--key-file', keyFile]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout.split('\n').length, 2, 'one line');
    const m = JSON.parse(a.stdout) as Record<string, unknown>;
    assert.equal(m.version, 'v1');
    assert.match(m.request_id as string, /^[0-9a-f-]{36}$/);
    assert.ok(Math.abs(Date.parse(m.timestamp as string) - Date.now()) < 60_000, 'timestamped now');
    assert.ok(signatureValid(m, Buffer.from(key)));
    assert.ok(!signatureValid({ ...m, target: 'edge-02' }, Buffer.from(key)), 'a changed message no longer verifies');
    const b = await runCtl(['sign-command', '-', '--keep-timestamp'], { input: JSON.stringify({ target: 'n', command: 'status', request_id: 'r1', timestamp: '2020-01-01T00:00:00Z' }), env: { OTUS_COMMAND_KEY: key } });
    assert.equal(b.code, 0, b.stderr);
    const mb = JSON.parse(b.stdout) as Record<string, unknown>;
    assert.equal(mb.timestamp, '2020-01-01T00:00:00Z');
    assert.equal(mb.signature, signCommand(mb, Buffer.from(key)));
  });

  it('refuses (exit 2): no key, a short key, a key file others may read, a message that is not a command', async () => {
    const msg = join(tmp.dir, 'ok.json');
    writeFileSync(msg, JSON.stringify({ target: 'n', command: 'status' }));
    const open = join(tmp.dir, 'open.key');
    writeFileSync(open, key);
    chmodSync(open, 0o644);
    const notCmd = join(tmp.dir, 'not.json');
    writeFileSync(notCmd, JSON.stringify({ command: 'status' }));
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['sign-command', msg], { OTUS_COMMAND_KEY: '' }, /^otusctl: no key: give --key-file FILE or set OTUS_COMMAND_KEY \[OTUS_ERR_BAD_ARGUMENT\]\n$/],
      [['sign-command', msg], { OTUS_COMMAND_KEY: 'short' }, /the command key has 5 bytes; at least 16/],
      [['sign-command', msg, '--key-file', open], {}, /readable or writable by others \(mode 644\)/],
      [['sign-command', notCmd], { OTUS_COMMAND_KEY: key }, /not\.json: target: expected a node id, a list of them, or "\*"/],
    ];
    for (const [args, env, want] of cases) {
      const r = await runCtl(args, { env });
      assertClean(r);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, want);
      assert.equal(r.stdout, '');
    }
  });
});
