// A capture process of `otus replay` (forked by src/supervisor/replay.ts):
// loads the task's plugins itself (third-party ones included, as every
// capture process does), attaches to the task's send ring as producer
// `index`, and runs its pipeline over the frames the supervisor's symmetric
// flow hash gave it, in file order. Replay is lossless by pacing: when the
// ring is over half full the process sleeps 1 ms at a time (a live capture
// process never waits; there the ring drops and counts). Waiting has an end:
// a sender that is gone (the ring's consumer pid dead) ends the process with
// OTUS_ERR_WORKER, and a lost supervisor (our parent changed) ends it at once,
// so no capture process outlives its run.

import { openCapture } from '../capture-file/open.js';
import { PcapReader } from '../capture-file/pcap.js';
import { BatchSink } from '../pipeline/batch-sink.js';
import { instantiateTaskPlugins, pipelineForTask } from '../pipeline/from-task.js';
import { createRegistry } from '../plugin/builtins.js';
import { FlowRegistry } from '../shm/registry.js';
import { CaptureClock } from '../shm/capture-clock.js';
import { RingProducer } from '../shm/ring.js';
import { type CaptureDone, type CaptureStart, exitWithError } from '../supervisor/messages.js';
import { OtusError } from '../util/errors.js';
import { MAX_RECORD_BYTES, pipelineCounters } from './counters.js';

const PACE_EVERY = 256;
/** While pacing, the sender's liveness is checked this often (1 ms waits). */
const LIVENESS_EVERY = 100;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const parent = process.ppid;

/** The supervisor is gone (we were re-parented): nobody will read our counters; stop now. */
function checkParent(): void {
  if (process.ppid !== parent) process.exit(3);
}

async function run(m: CaptureStart): Promise<CaptureDone> {
  const task = m.task;
  const registry = await createRegistry(m.pluginDirs);
  // The task's flow registry, created by the supervisor: SIP on one process labels RTP on another.
  const flows = m.flows ? FlowRegistry.open(m.ringTask) : null;
  const clock = m.ordered ? CaptureClock.open(m.ringTask) : null;
  const plugins = await instantiateTaskPlugins(registry, task, m.node, m.index, flows, m.workers);
  const producer = RingProducer.open(m.ringTask, m.index, m.ring ?? 0);
  const batch = new BatchSink(producer, MAX_RECORD_BYTES);
  const pipeline = pipelineForTask(task, plugins, batch, m.format);
  for (const p of [...plugins.parsers, ...plugins.processors]) await p.start?.();

  const half = producer.map.size / 2;
  const me = m.index;
  let ringWaits = 0;
  let sincePace = 0;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let g = 0; // global frame index, across files
  // A registry miss waits for earlier frames on the other processes, then retries (capture-clock.ts).
  if (clock !== null && flows !== null)
    flows.setCatchUp(() => {
      clock.waitTurn(me, g);
      return true;
    });
  let base = 0; // frames in the files before this one (g counts from 1)
  for (let fi = 0; fi < m.files.length; fi++) {
    const reader = openCapture(m.files[fi]);
    const { index, offset, frames } = m.shares[fi];
    // pcap: straight to its own records, as fanout hands a live process only its packets; pcapng, or every frame: walk.
    const jump = offset !== null && index !== null && reader instanceof PcapReader ? reader : null;
    const f = reader.frame;
    const n = index === null ? frames : index.length;
    let i = -1; // walking: index of the frame in f
    for (let j = 0; j < n; j++) {
      const want = index === null ? j : index[j];
      if (jump !== null) {
        jump.seek(offset![j]);
        if (!jump.next()) break;
      } else {
        while (i < want && reader.next()) {
          i++;
          // Others' frames change nothing here: publishing every 64th is enough for a waiter.
          if (i < want && ((base + i + 1) & 63) === 0) clock?.at(me, base + i + 1);
        }
        if (i < want) break;
      }
      g = base + want + 1;
      clock?.at(me, g);
      pipeline.processFrame(f);
      if (++sincePace === PACE_EVERY) {
        sincePace = 0;
        checkParent();
        for (let w = 1; producer.map.used() > half; w++) {
          ringWaits++;
          Atomics.wait(sleepCell, 0, 0, 1);
          if (w % LIVENESS_EVERY === 0) {
            checkParent();
            if (!producer.map.consumerAlive()) {
              const pid = producer.map.consumerPid();
              throw new OtusError('OTUS_ERR_WORKER', `capture process ${me}: the sender${pid !== 0 ? ` (pid ${pid})` : ''} is gone; stopped at frame ${g} with ${producer.map.used()} bytes unread in the send ring`);
            }
          }
        }
      }
    }
    base += frames;
  }
  clock?.finish(me);
  pipeline.flush(); // end of input: stored TCP bytes are delivered, connections ended
  const c = process.cpuUsage(c0);
  const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const p of [...plugins.parsers, ...plugins.processors]) await p.stop?.();
  producer.close();
  flows?.close();
  return {
    type: 'done',
    index: me,
    pid: process.pid,
    counters: pipelineCounters(pipeline, plugins.parsers, batch),
    cpuSec: (c.user + c.system) / 1e6,
    wallSec,
    ringWaits,
  };
}

process.once('message', (m: CaptureStart) => {
  run(m).then(
    (done) => (process.connected ? process.send!(done, () => process.exit(0)) : process.exit(0)),
    (e: unknown) => {
      exitWithError(e, `capture process ${m.index}`);
    },
  );
});
