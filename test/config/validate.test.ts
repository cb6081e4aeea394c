// `otus validate` as a real process: the effective configuration or task on
// stdout (exit 0), or the coded message and no stack trace (exit 2). The
// files in configs/ validate, and the JSON Schemas there equal the consts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { effectiveConfig, effectiveTask } from '../../src/config/effective.js';
import { loadGlobalConfig } from '../../src/config/global.js';
import { schemaFiles } from '../../src/config/global-schema.js';
import { loadTaskFile } from '../../src/config/task.js';
import { createRegistry } from '../../src/plugin/builtins.js';
import { OtusError } from '../../src/util/errors.js';
import { OTUS, ROOT } from '../pipeline/helpers.js';

const CONFIGS = join(ROOT, 'configs');
const dir = mkdtempSync(join(os.tmpdir(), 'otus-validate-'));

function validate(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [OTUS, 'validate', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function failsWith(args: string[], line: RegExp | string): void {
  const r = validate(args);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stdout, '');
  if (typeof line === 'string') assert.equal(r.stderr, `${line}\n`);
  else assert.match(r.stderr, line);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.stderr.split('\n').length, 2, 'one line');
}

test('otus validate --config configs/otus.yml: exit 0, the effective configuration as YAML and as JSON', () => {
  const yaml = validate(['--config', join(CONFIGS, 'otus.yml')]);
  assert.equal(yaml.status, 0, yaml.stderr);
  const eff = parse(yaml.stdout) as { otus: Record<string, Record<string, unknown>> };
  assert.deepEqual(eff.otus, loadGlobalConfig(join(CONFIGS, 'otus.yml')).effective);
  assert.equal(eff.otus.node.id, os.hostname());
  assert.equal(eff.otus.control.mode, '0660');
  assert.deepEqual(eff.otus.reporters, { console: {} });
  const json = validate(['--config', join(CONFIGS, 'otus.yml'), '--json']);
  assert.equal(json.status, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), eff);
  // configs/otus.yml sets every key to its default.
  assert.deepEqual(eff.otus, loadGlobalConfig(null).effective);
});

test('boot tasks and --task print with plugin defaults filled and the reporter merged; both flags together', () => {
  const cfg = join(dir, 'otus.yml');
  writeFileSync(
    cfg,
    'otus:\n  reporters:\n    console: {}\n    file: {format: json}\n  tasks:\n    - id: boot\n      processors:\n        - plugin: filter\n          config: {rules: []}\n      reporter: {type: file, config: {path: /tmp/otus-boot.ndjson}}\n',
  );
  const r = validate(['--config', cfg, '--task', join(CONFIGS, 'task-voip.yml')]);
  assert.equal(r.status, 0, r.stderr);
  const out = parse(r.stdout) as { otus: { tasks: Record<string, unknown>[] }; task: Record<string, unknown> };
  assert.deepEqual(out.otus.tasks, [
    {
      id: 'boot',
      processors: [{ plugin: 'filter', enabled: true, config: { rules: [], default: 'pass', priority: 10 } }],
      reporter: { type: 'file', config: { format: 'json', path: '/tmp/otus-boot.ndjson', mode: '0640' } },
      unmatched_policy: 'forward',
    },
  ]);
  assert.equal(out.task.id, 'voip-monitor-01');
  const parsers = out.task.parsers as { plugin: string; config: Record<string, unknown> }[];
  assert.deepEqual(parsers.map((p) => p.plugin), ['sip', 'rtp', 'rtcp']);
  assert.ok(Array.isArray(parsers[0].config.ports), 'the sip parser\'s schema defaults are filled in');
  assert.deepEqual(out.task.reporter, { type: 'console', config: {} });
});

test('otus validate errors: exit 2, one coded line, no stack trace', () => {
  const cfg = join(dir, 'bad.yml');
  writeFileSync(cfg, 'otus:\n  control:\n    mode: "0660"\n    socket: /run/otus.sock\n    sokcet: /x\n');
  failsWith(['--config', cfg], `otus: ${cfg}:5: otus.control.sokcet: is not a known key [OTUS_ERR_CONFIG]`);
  writeFileSync(cfg, 'otus:\n  reporters:\n    kafka:\n      password: ${OTUS_TEST_UNSET_PASSWORD}\n');
  failsWith(['--config', cfg], `otus: ${cfg}:4: otus.reporters.kafka.password: environment variable OTUS_TEST_UNSET_PASSWORD is not set (write \${OTUS_TEST_UNSET_PASSWORD:-default} to give a default) [OTUS_ERR_CONFIG]`);
  // A boot task's plugin config, checked against the plugin's schema: the config file, line and path.
  writeFileSync(cfg, 'otus:\n  tasks:\n    - id: a\n    - id: b\n      processors:\n        - plugin: filter\n          config:\n            default: maybe\n');
  failsWith(['--config', cfg], `otus: processor plugin "filter" (built-in): ${cfg}:7: otus.tasks[1].processors[0].config.default: must be one of "drop", "pass" [OTUS_ERR_PLUGIN_CONFIG]`);
  writeFileSync(cfg, 'otus:\n  tasks:\n    - id: a\n      filter: {bpf: "port ftp-data-nonsense"}\n');
  failsWith(['--config', cfg], `otus: ${cfg}:4: otus.tasks[0].filter (link type 1): filter "port ftp-data-nonsense": unknown port 'ftp-data-nonsense' [OTUS_ERR_TASK]`);
  // The reporter's settings: the global ones merged under the task's, checked by the reporter plugin.
  writeFileSync(cfg, 'otus:\n  reporters: {file: {format: json}}\n  tasks:\n    - id: a\n      reporter: {type: file}\n');
  failsWith(['--config', cfg], `otus: reporter plugin "file" (built-in): ${cfg}: otus.reporters.file merged under ${cfg}:5: otus.tasks[0].reporter.config.path: is required [OTUS_ERR_PLUGIN_CONFIG]`);
  // otus.reporters checked when the file is read: a name no reporter has, a key or value its schema refuses; what a task completes is not asked for.
  writeFileSync(cfg, 'otus:\n  reporters:\n    console: {}\n    kafak: {brokers: ["a:1"]}\n');
  failsWith(['--config', cfg], new RegExp(`^otus: ${cfg}:4: otus.reporters.kafak: no reporter plugin named "kafak" \\(known: [a-z, ]*kafka[a-z, ]*\\) \\[OTUS_ERR_PLUGIN_NOT_FOUND\\]\\n$`));
  writeFileSync(cfg, 'otus:\n  reporters:\n    kafka:\n      brokers: ["a:1"]\n      compresion: lz4\n');
  failsWith(['--config', cfg], `otus: ${cfg}:5: otus.reporters.kafka.compresion: is not a known key [OTUS_ERR_CONFIG]`);
  writeFileSync(cfg, 'otus:\n  reporters:\n    file:\n      format: jsn\n');
  failsWith(['--config', cfg], `otus: ${cfg}:4: otus.reporters.file.format: must be one of "json", "protobuf" [OTUS_ERR_CONFIG]`);
  writeFileSync(cfg, 'otus:\n  reporters:\n    file: {format: protobuf}\n    kafka: {brokers: ["a:1"], sasl: {mechanism: plain, username: u, password: p}}\n');
  const ok = validate(['--config', cfg]);
  assert.equal(ok.status, 0, `settings a task completes (file: path; kafka: topic) are no error: ${ok.stderr}`);
  // A task naming a reporter the configuration does not define.
  const task = join(dir, 'task.yml');
  writeFileSync(task, 'task:\n  id: t\n  reporter:\n    type: kafka\n');
  failsWith(['--task', task], `otus: ${task}:4: task.reporter.type: task "t" names reporter "kafka", which the global configuration (built-in defaults) does not define under otus.reporters (defined: console) [OTUS_ERR_TASK]`);
  writeFileSync(task, 'task:\n  id: t\n  parsers:\n    - plugin: sip\n      config: {ports: [99999]}\n');
  failsWith(['--task', task], new RegExp(`^otus: parser plugin "sip" \\(built-in\\): ${task}:5: task.parsers\\[0\\].config.ports\\[0\\]: must be <= 65535 \\[OTUS_ERR_PLUGIN_CONFIG\\]\\n$`));
  failsWith(['--task', join(dir, 'missing.yml')], new RegExp(`^otus: ${join(dir, 'missing.yml')}: cannot read task file .*\\[OTUS_ERR_TASK\\]\\n$`));
  failsWith([], 'otus: name what to check: --config FILE, --task FILE, or both [OTUS_ERR_BAD_ARGUMENT]');
});

test('every task file in configs/ validates under configs/otus.yml', async () => {
  const global = loadGlobalConfig(join(CONFIGS, 'otus.yml'));
  const registry = await createRegistry();
  await effectiveConfig(registry, global);
  const files = readdirSync(CONFIGS).filter((f) => /\.ya?ml$/.test(f) && /^task:/m.test(readFileSync(join(CONFIGS, f), 'utf8')));
  assert.ok(files.includes('task-voip.yml'), files.join(', '));
  for (const f of files) {
    const t = await effectiveTask(registry, global, loadTaskFile(join(CONFIGS, f))).catch((e: unknown) => {
      assert.fail(`configs/${f}: ${e instanceof OtusError ? e.message : String(e)}`);
    });
    assert.equal((t.effective.reporter as { type: string }).type, t.reporter.name);
  }
});

test('configs/*.schema.json are the schemas the loaders use, and work in another validator', () => {
  for (const [name, schema] of Object.entries(schemaFiles())) {
    const onDisk = JSON.parse(readFileSync(join(CONFIGS, name), 'utf8')) as unknown;
    assert.deepEqual(onDisk, schema, `configs/${name} is stale: run \`npm run build && npm run schema\``);
  }
  const check = new Ajv({ allowUnionTypes: true }).compile(JSON.parse(readFileSync(join(CONFIGS, 'otus-config.schema.json'), 'utf8')) as object);
  assert.equal(check(parse(readFileSync(join(CONFIGS, 'otus.yml'), 'utf8'))), true, JSON.stringify(check.errors));
  assert.equal(check({ otus: { metrics: { enable: true } } }), false);
  const checkTask = new Ajv({ allowUnionTypes: true }).compile(JSON.parse(readFileSync(join(CONFIGS, 'otus-task.schema.json'), 'utf8')) as object);
  assert.equal(checkTask(parse(readFileSync(join(CONFIGS, 'task-voip.yml'), 'utf8'))), true, JSON.stringify(checkTask.errors));
});
