// Producer process for bench/ring.ts (forked).
//   node ring-producer.js TASK INDEX COUNT LEN PACE_US
// Writes COUNT records of LEN bytes: u32 index, u32 seq, f64 commit time (hrtime ns).
// PACE_US 0: as fast as it can, stamping every 64th record (hrtime allocates a
// BigInt); otherwise one record every PACE_US µs, each stamped. A full ring is
// retried after 20 µs (each try is a counted drop-tail).

import { RingProducer } from '../src/shm/ring.js';

const [task, idxArg, countArg, lenArg, paceArg] = process.argv.slice(2);
const index = Number(idxArg);
const count = Number(countArg);
const len = Number(lenArg);
const pace = Number(paceArg);
const p = RingProducer.open(task, index);
const dv = p.view;
const nap = new Int32Array(new SharedArrayBuffer(4));
let failures = 0;
process.send?.({ ready: true });
await new Promise((r) => process.once('message', r)); // 'go'
const c0 = process.cpuUsage();
let next = performance.now();
for (let seq = 0; seq < count; seq++) {
  if (pace > 0) {
    next += pace / 1000;
    while (performance.now() < next) {
      /* pace */
    }
  }
  let off = p.reserve(len);
  while (off < 0) {
    failures++;
    Atomics.wait(nap, 0, 0, 0.02);
    off = p.reserve(len);
  }
  dv.setUint32(off, index, true);
  dv.setUint32(off + 4, seq, true);
  dv.setFloat64(off + 8, pace > 0 || (seq & 63) === 0 ? Number(process.hrtime.bigint()) : 0, true);
  p.commit(off);
}
const c = process.cpuUsage(c0);
process.send?.({ done: true, failures, cpuUs: c.user + c.system });
p.close();
process.disconnect?.();
