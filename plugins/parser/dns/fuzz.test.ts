// Fuzz: 1 M mutations of the real DNS messages in the fixture captures (and
// of the same messages framed for TCP through handleStream). No exception
// escapes, no message takes long (no hang), the heap does not grow, every
// message is a record or a rejection counted by reason, every malformed
// record is counted by its reason, the JSON written is valid and never
// passes the end it was given, and the protobuf size is exact.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DecodedPacket } from '../../../src/decode/packet.js';
import { OutputRecord } from '../../../src/pipeline/record.js';
import { TcpChunk } from '../../../src/reassembly/tcp-stream.js';
import type { RecordEmitter } from '../../../src/plugin/types.js';
import { FIXTURES } from '../../../test/helpers/parser-golden.js';
import { Rng, checkPayloadWriters, mutate, seedsFrom } from '../../../test/helpers/parser-fuzz.js';
import { DnsParser } from './index.js';
import { Malformed, MALFORMED_NAMES } from './message.js';

const N = 1_000_000;
const SEED_FILES = [
  'tcpdump--dns_udp.pcap', 'tcpdump--dnssec.pcap', 'tcpdump--edns-opts.pcap', 'tcpdump--dns-uri.pcap', 'zeek--dns-caa.pcap',
  'zeek--dns-https.pcap', 'zeek--dns-txt-multiple.pcap', 'zeek--dns-tsig.pcap', 'zeek--dns-naptr.pcap', 'zeek--dns-long-connection.pcap',
  'zeek--dns-sshfp-trunc.pcap', 'zeek--dns-dynamic-update.pcap', 'zeek--dns-two-responses.pcap', 'PcapPlusPlus--DnsPackets.pcap',
  'zeek--dns-invalid-names.pcap', 'zeek--dns-max-compression-depth.pcap',
];

test(`fuzz: ${N} mutated DNS messages over UDP, plus TCP framing`, { timeout: 600_000 }, () => {
  const seeds = seedsFrom(SEED_FILES.map((f) => join(FIXTURES, f)), (p) => p.proto === 17 && (p.sport === 53 || p.dport === 53));
  assert.ok(seeds.length > 300, `${seeds.length} seed messages`);
  const parser = new DnsParser({ ports: [53], tcp: true });
  const pkt = new DecodedPacket();
  pkt.ipVersion = 4;
  pkt.proto = 17;
  pkt.sport = 53;
  pkt.dport = 5353;
  const rec = new OutputRecord();
  const msg = new Uint8Array(4096);
  const out = new Uint8Array(1 << 20);
  const pb = new Uint8Array(1 << 17);
  const rng = new Rng(0x5eed);
  let records = 0;
  let malformedSeen = 0;
  let maxMs = 0;
  let slowest = -1;
  let slowMsg = new Uint8Array(0);
  const heap0 = process.memoryUsage().heapUsed;
  for (let i = 0; i < N; i++) {
    const n = mutate(rng, seeds[rng.int(seeds.length)], seeds[rng.int(seeds.length)], msg);
    pkt.payloadBuf = msg;
    pkt.payloadOff = 0;
    pkt.payloadLen = n;
    rec.reset();
    const t0 = performance.now();
    const ok = parser.handle(pkt, rec, false, 6);
    let end = -1;
    if (ok) {
      records++;
      // Every 8th: a tight end with a guard after it; the writer must stop at end or fail with -1.
      const limit = (i & 7) === 3 ? 16 + rng.int(600) : out.length - 64;
      end = checkPayloadWriters(rec.payload!, out, pb, limit, `iteration ${i}`);
    }
    const dt = performance.now() - t0;
    if (dt > maxMs) {
      maxMs = dt;
      slowest = i;
      slowMsg = msg.slice(0, n);
    }
    if (ok && end > 0 && (i & 15) === 0) {
      const j = JSON.parse(Buffer.from(out.subarray(0, end)).toString('utf8'));
      const m = parser.msg.malformed;
      assert.equal(j.malformed, m === Malformed.None ? undefined : MALFORMED_NAMES[m], `iteration ${i}`);
      if (m !== Malformed.None) malformedSeen++;
      assert.equal(rec.labels.get('dns.id'), String(j.id));
    }
  }
  const heapGrowth = process.memoryUsage().heapUsed - heap0;
  const st = parser.stats;
  assert.equal(st.messages, N);
  assert.equal(st.records, records);
  const rejected = st.rejected.reduce((a, b) => a + b, 0);
  assert.equal(records + rejected, N, 'every message is a record or a counted rejection');
  assert.ok(st.malformed.reduce((a, b) => a + b, 0) > 0 && malformedSeen > 0);
  const counters = JSON.stringify(parser.counters());
  // No hang: the slowest message (a GC pause or a preempted VM can make any one slow) parses fast when run again.
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
  assert.ok(again[25] < 1, `slowest message (iteration ${slowest}, ${maxMs.toFixed(1)} ms) takes ${again[25].toFixed(3)} ms again`);
  assert.ok(heapGrowth < 64 << 20, `heap grew ${heapGrowth} bytes`);
  console.log(`# dns fuzz: ${N} messages, ${records} records, ${counters}, slowest ${maxMs.toFixed(2)} ms, heap +${(heapGrowth / 1048576).toFixed(1)} MiB`);

  // TCP: mutated length-prefixed streams through handleStream, in random cuts.
  const tcp = new DnsParser({ ports: [53], tcp: true });
  const emitter: RecordEmitter & { n: number } = {
    record: new OutputRecord(),
    n: 0,
    emit(): boolean {
      this.n++;
      return this.record.payload!.writeJson(out, 0, out.length) > 0;
    },
  };
  const chunk = new TcpChunk();
  const stream = new Uint8Array(1 << 16);
  for (let s = 0; s < 20_000; s++) {
    let len = 0;
    const count = 1 + rng.int(4);
    for (let k = 0; k < count; k++) {
      const n = mutate(rng, seeds[rng.int(seeds.length)], seeds[rng.int(seeds.length)], msg);
      const l = rng.int(8) === 0 ? rng.int(65536) : n; // sometimes a lying length prefix
      stream[len] = l >>> 8;
      stream[len + 1] = l & 255;
      stream.set(msg.subarray(0, n), len + 2);
      len += 2 + n;
    }
    chunk.streamId = s;
    chunk.dir = 0;
    chunk.buf = stream;
    let off = 0;
    let kept = 0;
    while (off < len) {
      const cut = Math.min(len - off, 1 + rng.int(600));
      chunk.off = off - kept;
      chunk.len = kept + cut;
      chunk.gap = rng.int(200) === 0;
      const used = tcp.handleStream(chunk, emitter);
      assert.ok(used >= 0 && used <= chunk.len);
      kept = chunk.len - used;
      off += cut;
    }
    tcp.streamEnd(s);
  }
  assert.equal(tcp.stats.records, emitter.n);
  assert.ok(emitter.n > 20_000);
  assert.ok(tcp.stats.tcpBytesSkipped > 0, 'bytes after a gap are skipped and counted');
});
