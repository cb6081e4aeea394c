// Numbers written in decimal into record bytes (writeUint, decimalLength)
// agree with String() at every digit-count boundary and at random.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { decimalLength, writeUint, writeUintOrNull } from '../../src/util/bytes.js';

const out = new Uint8Array(64);

function written(v: number): string {
  out.fill(0x2a); // '*': a digit written past the announced length would show
  const end = writeUint(out, 3, v);
  assert.equal(out[3 + decimalLength(v)], 0x2a, `${v}: nothing past its length`);
  assert.equal(out[2], 0x2a, `${v}: nothing before`);
  return Buffer.from(out.subarray(3, end)).toString('latin1');
}

it('every power of ten, one either side of it, and the 32-bit and 53-bit edges', () => {
  const values = [0, 1, 9, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
  for (let p = 1; p <= 15; p++) values.push(10 ** p - 1, 10 ** p, 10 ** p + 1);
  for (const v of values) {
    assert.equal(written(v), String(v));
    assert.equal(decimalLength(v), String(v).length, `decimalLength(${v})`);
  }
});

it('random values of every size', () => {
  let seed = 0x2545f491;
  const rnd = (): number => ((seed = Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) ^ (seed >>> 12)) >>> 0) / 2 ** 32;
  for (let i = 0; i < 200_000; i++) {
    const v = Math.floor(rnd() * 10 ** Math.floor(rnd() * 16));
    assert.equal(written(v), String(v));
  }
});

it('negative is null', () => {
  const end = writeUintOrNull(out, 0, -1);
  assert.equal(Buffer.from(out.subarray(0, end)).toString('latin1'), 'null');
});
