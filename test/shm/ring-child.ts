// A producer process for the ring tests and benchmark (forked; not a test).
//   node ring-child.js TASK INDEX COUNT MODE [FIXED_LEN]
// MODE:
//   lossless  write COUNT records; when the ring is full retry the same sequence
//             after 50 µs (each failed try is one drop-tail the ring counts)
//   once      write COUNT records, no retry: a full ring drops them
//   forever   like lossless, with no end (the test SIGKILLs it)
//   hang      write COUNT records, then reserve one more, write half of it and hang
//   noheader  write COUNT records, then take a reservation without its header and hang
//   wake      wait for 'go' messages; on each, write one record stamped with its commit time
// Reports {ready}, then {done, sent, failures} or {hung}.

import { RingProducer } from '../../src/shm/ring.js';
import { recordLen, stampTime, writeRecord } from './records.js';

const [task, idxArg, countArg, mode, fixedArg] = process.argv.slice(2);
const index = Number(idxArg);
const count = Number(countArg);
const fixed = Number(fixedArg ?? 0);
const p = RingProducer.open(task, index);
const u8 = p.u8;
const dv = p.view;
const nap = new Int32Array(new SharedArrayBuffer(4));
const send = (m: object): void => {
  process.send?.(m);
};

function put(seq: number, retry: boolean): number {
  const len = recordLen(seq, fixed);
  let failures = 0;
  for (;;) {
    const off = p.reserve(len);
    if (off >= 0) {
      writeRecord(u8, dv, off, len, index, seq);
      p.commit(off);
      return failures;
    }
    failures++;
    if (!retry) return failures;
    Atomics.wait(nap, 0, 0, 0.05);
  }
}

function run(n: number, retry: boolean): number {
  let failures = 0;
  for (let seq = 0; seq < n; seq++) failures += put(seq, retry);
  return failures;
}

send({ ready: true, index: p.index });
if (mode === 'lossless' || mode === 'once') {
  const failures = run(count, mode === 'lossless');
  send({ done: true, sent: count, failures });
  p.close();
  process.disconnect?.();
} else if (mode === 'forever') {
  for (let seq = 0; ; seq++) put(seq, true);
} else if (mode === 'hang' || mode === 'noheader') {
  run(count, true);
  const len = recordLen(count, fixed);
  const off = mode === 'hang' ? p.reserve(len) : p.reserveWithoutHeader(len);
  if (mode === 'hang') u8.fill(0xee, off, off + (len >> 1));
  send({ hung: true, off });
  setInterval(() => {}, 1000);
} else if (mode === 'wake') {
  let seq = 0;
  process.on('message', (m: { go?: boolean; stop?: boolean }) => {
    if (m.stop) {
      p.close();
      process.disconnect?.();
      return;
    }
    const len = recordLen(seq, fixed);
    const off = p.reserve(len);
    if (off < 0) return;
    writeRecord(u8, dv, off, len, index, seq++);
    stampTime(dv, off, Number(process.hrtime.bigint()));
    p.commit(off);
  });
}
