// `otus replay` of real SIP and RTP captures into real OTLP receivers
// (test/helpers/otlp.ts: an HTTP and a gRPC server decoding with the
// official opentelemetry-proto definitions through protobufjs): every record
// arrives as a log record whose body is the file reporter's JSON line, whose
// attributes are the record's labels and whose time is its capture time,
// under one resource naming the node and task; retryable refusals (HTTP 503
// with Retry-After, gRPC UNAVAILABLE, RESOURCE_EXHAUSTED with RetryInfo) are
// retried until taken, others (HTTP 400, RESOURCE_EXHAUSTED without
// RetryInfo) drop their batch, counted.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { fileRecords } from '../helpers/file-records.js';
import { runTask } from '../helpers/kafka.js';
import { type Answer, OtlpReceiver } from '../helpers/otlp.js';
import { assertUndelivered, FIXTURES, ROOT } from '../helpers/otus-replay.js';

const dir = mkdtempSync(join(tmpdir(), 'otus-otlp-replay-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const FILES = [join(FIXTURES, 'suricata-verify--sip-body-frames.pcap'), join(FIXTURES, 'rtpproxy--dtmf.pcapng'), join(ROOT, 'samples/rtp-g711a.pcap')];
const SMALL = [join(FIXTURES, 'suricata-verify--sip-body-frames.pcap')];

function task(id: string, reporter: string): string {
  return `task:
  id: ${id}
  parsers:
    - plugin: sip
    - plugin: rtp
    - plugin: rtcp
  unmatched_policy: forward
  reporter:
${reporter}
`;
}

function otlp(protocol: string, endpoint: string, extra = ''): string {
  return `    type: otlp\n    config: { protocol: ${protocol}, endpoint: "${endpoint}", retry_initial_ms: 50, retry_max_ms: 200${extra} }`;
}

/** An ISO-8601 UTC time with up to 9 fractional digits, as exact nanoseconds. */
function nanos(ts: string): bigint {
  const m = /^(.*?)(?:\.(\d+))?Z$/.exec(ts)!;
  return BigInt(Date.parse(`${m[1]}Z`) / 1000) * 1000000000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

const expected = (async () => {
  const out = join(dir, 'file.ndjson');
  const file = await runTask(task('of', `    type: file\n    config: { path: ${out} }`), FILES);
  assert.equal(file.status, 0, file.stderr);
  return fileRecords(out, 'json').map((b) => b.toString('utf8'));
})();

for (const protocol of ['http/protobuf', 'grpc']) {
  test(`${protocol}: every record arrives with its labels as attributes, its time, and the node as resource`, { timeout: 120000 }, async () => {
    const lines = await expected;
    assert.ok(lines.length > 400, `${lines.length} records`);
    const rx = new OtlpReceiver();
    const endpoint = protocol === 'grpc' ? await rx.grpc() : await rx.http();
    try {
      const run = await runTask(task('ot', otlp(protocol, endpoint, ', batch_records: 100')), FILES);
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(run.stats.reporter, { acked: lines.length, timeout: 0, errors: {}, queued: 0 });
      const got = rx.records;
      // In order with one request at a time; several in flight may land in any order.
      assert.deepEqual(got.map((r) => r.body).sort(), [...lines].sort());
      const byBody = new Map(got.map((r) => [r.body, r]));
      for (const line of lines) {
        const rec = JSON.parse(line);
        const lr = byBody.get(line)!;
        assert.deepEqual(lr.attributes, rec.labels, line);
        assert.equal(lr.eventName, rec.protocol);
        assert.equal(lr.timeUnixNano, nanos(rec.ts), rec.ts);
        const observedMs = Number(lr.observedTimeUnixNano / 1000000n);
        assert.ok(observedMs > Date.now() - 600000 && observedMs <= Date.now(), `observed ${lr.observedTimeUnixNano}`);
      }
      for (const req of rx.accepted) {
        assert.equal(req.resource['service.name'], 'otus');
        assert.equal(req.resource['host.name'], os.hostname());
        assert.equal(req.resource['otus.task.id'], 'ot');
        assert.deepEqual(req.scope, { name: 'otus', version: '0.1.0' });
      }
    } finally {
      rx.close();
    }
  });
}

const cases: { name: string; protocol: string; answers: Answer[]; outcome: 'acked' | string; waitMs?: number }[] = [
  { name: 'HTTP 503 with Retry-After, then 200: retried, every record taken', protocol: 'http/protobuf', answers: [{ http: 503, headers: { 'retry-after': '1' } }], outcome: 'acked', waitMs: 1000 },
  { name: 'HTTP 429 without Retry-After, then 200: retried with backoff', protocol: 'http/protobuf', answers: [{ http: 429 }, { http: 502 }], outcome: 'acked' },
  { name: 'HTTP 400: not retried, every record dropped as http_400', protocol: 'http/protobuf', answers: [{ http: 400 }], outcome: 'http_400' },
  { name: 'gRPC UNAVAILABLE, then OK: retried', protocol: 'grpc', answers: [{ grpc: grpc.status.UNAVAILABLE }], outcome: 'acked' },
  { name: 'gRPC RESOURCE_EXHAUSTED with RetryInfo: retried', protocol: 'grpc', answers: [{ grpc: grpc.status.RESOURCE_EXHAUSTED, retryMs: 1500 }], outcome: 'acked', waitMs: 1500 },
  { name: 'gRPC RESOURCE_EXHAUSTED without RetryInfo: dropped', protocol: 'grpc', answers: [{ grpc: grpc.status.RESOURCE_EXHAUSTED }], outcome: 'resource_exhausted' },
  { name: 'gRPC INVALID_ARGUMENT: dropped', protocol: 'grpc', answers: [{ grpc: grpc.status.INVALID_ARGUMENT }], outcome: 'invalid_argument' },
];

for (const c of cases) {
  test(c.name, { timeout: 60000 }, async () => {
    const rx = new OtlpReceiver(c.answers);
    const endpoint = c.protocol === 'grpc' ? await rx.grpc() : await rx.http();
    try {
      // One batch (linger long enough for the whole file), so each answer is about every record.
      const run = await runTask(task('oretry', otlp(c.protocol, endpoint, ', linger_ms: 2000')), SMALL);
      const n = run.stats.sender.records;
      assert.ok(n > 0);
      if (c.outcome === 'acked') assert.equal(run.status, 0, run.stderr);
      else assertUndelivered(run, n);
      if (c.outcome === 'acked') {
        assert.deepEqual(run.stats.reporter, { acked: n, timeout: 0, errors: {}, queued: 0 });
        assert.equal(rx.requests, c.answers.length + 1, 'one request per answer, then the one taken');
        assert.equal(rx.records.length, n);
        // The server's delay honoured (the retry backoff here is 50-200 ms).
        if (c.waitMs !== undefined) assert.ok(rx.times[1]! - rx.times[0]! >= c.waitMs - 20, `retried after ${rx.times[1]! - rx.times[0]!} ms`);
      } else {
        assert.deepEqual(run.stats.reporter, { acked: 0, timeout: 0, errors: { [c.outcome]: n }, queued: 0 });
        assert.equal(run.stats.drops.reporter_error, n);
        assert.equal(rx.requests, 1, 'not retried');
      }
    } finally {
      rx.close();
    }
  });
}
