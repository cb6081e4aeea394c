// rtp.stats: per-stream figures against tshark's `-z rtp,streams` on
// rtpproxy's captures, on a copy with packets deleted (editcap) and one with
// packets swapped; RFC 4733 digits against tshark's rtpevent fields; the
// same records from 1 and 2 capture processes; a signalled call's reports
// carry its call-id and codec, on the generic and the fast path; the stats
// path allocates nothing per packet.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decoder } from '../../../src/decode/decoder.js';
import { defaultDecoderOptions } from '../../../src/decode/options.js';
import { BatchReader, BatchSink } from '../../../src/pipeline/batch-sink.js';
import { RecordExpander } from '../../../src/pipeline/expand.js';
import { ENCODERS, wireEncoder } from '../../../src/pipeline/codec.js';
import { Pipeline } from '../../../src/pipeline/pipeline.js';
import { MemorySink, type RecordSink } from '../../../src/pipeline/sink.js';
import { FlowRegistry } from '../../../src/shm/registry.js';
import { FIXTURES, ROOT, replay, tsharkFields, type Rec } from '../../../test/helpers/otus-replay.js';
import { scavengesDuring, warmUp } from '../../../test/helpers/gc.js';
import { rtpPacket, udpFrame } from '../../../test/helpers/udp-frames.js';
import { withoutFrames } from '../../../test/helpers/tcp-gaps.js';
import { SipParser } from '../sip/index.js';
import { MediaCorrelator } from './correlate.js';
import { RtpParser, type RtpConfig } from './index.js';
import { RtpPayloadReader } from './payload.js';
import { mosOf, rFactor, ROW, RtpStreamTable } from './stats.js';
import { reportJson, type RtpStatsJson, RtpStatsPayload } from './stats-payload.js';
import protobuf from 'protobufjs';

const TASK = (perPacket: boolean, interval = 10): string => `task:
  id: rtp-stats
  parsers:
    - plugin: sip
    - plugin: rtp
      config: {heuristic: true, stats: {interval: ${interval}, per_packet: ${perPacket}}}
  unmatched_policy: drop
`;

interface TsharkStream {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  ssrc: number;
  packets: number;
  lost: number;
  maxDelta: number;
  maxJitter: number;
  meanJitter: number;
}

/** tshark -z rtp,streams, one entry per stream. */
function tsharkStreams(file: string): TsharkStream[] {
  const out = execFileSync('tshark', ['-r', file, '-q', '--enable-heuristic', 'rtp_udp', '-z', 'rtp,streams'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const rows: TsharkStream[] = [];
  for (const line of out.split('\n')) {
    // start end src sport dst dport ssrc payload pkts lost (pct) min-delta mean-delta max-delta min-jitter mean-jitter max-jitter [X]
    const m = /^\s*[\d.]+\s+[\d.]+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+0x([0-9A-Fa-f]+)\s+\S+\s+(\d+)\s+(-?\d+)\s+\(\S+\)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)/.exec(line);
    if (!m) continue;
    rows.push({
      src: m[1],
      sport: Number(m[2]),
      dst: m[3],
      dport: Number(m[4]),
      ssrc: parseInt(m[5], 16),
      packets: Number(m[6]),
      lost: Number(m[7]),
      maxDelta: Number(m[10]),
      meanJitter: Number(m[12]),
      maxJitter: Number(m[13]),
    });
  }
  return rows;
}

/** Each stream's final report (report "end"), keyed as tshark's streams are. */
function finals(records: Rec[]): Map<string, Rec> {
  const m = new Map<string, Rec>();
  for (const r of records) if (r.protocol === 'rtp.stats' && r.payload.report === 'end') m.set(`${r.flow.src}:${r.flow.sport}>${r.flow.dst}:${r.flow.dport}/${r.labels['rtp.ssrc']}`, r);
  return m;
}

/**
 * tshark prints milliseconds with three decimals, and we round ours the same
 * way; the two sums run in a different order (tshark in ms from the
 * capture's start, ours in seconds from the stream's first second), so
 * the last digit may differ by one: 0.0015 ms.
 */
const MS_TOLERANCE = 0.0015;

function assertLikeTshark(file: string): Map<string, Rec> {
  const want = tsharkStreams(file);
  assert.ok(want.length > 0, `tshark found no stream in ${file}`);
  const got = finals(replay(TASK(false), [file]).records);
  assert.equal(got.size, want.length, `${file}: streams`);
  for (const w of want) {
    const key = `${w.src}:${w.sport}>${w.dst}:${w.dport}/${w.ssrc}`;
    const r = got.get(key);
    assert.ok(r, `${file}: no report for ${key}`);
    const p = r.payload;
    const at = `${file} ${key}: ${JSON.stringify(p)}`;
    assert.equal(p.packets, w.packets, `packets, ${at}`);
    assert.equal(p.lost, w.lost, `lost, ${at}`);
    assert.ok(Math.abs(p.max_delta_ms - w.maxDelta) <= MS_TOLERANCE, `max delta ${p.max_delta_ms} vs ${w.maxDelta}, ${at}`);
    assert.ok(Math.abs(p.max_jitter_ms - w.maxJitter) <= MS_TOLERANCE, `max jitter ${p.max_jitter_ms} vs ${w.maxJitter}, ${at}`);
    assert.ok(Math.abs(p.mean_jitter_ms - w.meanJitter) <= MS_TOLERANCE, `mean jitter ${p.mean_jitter_ms} vs ${w.meanJitter}, ${at}`);
  }
  return got;
}

const G711 = join(ROOT, 'samples/rtp-g711a.pcap');

test("per-stream packets, lost, max delta, max and mean jitter equal tshark's -z rtp,streams (G.711, G.723.1, G.729 with loss and with a duplicate)", () => {
  for (const name of ['rtpproxy--G723_1.a.pcap', 'rtpproxy--lost.a.pcap', 'rtpproxy--dups.a.pcap']) assertLikeTshark(join(FIXTURES, name));
  const g711 = [...assertLikeTshark(G711).values()][0].payload;
  assert.equal(g711.clock_rate, 8000);
  assert.ok(g711.r_factor > 80 && g711.mos > 4, JSON.stringify(g711)); // one packet lost in 230, jitter ~3 ms
  const dups = [...finals(replay(TASK(false), [join(FIXTURES, 'rtpproxy--dups.a.pcap')]).records).values()][0].payload;
  assert.equal(dups.duplicates, 1);
});

test('a stream whose sender restarts (sequence and timestamp back to 0, twice): RFC 3550 A.1 counts no loss where tshark reports -475', () => {
  const file = join(FIXTURES, 'rtpproxy--sess6.a.pcap');
  const w = tsharkStreams(file);
  assert.equal(w.length, 1);
  assert.equal(w[0].lost, -475); // tshark's own count, wrong across the restarts
  const p = [...finals(replay(TASK(false), [file]).records).values()][0].payload;
  assert.equal(p.packets, w[0].packets);
  assert.equal(p.restarts, 2);
  assert.equal(p.lost, 0);
  assert.equal(p.expected, p.packets);
  // The restart starts the timing reference afresh: no jitter from the jump in timestamps (tshark: max 376 ms).
  assert.ok(p.max_jitter_ms < 5 && p.max_delta_ms < 30, JSON.stringify(p));
});

test('loss made by deleting packets (editcap) equals tshark', () => {
  const edited = withoutFrames(G711, [40, 41, 42, 100, 150]);
  const p = [...assertLikeTshark(edited).values()][0].payload;
  assert.equal(p.lost, 1 + 5);
  assert.equal(p.seq_jumps, 1 + 3);
});

/** A copy of a classic pcap with frames i and i+1 (0-based) swapped, timestamps kept in place (so the later packet arrives first). */
function swapped(file: string, pairs: number[]): string {
  const b = readFileSync(file);
  const recs: Buffer[] = [];
  for (let o = 24; o + 16 <= b.length; ) {
    const n = b.readUInt32LE(o + 8);
    recs.push(b.subarray(o, o + 16 + n));
    o += 16 + n;
  }
  for (const i of pairs) {
    const a = recs[i];
    const c = recs[i + 1];
    // Swap the packets' bytes, keep each slot's timestamp.
    recs[i] = Buffer.concat([a.subarray(0, 8), c.subarray(8)]);
    recs[i + 1] = Buffer.concat([c.subarray(0, 8), a.subarray(8)]);
  }
  const out = join(mkdtempSync(join(tmpdir(), 'otus-swap-')), 'swapped.pcap');
  writeFileSync(out, Buffer.concat([b.subarray(0, 24), ...recs]));
  return out;
}

test('reordering made by swapping packets: late packets counted as out of order, timing taken in arrival order (RFC 3550 A.8) as tshark does', () => {
  const file = swapped(G711, [60, 120, 180]);
  const p = [...assertLikeTshark(file).values()][0].payload;
  assert.equal(p.out_of_order, 3);
  assert.equal(p.duplicates, 0);
});

test("RFC 4733 events de-duplicated into digits equal tshark's rtpevent fields (event id per event, its last duration)", () => {
  const file = join(FIXTURES, 'rtpproxy--dtmf.pcapng');
  const rows = tsharkFields(file, 'rtpevent', ['rtp.ssrc', 'rtp.timestamp', 'rtpevent.event_id', 'rtpevent.end_of_event', 'rtpevent.duration'], ['--enable-heuristic', 'rtp_udp']);
  // An event is its packets with one timestamp (RFC 4733 §2.5); the end bit's packet carries its final duration.
  const want = new Map<number, { event: number; duration: number }[]>();
  const seen = new Set<string>();
  for (const [ssrc, ts, ev, end, dur] of rows) {
    const s = Number(ssrc);
    const k = `${s}/${ts}`;
    const list = want.get(s) ?? [];
    want.set(s, list);
    if (!seen.has(k)) {
      seen.add(k);
      list.push({ event: Number(ev), duration: Number(dur) / 8000 });
    } else if (end === '1' || end === 'True') list[list.length - 1].duration = Math.max(list[list.length - 1].duration, Number(dur) / 8000);
  }
  const { records } = replay(TASK(false), [file]);
  const got = new Map<number, { event: number; duration: number }[]>();
  for (const r of records.filter((x) => x.protocol === 'rtp.stats')) {
    const s = Number(r.labels['rtp.ssrc']);
    got.set(s, [...(got.get(s) ?? []), ...r.payload.dtmf.map((d: { event: number; duration: number }) => ({ event: d.event, duration: d.duration }))]);
  }
  assert.equal(want.size, 2);
  assert.deepEqual(got, want);
  const digits = [...got.values()].map((l) => l.map((d) => '0123456789*#ABCD'[d.event]).join(''));
  assert.deepEqual(digits.sort(), ['123456789*0#5', '54321#'].sort());
});

test('2 capture processes make the same rtp.stats records as 1', () => {
  const files = [G711, join(FIXTURES, 'rtpproxy--lost.a.pcap'), join(FIXTURES, 'rtpproxy--dups.a.pcap'), join(FIXTURES, 'rtpproxy--dtmf.pcapng'), join(FIXTURES, 'rtpproxy--G723_1.a.pcap')];
  const run = (workers: number): string[] =>
    replay(TASK(false, 2), files, workers)
      .records.filter((r) => r.protocol === 'rtp.stats')
      .map((r) => JSON.stringify(r))
      .sort();
  const one = run(1);
  assert.ok(one.length > 10, `${one.length} reports`);
  assert.deepEqual(run(2), one);
});

// ---- a signalled call, in process ----

const A = '192.0.2.10';
const B = '198.51.100.20';
const CALL = 'stats-call@example.com';
const sdp = (ip: string, port: number): string => `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n`;
const invite = (): Uint8Array =>
  udpFrame(
    A,
    B,
    5060,
    5060,
    `INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP ${A}:5060;branch=z9hG4bK1\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: ${CALL}\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp(A, 40000).length}\r\n\r\n${sdp(A, 40000)}`,
  );
const rtpCfg = (perPacket: boolean, interval = 1): RtpConfig => ({
  ports: [],
  heuristic: false,
  learn_nat: true,
  nat_ttl: 60,
  event_payload_types: [101],
  raw: false,
  stats: { interval, per_packet: perPacket, max_streams: 64, idle: 30 },
});

/** Writes packet i's sequence number and timestamp into an RTP frame in place (UDP payload at 42). */
function stamp(frame: Uint8Array, seq: number, ts: number): void {
  frame[44] = (seq >> 8) & 255;
  frame[45] = seq & 255;
  frame[46] = ts >>> 24;
  frame[47] = (ts >>> 16) & 255;
  frame[48] = (ts >>> 8) & 255;
  frame[49] = ts & 255;
}

test("a signalled call's reports carry its call-id and codec; per_packet off sends reports alone, and the fast path counts the same packets", () => {
  for (const fastPath of [false, true]) {
    const flows = FlowRegistry.create(`otus-t-stats${fastPath ? 'f' : 'g'}${process.pid}`, { capacity: 1024 });
    try {
      const sip = new SipParser({ ports: [5060], heuristic: true, track_media: true, media_ttl: 60, bye_grace: 1, max_message: 65536 }, flows);
      const rtp = new RtpParser(rtpCfg(false), new MediaCorrelator(flows, true));
      const { pl, feed, records } = statsPipeline(fastPath, sip, rtp);
      feed(invite(), 100, 0);
      const frame = udpFrame(B, A, 30000, 40000, rtpPacket(0, 0, 0, 0x5eed));
      // 5 s of 20 ms packets from 101 s, packet 100 (at 103 s) lost.
      for (let i = 0; i < 250; i++) {
        if (i === 100) continue;
        stamp(frame, i, i * 160);
        feed(frame, 101 + Math.floor(i / 50), (i % 50) * 20_000_000);
      }
      pl.flush();
      const recs = records();
      const stats = recs.filter((r: Rec) => r.protocol === 'rtp.stats');
      assert.deepEqual(
        recs.filter((r: Rec) => r.protocol === 'rtp'),
        [],
      );
      // Reports at 1, 2, 3, 4 s of the stream, then its end.
      assert.deepEqual(
        stats.map((r: Rec) => r.payload.report),
        ['interval', 'interval', 'interval', 'interval', 'end'],
      );
      for (const r of stats) assert.deepEqual(r.labels, { 'rtp.ssrc': String(0x5eed), 'call-id': CALL, codec: 'PCMU', media: 'audio' });
      const end = stats[4].payload;
      assert.equal(end.packets, 249);
      assert.equal(end.lost, 1);
      assert.equal(end.max_jitter_ms, 0);
      assert.equal(end.max_delta_ms, 40);
      assert.deepEqual(stats.map((r: Rec) => r.payload.interval.packets), [50, 50, 49, 50, 50]);
      assert.deepEqual(stats.map((r: Rec) => r.payload.interval.lost), [0, 0, 1, 0, 0]);
      assert.equal(stats[0].ts, '1970-01-01T00:01:42.000000000Z');
      if (fastPath) assert.ok(pl.stats.fastRecords === 0 && rtp.stats.packets === 249);
      // Summarised into the reports, not dropped (rtp is the pipeline's parser 1).
      assert.equal(pl.stats.parserSummarised[1], 249);
      assert.equal(pl.stats.parserNoOutput[1], 0);
    } finally {
      flows.close();
    }
  }
});

test('a stream evicted while its flow still leads the fast path to its row: the row\'s next stream is not counted with it (the same reports as the generic path)', () => {
  const reports: string[][] = [];
  for (const fastPath of [false, true]) {
    smallTableCall(fastPath, false, ({ table, feed, records }) => {
      const fastPacket = table.fastPacket.bind(table);
      let fast = 0;
      table.fastPacket = (...a) => (fastPacket(...a) ? ++fast > 0 : false);
      const x = udpFrame(B, A, 30000, 40000, rtpPacket(0, 0, 0, 0x1111));
      let ms = 0;
      const at = (): [number, number] => [101 + Math.floor(ms / 1000), (ms % 1000) * 1_000_000];
      // X's first 50 packets; 1.5 s later 8 streams the other way fill the set, the last evicting X (silent longest, over a
      // second: a full table ends no stream heard from within one); 1.5 s later X's next 50, evicting the first of the 8.
      for (let i = 0; i < 50; i++, ms += 20) {
        stamp(x, i, i * 160);
        feed(x, ...at());
      }
      ms += 1500;
      for (let g = 0; g < 8; g++, ms += 20) feed(udpFrame(A, B, 40000, 30000, rtpPacket(0, 7, 7 * 160, 0x2000 + g)), ...at());
      ms += 1500;
      for (let i = 50; i < 100; i++, ms += 20) {
        stamp(x, i, i * 160);
        feed(x, ...at());
      }
      reports.push(
        records()
          .filter((r: Rec) => r.protocol === 'rtp.stats')
          .map((r: Rec) => `${r.labels['rtp.ssrc']} ${r.payload.report} ${r.payload.packets}`)
          .sort(),
      );
      assert.equal(table.stats.evictions, 2, 'X evicted once, then one of the 8 for X again');
      if (fastPath) assert.ok(fast >= 90, `the fast path counted X's packets after the first (${fast})`);
    });
  }
  assert.ok(reports[0].includes(`${0x1111} evicted 50`) && reports[0].includes(`${0x1111} end 50`), reports[0].join(', '));
  assert.deepEqual(reports[1], reports[0]);
});

test('a stream a full table left out: every packet still sent, counted untracked, on the fast path too (the same records as the generic path)', () => {
  const out: string[][] = [];
  for (const fastPath of [false, true]) {
    smallTableCall(fastPath, true, ({ pl, table, feed, records }) => {
      // 8 streams one way fill the set, all heard from every 20 ms; X the other way finds no room.
      const x = udpFrame(B, A, 30000, 40000, rtpPacket(0, 0, 0, 0x1111));
      let xFast = 0;
      for (let i = 0; i < 100; i++) {
        const sec = 101 + Math.floor(i / 50);
        const nsec = (i % 50) * 20_000_000;
        for (let g = 0; g < 8; g++) feed(udpFrame(A, B, 40000, 30000, rtpPacket(0, i, i * 160, 0x2000 + g)), sec, nsec + g);
        stamp(x, i, i * 160);
        const before = pl.stats.fastFrames;
        feed(x, sec, nsec + 100);
        xFast += pl.stats.fastFrames - before;
      }
      const recs = records();
      assert.equal(recs.filter((r: Rec) => r.protocol === 'rtp').length, 900, 'every packet\'s record');
      assert.equal(table.stats.untracked, 100);
      assert.equal(table.stats.evictions, 0);
      // X's own packets, not the tracked streams': after its first, the fast path counts them untracked (a flow looked up again, after a second of wall time, takes one generic packet).
      if (fastPath) assert.ok(xFast >= 90, `X's packets after its first on the fast path (${xFast})`);
      else assert.equal(xFast, 0);
      out.push(recs.filter((r: Rec) => r.protocol === 'rtp.stats').map((r: Rec) => `${r.labels['rtp.ssrc']} ${r.payload.report} ${r.payload.packets}`).sort());
    });
  }
  assert.deepEqual(out[0], Array.from({ length: 8 }, (_, g) => `${0x2000 + g} end 100`).sort());
  assert.deepEqual(out[1], out[0]);
});

test('per_packet off: a stream a full table left out is counted as no output, not as summarised, on the fast path too', () => {
  for (const fastPath of [false, true]) {
    smallTableCall(fastPath, false, ({ pl, table, feed, records }) => {
      const x = udpFrame(B, A, 30000, 40000, rtpPacket(0, 0, 0, 0x1111));
      for (let i = 0; i < 100; i++) {
        const sec = 101 + Math.floor(i / 50);
        const nsec = (i % 50) * 20_000_000;
        for (let g = 0; g < 8; g++) feed(udpFrame(A, B, 40000, 30000, rtpPacket(0, i, i * 160, 0x2000 + g)), sec, nsec + g);
        stamp(x, i, i * 160);
        feed(x, sec, nsec + 100);
      }
      const recs = records();
      assert.equal(recs.filter((r: Rec) => r.protocol === 'rtp').length, 0);
      assert.equal(recs.filter((r: Rec) => r.protocol === 'rtp.stats').length, 8);
      assert.equal(table.stats.untracked, 100, `fast path ${fastPath}`);
      assert.equal(pl.stats.parserSummarised[1], 800, `fast path ${fastPath}`);
      assert.equal(pl.stats.parserNoOutput[1], 100, `fast path ${fastPath}`);
    });
  }
});

/** The signalled call (invite()) through sip + rtp with a stats table of 8 rows in one set (max_streams 4); `body` feeds its media, then reads the records (flushed). */
function smallTableCall(
  fastPath: boolean,
  perPacket: boolean,
  body: (c: { pl: Pipeline; table: RtpStreamTable; feed: (f: Uint8Array, sec: number, nsec: number) => void; records: () => Rec[] }) => void,
): void {
  const flows = FlowRegistry.create(`otus-t-small${fastPath ? 'f' : 'g'}${process.pid}`, { capacity: 1024 });
  try {
    const sip = new SipParser({ ports: [5060], heuristic: true, track_media: true, media_ttl: 60, bye_grace: 1, max_message: 65536 }, flows);
    const rtp = new RtpParser({ ...rtpCfg(perPacket, 10), stats: { interval: 10, per_packet: perPacket, max_streams: 4, idle: 30 } }, new MediaCorrelator(flows, true));
    const table = (rtp as unknown as { table: RtpStreamTable }).table;
    const { pl, feed, records } = statsPipeline(fastPath, sip, rtp);
    feed(invite(), 100, 0);
    body({ pl, table, feed, records: () => (pl.flush(), records()) });
  } finally {
    flows.close();
  }
}

/** sip + rtp in a pipeline with the fast path into a batch (as a capture process), or without it into JSON; `records()`: what came out, as the sender would write it. */
function statsPipeline(fastPath: boolean, sip: SipParser, rtp: RtpParser): { pl: Pipeline; feed: (f: Uint8Array, sec: number, nsec: number) => void; records: () => Rec[] } {
  const mem = new MemorySink();
  const batch = new BatchSink(mem, 64 * 1024);
  const pl = fastPath
    ? new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers: [sip, rtp], processors: [], unmatched: 'drop', encode: wireEncoder('json', batch.keys), sink: batch, fastPath: true })
    : new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers: [sip, rtp], processors: [], unmatched: 'drop', encode: ENCODERS.json, sink: mem });
  const feed = (f: Uint8Array, sec: number, nsec: number): void => pl.processBytes(f, new DataView(f.buffer, f.byteOffset, f.byteLength), 0, f.length, f.length, 1, sec, nsec, true, 9);
  const records = (): Rec[] => (fastPath ? expandBatch(mem) : mem.records().map((r) => JSON.parse(Buffer.from(r).toString('utf8'))));
  return { pl, feed, records };
}

/** The batches' wire records expanded as the sender does (JSON; rtp.stats payloads come written). */
function expandBatch(mem: MemorySink): Rec[] {
  const expander = new RecordExpander('json', [new RtpPayloadReader()]);
  const reader = new BatchReader();
  const out = new Uint8Array(1 << 20);
  const recs: Rec[] = [];
  for (const b of mem.records()) {
    assert.ok(reader.start(b, 0, b.length));
    while (reader.next() >= 0) {
      const end = expander.expand(b, reader.off, reader.len, reader.keys, out, 0, out.length);
      assert.ok(end > 0);
      recs.push(JSON.parse(Buffer.from(out.subarray(0, end)).toString('utf8')));
    }
  }
  return recs;
}

test('max_streams streams fit without an eviction, keys as alike as generated calls make them (addresses, ports and SSRCs counting up)', () => {
  const t = new RtpStreamTable({ interval: 10, per_packet: false, max_streams: 4096, idle: 30 });
  const ip = (net: number, i: number): number => (10 << 24) | (net << 16) | i;
  for (let c = 0; c < 2048; c++) {
    const pa = 20000 + 2 * c;
    const pb = 40000 + 2 * c;
    for (const k of [[0x1000 + c, (pa << 16) | pb, 4, ip(1, c + 1), 0, 0, 0, ip(2, c + 1), 0, 0, 0, 0], [0x8000 + c, (pb << 16) | pa, 4, ip(2, c + 1), 0, 0, 0, ip(1, c + 1), 0, 0, 0, 0]]) {
      t.key.set(k);
      assert.ok(t.find(100, 0, true) >= 0);
    }
  }
  assert.equal(t.liveCount, 4096);
  assert.equal(t.stats.evictions, 0);
});

test('a full table ends no stream heard from within a second: a new one is left out and counted (untracked), the tracked ones keep every packet', () => {
  const t = new RtpStreamTable({ interval: 10, per_packet: false, max_streams: 4, idle: 30 });
  const rows = new Map<number, number>();
  // 9 streams, 20 ms apart each, for 2 s: one more than the 8 rows.
  for (let i = 0; i < 100; i++) {
    for (let ssrc = 1; ssrc <= 9; ssrc++) {
      t.key.set([ssrc, (4000 << 16) | 5000, 4, 0x0a000001, 0, 0, 0, 0x0a000002, 0, 0, 0, 0]);
      const ms = 20 * i + ssrc;
      const r = t.find(100 + Math.floor(ms / 1000), (ms % 1000) * 1_000_000, true);
      if (r < 0) continue;
      if (!rows.has(ssrc)) rows.set(ssrc, r);
      assert.equal(r, rows.get(ssrc), `SSRC ${ssrc} keeps its row`);
      t.packet(r, 100 + Math.floor(ms / 1000), (ms % 1000) * 1_000_000, i, i * 160, 0, false, 172, -1, false, 0);
    }
  }
  assert.equal(t.stats.evictions, 0);
  assert.equal(t.stats.untracked, 100);
  assert.deepEqual([...rows.keys()], [1, 2, 3, 4, 5, 6, 7, 8]);
  const hints = new RtpParser(rtpCfg(false), new MediaCorrelator(null, true)).hints({ stats: { untracked: 100 } });
  assert.match(hints.join('\n'), /100 RTP packets left out of rtp\.stats.*max_streams/);
});

test('every stream ends once, whichever way: the scans walk the live streams as they end (idle, the call, all), evictions and restarts', () => {
  const t = new RtpStreamTable({ interval: 10, per_packet: false, max_streams: 4, idle: 5 });
  const ended = new Map<number, number>();
  const drain = (): void => {
    for (let q = 0; q < t.qLen; q++) if (t.qKind[q] !== 0) ended.set(t.qKeys[q * 12], (ended.get(t.qKeys[q * 12]) ?? 0) + 1);
    t.qLen = 0;
  };
  const live = (): number[] => [...t.live.subarray(0, t.liveCount)].sort((a, b) => a - b);
  const tagged = (): number[] => [...t.tags.keys()].filter((r) => t.tags[r] !== 0);
  // 40 streams (SSRC 1..40) on one flow, started a second apart, each heard from for 3 + (ssrc % 7) seconds:
  // the 8-row table evicts, the scan ends idle ones in the middle of the live list.
  let started = 0;
  for (let sec = 0; sec < 60; sec++) {
    if (sec < 40) started++;
    for (let ssrc = 1; ssrc <= started; ssrc++) {
      if (sec - (ssrc - 1) > 3 + (ssrc % 7)) continue;
      t.key.set([ssrc, (4000 << 16) | 5000, 4, 0x0a000001, 0, 0, 0, 0x0a000002, 0, 0, 0, 0]);
      const r = t.find(1000 + sec, 0, true);
      t.packet(r, 1000 + sec, 0, sec & 0xffff, sec * 8000, 0, false, 172, -1, false, 0);
    }
    t.expire(false);
    assert.deepEqual(live(), tagged(), `second ${sec}: the live list holds the rows in use`);
    drain();
  }
  t.expire(true);
  drain();
  assert.equal(t.liveCount, 0);
  assert.deepEqual(tagged(), []);
  for (let ssrc = 1; ssrc <= 40; ssrc++) assert.equal(ended.get(ssrc), 1, `SSRC ${ssrc} ended once`);
  assert.ok(t.stats.evictions > 0, 'the test made the table evict');
});

test('the E-model: G.711 without loss scores R 93.2 less the delay impairment; loss lowers it by G.113 Bpl', () => {
  assert.ok(Math.abs(rFactor('PCMA', 0, 0) - 93.2) < 1e-9);
  assert.ok(Math.abs(mosOf(93.2) - 4.41) < 0.01);
  // Ie,eff = 0 + 95 · 1 / (1 + 25.1) = 3.64 at 1 % loss.
  assert.ok(Math.abs(rFactor('PCMU', 1, 0) - (93.2 - 95 / 26.1)) < 1e-9);
  assert.ok(Math.abs(rFactor('G729', 0, 0) - 82.2) < 1e-9);
  assert.equal(rFactor('opus', 0, 0), -1);
});

test('the stats path (generic and fast, per_packet on and off) allocates nothing per packet', async () => {
  for (const perPacket of [true, false]) {
    const flows = FlowRegistry.create(`otus-t-stalloc${perPacket ? 1 : 0}${process.pid}`, { capacity: 1024 });
    try {
      const sip = new SipParser({ ports: [5060], heuristic: true, track_media: true, media_ttl: 3600, bye_grace: 1, max_message: 65536 }, flows);
      // Reports every 60 s of capture time: a few in the run, each a record made with strings (not per packet).
      const rtp = new RtpParser(rtpCfg(perPacket, 60), new MediaCorrelator(flows, true));
      const ring: RecordSink = { u8: new Uint8Array(1 << 20), reserve: (n) => (n <= 1 << 20 ? 0 : -1), commit: () => undefined };
      const batch = new BatchSink(ring, 256 * 1024);
      const pl = new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers: [sip, rtp], processors: [], unmatched: 'drop', encode: wireEncoder('json', batch.keys), sink: batch, fastPath: true });
      const inv = invite();
      pl.processBytes(inv, new DataView(inv.buffer), 0, inv.length, inv.length, 1, 1, 0, true, 6);
      const frame = udpFrame(B, A, 30000, 40000, rtpPacket(0, 0, 0, 7));
      const view = new DataView(frame.buffer);
      let i = 0;
      // A second of capture time per 1024 packets (small seconds: see rtp.test.ts), sequence and timestamp advancing, one packet in 97 lost.
      const run = (n: number): void => {
        for (const end = i + n; i < end; i++) {
          if (i % 97 === 0) continue;
          stamp(frame, i & 0xffff, (i * 160) >>> 0);
          pl.processBytes(frame, view, 0, frame.length, frame.length, 1, 1 + (i >> 10), (i & 1023) * 976_000, true, 9);
        }
      };
      await warmUp(() => run(200_000));
      const before = rtp.stats.packets;
      const gcs = await scavengesDuring(() => run(2_000_000));
      assert.ok(rtp.stats.packets - before > 1_970_000);
      assert.ok(rtp.table!.stats.reports > 0, 'reports made during the runs');
      // The fast path takes the packets either way; with per_packet off it writes no record for them.
      assert.ok(pl.stats.fastFrames > 1_900_000, `${pl.stats.fastFrames} frames on the fast path`);
      assert.equal(pl.stats.fastRecords, perPacket ? pl.stats.fastFrames : 0);
      // As rtp.test.ts's fast-path test: per batch and per clock refresh, never per packet (16 bytes a packet would be 32 MB).
      assert.ok(gcs <= 2, `${gcs} scavenges over 2M packets (per_packet ${perPacket})`);
    } finally {
      flows.close();
    }
  }
});

test('a report in JSON and in protobuf (otus.rtp.v1.RtpStats, rtp.proto) says the same', () => {
  const t = new RtpStreamTable({ interval: 10, per_packet: false, max_streams: 16, idle: 30 });
  t.key.set([0x1234, (4000 << 16) | 5000, 4, 0x0a000001, 0, 0, 0, 0x0a000002, 0, 0, 0, 0]);
  const r = t.find(100, 0, true);
  t.setRate(r, 0, 'PCMU');
  for (let i = 0; i < 60; i++) if (i !== 7) t.packet(r, 100 + Math.floor(i / 50), (i % 50) * 20_000_000 + (i % 3) * 1_000_000, i, i * 160, 0, i === 0, 172, -1, false, 0);
  t.packet(r, 101, 300_000_000, 40, 40 * 160, 0, false, 172, -1, false, 0); // a duplicate (within the last 32)
  // DTMF 5 with its end three times, then # whose end was lost.
  let seq = 60;
  for (const [d, end] of [[160, false], [320, false], [480, true], [480, true], [480, true]] as const) t.packet(r, 101, 400_000_000, seq++, 9600, 101, false, 16, 5, end, d);
  t.packet(r, 101, 600_000_000, seq, 12800, 101, false, 16, 11, false, 160);
  t.end(r, 1);
  assert.equal(t.qLen, 1);
  const pl = new RtpStatsPayload();
  pl.report.at(t.qRows, 0, t.qKind[0], 'PCMU');
  // An RTCP summary as read from the media table: the receiver's block with a round trip, the sender's without.
  pl.rtcp.rate = 8000;
  pl.rtcp.has = 3;
  Object.assign(pl.rtcp.receiver, { at: 1700000000.25, ssrc: 0xdeadbeef, fractionLost: 12, cumulativeLost: -2, jitter: 80, roundTrip: 0.0421 });
  Object.assign(pl.rtcp.sender, { at: 1700000001.5, ssrc: 77, fractionLost: 0, cumulativeLost: 3, jitter: 9, roundTrip: -1 });
  pl.direction = 2;
  pl.loaded();
  const want = reportJson(pl.report, pl.rtcp, pl.direction);
  assert.equal(want.direction, 'callee_to_caller');
  assert.deepEqual(want.rtcp?.receiver, { ssrc: 0xdeadbeef, at: 1700000000.25, fraction_lost: 12, cumulative_lost: -2, jitter: 80, jitter_ms: 10, rtt_ms: 42.1 });
  // Packet 7 lost, packet 40 twice: RFC 3550 counts the duplicate as received.
  assert.equal(want.lost, 0);
  assert.equal(want.seq_jumps, 1);
  assert.equal(want.duplicates, 1);
  assert.deepEqual(
    want.dtmf.map((d) => [d.digit, d.duration]),
    [['5', 0.06], ['#', 0.02]],
  );
  const buf = new Uint8Array(4096);
  const n = pl.writeJson(buf, 0, buf.length);
  assert.deepEqual(JSON.parse(Buffer.from(buf.subarray(0, n)).toString('utf8')), want);
  const size = pl.binarySize();
  assert.equal(pl.writeBinary(buf, 0, buf.length), size);
  const type = protobuf.loadSync(join(ROOT, 'plugins/parser/rtp/rtp.proto')).lookupType('otus.rtp.v1.RtpStats');
  const got = type.toObject(type.decode(buf.subarray(0, size)), { longs: Number, defaults: true, arrays: true });
  assert.deepEqual(
    {
      ...got,
      dtmf: got.dtmf.map((d: Record<string, unknown>) => ({ digit: d.digit ?? null, event: d.event, start: d.start, duration: d.duration })),
      pt: got.pt ?? null,
      r_factor: got.rFactor,
      mos: got.mos,
      rtcp: { receiver: got.rtcp.receiver, sender: { ...got.rtcp.sender, rttMs: got.rtcp.sender.rttMs ?? null } },
    },
    {
      ...camel(want as unknown as Record<string, unknown>),
      r_factor: want.r_factor,
      mos: want.mos,
      rtcp: { receiver: camel(want.rtcp!.receiver as unknown as Record<string, unknown>), sender: camel(want.rtcp!.sender as unknown as Record<string, unknown>) },
    },
  );
});

/** The JSON names as protobufjs's camelCase fields (its toObject). */
function camel(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
  return out;
}

test('fastPacket leaves the sequence window, delta count and delta sum to be added later: its reports equal packet()\'s, after runs of every length', () => {
  const reports = [false, true].map((fast) => {
    const t = new RtpStreamTable({ interval: 1, per_packet: false, max_streams: 16, idle: 30 });
    t.key.set([0x1234, (4000 << 16) | 5000, 4, 0x0a000001, 0, 0, 0, 0x0a000002, 0, 0, 0, 0]);
    const r = t.find(100, 0, true);
    t.setRate(r, 0, 'PCMU');
    let ms = 0;
    const send = (s: number, pt = 0): void => {
      // Arrival wobbles by up to 2 ms, so deltas and jitter differ packet to packet.
      const sec = 100 + Math.floor(ms / 1000);
      const nsec = (ms % 1000) * 1_000_000 + (s % 3) * 1_000_000;
      ms += 20;
      const seq = s & 0xffff;
      const ts = (s * 160) >>> 0;
      if (!fast || !t.fastPacket(r, sec, nsec, seq, ts, pt, false, 172)) t.packet(r, sec, nsec, seq, ts, pt, false, 172, -1, false, 0);
    };
    let seq = 65000; // wraps at 65536 on the way
    // Each run after a lost packet, so its window is the run's alone (when 32 or longer) or holds the gap.
    for (const run of [1, 2, 5, 31, 32, 33, 34, 41, 65, 3, 100]) {
      const lost = seq++;
      for (let i = 0; i < run; i++, seq++) {
        if (i === 20 && run === 41) ms -= 25; // time going back: no delta for the mean and max
        send(seq, i >= 10 && i < 13 && run === 100 ? 8 : 0); // a payload type change and back
      }
      // Late packets at several distances: duplicates where seen, out of order where lost (the window says which).
      for (const back of [1, 2, 7, 19, 31, 33]) send(seq - back);
      send(lost);
    }
    t.end(r, 1);
    const out = [];
    for (let q = 0; q < t.qLen; q++) out.push(reportJson(new RtpStatsPayload().report.at(t.qRows, q * ROW, t.qKind[q], 'PCMU')));
    return out;
  });
  assert.ok(reports[0].length >= 8, `${reports[0].length} reports`);
  assert.ok(reports[0].some((j) => j.duplicates > 0) && reports[0].some((j) => j.out_of_order > 0));
  // The delta sum is one subtraction for a run instead of one per packet: equal to rounding.
  const mean = (rs: RtpStatsJson[]): number[] => rs.map((j) => j.mean_delta_ms);
  assert.deepEqual(
    mean(reports[1]).map((m, i) => Math.abs(m - mean(reports[0])[i]) < 1e-6),
    reports[0].map(() => true),
  );
  assert.deepEqual(
    reports[1].map((j) => ({ ...j, mean_delta_ms: 0 })),
    reports[0].map((j) => ({ ...j, mean_delta_ms: 0 })),
  );
});
