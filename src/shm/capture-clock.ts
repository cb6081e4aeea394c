// Capture order across the capture processes of a task, for flow-registry
// misses: a call's SIP and its RTP may land on different processes (kernel
// fanout, or replay's flow hash), and a process must not give up on an RTP
// packet while the SDP that announces it is still unread on another one.
// Each process publishes how far it has got, on its own 64-byte line; only a
// miss looks at the others (FlowRegistry.catchUp), then the lookup is
// retried. Hits, the common case for media of a known call, never wait.
//
// - Replay (`waitTurn`): positions are global frame indexes. Each process
//   reads its own frames in file order (jumping over others' in pcap,
//   walking past them in pcapng) and publishes the index of the frame it is
//   at; a miss waits until every other process has moved past all earlier
//   frames. The process holding the earliest pending frame never waits, so
//   there is no deadlock. Waiting on every frame instead made two processes
//   with interleaved flows run in lockstep, slower than one. Cost: one
//   atomic store per own frame and per 64 skipped ones, each process on its
//   own cache line (when all shared one, the line moved between CPUs on every
//   frame: two processes each ran ~25% slower).
// - Live (`caughtUp`, src/capture-proc/catch-up.ts): positions are capture
//   times in microseconds since the run's start; a process has handed over
//   every frame before its position. Frames reach a process only when the
//   kernel retires their ring block, so a miss waits, at most until the
//   packet is older than the retire time plus a margin, for the others to
//   pass its time.
//
// Positions compare modulo 2^32 (live: 35 minutes either side; an idle
// process republishes its position every minute).
//
// Layout (Int32 words): 0 magic, 1 version, 4 owner pid and 6 owner start
// time (segment.ts), 16 number of processes, 64 + 16 w: position of process
// w, 64 + 16 w + 1: 1 when it has finished; one 64-byte line each.

import { native } from '../native.js';
import { OtusError } from '../util/errors.js';
import { CLOCK_MAGIC as MAGIC, createSegment, segmentName, unlinkSegment, writeOwner } from './segment.js';

const VERSION = 3;
const I_MAGIC = 0;
const I_VERSION = 1;
const I_WORKERS = 16;
const I_NEXT = 64;
const STRIDE = 16;
const MAX_WORKERS = 64;
const I_DONE = 1;
const SIZE = 4 * (I_NEXT + STRIDE * MAX_WORKERS);

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export class CaptureClock {
  private constructor(
    readonly name: string,
    private readonly i32: Int32Array,
    private readonly owner: boolean,
  ) {}

  /** The supervisor creates the clock before forking (and owns it); every position starts at 0. */
  static create(task: string, workers: number): CaptureClock {
    if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `capture clock: 1 to ${MAX_WORKERS} capture processes, got ${workers}`);
    }
    const name = segmentName(task, 'clock');
    const buf = createSegment(name, SIZE);
    writeOwner(buf);
    const i32 = new Int32Array(buf);
    i32[I_VERSION] = VERSION;
    i32[I_WORKERS] = workers;
    Atomics.store(i32, I_MAGIC, MAGIC);
    return new CaptureClock(name, i32, true);
  }

  static open(task: string): CaptureClock {
    const name = segmentName(task, 'clock');
    const i32 = new Int32Array(native.shmOpen(name, 0, false, 0));
    if (Atomics.load(i32, I_MAGIC) !== MAGIC || i32[I_VERSION] !== VERSION) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${name}: not an Otus capture clock of version ${VERSION}`);
    }
    return new CaptureClock(name, i32, false);
  }

  /** Process `me` has handled everything before position `pos`. */
  at(me: number, pos: number): void {
    Atomics.store(this.i32, I_NEXT + STRIDE * me, pos);
  }

  /** Process `w` is neither finished nor at `pos` yet. */
  private behind(w: number, pos: number): boolean {
    const i32 = this.i32;
    return Atomics.load(i32, I_NEXT + STRIDE * w + I_DONE) === 0 && ((Atomics.load(i32, I_NEXT + STRIDE * w) - pos) | 0) < 0;
  }

  /** Is every other process at `pos` or later, or finished? */
  caughtUp(me: number, pos: number): boolean {
    const n = this.i32[I_WORKERS];
    for (let w = 0; w < n; w++) if (w !== me && this.behind(w, pos)) return false;
    return true;
  }

  /** Replay: publishes `g`, then returns once every other process is at `g` or later. */
  waitTurn(me: number, g: number): void {
    this.at(me, g);
    const n = this.i32[I_WORKERS];
    for (let w = 0; w < n; w++) {
      if (w === me || !this.behind(w, g)) continue;
      for (let spin = 0; this.behind(w, g); spin++) {
        // Spin briefly (the other process is usually a frame or two behind), then sleep 50 µs at a time.
        if (spin > 2000) Atomics.wait(sleepCell, 0, 0, 0.05);
      }
    }
  }

  /** Process `me` will publish no more: nobody waits for it. */
  finish(me: number): void {
    Atomics.store(this.i32, I_NEXT + STRIDE * me + I_DONE, 1);
  }

  close(): void {
    if (this.owner) unlinkSegment(this.name);
  }
}
