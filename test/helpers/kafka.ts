// A real Apache Kafka broker for the Kafka reporter's tests (scripts/kafka.sh:
// jars from Maven Central, single-node KRaft on loopback), started once per
// test file in its own state directory, and both client libraries'
// consumers to read topics back.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as RdKafka from '@confluentinc/kafka-javascript';
import kafkajs from 'kafkajs';
import { registerLz4 } from '../../src/sender-proc/kafka.js';
import { OTUS, ROOT } from './otus-replay.js';

const require = createRequire(import.meta.url);
const rd = require('@confluentinc/kafka-javascript') as typeof RdKafka;
const SCRIPT = join(ROOT, 'scripts/kafka.sh');

/** Why the broker cannot run here (java or mvn missing), or null. */
export function kafkaSkipReason(): string | null {
  for (const tool of ['java', 'mvn']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} not installed (scripts/setup.sh --test installs it)`;
  }
  return null;
}

export interface Broker {
  bootstrap: string;
  /** Its state directory (OTUS_KAFKA_STATE): config, data, log, the `state` file with its pid. */
  state: string;
  /** SIGKILL, as a crash would. */
  kill(): void;
  /** Starts it again on the same ports and data; resolves when it answers. */
  restart(): void;
  /** Stops it and removes its state. */
  stop(): void;
}

/** `autoCreate: false`: a broker that makes no topic on first use (as production clusters often are). */
export function startBroker(opts: { autoCreate?: boolean } = {}): Broker {
  const state = mkdtempSync(join(tmpdir(), 'otus-kafka-'));
  // The broker goes with this process even when it is killed before its after() hook stops it.
  const env = { ...process.env, OTUS_KAFKA_STATE: state, OTUS_KAFKA_OWNER: String(process.pid), OTUS_KAFKA_AUTO_CREATE: String(opts.autoCreate ?? true) };
  const run = (cmd: string): string => {
    try {
      return execFileSync('bash', [SCRIPT, cmd], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as { stderr?: string };
      let log = '';
      try {
        log = readFileSync(join(state, 'kafka.log'), 'utf8').split('\n').slice(-30).join('\n');
      } catch {
        // no log yet
      }
      throw new Error(`scripts/kafka.sh ${cmd} failed: ${err.stderr ?? String(e)}\n${log}`);
    }
  };
  const bootstrap = /bootstrap=(\S+)/.exec(run('start'))![1];
  return {
    bootstrap,
    state,
    kill() {
      const pid = Number(/^pid=(\d+)$/m.exec(readFileSync(join(state, 'state'), 'utf8'))![1]);
      process.kill(pid, 'SIGKILL');
      // Gone once its /proc entry is (it is not our child: init reaps it).
      while (spawnSync('kill', ['-0', String(pid)]).status === 0) spawnSync('sleep', ['0.05']);
    },
    restart() {
      run('start');
    },
    stop() {
      run('clean');
      rmSync(state, { recursive: true, force: true });
    },
  };
}

export interface Consumed {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer;
  headers: [string, Buffer][];
}

export type ClientName = 'librdkafka' | 'kafkajs';

/** Reads topics from the beginning until `count` messages came or `timeoutMs` passed (then returns what came). */
export function consume(client: ClientName, bootstrap: string, topics: string[], count: number, timeoutMs = 60000): Promise<Consumed[]> {
  return client === 'kafkajs' ? consumeKafkajs(bootstrap, topics, count, timeoutMs) : consumeRdkafka(bootstrap, topics, count, timeoutMs);
}

async function consumeRdkafka(bootstrap: string, topics: string[], count: number, timeoutMs: number): Promise<Consumed[]> {
  const c = new rd.KafkaConsumer(
    { 'bootstrap.servers': bootstrap, 'group.id': `t-${process.pid}-${Date.now()}`, 'enable.auto.commit': false },
    { 'auto.offset.reset': 'earliest' },
  );
  await new Promise<void>((res, rej) => c.connect({ timeout: 30000 }, (err) => (err ? rej(err) : res())));
  const out: Consumed[] = [];
  try {
    c.subscribe(topics);
    const t0 = Date.now();
    while (out.length < count && Date.now() - t0 < timeoutMs) {
      const batch = await new Promise<RdKafka.Message[]>((res, rej) => c.consume(1000, (err, m) => (err ? rej(err) : res(m))));
      for (const m of batch) {
        out.push({
          topic: m.topic,
          partition: m.partition,
          offset: m.offset,
          key: m.key === undefined || m.key === null ? null : Buffer.from(m.key),
          value: m.value!,
          headers: (m.headers ?? []).map((h) => {
            const [k, v] = Object.entries(h)[0];
            return [k, Buffer.from(v)] as [string, Buffer];
          }),
        });
      }
    }
  } finally {
    await new Promise<void>((res) => c.disconnect(() => res()));
  }
  return out;
}

const { Kafka, logLevel } = kafkajs;

async function consumeKafkajs(bootstrap: string, topics: string[], count: number, timeoutMs: number): Promise<Consumed[]> {
  await registerLz4(kafkajs);
  const kafka = new Kafka({ brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const c = kafka.consumer({ groupId: `t-${process.pid}-${Date.now()}` });
  await c.connect();
  const out: Consumed[] = [];
  try {
    await c.subscribe({ topics, fromBeginning: true });
    let done!: () => void;
    const all = new Promise<void>((res) => (done = res));
    await c.run({
      eachMessage: async ({ topic, partition, message: m }) => {
        out.push({
          topic,
          partition,
          offset: Number(m.offset),
          key: m.key,
          value: m.value!,
          headers: Object.entries(m.headers ?? {}).map(([k, v]) => [k, Buffer.from(v as Buffer)] as [string, Buffer]),
        });
        if (out.length >= count) done();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((res) => (timer = setTimeout(res, timeoutMs)))]);
    clearTimeout(timer);
  } finally {
    await c.disconnect();
  }
  return out;
}

/** Messages in a topic now (sum of its partitions' high watermarks); 0 while it does not exist. */
export async function topicSize(bootstrap: string, topic: string): Promise<number> {
  // No retries: a missing topic answers 0 at once, not after kafkajs' backoff.
  const admin = new Kafka({ brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) return 0;
    const offs = await admin.fetchTopicOffsets(topic);
    return offs.reduce((a, p) => a + Number(p.high), 0);
  } catch {
    return 0;
  } finally {
    await admin.disconnect();
  }
}

export interface TaskRun {
  status: number | null;
  /** The --stats-json summary of a run that finished (exit status 0, 3 or 4), else null. */
  stats: any;
  stderr: string;
  wallMs: number;
}

/** Starts `otus replay --task` (the task's own reporter) over files; resolves when it exits. */
export function runTask(taskYaml: string, files: string[]): Promise<TaskRun> {
  const dir = mkdtempSync(join(tmpdir(), 'otus-kafka-task-'));
  const task = join(dir, 'task.yml');
  writeFileSync(task, taskYaml);
  const st = join(dir, 'stats.json');
  const t0 = Date.now();
  const child = spawn(process.execPath, [OTUS, 'replay', '--task', task, '--stats-json', st, ...files], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((res) =>
    child.on('close', (status) => {
      // Written by a run that finished (status 0, 3 or 4), not by one that failed.
      const stats = existsSync(st) ? JSON.parse(readFileSync(st, 'utf8')) : null;
      rmSync(dir, { recursive: true, force: true });
      res({ status, stats, stderr, wallMs: Date.now() - t0 });
    }),
  );
}
