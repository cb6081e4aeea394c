// A consumer process for the ring-restart test (forked; not a test).
//   node consumer-child.js SCOPE LOG COUNT
// Attaches to the ring as its consumer, reads records in small batches and,
// after each release(), appends "producer seq" lines of the batch to LOG.
// Once COUNT records are logged it reads three more without releasing them
// (a sender killed holding records it had read) and SIGKILLs itself.

import { openSync, writeSync } from 'node:fs';
import { RingConsumer } from '../../src/shm/ring.js';

const [scope, log, countArg] = process.argv.slice(2);
const count = Number(countArg);
const ring = RingConsumer.open(scope);
const fd = openSync(log, 'a');
process.send?.({ ready: true });
let logged = 0;
const batch: string[] = [];

for (;;) {
  while (batch.length < 7 && ring.next() >= 0) batch.push(`${ring.view.getUint32(ring.off, true)} ${ring.view.getUint32(ring.off + 4, true)}\n`);
  if (batch.length === 0) {
    await ring.wait(20);
    continue;
  }
  ring.release();
  writeSync(fd, batch.join(''));
  logged += batch.length;
  batch.length = 0;
  if (logged >= count) break;
}
for (let read = 0; read < 3; ) {
  if (ring.next() >= 0) read++;
  else await new Promise((r) => setTimeout(r, 1));
}
process.kill(process.pid, 'SIGKILL');
