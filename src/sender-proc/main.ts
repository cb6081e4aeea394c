// The sender process of a task (forked by src/supervisor/task.ts for live
// tasks and the daemon, and by src/supervisor/replay.ts): attaches to the
// task's send ring, which the supervisor created (it is the one consumer,
// and it resumes from the ring's consumer position, so a restarted sender
// loses nothing the ring holds), instantiates the reporter, expands every
// wire record into the reporter's format (src/pipeline/expand.ts:
// serialization happens here, not in the capture processes) and hands it
// over, until the supervisor says the capture processes are done and the
// ring is empty. Sleeps on the ring's wakeup FIFO when idle; stops reading
// the ring while the reporter is blocked (the ring then drops, counted);
// beats, and keeps its counters in slot 0 of the task's stats segment
// (src/shm/stats.ts) at heartbeat rate and at the end. Live runs also measure
// each record's capture → sender latency (latency.ts). Logs through the
// supervisor (src/log/logger.ts); what its reporter gave up and what the ring
// dropped are checked at each beat and warned about rate-limited.

import { childLogger } from '../log/logger.js';
import type { Logger } from 'pino';
import { RateLimitedLog } from '../log/rate-limit.js';
import { createRegistry, loadTaskParsers } from '../plugin/builtins.js';
import type { EncodedRecord, RecordFormat } from '../plugin/types.js';
import { BatchReader } from '../pipeline/batch-sink.js';
import { RecordExpander, type RecordMeta } from '../pipeline/expand.js';
import { RingConsumer } from '../shm/ring.js';
import { SENDER_SLOT, StatsWriter } from '../shm/stats.js';
import { type Beat, exitWithError, type ReporterDrops, type SenderDone, type SenderOutputGone, type SenderReady, type SenderStart } from '../supervisor/messages.js';
import { NodeProcessStats } from '../util/node-stats.js';
import type { Reporter } from '../plugin/types.js';
import { LatencyHistogram } from './latency.js';

class Rec implements EncodedRecord {
  buf: Uint8Array;
  off = 0;
  len = 0;
  constructor(
    readonly format: RecordFormat,
    buf: Uint8Array,
    readonly meta: RecordMeta,
  ) {
    this.buf = buf;
  }
}

/** What a reporter may tell beyond the Reporter interface (FdReporter): how full its buffer is (0–1), and whether its output works. */
interface ReporterExtras {
  readonly usage?: number;
  readonly healthy?: boolean;
  /** The last connection or delivery error (kafka, hep), for warnings and the run's summary. */
  readonly lastError?: string | null;
  /** A file output renamed or deleted under it and made again at its path (the file and pcap reporters). */
  readonly reopened?: number;
}

/**
 * The reporter's drops by cause, as docs/reporters.md accounts them (from
 * its delivery counters: queue_full is its buffer, timeouts are timeouts,
 * every other failure, `abandoned` at a stop deadline included, an error; a
 * reporter without counters: every drop an error), and what it delivered;
 * `handed`: records given to report().
 */
function reporterFigures(r: Reporter & ReporterExtras, handed: number): { drops: ReporterDrops; acked: number; queued: number } {
  const dropped = r.dropped ?? 0;
  const c = r.counters?.();
  if (c === undefined) return { drops: { buffer: 0, timeout: 0, error: dropped }, acked: Math.max(0, handed - dropped), queued: 0 };
  const buffer = c.errors.queue_full ?? 0;
  const timeout = c.timeout;
  let error = 0;
  for (const k in c.errors) if (k !== 'queue_full') error += c.errors[k]!;
  return { drops: { buffer, timeout, error: Math.max(error, dropped - buffer - timeout) }, acked: c.acked, queued: c.queued };
}

/** Largest expanded record: a ring record (≤ 256 KiB) printed as JSON, base64 raw frame included. */
const EXPAND_BYTES = 1 << 20;

let draining = false;
/** Set by the supervisor's 'abandon' (its stop deadline passed): give up what the reporter still holds and finish. */
let abandoning = false;
let wakeAbandon: (() => void) | null = null;

// The supervisor stops the run in order (capture processes first, then 'drain'), so a terminal's
// SIGINT is left to it; a lost supervisor means drain what is in the ring and go.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => (draining = true));

/**
 * Warns (rate-limited) about what grew since the last beat: records the reporter gave up, batches the ring dropped;
 * and once when its reporter turns unhealthy (its output fails: a broker that cannot be reached, a full disk), once when it is healthy again.
 */
function watch(d: SenderDone, seen: { reporter: number; head: number; healthy: boolean; reopened: number }, log: Logger, warn: RateLimitedLog, healthy: boolean): void {
  if (healthy !== seen.healthy) {
    if (healthy) log.info({ last_error: d.lastError ?? null }, 'the reporter is healthy again');
    else log.warn({ last_error: d.lastError ?? null }, 'the reporter is unhealthy: its output fails (last_error); its records are held up to their delivery timeout, or dropped and counted');
    seen.healthy = healthy;
  }
  const rep = d.reporterDropped - seen.reporter;
  const head = d.ring.dropHead - seen.head;
  if (rep > 0) warn.warn('reporter_dropped', rep, { reporter_dropped: d.reporterDropped, last_error: d.lastError ?? null }, 'the reporter gave up records');
  if (head > 0) warn.warn('ring_drop_head', head, { drop_head: d.ring.dropHead }, 'send ring over its high watermark: the oldest batches dropped');
  seen.reporter = d.reporterDropped;
  seen.head = d.ring.dropHead;
  const reopened = d.outputReopened ?? 0;
  if (reopened > seen.reopened) log.warn({ reopened }, 'the output file was renamed or deleted: a new one was made at its path');
  seen.reopened = reopened;
}

async function run(m: SenderStart): Promise<SenderDone> {
  const log = childLogger(m.log, 'sender');
  const warn = new RateLimitedLog(log, m.log?.rateLimitMs);
  const registry = await createRegistry(m.pluginDirs);
  await loadTaskParsers(registry, m.task); // their payload readers
  const reporter = await registry.instantiate('reporter', m.reporter, m.reporterConfig, {
    node: m.node,
    taskId: m.task.id,
    worker: -1,
    sender: m.ring ?? 0,
    task: m.task,
    where: m.reporterWhere,
    resumed: m.resumed === true,
  });
  await reporter.start?.();
  const ring = RingConsumer.open(m.ringTask, m.ring ?? 0);
  const c0 = process.cpuUsage();
  const batch = new BatchReader();
  const expander = new RecordExpander(reporter.format, registry.payloadReaders());
  const out = new Uint8Array(EXPAND_BYTES);
  const rec = new Rec(reporter.format, out, expander.meta);
  const wireOnly = reporter.wireOnly === true;
  let records = 0;
  let bytes = 0;
  /** Records left in the ring (and in the batch being read) when the stop deadline passed. */
  let leftInRing = 0;
  const latency = m.latency ? new LatencyHistogram() : null;
  const extras = reporter as Reporter & ReporterExtras;
  let acked = 0;
  const snapshot = (): SenderDone => {
    const st = ring.stats();
    const c = process.cpuUsage(c0);
    const rf = reporterFigures(extras, records);
    acked = Math.max(acked, rf.acked); // kept monotonic for a reporter that can only tell handed minus dropped
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
        dropHeadRecords: st.dropHeadWeight,
        abandonedRecords: st.abandonedWeight,
      },
      expand: { ...expander.stats, malformed: expander.stats.malformed + batch.broken },
      reporterDropped: reporter.dropped ?? 0,
      reporterDrops: rf.drops,
      stopAbandoned: leftInRing,
      reporterAcked: acked,
      cpuSec: (c.user + c.system) / 1e6,
      latency: latency?.summary() ?? null,
      reporter: reporter.counters?.() ?? null,
      lastError: extras.lastError ?? null,
      ...(extras.reopened !== undefined && { outputReopened: extras.reopened }),
    };
  };
  const stats = m.stats ? StatsWriter.open(m.ringTask, m.statsSlot ?? SENDER_SLOT) : null;
  const node = stats !== null ? new NodeProcessStats() : null;
  const publish = (): SenderDone => {
    const d = snapshot();
    if (stats === null || node === null) return d;
    const n = node.sample();
    const counters: Record<string, number> = {
      records: d.records,
      bytes: d.bytes,
      cpuSec: d.cpuSec,
      'reporter.dropped': d.reporterDropped,
      'reporter.acked': d.reporterAcked,
      stopAbandoned: d.stopAbandoned,
      ...n.counters,
    };
    for (const [k, v] of Object.entries(d.expand)) counters[`expand.${k}`] = v;
    for (const [k, v] of Object.entries(d.reporterDrops)) counters[`reporter.drops.${k}`] = v;
    if (d.reporter !== null) {
      // The reporter's own delivery counters, as the summary shows them (failure reasons: the client's error names, a bounded set).
      counters['reporter.timeout'] = d.reporter.timeout;
      counters['reporter.skipped'] = d.reporter.skipped ?? 0;
      for (const [k, v] of Object.entries(d.reporter.errors)) counters[`reporter.errors.${k}`] = v;
    }
    const gauges: Record<string, number> = {
      'reporter.queued': reporterFigures(extras, records).queued,
      'reporter.usage': extras.usage ?? (reporter.blocked === true ? 1 : 0),
      'reporter.healthy': extras.healthy === false ? 0 : 1,
      ...n.gauges,
    };
    if (latency !== null) {
      const b = latency.counts;
      let count = 0;
      for (let i = 0; i < b.length; i++) {
        count += b[i]!;
        if (b[i]! > 0) counters[`latency.b.${i}`] = b[i]!;
      }
      counters['latency.count'] = count;
      counters['latency.sumUs'] = latency.sumUs;
      gauges['latency.maxUs'] = latency.max;
    }
    stats.publish(counters, gauges);
    return d;
  };
  let toldGone = false;
  const seen = { reporter: 0, head: 0, healthy: true, reopened: 0 };
  const beat = m.heartbeatMs
    ? setInterval(() => {
        const s = publish();
        process.send?.({ type: 'beat' } satisfies Beat);
        watch(s, seen, log, warn, extras.healthy !== false);
      }, m.heartbeatMs)
    : null;
  try {
    process.send!({ type: 'ready', ringName: ring.name } satisfies SenderReady);
    log.info({ reporter: m.reporter, resumed: m.resumed === true }, 'sender started');
    for (;;) {
      let n: number;
      while ((n = ring.next()) >= 0) {
        if (!batch.start(ring.u8, ring.off, n)) continue; // counted in batch.broken
        if (latency !== null) latency.nowUs = (performance.timeOrigin + performance.now()) * 1000;
        let k: number;
        while ((k = batch.next()) >= 0) {
          latency?.add(ring.u8, batch.off);
          const end = wireOnly ? expander.load(ring.u8, batch.off, k, batch.keys) : expander.expand(ring.u8, batch.off, k, batch.keys, out, 0, out.length);
          if (end < 0) continue; // counted in expander.stats
          rec.len = end;
          reporter.report(rec);
          records++;
          bytes += end;
          // The reporter holds all it will take: stop reading until it has written some (the ring holds, then drops, counted).
          if (reporter.blocked === true) await untilAbandoned(reporter.writable!());
          if (abandoning) break;
        }
        if (abandoning) break;
      }
      if (abandoning) break;
      if (reporter.outputGone === true && !toldGone) {
        toldGone = true;
        process.send?.({ type: 'output-gone' } satisfies SenderOutputGone);
      }
      if (draining) {
        ring.release();
        if (ring.backlog === 0) break;
      }
      await ring.wait(20);
    }
    if (abandoning) {
      reporter.abandon?.();
      // Given up too, and counted (in records), not left uncounted: the rest of the batch being read, and what the ring still holds.
      while (batch.next() >= 0) leftInRing++;
      while (ring.next() >= 0) leftInRing += ring.weight;
      ring.release();
    } else await untilAbandoned(reporter.flush());
    if (abandoning) reporter.abandon?.();
    await reporter.stop?.();
    const done = publish();
    watch(done, seen, log, warn, extras.healthy !== false);
    warn.flush();
    log.info({ records: done.records, abandoned: abandoning, reporter_dropped: done.reporterDropped }, 'sender stopped');
    return done;
  } finally {
    if (beat) clearInterval(beat);
    node?.stop();
    ring.close();
  }
}

/** Waits for `p`, or until the supervisor says to abandon. */
function untilAbandoned(p: Promise<void>): Promise<void> {
  if (abandoning) return Promise.resolve();
  return new Promise((res) => {
    wakeAbandon = res;
    p.then(res, res);
  });
}

process.on('message', (m: SenderStart | { type: 'drain' } | { type: 'abandon' }) => {
  if (m.type === 'drain') {
    draining = true;
    return;
  }
  if (m.type === 'abandon') {
    draining = abandoning = true;
    wakeAbandon?.();
    return;
  }
  run(m).then(
    (done) => (process.connected ? process.send!(done, () => process.exit(0)) : process.exit(0)),
    (e: unknown) => {
      exitWithError(e, 'sender');
    },
  );
});
