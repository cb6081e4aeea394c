// Capture order across the capture processes of `otus replay`.
//
// Live, the kernel's fanout spreads a call's SIP and its RTP over different
// processes, and real time keeps them in order: the SDP is registered in the
// flow registry long before the first RTP packet arrives. Replay runs as fast
// as it can, so without this a process could label RTP before another has
// read the SDP that announces it. Each process reads its own frames in
// file order (jumping over others' in pcap, walking past them in pcapng)
// and publishes the global index of the frame it is at. Only a flow-registry miss waits
// (FlowRegistry.catchUp → waitTurn): until every other process has moved
// past all earlier frames, then the lookup is retried. Hits, the common case
// for media of a known call, never wait; waiting on every frame made two
// processes with interleaved flows run in lockstep, slower than one. The
// process holding the earliest pending frame never waits, so there is no
// deadlock. Cost: one atomic store per own frame and per 64 skipped ones,
// each process on its own cache line (when all shared one, the line moved
// between CPUs on every frame: two processes each ran ~25% slower).
//
// Layout (Int32 words): 0 magic, 1 version, 4 owner pid and 6 owner start
// time (segment.ts), 16 number of processes, 64 + 16 w: next frame index of
// process w (DONE when it has finished), one 64-byte line each.

import { native } from '../native.js';
import { OtusError } from '../util/errors.js';
import { removeStaleSegments, segmentName, unlinkSegment, writeOwner } from './segment.js';

const MAGIC = 0x4f54434b; // 'OTCK'
const VERSION = 2;
const I_MAGIC = 0;
const I_VERSION = 1;
const I_WORKERS = 16;
const I_NEXT = 64;
const STRIDE = 16;
const MAX_WORKERS = 64;
const SIZE = 4 * (I_NEXT + STRIDE * MAX_WORKERS);
export const DONE = 0x7fffffff;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export class ReplayClock {
  /** Times a process found another one behind and had to wait. */
  waits = 0;

  private constructor(
    readonly name: string,
    private readonly i32: Int32Array,
    private readonly owner: boolean,
  ) {}

  /** The supervisor creates the clock before forking; every index starts at 0. */
  static create(task: string, workers: number): ReplayClock {
    if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `replay clock: 1 to ${MAX_WORKERS} capture processes, got ${workers}`);
    }
    const name = segmentName(task, 'clock');
    removeStaleSegments(name, [MAGIC]);
    const buf = native.shmOpen(name, SIZE, true, 0);
    writeOwner(buf);
    const i32 = new Int32Array(buf);
    i32[I_VERSION] = VERSION;
    i32[I_WORKERS] = workers;
    Atomics.store(i32, I_MAGIC, MAGIC);
    return new ReplayClock(name, i32, true);
  }

  static open(task: string): ReplayClock {
    const name = segmentName(task, 'clock');
    const i32 = new Int32Array(native.shmOpen(name, 0, false, 0));
    if (Atomics.load(i32, I_MAGIC) !== MAGIC || i32[I_VERSION] !== VERSION) {
      throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `${name}: not an Otus replay clock of version ${VERSION}`);
    }
    return new ReplayClock(name, i32, false);
  }

  /** Process `me` is at global frame index `g` (all its frames before `g` are done). */
  at(me: number, g: number): void {
    Atomics.store(this.i32, I_NEXT + STRIDE * me, g);
  }

  /** Publishes `g`, then returns once every other process is at `g` or later. */
  waitTurn(me: number, g: number): void {
    const i32 = this.i32;
    Atomics.store(i32, I_NEXT + STRIDE * me, g);
    const n = i32[I_WORKERS];
    for (let w = 0; w < n; w++) {
      if (w === me || Atomics.load(i32, I_NEXT + STRIDE * w) >= g) continue;
      this.waits++;
      for (let spin = 0; Atomics.load(i32, I_NEXT + STRIDE * w) < g; spin++) {
        // Spin briefly (the other process is usually a frame or two behind), then sleep 50 µs at a time.
        if (spin > 2000) Atomics.wait(sleepCell, 0, 0, 0.05);
      }
    }
  }

  finish(me: number): void {
    Atomics.store(this.i32, I_NEXT + STRIDE * me, DONE);
  }

  close(): void {
    if (this.owner) unlinkSegment(this.name);
  }
}
