// systemd/otus.service: systemd's own parser accepts every line (systemd-analyze
// verify prints a warning and exits 0 for an unknown key or value, so its
// output must be empty), and the directives the daemon relies on are there.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const UNIT = fileURLToPath(new URL('../../../systemd/otus.service', import.meta.url));
const text = readFileSync(UNIT, 'utf8');

/** Section → key → values in order (a key may repeat). */
function parseUnit(src: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let cur: Map<string, string[]> | undefined;
  for (const raw of src.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      cur = new Map();
      sections.set(sec[1], cur);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(cur && eq > 0, `not a key=value line inside a section: ${line}`);
    const key = line.slice(0, eq);
    cur.set(key, [...(cur.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

const unit = parseUnit(text);
const service = unit.get('Service')!;
const one = (key: string): string | undefined => {
  const v = service.get(key);
  assert.ok(!v || v.length === 1, `${key} is set ${v?.length} times`);
  return v?.[0];
};

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const skip = analyze.status === 0 ? false : 'needs systemd-analyze (scripts/setup.sh --test installs systemd)';

test('systemd-analyze verify accepts the unit without a warning', { skip }, () => {
  // verify insists that ExecStart's program exists: a copy names node instead of the installed wrapper.
  const dir = mkdtempSync(join(tmpdir(), 'otus-unit-'));
  try {
    const copy = join(dir, 'otus.service');
    writeFileSync(copy, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', copy], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', 'systemd-analyze warned');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every capability the unit names is one systemd knows', { skip }, () => {
  // An unknown capability name is dropped silently by verify: check the names against systemd's table.
  const known = new Set(
    spawnSync('systemd-analyze', ['capability'], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((l) => l.trim().split(/\s+/)[0])
      .filter((n) => n.startsWith('cap_')),
  );
  assert.ok(known.has('cap_net_raw'), 'systemd-analyze capability listed nothing');
  for (const key of ['CapabilityBoundingSet', 'AmbientCapabilities']) {
    for (const cap of one(key)!.split(/\s+/)) assert.ok(known.has(cap.toLowerCase()), `${key}: ${cap} is not a capability systemd knows`);
  }
});

test('the unit runs the daemon as a notify service with a watchdog, reload by SIGHUP and an ordered stop', () => {
  assert.equal(one('Type'), 'notify');
  assert.equal(one('NotifyAccess'), 'main');
  assert.match(one('ExecStart')!, /^\/usr\/lib\/otus\/bin\/otus daemon --config \/etc\/otus\/otus\.yml$/);
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.match(one('WatchdogSec')!, /^[1-9][0-9]*s$/);
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('KillMode'), 'mixed');
  assert.ok(one('TimeoutStopSec'));
  assert.equal(one('RuntimeDirectory'), 'otus');
  assert.equal(one('RuntimeDirectoryMode'), '0750');
  assert.equal(one('LimitMEMLOCK'), 'infinity');
  assert.equal(unit.get('Install')?.get('WantedBy')?.[0], 'multi-user.target');
});

test('the unit bounds the capabilities to what capture needs', () => {
  const want = ['CAP_BPF', 'CAP_IPC_LOCK', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_SYS_NICE'];
  assert.deepEqual(one('CapabilityBoundingSet')!.split(/\s+/).sort(), want);
  assert.deepEqual(one('AmbientCapabilities')!.split(/\s+/).sort(), want);
  assert.equal(one('User'), undefined, 'capture runs as root (bounded), not as a user without the capabilities');
});

test('the unit hardens what Node.js tolerates, and keeps capture and the JIT working', () => {
  for (const [key, value] of Object.entries({
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    ProtectKernelTunables: 'yes',
    ProtectKernelModules: 'yes',
    ProtectControlGroups: 'yes',
    RestrictNamespaces: 'yes',
    LockPersonality: 'yes',
    RestrictRealtime: 'yes',
    RestrictSUIDSGID: 'yes',
    SystemCallArchitectures: 'native',
    UMask: '0027',
  })) {
    assert.equal(one(key), value, key);
  }
  // V8's JIT needs writable-then-executable pages; capture needs the network.
  for (const key of ['MemoryDenyWriteExecute', 'PrivateNetwork', 'PrivateDevices', 'InaccessiblePaths', 'User', 'DynamicUser']) {
    assert.equal(service.has(key), false, `${key} must not be set`);
  }
  const families = one('RestrictAddressFamilies')!.split(/\s+/);
  for (const af of ['AF_UNIX', 'AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_PACKET', 'AF_XDP']) assert.ok(families.includes(af), af);
  // Under ProtectSystem=strict these are the writable places besides /dev (and so /dev/shm).
  assert.equal(one('StateDirectory'), 'otus');
  assert.equal(one('LogsDirectory'), 'otus');
});
