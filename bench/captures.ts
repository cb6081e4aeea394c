// Captures the benchmarks write for themselves (no corpus needed).

import { writePcap } from '../test/helpers/live.js';
import { rtpPacket, udpFrame } from '../test/helpers/udp-frames.js';

export const addr = (net: number, i: number): string => `10.${net}.${(i >> 8) & 255}.${i & 255}`;

function sdp(ip: string, port: number): string {
  return `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n`;
}

function sip(start: string, a: string, b: string, callId: string, body: string): string {
  return (
    `${start}\r\nVia: SIP/2.0/UDP ${a}:5060;branch=z9hG4bK${callId}\r\nFrom: <sip:a@${a}>;tag=a1\r\nTo: <sip:b@${b}>;tag=b1\r\n` +
    `Call-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  );
}

/**
 * `calls` calls' signalling (INVITE and 200, each with SDP), then `packets`
 * G.711 RTP packets round-robin over the calls and both directions, written
 * to `file` as pcap. Returns the number of frames.
 */
export function rtpCallsCapture(file: string, calls: number, packets: number): number {
  const frames: Uint8Array[] = [];
  for (let c = 0; c < calls; c++) {
    const a = addr(1, c + 1);
    const b = addr(2, c + 1);
    const id = `bench-${c}@otus`;
    frames.push(udpFrame(a, b, 5060, 5060, sip('INVITE sip:b@x SIP/2.0', a, b, id, sdp(a, 20000 + 2 * (c % 20000)))));
    frames.push(udpFrame(b, a, 5060, 5060, sip('SIP/2.0 200 OK', b, a, id, sdp(b, 40000 + 2 * (c % 10000)))));
  }
  const voice = new Uint8Array(160).fill(0xd5);
  for (let i = 0; i < packets; i++) {
    const c = (i >> 1) % calls;
    const a = addr(1, c + 1);
    const b = addr(2, c + 1);
    const pa = 20000 + 2 * (c % 20000);
    const pb = 40000 + 2 * (c % 10000);
    const seq = Math.floor(i / (2 * calls)) & 0xffff;
    frames.push((i & 1) === 0 ? udpFrame(a, b, pa, pb, rtpPacket(8, seq, seq * 160, 0x1000 + c, voice)) : udpFrame(b, a, pb, pa, rtpPacket(8, seq, seq * 160, 0x8000 + c, voice)));
  }
  // Stamped as such calls run: the signalling 1 ms apart, then every media flow a packet per 20 ms (G.711 at 20 ms ptime).
  const sipFrames = 2 * calls;
  writePcap(file, frames, (i) => (i < sipFrames ? i * 1000 : sipFrames * 1000 + ((i - sipFrames) * 20_000) / (2 * calls)));
  return frames.length;
}
