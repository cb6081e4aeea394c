// The otlp reporter into the OpenTelemetry Collector itself (built by
// scripts/otelcol.sh from the Go module proxy: the OTLP receiver and the
// debug exporter, which prints every log record it gets): over OTLP/HTTP and
// OTLP/gRPC, `otus replay` of real SIP and RTP captures reaches the
// Collector as exactly the file reporter's records (the log records'
// bodies), each with the record's labels as attributes, under the resource
// naming the service and task. Skips, saying so, when the Collector is not
// built (it needs Go 1.26).

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileRecords } from '../helpers/file-records.js';
import { runTask } from '../helpers/kafka.js';
import { waitForAsync } from '../helpers/live.js';
import { FIXTURES, ROOT } from '../helpers/otus-replay.js';

const built = spawnSync(join(ROOT, 'scripts/otelcol.sh'), ['path'], { encoding: 'utf8' });
const binary = built.status === 0 ? built.stdout.trim().replace(/^binary=/, '') : null;
const skip = binary === null ? 'the OpenTelemetry Collector is not built (scripts/otelcol.sh build, with Go 1.26 or newer)' : null;
if (skip) console.log(`# collector test skipped: ${skip}`);

const dir = mkdtempSync(join(tmpdir(), 'otus-otelcol-'));
const FILES = [join(FIXTURES, 'suricata-verify--sip-body-frames.pcap'), join(FIXTURES, 'rtpproxy--dtmf.pcapng')];
let collector: ChildProcess | null = null;
let output = '';
let grpcPort = '';
let httpPort = '';

before(async () => {
  if (skip) return;
  [grpcPort, httpPort] = execFileSync(process.execPath, [join(ROOT, 'scripts/kafka/probe.mjs'), 'ports', '2'], { encoding: 'utf8' }).trim().split(/\s+/);
  const cfg = join(dir, 'otelcol.yaml');
  writeFileSync(
    cfg,
    `receivers:
  otlp:
    protocols:
      grpc: { endpoint: "127.0.0.1:${grpcPort}" }
      http: { endpoint: "127.0.0.1:${httpPort}" }
exporters:
  debug: { verbosity: detailed, sampling_initial: 1000000, sampling_thereafter: 1 }
service:
  telemetry: { metrics: { level: none } }
  pipelines:
    logs: { receivers: [otlp], exporters: [debug] }
`,
  );
  collector = spawn(binary!, ['--config', `file:${cfg}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  collector.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  collector.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  assert.ok(await waitForAsync(async () => output.includes('Everything is ready'), 60000), `the Collector did not start:\n${output}`);
});

after(() => {
  collector?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

interface Printed {
  resource: Record<string, string>;
  body: string;
  attributes: Record<string, string>;
}

/** The log records the debug exporter printed (detailed): resource attributes, body, attributes. */
function printed(text: string): Printed[] {
  const out: Printed[] = [];
  let resource: Record<string, string> = {};
  let into: Record<string, string> | null = null;
  let cur: Printed | null = null;
  for (const line of text.split('\n')) {
    const attr = /^ {5}-> ([^:]+): Str\((.*)\)$/.exec(line);
    if (attr && into) {
      into[attr[1]!] = attr[2]!;
      continue;
    }
    into = null;
    if (line === 'Resource attributes:') into = resource = {};
    else if (/^LogRecord #\d+$/.test(line)) out.push((cur = { resource, body: '', attributes: {} }));
    else if (cur && line.startsWith('Body: Str(') && line.endsWith(')')) cur.body = line.slice(10, -1);
    else if (cur && line === 'Attributes:') into = cur.attributes;
  }
  return out;
}

test('the Collector receives every record over OTLP/HTTP and OTLP/gRPC, with its labels as attributes', { skip: skip ?? false, timeout: 180000 }, async () => {
  const fileOut = join(dir, 'file.ndjson');
  const taskOf = (id: string, reporter: string): string =>
    `task:\n  id: ${id}\n  parsers:\n    - plugin: sip\n    - plugin: rtp\n  unmatched_policy: forward\n  reporter:\n${reporter}\n`;
  const file = await runTask(taskOf('cf', `    type: file\n    config: { path: ${fileOut} }`), FILES);
  assert.equal(file.status, 0, file.stderr);
  const lines = fileRecords(fileOut, 'json').map((b) => b.toString('utf8'));
  assert.ok(lines.length > 100, `${lines.length} records`);

  for (const [protocol, endpoint] of [['http/protobuf', `http://127.0.0.1:${httpPort}`], ['grpc', `127.0.0.1:${grpcPort}`]]) {
    const from = output.length;
    const id = protocol === 'grpc' ? 'cg' : 'ch';
    const run = await runTask(taskOf(id, `    type: otlp\n    config: { protocol: ${protocol}, endpoint: "${endpoint}" }`), FILES);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(run.stats.reporter, { acked: lines.length, timeout: 0, errors: {}, queued: 0 });
    // The exporter prints what it got a moment after the receiver acknowledged it.
    assert.ok(await waitForAsync(async () => printed(output.slice(from)).length >= lines.length, 30000), `${protocol}: ${printed(output.slice(from)).length} of ${lines.length} printed`);
    const got = printed(output.slice(from));
    assert.equal(got.length, lines.length, protocol);
    assert.deepEqual(got.map((r) => r.body).sort(), [...lines].sort(), protocol);
    const byBody = new Map(got.map((r) => [r.body, r]));
    for (const line of lines) assert.deepEqual(byBody.get(line)!.attributes, JSON.parse(line).labels, line);
    for (const r of got) {
      assert.equal(r.resource['service.name'], 'otus');
      assert.equal(r.resource['otus.task.id'], id);
    }
  }
});
