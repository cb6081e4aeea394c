// The gRPC server killed mid-run and started again on its port while
// `otus replay` sends to it: batches in flight and queued while it is down
// past their deadline are counted as reporter timeouts, sending resumes on
// the new server (it receives records, the replay ends normally), and the
// summary accounts for every record: produced = acknowledged + counted
// drops, none in flight. Records are unique (each frame's payload carries
// its index), so the servers together must hold every acknowledged record.
// While the server is down the reporter's queue fills, the sender waits
// (Reporter.blocked) and the replay's capture process waits on the full
// ring: the run is paced by the server.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReportServer } from '../helpers/grpc.js';
import { runTask } from '../helpers/kafka.js';
import { waitForAsync, writePcap } from '../helpers/live.js';
import { udpFrame } from '../helpers/udp-frames.js';
import { assertUndelivered } from '../helpers/otus-replay.js';

const dir = mkdtempSync(join(tmpdir(), 'otus-grpc-down-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const N = 200000;
const TIMEOUT_MS = 2000;

test('server killed and restarted mid-run: queued batches time out (counted), sending resumes, produced = acked + drops', { timeout: 300000 }, async () => {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < N; i++) frames.push(udpFrame(`10.9.${(i >> 8) & 255}.${i & 255}`, '10.8.0.1', 40000 + (i % 1000), 9999, `record ${i} `.padEnd(120, '.')));
  const file = join(dir, 'records.pcap');
  writePcap(file, frames);
  const first = await ReportServer.start();
  const running = runTask(
    `task:
  id: grpc-down
  unmatched_policy: forward
  reporter:
    type: grpc
    config: { endpoint: "127.0.0.1:${first.port}", format: json, queue_max_records: 5000, batch_records: 500, timeout_ms: ${TIMEOUT_MS}, reconnect_max_ms: 300 }
`,
    [file],
  );
  let exited = false;
  void running.then(() => (exited = true));
  assert.ok(await waitForAsync(async () => first.records.length >= N / 20, 120000), 'records reached the server');
  first.kill();
  const atKill = exited;
  // Down for longer than the deadline: what was queued or in flight at the kill is given up.
  await sleep(2 * TIMEOUT_MS);
  const second = await ReportServer.start({ port: first.port });
  const run = await running;
  second.kill();
  assertUndelivered(run, run.stats.reporter.timeout + Object.values(run.stats.reporter.errors as Record<string, number>).reduce((a, v) => a + v, 0));
  assert.equal(atKill, false, 'the replay was still running when the server died');
  const r = run.stats.reporter;
  const dropped = r.timeout + Object.values(r.errors as Record<string, number>).reduce((a, v) => a + v, 0);
  assert.equal(run.stats.sender.records, N);
  assert.equal(r.queued, 0);
  assert.equal(N, r.acked + dropped, JSON.stringify(r));
  assert.ok(r.timeout > 0, `drops counted: ${JSON.stringify(r)}`);
  assert.equal(run.stats.drops.reporter_timeout, r.timeout);
  assert.ok(second.records.length > 0, 'sending resumed on the new server');
  assert.ok(r.acked > N / 2, `${r.acked} of ${N} acknowledged`);
  const got = new Set([...first.records, ...second.records].map((b) => b.toString('utf8')));
  assert.ok(got.size >= r.acked, `the servers hold ${got.size} distinct records, ${r.acked} acknowledged`);
});
