// Labels (docs/records.md): string → string, `{protocol}.{field}` for
// a parser's protocol fields, unprefixed for correlation (`call-id`, `codec`)
// and deployment metadata (`node`, `dc`). Keys match LABEL_KEY.
//
// One Labels per pipeline, cleared per record. Keys are interned ids
// (label-keys.ts); hot parsers take their ids once (labelKeyId) and use the
// *Id setters, everything else passes key strings. A value is a string,
// bytes (setBytes: a parser labels from packet or shared-memory bytes
// without making a string), or a number (setUint: sequence numbers, SSRCs,
// printed in decimal by the sender).
//
// The labels exist only in their wire form (wire.ts), appended to `enc` as
// they are set, one 4-byte-aligned entry each:
//
//   u32 key id | kind << 16,  u32 value length (Bytes) or the number (Uint),
//   Bytes: the value's UTF-8 bytes, zero-padded to 4
//
// so setting a number is two word stores and the wire encoder copies the
// block by words. Labels made once for many packets (the call labels of a
// registry slot) are added by reference (addShared) and copied once, by the
// wire encoder. Reads (get, equals: processors)
// walk the entries; replacing or deleting a label (rare) moves the block.
// A key set twice is found through a per-key mark, not a scan.

import { readU32LE, utf8Length, writeUtf8 } from '../util/bytes.js';
import { labelKeyId, labelKeyName, MAX_KEYS } from './label-keys.js';

/** How a label's value is encoded (kind field of an entry). */
export const enum LabelKind {
  Bytes = 0,
  Uint = 1,
}

export const LABEL_KEY = /^[a-z0-9][a-z0-9.-]*$/;
export const MAX_LABELS = 64;
/** Room for the encoded labels of one record. */
export const LABEL_BYTES = 16 * 1024;

const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** A little-endian word as stored through a native Int32Array. */
function le(v: number): number {
  return LE ? v | 0 : ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
}

const decoder = new TextDecoder();
const NO_WORDS = new Int32Array(0);

/** Words of one encoded entry whose first word is at E[w] (for walking a block). */
export function entryWords(E: Int32Array, w: number): number {
  return (le(E[w]) >>> 16) === LabelKind.Uint ? 2 : 2 + ((le(E[w + 1]) + 3) >>> 2);
}

export class Labels {
  /** Number of labels set. */
  count = 0;
  /** Key id of each label, in the order set. */
  readonly ids = new Int32Array(MAX_LABELS);
  /** Word index in enc32 of each label's entry. */
  private readonly at = new Int32Array(MAX_LABELS);
  /** The labels in wire form: `encUsed` bytes (a multiple of 4). */
  readonly enc32 = new Int32Array(LABEL_BYTES >> 2);
  readonly enc = new Uint8Array(this.enc32.buffer);
  encUsed = 0;
  /** Labels added by reference (addShared), which the wire encoder writes after enc's: shared[sharedAt, sharedAt+sharedWords). */
  shared: Int32Array = NO_WORDS;
  sharedAt = 0;
  sharedWords = 0;
  /** Labels refused because the table or the encoded block was full, or the key had no id (counted, never thrown). */
  overflows = 0;
  /** mark[id] === epoch: key id set since the last clear(). */
  private readonly mark = new Uint32Array(MAX_KEYS);
  private epoch = 1;

  clear(): void {
    this.count = 0;
    this.encUsed = 0;
    this.sharedWords = 0;
    if (++this.epoch === 0xffffffff) {
      this.mark.fill(0);
      this.epoch = 1;
    }
  }

  indexOfId(id: number): number {
    if (id < 0 || this.mark[id] !== this.epoch) return -1;
    const ids = this.ids;
    for (let i = 0; i < this.count; i++) if (ids[i] === id) return i;
    return -1;
  }

  indexOf(key: string): number {
    return this.indexOfId(labelKeyId(key));
  }

  has(key: string): boolean {
    return this.indexOf(key) >= 0;
  }

  keyAt(i: number): string {
    return labelKeyName(this.ids[i]);
  }

  /** Sets (or replaces) a label. False when the table is full. */
  set(key: string, value: string): boolean {
    return this.setId(labelKeyId(key), value);
  }

  setId(id: number, value: string): boolean {
    const len = utf8Length(value);
    const w = this.append(id, LabelKind.Bytes, len);
    if (w < 0) return false;
    writeUtf8(this.enc, (w + 2) << 2, value);
    return true;
  }

  /** Sets a label whose value is a non-negative integer below 2^32, in decimal (`rtp.seq`: "4711"). */
  setUint(key: string, v: number): boolean {
    return this.setUintId(labelKeyId(key), v);
  }

  setUintId(id: number, v: number): boolean {
    const w = this.append(id, LabelKind.Uint, 0);
    if (w < 0) return false;
    this.enc32[w + 1] = le(v);
    return true;
  }

  /** Sets a label whose value is the UTF-8 bytes src[off, off+len), copied. */
  setBytes(key: string, src: Uint8Array, off: number, len: number): boolean {
    return this.setBytesId(labelKeyId(key), src, off, len);
  }

  setBytesId(id: number, src: Uint8Array, off: number, len: number): boolean {
    const w = this.append(id, LabelKind.Bytes, len);
    if (w < 0) return false;
    const e = this.enc;
    const at = (w + 2) << 2;
    for (let j = 0; j < len; j++) e[at + j] = src[off + j];
    return true;
  }

  /**
   * setBytesId from `view`, a DataView over the same bytes as src: whole
   * words four bytes at a time (a Call-ID is some 40 bytes), the rest by
   * bytes. Hot parsers that have their payload's view use it.
   */
  setBytesViewId(id: number, src: Uint8Array, view: DataView, off: number, len: number): boolean {
    const w = this.append(id, LabelKind.Bytes, len);
    if (w < 0) return false;
    const E = this.enc32;
    const whole = len & ~3;
    let k = w + 2;
    let j = 0;
    // getInt32 in the host's byte order, stored through the host's Int32Array: the bytes land as they were.
    for (; j < whole; j += 4) E[k++] = view.getInt32(off + j, LE);
    const e = this.enc;
    const at = (w + 2) << 2;
    for (; j < len; j++) e[at + j] = src[off + j];
    return true;
  }

  /**
   * Adds `n` labels already in entry form, E[w, w+words) (made with
   * encodeBytesEntry once per value, not per packet; their key ids, in
   * order, at ids[idsAt, idsAt+n)), by reference: the
   * wire encoder copies them from there, once. E must stay unchanged until
   * the record is encoded; anything that reads or edits the labels before
   * that copies them in first (own). Keys set already are replaced (the
   * block's own keys are distinct). False (nothing added, counted) when
   * they do not fit.
   */
  addShared(E: Int32Array, w: number, words: number, ids: Int32Array, idsAt: number, n: number): boolean {
    if (this.sharedWords !== 0) this.own();
    if (this.count + n > MAX_LABELS || this.encUsed + (words << 2) > LABEL_BYTES) {
      this.overflows += n;
      return false;
    }
    const mark = this.mark;
    const ep = this.epoch;
    for (let k = 0; k < n; k++) {
      const id = ids[idsAt + k];
      if (mark[id] === ep) this.removeAt(this.indexOfId(id));
      const i = this.count++;
      this.ids[i] = id;
      this.at[i] = -1;
      mark[id] = ep;
    }
    this.shared = E;
    this.sharedAt = w;
    this.sharedWords = words;
    return true;
  }

  /** Copies the shared labels (addShared) into enc, after the labels set before them. */
  private own(): void {
    const words = this.sharedWords;
    if (words === 0) return;
    const E = this.shared;
    const D = this.enc32;
    const o = this.encUsed >> 2;
    const w = this.sharedAt;
    for (let j = 0; j < words; j++) D[o + j] = E[w + j];
    for (let i = 0, x = o; i < this.count; i++) {
      if (this.at[i] >= 0) continue;
      this.at[i] = x;
      x += entryWords(D, x);
    }
    this.encUsed = (o + words) << 2;
    this.sharedWords = 0;
  }

  /**
   * Starts label `id`'s entry at the end of `enc` with room for `len` value
   * bytes (length word written, last word zeroed for the padding): returns
   * its word index, or -1 when full (counted). A key already set is removed
   * first.
   */
  private append(id: number, kind: LabelKind, len: number): number {
    if (id < 0) {
      this.overflows++;
      return -1;
    }
    if (this.sharedWords !== 0) this.own();
    if (this.mark[id] === this.epoch) this.removeAt(this.indexOfId(id));
    const w = this.encUsed >> 2;
    const words = kind === LabelKind.Uint ? 2 : 2 + ((len + 3) >> 2);
    if (this.count === MAX_LABELS || (w + words) << 2 > LABEL_BYTES) {
      this.overflows++;
      return -1;
    }
    const i = this.count++;
    this.ids[i] = id;
    this.at[i] = w;
    this.mark[id] = this.epoch;
    const E = this.enc32;
    E[w] = le(id | (kind << 16));
    if (kind === LabelKind.Bytes) {
      E[w + 1] = le(len);
      E[w + words - 1] = 0;
    }
    this.encUsed = (w + words) << 2;
    return w;
  }

  /** The value as a string (decodes bytes: allocates), or undefined. */
  get(key: string): string | undefined {
    const i = this.indexOf(key);
    return i < 0 ? undefined : this.valueAt(i);
  }

  /** Label i's number (Uint labels), else -1. */
  private numberAt(i: number): number {
    this.own();
    const w = this.at[i];
    return le(this.enc32[w]) >>> 16 === LabelKind.Uint ? readU32LE(this.enc, (w + 1) << 2) : -1;
  }

  valueAt(i: number): string {
    const n = this.numberAt(i); // (owns the shared labels first)
    if (n >= 0) return String(n);
    const o = (this.at[i] + 2) << 2;
    return decoder.decode(this.enc.subarray(o, o + readU32LE(this.enc, o - 4)));
  }

  /** True when `key` is set to exactly `value`; compares bytes and numbers without making a string. */
  equals(key: string, value: string): boolean {
    const i = this.indexOf(key);
    if (i < 0) return false;
    const num = this.numberAt(i);
    if (num >= 0) return isDecimal(value, num);
    const a = this.enc;
    const o = (this.at[i] + 2) << 2;
    const n = readU32LE(a, o - 4);
    // An ASCII value compares byte for byte; anything else decodes (rare).
    let same = n === value.length;
    for (let j = 0; j < value.length; j++) {
      const c = value.charCodeAt(j);
      if (c >= 0x80) return this.valueAt(i) === value;
      if (same && a[o + j] !== c) same = false;
    }
    return same;
  }

  delete(key: string): boolean {
    const i = this.indexOf(key);
    if (i < 0) return false;
    this.removeAt(i);
    return true;
  }

  /** Removes label i, keeping the others' order: the entries after it move down (rare: replace and delete). */
  private removeAt(i: number): void {
    this.own();
    const E = this.enc32;
    const w = this.at[i];
    const words = entryWords(E, w);
    const end = this.encUsed >> 2;
    E.copyWithin(w, w + words, end);
    this.encUsed = (end - words) << 2;
    this.mark[this.ids[i]] = 0;
    const last = --this.count;
    for (let j = i; j < last; j++) {
      this.ids[j] = this.ids[j + 1];
      this.at[j] = this.at[j + 1] - words;
    }
  }

  /** A plain object copy (allocates; tests and slow paths). */
  toObject(): Record<string, string> {
    const o: Record<string, string> = {};
    for (let i = 0; i < this.count; i++) o[this.keyAt(i)] = this.valueAt(i);
    return o;
  }
}

/**
 * Encodes a bytes label entry at E[w...] (for addShared; `e` is E's
 * bytes): returns the word after it, or -1 when it would pass word `end`.
 */
export function encodeBytesEntry(E: Int32Array, e: Uint8Array, w: number, end: number, id: number, src: Uint8Array, off: number, len: number): number {
  const words = 2 + ((len + 3) >> 2);
  if (id < 0 || w + words > end) return -1;
  E[w] = le(id | (LabelKind.Bytes << 16));
  E[w + 1] = le(len);
  E[w + words - 1] = 0;
  const at = (w + 2) << 2;
  for (let j = 0; j < len; j++) e[at + j] = src[off + j];
  return w + words;
}

/** Encodes a number label entry at E[w, w+2) (the fast path writes labels straight into a record): returns the word after it. */
export function encodeUintEntry(E: Int32Array, w: number, id: number, v: number): number {
  E[w] = le(id | (LabelKind.Uint << 16));
  E[w + 1] = le(v);
  return w + 2;
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
