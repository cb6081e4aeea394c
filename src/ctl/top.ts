// `otusctl top`: a live view of the daemon's tasks, refreshed every
// second. Each refresh asks `status`, `task.list` and `task.status` of every
// task on one connection; rates are differences between the newest sample
// and the oldest of the last WINDOW_MS. Children copy their counters to the
// task's stats segment at moments of their own (a capture process at each
// ring block, the sender each heartbeat: 1 s by default), so a rate over one
// refresh would jump as copies and refreshes slide past each other: a
// capture process's packets/s uses its own clock at its last copy
// (`wall_s`, copied with its frames), which makes it exact; the task's and
// the sender's are over the window, where a copy more or less is a small
// part. TopModel and
// renderTop are pure (test/ctl/top.test.ts); topLoop drives the terminal.

import type { ControlClient } from './client.js';
import { CtlRefused } from './client.js';
import { type Column, dropsByLayer, humanBytes, humanCount, humanDuration, table, truncate } from './format.js';
import type { StatusResult, TaskCounters, TaskListResult, TaskStatus } from './protocol.js';

/** Rates are over this much of the past (the newest sample against the oldest within it). */
export const WINDOW_MS = 5000;

export type SortKey = 'name' | 'pps' | 'drops' | 'cpu' | 'rss' | 'restarts';

/** Key → sort order; shown in the header. */
export const SORT_KEYS: Record<string, SortKey> = { n: 'name', p: 'pps', d: 'drops', c: 'cpu', m: 'rss', r: 'restarts' };

export interface TopSample {
  /** When it was taken (ms, monotonic). */
  at: number;
  status: StatusResult | null;
  tasks: TaskStatus[];
}

export interface ProcRow {
  name: string;
  role: string;
  index: number;
  pid: number | null;
  state: string;
  /** Capture: frames/s; sender: records/s. null until there are two samples. */
  pps: number | null;
  /** Capture: kernel drops/s; sender: records it could not expand, per second. */
  dropsPs: number | null;
  /** Capture: frames; sender: records. */
  total: number;
  cpuPct: number | null;
  rss: number | null;
  restarts: number;
}

export interface TaskRow {
  id: string;
  state: string;
  iface: string;
  driver: string;
  startedAt: string | null;
  restarts: number;
  reason: string | null;
  pps: number | null;
  recordsPs: number | null;
  dropsPs: number | null;
  /** Per layer, non-zero rates only, largest first. */
  dropsByLayer: [string, number][];
  /** 0..1, or null when unknown. */
  ringFill: number | null;
  registry: { live: number; capacity: number } | null;
  procs: ProcRow[];
}

export interface TopView {
  status: StatusResult | null;
  tasks: TaskRow[];
  /** Seconds the rates are over (0: one sample so far). */
  windowS: number;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** A counter's growth (never negative: a task re-created under its id starts again). */
const grew = (now: number, then: number): number => Math.max(0, now - then);

function captureOf(c: TaskCounters | null | undefined, index: number): Record<string, unknown> | undefined {
  return c?.capture_processes?.find((p) => p.index === index);
}

export class TopModel {
  private samples: TopSample[] = [];

  add(s: TopSample): void {
    this.samples.push(s);
    // Keep the newest sample older than the window too: the rates span the whole window.
    while (this.samples.length > 2 && this.samples[1]!.at <= s.at - WINDOW_MS) this.samples.shift();
  }

  view(): TopView {
    const now = this.samples[this.samples.length - 1];
    if (now === undefined) return { status: null, tasks: [], windowS: 0 };
    const tasks = now.tasks.map((t) => this.taskRow(t, now));
    const first = this.samples[0]!;
    return { status: now.status, tasks, windowS: (now.at - first.at) / 1000 };
  }

  /** The oldest sample within the window holding the same task (same id, same start). */
  private before(t: TaskStatus, now: TopSample): { s: TopSample; t: TaskStatus } | null {
    for (const s of this.samples) {
      if (s === now) return null;
      const old = s.tasks.find((x) => x.id === t.id && x.started_at === t.started_at);
      if (old) return { s, t: old };
    }
    return null;
  }

  private taskRow(t: TaskStatus, now: TopSample): TaskRow {
    const prev = this.before(t, now);
    const dt = prev ? (now.at - prev.s.at) / 1000 : 0;
    const rate = (a: number, b: number): number | null => (prev && dt > 0 ? grew(a, b) / dt : null);
    const c = t.counters;
    const pc = prev?.t.counters;
    const layersNow = dropsByLayer(c);
    const layersThen = new Map(dropsByLayer(pc));
    const layerRates: [string, number][] = prev && dt > 0 ? layersNow.map(([k, v]) => [k, grew(v, layersThen.get(k) ?? 0) / dt]) : [];
    const dropsPs = prev && dt > 0 ? layerRates.reduce((a, [, v]) => a + v, 0) : null;
    const reg = c?.flow_registry as Record<string, number> | null | undefined;
    const ring = t.ring;

    const procs = (t.processes ?? []).map((p): ProcRow => {
      const old = prev?.t.processes?.find((x) => x.role === p.role && x.index === p.index);
      // CPU seconds are the current process's: across a restart there is nothing to compare.
      const cpuPct = old && old.pid === p.pid && dt > 0 && typeof p.cpu_s === 'number' && typeof old.cpu_s === 'number' ? (grew(p.cpu_s, old.cpu_s) / dt) * 100 : null;
      const several = (c?.senders?.length ?? 0) > 1;
      const base = { name: p.role === 'sender' ? (several ? `sender ${p.index}` : 'sender') : `capture ${p.index}`, role: p.role, index: p.index, pid: p.pid, state: p.state, cpuPct, rss: p.rss_bytes, restarts: num(p.restarts) };
      if (p.role === 'sender') {
        // Its own figures when the task has several senders, else the task's.
        const own = (x: TaskCounters | null | undefined): { records: number; expand: number } => {
          const s = several ? x?.senders?.find((y) => y.index === p.index) : undefined;
          return s ? { records: num(s.records), expand: num(s.sender_expand) } : { records: num(x?.sender?.records), expand: num(x?.drops?.sender_expand) };
        };
        const a = own(c);
        const b = own(pc);
        return { ...base, pps: rate(a.records, b.records), dropsPs: rate(a.expand, b.expand), total: a.records };
      }
      const cp = captureOf(c, p.index);
      const cpOld = captureOf(pc, p.index);
      // Each counter set is from the process's last beat, stamped with its own wall clock: exact rates.
      const dw = grew(num(cp?.wall_s), num(cpOld?.wall_s));
      const own = (k: string): number | null => (prev === null ? null : dw > 0 ? grew(num(cp?.[k]), num(cpOld?.[k])) / dw : 0);
      return { ...base, pps: own('frames'), dropsPs: own('kernel_drops'), total: num(cp?.frames) };
    });
    return {
      id: t.id,
      state: t.state,
      iface: t.interface,
      driver: t.driver,
      startedAt: t.started_at,
      restarts: num(t.restarts),
      reason: t.reason,
      pps: rate(num(c?.frames), num(pc?.frames)),
      recordsPs: rate(num(c?.records), num(pc?.records)),
      dropsPs,
      dropsByLayer: layerRates.filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]),
      ringFill: ring && ring.data_bytes > 0 ? ring.used_bytes / ring.data_bytes : null,
      registry: reg && typeof reg.capacity === 'number' ? { live: num(reg.live), capacity: reg.capacity } : null,
      procs,
    };
  }
}

export interface RenderOptions {
  width: number;
  /** Rows of the terminal; lines beyond are cut (the last says how many). 0: no limit. */
  height: number;
  sort: SortKey;
  /** Wall-clock now (ms), for uptimes and the clock in the header. */
  now: number;
}

const rate = (v: number | null): string => (v === null ? '-' : humanCount(v));
const pct = (v: number | null): string => (v === null ? '-' : `${(v * 100).toFixed(1)}%`);

/** 84M, 1.2G: an RSS in four columns or so. */
function shortBytes(n: number | null): string {
  if (n === null || !Number.isFinite(n) || n <= 0) return '-';
  const MiB = 1024 * 1024;
  return n < 1024 * MiB ? `${Math.round(n / MiB)}M` : `${(n / (1024 * MiB)).toFixed(1)}G`;
}

function procKey(p: ProcRow, k: SortKey): number {
  switch (k) {
    case 'pps':
      return p.pps ?? -1;
    case 'drops':
      return p.dropsPs ?? -1;
    case 'cpu':
      return p.cpuPct ?? -1;
    case 'rss':
      return p.rss ?? -1;
    case 'restarts':
      return p.restarts;
    default:
      return 0;
  }
}

function taskKey(t: TaskRow, k: SortKey): number {
  switch (k) {
    case 'pps':
      return t.pps ?? -1;
    case 'drops':
      return t.dropsPs ?? -1;
    case 'restarts':
      return t.restarts;
    default:
      return t.procs.reduce((a, p) => a + Math.max(0, procKey(p, k)), 0);
  }
}

const byName = (a: ProcRow, b: ProcRow): number => (a.role === b.role ? a.index - b.index : a.role === 'sender' ? -1 : 1);

const PROC_COLS: Column[] = [
  { header: 'PROCESS' },
  { header: 'PID', right: true },
  { header: 'STATE', shrink: true },
  { header: 'PKTS/S', right: true },
  { header: 'DROPS/S', right: true },
  { header: 'TOTAL', right: true },
  { header: 'CPU%', right: true },
  { header: 'RSS', right: true },
  { header: 'RESTARTS', right: true },
];

/** The screen: a header, then per task a summary and its processes. Every line fits `width`. */
export function renderTop(v: TopView, o: RenderOptions): string[] {
  const w = Math.max(40, o.width);
  const st = v.status;
  const counts = st?.tasks;
  const running = counts ? `${num(counts.running)} running${num(counts.degraded) ? `, ${num(counts.degraded)} degraded` : ''}${num(counts.failed) ? `, ${num(counts.failed)} failed` : ''}` : '-';
  const clock = new Date(o.now).toISOString().slice(11, 19);
  const lines = [
    `otus top  ${st?.node?.id ?? '-'}  up ${humanDuration(st?.uptime_s)}  tasks ${running}  workers ${st?.workers?.used ?? '-'}/${st?.workers?.max ?? '-'}  ${clock}`,
    'keys: n name  p pkts/s  d drops/s  c cpu  m rss  r restarts  q quit',
    `sorted by ${o.sort}${v.windowS > 0 ? `; rates over the last ${Math.round(v.windowS)} s` : ''}`,
  ];
  const tasks = [...v.tasks].sort((a, b) => (o.sort === 'name' ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : taskKey(b, o.sort) - taskKey(a, o.sort)));
  if (tasks.length === 0) lines.push('', 'no tasks');
  for (const t of tasks) {
    const up = t.startedAt ? humanDuration(Math.max(0, (o.now - Date.parse(t.startedAt)) / 1000)) : '-';
    const reg = t.registry ? `registry ${pct(t.registry.capacity > 0 ? t.registry.live / t.registry.capacity : null)} of ${humanCount(t.registry.capacity)}` : 'registry -';
    lines.push(
      '',
      `TASK ${t.id}  ${t.state}  ${t.iface} (${t.driver})  up ${up}  restarts ${t.restarts}`,
      `  ${rate(t.pps)} pkts/s  ${rate(t.recordsPs)} rec/s  ${rate(t.dropsPs)} drops/s  ring ${pct(t.ringFill)}  ${reg}`,
    );
    if (t.reason && t.state !== 'running') lines.push(`  reason: ${t.reason}`);
    if (t.dropsByLayer.length > 0) lines.push(`  drops/s by layer: ${t.dropsByLayer.map(([k, n]) => `${k} ${humanCount(n)}`).join(', ')}`);
    const procs = [...t.procs].sort((a, b) => (o.sort === 'name' ? byName(a, b) : procKey(b, o.sort) - procKey(a, o.sort) || byName(a, b)));
    const rows = procs.map((p) => [
      p.name,
      p.pid === null ? '-' : String(p.pid),
      p.state,
      rate(p.pps),
      rate(p.dropsPs),
      humanCount(p.total),
      p.cpuPct === null ? '-' : p.cpuPct.toFixed(1),
      shortBytes(p.rss),
      String(p.restarts),
    ]);
    lines.push(...table(PROC_COLS, rows, w - 2).trimEnd().split('\n').map((l) => '  ' + l));
  }
  const out = lines.map((l) => truncate(l.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?'), w));
  if (o.height > 0 && out.length > o.height) {
    const keep = Math.max(1, o.height - 1);
    return [...out.slice(0, keep), truncate(`… ${out.length - keep} more lines (a taller terminal shows them)`, w)];
  }
  return out;
}

/** One refresh: `status`, `task.list`, then every task's `task.status` (a task stopped in between is left out). */
export async function sample(client: ControlClient, at: number): Promise<TopSample> {
  const status = await client.call<StatusResult>('status');
  const list = await client.call<TaskListResult>('task.list');
  const tasks: TaskStatus[] = [];
  for (const b of list.tasks ?? []) {
    try {
      tasks.push(await client.call<TaskStatus>('task.status', { id: b.id }));
    } catch (e) {
      if (!(e instanceof CtlRefused)) throw e;
    }
  }
  return { at, status, tasks };
}

export interface TopTerminal {
  out: NodeJS.WriteStream;
  in: NodeJS.ReadStream;
}

/**
 * Runs the view until `q`, Ctrl-C (or SIGINT/SIGTERM), `iterations`
 * refreshes, or an error talking to the daemon (rejected with it, the
 * terminal restored first). On a terminal: the alternate screen, keys read
 * raw; otherwise each refresh is printed after the last, plain.
 */
export async function topLoop(client: ControlClient, o: { intervalMs: number; iterations: number }, term: TopTerminal = { out: process.stdout, in: process.stdin }): Promise<void> {
  const tty = term.out.isTTY === true;
  const keys = tty && term.in.isTTY === true;
  const model = new TopModel();
  let sort: SortKey = 'name';
  let quit = false;
  let wake: (() => void) | null = null;
  const redraw = (): void => {
    const lines = renderTop(model.view(), { width: tty ? term.out.columns || 80 : 80, height: tty ? term.out.rows || 24 : 0, sort, now: Date.now() });
    if (tty) term.out.write('\x1b[H' + lines.map((l) => l + '\x1b[K').join('\r\n') + '\x1b[J');
    else term.out.write(lines.join('\n') + '\n\n');
  };
  const stop = (): void => {
    quit = true;
    wake?.();
  };
  const onKey = (d: Buffer): void => {
    for (const ch of d.toString('latin1')) {
      if (ch === 'q' || ch === 'Q' || ch === '\x03' || ch === '\x04') return stop();
      const k = SORT_KEYS[ch.toLowerCase()];
      if (k !== undefined) {
        sort = k;
        redraw();
      }
    }
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (tty) {
    term.out.write('\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J');
    term.out.on('resize', redraw);
  }
  if (keys) {
    term.in.setRawMode(true);
    term.in.on('data', onKey);
    term.in.resume();
  }
  try {
    for (let n = 0; !quit && (o.iterations <= 0 || n < o.iterations); n++) {
      const t0 = performance.now();
      model.add(await sample(client, t0));
      if (quit) break;
      redraw();
      if (o.iterations > 0 && n + 1 >= o.iterations) break;
      const wait = Math.max(0, o.intervalMs - (performance.now() - t0));
      await new Promise<void>((res) => {
        const t = setTimeout(res, wait);
        wake = () => {
          clearTimeout(t);
          res();
        };
      });
      wake = null;
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (keys) {
      term.in.off('data', onKey);
      term.in.setRawMode(false);
      term.in.pause();
    }
    if (tty) {
      term.out.off('resize', redraw);
      term.out.write('\x1b[?25h\x1b[?1049l');
    }
  }
}
