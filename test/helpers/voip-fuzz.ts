// Mutation fuzzing of parsers: seeded, reproducible; each run mutates real
// messages (bit flips, byte overwrites with interesting values, truncation,
// duplication of a span, insertion of CR/LF/space/digits) and hands them to
// the parser through a reused DecodedPacket and OutputRecord, then encodes
// the record in both formats. The caller checks the counters.

import { openCapture } from '../../src/capture-file/open.js';
import { Decoder } from '../../src/decode/decoder.js';
import { defaultDecoderOptions } from '../../src/decode/options.js';
import { DecodedPacket } from '../../src/decode/packet.js';
import { encodeJson, encodeProtobuf } from '../../src/pipeline/codec.js';
import { OutputRecord } from '../../src/pipeline/record.js';
import type { Parser } from '../../src/plugin/types.js';

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

const INTERESTING = [0, 0xff, 0x7f, 0x80, 13, 10, 32, 58, 59, 60, 62, 48, 57, 9, 34, 92];

/** One mutation of `src` into `out` (capacity ≥ 2 × src.length + 64); returns the length. */
export function mutate(src: Uint8Array, out: Uint8Array, r: () => number): number {
  let n = src.length;
  out.set(src);
  const rounds = 1 + Math.floor(r() * 4);
  for (let k = 0; k < rounds; k++) {
    const at = Math.floor(r() * Math.max(n, 1));
    switch (Math.floor(r() * 6)) {
      case 0:
        out[at] ^= 1 << Math.floor(r() * 8);
        break;
      case 1:
        out[at] = INTERESTING[Math.floor(r() * INTERESTING.length)];
        break;
      case 2:
        n = Math.floor(r() * n);
        break;
      case 3: {
        // duplicate a span
        const len = Math.min(Math.floor(r() * 64), n - at, out.length - n);
        out.copyWithin(at + len, at, n);
        n += len;
        break;
      }
      case 4: {
        // insert one byte
        if (n + 1 > out.length) break;
        out.copyWithin(at + 1, at, n);
        out[at] = INTERESTING[Math.floor(r() * INTERESTING.length)];
        n++;
        break;
      }
      default:
        out[at] = Math.floor(r() * 256);
    }
  }
  return n;
}

export interface FuzzResult {
  runs: number;
  accepted: number;
  /** canHandle said no (no payload, not this protocol's shape). */
  notHandled: number;
  /** handle refused (a counted rejection). */
  refused: number;
  encodeRefused: number;
  ms: number;
  heapGrowthMb: number;
}

/** Runs `runs` mutated payloads (UDP, ports as given) through parser.handle and both encoders. */
export function fuzzParser(parser: Parser, seeds: Uint8Array[], runs: number, seed: number, sport: number, dport: number): FuzzResult {
  const r = rng(seed);
  const p = new DecodedPacket();
  const rec = new OutputRecord();
  const maxLen = Math.max(...seeds.map((s) => s.length)) * 2 + 64;
  const buf = new Uint8Array(maxLen);
  const out = new Uint8Array(1 << 20);
  p.ipVersion = 4;
  p.proto = 17;
  p.src4 = 0x0a000001;
  p.dst4 = 0x0a000002;
  p.sport = sport;
  p.dport = dport;
  p.payloadBuf = buf;
  p.payloadView = new DataView(buf.buffer);
  p.payloadOff = 0;
  let accepted = 0;
  let notHandled = 0;
  let refused = 0;
  let encodeRefused = 0;
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = Date.now();
  for (let i = 0; i < runs; i++) {
    p.payloadLen = mutate(seeds[i % seeds.length], buf, r);
    rec.reset();
    if (!parser.canHandle(p)) {
      notHandled++;
      continue;
    }
    if (!parser.handle(p, rec, true, 6)) {
      refused++;
      continue;
    }
    accepted++;
    if (encodeJson(rec, out, 0, out.length) < 0 || encodeProtobuf(rec, out, 0, out.length) < 0) encodeRefused++;
  }
  const ms = Date.now() - t0;
  global.gc?.();
  return { runs, accepted, notHandled, refused, encodeRefused, ms, heapGrowthMb: (process.memoryUsage().heapUsed - heap0) / 1e6 };
}

/** Copies of the L4 payloads of the frames in `files` that `keep` accepts. */
export function payloadsOf(files: string[], keep: (p: import('../../src/decode/packet.js').DecodedPacket) => boolean): Uint8Array[] {
  const out: Uint8Array[] = [];
  const dec = new Decoder(defaultDecoderOptions());
  for (const f of files) {
    const r = openCapture(f);
    while (r.next()) {
      const p = dec.decode(r.frame);
      if (p.error === 0 && !p.held && p.payloadLen > 0 && keep(p)) out.push(p.payloadBuf.slice(p.payloadOff, p.payloadOff + p.payloadLen));
    }
  }
  return out;
}
