// Fuzz: real frames mutated (bit flips, truncation, length fields, IPv6
// extension-header loops, overlapping fragments) through the decoder at least
// a million times: no exception, no hang, memory bounded. Deterministic: the
// seed is printed, and FUZZ_SEED / FUZZ_ITERATIONS override it.

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openCapture } from '../../src/capture-file/open.js';
import { Decoder } from '../../src/decode/decoder.js';
import { DECODE_ERROR_NAMES } from '../../src/decode/errors.js';
import { concat, ethernet, hex, ipv4Header, udpHeader, withOptions } from '../helpers/bytes.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/captures/', import.meta.url));
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 1_000_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 0x7fffffff) | 0 || 1;

interface Seed {
  bytes: Uint8Array;
  linkType: number;
}

function realSeeds(): Seed[] {
  const seeds: Seed[] = [];
  for (const name of readdirSync(FIXTURES)) {
    if (!/\.(pcap|pcapng|cap)$/.test(name)) continue;
    let r;
    try {
      r = openCapture(join(FIXTURES, name));
    } catch {
      continue; // fixtures that are deliberately not captures
    }
    for (let i = 0; i < 200 && r.next(); i++) {
      const f = r.frame;
      seeds.push({ bytes: f.buf.slice(f.off, f.off + f.caplen), linkType: f.linkType });
    }
  }
  return seeds;
}

function syntheticSeeds(): Seed[] {
  const udp = concat(ipv4Header({ proto: 17, payloadLen: 13 }), udpHeader(4000, 5060, 5), hex('68 65 6c 6c 6f'));
  const inner = concat(ethernet(0x0800), udp);
  const v6chain = concat(
    hex('60 00 00 00 00 28 00 40'), new Uint8Array(32), // IPv6, HBH first
    hex('2b 00 01 04 00 00 00 00'), hex('3c 00 01 04 00 00 00 00'), hex('2c 00 01 04 00 00 00 00'),
    hex('11 00 00 01 00 00 00 2a'), udpHeader(1, 2, 0), // fragment header (offset 0, M) then UDP
  );
  const frag = (off: number, more: boolean, n: number) =>
    concat(ethernet(0x0800), ipv4Header({ proto: 17, payloadLen: n, id: 5, flagsFrag: (more ? 0x2000 : 0) | (off >> 3) }), new Uint8Array(n));
  const b = (...p: Uint8Array[]) => ({ bytes: concat(...p), linkType: 1 });
  return [
    b(ethernet(0x0800), ipv4Header({ proto: 17, payloadLen: 8 + 16 + inner.length }), udpHeader(1, 4789, 8 + inner.length), hex('08 00 00 00 00 00 01 00'), inner),
    b(ethernet(0x0800), ipv4Header({ proto: 17, payloadLen: 8 + 8 + inner.length }), udpHeader(1, 6081, 8 + inner.length), hex('00 00 65 58 00 00 01 00'), inner),
    b(ethernet(0x0800), ipv4Header({ proto: 47, payloadLen: 16 + inner.length }), hex('b0 00 65 58 00 00 00 00 00 00 00 01 00 00 00 01'), inner),
    b(ethernet(0x0800), ipv4Header({ proto: 47, payloadLen: 20 + inner.length }), hex('10 00 22 eb 00 00 00 01 20 00 00 05 00 00 00 00 00 00 00 00'), inner),
    b(ethernet(0x0800), ipv4Header({ proto: 4, payloadLen: udp.length }), udp),
    b(ethernet(0x86dd), v6chain),
    b(ethernet(0x8100), hex('00 05 88 a8 00 06 08 00'), udp),
    b(ethernet(0x8847), hex('00 01 01 40'), udp),
    b(frag(0, true, 16)), b(frag(8, true, 16)), b(frag(16, false, 8)), b(frag(0, false, 24)),
  ];
}

/** xorshift32: small, fast, reproducible. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

it(`decoder survives ${ITERATIONS} mutated frames (seed ${SEED})`, { timeout: 300_000 }, () => {
  const seeds = [...realSeeds(), ...syntheticSeeds()];
  assert.ok(seeds.length > 20, `only ${seeds.length} seed frames`);
  const limits = { maxDatagrams: 64, maxMemoryBytes: 256 * 1024, maxFragments: 32 };
  const dec = new Decoder(
    withOptions((o) => {
      o.tunnels = { vxlan: true, gre: true, erspan: true, geneve: true, ipip: true };
      Object.assign(o.reassembly, limits);
    }),
  );
  const rand = rng(SEED);
  const scratch = new Uint8Array(70_000);
  const view = new DataView(scratch.buffer);
  const heapBefore = process.memoryUsage().heapUsed;
  let maxHeld = 0;
  const started = Date.now();

  for (let i = 0; i < ITERATIONS; i++) {
    const s = seeds[rand() % seeds.length];
    let n = s.bytes.length;
    scratch.set(s.bytes);
    switch (rand() & 7) {
      case 0: // truncation
        n = rand() % (n + 1);
        break;
      case 1: // length-like fields: overwrite a 16-bit word with an extreme
        if (n >= 2) view.setUint16(rand() % (n - 1), [0, 1, 7, 8, 0xffff, n, n + 1][rand() % 7]);
        break;
      case 2: { // IPv6 extension-header loop: next header points back at a chain header
        const at = rand() % n;
        scratch[at] = [0, 43, 44, 60, 51][rand() % 5];
        break;
      }
      case 3: // fragment games: flip MF / rewrite offsets in what may be an IPv4 header
        if (n > 22) view.setUint16(14 + 6, rand() & 0x3fff);
        break;
      default: { // bit flips
        const flips = 1 + (rand() % 8);
        for (let k = 0; k < flips && n > 0; k++) scratch[rand() % n] ^= 1 << (rand() & 7);
      }
    }
    const caplen = rand() % 4 === 0 ? rand() % (n + 1) : n;
    const linkType = rand() % 64 === 0 ? [0, 101, 113, 276, 228, 229][rand() % 6] : s.linkType;
    dec.decodeBytes(scratch, view, 0, caplen, n, linkType, (i / 1000) | 0, 0, true);
    const held = dec.reassembler.stats.memoryBytes;
    if (held > maxHeld) maxHeld = held;
  }

  const st = dec.reassembler.stats;
  const errors = DECODE_ERROR_NAMES.map((name, code) => [name, dec.stats.errors[code]] as const).filter(([, n]) => n > 0);
  console.log(`fuzz: ${ITERATIONS} frames in ${Date.now() - started} ms from ${seeds.length} seeds; errors: ${errors.map(([a, b]) => `${a}=${b}`).join(' ')}`);
  console.log(`fuzz: reassembly completed=${st.completed} overlaps=${st.overlaps} evicted=${st.evicted} timeouts=${st.timeouts} max_held=${maxHeld}`);
  assert.equal(dec.stats.frames, ITERATIONS);
  assert.ok(maxHeld <= limits.maxMemoryBytes + 65535, `reassembly held ${maxHeld} bytes`);
  assert.ok(st.pending <= limits.maxDatagrams);
  assert.ok(errors.length > 10, 'mutations reach many error paths');
  const grown = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(grown < 64 * 1024 * 1024, `heap grew ${grown} bytes`);
});
