// The Kafka command channel (docs/commands.md): a consumer on the command
// topic in a group of this node's own, starting at the end of the topic;
// each message routed by `target`, its version checked, its signature and
// timestamp checked when a key is set, and executed once per `request_id`
// through the control socket's own methods (the ones `otusctl` calls). Every
// outcome, and a heartbeat with the tasks' states, goes to the status topic
// keyed by node id. Nothing a message holds can stop the daemon: a bad one
// is counted and logged (rate-limited). A broker that is down, or slow to
// come, leaves the channel retrying with backoff while the daemon serves
// `otusctl`; its state is in `status` and in the metrics.

import type { Logger } from 'pino';
import type { CommandChannelConfig } from '../config/global.js';
import { librdkafkaSecurity } from '../config/kafka-connection.js';
import { RateLimitedLog } from '../log/rate-limit.js';
import { OtusError } from '../util/errors.js';
import { within } from '../util/time.js';
import { type CommandMessage, commandKey, commandShapeError, COMMAND_VERSION, COMMANDS, readKeyFile, signatureValid, targets } from './command-message.js';
import { type Handler, RpcError } from './control.js';

type RdModule = typeof import('@confluentinc/kafka-javascript');
type RdConsumer = InstanceType<RdModule['KafkaConsumer']>;
type RdProducer = InstanceType<RdModule['Producer']>;
type RdMessage = import('@confluentinc/kafka-javascript').Message;

/** How each message ended, as counted (otus_commands_total{result}). */
export const COMMAND_RESULTS = [
  'ok',
  'error',
  'duplicate',
  'replayed',
  'other_node',
  'malformed',
  'unknown_command',
  'bad_version',
  'unsigned',
  'bad_signature',
  'stale',
] as const;
export type CommandResult = (typeof COMMAND_RESULTS)[number];
export type ChannelState = 'connecting' | 'ready' | 'error' | 'stopped';
export const CHANNEL_STATES: ChannelState[] = ['connecting', 'ready', 'error', 'stopped'];

/** Request ids remembered (with their outcome) for duplicates; the oldest is forgotten beyond it. */
export const REMEMBERED_REQUESTS = 10_000;
/** Messages larger than this are malformed without being parsed. */
const MAX_MESSAGE_BYTES = 1 << 20;
const FIRST_RETRY_MS = 500;
const CONSUME_TIMEOUT_MS = 500;
const REQUEST_TIMEOUT_MS = 10_000;
/** librdkafka: every broker is down. */
const ERR_ALL_BROKERS_DOWN = -187;
const ERR_ASSIGN_PARTITIONS = -175;
const ERR_REVOKE_PARTITIONS = -174;

/** What a command came to: published to the status topic. */
interface Outcome {
  ok: boolean;
  result?: unknown;
  error?: { code: string; message: string; reason?: string };
}

export interface CommandChannelStatus {
  state: ChannelState | 'disabled';
  last_error: string | null;
  since: string;
  brokers: string[];
  topic: string;
  status_topic: string;
  group_id: string;
  signed: boolean;
  commands: Record<CommandResult, number>;
  published: number;
  publish_errors: number;
}

/** The HMAC key of the channel's configuration, or null (commands need no signature). OTUS_ERR_CONFIG when it cannot be had. */
export function loadCommandKey(cfg: CommandChannelConfig): Buffer | null {
  if (cfg.auth.key_file !== null) return readKeyFile(cfg.auth.key_file, 'otus.command_channel.auth.key_file');
  if (cfg.auth.key !== null) return commandKey(cfg.auth.key, 'otus.command_channel.auth.key');
  return null;
}

export class CommandChannel {
  private state: ChannelState = 'connecting';
  private lastError: string | null = null;
  private since = new Date();
  private readonly counts = Object.fromEntries(COMMAND_RESULTS.map((r) => [r, 0])) as Record<CommandResult, number>;
  private published = 0;
  private publishErrors = 0;
  /** request_id → its outcome (insertion order: oldest first). */
  private readonly seen = new Map<string, Outcome>();
  /** Per partition (`topic:partition`), the next offset to read: kept across reconnections, so nothing is read twice or skipped. */
  private readonly next = new Map<string, number>();
  private readonly limited: RateLimitedLog;
  private mod: RdModule | null = null;
  private consumer: RdConsumer | null = null;
  private producer: RdProducer | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private probe: NodeJS.Timeout | null = null;
  /** Rebalances seen: a retried assignment is dropped when a newer one came. */
  private rebalances = 0;
  /** The consumer has its partitions at their offsets: only then is the channel ready (a command sent before would be missed). */
  private assigned = false;

  /** `methods`: the control socket's methods, which commands call. */
  constructor(
    private readonly cfg: CommandChannelConfig,
    private readonly nodeId: string,
    private readonly key: Buffer | null,
    private readonly methods: Record<string, Handler>,
    private readonly log: Logger,
    rateLimitMs: number,
  ) {
    this.limited = new RateLimitedLog(log, rateLimitMs);
  }

  /** Connects in the background, retrying until stop(). */
  start(): void {
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
    this.setState('stopped', null);
  }

  status(): CommandChannelStatus {
    const k = this.cfg.kafka;
    return {
      state: this.state,
      last_error: this.lastError,
      since: this.since.toISOString(),
      brokers: [...k.brokers],
      topic: k.topic,
      status_topic: k.status_topic,
      group_id: k.group_id,
      signed: this.key !== null,
      commands: { ...this.counts },
      published: this.published,
      publish_errors: this.publishErrors,
    };
  }

  private setState(s: ChannelState, err: string | null): void {
    if (s !== this.state) {
      this.since = new Date();
      if (s === 'ready') this.log.info({ topic: this.cfg.kafka.topic, group: this.cfg.kafka.group_id }, 'command channel ready');
      else if (s === 'error') this.log.warn({ err }, 'command channel: broker unreachable or failing; retrying');
    }
    this.state = s;
    if (err !== null) this.lastError = err;
  }

  // ------------------------------------------------------------ connection

  private async run(): Promise<void> {
    let delay = FIRST_RETRY_MS;
    while (!this.stopping) {
      try {
        // A channel that failed stays `error` (with its last error) through its retries, until it is ready.
        if (this.state !== 'error') this.setState('connecting', null);
        await this.connect();
        delay = FIRST_RETRY_MS;
        await this.consumeLoop();
      } catch (e) {
        this.setState('error', e instanceof Error ? e.message : String(e));
      }
      await this.teardown();
      if (this.stopping) break;
      await this.sleep(delay);
      delay = Math.min(delay * 2, this.cfg.retry_max_ms);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((res) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        res();
      }
      this.wake = done;
    });
  }

  private baseConf(): Record<string, string | number | boolean> {
    const k = this.cfg.kafka;
    return { 'bootstrap.servers': k.brokers.join(','), 'client.id': k.client_id, ...librdkafkaSecurity(k.tls, k.sasl) };
  }

  /** The topics exist (created when allowed), the producer is up, the consumer subscribed (its partitions come by rebalance()). */
  private async connect(): Promise<void> {
    const rd = (this.mod ??= await importRdkafka());
    const k = this.cfg.kafka;
    await this.ensureTopics(rd);
    const producer = new rd.Producer({ ...this.baseConf(), 'message.timeout.ms': 30_000, dr_cb: true, 'delivery.report.only.error': true });
    producer.on('delivery-report', (err) => {
      if (err) this.publishErrors++;
    });
    producer.on('event.error', () => undefined);
    await new Promise<void>((res, rej) => producer.connect({ timeout: REQUEST_TIMEOUT_MS }, (err) => (err ? rej(new Error(`status producer: ${err.message}`)) : res())));
    producer.setPollInterval(100);
    this.producer = producer;

    const consumer: RdConsumer = new rd.KafkaConsumer(
      {
        ...this.baseConf(),
        'group.id': k.group_id,
        'enable.auto.commit': true,
        // A daemon killed and restarted joins again once the old member's session ends: 10 s, not librdkafka's 45.
        'session.timeout.ms': 10_000,
        'heartbeat.interval.ms': 3000,
        // Given the consumer, not this.consumer: teardown forgets it before closing it, and a revocation not answered blocks its close.
        rebalance_cb: (err: { code: number } | undefined, assignment: { topic: string; partition: number }[]) => void this.rebalance(consumer, err?.code ?? 0, assignment),
      },
      { 'auto.offset.reset': 'latest' },
    );
    consumer.on('event.error', (e: { code?: number; message: string }) => {
      if (e.code === ERR_ALL_BROKERS_DOWN) this.lost(e.message);
    });
    this.consumer = consumer;
    await new Promise<void>((res, rej) => consumer.connect({ timeout: REQUEST_TIMEOUT_MS }, (err) => (err ? rej(new Error(`command consumer: ${err.message}`)) : res())));
    consumer.setDefaultConsumeTimeout(CONSUME_TIMEOUT_MS);
    // The group's answer (rebalance_cb) comes through the consume calls of consumeLoop.
    consumer.subscribe([k.topic]);
    this.startTimers();
  }

  /** The command and status topics exist: created (one partition, the broker's replication) when missing and create_topics allows. */
  private async ensureTopics(rd: RdModule): Promise<void> {
    const k = this.cfg.kafka;
    const admin = rd.AdminClient.create(this.baseConf());
    try {
      const topics = await new Promise<string[]>((res, rej) => admin.listTopics({ timeout: REQUEST_TIMEOUT_MS }, (err, t) => (err ? rej(new Error(`listing topics: ${err.message}`)) : res(t))));
      for (const topic of [k.topic, k.status_topic]) {
        if (topics.includes(topic)) continue;
        if (!k.create_topics) throw new Error(`topic ${topic} does not exist (create it, or set command_channel.kafka.create_topics: true)`);
        await new Promise<void>((res, rej) =>
          admin.createTopic({ topic, num_partitions: 1, replication_factor: -1 }, REQUEST_TIMEOUT_MS, (err) =>
            // Another node may have created it first.
            err && !/already exists/i.test(err.message) ? rej(new Error(`creating topic ${topic}: ${err.message}`)) : res(),
          ),
        );
        this.log.info({ topic }, 'command channel: topic created');
      }
    } finally {
      admin.disconnect();
    }
  }

  /**
   * A partition assigned for the first time starts at its end (commands sent
   * before the daemon started are not run); one assigned again (a rebalance,
   * a broker restart) where this process had got to.
   */
  private async rebalance(c: RdConsumer, code: number, assignment: { topic: string; partition: number }[]): Promise<void> {
    const gen = ++this.rebalances;
    try {
      if (code === ERR_REVOKE_PARTITIONS) {
        c.unassign();
        return;
      }
      if (code !== ERR_ASSIGN_PARTITIONS || this.consumer !== c) return;
      const parts = [];
      for (const p of assignment) {
        const id = `${p.topic}:${p.partition}`;
        let offset = this.next.get(id);
        if (offset === undefined) {
          offset = await new Promise<number>((res, rej) =>
            c.queryWatermarkOffsets(p.topic, p.partition, REQUEST_TIMEOUT_MS, (err, w) => (err ? rej(new Error(`offsets of ${id}: ${err.message}`)) : res(w.highOffset))),
          );
          this.next.set(id, offset);
        }
        parts.push({ topic: p.topic, partition: p.partition, offset });
      }
      c.assign(parts);
      this.assigned = true;
      this.ready();
    } catch (e) {
      // Tried again until it works or another rebalance comes: a consumer left unassigned would hear nothing.
      this.lost(e instanceof Error ? e.message : String(e));
      setTimeout(() => {
        if (gen === this.rebalances && this.consumer === c && !this.stopping) void this.rebalance(c, code, assignment);
      }, 1000);
    }
  }

  /** Ready (again): said in the log and by a heartbeat at once. */
  private ready(): void {
    if (this.state === 'ready') return;
    this.setState('ready', null);
    this.publishHeartbeat();
  }

  /** The broker went away under a connected channel: librdkafka reconnects; the state says so until a probe answers. */
  private lost(err: string): void {
    if (this.state === 'ready') this.setState('error', err);
    else this.lastError = err;
  }

  private startTimers(): void {
    this.heartbeat = setInterval(() => this.publishHeartbeat(), this.cfg.heartbeat_ms);
    this.probe = setInterval(() => {
      const p = this.producer;
      if (this.state !== 'error' || p === null) return;
      p.getMetadata({ topic: this.cfg.kafka.topic, timeout: 5000 }, (err) => {
        if (!err && this.state === 'error' && this.consumer !== null && this.assigned) this.ready();
      });
    }, Math.min(this.cfg.retry_max_ms, 2000));
  }

  private async consumeLoop(): Promise<void> {
    const c = this.consumer!;
    const t0 = Date.now();
    while (!this.stopping) {
      if (!this.assigned && Date.now() - t0 > 6 * REQUEST_TIMEOUT_MS) {
        throw new Error(`command consumer: no partitions of ${this.cfg.kafka.topic} assigned to group ${this.cfg.kafka.group_id} within ${(6 * REQUEST_TIMEOUT_MS) / 1000} s`);
      }
      const batch = await this.consumeBatch(c);
      for (const m of batch) {
        this.next.set(`${m.topic}:${m.partition}`, m.offset + 1);
        await this.handle(m.value);
        if (this.stopping) return;
      }
    }
  }

  private consumeBatch(c: RdConsumer): Promise<RdMessage[]> {
    return new Promise((res) =>
      c.consume(100, (err, msgs) => {
        // Errors here are the broker's, reported by event.error as well; the next call tries again.
        res(err ? [] : msgs);
      }),
    );
  }

  private async teardown(): Promise<void> {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    if (this.probe !== null) clearInterval(this.probe);
    this.heartbeat = this.probe = null;
    this.assigned = false;
    const c = this.consumer;
    const p = this.producer;
    this.consumer = this.producer = null;
    // Bounded: with the broker gone, leaving the group would wait for it.
    if (c !== null) await within(new Promise<void>((res) => c.disconnect(() => res())), 5000);
    if (p !== null) {
      await within(new Promise<void>((res) => p.flush(2000, () => res())), 3000);
      p.setPollInterval(0);
      await within(new Promise<void>((res) => p.disconnect(2000, () => res())), 3000);
    }
  }

  // ------------------------------------------------------------- commands

  private count(r: CommandResult, fields: Record<string, unknown>, why: string): void {
    this.counts[r]++;
    // Other nodes' commands are routine where commands are broadcast: info, not a warning.
    if (r === 'other_node') this.limited.emit('info', `command:${r}`, 1, { result: r, ...fields }, why);
    else if (r !== 'ok' && r !== 'error' && r !== 'duplicate') this.limited.warn(`command:${r}`, 1, { result: r, ...fields }, why);
  }

  /** One message from the command topic, whatever it holds. */
  async handle(value: Buffer | null | undefined): Promise<void> {
    if (value === null || value === undefined || value.length > MAX_MESSAGE_BYTES) {
      return this.count('malformed', { bytes: value?.length ?? 0 }, `command message ignored: ${value ? `larger than ${MAX_MESSAGE_BYTES} bytes` : 'empty'}`);
    }
    let m: unknown;
    try {
      m = JSON.parse(value.toString('utf8'));
    } catch (e) {
      return this.count('malformed', { err: (e as Error).message.slice(0, 200) }, 'command message ignored: not JSON');
    }
    const shape = commandShapeError(m);
    if (shape !== null) return this.count('malformed', { err: shape }, 'command message ignored: not a command');
    const msg = m as CommandMessage;
    const f = { request_id: msg.request_id, command: msg.command.slice(0, 64) };
    if (!targets(msg, this.nodeId)) return this.count('other_node', f, 'command for another node ignored');

    const refuse = (r: CommandResult, code: 'OTUS_ERR_COMMAND' | 'OTUS_ERR_COMMAND_AUTH', message: string): void => {
      this.count(r, f, `command refused: ${message}`);
      this.publishResult(msg, { ok: false, error: { code, reason: r, message } });
    };
    if (this.key !== null) {
      if (msg.signature === undefined) return refuse('unsigned', 'OTUS_ERR_COMMAND_AUTH', 'unsigned: a command key is set, so commands must carry a signature');
      if (!signatureValid(msg, this.key)) return refuse('bad_signature', 'OTUS_ERR_COMMAND_AUTH', 'bad signature: not HMAC-SHA256 of the canonical message under the configured key');
      const at = msg.timestamp === undefined ? NaN : Date.parse(msg.timestamp);
      const age = Date.now() - at;
      if (!(Math.abs(age) <= this.cfg.auth.max_age_ms)) {
        return refuse('stale', 'OTUS_ERR_COMMAND_AUTH', `stale: timestamp ${JSON.stringify(msg.timestamp ?? null)} is not within ${this.cfg.auth.max_age_ms} ms of the node's clock`);
      }
    }
    if (msg.version !== COMMAND_VERSION) return refuse('bad_version', 'OTUS_ERR_COMMAND', `version ${JSON.stringify(msg.version.slice(0, 16))}: this daemon reads ${COMMAND_VERSION}`);
    const first = this.seen.get(msg.request_id);
    if (first !== undefined) {
      const r = this.key !== null ? 'replayed' : 'duplicate';
      this.count(r, f, `command ${msg.request_id} seen before: not run again`);
      return this.publishResult(msg, first, true);
    }
    if (!(COMMANDS as readonly string[]).includes(msg.command)) {
      return refuse('unknown_command', 'OTUS_ERR_COMMAND', `unknown command ${JSON.stringify(msg.command.slice(0, 64))} (commands: ${COMMANDS.join(', ')})`);
    }
    // Messages are handled one at a time, so a copy of this one comes after it is remembered.
    const outcome = await this.execute(msg);
    this.remember(msg.request_id, outcome);
    this.count(outcome.ok ? 'ok' : 'error', f, 'command done');
    this.log.info({ ...f, ok: outcome.ok, error: outcome.error?.message }, `command ${msg.command} ${outcome.ok ? 'done' : 'failed'}`);
    this.publishResult(msg, outcome);
  }

  private remember(id: string, outcome: Outcome): void {
    this.seen.set(id, outcome);
    for (const old of this.seen.keys()) {
      if (this.seen.size <= REMEMBERED_REQUESTS) break;
      this.seen.delete(old);
    }
  }

  /** Runs a command through the control socket's method for it. */
  private async execute(msg: CommandMessage): Promise<Outcome> {
    const p = msg.payload ?? {};
    try {
      let result: unknown;
      switch (msg.command as (typeof COMMANDS)[number]) {
        case 'create_task': {
          // A task file's `task:` value, or (as the design's messages have it) its keys with `task_id` for `id`.
          const { task_id: taskId, ...rest } = p;
          const task = 'task' in p ? p : { ...rest, ...(rest.id === undefined && taskId !== undefined ? { id: taskId } : {}) };
          result = await this.methods['task.create']!({ task });
          break;
        }
        case 'stop_task': {
          const id = p.task_id ?? p.id;
          if (typeof id !== 'string' || id === '') throw new OtusError('OTUS_ERR_COMMAND', 'stop_task: payload needs task_id, the id of the task to stop');
          result = await this.methods['task.stop']!({ id });
          break;
        }
        case 'reload':
          result = await this.methods.reload!({});
          break;
        case 'status':
          result = { ...((await this.methods.status!({})) as object), task_list: ((await this.methods['task.list']!({})) as { tasks: unknown }).tasks };
          break;
      }
      return { ok: true, result };
    } catch (e) {
      if (e instanceof OtusError) return { ok: false, error: { code: e.code, message: e.message } };
      if (e instanceof RpcError) return { ok: false, error: { code: 'OTUS_ERR_COMMAND', message: e.message } };
      this.log.error({ command: msg.command, err: e instanceof Error ? e.stack : String(e) }, 'command failed');
      return { ok: false, error: { code: 'OTUS_ERR_INTERNAL', message: e instanceof Error ? e.message : String(e) } };
    }
  }

  // ---------------------------------------------------------------- status

  private publishResult(msg: CommandMessage, o: Outcome, duplicate = false): void {
    this.publish({
      type: 'result',
      node: this.nodeId,
      request_id: msg.request_id,
      command: msg.command.slice(0, 64),
      time: new Date().toISOString(),
      ...(duplicate ? { duplicate: true } : {}),
      ...o,
    });
  }

  private publishHeartbeat(): void {
    void (async () => {
      let tasks: unknown = [];
      try {
        tasks = ((await this.methods['task.list']!({})) as { tasks: unknown }).tasks;
      } catch {
        // a heartbeat goes out without tasks rather than not at all
      }
      this.publish({ type: 'heartbeat', node: this.nodeId, time: new Date().toISOString(), state: this.state, tasks });
    })();
  }

  private publish(body: Record<string, unknown>): void {
    const p = this.producer;
    if (p === null) {
      this.publishErrors++;
      return;
    }
    try {
      p.produce(this.cfg.kafka.status_topic, null, Buffer.from(JSON.stringify(body)), this.nodeId, Date.now());
      this.published++;
    } catch {
      this.publishErrors++;
    }
  }
}

async function importRdkafka(): Promise<RdModule> {
  try {
    const m = (await import('@confluentinc/kafka-javascript')) as RdModule & { default?: RdModule };
    return m.default ?? m;
  } catch (e) {
    throw new OtusError('OTUS_ERR_CONFIG', `the command channel needs @confluentinc/kafka-javascript (see docs/reporters.md): ${(e as Error).message}`);
  }
}
