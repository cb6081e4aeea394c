// Labels against a plain Map model: random sets (strings, bytes, bytes by
// words through a view, numbers, shared blocks), replacements and deletes
// must read back the same through get/equals/toObject and through a wire
// record the sender would read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labelKeyId } from '../../src/pipeline/label-keys.js';
import { encodeBytesEntry, Labels } from '../../src/pipeline/labels.js';
import { OutputRecord } from '../../src/pipeline/record.js';
import { wireInProcess } from '../../src/pipeline/wire.js';

const KEYS = ['a.one', 'a.two', 'call-id', 'codec', 'media', 'rtp.seq'];
const VALUES = ['', 'x', 'PCMA', 'abc@192.0.2.1', 'grüße', '日本', '7', 'z'.repeat(37)];
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Deterministic PRNG (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What the wire record says the labels are, in order. */
function viaWire(r: OutputRecord): [string, string][] {
  const w = wireInProcess(r, 1 << 16, 'json');
  assert.ok(w, 'wire record loads');
  const out: [string, string][] = [];
  for (let i = 0; i < w.labelCount; i++) {
    const key = dec.decode(w.keyBuf[i].subarray(w.keyOff[i], w.keyOff[i] + w.keyLen[i]));
    const v = w.valKind[i] === 1 ? String(w.valNum[i]) : dec.decode(w.buf.subarray(w.valOff[i], w.valOff[i] + w.valLen[i]));
    out.push([key, v]);
  }
  return out;
}

test('labels: random sets, shared blocks, replaces and deletes read back as a Map model would, also through the wire record', () => {
  const next = rng(7);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(next() * a.length)];
  const r = new OutputRecord();
  const L = r.labels;
  const block = new Int32Array(4096);
  const block8 = new Uint8Array(block.buffer);
  const src = new Uint8Array(new ArrayBuffer(128), 3, 121);
  const srcView = new DataView(src.buffer, src.byteOffset, src.length);
  for (let round = 0; round < 3000; round++) {
    r.reset();
    const model = new Map<string, string>();
    const put = (k: string, v: string): void => {
      model.delete(k); // a replaced key moves to the end, as in Labels
      model.set(k, v);
    };
    const ops = 1 + Math.floor(next() * 10);
    // Shared blocks must stay as they are until the record is encoded: each gets its own words.
    let free = 0;
    for (let j = 0; j < ops; j++) {
      const op = next();
      const k = pick(KEYS);
      if (op < 0.25) {
        const v = pick(VALUES);
        assert.ok(L.set(k, v));
        put(k, v);
      } else if (op < 0.45) {
        const n = Math.floor(next() * 2 ** 32);
        assert.ok(L.setUint(k, n));
        put(k, String(n));
      } else if (op < 0.52) {
        const b = enc.encode(pick(VALUES));
        assert.ok(L.setBytes(k, b, 0, b.length));
        put(k, dec.decode(b));
      } else if (op < 0.6) {
        // By words through a view: the value anywhere in a buffer that is itself at an odd offset, also at its very end.
        const b = enc.encode(pick(VALUES));
        const at = next() < 0.3 ? src.length - b.length : Math.floor(next() * (src.length - b.length));
        src.fill(0x5a);
        src.set(b, at);
        assert.ok(L.setBytesViewId(labelKeyId(k), src, srcView, at, b.length));
        put(k, dec.decode(b));
      } else if (op < 0.85) {
        // A shared block of 1-3 distinct keys, as the media correlator makes.
        const keys = [...new Set([k, pick(KEYS), pick(KEYS)])].slice(0, 1 + Math.floor(next() * 3));
        const base = free + Math.floor(next() * 3);
        let w = base;
        const vals = keys.map(() => pick(VALUES));
        keys.forEach((key, i) => {
          const b = enc.encode(vals[i]);
          w = encodeBytesEntry(block, block8, w, block.length, labelKeyId(key), b, 0, b.length);
        });
        assert.ok(L.addShared(block, base, w - base, Int32Array.from(keys, labelKeyId), 0, keys.length));
        free = w;
        keys.forEach((key, i) => put(key, vals[i]));
      } else {
        assert.equal(L.delete(k), model.has(k));
        model.delete(k);
      }
    }
    // The wire record first: reading through Labels copies shared labels in, the encoder must not need that.
    assert.deepEqual(viaWire(r), [...model], `round ${round} (wire)`);
    for (const k of KEYS) {
      assert.equal(L.get(k), model.get(k), `round ${round} get ${k}`);
      for (const v of VALUES) assert.equal(L.equals(k, v), model.get(k) === v, `round ${round} equals ${k} ${v}`);
    }
    assert.deepEqual(Object.entries(L.toObject()), [...model], `round ${round}`);
    assert.deepEqual(viaWire(r), [...model], `round ${round} (wire, after reads)`);
  }
});

test('labels: a shared block that would overflow the table is refused whole and counted', () => {
  const L = new Labels();
  for (let i = 0; i < 63; i++) assert.ok(L.setUint(`k.${i}`, i));
  const block = new Int32Array(16);
  const b8 = new Uint8Array(block.buffer);
  let w = encodeBytesEntry(block, b8, 0, 16, labelKeyId('call-id'), enc.encode('c1'), 0, 2);
  w = encodeBytesEntry(block, b8, w, 16, labelKeyId('codec'), enc.encode('PCMU'), 0, 4);
  assert.equal(L.addShared(block, 0, w, Int32Array.of(labelKeyId('call-id'), labelKeyId('codec')), 0, 2), false);
  assert.equal(L.overflows, 2);
  assert.equal(L.count, 63);
  assert.equal(L.get('call-id'), undefined);
  assert.equal(encodeBytesEntry(block, b8, 0, 3, labelKeyId('call-id'), enc.encode('too long'), 0, 8), -1);
});
