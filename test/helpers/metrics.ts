// Reading the daemon's Prometheus endpoint in tests: a free port for
// `metrics.listen`, a scrape parsed into samples, promtool's verdict, and
// the exposition compared with a task's summary (docs/control.md counters).

import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A TCP port nobody listens on now (bound and released: another process could take it in between, rarely). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function get(port: number, path: string): Promise<{ status: number; body: string; type: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, body: await r.text(), type: r.headers.get('content-type') ?? '' };
}

/** The samples of a text exposition (format 0.0.4). */
export function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

/** The sum of a metric's samples whose labels include `match`. */
export function sum(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  let n = 0;
  for (const s of samples) if (s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)) n += s.value;
  return n;
}

export const seriesKey = (s: Sample): string => `${s.name}{${Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(',')}}`;

/** promtool check metrics on an exposition: its exit status and what it said. */
export function promtool(text: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

export const havePromtool = (): boolean => spawnSync('sh', ['-c', 'command -v promtool']).status === 0;

/**
 * Every figure of a task's summary that the exposition has, as [what, from
 * the summary, from the exposition] (only the task's own samples).
 */
export function pairs(samples: Sample[], task: string, c: any): [string, number, number][] {
  const t = { task };
  const drop = (layer: string, more: Record<string, string> = {}): number => sum(samples, 'otus_packets_dropped_total', { ...t, layer, ...more });
  const out: [string, number, number][] = [
    ['frames', c.frames, sum(samples, 'otus_packets_captured_total', t)],
    ['records (sender)', c.records, sum(samples, 'otus_sender_records_total', t)],
    ['summarised', c.summarised, sum(samples, 'otus_packets_summarised_total', t)],
    ['sender.records', c.sender.records, sum(samples, 'otus_sender_records_total', t)],
    ['drops.decode', c.drops.decode, drop('decode')],
    ['drops.filter', c.drops.filter, drop('filter')],
    ['drops.unmatched', c.drops.unmatched, drop('unmatched')],
    ['drops.parser_no_output', c.drops.parser_no_output, drop('parser')],
    ['drops.encode', c.drops.encode, drop('encode')],
    ['drops.ring_tail', c.drops.ring_tail, drop('ring_full')],
    ['drops.ring_tail (channel)', c.drops.ring_tail, sum(samples, 'otus_pipeline_channel_drops_total', { ...t, reason: 'ring_full' })],
    ['drops.ring_head', c.drops.ring_head, drop('ring_head')],
    ['drops.ring_head (channel)', c.drops.ring_head, sum(samples, 'otus_pipeline_channel_drops_total', { ...t, reason: 'ring_head' })],
    ['drops.ring_abandoned', c.drops.ring_abandoned, drop('ring_abandoned')],
    ['drops.sender_expand', c.drops.sender_expand, drop('sender_expand')],
    ['drops.reporter_queue', c.drops.reporter_queue, drop('reporter', { reason: 'buffer' })],
    ['drops.reporter_queue (sender buffer)', c.drops.reporter_queue, sum(samples, 'otus_sender_buffer_drops_total', t)],
    ['drops.reporter_timeout', c.drops.reporter_timeout, drop('reporter', { reason: 'timeout' })],
    ['drops.reporter_timeout (reporter)', c.drops.reporter_timeout, sum(samples, 'otus_reporter_timeout_drops_total', t)],
    ['drops.reporter_error', c.drops.reporter_error, drop('reporter', { reason: 'error' })],
    ['drops.reporter_error (reporter)', c.drops.reporter_error, sum(samples, 'otus_reporter_error_drops_total', t)],
    ['drops.stop_deadline', c.drops.stop_deadline, drop('stop_deadline')],
    ['reporter.skipped', c.reporter?.skipped ?? 0, sum(samples, 'otus_reporter_skipped_total', t)],
    ['held_fragments', c.held_fragments, sum(samples, 'otus_packets_reassembled_total', { ...t, reason: 'ip_fragment' })],
  ];
  for (const [p, n] of Object.entries(c.drops.processors as Record<string, number>)) out.push([`drops.processors.${p}`, n, drop('processor', { processor: p })]);
  for (const [code, n] of Object.entries(c.decode_errors as Record<string, number>)) out.push([`decode_errors.${code}`, n, sum(samples, 'otus_decode_errors_total', { ...t, reason: code })]);
  for (const [p, v] of Object.entries(c.parsers as Record<string, { records: number; no_output: number; summarised: number }>)) {
    out.push([`parsers.${p}.records`, v.records, sum(samples, 'otus_packets_parsed_total', { ...t, parser: p })]);
    out.push([`parsers.${p}.summarised`, v.summarised, sum(samples, 'otus_packets_summarised_total', { ...t, parser: p })]);
    out.push([`parsers.${p}.no_output`, v.no_output, drop('parser', { parser: p })]);
  }
  if (c.flow_registry) {
    out.push(['flow_registry.live', c.flow_registry.live, sum(samples, 'otus_flow_registry_entries', t)]);
    out.push(['flow_registry.evictions', c.flow_registry.evictions, sum(samples, 'otus_flow_registry_evictions_total', t)]);
    out.push(['flow_registry.inserts', c.flow_registry.inserts, sum(samples, 'otus_flow_registry_operations_total', { ...t, reason: 'insert' })]);
  }
  for (const p of c.capture_processes as Record<string, number>[]) {
    const l = { ...t, process: `capture-${p.index}` };
    out.push([`capture ${p.index} frames`, p.frames!, sum(samples, 'otus_packets_captured_total', l)]);
    out.push([`capture ${p.index} records`, p.records!, sum(samples, 'otus_pipeline_records_total', l)]);
    out.push([`capture ${p.index} kernel_packets`, p.kernel_packets!, sum(samples, 'otus_capture_kernel_packets_total', l)]);
    out.push([`capture ${p.index} kernel_drops`, p.kernel_drops!, sum(samples, 'otus_capture_kernel_drops_total', l)]);
    out.push([`capture ${p.index} freezes`, p.freezes!, sum(samples, 'otus_capture_kernel_freezes_total', l)]);
    out.push([`capture ${p.index} blocks`, p.blocks!, sum(samples, 'otus_capture_blocks_total', l)]);
    out.push([`capture ${p.index} restarts`, p.restarts!, sum(samples, 'otus_child_restarts_total', l)]);
  }
  if (c.sender.latency) out.push(['sender.latency.records', c.sender.latency.records, sum(samples, 'otus_processing_latency_seconds_count', t)]);
  return out;
}

/**
 * The accounting of a task's records in the exposition: what the capture
 * processes took in (frames, and records stream parsers made) against where
 * it went (reported, dropped by layer, merged by reassembly, summarised into
 * a parser's reports). Their
 * difference is what is in flight: never negative, zero once stopped.
 */
export function accounting(samples: Sample[], task: string): { inflow: number; outflow: number; byLayer: Record<string, number> } {
  const t = { task };
  const byLayer: Record<string, number> = {};
  for (const s of samples) if (s.name === 'otus_packets_dropped_total' && s.labels.task === task) byLayer[s.labels.layer!] = (byLayer[s.labels.layer!] ?? 0) + s.value;
  const inflow = sum(samples, 'otus_packets_captured_total', t) + sum(samples, 'otus_stream_records_total', t);
  const outflow = sum(samples, 'otus_packets_reported_total', t) + Object.values(byLayer).reduce((a, b) => a + b, 0) + sum(samples, 'otus_packets_reassembled_total', t) + sum(samples, 'otus_packets_summarised_total', t);
  return { inflow, outflow, byLayer };
}
