// Flow registry shared between real processes (registry-child.ts).

import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DecodedPacket } from '../../src/decode/packet.js';
import { Labels } from '../../src/pipeline/labels.js';
import { FlowKey, FlowRegistry, registrySegmentName } from '../../src/shm/registry.js';
import { removeAllStaleSegments } from '../../src/shm/segment.js';
import { MediaCorrelator } from '../../plugins/parser/rtp/correlate.js';

const CHILD = fileURLToPath(new URL('./registry-child.js', import.meta.url));
const children: ChildProcess[] = [];
const regs: FlowRegistry[] = [];
after(() => {
  for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill('SIGKILL');
  for (const r of regs) r.close();
});

let seq = 0;
function newRegistry(capacity: number, window?: number): { task: string; reg: FlowRegistry } {
  const task = `test${process.pid}-r${seq++}`;
  const reg = FlowRegistry.create(task, { capacity, window });
  regs.push(reg);
  return { task, reg };
}

type Msg = Record<string, number | string | boolean>;
function run(args: (string | number)[]): { child: ChildProcess; result: Promise<Msg> } {
  const child = fork(CHILD, args.map(String), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  const result = new Promise<Msg>((resolve, reject) => {
    child.on('message', (m: Msg) => resolve(m));
    child.on('exit', (code) => reject(new Error(`child exited (${code}) without a result`)));
  });
  return { child, result };
}

const ip4 = (a: number, b: number, c: number, d: number): number => (a << 24) | (b << 16) | (c << 8) | d;

describe('flow registry', () => {
  it('never shows a torn context to readers while other processes write', async () => {
    const { task } = newRegistry(1024);
    const keys = 64; // few keys: every slot is rewritten constantly, by both writers
    const ms = 1500;
    const jobs = [run([task, 'writer', 1, keys, ms]), run([task, 'writer', 2, keys, ms]), run([task, 'reader', 3, keys, ms + 200])];
    const [w1, w2, r] = await Promise.all(jobs.map((j) => j.result));
    assert.equal(r.firstBad, '');
    assert.equal(r.torn, 0);
    // Enough reads under contention to mean something; a loaded machine gets fewer in the same time (one CI run: 96 k).
    assert.ok((r.hits as number) > 10_000, `reader hits ${r.hits}`);
    assert.ok((r.inPlace as number) > 0);
    assert.ok((w1.writes as number) > 1000 && (w2.writes as number) > 1000);
    assert.equal((w1.failed as number) + (w2.failed as number), 0);
  });

  it('finds IPv4 and IPv6 endpoints and five-tuples in both directions', () => {
    const { reg } = newRegistry(256);
    const k = new FlowKey();
    assert.ok(reg.register(k.endpoint('192.0.2.10', 40000), { callId: 'a@x', codec: 'PCMA' }, 10_000) >= 0);
    assert.ok(reg.register(k.endpoint('2001:db8::10', 40002), { callId: 'b@x', codec: 'opus' }, 10_000) >= 0);
    assert.ok(reg.register(k.flow('2001:db8::1', '2001:db8::2', 5060, 5062, 17), { callId: 'c@x', codec: '' }, 10_000) >= 0);
    assert.ok(reg.register(k.flow('198.51.100.2', '198.51.100.1', 7078, 7080, 17), { callId: 'd@x', codec: 'G722' }, 10_000) >= 0);
    reg.setNow(Date.now());

    const s4 = reg.lookupEndpoint4(ip4(192, 0, 2, 10), 40000);
    assert.equal(reg.context(s4)?.callId, 'a@x');
    assert.equal(reg.lookupEndpoint4(ip4(192, 0, 2, 10), 40001), -1);
    assert.equal(reg.lookupEndpoint4(ip4(192, 0, 2, 11), 40000), -1);

    const pkt = new Uint8Array(40);
    pkt.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10], 8); // an address at offset 8
    const s6 = reg.lookupEndpoint6(pkt, 8, 40002);
    assert.deepEqual(reg.context(s6), { callId: 'b@x', codec: 'opus' });
    const off = reg.codecOffset(s6);
    assert.equal(Buffer.from(reg.u8.subarray(off, off + reg.codecLength(s6))).toString(), 'opus');
    assert.equal(reg.lookupEndpoint6(pkt, 8, 40000), -1);
    pkt[23] = 0x11;
    assert.equal(reg.lookupEndpoint6(pkt, 8, 40002), -1);

    assert.equal(reg.context(reg.lookup(k.flow('2001:db8::2', '2001:db8::1', 5062, 5060, 17)))?.callId, 'c@x');
    assert.equal(reg.lookup(k.flow('2001:db8::2', '2001:db8::1', 5062, 5060, 6)), -1, 'protocol is part of the key');
    const a = ip4(198, 51, 100, 1);
    const b = ip4(198, 51, 100, 2);
    assert.equal(reg.context(reg.lookupFlow4(a, b, 7080, 7078, 17))?.codec, 'G722');
    assert.equal(reg.context(reg.lookupFlow4(b, a, 7078, 7080, 17))?.codec, 'G722');
    assert.equal(reg.lookupFlow4(a, b, 7078, 7080, 17), -1, 'ports stay with their address');
    // an IPv4 endpoint and an IPv4-mapped IPv6 endpoint are different keys
    assert.equal(reg.lookup(k.endpoint('::ffff:192.0.2.10', 40000)), -1);

    assert.equal(reg.unregister(k.endpoint('192.0.2.10', 40000)), true);
    assert.equal(reg.unregister(k.endpoint('192.0.2.10', 40000)), false);
    assert.equal(reg.lookupEndpoint4(ip4(192, 0, 2, 10), 40000), -1);
    assert.equal(reg.stats().removes, 1);
  });

  it('expires entries by TTL, reclaims them lazily and by sweep', async () => {
    const { reg } = newRegistry(64);
    const k = new FlowKey();
    reg.register(k.endpoint('10.0.0.1', 1000), { callId: 'short', codec: 'PCMU' }, 40);
    reg.register(k.endpoint('10.0.0.2', 1000), { callId: 'long', codec: 'PCMU' }, 60_000);
    reg.setNow(Date.now());
    assert.ok(reg.lookupEndpoint4(ip4(10, 0, 0, 1), 1000) >= 0);
    await new Promise((r) => setTimeout(r, 60));
    reg.setNow(Date.now());
    assert.equal(reg.lookupEndpoint4(ip4(10, 0, 0, 1), 1000), -1, 'expired reads as absent');
    assert.ok(reg.lookupEndpoint4(ip4(10, 0, 0, 2), 1000) >= 0);
    assert.equal(reg.stats().live, 2, 'still occupying its slot until reclaimed');
    assert.equal(reg.sweep(), 1);
    assert.equal(reg.stats().live, 1);
    assert.equal(reg.stats().expired, 1);
    // lazy: an insert that probes over an expired entry takes its slot
    const w = newRegistry(16, 16).reg;
    const slot = w.register(k.endpoint('10.0.0.3', 1), { callId: 'gone', codec: '' }, 20);
    await new Promise((r) => setTimeout(r, 40));
    let reused = false;
    for (let p = 0; p < 64 && !reused; p++) reused = w.register(k.endpoint('10.0.0.4', p), { callId: 'new', codec: '' }, 1000) === slot;
    assert.ok(reused);
    assert.equal(w.stats().expired, 1);
    assert.equal(w.stats().evictions, 0);
    // What a metrics scrape reads (no walk) agrees with the walk, after expiry, reuse and sweep.
    for (const r of [reg, w]) assert.equal(r.counters().live, r.stats().live);
  });

  it('evicts the entry nearest expiry in the probe window when full, counted', () => {
    const { reg } = newRegistry(16, 16);
    const k = new FlowKey();
    for (let i = 0; i < 16; i++) assert.ok(reg.register(k.endpoint4(ip4(10, 9, 0, i), 2000), { callId: `c${i}`, codec: '' }, 100_000 - i * 1000) >= 0);
    assert.equal(reg.stats().evictions, 0);
    reg.register(k.endpoint4(ip4(10, 9, 1, 0), 2000), { callId: 'newcomer', codec: '' }, 100_000);
    assert.equal(reg.stats().evictions, 1);
    reg.setNow(Date.now());
    assert.equal(reg.lookupEndpoint4(ip4(10, 9, 0, 15), 2000), -1, 'the one expiring first went');
    for (let i = 0; i < 15; i++) assert.ok(reg.lookupEndpoint4(ip4(10, 9, 0, i), 2000) >= 0, `entry ${i} kept`);
    assert.equal(reg.context(reg.lookupEndpoint4(ip4(10, 9, 1, 0), 2000))?.callId, 'newcomer');
    // updating an existing key is not an eviction
    reg.register(k.endpoint4(ip4(10, 9, 0, 3), 2000), { callId: 'c3b', codec: '' }, 100_000);
    assert.equal(reg.stats().evictions, 1);
    assert.equal(reg.stats().updates, 1);
    assert.equal(reg.counters().live, reg.stats().live, 'live entries derived from the counters, after an eviction and an update');
    assert.ok(reg.unregister(k.endpoint4(ip4(10, 9, 0, 3), 2000)));
    assert.equal(reg.counters().live, 15);
    assert.equal(reg.stats().live, 15);
  });

  it('recovers from a writer killed while holding the lock mid-write', async () => {
    const { task, reg } = newRegistry(64);
    const k = new FlowKey();
    reg.register(k.endpoint4(0x0a000000, 10000), { callId: 'before', codec: '' }, 60_000);
    const c = run([task, 'crash', 0, 0, 0]);
    assert.equal((await c.result).hung, true);
    reg.setNow(Date.now());
    assert.equal(reg.lookupEndpoint4(0x0a000000, 10000), -1, 'a half-written slot is not read');
    c.child.kill('SIGKILL');
    await new Promise((r) => c.child.once('exit', r));
    assert.ok(reg.register(k.endpoint('10.0.0.7', 1), { callId: 'after', codec: '' }, 60_000) >= 0);
    assert.equal(reg.stats().lockTakeovers, 1);
    assert.ok(reg.register(k.endpoint4(0x0a000000, 10000), { callId: 'again', codec: '' }, 60_000) >= 0);
    assert.equal(reg.context(reg.lookupEndpoint4(0x0a000000, 10000))?.callId, 'again');
  });

  it('rejects contexts that do not fit, with a coded error', () => {
    const { reg } = newRegistry(16);
    const k = new FlowKey().endpoint('10.0.0.1', 1);
    assert.throws(() => reg.register(k, { callId: 'x'.repeat(129), codec: '' }, 1000), { code: 'OTUS_ERR_BAD_ARGUMENT' });
    assert.throws(() => reg.register(k, { callId: 'a', codec: 'x'.repeat(17) }, 1000), { code: 'OTUS_ERR_BAD_ARGUMENT' });
    assert.throws(() => reg.register(k, { callId: 'a', codec: '', labels: { a: 'v'.repeat(120) } }, 1000), { code: 'OTUS_ERR_BAD_ARGUMENT' });
    assert.equal(reg.stats().live, 0);
    assert.ok(reg.register(k, { callId: 'é'.repeat(64), codec: 'x'.repeat(16) }, 1000) >= 0, '128 bytes of UTF-8 fit');
  });

  it('is removed on close and found stale after its owner died', async () => {
    const { task, reg } = newRegistry(16);
    const name = registrySegmentName(task);
    assert.ok(existsSync(`/dev/shm${name}`));
    assert.ok(!removeAllStaleSegments().some((r) => r.name === name), 'owner alive');
    reg.close();
    assert.ok(!existsSync(`/dev/shm${name}`));
    assert.throws(() => FlowRegistry.open(task), { code: 'OTUS_ERR_SYSCALL' });
  });
  it("keeps a call's media labelled while another process rewrites its entry (a BYE's expireIn)", async () => {
    const { task, reg } = newRegistry(1024);
    const KEYS = 32;
    const key = new FlowKey();
    for (let k = 0; k < KEYS; k++) reg.register(key.endpoint4(0x0a000000 + k, 10000 + k), { callId: `call-${k}@otus.test`, codec: 'PCMA', labels: { media: 'audio' } }, 60_000);
    const w = run([task, 'expirer', 1, KEYS, 1500]);
    const corr = new MediaCorrelator(reg, false);
    const p = new DecodedPacket();
    p.ipVersion = 4;
    p.src4 = 0x0b000001;
    p.sport = 4000;
    const L = new Labels();
    let labelled = 0;
    let missing = 0;
    const end = Date.now() + 1200;
    while (Date.now() < end) {
      for (let k = 0; k < KEYS; k++) {
        p.dst4 = 0x0a000000 + k;
        p.dport = 10000 + k;
        const slot = corr.lookup(p);
        assert.ok(slot >= 0, `endpoint ${k} found`);
        L.clear();
        corr.label(L, slot, -1);
        if (L.get('call-id') === `call-${k}@otus.test` && L.get('codec') === 'PCMA' && L.get('media') === 'audio') labelled++;
        else missing++;
      }
    }
    const r = await w.result;
    assert.ok(Number(r.writes) > 1000, `writes ${r.writes}`);
    assert.equal(missing, 0, `${missing} of ${labelled + missing} lookups lost their labels (races seen: ${corr.stats.raced})`);
    assert.ok(labelled > 10_000, `${labelled} labelled`);
  });
});
