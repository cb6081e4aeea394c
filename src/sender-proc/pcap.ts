// The `pcap` reporter (docs/reporters.md, "pcap"): the frame of every record
// the task keeps (after its filter, parsers and processors) written to pcap
// files that tcpdump and Wireshark open. The frames come with the records
// (the task's `raw: true`, which the supervisor requires for this reporter);
// the record's own fields are not written, and the sender does not expand
// them (`wireOnly`): the frame and labels are read from the wire record.
//
// The main output is the file reporter's writer (FdReporter, reporters.ts)
// with a pcap framing: one file (`path`) or rotating files (`dir`), each
// starting with the classic pcap header for the link type of its first frame
// (a frame of another link type starts a new file) and nanosecond
// timestamps when its first record had them (magic a1b23c4d; else
// microseconds, a1b2c3d4).
//
// `per_call: true` writes each call's frames (records with a call-id label:
// `call-id`, else `sip.call-id`) to a file of its own, `PREFIX-call-<id>-...`,
// completed (renamed from its temporary name) at the end of the call: its
// `sip.call` record (the task's `sip: {calls: true}`: the sip parser's own
// reading of the call's end, which a 401/407 or a failed re-INVITE does not
// end) plus `call_grace` seconds; without such records (until the first one
// comes) its end marked by SIP labels (a BYE or CANCEL, or a final response
// >= 300 to an INVITE, as the sip parser's `bye_grace` reads them) plus
// `call_grace` (a task without call records, or a reporter not told its task);
// or `call_idle` seconds without a frame; all in capture time, so
// a replay gives the same files at any speed (while no record comes, the
// capture clock is taken to run with the wall clock). At most `max_open`
// call files hold a descriptor: opening another closes the least recently
// written one, which is reopened for append when its call has more
// (`evicted`, `reopened`). Frames without a call-id go to the main output,
// or are dropped (`no_call_id: drop`, counted as `no_call_id`). Call files
// are written in batches (a call's buffer at 64 KiB, every second, at the
// end, and all of them when together they hold `call_buffer` bytes: then
// the sender waits, `blocked`, until half is written), never from report().
// With many calls at once each call's share of `call_buffer` is its write
// size: 1000 calls through 4 MiB made 4 KiB writes, each often needing a
// descriptor reopened, and cost the sender 1.15x the CPU per record of 16 MiB.
//
// `sip.call` and `rtp.stats` records have no frame by nature: nothing of
// them belongs in a pcap. They are counted as delivered (`acked`) and in
// `detail.summary_records`, not as skipped.

import { close, constants, fstatSync, open, write } from 'node:fs';
import { ascii, copyBytes, writeU16LE, writeU32LE } from '../util/bytes.js';
import type { WireRecord } from '../pipeline/wire.js';
import { LabelKind, PayloadKind } from '../pipeline/wire.js';
import type { EncodedRecord, PluginDefinition, Reporter, ReporterCounters } from '../plugin/types.js';
import { OtusError } from '../util/errors.js';
import { checkFileOutput, FdReporter, openOutput, parseMode, PATH_OR_DIR, type RecordFraming, ROTATION_SCHEMA, type RotationConfig, rotationFor } from './reporters.js';
import type { RotatingFiles } from './rotate.js';

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const SNAPLEN = 262144;

/** The 24-byte classic pcap file header. */
export function pcapHeader(linkType: number, nanos: boolean): Uint8Array {
  const h = new Uint8Array(24);
  writeU32LE(h, 0, nanos ? MAGIC_NS : MAGIC_US);
  writeU16LE(h, 4, 2);
  writeU16LE(h, 6, 4);
  writeU32LE(h, 16, SNAPLEN);
  writeU32LE(h, 20, linkType);
  return h;
}

/** A record's frame as a pcap record (16-byte header, the bytes) at buf[off..]; returns the offset after it. */
function writeFrame(w: WireRecord, nanos: boolean, buf: Uint8Array, off: number): number {
  const sec = w.hasTs ? w.tsSec : 0;
  const frac = w.hasTs ? (nanos ? w.tsNsec : Math.floor(w.tsNsec / 1000)) : 0;
  writeU32LE(buf, off, sec >>> 0);
  writeU32LE(buf, off + 4, frac);
  writeU32LE(buf, off + 8, w.rawLen);
  writeU32LE(buf, off + 12, Math.max(w.len, w.rawLen));
  return copyBytes(buf, off + 16, w.buf, w.rawOff, w.rawLen);
}

/** The framing of one pcap output: its link type and precision are its first frame's. */
class PcapFraming implements RecordFraming {
  readonly mismatchReason = 'link_type';
  private linkType = -1;
  private nanos = false;

  size(rec: EncodedRecord): number {
    const w = rec.meta?.wire;
    return w === undefined || w.rawLen < 0 ? -1 : 16 + w.rawLen;
  }

  header(rec: EncodedRecord): Uint8Array {
    const w = rec.meta!.wire;
    this.linkType = w.rawLinkType;
    this.nanos = w.tsDigits === 9;
    return pcapHeader(this.linkType, this.nanos);
  }

  sameFile(rec: EncodedRecord): boolean {
    return rec.meta!.wire.rawLinkType === this.linkType;
  }

  repeatHeader(): Uint8Array | null {
    return this.linkType < 0 ? null : pcapHeader(this.linkType, this.nanos);
  }

  write(rec: EncodedRecord, buf: Uint8Array, off: number): number {
    return writeFrame(rec.meta!.wire, this.nanos, buf, off);
  }
}

export interface PcapReporterConfig extends RotationConfig {
  path?: string;
  mode: string;
  per_call?: boolean;
  /** Frames without a call-id, with per_call: `main` (the main output) or `drop`. */
  no_call_id?: 'main' | 'drop';
  call_grace?: number;
  call_idle?: number;
  max_open?: number;
  keep_calls?: number;
  call_buffer?: number;
}

/** What the call files did. */
export interface CallFileCounters {
  /** Call files opened, completed, descriptors closed to make room (LRU), and files reopened for append. */
  opened: number;
  completed: number;
  evicted: number;
  reopened: number;
  /** Calls with a file now, and of them with a descriptor. */
  calls: number;
  open: number;
}

const CALL_BUF = 4096;
const CALL_BUF_MAX = 64 * 1024;


const SIP_METHOD = ascii('sip.method');
const SIP_STATUS = ascii('sip.status');
const SIP_CSEQ = ascii('sip.cseq');
const SIP_CALL = ascii('sip.call');
const RTP_STATS = ascii('rtp.stats');
const ENDED = ascii('ended');

/**
 * Is this sip.call record's `state` `ended`? Protobuf (otus.sip.v1.SipCall,
 * field 2, a string) walked field by field; JSON read for its key.
 */
function callEnded(w: WireRecord): boolean {
  const b = w.buf;
  let o = w.payloadOff;
  const end = o + w.payloadLen;
  if (w.payloadKind === PayloadKind.Json) return Buffer.from(b.buffer, b.byteOffset + o, w.payloadLen).includes('"state":"ended"');
  if (w.payloadKind !== PayloadKind.Protobuf) return false;
  const varint = (): number => {
    let v = 0;
    for (let mul = 1; o < end && mul < 2 ** 63; mul *= 128) {
      const x = b[o++]!;
      v += (x & 127) * mul;
      if (x < 128) return v;
    }
    return -1;
  };
  while (o < end) {
    const tag = varint();
    if (tag < 0) return false;
    const wt = tag % 8;
    if (wt === 0) {
      if (varint() < 0) return false;
    } else if (wt === 1) o += 8;
    else if (wt === 5) o += 4;
    else if (wt === 2) {
      const n = varint();
      if (n < 0 || o + n > end) return false;
      if (Math.floor(tag / 8) === 2) {
        if (n !== ENDED.length) return false;
        for (let i = 0; i < n; i++) if (b[o + i] !== ENDED[i]) return false;
        return true;
      }
      o += n;
    } else return false;
  }
  return false;
}

class CallFile {
  /** Descriptor, -1 while closed (not yet opened, or evicted). */
  fd = -1;
  tmp = '';
  final = '';
  buf = new Uint8Array(CALL_BUF);
  used = 0;
  records = 0;
  linkType = -1;
  nanos = false;
  /** Capture time (s) of its last frame; when it ends (-1: not marked), and whether SIP labels marked it (not its sip.call record). */
  lastTs = 0;
  endAt = -1;
  byLabels = false;
  lastUse = 0;
  pumping = false;
  ending = false;
  constructor(
    readonly id: string,
    readonly firstMs: number,
  ) {}
}

/** The call-id as a file name part: [A-Za-z0-9._@-] kept, others `_`, at most 64 characters (the file's sequence number keeps names apart). */
function nameOf(id: string): string {
  return id.replace(/[^A-Za-z0-9._@-]/g, '_').slice(0, 64);
}

const openAppend = (path: string): Promise<number> =>
  new Promise((res, rej) => open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW, (e, fd) => (e === null ? res(fd) : rej(e))));
const closeP = (fd: number): Promise<void> => new Promise((res) => close(fd, () => res()));
function writeAll(fd: number, b: Uint8Array, n: number): Promise<void> {
  return new Promise((res, rej) => {
    let off = 0;
    const step = (): void =>
      write(fd, b, off, n - off, null, (e, k) => {
        if (e !== null) return rej(e);
        off += k;
        if (off < n) step();
        else res();
      });
    step();
  });
}

/** Per-call pcap files (see the header comment). */
export class CallFiles {
  readonly counters: CallFileCounters = { opened: 0, completed: 0, evicted: 0, reopened: 0, calls: 0, open: 0 };
  written = 0;
  dropped = 0;
  readonly errors: Record<string, number> = {};
  /** Records without a frame (ReporterCounters.skipped); not in `dropped`. */
  skipped = 0;
  lastError: string | null = null;
  held = 0;
  private heldRecords = 0;
  private readonly calls = new Map<string, CallFile>();
  private readonly openFiles = new Set<CallFile>();
  private use = 0;
  /** Capture time of the last record (s) and the wall time it came (ms): the capture clock while nothing comes. */
  private capTs = 0;
  private capWall = 0;
  private nextSweep = 0;
  private readonly timer: NodeJS.Timeout;
  private isBlocked = false;
  private waiters: (() => void)[] = [];
  private flushers: (() => void)[] = [];
  private busy = 0;
  private stopped = false;
  /** Call files being opened, and pumps waiting for a descriptor. */
  private opening = 0;
  private slotWaiters: (() => void)[] = [];

  /** Records offered beyond this many bytes held are dropped (queue_full). */
  private readonly hard: number;
  /** sip.call records have come: calls end by theirs, no longer by SIP labels. */
  private callRecords = false;
  /** Calls whose sip.call record ended them before any frame of theirs came here: their end (capture time, s). */
  private readonly endedEarly = new Map<string, number>();

  constructor(
    private readonly files: RotatingFiles,
    private readonly grace: number,
    private readonly idle: number,
    private readonly maxOpen: number,
    /** Bytes all call files hold before the sender waits (`call_buffer`). */
    readonly max: number,
    /** The task makes sip.call records (`sip: {calls: true}`): calls end by them from the start. */
    callRecords = false,
  ) {
    this.callRecords = callRecords;
    this.hard = max + CALL_BUF_MAX;
    this.timer = setInterval(() => this.sweep(), 1000).unref();
  }

  get blocked(): boolean {
    return this.isBlocked;
  }

  get queued(): number {
    return this.heldRecords;
  }

  writable(): Promise<void> {
    if (!this.isBlocked) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /** Takes the record if it has a call-id (true); false leaves it to the caller. */
  route(rec: EncodedRecord): boolean {
    const meta = rec.meta;
    if (meta === undefined) return false;
    const k = meta.callIdLabel();
    if (k < 0) return false;
    const w = meta.wire;
    if (w.rawLen < 0) {
      this.skipped++;
      return true;
    }
    const need = 16 + w.rawLen;
    if (this.stopped || this.held + need > this.hard) {
      this.fail('queue_full');
      return true;
    }
    const id = Buffer.from(w.buf.buffer, w.buf.byteOffset + w.valOff[k]!, w.valLen[k]!).toString('latin1');
    const ts = w.hasTs ? w.tsSec + w.tsNsec / 1e9 : this.capTs;
    if (ts > this.capTs) this.capTs = ts;
    this.capWall = Date.now();
    // Calls that ended before this frame are completed first: a late frame of one starts a new file.
    if (this.capTs >= this.nextSweep) this.sweep();
    let f = this.calls.get(id);
    if (f === undefined) {
      f = new CallFile(id, Math.floor(ts * 1000));
      f.linkType = w.rawLinkType;
      f.nanos = w.tsDigits === 9;
      f.lastTs = ts;
      this.calls.set(id, f);
      this.counters.calls = this.calls.size;
      this.put(f, pcapHeader(f.linkType, f.nanos), 0);
      const e = this.endedEarly.get(id);
      if (e !== undefined) {
        f.endAt = e;
        this.endedEarly.delete(id);
      }
    }
    if (w.rawLinkType !== f.linkType) {
      this.fail('link_type');
      return true;
    }
    if (!this.callRecords && f.endAt < 0 && this.ends(meta.wire, meta)) {
      f.endAt = ts + this.grace;
      f.byLabels = true;
    }
    if (ts > f.lastTs) f.lastTs = ts;
    if (f.used + need > f.buf.length) this.grow(f, need);
    f.used = writeFrame(w, f.nanos, f.buf, f.used);
    f.records++;
    this.heldRecords++;
    this.held += need;
    if (this.held >= this.max) {
      this.isBlocked = true;
      for (const c of this.calls.values()) if (c.used > 0) this.pump(c);
    } else if (f.used >= CALL_BUF_MAX) this.pump(f);
    return true;
  }

  /**
   * A sip.call record (no frame): an `ended` one ends its call `call_grace`
   * seconds after the later of its time and the capture clock's (a CANCELled
   * call's record comes with the final response, but is timed at the
   * CANCEL). The first one turns the SIP labels' rule off: ends it marked
   * are dropped, those calls end by their own records (or call_idle).
   */
  callRecord(meta: NonNullable<EncodedRecord['meta']>): void {
    const w = meta.wire;
    if (!this.callRecords) {
      this.callRecords = true;
      for (const f of this.calls.values()) {
        if (f.byLabels) {
          f.endAt = -1;
          f.byLabels = false;
        }
      }
    }
    const k = meta.callIdLabel();
    if (k < 0 || !callEnded(w)) return;
    const ts = w.hasTs ? w.tsSec + w.tsNsec / 1e9 : this.capTs;
    if (ts > this.capTs) this.capTs = ts;
    const endAt = Math.max(ts, this.capTs) + this.grace;
    const id = Buffer.from(w.buf.buffer, w.buf.byteOffset + w.valOff[k]!, w.valLen[k]!).toString('latin1');
    const f = this.calls.get(id);
    if (f !== undefined) {
      f.endAt = endAt;
      f.byLabels = false;
    } else if (!this.stopped) this.endedEarly.set(id, endAt);
  }

  /** Does this record end its call (SIP BYE, CANCEL, or a final response >= 300 to an INVITE)? */
  private ends(w: WireRecord, meta: NonNullable<EncodedRecord['meta']>): boolean {
    const m = meta.label(SIP_METHOD);
    if (m >= 0) return this.valueIs(w, m, 'BYE') || this.valueIs(w, m, 'CANCEL');
    const s = meta.label(SIP_STATUS);
    if (s < 0) return false;
    const code = w.valKind[s] === LabelKind.Uint ? w.valNum[s]! : Number(this.text(w, s));
    if (code < 300) return false;
    const c = meta.label(SIP_CSEQ);
    return c >= 0 && this.text(w, c).endsWith('INVITE');
  }

  private text(w: WireRecord, i: number): string {
    return Buffer.from(w.buf.buffer, w.buf.byteOffset + w.valOff[i]!, w.valLen[i]!).toString('latin1');
  }

  private valueIs(w: WireRecord, i: number, v: string): boolean {
    return w.valKind[i] === LabelKind.Bytes && this.text(w, i) === v;
  }

  /** Bytes not from a record (the file header) into f's buffer. */
  private put(f: CallFile, b: Uint8Array, records: number): void {
    if (f.used + b.length > f.buf.length) this.grow(f, b.length);
    f.buf.set(b, f.used);
    f.used += b.length;
    f.records += records;
    this.held += b.length;
  }

  private grow(f: CallFile, need: number): void {
    let n = f.buf.length * 2;
    while (n < f.used + need) n *= 2;
    const b = new Uint8Array(n);
    b.set(f.buf.subarray(0, f.used));
    f.buf = b;
  }

  private fail(reason: string): void {
    this.dropped++;
    this.errors[reason] = (this.errors[reason] ?? 0) + 1;
  }

  /** Ends the calls whose end (or idleness) the capture clock has passed; writes out what every call holds. */
  private sweep(): void {
    const now = this.capTs + (this.nextSweep > 0 ? (Date.now() - this.capWall) / 1000 : 0);
    this.nextSweep = this.capTs + 1;
    for (const [id, e] of this.endedEarly) if (now >= e) this.endedEarly.delete(id);
    for (const f of this.calls.values()) {
      if ((f.endAt >= 0 && now >= f.endAt) || now - f.lastTs >= this.idle) this.end(f);
      else if (f.used > 0) this.pump(f);
    }
  }

  private end(f: CallFile): void {
    this.calls.delete(f.id);
    this.counters.calls = this.calls.size;
    f.ending = true;
    this.pump(f);
  }

  /** Writes what f holds (opening its file first), then completes it if it is ending. */
  private pump(f: CallFile): void {
    if (f.pumping) return;
    f.pumping = true;
    this.busy++;
    this.drain(f).then(
      () => this.pumped(f),
      (e: NodeJS.ErrnoException) => {
        // The call's frames held are lost, counted by the error's code; its file is completed as it is.
        const code = e.code ?? 'error';
        this.lastError = `${code}: ${e.message}`;
        this.dropped += f.records;
        this.errors[code] = (this.errors[code] ?? 0) + f.records;
        this.heldRecords -= f.records;
        this.held -= f.used;
        f.used = 0;
        f.records = 0;
        this.pumped(f);
      },
    );
  }

  private pumped(f: CallFile): void {
    f.pumping = false;
    this.busy--;
    // A file no longer being written can give its descriptor to one waiting.
    const w = this.slotWaiters.shift();
    if (w !== undefined) w();
    if (f.used > 0 && (f.ending || f.used >= CALL_BUF_MAX || this.isBlocked)) this.pump(f);
    this.settle();
  }

  private async drain(f: CallFile): Promise<void> {
    while (f.used > 0) {
      if (f.fd < 0) await this.openFile(f);
      f.lastUse = ++this.use;
      const b = f.buf;
      const n = f.used;
      const recs = f.records;
      f.buf = new Uint8Array(Math.min(CALL_BUF_MAX, Math.max(CALL_BUF, n)));
      f.used = 0;
      f.records = 0;
      try {
        await writeAll(f.fd, b, n);
      } catch (e) {
        f.used = n;
        f.records = recs;
        f.buf = b;
        throw e;
      }
      this.held -= n;
      this.heldRecords -= recs;
      this.written += recs;
    }
    if (f.ending && f.tmp !== '') {
      if (f.fd >= 0) {
        this.openFiles.delete(f);
        this.counters.open = this.openFiles.size;
        await closeP(f.fd);
        f.fd = -1;
      }
      this.files.complete(f.tmp, f.final);
      f.tmp = '';
      this.counters.completed++;
    }
  }

  private async openFile(f: CallFile): Promise<void> {
    // Descriptors held or being opened stay within max_open: the least recently written idle one is closed, or we wait for one to become idle.
    while (this.openFiles.size + this.opening >= this.maxOpen) {
      let lru: CallFile | null = null;
      for (const o of this.openFiles) if (!o.pumping && (lru === null || o.lastUse < lru.lastUse)) lru = o;
      if (lru === null) {
        await new Promise<void>((r) => this.slotWaiters.push(r));
        continue;
      }
      this.openFiles.delete(lru);
      const fd = lru.fd;
      lru.fd = -1;
      this.counters.evicted++;
      await closeP(fd);
    }
    this.opening++;
    try {
      if (f.tmp === '') {
        const o = await this.files.open(f.firstMs, `call-${nameOf(f.id)}`);
        f.fd = o.fd;
        f.tmp = o.tmp;
        f.final = o.final;
        this.counters.opened++;
      } else {
        f.fd = await openAppend(f.tmp);
        this.counters.reopened++;
      }
    } finally {
      this.opening--;
    }
    this.openFiles.add(f);
    this.counters.open = this.openFiles.size;
  }

  private settle(): void {
    if (this.isBlocked && this.held <= this.max >> 1) this.isBlocked = false;
    if (!this.isBlocked && this.waiters.length > 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const r of w) r();
    }
    if (this.flushers.length > 0 && this.held === 0 && this.busy === 0) {
      const f = this.flushers;
      this.flushers = [];
      for (const r of f) r();
    }
  }

  /** Writes out everything held (the files stay open). */
  flush(): Promise<void> {
    for (const c of this.calls.values()) if (c.used > 0) this.pump(c);
    if (this.held === 0 && this.busy === 0) return Promise.resolve();
    return new Promise((r) => this.flushers.push(r));
  }

  /** Gives up what is held now; returns how many records. */
  abandon(): number {
    let n = 0;
    for (const c of this.calls.values()) {
      if (c.pumping) continue;
      n += c.records;
      this.held -= c.used;
      c.used = 0;
      c.records = 0;
    }
    this.heldRecords -= n;
    this.dropped += n;
    this.errors.abandoned = (this.errors.abandoned ?? 0) + n;
    this.settle();
    return n;
  }

  /** Ends every call (their files completed), then waits for the completions. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    for (const f of [...this.calls.values()]) this.end(f);
    while (this.busy > 0) await new Promise<void>((r) => this.flushers.push(r));
    await this.files.idle();
  }
}

/** The pcap reporter: the main output, and the call files with per_call. */
export class PcapReporter implements Reporter {
  readonly format = 'protobuf' as const;
  /** Only the frames are written: the sender need not expand records. */
  readonly wireOnly = true;
  private dropNoCall = 0;
  /** sip.call and rtp.stats records: no frame by nature, counted as delivered. */
  private summaries = 0;

  constructor(
    readonly main: FdReporter,
    readonly calls: CallFiles | null,
    private readonly noCallDrop: boolean,
  ) {}

  report(rec: EncodedRecord): void {
    const calls = this.calls;
    const w = rec.meta?.wire;
    if (w !== undefined && w.rawLen < 0) {
      const call = w.protocolIs(SIP_CALL);
      if (call || w.protocolIs(RTP_STATS)) {
        this.summaries++;
        if (call && calls !== null) calls.callRecord(rec.meta!);
        return;
      }
    }
    if (calls !== null) {
      if (calls.route(rec)) return;
      if (this.noCallDrop) {
        this.dropNoCall++;
        return;
      }
    }
    this.main.report(rec);
  }

  get blocked(): boolean {
    return this.main.blocked || (this.calls?.blocked ?? false);
  }

  async writable(): Promise<void> {
    await this.main.writable();
    await this.calls?.writable();
  }

  get dropped(): number {
    return this.main.dropped + (this.calls?.dropped ?? 0) + this.dropNoCall;
  }

  get lastError(): string | null {
    return this.main.lastError ?? this.calls?.lastError ?? null;
  }

  get usage(): number {
    return Math.max(this.main.usage, this.calls !== null ? this.calls.held / this.calls.max : 0);
  }

  /** The main file renamed or deleted under it and made again (FdReporter.reopened). */
  get reopened(): number {
    return this.main.reopened;
  }

  get healthy(): boolean {
    return this.main.healthy;
  }

  /** The call files' counters (null without per_call). */
  callCounters(): CallFileCounters | null {
    return this.calls?.counters ?? null;
  }

  counters(): ReporterCounters {
    const m = this.main.counters();
    const c = this.calls;
    if (c === null && this.dropNoCall === 0 && this.summaries === 0) return m;
    const errors = { ...m.errors };
    if (c !== null) for (const [k, v] of Object.entries(c.errors)) errors[k] = (errors[k] ?? 0) + v;
    if (this.dropNoCall > 0) errors.no_call_id = this.dropNoCall;
    const detail: Record<string, number> = { ...m.detail };
    if (this.summaries > 0) detail.summary_records = this.summaries;
    if (c !== null) {
      const k = c.counters;
      Object.assign(detail, { call_files_opened: k.opened, call_files_completed: k.completed, call_files_evicted: k.evicted, call_files_reopened: k.reopened, calls_open: k.calls });
    }
    const skipped = (m.skipped ?? 0) + (c?.skipped ?? 0);
    return { acked: m.acked + (c?.written ?? 0) + this.summaries, timeout: 0, errors, queued: m.queued + (c?.queued ?? 0), ...(skipped > 0 && { skipped }), detail };
  }

  async flush(): Promise<void> {
    await Promise.all([this.main.flush(), this.calls?.flush()]);
  }

  abandon(): number {
    return this.main.abandon() + (this.calls?.abandon() ?? 0);
  }

  async stop(): Promise<void> {
    await Promise.all([this.main.stop(), this.calls?.stop()]);
  }
}

/** Refuses the pcap reporter for a task without `raw: true`: its records would carry no frame. Run before a task starts, and by `otus validate`. */
export function checkPcapTask(reporter: string, where: string, task: { raw: boolean; file: string; path: string }): void {
  if (reporter === 'pcap' && !task.raw) {
    throw new OtusError('OTUS_ERR_CONFIG', `${where}: the pcap reporter writes each record's frame: the task needs \`raw: true\` (${task.file}: ${task.path}.raw)`);
  }
}

export const pcapReporter: PluginDefinition<'reporter', PcapReporterConfig> = {
  meta: {
    name: 'pcap',
    version: '0.1.0',
    kind: 'reporter',
    labels: [],
    description: "Writes the frame of every record the task keeps to pcap files (one file, or rotating files; optionally one per call). Needs the task's raw: true.",
    configSchema: {
      type: 'object',
      properties: {
        path: { type: 'string', minLength: 1 },
        mode: { type: 'string', pattern: '^0?[0-7]{3}$', default: '0640' },
        ...ROTATION_SCHEMA,
        per_call: { type: 'boolean', default: false },
        no_call_id: { enum: ['main', 'drop'], default: 'main' },
        call_grace: { type: 'number', minimum: 0, default: 5 },
        call_idle: { type: 'number', exclusiveMinimum: 0, default: 300 },
        max_open: { type: 'integer', minimum: 4, maximum: 65536, default: 256 },
        keep_calls: { type: 'integer', minimum: 0, default: 10000 },
        call_buffer: { type: 'integer', minimum: 1 << 20, maximum: 1 << 30, default: 16 << 20 },
      },
      ...PATH_OR_DIR,
      additionalProperties: false,
    },
  },
  init(ctx) {
    const c = ctx.config;
    checkFileOutput('reporter pcap', c);
    const mode = parseMode(c.mode ?? '0640');
    if (c.per_call === true && c.dir === undefined) throw new OtusError('OTUS_ERR_CONFIG', `${ctx.where}: per_call needs dir (a directory for the call files), not path`);
    const framing = new PcapFraming();
    let main: FdReporter;
    let rot = null;
    if (c.dir !== undefined) {
      rot = rotationFor('reporter pcap', c, ctx.taskId, ctx.sender ?? 0, 'pcap', mode, c.keep_calls ?? 10000);
      main = new FdReporter({ fd: -1, close: true, rotate: rot }, 'protobuf', framing);
    } else {
      const out = openOutput(c.path!, mode, ctx.resumed === true);
      // Appended to (a restarted sender): the file has its header already.
      if (out.fd >= 0) out.size = fstatSync(out.fd).size;
      main = new FdReporter(out, 'protobuf', framing);
    }
    const callRecords = ctx.task?.parsers.some((p) => p.plugin === 'sip' && p.config.calls === true) === true;
    const calls = c.per_call === true ? new CallFiles(rot!.files, c.call_grace ?? 5, c.call_idle ?? 300, c.max_open ?? 256, c.call_buffer ?? 16 << 20, callRecords) : null;
    return new PcapReporter(main, calls, c.no_call_id === 'drop');
  },
};
