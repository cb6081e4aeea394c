// Flow registry writes without strings: contexts built from bytes
// (ContextBuilder, registerScratch), expiry changes (expireIn), a run of
// writes under one lock (holdWrites), and the dotted-quad fast path of
// parseAddress against what it replaced.

import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import { after, describe, it } from 'node:test';
import { dottedQuad, dottedQuadBytes, FlowKey, FlowRegistry, parseAddress } from '../../src/shm/registry.js';
import { rng } from '../helpers/voip-fuzz.js';

const regs: FlowRegistry[] = [];
after(() => {
  for (const r of regs) r.close();
});

let seq = 0;
function newRegistry(capacity = 256): { task: string; reg: FlowRegistry } {
  const task = `test${process.pid}-s${seq++}`;
  const reg = FlowRegistry.create(task, { capacity });
  regs.push(reg);
  return { task, reg };
}

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
const ip4 = (a: number, b: number, c: number, d: number): number => (a << 24) | (b << 16) | (c << 8) | d;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A slot's context bytes up to their lengths (what readers see). */
function slotBytes(reg: FlowRegistry, slot: number): string {
  const u = reg.u8;
  const part = (o: number, n: number): string => Buffer.from(u.subarray(o, o + n)).toString('hex');
  return [part(reg.callIdOffset(slot), reg.callIdLength(slot)), part(reg.codecOffset(slot), reg.codecLength(slot)), part(reg.labelsOffset(slot), reg.labelsLength(slot))].join('|');
}

describe('flow registry: contexts from bytes', () => {
  it('registerScratch stores what register stores for the same context', () => {
    const { reg } = newRegistry();
    const k = new FlowKey();
    const a = reg.register(k.endpoint4(ip4(10, 0, 0, 1), 4000), { callId: 'call-1@example', codec: 'PCMA', labels: { media: 'audio', pt: '8 PCMA 101 telephone-event' } }, 60_000);
    const text = 'xxCall-ID: call-1@example\r\nm=audio 4000 RTP/AVP 8\r\nPCMA';
    const msg = bytes(text);
    const b = reg.builder.reset();
    assert.ok(b.callIdAscii(msg, text.indexOf('call-1'), 14));
    b.codec(msg, text.indexOf('PCMA'), 4).label(bytes('media'), msg, text.indexOf('audio'), 5).label(bytes('pt'), bytes('8 PCMA 101 telephone-event'), 0, 26);
    const s = reg.registerScratch(k.endpoint4(ip4(10, 0, 0, 2), 4000), 60_000);
    assert.ok(a >= 0 && s >= 0 && a !== s);
    reg.setNow(Date.now());
    assert.deepEqual(reg.context(reg.lookupEndpoint4(ip4(10, 0, 0, 2), 4000)), reg.context(reg.lookupEndpoint4(ip4(10, 0, 0, 1), 4000)));
    assert.equal(slotBytes(reg, s), slotBytes(reg, a));
    assert.deepEqual([b.callIdLength, b.codecLength, b.labelCount], [14, 4, 2]);
  });

  it('keeps its content across writes (one context, several keys) until reset; a shorter one after a longer one reads exactly', () => {
    const { reg } = newRegistry();
    const k = new FlowKey();
    const b = reg.builder.reset().callIdString('a-rather-long-call-id-0123456789@example.org').codecString('telephone-event').labelString('media', 'audio').labelString('pt', '101 telephone-event');
    const s1 = reg.registerScratch(k.endpoint4(ip4(10, 0, 0, 1), 5000), 60_000);
    const s2 = reg.registerScratch(k.endpoint4(ip4(10, 0, 0, 1), 5001), 60_000);
    reg.setNow(Date.now());
    assert.deepEqual(reg.context(reg.lookupEndpoint4(ip4(10, 0, 0, 1), 5001)), reg.context(reg.lookupEndpoint4(ip4(10, 0, 0, 1), 5000)));
    assert.equal(slotBytes(reg, s1), slotBytes(reg, s2));
    // Overwrite the same key with a shorter context, from a builder still holding the longer one's bytes.
    b.reset().callIdString('c2').codecString('G7').labelString('m', 'v');
    assert.equal(reg.registerScratch(k.endpoint4(ip4(10, 0, 0, 1), 5000), 60_000), s1);
    assert.deepEqual(reg.context(reg.lookupEndpoint4(ip4(10, 0, 0, 1), 5000)), { callId: 'c2', codec: 'G7', labels: { m: 'v' } });
    b.reset();
    reg.registerScratch(k.endpoint4(ip4(10, 0, 0, 1), 5000), 60_000);
    assert.deepEqual(reg.context(reg.lookupEndpoint4(ip4(10, 0, 0, 1), 5000)), { callId: '', codec: '' });
  });

  it('takes a call-id as bytes only when it is ASCII, and refuses what does not fit, as register does', () => {
    const { reg } = newRegistry();
    const b = reg.builder.reset();
    assert.equal(b.callIdAscii(bytes('ünïcode@x'), 0, 11), false);
    assert.equal(b.callIdLength, 0);
    assert.equal(b.callIdAscii(bytes('plain@x'), 0, 7), true);
    assert.equal(b.callIdLength, 7);
    const long = new Uint8Array(200).fill(0x61);
    assert.throws(() => b.callIdAscii(long, 0, 129), { code: 'OTUS_ERR_BAD_ARGUMENT' });
    assert.throws(() => b.callId(long, 0, 129), { code: 'OTUS_ERR_BAD_ARGUMENT' });
    assert.throws(() => b.codec(long, 0, 17), { code: 'OTUS_ERR_BAD_ARGUMENT' });
    assert.throws(() => b.label(bytes('k'), long, 0, 256), { code: 'OTUS_ERR_BAD_ARGUMENT' });
    b.reset().label(bytes('media'), long, 0, 16);
    assert.throws(() => b.label(bytes('pt'), long, 0, 90), { code: 'OTUS_ERR_BAD_ARGUMENT' }, '1+5+1+16 + 1+2+1+90 > 116');
    b.label(bytes('pt'), long, 0, 89);
    assert.equal(b.labelsLength, 116);
    assert.throws(() => reg.registerScratch(new FlowKey().endpoint4(1, 1), 0), { code: 'OTUS_ERR_BAD_ARGUMENT' });
    assert.equal(reg.stats().live, 0);
  });
});

describe('flow registry: expireIn', () => {
  it('shortens a live entry’s life, context untouched; absent and expired entries stay as they are', async () => {
    const { reg } = newRegistry();
    const k = new FlowKey();
    reg.register(k.endpoint('192.0.2.10', 49170), { callId: 'c@x', codec: 'PCMA', labels: { media: 'audio' } }, 60_000);
    const updates = reg.stats().updates;
    assert.equal(reg.expireIn(k.endpoint('192.0.2.10', 49170), 40), true);
    assert.equal(reg.stats().updates, updates + 1);
    reg.setNow(Date.now());
    assert.deepEqual(reg.context(reg.lookupEndpoint4(ip4(192, 0, 2, 10), 49170)), { callId: 'c@x', codec: 'PCMA', labels: { media: 'audio' } });
    await sleep(60);
    reg.setNow(Date.now());
    assert.equal(reg.lookupEndpoint4(ip4(192, 0, 2, 10), 49170), -1, 'gone after the new expiry');
    assert.equal(reg.expireIn(k.endpoint('192.0.2.10', 49170), 60_000), false, 'an expired entry is not revived');
    reg.setNow(Date.now());
    assert.equal(reg.lookupEndpoint4(ip4(192, 0, 2, 10), 49170), -1);
    assert.equal(reg.expireIn(k.endpoint('192.0.2.10', 40000), 1000), false, 'absent');
    assert.equal(reg.expireIn(k.endpoint('2001:db8::1', 40000), 1000), false);
    assert.equal(reg.stats().live, 1, 'nothing inserted');
    assert.throws(() => reg.expireIn(k, 0), { code: 'OTUS_ERR_BAD_ARGUMENT' });
    // It can lengthen too: it sets the expiry.
    reg.register(k.endpoint('2001:db8::1', 40000), { callId: 'v6', codec: '' }, 30);
    assert.equal(reg.expireIn(k, 60_000), true);
    await sleep(50);
    reg.setNow(Date.now());
    assert.ok(reg.lookup(k) >= 0);
  });

  it('changes the slot’s sequence, so a reader in another mapping drops what it cached of it', () => {
    const { task, reg } = newRegistry();
    const reader = FlowRegistry.open(task); // as a capture process maps it
    regs.push(reader);
    const k = new FlowKey();
    reg.register(k.endpoint('198.51.100.7', 40002), { callId: 'call-42@example', codec: 'opus' }, 60_000);
    reader.setNow(Date.now());
    const slot = reader.lookupEndpoint4(ip4(198, 51, 100, 7), 40002);
    assert.ok(slot >= 0);
    const cached = reader.lastSeq;
    assert.equal(cached & 1, 0);
    assert.ok(reader.stillValid(slot));
    assert.ok(reg.expireIn(k, 5000));
    assert.equal(reader.stillValid(slot), false, 'the cached sequence is stale');
    assert.equal(reader.context(slot), null, 'a context read against the old sequence is refused');
    assert.equal(reader.lookupEndpoint4(ip4(198, 51, 100, 7), 40002), slot);
    assert.equal(reader.lastSeq, (cached + 2) | 0, 'one write: odd while written, even after');
    assert.equal(reader.context(slot)?.callId, 'call-42@example');
  });
});

describe('flow registry: a run of writes under one lock', () => {
  it('holdWrites covers register, registerScratch, expireIn and unregister, and is not re-entered', () => {
    const { reg } = newRegistry();
    const k = new FlowKey();
    assert.ok(reg.holdWrites());
    try {
      assert.throws(() => reg.holdWrites(), { code: 'OTUS_ERR_BAD_ARGUMENT' });
      assert.ok(reg.register(k.endpoint4(ip4(10, 0, 0, 1), 1), { callId: 'a', codec: '' }, 60_000) >= 0);
      reg.builder.reset().callIdString('b');
      assert.ok(reg.registerScratch(k.endpoint4(ip4(10, 0, 0, 1), 2), 60_000, Date.now()) >= 0);
      assert.ok(reg.expireIn(k.endpoint4(ip4(10, 0, 0, 1), 1), 30_000, Date.now()));
      assert.ok(reg.unregister(k.endpoint4(ip4(10, 0, 0, 1), 2)));
    } finally {
      reg.releaseWrites();
    }
    reg.releaseWrites(); // a second release is harmless
    assert.ok(reg.register(k.endpoint4(ip4(10, 0, 0, 1), 3), { callId: 'c', codec: '' }, 60_000) >= 0, 'the lock is free again');
    assert.equal(reg.stats().live, 2);
    assert.equal(reg.stats().writesBusy, 0);
  });
});

/** parseAddress as it was: net.isIPv4 and split/map, else the IPv6 path or an error. */
function parseAddressBefore(text: string): { v: 4 | 6; w: number[] } | 'error' {
  const out = new Int32Array(4);
  if (isIPv4(text)) {
    const p = text.split('.').map(Number);
    return { v: 4, w: [(p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3], 0, 0, 0] };
  }
  if (!isIPv6(text)) return 'error';
  const v = parseAddress(text, out, 0); // the IPv6 path is unchanged
  return { v, w: [...out] };
}

function parseAddressNow(text: string): { v: 4 | 6; w: number[] } | 'error' {
  const out = new Int32Array(4).fill(7);
  try {
    const v = parseAddress(text, out, 0);
    return { v, w: [...out] };
  } catch (e) {
    assert.equal((e as { code?: string }).code, 'OTUS_ERR_BAD_ARGUMENT');
    return 'error';
  }
}

describe('parseAddress: dotted quads without allocation', () => {
  const CASES = [
    '0.0.0.0', '1.2.3.4', '10.0.0.1', '192.0.2.10', '255.255.255.255', '127.0.0.1', '9.99.199.249',
    '', '.', '1', '1.2.3', '1.2.3.', '.1.2.3', '1.2.3.4.', '.1.2.3.4', '1.2.3.4.5', '1..2.3', '1.2..3.4',
    '01.2.3.4', '1.2.3.04', '00.0.0.0', '0.0.0.00', '256.0.0.1', '1.2.3.256', '999.999.999.999', '1000.1.1.1', '4294967295',
    ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4\n', '\t1.2.3.4', '1.2.3.4/24', '1.2.3.4:5060', '1.2.3.4%eth0', '+1.2.3.4', '-1.2.3.4',
    '1.2.3.-4', '1e2.0.0.1', '0x1.2.3.4', '1.2.3.a', 'a.b.c.d', '１.2.3.4', '1.2.3.٤', 'host.example', 'localhost',
    '::', '::1', '2001:db8::1', '::ffff:192.0.2.1', '::ffff:1.2.3.04', 'fe80::1%eth0', '1:2:3:4:5:6:7:8', '1.2.3.4::', ':::',
  ];
  it('takes exactly what net.isIPv4 takes, with the same words, and refuses the rest as before', () => {
    for (const s of CASES) {
      assert.deepEqual(parseAddressNow(s), parseAddressBefore(s), JSON.stringify(s));
      assert.equal(dottedQuad(s) >= 0, isIPv4(s), JSON.stringify(s));
    }
  });

  it('…on random text from digits, dots, colons and a few letters', () => {
    const r = rng(0x1a4);
    const alphabet = '0123456789....::a f%/ x';
    for (let i = 0; i < 200_000; i++) {
      let s = '';
      const n = 1 + Math.floor(r() * 16);
      for (let j = 0; j < n; j++) s += alphabet[Math.floor(r() * alphabet.length)];
      // Mostly near-quads: four random parts of 0-3 digits.
      if (i & 1) s = Array.from({ length: 3 + Math.floor(r() * 3) }, () => String(Math.floor(r() * 300)).padStart(Math.floor(r() * 4), '0')).join('.');
      const before = parseAddressBefore(s);
      assert.deepEqual(parseAddressNow(s), before, JSON.stringify(s));
      const q = dottedQuad(s);
      assert.equal(q >= 0, isIPv4(s), JSON.stringify(s));
      assert.equal(dottedQuadBytes(bytes(s), 0, Buffer.byteLength(s)), q, JSON.stringify(s));
      if (q >= 0 && before !== 'error') assert.equal(q | 0, before.w[0]);
    }
  });

  it('FlowKey.endpoint still keys IPv4 text as endpoint4 does', () => {
    const a = new FlowKey().endpoint('198.51.100.20', 3456).w;
    const b = new FlowKey().endpoint4(ip4(198, 51, 100, 20), 3456).w;
    assert.deepEqual([...a], [...b]);
    assert.throws(() => new FlowKey().endpoint('198.51.100.020', 1), { code: 'OTUS_ERR_BAD_ARGUMENT' });
    assert.throws(() => new FlowKey().endpoint('host.example', 1), { code: 'OTUS_ERR_BAD_ARGUMENT' });
  });
});
