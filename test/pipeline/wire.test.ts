// The capture → sender record path: wire records (src/pipeline/wire.ts)
// batched (batch-sink.ts) and expanded by the sender (expand.ts) must give
// byte for byte the JSON and protobuf the in-process codecs give, compact
// payloads (rtp, sip) included; and bad bytes in the ring are counted, never
// thrown.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openCapture } from '../../src/capture-file/open.js';
import { Decoder } from '../../src/decode/decoder.js';
import { defaultDecoderOptions } from '../../src/decode/options.js';
import { BatchReader, BatchSink } from '../../src/pipeline/batch-sink.js';
import { ENCODERS, wireEncoder, type EncodeFn } from '../../src/pipeline/codec.js';
import { RecordExpander } from '../../src/pipeline/expand.js';
import { labelKeyId, LOCAL_KEYS } from '../../src/pipeline/label-keys.js';
import { Labels } from '../../src/pipeline/labels.js';
import { Pipeline, type PipelineStats } from '../../src/pipeline/pipeline.js';
import { MemorySink, type RecordSink } from '../../src/pipeline/sink.js';
import { createRegistry } from '../../src/plugin/builtins.js';
import type { Parser, Processor, RecordFormat } from '../../src/plugin/types.js';
import { FlowRegistry } from '../../src/shm/registry.js';
import { FIXTURES, SAMPLE, text } from './helpers.js';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { writePcap } from '../helpers/live.js';
import { rtpPacket, udpFrame } from '../helpers/udp-frames.js';

const CAPTURES = [
  SAMPLE,
  ...[
    'PcapPlusPlus--sip_reqs.pcap',
    'PcapPlusPlus--sip_resp.pcap',
    'suricata-verify--sip-sdp.pcap',
    'suricata-verify--sip-tcp-method.pcap',
    'suricata-verify--sip-compact-form.pcap',
    'suricata-verify--sip-body-large.pcap',
    'suricata-verify--sip-body-frames.pcap',
    'rtpproxy--dtmf.pcapng',
    'packetnet--ipv6_rtp.pcap',
    'PcapPlusPlus--TwoHttpRequests.pcap',
    'tcpdump--dns_udp.pcap',
  ].map((f) => join(FIXTURES, f)),
];

let run = 0;

/** A fresh set of parsers (sip, rtp with the heuristic, rtcp, dns, http) over their own flow registry. */
async function parsers(): Promise<{ list: Parser[]; flows: FlowRegistry }> {
  const reg = await createRegistry();
  const flows = FlowRegistry.create(`wiretest${process.pid}-${run++}`, { capacity: 4096 });
  const base = { node: {}, taskId: 't', worker: 0, flows, where: 'test' };
  const list: Parser[] = [];
  for (const [name, config] of [
    ['sip', {}],
    ['rtp', { heuristic: true }],
    ['rtcp', { heuristic: true }],
    ['dns', {}],
    ['http', {}],
  ] as const) {
    list.push(await reg.instantiate('parser', name, config, base));
  }
  return { list, flows };
}

function pipeline(list: Parser[], encode: EncodeFn, sink: RecordSink, fastPath = false, processors: Processor[] = []): Pipeline {
  return new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers: list, processors, unmatched: 'forward', encode, sink, fastPath });
}

/** Processors by plugin name and config, with node metadata for the label processor. */
type ProcessorSpec = [name: string, config: object];
async function processors(specs: readonly ProcessorSpec[]): Promise<Processor[]> {
  const reg = await createRegistry();
  const base = { node: { hostname: 'probe-1', ip: '192.0.2.99', dc: 'lab' }, taskId: 't', worker: 0, where: 'test' };
  return Promise.all(specs.map(([name, config]) => reg.instantiate('processor', name, config, base)));
}

/** Records of `file` as the in-process codec writes them. */
async function inProcess(file: string, format: RecordFormat): Promise<Uint8Array[]> {
  const { list, flows } = await parsers();
  const sink = new MemorySink();
  const pl = pipeline(list, ENCODERS[format], sink);
  const r = openCapture(file);
  while (r.next()) pl.processFrame(r.frame);
  pl.flush();
  flows.close();
  return sink.records();
}

/** Records of `file` the capture process's way: wire records in batches, then expanded as the sender does. */
async function viaSender(
  file: string,
  format: RecordFormat,
  fastPath = false,
  procs: readonly ProcessorSpec[] = [],
): Promise<{ records: Uint8Array[]; wire: Uint8Array[]; expander: RecordExpander; stats: PipelineStats }> {
  const { list, flows } = await parsers();
  const ring = new MemorySink();
  const batch = new BatchSink(ring, 256 * 1024);
  const pl = pipeline(list, wireEncoder(format, batch.keys), batch, fastPath, await processors(procs));
  const r = openCapture(file);
  while (r.next()) pl.processFrame(r.frame);
  pl.flush();
  flows.close();
  const expander = new RecordExpander(format, (await createRegistry()).payloadReaders());
  const reader = new BatchReader();
  const out = new Uint8Array(1 << 20);
  const records: Uint8Array[] = [];
  const wire: Uint8Array[] = [];
  for (const b of ring.records()) {
    assert.ok(reader.start(b, 0, b.length));
    while (reader.next() >= 0) {
      wire.push(b.slice(reader.off, reader.off + reader.len));
      const end = expander.expand(b, reader.off, reader.len, reader.keys, out, 0, out.length);
      assert.ok(end > 0, `${file}: record ${records.length} expands`);
      records.push(out.slice(0, end));
    }
  }
  assert.equal(reader.broken, 0);
  return { records, wire, expander, stats: pl.stats };
}

for (const format of ['json', 'protobuf'] as const) {
  test(`${format}: the sender's expansion of batched wire records equals the in-process codec, compact payloads included`, async () => {
    let compared = 0;
    for (const file of CAPTURES) {
      const want = await inProcess(file, format);
      const got = await viaSender(file, format);
      assert.equal(got.records.length, want.length, file);
      for (let i = 0; i < want.length; i++) {
        assert.deepEqual(got.records[i], want[i], `${file} record ${i}: ${format === 'json' ? text(got.records[i]) : ''}`);
      }
      assert.equal(got.expander.stats.payloadUnread + got.expander.stats.payloadFormat, 0, file);
      compared += want.length;
    }
    assert.ok(compared > 400, `compared ${compared} records`);
  });
}

test("the fast path writes the records the generic path writes: every RTP shape, events, unknown flows, trust renewals, a call's end", async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'otus-fast-'));
  const file = join(tmp, 'calls.pcap');
  try {
    const frames: Uint8Array[] = [];
    const at: number[] = [];
    const sdp = (ip: string, port: number): string =>
      `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n`;
    const sip = (start: string, id: string, cseq: string, body: string): string =>
      `${start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK${id}\r\nFrom: <sip:a@x>;tag=a\r\nTo: <sip:b@x>;tag=b\r\nCall-ID: ${id}\r\nCSeq: ${cseq}\r\n` +
      (body ? `Content-Type: application/sdp\r\n` : '') + `Content-Length: ${body.length}\r\n\r\n${body}`;
    const push = (f: Uint8Array, us: number): void => {
      frames.push(f);
      at.push(us);
    };
    // Frames of known flows in shapes the fast path leaves to the decoder (their records must not change either).
    const shape = (f: Uint8Array, i: number): Uint8Array => {
      const v = (k: number): boolean => i % 37 === k;
      if (v(11)) return Uint8Array.from([...f.subarray(0, 12), 0x81, 0, 0x21, 0x23, ...f.subarray(12)]); // 802.1Q tag: priority 1, VLAN 291
      if (v(13)) return Uint8Array.from([...f, 0, 0, 0, 0]); // bytes after the IP datagram (Ethernet padding)
      if (v(17)) {
        // IPv4 options (a 24-byte header)
        const g = Uint8Array.from([...f.subarray(0, 34), 1, 1, 1, 0, ...f.subarray(34)]);
        g[14] = 0x46;
        new DataView(g.buffer).setUint16(16, new DataView(f.buffer).getUint16(16) + 4);
        return g;
      }
      if (v(19)) new DataView(f.buffer).setUint16(20, 0x4000); // DF: still not a fragment
      if (v(23)) new DataView(f.buffer).setUint16(38, new DataView(f.buffer).getUint16(38) - 4); // UDP shorter than the IP datagram
      if (v(29)) {
        // IP and UDP lengths past the frame's end: malformed, dropped by the decoder
        const d = new DataView(f.buffer);
        d.setUint16(16, d.getUint16(16) + 8);
        d.setUint16(38, d.getUint16(38) + 8);
      }
      return f;
    };
    const calls = 3;
    for (let c = 0; c < calls; c++) {
      const a = `10.0.1.${c + 1}`;
      const b = `10.0.2.${c + 1}`;
      push(udpFrame(a, b, 5060, 5060, sip('INVITE sip:b@x SIP/2.0', `fast-${c}@x`, '1 INVITE', sdp(a, 20000 + 2 * c))), c * 1000);
      push(udpFrame(b, a, 5060, 5060, sip('SIP/2.0 200 OK', `fast-${c}@x`, '1 INVITE', sdp(b, 40000 + 2 * c))), c * 1000 + 500);
    }
    const voice = new Uint8Array(160).fill(0xd5);
    let t = 10_000;
    for (let i = 0; i < 3000; i++) {
      const c = i % calls;
      const a = `10.0.1.${c + 1}`;
      const b = `10.0.2.${c + 1}`;
      const seq = i & 0xffff;
      let rtp = rtpPacket(i % 50 === 7 ? 0 : 8, seq, seq * 160, 0x1000 + c, voice, i % 40 === 0);
      if (i % 97 === 5) rtp = rtpPacket(101, seq, seq * 160, 0x1000 + c, Uint8Array.from([5, 0x80 | 10, 0, 160])); // RFC 4733 event
      if (i % 89 === 3) (rtp = Uint8Array.from([...rtp.subarray(0, 12), 0, 0, 0, 9, ...voice]))[0] = 0x81; // one CSRC
      if (i % 83 === 2) (rtp = Uint8Array.from([...rtp, 0, 0, 3]))[0] = 0xa0; // padding
      if (i % 79 === 1) (rtp = Uint8Array.from([...rtp.subarray(0, 12), 0xbe, 0xde, 0, 0, ...voice]))[0] = 0x90; // header extension
      const f = (i & 1) === 0 ? udpFrame(a, b, 20000 + 2 * c, 40000 + 2 * c, rtp) : udpFrame(b, a, 40000 + 2 * c, 20000 + 2 * c, rtp);
      if (i % 71 === 4) f[22] = 7; // another TTL
      push(shape(f, i), t);
      if (i % 61 === 9) push(udpFrame('10.9.9.9', '10.8.8.8', 30000, 30002, rtpPacket(8, seq, 0, 77, voice)), t); // a flow nobody signalled
      // 20 ms per packet and call, with a second-long pause now and then (the flow cache's trust and recheck run out).
      t += i % 1000 === 999 ? 1_500_000 : 20_000 / calls;
    }
    // Call 0 ends: its media are labelled until the BYE's grace has passed.
    push(udpFrame('10.0.1.1', '10.0.2.1', 5060, 5060, sip('BYE sip:b@x SIP/2.0', 'fast-0@x', '2 BYE', '')), t);
    for (let i = 0; i < 20; i++) push(udpFrame('10.0.1.1', '10.0.2.1', 20000, 40000, rtpPacket(8, 5000 + i, 0, 0x1000, voice)), t + 1000 + i * 400_000);
    writePcap(file, frames, (i) => at[i]);

    // Processors ride the fast path when their verdict on its records is known without reading them (fastPlan).
    const SHIPPED_FILTER: ProcessorSpec = ['filter', { rules: [{ label: 'sip.method', values: ['OPTIONS', 'REGISTER'], action: 'drop' }] }];
    const cases: { name: string; procs: ProcessorSpec[]; fast: boolean }[] = [
      { name: 'no processors', procs: [], fast: true },
      { name: 'the shipped task filter and node labels', procs: [SHIPPED_FILTER, ['label', { labels: { site: 'lab-1', 'rack.row': 'grüße' } }]], fast: true },
      { name: 'overwriting node labels', procs: [['label', { overwrite: true }]], fast: true },
      { name: 'a filter whose default drops what no rule passes', procs: [['filter', { rules: [{ label: 'sip.method', values: ['INVITE'], action: 'pass' }], default: 'drop' }]], fast: true },
      { name: 'a filter on a key fast records carry', procs: [['filter', { rules: [{ label: 'codec', values: ['PCMU'], action: 'drop' }] }]], fast: false },
      { name: 'a filter on a label an earlier processor adds', procs: [['label', { labels: { site: 'lab-1' } }], ['filter', { rules: [{ label: 'site', values: ['lab-2'], action: 'drop' }], priority: 30 }]], fast: false },
    ];
    for (const c of cases) {
      const generic = await viaSender(file, 'json', false, c.procs);
      const fast = await viaSender(file, 'json', true, c.procs);
      assert.equal(generic.stats.fastRecords, 0);
      assert.equal(fast.records.length, generic.records.length, c.name);
      for (let i = 0; i < generic.records.length; i++) assert.equal(text(fast.records[i]), text(generic.records[i]), `${c.name}: record ${i}`);
      assert.deepEqual([...fast.stats.processorDrops], [...generic.stats.processorDrops], c.name);
      assert.deepEqual([...fast.stats.parserRecords], [...generic.stats.parserRecords], c.name);
      const rtp = generic.stats.parserRecords[1];
      if (c.fast) assert.ok(fast.stats.fastRecords > rtp * 0.75 && fast.stats.fastRecords < rtp, `${c.name}: fast path ${fast.stats.fastRecords} of ${rtp} RTP records`);
      else assert.equal(fast.stats.fastRecords, 0, c.name);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('fuzz: 50 k frames of known calls with 1 to 3 header bytes mutated give the same records with and without the fast path', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'otus-fastfuzz-'));
  const file = join(tmp, 'fuzz.pcap');
  try {
    const sdp = (ip: string, port: number): string => `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n`;
    const sip = (start: string, id: string, body: string): string =>
      `${start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK${id}\r\nFrom: <sip:a@x>;tag=a\r\nTo: <sip:b@x>;tag=b\r\nCall-ID: ${id}\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const frames: Uint8Array[] = [];
    for (let c = 0; c < 4; c++) {
      frames.push(udpFrame(`10.0.1.${c + 1}`, `10.0.2.${c + 1}`, 5060, 5060, sip('INVITE sip:b@x SIP/2.0', `fz-${c}@x`, sdp(`10.0.1.${c + 1}`, 20000 + 2 * c))));
      frames.push(udpFrame(`10.0.2.${c + 1}`, `10.0.1.${c + 1}`, 5060, 5060, sip('SIP/2.0 200 OK', `fz-${c}@x`, sdp(`10.0.2.${c + 1}`, 40000 + 2 * c))));
    }
    let seed = 0x5eed;
    const rand = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    for (let i = 0; i < 50_000; i++) {
      const c = i & 3;
      const f = udpFrame(`10.0.1.${c + 1}`, `10.0.2.${c + 1}`, 20000 + 2 * c, 40000 + 2 * c, rtpPacket(8, i & 0xffff, i * 160, 0x4000 + c, new Uint8Array(160)));
      // Unmutated frames between the mutated ones keep the flows in the fast path's cache.
      if (i % 3 !== 0) for (let m = 1 + rand(3); m > 0; m--) f[rand(60)] = rand(256);
      frames.push(f);
    }
    writePcap(file, frames, (i) => i * 2000);
    const generic = await viaSender(file, 'json');
    const fast = await viaSender(file, 'json', true);
    assert.equal(fast.records.length, generic.records.length);
    for (let i = 0; i < generic.records.length; i++) assert.equal(text(fast.records[i]), text(generic.records[i]), `record ${i}`);
    assert.ok(fast.stats.fastRecords > 15_000, `fast path: ${fast.stats.fastRecords} records`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('compact payloads are what goes through the ring for sip and rtp', async () => {
  const { wire } = await viaSender(join(FIXTURES, 'suricata-verify--sip-sdp.pcap'), 'json');
  const { wire: rtpWire } = await viaSender(SAMPLE, 'json');
  const expander = new RecordExpander('json', []);
  const out = new Uint8Array(1 << 16);
  // Without the parsers' readers the sender cannot read their payloads: written as null and counted.
  for (const w of [...wire, ...rtpWire]) {
    const end = expander.expand(w, 0, w.length, LOCAL_KEYS, out, 0, out.length);
    // Ids are this process's: the keys resolve locally.
    assert.ok(end > 0);
    const j = JSON.parse(text(out.subarray(0, end)));
    if (j.protocol === 'sip' || j.protocol === 'rtp') assert.equal(j.payload, null);
  }
  assert.ok(expander.stats.payloadUnread > 0);
});

test('bad wire bytes: every truncation and random corruption is dropped and counted or expands to valid JSON, never a throw', async () => {
  const { wire } = await viaSender(join(FIXTURES, 'suricata-verify--sip-sdp.pcap'), 'json');
  const { wire: w2 } = await viaSender(SAMPLE, 'json');
  const samples = [...wire.slice(0, 6), ...w2.slice(0, 4)];
  const expander = new RecordExpander('json', (await createRegistry()).payloadReaders());
  const out = new Uint8Array(1 << 20);
  let seed = 12345;
  const rand = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
  let tried = 0;
  for (const w of samples) {
    for (let cut = 0; cut < w.length; cut++) {
      assert.equal(expander.expand(w, 0, cut, LOCAL_KEYS, out, 0, out.length), -1, `cut at ${cut} of ${w.length}`);
      tried++;
    }
    for (let k = 0; k < 300; k++) {
      const m = w.slice();
      for (let f = 1 + rand(4); f > 0; f--) m[rand(m.length)] = rand(256);
      const end = expander.expand(m, 0, m.length, LOCAL_KEYS, out, 0, out.length);
      if (end > 0) JSON.parse(text(out.subarray(0, end)));
      tried++;
    }
  }
  const st = expander.stats;
  assert.ok(st.malformed > 0);
  assert.equal(st.records + st.malformed + st.tooBig, tried);
  // A record too big for the output room is dropped and counted.
  assert.equal(expander.expand(samples[0], 0, samples[0].length, LOCAL_KEYS, out, 0, 64), -1);
  assert.equal(expander.stats.tooBig, st.tooBig);
});

test('batches: a full ring drops whole batches and counts every record; broken framing is counted', () => {
  const refusing: RecordSink = { u8: new Uint8Array(0), reserve: () => -1, commit: () => undefined };
  const batch = new BatchSink(refusing, 1024);
  for (let i = 0; i < 1000; i++) {
    const at = batch.open();
    batch.u8.fill(7, at, at + 100);
    batch.close(at + 100);
  }
  batch.flush();
  assert.equal(batch.droppedRecords, 1000);
  assert.equal(batch.records, 0);
  assert.ok(batch.droppedBatches >= 3, `${batch.droppedBatches} batches`);

  const ring = new MemorySink();
  const ok = new BatchSink(ring, 1024);
  const L = new Labels();
  L.set('a.key', 'v');
  for (let i = 0; i < 3; i++) {
    const at = ok.reserve(5);
    ok.u8.set([1, 2, 3, 4, 5], at);
    ok.commit(at);
  }
  ok.keys.use(labelKeyId('a.key'));
  ok.flush();
  const [b] = ring.records();
  const reader = new BatchReader();
  assert.ok(reader.start(b, 0, b.length));
  const lens: number[] = [];
  while (reader.next() >= 0) lens.push(reader.len);
  assert.deepEqual(lens, [5, 5, 5]);
  assert.ok(reader.keys.find(labelKeyId('a.key')));
  assert.equal(text(reader.keys.buf.subarray(reader.keys.off, reader.keys.off + reader.keys.len)), 'a.key');
  // Names offset past the end, then a record length past the names: both counted, nothing thrown.
  const bad = b.slice();
  bad[0] = 0xff;
  assert.equal(reader.start(bad, 0, bad.length), false);
  const bad2 = b.slice();
  bad2[4] = 0xff;
  assert.ok(reader.start(bad2, 0, bad2.length));
  assert.equal(reader.next(), -1);
  assert.equal(reader.broken, 2);
});

test('labels: numbers compare as their decimal text; keys over 255 bytes are refused and counted', () => {
  const L = new Labels();
  L.setUint('rtp.seq', 4711);
  assert.equal(L.get('rtp.seq'), '4711');
  assert.ok(L.equals('rtp.seq', '4711'));
  assert.ok(!L.equals('rtp.seq', '04711'));
  assert.ok(!L.equals('rtp.seq', '4711 '));
  assert.equal(L.set('k'.repeat(256), 'x'), false);
  assert.equal(L.overflows, 1);
  assert.deepEqual(L.toObject(), { 'rtp.seq': '4711' });
});
