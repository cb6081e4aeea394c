// Live catch-up after a flow-registry miss, for a task with several capture
// processes (src/shm/capture-clock.ts). Kernel fanout may put a call's SDP
// on one process and its RTP on another, and each hands over a ring block
// on its own clock: when the block is full, or the retire time after its
// first frame. So the first RTP packets of a call can reach their process
// before the SDP that announces them is registered. On a miss, this waits
// until every other process has handed over its frames older than the
// packet, or until the packet is older than the retire time plus a margin
// (by then every older frame has left the kernel's ring), and the lookup
// is retried.
//
// Only misses wait, and each only until its own deadline: media of known
// calls never do, and RTP-like packets of unknown flows make this process
// lag real time by at most the window, without spinning (sleeps of 0.5 to
// 1 ms, so a flood costs at most ~2000 wakeups a second).
//
// Positions are microseconds of capture time since the run's start, in a
// 32-bit word that wraps after ~35 minutes, so an idle process republishes
// its position every minute.

import type { CaptureClock } from '../shm/capture-clock.js';

/** Slack for the kernel's retire timer (one jiffy at HZ=250) and for waking the other process. */
export const CATCH_UP_MARGIN_MS = 5;
const REFRESH_MS = 60_000;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export interface CatchUpStats {
  /** Misses that waited for another capture process. */
  waits: number;
  /** Time spent waiting, in milliseconds. */
  waited_ms: number;
  /** Waits that ended at the deadline with another process still behind (normal for media of unknown calls while another process is idle). */
  deadlines: number;
}

export class LiveCatchUp {
  readonly stats: CatchUpStats = { waits: 0, waited_ms: 0, deadlines: 0 };
  private readonly baseUs: number;
  private readonly windowUs: number;
  private last = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly clock: CaptureClock,
    private readonly me: number,
    /** The run's start, in milliseconds since the epoch (position 0). */
    baseMs: number,
    /** How long after its capture time a frame may still be in the kernel's ring: the retire time plus CATCH_UP_MARGIN_MS. */
    windowMs: number,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.baseUs = baseMs * 1000;
    this.windowUs = windowMs * 1000;
  }

  /** Capture time → position. */
  position(sec: number, nsec: number): number {
    return Math.floor(sec * 1e6 - this.baseUs + nsec / 1000) | 0;
  }

  /** Every frame up to the one captured at sec.nsec is handled (end of a drain). */
  handled(sec: number, nsec: number): void {
    this.publish(this.position(sec, nsec));
  }

  /**
   * The registry's catch-up hook: a miss on a packet captured at sec.nsec.
   * Returns once the lookup is worth retrying (always true).
   */
  wait(sec: number, nsec: number): boolean {
    const t = this.position(sec, nsec);
    this.publish(t); // everything before this packet is handled
    const clock = this.clock;
    const me = this.me;
    const deadline = t + this.windowUs;
    const t0 = this.nowMs();
    let left = deadline - (t0 * 1000 - this.baseUs);
    if (left <= 0 || clock.caughtUp(me, t + 1)) return true;
    const st = this.stats;
    st.waits++;
    let now = t0;
    for (;;) {
      Atomics.wait(sleepCell, 0, 0, Math.min(1, Math.max(0.5, left / 1000)));
      now = this.nowMs();
      if (clock.caughtUp(me, t + 1)) break;
      left = deadline - (now * 1000 - this.baseUs);
      if (left <= 0) {
        st.deadlines++;
        break;
      }
    }
    st.waited_ms += now - t0;
    return true;
  }

  /** Republishes the position every minute while idle, so it never looks a wrap ahead; stop() ends it. */
  start(): void {
    this.timer = setInterval(() => this.publish(Math.floor(this.nowMs() * 1000 - this.baseUs - this.windowUs) | 0), REFRESH_MS);
    this.timer.unref();
  }

  /** No more frames from this process: nobody waits for it. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.clock.finish(this.me);
  }

  /** Publishes `pos` unless it is behind what was published (wrap-safe). */
  private publish(pos: number): void {
    if (((pos - this.last) | 0) <= 0) return;
    this.last = pos;
    this.clock.at(this.me, pos);
  }
}
