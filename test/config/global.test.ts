// The global configuration: defaults; a file setting every key; every kind
// of error names the file, the line and the key path; ${ENV} expansion;
// boot tasks inline and from tasks_dir; reporterConfigFor.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { defaultGlobalConfig, loadGlobalConfig, nodeContext, parseGlobalConfig, reporterConfigFor, type GlobalConfig } from '../../src/config/global.js';
import { parseTask, taskFromObject } from '../../src/config/task.js';
import { OtusError } from '../../src/util/errors.js';

const F = '/etc/otus/otus.yml';

function configError(text: string, parts: string[], env: NodeJS.ProcessEnv = {}, file = F): OtusError {
  let err: OtusError | undefined;
  assert.throws(
    () => parseGlobalConfig(text, file, { env }),
    (e: unknown) => {
      assert.ok(e instanceof OtusError, String(e));
      assert.equal(e.code, 'OTUS_ERR_CONFIG', e.message);
      for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
      err = e;
      return true;
    },
  );
  return err!;
}

test('defaults: built in, from an empty file, from `otus:` alone, and from sections left empty', () => {
  const d = defaultGlobalConfig();
  assert.equal(d.file, null);
  assert.deepEqual(d.node, { id: os.hostname(), hostname: os.hostname(), ip: null, labels: {} });
  assert.deepEqual(d.control, { socket: '/run/otus/otus.sock', mode: 0o660, group: null, allowedUids: [], allowedGids: [] });
  assert.deepEqual(d.resources, { maxWorkers: 0, cpus: [], flowRegistrySlots: 65536, ringBytes: 16 << 20, tcpReassemblyBytes: 128 << 20 });
  assert.deepEqual(d.supervisor, {
    heartbeatMs: 1000,
    watchdogMs: 5000,
    stopTimeoutMs: 5000,
    restart: { initialMs: 100, maxMs: 10000, healthyMs: 60000, budget: 5, windowMs: 60000 },
  });
  assert.deepEqual(d.reporters, { console: {} });
  assert.deepEqual(d.tasks, []);
  assert.deepEqual(d.commandChannel, {
    enabled: false,
    type: 'kafka',
    kafka: { brokers: [], topic: 'otus-commands', status_topic: 'otus-status', group_id: `otus-${os.hostname()}`, client_id: `otus-${os.hostname()}`, create_topics: true },
    auth: { key_file: null, key: null, max_age_ms: 300000 },
    heartbeat_ms: 30000,
    retry_max_ms: 30000,
  });
  assert.deepEqual(d.metrics, { enabled: true, listen: '127.0.0.1:9469', path: '/metrics' });
  assert.deepEqual(d.log, { level: 'info', format: 'json', rateLimitMs: 60000, outputs: { stderr: {} } });
  const eff = d.effective as Record<string, Record<string, unknown>>;
  assert.equal(eff.control.mode, '0660');
  assert.equal(eff.tasks_dir, null);
  assert.deepEqual(Object.keys(eff), ['node', 'control', 'resources', 'supervisor', 'reporters', 'tasks', 'tasks_dir', 'command_channel', 'metrics', 'log']);
  assert.deepEqual(loadGlobalConfig(null).effective, d.effective);
  for (const text of ['', '# nothing\n', 'otus:\n', 'otus:\n  node:\n  control:\n  supervisor:\n    restart:\n  reporters:\n  metrics:\n']) {
    const g = parseGlobalConfig(text, F, { env: {} });
    assert.equal(g.file, F);
    assert.deepEqual(g.effective, d.effective, JSON.stringify(text));
  }
  // A key with nothing after it is absent (its default applies) unless null is allowed there;
  // a reporter written with nothing under it is one with no settings.
  const empty = parseGlobalConfig('otus:\n  node:\n    id:\n    ip:\n  tasks:\n  tasks_dir:\n  resources:\n    cpus:\n    max_workers:\n', F);
  assert.deepEqual(empty.effective, d.effective);
  assert.deepEqual(parseGlobalConfig('otus:\n  reporters:\n    console:\n    file:\n', F).reporters, { console: {}, file: {} });
  configError('otus:\n  node:\n    labels:\n      dc:\n', [`${F}:4: otus.node.labels.dc: must be string`]);
  configError('otus:\n  tasks:\n    -\n', [`${F}:3: otus.tasks[0].id: is required`]);
  assert.throws(() => parseTask('task:\n', 't.yml'), /^OtusError: t\.yml:1: task\.id: is required$/);
});

const FULL = `otus:
  node:
    id: edge-01
    hostname: edge-01.example.net
    ip: 2001:db8::10
    labels: {dc: cn-north, env: prod}
  control:
    socket: /run/otus/ctl.sock
    mode: "0600"
    group: "1001"
    allowed_uids: [1000, 1001]
    allowed_gids: [27]
  resources:
    max_workers: 6
    cpus: [2, 3, 4]
    flow_registry_slots: 1024
    ring_bytes: 16777216
    tcp_reassembly_bytes: 33554432
  supervisor:
    heartbeat_ms: 500
    watchdog_ms: 3000
    stop_timeout_ms: 2000
    restart: {initial_ms: 50, max_ms: 5000, healthy_ms: 30000, budget: 3, window_ms: 120000}
  reporters:
    console: {}
    kafka: {brokers: ["k1:9092"], sasl: {user: otus, password: "\${KPASS}"}, acks: all}
  tasks:
    - id: voip
      parsers: [{plugin: sip}, {plugin: rtp}]
      reporter: {type: kafka, config: {topic: voip, sasl: {password: own}}}
    - id: dns
      parsers: [{plugin: dns}]
  tasks_dir: null
  command_channel:
    enabled: true
    kafka: {brokers: [k1:9092], group_id: g1, client_id: c1, topic: cmds, status_topic: answers, create_topics: false, tls: {ca: /etc/otus/ca.pem}, sasl: {mechanism: scram-sha-512, username: otus, password: "\${KPASS}"}}
    auth: {key_file: /etc/otus/command.key, max_age_ms: 60000}
    heartbeat_ms: 5000
    retry_max_ms: 10000
  metrics: {enabled: false, listen: "[::1]:9100", path: /m}
  log:
    level: debug
    format: text
    rate_limit_ms: 5000
    outputs:
      stdout: {}
      file: {path: /var/log/otus/otus.log, size_bytes: 1048576, interval_ms: 3600000, count: 3}
      loki: {endpoint: "http://loki:3100/loki/api/v1/push", labels: {env: prod}, headers: {X-Scope-OrgID: edge}, batch_size: 10, batch_timeout_ms: 500, max_buffer_bytes: 65536, timeout_ms: 2000}
`;

test('a file setting every key', () => {
  const g = parseGlobalConfig(FULL, F, { env: { KPASS: 's3cret' } });
  assert.deepEqual(g.node, { id: 'edge-01', hostname: 'edge-01.example.net', ip: '2001:db8::10', labels: { dc: 'cn-north', env: 'prod' } });
  assert.deepEqual(g.control, { socket: '/run/otus/ctl.sock', mode: 0o600, group: 1001, allowedUids: [1000, 1001], allowedGids: [27] });
  assert.deepEqual(g.resources, { maxWorkers: 6, cpus: [2, 3, 4], flowRegistrySlots: 1024, ringBytes: 16 << 20, tcpReassemblyBytes: 32 << 20 });
  assert.deepEqual(g.supervisor, { heartbeatMs: 500, watchdogMs: 3000, stopTimeoutMs: 2000, restart: { initialMs: 50, maxMs: 5000, healthyMs: 30000, budget: 3, windowMs: 120000 } });
  assert.deepEqual(g.reporters.kafka, { brokers: ['k1:9092'], sasl: { user: 'otus', password: 's3cret' }, acks: 'all' });
  assert.deepEqual(g.tasks.map((t) => [t.id, t.file, t.path, t.parsers.map((p) => p.plugin)]), [
    ['voip', F, 'otus.tasks[0]', ['sip', 'rtp']],
    ['dns', F, 'otus.tasks[1]', ['dns']],
  ]);
  assert.equal(g.tasks[0].parsers[1].where, `${F}:29: otus.tasks[0].parsers[1].config`);
  assert.equal(g.tasks[1].unmatchedPolicy, 'forward');
  assert.deepEqual(g.commandChannel, {
    enabled: true,
    type: 'kafka',
    kafka: {
      brokers: ['k1:9092'],
      group_id: 'g1',
      client_id: 'c1',
      topic: 'cmds',
      status_topic: 'answers',
      create_topics: false,
      tls: { ca: '/etc/otus/ca.pem' },
      sasl: { mechanism: 'scram-sha-512', username: 'otus', password: 's3cret' },
    },
    auth: { key_file: '/etc/otus/command.key', key: null, max_age_ms: 60000 },
    heartbeat_ms: 5000,
    retry_max_ms: 10000,
  });
  assert.deepEqual(g.metrics, { enabled: false, listen: '[::1]:9100', path: '/m' });
  assert.deepEqual(g.log, {
    level: 'debug',
    format: 'text',
    rateLimitMs: 5000,
    outputs: {
      stdout: {},
      file: { path: '/var/log/otus/otus.log', sizeBytes: 1 << 20, intervalMs: 3_600_000, count: 3 },
      loki: { endpoint: 'http://loki:3100/loki/api/v1/push', labels: { env: 'prod' }, headers: { 'X-Scope-OrgID': 'edge' }, batchSize: 10, batchTimeoutMs: 500, maxBufferBytes: 65536, timeoutMs: 2000 },
    },
  });
  assert.deepEqual(nodeContext(g), { dc: 'cn-north', env: 'prod', hostname: 'edge-01.example.net', ip: '2001:db8::10' });
  // The effective form is a configuration file too: read again, it gives the same.
  const again = parseGlobalConfig(JSON.stringify({ otus: g.effective }), F, { env: {} });
  assert.deepEqual(again.effective, g.effective);
  assert.equal((g.effective as { control: { mode: string } }).control.mode, '0600');
});

test('log outputs: defaults filled in each one given; what is refused', () => {
  const g = parseGlobalConfig('otus:\n  log:\n    outputs:\n      file: {path: /var/log/otus/otus.log}\n      loki: {endpoint: "https://logs.example.net/loki/api/v1/push"}\n', F, { env: {} });
  assert.deepEqual(g.log.outputs, {
    file: { path: '/var/log/otus/otus.log', sizeBytes: 100 << 20, intervalMs: null, count: 10 },
    loki: { endpoint: 'https://logs.example.net/loki/api/v1/push', labels: { job: 'otus' }, headers: {}, batchSize: 1000, batchTimeoutMs: 1000, maxBufferBytes: 16 << 20, timeoutMs: 10000 },
  });
  configError('otus:\n  log:\n    outputs: {}\n', [`${F}:3: otus.log.outputs: must NOT have fewer than 1 properties`]);
  configError('otus:\n  log:\n    outputs:\n      syslog: {}\n', [`${F}:4: otus.log.outputs.syslog: is not a known key`]);
  configError('otus:\n  log:\n    outputs:\n      file: {size_bytes: 4096}\n', [`${F}:4: otus.log.outputs.file.path: is required`]);
  configError('otus:\n  log:\n    outputs:\n      file: {path: logs/otus.log}\n', [`${F}:4: otus.log.outputs.file.path: must match pattern "^/"`]);
  configError('otus:\n  log:\n    outputs:\n      file: {path: /l/o.log, size_bytes: 10}\n', [`otus.log.outputs.file.size_bytes: must be >= 1024`]);
  configError('otus:\n  log:\n    outputs:\n      loki: {endpoint: "loki:3100"}\n', [`otus.log.outputs.loki.endpoint: must match pattern`]);
  configError('otus:\n  log:\n    outputs:\n      loki:\n        endpoint: "http://l/x"\n        labels: {node: other}\n', [`otus.log.outputs.loki.labels.node`]);
});

test('errors name the file, the line and the key path', () => {
  configError('otus:\n  control:\n    sockett: /x\n', [`${F}:3: otus.control.sockett: is not a known key`]);
  configError('otus:\n  node: {id: a}\nother: 1\n', [`${F}:3: other: is not a known key`]);
  configError('otus:\n  resources:\n    max_workers: many\n', [`${F}:3: otus.resources.max_workers: must be integer`]);
  configError('otus:\n  log:\n    level: verbose\n', [`${F}:3: otus.log.level: must be one of "trace", "debug", "info", "warn", "error", "fatal"`]);
  configError('otus:\n  control:\n    mode: "0999"\n', [`${F}:3: otus.control.mode: must match pattern "^0?[0-7]{3}$"`]);
  configError('otus:\n  control:\n    mode: 0660\n', [`${F}:3: otus.control.mode: must be a quoted octal string such as "0660"`, 'the number 660']);
  configError('otus:\n  node:\n    id: -edge\n', [`${F}:3: otus.node.id: must match pattern`]);
  configError('otus:\n  node:\n    ip: 10.0.0.300\n', [`${F}:3: otus.node.ip: "10.0.0.300" is not an IPv4 or IPv6 address`]);
  configError('otus:\n  node:\n    labels:\n      dc: 7\n', [`${F}:4: otus.node.labels.dc: must be string`]);
  configError('otus:\n  node:\n    labels:\n      DC: x\n', [`${F}:4: otus.node.labels.DC: the key's name must match pattern`]);
  configError('otus:\n  reporters:\n    Kafka: {}\n', [`${F}:3: otus.reporters.Kafka: the key's name must match pattern`]);
  configError('otus:\n  reporters:\n    kafka: [a]\n', [`${F}:3: otus.reporters.kafka: must be object`]);
  configError('otus:\n  resources:\n    ring_bytes: 3000000\n', [`${F}:3: otus.resources.ring_bytes: must be one of 1048576, 2097152`]);
  configError('otus:\n  resources:\n    cpus: [1, 1]\n', [`${F}:3: otus.resources.cpus: must NOT have duplicate items`]);
  configError('otus:\n  control:\n    socket: run/otus.sock\n', [`${F}:3: otus.control.socket: must match pattern "^/"`]);
  configError('otus:\n  control:\n    group: [x]\n', [`${F}:3: otus.control.group: must be string or integer or null`]);
  configError('otus:\n  supervisor:\n    heartbeat_ms: 2000\n    watchdog_ms: 2000\n', [`${F}:4: otus.supervisor.watchdog_ms: must be more than heartbeat_ms (2000)`]);
  configError('otus:\n  supervisor:\n    restart: {initial_ms: 20000}\n', [`${F}:3: otus.supervisor.restart.initial_ms: must be at most max_ms (10000)`]);
  configError('otus:\n  command_channel:\n    enabled: true\n', [`${F}:2: otus.command_channel.kafka.brokers: must name at least one broker`]);
  configError('otus:\n  command_channel:\n    type: nats\n', [`${F}:3: otus.command_channel.type: must be one of "kafka"`]);
  // The command key: never in the file itself, one source, and the answers on a topic of their own.
  configError('otus:\n  command_channel:\n    auth: {key: "0123456789abcdef0123"}\n', [`${F}:3: otus.command_channel.auth.key: must be \${NAME}`]);
  configError('otus:\n  command_channel:\n    auth: {key: "x\${K}"}\n', ['otus.command_channel.auth.key: must be ${NAME}']);
  configError('otus:\n  command_channel:\n    auth: {key: "\${K}", key_file: /k}\n', ['otus.command_channel.auth.key: give key or key_file, not both'], { K: 'k'.repeat(32) });
  assert.equal(parseGlobalConfig('otus:\n  command_channel:\n    auth: {key: "\${K}"}\n', F, { env: { K: 'k'.repeat(32) } }).commandChannel.auth.key, 'k'.repeat(32));
  configError('otus:\n  command_channel:\n    kafka: {topic: t, status_topic: t}\n', ['otus.command_channel.kafka.status_topic: must differ from topic']);
  configError('otus:\n  command_channel:\n    kafka: {brokers: [k1:9092], groupid: g}\n', ['otus.command_channel.kafka.groupid: is not a known key']);
  configError('otus:\n  metrics:\n    listen: "127.0.0.1:70000"\n', [`${F}:3: otus.metrics.listen: port 70000: must be 1 to 65535`]);
  configError('otus:\n  metrics:\n    listen: localhost\n', [`${F}:3: otus.metrics.listen: must match pattern`]);
  configError('otus: [1]\n', [`${F}:1: otus: must be object`]);
  configError('otus:\n  log: {level: info\n', [`${F}:3: not valid YAML`]);
  configError('otus:\n  log: {}\n  log: {}\n', [`${F}:3: not valid YAML: Map keys must be unique`]);
  configError('otus:\n  node:\n    hostname: !!binary aGVsbG8=\n', [`${F}:3: not valid YAML`, 'tag']);
  configError('otus: {}\n---\notus: {}\n', [`${F}:2: not valid YAML`]);
  assert.throws(() => loadGlobalConfig('/nonexistent/otus.yml'), (e: unknown) => e instanceof OtusError && e.code === 'OTUS_ERR_CONFIG' && /^\/nonexistent\/otus\.yml: cannot read configuration file/.test(e.message));
});

test('boot tasks: validated as tasks, errors deep inside name the config file, line and path; duplicate ids', () => {
  const tasks = (body: string): string => `otus:\n  tasks:\n${body}`;
  configError(tasks('    - id: a\n    - id: b\n      parsers:\n        - plugin: sip\n        - config: {x: 1}\n'), [`${F}:7: otus.tasks[1].parsers[1].plugin: is required`]);
  configError(tasks('    - id: a\n      capture: {workers: 1000}\n'), [`${F}:4: otus.tasks[0].capture.workers: must be <= 256`]);
  configError(tasks('    - id: a\n      filter:\n        protocol: icmp\n'), [`${F}:5: otus.tasks[0].filter.protocol: must be one of "udp", "tcp", "any"`]);
  configError(tasks('    - id: a\n      reporter: {type: kafka, confg: {}}\n'), [`${F}:4: otus.tasks[0].reporter.confg: is not a known key`]);
  configError(tasks('    - id: a\n    - id: b\n    - id: a\n'), [`${F}:5: otus.tasks[2].id: duplicate task id "a" (also otus.tasks[0] at ${F}:3)`]);
  configError(tasks('    - {}\n'), [`${F}:3: otus.tasks[0].id: is required`]);
  configError(tasks(`    - id: x${'y'.repeat(70)}\n`), [`${F}:3: otus.tasks[0].id: must match pattern`]);
});

test('tasks_dir: every *.yml and *.yaml by name, relative to the config file; a bad file is named with its line', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'otus-cfg-'));
  const td = join(dir, 'tasks.d');
  mkdirSync(td);
  mkdirSync(join(td, 'sub.yml')); // a directory: skipped
  writeFileSync(join(td, 'b.yaml'), 'task:\n  id: b\n  parsers: [{plugin: dns}]\n');
  writeFileSync(join(td, 'a.yml'), 'task:\n  id: a\n');
  writeFileSync(join(td, 'notes.txt'), 'not a task');
  const cfg = join(dir, 'otus.yml');
  writeFileSync(cfg, 'otus:\n  tasks:\n    - id: inline\n  tasks_dir: tasks.d\n');
  const g = loadGlobalConfig(cfg);
  assert.equal(g.file, cfg);
  assert.deepEqual(g.tasks.map((t) => [t.id, t.file, t.path]), [
    ['inline', cfg, 'otus.tasks[0]'],
    ['a', join(td, 'a.yml'), 'task'],
    ['b', join(td, 'b.yaml'), 'task'],
  ]);
  assert.equal(g.effective.tasks_dir, td);
  assert.deepEqual(g.effective.tasks, [{ id: 'inline', unmatched_policy: 'forward' }]);

  writeFileSync(join(td, 'c.yml'), 'task:\n  id: c\n  capture:\n    workers: -2\n');
  assert.throws(
    () => loadGlobalConfig(cfg),
    (e: unknown) =>
      e instanceof OtusError &&
      e.code === 'OTUS_ERR_CONFIG' &&
      e.message === `${join(td, 'c.yml')}:4: task.capture.workers: must be >= 0 (a boot task from otus.tasks_dir of ${cfg}:4)`,
  );
  writeFileSync(join(td, 'c.yml'), 'task:\n  id: inline\n');
  assert.throws(
    () => loadGlobalConfig(cfg),
    (e: unknown) => e instanceof OtusError && e.code === 'OTUS_ERR_CONFIG' && e.message === `${join(td, 'c.yml')}: task.id: duplicate task id "inline" (also otus.tasks[0] at ${cfg}:3)`,
  );
  writeFileSync(cfg, 'otus:\n  tasks_dir: missing.d\n');
  assert.throws(() => loadGlobalConfig(cfg), (e: unknown) => e instanceof OtusError && e.message.startsWith(`${cfg}:2: otus.tasks_dir: cannot read directory ${join(dir, 'missing.d')}`));
});

test('${ENV}: values expanded after parsing, defaults, $${ escapes, typed only when unquoted, never new structure', () => {
  const env = { HOST: 'edge-7', EMPTY: '', W: '4', ON: 'false', EVIL: 'x\n  cpus: [1]\nmetrics: {}', LIST: '[1, 2]' };
  const g = parseGlobalConfig(
    [
      'otus:',
      '  node:',
      '    id: ${HOST}',
      '    hostname: "${HOST}.example.${DOMAIN:-net}"',
      '    labels: {a: "${EMPTY:-fallback}", b: "pre-${EMPTY}-post", c: "$${HOST} and $$ and ${HOST}", d: "${EVIL}", e: "${LIST}", f: "${W}"}',
      '  resources:',
      '    max_workers: ${W}',
      '  metrics:',
      '    enabled: ${ON}',
      '    path: /${LIST}',
    ].join('\n'),
    F,
    { env },
  );
  assert.equal(g.node.id, 'edge-7');
  assert.equal(g.node.hostname, 'edge-7.example.net');
  assert.deepEqual(g.node.labels, { a: 'fallback', b: 'pre--post', c: '${HOST} and $$ and edge-7', d: env.EVIL, e: '[1, 2]', f: '4' });
  assert.equal(g.resources.maxWorkers, 4);
  assert.equal(g.metrics.enabled, false);
  assert.equal(g.metrics.path, '/[1, 2]');
  assert.deepEqual(g.resources.cpus, []);
  // Keys are not expanded.
  configError('otus:\n  node:\n    labels: {"${HOST}": x}\n', ['otus.node.labels["${HOST}"]: the key\'s name must match pattern'], env);
  // A quoted reference stays a string, a structure stays a string.
  configError('otus:\n  resources:\n    max_workers: "${W}"\n', [`${F}:3: otus.resources.max_workers: must be integer`], env);
  configError('otus:\n  resources:\n    cpus: ${LIST}\n', [`${F}:3: otus.resources.cpus: must be array`], env);
  configError('otus:\n  reporters:\n    kafka:\n      sasl: {password: "${KAFKA_PASSWORD}"}\n', [
    `${F}:4: otus.reporters.kafka.sasl.password: environment variable KAFKA_PASSWORD is not set (write \${KAFKA_PASSWORD:-default} to give a default)`,
  ]);
  configError('otus:\n  tasks:\n    - id: a\n      filter: {bpf: "port ${PORT"}\n', [`${F}:4: otus.tasks[0].filter.bpf: "\${PORT" has no closing "}"`]);
  configError('otus:\n  node:\n    hostname: "${1X}"\n', [`${F}:3: otus.node.hostname: "\${1X}" is not \${NAME} or \${NAME:-default}`]);
  // Aliased values are expanded once each (an alias shares its anchor's object).
  const a = parseGlobalConfig('otus:\n  reporters:\n    file: &r {x: "$${HOST}"}\n    console: *r\n', F, { env });
  assert.deepEqual(a.reporters, { file: { x: '${HOST}' }, console: { x: '${HOST}' } });
});

test('taskFromObject: {task: {...}} or the body, defaults filled, the caller\'s object untouched, errors name where and the key', () => {
  const body = { id: 't1', parsers: [{ plugin: 'sip' }, { plugin: 'rtp', enabled: false }], capture: null };
  const before = structuredClone(body);
  const t = taskFromObject(body, 'task.create');
  assert.deepEqual(body, before);
  assert.equal(t.id, 't1');
  assert.equal(t.file, 'task.create');
  assert.deepEqual(t.parsers, [{ plugin: 'sip', config: {}, where: 'task.create: task.parsers[0].config', at: 'task.create', named: 'task.create: task.parsers[0].plugin' }]);
  assert.equal(t.filterWhere, 'task.create: task.filter');
  assert.equal(t.interfaceWhere, 'task.create: task.capture.interface');
  assert.equal(t.unmatchedPolicy, 'forward');
  assert.deepEqual(t.effective, { id: 't1', parsers: [{ plugin: 'sip', enabled: true }, { plugin: 'rtp', enabled: false }], unmatched_policy: 'forward' });
  assert.deepEqual(taskFromObject({ task: body }, 'w').effective, t.effective);
  const bad = (data: unknown, msg: string): void =>
    assert.throws(
      () => taskFromObject(data, 'task.create'),
      (e: unknown) => e instanceof OtusError && e.code === 'OTUS_ERR_TASK' && e.message === msg,
    );
  bad({ id: 'x', processors: [{ plugin: 'filter' }, { plugin: 'label', enabld: true }] }, 'task.create: task.processors[1].enabld: is not a known key');
  bad({ task: { id: 'x', capture: { workers: 1.5 } } }, 'task.create: task.capture.workers: must be integer');
  bad({ task: { id: 'x' }, extra: 1 }, 'task.create: extra: is not a known key');
  bad('voip', 'task.create: task: must be object');
  bad(null, 'task.create: task.id: is required');
  bad({ id: 'x', f: () => 1 }, 'task.create: a task must be plain data (() => 1 could not be cloned.)');
});

test('reporterConfigFor: global settings under the task\'s, task keys win, objects merged; undefined reporters refused', () => {
  const g: GlobalConfig = parseGlobalConfig(FULL, F, { env: { KPASS: 'p' } });
  const r = reporterConfigFor(g, g.tasks[0]);
  assert.equal(r.name, 'kafka');
  assert.deepEqual(r.config, { brokers: ['k1:9092'], sasl: { user: 'otus', password: 'own' }, acks: 'all', topic: 'voip' });
  assert.equal(r.where, `${F}: otus.reporters.kafka merged under ${F}:30: otus.tasks[0].reporter.config`);
  assert.deepEqual(g.reporters.kafka.sasl, { user: 'otus', password: 'p' }, 'the global settings are not modified');
  assert.deepEqual(reporterConfigFor(g, g.tasks[1]), { name: 'console', config: {}, where: `${F}: otus.reporters.console`, named: `${F}: otus.reporters.console` });

  const t = parseTask('task:\n  id: v\n  reporter: {type: file, config: {path: /tmp/x}}\n', '/t.yml');
  assert.throws(
    () => reporterConfigFor(g, t),
    (e: unknown) =>
      e instanceof OtusError &&
      e.code === 'OTUS_ERR_TASK' &&
      e.message === `/t.yml:3: task.reporter.type: task "v" names reporter "file", which the global configuration (${F}) does not define under otus.reporters (defined: console, kafka)`,
  );
  const noConsole = parseGlobalConfig('otus:\n  reporters: {kafka: {}}\n', F);
  assert.throws(() => reporterConfigFor(noConsole, parseTask('task: {id: v}', '/t.yml')), /task "v" names no reporter, so it uses reporter "console", which .* \(defined: kafka\)/);
  // A key named __proto__ is data, not a prototype.
  const p = reporterConfigFor(g, taskFromObject(JSON.parse('{"id": "p", "reporter": {"type": "kafka", "config": {"__proto__": {"polluted": 1}}}}'), 'x'));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.deepEqual(Object.getOwnPropertyDescriptor(p.config, '__proto__')?.value, { polluted: 1 });
});
