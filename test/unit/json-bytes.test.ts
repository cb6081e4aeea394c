// Bytes off the wire as JSON strings: well-formed UTF-8 kept, every other
// byte escaped, always valid JSON, and the size function exact; literals
// written by words.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { jsonStringBytesLength, Literal, writeJsonStringBytes, writeLiteral } from '../../src/util/bytes.js';

function enc(bytes: number[]): string {
  const src = Uint8Array.from(bytes);
  const out = new Uint8Array(6 * bytes.length + 2);
  const n = writeJsonStringBytes(out, 0, src, 0, src.length);
  assert.equal(n, jsonStringBytesLength(src, 0, src.length), 'size function agrees with the writer');
  return Buffer.from(out.subarray(0, n)).toString('utf8');
}

it('keeps ASCII and well-formed UTF-8, escapes quotes, backslashes and controls', () => {
  const s = 'Grüße "x" \\ 日本 😀\t';
  const text = enc([...Buffer.from(s, 'utf8')]);
  assert.equal(JSON.parse(text), s);
  assert.ok(text.includes('日本'), 'multi-byte characters are not escaped');
});

it('escapes bytes that are not well-formed UTF-8, one \\u00XX each', () => {
  const cases: [number[], string][] = [
    [[0x61, 0xff, 0x62], 'a\u00ffb'], // never valid
    [[0xc3], '\u00c3'], // truncated sequence at the end
    [[0xc0, 0xaf], '\u00c0\u00af'], // overlong
    [[0xed, 0xa0, 0x80], '\u00ed\u00a0\u0080'], // a UTF-16 surrogate
    [[0xf4, 0x90, 0x80, 0x80], '\u00f4\u0090\u0080\u0080'], // beyond U+10FFFF
    [[0xe2, 0x82], '\u00e2\u0082'], // cut three-byte sequence
  ];
  for (const [bytes, want] of cases) assert.equal(JSON.parse(enc(bytes)), want, JSON.stringify(bytes));
});

it('any byte string gives valid JSON of the exact announced size', () => {
  let x = 12345;
  for (let t = 0; t < 2000; t++) {
    const bytes: number[] = [];
    const n = t % 40;
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      bytes.push(x >>> 24);
    }
    assert.doesNotThrow(() => JSON.parse(enc(bytes)), JSON.stringify(bytes));
  }
});

it("writeLiteral writes the literal's bytes at any offset, into any of several buffers in turn, and nothing past them", () => {
  const texts = ['', 'a', ',"', ',"x"', ',"ttl":', '},"network":{"ip_version":', ',"vlans":[],"tunnel":null,"ttl":'];
  const lits = texts.map((t) => new Literal(t));
  // Three buffers, one at an odd offset in its ArrayBuffer: the views kept for two of them must never write into the wrong one.
  const bufs = [new Uint8Array(128), new Uint8Array(new ArrayBuffer(131), 3, 128), new Uint8Array(128)];
  for (let round = 0; round < 2000; round++) {
    const b = bufs[round % 3 === 0 ? 0 : round % 5 === 0 ? 2 : 1];
    const k = round % lits.length;
    const off = (round * 7) % 80;
    b.fill(0xee);
    const end = writeLiteral(b, off, lits[k]);
    assert.equal(end, off + texts[k].length);
    assert.equal(Buffer.from(b.subarray(off, end)).toString('latin1'), texts[k], `round ${round}`);
    assert.ok(b.subarray(0, off).every((x) => x === 0xee) && b.subarray(end).every((x) => x === 0xee), `round ${round}: only its bytes`);
  }
});
