// `otus replay` of real SIP and RTP captures into a real Kafka broker
// (scripts/kafka.sh), with each client and each record format: the topics,
// read back with the same client library, hold exactly the records the
// `file` reporter writes for the same replay (same count, same bytes), each
// in `{prefix}-{protocol}`, keyed by its call-id or else its flow (both
// directions alike, one key per flow), its labels as headers, and a key's
// records in one partition in capture order.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import protobuf from 'protobufjs';
import { fileRecords } from '../helpers/file-records.js';
import { FIXTURES, ROOT } from '../helpers/otus-replay.js';
import { consume, kafkaSkipReason, runTask, startBroker, type ClientName, type Consumed } from '../helpers/kafka.js';

const skip = kafkaSkipReason();
if (skip) console.log(`# kafka tests skipped: ${skip}`);
const broker = skip ? null : startBroker();
const dir = mkdtempSync(join(tmpdir(), 'otus-kafka-replay-'));
after(() => {
  broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const FILES = [join(FIXTURES, 'suricata-verify--sip-body-frames.pcap'), join(FIXTURES, 'rtpproxy--dtmf.pcapng'), join(ROOT, 'samples/rtp-g711a.pcap')];
const RecordMsg = protobuf.loadSync(join(ROOT, 'proto/otus.proto')).lookupType('otus.v1.Record');

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

interface Seen {
  protocol: string;
  labels: Record<string, string>;
  /** Both endpoints and the protocol, the same for both directions. */
  flow: string;
}

function describe(value: Buffer, format: string): Seen {
  let protocol: string;
  let labels: Record<string, string>;
  let a: string;
  let b: string;
  let proto: number;
  if (format === 'json') {
    const r = JSON.parse(value.toString('utf8'));
    protocol = r.protocol;
    labels = r.labels;
    a = `${r.flow.src}/${r.flow.sport}`;
    b = `${r.flow.dst}/${r.flow.dport}`;
    proto = r.flow.proto;
  } else {
    const r = RecordMsg.toObject(RecordMsg.decode(value), { longs: Number, bytes: String, defaults: true, objects: true }) as any;
    protocol = r.protocol;
    labels = r.labels;
    a = `${r.flow.src}/${r.flow.sport}`;
    b = `${r.flow.dst}/${r.flow.dport}`;
    proto = r.flow.proto;
  }
  return { protocol, labels, flow: `${[a, b].sort().join(' ')} ${proto}` };
}

const sorted = (xs: Buffer[]): string[] => xs.map((x) => x.toString('hex')).sort();

for (const client of ['librdkafka', 'kafkajs'] as ClientName[]) {
  for (const format of ['json', 'protobuf']) {
    test(`${client}, ${format}: the topics hold the file reporter's records, keyed by call or flow, labels as headers`, { skip: skip ?? false, timeout: 180000 }, async () => {
      const out = join(dir, `${client}-${format}.out`);
      const file = await runTask(task(`kf-${client}-${format}`, `    type: file\n    config: { path: ${out}, format: ${format} }`), FILES);
      assert.equal(file.status, 0, file.stderr);
      const expected = fileRecords(out, format);
      assert.ok(expected.length > 400, `${expected.length} records`);

      const prefix = `t-${client}-${format}`;
      const cfg = `    type: kafka\n    config: { brokers: ["${broker!.bootstrap}"], client: ${client}, topic_prefix: ${prefix}, format: ${format} }`;
      const run = await runTask(task(`kk-${client}-${format}`, cfg), FILES);
      assert.equal(run.status, 0, run.stderr);
      const st = run.stats;
      assert.equal(st.sender.records, expected.length);
      assert.deepEqual(st.reporter, { acked: expected.length, timeout: 0, errors: {}, queued: 0 });
      assert.equal(st.drops.reporter_queue + st.drops.reporter_timeout + st.drops.reporter_error, 0);

      const protocols = [...new Set(expected.map((v) => describe(v, format).protocol))];
      assert.ok(protocols.includes('sip') && protocols.length >= 2, protocols.join());
      const got = await consume(client, broker!.bootstrap, protocols.map((p) => `${prefix}-${p}`), expected.length);
      assert.equal(got.length, expected.length);
      assert.deepEqual(sorted(got.map((m) => m.value)), sorted(expected));

      const keyOfFlow = new Map<string, string>();
      const flowOfKey = new Map<string, string>();
      const byKey = new Map<string, Consumed[]>();
      let callKeys = 0;
      for (const m of got) {
        const r = describe(m.value, format);
        assert.equal(m.topic, `${prefix}-${r.protocol}`);
        assert.deepEqual(
          m.headers.map(([k, v]) => [k, v.toString('utf8')]).sort(),
          Object.entries(r.labels).sort(),
          'headers = labels',
        );
        const key = m.key!.toString('utf8');
        const call = r.labels['call-id'] ?? r.labels['sip.call-id'];
        if (call !== undefined) {
          assert.equal(key, call);
          callKeys++;
        } else {
          assert.match(key, /^[0-9a-f]{8}$/);
          assert.equal(keyOfFlow.get(r.flow) ?? key, key, `one key per flow: ${r.flow}`);
          assert.equal(flowOfKey.get(key) ?? r.flow, r.flow, `one flow per key: ${key}`);
          keyOfFlow.set(r.flow, key);
          flowOfKey.set(key, r.flow);
        }
        const k = `${m.topic} ${key}`;
        byKey.set(k, [...(byKey.get(k) ?? []), m]);
      }
      assert.ok(callKeys > 0 && keyOfFlow.size >= 2, `${callKeys} keyed by call, ${keyOfFlow.size} flows`);
      // A key's records: one partition, in the order the file reporter wrote them.
      const order = new Map(expected.map((v, i) => [v.toString('hex'), i]));
      for (const [k, ms] of byKey) {
        assert.equal(new Set(ms.map((m) => m.partition)).size, 1, `${k}: one partition`);
        const idx = ms.sort((x, y) => x.offset - y.offset).map((m) => order.get(m.value.toString('hex'))!);
        assert.deepEqual(idx, [...idx].sort((x, y) => x - y), `${k}: capture order`);
      }
    });
  }
}
