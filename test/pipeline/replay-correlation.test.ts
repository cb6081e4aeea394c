// Calls whose SIP and RTP the flow hash puts on different capture processes:
// every RTP packet still carries its call's call-id and codec, with 1 and 2
// processes, because replay keeps capture order across them
// (src/shm/capture-clock.ts) and the flow registry is shared.
// The capture is made here: SIP INVITE/200 with SDP, then G.711 RTP both ways.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writePcap } from '../helpers/live.js';
import { rtpPacket, udpFrame } from '../helpers/udp-frames.js';
import { replay } from '../helpers/otus-replay.js';

const CALLS = 200; // many short calls: unordered, the RTP process runs ahead of the SIP one (seen: a fifth of RTP missed)
const RTP_PER_SIDE = 3;

function sdp(ip: string, port: number): string {
  return `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n`;
}

function sip(start: string, callId: string, body: string, cseq: string): Buffer {
  return Buffer.from(
    `${start}\r\nVia: SIP/2.0/UDP 10.1.0.1:5060;branch=z9hG4bK${callId}\r\nFrom: <sip:a@10.1.0.1>;tag=a${callId}\r\n` +
      `To: <sip:b@10.2.0.1>;tag=b${callId}\r\nCall-ID: ${callId}\r\nCSeq: ${cseq}\r\nContent-Type: application/sdp\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body}`,
  );
}

/** Frames of CALLS calls; each call's RTP ports differ, so the hash spreads the media flows. */
function calls(): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let c = 0; c < CALLS; c++) {
    const a = `10.1.0.${1 + c}`;
    const b = `10.2.0.${1 + c}`;
    const aPort = 20000 + 2 * c;
    const bPort = 30000 + 2 * c;
    const id = `call-${c}@otus.test`;
    frames.push(udpFrame(a, b, 5060, 5060, sip('INVITE sip:b@10.2.0.1 SIP/2.0', id, sdp(a, aPort), '1 INVITE')));
    frames.push(udpFrame(b, a, 5060, 5060, sip('SIP/2.0 200 OK', id, sdp(b, bPort), '1 INVITE')));
    for (let i = 0; i < RTP_PER_SIDE; i++) {
      frames.push(udpFrame(a, b, aPort, bPort, rtpPacket(8, i, i * 160, 0x1000 + c, new Uint8Array(160).fill(0xd5))));
      frames.push(udpFrame(b, a, bPort, aPort, rtpPacket(8, i, i * 160, 0x2000 + c, new Uint8Array(160).fill(0xd5))));
    }
  }
  return frames;
}

const dir = mkdtempSync(join(tmpdir(), 'otus-corr-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'calls.pcap');
writePcap(file, calls());

const TASK = `task:
  id: correlation
  parsers:
    - plugin: sip
    - plugin: rtp
  unmatched_policy: drop
`;

for (const workers of [1, 2]) {
  test(`every RTP packet carries its call's call-id and codec with ${workers} capture process(es)`, () => {
    const { records, stats } = replay(TASK, [file], workers);
    const rtpRecs = records.filter((r) => r.protocol === 'rtp');
    assert.equal(rtpRecs.length, CALLS * RTP_PER_SIDE * 2);
    for (const r of rtpRecs) {
      const c = Number(r.labels['rtp.ssrc']) & 0xfff;
      assert.equal(r.labels['call-id'], `call-${c}@otus.test`, `ssrc ${r.labels['rtp.ssrc']}`);
      assert.equal(r.labels.codec, 'PCMA');
    }
    assert.equal(records.filter((r) => r.protocol === 'sip').length, CALLS * 2);
    // Each offer and answer registers its RTP and RTCP endpoints; the summary reports the registry.
    assert.equal(stats.flow_registry.inserts, CALLS * 4);
    assert.equal(stats.ip_reassembly.fragments, 0);
    // The parsers' own counters, summed over capture processes.
    assert.equal(stats.parsers.rtp.counters.correlated, CALLS * RTP_PER_SIDE * 2);
    assert.equal(stats.parsers.sip.counters.sdp_bodies, CALLS * 2);
    if (workers === 2) {
      // The test means something only if the hash split calls across processes.
      const perProcess = stats.capture_processes?.map((p: { frames: number }) => p.frames) ?? [];
      assert.ok(perProcess.length !== 2 || perProcess.every((n: number) => n > 0), `frames per process: ${perProcess}`);
    }
  });
}
