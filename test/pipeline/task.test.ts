// Task YAML: valid tasks load with defaults; every error names the file,
// the line and the key path; plugin config errors name the same file and
// path through the plugin's own schema; the task filter section.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTaskFile, parseTask } from '../../src/config/task.js';
import { CaptureFilter } from '../../src/pipeline/capture-filter.js';
import { instantiateTaskPlugins } from '../../src/pipeline/from-task.js';
import { createRegistry } from '../../src/plugin/builtins.js';
import { Decoder } from '../../src/decode/decoder.js';
import { OtusError } from '../../src/util/errors.js';
import { openCapture } from '../../src/capture-file/open.js';
import { SAMPLE } from './helpers.js';

const DESIGN_EXAMPLE = `task:
  id: "voip-monitor-01"
  capture:
    driver: af_packet_v3
    interface: eth0
    workers: 4
  filter:
    src_ip: ["10.0.1.0/24"]
    dst_ip: ["10.0.2.0/24"]
    ports: [5060, 5061]
    port_range: "10000-20000"
    protocol: udp
  parsers:
    - plugin: sip
      config:
        track_media: true
    - plugin: rtp
  processors:
    - plugin: filter
      config:
        rules:
          - label: "sip.method"
            values: ["OPTIONS", "REGISTER"]
            action: drop
    - plugin: label
      enabled: false
  reporter:
    type: kafka
    config:
      topic: "voip-sip-packets"
  unmatched_policy: drop
`;

function taskError(text: string, ...parts: string[]): void {
  assert.throws(
    () => parseTask(text, '/etc/otus/t.yml'),
    (e: unknown) => {
      assert.ok(e instanceof OtusError);
      assert.equal(e.code, 'OTUS_ERR_TASK', e.message);
      for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
      return true;
    },
  );
}

test("the task format's example loads; disabled plugins are left out; defaults applied", () => {
  const t = parseTask(DESIGN_EXAMPLE, 'd.yml');
  assert.equal(t.id, 'voip-monitor-01');
  assert.equal(t.workers, 4);
  assert.deepEqual(t.parsers.map((p) => p.plugin), ['sip', 'rtp']);
  assert.deepEqual(t.processors.map((p) => [p.plugin, p.where]), [['filter', 'd.yml:20: task.processors[0].config']]);
  assert.equal(t.reporter?.plugin, 'kafka');
  assert.equal(t.unmatchedPolicy, 'drop');
  assert.equal(parseTask('task: {id: a}', 'x').unmatchedPolicy, 'forward');
});

test('task errors name the file, line and key path', () => {
  taskError('task:\n  capture: {}\n', '/etc/otus/t.yml:2: task.id: is required');
  taskError('task:\n  id: x\n  unmatched_policy: keep\n', '/etc/otus/t.yml:3: task.unmatched_policy: must be one of "forward", "drop"');
  taskError('task:\n  id: x\n  capture:\n    workers: -1\n', 't.yml:4: task.capture.workers: must be >= 0');
  taskError('task:\n  id: x\n  processors:\n    - plugin: filter\n    - config: {}\n', 't.yml:5: task.processors[1].plugin: is required');
  taskError('task:\n  id: x\n  reporterz: {}\n', 't.yml:3: task.reporterz: is not a known key');
  taskError('task:\n  id: x\n  filter:\n    ports: [5060, "sip"]\n', 't.yml:4: task.filter.ports[1]: must be integer');
  taskError('task:\n  id: [x\n', '/etc/otus/t.yml:', 'not valid YAML');
  taskError('task:\n  id: a\n  id: b\n', 't.yml:3: not valid YAML: Map keys must be unique');
  taskError('- just a list\n', 't.yml:1: top level: must be object');
  assert.throws(() => loadTaskFile('/nonexistent/task.yml'), /\/nonexistent\/task.yml: cannot read task file/);
});

test('plugin config errors name the task file and key path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'otus-task-'));
  const file = join(dir, 'task.yml');
  writeFileSync(file, 'task:\n  id: x\n  processors:\n    - plugin: label\n    - plugin: filter\n      config:\n        rules:\n          - {label: sip.method, values: [OPTIONS], action: toss}\n');
  const r = await createRegistry();
  await assert.rejects(instantiateTaskPlugins(r, loadTaskFile(file), {}, 0), (e: unknown) => {
    assert.ok(e instanceof OtusError);
    assert.equal(e.code, 'OTUS_ERR_PLUGIN_CONFIG');
    assert.ok(e.message.includes(`${file}:6: task.processors[1].config.rules[0].action: must be one of "drop", "pass"`), e.message);
    return true;
  });
  writeFileSync(file, 'task:\n  id: x\n  parsers:\n    - plugin: h323\n'); // no such parser (sip now is one)
  await assert.rejects(instantiateTaskPlugins(r, loadTaskFile(file), {}, 0), (e: unknown) => {
    assert.ok(e instanceof OtusError && e.code === 'OTUS_ERR_PLUGIN_NOT_FOUND', String(e));
    assert.ok(e.message.includes(`${file}:4: task.parsers[0].plugin: no parser plugin named "h323"`), e.message);
    return true;
  });
});

test('task filter: CIDRs, ports, range and protocol against the sample (10.1.6.18:2006 → 127.0.0.1:2008/2009)', () => {
  const count = (f: object): number => {
    const flt = new CaptureFilter(f, 'f');
    const r = openCapture(SAMPLE);
    const fr = r.frame;
    let n = 0;
    while (r.next()) if (flt.matches(fr.buf, fr.off, fr.caplen, fr.len, fr.linkType)) n++;
    return n;
  };
  assert.equal(count({}), 230);
  assert.equal(count({ src_ip: ['10.1.6.0/24'] }), 230);
  assert.equal(count({ src_ip: ['10.1.7.0/24'] }), 0);
  assert.equal(count({ dst_ip: ['127.0.0.1'] }), 230);
  assert.equal(count({ dst_ip: ['::1/128'] }), 0);
  assert.equal(count({ ports: [2009] }), 1);
  assert.equal(count({ port_range: '2008-2008' }), 229);
  assert.equal(count({ ports: [2009], port_range: '2008-2008' }), 230);
  assert.equal(count({ protocol: 'tcp' }), 0);
  assert.equal(count({ protocol: 'udp', src_ip: ['0.0.0.0/0'] }), 230);
  // A raw bpf string is and-ed with the structured keys, and compiled by libpcap.
  assert.equal(count({ bpf: 'udp dst port 2009' }), 1);
  assert.equal(count({ bpf: 'udp dst port 2009', ports: [2008] }), 0);
  assert.equal(count({ bpf: 'ip[8] = 64 or greater 100' }), 230 - count({ bpf: 'not (ip[8] = 64 or greater 100)' }));
  assert.throws(() => new CaptureFilter({ src_ip: ['10.1.6.0/33'] }, 't.yml: task.filter'), (e: OtusError) => e.code === 'OTUS_ERR_TASK' && /t.yml: task.filter: filter.src_ip: "10.1.6.0\/33"/.test(e.message));
  assert.throws(() => new CaptureFilter({ port_range: '20-10' }, 'f'), /f: filter.port_range/);
  assert.throws(() => new CaptureFilter({ bpf: 'udp prot 5060' }, 't.yml: task.filter'), (e: OtusError) => e.code === 'OTUS_ERR_TASK' && /t.yml: task.filter \(link type 1\): filter "udp prot 5060": /.test(e.message));
});
