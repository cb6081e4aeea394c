// The systemd notification protocol (sd_notify(3)): newline-separated
// assignments, one datagram per message, to the Unix datagram socket named by
// NOTIFY_SOCKET. Used by `otus daemon` under systemd/otus.service (Type=notify):
// READY=1 once it serves, RELOADING=1 … READY=1 around a reload, STOPPING=1,
// and WATCHDOG=1 while healthy. Without NOTIFY_SOCKET every call does nothing.
// A message that cannot be sent is counted, never thrown: the daemon must not
// stop because its service manager went away.

import { native } from '../native.js';

// systemd reads a notification into a PIPE_BUF (4096-byte) buffer and ignores a
// truncated one: 1000 characters are at most 4000 bytes of UTF-8.
const STATUS_MAX_CHARS = 1000;

/** One line, no NUL (systemd ignores a message with an embedded NUL), bounded. */
function statusLine(text: string): string {
  return text.replace(/[\r\n\0]+/g, ' ').trim().slice(0, STATUS_MAX_CHARS);
}

function positiveInt(v: string | undefined): number {
  if (v === undefined || !/^[0-9]+$/.test(v)) return 0;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : 0;
}

export class SdNotify {
  /** The variables a forked child must not inherit: only the main process talks to systemd (NotifyAccess=main). */
  static readonly envKeys: readonly string[] = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'];

  /** True when NOTIFY_SOCKET names a socket; false: a no-op notifier. */
  readonly enabled: boolean;
  /** WATCHDOG_USEC (only when WATCHDOG_PID is absent or equals our pid, and notifications are enabled), else 0. */
  readonly watchdogUsec: number;
  private readonly path: string;
  private failed = 0;

  private constructor(path: string, watchdogUsec: number) {
    this.path = path;
    this.enabled = path !== '';
    this.watchdogUsec = this.enabled ? watchdogUsec : 0;
  }

  /** From NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (default: process.env). */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): SdNotify {
    const path = env.NOTIFY_SOCKET ?? '';
    let watchdog = positiveInt(env.WATCHDOG_USEC);
    // WATCHDOG_PID names the process the watchdog is meant for; a child that
    // inherited the variables must not ping in its parent's name.
    if (env.WATCHDOG_PID !== undefined && positiveInt(env.WATCHDOG_PID) !== process.pid) watchdog = 0;
    return new SdNotify(path, watchdog);
  }

  /** Datagrams that could not be sent (for the daemon's status). */
  get failures(): number {
    return this.failed;
  }

  /** READY=1: start-up or a reload is complete. */
  ready(status?: string): void {
    this.send(status === undefined ? 'READY=1' : `READY=1\nSTATUS=${statusLine(status)}`);
  }

  /** STATUS=…: free text systemctl status shows (one line; newlines become spaces). */
  status(text: string): void {
    this.send(`STATUS=${statusLine(text)}`);
  }

  /**
   * RELOADING=1 with MONOTONIC_USEC, the CLOCK_MONOTONIC time in µs that lets
   * systemd (Type=notify-reload, ≥ 253) match this message to its reload request.
   * Follow it with ready() once the new configuration is in force.
   */
  reloading(): void {
    // process.hrtime.bigint() is libuv's uv_hrtime(): clock_gettime(CLOCK_MONOTONIC) on Linux.
    this.send(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
  }

  /** STOPPING=1: shutdown has begun. */
  stopping(): void {
    this.send('STOPPING=1');
  }

  /**
   * Sends WATCHDOG=1 now and every watchdogUsec/2 while healthy() returns true
   * (a healthy() that throws counts as unhealthy: systemd's watchdog then fires).
   * Returns a stop function. No-op when watchdogUsec is 0. The timer does not
   * keep the event loop alive.
   */
  startWatchdog(healthy: () => boolean): () => void {
    if (this.watchdogUsec === 0) return () => {};
    const ping = (): void => {
      let ok = false;
      try {
        ok = healthy();
      } catch {
        ok = false;
      }
      if (ok) this.send('WATCHDOG=1');
    };
    ping();
    // Node turns a delay above 2^31-1 ms into 1 ms: clamp it.
    const timer = setInterval(ping, Math.min(0x7fffffff, Math.max(1, Math.floor(this.watchdogUsec / 2000))));
    timer.unref();
    return () => clearInterval(timer);
  }

  private send(text: string): void {
    if (!this.enabled) return;
    if (!native.notifySend(this.path, text)) this.failed++;
  }
}
