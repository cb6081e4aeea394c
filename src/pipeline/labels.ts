// Labels (design §5.5.5, ADR-012): string → string, `{protocol}.{field}` for
// a parser's protocol fields, unprefixed for correlation (`call-id`, `codec`)
// and deployment metadata (`node`, `dc`). Keys match LABEL_KEY.
//
// One Labels per pipeline, cleared per record: two parallel arrays with a
// fixed capacity, so setting a label allocates nothing. A value is either a
// string (kept by reference: parsers pass strings they made once) or bytes
// copied into a preallocated arena (setBytes), so a parser can label from a
// shared-memory context without making a string per packet. Encoders write
// both kinds straight into the output; get() makes a string only when asked.

export const LABEL_KEY = /^[a-z0-9][a-z0-9.-]*$/;
export const MAX_LABELS = 64;
const ARENA_BYTES = 16 * 1024;

const decoder = new TextDecoder();

export class Labels {
  /** Number of labels set. */
  count = 0;
  readonly keys: string[] = new Array<string>(MAX_LABELS).fill('');
  /** The value, or null when it lives in the arena (setBytes). */
  readonly values: (string | null)[] = new Array<string | null>(MAX_LABELS).fill(null);
  readonly byteOff = new Int32Array(MAX_LABELS);
  readonly byteLen = new Int32Array(MAX_LABELS);
  readonly arena = new Uint8Array(ARENA_BYTES);
  private arenaUsed = 0;
  /** Labels refused because the table or arena was full (counted, never thrown). */
  overflows = 0;

  clear(): void {
    this.count = 0;
    this.arenaUsed = 0;
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
    let i = this.indexOf(key);
    if (i < 0) {
      if (this.count === MAX_LABELS) {
        this.overflows++;
        return false;
      }
      i = this.count++;
      this.keys[i] = key;
    }
    this.values[i] = value;
    return true;
  }

  /** Sets a label whose value is the UTF-8 bytes src[off, off+len), copied. */
  setBytes(key: string, src: Uint8Array, off: number, len: number): boolean {
    if (this.arenaUsed + len > ARENA_BYTES) {
      this.overflows++;
      return false;
    }
    let i = this.indexOf(key);
    if (i < 0) {
      if (this.count === MAX_LABELS) {
        this.overflows++;
        return false;
      }
      i = this.count++;
      this.keys[i] = key;
    }
    const a = this.arena;
    const at = this.arenaUsed;
    for (let j = 0; j < len; j++) a[at + j] = src[off + j];
    this.arenaUsed = at + len;
    this.values[i] = null;
    this.byteOff[i] = at;
    this.byteLen[i] = len;
    return true;
  }

  /** The value as a string (decodes arena bytes: allocates), or undefined. */
  get(key: string): string | undefined {
    const i = this.indexOf(key);
    return i < 0 ? undefined : this.valueAt(i);
  }

  valueAt(i: number): string {
    const v = this.values[i];
    if (v !== null) return v;
    return decoder.decode(this.arena.subarray(this.byteOff[i], this.byteOff[i] + this.byteLen[i]));
  }

  /** True when `key` is set to exactly `value`; compares arena bytes without making a string. */
  equals(key: string, value: string): boolean {
    const i = this.indexOf(key);
    if (i < 0) return false;
    const v = this.values[i];
    if (v !== null) return v === value;
    const n = this.byteLen[i];
    const a = this.arena;
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
    const last = --this.count;
    // Keep order: shift down (labels are few).
    for (let j = i; j < last; j++) {
      this.keys[j] = this.keys[j + 1];
      this.values[j] = this.values[j + 1];
      this.byteOff[j] = this.byteOff[j + 1];
      this.byteLen[j] = this.byteLen[j + 1];
    }
    return true;
  }

  /** A plain object copy (allocates; tests and slow paths). */
  toObject(): Record<string, string> {
    const o: Record<string, string> = {};
    for (let i = 0; i < this.count; i++) o[this.keys[i]] = this.valueAt(i);
    return o;
  }
}
