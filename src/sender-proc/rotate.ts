// Rotating output files for the `file` and `pcap` reporters (docs/reporters.md,
// "Rotating files"): names, the temporary file each is written as, the rename
// to its final name once complete, gzip, and the retention count.
//
// A file is written as `.NAME.tmp` (hidden) and renamed to NAME only when it
// is complete, so a consumer that lists the directory never sees half a file.
// With gzip, the closed temporary file is compressed to `.NAME.gz.tmp` by
// zlib's asynchronous stream (libuv's thread pool: the sender's event loop
// never waits for it), renamed to `NAME.gz`, and the temporary file removed.
// Files are opened O_CREAT | O_EXCL | O_NOFOLLOW (a name someone else made, a
// symbolic link in a shared directory, is never written through) with the
// configured mode, whatever the umask. Every operation here is asynchronous.
//
// Names: `PREFIX-YYYYMMDDTHHMMSSZ-SEQ.EXT[.gz]`, SEQ six digits or more,
// counting on from the highest one found in the directory at start, so
// names sort in the order the files were opened, across restarts. Retention
// keeps the `keep` newest of a class (by SEQ), removing the oldest.
// Temporary files a killed sender left are finished at start: a `.gz.tmp`
// (an interrupted compression) is removed, any other is completed as if
// just closed (its records were whole: writes are of whole records, and a
// sender resumes where the ring says).

import { close, constants, createReadStream, createWriteStream, fchmod, open, readdir, readdirSync, rename, statSync, unlink } from 'node:fs';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { OtusError } from '../util/errors.js';

export interface RotationOptions {
  /** The directory (checked: checkOutputDir). */
  dir: string;
  /** Names start with this (`otus-<task>`). */
  prefix: string;
  /** Extension without the dot (`ndjson`, `pb`, `pcap`). */
  ext: string;
  /** Mode of every file (0640). */
  mode: number;
  /** zlib level 1–9 for closed files; 0: not compressed. */
  gzipLevel: number;
  /** Closed files kept at most (the oldest removed); 0 keeps all. */
  keep: number;
  /** The same for per-call files (label `call-...`). */
  keepCalls?: number;
  /** For messages: `reporter file`. */
  what: string;
}

/** What the rotation did: files completed, compressed, removed by retention, failures by operation. */
export interface RotationCounters {
  closed: number;
  gzipped: number;
  removed: number;
  errors: Record<string, number>;
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);

/** `YYYYMMDDTHHMMSSZ` of a time in ms. */
export function utcStamp(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}T${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}Z`;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function dirError(what: string, dir: string, why: string): OtusError {
  return new OtusError('OTUS_ERR_CONFIG', `${what}: dir ${dir}: ${why}`);
}

/**
 * Refuses an output directory another local user could tamper with: absent,
 * not a directory, or writable by every user without the sticky bit (anyone
 * could rename or replace the files). Run by the supervisor before forking,
 * and by the reporter.
 */
export function checkOutputDir(dir: string, what: string): void {
  const abs = resolve(dir);
  let st;
  try {
    st = statSync(abs);
  } catch (e) {
    throw dirError(what, abs, (e as NodeJS.ErrnoException).code ?? String(e));
  }
  if (!st.isDirectory()) throw dirError(what, abs, 'not a directory');
  if ((st.mode & 0o002) !== 0 && (st.mode & 0o1000) === 0) {
    throw dirError(what, abs, `writable by every user and not sticky (mode ${(st.mode & 0o7777).toString(8)}): another user could replace the files; choose another directory`);
  }
}

function openExclusive(path: string, mode: number): Promise<number> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  return new Promise((res, rej) =>
    open(path, flags, mode, (err, fd) => {
      if (err !== null) return rej(err);
      // Exactly `mode`, whatever the umask.
      fchmod(fd, mode, (e2) => (e2 === null ? res(fd) : close(fd, () => rej(e2))));
    }),
  );
}

const closeFd = (fd: number): Promise<void> => new Promise((res, rej) => close(fd, (e) => (e === null ? res() : rej(e))));
const renameP = (a: string, b: string): Promise<void> => new Promise((res, rej) => rename(a, b, (e) => (e === null ? res() : rej(e))));
const unlinkP = (a: string): Promise<void> => new Promise((res) => unlink(a, () => res()));

/** One file being written: its fd, temporary and final names. */
export interface OpenFile {
  fd: number;
  tmp: string;
  final: string;
}

export class RotatingFiles {
  readonly dir: string;
  readonly counters: RotationCounters = { closed: 0, gzipped: 0, removed: 0, errors: {} };
  /** The last failure (`rename: ENOENT ...`), or null. */
  lastError: string | null = null;
  private seq = 0;
  /** Closed files to compress, one at a time, in order. */
  private readonly gzipQueue: { tmp: string; final: string }[] = [];
  private gzipping = false;
  private idlers: (() => void)[] = [];
  private readonly names: RegExp;

  constructor(readonly o: RotationOptions) {
    this.dir = resolve(o.dir);
    checkOutputDir(this.dir, o.what);
    // PREFIX[-LABEL]-STAMP-SEQ.EXT[.gz]
    this.names = new RegExp(`^${escapeRe(o.prefix)}-(?:(.+)-)?\\d{8}T\\d{6}Z-(\\d{6,})\\.${escapeRe(o.ext)}(\\.gz)?$`);
    const leftovers: string[] = [];
    for (const n of readdirSync(this.dir)) {
      const tmp = /^\.(.*)\.tmp$/.exec(n);
      const m = this.names.exec(tmp !== null ? tmp[1]! : n);
      if (m === null) continue;
      this.seq = Math.max(this.seq, Number(m[2]));
      if (tmp !== null) leftovers.push(n);
    }
    for (const n of leftovers) {
      if (n.endsWith('.gz.tmp')) void unlinkP(join(this.dir, n));
      else this.complete(join(this.dir, n), join(this.dir, n.slice(1, -4)));
    }
  }

  /** Opens the next file (`label`: a class of its own, e.g. `call-<id>`; `ms`: the time in its name). */
  async open(ms: number, label: string | null = null): Promise<OpenFile> {
    for (;;) {
      const seq = ++this.seq;
      const name = `${this.o.prefix}-${label !== null ? `${label}-` : ''}${utcStamp(ms)}-${String(seq).padStart(6, '0')}.${this.o.ext}`;
      const tmp = join(this.dir, `.${name}.tmp`);
      try {
        return { fd: await openExclusive(tmp, this.o.mode), tmp, final: join(this.dir, name) };
      } catch (e) {
        // Someone made that name (another sender of the same prefix): the next one.
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
  }

  /** Closes a file and completes it in the background (rename, or compress then rename; then retention). */
  async close(f: OpenFile): Promise<void> {
    try {
      await closeFd(f.fd);
    } catch (e) {
      this.fail('close', e);
    }
    this.complete(f.tmp, f.final);
  }

  /** Resolves when every closed file is complete (compressed, renamed, retention applied). */
  idle(): Promise<void> {
    if (!this.gzipping && this.gzipQueue.length === 0 && this.pending === 0) return Promise.resolve();
    return new Promise((r) => this.idlers.push(r));
  }

  private pending = 0;

  /** Completes a closed file: compressed then renamed, or renamed, in the background; then retention. */
  complete(tmp: string, final: string): void {
    if (this.o.gzipLevel > 0) {
      this.gzipQueue.push({ tmp, final: `${final}.gz` });
      this.nextGzip();
      return;
    }
    this.pending++;
    renameP(tmp, final).then(
      () => {
        this.pending--;
        this.done();
      },
      (e) => {
        this.pending--;
        this.fail('rename', e);
        this.wake();
      },
    );
  }

  /** A file is complete under its final name. */
  private done(): void {
    this.counters.closed++;
    this.prune();
    this.wake();
  }

  private nextGzip(): void {
    if (this.gzipping) return;
    const job = this.gzipQueue.shift();
    if (job === undefined) {
      this.wake();
      return;
    }
    this.gzipping = true;
    const gzTmp = join(this.dir, `.${job.final.slice(this.dir.length + 1)}.tmp`);
    const run = async (): Promise<void> => {
      const fd = await openExclusive(gzTmp, this.o.mode);
      await pipeline(createReadStream(job.tmp), createGzip({ level: this.o.gzipLevel }), createWriteStream('', { fd }));
      await renameP(gzTmp, job.final);
      await unlinkP(job.tmp);
      this.counters.gzipped++;
    };
    run().then(
      () => {
        this.gzipping = false;
        this.done();
        this.nextGzip();
      },
      (e) => {
        // The uncompressed file stays under its temporary name; the next start completes it.
        this.fail('gzip', e);
        void unlinkP(gzTmp);
        this.gzipping = false;
        this.nextGzip();
      },
    );
  }

  /** Removes the oldest completed files of each class beyond `keep`. */
  private prune(): void {
    if (this.o.keep <= 0 && (this.o.keepCalls ?? 0) <= 0) return;
    // One listing at a time: two would both remove the same oldest file.
    if (this.pruning) {
      this.pruneAgain = true;
      return;
    }
    this.pruning = true;
    this.pending++;
    readdir(this.dir, (e, names) => {
      if (e !== null) this.fail('list', e);
      else this.pruneNames(names);
      this.pruning = false;
      this.pending--;
      if (this.pruneAgain) {
        this.pruneAgain = false;
        this.prune();
      }
      this.wake();
    });
  }

  private pruning = false;
  private readonly removing = new Set<string>();
  private pruneAgain = false;

  private pruneNames(names: string[]): void {
    const keep = this.o.keep;
    const byClass = new Map<string, { n: string; seq: number }[]>();
    for (const n of names) {
      const m = this.names.exec(n);
      if (m === null || this.removing.has(n)) continue;
      const cls = m[1] === undefined ? '' : m[1].startsWith('call-') ? 'call' : m[1];
      let l = byClass.get(cls);
      if (l === undefined) byClass.set(cls, (l = []));
      l.push({ n, seq: Number(m[2]) });
    }
    for (const [cls, l] of byClass) {
      const k = cls === 'call' ? this.o.keepCalls ?? 0 : keep;
      if (k <= 0 || l.length <= k) continue;
      l.sort((a, b) => a.seq - b.seq);
      for (const x of l.slice(0, l.length - k)) {
        this.counters.removed++;
        this.pending++;
        this.removing.add(x.n);
        void unlinkP(join(this.dir, x.n)).then(() => {
          this.removing.delete(x.n);
          this.pending--;
          this.wake();
        });
      }
    }
  }

  private fail(op: string, e: unknown): void {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    this.counters.errors[`${op}_${code}`] = (this.counters.errors[`${op}_${code}`] ?? 0) + 1;
    this.lastError = `${op}: ${(e as Error).message ?? String(e)}`;
  }

  private wake(): void {
    if (this.gzipping || this.gzipQueue.length > 0 || this.pending > 0) return;
    const w = this.idlers;
    this.idlers = [];
    for (const r of w) r();
  }
}
