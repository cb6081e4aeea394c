// The xdp driver on a veth pair: AF_XDP in copy mode (generic and the veth's
// native XDP) receives every frame byte-exact; stopping removes libxdp's
// program from the interface (so does killing the process) and leaks no fd or mapping; a filter is refused
// with a message naming af_packet_v3; an interface that carries the host's
// own traffic is refused unless the operator says so (--xdp-steal).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CaptureOptions, defaultCaptureOptions } from '../../src/capture/capturer.js';
import { XdpCapturer } from '../../src/capture/xdp.js';
import { native } from '../../src/native.js';
import { planLiveTask } from '../../src/supervisor/live.js';
import { checkTask } from '../../src/supervisor/task-run.js';
import { OtusError } from '../../src/util/errors.js';
import { hex, ipv4Frame, liveSkipReason, makeVethHost, mapLines, openFds, removeStaleNamespaces, tempDir, type VethHost, waitFor, writePcap } from '../helpers/live.js';

const OTUS = fileURLToPath(new URL('../../src/cli/otus.js', import.meta.url));
const why = native.xdpAvailable();
const skip = liveSkipReason() ?? (why ? `xdp driver not built: ${why}` : null);

describe('xdp driver on veth', { skip: skip ?? false }, () => {
  let host: VethHost;
  let tmp: ReturnType<typeof tempDir>;
  before(() => {
    if (skip) return;
    removeStaleNamespaces();
    host = makeVethHost();
    tmp = tempDir();
  });
  after(() => {
    host?.destroy();
    tmp?.cleanup();
  });

  const xdpAttached = (): boolean => /\bxdp/.test(execFileSync('ip', ['link', 'show', host.capIf], { encoding: 'utf8' }));

  for (const mode of ['generic', 'native'] as const) {
    test(`${mode} XDP, copy mode: every frame byte-exact, program removed on stop`, async () => {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 200; i++) frames.push(ipv4Frame({ src: [10, 9, 0, 1], dst: [10, 9, 0, 2], sport: 4000 + i, dport: 5060 }, (i * 41) % 1400, i));
      const file = join(tmp.dir, `xdp-${mode}.pcap`);
      writePcap(file, frames);
      const cap = new XdpCapturer({ ...defaultCaptureOptions(host.capIf), xdpMode: mode, xdpFrames: 1024 });
      const got: string[] = [];
      const lens: number[] = [];
      const s = cap.capture(0);
      s.start({
        frame(buf, _v, off, caplen, len) {
          got.push(hex(buf.subarray(off, off + caplen)));
          lens.push(len);
        },
      });
      try {
        assert.ok(xdpAttached(), 'libxdp attached its program');
        host.replay(file);
        assert.ok(await waitFor(() => got.length >= frames.length), `${got.length} of ${frames.length}`);
        assert.deepEqual(got, frames.map(hex));
        assert.deepEqual(lens, frames.map((f) => f.length));
        assert.equal(s.stats().kernelDrops, 0);
      } finally {
        cap.stop();
      }
      assert.ok(!xdpAttached(), 'program detached with the last socket');
    });
  }

  test('a capture process killed with its socket open leaves no program behind: the next one opens the queue', async () => {
    const mod = (p: string): string => new URL(p, import.meta.url).href;
    const src = `import { XdpCapturer } from '${mod('../../src/capture/xdp.js')}';
      import { defaultCaptureOptions } from '${mod('../../src/capture/capturer.js')}';
      new XdpCapturer({ ...defaultCaptureOptions('${host.capIf}'), xdpMode: 'generic', xdpFrames: 256 }).capture(0).start({ frame() {} });
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    const gone = new Promise((r) => child.once('exit', r));
    assert.ok(await waitFor(() => out.includes('ready') || child.exitCode !== null), 'the child opened its socket');
    assert.equal(child.exitCode, null);
    assert.ok(xdpAttached(), 'the child attached the program');
    child.kill('SIGKILL');
    await gone;
    assert.ok(await waitFor(() => !xdpAttached()), 'the program went with the killed process');
    const cap = new XdpCapturer({ ...defaultCaptureOptions(host.capIf), xdpMode: 'generic', xdpFrames: 256 });
    try {
      cap.capture(0).start({ frame() {} });
      assert.ok(xdpAttached());
    } finally {
      cap.stop();
    }
  });

  test('20 start/stop cycles leak no fd and no mapping', () => {
    const cycle = (): void => {
      const cap = new XdpCapturer({ ...defaultCaptureOptions(host.capIf), xdpMode: 'generic', xdpFrames: 256 });
      cap.capture(0).start({ frame() {} });
      cap.stop();
    };
    cycle();
    const fds = openFds();
    const maps = mapLines();
    for (let i = 0; i < 20; i++) cycle();
    assert.equal(openFds(), fds);
    assert.ok(mapLines() - maps < 10, `maps grew by ${mapLines() - maps}`);
  });

  test("an interface that carries this host's traffic (lo, an address, a bridge port) is refused unless the operator says --xdp-steal / capture.xdp_steal", async () => {
    const refused = (o: Partial<CaptureOptions>, why: RegExp): void =>
      assert.throws(
        () => new XdpCapturer({ ...defaultCaptureOptions(host.capIf), ...o }).init(),
        (e: unknown) => e instanceof OtusError && e.code === 'OTUS_ERR_BAD_ARGUMENT' && why.test(e.message) && /--xdp-steal/.test(e.message) && /af_packet_v3/.test(e.message),
      );
    // A mirror port (no address, no master) is fine as it is.
    new XdpCapturer(defaultCaptureOptions(host.capIf)).init();
    execFileSync('ip', ['addr', 'add', '10.201.0.1/24', 'dev', host.capIf]);
    try {
      refused({}, new RegExp(`^xdp driver on ${host.capIf}: it has address 10\\.201\\.0\\.1, so it carries this host's own traffic`));
      new XdpCapturer({ ...defaultCaptureOptions(host.capIf), xdpSteal: true }).init();
    } finally {
      execFileSync('ip', ['addr', 'flush', 'dev', host.capIf]);
    }
    const br = `${host.capIf.slice(0, -1)}br`;
    execFileSync('ip', ['link', 'add', 'name', br, 'type', 'bridge']);
    try {
      execFileSync('ip', ['link', 'set', host.capIf, 'master', br]);
      refused({}, new RegExp(`it is a port of ${br}`));
    } finally {
      execFileSync('ip', ['link', 'del', br]);
    }
    refused({ iface: 'lo' }, /^xdp driver on lo: it is the loopback/);

    // The command line: refused before anything opens (it used to capture lo, taking other processes' local traffic).
    const cli = spawnSync(process.execPath, [OTUS, 'capture', '--driver', 'xdp', '-i', 'lo', '-c', '1'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(cli.status, 2, cli.stderr);
    assert.match(cli.stderr, /^otus: xdp driver on lo: it is the loopback, .*--xdp-steal .*\[OTUS_ERR_BAD_ARGUMENT\]\n$/);

    // A task, as `otus capture --task` and the daemon's task.create plan it (planLiveTask), with and without capture.xdp_steal.
    const plan = async (steal: boolean) => {
      const file = join(tmp.dir, `xdp-${steal}.yml`);
      writeFileSync(file, `task:\n  id: xdp-steal\n  capture: {driver: xdp, interface: lo${steal ? ', xdp_steal: true' : ''}}\n  unmatched_policy: forward\n`);
      const t = await checkTask(file, [], { hostname: 'test' }, '/dev/null');
      return planLiveTask(t, { iface: null, driver: null, workers: 1, cpus: 'off', node: { hostname: 'test' }, settings: { heartbeatMs: 1000, watchdogMs: 5000, stopTimeoutMs: 5000, restart: null } });
    };
    await assert.rejects(plan(false), (e: unknown) => e instanceof OtusError && e.code === 'OTUS_ERR_BAD_ARGUMENT' && /it is the loopback/.test(e.message));
    assert.equal((await plan(true)).capture.xdpSteal, true);
  });

  test('filters and more streams than RX queues are refused, naming af_packet_v3', () => {
    assert.throws(() => new XdpCapturer({ ...defaultCaptureOptions(host.capIf), filter: 'udp' }).init(), (e: unknown) => e instanceof OtusError && e.code === 'OTUS_ERR_UNSUPPORTED' && /af_packet_v3/.test(e.message));
    assert.throws(() => new XdpCapturer({ ...defaultCaptureOptions(host.capIf), streams: 64 }).init(), (e: unknown) => e instanceof OtusError && /RX queue/.test(e.message) && /af_packet_v3/.test(e.message));
  });
});
