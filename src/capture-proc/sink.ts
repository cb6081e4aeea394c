// The capture process's frame sink: every frame through the core decoder and
// out as one `otus decode` NDJSON line (docs/decode-output.md). Lines are
// batched into one string per ring block (or 64 KiB) and written once; when
// the writer pushes back, the stream is paused, so the kernel ring fills and
// counts drops rather than this process buffering without bound (docs/architecture.md, "Counters, and where they are kept").

import type { CaptureStream, FrameSink } from '../capture/capturer.js';
import { Decoder } from '../decode/decoder.js';
import type { DecoderOptions } from '../decode/options.js';
import { decodeRecord } from '../decode/record.js';

const CHUNK = 64 * 1024;

export interface LineWriter {
  /** false: stop feeding me until 'drain'. */
  write(s: string): boolean;
  once(event: 'drain', cb: () => void): unknown;
}

export class NdjsonSink implements FrameSink {
  readonly decoder: Decoder;
  /** Frames emitted. */
  n = 0;
  done = false;
  private chunk = '';
  private streams: CaptureStream[] = [];
  private waiting = false;

  constructor(
    opts: DecoderOptions,
    private readonly out: LineWriter,
    /** Stop after this many frames (0 = never). */
    private readonly limit: number,
    private readonly onLimit: () => void,
    /** A stream failed (FrameSink.error). */
    private readonly onError: (stream: number, message: string) => void = () => {},
    /** Frame numbering and the limit, shared by the pipelines of one output (FlowDispatcher). */
    private readonly seq: { n: number } = { n: 0 },
  ) {
    this.decoder = new Decoder(opts);
  }

  attach(s: CaptureStream): void {
    this.streams.push(s);
  }

  frame(buf: Uint8Array, view: DataView, off: number, caplen: number, len: number, linkType: number, sec: number, nsec: number): void {
    if (this.done) return;
    if (this.limit > 0 && this.seq.n >= this.limit) {
      this.done = true;
      return;
    }
    const p = this.decoder.decodeBytes(buf, view, off, caplen, len, linkType, sec, nsec, true);
    this.n++;
    this.chunk += decodeRecord(p, ++this.seq.n, true, 9) + '\n';
    if (this.chunk.length >= CHUNK) this.flush();
    if (this.limit > 0 && this.seq.n >= this.limit) {
      this.done = true;
      this.flush();
      // A file stream stops reading at once (a live ring block is still walked whole: its frames are the kernel's no more).
      for (const s of this.streams) s.pause();
      this.onLimit();
    }
  }

  batchEnd(): void {
    this.flush();
  }

  error(stream: number, message: string): void {
    this.flush();
    this.onError(stream, message);
  }

  /** Called at the end of a file source. */
  onEnd: (() => void) | null = null;

  end(): void {
    this.flush();
    this.onEnd?.();
  }

  flush(): void {
    if (this.chunk.length === 0) return;
    const ok = this.out.write(this.chunk);
    this.chunk = '';
    if (!ok && !this.waiting) {
      this.waiting = true;
      for (const s of this.streams) s.pause();
      this.out.once('drain', () => {
        this.waiting = false;
        if (!this.done) for (const s of this.streams) s.resume();
      });
    }
  }
}
