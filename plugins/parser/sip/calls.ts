// The calls whose media this process registered, keyed by the Call-ID's
// bytes, so a BYE, CANCEL or final error can shorten exactly those
// endpoints. A Map<string> here cost a string per message (the Call-ID
// sliced from the packet) and a table reallocation per call: V8 shrinks a
// Map's table on delete once it is a quarter full, so a few live calls
// churned it on every call (measured: Map.delete ~480 ns, bench/sip).
//
// Open addressing with linear probing over entry ids, deletion by backward
// shift (no tombstones); the entries in insertion order on a linked list,
// so the oldest is forgotten first when the table is at its bound. Entry
// objects are kept and reused with their ids: nothing is allocated per
// call once the table has grown.

import type { CallState } from './dialogs.js';

/** FlowKey words kept per endpoint: kind, ports, address (4 words; IPv4 uses the first). */
export const EP_WORDS = 6;

/** A call's registered media endpoints, as FlowKey words. */
export class CallMedia {
  n = 0;
  w = new Int32Array(4 * EP_WORDS);
  /** The Call-ID's bytes, key[0, keyLen). */
  key = new Uint8Array(64);
  keyLen = 0;
  hash = 0;
  /** Index in its table (fixed: entries are reused with their ids). */
  id = -1;
  /** The call's record state (the task's `sip: {calls: true}`), null for a call known only by its media. */
  call: CallState | null = null;
  /** Capture time (ms) of the call's last message, when calls are recorded. */
  lastMs = 0;
  /** Hash of the caller's From tag (the From of the message that added the call; 0 none): whose SDP is whose. */
  callerTag = 0;

  /** Adds the endpoint of key words `k` unless present. */
  add(k: Int32Array): void {
    const w = this.w;
    for (let e = 0; e < this.n; e++) {
      let j = 0;
      while (j < EP_WORDS && w[e * EP_WORDS + j] === k[j]) j++;
      if (j === EP_WORDS) return;
    }
    if ((this.n + 1) * EP_WORDS > w.length) {
      this.w = new Int32Array(w.length * 2);
      this.w.set(w);
    }
    for (let j = 0; j < EP_WORDS; j++) this.w[this.n * EP_WORDS + j] = k[j];
    this.n++;
  }
}

/** FNV-1a over b[off, off+len). */
function hashBytes(b: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ b[off + i], 0x01000193);
  return h;
}

const NONE = -1;

export class CallTable {
  /** Slot → entry id + 1 (0: empty); a power of two, at most half full. */
  private slots = new Int32Array(256);
  private readonly entries: CallMedia[] = [];
  /** Insertion order: entry id → previous / next id, NONE at the ends. */
  private prev = new Int32Array(128);
  private next = new Int32Array(128);
  private head = NONE;
  private tail = NONE;
  /** Ids of removed entries, for reuse. */
  private free: number[] = [];
  size = 0;

  /** Called with the call a full table forgets to make room (before it is removed). */
  onEvict: ((c: CallMedia) => void) | null = null;

  /** At most this many calls; adding one more forgets the oldest (the least recently touched). */
  constructor(readonly max: number) {}

  /** The call at the head of the order: the oldest, or the least recently touched; null when empty. */
  oldest(): CallMedia | null {
    return this.head === NONE ? null : this.entries[this.head];
  }

  /** Moves a call this table holds to the end of the order (recording calls: the order is by last activity). */
  touch(c: CallMedia): void {
    const id = c.id;
    if (id === this.tail) return;
    const p = this.prev[id];
    const n = this.next[id];
    if (p !== NONE) this.next[p] = n;
    else this.head = n;
    this.prev[n] = p; // n exists: id is not the tail
    this.prev[id] = this.tail;
    this.next[id] = NONE;
    this.next[this.tail] = id;
    this.tail = id;
  }

  /** The call with this Call-ID, or null. */
  find(b: Uint8Array, off: number, len: number): CallMedia | null {
    const id = this.idOf(b, off, len, hashBytes(b, off, len));
    return id < 0 ? null : this.entries[id];
  }

  /** The call with this Call-ID, added (no endpoints) when new. */
  getOrAdd(b: Uint8Array, off: number, len: number): CallMedia {
    const h = hashBytes(b, off, len);
    const id = this.idOf(b, off, len, h);
    if (id >= 0) return this.entries[id];
    if (this.size >= this.max) {
      const old = this.entries[this.head];
      this.onEvict?.(old);
      this.remove(old);
    }
    if (2 * (this.size + 1) > this.slots.length) this.grow();
    const nid = this.free.length > 0 ? this.free.pop()! : this.newId();
    const c = this.entries[nid];
    if (c.key.length < len) c.key = new Uint8Array(Math.max(2 * c.key.length, len));
    for (let i = 0; i < len; i++) c.key[i] = b[off + i];
    c.keyLen = len;
    c.hash = h;
    c.n = 0;
    c.call = null;
    c.callerTag = 0;
    this.place(nid, h);
    this.prev[nid] = this.tail;
    this.next[nid] = NONE;
    if (this.tail !== NONE) this.next[this.tail] = nid;
    else this.head = nid;
    this.tail = nid;
    this.size++;
    return c;
  }

  /** Removes a call this table holds (found by find or getOrAdd). */
  remove(c: CallMedia): void {
    const mask = this.slots.length - 1;
    let i = c.hash & mask;
    let id = this.slots[i] - 1;
    while (id >= 0 && this.entries[id] !== c) {
      i = (i + 1) & mask;
      id = this.slots[i] - 1;
    }
    if (id < 0) return;
    // Backward shift: later entries of the probe run move into the hole when their home allows.
    let hole = i;
    for (let j = (i + 1) & mask; this.slots[j] !== 0; j = (j + 1) & mask) {
      const home = this.entries[this.slots[j] - 1].hash & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        this.slots[hole] = this.slots[j];
        hole = j;
      }
    }
    this.slots[hole] = 0;
    const p = this.prev[id];
    const n = this.next[id];
    if (p !== NONE) this.next[p] = n;
    else this.head = n;
    if (n !== NONE) this.prev[n] = p;
    else this.tail = p;
    this.free.push(id);
    this.size--;
  }

  private idOf(b: Uint8Array, off: number, len: number, h: number): number {
    const mask = this.slots.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const id = this.slots[i] - 1;
      if (id < 0) return -1;
      const c = this.entries[id];
      if (c.hash === h && c.keyLen === len && sameBytes(c.key, b, off, len)) return id;
    }
  }

  private place(id: number, h: number): void {
    const mask = this.slots.length - 1;
    let i = h & mask;
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = id + 1;
  }

  private newId(): number {
    const id = this.entries.length;
    const c = new CallMedia();
    c.id = id;
    this.entries.push(c);
    if (id >= this.prev.length) {
      const p = new Int32Array(2 * this.prev.length);
      const n = new Int32Array(2 * this.next.length);
      p.set(this.prev);
      n.set(this.next);
      this.prev = p;
      this.next = n;
    }
    return id;
  }

  private grow(): void {
    this.slots = new Int32Array(2 * this.slots.length);
    for (let id = this.head; id !== NONE; id = this.next[id]) this.place(id, this.entries[id].hash);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array, off: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[i] !== b[off + i]) return false;
  return true;
}
