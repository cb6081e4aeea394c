// Fuzz: 1 M mutations of the real STUN, DTLS (1.0, 1.2, 1.3) and RTP
// datagrams in the fixture captures, plus synthetic SRTCP and ChannelData
// seeds. No exception escapes, no datagram is slow when run again (no
// hang), the heap stays bounded, every datagram is a record or a rejection
// counted by reason, malformed records are counted by reason, the JSON is
// valid and never passes the end it was given, the protobuf size is exact.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DecodedPacket } from '../../../src/decode/packet.js';
import { OutputRecord } from '../../../src/pipeline/record.js';
import { FIXTURES } from '../../../test/helpers/parser-golden.js';
import { Rng, checkPayloadWriters, mutate, seedsFrom } from '../../../test/helpers/parser-fuzz.js';
import { WebrtcParser } from './index.js';
import { Malformed, MALFORMED_NAMES } from './message.js';

const N = 1_000_000;

test(`fuzz: ${N} mutated WebRTC datagrams`, { timeout: 600_000 }, () => {
  const files = ['zeek--tls-webrtc-stun.pcap', 'zeek--tls-dtls1_0.pcap', 'zeek--tls-dtls1_2.pcap', 'zeek--tls-dtls13-cid.pcap', 'zeek--tls-dtls13-wolfssl.pcap', 'packetnet--ipv6_rtp.pcap'];
  const seeds = seedsFrom(files.map((f) => join(FIXTURES, f)), (p) => p.proto === 17);
  seeds.push(Uint8Array.from([0x81, 200, 0, 6, 0, 0, 0x30, 0x39, ...new Array(24).fill(7)])); // SRTCP
  seeds.push(Uint8Array.from([0x40, 0x01, 0, 8, 0x80, 0, 0, 1, 0, 0, 0, 0])); // ChannelData
  assert.ok(seeds.length > 100, `${seeds.length} seeds`);
  const parser = new WebrtcParser({ ports: [1], port_ranges: [], registered: false });
  const pkt = new DecodedPacket();
  pkt.ipVersion = 4;
  pkt.proto = 17;
  pkt.sport = 1;
  pkt.dport = 1;
  const rec = new OutputRecord();
  const msg = new Uint8Array(4096);
  const out = new Uint8Array(1 << 20);
  const pb = new Uint8Array(1 << 16);
  const rng = new Rng(0xc0ffee);
  let records = 0;
  let checked = 0;
  let maxMs = 0;
  let slowMsg = new Uint8Array(0);
  const heap0 = process.memoryUsage().heapUsed;
  for (let i = 0; i < N; i++) {
    const n = mutate(rng, seeds[rng.int(seeds.length)], seeds[rng.int(seeds.length)], msg);
    if (n === 0) continue; // canHandle refuses empty payloads
    pkt.payloadBuf = msg;
    pkt.payloadOff = 0;
    pkt.payloadLen = n;
    rec.reset();
    const t0 = performance.now();
    const ok = parser.handle(pkt, rec, false, 6);
    let end = -1;
    if (ok) {
      records++;
      const limit = (i & 7) === 3 ? 16 + rng.int(2000) : out.length - 64;
      end = checkPayloadWriters(rec.payload!, out, pb, limit, `iteration ${i}`);
    }
    const dt = performance.now() - t0;
    if (dt > maxMs) {
      maxMs = dt;
      slowMsg = msg.slice(0, n);
    }
    if (end > 0 && (i & 15) === 0) {
      const j = JSON.parse(Buffer.from(out.subarray(0, end)).toString('utf8'));
      const m = parser.msg.malformed;
      assert.equal(j.malformed, m === Malformed.None ? undefined : MALFORMED_NAMES[m], `iteration ${i}`);
      assert.equal(j.kind, rec.labels.get('webrtc.kind'));
      checked++;
    }
  }
  const heapGrowth = process.memoryUsage().heapUsed - heap0;
  const st = parser.stats;
  assert.equal(st.records, records);
  assert.equal(records + st.rejected.reduce((a, b) => a + b, 0), st.messages, 'every datagram is a record or a counted rejection');
  assert.ok(st.messages > 0.95 * N);
  assert.ok(st.malformed.reduce((a, b) => a + b, 0) > 0);
  assert.ok(checked > 10_000);
  for (const k of ['stun', 'dtls', 'srtp', 'srtcp', 'turn-channel']) assert.ok((st.toJSON().kinds as Record<string, number>)[k] > 0, `some ${k}`);
  const counters = JSON.stringify(parser.counters());
  const again: number[] = [];
  for (let k = 0; k < 51; k++) {
    pkt.payloadBuf = slowMsg;
    pkt.payloadLen = slowMsg.length;
    rec.reset();
    const t0 = performance.now();
    if (parser.handle(pkt, rec, false, 6)) rec.payload!.writeJson(out, 0, out.length - 64);
    again.push(performance.now() - t0);
  }
  again.sort((a, b) => a - b);
  assert.ok(again[25] < 1, `slowest datagram (${maxMs.toFixed(1)} ms) takes ${again[25].toFixed(3)} ms again`);
  assert.ok(heapGrowth < 64 << 20, `heap grew ${heapGrowth} bytes`);
  console.log(`# webrtc fuzz: ${N} datagrams, ${counters}, slowest ${maxMs.toFixed(2)} ms, heap +${(heapGrowth / 1048576).toFixed(1)} MiB`);
});
