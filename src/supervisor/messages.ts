// Messages between a task's supervisor (`otus replay`: src/supervisor/replay.ts;
// `otus capture --task`: src/supervisor/live.ts), its capture processes
// (src/capture-proc/replay.ts, live.ts) and its sender
// (src/sender-proc/main.ts), over child_process IPC with advanced
// serialization (typed arrays cross as they are).

import type { CatchUpStats } from '../capture-proc/catch-up.js';
import type { CaptureOptions } from '../capture/capturer.js';
import type { TaskSpec } from '../config/task.js';
import type { ChildLogSetup } from '../log/logger.js';
import type { RecordFormat, ReporterCounters } from '../plugin/types.js';
import type { LatencySummary } from '../sender-proc/latency.js';
import { asOtusError, OtusError } from '../util/errors.js';

export interface ReplayPluginSetup {
  /** The task, validated once by the supervisor (children do not parse it again). */
  task: TaskSpec;
  pluginDirs: string[];
  node: Record<string, string>;
  /** Ring name token (the ring is /otus-<ringTask>-ring). */
  ringTask: string;
  /** Which of the task's send rings (`senders`) the process writes or reads: /otus-<ringTask>-ring<i> beyond 0. Absent: 0. */
  ring?: number;
  /** The task has parsers: a flow registry /otus-<ringTask>-flows exists for them to open. */
  flows?: boolean;
  /** Several capture processes keep capture order through /otus-<ringTask>-clock (src/shm/capture-clock.ts). */
  ordered?: boolean;
  /** Log through the supervisor (src/log/logger.ts childLogger); absent: the child logs nothing (replay). */
  log?: ChildLogSetup;
}

/** A capture process's frames in one file. */
export interface FrameShare {
  /** Frames in the file (all processes'). */
  frames: number;
  /** Its frames' indices in the file, ascending; null: every frame (one capture process). */
  index: Uint32Array | null;
  /** Their records' byte offsets, when the reader can start at any record (pcap); null: walk the file (pcapng). */
  offset: Float64Array | null;
}

export interface CaptureStart extends ReplayPluginSetup {
  type: 'start';
  index: number;
  files: string[];
  /** Per file, this process's frames. */
  shares: FrameShare[];
  format: RecordFormat;
  /** The run's capture processes. */
  workers: number;
}

/** A live capture process: stream `index` of the driver, pinned to `cpu` (-1: not pinned). */
export interface LiveCaptureStart extends ReplayPluginSetup {
  type: 'start';
  index: number;
  /** The task's capture processes. */
  workers: number;
  cpu: number;
  driver: string;
  options: CaptureOptions;
  format: RecordFormat;
  /** Run the task's filter in the pipeline (the driver cannot filter in the kernel: xdp). */
  userFilter: boolean;
  /** The task's capture clock (several capture processes sharing a flow registry): position 0 and the catch-up window, in ms. */
  clock: { baseMs: number; windowMs: number } | null;
  /** Send a `beat` this often, and publish everything in the stats slot (0: never). */
  heartbeatMs: number;
  /** The task has a stats segment (/otus-<ringTask>-stats): the process keeps its counters in slot 1 + index. */
  stats: boolean;
  /** The TCP reassembly's memory bound (resources.tcp_reassembly_bytes), or null for its default. */
  tcpMaxBytes?: number | null;
  /**
   * When the stream fails because its interface went down or away, wait for
   * it and capture again (the daemon), instead of ending (`otus capture --task`).
   */
  waitForInterface?: boolean;
}

/** A live child is alive and its event loop turns (the supervisor's watchdog); its counters are in its stats slot. */
export interface Beat {
  type: 'beat';
  /** A capture process waiting for its interface: why (`interface eth1 is down`); null once it captures again; absent: no change. */
  waiting?: string | null;
}

export interface LiveCaptureReady {
  type: 'ready';
  index: number;
  cpu: number;
}

export interface LiveCaptureDone {
  type: 'done';
  index: number;
  pid: number;
  cpu: number;
  /** Why it stopped: `stopped` (asked), `supervisor gone`, `error: ...`. */
  why: string;
  /** The stream failed (socket error, interface gone), or null. */
  failure: string | null;
  counters: PipelineCounters;
  /** The capture stream's counters (StreamStats): blocks walked, and the kernel's packets and drops. */
  /** outgoingSkipped: on lo, the outgoing copies the kernel counted in kernelPackets and the stream skipped (StreamStats). */
  /** interfaceWaits, interfaceWaitMs: times the interface went down or away and the process waited for it, and for how long (every stream it opened, summed). */
  stream: {
    frames: number;
    blocks: number;
    kernelPackets: number;
    kernelDrops: number;
    freezes: number;
    ifDrops: number;
    outgoingSkipped: number;
    interfaceWaits: number;
    interfaceWaitMs: number;
  };
  /** Registry misses that waited for the other capture processes (src/capture-proc/catch-up.ts), null without a clock. */
  catchUp: CatchUpStats | null;
  cpuSec: number;
  wallSec: number;
}

export interface SenderStart extends ReplayPluginSetup {
  type: 'start';
  /** Reporter plugin name and its config (already validated by the supervisor). */
  reporter: string;
  reporterConfig: Record<string, unknown>;
  reporterWhere: string;
  ringBytes: number;
  /** Live: measure each record's capture → sender latency (its packet's kernel timestamp to the read of its batch). */
  latency?: boolean;
  /** Send a `beat` this often, and publish the counters in the stats slot (0: never). */
  heartbeatMs?: number;
  /** The task has a stats segment: the sender keeps its counters in slot `statsSlot` (absent: 0). */
  stats?: boolean;
  statsSlot?: number;
  /** A restarted sender, or a task's further sender: the reporter continues (appends to) the output. */
  resumed?: boolean;
}

export interface PipelineCounters {
  frames: number;
  decodeDrops: number;
  held: number;
  filterDrops: number;
  unmatchedForwarded: number;
  /** Records a parser's fast path wrote (src/pipeline/fast-path.ts). */
  fastRecords: number;
  unmatchedDrops: number;
  encodeDrops: number;
  ringDrops: number;
  records: number;
  bytes: number;
  /**
   * `summarised`: packets taken into the parser's summary records without a
   * record of their own (Parser.summarised); `own`: the parser's counters()
   * (numbers or objects of them), when it has any.
   */
  parsers: Record<string, { records: number; noOutput: number; summarised: number; own?: Record<string, unknown> }>;
  processors: Record<string, number>;
  decodeErrors: Record<string, number>;
  labelOverflows: number;
  /** IP fragment reassembly (ReassemblyStats) and TCP stream reassembly (TcpStreamStats; absent when no parser asked for it). */
  ipReassembly: Record<string, number>;
  tcpReassembly: Record<string, number> | null;
}

export interface CaptureDone {
  type: 'done';
  index: number;
  pid: number;
  counters: PipelineCounters;
  /** CPU seconds (user + system, whole process) from the first frame to the last commit. */
  cpuSec: number;
  wallSec: number;
  /** Times the process paused because the ring was over half full (replay is lossless by pacing). */
  ringWaits: number;
}

export interface SenderReady {
  type: 'ready';
  ringName: string;
}

/** The reporter's output is gone for good (stdout closed by its reader): nothing more can be written. */
export interface SenderOutputGone {
  type: 'output-gone';
}

export interface SenderDone {
  type: 'done';
  records: number;
  bytes: number;
  /** In ring records (batches), except dropHeadRecords and abandonedRecords: the wire records in them. */
  ring: { dropHead: number; abandoned: number; discarded: number; dropTail: number; records: number; dropHeadRecords: number; abandonedRecords: number };
  /** The sender's expansion of wire records (src/pipeline/expand.ts ExpandStats). */
  expand: { records: number; malformed: number; tooBig: number; payloadUnread: number; payloadFormat: number };
  /** Records the reporter accepted and then gave up (output failed, or abandoned at a stop deadline). */
  reporterDropped: number;
  /** reporterDropped by cause: its buffer was full, a timeout (or the stop deadline), an output error. */
  reporterDrops: ReporterDrops;
  /** Records the reporter delivered (written, acknowledged). */
  reporterAcked: number;
  /** Records still in the ring when the sender gave up at the stop deadline (abandon). */
  stopAbandoned: number;
  cpuSec: number;
  /** Capture → sender latency (live runs), else null. */
  latency: LatencySummary | null;
  /** The reporter's delivery counters (Reporter.counters: kafka), else null. */
  reporter: ReporterCounters | null;
  /** The reporter's last connection or delivery error (kafka, hep...), when it has one; absent from a stats slot's copy. */
  lastError?: string | null;
  /** A file output renamed or deleted under the reporter and made again at its path, that many times. */
  outputReopened?: number;
}

export interface ReporterDrops {
  buffer: number;
  timeout: number;
  error: number;
}

export interface ChildError {
  type: 'error';
  code: string;
  message: string;
}

/**
 * A child's last word: its error as a ChildError (an OtusError, or the addon's
 * coded error, as it is; anything else OTUS_ERR_WORKER naming `who`; never a
 * stack), sent to the supervisor, then exit 2.
 */
export function exitWithError(e: unknown, who: string): void {
  const o = asOtusError(e);
  const err: ChildError =
    e instanceof OtusError ? { type: 'error', code: o.code, message: o.message } : { type: 'error', code: o.code === 'OTUS_ERR_INTERNAL' ? 'OTUS_ERR_WORKER' : o.code, message: `${who}: ${o.message}` };
  if (process.connected) process.send!(err, () => process.exit(2));
  else process.exit(2);
}
