// The Kafka reporter with no broker at its address (a free loopback port
// nothing listens on): nothing crashes, `otus replay` ends within its
// delivery timeout plus a margin, and every record is in the summary as a
// reporter timeout, none acknowledged. No broker is started, so nothing here
// can skip.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { assertUndelivered, FIXTURES, ROOT } from '../helpers/otus-replay.js';
import { runTask, type ClientName } from '../helpers/kafka.js';

const port = execFileSync(process.execPath, [join(ROOT, 'scripts/kafka/probe.mjs'), 'ports', '1'], { encoding: 'utf8' }).trim();
const DELIVERY_MS = 3000;

for (const client of ['librdkafka', 'kafkajs'] as ClientName[]) {
  test(`${client}: broker down at start: every record counted as a reporter timeout, the run ends in bounded time`, { timeout: 120000 }, async () => {
    const run = await runTask(
      `task:
  id: kafka-down-${client}
  parsers:
    - plugin: sip
  unmatched_policy: forward
  reporter:
    type: kafka
    config: { brokers: ["127.0.0.1:${port}"], client: ${client}, topic: down, delivery_timeout_ms: ${DELIVERY_MS} }
`,
      [join(FIXTURES, 'rtpproxy--dtmf.pcapng'), join(FIXTURES, 'suricata-verify--sip-body-frames.pcap')],
    );
    // The run is over, its output is not whole: status 4, and the count by cause.
    assertUndelivered(run, 206);
    assert.match(run.stderr, /not delivered by the reporter: 206 timed out \[OTUS_ERR_UNDELIVERED\]/);
    const st = run.stats;
    assert.equal(st.sender.records, 206);
    assert.deepEqual(st.reporter, { acked: 0, timeout: 206, errors: {}, queued: 0 });
    assert.equal(st.drops.reporter_timeout, 206);
    assert.match(run.stderr, /reporter_timeout=206/);
    assert.match(run.stderr, /reporter: acked 0, timed out 206, in flight 0/);
    // And why, in the client's words, among the summary's warnings.
    assert.match(run.stderr, /warning: reporter kafka: 206 records not delivered; its last error: .*(refused|ECONNREFUSED)/i);
    // The delivery timeout, its flush margin (5 s) and process start-up; a hang would take the test's timeout.
    assert.ok(run.wallMs < DELIVERY_MS + 5000 + 30000, `${run.wallMs} ms`);
  });
}
