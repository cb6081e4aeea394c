// Send ring benchmark: records per second from 1 and 2 producer processes
// into one consumer (this process), and producer-commit -> consumer-read
// latency, with the consumer sleeping (the ring's wakeup FIFO) whenever the ring is empty.
//
//   node --expose-gc dist/bench/ring.js [--records N] [--len BYTES]

import { benchArgs, int, opt } from './cli.js';
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { RingConsumer, createRing } from '../src/shm/ring.js';

const { records, len } = benchArgs({ records: opt(4_000_000, int), len: opt(120, int) });
const CHILD = fileURLToPath(new URL('./ring-producer.js', import.meta.url));

let gcs = 0;
new PerformanceObserver((l) => {
  gcs += l.getEntries().length;
}).observe({ entryTypes: ['gc'] });

interface Result {
  rate: number;
  failures: number;
  producerCpuUsPerRecord: number;
  consumerCpuUs: number;
  lat: number[];
  gc: number;
}

async function trial(producers: number, perProducer: number, paceUs: number, spinUs = 0): Promise<Result> {
  const task = `bench${process.pid}-${producers}-${paceUs}`;
  const seg = createRing(task, { dataBytes: 1 << 22, highWatermark: 1 });
  const ring = RingConsumer.open(task);
  const kids: ChildProcess[] = [];
  const done: Promise<{ failures: number; cpuUs: number }>[] = [];
  for (let i = 0; i < producers; i++) {
    const ch = fork(CHILD, [task, String(i), String(perProducer), String(len), String(paceUs)]);
    kids.push(ch);
    await new Promise((r) => ch.once('message', r));
    done.push(new Promise((r) => ch.on('message', (m: { done?: boolean; failures: number; cpuUs: number }) => m.done && r(m))));
  }
  const lat: number[] = [];
  const total = producers * perProducer;
  let got = 0;
  const gc0 = gcs;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (const ch of kids) ch.send('go');
  const view = ring.view;
  while (got < total) {
    while (ring.next() >= 0) {
      got++;
      const t = view.getFloat64(ring.off + 8, true);
      if (t !== 0) lat.push(Number(process.hrtime.bigint()) - t);
    }
    if (got < total) await ring.wait(100, spinUs);
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const res = await Promise.all(done);
  ring.close();
  seg.close();
  lat.sort((a, b) => a - b);
  return {
    rate: total / wall,
    failures: res.reduce((a, r) => a + r.failures, 0),
    producerCpuUsPerRecord: res.reduce((a, r) => a + r.cpuUs, 0) / total,
    consumerCpuUs: c.user + c.system,
    lat,
    gc: gcs - gc0,
  };
}

const pct = (a: number[], p: number): string => (a.length ? (a[Math.min(a.length - 1, Math.floor(a.length * p))] / 1000).toFixed(1) : '-');

console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 20)} MiB, load ${os.loadavg()[0].toFixed(1)}, node ${process.version}, ${os.release()}`);
console.log(`command: node ${process.execArgv.join(' ')} ${process.argv.slice(1).join(' ')}`.replace(/\s+/g, ' '));
console.log(`ring 4 MiB, records of ${len} bytes (${(len + 8 + 7) & ~7} in the ring)`);
await trial(1, 200_000, 0); // warm up
for (const n of [1, 2]) {
  const r = await trial(n, Math.floor(records / n), 0);
  console.log(
    `flat out, ${n} producer${n > 1 ? 's' : ''}: ${(r.rate / 1e6).toFixed(2)} M records/s, producer CPU ${(r.producerCpuUsPerRecord * 1000).toFixed(0)} ns/record, ` +
      `consumer CPU ${((r.consumerCpuUs * 1000) / records).toFixed(0)} ns/record, ring-full retries ${r.failures}, ` +
      `commit->read p50 ${pct(r.lat, 0.5)} µs p99 ${pct(r.lat, 0.99)} µs, consumer GCs ${r.gc}`,
  );
}
for (const [n, pace, spin] of [[1, 1000, 0], [1, 50, 0], [1, 50, 50], [2, 50, 50]]) {
  const r = await trial(n, Math.min(20_000, Math.floor(2e6 / pace)), pace, spin);
  console.log(
    `paced 1 record / ${pace} µs per producer, ${n} producer${n > 1 ? 's' : ''}, consumer ${spin ? `polls ${spin} µs then sleeps` : 'sleeps at once'}: ` +
      `commit->read p50 ${pct(r.lat, 0.5)} µs, p99 ${pct(r.lat, 0.99)} µs, max ${pct(r.lat, 1)} µs`,
  );
}
