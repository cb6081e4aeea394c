// Record codecs by format name. All write one record at buf[off..end) and
// return the offset after it, or -1 when it does not fit. A capture process
// writes wire records (wireEncoder), which the sender expands into the
// reporter's format (expand.ts); ENCODERS write that format in process.

import { encodeJson } from './codec-json.js';
import { encodeProtobuf } from './codec-protobuf.js';
import type { OutputRecord, RecordFormat } from './record.js';
import type { KeyTracker } from './label-keys.js';
import { encodeWire } from './wire.js';

export type EncodeFn = (r: OutputRecord, buf: Uint8Array, off: number, end: number) => number;

export const ENCODERS: Readonly<Record<RecordFormat, EncodeFn>> = { json: encodeJson, protobuf: encodeProtobuf };

/**
 * Wire records for the send ring; payloads without a compact form are
 * pre-encoded as `format`; key ids used are noted in `keys` (the batch's).
 */
export function wireEncoder(format: RecordFormat, keys: KeyTracker | null): EncodeFn {
  return (r, buf, off, end) => encodeWire(r, buf, off, end, true, format, keys);
}

export { encodeJson, encodeProtobuf };
