// The kafka reporter (librdkafka) against a broker that makes no topic on
// first use (auto.create.topics.enable=false, as production clusters often
// are): a topic it does not have raises no error in librdkafka, its records
// just wait and time out. The reporter turns unhealthy within seconds with
// the topic named, while one whose topic exists stays healthy.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, test } from 'node:test';
import { createRegistry } from '../../src/plugin/builtins.js';
import type { Reporter, ReporterCounters } from '../../src/plugin/types.js';
import { waitForAsync } from '../helpers/live.js';
import { kafkaSkipReason, startBroker } from '../helpers/kafka.js';

const skip = kafkaSkipReason();
if (skip) console.log(`# kafka unknown-topic test skipped: ${skip}`);
const broker = skip ? null : startBroker({ autoCreate: false });
after(() => broker?.stop());

type Health = Reporter & { readonly healthy: boolean; readonly lastError: string | null };

async function reporter(topic: string): Promise<Health> {
  const r = await (await createRegistry([])).instantiate('reporter', 'kafka', { brokers: [broker!.bootstrap], topic, delivery_timeout_ms: 8000 }, { node: {}, taskId: 't', worker: -1, where: 'test' });
  await r.start?.();
  return r as Health;
}

/** Creates `topic` through librdkafka's admin client. */
function createTopic(topic: string): Promise<void> {
  const rd = createRequire(import.meta.url)('@confluentinc/kafka-javascript') as {
    AdminClient: { create(c: Record<string, string>): { createTopic(t: object, cb: (e: Error | null) => void): void; disconnect(): void } };
  };
  const admin = rd.AdminClient.create({ 'bootstrap.servers': broker!.bootstrap });
  return new Promise((res, rej) =>
    admin.createTopic({ topic, num_partitions: 1, replication_factor: 1 }, (e) => {
      admin.disconnect();
      if (e) rej(e);
      else res();
    }),
  );
}

const record = (i: number): { buf: Uint8Array; off: number; len: number } => {
  const b = Buffer.from(`{"i":${i}}\n`);
  return { buf: b, off: 0, len: b.length };
};

test('librdkafka: a topic the cluster does not have is named as the reason, unhealthy; one that exists stays healthy', { skip: skip ?? false, timeout: 120000 }, async () => {
  await createTopic('otus-exists');
  const good = await reporter('otus-exists');
  const bad = await reporter('otus-missing');
  try {
    for (let i = 0; i < 50; i++) {
      good.report(record(i) as never);
      bad.report(record(i) as never);
    }
    assert.ok(await waitForAsync(async () => !bad.healthy, 20000), `unhealthy: ${bad.lastError}`);
    assert.match(bad.lastError ?? '', /topic "otus-missing" is not in the cluster's metadata/);
    await good.flush?.();
    assert.equal(good.healthy, true, `the topic that exists: ${good.lastError}`);
    assert.equal(good.dropped ?? 0, 0);
    // The missing topic's records end as timeouts, counted.
    await bad.flush?.();
    const c = bad.counters?.() as ReporterCounters;
    assert.equal(c.timeout, 50, JSON.stringify(c));
  } finally {
    for (const r of [good, bad]) {
      r.abandon?.();
      await r.stop?.();
    }
  }
});
