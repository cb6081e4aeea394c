// SIP over TCP on a real capture (otus--sip-tcp-segmented.pcap: two calls
// on one connection, every message in 2 to 5 segments) with segments lost:
// frames removed by editcap, each result checked against tshark on the same
// file. A message a hole cut is dropped (the bytes kept from before the hole
// are never joined to what follows), every message tshark finds is there,
// whole, and each carries the capture time of its first byte. Then the
// heuristic: the same connection on a port no one configured, found from its
// first payload (either direction, joined mid-stream), and TCP that is not
// SIP decided once per connection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AGG, FIXTURES, frameTimes, type JsonRecord } from '../../../test/helpers/parser-golden.js';
import { runParsers, tsharkRows, tsKey, wiresharkToolsMissing, withoutFrames } from '../../../test/helpers/tcp-gaps.js';
import { SipParser, type SipConfig } from './index.js';

const FILE = join(FIXTURES, 'otus--sip-tcp-segmented.pcap');
const skip = wiresharkToolsMissing();

function sip(o: Partial<SipConfig> = {}): SipParser {
  return new SipParser({ ports: [5080], heuristic: true, track_media: false, media_ttl: 60, bye_grace: 1, max_message: 65536, ...o }, null);
}

/** A message's identity: start (method or status), CSeq, Call-ID. */
function keyOf(r: JsonRecord): string {
  return `${r.labels['sip.method'] ?? r.labels['sip.status']} ${r.labels['sip.cseq']} ${r.labels['sip.call-id']}`;
}

/** tshark's SIP messages in the file: identity and the capture time of the first byte (first of tcp.segment, else its frame). */
function tsharkSip(file: string): { key: string; ts: string }[] {
  const times = frameTimes(file);
  const out: { key: string; ts: string }[] = [];
  for (const [frame, method, status, cseq, callId, segments] of tsharkRows(file, 'sip', ['sip.Method', 'sip.Status-Code', 'sip.CSeq', 'sip.Call-ID', 'tcp.segment'], ['-d', 'tcp.port==5080,sip'])) {
    const starts = [...(method ? method.split(AGG) : []), ...(status ? status.split(AGG) : [])];
    const cseqs = cseq.split(AGG);
    const ids = callId.split(AGG);
    starts.forEach((s, k) => {
      // The first message of a frame may have been reassembled; any later one started in this frame.
      const first = k === 0 && segments !== '' ? Number(segments.split(AGG)[0]) : Number(frame);
      out.push({ key: `${s} ${cseqs[k]} ${ids[k]}`, ts: times.get(first)! });
    });
  }
  return out;
}

const sorted = (a: string[]): string[] => [...a].sort();

/** Each edit's file and tshark's messages in it, made once for all tests. */
const edited = new Map<string, { file: string; want: { key: string; ts: string }[] }>();
function edit(frames: (number | string)[]): { file: string; want: { key: string; ts: string }[] } {
  const k = frames.join(',');
  let e = edited.get(k);
  if (e === undefined) {
    const file = frames.length > 0 ? withoutFrames(FILE, frames) : FILE;
    e = { file, want: tsharkSip(file) };
    edited.set(k, e);
  }
  return e;
}

// Segments lost: the middle, first and last of the 3-segment 180 Ringing (frames 18-20), of the
// 5-segment INVITE (4-12), of the 200 OK (24-27), the last of a 100, an ACK and a BYE, and two holes in one run.
// (Before the fix, losing the last segment of a message joined its start to the next message: frames 8, 15, 20, 34, 60.)
const EDITS: number[][] = [[19], [18], [20], [6], [8], [4], [12], [15], [25], [27], [33], [34], [60], [19, 25], [6, 50], [45, 46]];

let whole: Map<string, JsonRecord> | null = null;
function wholeRun(): Map<string, JsonRecord> {
  if (whole === null) {
    whole = new Map(runParsers(FILE, [sip()]).records.map((r) => [keyOf(r), r]));
    assert.equal(whole.size, 14, 'two calls of seven messages');
  }
  return whole;
}

test('SIP/TCP with a segment lost (editcap): the message it cut is dropped, never spliced into the next; the rest as tshark has them', { skip: skip ?? false }, () => {
  const base = wholeRun();
  for (const frames of EDITS) {
    const { file, want } = edit(frames);
    const { records } = runParsers(file, [sip()]);
    const what = `without frame(s) ${frames.join(', ')}`;
    assert.ok(want.length < base.size, `${what}: tshark lost a message`);
    for (const r of records) {
      // Whole: the same start line and headers as that message in the capture without holes.
      const b = base.get(keyOf(r));
      assert.ok(b !== undefined, `${what}: a message the capture does not have: ${keyOf(r)}`);
      assert.equal(r.payload.start_line, b.payload.start_line, `${what}: ${keyOf(r)}`);
      assert.deepEqual(r.payload.headers, b.payload.headers, `${what}: ${keyOf(r)} headers`);
    }
    assert.deepEqual(sorted(records.map(keyOf)), sorted(want.map((w) => w.key)), what);
  }
  for (const frames of EDITS) {
    const st = runParsers(edit(frames).file, [sip()]).pipeline.reassembler!.stats;
    assert.ok(st.gapsSkipped >= 1, `without frame(s) ${frames.join(', ')}: holes skipped`);
    assert.equal(st.bytesHeld, 0);
    assert.equal(st.memoryHeld, 0);
  }
  // Frame 19 is the middle of the first 180: the 128 bytes kept from its first segment are dropped, counted.
  const st = runParsers(edit([19]).file, [sip()]).pipeline.reassembler!.stats;
  assert.equal(st.keptDropped, 1);
  assert.equal(st.keptBytesDropped, 128);
});

test('SIP/TCP: each message carries the capture time of its first byte, after a hole as well (tshark: the first of its segments)', { skip: skip ?? false }, () => {
  for (const frames of [[], ...EDITS]) {
    const e = edit(frames);
    const { records } = runParsers(e.file, [sip()]);
    const want = new Map(e.want.map((w) => [w.key, w.ts]));
    for (const r of records) assert.equal(tsKey(r.ts), want.get(keyOf(r)), `without frame(s) ${frames.join(', ') || 'none'}: ${keyOf(r)} at ${r.ts}`);
    assert.equal(records.length, want.size);
  }
});

test('heuristic: SIP/TCP on a port not configured is found from its first payload, either direction, joined mid-stream; not without the heuristic', { skip: skip ?? false }, () => {
  const base = wholeRun();
  const whole = runParsers(FILE, [sip({ ports: [5060] })]);
  assert.deepEqual(
    whole.records.map((r) => [keyOf(r), r.ts, r.payload.headers]),
    [...base.values()].map((r) => [keyOf(r), r.ts, r.payload.headers]),
    'the same records as with the port configured',
  );
  assert.equal(whole.pipeline.reassembler!.stats.probes, 1);
  assert.equal(whole.pipeline.reassembler!.stats.claimed, 1);
  // No handshake (joined mid-stream), first payload the INVITE; and joined later, first payload the callee's 100 Trying.
  for (const frames of [['1-3'], ['1-13']]) {
    const { file, want } = edit(frames);
    const { records, pipeline } = runParsers(file, [sip({ ports: [5060] })]);
    assert.deepEqual(sorted(records.map(keyOf)), sorted(want.map((w) => w.key)), `without frames ${frames}`);
    assert.ok(records.length >= 12);
    assert.equal(pipeline.reassembler!.stats.claimed, 1);
    for (const r of records) assert.deepEqual(r.payload.headers, base.get(keyOf(r))!.payload.headers);
  }
  const off = runParsers(FILE, [sip({ ports: [5060], heuristic: false })]);
  assert.equal(off.records.length, 0);
  assert.equal(off.pipeline.reassembler!.stats.probes, 0);
  assert.equal(off.pipeline.stats.streamSegments, 0);
});

test('heuristic: TCP that is not SIP is decided once per connection, at its first payload, and left alone', { skip: skip ?? false }, () => {
  // Fixtures with one to three HTTP connections each (one of them on port 1234).
  for (const name of ['PcapPlusPlus--three_http_streams.pcap', 'zeek--http-pipelined-requests.pcap', 'zeek--http-proxy.pcap', 'zeek--http-100-continue.pcap']) {
    const file = join(FIXTURES, name);
    const { records, pipeline } = runParsers(file, [sip({ ports: [5060] })]);
    const connections = new Set(tsharkRows(file, 'tcp.len > 0', ['tcp.stream']).map((r) => r[1])).size;
    const st = pipeline.reassembler!.stats;
    assert.equal(records.length, 0, name);
    assert.equal(st.claimed, 0, name);
    assert.equal(st.probes, connections, `${name}: one probe per connection with payload`);
    assert.equal(pipeline.stats.streamSegments, 0, name);
  }
});
