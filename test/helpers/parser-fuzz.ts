// Mutation fuzzing for the parser fuzz tests (dns, webrtc, http): seeds are real
// messages taken from fixture captures (L4 payloads), mutated with a seeded
// PRNG so a failure is reproducible from its iteration number.

import { openCapture } from '../../src/capture-file/open.js';
import { Decoder } from '../../src/decode/decoder.js';
import type { DecodedPacket } from '../../src/decode/packet.js';
import { defaultDecoderOptions } from '../../src/decode/options.js';
import type { Payload } from '../../src/pipeline/record.js';
import assert from 'node:assert/strict';

/** xorshift32: deterministic, allocation-free. */
export class Rng {
  constructor(private s: number) {
    if (this.s === 0) this.s = 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return this.next() % n;
  }
}

/** Copies of the L4 payloads of frames the predicate accepts. */
export function seedsFrom(files: string[], accept: (p: DecodedPacket) => boolean): Uint8Array[] {
  const out: Uint8Array[] = [];
  const dec = new Decoder(defaultDecoderOptions());
  for (const f of files) {
    const r = openCapture(f);
    while (r.next()) {
      const p = dec.decode(r.frame);
      if (p.error !== 0 || p.held || p.payloadLen <= 0 || !accept(p)) continue;
      out.push(p.payloadBuf.slice(p.payloadOff, p.payloadOff + p.payloadLen));
    }
  }
  return out;
}

const INTERESTING = [0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff];

/**
 * Writes a mutation of `seed` (or of it spliced with `other`) into `dst` and
 * returns its length (≤ dst.length). 1-4 mutations: bit flip, interesting
 * byte, random byte, 16-bit field set to 0 / 0xffff / a small value, a
 * compression-pointer-like pair, truncation, deletion, duplication, splice.
 */
export function mutate(rng: Rng, seed: Uint8Array, other: Uint8Array, dst: Uint8Array): number {
  let n = Math.min(seed.length, dst.length);
  dst.set(seed.subarray(0, n));
  const rounds = 1 + rng.int(4);
  for (let k = 0; k < rounds; k++) {
    const at = n === 0 ? 0 : rng.int(n);
    switch (rng.int(10)) {
      case 0:
        if (n > 0) dst[at] ^= 1 << rng.int(8);
        break;
      case 1:
        if (n > 0) dst[at] = INTERESTING[rng.int(INTERESTING.length)];
        break;
      case 2:
        if (n > 0) dst[at] = rng.int(256);
        break;
      case 3:
        if (at + 1 < n) {
          const v = [0, 0xffff, rng.int(16), rng.int(n + 8)][rng.int(4)];
          dst[at] = v >>> 8;
          dst[at + 1] = v & 255;
        }
        break;
      case 4:
        if (at + 1 < n) {
          dst[at] = 0xc0 | rng.int(4);
          dst[at + 1] = rng.int(256);
        }
        break;
      case 5:
        n = rng.int(n + 1);
        break;
      case 6: {
        // delete a run
        const len = Math.min(1 + rng.int(8), n - at);
        dst.copyWithin(at, at + len, n);
        n -= len;
        break;
      }
      case 7: {
        // duplicate a run
        const len = Math.min(1 + rng.int(16), n - at, dst.length - n);
        if (len > 0) {
          dst.copyWithin(at + len, at, n);
          n += len;
        }
        break;
      }
      case 8: {
        // splice: the tail from another seed
        const from = other.length === 0 ? 0 : rng.int(other.length);
        const len = Math.min(other.length - from, dst.length - at);
        dst.set(other.subarray(from, from + len), at);
        n = at + len;
        break;
      }
      default:
        if (n > 0) dst[at] = dst[at] + 1;
    }
  }
  return n;
}

/**
 * A payload's writers keep to their bounds: writeJson stops at `limit` (or
 * returns -1) and never touches the 64 guard bytes after it; writeBinary
 * writes exactly binarySize() bytes. Returns writeJson's end.
 */
export function checkPayloadWriters(p: Payload, out: Uint8Array, pb: Uint8Array, limit: number, what: string): number {
  out.fill(0xee, limit, limit + 64);
  const end = p.writeJson(out, 0, limit);
  for (let k = limit; k < limit + 64; k++) if (out[k] !== 0xee) assert.fail(`${what}: JSON written past end`);
  assert.equal(p.writeBinary(pb, 0, pb.length), p.binarySize(), `${what}: protobuf size`);
  return end;
}
