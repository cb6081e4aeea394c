// The Kafka command channel end to end (docs/commands.md): real `otus
// daemon` processes, one real broker for the file (scripts/kafka.sh),
// commands produced onto the command topic and their outcomes read back
// from the status topic. A daemon started while the broker is down serves
// otusctl and connects when it comes; with a key set, unsigned, badly
// signed, stale and replayed commands are refused with a status message
// saying why; without one, a task is created by command on a veth, its
// records read from Kafka, and stopped by command; a command for another
// node is only counted, one delivered twice runs once, a bad task config is
// refused with its config error, a wrong version and an unknown command are
// answered as such, 10 000 malformed messages leave the daemon answering,
// and a missing topic the daemon may not create is reported, not waited on
// in silence.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type * as RdKafka from '@confluentinc/kafka-javascript';
import { signCommand } from '../../src/supervisor/command-message.js';
import { ctl, type Daemon, OTUSCTL, startDaemon } from '../helpers/daemon.js';
import { type Broker, consume, kafkaSkipReason, startBroker, topicSize } from '../helpers/kafka.js';
import { liveSkipReason, makeVethHost, removeStaleNamespaces, tempDir, type VethHost, waitForAsync } from '../helpers/live.js';
import { freePort, get, parse, sum } from '../helpers/metrics.js';
import { FIXTURES } from '../helpers/otus-replay.js';

const require = createRequire(import.meta.url);
const rd = require('@confluentinc/kafka-javascript') as typeof RdKafka;

const skip = kafkaSkipReason();
const KEY = 'a-test-key-of-more-than-16-bytes';

interface StatusMsg {
  type: 'result' | 'heartbeat';
  node: string;
  request_id?: string;
  command?: string;
  ok?: boolean;
  duplicate?: boolean;
  result?: any;
  error?: { code: string; message: string; reason?: string };
  state?: string;
  tasks?: { id: string; state: string }[];
}

/** Every message of the status topics, read from their start in the background. */
class StatusReader {
  readonly got: { key: string; msg: StatusMsg }[] = [];
  private readonly c: RdKafka.KafkaConsumer;
  private stopped = false;

  constructor(bootstrap: string) {
    this.c = new rd.KafkaConsumer({ 'bootstrap.servers': bootstrap, 'group.id': `t-status-${process.pid}`, 'enable.auto.commit': false }, { 'auto.offset.reset': 'earliest' });
  }

  async start(topics: string[]): Promise<void> {
    await new Promise<void>((res, rej) => this.c.connect({ timeout: 30000 }, (err) => (err ? rej(err) : res())));
    this.c.setDefaultConsumeTimeout(200);
    this.c.subscribe(topics);
    void (async () => {
      while (!this.stopped) {
        const batch = await new Promise<RdKafka.Message[]>((res) => this.c.consume(500, (err, m) => res(err ? [] : m)));
        for (const m of batch) this.got.push({ key: String(m.key), msg: JSON.parse(m.value!.toString()) as StatusMsg });
      }
    })();
  }

  results(id: string): StatusMsg[] {
    return this.got.filter((g) => g.msg.type === 'result' && g.msg.request_id === id).map((g) => g.msg);
  }

  /** The n-th result (from 1) for a request id, once it came. */
  async result(id: string, n = 1, ms = 60000): Promise<StatusMsg> {
    assert.ok(await waitForAsync(async () => this.results(id).length >= n, ms), `no status message #${n} for ${id}`);
    return this.results(id)[n - 1];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await new Promise<void>((res) => this.c.disconnect(() => res()));
  }
}

describe('the Kafka command channel', { skip: skip ?? false, timeout: 600_000 }, () => {
  let broker: Broker;
  let tmp: ReturnType<typeof tempDir>;
  let producer: RdKafka.Producer;
  let status: StatusReader;
  let signed: Daemon | undefined;
  let open: Daemon | undefined;
  let host: VethHost | undefined;
  let openMetrics = 0;
  let seq = 0;

  const send = async (topic: string, values: (string | Buffer)[]): Promise<void> => {
    for (const v of values) producer.produce(topic, null, Buffer.isBuffer(v) ? v : Buffer.from(v), null);
    await new Promise<void>((res, rej) => producer.flush(30000, (err) => (err ? rej(err) : res())));
  };
  const command = (target: unknown, cmd: string, payload?: Record<string, unknown>): Record<string, unknown> => ({
    version: 'v1',
    request_id: `req-${process.pid}-${++seq}`,
    target,
    command: cmd,
    timestamp: new Date().toISOString(),
    ...(payload ? { payload } : {}),
  });
  const channel = async (d: Daemon): Promise<any> => {
    const r = await ctl(d.socket, ['status']);
    assert.equal(r.status, 0, r.stderr);
    return r.json.command_channel;
  };
  const config = (node: string, topic: string, extra: string): string =>
    `otus:\n  node: {id: ${node}}\n  control:\n    socket: ${join(tmp.dir, `${node}.sock`)}\n  log: {level: info}\n` +
    `  reporters:\n    console: {}\n    kafka: {brokers: ["${broker.bootstrap}"], linger_ms: 5}\n` +
    `  command_channel:\n    enabled: true\n    kafka: {brokers: ["${broker.bootstrap}"], topic: ${topic}, status_topic: ${topic}-status}\n    heartbeat_ms: 1000\n    retry_max_ms: 1000\n${extra}`;

  before(async () => {
    tmp = tempDir();
    broker = startBroker();
    producer = new rd.Producer({ 'bootstrap.servers': broker.bootstrap, 'linger.ms': 5 });
    await new Promise<void>((res, rej) => producer.connect({ timeout: 30000 }, (err) => (err ? rej(err) : res())));
  });

  after(async () => {
    await signed?.stop();
    await open?.stop();
    await status?.stop();
    await new Promise<void>((res) => producer?.disconnect(() => res()));
    host?.destroy();
    broker?.stop();
    tmp?.cleanup();
  });

  test('a daemon started with the broker down serves otusctl, says why in status, and connects once the broker starts', async () => {
    broker.kill();
    const keyFile = join(tmp.dir, 'command.key');
    writeFileSync(keyFile, KEY + '\n');
    chmodSync(keyFile, 0o600);
    const port = await freePort();
    signed = await startDaemon(tmp.dir, config('node-s', 'cmd-s', `    auth: {key_file: ${keyFile}, max_age_ms: 60000}\n  metrics: {listen: "127.0.0.1:${port}"}\n`));
    assert.ok(await waitForAsync(async () => (await channel(signed!)).state === 'error', 60000), 'the channel says error');
    const c = await channel(signed);
    assert.match(c.last_error, /transport|connect|timed out|brokers/i);
    assert.equal(c.signed, true);
    const human = await ctl(signed.socket, ['status'], { json: false });
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, /command channel: error, cmd-s at 127\.0\.0\.1:\d+, signed\n  last error: /);
    const m = parse((await get(port, '/metrics')).body);
    assert.equal(sum(m, 'otus_command_channel_state', { state: 'error' }), 1);

    broker.restart();
    assert.ok(await waitForAsync(async () => (await channel(signed!)).state === 'ready', 120000), 'ready once the broker is back');
    assert.equal(sum(parse((await get(port, '/metrics')).body), 'otus_command_channel_state', { state: 'ready' }), 1);
    status = new StatusReader(broker.bootstrap);
    // The daemon created both of its topics; the other daemon's come later and are read from their start.
    await send('cmd-o-status', ['{"type":"test"}']);
    await status.start(['cmd-s-status', 'cmd-o-status']);
    assert.ok(await waitForAsync(async () => status.got.some((g) => g.key === 'node-s' && g.msg.type === 'heartbeat'), 30000), 'a heartbeat keyed by node id');
  });

  test('with a key: unsigned, badly signed, stale and replayed commands are refused and say why; a signed one runs', async () => {
    assert.ok(signed, 'the daemon of the first test runs');
    const key = Buffer.from(KEY);
    const unsigned = command('node-s', 'status');
    const forged = command('node-s', 'status');
    forged.signature = signCommand(forged, Buffer.from('not-the-key-but-long-enough'));
    const stale: Record<string, unknown> = { ...command('node-s', 'status'), timestamp: new Date(Date.now() - 3_600_000).toISOString() };
    stale.signature = signCommand(stale, key);
    const good = command('node-s', 'status');
    good.signature = signCommand(good, key);
    // A signed message changed after signing is refused too.
    const altered = command('node-s', 'stop_task', { task_id: 'x' });
    altered.signature = signCommand(altered, key);
    (altered.payload as Record<string, unknown>).task_id = 'y';
    await send('cmd-s', [unsigned, forged, stale, good, good, altered].map((m) => JSON.stringify(m)));

    const refused = async (m: Record<string, unknown>, reason: string): Promise<void> => {
      const r = await status.result(m.request_id as string);
      assert.equal(r.ok, false);
      assert.equal(r.node, 'node-s');
      assert.equal(r.error?.code, 'OTUS_ERR_COMMAND_AUTH');
      assert.equal(r.error?.reason, reason, r.error?.message);
    };
    await refused(unsigned, 'unsigned');
    await refused(forged, 'bad_signature');
    await refused(stale, 'stale');
    await refused(altered, 'bad_signature');
    const ok = await status.result(good.request_id as string);
    assert.equal(ok.ok, true);
    assert.equal(ok.result.node.id, 'node-s');
    assert.deepEqual(ok.result.task_list, []);
    const again = await status.result(good.request_id as string, 2);
    assert.equal(again.duplicate, true);
    assert.deepEqual(again.result, ok.result, 'a replay repeats the first outcome');
    const c = await channel(signed);
    assert.deepEqual(
      { ok: c.commands.ok, unsigned: c.commands.unsigned, bad_signature: c.commands.bad_signature, stale: c.commands.stale, replayed: c.commands.replayed },
      { ok: 1, unsigned: 1, bad_signature: 2, stale: 1, replayed: 1 },
    );
  });

  test('otusctl sign-command signs what the daemon accepts', async () => {
    assert.ok(signed, 'the daemon of the first test runs');
    const file = join(tmp.dir, 'cmd.json');
    writeFileSync(file, JSON.stringify({ target: ['node-x', 'node-s'], command: 'status' }));
    const r = spawnSync(process.execPath, [OTUSCTL, 'sign-command', file], { env: { ...process.env, OTUS_COMMAND_KEY: KEY }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const msg = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(msg.version, 'v1');
    assert.match(msg.signature as string, /^[0-9a-f]{64}$/);
    // The documented jq + openssl line computes the same signature.
    const sh = spawnSync('sh', ['-c', `printf %s '${r.stdout.trim()}' | jq -cjS 'del(.signature)' | openssl dgst -sha256 -hmac "$OTUS_COMMAND_KEY" -r | cut -d' ' -f1`], {
      env: { ...process.env, OTUS_COMMAND_KEY: KEY },
      encoding: 'utf8',
    });
    assert.equal(sh.stdout.trim(), msg.signature, sh.stderr);
    await send('cmd-s', [r.stdout]);
    assert.equal((await status.result(msg.request_id as string)).ok, true);
    const none = spawnSync(process.execPath, [OTUSCTL, 'sign-command', file], { env: { ...process.env, OTUS_COMMAND_KEY: '' }, encoding: 'utf8' });
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no key/);
  });

  test('without a key: a bad task config is refused with its config error; a command for another node is only counted', async () => {
    openMetrics = await freePort();
    open = await startDaemon(tmp.dir, config('node-o', 'cmd-o', `  metrics: {listen: "127.0.0.1:${openMetrics}"}\n`));
    assert.ok(await waitForAsync(async () => (await channel(open!)).state === 'ready', 120000), 'ready');
    const bad = command('node-o', 'create_task', { task_id: 'bad', capture: { interface: 'lo', workerz: 2 } });
    const elsewhere = command('node-z', 'create_task', { task_id: 'z' });
    const marker = command(['node-y', 'node-o'], 'status');
    const future: Record<string, unknown> = { ...command('node-o', 'status'), version: 'v2' };
    const unknown = command('node-o', 'format_disk');
    await send('cmd-o', [bad, elsewhere, future, unknown, marker].map((m) => JSON.stringify(m)));
    const v2 = await status.result(future.request_id as string);
    assert.deepEqual([v2.ok, v2.error?.code, v2.error?.reason], [false, 'OTUS_ERR_COMMAND', 'bad_version']);
    const u = await status.result(unknown.request_id as string);
    assert.deepEqual([u.ok, u.error?.code, u.error?.reason], [false, 'OTUS_ERR_COMMAND', 'unknown_command']);
    assert.match(u.error!.message, /format_disk.*create_task, stop_task, reload, status/);
    const r = await status.result(bad.request_id as string);
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'OTUS_ERR_TASK');
    assert.match(r.error!.message, /workerz/);
    assert.equal((await status.result(marker.request_id as string)).ok, true);
    // Read after the marker, which came after it: the other node's command was handled, with no answer.
    assert.equal(status.results(elsewhere.request_id as string).length, 0);
    const c = await channel(open);
    assert.equal(c.commands.other_node, 1);
    assert.equal(c.commands.error, 1);
    assert.equal(c.commands.bad_version, 1);
    assert.equal(c.commands.unknown_command, 1);
    assert.equal((await ctl(open.socket, ['task', 'list'])).json.tasks.length, 0);
  });

  test('a task created by command captures into Kafka, a second delivery does not run it again, stop_task stops it', { skip: liveSkipReason() ?? false }, async () => {
    assert.ok(open, 'the daemon of the previous test runs');
    removeStaleNamespaces();
    host = makeVethHost();
    const create = command('*', 'create_task', {
      task_id: 'by-command',
      capture: { interface: host.capIf, workers: 1 },
      parsers: [{ plugin: 'sip' }],
      reporter: { type: 'kafka', config: { topic: 'cmd-records' } },
      unmatched_policy: 'forward',
    });
    await send('cmd-o', [JSON.stringify(create), JSON.stringify(create)]);
    const first = await status.result(create.request_id as string);
    assert.equal(first.ok, true, JSON.stringify(first.error));
    assert.equal(first.result.state, 'running');
    const second = await status.result(create.request_id as string, 2);
    assert.equal(second.duplicate, true);
    assert.equal(second.ok, true);
    const list = (await ctl(open.socket, ['task', 'list'])).json.tasks as { id: string }[];
    assert.deepEqual(list.map((t) => t.id), ['by-command']);
    assert.equal((await channel(open)).commands.duplicate, 1);
    assert.ok(await waitForAsync(async () => status.got.some((g) => g.msg.type === 'heartbeat' && g.key === 'node-o' && g.msg.tasks?.some((t) => t.id === 'by-command')), 30000), 'the heartbeat lists the task');

    host.replay(join(FIXTURES, 'PcapPlusPlus--sip_reqs.pcap'));
    assert.ok(
      await waitForAsync(async () => (await ctl(open!.socket, ['task', 'status', '--id', 'by-command'])).json.counters.records > 0, 30000),
      'the task made records',
    );
    const stop = command('node-o', 'stop_task', { task_id: 'by-command' });
    await send('cmd-o', [JSON.stringify(stop)]);
    const stopped = await status.result(stop.request_id as string);
    assert.equal(stopped.ok, true, JSON.stringify(stopped.error));
    const counters = stopped.result.counters;
    assert.ok(counters.records > 0);
    assert.equal(counters.reporter.acked, counters.records, JSON.stringify(counters.reporter));
    assert.equal(await topicSize(broker.bootstrap, 'cmd-records'), counters.records, 'every record in Kafka, once');
    const got = await consume('librdkafka', broker.bootstrap, ['cmd-records'], counters.records);
    assert.equal(got.length, counters.records);
    assert.ok(got.some((m) => JSON.parse(m.value.toString()).protocol === 'sip'));
    assert.equal((await ctl(open.socket, ['task', 'list'])).json.tasks.length, 0);
  });

  test('10 000 malformed messages: counted, logged rate-limited, and the daemon answers', async () => {
    assert.ok(open, 'the daemon of a previous test runs');
    const before = (await channel(open)).commands.malformed as number;
    const bad: (string | Buffer)[] = [];
    for (let i = 0; i < 10_000; i++) {
      const k = i % 5;
      bad.push(
        k === 0 ? `not json ${i}` : k === 1 ? JSON.stringify([i]) : k === 2 ? JSON.stringify({ version: 'v1', request_id: i, target: 'node-o', command: 'status' }) : k === 3 ? JSON.stringify({ version: 'v1', request_id: `m${i}`, target: [], command: 'status' }) : Buffer.from([0xff, 0xfe, i & 0xff]),
      );
    }
    await send('cmd-o', bad);
    assert.ok(await waitForAsync(async () => (await channel(open!)).commands.malformed - before === 10_000, 120000), 'all 10 000 counted');
    const r = await ctl(open.socket, ['status']);
    assert.equal(r.status, 0);
    assert.equal(r.json.command_channel.state, 'ready');
    assert.equal(sum(parse((await get(openMetrics, '/metrics')).body), 'otus_commands_total', { result: 'malformed' }), before + 10_000);
    // One line, then the summary a minute later: not 10 000 lines.
    const lines = open.logs().filter((l) => l.result === 'malformed');
    assert.ok(lines.length >= 1 && lines.length <= 3, `${lines.length} log lines`);
    const marker = command('node-o', 'status');
    await send('cmd-o', [JSON.stringify(marker)]);
    assert.equal((await status.result(marker.request_id as string)).ok, true, 'commands still run');
  });

  test('create_topics: false and no command topic: the channel says so and waits; otusctl answers', async () => {
    const d = await startDaemon(tmp.dir, config('node-n', 'cmd-none', '  metrics: {enabled: false}\n').replace('status_topic: cmd-none-status}', 'status_topic: cmd-none-status, create_topics: false}'));
    try {
      assert.ok(await waitForAsync(async () => (await channel(d)).state === 'error', 60000), 'error');
      assert.match((await channel(d)).last_error, /topic cmd-none does not exist \(create it, or set command_channel\.kafka\.create_topics: true\)/);
      assert.equal(await topicSize(broker.bootstrap, 'cmd-none'), 0);
    } finally {
      await d.stop();
    }
  });
});
