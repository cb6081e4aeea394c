// The Loki output against a local receiver speaking Loki's push API: the
// stream's labels and the lines as they arrive; the receiver down (nothing
// listening), refusing, and back.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { LogHub, type LogSettings } from '../../src/log/logger.js';
import { startLokiReceiver, type LokiReceiver } from '../helpers/loki.js';
import { waitFor } from '../helpers/live.js';

const receivers: LokiReceiver[] = [];
after(async () => {
  for (const r of receivers) await r.close();
});

async function receiver(port = 0): Promise<LokiReceiver> {
  const r = await startLokiReceiver(port);
  receivers.push(r);
  return r;
}

function settings(url: string, loki: Partial<NonNullable<LogSettings['outputs']['loki']>> = {}): LogSettings {
  return {
    level: 'info',
    format: 'json',
    rateLimitMs: 60_000,
    outputs: {
      loki: { endpoint: url, labels: { job: 'otus', env: 'test' }, headers: {}, batchSize: 1000, batchTimeoutMs: 50, maxBufferBytes: 1 << 20, timeoutMs: 2000, ...loki },
    },
  };
}

const lokiStats = (hub: LogHub): Record<string, number> => hub.stats().outputs.loki as Record<string, number>;

test('the stream is the configured labels plus the node id; every line arrives whole and in order, in batches of at most batch_size', async () => {
  const rx = await receiver();
  const hub = await LogHub.open(settings(rx.url, { batchSize: 50, headers: { 'X-Scope-OrgID': 'edge' } }), 'edge-01');
  const log = hub.logger('supervisor');
  for (let i = 0; i < 500; i++) log.info({ i }, 'line');
  // A child's line, as it comes over IPC.
  hub.write(JSON.stringify({ level: 40, time: Date.now(), node: 'edge-01', pid: 4242, component: 'capture', task: 'voip', msg: 'from a child' }));
  assert.ok(await waitFor(() => rx.lines().length === 501, 10_000), `${rx.lines().length} lines arrived`);
  // The receiver has a push's lines before the hub has its answer: wait for the hub to count it.
  assert.ok(await waitFor(() => lokiStats(hub).pushed_lines === 501, 10_000), `pushed_lines ${lokiStats(hub).pushed_lines}`);
  for (const p of rx.pushes) {
    assert.equal(p.body.streams.length, 1);
    assert.deepEqual(p.body.streams[0]!.stream, { job: 'otus', env: 'test', node: 'edge-01' });
    assert.ok(p.body.streams[0]!.values.length <= 50, `a push of ${p.body.streams[0]!.values.length} lines`);
    assert.equal(p.headers['x-scope-orgid'], 'edge');
  }
  const values = rx.pushes.flatMap((p) => p.body.streams[0]!.values);
  const ts = values.map((v) => BigInt(v[0]));
  assert.ok(ts.every((t, i) => i === 0 || t >= ts[i - 1]!), 'timestamps (ns) never go back within the stream');
  assert.ok(Number(ts[0]! / 1_000_000n) > Date.now() - 60_000, 'timestamps are nanoseconds of now');
  const lines = rx.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines.slice(0, 500).map((l) => l.i), Array.from({ length: 500 }, (_, i) => i));
  assert.deepEqual([lines[0]!.component, lines[0]!.node, lines[0]!.pid, lines[0]!.msg], ['supervisor', 'edge-01', process.pid, 'line']);
  assert.deepEqual([lines[500]!.component, lines[500]!.task, lines[500]!.pid], ['capture', 'voip', 4242]);
  const s = lokiStats(hub);
  assert.deepEqual([s.pushes, s.pushed_lines, s.failed_pushes, s.dropped_lines, s.buffered_lines, s.buffered_bytes], [rx.pushes.length, 501, 0, 0, 0, 0]);
  await hub.close();
});

test('Loki down: lines keep being taken, memory stays within max_buffer_bytes, failed pushes and dropped lines are counted; back up, the newest lines arrive', async () => {
  const rx = await receiver();
  const port = rx.port;
  await rx.close(); // nothing listens there now
  const max = 65536;
  const hub = await LogHub.open(settings(`http://127.0.0.1:${port}/loki/api/v1/push`, { maxBufferBytes: max, batchSize: 100 }), 'edge-01');
  const log = hub.logger('supervisor');
  const N = 5000;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) log.warn({ i, pad: 'x'.repeat(64) }, 'while loki is down');
  assert.ok(performance.now() - t0 < 5000, 'logging does not wait for Loki');
  assert.ok(await waitFor(() => lokiStats(hub).failed_pushes >= 2, 10_000), JSON.stringify(lokiStats(hub)));
  for (let i = N; i < N + 100; i++) log.warn({ i, pad: 'x'.repeat(64) }, 'while loki is down');
  const s = lokiStats(hub);
  assert.ok(s.buffered_bytes <= max, `held ${s.buffered_bytes} bytes, bound ${max}`);
  assert.ok(s.dropped_lines > 0, 'the oldest lines were dropped');
  assert.equal(s.buffered_lines + s.dropped_lines, N + 100, 'every line is either held or counted as dropped');
  assert.equal(s.pushed_lines, 0);
  assert.match(String(hub.stats().outputs.loki!.last_error), /ECONNREFUSED/);
  const held = s.buffered_lines;

  await rx.reopen();
  assert.ok(await waitFor(() => lokiStats(hub).buffered_lines === 0, 20_000), `drained: ${JSON.stringify(lokiStats(hub))}`);
  const got = rx.lines().map((l) => (JSON.parse(l) as { i: number }).i);
  assert.equal(got.length, held, 'what was held is what arrives');
  assert.deepEqual(got, Array.from({ length: held }, (_, k) => N + 100 - held + k), 'the newest lines, in order');
  assert.equal(lokiStats(hub).pushed_lines, held);
  await hub.close();
});

test('a batch Loki refuses (4xx) is dropped and counted; one it fails on (5xx, 429) is kept and pushed again; close pushes what is held', async () => {
  const rx = await receiver();
  const hub = await LogHub.open(settings(rx.url, { batchTimeoutMs: 20 }), 'edge-01');
  const log = hub.logger('supervisor');
  rx.failWith = 400;
  for (let i = 0; i < 10; i++) log.info({ i }, 'refused');
  assert.ok(await waitFor(() => lokiStats(hub).failed_pushes === 1 && lokiStats(hub).dropped_lines === 10, 5000), JSON.stringify(lokiStats(hub)));
  assert.match(String(hub.stats().outputs.loki!.last_error), /HTTP 400: refused by the test/);
  assert.equal(lokiStats(hub).buffered_lines, 0);

  rx.failWith = 503;
  for (let i = 0; i < 10; i++) log.info({ i }, 'retried');
  assert.ok(await waitFor(() => rx.refused >= 2, 5000));
  assert.equal(lokiStats(hub).buffered_lines, 10, 'kept for the next try');
  rx.failWith = 0;
  assert.ok(await waitFor(() => rx.lines().length === 10, 15_000), `${rx.lines().length} lines after the receiver recovered`);
  assert.ok(rx.lines().every((l) => (JSON.parse(l) as { msg: string }).msg === 'retried'));

  // A long batch timeout: only close() sends these.
  const hub2 = await LogHub.open(settings(rx.url, { batchTimeoutMs: 3_600_000 }), 'edge-02');
  hub2.logger('supervisor').info('said just before the daemon stops');
  await hub2.close();
  assert.equal(JSON.parse(rx.lines().at(-1)!).msg, 'said just before the daemon stops');
  await hub.close();
});
