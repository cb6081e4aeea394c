// What the reporter benchmarks share (bench/kafka.ts, bench/reporters.ts):
// the wire records of bench/captures' calls (SIP, then G.711 RTP over the
// calls) through the pipeline a capture process builds for sip + rtp, in
// committed batches as a capture process puts them in the ring, and the
// sender's loop (src/sender-proc/main.ts) over them into a reporter.

import { join } from 'node:path';
import { openCapture } from '../src/capture-file/open.js';
import { parseTask } from '../src/config/task.js';
import { BatchReader, BatchSink } from '../src/pipeline/batch-sink.js';
import { RecordExpander, type RecordMeta } from '../src/pipeline/expand.js';
import { instantiateTaskPlugins, pipelineForTask } from '../src/pipeline/from-task.js';
import type { RecordSink } from '../src/pipeline/sink.js';
import { createRegistry } from '../src/plugin/builtins.js';
import type { EncodedRecord, RecordFormat, Reporter } from '../src/plugin/types.js';
import { FlowRegistry } from '../src/shm/registry.js';
import { rtpCallsCapture } from './captures.js';

export interface LoopResult {
  records: number;
  bytes: number;
  cpuSec: number;
  wallSec: number;
  acked: number;
  dropped: number;
}

/** The wire records of `calls` calls' capture (`records` records in all), in committed batches. */
export async function wireBatches(calls: number, records: number, format: RecordFormat, dir: string): Promise<{ u8: Uint8Array; batches: number[] }> {
  const file = join(dir, 'calls.pcap');
  rtpCallsCapture(file, calls, records - 2 * calls);
  const task = parseTask('task:\n  id: bench-reporter\n  parsers:\n    - plugin: sip\n    - plugin: rtp\n  unmatched_policy: drop\n', 'bench');
  const flows = FlowRegistry.create(`benchrep${process.pid}`, { capacity: 65536 });
  try {
    const plugins = await instantiateTaskPlugins(await createRegistry([]), task, {}, 0, flows);
    let u8 = new Uint8Array(64 << 20);
    let used = 0;
    const batches: number[] = [];
    const sink: RecordSink = {
      get u8() {
        return u8;
      },
      reserve(n) {
        if (used + n > u8.length) {
          const b = new Uint8Array(2 * u8.length + n);
          b.set(u8.subarray(0, used));
          u8 = b;
        }
        const off = used;
        used += n;
        batches.push(off, n);
        return off;
      },
      commit: () => undefined,
    };
    const pl = pipelineForTask(task, plugins, new BatchSink(sink, 256 * 1024), format);
    const r = openCapture(file);
    while (r.next()) pl.processFrame(r.frame);
    pl.flush();
    return { u8, batches };
  } finally {
    flows.close();
  }
}

class Rec implements EncodedRecord {
  off = 0;
  len = 0;
  constructor(
    readonly format: RecordFormat,
    readonly buf: Uint8Array,
    readonly meta: RecordMeta,
  ) {}
}

/**
 * The sender's loop over the batches into reporter `name` with `config`, waiting while it is blocked, then flushed.
 * `ready`, when given, is awaited once the reporter has started and before the clock starts (several senders start together).
 */
export async function runSenderLoop(name: string, config: object, format: RecordFormat, u8: Uint8Array, batches: number[], ready?: () => Promise<void>): Promise<LoopResult> {
  const registry = await createRegistry([]);
  const reporter = (await registry.instantiate('reporter', name, config, { node: {}, taskId: 'bench', worker: -1, where: 'bench' })) as Reporter;
  await reporter.start?.();
  const expander = new RecordExpander(format, registry.payloadReaders());
  const out = new Uint8Array(1 << 20);
  const rec = new Rec(format, out, expander.meta);
  const batch = new BatchReader();
  await ready?.();
  let records = 0;
  let bytes = 0;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < batches.length; i += 2) {
    if (!batch.start(u8, batches[i], batches[i + 1])) throw new Error('broken batch');
    let k: number;
    while ((k = batch.next()) >= 0) {
      const end = expander.expand(u8, batch.off, k, batch.keys, out, 0, out.length);
      if (end < 0) continue;
      rec.len = end;
      reporter.report(rec);
      records++;
      bytes += end;
      if (reporter.blocked === true) await reporter.writable!();
    }
  }
  await reporter.flush();
  const c = process.cpuUsage(c0);
  const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
  await reporter.stop?.();
  const n = reporter.counters!();
  return { records, bytes, cpuSec: (c.user + c.system) / 1e6, wallSec, acked: n.acked, dropped: reporter.dropped ?? 0 };
}
