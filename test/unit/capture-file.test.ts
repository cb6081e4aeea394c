// Capture-file readers: byte fixtures built here (both byte orders, every
// timestamp resolution), truncation at every byte, corruption, and real
// pcapng-test-suite / tcpdump / gopacket files cross-checked with tshark.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCapture, openCaptureBuffer, type CaptureReader } from '../../src/capture-file/open.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/captures/', import.meta.url));
const fixture = (name: string): string => join(FIXTURES, name);

// ---------------------------------------------------------------- writers

class W {
  private readonly bytes: number[] = [];
  constructor(readonly le: boolean) {}
  u8(v: number): this {
    this.bytes.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    const b = [v & 0xff, (v >>> 8) & 0xff];
    this.bytes.push(...(this.le ? b : b.reverse()));
    return this;
  }
  u32(v: number): this {
    const b = [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
    this.bytes.push(...(this.le ? b : b.reverse()));
    return this;
  }
  u64(v: bigint): this {
    const u = BigInt.asUintN(64, v);
    const hi = Number(u >> 32n);
    const lo = Number(u & 0xffffffffn);
    return this.le ? this.u32(lo).u32(hi) : this.u32(hi).u32(lo);
  }
  raw(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.bytes.push(b[i]);
    return this;
  }
  pad4(): this {
    while (this.bytes.length % 4) this.bytes.push(0);
    return this;
  }
  get length(): number {
    return this.bytes.length;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** Payload bytes that tell frames apart: i, i+1, ... */
const payload = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (seed + i) & 0xff);

type PcapKind = 'us' | 'ns' | 'modified';
const PCAP_MAGIC: Record<PcapKind, number> = { us: 0xa1b2c3d4, ns: 0xa1b23c4d, modified: 0xa1b2cd34 };

interface PcapRec {
  sec: number;
  frac: number;
  data: Uint8Array;
  len?: number;
  caplen?: number; // to forge a bad caplen
}

function pcapFile(le: boolean, kind: PcapKind, network: number, recs: PcapRec[], snaplen = 65535): Uint8Array {
  const w = new W(le).u32(PCAP_MAGIC[kind]).u16(2).u16(4).u32(0).u32(0).u32(snaplen).u32(network);
  for (const r of recs) {
    w.u32(r.sec).u32(r.frac).u32(r.caplen ?? r.data.length).u32(r.len ?? r.data.length);
    if (kind === 'modified') w.u32(7).u16(0x0800).u8(0).u8(0); // ifindex, protocol, pkt_type, pad
    w.raw(r.data);
  }
  return w.done();
}

/** One pcapng block: type, length, body (padded), length. */
function block(le: boolean, type: number, body: (w: W) => void, forgeLen?: number): Uint8Array {
  const b = new W(le);
  body(b);
  b.pad4();
  const len = forgeLen ?? b.length + 12;
  return concat(new W(le).u32(type).u32(len).done(), b.done(), new W(le).u32(len).done());
}

const shb = (le: boolean, major = 1, minor = 0): Uint8Array =>
  block(le, 0x0a0d0d0a, (w) => w.u32(0x1a2b3c4d).u16(major).u16(minor).u64(-1n));

interface IdbOpts {
  tsresol?: number;
  tsoffset?: bigint;
}
const idb = (le: boolean, linkType: number, snaplen: number, o: IdbOpts = {}): Uint8Array =>
  block(le, 1, (w) => {
    w.u16(linkType).u16(0).u32(snaplen);
    w.u16(2).u16(4).raw([0x65, 0x74, 0x68, 0x30]); // if_name "eth0": an option to skip over
    if (o.tsresol !== undefined) w.u16(9).u16(1).u8(o.tsresol).pad4();
    if (o.tsoffset !== undefined) w.u16(14).u16(8).u64(o.tsoffset);
    w.u16(0).u16(0);
  });

// EPB timestamps are two 32-bit words, upper first, each in section byte order
// (not one 64-bit integer), so they are written word by word.
function epb(le: boolean, ifc: number, ts: bigint, data: Uint8Array, len: number, caplen = data.length): Uint8Array {
  return block(le, 6, (w) => {
    w.u32(ifc).u32(Number(ts >> 32n)).u32(Number(ts & 0xffffffffn));
    w.u32(caplen).u32(len).raw(data).pad4();
    w.u16(2).u16(4).u32(0).u16(0).u16(0); // epb_flags, opt_endofopt
  });
}

const opb = (le: boolean, ifc: number, drops: number, ts: bigint, data: Uint8Array, len = data.length): Uint8Array =>
  block(le, 2, (w) => {
    w.u16(ifc).u16(drops).u32(Number(ts >> 32n)).u32(Number(ts & 0xffffffffn));
    w.u32(data.length).u32(len).raw(data).pad4();
  });

const spb = (le: boolean, len: number, data: Uint8Array): Uint8Array => block(le, 3, (w) => w.u32(len).raw(data).pad4());
const otherBlock = (le: boolean, type: number, n: number): Uint8Array => block(le, type, (w) => w.raw(payload(n, 0x55)));

// ---------------------------------------------------------------- reading

interface Snap {
  off: number;
  caplen: number;
  len: number;
  linkType: number;
  ifIndex: number;
  hasTs: boolean;
  tsSec: number;
  tsNsec: number;
  tsDigits: number;
  data: number[];
}

function readAll(r: CaptureReader, limit = 1e6): Snap[] {
  const out: Snap[] = [];
  const frame = r.frame;
  const buf = r.frame.buf;
  while (r.next()) {
    const f = r.frame;
    assert.ok(f === frame && f.buf === buf, 'one Frame and one buffer, overwritten in place');
    assert.ok(f.off + f.caplen <= r.fileSize, 'frame inside the file');
    assert.ok(f.tsNsec >= 0 && f.tsNsec <= 999_999_999 && Number.isInteger(f.tsNsec), `tsNsec ${f.tsNsec}`);
    assert.equal(f.view.buffer, f.buf.buffer);
    out.push({
      off: f.off,
      caplen: f.caplen,
      len: f.len,
      linkType: f.linkType,
      ifIndex: f.ifIndex,
      hasTs: f.hasTs,
      tsSec: f.tsSec,
      tsNsec: f.tsNsec,
      tsDigits: f.tsDigits,
      data: Array.from(f.buf.subarray(f.off, f.off + f.caplen)),
    });
    assert.ok(out.length <= limit, 'reader does not loop forever');
  }
  const reason = r.endReason;
  assert.equal(r.next(), false, 'stays at end');
  assert.equal(r.endReason, reason);
  return out;
}

const open = (bytes: Uint8Array, name = 'fixture'): CaptureReader => openCaptureBuffer(bytes, name);

/** Reference conversion with BigInt (fine in a test, banned on the hot path). */
function refTs(units: bigint, tsresol: number, offset: bigint): { sec: number; nsec: number } {
  const d = tsresol & 0x80 ? 2n ** BigInt(tsresol & 0x7f) : 10n ** BigInt(tsresol);
  return { sec: Number(units / d + offset), nsec: Number(((units % d) * 1_000_000_000n) / d) };
}

/** a^-1 mod m (m a power of two, a odd), by Newton's iteration x ← x·(2 − a·x). */
function invMod(a: bigint, m: bigint): bigint {
  let x = 1n;
  for (let i = 0; i < 7; i++) x = (x * (2n - a * x)) % m;
  return ((x % m) + m) % m;
}

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

// ---------------------------------------------------------------- pcap

for (const le of [true, false]) {
  const order = le ? 'little' : 'big';

  test(`pcap µs, ${order}-endian: every Frame field`, () => {
    const a = payload(60, 1);
    const b = payload(1514, 2);
    // FCS bits set above the link type: only the low 16 bits are the link type.
    const bytes = pcapFile(le, 'us', 0x14000001, [
      { sec: 1_700_000_000, frac: 123_456, data: a, len: 60 },
      { sec: 0xfffffff0, frac: 999_999, data: b, len: 9000 }, // past 2038: unsigned
    ]);
    const r = open(bytes);
    assert.equal(r.format, 'pcap');
    const frames = readAll(r);
    assert.deepEqual(frames, [
      { off: 40, caplen: 60, len: 60, linkType: 1, ifIndex: 0, hasTs: true, tsSec: 1_700_000_000, tsNsec: 123_456_000, tsDigits: 6, data: [...a] },
      { off: 116, caplen: 1514, len: 9000, linkType: 1, ifIndex: 0, hasTs: true, tsSec: 0xfffffff0, tsNsec: 999_999_000, tsDigits: 6, data: [...b] },
    ]);
    assert.equal(r.framesRead, 2);
    assert.equal(r.bytesRead, bytes.length);
    assert.equal(r.fileSize, bytes.length);
    assert.equal(r.endReason, null);
  });

  test(`pcap ns, ${order}-endian: nanosecond digits, caplen above snaplen`, () => {
    const a = payload(200, 9);
    const bytes = pcapFile(le, 'ns', 101, [{ sec: 1_234_567_890, frac: 999_999_999, data: a, len: 300 }], 100);
    const [f] = readAll(open(bytes));
    assert.deepEqual(f, { off: 40, caplen: 200, len: 300, linkType: 101, ifIndex: 0, hasTs: true, tsSec: 1_234_567_890, tsNsec: 999_999_999, tsDigits: 9, data: [...a] });
  });

  test(`modified (Kuznetzov) pcap, ${order}-endian: 24-byte record headers`, () => {
    const a = payload(42, 3);
    const b = payload(43, 4);
    const r = open(pcapFile(le, 'modified', 1, [{ sec: 10, frac: 5, data: a }, { sec: 11, frac: 6, data: b }]));
    const frames = readAll(r);
    assert.deepEqual(frames.map((f) => [f.off, f.caplen, f.tsSec, f.tsNsec, f.tsDigits]), [[48, 42, 10, 5000, 6], [114, 43, 11, 6000, 6]]);
    assert.deepEqual(frames[1].data, [...b]);
    assert.equal(r.endReason, null);
  });
}

test('pcap: out-of-range sub-second field carries into seconds', () => {
  const d = payload(20, 0);
  const us = readAll(open(pcapFile(true, 'us', 1, [{ sec: 100, frac: 2_500_000, data: d }])));
  assert.deepEqual([us[0].tsSec, us[0].tsNsec], [102, 500_000_000]);
  const ns = readAll(open(pcapFile(true, 'ns', 1, [{ sec: 100, frac: 0xffffffff, data: d }])));
  assert.deepEqual([ns[0].tsSec, ns[0].tsNsec], [104, 294_967_295]);
});

test('pcap cut at every byte: complete records read, then endReason', () => {
  const recs = [60, 1, 0, 77].map((n, i) => ({ sec: i, frac: i, data: payload(n, i) }));
  const whole = pcapFile(false, 'ns', 1, recs);
  const ends: number[] = []; // end offset of each record
  let o = 24;
  for (const r of recs) ends.push((o += 16 + r.data.length));
  for (let cut = 24; cut <= whole.length; cut++) {
    const r = open(whole.subarray(0, cut));
    const frames = readAll(r);
    const complete = ends.filter((e) => e <= cut).length;
    assert.equal(frames.length, complete, `cut ${cut}`);
    assert.equal(r.framesRead, complete);
    assert.equal(r.bytesRead, complete ? ends[complete - 1] : 24);
    if (ends.includes(cut) || cut === 24) assert.equal(r.endReason, null, `cut ${cut}`);
    else assert.match(r.endReason ?? '', new RegExp(`^truncated record (header )?at byte ${r.bytesRead}\\b`), `cut ${cut}`);
  }
});

test('pcap: absurd caplen ends the read without throwing', () => {
  const good = { sec: 1, frac: 1, data: payload(10, 0) };
  const r = open(pcapFile(true, 'us', 1, [good, { sec: 2, frac: 2, data: payload(10, 0), caplen: 0xfffffff0 }]));
  assert.equal(readAll(r).length, 1);
  assert.equal(r.endReason, `absurd caplen ${0xfffffff0} at byte 50`);
  assert.equal(r.bytesRead, 50);
});

// ---------------------------------------------------------------- pcapng

for (const le of [true, false]) {
  const order = le ? 'little' : 'big';

  test(`pcapng ${order}-endian: two interfaces, EPB fields, default µs resolution`, () => {
    const a = payload(64, 1);
    const b = payload(33, 2);
    const c = payload(5, 3);
    const blocks = [
      shb(le),
      idb(le, 1, 0),
      otherBlock(le, 4, 20), // NRB: skipped
      idb(le, 228, 96), // LINKTYPE_IPV4
      epb(le, 1, 1_700_000_000_123_456n, b, 1500),
      otherBlock(le, 0x40000bad, 13), // custom block: skipped
      epb(le, 0, 0n, a, 64),
      otherBlock(le, 5, 8), // ISB: skipped
      epb(le, 0, 0xffff_ffff_ffffn, c, 5),
    ];
    const starts = blocks.map((_, i) => blocks.slice(0, i).reduce((n, blk) => n + blk.length, 0));
    const bytes = concat(...blocks);
    const r = open(bytes);
    assert.equal(r.format, 'pcapng');
    const frames = readAll(r);
    assert.deepEqual(
      frames.map(({ data, off, ...rest }) => rest),
      [
        { caplen: 33, len: 1500, linkType: 228, ifIndex: 1, hasTs: true, tsSec: 1_700_000_000, tsNsec: 123_456_000, tsDigits: 6 },
        { caplen: 64, len: 64, linkType: 1, ifIndex: 0, hasTs: true, tsSec: 0, tsNsec: 0, tsDigits: 6 },
        { caplen: 5, len: 5, linkType: 1, ifIndex: 0, hasTs: true, tsSec: 281_474_976, tsNsec: 710_655_000, tsDigits: 6 },
      ],
    );
    assert.deepEqual(frames.map((f) => f.data), [[...b], [...a], [...c]]);
    // Offsets point just past each EPB's 28-byte header.
    assert.deepEqual(frames.map((f) => f.off), [starts[4] + 28, starts[6] + 28, starts[8] + 28]);
    assert.equal(r.framesRead, 3);
    assert.equal(r.framesSkipped, 0);
    assert.equal(r.bytesRead, bytes.length);
    assert.equal(r.endReason, null);
  });

  test(`pcapng ${order}-endian: if_tsresol 10^-9, 10^-3, 2^-8, 2^-32 and if_tsoffset`, () => {
    const d = payload(8, 0);
    const bytes = concat(
      shb(le),
      idb(le, 1, 0, { tsresol: 9 }),
      idb(le, 1, 0, { tsresol: 3, tsoffset: 1_000_000_000n }),
      idb(le, 1, 0, { tsresol: 0x88 }),
      idb(le, 1, 0, { tsresol: 0xa0, tsoffset: -5n }),
      epb(le, 0, 1_700_000_000_987_654_321n, d, 8),
      epb(le, 1, 123_456n, d, 8),
      epb(le, 2, 388_896_768_050n, d, 8), // pcapng-test-suite test902's value: 1519128000.1953125
      epb(le, 3, (1_600_000_000n << 32n) | 0xc000_0001n, d, 8), // .75 s + 2^-32 s
    );
    const frames = readAll(open(bytes));
    assert.deepEqual(frames.map((f) => [f.tsSec, f.tsNsec, f.tsDigits]), [
      [1_700_000_000, 987_654_321, 9],
      [1_000_000_123, 456_000_000, 3],
      [1_519_128_000, 195_312_500, 9],
      [1_599_999_995, 750_000_000, 9], // floor(0.75·1e9 + 0.23 ns)
    ]);
  });

  test(`pcapng ${order}-endian: SPB has no timestamp, caplen bounded by body and snaplen`, () => {
    const bytes = concat(
      shb(le),
      idb(le, 1, 40),
      spb(le, 30, payload(30, 1)), // body 32 (padded): caplen = len 30
      spb(le, 1514, payload(20, 2)), // caplen = body 20
      spb(le, 100, payload(64, 3)), // caplen = snaplen 40
      epb(le, 0, 5_000_001n, payload(4, 4), 4),
    );
    const frames = readAll(open(bytes));
    assert.deepEqual(frames.map((f) => [f.caplen, f.len, f.hasTs, f.tsSec, f.tsNsec, f.ifIndex, f.linkType]), [
      [30, 30, false, 0, 0, 0, 1],
      [20, 1514, false, 0, 0, 0, 1],
      [40, 100, false, 0, 0, 0, 1],
      [4, 4, true, 5, 1000, 0, 1],
    ]);
    assert.deepEqual(frames[1].data, [...payload(20, 2)]);
  });

  test(`pcapng ${order}-endian: OPB (obsolete packet block) with 16-bit interface id`, () => {
    const d = payload(50, 7);
    const bytes = concat(shb(le), idb(le, 1, 0), idb(le, 113, 0, { tsresol: 9 }), opb(le, 1, 0xabcd, 42_000_000_007n, d, 60));
    const [f] = readAll(open(bytes));
    assert.deepEqual(f, { off: bytes.length - 4 - 52, caplen: 50, len: 60, linkType: 113, ifIndex: 1, hasTs: true, tsSec: 42, tsNsec: 7, tsDigits: 9, data: [...d] });
  });
}

test('pcapng: sections switch byte order and reset the interface list', () => {
  const d = payload(10, 0);
  const bytes = concat(
    shb(true),
    idb(true, 1, 0),
    idb(true, 101, 0),
    epb(true, 1, 1_000_000n, d, 10),
    shb(false),
    idb(false, 0, 0, { tsresol: 9 }),
    epb(false, 1, 2n, d, 10), // interface 1 was in the previous section only: skipped
    epb(false, 0, 3_000_000_004n, d, 10),
    spb(false, 10, d),
    shb(true),
    epb(true, 0, 1n, d, 10), // no IDB yet in this section: skipped
    spb(true, 10, d), // likewise
    idb(true, 147, 0),
    epb(true, 0, 7_000_000n, d, 10),
  );
  const r = open(bytes);
  const frames = readAll(r);
  assert.deepEqual(frames.map((f) => [f.linkType, f.ifIndex, f.hasTs, f.tsSec, f.tsNsec, f.tsDigits]), [
    [101, 1, true, 1, 0, 6],
    [0, 0, true, 3, 4, 9],
    [0, 0, false, 0, 0, 9],
    [147, 0, true, 7, 0, 6],
  ]);
  assert.equal(r.framesRead, 4);
  assert.equal(r.framesSkipped, 3);
  assert.equal(r.endReason, null);
  assert.equal(r.bytesRead, bytes.length);
});

test('pcapng timestamps are exact for every resolution (vs BigInt), offsets included', () => {
  const next = rng(0x07a5);
  const resolutions = [...Array.from({ length: 23 }, (_, k) => k), 30, 127, ...Array.from({ length: 66 }, (_, n) => 0x80 | n), 0x80 | 100, 0xff];
  const M64 = (1n << 64n) - 1n;
  let checked = 0;
  for (const res of resolutions) {
    const d = res & 0x80 ? 2n ** BigInt(res & 0x7f) : 10n ** BigInt(res);
    const offset = BigInt((next() % 2001) - 1000);
    const values: bigint[] = [0n, 1n, M64, (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n, 0xffffffffn, 1n << 32n];
    for (let i = 0; i < 60; i++) {
      const v = (BigInt(next()) << 32n) | BigInt(next());
      values.push(v >> BigInt(next() % 64)); // all magnitudes
      values.push((v & ~0xffffffffn) | BigInt(next())); // same upper word as v: the reader's per-word cache
      const nearMultiple = (v / d) * d; // exact second boundaries and their neighbours
      values.push(nearMultiple & M64, (nearMultiple - 1n) & M64, (nearMultiple + d - 1n) & M64);
      if (res & 0x80 && (res & 0x7f) >= 9 && (res & 0x7f) <= 64) {
        // Fractions whose nanoseconds land within a hair of an integer, from
        // above and from below: where any rounding in rem·1e9/2^n would show.
        const n = BigInt(res & 0x7f);
        const j = BigInt(next() % 1_000_000_000);
        const whole = (v >> n) << n;
        values.push(whole | ((j << (n - 9n)) + 1953124n) / 1953125n, whole | (j << (n - 9n)) / 1953125n);
        // rem·1953125 ≡ -1 (mod 2^(n-9)): one unit below an exact nanosecond,
        // which a rounded product would lose.
        const m = 1n << (n - 9n);
        const rem = (m - invMod(1953125n, m)) % m + BigInt(next() % 512) * m;
        values.push(whole | rem);
      }
    }
    const blocks = [shb(true), idb(true, 1, 0, { tsresol: res, tsoffset: offset })];
    for (const v of values) blocks.push(epb(true, 0, v, payload(1, 0), 1));
    const frames = readAll(open(concat(...blocks)));
    assert.equal(frames.length, values.length);
    values.forEach((v, i) => {
      const want = refTs(v, res, offset);
      // Exactness is only promised where the seconds fit a double's integers.
      if (v / d > BigInt(Number.MAX_SAFE_INTEGER) || !Number.isSafeInteger(want.sec)) return;
      assert.deepEqual([frames[i].tsSec, frames[i].tsNsec], [want.sec, want.nsec], `tsresol 0x${res.toString(16)} units ${v}`);
      checked++;
    });
    assert.equal(frames[0].tsDigits, res & 0x80 ? 9 : Math.min(res, 9));
  }
  assert.ok(checked > 20_000, `${checked} timestamps checked`);
});

test('pcapng cut at every byte: complete blocks read, then endReason', () => {
  const d = payload(37, 0);
  const blocks = [shb(false), idb(false, 1, 0), epb(false, 0, 1n, d, 37), otherBlock(false, 5, 16), spb(false, 37, d), epb(false, 0, 2n, d, 37)];
  const isPacket = [false, false, true, false, true, true];
  const whole = concat(...blocks);
  const ends: number[] = [];
  let o = 0;
  for (const b of blocks) ends.push((o += b.length));
  for (let cut = 28; cut <= whole.length; cut++) {
    const r = open(whole.subarray(0, cut));
    const frames = readAll(r);
    const complete = ends.filter((e) => e <= cut).length;
    assert.equal(frames.length, isPacket.slice(0, complete).filter(Boolean).length, `cut ${cut}`);
    assert.equal(r.bytesRead, complete ? ends[complete - 1] : 0, `cut ${cut}`);
    if (ends.includes(cut)) assert.equal(r.endReason, null, `cut ${cut}`);
    else assert.match(r.endReason ?? '', new RegExp(`^truncated block (header )?at byte ${r.bytesRead}\\b`), `cut ${cut}`);
  }
});

test('pcapng: corrupt blocks end the read with a reason, frames before them kept', () => {
  const le = true;
  const d = payload(16, 0);
  const head = concat(shb(le), idb(le, 1, 0), epb(le, 0, 1n, d, 16));
  const at = head.length;
  const cases: Array<[string, Uint8Array, string]> = [
    ['length not a multiple of 4', block(le, 6, (w) => w.raw(payload(20, 0)), 34), `bad block length 34 at byte ${at}`],
    ['length below 12', block(le, 6, () => {}, 8), `bad block length 8 at byte ${at}`],
    ['trailer disagrees', concat(new W(le).u32(0xbad).u32(16).u32(0).u32(20).done(), new Uint8Array(4)), `block length mismatch at byte ${at}`],
    ['absurd length', concat(new W(le).u32(6).u32(0xfffffff0).done(), new Uint8Array(64)), `absurd block length ${0xfffffff0} at byte ${at}`],
    // 28 bytes after the EPB header (16 data + 12 options): caplen 28 fits, 29 does not.
    ['EPB caplen past the block', epb(le, 0, 1n, d, 16, 29), `caplen 29 overruns packet block at byte ${at}`],
    ['EPB too short', block(le, 6, (w) => w.u32(0).u32(0).u32(0)), `short packet block at byte ${at}`],
    ['SPB too short', block(le, 3, () => {}), `short simple packet block at byte ${at}`],
    ['IDB too short', block(le, 1, (w) => w.u32(1)), `short interface description block at byte ${at}`],
    ['SHB major version 2', shb(le, 2, 0), `unsupported pcapng version 2.0 at byte ${at}`],
    ['SHB bad byte-order magic', block(le, 0x0a0d0d0a, (w) => w.u32(0x12345678).u16(1).u16(0).u64(0n)), `bad byte-order magic in section header at byte ${at}`],
  ];
  for (const [what, bad, reason] of cases) {
    const r = open(concat(head, bad, epb(le, 0, 2n, d, 16)));
    assert.equal(readAll(r).length, 1, what);
    assert.equal(r.endReason, reason, what);
    assert.equal(r.bytesRead, at, what);
  }
});

test('pcapng: a malformed IDB option is ignored, the interface kept', () => {
  const bytes = concat(
    shb(true),
    block(true, 1, (w) => w.u16(105).u16(0).u32(0).u16(9).u16(200).u32(0)), // option longer than the block
    epb(true, 0, 2_000_001n, payload(4, 0), 4),
  );
  const [f] = readAll(open(bytes));
  assert.deepEqual([f.linkType, f.tsSec, f.tsNsec, f.tsDigits], [105, 2, 1000, 6]);
});

test('random corruption never throws nor loops, frames stay inside the file', () => {
  const next = rng(42);
  const seeds = [
    readFileSync(fixture('pcapng-suite-le-test202.pcapng')),
    readFileSync(fixture('pcapng-suite-be-test202.pcapng')),
    readFileSync(fixture('gopacket-test_ethernet.pcap')),
    pcapFile(false, 'modified', 1, [{ sec: 1, frac: 2, data: payload(30, 0) }, { sec: 3, frac: 4, data: payload(31, 0) }]),
  ];
  let ended = 0;
  for (const seed of seeds) {
    for (let i = 0; i < 400; i++) {
      const b = Uint8Array.from(seed);
      const flips = 1 + (next() % 4);
      for (let k = 0; k < flips; k++) b[next() % b.length] = next() & 0xff;
      let r: CaptureReader;
      try {
        r = open(b);
      } catch (e) {
        assert.equal((e as { code?: string }).code, 'OTUS_ERR_NOT_A_CAPTURE'); // magic hit
        continue;
      }
      readAll(r, b.length); // asserts bounds and termination
      assert.ok(r.bytesRead <= r.fileSize);
      if (r.endReason !== null) ended++;
    }
  }
  assert.ok(ended > 0, 'some corruptions were detected');
});

// ---------------------------------------------------------------- opening

const scratch = mkdtempSync(join(tmpdir(), 'otus-capture-file-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function assertOtusError(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    const err = e as { name?: string; code?: string; message?: string };
    assert.equal(err.name, 'OtusError');
    assert.equal(err.code, code);
    assert.match(err.message ?? '', message);
    return true;
  });
}

test('a text file is not a capture (names the file and the magic)', () => {
  const p = join(scratch, 'x.txt');
  writeFileSync(p, 'HTTP/1.1 200 OK\r\n\r\n');
  assertOtusError(() => openCapture(p), 'OTUS_ERR_NOT_A_CAPTURE', /x\.txt: not a pcap or pcapng file \(magic 0x48545450\)/);
});

test('an empty file is not a capture', () => {
  const p = join(scratch, 'empty.pcap');
  writeFileSync(p, '');
  assertOtusError(() => openCapture(p), 'OTUS_ERR_NOT_A_CAPTURE', /empty\.pcap: .*empty file/);
});

test('files shorter than their header are not captures', () => {
  assertOtusError(() => open(Uint8Array.of(0xd4, 0xc3), 'two'), 'OTUS_ERR_NOT_A_CAPTURE', /two: .*only 2 bytes/);
  const pcapHead = pcapFile(true, 'us', 1, []).subarray(0, 20);
  assertOtusError(() => open(pcapHead, 'p'), 'OTUS_ERR_NOT_A_CAPTURE', /p: .*pcap magic 0xd4c3b2a1 but only 20 of 24/);
  assertOtusError(() => open(shb(true).subarray(0, 27), 'ng'), 'OTUS_ERR_NOT_A_CAPTURE', /ng: .*only 27 of 28/);
  const badBom = block(true, 0x0a0d0d0a, (w) => w.u32(0x11223344).u16(1).u16(0).u64(0n));
  assertOtusError(() => open(badBom, 'crlf'), 'OTUS_ERR_NOT_A_CAPTURE', /crlf: .*byte-order magic 0x44332211/);
});

test('a missing or unmappable file is a capture I/O error naming it', () => {
  const missing = join(scratch, 'nope.pcap');
  assertOtusError(() => openCapture(missing), 'OTUS_ERR_CAPTURE_IO', /nope\.pcap: cannot read capture file \(.*No such file/);
  const dir = join(scratch, 'dir.pcap');
  mkdirSync(dir);
  assertOtusError(() => openCapture(dir), 'OTUS_ERR_CAPTURE_IO', /dir\.pcap: cannot read capture file/);
});

test('openCapture (mmap) reads the same frames as openCaptureBuffer', () => {
  const p = fixture('pcapng-suite-be-test202.pcapng');
  const mapped = readAll(openCapture(p));
  const copied = readAll(open(readFileSync(p)));
  assert.equal(mapped.length, 8);
  assert.deepEqual(mapped, copied);
});

// ---------------------------------------------------------------- real files

test('real files: expectations stated by hand', () => {
  const read = (name: string) => {
    const r = openCapture(fixture(name));
    return { r, frames: readAll(r) };
  };
  // test006: two interfaces with different link types (Ethernet, NULL).
  for (const name of ['pcapng-suite-le-test006.pcapng', 'pcapng-suite-be-test006.pcapng']) {
    const { r, frames } = read(name);
    assert.deepEqual(frames.map((f) => [f.ifIndex, f.linkType, f.caplen, f.len]), [[0, 1, 96, 314], [1, 0, 168, 168], [0, 1, 96, 342], [0, 1, 96, 314], [0, 1, 96, 342]]);
    assert.deepEqual([frames[0].tsSec, frames[0].tsNsec, frames[0].tsDigits], [1340954905, 298858000, 6]);
    assert.equal(r.endReason, null);
  }
  // test008: if_tsresol 10^-9 on both interfaces.
  assert.deepEqual(read('pcapng-suite-le-test008.pcapng').frames.map((f) => [f.tsSec, f.tsNsec, f.tsDigits]), [
    [1340954, 905298858, 9], [1340954, 905299858, 9], [1340954, 905300858, 9], [1340954, 905301858, 9],
  ]);
  // test010: SPBs only.
  assert.deepEqual(read('pcapng-suite-le-test010.pcapng').frames.map((f) => [f.hasTs, f.caplen, f.len]), [[false, 314, 314], [false, 342, 342], [false, 314, 314], [false, 342, 342]]);
  // test902: if_tsresol 2^-8.
  const t902 = read('pcapng-suite-le-test902.pcapng').frames[0];
  assert.deepEqual([t902.tsSec, t902.tsNsec, t902.tsDigits], [1519128000, 195312500, 9]);
  // test901: the second section is pcapng 2.0, which no reader can trust.
  const t901 = read('pcapng-suite-le-test901.pcapng');
  assert.equal(t901.frames.length, 1);
  assert.equal(t901.r.endReason, 'unsupported pcapng version 2.0 at byte 480');
  assert.equal(t901.r.bytesRead, 480);
  // empty.pcapng: SHB + IDB, no packets: a clean end.
  const empty = read('tcpdump-empty.pcapng');
  assert.deepEqual([empty.frames.length, empty.r.endReason, empty.r.bytesRead, empty.r.fileSize], [0, null, 48, 48]);
  // timestamp_invalid_nano.pcap: sub-second fields 1e9 and 2^31 are carried into seconds.
  const nano = read('tcpdump-timestamp_invalid_nano.pcap').frames;
  assert.deepEqual(nano.map((f) => [f.tsSec, f.tsNsec, f.tsDigits, f.linkType, f.caplen]), [
    [1418145369, 999999999, 9, 113, 76], [1418145371, 0, 9, 113, 76], [1418145372, 147483648, 9, 113, 68],
  ]);
});

const tshark = spawnSync('tshark', ['--version'], { encoding: 'utf8' });
const haveTshark = !tshark.error && tshark.status === 0;

for (const name of [
  'pcapng-suite-le-test006.pcapng',
  'pcapng-suite-be-test006.pcapng',
  'pcapng-suite-le-test008.pcapng',
  'pcapng-suite-le-test010.pcapng',
  'pcapng-suite-le-test202.pcapng',
  'pcapng-suite-be-test202.pcapng',
  'pcapng-suite-le-test901.pcapng',
  'pcapng-suite-le-test902.pcapng',
  'pcapng-suite-be-test902.pcapng',
  'tcpdump-empty.pcapng',
  'gopacket-test_ethernet.pcap',
]) {
  test(`tshark agrees on ${name}`, (t) => {
    if (!haveTshark) {
      t.skip('tshark not installed');
      return;
    }
    const path = fixture(name);
    // test901 makes tshark exit 2 after the records it could read: compare those.
    const out = spawnSync('tshark', ['-r', path, '-T', 'fields', '-e', 'frame.encap_type', '-e', 'frame.interface_id', '-e', 'frame.time_epoch', '-e', 'frame.cap_len', '-e', 'frame.len'], { encoding: 'utf8' });
    const want = out.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.split('\t'))
      .filter(([encap]) => encap !== '') // custom blocks: records that are not packets
      .map(([, ifc, time, caplen, len]) => {
        let ts = '';
        if (time !== '') {
          const [s, frac = ''] = time.split('.');
          ts = `${s}.${frac.padEnd(9, '0')}`;
        }
        return [Number(ifc || 0), ts, Number(caplen), Number(len)];
      });
    const r = openCapture(path);
    const got = readAll(r).map((f) => [f.ifIndex, f.hasTs ? `${f.tsSec}.${String(f.tsNsec).padStart(9, '0')}` : '', f.caplen, f.len]);
    assert.deepEqual(got, want);
    assert.equal(r.endReason === null, out.status === 0, `endReason ${r.endReason}, tshark status ${out.status}`);
  });
}
