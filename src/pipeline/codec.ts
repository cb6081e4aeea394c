// Record codecs by format name. Both write one record at buf[off..end) and
// return the offset after it, or -1 when it does not fit.

import type { RecordFormat } from '../plugin/types.js';
import { encodeJson } from './codec-json.js';
import { encodeProtobuf } from './codec-protobuf.js';
import type { OutputRecord } from './record.js';

export type EncodeFn = (r: OutputRecord, buf: Uint8Array, off: number, end: number) => number;

export const ENCODERS: Readonly<Record<RecordFormat, EncodeFn>> = { json: encodeJson, protobuf: encodeProtobuf };

export { encodeJson, encodeProtobuf };
