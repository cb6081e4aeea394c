// The sender's cost into a real Kafka broker (scripts/kafka.sh on this
// machine, same cores): records per second and CPU-seconds per million
// records of the process that sends (librdkafka's threads included), for
//   otus       the sender's loop: wire records expanded (src/pipeline/expand.ts)
//              and handed to the kafka reporter (librdkafka client), waiting
//              while its queue is full, then flushed;
//   plain      the @confluentinc/kafka-javascript package's own
//              Producer.produce() of the same messages made beforehand (value,
//              key, headers), same producer settings: what the reporter used
//              before it called librdkafka through the addon;
//   bare       the same without headers (value and key only): what the labels cost;
//   otus-bare  the otus line with `headers: false`, beside bare;
//   otus-packed the otus line with `headers: packed` (the labels in one header);
//   kafkajs    the sender's loop into the kafka reporter with client: kafkajs.
// --senders 1,2: the otus lines also as that many senders at once, each its
// own process with its own share of the records (a task's `senders`), started
// together once all are ready; records per second over the slowest one's wall
// time, CPU summed.
// Records: bench/captures' calls (SIP, then G.711 RTP over the calls), through
// the pipeline a capture process builds for sip + rtp, so every RTP record
// carries call-id, codec and media labels (key: the call-id; 3 headers).
// lz4, acks=all, idempotence, linger 5 ms. Each trial runs in a fresh process.
//
//   node dist/bench/kafka.js [--records N] [--calls C] [--formats json,protobuf]
//        [--contenders otus,plain,otus-bare,otus-packed,bare,kafkajs] [--trials T] [--queue MESSAGES]
//        [--senders 1,2]
//
// --queue: the client's queue (queue_max_messages, default 100000); once it is
// full both sides wait for room (the reporter: Reporter.blocked).

import { benchArgs, int, list, oneOf, opt } from './cli.js';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BatchReader } from '../src/pipeline/batch-sink.js';
import { RecordExpander } from '../src/pipeline/expand.js';
import { createRegistry } from '../src/plugin/builtins.js';
import type { RecordFormat } from '../src/plugin/types.js';
import { startBroker } from '../test/helpers/kafka.js';
import { type LoopResult, runSenderLoop, wireBatches } from './sender-loop.js';

const args = process.argv.slice(2);
const CONTENDERS = oneOf('otus', 'otus-bare', 'otus-packed', 'plain', 'bare', 'kafkajs');
// --trial JSON: one trial, in a process of its own (runTrial).
const o = benchArgs(
  {
    records: opt(1_000_000, int),
    calls: opt(1000, int),
    formats: opt(['json', 'protobuf'], list(oneOf('json', 'protobuf'))),
    contenders: opt(['otus', 'plain', 'otus-bare', 'bare', 'kafkajs'], list(CONTENDERS)),
    trials: opt(1, int),
    queue: opt(100_000, int),
    senders: opt([1], list(int)),
  },
  { internal: ['--trial'] },
);

interface Trial {
  contender: ReturnType<typeof CONTENDERS>;
  format: RecordFormat;
  records: number;
  calls: number;
  bootstrap: string;
  topic: string;
  /** queue_max_messages of both the reporter and the plain producer. */
  queue: number;
}

type Result = LoopResult;

/** The sender's loop into the kafka reporter. */
async function senderLoop(t: Trial, u8: Uint8Array, batches: number[], client: string, headers: boolean | 'packed'): Promise<Result> {
  const config = { brokers: [t.bootstrap], client, topic: t.topic, format: t.format, headers, queue_max_messages: t.queue };
  return runSenderLoop('kafka', config, t.format, u8, batches, go);
}

/** The same messages, made first, through a bare Producer.produce() with the reporter's producer settings. */
async function plainProducer(t: Trial, u8: Uint8Array, batches: number[], withHeaders: boolean): Promise<Result> {
  const registry = await createRegistry([]);
  const expander = new RecordExpander(t.format, registry.payloadReaders());
  const out = new Uint8Array(1 << 20);
  const values: Buffer[] = [];
  const keys: Buffer[] = [];
  const headers: { [k: string]: Buffer | string }[][] = [];
  const batch = new BatchReader();
  const trim = t.format === 'json' ? 1 : 0;
  for (let i = 0; i < batches.length; i += 2) {
    batch.start(u8, batches[i], batches[i + 1]);
    let k: number;
    while ((k = batch.next()) >= 0) {
      const end = expander.expand(u8, batch.off, k, batch.keys, out, 0, out.length);
      if (end < 0) continue;
      values.push(Buffer.from(out.subarray(0, end - trim)));
      const w = expander.wire;
      const c = expander.meta.callIdLabel();
      keys.push(Buffer.from(w.buf.subarray(w.valOff[c], w.valOff[c] + w.valLen[c])));
      const h: { [k: string]: Buffer | string }[] = [];
      for (let j = 0; j < w.labelCount; j++) {
        const name = Buffer.from(w.keyBuf[j].subarray(w.keyOff[j], w.keyOff[j] + w.keyLen[j])).toString();
        h.push({ [name]: w.valKind[j] === 1 ? String(w.valNum[j]) : Buffer.from(w.buf.subarray(w.valOff[j], w.valOff[j] + w.valLen[j])) });
      }
      headers.push(h);
    }
  }
  const { default: rd } = await import('@confluentinc/kafka-javascript');
  const { librdkafkaConfig } = await import('../src/sender-proc/kafka.js');
  const conf = librdkafkaConfig({
    brokers: [t.bootstrap], client: 'librdkafka', topic: t.topic, format: t.format, compression: 'lz4', acks: 'all', idempotence: true,
    linger_ms: 5, batch_size: 1000000, queue_max_messages: t.queue, delivery_timeout_ms: 120000, client_id: 'bench', headers: true,
  });
  // The binding delivers reports to 'delivery-report' only with dr_cb.
  const p = new rd.Producer({ ...conf, dr_cb: true });
  let failed = 0;
  p.on('delivery-report', (err) => {
    if (err) failed++;
  });
  await new Promise<void>((res, rej) => p.connect({}, (err) => (err ? rej(err) : res())));
  p.setPollInterval(100);
  await go();
  let bytes = 0;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < values.length; i++) {
    for (;;) {
      try {
        p.produce(t.topic, null, values[i], keys[i], null, undefined, withHeaders ? headers[i] : undefined);
        break;
      } catch (e) {
        if ((e as { code?: number }).code !== -184) throw e;
        // Queue full: the same wait the reporter's retry makes.
        await new Promise((r) => setTimeout(r, 2));
        p.poll();
      }
    }
    bytes += values[i].length;
  }
  await new Promise<void>((res) => p.flush(130000, () => res()));
  const c = process.cpuUsage(c0);
  const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
  await new Promise<void>((res) => p.disconnect(() => res()));
  return { records: values.length, bytes, cpuSec: (c.user + c.system) / 1e6, wallSec, acked: values.length - failed, dropped: failed };
}

async function trial(t: Trial): Promise<Result> {
  const dir = mkdtempSync(join(os.tmpdir(), 'otus-bench-kafka-'));
  try {
    const { u8, batches } = await wireBatches(t.calls, t.records, t.format, dir);
    if (t.contender === 'plain' || t.contender === 'bare') return await plainProducer(t, u8, batches, t.contender === 'plain');
    return await senderLoop(t, u8, batches, t.contender === 'kafkajs' ? 'kafkajs' : 'librdkafka', t.contender === 'otus-bare' ? false : t.contender === 'otus-packed' ? 'packed' : true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** In a trial's process: resolves when the parent says go (every sender of the trial is ready). */
function go(): Promise<void> {
  if (!process.send) return Promise.resolve();
  return new Promise((res) => {
    process.once('message', () => res());
    process.send!({ ready: true });
  });
}

/** `senders` processes, each with its share of the records, told to go together; their results summed (wall: the slowest). */
async function runTrial(t: Trial, senders = 1): Promise<Result> {
  const kids = Array.from({ length: senders }, (_, j) => {
    const share = { ...t, records: Math.ceil(t.records / senders), topic: senders > 1 ? `${t.topic}-s${j}` : t.topic };
    const k = fork(fileURLToPath(import.meta.url), ['--trial', JSON.stringify(share)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: Result | null = null;
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    k.on('message', (m: Result | { ready: true }) => ('ready' in m ? ready() : (result = m)));
    const done = new Promise<Result>((res, rej) => k.on('exit', (code) => (code === 0 && result ? res(result) : rej(new Error(`trial ${t.contender} ${t.format} exited with ${code}`)))));
    return { k, isReady, done };
  });
  await Promise.all(kids.map((x) => x.isReady));
  for (const x of kids) x.k.send('go');
  const rs = await Promise.all(kids.map((x) => x.done));
  const sum = (f: (r: Result) => number): number => rs.reduce((a, r) => a + f(r), 0);
  return { records: sum((r) => r.records), bytes: sum((r) => r.bytes), cpuSec: sum((r) => r.cpuSec), wallSec: Math.max(...rs.map((r) => r.wallSec)), acked: sum((r) => r.acked), dropped: sum((r) => r.dropped) };
}

async function main(): Promise<void> {
  const { records, calls, trials, queue, formats, contenders, senders: senderCounts } = o;
  const broker = startBroker();
  try {
    console.log(`# ${os.cpus()[0].model}, ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, node ${process.version}; broker on this machine`);
    console.log(`# ${records} records (kafkajs: a fifth), ${calls} calls, lz4, acks=all, idempotence, queue ${queue} messages`);
    const per: Record<string, number[]> = {};
    const rate: Record<string, number[]> = {};
    // Not counted: the broker's first trial ran 20-30 % slower (its JVM warming up), whichever contender it was.
    await runTrial({ contender: 'otus-bare', format: formats[0]!, records: Math.min(records, 100_000), calls, bootstrap: broker.bootstrap, topic: `bench-${process.pid}-warm-up`, queue });
    for (let n = 0; n < trials; n++) {
      for (const format of formats) {
        for (const contender of contenders) {
          // Several senders: the sender's own lines only.
          for (const s of contender.startsWith('otus') ? senderCounts : [1]) {
            const count = contender === 'kafkajs' ? Math.ceil(records / 5) : records;
            const t: Trial = { contender, format, records: count, calls, bootstrap: broker.bootstrap, topic: `bench-${process.pid}-${contender}-${format}-${n}-${s}`, queue };
            const r = await runTrial(t, s);
            const cpm = (r.cpuSec * 1e6) / r.records;
            const name = s > 1 ? `${contender}×${s}` : contender;
            (per[`${name} ${format}`] ??= []).push(cpm);
            (rate[`${name} ${format}`] ??= []).push(r.records / r.wallSec);
            console.log(
              `${name.padEnd(11)} ${format.padEnd(8)}: ${r.records} records (${(r.bytes / r.records).toFixed(0)} B), ` +
                `${((r.records / r.wallSec) / 1e3).toFixed(0)} k records/s, ${cpm.toFixed(2)} CPU-s per million ` +
                `(${((r.records / r.cpuSec) / 1e3).toFixed(0)} k per CPU-second); acked ${r.acked}, dropped ${r.dropped}`,
            );
          }
        }
      }
    }
    for (const format of formats) {
      const o = per[`otus ${format}`];
      const p = per[`plain ${format}`];
      if (o && p) console.log(`otus / plain CPU per record, ${format}: ${(Math.min(...o) / Math.min(...p)).toFixed(2)}x (best trials)`);
      const ob = per[`otus-bare ${format}`];
      const b = per[`bare ${format}`];
      if (ob && b) console.log(`otus-bare / bare CPU per record, ${format}: ${(Math.min(...ob) / Math.min(...b)).toFixed(2)}x (best trials)`);
      for (const c of contenders) {
        for (const s of senderCounts.filter((x) => x > 1)) {
          const one = rate[`${c} ${format}`];
          const many = rate[`${c}×${s} ${format}`];
          if (one && many) console.log(`${c}×${s} / ${c} records per second, ${format}: ${(Math.max(...many) / Math.max(...one)).toFixed(2)}x (best trials)`);
        }
      }
    }
  } finally {
    broker.stop();
  }
}

if (args[0] === '--trial') {
  trial(JSON.parse(args[1]) as Trial).then(
    // Run by hand (node --cpu-prof ... --trial JSON): the result on stdout.
    (r) => (process.send ? process.send(r, () => process.exit(0)) : console.log(JSON.stringify(r))),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
} else await main();
