// The daemon's Prometheus endpoint (`metrics.listen` + `metrics.path`) and
// health checks (/healthz, /readyz). Nothing is counted here: at each scrape
// the supervisor reads every task's stats segment (src/shm/stats.ts: one slot
// per process, written by the process itself), its send ring and its flow
// registry, and turns them into metric families. prom-client formats the
// exposition and adds the supervisor's own process metrics; each family is a
// collector that builds its samples from that read rather than keeping state
// of its own. Labels are bounded: task, process (`sender`, or `sender-<j>`
// with several; `capture-<i>`), sender (its index), layer, parser,
// processor, reporter, reason, kind, state, le; nothing per
// flow or per address. The list, with what each means and where to look when
// one moves, is in README.md ("Metrics") and docs/architecture.md.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { slotParsers } from '../capture-proc/counters.js';
import { latencyBucketEdge, LATENCY_BUCKETS } from '../sender-proc/latency.js';
import { under } from '../shm/stats.js';
import { OtusError } from '../util/errors.js';
import { CHANNEL_STATES, type CommandChannelStatus } from './commands.js';
import type { TaskMetricsView, TaskState } from './task.js';

type Labels = Record<string, string>;
type MetricType = 'counter' | 'gauge' | 'histogram';

interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** One metric family: its samples are rebuilt at each scrape (prom-client calls get()). */
class Family {
  values: Sample[] = [];
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
  ) {}

  add(labels: Labels, value: number, metricName?: string): void {
    this.values.push(metricName === undefined ? { labels, value } : { labels, value, metricName });
  }

  get(): { name: string; help: string; type: MetricType; values: Sample[]; aggregator: string } {
    return { name: this.name, help: this.help, type: this.type, values: this.values, aggregator: this.aggregator };
  }

  reset(): void {
    this.values = [];
  }
}

const TASK_STATES: TaskState[] = ['starting', 'running', 'degraded', 'failed', 'stopping', 'stopped'];

/** Latency histogram bounds: powers of two from 16 µs to 16.8 s, which are edges of the sender's buckets (so each count is exact). */
const LE_EDGES: { le: number; bucket: number }[] = [];
for (let i = 0; i < LATENCY_BUCKETS; i++) {
  const e = latencyBucketEdge(i);
  if ((i % 8) === 7 && e >= 16 && e <= 2 ** 24) LE_EDGES.push({ le: e / 1e6, bucket: i });
}

/** The IP fragment reassembly's counters (ReassemblyStats) that are events, by the name of their `reason`. */
const IP_EVENTS: Record<string, string> = {
  fragments: 'fragment',
  completed: 'completed',
  duplicates: 'duplicate',
  overlaps: 'overlap',
  discarded: 'discarded',
  timeouts: 'timeout',
  evicted: 'evicted',
  tooLarge: 'too_large',
  invalid: 'invalid',
};
const TCP_EVENTS: Record<string, string> = {
  streams: 'stream_opened',
  segments: 'segment',
  retransmissions: 'retransmission',
  overlaps: 'overlap',
  outOfOrder: 'out_of_order',
  gapsSkipped: 'gap_skipped',
  oooDropped: 'out_of_order_dropped',
  keepOverflows: 'kept_bytes_overflow',
  keptDropped: 'kept_dropped_at_hole',
  closedFin: 'closed_fin',
  closedRst: 'closed_rst',
  timedOut: 'timed_out',
  evictedLru: 'evicted_lru',
  evictedMemory: 'evicted_memory',
  flushed: 'flushed',
  probes: 'probed',
  claimed: 'claimed',
};
const REGISTRY_OPS: Record<string, string> = { inserts: 'insert', updates: 'update', removes: 'remove', expired: 'expire', lockTakeovers: 'lock_takeover', writesBusy: 'write_busy' };
/** Parser counters (Parser.counters()) that are state, not events. */
const PARSER_GAUGE = /(^|\.)(open_|active|live|pending)/;

export class Metrics {
  readonly registry = new Registry();
  private readonly families: Family[] = [];
  private readonly f: Record<string, Family> = {};

  /** `source`: the tasks as they are now; `ready`: what /readyz says; `channel`: the command channel's status (null: disabled). */
  constructor(
    private readonly source: () => TaskMetricsView[],
    private readonly ready: () => boolean,
    private readonly channel: () => CommandChannelStatus | null = () => null,
  ) {
    const c = (name: string, help: string): void => this.family(name, help, 'counter');
    const g = (name: string, help: string): void => this.family(name, help, 'gauge');
    // The path of a packet, and where it was dropped.
    c('otus_packets_captured_total', 'Frames the capture process handed to its pipeline (after the kernel filter).');
    c('otus_bytes_captured_total', 'Bytes of the frames the pipeline decoded.');
    c('otus_packets_dropped_total', 'Packets (records, past the parser) dropped, by layer: decode, filter, unmatched, parser, processor, encode, ring_full (capture side); ring_head, ring_abandoned, sender_expand, stop_deadline, reporter (sender side).');
    c('otus_packets_filtered_total', 'The part of otus_packets_dropped_total dropped by configuration: the task filter, unmatched_policy drop, processors.');
    c('otus_packets_reassembled_total', 'Frames taken by reassembly (reason ip_fragment: held until their datagram completes; tcp_segment: into a TCP stream), whose data reaches a later record.');
    c('otus_stream_records_total', 'Records stream parsers made from reassembled TCP streams.');
    c('otus_packets_parsed_total', 'Records each parser made.');
    c('otus_packets_summarised_total', "Packets a parser took into its own summary records without a record each (rtp with stats.per_packet false: its streams' rtp.stats reports); not drops.");
    c('otus_pipeline_records_total', 'Records a capture process committed to the send ring.');
    c('otus_sender_records_total', 'Records the sender read from the ring and handed to the reporter.');
    c('otus_packets_reported_total', 'Records the reporter delivered (written, acknowledged).');
    c('otus_capture_kernel_packets_total', 'Frames the kernel accepted for the capture socket after its filter, drops included.');
    c('otus_capture_kernel_drops_total', 'Frames the kernel dropped because the capture ring was full (before the pipeline: not in otus_packets_captured_total).');
    c('otus_capture_kernel_freezes_total', 'Times the kernel froze the capture ring queue because it was full (af_packet_v3).');
    c('otus_capture_blocks_total', 'Capture ring blocks (af_packet_v3) or batches the capture process walked.');
    g('otus_capture_interface_waiting', '1 while the capture process waits for its interface, down or gone (it captures again once the interface is up).');
    c('otus_capture_interface_waits_total', 'Times the capture interface went down or away and the capture process waited for it.');
    c('otus_capture_interface_wait_seconds_total', 'Time the capture process spent waiting for its interface.');
    c('otus_pipeline_channel_drops_total', 'Records dropped at the send ring between the capture processes and the sender (otus_packets_dropped_total layers ring_full, ring_head, ring_abandoned), by reason.');
    c('otus_sender_buffer_drops_total', 'Records offered to a reporter whose buffer was full (otus_packets_dropped_total layer reporter, reason buffer).');
    c('otus_reporter_timeout_drops_total', 'Records the reporter gave up on a timeout, or held at a stop deadline.');
    c('otus_reporter_error_drops_total', 'Records the reporter lost to an output error.');
    c('otus_reporter_skipped_total', "Records the reporter's format does not carry (hep: not SIP, RTCP or a report; pcap: without a frame); not drops.");
    c('otus_sender_payload_unread_total', 'Records written with a null payload: no parser plugin could read their compact payload.');
    c('otus_decode_errors_total', 'Frames the decoder rejected, by error code (reason).');
    c('otus_label_overflows_total', 'Labels that did not fit in a record.');
    c('otus_parser_events_total', "A parser's own counters (Parser.counters()), by name (reason).");
    g('otus_parser_state', "A parser's own figures that are state now (open connections and the like), by name (reason).");
    c('otus_ip_reassembly_events_total', 'IP fragment reassembly, by event (reason).');
    g('otus_ip_reassembly_pending_datagrams', 'Datagrams whose fragments are held now.');
    g('otus_ip_reassembly_held_bytes', 'Bytes of fragments held now.');
    c('otus_tcp_reassembly_events_total', 'TCP stream reassembly, by event (reason).');
    c('otus_tcp_reassembly_bytes_total', 'TCP stream bytes delivered to parsers, skipped over holes, or kept by a parser and dropped at a hole (reason).');
    g('otus_tcp_reassembly_streams', 'TCP streams tracked now.');
    g('otus_tcp_reassembly_held_bytes', 'TCP stream bytes held now (out of order, and kept by parsers).');
    g('otus_tcp_reassembly_memory_bytes', 'Memory the TCP reassembly holds now, as allocated (bounded by resources.tcp_reassembly_bytes).');
    g('otus_flow_registry_entries', 'Flows in the task\'s flow registry now.');
    g('otus_flow_registry_capacity', 'Slots of the task\'s flow registry.');
    c('otus_flow_registry_evictions_total', 'Flows evicted from a full registry.');
    c('otus_flow_registry_operations_total', 'Flow registry operations, by kind (reason).');
    c('otus_catchup_waits_total', 'Registry misses that waited for the other capture processes.');
    c('otus_catchup_wait_seconds_total', 'Time those waits took.');
    c('otus_catchup_deadlines_total', 'Waits that reached their deadline.');
    c('otus_catchup_quiet_total', 'Misses that did not wait (their flow had waited in the last 2 s).');
    g('otus_pipeline_pending_records', 'Records in a capture process\'s batch, not yet in the ring (in flight).');
    g('otus_reporter_queued_records', 'Records the reporter holds, not yet delivered (in flight).');
    g('otus_pipeline_channel_usage_ratio', 'How full the send ring is (bytes used over its size).');
    g('otus_sender_buffer_usage_ratio', 'How full the reporter\'s buffer is (1: the sender stops reading the ring).');
    g('otus_backpressure_sample_rate', 'Fraction of packets kept under backpressure: Otus drops and counts rather than samples, so 1.');
    this.family('otus_processing_latency_seconds', 'Capture → sender latency of each record: its packet\'s kernel timestamp to the sender reading its batch.', 'histogram');
    // Tasks, processes, plugins.
    g('otus_task_state', 'The task\'s state (1 for the current one).');
    g('otus_process_up', 'The process runs (1; also while a capture process waits for its interface), or is restarting, failed or stopped (0).');
    c('otus_child_restarts_total', 'Times the supervisor restarted the process.');
    g('otus_ready', 'The daemon is ready (1) as /readyz says: every task runs with every child up and beating.');
    g('otus_plugin_loaded', 'The task runs the plugin.');
    g('otus_plugin_health', 'The plugin works: its processes run (and, for the reporter, its output does not fail).');
    g('otus_cpu_usage_ratio', 'CPU time per second of the process over its last heartbeat (1 = one core).');
    c('otus_process_cpu_seconds_total', 'CPU time of the process (user + system).');
    g('otus_memory_usage_bytes', 'Resident memory of the process.');
    g('otus_nodejs_heap_used_bytes', 'V8 heap used by the process.');
    g('otus_nodejs_heap_total_bytes', 'V8 heap size of the process.');
    g('otus_nodejs_external_memory_bytes', 'Memory of the process\'s C++ objects bound to JavaScript (buffers).');
    g('otus_nodejs_eventloop_lag_p50_seconds', 'Median event-loop delay over the last heartbeat.');
    g('otus_nodejs_eventloop_lag_p99_seconds', '99th percentile of the event-loop delay over the last heartbeat.');
    g('otus_nodejs_eventloop_lag_max_seconds', 'Longest event-loop delay over the last heartbeat.');
    c('otus_nodejs_gc_runs_total', 'Garbage collections of the process, by kind.');
    c('otus_nodejs_gc_seconds_total', 'Time in garbage collection, by kind.');
    // The command channel (docs/commands.md).
    c('otus_commands_total', 'Command-channel messages, by what came of them (result): ok, error, duplicate, replayed, other_node, malformed, unknown_command, bad_version, unsigned, bad_signature, stale.');
    g('otus_command_channel_state', 'The command channel\'s state (1 for the current one): connecting, ready, error, stopped.');
    c('otus_command_status_messages_total', 'Messages the command channel published to its status topic (results and heartbeats), and those that failed (result).');
    for (const fam of this.families) this.registry.registerMetric(fam as never);
    collectDefaultMetrics({ register: this.registry, prefix: 'otus_supervisor_' });
    // Gauges that prom-client names with _total, which Prometheus keeps for counters (promtool check metrics says so).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(`otus_supervisor_${name}`);
  }

  private family(name: string, help: string, type: MetricType): void {
    const fam = new Family(name, help, type);
    this.families.push(fam);
    this.f[name] = fam;
  }

  /** The exposition (Prometheus text format 0.0.4). */
  async scrape(): Promise<string> {
    this.collect();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Rebuilds every family's samples from the tasks as they are now. */
  collect(): void {
    for (const fam of this.families) fam.reset();
    this.f.otus_ready!.add({}, this.ready() ? 1 : 0);
    const ch = this.channel();
    if (ch !== null) {
      for (const [result, n] of Object.entries(ch.commands)) this.f.otus_commands_total!.add({ result }, n);
      for (const s of CHANNEL_STATES) this.f.otus_command_channel_state!.add({ state: s }, s === ch.state ? 1 : 0);
      this.f.otus_command_status_messages_total!.add({ result: 'published' }, ch.published);
      this.f.otus_command_status_messages_total!.add({ result: 'failed' }, ch.publish_errors);
    }
    for (const t of this.source()) this.task(t);
  }

  private task(t: TaskMetricsView): void {
    const f = this.f;
    const task = t.id;
    for (const s of TASK_STATES) f.otus_task_state!.add({ task, state: s }, s === t.state ? 1 : 0);
    const parsers = new Set<string>();
    const processors = new Set<string>();
    let captureUp = true;
    for (const p of t.processes) {
      const process = p.name;
      const l = { task, process };
      f.otus_process_up!.add(l, p.state === 'running' || p.state === 'waiting' ? 1 : 0);
      if (p.role === 'capture') f.otus_capture_interface_waiting!.add(l, p.state === 'waiting' ? 1 : 0);
      f.otus_child_restarts_total!.add(l, p.restarts);
      if (p.role === 'capture' && p.state !== 'running') captureUp = false;
      const v = p.slot?.values;
      if (v === undefined) continue;
      const n = (k: string): number => v.get(k) ?? 0;
      this.node(l, v, t.state !== 'stopped');
      if (p.role === 'capture') {
        const drop = (layer: string, value: number, extra: Labels = {}): void => f.otus_packets_dropped_total!.add({ ...l, layer, ...extra }, value);
        f.otus_packets_captured_total!.add(l, n('frames'));
        f.otus_bytes_captured_total!.add(l, n('frameBytes'));
        drop('decode', n('decodeDrops'));
        drop('filter', n('filterDrops'));
        drop('unmatched', n('unmatchedDrops'));
        for (const name of slotParsers(p.slot!)) {
          parsers.add(name);
          drop('parser', n(`parsers.${name}.noOutput`), { parser: name });
          f.otus_packets_parsed_total!.add({ ...l, parser: name }, n(`parsers.${name}.records`));
          f.otus_packets_summarised_total!.add({ ...l, parser: name }, n(`parsers.${name}.summarised`));
          for (const [k, x] of Object.entries(under(v, `parsers.${name}.own.`))) {
            (PARSER_GAUGE.test(k) ? f.otus_parser_state : f.otus_parser_events_total)!.add({ ...l, parser: name, reason: k }, x);
          }
        }
        for (const [name, x] of Object.entries(under(v, 'processors.'))) {
          processors.add(name);
          drop('processor', x, { processor: name });
          f.otus_packets_filtered_total!.add({ ...l, reason: 'processor', processor: name }, x);
        }
        drop('encode', n('encodeDrops'));
        drop('ring_full', n('ringDrops'));
        f.otus_packets_filtered_total!.add({ ...l, reason: 'filter' }, n('filterDrops'));
        f.otus_packets_filtered_total!.add({ ...l, reason: 'unmatched' }, n('unmatchedDrops'));
        f.otus_pipeline_channel_drops_total!.add({ ...l, reason: 'ring_full' }, n('ringDrops'));
        f.otus_packets_reassembled_total!.add({ ...l, reason: 'ip_fragment' }, n('held'));
        f.otus_packets_reassembled_total!.add({ ...l, reason: 'tcp_segment' }, n('streamSegments'));
        f.otus_stream_records_total!.add(l, n('streamRecords'));
        f.otus_pipeline_records_total!.add(l, n('records'));
        f.otus_pipeline_pending_records!.add(l, n('pending'));
        f.otus_label_overflows_total!.add(l, n('labelOverflows'));
        f.otus_capture_kernel_packets_total!.add(l, n('stream.kernelPackets'));
        f.otus_capture_kernel_drops_total!.add(l, n('stream.kernelDrops'));
        f.otus_capture_kernel_freezes_total!.add(l, n('stream.freezes'));
        f.otus_capture_blocks_total!.add(l, n('stream.blocks'));
        f.otus_capture_interface_waits_total!.add(l, n('stream.interfaceWaits'));
        f.otus_capture_interface_wait_seconds_total!.add(l, n('stream.interfaceWaitMs') / 1000);
        for (const [code, x] of Object.entries(under(v, 'decodeErrors.'))) f.otus_decode_errors_total!.add({ ...l, reason: code }, x);
        const ip = under(v, 'ipReassembly.');
        for (const [k, reason] of Object.entries(IP_EVENTS)) f.otus_ip_reassembly_events_total!.add({ ...l, reason }, ip[k] ?? 0);
        f.otus_ip_reassembly_pending_datagrams!.add(l, ip.pending ?? 0);
        f.otus_ip_reassembly_held_bytes!.add(l, ip.memoryBytes ?? 0);
        const tcp = under(v, 'tcpReassembly.');
        if (Object.keys(tcp).length > 0) {
          for (const [k, reason] of Object.entries(TCP_EVENTS)) f.otus_tcp_reassembly_events_total!.add({ ...l, reason }, tcp[k] ?? 0);
          f.otus_tcp_reassembly_bytes_total!.add({ ...l, reason: 'delivered' }, tcp.bytesDelivered ?? 0);
          f.otus_tcp_reassembly_bytes_total!.add({ ...l, reason: 'skipped' }, tcp.bytesSkipped ?? 0);
          f.otus_tcp_reassembly_bytes_total!.add({ ...l, reason: 'kept_dropped' }, tcp.keptBytesDropped ?? 0);
          f.otus_tcp_reassembly_streams!.add(l, tcp.active ?? 0);
          f.otus_tcp_reassembly_held_bytes!.add(l, tcp.bytesHeld ?? 0);
          f.otus_tcp_reassembly_memory_bytes!.add(l, tcp.memoryHeld ?? 0);
        }
        if (v.has('catchUp.waits')) {
          f.otus_catchup_waits_total!.add(l, n('catchUp.waits'));
          f.otus_catchup_wait_seconds_total!.add(l, n('catchUp.waited_ms') / 1000);
          f.otus_catchup_deadlines_total!.add(l, n('catchUp.deadlines'));
          f.otus_catchup_quiet_total!.add(l, n('catchUp.quiet'));
        }
      } else {
        this.sender(t, l, String(p.index), n, v);
      }
    }
    for (const p of t.processes) {
      const ring = p.ring;
      if (p.role !== 'sender' || ring === null) continue;
      // A ring's drops are its reader's: counted under the sender that reads it.
      const l = { task, process: p.name };
      f.otus_packets_dropped_total!.add({ ...l, layer: 'ring_head' }, ring.dropHeadWeight);
      f.otus_packets_dropped_total!.add({ ...l, layer: 'ring_abandoned' }, ring.abandonedWeight);
      f.otus_pipeline_channel_drops_total!.add({ ...l, reason: 'ring_head' }, ring.dropHeadWeight);
      f.otus_pipeline_channel_drops_total!.add({ ...l, reason: 'ring_abandoned' }, ring.abandonedWeight);
      f.otus_pipeline_channel_usage_ratio!.add({ task, sender: String(p.index) }, ring.dataBytes > 0 ? ring.used / ring.dataBytes : 0);
    }
    const senders = t.processes.filter((p) => p.role === 'sender');
    f.otus_plugin_loaded!.add({ task, reporter: t.reporter }, 1);
    // Healthy while every sender runs and its reporter says so.
    const healthy = senders.every((p) => p.state === 'running' && p.slot?.values.get('reporter.healthy') === 1);
    f.otus_plugin_health!.add({ task, reporter: t.reporter }, senders.length > 0 && healthy ? 1 : 0);
    const reg = t.registry;
    if (reg !== null) {
      f.otus_flow_registry_entries!.add({ task }, reg.live);
      f.otus_flow_registry_capacity!.add({ task }, reg.capacity);
      f.otus_flow_registry_evictions_total!.add({ task }, reg.evictions);
      for (const [k, reason] of Object.entries(REGISTRY_OPS)) f.otus_flow_registry_operations_total!.add({ task, reason }, (reg as unknown as Record<string, number>)[k] ?? 0);
    }
    f.otus_backpressure_sample_rate!.add({ task }, 1);
    for (const p of parsers) {
      f.otus_plugin_loaded!.add({ task, parser: p }, 1);
      f.otus_plugin_health!.add({ task, parser: p }, captureUp ? 1 : 0);
    }
    for (const p of processors) {
      f.otus_plugin_loaded!.add({ task, processor: p }, 1);
      f.otus_plugin_health!.add({ task, processor: p }, captureUp ? 1 : 0);
    }
  }

  /** One sender's figures, each with its `sender` label (its index: `senders` in the task). */
  private sender(t: TaskMetricsView, l: Labels, sender: string, n: (k: string) => number, v: Map<string, number>): void {
    const f = this.f;
    const task = t.id;
    const reporter = t.reporter;
    const r = { task, reporter, sender };
    f.otus_packets_dropped_total!.add({ ...l, layer: 'sender_expand' }, n('expand.malformed') + n('expand.tooBig'));
    f.otus_packets_dropped_total!.add({ ...l, layer: 'stop_deadline' }, n('stopAbandoned'));
    for (const reason of ['buffer', 'timeout', 'error']) f.otus_packets_dropped_total!.add({ ...l, layer: 'reporter', reporter, reason }, n(`reporter.drops.${reason}`));
    f.otus_sender_buffer_drops_total!.add(r, n('reporter.drops.buffer'));
    f.otus_reporter_timeout_drops_total!.add(r, n('reporter.drops.timeout'));
    f.otus_reporter_error_drops_total!.add(r, n('reporter.drops.error'));
    f.otus_reporter_skipped_total!.add(r, n('reporter.skipped'));
    f.otus_sender_records_total!.add({ task, sender }, n('records'));
    f.otus_packets_reported_total!.add(r, n('reporter.acked'));
    f.otus_reporter_queued_records!.add(r, n('reporter.queued'));
    f.otus_sender_buffer_usage_ratio!.add(r, n('reporter.usage'));
    f.otus_sender_payload_unread_total!.add({ task, sender }, n('expand.payloadUnread') + n('expand.payloadFormat'));
    if (v.has('latency.count')) {
      const h = f.otus_processing_latency_seconds!;
      let cum = 0;
      let b = 0;
      for (const { le, bucket } of LE_EDGES) {
        for (; b <= bucket; b++) cum += v.get(`latency.b.${b}`) ?? 0;
        h.add({ task, sender, le: String(le) }, cum, 'otus_processing_latency_seconds_bucket');
      }
      h.add({ task, sender, le: '+Inf' }, n('latency.count'), 'otus_processing_latency_seconds_bucket');
      h.add({ task, sender }, n('latency.sumUs') / 1e6, 'otus_processing_latency_seconds_sum');
      h.add({ task, sender }, n('latency.count'), 'otus_processing_latency_seconds_count');
    }
  }

  /** The process's own figures (src/util/node-stats.ts); `now`: its gauges too (not for a stopped task). */
  private node(l: Labels, v: Map<string, number>, now: boolean): void {
    const f = this.f;
    const n = (k: string): number => v.get(k) ?? 0;
    if (!v.has('node.cpu_seconds')) return;
    f.otus_process_cpu_seconds_total!.add(l, n('node.cpu_seconds'));
    for (const [kind, x] of Object.entries(under(v, 'node.gc_runs.'))) f.otus_nodejs_gc_runs_total!.add({ ...l, kind }, x);
    for (const [kind, x] of Object.entries(under(v, 'node.gc_seconds.'))) f.otus_nodejs_gc_seconds_total!.add({ ...l, kind }, x);
    if (!now) return;
    f.otus_cpu_usage_ratio!.add(l, n('node.cpu_ratio'));
    f.otus_memory_usage_bytes!.add(l, n('node.rss_bytes'));
    f.otus_nodejs_heap_used_bytes!.add(l, n('node.heap_used_bytes'));
    f.otus_nodejs_heap_total_bytes!.add(l, n('node.heap_total_bytes'));
    f.otus_nodejs_external_memory_bytes!.add(l, n('node.external_bytes'));
    f.otus_nodejs_eventloop_lag_p50_seconds!.add(l, n('node.eventloop_lag_p50_seconds'));
    f.otus_nodejs_eventloop_lag_p99_seconds!.add(l, n('node.eventloop_lag_p99_seconds'));
    f.otus_nodejs_eventloop_lag_max_seconds!.add(l, n('node.eventloop_lag_max_seconds'));
  }
}

/** What /readyz answers: ready, or the reasons it is not. */
export interface Readiness {
  ready: boolean;
  problems: string[];
  tasks: Record<string, { state: TaskState; problems: string[] }>;
}

/**
 * The HTTP server on `metrics.listen`: GET `path` (the exposition), /healthz
 * (the supervisor answers) and /readyz (every task running and every child
 * beating: 200, else 503 with the reasons). Anything else is 404.
 */
export class MetricsServer {
  private server: Server | null = null;
  /** Scrapes served, and the last one's size in bytes. */
  readonly stats = { scrapes: 0, lastBytes: 0 };

  constructor(
    private readonly listen: string,
    private readonly path: string,
    private readonly metrics: Metrics,
    private readonly readiness: () => Readiness,
    private readonly log: Logger,
  ) {}

  /** Host and port of `HOST:PORT` or `[IPv6]:PORT`. */
  static address(listen: string): { host: string; port: number } {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]+)$/.exec(listen);
    if (m === null) throw new OtusError('OTUS_ERR_CONFIG', `metrics.listen ${JSON.stringify(listen)}: expected HOST:PORT or [IPv6]:PORT`);
    return { host: m[1] ?? m[2]!, port: Number(m[3]) };
  }

  async start(): Promise<void> {
    const { host, port } = MetricsServer.address(this.listen);
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    server.maxHeadersCount = 50;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new OtusError('OTUS_ERR_CONFIG', `metrics.listen ${this.listen}: cannot listen: ${e.code === 'EADDRINUSE' ? 'address in use' : e.message}`)),
      );
      server.listen(port, host, () => resolve());
    });
    server.on('error', (e) => this.log.error({ err: e.message }, 'metrics server error'));
    this.server = server;
  }

  /** The port it listens on (useful with port 0). */
  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (s === null) return;
    this.server = null;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.reply(res, 405, 'application/json', JSON.stringify({ error: 'method not allowed: use GET' }), { allow: 'GET, HEAD' });
    try {
      if (url === this.path) {
        const body = await this.metrics.scrape();
        this.stats.scrapes++;
        this.stats.lastBytes = Buffer.byteLength(body);
        return this.reply(res, 200, this.metrics.contentType, body);
      }
      if (url === '/healthz') return this.reply(res, 200, 'application/json', JSON.stringify({ status: 'ok', pid: process.pid, uptime_s: Math.round(process.uptime()) }));
      if (url === '/readyz') {
        const r = this.readiness();
        return this.reply(res, r.ready ? 200 : 503, 'application/json', JSON.stringify(r));
      }
      this.reply(res, 404, 'application/json', JSON.stringify({ error: `not found: ${url}; try ${this.path}, /healthz or /readyz` }));
    } catch (e) {
      this.log.error({ err: e instanceof Error ? e.message : String(e) }, 'metrics request failed');
      this.reply(res, 500, 'application/json', JSON.stringify({ error: e instanceof Error ? e.message : String(e) }));
    }
  }

  private reply(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }
}
