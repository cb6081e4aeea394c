// The rtcp parser's writes into the task's media table (summary.ts,
// src/shm/media.ts): a block under the source it is about and under its
// sender, the round trip from an SR its LSR names, a second process's
// mapping reading what the first wrote, a full probe window evicting
// (counted), and no allocation per compound.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callHash, emptyBlock, MediaTable } from '../../../src/shm/media.js';
import { FlowRegistry } from '../../../src/shm/registry.js';
import { scavengesDuring, warmUp } from '../../../test/helpers/gc.js';
import { RtcpSummaryWriter } from './summary.js';

/** An SR from `sender` (NTP seconds, fraction) with one block on `source`. */
function sr(sender: number, ntpSec: number, ntpFrac: number, source: number, lsr: number, dlsr: number): Uint8Array {
  const b = new Uint8Array(52);
  const v = new DataView(b.buffer);
  b[0] = 0x81;
  b[1] = 200;
  v.setUint16(2, 12);
  v.setUint32(4, sender);
  v.setUint32(8, ntpSec);
  v.setUint32(12, ntpFrac);
  v.setUint32(28, source);
  b[32] = 26;
  b[35] = 4; // cumulative 4
  v.setUint32(40, 160);
  v.setUint32(44, lsr);
  v.setUint32(48, dlsr);
  return b;
}

let n = 0;
const scope = (): string => `mediat${process.pid}-${n++}`;

test('a block goes under its source and its sender; the round trip comes from the SR its LSR names; another mapping reads it', () => {
  const task = scope();
  const flows = FlowRegistry.create(task, { capacity: 64 });
  try {
    const w = new RtcpSummaryWriter(MediaTable.besideRegistry(flows.name)!);
    const other = MediaTable.open(task)!;
    const call = callHash('c1@x');
    // A's SR at t=10 (NTP 0x00010002.0x00030000: middle bits 0x00020003), B's block on A naming it, held 0.25 s, seen at t=10.5.
    w.write(sr(0xa, 0x10002, 0x30000, 0xb, 0, 0), 0, 52, 10, 0, call);
    w.write(sr(0xb, 9, 0, 0xa, 0x00020003, 0x4000), 0, 52, 10, 500_000_000, call);
    const about = emptyBlock();
    const by = emptyBlock();
    assert.equal(other.read(0xa, call, about, by), 3);
    assert.deepEqual(about, { at: 10.5, ssrc: 0xb, fractionLost: 26, cumulativeLost: 4, jitter: 160, roundTrip: 0.25 });
    assert.equal(by.ssrc, 0xb);
    assert.equal(by.roundTrip, -1, "A's block named no SR");
    assert.equal(other.read(0xa, 0, about, by), 0, 'another call (none) is another entry');
    assert.equal(w.stats.blocks, 2);
    assert.equal(w.stats.roundTrips, 1);
    other.close();
  } finally {
    flows.close();
  }
});

test('a full probe window evicts the entry touched longest ago, counted', () => {
  const flows = FlowRegistry.create(scope(), { capacity: 32 });
  try {
    const t = MediaTable.besideRegistry(flows.name)!;
    assert.equal(t.capacity, 16);
    assert.ok(t.lock());
    for (let s = 1; s <= 40; s++) {
      t.setNow(s, 0);
      t.done(t.entry(s, 0));
    }
    const c = t.counters();
    assert.equal(c.inserts, 40);
    assert.equal(c.evictions, 24);
    const b = emptyBlock();
    t.setNow(41, 0);
    const e = t.entry(40, 0);
    t.noRoundTrip();
    t.setBlock(e, true, 1, 0, 0, 0);
    t.done(e);
    t.unlock();
    assert.equal(t.read(40, 0, b, emptyBlock()), 1, 'the newest stays');
    assert.equal(t.read(1, 0, b, emptyBlock()), 0, 'the oldest went');
  } finally {
    flows.close();
  }
});

test('writing a compound allocates nothing', async () => {
  const flows = FlowRegistry.create(scope(), { capacity: 4096 });
  try {
    const w = new RtcpSummaryWriter(MediaTable.besideRegistry(flows.name)!);
    // Pairs reporting on each other, naming the other's SR: every block after the first round has a round trip.
    const pkts = Array.from({ length: 64 }, (_, i) => sr(i, 1000 + i, 0, i ^ 1, (1000 + (i ^ 1)) << 16, 100));
    const run = (k: number): void => {
      for (let i = 0; i < k; i++) w.write(pkts[i & 63], 0, 52, 1000 + (i >> 10), (i & 1023) * 1000, 12345);
    };
    await warmUp(() => run(100_000));
    const gcs = await scavengesDuring(() => run(1_000_000));
    assert.ok(gcs <= 1, `${gcs} scavenges over 1M compounds`);
    assert.ok(w.stats.roundTrips > 0);
  } finally {
    flows.close();
  }
});
