// Two senders into a real broker (scripts/kafka.sh), and the packed header.
// - `otus replay` with `senders: 2`: the topic, read back, holds exactly the
//   records the file reporter writes with `senders: 1` (as a multiset), each
//   flow's records in capture order within its partition, and the accounting
//   is exact summed over the senders: produced = acknowledged + drops, none
//   in flight.
// - A daemon whose global configuration holds the connection
//   (`otus.reporters.kafka`: brokers, client, compression) and a task that
//   names only its topic (merged by reporterConfigFor): records reach the
//   topic; one of the task's two senders killed is restarted alone, and at
//   the stop every record produced is acknowledged or counted, and the topic
//   holds exactly the acknowledged ones.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ctl, startDaemon } from '../helpers/daemon.js';
import { consume, kafkaSkipReason, runTask, startBroker, topicSize } from '../helpers/kafka.js';
import { ipv4Frame, liveSkipReason, makeVethHost, removeStaleNamespaces, waitForAsync, writePcap } from '../helpers/live.js';
import { FIXTURES, replay, ROOT } from '../helpers/otus-replay.js';
import { udpFrame } from '../helpers/udp-frames.js';

const skip = kafkaSkipReason();
if (skip) console.log(`# kafka tests skipped: ${skip}`);
const live = liveSkipReason();
const broker = skip ? null : startBroker();
const dir = mkdtempSync(join(tmpdir(), 'otus-kafka-senders-'));
after(() => {
  broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const body = (id: string, senders: number): string => `task:
  id: ${id}
  senders: ${senders}
  capture: {workers: 2}
  parsers: [{plugin: sip}, {plugin: rtp}, {plugin: rtcp}]
  unmatched_policy: forward
`;

/** Drops past the capture processes' commit: the rings', the senders' and the reporters'. */
function senderDrops(d: Record<string, number>): number {
  return d.ring_head! + d.ring_abandoned! + d.sender_expand! + d.reporter_queue! + d.reporter_timeout! + d.reporter_error! + d.stop_deadline!;
}

test('replay, senders: 2 into Kafka: the records of senders: 1, flows in order, produced = acked exactly', { skip: skip ?? false, timeout: 300000 }, async () => {
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 30000; i++) frames.push(udpFrame(`10.6.0.${i % 60}`, '10.8.0.1', 42000 + (i % 60), 7000, `flow ${i % 60} seq ${Math.floor(i / 60)}`));
  const flows = join(dir, 'flows.pcap');
  writePcap(flows, frames);
  const files = [flows, join(FIXTURES, 'rtpproxy--dtmf.pcapng'), join(FIXTURES, 'suricata-verify--sip-sdp.pcap')];
  const reference = replay(body('ref', 1), files, 2).records.map((r) => JSON.stringify(r));

  const run = await runTask(`${body('two', 2)}  reporter:\n    type: kafka\n    config: { brokers: ["${broker!.bootstrap}"], topic: two, format: json, compression: lz4 }\n`, files);
  assert.equal(run.status, 0, run.stderr);
  const st = run.stats;
  assert.equal(st.senders.length, 2);
  for (const s of st.senders) assert.ok(s.records > 0, `sender ${s.index}: ${JSON.stringify(s)}`);
  const produced = st.capture_processes.reduce((a: number, p: { records: number }) => a + p.records, 0);
  const r = st.reporter;
  assert.equal(r.queued, 0);
  assert.equal(produced, r.acked + senderDrops(st.drops), JSON.stringify(st.drops));
  assert.equal(r.acked, reference.length, 'every record acknowledged');
  assert.equal(st.senders[0].acked + st.senders[1].acked, r.acked);

  const got = await consume('librdkafka', broker!.bootstrap, ['two'], reference.length, 120000);
  assert.equal(got.length, reference.length);
  // Both sides parsed and written again: the reference went through JSON.parse.
  assert.deepEqual(got.map((m) => JSON.stringify(JSON.parse(m.value.toString('utf8')))).sort(), [...reference].sort(), 'the same records');
  // A key is one flow (or call): within its partition, in capture order.
  const last = new Map<string, string>();
  for (const m of got.sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
    const ts = (JSON.parse(m.value.toString('utf8')) as { ts: string }).ts;
    const k = `${m.partition}/${m.key?.toString('hex')}`;
    const prev = last.get(k);
    if (prev !== undefined) assert.ok(prev <= ts, `key ${k}: ${ts} after ${prev}`);
    last.set(k, ts);
  }
});

test('headers: packed: one otus-labels header holding the labels the record has', { skip: skip ?? false, timeout: 300000 }, async () => {
  const files = [join(FIXTURES, 'suricata-verify--sip-body-frames.pcap'), join(ROOT, 'samples/rtp-g711a.pcap')];
  const run = await runTask(`${body('packed', 1)}  reporter:\n    type: kafka\n    config: { brokers: ["${broker!.bootstrap}"], topic: packed, format: json, headers: packed }\n`, files);
  assert.equal(run.status, 0, run.stderr);
  const got = await consume('librdkafka', broker!.bootstrap, ['packed'], run.stats.reporter.acked, 120000);
  assert.equal(got.length, run.stats.reporter.acked);
  let labelled = 0;
  for (const m of got) {
    const labels = (JSON.parse(m.value.toString('utf8')) as { labels: Record<string, string> }).labels;
    if (Object.keys(labels).length === 0) {
      assert.deepEqual(m.headers, [], 'no labels, no header');
      continue;
    }
    labelled++;
    assert.equal(m.headers.length, 1);
    assert.equal(m.headers[0]![0], 'otus-labels');
    assert.deepEqual(JSON.parse(m.headers[0]![1].toString('utf8')), labels);
  }
  assert.ok(labelled >= 10, `labelled records: ${labelled}`);
});

test('daemon: connection settings from otus.reporters.kafka, a task naming its topic; kill -9 of one of two senders', { skip: skip ?? live ?? false, timeout: 300000 }, async () => {
  removeStaleNamespaces();
  const host = makeVethHost();
  const N = 2000;
  const pcap = join(dir, 'live.pcap');
  writePcap(pcap, Array.from({ length: N }, (_, i) => ipv4Frame({ src: [10, 9, 0, 1], dst: [10, 9, 0, 2], sport: 50000 + (i % 64), dport: 20000 }, 64, i)));
  const socket = join(dir, 'otus.sock');
  const config =
    `otus:\n  control:\n    socket: ${socket}\n  resources:\n    max_workers: 3\n` +
    `  supervisor:\n    heartbeat_ms: 200\n    watchdog_ms: 30000\n    stop_timeout_ms: 20000\n    restart: {initial_ms: 100, max_ms: 800, healthy_ms: 60000, budget: 4, window_ms: 60000}\n` +
    `  reporters:\n    kafka: {brokers: ["\${OTUS_TEST_BROKER}"], client: librdkafka, compression: lz4, format: json, linger_ms: 5}\n`;
  const d = await startDaemon(dir, config, { OTUS_TEST_BROKER: broker!.bootstrap });
  try {
    const taskFile = join(dir, 'live.yml');
    writeFileSync(taskFile, `task:\n  id: kl\n  senders: 2\n  capture: {interface: ${host.capIf}, workers: 2}\n  reporter: {type: kafka, config: {topic: live}}\n  unmatched_policy: forward\n`);
    const c = await ctl(socket, ['task', 'create', '--file', taskFile]);
    assert.equal(c.status, 0, c.stderr + c.stdout);
    host.replay(pcap);
    assert.ok(await waitForAsync(async () => (await topicSize(broker!.bootstrap, 'live')) >= N, 60000), 'the first replay reached the topic through the global connection settings');

    const status = async (): Promise<any> => (await ctl(socket, ['task', 'status', '--id', 'kl'])).json;
    // Killed once its slot holds every acknowledgement: a process killed loses what it had not copied there (docs/architecture.md).
    assert.ok(await waitForAsync(async () => (await status()).counters.reporter?.acked === N, 30000), 'both senders counted their acknowledgements');
    const before = await status();
    const victim = before.processes.find((p: { role: string; index: number }) => p.role === 'sender' && p.index === 1);
    const others = before.processes.filter((p: { role: string; index: number }) => !(p.role === 'sender' && p.index === 1));
    process.kill(victim.pid, 'SIGKILL');
    host.replay(pcap);
    assert.ok(
      await waitForAsync(async () => {
        const p = (await status()).processes.find((x: { role: string; index: number }) => x.role === 'sender' && x.index === 1);
        return p.state === 'running' && p.pid !== victim.pid;
      }, 30000),
      'sender 1 is back',
    );
    const now = await status();
    for (const o of others) assert.equal(now.processes.find((p: { role: string; index: number }) => p.role === o.role && p.index === o.index).pid, o.pid, `${o.role} ${o.index} was left alone`);

    const stop = await ctl(socket, ['task', 'stop', '--id', 'kl']);
    assert.equal(stop.status, 0, stop.stderr);
    const s = stop.json.counters;
    const produced = s.capture_processes.reduce((a: number, p: { records: number }) => a + p.records, 0);
    const drops = senderDrops(s.drops);
    assert.equal(s.reporter.queued, 0, 'nothing in flight after the stop');
    assert.equal(produced, s.reporter.acked + drops, `produced = acked + drops: ${JSON.stringify({ produced, drops: s.drops, reporter: s.reporter, senders: s.senders })}`);
    assert.ok(s.reporter.acked >= 2 * N - drops);
    const size = await topicSize(broker!.bootstrap, 'live');
    assert.equal(size, s.reporter.acked, 'the topic holds exactly the acknowledged records');
  } finally {
    await d.stop();
    host.destroy();
  }
});
