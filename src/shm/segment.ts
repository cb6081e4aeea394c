// Named POSIX shared-memory segments of a task: naming, owner identity,
// stale-segment cleanup. Control plane only: everything here may allocate.
//
// Every Otus segment starts with the same 32 bytes, so a cleanup pass can
// judge a segment without knowing its kind:
//   0  u32 magic (written last by the creator: 0 means "not ready")
//   4  u32 layout version
//   8  u32 kind-specific size field
//   16 i32 owner pid
//   24 f64 owner start time (/proc/<pid>/stat field 22), so a recycled pid is not
//      mistaken for the owner

import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { native } from '../native.js';
import { OtusError } from '../util/errors.js';

export const SEGMENT_PREFIX = '/otus-';
/** Magic numbers of the segment kinds (the first word of each). */
export const RING_MAGIC = 0x4752544f; // 'OTRG' (ring.ts)
export const REGISTRY_MAGIC = 0x5246544f; // 'OTFR' (registry.ts)
export const CLOCK_MAGIC = 0x4f54434b; // 'OTCK' (capture-clock.ts)
export const STATS_MAGIC = 0x5453544f; // 'OTST' (stats.ts)
export const MEDIA_MAGIC = 0x444d544f; // 'OTMD' (media.ts)
const KNOWN_MAGICS = [RING_MAGIC, REGISTRY_MAGIC, CLOCK_MAGIC, STATS_MAGIC, MEDIA_MAGIC] as const;
const EEXIST = 17;
export const OFF_MAGIC = 0;
export const OFF_VERSION = 4;
export const OFF_OWNER_PID = 16;
export const OFF_OWNER_START = 24;

const TASK_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** `/otus-<task>-<kind>`; the task id must be a short file-name-safe token. */
export function segmentName(task: string, kind: string): string {
  if (!TASK_RE.test(task)) {
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `task id ${JSON.stringify(task)}: use 1-64 characters of A-Z a-z 0-9 _ . -`);
  }
  return `${SEGMENT_PREFIX}${task}-${kind}`;
}

/**
 * The name token of one run of one task: the task id (cut to fit, other
 * characters replaced by `_`), the creating process's pid and 8 random hex
 * digits, so no other local user can guess a run's names in advance and
 * pre-create one to stop it.
 */
export function runScope(taskId: string): string {
  const suffix = `.${process.pid}.${randomBytes(4).toString('hex')}`;
  const task = taskId.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64 - suffix.length) || 'task';
  return task + suffix;
}

/** The FIFO through which a ring's producers wake its consumer. */
export function wakePath(segment: string): string {
  return `/dev/shm${segment}.wake`;
}

/**
 * Creates a segment exclusively (mode 0600). A name that exists is a coded
 * error naming it, not a syscall trace: another process holds it (a live run,
 * or someone who created it first; removeAllStaleSegments clears a dead
 * owner's).
 */
export function createSegment(name: string, size: number, mirrorFrom = 0, populate = false): ArrayBuffer {
  try {
    return native.shmOpen(name, size, true, mirrorFrom, populate);
  } catch (e) {
    if ((e as { errno?: number }).errno !== EEXIST) {
      throw new OtusError('OTUS_ERR_SYSCALL', `shared memory /dev/shm${name}: cannot create ${size} bytes (${(e as Error).message}); is /dev/shm mounted, writable and large enough?`);
    }
    const owner = segmentOwner(name);
    const who = owner === null ? 'another process' : `process ${owner.pid}${isProcessAlive(owner.pid, owner.start) ? '' : ' (dead)'}`;
    throw new OtusError('OTUS_ERR_SHM_EXISTS', `shared memory /dev/shm${name} exists: ${who} holds that name; nothing was started`);
  }
}

/** The owner recorded in a segment's header, or null (unreadable, not ours, not written yet). */
export function segmentOwner(name: string): { pid: number; start: number } | null {
  try {
    const buf = native.shmOpen(name, 0, false, 0);
    if (buf.byteLength < 32) return null;
    const dv = new DataView(buf);
    const pid = dv.getInt32(OFF_OWNER_PID, true);
    return pid > 0 ? { pid, start: dv.getFloat64(OFF_OWNER_START, true) } : null;
  } catch {
    return null;
  }
}

/** Start time of a process in clock ticks since boot, or -1 if it does not exist. */
export function processStartTime(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // comm (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]); // field 22 overall
  } catch {
    return -1;
  }
}

/** Is `pid` alive and still the process that started at `startTime` (if known, > 0)? */
export function isProcessAlive(pid: number, startTime = 0): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (startTime > 0) {
    const st = processStartTime(pid);
    if (st >= 0 && st !== startTime) return false;
  }
  return true;
}

/** Writes this process as the owner of a freshly created segment (before its magic). */
export function writeOwner(buf: ArrayBuffer): void {
  const dv = new DataView(buf);
  dv.setInt32(OFF_OWNER_PID, process.pid, true);
  dv.setFloat64(OFF_OWNER_START, processStartTime(process.pid), true);
}

export interface StaleSegment {
  name: string;
  ownerPid: number;
  removed: boolean;
}

/**
 * Finds segments named `prefix*` whose owner is dead (or was never recorded
 * because the creator died before writing the header) and unlinks them.
 * `magics` are the layouts we understand; other segments are left alone.
 */
export function removeStaleSegments(prefix: string, magics: readonly number[]): StaleSegment[] {
  const out: StaleSegment[] = [];
  for (const name of native.shmList(prefix)) {
    let buf: ArrayBuffer;
    try {
      buf = native.shmOpen(name, 0, false, 0);
    } catch {
      continue; // vanished or not ours to open
    }
    if (buf.byteLength < 32) continue;
    const dv = new DataView(buf);
    const magic = dv.getUint32(OFF_MAGIC, true);
    const pid = dv.getInt32(OFF_OWNER_PID, true);
    const start = dv.getFloat64(OFF_OWNER_START, true);
    const known = magics.includes(magic);
    const unfinished = magic === 0 && pid > 0; // the creator wrote its pid, then died before the magic
    if (!known && !unfinished) continue;
    if (isProcessAlive(pid, start)) continue;
    out.push({ name, ownerPid: pid, removed: native.shmUnlink(name) });
  }
  return out;
}

/**
 * Every supervisor calls this at start: removes each /otus-* segment of a
 * known kind (ring, flow registry, capture clock, counters) whose owner is dead, the
 * wakeup FIFO of each ring removed, and any wakeup FIFO whose ring is gone
 * (its owner died between the two unlinks, or before this existed). Segments
 * of live owners, and files of other users it cannot open, are left alone.
 */
export function removeAllStaleSegments(): StaleSegment[] {
  const out = removeStaleSegments(SEGMENT_PREFIX, KNOWN_MAGICS);
  for (const r of out) rmSync(wakePath(r.name), { force: true });
  let entries: string[];
  try {
    entries = readdirSync('/dev/shm');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.startsWith(SEGMENT_PREFIX.slice(1)) || !e.endsWith('.wake')) continue;
    const path = `/dev/shm/${e}`;
    try {
      // Looked at now, not in the listing: a ring's segment exists before its FIFO and is unlinked before it.
      if (existsSync(`/dev/shm/${e.slice(0, -5)}`) || !lstatSync(path).isFIFO()) continue;
      rmSync(path, { force: true });
      out.push({ name: `/${e}`, ownerPid: 0, removed: true });
    } catch {
      // another user's, or gone already
    }
  }
  return out;
}

const pauseCell = new Int32Array(new SharedArrayBuffer(4));

/** Sleeps the calling thread ms milliseconds (a wait on a cell nobody wakes): a shared-memory spin's back-off. */
export function pause(ms: number): void {
  Atomics.wait(pauseCell, 0, 0, ms);
}

/** What lockWriter got. */
export const enum Lock {
  /** Still held by a live writer after the budget: the caller drops its write (counted). */
  Busy = 0,
  Held = 1,
  /** Taken from a writer that died holding it: the caller mends what it left half written. */
  TookOver = 2,
}

/**
 * A segment's writer lock, the holder's pid in i32[at] (0 free), shared by
 * the processes of a task: spins, takes over the lock of a holder that is
 * gone, gives up after about budgetMs. Re-entering it is a defect.
 */
export function lockWriter(i32: Int32Array, at: number, budgetMs: number, name: string): Lock {
  const me = process.pid;
  let t0 = 0;
  for (let spin = 0; ; spin++) {
    const holder = Atomics.compareExchange(i32, at, 0, me);
    if (holder === 0) return Lock.Held;
    if (holder === me) throw new Error(`${name}: writer lock re-entered`);
    if ((spin & 1023) !== 1023) continue;
    if (!isProcessAlive(holder)) {
      if (Atomics.compareExchange(i32, at, holder, me) === holder) return Lock.TookOver;
      continue;
    }
    if (t0 === 0) t0 = Date.now();
    else if (Date.now() - t0 > budgetMs) return Lock.Busy;
    pause(0.05);
  }
}

/** Unlinks a segment if it exists; true if it did. */
export function unlinkSegment(name: string): boolean {
  return native.shmUnlink(name);
}
