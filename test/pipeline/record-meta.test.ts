// RecordMeta, what the sender hands a reporter beside a record's bytes (the
// Kafka reporter's key): the call-id label (`call-id` before `sip.call-id`),
// and a flow hash read from the wire record that equals the capture side's
// symmetric hash of the decoded packet, for both directions, IPv4 and IPv6.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Frame } from '../../src/capture-file/frame.js';
import { Decoder } from '../../src/decode/decoder.js';
import { RecordMeta } from '../../src/pipeline/expand.js';
import { symmetricFlowHash } from '../../src/pipeline/flow-hash.js';
import { OutputRecord } from '../../src/pipeline/record.js';
import { wireInProcess } from '../../src/pipeline/wire.js';
import { ipv6Frame } from '../helpers/live.js';
import { udpFrame } from '../helpers/udp-frames.js';

const decoder = new Decoder();
const frame = new Frame();

/** The frame decoded (its capture-side hash) and as the sender's wire record, labelled. */
function viaWire(bytes: Uint8Array, labels: [string, string][]): { hash: number; meta: RecordMeta } {
  frame.buf = bytes;
  frame.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  frame.off = 0;
  frame.caplen = frame.len = bytes.length;
  frame.linkType = 1;
  const p = decoder.decode(frame);
  const hash = symmetricFlowHash(p);
  const r = new OutputRecord();
  r.fillEnvelope(p, false, 6);
  r.protocol = 'udp';
  for (const [k, v] of labels) r.labels.set(k, v);
  const w = wireInProcess(r, 1 << 16, 'json');
  assert.ok(w);
  return { hash, meta: new RecordMeta(w) };
}

/** ipv6Frame with its addresses and ports swapped: the other direction. */
function reversed6(b: Uint8Array): Uint8Array {
  const r = b.slice();
  r.set(b.subarray(38, 54), 22);
  r.set(b.subarray(22, 38), 38);
  r.set(b.subarray(56, 58), 54);
  r.set(b.subarray(54, 56), 56);
  return r;
}

test('RecordMeta.flowHash: the decoded packet\'s symmetric hash, both directions', () => {
  const pairs: [Uint8Array, Uint8Array][] = [
    [udpFrame('10.0.0.1', '10.0.0.2', 4000, 5060, 'x'), udpFrame('10.0.0.2', '10.0.0.1', 5060, 4000, 'y')],
    [udpFrame('192.0.2.9', '192.0.2.9', 7, 9, 'x'), udpFrame('192.0.2.9', '192.0.2.9', 9, 7, 'y')],
    [ipv6Frame(4000, 5060, 8), reversed6(ipv6Frame(4000, 5060, 8))],
  ];
  const seen = new Set<number>();
  for (const [a, b] of pairs) {
    const x = viaWire(a, []);
    const y = viaWire(b, []);
    assert.equal(x.meta.flowHash(), x.hash);
    assert.equal(y.meta.flowHash(), x.hash, 'the other direction hashes alike');
    assert.notEqual(x.hash, 0);
    seen.add(x.hash);
  }
  assert.equal(seen.size, pairs.length, 'different flows, different hashes');
});

test('RecordMeta.callIdLabel: call-id, else sip.call-id, else -1', () => {
  const f = udpFrame('10.0.0.1', '10.0.0.2', 4000, 5060, 'x');
  assert.equal(viaWire(f, [['codec', 'PCMA']]).meta.callIdLabel(), -1);
  assert.equal(viaWire(f, [['sip.method', 'INVITE'], ['sip.call-id', 'a@b']]).meta.callIdLabel(), 1);
  assert.equal(viaWire(f, [['sip.call-id', 'a@b'], ['codec', 'PCMA'], ['call-id', 'c@d']]).meta.callIdLabel(), 2);
  // A key that only starts like one is not it.
  assert.equal(viaWire(f, [['call-idx', 'z'], ['sip.call-i', 'z']]).meta.callIdLabel(), -1);
});
