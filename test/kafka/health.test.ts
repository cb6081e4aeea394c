// The kafka reporter's health, as the sender reads it each heartbeat (the
// `otus_plugin_health` metric, `otusctl task status`, the sender's warning):
// unhealthy within seconds when no broker can be reached, with the reason in
// `lastError`; healthy against a running broker, idle or sending, and again
// once a killed broker is back. Both clients.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createRegistry } from '../../src/plugin/builtins.js';
import type { Reporter } from '../../src/plugin/types.js';
import { waitForAsync } from '../helpers/live.js';
import { ROOT } from '../helpers/otus-replay.js';
import { kafkaSkipReason, startBroker, type ClientName } from '../helpers/kafka.js';

const skip = kafkaSkipReason();
if (skip) console.log(`# kafka health tests with a broker skipped: ${skip}`);
const broker = skip ? null : startBroker();
after(() => broker?.stop());

type Health = Reporter & { readonly healthy: boolean; readonly lastError: string | null };

async function reporter(client: ClientName, brokers: string[]): Promise<Health> {
  const r = await (await createRegistry([])).instantiate('reporter', 'kafka', { brokers, client, topic: `health-${client}`, delivery_timeout_ms: 5000 }, { node: {}, taskId: 't', worker: -1, where: 'test' });
  await r.start?.();
  return r as Health;
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));
const record = (i: number): { buf: Uint8Array; off: number; len: number } => {
  const b = Buffer.from(`{"i":${i}}\n`);
  return { buf: b, off: 0, len: b.length };
};

for (const client of ['librdkafka', 'kafkajs'] as ClientName[]) {
  test(`${client}: no broker at the address: unhealthy within seconds, lastError says why`, { timeout: 60000 }, async () => {
    const port = execFileSync(process.execPath, [join(ROOT, 'scripts/kafka/probe.mjs'), 'ports', '1'], { encoding: 'utf8' }).trim();
    const r = await reporter(client, [`127.0.0.1:${port}`]);
    try {
      assert.ok(await waitForAsync(async () => !r.healthy, 10000), 'unhealthy');
      assert.match(r.lastError ?? '', /refused|ECONNREFUSED|Connection error/i);
    } finally {
      r.abandon?.();
      await r.stop?.();
    }
  });

  test(`${client}: a running broker keeps it healthy, idle and sending; a killed one makes it unhealthy until it is back`, { skip: skip ?? false, timeout: 240000 }, async () => {
    const r = await reporter(client, [broker!.bootstrap]);
    try {
      // Idle for a few statistics intervals, then sending.
      for (let s = 0; s < 4; s++) {
        await sleep(1000);
        assert.equal(r.healthy, true, `idle, second ${s + 1}: ${r.lastError}`);
      }
      for (let i = 0; i < 200; i++) r.report(record(i) as never);
      await r.flush?.();
      assert.equal(r.healthy, true, `after sending: ${r.lastError}`);
      assert.equal(r.dropped ?? 0, 0);
      broker!.kill();
      // Traffic goes on (kafkajs notices a broker gone only when it sends).
      let i = 200;
      assert.ok(
        await waitForAsync(async () => {
          if (!r.blocked) r.report(record(i++) as never);
          return !r.healthy;
        }, 30000),
        'unhealthy once the broker is gone',
      );
      assert.notEqual(r.lastError, null);
      broker!.restart();
      assert.ok(await waitForAsync(async () => r.healthy, 60000), `healthy again once it is back: ${r.lastError}`);
    } finally {
      r.abandon?.();
      await r.stop?.();
    }
  });
}
