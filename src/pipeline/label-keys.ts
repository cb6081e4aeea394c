// Label keys as small numbers. A key is a name from a plugin's schema
// (`rtp.ssrc`, `call-id`), not data, so each process interns the ones it
// uses once and wire records carry the 2-byte id instead of the name:
// printing eight characters per label per packet was a sixth of the RTP
// fast path. Ids are per process; a capture process's batch carries the
// names of the ids its records use (KeyTracker → BatchSink), which the
// sender reads back (BatchKeys); in one process LOCAL_KEYS resolves them.

/** Ids fit in the wire record's u16. */
export const MAX_KEYS = 65535;

const names: string[] = [];
const utf8: Uint8Array[] = [];
const byName = new Map<string, number>();
const encoder = new TextEncoder();

/**
 * The id of a label key, interned on first use; -1 once MAX_KEYS keys exist
 * or for a name over 255 bytes (the label is then refused and counted).
 */
export function labelKeyId(name: string): number {
  const id = byName.get(name);
  if (id !== undefined) return id;
  const bytes = encoder.encode(name);
  if (names.length >= MAX_KEYS || bytes.length > 255) return -1;
  const n = names.length;
  names.push(name);
  utf8.push(bytes);
  byName.set(name, n);
  return n;
}

export function labelKeyName(id: number): string {
  return names[id];
}

export function labelKeyBytes(id: number): Uint8Array {
  return utf8[id];
}

/** Where a wire record's key ids are looked up: find(id) sets buf/off/len to the key's UTF-8 bytes. */
export interface KeyResolver {
  buf: Uint8Array;
  off: number;
  len: number;
  find(id: number): boolean;
}

/** This process's own keys (a record encoded and read in one process). */
class LocalKeys implements KeyResolver {
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  len = 0;
  find(id: number): boolean {
    if (id >= names.length) return false;
    this.buf = utf8[id];
    this.len = this.buf.length;
    return true;
  }
}

export const LOCAL_KEYS: KeyResolver = new LocalKeys();

/** The distinct key ids used since the last reset (the ids a batch must name). */
export class KeyTracker {
  readonly used = new Uint16Array(MAX_KEYS);
  count = 0;
  private readonly mark = new Uint32Array(MAX_KEYS);
  private epoch = 1;

  use(id: number): void {
    if (this.mark[id] !== this.epoch) {
      this.mark[id] = this.epoch;
      this.used[this.count++] = id;
    }
  }

  reset(): void {
    this.count = 0;
    if (++this.epoch === 0xffffffff) {
      this.mark.fill(0);
      this.epoch = 1;
    }
  }
}

/** The key names one batch carries, read in place from the ring (see batch-sink.ts). */
export class BatchKeys implements KeyResolver {
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  len = 0;
  private src: Uint8Array = new Uint8Array(0);
  private readonly offs = new Int32Array(MAX_KEYS);
  private readonly lens = new Uint8Array(MAX_KEYS);
  private readonly mark = new Uint32Array(MAX_KEYS);
  private epoch = 0;

  /** Starts a new batch whose names live in `src`. */
  begin(src: Uint8Array): void {
    this.src = src;
    this.buf = src;
    if (++this.epoch === 0xffffffff) {
      this.mark.fill(0);
      this.epoch = 1;
    }
  }

  add(id: number, off: number, len: number): void {
    this.mark[id] = this.epoch;
    this.offs[id] = off;
    this.lens[id] = len;
  }

  find(id: number): boolean {
    if (this.mark[id] !== this.epoch) return false;
    this.buf = this.src;
    this.off = this.offs[id];
    this.len = this.lens[id];
    return true;
  }
}
