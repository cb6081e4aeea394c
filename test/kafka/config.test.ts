// The kafka reporter's configuration: what the schema and init refuse, with
// coded messages naming the key, and the librdkafka settings a config turns
// into (TLS and SASL included, which the loopback broker does not exercise).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRegistry } from '../../src/plugin/builtins.js';
import { librdkafkaConfig, type KafkaReporterConfig } from '../../src/sender-proc/kafka.js';
import { OtusError } from '../../src/util/errors.js';

const ctx = { node: {}, taskId: 't', worker: -1, where: 'task.yml: task.reporter.config' };

async function refusal(config: Record<string, unknown>): Promise<OtusError> {
  const r = await createRegistry([]);
  try {
    await r.instantiate('reporter', 'kafka', config, ctx);
  } catch (e) {
    assert.ok(e instanceof OtusError, String(e));
    return e;
  }
  assert.fail(`accepted ${JSON.stringify(config)}`);
}

test('config errors are coded and name the key', async () => {
  let e = await refusal({ brokers: ['127.0.0.1:9092'] });
  assert.equal(e.code, 'OTUS_ERR_PLUGIN_CONFIG');
  assert.match(e.message, /task\.reporter\.config\.topic_prefix: is required/);
  e = await refusal({ brokers: ['127.0.0.1:9092'], topic: 'a', topic_prefix: 'b' });
  assert.match(e.message, /topic .* or topic_prefix .* not both/);
  e = await refusal({ brokers: ['127.0.0.1:9092'], topic: 'a', acks: 1 });
  assert.match(e.message, /task\.reporter\.config\.acks: idempotence needs acks: all/);
  e = await refusal({ brokers: ['127.0.0.1:9092'], topic: 'a', client: 'kafkajs', compression: 'zstd' });
  assert.match(e.message, /compression: zstd needs client: librdkafka/);
  e = await refusal({ brokers: ['127.0.0.1'], topic: 'a' });
  assert.match(e.message, /task\.reporter\.config\.brokers\/0|brokers/);
  e = await refusal({ brokers: ['127.0.0.1:9092'], topic: 'a', sasl: { mechanism: 'gssapi', username: 'u', password: 'p' } });
  assert.match(e.message, /sasl.*mechanism.*must be one of "plain", "scram-sha-256", "scram-sha-512"/);
  // Accepted with defaults; nothing connects before start().
  const r = await (await createRegistry([])).instantiate('reporter', 'kafka', { brokers: ['127.0.0.1:9092'], topic_prefix: 'otus' }, ctx);
  assert.equal(r.format, 'json');
});

const base: KafkaReporterConfig = {
  brokers: ['a:1', 'b:2'],
  client: 'librdkafka',
  topic: 't',
  format: 'protobuf',
  compression: 'lz4',
  acks: 'all',
  idempotence: true,
  linger_ms: 5,
  batch_size: 1000000,
  queue_max_messages: 100000,
  delivery_timeout_ms: 120000,
  client_id: 'otus',
  headers: true,
};

test('librdkafka settings: connection, delivery, TLS and SASL', () => {
  const c = librdkafkaConfig(base);
  assert.equal(c['bootstrap.servers'], 'a:1,b:2');
  assert.equal(c.acks, -1);
  assert.equal(c['enable.idempotence'], true);
  assert.equal(c['message.timeout.ms'], 120000);
  assert.equal(c['queue.buffering.max.messages'], 100000);
  assert.equal(c['compression.codec'], 'lz4');
  assert.equal(c.partitioner, 'murmur2_random');
  // A delivery report per message: the addon counts them, so acknowledged is exact.
  assert.equal(c['delivery.report.only.error'], undefined);
  assert.equal(c['security.protocol'], undefined);

  const tls = librdkafkaConfig({ ...base, tls: { ca: '/ca.pem', cert: '/c.pem', key: '/k.pem' } });
  assert.equal(tls['security.protocol'], 'ssl');
  assert.equal(tls['ssl.ca.location'], '/ca.pem');
  assert.equal(tls['ssl.certificate.location'], '/c.pem');
  assert.equal(tls['ssl.key.location'], '/k.pem');

  const sasl = { mechanism: 'scram-sha-512' as const, username: 'u', password: 'p' };
  const s = librdkafkaConfig({ ...base, sasl });
  assert.equal(s['security.protocol'], 'sasl_plaintext');
  assert.equal(s['sasl.mechanisms'], 'SCRAM-SHA-512');
  assert.equal(s['sasl.username'], 'u');
  assert.equal(librdkafkaConfig({ ...base, sasl, tls: { ca: '/ca.pem' } })['security.protocol'], 'sasl_ssl');
});

test("the addon's producer: a bad setting is named, a malformed stage refused without reading past it, a purge reported", async () => {
  const { native } = await import('../../src/native.js');
  const { librdkafkaPath } = await import('../../src/sender-proc/kafka.js');
  assert.ok(native.kafkaOpen, 'the addon was built with librdkafka');
  const lib = librdkafkaPath();
  // Before any producer of this process loaded the library (it is loaded once).
  assert.throws(() => native.kafkaOpen!('/nonexistent/librdkafka.so.1', []), /cannot load librdkafka/);
  assert.throws(() => native.kafkaOpen!(lib, ['bootstrap.servers', '127.0.0.1:1', 'linger.ms', 'soon']), /linger\.ms: Invalid value/);
  // No broker answers at port 1: messages stay queued until purged.
  const h = native.kafkaOpen!(lib, ['bootstrap.servers', '127.0.0.1:1', 'log_level', '0']);
  try {
    const t = native.kafkaTopic!(h, 'stage-test');
    const value = new Uint8Array(64).fill(1);
    // key "ab", two headers: "x" -> "1", "yz" -> "" (u32 key length, u16 count, u16 name length, u32 value length).
    const good = Uint8Array.from([2, 0, 0, 0, 97, 98, 2, 0, 1, 0, 120, 1, 0, 0, 0, 49, 2, 0, 121, 122, 0, 0, 0, 0]);
    assert.equal(native.kafkaProduce!(h, t, value, 8, 16, good), 0);
    const noKey = Uint8Array.from([255, 255, 255, 255, 0, 0]);
    assert.equal(native.kafkaProduce!(h, t, value, 0, 64, noKey), 0);
    // Queued messages and callbacks' events not yet served (a refused connection's error).
    assert.ok(native.kafkaFlush!(h, 0) >= 2);
    const badMsg = (st: Uint8Array): string => native.kafkaErrName!(native.kafkaProduce!(h, t, value, 0, 1, st));
    assert.equal(badMsg(good.subarray(0, 5)), '_BAD_MSG', 'key past the end');
    assert.equal(badMsg(good.subarray(0, 16)), '_BAD_MSG', 'the second header missing');
    assert.equal(badMsg(Uint8Array.from([0, 0, 0, 0, 1, 0, 200, 0, 120])), '_BAD_MSG', 'a name past the end');
    assert.equal(badMsg(Uint8Array.from([0, 0, 0])), '_BAD_MSG', 'shorter than a key length and a count');
    assert.throws(() => native.kafkaProduce!(h, t, value, 60, 8, good), /out of range/);
    assert.throws(() => native.kafkaProduce!(h, t + 1, value, 0, 1, good), /kafkaProduce/);
    native.kafkaPurge!(h);
    let failed: (string | number)[] = [];
    // The purge hands its reports over at once; the deadline is for a busy machine only.
    for (const t0 = Date.now(); failed.length === 0 && Date.now() - t0 < 10_000; ) {
      failed = native.kafkaPoll!(h)?.failed ?? [];
      if (failed.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    // The two good messages, not the refused ones.
    assert.deepEqual(failed, ['_PURGE_QUEUE', 2]);
  } finally {
    native.kafkaClose!(h);
  }
  assert.throws(() => native.kafkaFlush!(h, 0), /closed/);
});
