// Plugin interfaces (plugins/README.md). A plugin module declares itself, then binds:
// a PluginDefinition carries the metadata the registry validates at load time
// (name, version, kind, labels emitted, config JSON Schema) and an init that
// turns one validated config into an instance of its kind. Built-ins are
// registered statically (builtins.ts); third-party ones are JS modules loaded
// from directories (loader.ts) and validated the same way.

import type { TaskSpec } from '../config/task.js';
import type { DecodedPacket } from '../decode/packet.js';
import type { RecordMeta } from '../pipeline/expand.js';
import type { FastFrame } from '../pipeline/fast-path.js';
import type { KeyTracker } from '../pipeline/label-keys.js';
import type { OutputRecord, PayloadReader, ProcessorView, RecordFormat } from '../pipeline/record.js';
import type { TcpChunk } from '../reassembly/tcp-stream.js';
import type { FlowRegistry } from '../shm/registry.js';

export type PluginKind = 'capturer' | 'parser' | 'processor' | 'reporter';
export const PLUGIN_KINDS: readonly PluginKind[] = ['capturer', 'parser', 'processor', 'reporter'];

export interface PluginMeta {
  /** Lowercase, `[a-z][a-z0-9_-]*`; unique per kind. */
  readonly name: string;
  /** Semantic version, `1.2.3` or `1.2.3-pre`. */
  readonly version: string;
  readonly kind: PluginKind;
  /** Label keys the plugin emits (`[a-z0-9][a-z0-9.-]*`; a trailing `*` for a family, e.g. `sip.*`). */
  readonly labels: readonly string[];
  /** JSON Schema of the plugin's `config:`; compiled once by ajv at registration. */
  readonly configSchema: object;
  readonly description?: string;
}

/** What init gets: its own config subtree, validated and with schema defaults applied. */
export interface PluginContext<C = unknown> {
  readonly config: C;
  /** Node metadata from the global config (`otus.node`): ip, hostname, dc, env. */
  readonly node: Readonly<Record<string, string>>;
  /** The task id. */
  readonly taskId: string;
  /** Index of this capture process (0-based); -1 in the sender or supervisor. */
  readonly worker: number;
  /** In a capture process: the task's capture processes, among which the flows are split (a parser's per-flow tables can be sized by its share); absent elsewhere. */
  readonly workers?: number;
  /** In a sender: its index among the task's senders (`senders: N`), 0 for the first; absent elsewhere. */
  readonly sender?: number;
  /** In a sender: the task, so a reporter can see what its parsers make (the pcap reporter: whether sip.call records end calls). */
  readonly task?: TaskSpec;
  /** Where this plugin's config sits, for messages: `FILE: task.processors[0].config`. */
  readonly where: string;
  /**
   * The task's flow registry, shared by all its capture processes;
   * null where there is none (validation in the supervisor, tools without a
   * task). Parsers that correlate (SIP → RTP) register and look up here.
   */
  readonly flows?: FlowRegistry | null;
  /** A reporter continuing one whose process died (a restarted sender): its output carries on (a file is appended to, not truncated). */
  readonly resumed?: boolean;
}

/** Lifecycle hooks every instance may have (plugins/README.md). */
export interface PluginInstance {
  start?(): void | Promise<void>;
  stop?(): void | Promise<void>;
  /** Throws (or rejects) when unhealthy. */
  health?(): void | Promise<void>;
}

/**
 * Parser (plugins/README.md). canHandle must be cheap (ports, a table
 * lookup); the first parser that accepts gets handle(). handle fills the
 * pipeline's one reused record (fillEnvelope, protocol, labels, payload) and
 * returns true to emit it, false for "nothing to output". Neither allocates
 * on a fast path; neither throws on a malformed packet (count it instead).
 */
export interface Parser extends PluginInstance {
  readonly protocol: string;
  canHandle(p: DecodedPacket): boolean;
  handle(p: DecodedPacket, out: OutputRecord, hasTs: boolean, tsDigits: number): boolean;
  /**
   * Optional: true after a handle() that returned false because the packet
   * went into the parser's own summary records instead (rtp with
   * `stats.per_packet: false`: its stream's statistics). The pipeline counts
   * such a packet as summarised, not as a packet with no output (a drop).
   */
  readonly summarised?: boolean;
  /**
   * The parser's own counters (rejections and malformations by reason...):
   * numbers, or objects of them. Read at the end of a run, not per packet;
   * `otus replay` sums them over capture processes into its summary.
   */
  counters?(): Record<string, unknown>;
  /**
   * Optional: lines for the run's summary warnings, given this parser's
   * counters summed over the capture processes: what it skipped and which
   * setting would take it (rtp: media no SDP announced).
   */
  hints?(counters: Record<string, unknown>): string[];
  /**
   * Optional fast path (src/pipeline/fast-path.ts; plugins/README.md): the wire
   * record of a frame of a flow the parser already knows, written straight
   * into the batch from the frame, with no DecodedPacket or OutputRecord.
   * The pipeline offers it the frames of the simple shape (FastFrame:
   * Ethernet with at most one 802.1Q tag, IPv4 without options or
   * fragmentation, UDP) before decoding and before any canHandle, when the
   * task's processors allow it (fastPlan); it reads the UDP payload, writes
   * the processors' labels after its own (f.writeExtra), and calls f.load()
   * for the rest once it takes the frame. It must take only frames the
   * generic path would give it (flows it has itself been given: no earlier
   * parser wanted them), and write what encodeWire would.
   * Writes from word k of W (the batch's words) before word `end`; returns
   * the word after the record, 0 to leave the frame to the generic path
   * (nothing counted or noted), -1 when it needs more room, or -2 when it
   * took the frame into its summary records without a record of its own
   * (counted as a handle() that returned false with `summarised`).
   */
  fastFrame?(f: FastFrame, W: Int32Array, k: number, end: number, keys: KeyTracker): number;
  /**
   * Optional: records not made from the packet at hand (rtp's per-stream
   * reports), emitted through `out` between frames: every 1024 frames, at
   * the end of each ring block, and at the end of input with `final` (state
   * ends: emit everything). Not called while a record is being built.
   */
  drain?(out: RecordEmitter, final: boolean): void;
  /**
   * Every label key a fastFrame record can carry (with fastFrame). The
   * pipeline runs a task's processors on the fast path only when none of
   * them reads these keys (Processor.fastVerdict).
   */
  readonly fastKeys?: readonly string[];
  /**
   * Optional: the parser makes records beside the one per packet (sip: a
   * call's record at its end). The pipeline hands it, once, an emitter that
   * counts under this parser; it may emit in handle() or handleStream()
   * before filling the packet's own record (the record is the pipeline's
   * one reused record: reset, fill, emit), and in flush().
   */
  attach?(out: RecordEmitter): void;
  /**
   * Optional: capture time has reached (sec, nsec) (the last frame this
   * pipeline saw, of any protocol), at the end of each capture block and
   * before flush: end what timed out. May emit.
   */
  tick?(sec: number, nsec: number): void;
  /** Optional: end of input (a replay's end, a capture's stop): emit what is still pending. */
  flush?(): void;
}

/**
 * What a stream parser emits through: the pipeline's one reused record and
 * a call that runs the processors on it, encodes it and commits it. A
 * parser may emit several records per chunk (several PDUs in one segment).
 */
export interface RecordEmitter {
  /** Reset before filling (record.reset()), then fillEnvelope, protocol, labels, payload. */
  readonly record: OutputRecord;
  /** Processors → encode → ring. False when dropped (counted by the pipeline). */
  emit(): boolean;
}

/**
 * A parser that wants TCP reassembled (docs/architecture.md, "TCP stream reassembly"): it
 * declares ports; segments of TCP connections with one of them on either
 * side go to src/reassembly/tcp-stream.ts instead of canHandle/handle, and
 * the parser gets each direction's bytes in order. It frames its own PDUs:
 * handleStream returns the bytes it consumed, and the ones it did not are
 * handed back in front of the next bytes (a PDU split over segments needs no
 * buffer of its own). `c.gap` says bytes are missing before this chunk (the
 * bytes it kept from before the hole are gone: resynchronise on what
 * follows). A record's time is its message's first byte's: after
 * fillEnvelope(c.packet, ...), `c.stamp(record, offsetOfTheMessage)`.
 *
 * With `tcp.heuristic` and probeStream, connections on other ports are
 * offered too: probeStream sees a connection's first payload (either
 * direction) once, and true makes it this parser's.
 */
export interface StreamParser extends Parser {
  readonly tcp: { readonly ports: readonly number[]; readonly heuristic?: boolean };
  handleStream(c: TcpChunk, out: RecordEmitter): number;
  /** The first payload of a TCP connection on a port no parser declared: claim it? Cheap, allocation-free, asked once per connection. */
  probeStream?(buf: Uint8Array, off: number, len: number): boolean;
  /**
   * The connection ended (FIN both ways, RST, timeout, eviction), after its
   * last bytes were delivered: drop per-stream state, and emit what only the
   * end completes (a body delimited by the close). `end.packet` is a direction-0
   * envelope, `end.reverse` a direction-1 one.
   */
  streamEnd?(streamId: number, end: TcpChunk, out: RecordEmitter): void;
}

export function isStreamParser(p: Parser): p is StreamParser {
  const t = (p as Partial<StreamParser>).tcp;
  return typeof t === 'object' && t !== null && Array.isArray(t.ports) && typeof (p as Partial<StreamParser>).handleStream === 'function';
}

/**
 * Processor (plugins/README.md): sees the envelope and labels only.
 * Returning the view (or anything truthy) passes the record on; returning
 * nothing (undefined, null, false) drops it, counted per processor.
 * Lower priority runs first; equal priorities keep task order.
 */
export interface Processor extends PluginInstance {
  readonly priority: number;
  process(rec: ProcessorView): unknown;
  /**
   * What process() does to every record that has none of the label keys
   * `reads`, whatever else it holds: drop it, or pass it with the labels
   * `adds` appended. With this, records of the pipeline's fast path, whose
   * keys are known (Parser.fastKeys), get the processor's verdict without
   * being built for it. Absent or null: the processor must see each record,
   * and the task has no fast path.
   */
  fastVerdict?(): FastVerdict | null;
}

export interface FastVerdict {
  /** Label keys whose presence or value can change what the processor does. */
  readonly reads: readonly string[];
  readonly drop: boolean;
  /** Labels added as they would be (labels.ts entries E[0, words), their key ids in order), or null. */
  readonly adds: SharedLabels | null;
}

export interface SharedLabels {
  readonly E: Int32Array;
  readonly words: number;
  readonly ids: Int32Array;
}

/** One encoded record as the sender hands it to a reporter. Valid only during report(). */
export interface EncodedRecord {
  readonly format: RecordFormat;
  readonly buf: Uint8Array;
  readonly off: number;
  readonly len: number;
  /** The record's labels and flow as the sender read them (Kafka keys and headers); absent outside the sender. */
  readonly meta?: RecordMeta;
}

export type { RecordFormat } from '../pipeline/record.js';

/**
 * Reporter (docs/reporters.md): runs in the sender process, reads everything.
 * report() must never block the event loop (the sender would stop hearing
 * stop and signals): hold a bounded amount, say so with `blocked`, count what
 * is given up in `dropped`; never throw an output error out of report().
 */
export interface Reporter extends PluginInstance {
  /** The record encoding this reporter wants the capture processes to produce. */
  readonly format: RecordFormat;
  /** Reads only `rec.meta` (the wire record: labels, flow, raw frame): the sender hands it records unexpanded (`len` 0). */
  readonly wireOnly?: boolean;
  /** Valid only during the call: copy what is kept. */
  report(rec: EncodedRecord): void;
  /** Waits until what was reported is delivered or given up (bounded by the reporter's own timeout). */
  flush(): Promise<void>;
  /** The client's queue is full: the sender stops reading the ring until writable() resolves. */
  readonly blocked?: boolean;
  writable?(): Promise<void>;
  /** Records accepted but given up (queue full, timed out, failed, abandoned). */
  readonly dropped?: number;
  /** Gives up what is pending now (the stop deadline); returns how many records. */
  abandon?(): number;
  /**
   * Delivery counters: acknowledged, timed out, failed by reason (`queue_full`,
   * `abandoned`, the client's error names), in flight now.
   */
  counters?(): ReporterCounters;
  /** True once the output's reader has gone for good (stdout closed by `| head`): the sender tells the supervisor, and replay ends quietly. */
  readonly outputGone?: boolean;
}

export interface ReporterCounters {
  acked: number;
  timeout: number;
  errors: Record<string, number>;
  queued: number;
  /**
   * Records its format does not carry (hep: not SIP, RTCP or a report; pcap: without a frame): handed to it,
   * neither delivered nor lost; what a task sends it decides. Absent when none.
   */
  skipped?: number;
  /** The reporter's own counts beside delivery (rotating files: completed, compressed, removed...), shown in the summary as they are. */
  detail?: Record<string, number>;
}

/** Capturer: a capture driver as a plugin (the built-in drivers are in src/capture/). */
export interface Capturer extends PluginInstance {
  streams(): number;
}

export interface InstanceOfKind {
  capturer: Capturer;
  parser: Parser;
  processor: Processor;
  reporter: Reporter;
}

export interface PluginDefinition<K extends PluginKind = PluginKind, C = any> {
  readonly meta: PluginMeta & { readonly kind: K };
  /** Builds one instance from a validated config. May be async (third-party plugins). */
  init(ctx: PluginContext<C>): InstanceOfKind[K] | Promise<InstanceOfKind[K]>;
  /** Parsers whose payloads have a compact form (Payload.writeCompact): its reader, made once per sender. */
  payloadReader?(): PayloadReader;
}
