// The Loki output: log lines pushed to Loki's HTTP API
// (POST /loki/api/v1/push, JSON: one stream, its labels, [ns, line] pairs)
// in batches of `batch_size` lines or every `batch_timeout_ms`. Written here
// rather than taken from pino-loki: that one runs as a pino transport in a
// worker thread, so what it fails to push is invisible to the daemon, and it
// would be one pusher per process. Here the supervisor alone pushes (the
// children's lines reach it over IPC, src/log/logger.ts), its counters go
// to `otusctl status`, and memory is bounded: at most `max_buffer_bytes` of
// lines are held (the batch in flight included); past that the oldest are
// dropped, counted. While Loki is down a batch is retried with backoff (1 s
// doubling to 10 s); a batch Loki refuses (4xx other than 429: too old, too
// big) is dropped, counted, as retrying cannot help. Nothing here throws
// into the logger.

/** Bytes of lines in one push (Loki's default gRPC limit is 4 MiB a request). */
const MAX_PUSH_BYTES = 1 << 20;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 10_000;

export interface LokiSettings {
  /** The push URL, e.g. http://loki:3100/loki/api/v1/push. */
  endpoint: string;
  /** The stream's labels (the node id is added as `node`). */
  labels: Record<string, string>;
  /** Sent with every push (authorization, X-Scope-OrgID). */
  headers: Record<string, string>;
  batchSize: number;
  batchTimeoutMs: number;
  maxBufferBytes: number;
  timeoutMs: number;
}

export interface LokiStats {
  endpoint: string;
  /** Pushes Loki accepted, and their lines. */
  pushes: number;
  pushed_lines: number;
  /** Pushes that failed (no answer, an error status); their lines are retried unless Loki refused them. */
  failed_pushes: number;
  /** Lines given up: the buffer was full, Loki refused their batch, or the daemon stopped before they went. */
  dropped_lines: number;
  buffered_lines: number;
  buffered_bytes: number;
  last_error: string | null;
  last_push_at: string | null;
}

interface Entry {
  ts: string;
  line: string;
  bytes: number;
}

export class LokiPush {
  private readonly stream: Record<string, string>;
  private queue: Entry[] = [];
  private head = 0;
  /** The batch being pushed: out of the queue, still counted in `bytes`. */
  private batch: Entry[] | null = null;
  private bytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private retryMs = 0;
  private lastMs = 0;
  private closed = false;
  private inFlight: Promise<void> = Promise.resolve();
  private readonly s: Omit<LokiStats, 'endpoint' | 'buffered_lines' | 'buffered_bytes'> = {
    pushes: 0,
    pushed_lines: 0,
    failed_pushes: 0,
    dropped_lines: 0,
    last_error: null,
    last_push_at: null,
  };

  constructor(
    private readonly o: LokiSettings,
    nodeId: string,
  ) {
    this.stream = { ...o.labels, node: nodeId };
  }

  /** One log line (without its newline). */
  write(line: string): void {
    if (this.closed) return;
    const bytes = Buffer.byteLength(line) + 32;
    if (bytes > this.o.maxBufferBytes) {
      this.s.dropped_lines++;
      return;
    }
    while (this.bytes + bytes > this.o.maxBufferBytes && this.head < this.queue.length) this.dropOldest();
    if (this.bytes + bytes > this.o.maxBufferBytes) {
      // Only the batch in flight is held: this line goes.
      this.s.dropped_lines++;
      return;
    }
    // Loki orders a stream by time: never go back, even if the clock does.
    const ms = Math.max(Date.now(), this.lastMs);
    this.lastMs = ms;
    this.queue.push({ ts: `${ms}000000`, line, bytes });
    this.bytes += bytes;
    this.schedule();
  }

  stats(): LokiStats {
    return {
      endpoint: this.o.endpoint,
      ...this.s,
      buffered_lines: this.queue.length - this.head + (this.batch?.length ?? 0),
      buffered_bytes: this.bytes,
    };
  }

  /** A last push of what is held (within `timeoutMs`), then nothing more; lines left are counted as dropped. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.inFlight;
    if (this.pending() > 0) await this.push(Math.min(timeoutMs, this.o.timeoutMs));
    this.s.dropped_lines += this.pending();
    this.queue = [];
    this.head = 0;
    this.bytes = 0;
  }

  private pending(): number {
    return this.queue.length - this.head;
  }

  private dropOldest(): void {
    this.bytes -= this.queue[this.head]!.bytes;
    this.head++;
    this.s.dropped_lines++;
    this.compact();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** Pushes at once when a batch is full, else within batch_timeout; never while a push is out or a retry waits. */
  private schedule(): void {
    if (this.batch !== null || this.closed) return;
    if (this.retryMs > 0 && this.timer) return;
    if (this.pending() >= this.o.batchSize) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.inFlight = this.push(this.o.timeoutMs);
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = null;
      if (this.pending() > 0) this.inFlight = this.push(this.o.timeoutMs);
    }, this.o.batchTimeoutMs).unref();
  }

  private async push(timeoutMs: number): Promise<void> {
    const batch: Entry[] = [];
    let size = 0;
    while (this.head < this.queue.length && batch.length < this.o.batchSize && (batch.length === 0 || size + this.queue[this.head]!.bytes <= MAX_PUSH_BYTES)) {
      const e = this.queue[this.head++]!;
      batch.push(e);
      size += e.bytes;
    }
    this.compact();
    this.batch = batch;
    const body = JSON.stringify({ streams: [{ stream: this.stream, values: batch.map((e) => [e.ts, e.line]) }] });
    let retry = false;
    try {
      const res = await fetch(this.o.endpoint, {
        method: 'POST',
        headers: { ...this.o.headers, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.ok) {
        await res.arrayBuffer().catch(() => undefined);
        this.s.pushes++;
        this.s.pushed_lines += batch.length;
        this.s.last_push_at = new Date().toISOString();
        this.retryMs = 0;
      } else {
        const text = (await res.text().catch(() => '')).slice(0, 200).trim();
        this.fail(`HTTP ${res.status}${text ? `: ${text}` : ''}`);
        retry = res.status === 429 || res.status >= 500;
        if (!retry) this.s.dropped_lines += batch.length;
      }
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      this.fail(err.name === 'TimeoutError' ? `no answer in ${timeoutMs} ms` : `${err.cause?.code ?? err.name}: ${err.cause?.message ?? err.message}`);
      retry = true;
    }
    this.batch = null;
    for (const e of batch) this.bytes -= e.bytes;
    if (retry && !this.closed) {
      // Back in front of the queue, and within the bound again (the oldest go first).
      this.queue = batch.concat(this.queue.slice(this.head));
      this.head = 0;
      for (const e of batch) this.bytes += e.bytes;
      while (this.bytes > this.o.maxBufferBytes && this.pending() > 0) this.dropOldest();
      this.retryMs = this.retryMs === 0 ? RETRY_MIN_MS : Math.min(this.retryMs * 2, RETRY_MAX_MS);
      this.timer = setTimeout(() => {
        this.timer = null;
        if (this.pending() > 0) this.inFlight = this.push(this.o.timeoutMs);
      }, this.retryMs).unref();
      return;
    }
    if (retry) this.s.dropped_lines += batch.length;
    if (!this.closed && this.pending() > 0) this.schedule();
  }

  private fail(why: string): void {
    this.s.failed_pushes++;
    this.s.last_error = why;
  }
}
