// User-space flow dispatch for single-stream drivers: the hash is symmetric,
// ignores VLAN tags, keeps every fragment of a datagram together, and
// spreads many flows evenly enough over the pipelines.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowDispatcher, flowHash } from '../../src/capture/flowhash.js';
import { ipv4Frame, ipv6Frame } from '../helpers/live.js';

const h = (b: Uint8Array, linkType = 1): number => flowHash(b, 0, b.length, linkType);

test('A→B hashes as B→A (IPv4 TCP/UDP, IPv6), and VLAN tags do not change the flow', () => {
  for (let k = 0; k < 500; k++) {
    const a = [10, k & 0xff, (k >> 8) & 0xff, 1];
    const b = [192, 168, k % 7, 2 + (k % 200)];
    const proto = (k % 2 ? 6 : 17) as 6 | 17;
    const ab = ipv4Frame({ src: a, dst: b, sport: 1024 + k, dport: 5060, proto }, 20, k);
    const ba = ipv4Frame({ src: b, dst: a, sport: 5060, dport: 1024 + k, proto }, 90, k + 1);
    assert.equal(h(ab), h(ba), `flow ${k}`);
    assert.equal(h(ipv4Frame({ src: a, dst: b, sport: 1024 + k, dport: 5060, proto }, 20, k, { vlan: 7 })), h(ab), `vlan ${k}`);
    assert.notEqual(h(ab), 0);
  }
  const v6ab = ipv6Frame(4000, 5060, 10);
  // Swap the IPv6 addresses and ports of the same frame.
  const v6ba = v6ab.slice();
  v6ba.set(v6ab.subarray(38, 54), 22);
  v6ba.set(v6ab.subarray(22, 38), 38);
  v6ba.set(v6ab.subarray(56, 58), 54);
  v6ba.set(v6ab.subarray(54, 56), 56);
  assert.equal(h(v6ab), h(v6ba));
  // Raw IP (LINKTYPE_RAW) hashes like the same packet behind Ethernet.
  const e = ipv4Frame({ src: [1, 2, 3, 4], dst: [5, 6, 7, 8], sport: 1, dport: 2 }, 8, 1);
  assert.equal(h(e.subarray(14), 101), h(e));
});

test('fragments of one datagram land together; different ports of one host pair spread', () => {
  const f = { src: [10, 0, 0, 1], dst: [10, 0, 0, 2], sport: 5060, dport: 5060 };
  const first = ipv4Frame(f, 100, 1, { id: 9, more: true });
  const later = ipv4Frame(f, 100, 1, { id: 9, fragOff: 1480 });
  assert.equal(h(first), h(later));
  const buckets = new Set<number>();
  for (let p = 0; p < 64; p++) buckets.add(h(ipv4Frame({ ...f, sport: 10000 + p }, 10, p)) % 4);
  assert.equal(buckets.size, 4, 'ports take part in the hash of unfragmented packets');
  assert.equal(h(new Uint8Array([1, 2, 3])), 0, 'short frame');
});

test('FlowDispatcher spreads 1000 flows over 4 pipelines and keeps each flow on one', () => {
  const seen = new Map<string, number>();
  let current = -1;
  const sinks = [0, 1, 2, 3].map((i) => ({ frame: () => void (current = i) }));
  const d = new FlowDispatcher(sinks);
  for (let k = 0; k < 1000; k++) {
    const a = [10, 1, k >> 8, k & 0xff];
    const b = [10, 2, 0, 1];
    for (const fr of [ipv4Frame({ src: a, dst: b, sport: 3000, dport: 5060 }, 10, k), ipv4Frame({ src: b, dst: a, sport: 5060, dport: 3000 }, 10, k)]) {
      d.frame(fr, new DataView(fr.buffer), 0, fr.length, fr.length, 1, 0, 0);
      const prev = seen.get(String(k));
      if (prev === undefined) seen.set(String(k), current);
      else assert.equal(current, prev, `flow ${k}`);
    }
  }
  for (const c of d.counts) assert.ok(c > 2000 / 4 / 2 && c < (2000 / 4) * 1.5, `pipeline loads ${[...d.counts]}`);
});
