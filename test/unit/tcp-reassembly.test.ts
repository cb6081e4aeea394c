// TCP stream reassembly (src/reassembly/tcp-stream.ts): in-order bytes per
// direction whatever order, duplication and overlap the segments arrive in;
// mid-stream join; holes skipped after the gap timeout; bytes a parser did
// not consume handed back; limits (streams, per-stream bytes, global bytes)
// enforced with LRU eviction; every event counted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodedPacket } from '../../src/decode/packet.js';
import { BUFFER_COST, SLOT_BYTES, STREAM_COST, TcpReassembler, VECTORS_COST, type TcpChunk, type TcpStreamConsumer } from '../../src/reassembly/tcp-stream.js';

const SYN = 2;
const ACK = 16;
const FIN = 1;
const RST = 4;
const A = (10 << 24) | 1;
const B = (10 << 24) | 2;

class Collect implements TcpStreamConsumer {
  out: string[][] = [[], []];
  gaps: number[] = [];
  ends: number[] = [];
  /** How much to consume of each chunk: all by default. */
  policy: (c: TcpChunk) => number = (c) => c.len;
  envelopes: { sport: number; dport: number; src: number }[] = [];
  streamData(_o: number, c: TcpChunk): number {
    const n = this.policy(c);
    this.out[c.dir].push(Buffer.from(c.buf.subarray(c.off, c.off + n)).toString('latin1'));
    if (c.gap) this.gaps.push(c.dir);
    this.envelopes.push({ sport: c.packet.sport, dport: c.packet.dport, src: c.packet.src4 });
    return n;
  }
  streamEnd(_o: number, id: number): void {
    this.ends.push(id);
  }
  text(dir: number): string {
    return this.out[dir].join('');
  }
}

let tsMs = 1_700_000_000_000;
function seg(fromClient: boolean, seq: number, flags: number, data = '', advanceMs = 1, cport = 40000, sport = 5060): DecodedPacket {
  const p = new DecodedPacket();
  tsMs += advanceMs;
  p.tsSec = Math.floor(tsMs / 1000);
  p.tsNsec = (tsMs % 1000) * 1e6;
  p.ipVersion = 4;
  p.proto = 6;
  p.src4 = fromClient ? A : B;
  p.dst4 = fromClient ? B : A;
  p.sport = fromClient ? cport : sport;
  p.dport = fromClient ? sport : cport;
  p.tcpSeq = seq >>> 0;
  p.tcpFlags = flags;
  const b = Buffer.from(data, 'latin1');
  p.payloadBuf = new Uint8Array(b.buffer, b.byteOffset, b.length);
  p.payloadOff = 0;
  p.payloadLen = b.length;
  return p;
}

function run(r: TcpReassembler, pkts: DecodedPacket[]): void {
  for (const p of pkts) r.segment(p, 0, 5060, true, 6);
}

test('handshake, data both ways, FIN both ways: bytes in order, stream ended once', () => {
  const c = new Collect();
  const r = new TcpReassembler(c);
  run(r, [
    seg(true, 1000, SYN),
    seg(false, 5000, SYN | ACK),
    seg(true, 1001, ACK, 'hello '),
    seg(true, 1007, ACK, 'world'),
    seg(false, 5001, ACK, 'OK'),
    seg(true, 1012, FIN | ACK),
    seg(false, 5003, FIN | ACK),
  ]);
  assert.equal(c.text(0), 'hello world');
  assert.equal(c.text(1), 'OK');
  assert.equal(c.ends.length, 1);
  assert.equal(r.stats.closedFin, 1);
  assert.equal(r.stats.active, 0);
  assert.equal(r.stats.bytesDelivered, 13);
  // Direction 1's envelope is the server's: source port 5060.
  assert.deepEqual(c.envelopes[2], { sport: 5060, dport: 40000, src: B });
});

test('out of order, retransmitted and overlapping segments still give the bytes once, in order', () => {
  const c = new Collect();
  const r = new TcpReassembler(c);
  run(r, [
    seg(true, 1, SYN),
    seg(true, 2, ACK, 'ABCD'), // 2..5
    seg(true, 11, ACK, 'JKL'), // 11..13 (hole 6..10)
    seg(true, 9, ACK, 'HI'), // 9..10
    seg(true, 2, ACK, 'ABCD'), // retransmission
    seg(true, 4, ACK, 'CDEFG'), // 4..8: overlaps 2 delivered bytes, fills the hole
    seg(true, 15, ACK, 'NO'), // 15..16 (hole 14)
    seg(true, 13, ACK, 'LMN'), // 13..15: overlaps both sides
  ]);
  assert.equal(c.text(0), 'ABCDEFGHIJKLMNO');
  assert.equal(r.stats.retransmissions, 1);
  assert.ok(r.stats.overlaps >= 2, `overlaps ${r.stats.overlaps}`);
  assert.equal(r.stats.outOfOrder, 3);
  assert.equal(r.stats.bytesHeld, 0);
  assert.equal(r.stats.gapsSkipped, 0);
});

test('mid-stream join: the first sequence number seen is the base; the side on the declared port is the server', () => {
  const c = new Collect();
  const r = new TcpReassembler(c);
  run(r, [seg(false, 777, ACK, 'SIP/2.0 200 OK\r\n'), seg(true, 999, ACK, 'ACK sip:x SIP/2.0\r\n'), seg(false, 777 + 16, ACK, 'more')]);
  assert.equal(c.text(1), 'SIP/2.0 200 OK\r\nmore');
  assert.equal(c.text(0), 'ACK sip:x SIP/2.0\r\n');
  // Packets without payload and without SYN open nothing.
  run(r, [seg(true, 5, ACK, '', 1, 41000)]);
  assert.equal(r.stats.streams, 1);
});

test('a hole older than the gap timeout is skipped and the next chunk says so', () => {
  const c = new Collect();
  const r = new TcpReassembler(c, { gapTimeoutMs: 100 });
  run(r, [seg(true, 1, SYN), seg(true, 2, ACK, 'aa'), seg(true, 10, ACK, 'bb', 10), seg(true, 12, ACK, 'cc', 50)]);
  assert.equal(c.text(0), 'aa');
  run(r, [seg(true, 14, ACK, 'dd', 200)]);
  assert.equal(c.text(0), 'aabbccdd');
  assert.deepEqual(c.gaps, [0]);
  assert.equal(r.stats.gapsSkipped, 1);
  assert.equal(r.stats.bytesSkipped, 6);
});

test('bytes the parser does not consume come back in front of the next ones', () => {
  const c = new Collect();
  const r = new TcpReassembler(c);
  // Consume only whole lines.
  c.policy = (ch) => {
    const s = Buffer.from(ch.buf.subarray(ch.off, ch.off + ch.len)).toString('latin1');
    const i = s.lastIndexOf('\n');
    return i + 1;
  };
  run(r, [seg(true, 1, SYN), seg(true, 2, ACK, 'one\ntw'), seg(true, 8, ACK, 'o\nthr'), seg(true, 13, ACK, 'ee\n')]);
  assert.deepEqual(c.out[0], ['one\n', 'two\n', 'three\n']);
  assert.equal(r.stats.bytesHeld, 0);
});

test('after a hole, bytes the parser kept from before it are dropped (counted), never joined to the bytes after it', () => {
  const c = new Collect();
  const r = new TcpReassembler(c, { gapTimeoutMs: 100 });
  c.policy = (ch) => Buffer.from(ch.buf.subarray(ch.off, ch.off + ch.len)).toString('latin1').lastIndexOf('\n') + 1;
  // 'one\ntw' then a hole (the rest of 'two\n' lost), then 'three\n' ...
  run(r, [seg(true, 1, SYN), seg(true, 2, ACK, 'one\ntw'), seg(true, 12, ACK, 'three\n', 10)]);
  run(r, [seg(true, 18, ACK, 'four\n', 200)]);
  assert.deepEqual(c.out[0], ['one\n', 'three\n', 'four\n']);
  assert.deepEqual(c.gaps, [0]);
  assert.equal(r.stats.keptDropped, 1);
  assert.equal(r.stats.keptBytesDropped, 2);
  assert.equal(r.stats.bytesHeld, 0);
});

test("a chunk carries the capture time of its bytes: kept bytes their first segment's, stored ones their own, not the time the hole was skipped", () => {
  const times: string[] = [];
  const c = new Collect();
  c.policy = (ch) => {
    // Consume whole lines; note when each line's first byte was captured.
    const s = Buffer.from(ch.buf.subarray(ch.off, ch.off + ch.len)).toString('latin1');
    const t = { tsSec: 0, tsNsec: 0 };
    for (let i = 0, at = 0; (i = s.indexOf('\n', at)) >= 0; at = i + 1) {
      ch.stamp(t, ch.off + at);
      times.push(`${s.slice(at, i)}@${t.tsSec * 1000 + t.tsNsec / 1e6 - base}`);
    }
    return s.lastIndexOf('\n') + 1;
  };
  const r = new TcpReassembler(c, { gapTimeoutMs: 100 });
  const base = tsMs + 1;
  run(r, [seg(true, 1, SYN, '', 1)]); // t=0
  run(r, [seg(true, 2, ACK, 'al', 1)]); // t=1: kept
  run(r, [seg(true, 4, ACK, 'pha\nbe', 1)]); // t=2: 'alpha' began at t=1; 'be' kept
  run(r, [seg(true, 12, ACK, 'gamma\n', 1)]); // t=3: after a hole (the rest of 'beta\n' lost)
  run(r, [seg(true, 18, ACK, 'delta\n', 1)]); // t=4
  run(r, [seg(true, 24, ACK, 'epsilon\n', 500)]); // t=504: the hole is skipped now
  assert.deepEqual(times, ['alpha@1', 'gamma@3', 'delta@4', 'epsilon@504']);
  assert.equal(r.stats.keptDropped, 1);
});

test('a parser that never consumes is bounded by maxStreamBytes: bytes dropped, counted, gap flagged', () => {
  const c = new Collect();
  const r = new TcpReassembler(c, { maxStreamBytes: 100 });
  c.policy = () => 0;
  const pk = [seg(true, 1, SYN)];
  for (let i = 0; i < 10; i++) pk.push(seg(true, 2 + i * 30, ACK, 'x'.repeat(30)));
  run(r, pk);
  assert.ok(r.stats.keepOverflows >= 2);
  assert.ok(r.stats.bytesHeld <= 100);
  assert.ok(c.gaps.length >= 1);
});

test('RST ends the stream and flushes stored segments past the hole', () => {
  const c = new Collect();
  const r = new TcpReassembler(c);
  run(r, [seg(true, 1, SYN), seg(true, 2, ACK, 'a'), seg(true, 5, ACK, 'zz'), seg(false, 100, RST)]);
  assert.equal(c.text(0), 'azz');
  assert.equal(r.stats.closedRst, 1);
  assert.equal(r.stats.gapsSkipped, 1);
  assert.equal(c.ends.length, 1);
  assert.equal(r.stats.active, 0);
});

test('limits: maxStreams evicts the least recently used; maxBytes evicts for memory; silent streams time out', () => {
  const c = new Collect();
  // Room for three connections and about two out-of-order copies of 400 bytes.
  const ooo = 400 + BUFFER_COST + VECTORS_COST + 4 * SLOT_BYTES; // a direction's first out-of-order copy of 400 bytes, and its vectors
  const maxBytes = 3 * STREAM_COST + 2 * ooo + 100;
  const r = new TcpReassembler(c, { maxStreams: 3, maxBytes, streamTimeoutMs: 10_000, gapTimeoutMs: 1e9 });
  for (let i = 0; i < 5; i++) run(r, [seg(true, 1, SYN, '', 1, 30000 + i)]);
  assert.equal(r.stats.active, 3);
  assert.equal(r.stats.evictedLru, 2);
  assert.equal(r.stats.memoryHeld, 3 * STREAM_COST);
  // Out-of-order bytes on three streams past the global limit: oldest evicted.
  for (let i = 2; i < 5; i++) run(r, [seg(true, 100, ACK, 'y'.repeat(400), 1, 30000 + i)]);
  assert.equal(r.stats.evictedMemory, 1, JSON.stringify(r.stats));
  assert.equal(r.stats.active, 2);
  assert.ok(r.stats.memoryHeld <= maxBytes);
  assert.equal(r.stats.memoryHeld, 2 * (STREAM_COST + ooo));
  assert.ok(r.stats.memoryHeldMax <= maxBytes + ooo);
  assert.equal(r.stats.bytesHeld, 800);
  run(r, [seg(true, 1, SYN, '', 60_000, 31000)]);
  assert.ok(r.stats.timedOut >= 1);
  assert.equal(r.stats.active, 1);
  r.flush();
  assert.equal(r.stats.active, 0);
  assert.equal(r.stats.bytesHeld, 0);
  assert.equal(r.stats.memoryHeld, 0);
});

test('sequence numbers wrap around 2^32', () => {
  const c = new Collect();
  const r = new TcpReassembler(c);
  run(r, [seg(true, 0xfffffffd, SYN), seg(true, 0xfffffffe, ACK, 'ab'), seg(true, 1, ACK, 'de'), seg(true, 0, ACK, 'c')]);
  assert.equal(c.text(0), 'abcde');
});

test('IPv6 connections are told apart by all 16 address bytes', () => {
  const c = new Collect();
  const r = new TcpReassembler(c);
  const mk = (last: number, data: string, seq: number, flags: number): DecodedPacket => {
    const p = seg(true, seq, flags, data);
    p.ipVersion = 6;
    const ab = new Uint8Array(32);
    ab[0] = 0x20;
    ab[1] = 0x01;
    ab[5] = last; // differs in the upper half only
    ab[16] = 0x20;
    ab[31] = 1;
    p.addrBuf = ab;
    p.srcOff = 0;
    p.dstOff = 16;
    return p;
  };
  run(r, [mk(1, '', 1, SYN), mk(2, '', 1, SYN), mk(1, 'one', 2, ACK), mk(2, 'two', 2, ACK)]);
  assert.equal(r.stats.streams, 2);
  assert.deepEqual(c.out[0], ['one', 'two']);
});
