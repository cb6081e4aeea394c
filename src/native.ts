// Loads the C++ addon (native/). It only makes syscalls; see native/otus.cc.
import { createRequire } from 'node:module';

export interface Native {
  /** Private copy-on-write mapping of a whole file; unmapped when collected. */
  mapFile(path: string): ArrayBuffer;
  /** Pin the calling process's main thread to one CPU. */
  setAffinity(cpu: number): void;
  /** CPU time of the calling thread, in nanoseconds. */
  threadCpuNs(): number;
}

const require = createRequire(import.meta.url);
// dist/src/native.js -> ../../native/build/Release
export const native: Native = require('../../native/build/Release/otus_native.node');
