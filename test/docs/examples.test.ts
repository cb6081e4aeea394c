// Every shell example of README.md and docs/*.md runs here, as a user would
// type it (test/docs/examples.ts extracts them and expands synopses into
// concrete variants). What a placeholder stands for is substituted: IFACE
// and eth0 a veth whose peer this test sends traffic from, FILE and CAPTURE a
// capture in the repository, TASK.yml the VoIP task with its interface set to
// the veth, OTUS.yml and /etc/otus/otus.yml configs/otus.yml, PATH and DIR
// temporary ones; otusctl talks to a daemon this test starts. `otus` and
// `otusctl` are the built commands, put first on PATH. A command that runs
// until stopped (capture, daemon) is stopped once it is ready (and has seen
// traffic), as Ctrl-C would. Each must exit 0, with no coded error, usage
// text or stack trace on stderr. What cannot run here is listed below with
// the reason; an example that is neither runnable nor listed fails the test.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { allowedCpus } from '../../src/capture/iface.js';
import { native } from '../../src/native.js';
import { liveSkipReason, makeVethHost, removeStaleNamespaces, tempDir, type VethHost, waitFor } from '../helpers/live.js';
import { docFiles, type Example, examplesOf, expand } from './examples.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const skip = liveSkipReason();

/** Examples that do not run here, and why. Each must still match some example (a stale entry fails). */
const CANNOT_RUN: { match: RegExp; why: string }[] = [
  { match: /^bash scripts\/setup\.sh( --test)?$/, why: 'installs system packages and builds from a fresh clone: CI runs it (.ci/run) before the suite' },
  { match: /^npm test$/, why: 'the whole suite, which runs this test' },
  { match: /^scripts\/install\.sh$/, why: 'installs into /usr/lib/otus, /etc/otus and systemd on this host: test/systemd/install.test.ts runs it into a scratch prefix' },
  { match: /^systemctl (enable --now|reload) otus$/, why: 'needs systemd as PID 1 and the unit installed: test/systemd/unit.test.ts checks the unit; here a daemon started by hand stands in for it' },
  { match: /^(sudo )?npm run bench(:\w+)?$/, why: 'benchmarks are programs, not tests: each runs many seconds at full load (bench/; test/bench/run.test.ts smoke-runs npm run bench)' },
  { match: /^otusctl top( --interval MS)?$/, why: 'an interactive view that runs until q or Ctrl-C: test/daemon/top.test.ts drives it in tmux against a daemon with live traffic' },
  { match: /^scripts\/kafka\.sh (start|status|stop|clean)$/, why: 'fetches and runs a Java Kafka broker: test/kafka/*.test.ts start, query and stop it through this script' },
  { match: /^otusctl sign-command stop\.json --key-file \/etc\/otus\/command\.key$/, why: 'signs a message file with a key file the example supposes: test/kafka/commands.test.ts signs with it and sends what it prints to a daemon, test/ctl/cli.test.ts checks its output and refusals' },
  // A pipeline: read as a synopsis, each `|` an alternative, so each variant starts with jq.
  { match: /^jq (-cjS 'del\(\.signature\)' msg\.json|openssl dgst -sha256 -hmac|cut -d)/, why: 'the signature without Otus, over a message file the example supposes: test/kafka/commands.test.ts runs this pipeline on a message otusctl signed and compares the two' },
  { match: /^openssl rand -hex 32 > \/etc\/otus\/command\.key$|^chmod 600 \/etc\/otus\/command\.key$/, why: "writes the host's command key under /etc/otus: the Kafka test writes its own key file, mode 0600" },
  { match: /^curl -s 127\.0\.0\.1:9469\//, why: "scrapes a daemon on the default metrics port, which any daemon started without metrics.listen (other tests') may hold: test/daemon/metrics.test.ts scrapes one on a port of its own" },
];

/** Variants that must be refused, and how: a synopsis cannot say "give at least one of these". */
const REFUSED: { match: RegExp; code: string; why: string }[] = [
  { match: /^otus validate$/, code: 'OTUS_ERR_BAD_ARGUMENT', why: 'validate needs --config, --task or both' },
];

const RUNNABLE = /^(sudo )?(otus|otusctl) |^npm start$/;

interface Case {
  ex: Example;
  cmd: string;
}

const cases: Case[] = docFiles(ROOT).flatMap((f) => examplesOf(ROOT, f)).flatMap((ex) => expand(ex.text).map((cmd) => ({ ex, cmd })));

describe('the examples in README.md and docs/*.md', () => {
  it('are all runnable here or listed, with the reason, as not runnable; no entry of that list is stale', () => {
    const unclassified = cases.filter((c) => !RUNNABLE.test(c.cmd) && !CANNOT_RUN.some((r) => r.match.test(c.cmd)));
    assert.deepEqual(unclassified.map((c) => `${c.ex.where}: ${c.cmd}`), [], 'teach this test to run them, or say why it cannot');
    for (const r of [...CANNOT_RUN, ...REFUSED]) assert.ok(cases.some((c) => r.match.test(c.cmd)), `${r.match} matches no example any more`);
    assert.ok(cases.filter((c) => RUNNABLE.test(c.cmd)).length >= 30, `${cases.length} examples`);
    for (const c of cases) {
      const r = CANNOT_RUN.find((x) => x.match.test(c.cmd));
      if (r) console.log(`# not run: ${c.ex.where}: ${c.cmd}: ${r.why}`);
    }
  });
});

describe('the examples in README.md and docs/*.md, run', { skip: skip ?? false }, () => {
  let host: VethHost;
  let tmp: ReturnType<typeof tempDir>;
  let bin = '';
  let task = '';
  let taskId = '';
  let daemon: ChildProcess | null = null;
  let daemonSocket = '';
  let seq = 0;
  const capture = join(ROOT, 'test/fixtures/captures/suricata-verify--sip-sdp.pcap');
  const traffic = join(ROOT, 'samples/rtp-g711a.pcap');
  const workers = Math.min(2, allowedCpus().length);

  before(() => {
    if (skip) return;
    removeStaleNamespaces();
    host = makeVethHost();
    tmp = tempDir();
    bin = join(tmp.dir, 'bin');
    mkdirSync(bin);
    const shim = (name: string, body: string): void => {
      writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    shim('otus', `exec "${process.execPath}" "${join(ROOT, 'dist/src/cli/otus.js')}" "$@"`);
    shim('otusctl', `exec "${process.execPath}" "${join(ROOT, 'dist/src/ctl/main.js')}" "$@"`);
    shim('sudo', 'exec "$@"'); // this test runs as root already
    // The VoIP task as shipped, on the veth, with as many capture processes as this machine allows.
    const voip = readFileSync(join(ROOT, 'configs/task-voip.yml'), 'utf8');
    taskId = /^\s*id:\s*(\S+)/m.exec(voip)![1]!;
    task = join(tmp.dir, 'task-voip.yml');
    writeFileSync(task, voip.replace(/interface: \S+/, `interface: ${host.capIf}`).replace(/workers: \d+/, `workers: ${workers}`));
  });
  after(async () => {
    if (daemon !== null && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon!.once('exit', r));
    }
    host?.destroy();
    tmp?.cleanup();
  });

  /** The daemon otusctl examples talk to (systemctl would have started it), on a socket of its own. */
  async function ensureDaemon(): Promise<void> {
    if (daemon !== null) return;
    daemonSocket = join(tmp.dir, 'otusctl.sock');
    daemon = spawn(process.execPath, [join(ROOT, 'dist/src/cli/otus.js'), 'daemon', '--socket', daemonSocket], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    daemon.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    assert.ok(await waitFor(() => /otus daemon ready/.test(log) || daemon!.exitCode !== null, 30_000), log);
    assert.equal(daemon.exitCode, null, log);
  }

  /** The example with its placeholders replaced (see the top of this file). */
  function concrete(cmd: string): string {
    const w = cmd.split(/\s+/);
    const file = w.includes('--driver') && w[w.indexOf('--driver') + 1] === 'file';
    const out = w.map((t, i) => {
      const prev = w[i - 1] ?? '';
      const fresh = (ext: string): string => join(tmp.dir, `out-${++seq}${ext}`);
      if (t === 'IFACE' || t === 'eth0') return file ? capture : host.capIf;
      if (t === 'TASK.yml' || t === 'task.yml' || t === 'configs/task-voip.yml') return task;
      if (t === 'OTUS.yml' || t === '/etc/otus/otus.yml') return join(ROOT, 'configs/otus.yml');
      if (t === 'CAPTURE') return capture;
      if (t === 'FILE') return prev === '--out' ? fresh('.ndjson') : prev === '--stats-json' ? fresh('.json') : prev === '--config' ? join(ROOT, 'configs/otus.yml') : prev === '--task' ? task : capture;
      if (t === 'PATH' && prev === '--socket') return fresh('.sock');
      if (t === 'DIR') {
        const d = fresh('.d');
        mkdirSync(d, { mode: 0o755 });
        return d;
      }
      if (t === 'N') return prev === '--workers' ? String(workers) : prev === '--limit' ? '5' : '3';
      if (t === 'S') return '1';
      if (t === 'BPF') return 'udp';
      if (t === 'ID') return taskId;
      return t;
    });
    const left = out.filter((t) => /^[A-Z][A-Z0-9_]*(\.yml)?$/.test(t));
    assert.deepEqual(left, [], `placeholders this test does not know in "${cmd}": teach concrete() what they stand for`);
    return out.join(' ');
  }

  /** Why this command cannot run on this machine (tools not built, too few CPUs), or null. */
  function unavailable(cmd: string): string | null {
    if (/--driver xdp\b/.test(cmd) && native.xdpAvailable()) return `xdp driver not built: ${native.xdpAvailable()}`;
    const m = /--workers (\d+)/.exec(cmd);
    if (m && Number(m[1]) > allowedCpus().length) return `needs ${m[1]} CPUs, ${allowedCpus().length} allowed`;
    return null;
  }

  /** Runs one command through sh, as typed; stops it once ready if it would run until stopped. */
  async function runExample(cmd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    if (/^otusctl /.test(cmd)) await ensureDaemon();
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, HOME: tmp.dir, OTUS_SOCKET: daemonSocket };
    const p = spawn('sh', ['-c', `exec ${cmd}`], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-65536)));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    let done = false;
    void exited.then(() => (done = true));
    const kill = setTimeout(() => p.kill('SIGKILL'), 120_000);
    const longRunning = /^(sudo )?otus (capture|daemon)\b/.test(cmd);
    if (longRunning) {
      await waitFor(() => done || /: capturing\n|"msg":"otus daemon ready"/.test(stderr), 60_000);
      if (!done && /otus capture/.test(cmd)) {
        host.replay(traffic); // something to see, and enough for --count
        await waitFor(() => done, 3000);
      }
      if (!done) p.kill(/otus daemon/.test(cmd) ? 'SIGTERM' : 'SIGINT');
    }
    const code = await exited;
    clearTimeout(kill);
    return { code, stdout, stderr };
  }

  for (const c of cases) {
    if (!RUNNABLE.test(c.cmd) || CANNOT_RUN.some((r) => r.match.test(c.cmd))) continue;
    const refused = REFUSED.find((r) => r.match.test(c.cmd));
    it(`${c.ex.where}: ${c.cmd}`, async (t) => {
      const cmd = concrete(c.cmd);
      const why = unavailable(cmd);
      if (why !== null) return t.skip(why);
      const r = await runExample(cmd);
      const got = `${cmd}\nexit ${r.code}\n${r.stderr.slice(-4000)}`;
      if (refused) {
        assert.equal(r.code, 2, got);
        assert.match(r.stderr, new RegExp(`\\[${refused.code}\\]\\n$`), got);
        return;
      }
      assert.equal(r.code, 0, got);
      assert.doesNotMatch(r.stderr, /\[OTUS_ERR_[A-Z_]+\]|Unknown argument|^\s+at /m, got);
      if (/>> ~\/\.bashrc$/.test(c.cmd)) assert.ok(existsSync(join(tmp.dir, '.bashrc')) && readFileSync(join(tmp.dir, '.bashrc'), 'utf8').includes('otusctl'));
    });
  }
});
