// Buffers for the http parser's messages in progress: blocks of power-of-two
// sizes (MIN_BLOCK and up), taken when a message needs them (its header
// block once complete, its body as it grows by doubling) and given back when
// it ends, so a connection holds memory in proportion to what it keeps, not
// header_max + body_max up front. Free blocks are reused rather than left to
// the GC (a flood of connections that come and go would otherwise leave
// garbage the GC collects late), up to `idleMax` bytes of them.

import { BUFFER_COST } from '../../../src/reassembly/tcp-stream.js';

/** The smallest block: a typical request's header block fits in one or two. */
export const MIN_BLOCK = 256;
const MIN_SHIFT = 8;

export class BlockPool {
  /** Memory in blocks handed out and not given back (capacity plus each buffer's objects, BUFFER_COST). */
  held = 0;
  /** Bytes in free blocks kept for reuse. */
  idle = 0;
  /** Per size class (MIN_BLOCK << k), the free blocks. */
  private readonly free: Uint8Array[][] = [];

  constructor(private readonly idleMax: number) {
    for (let k = 0; k <= 22; k++) this.free.push([]);
  }

  /** A block of at least n bytes (n ≥ 1): the smallest power of two from MIN_BLOCK up. */
  take(n: number): Uint8Array {
    const k = n <= MIN_BLOCK ? 0 : 32 - Math.clz32(n - 1) - MIN_SHIFT;
    const b = this.free[k].pop();
    const blk = b ?? new Uint8Array(MIN_BLOCK << k);
    if (b !== undefined) this.idle -= blk.length;
    this.held += blk.length + BUFFER_COST;
    return blk;
  }

  /** Gives a block from take() back: kept for reuse while the free ones stay under idleMax, else left to the GC. */
  give(b: Uint8Array): void {
    this.held -= b.length + BUFFER_COST;
    if (this.idle + b.length > this.idleMax) return;
    this.free[31 - Math.clz32(b.length) - MIN_SHIFT].push(b);
    this.idle += b.length;
  }
}
