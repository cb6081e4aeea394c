// The records of a `file` reporter's output, one Buffer each.

import { readFileSync } from 'node:fs';

/** NDJSON lines (without their line feed), or varint-length-delimited protobuf records. */
export function fileRecords(path: string, format: string): Buffer[] {
  const b = readFileSync(path);
  const out: Buffer[] = [];
  if (format === 'json') {
    let s = 0;
    for (let i = 0; i < b.length; i++) if (b[i] === 0x0a) (out.push(b.subarray(s, i)), (s = i + 1));
    return out;
  }
  for (let o = 0; o < b.length; ) {
    let len = 0;
    for (let shift = 0; ; shift += 7) {
      const x = b[o++];
      len |= (x & 0x7f) << shift;
      if (x < 0x80) break;
    }
    out.push(b.subarray(o, o + len));
    o += len;
  }
  return out;
}
