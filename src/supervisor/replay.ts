// `otus replay`: a task over capture files through the real multi-process
// path (design §5.1). The supervisor validates the task and its plugins
// (failing before anything is forked), hashes every frame with the
// symmetric flow hash to the capture process the kernel's fanout would have
// given it, forks the sender (which creates the task's send ring) and N
// capture processes (each running the task's pipeline into the ring), waits
// for them, then lets the sender drain and collects everyone's counters
// into one summary.

import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCapture } from '../capture-file/open.js';
import { loadTaskFile, type TaskSpec } from '../config/task.js';
import { Decoder } from '../decode/decoder.js';
import { defaultDecoderOptions } from '../decode/options.js';
import { CaptureFilter } from '../pipeline/capture-filter.js';
import { instantiateTaskPlugins } from '../pipeline/from-task.js';
import { symmetricFlowHash } from '../pipeline/flow-hash.js';
import { createRegistry } from '../plugin/builtins.js';
import { FlowRegistry } from '../shm/registry.js';
import { ReplayClock } from '../shm/replay-clock.js';
import type { RecordFormat } from '../plugin/types.js';
import { OtusError, type OtusErrorCode } from '../util/errors.js';
import type { CaptureDone, CaptureStart, ChildError, FrameShare, SenderDone, SenderReady, SenderStart } from './replay-messages.js';

export interface ReplayOptions {
  taskFile: string;
  files: string[];
  /** null: task.capture.workers, or 1 when that is absent or 0. */
  workers: number | null;
  /** File path, `-` for stdout, or null for the task's reporter (stdout NDJSON when it has none). */
  out: string | null;
  pluginDirs: string[];
  node?: Record<string, string>;
  /** Ring data area (power of two). */
  ringBytes?: number;
  /** Flow registry slots (created when the task has parsers). */
  flowSlots?: number;
  /** Keep capture order across capture processes (default true; see src/shm/replay-clock.ts). */
  ordered?: boolean;
}

export interface ReplaySummary {
  task: string;
  workers: number;
  files: string[];
  frames: number;
  records: number;
  drops: {
    decode: number;
    filter: number;
    unmatched: number;
    parser_no_output: number;
    processors: Record<string, number>;
    encode: number;
    ring_tail: number;
    ring_head: number;
    /** Batches (ring records) a dead capture process left half-written. */
    ring_abandoned: number;
    /** Ring records the sender could not expand: malformed, or bigger than its output room. */
    sender_expand: number;
  };
  held_fragments: number;
  decode_errors: Record<string, number>;
  /** Summed over capture processes (`pending`, `memoryBytes`, `active`, `bytesHeld` are what was left at the end). */
  ip_reassembly: Record<string, number>;
  tcp_reassembly: Record<string, number> | null;
  /** The task's flow registry at the end (null without parsers). */
  flow_registry: Record<string, number> | null;
  /** `counters`: the parser's own counters (Parser.counters()), summed over capture processes. */
  parsers: Record<string, { records: number; no_output: number; counters?: Record<string, unknown> }>;
  unmatched_forwarded: number;
  capture_processes: { index: number; pid: number; frames: number; records: number; cpu_s: number; wall_s: number; pps_per_cpu_s: number; ring_waits: number }[];
  /** Frames over the summed CPU seconds of the capture processes. */
  pps_per_capture_cpu_s: number;
  /** Frames over the longest capture process's wall time (aggregate rate). */
  pps_wall: number;
  /** `payload_unread`: records whose compact payload no parser plugin could read (written with a null payload). */
  sender: { records: number; bytes: number; cpu_s: number; payload_unread: number };
  wall_s: number;
  warnings: string[];
}

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

function childError(e: ChildError): OtusError {
  return new OtusError(e.code as OtusErrorCode, e.message);
}

/** Resolves with the child's first 'done' message; rejects on an error message or an exit without one. */
function awaitDone<T>(child: ChildProcess, what: string): Promise<T> {
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

function awaitReady(child: ChildProcess): Promise<SenderReady> {
  return new Promise((res, rej) => {
    const onMsg = (m: { type: string }): void => {
      if (m.type === 'ready') {
        child.off('message', onMsg);
        res(m as SenderReady);
      } else if (m.type === 'error') rej(childError(m as ChildError));
    };
    child.on('message', onMsg);
    child.once('exit', (code, sig) => rej(new OtusError('OTUS_ERR_WORKER', `sender exited (${sig ?? `code ${code}`}) before its ring was ready`)));
  });
}

/**
 * Each capture process's share of each file ([file][process]), by the
 * symmetric flow hash as kernel fanout would share the traffic out.
 */
export function assignFrames(files: string[], workers: number): FrameShare[][] {
  const decoder = new Decoder(defaultDecoderOptions());
  return files.map((file) => {
    const reader = openCapture(file);
    if (workers === 1) {
      while (reader.next());
      return [{ frames: reader.framesRead, index: null, offset: null }];
    }
    // pcap records need nothing from earlier ones, so a process can jump to its own (pcapng blocks can: walk those).
    const seekable = reader.format === 'pcap';
    // Typed arrays that double as they fill: 12 bytes per frame (a number[] took 8 or more, twice while it grew).
    const index = Array.from({ length: workers }, () => new Uint32Array(1024));
    const offset = Array.from({ length: workers }, () => new Float64Array(seekable ? 1024 : 0));
    const n = new Array<number>(workers).fill(0);
    const f = reader.frame;
    let at = reader.bytesRead;
    for (let i = 0; reader.next(); i++) {
      const w = symmetricFlowHash(decoder.decode(f)) % workers;
      const k = n[w]++;
      if (k === index[w].length) {
        index[w] = grown(index[w], new Uint32Array(2 * k));
        if (seekable) offset[w] = grown(offset[w], new Float64Array(2 * k));
      }
      index[w][k] = i;
      if (seekable) offset[w][k] = at;
      at = reader.bytesRead;
    }
    return index.map((ix, w) => ({ frames: reader.framesRead, index: ix.slice(0, n[w]), offset: seekable ? offset[w].slice(0, n[w]) : null }));
  });
}

function grown<T extends Uint32Array | Float64Array>(a: T, b: T): T {
  b.set(a);
  return b;
}

function reporterFor(o: ReplayOptions, task: TaskSpec): { name: string; config: Record<string, unknown>; where: string } {
  if (o.out === '-') return { name: 'console', config: {}, where: '--out -' };
  if (o.out !== null) return { name: 'file', config: { path: resolve(o.out), format: 'json' }, where: `--out ${o.out}` };
  if (task.reporter) return { name: task.reporter.plugin, config: task.reporter.config, where: task.reporter.where };
  return { name: 'console', config: {}, where: 'default reporter' };
}

export async function runReplay(o: ReplayOptions): Promise<ReplaySummary> {
  const t0 = process.hrtime.bigint();
  const taskFile = resolve(o.taskFile);
  const task = loadTaskFile(taskFile);
  const workers = o.workers ?? (task.workers && task.workers > 0 ? task.workers : 1);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--workers: expected 1 to 64, got ${workers}`);
  }
  if (o.files.length === 0) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', 'name at least one capture file');
  const files = o.files.map((f) => resolve(f));
  const pluginDirs = o.pluginDirs.map((d) => resolve(d));
  const node = o.node ?? { hostname: os.hostname() };
  const warnings: string[] = [];

  // Fail here, before forking, on anything the task or its plugins get wrong.
  const registry = await createRegistry(pluginDirs);
  const plugins = await instantiateTaskPlugins(registry, task, node, -1);
  for (const p of [...plugins.parsers, ...plugins.processors]) await p.stop?.();
  const filter = new CaptureFilter(task.filter, `${task.file}: task.filter`);
  const rep = reporterFor(o, task);
  const repPlugin = registry.require('reporter', rep.name, rep.where);
  const repConfig = registry.checkConfig(repPlugin, rep.config, rep.where) as Record<string, unknown>;
  const format: RecordFormat = repConfig.format === 'protobuf' ? 'protobuf' : 'json';
  // OTUS_ERR_CAPTURE_IO / _NOT_A_CAPTURE now, not in a child; and a filter libpcap cannot compile for a file's link type.
  for (const f of files) {
    const r = openCapture(f);
    if (!filter.empty && r.next()) filter.program(r.frame.linkType);
  }

  const shares = assignFrames(files, workers);
  const ringTask = `${task.id.slice(0, 40)}.replay${process.pid}`;
  // The task's flow registry (ADR-008): created here, opened by every capture process.
  const flows = task.parsers.length > 0 ? FlowRegistry.create(ringTask, { capacity: o.flowSlots ?? 65536 }) : null;
  // Capture order across processes matters once a parser correlates through the registry.
  const clock = flows !== null && workers > 1 && o.ordered !== false ? ReplayClock.create(ringTask, workers) : null;
  const setup = { taskFile, pluginDirs, node, ringTask, flows: flows !== null, ordered: clock !== null };
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'));
  const children: ChildProcess[] = [];
  const killAll = (): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  try {
    const sender = fork(here('../sender-proc/replay.js'), [], { serialization: 'advanced', execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(sender);
    const senderDone = awaitDone<SenderDone>(sender, 'sender');
    senderDone.catch(() => undefined);
    const ready = awaitReady(sender);
    sender.send({
      type: 'start',
      ...setup,
      reporter: rep.name,
      reporterConfig: repConfig,
      reporterWhere: rep.where,
      ringBytes: o.ringBytes ?? 64 << 20,
    } satisfies SenderStart);
    await Promise.race([ready, senderDone]);

    const captures: Promise<CaptureDone>[] = [];
    for (let i = 0; i < workers; i++) {
      const c = fork(here('../capture-proc/replay.js'), [], { serialization: 'advanced', execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(c);
      captures.push(awaitDone<CaptureDone>(c, `capture process ${i}`));
      c.send({ type: 'start', ...setup, index: i, files, shares: shares.map((s) => s[i]), format } satisfies CaptureStart);
    }
    const done = await Promise.all(captures);
    sender.send({ type: 'drain' });
    const s = await senderDone;
    const registry = flows ? { ...flows.stats() } : null;
    return summarize(task, workers, files, done, s, Number(process.hrtime.bigint() - t0) / 1e9, warnings, registry);
  } finally {
    killAll();
    flows?.close();
    clock?.close();
  }
}

/** Sums parser counters: numbers add, objects merge recursively, anything else keeps the first value. */
function addCounters(into: Record<string, unknown>, from: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (typeof v === 'number') into[k] = (typeof cur === 'number' ? cur : 0) + v;
    else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      into[k] = addCounters(cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>) : {}, v as Record<string, unknown>);
    } else if (!(k in into)) into[k] = v;
  }
  return into;
}

function summarize(
  task: TaskSpec,
  workers: number,
  files: string[],
  done: CaptureDone[],
  s: SenderDone,
  wallSec: number,
  warnings: string[],
  registry: Record<string, number> | null,
): ReplaySummary {
  done.sort((a, b) => a.index - b.index);
  const sum = (f: (d: CaptureDone) => number): number => done.reduce((a, d) => a + f(d), 0);
  const processors: Record<string, number> = {};
  const parsers: ReplaySummary['parsers'] = {};
  const decodeErrors: Record<string, number> = {};
  for (const d of done) {
    for (const [k, v] of Object.entries(d.counters.processors)) processors[k] = (processors[k] ?? 0) + v;
    for (const [k, v] of Object.entries(d.counters.parsers)) {
      const p = (parsers[k] ??= { records: 0, no_output: 0 });
      p.records += v.records;
      p.no_output += v.noOutput;
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
    files,
    frames,
    records: s.records,
    drops: {
      decode: sum((d) => d.counters.decodeDrops),
      filter: sum((d) => d.counters.filterDrops),
      unmatched: sum((d) => d.counters.unmatchedDrops),
      parser_no_output: sum((d) => Object.values(d.counters.parsers).reduce((a, p) => a + p.noOutput, 0)),
      processors,
      encode: sum((d) => d.counters.encodeDrops),
      ring_tail: sum((d) => d.counters.ringDrops),
      // The ring drops whole batches; in records that is what capture processes committed and the sender never saw.
      ring_head: Math.max(0, sum((d) => d.counters.records) - (s.expand.records + s.expand.malformed + s.expand.tooBig)),
      ring_abandoned: s.ring.abandoned,
      sender_expand: s.expand.malformed + s.expand.tooBig,
    },
    held_fragments: sum((d) => d.counters.held),
    decode_errors: decodeErrors,
    ip_reassembly: sumRecords(done.map((d) => d.counters.ipReassembly)),
    tcp_reassembly: done.some((d) => d.counters.tcpReassembly) ? sumRecords(done.map((d) => d.counters.tcpReassembly ?? {})) : null,
    flow_registry: registry,
    parsers,
    unmatched_forwarded: sum((d) => d.counters.unmatchedForwarded),
    capture_processes: done.map((d) => ({
      index: d.index,
      pid: d.pid,
      frames: d.counters.frames,
      records: d.counters.records,
      cpu_s: d.cpuSec,
      wall_s: d.wallSec,
      pps_per_cpu_s: d.cpuSec > 0 ? d.counters.frames / d.cpuSec : 0,
      ring_waits: d.ringWaits,
    })),
    pps_per_capture_cpu_s: cpu > 0 ? frames / cpu : 0,
    pps_wall: maxWall > 0 ? frames / maxWall : 0,
    sender: { records: s.records, bytes: s.bytes, cpu_s: s.cpuSec, payload_unread: s.expand.payloadUnread + s.expand.payloadFormat },
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

export function formatSummary(s: ReplaySummary): string {
  const procs = Object.entries(s.drops.processors).map(([k, v]) => ` processor:${k}=${v}`).join('');
  const errs = Object.entries(s.decode_errors).map(([k, v]) => `${k}=${v}`).join(' ');
  const lines = [
    `otus replay: task ${s.task}: ${s.files.length} file(s), ${s.workers} capture process(es), ${s.wall_s.toFixed(2)} s`,
    `  frames ${s.frames}, records ${s.records} (unmatched forwarded ${s.unmatched_forwarded}), fragments held ${s.held_fragments}`,
    `  drops: decode=${s.drops.decode} filter=${s.drops.filter} unmatched=${s.drops.unmatched} parser_no_output=${s.drops.parser_no_output}${procs}` +
      ` encode=${s.drops.encode} ring_tail=${s.drops.ring_tail} ring_head=${s.drops.ring_head} ring_abandoned=${s.drops.ring_abandoned} sender_expand=${s.drops.sender_expand}`,
    `  decode errors: ${errs || 'none'}`,
    `  ip reassembly: ${kv(s.ip_reassembly, ['fragments', 'completed', 'duplicates', 'overlaps', 'discarded', 'timeouts', 'evicted', 'tooLarge', 'invalid'])}`,
    ...(s.tcp_reassembly
      ? [`  tcp reassembly: ${kv(s.tcp_reassembly, ['streams', 'segments', 'bytesDelivered', 'retransmissions', 'outOfOrder', 'gapsSkipped', 'bytesSkipped', 'evictedLru', 'evictedMemory', 'timedOut'])}`]
      : []),
    ...(s.flow_registry ? [`  flow registry: ${kv(s.flow_registry, ['live', 'inserts', 'updates', 'removes', 'evictions', 'expired', 'writesBusy'])}`] : []),
    ...s.capture_processes.map(
      (c) => `  capture process ${c.index}: ${c.frames} frames, ${c.records} records, ${c.cpu_s.toFixed(3)} CPU-s, ${M(c.pps_per_cpu_s)} packets per CPU-second`,
    ),
    `  packets per capture-process CPU-second: ${M(s.pps_per_capture_cpu_s)}; aggregate ${M(s.pps_wall)} packets per second`,
    `  sender: ${s.sender.records} records, ${s.sender.bytes} bytes, ${s.sender.cpu_s.toFixed(3)} CPU-s, payloads unread ${s.sender.payload_unread}`,
    ...s.warnings.map((w) => `  warning: ${w}`),
  ];
  return lines.join('\n') + '\n';
}
