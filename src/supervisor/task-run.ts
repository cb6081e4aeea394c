// What `otus replay` (src/supervisor/replay.ts) and live tasks
// (src/supervisor/task.ts, for `otus capture --task` and the daemon) share:
// checking the task, its plugins and its reporter before anything is
// forked; forking replay's sender; waiting for children; and the run's
// summary (counters summed over the processes).

import { fork, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTaskFile, type TaskSpec } from '../config/task.js';
import { instantiateTaskPlugins } from '../pipeline/from-task.js';
import { createRegistry } from '../plugin/builtins.js';
import { checkHepTask } from '../sender-proc/hep.js';
import { checkPcapTask } from '../sender-proc/pcap.js';
import { checkFileOutput } from '../sender-proc/reporters.js';
import type { RecordFormat, ReporterCounters } from '../plugin/types.js';
import type { LatencySummary } from '../sender-proc/latency.js';
import { createRing, type RingSegment } from '../shm/ring.js';
import { sizesYoungGeneration } from './young-generation.js';
import { OtusError, type OtusErrorCode } from '../util/errors.js';
import type { CaptureDone, ChildError, LiveCaptureDone, ReplayPluginSetup, SenderDone, SenderReady, SenderStart } from './messages.js';

/** A capture file whose reading stopped before its end (a corrupt or truncated record): what `otus decode` says as `stopped:`. */
export interface IncompleteFile {
  file: string;
  /** The reader's reason, with the byte offset (`absurd caplen 4294967295 at byte 1234`). */
  stopped: string;
  /** Frames read (and replayed) before it. */
  frames: number;
  bytes_read: number;
  file_size: number;
}

export interface TaskSummary {
  task: string;
  workers: number;
  /** Replay: the capture files. */
  files?: string[];
  /** Replay: files that could not be read to their end (each also a warning); `otus replay` then exits 3. */
  incomplete_files?: IncompleteFile[];
  /** Live: the interface, the driver and why the capture stopped. */
  capture?: { interface: string; driver: string; stopped: string };
  frames: number;
  records: number;
  /** Frames a parser took into its summary records, with no record of their own (rtp with `stats.per_packet: false`): not drops. */
  summarised: number;
  drops: {
    decode: number;
    filter: number;
    unmatched: number;
    parser_no_output: number;
    processors: Record<string, number>;
    encode: number;
    ring_tail: number;
    ring_head: number;
    /** Records in batches a dead capture process left half-written in the ring. */
    ring_abandoned: number;
    /** Ring records the sender could not expand: malformed, or bigger than its output room. */
    sender_expand: number;
    /** Records the reporter gave up: its queue was full, not delivered in time, failed (or abandoned at the stop). */
    reporter_queue: number;
    reporter_timeout: number;
    reporter_error: number;
    /** Records still in the ring when the sender gave up at the stop deadline. */
    stop_deadline: number;
  };
  held_fragments: number;
  decode_errors: Record<string, number>;
  /** Summed over capture processes (`pending`, `memoryBytes`, `active`, `bytesHeld` are what was left at the end). */
  ip_reassembly: Record<string, number>;
  tcp_reassembly: Record<string, number> | null;
  /** The task's flow registry at the end (null without parsers). */
  flow_registry: Record<string, number> | null;
  /** `counters`: the parser's own counters (Parser.counters()), summed over capture processes. */
  parsers: Record<string, { records: number; no_output: number; summarised: number; counters?: Record<string, unknown> }>;
  unmatched_forwarded: number;
  /** Records written by a parser's fast path (src/pipeline/fast-path.ts). */
  fast_path_records: number;
  /** Replay: ring_waits (pauses while the ring was over half full). Live: the stream's blocks and the kernel's counters. */
  capture_processes: ({ index: number; pid: number; frames: number; records: number; cpu_s: number; wall_s: number; pps_per_cpu_s: number } & Record<string, number>)[];
  /** Frames over the summed CPU seconds of the capture processes. */
  pps_per_capture_cpu_s: number;
  /** Frames over the longest capture process's wall time (aggregate rate). */
  pps_wall: number;
  /**
   * `payload_unread`: records whose compact payload no parser plugin could read (written with a null payload).
   * `latency`: live runs, capture → sender per record (µs).
   */
  sender: { records: number; bytes: number; cpu_s: number; payload_unread: number; latency?: LatencySummary };
  /** Each sender's own figures (`senders` in the task); `sender`, `drops` and `reporter` are their sums. */
  senders: SenderFigures[];
  /** The reporter's delivery (kafka): acknowledged, timed out, failed by reason, still in flight at the end. */
  reporter: ReporterCounters | null;
  wall_s: number;
  warnings: string[];
}

/** `senders` beyond the capture processes: the extra senders would have no ring written to. */
export function tooManySenders(task: TaskSpec, workers: number): OtusError {
  return new OtusError('OTUS_ERR_BAD_ARGUMENT', `${task.file}: ${task.path}.senders: ${task.senders} senders for ${workers} capture process(es): capture process i writes send ring i mod senders, so at most one sender per capture process`);
}

/** One sender's figures in a summary: what it read from its ring and handed on, and what it and its ring dropped. */
export interface SenderFigures {
  index: number;
  records: number;
  bytes: number;
  cpu_s: number;
  ring_head: number;
  ring_abandoned: number;
  sender_expand: number;
  reporter_queue: number;
  reporter_timeout: number;
  reporter_error: number;
  stop_deadline: number;
  /** Delivered by its reporter (written, acknowledged), and still in flight there. */
  acked: number;
  in_flight: number;
  /** Live: times it was restarted. */
  restarts?: number;
}

export function senderFigures(index: number, s: SenderDone): SenderFigures {
  return {
    index,
    records: s.records,
    bytes: s.bytes,
    cpu_s: s.cpuSec,
    ring_head: s.ring.dropHeadRecords,
    ring_abandoned: s.ring.abandonedRecords,
    sender_expand: s.expand.malformed + s.expand.tooBig,
    reporter_queue: s.reporterDrops.buffer,
    reporter_timeout: s.reporterDrops.timeout,
    reporter_error: s.reporterDrops.error,
    stop_deadline: s.stopAbandoned,
    acked: s.reporterAcked,
    in_flight: s.reporter?.queued ?? 0,
  };
}

/** The done messages of a task's senders, summed (numbers add, the reporter's errors by reason merge); a latency summary is kept only for one sender. */
export function sumSenders(ds: SenderDone[]): SenderDone {
  if (ds.length === 1) return ds[0]!;
  const sum = ds.reduce((a, d) => addCounters(a, { ...d, latency: null }), {} as Record<string, unknown>) as unknown as SenderDone;
  sum.reporter = ds.some((d) => d.reporter !== null) ? sum.reporter : null;
  return sum;
}

export const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

export interface CheckedTask {
  task: TaskSpec;
  pluginDirs: string[];
  reporter: ReporterChoice;
  format: RecordFormat;
  /** Warnings the task's parsers draw from their summed counters (Parser.hints): appended to a run's summary. */
  hints: (parsers: TaskSummary['parsers']) => string[];
}

export interface ReporterChoice {
  name: string;
  config: Record<string, unknown>;
  /** Where its config comes from, for messages about the config. */
  where: string;
  /** Where it is named, for "no such reporter". */
  named: string;
}

/** Loads a task file and checks it (checkTaskSpec) before anything is forked. */
export async function checkTask(taskFile: string, pluginDirs: string[], node: Record<string, string>, out: string | null): Promise<CheckedTask> {
  const task = loadTaskFile(resolve(taskFile));
  return checkTaskSpec(task, pluginDirs, node, reporterFor(out, task));
}

/** Fails, before anything is forked, on anything the task, its plugins or its reporter get wrong. */
export async function checkTaskSpec(task: TaskSpec, pluginDirs: string[], node: Record<string, string>, rep: ReporterChoice): Promise<CheckedTask> {
  const dirs = pluginDirs.map((d) => resolve(d));
  const registry = await createRegistry(dirs);
  const plugins = await instantiateTaskPlugins(registry, task, node, -1);
  for (const p of [...plugins.parsers, ...plugins.processors]) await p.stop?.();
  // hints() reads only the counters it is given: a stopped instance serves.
  const hinting = plugins.parsers.map((p, i) => ({ p, name: plugins.parserNames[i]! })).filter(({ p }) => p.hints !== undefined);
  const hints = (parsers: TaskSummary['parsers']): string[] =>
    hinting.flatMap(({ p, name }) => (parsers[name]?.counters ? p.hints!(parsers[name].counters!) : []));
  const repPlugin = await registry.load('reporter', rep.name, rep.named);
  const config = registry.checkConfig(repPlugin, rep.config, rep.where) as Record<string, unknown>;
  // A file the sender would open: refused now, with the reason, rather than in the sender.
  if (rep.name === 'file' || rep.name === 'pcap') checkFileOutput(`reporter ${rep.name}`, config);
  checkPcapTask(rep.name, rep.where, task);
  if (rep.name === 'hep') checkHepTask(task, rep.where);
  if (task.senders > 1) checkSharedOutput(rep.name, config, task);
  return { task, pluginDirs: dirs, reporter: { ...rep, config }, format: config.format === 'protobuf' ? 'protobuf' : 'json', hints };
}

/**
 * Several senders write one output only where each write lands whole: a
 * regular file (opened O_APPEND) or a reporter of messages (kafka). A pipe
 * (stdout, a FIFO) takes a non-blocking write in parts, so lines would interleave.
 */
function checkSharedOutput(reporter: string, config: Record<string, unknown>, task: TaskSpec): void {
  const refuse = (why: string): never => {
    throw new OtusError('OTUS_ERR_CONFIG', `${task.file}: ${task.path}.senders: ${task.senders} senders ${why}; use one sender, or an output several can share (a regular file, rotating files in a dir, kafka)`);
  };
  if (reporter === 'console') refuse('would interleave their lines on one standard output');
  if (reporter === 'pcap' && config.per_call === true) refuse("would split a call's files: its SIP and its RTP may reach different senders");
  if (reporter === 'file' && config.dir === undefined) {
    let regular = true;
    try {
      regular = statSync(resolve(String(config.path))).isFile();
    } catch {
      // absent: created as a regular file
    }
    if (!regular) refuse(`cannot share ${String(config.path)}, which is not a regular file`);
  }
}

/**
 * V8 flags every capture process gets unless the parent's flags set them:
 * - the young generation capped at 1 MiB a semi-space. The hot path
 *   allocates nothing, so its scavenges are few either way; measured
 *   (bench/memory.ts, 10 K calls): 10 MiB less PSS per capture process, and
 *   no change in its CPU per packet on `otus replay` (the sender keeps the
 *   default: 6 % more CPU with the cap);
 * - a larger inlining budget per optimised function (V8's default is 920
 *   bytes of bytecode): the RTP fast path's frame function calls a dozen
 *   small ones, and past the budget they stay calls (`node
 *   --trace-turbo-inlining`). 2000 once inlined them all; the flow cache's
 *   ways and the statistics' link grew them past it, and 4000 inlines them
 *   all again. Measured (bench/rtp-calls.ts, interleaved, packets per
 *   CPU-second), 2000 → 4000: 10 calls 5.7-6.8 → 7.2-7.4 M, with rtp.stats
 *   4.3-4.9 → 5.4-5.5 M; 1000 calls 5.7-5.9 → 6.1-6.5 M, with rtp.stats
 *   3.2-3.5 → 3.6-3.8 M; SIP (bench/sip.ts) and bench/decode.ts unchanged.
 *   (The per-function limit stays V8's: inlining RtpStreamTable.fastPacket
 *   as well made the stats path slower, 5.4 → 4.8 M.)
 */
const CAPTURE_FLAGS = ['--max-semi-space-size=1', '--max-inlined-bytecode-size-cumulative=4000'];

export function captureExecArgv(execArgv: readonly string[]): string[] {
  const out = [...execArgv];
  for (const flag of CAPTURE_FLAGS) {
    const name = flag.slice(0, flag.indexOf('='));
    if (!execArgv.some((a) => a === name || a.startsWith(`${name}=`))) out.push(flag);
  }
  return out;
}

/**
 * The sender's node flags: the parent's without young-generation flags, which
 * an operator gives the supervisor's command line for the supervisor, and a
 * young generation of its own, 4 MiB a semi-space. The sender allocates per
 * record: a 1 MiB semi-space cost it ~6 % more CPU (`otus replay` of 1000
 * calls, 0.70 → 0.74 CPU-s); 4 MiB measured the same CPU as V8's default of
 * 16 MiB (0.79-0.86 against 0.78-0.90 CPU-s, 1000 calls of 300 RTP packets)
 * and 10-20 MiB less PSS (bench/memory.ts, 10 K calls).
 */
export function senderExecArgv(execArgv: readonly string[]): string[] {
  return [...execArgv.filter((a) => !sizesYoungGeneration(a)), '--max-semi-space-size=4'];
}

/**
 * Forks the sender, which attaches to the send ring the caller created
 * (createRing: the supervisor owns it, so it outlives a sender); resolves once
 * the sender is reading, with the promise of its final counters. Given a size
 * instead of a ring, creates the ring here and removes it when the sender exits.
 * `append`: the task's further senders continue the output the first one opened.
 */
export async function startSender(
  setup: ReplayPluginSetup,
  t: CheckedTask,
  ring: RingSegment | number,
  execArgv: string[],
  children: ChildProcess[],
  latency = false,
  append = false,
): Promise<{ sender: ChildProcess; done: Promise<SenderDone> }> {
  const own = typeof ring === 'number' ? createRing(setup.ringTask, { dataBytes: ring }, setup.ring ?? 0) : null;
  const ringBytes = own?.stats().dataBytes ?? (ring as RingSegment).stats().dataBytes;
  const sender = fork(here('../sender-proc/main.js'), [], { serialization: 'advanced', execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  if (own !== null) sender.once('exit', () => own.close());
  children.push(sender);
  const done = awaitDone<SenderDone>(sender, 'sender');
  done.catch(() => undefined);
  const ready = awaitReady<SenderReady>(sender, 'sender');
  sender.send({ type: 'start', ...setup, reporter: t.reporter.name, reporterConfig: t.reporter.config, reporterWhere: t.reporter.where, ringBytes, latency, resumed: append } satisfies SenderStart);
  await Promise.race([ready, done]);
  return { sender, done };
}

/** SIGKILL for every child still running (the end of a run, or its failure). */
export function killAll(children: ChildProcess[]): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

function childError(e: ChildError): OtusError {
  return new OtusError(e.code as OtusErrorCode, e.message);
}

/** Resolves with the child's first 'done' message; rejects on an error message or an exit without one. */
export function awaitDone<T>(child: ChildProcess, what: string): Promise<T> {
  return new Promise((res, rej) => {
    let settled = false;
    child.on('message', (m: { type: string }) => {
      if (settled) return;
      if (m.type === 'done') {
        settled = true;
        res(m as T);
      } else if (m.type === 'error') {
        settled = true;
        rej(childError(m as ChildError));
      }
    });
    child.on('exit', (code, sig) => {
      if (settled) return;
      settled = true;
      rej(new OtusError('OTUS_ERR_WORKER', `${what} exited (${sig ?? `code ${code}`}) before reporting`));
    });
  });
}

/** Resolves with the child's 'ready' message; rejects on an error message or an exit before it. */
export function awaitReady<T>(child: ChildProcess, what: string): Promise<T> {
  return new Promise((res, rej) => {
    const onMsg = (m: { type: string }): void => {
      if (m.type === 'ready') {
        child.off('message', onMsg);
        res(m as T);
      } else if (m.type === 'error') rej(childError(m as ChildError));
    };
    child.on('message', onMsg);
    child.once('exit', (code, sig) => rej(new OtusError('OTUS_ERR_WORKER', `${what} exited (${sig ?? `code ${code}`}) before it was ready`)));
  });
}

/** The reporter a run uses: `--out FILE` or `-` (NDJSON), else the task's, else NDJSON on stdout. */
export function reporterFor(out: string | null, task: TaskSpec): ReporterChoice {
  if (out === '-') return { name: 'console', config: {}, where: '--out -', named: '--out -' };
  if (out !== null) return { name: 'file', config: { path: resolve(out), format: 'json' }, where: `--out ${out}`, named: `--out ${out}` };
  if (task.reporter) return { name: task.reporter.plugin, config: task.reporter.config, where: task.reporter.where, named: task.reporter.named };
  return { name: 'console', config: {}, where: 'default reporter', named: 'default reporter' };
}

/** Sums parser counters: numbers add, objects merge recursively, anything else keeps the first value. */
export function addCounters(into: Record<string, unknown>, from: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (typeof v === 'number') into[k] = (typeof cur === 'number' ? cur : 0) + v;
    else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      into[k] = addCounters(cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>) : {}, v as Record<string, unknown>);
    } else if (!(k in into)) into[k] = v;
  }
  return into;
}

/** The counters of every process of a run, summed up. `perProcess` adds a capture process's own fields. */
export function summarize<D extends CaptureDone | LiveCaptureDone>(
  task: TaskSpec,
  workers: number,
  done: D[],
  perProcess: (d: D) => Record<string, number>,
  s: SenderDone,
  wallSec: number,
  warnings: string[],
  registry: Record<string, number> | null,
  senders: SenderFigures[] = [senderFigures(0, s)],
): TaskSummary {
  done.sort((a, b) => a.index - b.index);
  const sum = (f: (d: D) => number): number => done.reduce((a, d) => a + f(d), 0);
  const processors: Record<string, number> = {};
  const parsers: TaskSummary['parsers'] = {};
  const decodeErrors: Record<string, number> = {};
  for (const d of done) {
    for (const [k, v] of Object.entries(d.counters.processors)) processors[k] = (processors[k] ?? 0) + v;
    for (const [k, v] of Object.entries(d.counters.parsers)) {
      const p = (parsers[k] ??= { records: 0, no_output: 0, summarised: 0 });
      p.records += v.records;
      p.no_output += v.noOutput;
      p.summarised += v.summarised;
      if (v.own) p.counters = addCounters(p.counters ?? {}, v.own);
    }
    for (const [k, v] of Object.entries(d.counters.decodeErrors)) decodeErrors[k] = (decodeErrors[k] ?? 0) + v;
  }
  const frames = sum((d) => d.counters.frames);
  const cpu = sum((d) => d.cpuSec);
  const maxWall = Math.max(...done.map((d) => d.wallSec));
  return {
    task: task.id,
    workers,
    frames,
    records: s.records,
    summarised: Object.values(parsers).reduce((a, p) => a + p.summarised, 0),
    drops: {
      decode: sum((d) => d.counters.decodeDrops),
      filter: sum((d) => d.counters.filterDrops),
      unmatched: sum((d) => d.counters.unmatchedDrops),
      parser_no_output: Object.values(parsers).reduce((a, p) => a + p.no_output, 0),
      processors,
      encode: sum((d) => d.counters.encodeDrops),
      ring_tail: sum((d) => d.counters.ringDrops),
      // The ring drops whole batches; each carries its count of records (its weight in the ring).
      ring_head: s.ring.dropHeadRecords,
      ring_abandoned: s.ring.abandonedRecords,
      sender_expand: s.expand.malformed + s.expand.tooBig,
      reporter_queue: s.reporterDrops.buffer,
      reporter_timeout: s.reporterDrops.timeout,
      // A reporter without delivery counters: what it gave up (output errors, abandoned at a stop).
      reporter_error: s.reporterDrops.error,
      stop_deadline: s.stopAbandoned,
    },
    held_fragments: sum((d) => d.counters.held),
    decode_errors: decodeErrors,
    ip_reassembly: sumRecords(done.map((d) => d.counters.ipReassembly)),
    tcp_reassembly: done.some((d) => d.counters.tcpReassembly) ? sumRecords(done.map((d) => d.counters.tcpReassembly ?? {})) : null,
    flow_registry: registry,
    parsers,
    unmatched_forwarded: sum((d) => d.counters.unmatchedForwarded),
    fast_path_records: sum((d) => d.counters.fastRecords),
    capture_processes: done.map((d) => ({
      index: d.index,
      pid: d.pid,
      frames: d.counters.frames,
      records: d.counters.records,
      cpu_s: d.cpuSec,
      wall_s: d.wallSec,
      pps_per_cpu_s: d.cpuSec > 0 ? d.counters.frames / d.cpuSec : 0,
      ...perProcess(d),
    })),
    pps_per_capture_cpu_s: cpu > 0 ? frames / cpu : 0,
    pps_wall: maxWall > 0 ? frames / maxWall : 0,
    sender: { records: s.records, bytes: s.bytes, cpu_s: s.cpuSec, payload_unread: s.expand.payloadUnread + s.expand.payloadFormat, ...(s.latency ? { latency: s.latency } : {}) },
    senders,
    reporter: s.reporter,
    wall_s: wallSec,
    warnings,
  };
}

function kv(r: Record<string, number>, keys: string[]): string {
  return keys.map((k) => `${k}=${r[k] ?? 0}`).join(' ');
}

function sumRecords(rs: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rs) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
}

const M = (v: number): string => (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : `${(v / 1e3).toFixed(1)} k`);

/**
 * Records a run's reporter gave up on, by cause: not delivered in time,
 * refused or failed, still held at the stop deadline. Not those a full
 * reporter queue shed (`reporter_queue`: the task's backpressure at work);
 * those its format does not carry are no drop at all (`reporter.skipped`).
 */
export function undelivered(s: TaskSummary): { total: number; timedOut: number; failed: number; atStop: number } {
  const timedOut = s.drops.reporter_timeout;
  const failed = s.drops.reporter_error;
  const atStop = s.drops.stop_deadline;
  return { total: timedOut + failed + atStop, timedOut, failed, atStop };
}

/** The coded line of a run whose reporter lost records, null when it lost none. */
export function undeliveredError(s: TaskSummary): OtusError | null {
  const u = undelivered(s);
  if (u.total === 0) return null;
  const by = [u.timedOut > 0 && `${u.timedOut} timed out`, u.failed > 0 && `${u.failed} failed`, u.atStop > 0 && `${u.atStop} still held at the stop deadline`].filter(Boolean).join(', ');
  return new OtusError('OTUS_ERR_UNDELIVERED', `${u.total} of ${s.sender.records} records not delivered by the reporter: ${by}`);
}

export function formatSummary(s: TaskSummary): string {
  const procs = Object.entries(s.drops.processors).map(([k, v]) => ` processor:${k}=${v}`).join('');
  const errs = Object.entries(s.decode_errors).map(([k, v]) => `${k}=${v}`).join(' ');
  const lines = [
    s.capture
      ? `otus capture: task ${s.task}: ${s.capture.interface} (${s.capture.driver}), ${s.workers} capture process(es), ${s.wall_s.toFixed(2)} s; stopped: ${s.capture.stopped}`
      : `otus replay: task ${s.task}: ${s.files?.length ?? 0} file(s), ${s.workers} capture process(es), ${s.wall_s.toFixed(2)} s`,
    `  frames ${s.frames}, records ${s.records} (unmatched forwarded ${s.unmatched_forwarded}, by the fast path ${s.fast_path_records})` +
      (s.summarised > 0 ? `, summarised into parsers' reports ${s.summarised}` : '') +
      `, fragments held ${s.held_fragments}`,
    `  drops: decode=${s.drops.decode} filter=${s.drops.filter} unmatched=${s.drops.unmatched} parser_no_output=${s.drops.parser_no_output}${procs}` +
      ` encode=${s.drops.encode} ring_tail=${s.drops.ring_tail} ring_head=${s.drops.ring_head} ring_abandoned=${s.drops.ring_abandoned} sender_expand=${s.drops.sender_expand}` +
      (s.reporter ? ` reporter_queue=${s.drops.reporter_queue} reporter_timeout=${s.drops.reporter_timeout} reporter_error=${s.drops.reporter_error}` : s.drops.reporter_error ? ` reporter_error=${s.drops.reporter_error}` : '') +
      (s.drops.stop_deadline ? ` stop_deadline=${s.drops.stop_deadline}` : ''),
    `  decode errors: ${errs || 'none'}`,
    `  ip reassembly: ${kv(s.ip_reassembly, ['fragments', 'completed', 'duplicates', 'overlaps', 'discarded', 'timeouts', 'evicted', 'tooLarge', 'invalid'])}`,
    ...(s.tcp_reassembly
      ? [`  tcp reassembly: ${kv(s.tcp_reassembly, ['streams', 'segments', 'bytesDelivered', 'retransmissions', 'outOfOrder', 'gapsSkipped', 'bytesSkipped', 'evictedLru', 'evictedMemory', 'timedOut'])}`]
      : []),
    ...(s.flow_registry ? [`  flow registry: ${kv(s.flow_registry, ['live', 'inserts', 'updates', 'removes', 'evictions', 'expired', 'writesBusy'])}`] : []),
    ...s.capture_processes.map(
      (c) =>
        `  capture process ${c.index}: ${c.frames} frames, ${c.records} records, ${c.cpu_s.toFixed(3)} CPU-s, ${M(c.pps_per_cpu_s)} packets per CPU-second` +
        (c.kernel_packets !== undefined
          ? `; kernel_packets=${c.kernel_packets}${c.outgoing_skipped ? ` outgoing_skipped=${c.outgoing_skipped}` : ''} kernel_drops=${c.kernel_drops} freezes=${c.freezes} blocks=${c.blocks}`
          : '') +
        (c.catchup_waits !== undefined ? `; catch-up waits=${c.catchup_waits} (${c.catchup_waited_ms} ms, ${c.catchup_deadlines} to the deadline; ${c.catchup_quiet} more misses of those flows did not wait)` : ''),
    ),
    `  packets per capture-process CPU-second: ${M(s.pps_per_capture_cpu_s)}; aggregate ${M(s.pps_wall)} packets per second`,
    `  sender: ${s.sender.records} records, ${s.sender.bytes} bytes, ${s.sender.cpu_s.toFixed(3)} CPU-s, payloads unread ${s.sender.payload_unread}` +
      (s.sender.latency ? `; capture → sender latency p50 ${s.sender.latency.p50_us} µs, p99 ${s.sender.latency.p99_us} µs, max ${s.sender.latency.max_us} µs` : ''),
    ...(s.senders.length > 1
      ? s.senders.map(
          (x) =>
            `  sender ${x.index}: ${x.records} records, ${x.cpu_s.toFixed(3)} CPU-s, acked ${x.acked}, in flight ${x.in_flight}; drops ring_head=${x.ring_head} ring_abandoned=${x.ring_abandoned} sender_expand=${x.sender_expand}` +
            ` reporter_queue=${x.reporter_queue} reporter_timeout=${x.reporter_timeout} reporter_error=${x.reporter_error} stop_deadline=${x.stop_deadline}${x.restarts ? `, restarts ${x.restarts}` : ''}`,
        )
      : []),
    ...(s.reporter
      ? [
          `  reporter: acked ${s.reporter.acked}, timed out ${s.reporter.timeout}, in flight ${s.reporter.queued}` +
            (s.reporter.skipped ? `, skipped ${s.reporter.skipped} (its format does not carry them)` : '') +
            `, failed: ${Object.entries(s.reporter.errors).map(([k, v]) => `${k}=${v}`).join(' ') || 'none'}`,
        ]
      : []),
    ...s.warnings.map((w) => `  warning: ${w}`),
  ];
  return lines.join('\n') + '\n';
}
