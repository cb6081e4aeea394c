// Repeated warnings, rate-limited: a storm (malformed packets, a drop that
// goes on, a reporter that keeps failing) is a counter plus one line, not a
// log flood. The first occurrence of a key is logged in full; later ones
// within `intervalMs` are only added up, and when the interval ends one
// summary line says "N more in the last M s". While the storm lasts that is
// one line per interval; once it is over, the next occurrence is logged in
// full again. Keys are a bounded set chosen by the caller (a condition's
// name, never a packet's address).

import type { Logger } from 'pino';

/** Keys tracked at once; beyond it a new key is logged in full without a window (a caller bug, not a flood). */
const MAX_KEYS = 256;

interface Window {
  start: number;
  /** What was added up since the line that opened the window. */
  more: number;
  timer: NodeJS.Timeout;
  level: 'warn' | 'error' | 'info';
  msg: string;
}

export class RateLimitedLog {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly log: Logger,
    readonly intervalMs = 60_000,
  ) {}

  warn(key: string, n: number, fields: Record<string, unknown>, msg: string): void {
    this.emit('warn', key, n, fields, msg);
  }

  error(key: string, n: number, fields: Record<string, unknown>, msg: string): void {
    this.emit('error', key, n, fields, msg);
  }

  /**
   * One occurrence of `key` amounting to `n` (packets, records: what the
   * summary adds up). Logged with `count: n` when no window of the key is
   * open; added to the open window otherwise.
   */
  emit(level: Window['level'], key: string, n: number, fields: Record<string, unknown>, msg: string): void {
    const w = this.windows.get(key);
    if (w !== undefined) {
      w.more += n;
      return;
    }
    this.log[level]({ ...fields, key, count: n }, msg);
    if (this.windows.size >= MAX_KEYS) return;
    this.windows.set(key, { start: Date.now(), more: 0, timer: this.arm(key), level, msg });
  }

  /** Logs every pending summary now and closes every window (a process about to stop). */
  flush(): void {
    for (const key of [...this.windows.keys()]) this.close(key, false);
  }

  private arm(key: string): NodeJS.Timeout {
    return setTimeout(() => this.close(key, true), this.intervalMs).unref();
  }

  /** The window's end: its summary, and a new window while the storm goes on. */
  private close(key: string, reopen: boolean): void {
    const w = this.windows.get(key);
    if (w === undefined) return;
    clearTimeout(w.timer);
    if (w.more === 0) {
      this.windows.delete(key);
      return;
    }
    const now = Date.now();
    const s = Math.round((now - w.start) / 100) / 10;
    this.log[w.level]({ key, count: w.more, window_s: s }, `${w.msg}: ${w.more} more in the last ${s} s`);
    if (!reopen) {
      this.windows.delete(key);
      return;
    }
    w.start = now;
    w.more = 0;
    w.timer = this.arm(key);
  }
}
