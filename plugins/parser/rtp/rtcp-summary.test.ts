// rtp.stats' RTCP summary and direction: a generated call (SIP offer and
// answer, G.711 both ways with loss, SR/RR with LSR/DLSR on port + 1)
// replayed with 1 and 2 capture processes; each stream's final report
// carries the last report block on its SSRC and the last its SSRC sent,
// equal to tshark's rtcp.ssrc.fraction, cum_nr, jitter and
// rtcp.roundtrip-delay, and the direction its SDP side says.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replay, tsharkFields } from '../../../test/helpers/otus-replay.js';
import { writePcap } from '../../../test/helpers/live.js';
import { rtpPacket, udpFrame } from '../../../test/helpers/udp-frames.js';

const A = '10.0.0.1';
const B = '10.0.0.2';
const [PA, PB] = [40000, 50000];
const [SA, SB] = [0xa0a0a0a0, 0x0b0b0b0b];
const ID = 'rtcpjoin-1@10.0.0.1';
const T0 = 1_700_000_000;

function sip(start: string, cseq: string, toTag: boolean, body: string, id = ID): string {
  return (
    `${start}\r\nVia: SIP/2.0/UDP ${A}:5060;branch=z9hG4bK-${cseq.replace(' ', '')}\r\nFrom: <sip:alice@${A}>;tag=a1\r\nTo: <sip:bob@${B}>${toTag ? ';tag=b1' : ''}\r\n` +
    `Call-ID: ${id}\r\nCSeq: ${cseq}\r\n${body ? 'Content-Type: application/sdp\r\n' : ''}Content-Length: ${body.length}\r\n\r\n${body}`
  );
}
const sdp = (ip: string, port: number): string => `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;

/** An SR (NTP from capture time t) with one report block, or an RR when ntp is false. */
function rtcp(sender: number, t: number, block: [number, number, number, number, number, number] | null): Uint8Array {
  const sr = true;
  const n = 28 + (block ? 24 : 0);
  const b = new Uint8Array(n);
  const v = new DataView(b.buffer);
  b[0] = 0x80 | (block ? 1 : 0);
  b[1] = sr ? 200 : 201;
  v.setUint16(2, n / 4 - 1);
  v.setUint32(4, sender);
  v.setUint32(8, Math.floor(t) + 2208988800);
  v.setUint32(12, Math.floor((t % 1) * 2 ** 32));
  if (block) {
    const [src, frac, cum, jit, lsr, dlsr] = block;
    v.setUint32(28, src);
    b[32] = frac;
    b[33] = (cum >> 16) & 255;
    b[34] = (cum >> 8) & 255;
    b[35] = cum & 255;
    v.setUint32(36, 1000);
    v.setUint32(40, jit);
    v.setUint32(44, lsr);
    v.setUint32(48, dlsr);
  }
  return b;
}
const mid = (t: number): number => ((((Math.floor(t) + 2208988800) & 0xffff) << 16) | (Math.floor((t % 1) * 2 ** 32) >>> 16)) >>> 0;

function capture(): string {
  const frames: [number, Uint8Array][] = [];
  frames.push([0, udpFrame(A, B, 5060, 5060, sip(`INVITE sip:bob@${B} SIP/2.0`, '1 INVITE', false, sdp(A, PA)))]);
  frames.push([0.5, udpFrame(B, A, 5060, 5060, sip('SIP/2.0 200 OK', '1 INVITE', true, sdp(B, PB)))]);
  for (let k = 0; k < 1000; k++) {
    const t = 1 + k * 0.02;
    if (k % 50 !== 7) frames.push([t, udpFrame(A, B, PA, PB, rtpPacket(0, k, k * 160, SA))]);
    if (k % 100 !== 3) frames.push([t + 0.005, udpFrame(B, A, PB, PA, rtpPacket(0, k, k * 160, SB))]);
  }
  // A's SR, B's SR naming it (50 ms held: round trip 0.1 - 0.05 s), then A's naming B's; all well before the media ends.
  const s1 = 5.0101;
  const s2 = 5.1103;
  const s3 = 9.2207;
  frames.push([s1, udpFrame(A, B, PA + 1, PB + 1, rtcp(SA, T0 + s1, [SB, 5, 3, 40, 0, 0]))]);
  frames.push([s2, udpFrame(B, A, PB + 1, PA + 1, rtcp(SB, T0 + s2, [SA, 7, 8, 57, mid(T0 + s1), 3277]))]);
  frames.push([s3, udpFrame(A, B, PA + 1, PB + 1, rtcp(SA, T0 + s3, [SB, 12, 9, 33, mid(T0 + s2), 65536]))]);
  // A second call whose media goes on past the first's end (capture time for the rtp parser's scans).
  const ID2 = 'rtcpjoin-2@10.0.0.1';
  frames.push([19, udpFrame(A, B, 5060, 5060, sip(`INVITE sip:bob@${B} SIP/2.0`, '1 INVITE', false, sdp(A, PA + 2000), ID2))]);
  frames.push([19.5, udpFrame(B, A, 5060, 5060, sip('SIP/2.0 200 OK', '1 INVITE', true, sdp(B, PB + 2000), ID2))]);
  for (let k = 0; k < 2500; k++) frames.push([20 + k * 0.02, udpFrame(A, B, PA + 2000, PB + 2000, rtpPacket(0, k, k * 160, 0xc0c0c0c0))]);
  // The caller hangs up as the media ends; an OPTIONS 40 s later, after the BYE's grace (5 s) and more than 1024 frames (a replay's drain), before the streams' idle (60 s).
  frames.push([21.1, udpFrame(A, B, 5060, 5060, sip(`BYE sip:bob@${B} SIP/2.0`, '2 BYE', true, ''))]);
  frames.push([61.1, udpFrame(A, B, 5060, 5060, sip(`OPTIONS sip:bob@${B} SIP/2.0`, '3 OPTIONS', false, ''))]);
  frames.sort((x, y) => x[0] - y[0]);
  const file = join(mkdtempSync(join(tmpdir(), 'otus-rtcpjoin-')), 'call.pcap');
  writePcap(file, frames.map((f) => f[1]), (i) => Math.round((T0 + frames[i][0]) * 1e6));
  return file;
}

const TASK = `task:
  id: rtcp-join
  parsers:
    - plugin: sip
    - plugin: rtp
      config: {stats: {interval: 10, per_packet: false, idle: 60}}
    - plugin: rtcp
  unmatched_policy: drop
`;

test('rtp.stats: the RTCP summary equals tshark\'s fields, with 1 and 2 capture processes; direction from the SDP sides', () => {
  const file = capture();
  const rows = tsharkFields(file, 'rtcp', ['rtcp.senderssrc', 'rtcp.ssrc.identifier', 'rtcp.ssrc.fraction', 'rtcp.ssrc.cum_nr', 'rtcp.ssrc.jitter', 'rtcp.roundtrip-delay'], [
    '-d', `udp.port==${PA + 1},rtcp`, '-d', `udp.port==${PB + 1},rtcp`, '-o', 'rtcp.show_roundtrip_calculation:TRUE',
  ]);
  assert.equal(rows.length, 3);
  // The last block about each SSRC, and the last each SSRC sent.
  const about = new Map<number, unknown>();
  const by = new Map<number, unknown>();
  for (const [sender, src, frac, cum, jit, rtt] of rows) {
    const b = { fraction_lost: Number(frac), cumulative_lost: Number(cum), jitter: Number(jit), jitter_ms: Number(jit) / 8, rtt_ms: rtt === '' ? null : Number(rtt) };
    about.set(Number(src), { ssrc: Number(sender), ...b });
    by.set(Number(sender), { ssrc: Number(src), ...b });
  }
  assert.deepEqual(rows.map((r) => r[5]), ['', '50', '3110'], 'tshark computed both round trips');
  const ends: string[] = [];
  for (const workers of [1, 2]) {
    const { records, stats } = replay(TASK, [file], workers);
    const end = records.filter((r) => r.protocol === 'rtp.stats' && r.payload.report === 'end' && r.labels['call-id'] === ID).sort((x, y) => Number(x.labels['rtp.ssrc']) - Number(y.labels['rtp.ssrc']));
    assert.equal(end.length, 2, `${workers} worker(s)`);
    for (const r of end) {
      const ssrc = Number(r.labels['rtp.ssrc']);
      // tshark prints the round trip in whole milliseconds (truncated): ours to within 1 ms of it.
      const strip = (b: Record<string, unknown> | null, want: { rtt_ms: number | null } | undefined): unknown =>
        b === null ? null : { ...b, at: undefined, rtt_ms: b.rtt_ms === null || want?.rtt_ms == null || Math.abs(Number(b.rtt_ms) - want.rtt_ms) >= 1 ? b.rtt_ms : want.rtt_ms };
      assert.deepEqual(JSON.parse(JSON.stringify(strip(r.payload.rtcp.receiver, about.get(ssrc) as { rtt_ms: number | null }))), about.get(ssrc), `receiver of ${ssrc}, ${workers} worker(s)`);
      assert.deepEqual(JSON.parse(JSON.stringify(strip(r.payload.rtcp.sender, by.get(ssrc) as { rtt_ms: number | null }))), by.get(ssrc), `sender of ${ssrc}, ${workers} worker(s)`);
      assert.equal(r.payload.direction, ssrc === SA ? 'caller_to_callee' : 'callee_to_caller');
      assert.equal(r.labels['call-id'], ID);
    }
    ends.push(JSON.stringify(end.map((r) => r.payload)));
    // per_packet off: every media packet (980 + 990 of the first call, 2500 of the second) went into its stream's reports; none is a drop.
    assert.equal(stats.summarised, 4470, `${workers} worker(s)`);
    assert.equal(stats.parsers.rtp.summarised, 4470);
    assert.equal(stats.drops.parser_no_output, 0);
    if (workers === 1) {
      // The streams ended with their call: their final reports come before the OPTIONS, not at the end of the input.
      const order = records
        .map((r) => (r.protocol === 'sip' ? r.labels['sip.method'] : r.protocol === 'rtp.stats' && r.labels['call-id'] === ID ? r.payload.report : null))
        .filter((x) => x === 'OPTIONS' || x === 'end');
      assert.deepEqual(order, ['end', 'end', 'OPTIONS']);
      assert.equal(stats.parsers.rtp.counters.stats.endedByCall, 2);
    }
  }
  assert.equal(ends[0], ends[1], 'the same end reports from 1 and 2 capture processes');
});
