// otusctl's human-readable output: pure functions from the results of
// docs/control.md to text. Tables fit `width` columns (80 by default) by
// truncating their text columns with "…"; numbers are humanised (12.3k, 4.5M),
// sizes in MiB, durations as 3h05m.

import { stringify } from 'yaml';
import type {
  LogLevelResult,
  ProcessStatus,
  ReloadResult,
  StatsResult,
  StatusResult,
  TaskCounters,
  TaskCreateResult,
  TaskListResult,
  TaskStatus,
  TaskStopResult,
  ValidateResult,
} from './protocol.js';

export interface FormatOptions {
  /** Terminal columns (default 80). */
  width?: number;
  /** The current time in ms since the epoch, for uptimes (default Date.now()). */
  now?: number;
}

// ---------------------------------------------------------------- values

/** 9876, 12.3k, 456k, 1.2M, 3.4G; "-" for a missing value. */
export function humanCount(n: unknown): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '-';
  if (Math.abs(n) < 10_000) return String(Math.round(n));
  const units: [string, number][] = [['k', 1e3], ['M', 1e6], ['G', 1e9], ['T', 1e12]];
  for (let i = 0; ; i++) {
    const [unit, div] = units[i];
    const v = n / div;
    if (Math.abs(v) < 999.5 || i === units.length - 1) return (Math.abs(v) < 99.95 ? v.toFixed(1) : v.toFixed(0)) + unit;
  }
}

/** 512 KiB, 84.2 MiB, 1.5 GiB; "-" for a missing value. */
export function humanBytes(n: unknown): string {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return '-';
  const KiB = 1024;
  const MiB = KiB * 1024;
  const GiB = MiB * 1024;
  if (n < MiB) return `${Math.round(n / KiB)} KiB`;
  if (n < GiB) return `${(n / MiB).toFixed(n < 100 * MiB ? 1 : 0)} MiB`;
  return `${(n / GiB).toFixed(1)} GiB`;
}

/** 42s, 4m12s, 3h05m, 2d03h; "-" for a missing or negative value. */
export function humanDuration(seconds: unknown): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.floor(seconds);
  const two = (v: number): string => String(v).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${two(Math.floor((s % 86400) / 3600))}h`;
}

/** Time since an ISO 8601 instant, humanised. */
export function uptime(startedAt: string | null | undefined, now: number): string {
  const t = startedAt ? Date.parse(startedAt) : NaN;
  return Number.isNaN(t) ? '-' : humanDuration(Math.max(0, (now - t) / 1000));
}

/** A value from the daemon as one safe line: control characters would move the terminal's cursor. */
function text(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  const s = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** Cuts `s` to `width` columns, ending with "…" when cut. */
export function truncate(s: string, width: number): string {
  if (s.length <= width) return s;
  return width <= 1 ? '…'.slice(0, width) : s.slice(0, width - 1) + '…';
}

// ---------------------------------------------------------------- tables

export interface Column {
  header: string;
  /** Numbers go right. */
  right?: boolean;
  /** May be cut (down to its header's width) to fit the terminal. */
  shrink?: boolean;
}

const GAP = 2;

/** Each column's width: as wide as its widest cell, shrinkable ones cut (widest first) until the table fits `width`. */
export function columnWidths(cols: Column[], rows: string[][], width: number): number[] {
  const w = cols.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  const floor = cols.map((c) => c.header.length);
  let total = w.reduce((a, b) => a + b, 0) + GAP * (cols.length - 1);
  while (total > width) {
    let widest = -1;
    for (let i = 0; i < cols.length; i++) {
      if (cols[i].shrink && w[i] > floor[i] && (widest < 0 || w[i] > w[widest])) widest = i;
    }
    if (widest < 0) break; // nothing left to cut: the line runs over
    w[widest]--;
    total--;
  }
  return w;
}

/** The table, its cells cut with … to the widths of columnWidths. */
export function table(cols: Column[], rows: string[][], width: number): string {
  const w = columnWidths(cols, rows, width);
  const line = (cells: string[]): string =>
    cols
      .map((c, i) => {
        const v = truncate(cells[i] ?? '', w[i]);
        return c.right ? v.padStart(w[i]) : v.padEnd(w[i]);
      })
      .join(' '.repeat(GAP))
      .trimEnd();
  return [line(cols.map((c) => c.header)), ...rows.map(line)].join('\n') + '\n';
}

/** `label item1 item2 ...` wrapped to `width` between items, continuation lines indented. */
function wrap(label: string, items: string[], width: number): string {
  const lines: string[] = [];
  let cur = label;
  let onLine = 0;
  for (const item of items) {
    if (onLine > 0 && cur.length + 1 + item.length > width) {
      lines.push(cur);
      cur = '   ';
      onLine = 0;
    }
    cur += ' ' + item;
    onLine++;
  }
  lines.push(cur);
  return lines.map((l) => truncate(l, width)).join('\n') + '\n';
}

/** `label: a, b, c` wrapped to `width`. */
function wrapList(label: string, items: string[], width: number): string {
  return wrap(label, items.map((v, i) => (i < items.length - 1 ? v + ',' : v)), width);
}

// ---------------------------------------------------------------- counters

/** Drops by layer, the kernel's first, then the pipeline's in its order; processors as `processor:NAME`. */
export function dropsByLayer(c: TaskCounters | null | undefined): [string, number][] {
  if (!c) return [];
  const out: [string, number][] = [];
  const kernel = (c.capture_processes ?? []).reduce((a, p) => a + (typeof p.kernel_drops === 'number' ? p.kernel_drops : 0), 0);
  if (c.capture_processes?.some((p) => typeof p.kernel_drops === 'number')) out.push(['kernel', kernel]);
  for (const [layer, v] of Object.entries(c.drops ?? {})) {
    if (typeof v === 'number') out.push([layer, v]);
    else if (v !== null && typeof v === 'object') for (const [name, n] of Object.entries(v)) if (typeof n === 'number') out.push([`${layer === 'processors' ? 'processor' : layer}:${name}`, n]);
  }
  return out;
}

function dropTotal(drops: [string, number][]): number {
  return drops.reduce((a, [, n]) => a + n, 0);
}

/** Non-zero drops, largest first: "filter 1.2M, ring_tail 12". */
function dropSummary(drops: [string, number][]): string[] {
  return drops
    .filter(([, n]) => n !== 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${text(k)} ${humanCount(n)}`);
}

function counterLines(c: TaskCounters | null | undefined, width: number): string {
  if (!c) return 'counters: -\n';
  const drops = dropsByLayer(c);
  const head = `frames ${humanCount(c.frames)}, records ${humanCount(c.records)}, drops ${humanCount(dropTotal(drops))}`;
  const nonzero = dropSummary(drops);
  // Several senders: each one's records, deliveries and in flight.
  const senders = (c.senders ?? []).length > 1 ? c.senders!.map((s) => truncate(`sender ${text(s.index)}: records ${humanCount(s.records)}, delivered ${humanCount(s.acked)}, in flight ${humanCount(s.in_flight)}`, width) + '\n').join('') : '';
  return truncate(head, width) + '\n' + senders + (nonzero.length > 0 ? wrapList('drops by layer:', nonzero, width) : '');
}

// ---------------------------------------------------------------- results

function opts(o: FormatOptions): { width: number; now: number } {
  return { width: Math.max(40, o.width ?? 80), now: o.now ?? Date.now() };
}

/** `status`: a few lines about the daemon. */
export function formatStatus(r: StatusResult, o: FormatOptions = {}): string {
  const { width } = opts(o);
  const t = r.tasks ?? ({} as StatusResult['tasks']);
  const lines = [
    `otus:     ${text(r.version)}, pid ${text(r.pid)}, up ${humanDuration(r.uptime_s)} since ${text(r.started_at)}`,
    `node:     ${text(r.node?.id)} (${text(r.node?.hostname)})`,
    `config:   ${text(r.config?.file)} (loaded ${text(r.config?.loaded_at)})`,
    `socket:   ${text(r.socket)}`,
    `tasks:    ${['running', 'degraded', 'failed', 'starting', 'stopping'].map((k) => `${text(t[k as keyof typeof t] ?? 0)} ${k}`).join(', ')}`,
    `workers:  ${text(r.workers?.used)} of ${text(r.workers?.max)} used`,
  ];
  const head = lines.map((l) => truncate(l, width)).join('\n') + '\n' + commandChannel(r.command_channel, width);
  if (!r.log) return head;
  const outputs = Object.entries(r.log.outputs ?? {}).map(([name, o]) => logOutput(name, o, width)).join('');
  return head + truncate(`log:      ${text(r.log.level)}`, width) + '\n' + outputs;
}

/**
 * "command channel: ready, otus-commands at k1:9092, signed", then what came
 * of its messages ("1.2k ok, 3 malformed") and, when not ready, the last
 * error, wrapped.
 */
function commandChannel(c: StatusResult['command_channel'] | undefined, width: number): string {
  const head = `command channel: ${text(c?.state)}`;
  if (c === undefined || c.topic === undefined) return truncate(head, width) + '\n';
  const out = truncate(`${head}, ${text(c.topic)} at ${(c.brokers ?? []).join(',')}, ${c.signed ? 'signed' : 'unsigned'}`, width) + '\n';
  const counts = Object.entries(c.commands ?? {}).filter(([, n]) => n > 0);
  const seen = counts.length > 0 ? wrapList('  messages:', counts.map(([k, n]) => `${humanCount(n)} ${k}`), width) : '';
  const err = c.state !== 'ready' && c.last_error ? wrap('  last error:', text(c.last_error).split(' '), width) : '';
  return out + seen + err;
}

/** A log output, one line, and what went wrong with it wrapped under: "  loki http://...: 2 failed pushes, 120 lines dropped, 64 KiB held, last error: ...". */
function logOutput(name: string, o: Record<string, unknown>, width: number): string {
  const where = typeof o.endpoint === 'string' ? o.endpoint : typeof o.path === 'string' ? o.path : '';
  const n = (k: string): number => (typeof o[k] === 'number' ? (o[k] as number) : 0);
  const trouble: string[] = [];
  if (n('errors') > 0) trouble.push(`${humanCount(n('errors'))} write errors`);
  if (n('failed_pushes') > 0) trouble.push(`${humanCount(n('failed_pushes'))} failed pushes`);
  if (n('dropped_lines') > 0) trouble.push(`${humanCount(n('dropped_lines'))} lines dropped`);
  if (n('buffered_bytes') > 0) trouble.push(`${humanBytes(n('buffered_bytes'))} held`);
  const label = `  ${text(name)}${where ? ' ' + text(where) : ''}`;
  if (trouble.length === 0) return truncate(label, width) + '\n';
  const last = o.last_error ? ['last', 'error:', ...text(o.last_error).split(' ')] : [];
  return wrap(label + ':', [...trouble.map((t, i) => (i < trouble.length - 1 || last.length ? t + ',' : t)).flatMap((t) => t.split(' ')), ...last], width);
}

/** `log-level`: the new level and the one before. */
export function formatLogLevel(r: LogLevelResult, o: FormatOptions = {}): string {
  return truncate(`log level: ${text(r.level)} (was ${text(r.previous)})`, opts(o).width) + '\n';
}

/** `stats`: one row per task. */
export function formatStats(r: StatsResult, o: FormatOptions = {}): string {
  const { width } = opts(o);
  const entries = Object.entries(r.tasks ?? {});
  if (entries.length === 0) return 'no tasks\n';
  const rows = entries.map(([id, c]) => {
    const drops = dropsByLayer(c);
    return [text(id), humanCount(c?.frames), humanCount(c?.records), humanCount(dropTotal(drops)), dropSummary(drops).join(', ') || '-'];
  });
  return table(
    [{ header: 'TASK', shrink: true }, { header: 'FRAMES', right: true }, { header: 'RECORDS', right: true }, { header: 'DROPS', right: true }, { header: 'DROPS BY LAYER', shrink: true }],
    rows,
    width,
  );
}

/** `reload`: what was applied, and what waits for a restart. */
export function formatReload(r: ReloadResult, o: FormatOptions = {}): string {
  const { width } = opts(o);
  const list = (label: string, items: string[] | undefined): string =>
    !items || items.length === 0 ? `${label}: nothing\n` : `${label} (${items.length}):\n` + items.map((i) => truncate(`  ${text(i)}`, width) + '\n').join('');
  return list('applied', r.applied) + list('needs restart', r.needs_restart);
}

/** `task list`: one row per task. */
export function formatTaskList(r: TaskListResult, o: FormatOptions = {}): string {
  const { width, now } = opts(o);
  if (!r.tasks || r.tasks.length === 0) return 'no tasks\n';
  const rows = r.tasks.map((t) => [text(t.id), text(t.state), text(t.interface), text(t.driver), text(t.workers), text(t.restarts), uptime(t.started_at, now)]);
  return table(
    [
      { header: 'ID', shrink: true },
      { header: 'STATE' },
      { header: 'IFACE', shrink: true },
      { header: 'DRIVER', shrink: true },
      { header: 'WORKERS', right: true },
      { header: 'RESTARTS', right: true },
      { header: 'UPTIME', right: true },
    ],
    rows,
    width,
  );
}

/** How a process last ended: "-", the daemon's text ("SIGKILL", "exit code 1", ...), or code/signal and reason. */
export function lastExit(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v !== 'object') return text(v);
  const e = v as { code?: unknown; signal?: unknown; reason?: unknown };
  const how = typeof e.signal === 'string' && e.signal !== '' ? e.signal : typeof e.code === 'number' ? `code ${e.code}` : '';
  const why = typeof e.reason === 'string' ? e.reason : '';
  return text(how && why ? `${how}: ${why}` : how || why || v);
}

function processRow(p: ProcessStatus): string[] {
  return [
    text(p.role),
    text(p.index),
    text(p.pid),
    text(p.cpu),
    text(p.state),
    humanBytes(p.rss_bytes),
    typeof p.cpu_s === 'number' ? p.cpu_s.toFixed(1) : '-',
    text(p.restarts),
    lastExit(p.last_exit),
  ];
}

/** `task status`: a header block, the process table, then the key counters. */
export function formatTaskStatus(r: TaskStatus, o: FormatOptions = {}): string {
  const { width, now } = opts(o);
  const restarts = typeof r.restarts === 'number' ? `${r.restarts} restart${r.restarts === 1 ? '' : 's'}` : '- restarts';
  const head = [
    `task ${text(r.id)}: ${text(r.state)}`,
    `  ${text(r.interface)} (${text(r.driver)}), ${text(r.workers)} workers, up ${uptime(r.started_at, now)} since ${text(r.started_at)}, ${restarts}`,
  ];
  const procs = r.processes ?? [];
  const cols: Column[] = [
    { header: 'ROLE' },
    { header: 'INDEX', right: true },
    { header: 'PID', right: true },
    { header: 'CPU', right: true },
    { header: 'STATE' },
    { header: 'RSS', right: true },
    { header: 'CPU-S', right: true },
    { header: 'RESTARTS', right: true },
    { header: 'LAST EXIT', shrink: true },
  ];
  const rows = procs.map(processRow);
  const procTable = procs.length === 0 ? 'no processes\n' : table(cols, rows, width);
  // A last exit cut to fit its column is printed whole, wrapped, under the table.
  const exitWidth = columnWidths(cols, rows, width)[8];
  const exits = rows
    .filter((row) => row[8].length > exitWidth)
    .map((row) => wrap(`${row[0]} ${row[1]} last exit:`, row[8].split(' '), width))
    .join('');
  const why = r.reason ? wrap('  reason:', text(r.reason).split(' '), width) : '';
  const down = procs.filter((p) => p.role === 'sender' && p.reporter_healthy === false).map((p) => p.index);
  const unhealthy = down.length
    ? wrap('  reporter:', `unhealthy (sender ${down.join(', ')}): its output fails; its records are held up to their delivery timeout, or dropped and counted (the log has the last error)`.split(' '), width)
    : '';
  return head.map((l) => truncate(l, width) + '\n').join('') + why + unhealthy + '\n' + procTable + exits + '\n' + counterLines(r.counters, width);
}

/** `task create`: the task and its state. */
export function formatTaskCreate(r: TaskCreateResult, o: FormatOptions = {}): string {
  return truncate(`task ${text(r.id)}: ${text(r.state)}`, opts(o).width) + '\n';
}

/** `task stop`: the task, its state and its final counters. */
export function formatTaskStop(r: TaskStopResult, o: FormatOptions = {}): string {
  const { width } = opts(o);
  return truncate(`task ${text(r.id)}: ${text(r.state)}`, width) + '\n' + counterLines(r.counters, width);
}

/** `validate`: the effective configuration (defaults filled in) as YAML. */
export function formatValidate(r: ValidateResult): string {
  return stringify(r.effective ?? null);
}
