// --plugin-dir trust: a plugin directory others could write to is refused
// before anything in it runs, only the plugins a task names are imported
// (in every process of a run), and no entry may resolve outside the
// directory. Plugins write a marker file when imported: its absence is the
// proof that nothing ran.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistry } from '../../src/plugin/builtins.js';
import { OtusError } from '../../src/util/errors.js';
import { OTUS, SAMPLE } from './helpers.js';

const NOBODY = 65534;
const rootSkip = process.getuid?.() === 0 ? false : `needs root: files owned by another user (running as uid ${process.getuid?.()})`;

/** A plugin module that, once imported, appends its name to `marker`. */
function plugin(name: string, marker: string, kind = 'processor'): string {
  return (
    `import { appendFileSync } from 'node:fs';\nappendFileSync(${JSON.stringify(marker)}, ${JSON.stringify(`${name} pid=`)} + process.pid + ' uid=' + process.getuid() + '\\n');\n` +
    `export default { meta: { name: '${name}', version: '1.0.0', kind: '${kind}', labels: ['${name}'], configSchema: { type: 'object' } },\n` +
    `  init() { return { priority: 1, process(v) { v.labels.set('${name}', 'yes'); return v; } }; } };\n`
  );
}

async function refused(dirs: string[], ...parts: string[]): Promise<void> {
  await assert.rejects(createRegistry(dirs), (e: unknown) => {
    assert.ok(e instanceof OtusError, String(e));
    assert.equal(e.code, 'OTUS_ERR_PLUGIN_UNSAFE', e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    return true;
  });
}

test('only the plugins a task names are imported, in the supervisor and in every process of the run', () => {
  const base = mkdtempSync(join(tmpdir(), 'otus-trust-'));
  try {
    const dir = join(base, 'plugins');
    mkdirSync(dir);
    const marker = join(base, 'imported');
    writeFileSync(join(dir, 'tagger.mjs'), plugin('tagger', marker));
    writeFileSync(join(dir, 'unused.mjs'), plugin('unused', marker));
    mkdirSync(join(dir, 'folder'));
    writeFileSync(join(dir, 'folder', 'index.mjs'), plugin('folder', marker));
    const task = join(base, 'task.yml');
    writeFileSync(task, 'task:\n  id: trust-named\n  processors: [{plugin: tagger}]\n  unmatched_policy: forward\n');
    const r = spawnSync(process.execPath, [OTUS, 'replay', '--task', task, '--workers', '2', '--plugin-dir', dir, '--out=-', SAMPLE], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { labels: Record<string, string> });
    assert.ok(lines.length > 100 && lines.every((l) => l.labels.tagger === 'yes'));
    const imports = readFileSync(marker, 'utf8').trim().split('\n');
    assert.ok(imports.every((l) => l.startsWith('tagger ')), imports.join('; '));
    // The supervisor, two capture processes; the sender loads no processor.
    assert.equal(new Set(imports).size, 3, imports.join('; '));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test("a plugin that nobody wrote into a world-writable directory never runs: otus replay refuses the directory", { skip: rootSkip }, () => {
  const base = mkdtempSync(join(tmpdir(), 'otus-trust-'));
  try {
    const dir = join(base, 'drop');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const marker = join(base, 'imported');
    writeFileSync(join(dir, 'evil.mjs'), plugin('evil', marker));
    chownSync(join(dir, 'evil.mjs'), NOBODY, NOBODY);
    const task = join(base, 'task.yml');
    // The task does not even name it: before, every module in the directory was imported, as root.
    writeFileSync(task, 'task:\n  id: trust-evil\n  processors: [{plugin: label, config: {labels: {a: b}}}]\n');
    const r = spawnSync(process.execPath, [OTUS, 'replay', '--task', task, '--plugin-dir', dir, '--out=-', SAMPLE], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /plugin directory .*drop: .*drop is world-writable \(mode 0777\).* \[OTUS_ERR_PLUGIN_UNSAFE\]/);
    assert.ok(!existsSync(marker), `the plugin ran: ${existsSync(marker) ? readFileSync(marker, 'utf8') : ''}`);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('plugin directories: other owners, group- or world-writable entries and directories above, and entries resolving outside are refused', { skip: rootSkip }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'otus-trust-'));
  try {
    const marker = join(base, 'imported');
    const fresh = (name: string): string => {
      const d = join(base, name);
      mkdirSync(d);
      writeFileSync(join(d, 'ok.mjs'), plugin('ok', marker));
      return d;
    };
    // A file owned by another user, in a directory only root may write to.
    const owned = fresh('owned');
    chownSync(join(owned, 'ok.mjs'), NOBODY, NOBODY);
    await refused([owned], 'ok.mjs is owned by uid 65534');
    // The directory itself owned by another user.
    const dirOwned = fresh('dirowned');
    chownSync(dirOwned, NOBODY, NOBODY);
    await refused([dirOwned], 'dirowned is owned by uid 65534');
    // Group-writable: the directory, or a file deep in a folder plugin.
    const group = fresh('group');
    chmodSync(group, 0o775);
    await refused([group], 'group is group-writable (mode 0775)');
    const deep = fresh('deep');
    mkdirSync(join(deep, 'pkg', 'lib'), { recursive: true });
    writeFileSync(join(deep, 'pkg', 'index.mjs'), "export { default } from './lib/impl.mjs';\n");
    writeFileSync(join(deep, 'pkg', 'lib', 'impl.mjs'), plugin('pkg', marker));
    chmodSync(join(deep, 'pkg', 'lib', 'impl.mjs'), 0o666);
    await refused([deep], 'impl.mjs is world-writable (mode 0666)');
    // A directory above it that others may write to, without the sticky bit (/tmp has it, so it is accepted).
    const open = join(base, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    mkdirSync(join(open, 'plugins'));
    writeFileSync(join(open, 'plugins', 'ok.mjs'), plugin('ok', marker));
    await refused([join(open, 'plugins')], 'open is world-writable (mode 0777)');
    chmodSync(open, 0o1777);
    await (await createRegistry([join(open, 'plugins')])).load('processor', 'ok', 'x');
    // Entries that resolve outside the directory: a symbolic link, a package.json main.
    writeFileSync(join(base, 'outside.mjs'), plugin('outside', marker));
    const link = fresh('link');
    symlinkSync(join(base, 'outside.mjs'), join(link, 'outside.mjs'));
    await refused([link], 'outside.mjs resolves to', 'outside it');
    const main = fresh('main');
    mkdirSync(join(main, 'pkg'));
    writeFileSync(join(main, 'pkg', 'package.json'), JSON.stringify({ main: '../../outside.mjs' }));
    await refused([main], 'its entry ../../outside.mjs resolves to', 'outside the plugin\'s folder');
    // A link inside the directory is fine.
    const inside = fresh('inside');
    symlinkSync('ok.mjs', join(inside, 'alias.mjs'));
    await createRegistry([inside]);
    assert.deepEqual(readFileSync(marker, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]), ['ok'], 'only the plugin loaded by name ran');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('a task naming a plugin by a path is not a way out of the directory', async () => {
  const base = mkdtempSync(join(tmpdir(), 'otus-trust-'));
  try {
    const dir = join(base, 'plugins');
    mkdirSync(dir);
    const marker = join(base, 'imported');
    writeFileSync(join(base, 'up.mjs'), plugin('up', marker));
    const r = await createRegistry([dir]);
    await assert.rejects(r.load('processor', '../up', 'task.yml: task.processors[0]'), { code: 'OTUS_ERR_PLUGIN_NOT_FOUND' });
    assert.ok(!existsSync(marker));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
