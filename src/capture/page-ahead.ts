// Walking frames in memory that is not in cache (a ring block the kernel
// wrote on another CPU, a large capture in memory), each new 4 KiB page
// costs a TLB miss and a cache miss that the loads after them wait for,
// unhidden: the decoder's work on a frame is shorter than the wait. Reading
// one byte two pages ahead whenever the walk enters a page starts both
// early, while the frames of the pages in hand are decoded. One compare per
// frame, one load per page. Measured (bench/README.md, "Decoding the large
// capture"): the decoder over a 460 MB capture, 17.3–19.4 → 21.3–22.7 M
// packets per CPU-second (4 KiB ahead the same, 16 KiB less). The capture
// file readers do not use it: their own work per record covers the wait,
// and it measured nothing there.

/** How far ahead of the frame in hand the walk reads (bytes). */
export const PAGE_AHEAD = 8192;

export class PageAhead {
  private page = -1;
  /** What the reads gave: kept, so that the compiler keeps the reads. */
  sum = 0;

  /** The walk is at byte `off` of `u8`; `end` (> off) bounds the read (the end of the ring block). */
  at(u8: Uint8Array, off: number, end: number): void {
    const page = off >>> 12;
    if (page === this.page) return;
    this.page = page;
    const a = off + PAGE_AHEAD;
    this.sum = (this.sum + u8[a < end ? a : end - 1]!) | 0;
  }
}
