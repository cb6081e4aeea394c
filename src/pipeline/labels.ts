// Labels (design §5.5.5, ADR-012): string → string, `{protocol}.{field}` for
// a parser's protocol fields, unprefixed for correlation (`call-id`, `codec`)
// and deployment metadata (`node`, `dc`). Keys match LABEL_KEY.
//
// One Labels per pipeline, cleared per record: fixed-capacity arrays, so
// setting a label allocates nothing. Keys are interned ids (label-keys.ts);
// hot parsers take their ids once (labelKeyId) and use the *Id setters,
// everything else passes key strings. A value is a string, bytes (setBytes:
// a parser labels from packet or shared-memory bytes without making a
// string), or a number (setUint: sequence numbers, SSRCs, printed in
// decimal by the sender). get() makes a string only when asked.
//
// Each label is also appended, as it is set, to `enc` in the wire record's
// label form (wire.ts): id, kind, value. The wire encoder then copies the
// whole block by 32-bit words instead of label by label, byte by byte.
// Replacing or deleting a label (rare: processors) re-encodes the block.

import { writeU16LE, writeU32LE, writeUtf8 } from './bytes.js';
import { labelKeyId, labelKeyName } from './label-keys.js';

/** How a label's value is encoded (wire.ts: kind 0 u32 length + UTF-8 bytes, kind 1 u32 number). */
export const enum LabelKind {
  Bytes = 0,
  Uint = 1,
}

export const LABEL_KEY = /^[a-z0-9][a-z0-9.-]*$/;
export const MAX_LABELS = 64;
/** Room for the encoded labels of one record. */
export const LABEL_BYTES = 16 * 1024;

const decoder = new TextDecoder();

export class Labels {
  /** Number of labels set. */
  count = 0;
  /** Key ids (label-keys.ts) and names. */
  readonly ids = new Int32Array(MAX_LABELS);
  readonly keys: string[] = new Array<string>(MAX_LABELS).fill('');
  /** The value when it was set as a string, else null (bytes or a number). */
  readonly values: (string | null)[] = new Array<string | null>(MAX_LABELS).fill(null);
  /** Where the value's bytes are in `enc`, and their length; -1: the value is the number in `nums`. */
  readonly byteOff = new Int32Array(MAX_LABELS);
  readonly byteLen = new Int32Array(MAX_LABELS);
  readonly nums = new Float64Array(MAX_LABELS);
  /** The labels in wire form, `encUsed` bytes (wire.ts writes them as they are). */
  enc = new Uint8Array(LABEL_BYTES);
  /** `enc` as 32-bit words (for copying it). */
  enc32 = new Int32Array(this.enc.buffer);
  encUsed = 0;
  private spare = new Uint8Array(LABEL_BYTES);
  private spare32 = new Int32Array(this.spare.buffer);
  /** Labels refused because the table or the encoded block was full (counted, never thrown). */
  overflows = 0;

  clear(): void {
    this.count = 0;
    this.encUsed = 0;
  }

  indexOfId(id: number): number {
    const ids = this.ids;
    for (let i = 0; i < this.count; i++) if (ids[i] === id) return i;
    return -1;
  }

  indexOf(key: string): number {
    const keys = this.keys;
    for (let i = 0; i < this.count; i++) if (keys[i] === key) return i;
    return -1;
  }

  has(key: string): boolean {
    return this.indexOf(key) >= 0;
  }

  /** Sets (or replaces) a label. False when the table is full. */
  set(key: string, value: string): boolean {
    return this.setId(labelKeyId(key), value);
  }

  setId(id: number, value: string): boolean {
    const i = this.append(id, LabelKind.Bytes, 3 * value.length);
    if (i < 0) return false;
    const vo = this.byteOff[i];
    const end = writeUtf8(this.enc, vo, value);
    this.finishBytes(i, end - vo);
    this.values[i] = value;
    return true;
  }

  /** Sets a label whose value is a non-negative integer below 2^32, in decimal (`rtp.seq`: "4711"). */
  setUint(key: string, v: number): boolean {
    return this.setUintId(labelKeyId(key), v);
  }

  setUintId(id: number, v: number): boolean {
    const i = this.append(id, LabelKind.Uint, 0);
    if (i < 0) return false;
    v >>>= 0;
    this.nums[i] = v;
    writeU32LE(this.enc, this.byteOff[i] - 4, v);
    this.byteLen[i] = -1;
    return true;
  }

  /** Sets a label whose value is the UTF-8 bytes src[off, off+len), copied. */
  setBytes(key: string, src: Uint8Array, off: number, len: number): boolean {
    return this.setBytesId(labelKeyId(key), src, off, len);
  }

  setBytesId(id: number, src: Uint8Array, off: number, len: number): boolean {
    const i = this.append(id, LabelKind.Bytes, len);
    if (i < 0) return false;
    const e = this.enc;
    const at = this.byteOff[i];
    for (let j = 0; j < len; j++) e[at + j] = src[off + j];
    this.finishBytes(i, len);
    return true;
  }

  /**
   * Starts label `id`'s entry at the end of `enc` with room for `room` value
   * bytes: returns its index (byteOff set to where the value goes), or -1
   * when full (counted). A key already set is removed first.
   */
  private append(id: number, kind: LabelKind, room: number): number {
    if (id < 0) {
      this.overflows++;
      return -1;
    }
    const old = this.indexOfId(id);
    if (old >= 0) this.removeAt(old);
    const o = this.encUsed;
    if (this.count === MAX_LABELS || o + 7 + room > LABEL_BYTES) {
      this.overflows++;
      return -1;
    }
    const i = this.count++;
    this.ids[i] = id;
    this.keys[i] = labelKeyName(id);
    this.values[i] = null;
    const e = this.enc;
    writeU16LE(e, o, id);
    e[o + 2] = kind;
    this.byteOff[i] = o + 7;
    this.encUsed = o + 7;
    return i;
  }

  /** Completes a bytes entry: its length, and the block's end. */
  private finishBytes(i: number, len: number): void {
    writeU32LE(this.enc, this.byteOff[i] - 4, len);
    this.byteLen[i] = len;
    this.encUsed = this.byteOff[i] + len;
  }

  /** The value as a string (decodes bytes: allocates), or undefined. */
  get(key: string): string | undefined {
    const i = this.indexOf(key);
    return i < 0 ? undefined : this.valueAt(i);
  }

  valueAt(i: number): string {
    const v = this.values[i];
    if (v !== null) return v;
    if (this.byteLen[i] < 0) return String(this.nums[i]);
    return decoder.decode(this.enc.subarray(this.byteOff[i], this.byteOff[i] + this.byteLen[i]));
  }

  /** True when `key` is set to exactly `value`; compares bytes and numbers without making a string. */
  equals(key: string, value: string): boolean {
    const i = this.indexOf(key);
    if (i < 0) return false;
    const v = this.values[i];
    if (v !== null) return v === value;
    const n = this.byteLen[i];
    if (n < 0) return isDecimal(value, this.nums[i]);
    const a = this.enc;
    const o = this.byteOff[i];
    // ASCII fast path; anything else decodes (rare).
    if (n !== value.length) return this.valueAt(i) === value;
    for (let j = 0; j < n; j++) {
      const c = value.charCodeAt(j);
      if (c >= 0x80) return this.valueAt(i) === value;
      if (a[o + j] !== c) return false;
    }
    return true;
  }

  delete(key: string): boolean {
    const i = this.indexOf(key);
    if (i < 0) return false;
    this.removeAt(i);
    return true;
  }

  /** Removes label i, keeping the others' order, and re-encodes the block (rare: replace and delete). */
  private removeAt(i: number): void {
    const last = --this.count;
    for (let j = i; j < last; j++) {
      this.ids[j] = this.ids[j + 1];
      this.keys[j] = this.keys[j + 1];
      this.values[j] = this.values[j + 1];
      this.byteOff[j] = this.byteOff[j + 1];
      this.byteLen[j] = this.byteLen[j + 1];
      this.nums[j] = this.nums[j + 1];
    }
    const from = this.enc;
    const to = this.spare;
    let o = 0;
    for (let j = 0; j < this.count; j++) {
      const id = this.ids[j];
      const n = this.byteLen[j];
      writeU16LE(to, o, id);
      to[o + 2] = n < 0 ? LabelKind.Uint : LabelKind.Bytes;
      // The 4 bytes before the value (number or length) and the value move as they are.
      const src = this.byteOff[j] - 4;
      const len = 4 + (n < 0 ? 0 : n);
      to.set(from.subarray(src, src + len), o + 3);
      this.byteOff[j] = o + 7;
      o += 3 + len;
    }
    this.enc = to;
    this.spare = from;
    const w = this.enc32;
    this.enc32 = this.spare32;
    this.spare32 = w;
    this.encUsed = o;
  }

  /** A plain object copy (allocates; tests and slow paths). */
  toObject(): Record<string, string> {
    const o: Record<string, string> = {};
    for (let i = 0; i < this.count; i++) o[this.keys[i]] = this.valueAt(i);
    return o;
  }
}

/** Is `s` the canonical decimal form of `n` (no sign, no leading zeros)? Compares without making a string. */
function isDecimal(s: string, n: number): boolean {
  if (s.length === 0 || s.length > 10 || (s.length > 1 && s.charCodeAt(0) === 48)) return false;
  let x = 0;
  for (let j = 0; j < s.length; j++) {
    const c = s.charCodeAt(j) - 48;
    if (c < 0 || c > 9) return false;
    x = x * 10 + c;
  }
  return x === n;
}
