// Logs (docs/config.md, "log"): pino JSON lines with time, level, component
// (supervisor, capture, sender, ctl, command), node, task and pid; nothing
// per packet (repeated warnings go through rate-limit.ts).
//
// One writer. The supervisor's LogHub owns the outputs of `log.outputs`
// (stderr or stdout, a file rolled by pino-roll, Loki); its own loggers
// write into it, and each child's logger (childLogger) sends its lines over
// the IPC channel the child already has, which the supervisor hands to the
// same hub. Why not a pino with the same outputs in every process: several
// pino-roll instances on one file would each count only their own bytes and
// roll on their own (files renamed under another writer, sizes and counts
// wrong); each process would hold its own Loki buffer and retry on its own,
// and what one failed to push would be invisible to `otusctl status`. A
// child's lines are few (nothing per packet), so one IPC message each costs
// nothing that matters; lines a child writes just before it is killed may be
// lost, its exit is logged by the supervisor.

import { mkdirSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { destination, pino, type DestinationStream, type Logger } from 'pino';
import type { RollStream } from 'pino-roll';
import { OtusError } from '../util/errors.js';
import { LokiPush, type LokiSettings } from './loki.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogComponent = 'supervisor' | 'capture' | 'sender' | 'ctl' | 'command' | 'channel';

export interface FileOutputSettings {
  path: string;
  sizeBytes: number;
  /** null: by size only. */
  intervalMs: number | null;
  /** Rolled files kept besides the current one. */
  count: number;
}


/** `log:` of the global configuration (src/config/global.ts). */
export interface LogSettings {
  level: LogLevel;
  format: 'json' | 'text';
  /** Repeated warnings: one line per key per this many ms, then a summary. */
  rateLimitMs: number;
  outputs: { stderr?: object; stdout?: object; file?: FileOutputSettings; loki?: LokiSettings };
}

/** What a child needs to log through its supervisor: part of its start message. */
export interface ChildLogSetup {
  level: LogLevel;
  node: string;
  task: string;
  rateLimitMs: number;
}

/** A child's line on its way to the supervisor. */
export interface LogLine {
  type: 'log';
  line: string;
}

/** The supervisor tells its children a new level. */
export interface LogLevelMessage {
  type: 'log-level';
  level: LogLevel;
}

/** Log files are read by the daemon's group (adm, say), not by everyone. */
export const LOG_FILE_MODE = 0o640;

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v);
}

interface Output {
  name: string;
  write(line: string): void;
  stats(): Record<string, unknown>;
  close(): Promise<void>;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const FIXED = new Set(['time', 'level', 'msg', 'component', 'node', 'task', 'pid']);

/** A JSON log line as text: `2025-03-01T12:00:00.123Z WARN  capture task=voip pid=42: msg key=value ...`. Not JSON: as it is. */
export function textLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : line + '\n';
  }
  if (o === null || typeof o !== 'object') return line.endsWith('\n') ? line : line + '\n';
  // Control characters stay escaped, as JSON has them: a line must not move a terminal's cursor.
  const ctl = /[\u0000-\u001f\u007f-\u009f]/;
  const word = (v: unknown): string => (typeof v === 'string' && !/[\s"=]/.test(v) && !ctl.test(v) ? v : JSON.stringify(v));
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString() : word(o.time ?? '-');
  const level = (LEVEL_NAMES[o.level as number] ?? word(o.level)).padEnd(5);
  const who = [word(o.component ?? '-'), ...(o.task !== undefined ? [`task=${word(o.task)}`] : []), `pid=${word(o.pid ?? '-')}`].join(' ');
  const msg = String(o.msg ?? '');
  const rest = Object.entries(o)
    .filter(([k]) => !FIXED.has(k))
    .map(([k, v]) => `${k}=${word(v)}`);
  return `${time} ${level} ${who}: ${ctl.test(msg) ? JSON.stringify(msg).slice(1, -1) : msg}${rest.length ? ' ' + rest.join(' ') : ''}\n`;
}

/** stderr or stdout, synchronous (the journal under systemd; stdout is also where the console reporter writes). */
class StreamOutput implements Output {
  private lines = 0;
  private errors = 0;
  private lastError: string | null = null;
  private readonly dest: ReturnType<typeof destination>;
  constructor(
    readonly name: 'stderr' | 'stdout',
    private readonly text: boolean,
  ) {
    this.dest = destination({ fd: name === 'stderr' ? 2 : 1, sync: true });
    this.dest.on('error', (e: Error) => this.failed(e));
  }
  write(line: string): void {
    try {
      this.dest.write(this.text ? textLine(line) : line);
      this.lines++;
    } catch (e) {
      this.failed(e as Error);
    }
  }
  private failed(e: Error): void {
    this.errors++;
    this.lastError = e.message;
  }
  stats(): Record<string, unknown> {
    return { lines: this.lines, errors: this.errors, last_error: this.lastError };
  }
  async close(): Promise<void> {
    try {
      this.dest.flushSync();
    } catch {
      // nothing more can be said about an output that failed
    }
  }
}

/** The numbered files pino-roll makes of `path`: /var/log/otus/otus.log → otus.1.log, otus.2.log, ... (no extension: .log). */
export function rolledFiles(path: string): { name: (n: number) => string; number: (file: string) => number | null } {
  const file = basename(path);
  const dot = file.lastIndexOf('.');
  const [base, ext] = dot > 0 ? [file.slice(0, dot), file.slice(dot)] : [file, '.log'];
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^${esc(base)}\\.(\\d+)${esc(ext)}$`);
  return { name: (n) => `${base}.${n}${ext}`, number: (f) => (re.test(f) ? Number(re.exec(f)![1]) : null) };
}

/**
 * A file rolled by pino-roll at `size_bytes` and/or every `interval_ms`;
 * mode 0640; `count` rolled files are kept besides the current one. The
 * pruning is ours: pino-roll's own runs as the new file is being opened, so
 * whether it counts that file depends on which finishes first; here it
 * runs once the new file is open ('ready'), and also removes what earlier
 * runs of the daemon left beyond the count.
 */
class FileOutput implements Output {
  readonly name = 'file';
  private lines = 0;
  private errors = 0;
  private lastError: string | null = null;
  private constructor(
    private readonly dest: RollStream,
    private readonly s: FileOutputSettings,
    private readonly text: boolean,
  ) {
    dest.on('error', (e: Error) => {
      this.errors++;
      this.lastError = e.message;
    });
    dest.on('ready', () => void this.prune());
    void this.prune();
  }

  /** Removes the numbered files of this log older than the newest `count` + 1 (the current one is the newest). */
  private async prune(): Promise<void> {
    const files = rolledFiles(this.s.path);
    const dir = dirname(this.s.path);
    try {
      const numbers = (await readdir(dir)).map(files.number).filter((n): n is number => n !== null);
      const old = numbers.sort((a, b) => b - a).slice(this.s.count + 1);
      await Promise.all(old.map((n) => unlink(join(dir, files.name(n))).catch(() => undefined)));
    } catch (e) {
      this.errors++;
      this.lastError = `pruning rolled files: ${(e as Error).message}`;
    }
  }

  static async open(s: FileOutputSettings, text: boolean): Promise<FileOutput> {
    try {
      mkdirSync(dirname(s.path), { recursive: true, mode: 0o750 });
      // Loaded only for a file output: with date-fns it is ~300 modules, ~5 MiB
      // in every process that imports this one (children log over IPC).
      const { default: rollFile } = await import('pino-roll');
      const dest = await rollFile({
        file: s.path,
        size: `${s.sizeBytes}b`,
        frequency: s.intervalMs ?? undefined,
        symlink: true,
        mode: LOG_FILE_MODE,
      });
      // The file is opened asynchronously: a failure is the configuration's, now, not a counter later.
      await new Promise<void>((res, rej) => {
        dest.once('ready', res);
        dest.once('error', rej);
      });
      return new FileOutput(dest, s, text);
    } catch (e) {
      throw new OtusError('OTUS_ERR_CONFIG', `log.outputs.file.path ${s.path}: cannot open (${(e as Error).message})`);
    }
  }

  write(line: string): void {
    try {
      this.dest.write(this.text ? textLine(line) : line);
      this.lines++;
    } catch (e) {
      this.errors++;
      this.lastError = (e as Error).message;
    }
  }

  stats(): Record<string, unknown> {
    return { path: this.s.path, current: this.dest.file, lines: this.lines, errors: this.errors, last_error: this.lastError };
  }

  close(): Promise<void> {
    return new Promise((res) => {
      if (this.dest.destroyed) return res();
      this.dest.once('close', () => res());
      this.dest.once('error', () => res());
      this.dest.end();
    });
  }
}

class LokiOutput implements Output {
  readonly name = 'loki';
  constructor(private readonly push: LokiPush) {}
  write(line: string): void {
    this.push.write(line.endsWith('\n') ? line.slice(0, -1) : line);
  }
  stats(): Record<string, unknown> {
    return { ...this.push.stats() };
  }
  close(): Promise<void> {
    return this.push.close();
  }
}

/**
 * The supervisor's log: its outputs, its loggers, and the lines of its
 * children. `logger(component)` gives a logger with `component`, `node` and
 * `pid`; `write(line)` takes a child's JSON line as it is.
 */
export class LogHub implements DestinationStream {
  private readonly root: Logger;
  /** Every logger made from root (children of children too), so a new level reaches them all: pino copies the level into a child when it is made. */
  private readonly loggers = new Set<WeakRef<Logger>>();
  private lvl: LogLevel;

  private constructor(
    private readonly outputs: Output[],
    settings: LogSettings,
    readonly node: string,
  ) {
    this.lvl = settings.level;
    this.root = pino(
      {
        level: settings.level,
        base: { node, pid: process.pid },
        onChild: (child) => this.loggers.add(new WeakRef(child)),
      },
      this,
    );
  }

  /** Opens the outputs (a file output's directory is created); OTUS_ERR_CONFIG when one cannot be. */
  static async open(settings: LogSettings, node: string): Promise<LogHub> {
    const text = settings.format === 'text';
    const o = settings.outputs;
    const outputs: Output[] = [];
    if (o.stderr) outputs.push(new StreamOutput('stderr', text));
    if (o.stdout) outputs.push(new StreamOutput('stdout', text));
    if (o.file) outputs.push(await FileOutput.open(o.file, text));
    if (o.loki) outputs.push(new LokiOutput(new LokiPush(o.loki, node)));
    return new LogHub(outputs, settings, node);
  }

  get level(): LogLevel {
    return this.lvl;
  }

  logger(component: LogComponent): Logger {
    return this.root.child({ component });
  }

  /** Sets the level of every logger of this process (children are told by their supervisor: SupervisedTask.setLogLevel). */
  setLevel(level: LogLevel): void {
    this.lvl = level;
    this.root.level = level;
    for (const ref of this.loggers) {
      const l = ref.deref();
      if (l === undefined) this.loggers.delete(ref);
      else l.level = level;
    }
  }

  /** A JSON line, from this process's loggers or a child's; with or without its newline. */
  write(line: string): void {
    const l = line.endsWith('\n') ? line : line + '\n';
    for (const o of this.outputs) o.write(l);
  }

  /** For `status`: the level, the format and each output's counters. */
  stats(): { level: LogLevel; outputs: Record<string, Record<string, unknown>> } {
    return { level: this.lvl, outputs: Object.fromEntries(this.outputs.map((o) => [o.name, o.stats()])) };
  }

  /** Flushes and closes every output (Loki: one last push, bounded in time). */
  async close(): Promise<void> {
    await Promise.all(this.outputs.map((o) => o.close()));
  }
}

/**
 * A child's logger: its lines go to the supervisor over IPC (LogHub.write
 * there), with `component`, `node`, `task`, `pid` and `bindings`. The level
 * follows the supervisor's `log-level` messages. Without a setup (a replay's
 * children) it logs nothing.
 */
export function childLogger(setup: ChildLogSetup | undefined, component: LogComponent, bindings: Record<string, unknown> = {}): Logger {
  if (setup === undefined) return pino({ level: 'silent' });
  const ipc: DestinationStream = {
    write(line: string): void {
      if (process.connected) process.send!({ type: 'log', line: line.endsWith('\n') ? line.slice(0, -1) : line } satisfies LogLine, () => undefined);
    },
  };
  const log = pino({ level: setup.level, base: { node: setup.node, pid: process.pid, component, task: setup.task, ...bindings } }, ipc);
  process.on('message', (m: { type?: string; level?: unknown }) => {
    if (m.type === 'log-level' && isLogLevel(m.level)) log.level = m.level;
  });
  return log;
}
