// file: a capture file replayed through the capture interface, so everything
// downstream of a driver (sinks, pipelines) runs on recorded traffic exactly
// as on live traffic. As fast as possible by default: batches of frames per
// event-loop turn, read in place from the file mapping. With `realtime`,
// frames are paced by their recorded timestamps. One stream; several
// pipelines are fed by the flow-hash dispatcher, as with pcap.

import { type CaptureReader, openCapture } from '../capture-file/open.js';
import { OtusError } from '../util/errors.js';
import { type CaptureOptions, type CaptureStream, type Capturer, type FrameSink, StreamStats } from './capturer.js';
import type { StructuredFilter } from './filter.js';

const BATCH = 1024;

export class FileStream implements CaptureStream {
  readonly index = 0;
  readonly linkType: number;
  stopped = false;
  failure: string | null = null;
  private readonly st = new StreamStats();
  private sink: FrameSink | null = null;
  private paused = true;
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private inCall = false;
  /** realtime: wall-clock ms and capture ms of the first frame. */
  private wall0 = -1;
  private cap0 = 0;
  private pending = false; // the reader's current frame is not delivered yet

  constructor(
    private readonly reader: CaptureReader,
    private readonly realtime: boolean,
    private readonly snaplen: number,
  ) {
    this.pending = reader.next();
    this.linkType = this.pending ? reader.frame.linkType : 1;
  }

  start(sink: FrameSink): void {
    if (this.stopped) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', 'file stream: already stopped');
    this.sink = sink;
    this.resume();
  }

  pause(): void {
    this.paused = true;
    this.cancel();
  }

  resume(): void {
    if (this.stopped || !this.sink || !this.paused) return;
    this.paused = false;
    this.schedule(0);
  }

  /** Delivers up to one batch (in realtime mode: the frames that are due). */
  /** A capture file has nothing in flight: a stop loses no frame. */
  async drain(): Promise<void> {}

  walkReady(): number {
    const sink = this.sink;
    if (!sink || this.stopped || this.inCall) return 0;
    this.inCall = true;
    const r = this.reader;
    const f = r.frame;
    let n = 0;
    let waitMs = 0;
    // A sink that has enough (--count) pauses the stream mid-batch: frames not handed over are not counted.
    while (this.pending && n < BATCH && !this.stopped && !this.paused) {
      if (this.realtime && f.hasTs) {
        const capMs = f.tsSec * 1000 + f.tsNsec / 1e6;
        if (this.wall0 < 0) {
          this.wall0 = performance.now();
          this.cap0 = capMs;
        }
        const due = capMs - this.cap0 - (performance.now() - this.wall0);
        if (due > 1) {
          waitMs = due;
          break;
        }
      }
      const caplen = f.caplen < this.snaplen ? f.caplen : this.snaplen;
      sink.frame(f.buf, f.view, f.off, caplen, f.len, f.linkType, f.tsSec, f.tsNsec);
      n++;
      this.pending = r.next();
    }
    this.inCall = false;
    this.st.frames += n;
    this.st.kernelPackets += n;
    if (n > 0) {
      this.st.batches++;
      sink.batchEnd?.();
    }
    if (this.stopped) return n;
    if (!this.pending) {
      if (r.endReason) this.failure = `${r.endReason} after ${r.framesRead} frames`;
      this.stopped = true;
      this.cancel();
      sink.end?.(this.index);
      this.sink = null;
    } else if (!this.paused) {
      this.schedule(waitMs);
    }
    return n;
  }

  setFilter(program: Buffer | null): void {
    if (program !== null) throw new OtusError('OTUS_ERR_UNSUPPORTED', 'file driver: no kernel filter; filter with the task\'s processors');
  }

  stats(): StreamStats {
    return this.st;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.cancel();
    this.sink = null;
  }

  private schedule(ms: number): void {
    this.cancel();
    // setImmediate between batches lets I/O (the output) and signals through.
    this.timer = ms > 0 ? setTimeout(() => this.walkReady(), ms) : setImmediate(() => this.walkReady());
  }

  private cancel(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer as NodeJS.Timeout);
    clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = null;
  }
}

export class FileCapturer implements Capturer {
  readonly name = 'file';
  readonly version = '0.1.0';
  private stream: FileStream | null = null;

  /** options.iface is the capture file's path. */
  constructor(readonly options: CaptureOptions) {}

  init(): void {
    if (this.options.streams !== 1) {
      throw new OtusError('OTUS_ERR_UNSUPPORTED', `file driver: one stream only (asked for ${this.options.streams}); more pipelines are fed by flow hash`);
    }
    this.setFilter(this.options.filter);
  }

  streams(): number {
    return 1;
  }

  capture(i: number): FileStream {
    if (i !== 0) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `file: stream ${i} out of 0..0`);
    if (this.stream && !this.stream.stopped) return this.stream;
    this.stream = new FileStream(openCapture(this.options.iface), this.options.realtime, this.options.snaplen);
    return this.stream;
  }

  setFilter(filter: string | StructuredFilter | null): void {
    if (filter !== null && filter !== '') {
      throw new OtusError('OTUS_ERR_UNSUPPORTED', 'file driver: no kernel filter; filter with the task\'s processors, or capture with af_packet_v3');
    }
  }

  stats(): StreamStats[] {
    return [this.stream ? this.stream.stats() : new StreamStats()];
  }

  health(): { ok: boolean; detail: string } {
    const ok = !!this.stream && !this.stream.stopped;
    return { ok, detail: ok ? `replaying ${this.options.iface}` : 'not replaying' };
  }

  start(): void {
    this.capture(0);
  }

  stop(): void {
    this.stream?.stop();
  }
}
