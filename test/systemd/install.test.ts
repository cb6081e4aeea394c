// scripts/install.sh --prefix DIR --no-system: the tree alone, built from this
// checkout, runs from where it was installed, holds production dependencies only,
// and nobody but its owner can write to it. Replacing and removing it touch
// only a tree the script made.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = join(REPO, 'scripts/install.sh');
const dir = mkdtempSync(join(tmpdir(), 'otus-install-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function install(...args: string[]) {
  return spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8', timeout: 120_000 });
}

/** Every path under root that is not a symlink, relative to root. */
function walk(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = join(rel, e.name);
    if (e.isSymbolicLink()) continue;
    out.push(p);
    if (e.isDirectory()) out.push(...walk(root, p));
  }
  return out;
}

test('install --prefix --no-system: a tree that runs, production dependencies only, writable by its owner alone', { timeout: 180_000 }, () => {
  const prefix = join(dir, 'lib', 'otus');
  const r = install('--prefix', prefix, '--no-system');
  assert.equal(r.status, 0, r.stderr);

  const help = spawnSync(join(prefix, 'bin/otus'), ['--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /otus decode <file>/);
  // The addon loads from the installed tree: decode a frame.
  const decoded = spawnSync(join(prefix, 'bin/otus'), ['decode', join(REPO, 'samples/rtp-g711a.pcap'), '--limit', '1'], { encoding: 'utf8' });
  assert.equal(decoded.status, 0, decoded.stderr);
  assert.equal(JSON.parse(decoded.stdout.trim()).frame, 1);
  assert.match(readFileSync(join(prefix, 'bin/otusctl'), 'utf8'), /dist\/src\/ctl\/main\.js/);

  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: object; devDependencies: object };
  for (const dep of Object.keys(pkg.dependencies)) assert.ok(existsSync(join(prefix, 'node_modules', dep, 'package.json')), `dependency ${dep} missing`);
  // A devDependency a production dependency also pulls in (@types/node, by protobufjs under @grpc/grpc-js) stays: the lockfile marks only the others `dev`.
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const devOnly = Object.keys(pkg.devDependencies).filter((dep) => lock.packages[`node_modules/${dep}`]?.dev === true);
  assert.ok(devOnly.includes('typescript'), `dev-only: ${devOnly}`);
  for (const dep of devOnly) assert.ok(!existsSync(join(prefix, 'node_modules', dep)), `devDependency ${dep} installed`);
  assert.ok(!existsSync(join(prefix, 'dist/test')), 'tests installed');

  const paths = walk(prefix);
  assert.ok(paths.length > 100, `only ${paths.length} paths installed`);
  const writable = paths.filter((p) => (lstatSync(join(prefix, p)).mode & 0o022) !== 0);
  assert.deepEqual(writable, [], 'group- or world-writable');
  if (process.getuid?.() === 0) {
    const foreign = paths.filter((p) => lstatSync(join(prefix, p)).uid !== 0 || lstatSync(join(prefix, p)).gid !== 0);
    assert.deepEqual(foreign, [], 'not owned by root:root');
  }

  // Installing again replaces the tree whole.
  writeFileSync(join(prefix, 'stale'), 'x');
  const again = install('--prefix', prefix, '--no-system');
  assert.equal(again.status, 0, again.stderr);
  assert.ok(!existsSync(join(prefix, 'stale')), 'the old tree was not replaced');
  assert.deepEqual(readdirSync(join(dir, 'lib')), ['otus'], 'a temporary tree was left beside it');

  const removed = install('--prefix', prefix, '--no-system', '--uninstall');
  assert.equal(removed.status, 0, removed.stderr);
  assert.ok(!existsSync(prefix));
});

test('install and uninstall refuse a directory the script did not make', { timeout: 60_000 }, () => {
  const foreign = join(dir, 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'keep'), 'x');
  const r = install('--prefix', foreign, '--no-system');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /was not installed by this script/);
  const u = install('--prefix', foreign, '--no-system', '--uninstall');
  assert.notEqual(u.status, 0);
  assert.ok(existsSync(join(foreign, 'keep')));
  const rel = install('--prefix', 'relative/dir', '--no-system');
  assert.equal(rel.status, 2);
  assert.match(rel.stderr, /absolute path/);
});

// The system part writes /etc and /usr/local/bin: run it in a private mount
// namespace where both are overlays on a scratch directory, so the host is untouched.
const SYSTEM_RUN = `
set -e
s=$1; tree=$2; scratch=$3
for d in etc local; do mkdir -p "$scratch/$d-up" "$scratch/$d-work"; done
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$scratch/etc-up,workdir=$scratch/etc-work" /etc
mount -t overlay overlay -o "lowerdir=/usr/local/bin,upperdir=$scratch/local-up,workdir=$scratch/local-work" /usr/local/bin
echo MOUNTED
bash "$s" --prefix "$tree" >/dev/null
stat -c '%a %U:%G %n' /etc/otus /etc/otus/otus.yml /etc/systemd/system/otus.service
readlink /usr/local/bin/otus /usr/local/bin/otusctl
getent group otus | cut -d: -f1
grep '^ExecStart=' /etc/systemd/system/otus.service
otus --help | head -1
echo 'otus: {kept: true}' > /etc/otus/otus.yml
bash "$s" --prefix "$tree" >/dev/null
cat /etc/otus/otus.yml
bash "$s" --prefix "$tree" --uninstall >/dev/null
ls /etc/otus /usr/local/bin/otus /usr/local/bin/otusctl /etc/systemd/system/otus.service "$tree" 2>&1 || true
`;

const unshareSkip =
  process.getuid?.() !== 0
    ? `needs root: installs a group, /etc and /usr/local/bin in a private mount namespace (running as uid ${process.getuid?.()})`
    : spawnSync('sh', ['-c', 'command -v unshare']).status !== 0
      ? 'needs unshare (util-linux)'
      : false;

test('install as root: group otus, /etc/otus/otus.yml 0640 kept on reinstall, links, unit; uninstall keeps /etc/otus', { skip: unshareSkip, timeout: 180_000 }, (t) => {
  const tree = join(dir, 'system', 'otus');
  const scratch = join(dir, 'overlay');
  mkdirSync(scratch, { recursive: true });
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', SYSTEM_RUN, 'run', SCRIPT, tree, scratch], { encoding: 'utf8', timeout: 170_000 });
  if (!r.stdout.startsWith('MOUNTED')) {
    t.skip(`cannot mount overlays in a private namespace here: ${r.stderr.trim()}`);
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').slice(1);
  assert.deepEqual(lines.slice(0, 3), ['755 root:root /etc/otus', '640 root:root /etc/otus/otus.yml', '644 root:root /etc/systemd/system/otus.service']);
  assert.deepEqual(lines.slice(3, 5), [join(tree, 'bin/otus'), join(tree, 'bin/otusctl')]);
  assert.equal(lines[5], 'otus');
  assert.equal(lines[6], `ExecStart=${tree}/bin/otus daemon --config /etc/otus/otus.yml`);
  assert.equal(lines[7], 'otus <command>');
  assert.equal(lines[8], 'otus: {kept: true}', 'reinstalling replaced the configuration');
  // After --uninstall only /etc/otus is left.
  const rest = lines.slice(9).join('\n');
  assert.match(rest, /^otus\.yml$/m);
  for (const gone of ['/usr/local/bin/otus', '/usr/local/bin/otusctl', '/etc/systemd/system/otus.service', tree]) {
    assert.ok(rest.includes(`cannot access '${gone}'`), `${gone} was not removed:\n${rest}`);
  }
});
