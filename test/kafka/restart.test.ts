// The broker SIGKILLed and started again while `otus replay` sends to it:
// sending resumes (the replay ends normally and the topic holds its
// records), with idempotence no record is written twice, and the summary
// accounts for every record: produced = acknowledged + counted drops, none
// in flight, and exactly the acknowledged records are in the topic.
// Records are unique (each frame's payload carries its index), so a
// duplicate is visible. While the broker is down the client's queue fills,
// the sender waits (Reporter.blocked) and the replay's capture process waits
// on the full ring: the run is paced by the broker.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writePcap, waitForAsync } from '../helpers/live.js';
import { udpFrame } from '../helpers/udp-frames.js';
import { consume, kafkaSkipReason, runTask, startBroker, topicSize, type ClientName } from '../helpers/kafka.js';

const skip = kafkaSkipReason();
if (skip) console.log(`# kafka tests skipped: ${skip}`);
const broker = skip ? null : startBroker();
const dir = mkdtempSync(join(tmpdir(), 'otus-kafka-restart-'));
after(() => {
  broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function capture(name: string, n: number): string {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < n; i++) frames.push(udpFrame(`10.9.${(i >> 8) & 255}.${i & 255}`, '10.8.0.1', 40000 + (i % 1000), 9999, `record ${i} `.padEnd(120, '.')));
  const file = join(dir, name);
  writePcap(file, frames);
  return file;
}


// kafkajs sends far slower: fewer records keep its run as long.
const RECORDS: Record<ClientName, number> = { librdkafka: 400000, kafkajs: 60000 };

for (const client of ['librdkafka', 'kafkajs'] as ClientName[]) {
  test(`${client}: broker killed and restarted mid-run: sending resumes, no duplicates, produced = acked + drops`, { skip: skip ?? false, timeout: 400000 }, async () => {
    const n = RECORDS[client];
    const file = capture(`${client}.pcap`, n);
    const topic = `restart-${client}`;
    const running = runTask(
      `task:
  id: kafka-restart-${client}
  unmatched_policy: forward
  reporter:
    type: kafka
    config: { brokers: ["${broker!.bootstrap}"], client: ${client}, topic: ${topic}, format: json, queue_max_messages: 20000 }
`,
      [file],
    );
    let exited = false;
    void running.then(() => (exited = true));
    // Kill it once the first records are in, long before the last.
    assert.ok(await waitForAsync(async () => (await topicSize(broker!.bootstrap, topic)) >= n / 20, 120000), 'records reached the broker');
    broker!.kill();
    const atKill = exited;
    broker!.restart();
    const run = await running;
    assert.equal(run.status, 0, run.stderr);
    assert.equal(atKill, false, 'the replay was still running when the broker died');
    const st = run.stats;
    const r = st.reporter;
    const dropped = r.timeout + Object.values(r.errors as Record<string, number>).reduce((a, v) => a + v, 0);
    assert.equal(st.sender.records, n);
    assert.equal(r.queued, 0);
    assert.equal(st.sender.records, r.acked + dropped, JSON.stringify(r));
    assert.ok(r.acked > n / 2, `sending resumed: ${r.acked} of ${n} acknowledged`);
    const size = await topicSize(broker!.bootstrap, topic);
    assert.equal(size, r.acked, 'the topic holds as many records as were acknowledged');
    const got = await consume(client, broker!.bootstrap, [topic], size, 120000);
    assert.equal(got.length, size);
    const values = got.map((m) => m.value.toString('utf8'));
    assert.equal(new Set(values).size, values.length, `duplicates: ${values.length - new Set(values).size}`);
  });
}
