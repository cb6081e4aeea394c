// `otus replay` of real SIP and RTP captures into a real @grpc/grpc-js
// server of otus.v1.Reporter (test/helpers/grpc.ts, decoding with
// protobufjs): in each format the server receives exactly the records the
// `file` reporter writes for the same replay, in order, every batch
// acknowledged; the same over mutual TLS (certificates made here with
// openssl), and a client without a certificate is refused: its records
// counted as timeouts.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { fileRecords } from '../helpers/file-records.js';
import { ReportServer } from '../helpers/grpc.js';
import { runTask } from '../helpers/kafka.js';
import { assertUndelivered, FIXTURES, ROOT } from '../helpers/otus-replay.js';

const dir = mkdtempSync(join(tmpdir(), 'otus-grpc-replay-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const FILES = [join(FIXTURES, 'suricata-verify--sip-body-frames.pcap'), join(FIXTURES, 'rtpproxy--dtmf.pcapng'), join(ROOT, 'samples/rtp-g711a.pcap')];

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

for (const format of ['json', 'protobuf']) {
  test(`${format}: the server receives the file reporter's records, in order, every batch acknowledged`, { timeout: 120000 }, async () => {
    const out = join(dir, `${format}.out`);
    const file = await runTask(task(`gf-${format}`, `    type: file\n    config: { path: ${out}, format: ${format} }`), FILES);
    assert.equal(file.status, 0, file.stderr);
    const expected = fileRecords(out, format);
    assert.ok(expected.length > 400, `${expected.length} records`);

    const server = await ReportServer.start();
    try {
      // Small batches: many of them, several in flight.
      const cfg = `    type: grpc\n    config: { endpoint: "127.0.0.1:${server.port}", format: ${format}, batch_records: 50 }`;
      const run = await runTask(task(`gg-${format}`, cfg), FILES);
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stats.sender.records, expected.length);
      assert.deepEqual(run.stats.reporter, { acked: expected.length, timeout: 0, errors: {}, queued: 0 });
      assert.equal(server.records.length, expected.length);
      assert.deepEqual(server.records.map((r) => r.toString('hex')), expected.map((r) => r.toString('hex')));
      assert.deepEqual(server.seqs, server.seqs.map((_, i) => i + 1));
      assert.equal(server.metadata[0]!['otus-task'], `gg-${format}`);
      assert.equal(server.metadata[0]!['otus-format'], format);
    } finally {
      server.kill();
    }
  });
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
function certificates(): Record<'ca' | 'caKey' | 'cert' | 'key' | 'clientCert' | 'clientKey', string> {
  const p = (n: string): string => join(dir, n);
  const ssl = (...a: string[]): void => void execFileSync('openssl', a, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=otus test CA', '-keyout', p('ca.key'), '-out', p('ca.pem'));
  for (const [name, cn] of [['server', '127.0.0.1'], ['client', 'otus client']]) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`));
    const ext = p(`${name}.ext`);
    execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1\\n' > ${ext}`]);
    ssl('x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', p(`${name}.pem`));
  }
  return { ca: p('ca.pem'), caKey: p('ca.key'), cert: p('server.pem'), key: p('server.key'), clientCert: p('client.pem'), clientKey: p('client.key') };
}

test('mutual TLS: a client with its certificate delivers every record; one without is refused and its records time out', { timeout: 120000 }, async () => {
  const c = certificates();
  const creds = grpc.ServerCredentials.createSsl(readFileSync(c.ca), [{ cert_chain: readFileSync(c.cert), private_key: readFileSync(c.key) }], true);
  const server = await ReportServer.start({ creds });
  try {
    const files = [join(FIXTURES, 'suricata-verify--sip-body-frames.pcap')];
    const ok = await runTask(task('gtls', `    type: grpc\n    config: { endpoint: "127.0.0.1:${server.port}", tls: { ca: ${c.ca}, cert: ${c.clientCert}, key: ${c.clientKey} } }`), files);
    assert.equal(ok.status, 0, ok.stderr);
    const n = ok.stats.sender.records;
    assert.ok(n > 0);
    assert.deepEqual(ok.stats.reporter, { acked: n, timeout: 0, errors: {}, queued: 0 });
    assert.equal(server.records.length, n);

    const refused = await runTask(task('gtls-nocert', `    type: grpc\n    config: { endpoint: "127.0.0.1:${server.port}", tls: { ca: ${c.ca} }, timeout_ms: 1500 }`), files);
    assertUndelivered(refused, n);
    assert.deepEqual(refused.stats.reporter, { acked: 0, timeout: n, errors: {}, queued: 0 });
    assert.equal(server.records.length, n, 'nothing more reached the server');
  } finally {
    server.kill();
  }
});

test('config errors are coded and name the key: server_name without tls, an unreadable certificate', { timeout: 60000 }, async () => {
  const files = [join(FIXTURES, 'suricata-verify--sip-body-frames.pcap')];
  const a = await runTask(task('gbad1', '    type: grpc\n    config: { endpoint: "127.0.0.1:1", server_name: x }'), files);
  assert.notEqual(a.status, 0);
  assert.match(a.stderr, /task\.reporter\.config\.server_name: only with tls.*\[OTUS_ERR_PLUGIN_INIT\]/);
  const b = await runTask(task('gbad2', `    type: grpc\n    config: { endpoint: "127.0.0.1:1", tls: { ca: ${join(dir, 'missing.pem')} } }`), files);
  assert.notEqual(b.status, 0);
  assert.match(b.stderr, /task\.reporter\.config\.tls\.ca: cannot read .*missing\.pem: ENOENT \[OTUS_ERR_PLUGIN_INIT\]/);
  assert.doesNotMatch(a.stderr + b.stderr, /\n\s+at /, 'no stack trace');
});
