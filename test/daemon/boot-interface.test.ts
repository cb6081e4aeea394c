// A boot task whose interface does not exist when the daemon starts (a VLAN
// or USB device made later at boot): the daemon starts it anyway, its
// capture process waits for the interface, and captures once it is made;
// a task created with otusctl on a name that does not exist is still refused.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ctl, type Daemon, startDaemon } from '../helpers/daemon.js';
import { ipv4Frame, liveSkipReason, makeVethHost, removeStaleNamespaces, tempDir, type VethHost, waitFor, waitForAsync, writePcap } from '../helpers/live.js';

const skip = liveSkipReason();

describe('a boot task on an interface made after the daemon started', { skip: skip ?? false }, () => {
  let tmp: ReturnType<typeof tempDir>;
  let host: VethHost;
  let d: Daemon;
  let socket = '';
  const N = 200;
  const out = (): string => join(tmp.dir, 'boot.ndjson');
  const records = (): number => {
    try {
      return readFileSync(out(), 'utf8').split('\n').filter((l) => l.includes('"sport":4')).length;
    } catch {
      return 0;
    }
  };

  before(async () => {
    removeStaleNamespaces();
    tmp = tempDir();
    host = makeVethHost();
    host.destroy(); // its names are known; the interface is made again after the daemon has started
    writePcap(
      join(tmp.dir, 'f.pcap'),
      Array.from({ length: N }, (_, i) => ipv4Frame({ src: [10, 8, 0, 1], dst: [10, 8, 0, 2], sport: 40000 + (i % 16), dport: 20000 }, 64, i)),
    );
    socket = join(tmp.dir, 'otus.sock');
    const config =
      `otus:\n  control:\n    socket: ${socket}\n  supervisor:\n    heartbeat_ms: 200\n    restart:\n      initial_ms: 100\n      max_ms: 400\n      budget: 3\n      window_ms: 60000\n` +
      `  reporters:\n    file: {}\n    console: {}\n  tasks:\n    - id: boot\n      capture:\n        interface: ${host.capIf}\n      reporter:\n        type: file\n        config:\n          path: ${out()}\n      unmatched_policy: forward\n`;
    d = await startDaemon(tmp.dir, config);
  });

  after(async () => {
    await d?.stop();
    host?.destroy();
    tmp?.cleanup();
  });

  test('the boot task waits for its interface, then captures; a created task on a missing one is refused', async () => {
    let last: unknown = null;
    const waiting = await waitForAsync(async () => {
      const r = await ctl(socket, ['task', 'status', '--id', 'boot']);
      last = r.json ?? r.stderr;
      return r.status === 0 && r.json.state === 'degraded' && r.json.processes.some((p: { role: string; state: string }) => p.role === 'capture' && p.state === 'waiting');
    }, 15_000);
    assert.ok(waiting, `waiting: ${JSON.stringify(last)}\n${d.err}`);
    assert.match((last as { reason: string }).reason, new RegExp(`interface ${host.capIf} is gone`));
    assert.ok(d.logs().some((l) => String(l.msg).includes(`interface ${host.capIf} does not exist yet`)), 'the daemon said so at boot');

    // Interactively, a name that is not there is a mistake in the task: refused, naming the key.
    writeFileSync(join(tmp.dir, 'typo.yml'), `task:\n  id: typo\n  capture:\n    interface: ${host.capIf}x\n  reporter:\n    type: console\n`);
    const typo = await ctl(socket, ['task', 'create', '--file', join(tmp.dir, 'typo.yml')]);
    assert.equal(typo.status, 1, typo.stdout);
    assert.match(typo.stderr, /typo\.yml:4: task\.capture\.interface: interface "\S+": no such interface/);

    host.recreate();
    assert.ok(await waitForAsync(async () => (await ctl(socket, ['task', 'status', '--id', 'boot'])).json?.state === 'running', 15_000), 'running once the interface exists');
    host.replay(join(tmp.dir, 'f.pcap'));
    assert.ok(await waitFor(() => records() === N, 20_000), `records: ${records()}`);
    const s = (await ctl(socket, ['task', 'status', '--id', 'boot'])).json;
    assert.ok(s.processes.every((p: { restarts: number }) => p.restarts === 0), 'it waited; nothing was restarted');
  });
});
