// IPv4/IPv6 fragment reassembly through the decoder.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decoder } from '../../src/decode/decoder.js';
import { concat, decodeOne, decoderWith, ethernet, ipv4Header, udpHeader } from '../helpers/bytes.js';

function datagram(size: number): Uint8Array {
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) payload[i] = i & 0xff;
  return concat(udpHeader(5060, 5060, size), payload); // the IP payload: UDP header + data
}

/** Splits an IPv4 payload into fragments of `chunk` bytes (a multiple of 8). */
function fragments4(body: Uint8Array, chunk: number, id = 9): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < body.length; o += chunk) {
    const part = body.subarray(o, Math.min(o + chunk, body.length));
    const more = o + chunk < body.length;
    out.push(concat(ethernet(0x0800), ipv4Header({ proto: 17, payloadLen: part.length, id, flagsFrag: (more ? 0x2000 : 0) | (o >> 3) }), part));
  }
  return out;
}

function fragments6(body: Uint8Array, chunk: number, id = 0x01020304): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < body.length; o += chunk) {
    const part = body.subarray(o, Math.min(o + chunk, body.length));
    const more = o + chunk < body.length;
    const h = new Uint8Array(48);
    const v = new DataView(h.buffer);
    h[0] = 0x60;
    v.setUint16(4, 8 + part.length);
    h[6] = 44; // fragment header
    h[7] = 64;
    h[8] = 0x20; // src 2000::1
    h[23] = 1;
    h[24] = 0x20; // dst 2000::2
    h[39] = 2;
    h[40] = 17; // next: UDP
    v.setUint16(42, o | (more ? 1 : 0));
    v.setUint32(44, id);
    out.push(concat(ethernet(0x86dd), h, part));
  }
  return out;
}

function feed(dec: Decoder, frames: Uint8Array[], tsSec = 0) {
  return frames.map((f) => {
    const p = decodeOne(f, { tsSec }, dec);
    return { held: p.held, fragmented: p.fragmented, error: p.error, sport: p.sport, len: p.payloadLen, sum: sum(p.payloadBuf, p.payloadOff, p.payloadLen) };
  });
}

function sum(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i++) s = (s * 31 + b[off + i]) >>> 0;
  return s;
}

const body = datagram(3000);
const whole = sum(body, 8, 3000);

describe('reassembly', () => {
  it('IPv4 in order: held, held, then the whole datagram on the last frame', () => {
    const r = feed(new Decoder(), fragments4(body, 1480));
    assert.deepEqual(r.map((x) => [x.held, x.fragmented]), [[true, false], [true, false], [false, true]]);
    assert.equal(r[2].sport, 5060);
    assert.equal(r[2].len, 3000);
    assert.equal(r[2].sum, whole);
  });
  it('IPv4 out of order', () => {
    const f = fragments4(body, 1000);
    const r = feed(new Decoder(), [f[3], f[1], f[0], f[2]]);
    assert.equal(r[3].fragmented, true);
    assert.equal(r[3].sum, whole);
  });
  it('an exact duplicate fragment is ignored', () => {
    const dec = new Decoder();
    const f = fragments4(body, 1480);
    const r = feed(dec, [f[0], f[0], f[1], f[2]]);
    assert.equal(r[3].fragmented, true);
    assert.equal(r[3].sum, whole);
    assert.equal(dec.reassembler.stats.duplicates, 1);
  });
  it('IPv6 fragments, out of order', () => {
    const f = fragments6(body, 1232);
    const r = feed(new Decoder(), [f[2], f[0], f[1]]);
    assert.deepEqual(r.map((x) => x.held), [true, true, false]);
    assert.equal(r[2].fragmented, true);
    assert.equal(r[2].sport, 5060);
    assert.equal(r[2].sum, whole);
  });
  it('IPv6 overlap drops the datagram and its later fragments (RFC 5722)', () => {
    const dec = new Decoder();
    const f = fragments6(body, 1232);
    // Bytes 0..1240 cut differently from f[0] (0..1232): an overlap, not a duplicate.
    const overlapping = fragments6(body.subarray(0, 1240), 1240)[0];
    overlapping[14 + 40 + 3] |= 1; // set M: it claims to be a first fragment
    const r = feed(dec, [f[0], overlapping, f[1], f[2]]);
    assert.equal(dec.reassembler.stats.overlaps, 1);
    assert.deepEqual(r.map((x) => x.held), [true, false, false, false], 'fragments after the overlap are dropped too');
    assert.equal(r[3].fragmented, false);
    assert.equal(dec.reassembler.stats.discarded, 2);
    assert.equal(dec.reassembler.stats.memoryBytes, 0);
    // Once the discarded datagram times out, the same id reassembles again.
    const later = feed(dec, [f[0], f[1], f[2]], 31);
    assert.equal(later[2].fragmented, true);
  });
  it('incomplete datagrams time out by capture time', () => {
    const dec = new Decoder();
    const f = fragments4(body, 1480);
    feed(dec, [f[0]], 100);
    feed(dec, [f[1]], 131); // 31 s later: the datagram expired before this fragment
    assert.equal(dec.reassembler.stats.timeouts, 1);
    const r = feed(dec, [f[2]], 132);
    assert.equal(r[0].fragmented, false);
  });
  it('the oldest datagram is evicted beyond max_datagrams', () => {
    const dec = decoderWith((o) => (o.reassembly.maxDatagrams = 2));
    const a = fragments4(body, 1480, 1);
    const b = fragments4(body, 1480, 2);
    const c = fragments4(body, 1480, 3);
    feed(dec, [a[0], b[0], c[0]]);
    assert.equal(dec.reassembler.stats.evicted, 1);
    assert.equal(dec.reassembler.stats.pending, 2);
    assert.equal(feed(dec, [b[1], b[2]])[1].fragmented, true);
    assert.equal(feed(dec, [a[1], a[2]])[1].fragmented, false, 'a was evicted');
  });
  it('held bytes stay under max_memory', () => {
    const dec = decoderWith((o) => (o.reassembly.maxMemoryBytes = 4000));
    for (let id = 1; id <= 10; id++) feed(dec, [fragments4(body, 1480, id)[0]]);
    assert.ok(dec.reassembler.stats.memoryBytes <= 4000, `held ${dec.reassembler.stats.memoryBytes}`);
    assert.ok(dec.reassembler.stats.evicted >= 7);
  });
  it('memory returns to zero once datagrams complete', () => {
    const dec = new Decoder();
    for (let id = 1; id <= 50; id++) feed(dec, fragments4(body, 1480, id));
    assert.equal(dec.reassembler.stats.completed, 50);
    assert.equal(dec.reassembler.stats.memoryBytes, 0);
    assert.equal(dec.reassembler.stats.pending, 0);
  });
});
