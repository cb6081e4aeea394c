// What every capture stream shares: readiness through a uv_poll on its fd,
// pause/resume (the kernel keeps counting drops while paused), one walk of
// whatever is ready per wakeup, and a stop that is safe inside the sink's
// callback (the walk finishes its frame, then the stream closes).
// Drivers supply the walk, the counters and the release of their socket.

import { getSystemErrorName } from 'node:util';
import { native, type NativeHandle } from '../native.js';
import { OtusError } from '../util/errors.js';
import { type CaptureStream, type FrameSink, StreamStats } from './capturer.js';

export abstract class PolledStream implements CaptureStream {
  abstract readonly index: number;
  abstract readonly linkType: number;
  /** The fd the poll waits on. */
  protected abstract readonly fd: number;
  protected sink: FrameSink | null = null;
  /** Set by stop() during a walk: the walk ends early and the stream closes after it. */
  protected closing = false;
  protected readonly st = new StreamStats();
  private poll: NativeHandle | null = null;
  private walking = false;
  stopped = false;
  /** Why the stream stopped reading on its own, or null. */
  failure: string | null = null;

  private readonly onReadable = (status: number): void => {
    if (status >= 0) {
      this.walkReady();
      return;
    }
    this.fail(`${getSystemErrorName(status)} on the capture socket (interface down or removed?)`);
  };

  /** The stream cannot read any more (the interface went away, ...): stops reading and tells the sink, once. */
  protected fail(message: string): void {
    this.pause();
    if (this.failure !== null) return;
    this.failure = message;
    this.sink?.error?.(this.index, message);
  }

  /** Hands every ready frame to `sink`; returns how many. The hot loop: nothing allocated. */
  protected abstract walk(sink: FrameSink): number;
  /** Closes the socket and frees its memory. Called once. */
  protected abstract release(): void;
  abstract stats(): StreamStats;
  abstract setFilter(program: Buffer | null): void;

  start(sink: FrameSink): void {
    if (this.stopped) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `capture stream ${this.index}: already stopped`);
    this.sink = sink;
    this.resume();
  }

  pause(): void {
    if (this.poll) native.pollStop(this.poll);
    this.poll = null;
  }

  resume(): void {
    if (this.poll || this.stopped || !this.sink) return;
    this.poll = native.pollStart(this.fd, this.onReadable);
    this.walkReady(); // frames that arrived before the poll was armed
  }

  walkReady(): number {
    const sink = this.sink;
    if (!sink || this.stopped || this.walking) return 0;
    this.walking = true;
    const n = this.walk(sink);
    this.st.frames += n;
    this.walking = false;
    if (n > 0 && sink.batchEnd && !this.closing) sink.batchEnd();
    if (this.closing) this.close();
    return n;
  }

  /**
   * Drivers that cannot close the door on new frames (pcap, xdp): walks what
   * is ready until a walk finds nothing, then reads the counters. af_packet_v3
   * does more (afpacket.ts).
   */
  async drain(): Promise<void> {
    for (let i = 0; i < 8 && this.walkReady() > 0; i++); // bounded: frames keep coming
    this.stats();
  }

  stop(): void {
    if (this.stopped) return;
    this.closing = true;
    if (!this.walking) this.close();
  }

  private close(): void {
    if (this.stopped) return;
    this.pause();
    this.stats(); // the last kernel counters, before the socket goes
    this.stopped = true;
    this.release();
    this.sink = null;
  }
}
