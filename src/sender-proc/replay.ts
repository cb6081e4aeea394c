// The sender process of `otus replay` (forked by src/supervisor/replay.ts):
// creates the task's send ring (it is the one consumer), instantiates the
// reporter, and hands it every record until the supervisor says the capture
// processes are done and the ring is empty. Sleeps on the ring's futex when
// idle instead of spinning.

import { loadTaskFile } from '../config/task.js';
import { createRegistry } from '../plugin/builtins.js';
import type { EncodedRecord, RecordFormat } from '../plugin/types.js';
import { RingConsumer } from '../shm/ring.js';
import type { ChildError, SenderDone, SenderReady, SenderStart } from '../supervisor/replay-messages.js';
import { OtusError } from '../util/errors.js';

class Rec implements EncodedRecord {
  buf: Uint8Array;
  off = 0;
  len = 0;
  constructor(
    readonly format: RecordFormat,
    buf: Uint8Array,
  ) {
    this.buf = buf;
  }
}

let draining = false;

async function run(m: SenderStart): Promise<SenderDone> {
  const task = loadTaskFile(m.taskFile);
  const registry = await createRegistry(m.pluginDirs);
  const reporter = await registry.instantiate('reporter', m.reporter, m.reporterConfig, {
    node: m.node,
    taskId: task.id,
    worker: -1,
    where: m.reporterWhere,
  });
  await reporter.start?.();
  const ring = RingConsumer.create(m.ringTask, { dataBytes: m.ringBytes });
  try {
    process.send!({ type: 'ready', ringName: ring.name } satisfies SenderReady);
    const c0 = process.cpuUsage();
    const rec = new Rec(reporter.format, ring.u8);
    let records = 0;
    let bytes = 0;
    for (;;) {
      let n: number;
      while ((n = ring.next()) >= 0) {
        rec.off = ring.off;
        rec.len = n;
        reporter.report(rec);
        records++;
        bytes += n;
      }
      if (draining) {
        ring.release();
        if (ring.backlog === 0) break;
      }
      await ring.wait(20);
    }
    await reporter.flush();
    await reporter.stop?.();
    const st = ring.stats();
    const c = process.cpuUsage(c0);
    return {
      type: 'done',
      records,
      bytes,
      ring: {
        dropHead: st.dropHead,
        abandoned: st.abandoned,
        discarded: st.discarded,
        dropTail: st.producers.reduce((a, p) => a + p.dropTail, 0),
        records: st.records,
      },
      cpuSec: (c.user + c.system) / 1e6,
    };
  } finally {
    ring.close();
  }
}

process.on('message', (m: SenderStart | { type: 'drain' }) => {
  if (m.type === 'drain') {
    draining = true;
    return;
  }
  run(m).then(
    (done) => process.send!(done, () => process.exit(0)),
    (e: unknown) => {
      const err: ChildError =
        e instanceof OtusError
          ? { type: 'error', code: e.code, message: e.message }
          : { type: 'error', code: 'OTUS_ERR_WORKER', message: `sender: ${e instanceof Error ? e.stack ?? e.message : String(e)}` };
      process.send!(err, () => process.exit(2));
    },
  );
});
