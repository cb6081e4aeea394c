// Plugin registry and loader: every way a plugin can be wrong is a coded
// error that names the plugin (and its file, for third-party ones).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginRegistry } from '../../src/plugin/registry.js';
import { BUILTIN_PLUGINS, createRegistry } from '../../src/plugin/builtins.js';
import { OtusError } from '../../src/util/errors.js';

const ctx = { node: {}, taskId: 't', worker: 0, where: 'task.yml: task.processors[0].config' };

function proc(meta: Record<string, unknown>, init: (c: unknown) => unknown = () => ({ priority: 1, process: (r: unknown) => r })): unknown {
  return { meta: { name: 'p', version: '1.0.0', kind: 'processor', labels: [], configSchema: { type: 'object' }, ...meta }, init };
}

function throwsCode(fn: () => unknown, code: string, ...parts: (string | RegExp)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OtusError, `expected OtusError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const p of parts) typeof p === 'string' ? assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`) : assert.match(e.message, p);
    return true;
  });
}

async function rejectsCode(p: Promise<unknown>, code: string, ...parts: string[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof OtusError, `expected OtusError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const s of parts) assert.ok(e.message.includes(s), `"${e.message}" lacks "${s}"`);
    return true;
  });
}

test('bad metadata: each missing or malformed field is OTUS_ERR_PLUGIN_METADATA naming the plugin and field', () => {
  const r = new PluginRegistry();
  throwsCode(() => r.register(proc({ version: 'one' })), 'OTUS_ERR_PLUGIN_METADATA', 'processor plugin "p"', 'meta.version');
  throwsCode(() => r.register(proc({ name: 'Bad Name' })), 'OTUS_ERR_PLUGIN_METADATA', '"Bad Name"', 'meta.name');
  throwsCode(() => r.register(proc({ kind: 'filterer' })), 'OTUS_ERR_PLUGIN_METADATA', 'meta.kind', 'must be one of');
  throwsCode(() => r.register(proc({ labels: ['sip.Method'] })), 'OTUS_ERR_PLUGIN_METADATA', 'meta.labels[0]', 'sip.Method');
  throwsCode(() => r.register(proc({ labels: undefined })), 'OTUS_ERR_PLUGIN_METADATA', 'meta.labels: is required');
  throwsCode(() => r.register({ meta: { name: 'x', version: '1.0.0', kind: 'parser', labels: [], configSchema: { type: 'object' } } }), 'OTUS_ERR_PLUGIN_METADATA', 'parser plugin "x"', 'init must be a function');
  throwsCode(() => r.register(42, '/p/x.js'), 'OTUS_ERR_PLUGIN_METADATA', '/p/x.js');
  // A family of labels is allowed.
  assert.equal(r.register(proc({ name: 'ok', labels: ['sip.*', 'call-id'] })).meta.name, 'ok');
});

test('bad config schema: OTUS_ERR_PLUGIN_SCHEMA naming the plugin', () => {
  const r = new PluginRegistry();
  throwsCode(() => r.register(proc({ configSchema: { type: 'array' } })), 'OTUS_ERR_PLUGIN_SCHEMA', 'processor plugin "p"', 'type: "object"');
  throwsCode(
    () => r.register(proc({ configSchema: { type: 'object', properties: { n: { type: 'integr' } } } })),
    'OTUS_ERR_PLUGIN_SCHEMA',
    'processor plugin "p"',
    'does not compile',
  );
  throwsCode(() => r.register(proc({ configSchema: { type: 'object', propertiez: {} } })), 'OTUS_ERR_PLUGIN_SCHEMA', 'propertiez');
});

test("every built-in's config schema compiles; registered lazily, a schema is compiled when a config is first checked, once", async () => {
  const eager = new PluginRegistry();
  for (const p of BUILTIN_PLUGINS) eager.register(p);
  const r = new PluginRegistry();
  const ajv = (r as unknown as { ajv: { compile: (s: unknown) => unknown } }).ajv;
  const compile = ajv.compile.bind(ajv);
  let compiled = 0;
  ajv.compile = (s: unknown) => (compiled++, compile(s));
  for (const p of BUILTIN_PLUGINS) r.register(p, 'built-in', true);
  assert.equal(compiled, 0);
  await r.instantiate('processor', 'label', { labels: { a: 'b' } }, ctx);
  await r.instantiate('processor', 'label', { labels: { a: 'c' } }, ctx);
  assert.equal(compiled, 1);
  await rejectsCode(r.instantiate('processor', 'label', { labelz: {} }, ctx), 'OTUS_ERR_PLUGIN_CONFIG', 'config.labelz: is not a known key');
});

test('config failing the schema: OTUS_ERR_PLUGIN_CONFIG naming plugin, file and key path; defaults applied', async () => {
  const r = await createRegistry();
  await rejectsCode(
    r.instantiate('processor', 'filter', { rules: [{ label: 'sip.method', values: ['OPTIONS'], action: 'toss' }] }, ctx),
    'OTUS_ERR_PLUGIN_CONFIG',
    'processor plugin "filter" (built-in)',
    'task.yml: task.processors[0].config.rules[0].action: must be one of "drop", "pass"',
  );
  await rejectsCode(r.instantiate('processor', 'label', { labelz: {} }, ctx), 'OTUS_ERR_PLUGIN_CONFIG', 'config.labelz: is not a known key');
  const reg = r.require('processor', 'filter', 'x');
  const cfg = r.checkConfig(reg, {}, 'x') as { default: string; priority: number; rules: unknown[] };
  assert.deepEqual(cfg, { rules: [], default: 'pass', priority: 10 });
});

test('init that throws, or returns no instance: OTUS_ERR_PLUGIN_INIT naming the plugin and the cause', async () => {
  const r = new PluginRegistry();
  r.register(proc({ name: 'boom' }, () => {
    throw new Error('no licence key');
  }));
  r.register(proc({ name: 'async-boom' }, async () => Promise.reject(new Error('late failure'))));
  r.register(proc({ name: 'empty' }, () => undefined));
  r.register(proc({ name: 'nopriority' }, () => ({ process: () => null })));
  r.register({ meta: { name: 'noproto', version: '1.0.0', kind: 'parser', labels: [], configSchema: { type: 'object' } }, init: () => ({ canHandle: () => false, handle: () => false }) });
  await rejectsCode(r.instantiate('processor', 'boom', {}, ctx), 'OTUS_ERR_PLUGIN_INIT', 'processor plugin "boom" (built-in)', 'no licence key');
  await rejectsCode(r.instantiate('processor', 'async-boom', {}, ctx), 'OTUS_ERR_PLUGIN_INIT', '"async-boom"', 'late failure');
  await rejectsCode(r.instantiate('processor', 'empty', {}, ctx), 'OTUS_ERR_PLUGIN_INIT', '"empty"', 'undefined, not a processor instance');
  await rejectsCode(r.instantiate('processor', 'nopriority', {}, ctx), 'OTUS_ERR_PLUGIN_INIT', 'numeric priority');
  await rejectsCode(r.instantiate('parser', 'noproto', {}, ctx), 'OTUS_ERR_PLUGIN_INIT', 'parser plugin "noproto"', 'protocol');
});

test('unknown and duplicate plugins are coded errors', async () => {
  const r = await createRegistry();
  await rejectsCode(r.instantiate('processor', 'sampler', {}, ctx), 'OTUS_ERR_PLUGIN_NOT_FOUND', 'task.yml', '"sampler"', 'known: filter, label');
  throwsCode(() => r.register(proc({ name: 'filter' }), '/x/filter.js'), 'OTUS_ERR_PLUGIN_DUPLICATE', '/x/filter.js', 'already registered from built-in');
  // Same name, other kind: fine.
  assert.equal(r.register({ ...(proc({ name: 'filter', kind: 'parser' }) as object), init: () => ({}) }).meta.kind, 'parser');
});

test('third-party plugins load by name from a directory and are validated the same way', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'otus-plugins-'));
  writeFileSync(
    join(dir, 'tagger.mjs'),
    `export default { meta: { name: 'tagger', version: '0.2.0', kind: 'processor', labels: ['team'], configSchema: { type: 'object', properties: { team: { type: 'string', default: 'voip' } }, additionalProperties: false } },
      init(ctx) { return { priority: 5, process(v) { v.labels.set('team', ctx.config.team); return v; } }; } };\n`,
  );
  mkdirSync(join(dir, 'two'));
  writeFileSync(join(dir, 'two', 'package.json'), JSON.stringify({ main: 'lib/main.mjs' }));
  mkdirSync(join(dir, 'two', 'lib'));
  writeFileSync(join(dir, 'two', 'lib', 'main.mjs'), `export const plugins = [{ meta: { name: 'two', version: '1.0.0', kind: 'processor', labels: [], configSchema: { type: 'object' } }, init: () => ({ priority: 0, process: (v) => v }) }];\n`);
  writeFileSync(join(dir, 'README.txt'), 'not a plugin');
  const r = await createRegistry([dir]);
  assert.equal(r.get('processor', 'tagger'), undefined, 'nothing imported before a task names it');
  assert.equal((await r.load('processor', 'tagger', 'x')).source, join(dir, 'tagger.mjs'));
  const inst = await r.instantiate('processor', 'tagger', {}, ctx);
  assert.equal(inst.priority, 5);
  assert.equal((await r.instantiate('processor', 'two', {}, ctx)).priority, 0);
  assert.equal(r.get('processor', 'two')?.source, join(dir, 'two', 'lib', 'main.mjs'));
  await rejectsCode(r.load('parser', 'tagger', 'task.yml: task.parsers[0]'), 'OTUS_ERR_PLUGIN_NOT_FOUND', 'task.yml: task.parsers[0]', 'no parser plugin named "tagger"', 'tagger.mjs provides a processor');
  await rejectsCode(r.load('processor', 'nope', 'task.yml'), 'OTUS_ERR_PLUGIN_NOT_FOUND', 'known: filter, label, tagger, two');
  const fresh = await createRegistry([dir]);
  await rejectsCode(fresh.load('processor', 'nope', 'task.yml'), 'OTUS_ERR_PLUGIN_NOT_FOUND', 'known: filter, label; in the plugin directories: tagger, two');

  const one = (name: string, file: string, text: string): string => {
    const d = mkdtempSync(join(tmpdir(), `otus-plugins-${name}-`));
    writeFileSync(join(d, file), text);
    return d;
  };
  const bad = one('bad', 'old.mjs', `export default { meta: { name: 'old', version: '1', kind: 'processor', labels: [], configSchema: { type: 'object' } }, init() {} };\n`);
  await rejectsCode((await createRegistry([bad])).load('processor', 'old', 'x'), 'OTUS_ERR_PLUGIN_METADATA', 'processor plugin "old"', join(bad, 'old.mjs'), 'meta.version');
  const broken = one('broken', 'syntax.mjs', 'export default {{;\n');
  await rejectsCode((await createRegistry([broken])).load('parser', 'syntax', 'x'), 'OTUS_ERR_PLUGIN_LOAD', join(broken, 'syntax.mjs'), 'cannot import');
  const none = one('none', 'nothing.mjs', 'export const x = 1;\n');
  await rejectsCode((await createRegistry([none])).load('parser', 'nothing', 'x'), 'OTUS_ERR_PLUGIN_LOAD', 'exports no plugin');
  const misnamed = one('misnamed', 'alias.mjs', `export const plugins = [{ meta: { name: 'real', version: '1.0.0', kind: 'processor', labels: [], configSchema: { type: 'object' } }, init() {} }, 1];\n`);
  await rejectsCode((await createRegistry([misnamed])).load('processor', 'alias', 'x'), 'OTUS_ERR_PLUGIN_LOAD', 'no plugin named "alias"', '"real"', 'named after it');
  await rejectsCode(createRegistry([join(none, 'missing')]), 'OTUS_ERR_PLUGIN_LOAD', 'cannot read');
  const twice = one('twice', 'dup.js', 'export default 1;\n');
  writeFileSync(join(twice, 'dup.mjs'), 'export default 1;\n');
  await rejectsCode(createRegistry([twice]), 'OTUS_ERR_PLUGIN_LOAD', 'both dup.js and dup.mjs');
  await rejectsCode(createRegistry([dir, one('again', 'tagger.js', 'export default 1;\n')]), 'OTUS_ERR_PLUGIN_DUPLICATE', 'plugin "tagger" is in two plugin directories');
  await rejectsCode(createRegistry([one('builtin', 'sip.mjs', 'export default 1;\n')]), 'OTUS_ERR_PLUGIN_DUPLICATE', 'sip.mjs', 'built-in parser plugin "sip"');
});
