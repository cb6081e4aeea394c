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
// Only misses wait, each only until its own deadline, and only the first
// miss of a flow (symmetric flow hash) in QUIET_MS of capture time: the race
// is at a call's start. Media of known calls never wait; a flow nobody
// signalled costs one wait when it starts (and again after a silence), so
// unsignalled RTP does not keep this process a window behind real time.
// Waiting sleeps 0.5 to 1 ms at a time; it never spins.
//
// Positions are microseconds of capture time since the run's start, in a
// 32-bit word that wraps after ~35 minutes, so an idle process republishes
// its position every minute.

import type { CaptureClock } from '../shm/capture-clock.js';

/** Slack for the kernel's retire timer (one jiffy at HZ=250) and for waking the other process. */
export const CATCH_UP_MARGIN_MS = 5;
const REFRESH_MS = 60_000;
/** A flow whose last miss is this recent (capture time) does not wait again. */
export const QUIET_MS = 2000;
/** Flows remembered (direct-mapped by hash; a collision costs at most an extra wait). */
const FLOWS = 4096;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export interface CatchUpStats {
  /** Misses that waited for another capture process. */
  waits: number;
  /** Misses that did not wait: their flow had missed in the last QUIET_MS. */
  quiet: number;
  /** Time spent waiting, in milliseconds. */
  waited_ms: number;
  /** Waits that ended at the deadline with another process still behind (normal for media of unknown calls while another process is idle). */
  deadlines: number;
}

export class LiveCatchUp {
  readonly stats: CatchUpStats = { waits: 0, quiet: 0, waited_ms: 0, deadlines: 0 };
  /** Per flow hash slot: the hash, the position of its last miss, and 1 when in use. */
  private readonly misses = new Int32Array(3 * FLOWS);
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
   * The registry's catch-up hook: a miss on a packet of `flow` captured at
   * sec.nsec. Returns once the lookup is worth retrying (true), or false at
   * once when the flow missed in the last QUIET_MS.
   */
  wait(sec: number, nsec: number, flow: number): boolean {
    const t = this.position(sec, nsec);
    const m = this.misses;
    const f = flow | 0; // as the table stores it
    const e = 3 * (f & (FLOWS - 1));
    const recent = m[e + 2] === 1 && m[e] === f && ((t - m[e + 1]) | 0) < QUIET_MS * 1000;
    m[e] = f;
    m[e + 1] = t;
    m[e + 2] = 1;
    if (recent) {
      this.stats.quiet++;
      return false;
    }
    this.publish(t); // everything before this packet is handled
    const clock = this.clock;
    const me = this.me;
    const deadline = t + this.windowUs;
    const t0 = this.nowMs();
    let left = deadline - this.wallPosition(t0);
    if (left <= 0 || clock.caughtUp(me, t + 1)) return true;
    const st = this.stats;
    st.waits++;
    let now = t0;
    for (;;) {
      Atomics.wait(sleepCell, 0, 0, Math.min(1, Math.max(0.5, left / 1000)));
      now = this.nowMs();
      if (clock.caughtUp(me, t + 1)) break;
      left = deadline - this.wallPosition(now);
      if (left <= 0) {
        st.deadlines++;
        break;
      }
    }
    st.waited_ms += now - t0;
    return true;
  }

  /** Wall-clock time (ms since the epoch) → position. */
  private wallPosition(ms: number): number {
    return Math.floor(ms * 1000 - this.baseUs) | 0;
  }

  /** Republishes the position every minute while idle, so it never looks a wrap ahead; stop() ends it. */
  start(): void {
    this.timer = setInterval(() => this.publish((this.wallPosition(this.nowMs()) - this.windowUs) | 0), REFRESH_MS);
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
