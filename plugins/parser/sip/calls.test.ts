// The calls table against a Map<string> model: random adds, finds and
// removes over colliding and growing tables, and the oldest-first bound.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallTable, type CallMedia } from './calls.js';

const bytes = (s: string): Uint8Array => Buffer.from(s, 'latin1');

/** A small deterministic generator (xorshift32), so a failure replays. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

test('calls table: agrees with a Map through 200000 random adds, finds and removes', () => {
  const t = new CallTable(1_000_000);
  const model = new Map<string, CallMedia>();
  const r = rng(7);
  for (let step = 0; step < 200_000; step++) {
    // Keys of varied length (1..90 bytes) from a pool of 5000, so removes hit and probe runs form.
    const n = Math.floor(r() * 5000);
    const key = `${n}@${'x'.repeat(n % 88)}`;
    const b = bytes(`..${key}..`);
    const op = r();
    if (op < 0.45) {
      const c = t.getOrAdd(b, 2, key.length);
      const had = model.get(key);
      if (had !== undefined) assert.equal(c, had, `getOrAdd(${key}) returned another entry`);
      else {
        assert.equal(c.n, 0, 'a new call starts without endpoints');
        c.n = 1;
        model.set(key, c);
      }
    } else if (op < 0.75) {
      const c = t.find(b, 2, key.length);
      assert.equal(c, model.get(key) ?? null, `find(${key})`);
      if (c !== null) {
        t.remove(c);
        model.delete(key);
      }
    } else assert.equal(t.find(b, 2, key.length), model.get(key) ?? null, `find(${key})`);
    assert.equal(t.size, model.size);
  }
  for (const [key, c] of model) assert.equal(t.find(bytes(key), 0, key.length), c);
});

test('calls table: at its bound the oldest call is forgotten first, and ids are reused', () => {
  const t = new CallTable(3);
  const add = (k: string): CallMedia => t.getOrAdd(bytes(k), 0, k.length);
  const a = add('a');
  add('b');
  add('c');
  add('a'); // already there: no new entry, and 'a' stays the oldest
  assert.equal(t.size, 3);
  const d = add('d');
  assert.equal(t.size, 3);
  assert.equal(t.find(bytes('a'), 0, 1), null, 'the oldest call went first');
  assert.equal(d, a, "the forgotten call's entry is reused");
  assert.equal(t.find(bytes('d'), 0, 1), d);
  assert.notEqual(t.find(bytes('b'), 0, 1), null);
  assert.notEqual(t.find(bytes('c'), 0, 1), null);
  add('e');
  assert.equal(t.find(bytes('b'), 0, 1), null, 'then the next oldest');
});

test('calls table: touch orders by last activity; a full table forgets the least recently touched and says so first', () => {
  const t = new CallTable(3);
  const evicted: string[] = [];
  const name = (c: CallMedia): string => Buffer.from(c.key.subarray(0, c.keyLen)).toString('latin1');
  t.onEvict = (c) => evicted.push(name(c));
  const a = t.getOrAdd(bytes('a'), 0, 1);
  t.getOrAdd(bytes('b'), 0, 1);
  t.getOrAdd(bytes('c'), 0, 1);
  t.touch(a); // order: b c a
  assert.equal(name(t.oldest()!), 'b');
  t.touch(t.find(bytes('c'), 0, 1)!); // b a c
  t.touch(t.find(bytes('c'), 0, 1)!); // the tail stays the tail
  t.getOrAdd(bytes('d'), 0, 1); // forgets b
  assert.deepEqual(evicted, ['b']);
  assert.equal(t.find(bytes('b'), 0, 1), null);
  const order: string[] = [];
  for (let c = t.oldest(); c !== null; c = t.oldest()) {
    order.push(name(c));
    t.remove(c);
  }
  assert.deepEqual(order, ['a', 'c', 'd']);
  assert.equal(t.size, 0);
});
