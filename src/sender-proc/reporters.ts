// Built-in reporters (docs/reporters.md), run by the sender process: `file`
// (records to a file or FIFO: NDJSON, or length-delimited protobuf — a varint
// length before each otus.v1.Record, as protobufjs' decodeDelimited reads) and
// `console` (NDJSON on stdout). With `dir`, `file` writes rotating files
// (rotate.ts): a chunk can end a file (`rotateAfter`, set when the next record
// would take it past max_bytes, or by the age timer), and the writer closes
// and completes that file after the chunk's write, opening the next one when
// it has a chunk for it; opening, closing and renaming are asynchronous too.
// The pcap reporter (pcap.ts) uses the same writer with its own framing.
//
// Neither ever blocks the sender's event loop: a stuck output (a FIFO nobody
// reads, a full pipe, a hung disk) must not keep the sender from hearing stop
// and signals. Records are copied into 1 MiB chunks; each chunk goes out with
// one fs.write in libuv's thread pool, one at a time, in order. Why the thread
// pool rather than non-blocking writes retried on a timer: O_NONBLOCK means
// nothing to a regular file (a slow disk would still stall the loop), and it
// cannot be set on an inherited stdout without changing it for every process
// sharing it (the terminal, the shell). A write that returns EAGAIN (a FIFO we
// opened non-blocking, a pipe some other process made non-blocking) is retried
// on a timer, 1 ms doubling to 50 ms. At most PENDING_MAX bytes are held:
// there `blocked` turns true and the sender stops reading the ring until
// writable() resolves (the ring then buffers, and drops per its policy);
// records offered beyond that are dropped and counted. An output error
// (EPIPE, ENOSPC, ...) drops the chunk's records, counted, and never throws
// out of report(). abandon() gives up everything pending at once, even while
// a write is stuck in the kernel.
//
// A FIFO is opened with O_NONBLOCK (open() would otherwise wait for a reader).
// With no reader yet (ENXIO), or after its reader left (EPIPE), the reporter
// keeps what it holds and tries again every 100 ms: like `cat > fifo`, the
// output waits for its reader, and the sender waits with it through
// `blocked`; a stop still ends the run (abandon). Chosen over an error so a
// daemon's task survives the consumer on the other end restarting.

import { closeSync, constants, fchmodSync, fstatSync, lstatSync, openSync, statSync, write } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { writeVarint } from '../pipeline/codec-protobuf.js';
import { checkOutputDir, type OpenFile, RotatingFiles, type RotationCounters } from './rotate.js';
import type { EncodedRecord, PluginDefinition, RecordFormat, Reporter, ReporterCounters } from '../plugin/types.js';
import { OtusError } from '../util/errors.js';

/** An I/O error as one line: node's own message already starts with the code (`ENOSPC: no space left on device, write`). */
function errnoText(e: NodeJS.ErrnoException): string {
  const code = e.code ?? 'error';
  return e.message.startsWith(code) ? e.message : `${code}: ${e.message}`;
}

/** Bytes per write. */
const CHUNK = 1 << 20;
/** How often a file output's path is compared with the open file (renamed or deleted under the reporter: made again). */
const PATH_CHECK_MS = 1000;
/** Bytes held (written to no output yet) at which `blocked` turns true. */
export const PENDING_MAX = 4 << 20;
/** writable() resolves once the held bytes are down to this. */
const PENDING_LOW = PENDING_MAX >> 1;
/** Offered records are dropped only beyond this: room for one more chunk-sized record after `blocked`. */
const PENDING_HARD = PENDING_MAX + CHUNK + 16;
/**
 * Below this many bytes the current chunk waits up to WRITE_DELAY_MS for
 * more before it is written: each write is a thread-pool round trip (a worker
 * woken through a futex, its completion through an eventfd) that a sender
 * woken per batch otherwise paid per batch.
 */
const WRITE_MIN = 64 << 10;
const WRITE_DELAY_MS = 1;
const REOPEN_MS = 100;
const RETRY_MIN_MS = 1;
const RETRY_MAX_MS = 50;

class Chunk {
  used = 0;
  records = 0;
  /** The file ends after this chunk (rotation). */
  rotateAfter = false;
  constructor(readonly buf: Uint8Array) {}
}

/** Rotating output (rotate.ts): the files, and when one is complete. */
export interface Rotation {
  files: RotatingFiles;
  /** A file is closed before a record would take it past this many bytes (a bigger record alone makes a file of its own). */
  maxBytes: number;
  /** A file is closed this long after its first record; 0: never by age. */
  maxAgeMs: number;
}

/**
 * How records are laid out in the output, when not as the record's own bytes
 * (json lines, or protobuf with a varint length before each): the pcap reporter's.
 */
export interface RecordFraming {
  /** Bytes `rec` takes; -1 when the format does not carry it (counted as skipped: ReporterCounters.skipped). */
  size(rec: EncodedRecord): number;
  /** Writes `rec` at buf[off..], size(rec) bytes; returns the offset after it. */
  write(rec: EncodedRecord, buf: Uint8Array, off: number): number;
  /** What a file starts with, given its first record (pcap: the file header). */
  header(rec: EncodedRecord): Uint8Array;
  /** The current file's header again (for a FIFO's next reader), null before the first record. */
  repeatHeader(): Uint8Array | null;
  /** Can `rec` go in the file header(first) began (pcap: the same link type)? If not: a new file (rotating), else dropped, counted under `mismatchReason`. */
  sameFile(rec: EncodedRecord): boolean;
  readonly mismatchReason: string;
}

export interface FdOutput {
  /** The open fd, or -1 while a FIFO waits for a reader. */
  fd: number;
  /** Reopens the output (a FIFO whose reader left, or that had none): the fd, -1 for "not yet", or throws. Absent: cannot be reopened. */
  reopen?: () => number;
  /** Close the fd when stopped (not stdout). */
  close: boolean;
  /** Rotating files instead of one fd (fd -1: each file is opened when it has something to hold). */
  rotate?: Rotation;
  /** Bytes already in the output (a file appended to): a framing's header is not written again. */
  size?: number;
  /** A regular file given by path: whether the path now names another file, or none (renamed or deleted under the reporter). */
  replaced?: (fd: number) => boolean;
  /** Makes the file at the path again (appending, never truncating: a task's other senders may have made it first). */
  recreate?: () => number;
}

export class FdReporter implements Reporter {
  /** Records accepted by report(). */
  records = 0;
  /** Bytes of the records accepted. */
  bytes = 0;
  /** Records written out. */
  written = 0;
  /** Records accepted and given up (output failed, or abandon()), plus those offered beyond the bound. */
  dropped = 0;
  /** Records the framing's format does not carry (pcap: no frame); not in `dropped`. */
  private skipped = 0;
  /** The last output error (`EPIPE: ...`), or null. */
  lastError: string | null = null;
  /** `dropped` by cause: offered beyond the bound, given up at a stop deadline, lost to an output error (by its code). */
  private overflow = 0;
  private abandoned = 0;
  private readonly failed: Record<string, number> = {};
  /** The last write failed and nothing has been written since. */
  private failing = false;
  /** The reader of an output that cannot be reopened (stdout) went away: what comes next is dropped, counted. */
  outputGone = false;
  /** Times the output file was renamed or deleted under the reporter and made again at its path. */
  reopened = 0;
  private fd: number;
  private readonly reopenFn: (() => number) | undefined;
  private readonly closeOnStop: boolean;
  private cur: Chunk;
  private readonly queue: Chunk[] = [];
  private readonly spare: Chunk[] = [];
  /** The chunk being written, and how much of it is out. */
  private inFlight: Chunk | null = null;
  private inFlightOff = 0;
  private held = 0;
  private isBlocked = false;
  /** Bumped by abandon(): a write that completes afterwards belongs to nothing. */
  private gen = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private pathTimer: NodeJS.Timeout | null = null;
  private readonly replacedFn: ((fd: number) => boolean) | undefined;
  private readonly recreateFn: (() => number) | undefined;
  private retryMs = RETRY_MIN_MS;
  private kickQueued = false;
  /** The timer that writes a small current chunk WRITE_DELAY_MS after it started waiting, and whether it is armed. */
  private lingerTimer: NodeJS.Timeout | null = null;
  private lingering = false;
  /** Set while the linger timer's kick runs: the small chunk goes now. */
  private lingerDone = false;
  private stopped = false;
  private closePending = false;
  private waiters: (() => void)[] = [];
  private flushers: (() => void)[] = [];

  private readonly rot: Rotation | null;
  private readonly framing: RecordFraming | null;
  /** The file being written when rotating; null between files. */
  private file: OpenFile | null = null;
  /** Bytes given to the current file (held or written), its header included. */
  private fileBytes = 0;
  private ageTimer: NodeJS.Timeout | null = null;
  /** A file being opened or closed (rotating): nothing is written meanwhile. */
  private busy: Promise<void> | null = null;
  private onWritten: (() => void) | null = null;

  constructor(
    out: FdOutput,
    readonly format: RecordFormat,
    framing: RecordFraming | null = null,
  ) {
    this.fd = out.fd;
    this.reopenFn = out.reopen;
    this.closeOnStop = out.close;
    this.rot = out.rotate ?? null;
    this.framing = framing;
    this.fileBytes = out.size ?? 0;
    this.cur = new Chunk(new Uint8Array(CHUNK));
    if (this.fd < 0 && this.rot === null) this.scheduleReopen();
    this.replacedFn = out.replaced;
    this.recreateFn = out.recreate;
    if (this.replacedFn !== undefined && this.recreateFn !== undefined && this.rot === null) this.pathTimer = setInterval(this.checkPath, PATH_CHECK_MS).unref();
  }

  /**
   * The output file was renamed or deleted (by hand, by logrotate): what is
   * written would reach a file nobody finds, so a new one is made at the path
   * (with the framing's header), between two writes.
   */
  private readonly checkPath = (): void => {
    if (this.stopped || this.fd < 0 || this.writing || this.inFlight !== null || !this.replacedFn!(this.fd)) return;
    let fd: number;
    try {
      fd = this.recreateFn!();
    } catch (e) {
      this.lastError = e instanceof Error ? e.message : String(e); // kept writing where it was; tried again at the next check
      return;
    }
    this.closeFd();
    this.fd = fd;
    this.reopened++;
    this.requeueHeader();
    this.kick();
  };

  /** What rotation did (files completed, compressed, removed, failures); null without rotation. */
  rotation(): RotationCounters | null {
    return this.rot?.files.counters ?? null;
  }

  /** Bytes accepted and not yet written. */
  get pendingBytes(): number {
    return this.held;
  }

  /** How full the reporter's buffer is: bytes held over PENDING_MAX (1 = the sender stops reading the ring). */
  get usage(): number {
    return this.held / PENDING_MAX;
  }

  /** False while the output fails (its last write failed, or it is gone). */
  get healthy(): boolean {
    return !this.failing;
  }

  /**
   * Delivery counters: records written (acked), given up at a stop deadline
   * (errors.abandoned), offered beyond the bound (errors.queue_full), lost to
   * output errors by code; and records held now (queued).
   */
  counters(): ReporterCounters {
    let queued = this.cur.records;
    for (const c of this.queue) queued += c.records;
    if (this.inFlight !== null) queued += this.inFlight.records;
    const errors: Record<string, number> = { ...this.failed };
    if (this.overflow > 0) errors.queue_full = this.overflow;
    if (this.abandoned > 0) errors.abandoned = this.abandoned;
    const r = this.rot?.files.counters;
    const c: ReporterCounters = { acked: this.written, timeout: 0, errors, queued };
    if (this.skipped > 0) c.skipped = this.skipped;
    if (r === undefined) return c;
    c.detail = { files_completed: r.closed, files_gzipped: r.gzipped, files_removed: r.removed };
    for (const [k, v] of Object.entries(r.errors)) c.detail[`file_errors_${k}`] = v;
    return c;
  }

  /** Set at PENDING_MAX held, cleared at PENDING_LOW: the sender reads the ring again in steps of megabytes, not records. */
  get blocked(): boolean {
    return this.isBlocked;
  }

  writable(): Promise<void> {
    if (!this.isBlocked) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  report(rec: EncodedRecord): void {
    const fr = this.framing;
    const size = fr === null ? rec.len + 10 : fr.size(rec);
    if (size < 0) {
      this.skipped++;
      return;
    }
    if (this.stopped || this.outputGone || this.held + size > PENDING_HARD) {
      this.dropped++;
      if (this.outputGone) this.failed.gone = (this.failed.gone ?? 0) + 1;
      else this.overflow++;
      return;
    }
    if (this.fileBytes > 0) {
      const other = fr !== null && !fr.sameFile(rec);
      if (this.rot !== null) {
        if (other || this.fileBytes + size > this.rot.maxBytes) this.cutFile();
      } else if (other) return this.fail(fr!.mismatchReason);
    }
    if (fr !== null) this.reportFramed(fr, rec, size);
    else this.reportBytes(rec, size);
    if (this.held >= PENDING_MAX) this.isBlocked = true;
    // Written once the sender yields to its event loop: one write per turn of the loop at most (a small chunk: see WRITE_MIN).
    if (!this.kickQueued && this.inFlight === null && (!this.lingering || this.held >= WRITE_MIN)) {
      this.kickQueued = true;
      setImmediate(this.kick);
    }
  }

  /** A record that cannot be written: dropped, counted under `reason`. */
  private fail(reason: string): void {
    this.dropped++;
    this.failed[reason] = (this.failed[reason] ?? 0) + 1;
  }

  /** The chunk `need` more bytes go into. */
  private room(need: number): Chunk {
    let c = this.cur;
    if (c.used + need > c.buf.length) {
      if (c.used > 0) this.queue.push(c);
      c = this.cur = need > CHUNK ? new Chunk(new Uint8Array(need)) : this.spare.pop() ?? new Chunk(new Uint8Array(CHUNK));
    }
    return c;
  }

  private reportFramed(fr: RecordFraming, rec: EncodedRecord, size: number): void {
    const h = this.fileBytes === 0 ? fr.header(rec) : null;
    const c = this.room(size + (h?.length ?? 0));
    let o = c.used;
    if (h !== null) {
      c.buf.set(h, o);
      o += h.length;
    }
    o = fr.write(rec, c.buf, o);
    this.took(c, o, rec.len);
  }

  /** Accounts for a record written into c up to o. */
  private took(c: Chunk, o: number, len: number): void {
    const n = o - c.used;
    this.held += n;
    if (this.fileBytes === 0 && this.rot !== null && this.rot.maxAgeMs > 0) this.ageTimer = setTimeout(this.onAge, this.rot.maxAgeMs).unref();
    this.fileBytes += n;
    c.used = o;
    c.records++;
    this.records++;
    this.bytes += len;
  }

  /** The current file is complete after what is held now: the next record starts another. */
  private cutFile(): void {
    this.cur.rotateAfter = true;
    this.queue.push(this.cur);
    this.cur = this.spare.pop() ?? new Chunk(new Uint8Array(CHUNK));
    this.fileBytes = 0;
    if (this.ageTimer !== null) clearTimeout(this.ageTimer);
    this.ageTimer = null;
  }

  private readonly onAge = (): void => {
    this.ageTimer = null;
    if (this.fileBytes === 0 || this.stopped) return;
    this.cutFile();
    this.kick();
  };

  private reportBytes(rec: EncodedRecord, need: number): void {
    const c = this.room(need);
    if (c.used + need > c.buf.length) {
      if (c.used > 0) this.queue.push(c);
  }
    let o = c.used;
    if (this.format === 'protobuf') o = writeVarint(c.buf, o, rec.len);
    c.buf.set(rec.buf.subarray(rec.off, rec.off + rec.len), o);
    o += rec.len;
    this.took(c, o, rec.len);
  }

  /** Resolves when nothing is held: all written, or given up (counted in `dropped`; see lastError). Never rejects. */
  flush(): Promise<void> {
    if (this.held === 0) return Promise.resolve();
    this.lingerDone = true;
    this.kick();
    this.lingerDone = false;
    if (this.held === 0) return Promise.resolve();
    return new Promise((r) => this.flushers.push(r));
  }

  abandon(): number {
    let n = this.cur.records;
    for (const c of this.queue) n += c.records;
    if (this.inFlight !== null) n += this.inFlight.records;
    this.queue.length = 0;
    this.cur.used = 0;
    this.cur.records = 0;
    // A write stuck in the thread pool keeps its buffer: the chunk is not reused.
    if (this.inFlight !== null) this.gen++;
    this.inFlight = null;
    this.held = 0;
    this.dropped += n;
    this.abandoned += n;
    this.settle();
    return n;
  }

  /** Waits until everything held is written (abandon() first to stop at a deadline), then closes the output. */
  async stop(): Promise<void> {
    await this.flush();
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.pathTimer !== null) clearInterval(this.pathTimer);
    this.pathTimer = null;
    if (this.ageTimer !== null) clearTimeout(this.ageTimer);
    this.ageTimer = null;
    if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
    this.lingering = false;
    this.settle();
    if (this.rot !== null) {
      // The last file is complete too: after the write in flight (abandoned) and any open or close under way.
      while (this.writing) await new Promise<void>((r) => (this.onWritten = r));
      while (this.busy !== null) await this.busy;
      if (this.file !== null) await this.rot.files.close(this.file);
      this.file = null;
      this.fd = -1;
      await this.rot.files.idle();
      return;
    }
    if (!this.closeOnStop || this.fd < 0) return;
    // A write still in the thread pool (abandoned) may yet run on this fd number: close after it.
    if (this.writing) this.closePending = true;
    else this.closeFd();
  }

  /** A write has been issued and its callback has not run (possibly abandoned). */
  private writing = false;

  private closeFd(): void {
    if (this.fd < 0) return;
    try {
      closeSync(this.fd);
    } catch {
      // already gone
    }
    this.fd = -1;
  }

  private readonly kick = (): void => {
    this.kickQueued = false;
    if (this.inFlight !== null || this.writing || this.retryTimer !== null || this.busy !== null) return;
    if (this.rot !== null && this.fd < 0) {
      // No file open: empty chunks (a rotation with nothing after it) need none.
      while (this.queue.length > 0 && this.queue[0]!.used === 0) this.recycle(this.queue.shift()!);
      if (this.queue.length > 0 || this.cur.used > 0) this.openNext();
      else this.settle();
      return;
    }
    if (this.fd < 0) return;
    if (this.queue.length === 0 && this.cur.used > 0 && this.cur.used < WRITE_MIN && !this.lingerDone && this.flushers.length === 0 && !this.stopped) {
      this.linger();
      return;
    }
    const c = this.queue.shift() ?? (this.cur.used > 0 ? this.takeCur() : null);
    if (c === null) {
      this.settle();
      return;
    }
    if (c.used === 0) {
      this.chunkDone(c);
      return;
    }
    this.inFlight = c;
    this.inFlightOff = 0;
    this.issue();
  };

  /** Arms the write of the small current chunk, WRITE_DELAY_MS from when it first waited (one timer, refreshed: no allocation). */
  private linger(): void {
    if (this.lingering) return;
    this.lingering = true;
    if (this.lingerTimer === null) this.lingerTimer = setTimeout(this.onLinger, WRITE_DELAY_MS);
    else this.lingerTimer.refresh();
  }

  private readonly onLinger = (): void => {
    this.lingering = false;
    this.lingerDone = true;
    this.kick();
    this.lingerDone = false;
  };

  /** Opens the next rotating file; on failure what is held is given up (counted by the error's code) and opening is retried in REOPEN_MS. */
  private openNext(): void {
    const rot = this.rot!;
    this.busy = rot.files.open(Date.now()).then(
      (f) => {
        this.busy = null;
        if (this.stopped && this.held === 0) {
          void rot.files.close(f);
          return;
        }
        this.file = f;
        this.fd = f.fd;
        this.kick();
      },
      (e: NodeJS.ErrnoException) => {
        this.busy = null;
        this.lastError = errnoText(e);
        this.failing = true;
        let n = this.cur.records;
        for (const c of this.queue) n += c.records;
        for (const c of this.queue) this.recycle(c);
        this.queue.length = 0;
        this.cur.used = 0;
        this.cur.records = 0;
        this.held = 0;
        this.fileBytes = 0;
        if (this.ageTimer !== null) clearTimeout(this.ageTimer);
        this.ageTimer = null;
        this.dropped += n;
        const code = e.code ?? 'error';
        this.failed[code] = (this.failed[code] ?? 0) + n;
        this.settle();
        if (!this.stopped) this.retryTimer = setTimeout(this.retry, REOPEN_MS);
      },
    );
  }

  /** A chunk is out (or lost): recycled, and the file closed after it when it ends one. */
  private chunkDone(c: Chunk): void {
    const rotate = c.rotateAfter;
    this.recycle(c);
    if (rotate && this.file !== null) {
      const f = this.file;
      this.file = null;
      this.fd = -1;
      this.busy = this.rot!.files.close(f).then(() => {
        this.busy = null;
        this.kick();
      });
    }
    this.settle();
    this.kick();
  }

  private takeCur(): Chunk {
    const c = this.cur;
    this.cur = this.spare.pop() ?? new Chunk(new Uint8Array(CHUNK));
    return c;
  }

  private issue(): void {
    const c = this.inFlight!;
    const gen = this.gen;
    this.writing = true;
    write(this.fd, c.buf, this.inFlightOff, c.used - this.inFlightOff, null, (err, n) => this.written_(gen, c, err, n));
  }

  private written_(gen: number, c: Chunk, err: NodeJS.ErrnoException | null, n: number): void {
    this.writing = false;
    if (this.onWritten !== null) {
      this.onWritten();
      this.onWritten = null;
    }
    if (gen !== this.gen || this.inFlight !== c) {
      // Abandoned while in the kernel: nothing of it is ours any more.
      if (this.closePending) {
        this.closePending = false;
        this.closeFd();
      }
      if (!this.stopped) this.kick();
      return;
    }
    if (err !== null) {
      if (err.code === 'EAGAIN') {
        this.retryTimer = setTimeout(this.retry, this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
        return;
      }
      // The chunk is lost, counted (records of it written before a short write are counted too).
      this.lastError = errnoText(err);
      this.failing = true;
      this.dropped += c.records;
      this.failed[err.code ?? 'error'] = (this.failed[err.code ?? 'error'] ?? 0) + c.records;
      this.held -= c.used - this.inFlightOff;
      this.inFlight = null;
      if (this.rot !== null) {
        this.chunkDone(c);
        return;
      }
      this.recycle(c);
      if (err.code === 'EPIPE' && this.reopenFn !== undefined) {
        // A FIFO's reader left: keep the rest for the next one.
        this.closeFd();
        this.scheduleReopen();
      } else if (err.code === 'EPIPE') {
        // `otus replay --out - | head`: nobody will read again; give up what is held (an error: the output is gone).
        this.outputGone = true;
        const n = this.abandon();
        this.abandoned -= n;
        this.failed.gone = (this.failed.gone ?? 0) + n;
      }
      this.settle();
      this.kick();
      return;
    }
    this.retryMs = RETRY_MIN_MS;
    this.failing = false;
    this.wroteSome = true;
    this.inFlightOff += n;
    this.held -= n;
    if (this.inFlightOff < c.used) {
      this.issue();
      return;
    }
    this.written += c.records;
    this.inFlight = null;
    this.chunkDone(c);
  }

  private readonly retry = (): void => {
    this.retryTimer = null;
    if (this.stopped && this.held === 0) return;
    if (this.inFlight !== null && this.fd >= 0) this.issue();
    else this.kick();
  };

  private scheduleReopen(): void {
    if (this.stopped || this.reopenFn === undefined) return;
    this.retryTimer = setTimeout(this.reopen, REOPEN_MS);
  }

  private readonly reopen = (): void => {
    this.retryTimer = null;
    try {
      this.fd = this.reopenFn!();
    } catch (e) {
      // Gone for good (removed, replaced by something we refuse): give up what is held, and what comes.
      this.lastError = e instanceof Error ? e.message : String(e);
      this.failing = true;
      const n = this.abandon();
      this.abandoned -= n;
      this.failed.gone = (this.failed.gone ?? 0) + n;
      this.stopped = true;
      return;
    }
    if (this.fd < 0) {
      this.scheduleReopen();
      return;
    }
    // A FIFO's next reader starts a stream of its own: it gets the file header again (pcap) before the next chunk.
    this.requeueHeader();
    this.kick();
  };

  /** A new output (a FIFO's next reader, a file made again) gets the framing's header (pcap) before the next chunk, if the last one had it. */
  private requeueHeader(): void {
    const h = this.wroteSome ? this.framing?.repeatHeader() ?? null : null;
    this.wroteSome = false;
    if (h !== null) {
      const c = new Chunk(h);
      c.used = h.length;
      this.held += h.length;
      this.queue.unshift(c);
    }
  }

  /** Something reached the output since it was (re)opened. */
  private wroteSome = false;

  private recycle(c: Chunk): void {
    c.used = 0;
    c.records = 0;
    c.rotateAfter = false;
    if (c.buf.length === CHUNK && this.spare.length < 2) this.spare.push(c);
  }

  /** Wakes writable() and flush() waiters whose condition holds. */
  private settle(): void {
    if (this.isBlocked && (this.held <= PENDING_LOW || this.stopped)) this.isBlocked = false;
    if (this.waiters.length > 0 && !this.isBlocked) {
      const w = this.waiters;
      this.waiters = [];
      for (const r of w) r();
    }
    if (this.flushers.length > 0 && this.held === 0) {
      const f = this.flushers;
      this.flushers = [];
      for (const r of f) r();
    }
  }
}

const ENXIO = 'ENXIO';

function configError(path: string, why: string): OtusError {
  return new OtusError('OTUS_ERR_CONFIG', `reporter file: path ${path}: ${why}`);
}

/**
 * Refuses an output path another local user could redirect: its directory
 * world-writable without the sticky bit (anyone may replace the file), or the
 * path itself a symbolic link. Run by the supervisor before forking, and again
 * (with O_NOFOLLOW) by the open itself.
 */
export function checkOutputPath(path: string): void {
  const abs = resolve(path);
  const dir = dirname(abs);
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    throw configError(abs, `directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (!st.isDirectory()) throw configError(abs, `${dir} is not a directory`);
  if ((st.mode & 0o002) !== 0 && (st.mode & 0o1000) === 0) {
    throw configError(abs, `directory ${dir} is writable by every user and not sticky (mode ${(st.mode & 0o7777).toString(8)}): another user could replace the file; choose another directory`);
  }
  try {
    if (lstatSync(abs).isSymbolicLink()) throw configError(abs, 'is a symbolic link: refused (give the real path; for standard output, --out -)');
  } catch (e) {
    if (e instanceof OtusError) throw e;
    // absent: it will be created
  }
}

/** Parses a `mode` config value ("0640"). */
export function parseMode(mode: string): number {
  if (!/^0?[0-7]{3}$/.test(mode)) throw new OtusError('OTUS_ERR_CONFIG', `reporter file: mode ${JSON.stringify(mode)}: an octal mode such as "0640"`);
  return parseInt(mode, 8);
}

/**
 * Opens the file reporter's output: O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
 * O_NOFOLLOW | O_NONBLOCK with `mode`, after checkOutputPath (`append`, for a
 * sender that continues one that died or a task's further sender: no O_TRUNC).
 * O_APPEND: a task's senders share the file, each write landing whole at its end. A regular file is then given
 * exactly `mode` (whatever the umask, or an older file's mode). A FIFO without
 * a reader yet opens as fd -1, with reopen() to try again.
 */
export function openOutput(path: string, mode: number, append = false): FdOutput {
  const abs = resolve(path);
  checkOutputPath(abs);
  const flags = constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  const start = append ? constants.O_APPEND : constants.O_TRUNC | constants.O_APPEND;
  const open = (create: boolean, how = start): number => {
    try {
      const fd = openSync(abs, create ? flags | constants.O_CREAT | how : flags, mode);
      const st = fstatSync(fd);
      if (st.isFile()) fchmodSync(fd, mode);
      else if (!st.isFIFO() && !st.isCharacterDevice() && !st.isSocket()) {
        closeSync(fd);
        throw configError(abs, 'not a regular file, FIFO or character device');
      }
      return fd;
    } catch (e) {
      if (e instanceof OtusError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === ENXIO) return -1; // a FIFO nobody reads yet
      if (code === 'ELOOP') throw configError(abs, 'is a symbolic link: refused (give the real path; for standard output, --out -)');
      throw configError(abs, `cannot open: ${(e as Error).message}`);
    }
  };
  const fd = open(true);
  const replaced = (f: number): boolean => {
    const st = fstatSync(f);
    if (!st.isFile()) return false;
    try {
      const p = lstatSync(abs);
      return p.ino !== st.ino || p.dev !== st.dev;
    } catch {
      return true; // deleted
    }
  };
  const recreate = (): number => {
    checkOutputPath(abs);
    return open(true, constants.O_APPEND);
  };
  // Reopened only to find a FIFO's next reader: no O_CREAT (a FIFO removed meanwhile must not become a file).
  return { fd, reopen: () => open(false), replaced, recreate, close: true };
}

/** Rotation settings shared by the file and pcap reporters (docs/reporters.md, "Rotating files"). */
export interface RotationConfig {
  /** A directory of rotating files (instead of `path`). */
  dir?: string;
  /** Names start with this; default `otus-<task id>`. */
  prefix?: string;
  /** Bytes per file at most (a bigger record alone makes a file of its own). */
  max_bytes?: number;
  /** Seconds after its first record a file is closed; 0: by size only. */
  max_age?: number;
  /** Completed files kept (the oldest removed); 0 keeps all. */
  keep?: number;
  gzip?: boolean;
  gzip_level?: number;
}

/** The schema properties of RotationConfig. */
// Their defaults are applied by rotationFor, not by the schema: a `path` output's effective config shows none of them.
export const ROTATION_SCHEMA = {
  dir: { type: 'string', minLength: 1 },
  prefix: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$' },
  max_bytes: { type: 'integer', minimum: 4096 },
  max_age: { type: 'number', minimum: 0 },
  keep: { type: 'integer', minimum: 0 },
  gzip: { type: 'boolean' },
  gzip_level: { type: 'integer', minimum: 1, maximum: 9 },
} as const;

const ROTATION_DEFAULTS = { max_bytes: 100 * 1024 * 1024, max_age: 3600, keep: 24, gzip_level: 6 } as const;

/** `path` is required unless `dir` is given (both: checkFileOutput refuses). */
export const PATH_OR_DIR = { if: { not: { required: ['dir'] } }, then: { required: ['path'] } } as const;

export interface FileReporterConfig extends RotationConfig {
  path?: string;
  format: RecordFormat;
  /** Octal file mode, default "0640". */
  mode: string;
}

/**
 * Checks a file-like reporter's output before anything is forked: exactly one
 * of `path` (checkOutputPath) and `dir` (checkOutputDir). `what`: `reporter file`.
 */
export function checkFileOutput(what: string, c: { path?: string; dir?: string }): void {
  if ((c.path === undefined) === (c.dir === undefined)) {
    throw new OtusError('OTUS_ERR_CONFIG', `${what}: give exactly one of path (one file, FIFO or device) and dir (rotating files)`);
  }
  if (c.path !== undefined) checkOutputPath(c.path);
  else checkOutputDir(c.dir!, what);
}

/**
 * The rotating files of a `dir` config (its prefix defaulting to `otus-<task>`), for files of extension `ext`.
 * Sender j > 0 of a task with several writes under `<prefix>-s<j>`: each completes and prunes only its own files.
 */
export function rotationFor(what: string, c: RotationConfig, taskId: string, sender: number, ext: string, mode: number, keepCalls = 0): Rotation {
  const files = new RotatingFiles({
    dir: c.dir!,
    prefix: (c.prefix ?? `otus-${taskId}`) + (sender > 0 ? `-s${sender}` : ''),
    ext,
    mode,
    gzipLevel: c.gzip === true ? c.gzip_level ?? ROTATION_DEFAULTS.gzip_level : 0,
    keep: c.keep ?? ROTATION_DEFAULTS.keep,
    keepCalls,
    what,
  });
  return { files, maxBytes: c.max_bytes ?? ROTATION_DEFAULTS.max_bytes, maxAgeMs: (c.max_age ?? ROTATION_DEFAULTS.max_age) * 1000 };
}

export const fileReporter: PluginDefinition<'reporter', FileReporterConfig> = {
  meta: {
    name: 'file',
    version: '0.3.0',
    kind: 'reporter',
    labels: [],
    description: 'Writes records to a file or FIFO, or to rotating files in a directory: NDJSON, or length-delimited otus.v1.Record protobuf.',
    configSchema: {
      type: 'object',
      properties: {
        path: { type: 'string', minLength: 1 },
        format: { enum: ['json', 'protobuf'], default: 'json' },
        mode: { type: 'string', pattern: '^0?[0-7]{3}$', default: '0640' },
        ...ROTATION_SCHEMA,
      },
      ...PATH_OR_DIR,
      additionalProperties: false,
    },
  },
  init(ctx) {
    const c = ctx.config;
    checkFileOutput('reporter file', c);
    const mode = parseMode(c.mode ?? '0640');
    if (c.dir !== undefined) {
      const rot = rotationFor('reporter file', c, ctx.taskId, ctx.sender ?? 0, c.format === 'protobuf' ? 'pb' : 'ndjson', mode);
      return new FdReporter({ fd: -1, close: true, rotate: rot }, c.format);
    }
    return new FdReporter(openOutput(c.path!, mode, ctx.resumed === true), c.format);
  },
};

export const stdoutReporter: PluginDefinition<'reporter', Record<string, never>> = {
  meta: {
    name: 'console',
    version: '0.2.0',
    kind: 'reporter',
    labels: [],
    description: 'Writes NDJSON records to standard output.',
    configSchema: { type: 'object', properties: {}, additionalProperties: false },
  },
  init() {
    return new FdReporter({ fd: 1, close: false }, 'json');
  },
};
