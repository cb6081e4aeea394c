// Loads the C++ addon (native/). It only makes syscalls; see native/otus.cc.
import { createRequire } from 'node:module';

export interface Native {
  /** Private copy-on-write mapping of a whole file; unmapped when collected. */
  mapFile(path: string): ArrayBuffer;
  /** Pin the calling process's main thread to one CPU. */
  setAffinity(cpu: number): void;
  /** CPU time of the calling thread, in nanoseconds. */
  threadCpuNs(): number;

  // Shared memory and wakeups (native/shm.cc; src/shm/ lays the segments out).
  /**
   * shm_open + mmap(MAP_SHARED) of a named segment: create exclusively with `size` bytes,
   * or open an existing one (size 0: whatever size it has). mirrorFrom > 0 (page-aligned)
   * maps [mirrorFrom, size) a second time right after the segment. Unmapped when collected.
   */
  shmOpen(name: string, size: number, create: boolean, mirrorFrom: number): ArrayBuffer;
  /** shm_unlink; false if the segment did not exist. */
  shmUnlink(name: string): boolean;
  /** Names (with the leading '/') of the segments in /dev/shm starting with prefix. */
  shmList(prefix: string): string[];
  /** FUTEX_WAIT on the i32 at byteOffset while it equals expected, on a libuv worker: 0 woken or changed, 1 timed out. */
  futexWait(buf: ArrayBuffer, byteOffset: number, expected: number, timeoutMs: number): Promise<number>;
  /** FUTEX_WAKE up to count waiters (count <= 0: all); returns how many were woken. */
  futexWake(buf: ArrayBuffer, byteOffset: number, count: number): number;
}

const require = createRequire(import.meta.url);
// dist/src/native.js -> ../../native/build/Release
export const native: Native = require('../../native/build/Release/otus_native.node');
