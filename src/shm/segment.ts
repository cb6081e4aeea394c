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

import { readFileSync } from 'node:fs';
import { native } from '../native.js';
import { OtusError } from '../util/errors.js';

export const SEGMENT_PREFIX = '/otus-';
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

/** Unlinks a segment if it exists; true if it did. */
export function unlinkSegment(name: string): boolean {
  return native.shmUnlink(name);
}
