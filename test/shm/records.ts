// Test records for the send ring: producer id, sequence, length, a pattern
// derived from both, and an FNV-1a checksum over everything before it, so a
// torn, shifted or mixed-up record is caught by the reader.
//   0 u32 producer  4 u32 seq  8 u32 len  12 f64 commit time (hrtime ns)  20.. pattern  len-4 u32 checksum

export const MIN_RECORD = 24;

/** Record length for a sequence number: 24..151 bytes, varied so records straddle the ring's end. */
export function recordLen(seq: number, fixed = 0): number {
  return fixed > 0 ? fixed : MIN_RECORD + ((seq * 7919) % 128);
}

// FNV-1a over the record but the time stamp (bytes 12..19), which is written last.
function fnv(u8: Uint8Array, off: number, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 12; i++) h = Math.imul(h ^ u8[off + i], 0x01000193);
  for (let i = 20; i < n; i++) h = Math.imul(h ^ u8[off + i], 0x01000193);
  return h >>> 0;
}

export function writeRecord(u8: Uint8Array, dv: DataView, off: number, len: number, producer: number, seq: number): void {
  dv.setUint32(off, producer, true);
  dv.setUint32(off + 4, seq, true);
  dv.setUint32(off + 8, len, true);
  dv.setFloat64(off + 12, 0, true);
  const b = (producer * 131 + seq) & 0xff;
  for (let i = 20; i < len - 4; i++) u8[off + i] = (b + i) & 0xff;
  dv.setUint32(off + len - 4, fnv(u8, off, len - 4), true);
}

/** Stamps the commit time (not covered by the checksum). */
export function stampTime(dv: DataView, off: number, ns: number): void {
  dv.setFloat64(off + 12, ns, true);
}

export function readTime(dv: DataView, off: number): number {
  return dv.getFloat64(off + 12, true);
}

/** Checks a record; returns null if intact, else what is wrong. */
export function checkRecord(u8: Uint8Array, dv: DataView, off: number, len: number): string | null {
  if (len < MIN_RECORD) return `short record ${len}`;
  if (dv.getUint32(off + 8, true) !== len) return `length field ${dv.getUint32(off + 8, true)} != ${len}`;
  const sum = fnv(u8, off, len - 4);
  if (sum !== dv.getUint32(off + len - 4, true)) return 'checksum mismatch';
  return null;
}
