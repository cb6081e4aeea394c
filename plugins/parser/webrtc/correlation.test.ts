// WebRTC media found through the flow registry: SIP offers/answers with
// WebRTC-style SDP (UDP/TLS/RTP/SAVPF, rtcp-mux) register the media
// endpoints; the webrtc parser, with no port configured, takes the STUN
// checks, DTLS handshake and SRTP/SRTCP on those endpoints and labels each
// with its call's call-id, with 1 and 2 capture processes (where a call's SIP
// and its media land on different processes). The capture is made here.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writePcap } from '../../../test/helpers/live.js';
import { udpFrame } from '../../../test/helpers/udp-frames.js';
import { replay } from '../../../test/helpers/otus-replay.js';

const CALLS = 100;

function sdp(ip: string, port: number): string {
  return (
    `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} UDP/TLS/RTP/SAVPF 111\r\n` +
    `a=rtpmap:111 opus/48000/2\r\na=rtcp-mux\r\na=ice-ufrag:abcd\r\na=setup:actpass\r\n`
  );
}

function sip(start: string, callId: string, body: string): Buffer {
  return Buffer.from(
    `${start}\r\nVia: SIP/2.0/UDP 10.1.0.1:5060;branch=z9hG4bK${callId}\r\nFrom: <sip:a@10.1.0.1>;tag=a\r\nTo: <sip:b@10.2.0.1>;tag=b\r\n` +
      `Call-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
}

const stunRequest = (c: number): Buffer => {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(0x0001, 0);
  b.writeUInt32BE(0x2112a442, 4);
  b.writeUInt32BE(c, 16);
  return b;
};
const dtlsHello = Buffer.from([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0]);
const srtp = (seq: number): Buffer => Buffer.from([0x80, 111, seq >> 8, seq & 255, 0, 0, 0, 0, 0, 0, 0, 7, 1, 2, 3, 4]);
const srtcp = Buffer.from([0x80, 200, 0, 6, 0, 0, 0, 7, ...new Array(24).fill(0)]);

function calls(): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let c = 0; c < CALLS; c++) {
    const a = `10.1.0.${1 + c}`;
    const b = `10.2.0.${1 + c}`;
    const aPort = 40000 + 2 * c;
    const bPort = 50000 + 2 * c;
    const id = `webrtc-${c}@otus.test`;
    frames.push(udpFrame(a, b, 5060, 5060, sip('INVITE sip:b@10.2.0.1 SIP/2.0', id, sdp(a, aPort))));
    frames.push(udpFrame(b, a, 5060, 5060, sip('SIP/2.0 200 OK', id, sdp(b, bPort))));
    frames.push(udpFrame(a, b, aPort, bPort, stunRequest(c)));
    frames.push(udpFrame(b, a, bPort, aPort, dtlsHello));
    frames.push(udpFrame(a, b, aPort, bPort, srtp(1)));
    frames.push(udpFrame(b, a, bPort, aPort, srtcp));
  }
  // Not signalled: no record (unmatched: drop).
  frames.push(udpFrame('10.9.9.9', '10.8.8.8', 7000, 7001, stunRequest(0)));
  return frames;
}

const dir = mkdtempSync(join(tmpdir(), 'otus-webrtc-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'webrtc-calls.pcap');
writePcap(file, calls());

const TASK = `task:
  id: webrtc-corr
  parsers:
    - plugin: sip
    - plugin: webrtc
      config: {ports: []}
  unmatched_policy: drop
`;

for (const workers of [1, 2]) {
  test(`STUN, DTLS, SRTP and SRTCP of SDP-signalled calls carry their call-id with ${workers} capture process(es)`, () => {
    const { records, stats } = replay(TASK, [file], workers);
    const w = records.filter((r) => r.protocol === 'webrtc');
    assert.equal(w.length, CALLS * 4);
    const kinds: Record<string, number> = {};
    for (const r of w) {
      kinds[r.labels['webrtc.kind']] = (kinds[r.labels['webrtc.kind']] ?? 0) + 1;
      const c = r.flow.src.startsWith('10.1.') ? Number(r.flow.src.split('.')[3]) - 1 : Number(r.flow.dst.split('.')[3]) - 1;
      assert.equal(r.labels['call-id'], `webrtc-${c}@otus.test`, JSON.stringify(r.flow));
    }
    assert.deepEqual(kinds, { stun: CALLS, dtls: CALLS, srtp: CALLS, srtcp: CALLS });
    assert.equal(stats.parsers.webrtc.records, CALLS * 4);
    // The parser's counters, summed over the capture processes.
    assert.deepEqual([stats.parsers.webrtc.counters.records, stats.parsers.webrtc.counters.registered], [CALLS * 4, CALLS * 4]);
    if (workers === 2) assert.ok(stats.capture_processes.every((p: { frames: number }) => p.frames > 0));
  });
}
