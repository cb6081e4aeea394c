// HEPv3 for the hep reporter's tests, decoded by an implementation that is
// not ours: sipcapture's own Node.js library, hep-js, from the npm registry
// (heplify-server's Go decoder is not served by the Go module proxy). It is
// installed on first use into OTUS_HEPJS_HOME (default
// /var/tmp/otus-hep-js), not into the project's dependencies: only these
// tests load it. hep-js decodes the chunks Homer's agents send (IPv4
// addresses, not the IPv6 chunks 0x0005/0x0006): chunks() walks a packet's
// chunks for those.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { rtpPacket, udpFrame } from './udp-frames.js';

export const HEPJS_VERSION = '1.0.22';

export interface HepDecoded {
  rcinfo: {
    protocolFamily: number;
    protocol: number;
    srcIp?: string;
    dstIp?: string;
    srcPort: number;
    dstPort: number;
    timeSeconds: number;
    timeUseconds: number;
    payloadType: number;
    captureId: number;
    capturePass?: string;
    hepNodeName?: string;
    correlation_id?: string;
  };
  payload: string;
}

export function hepJsHome(): string {
  return process.env.OTUS_HEPJS_HOME ?? '/var/tmp/otus-hep-js';
}

/** Installs hep-js once; null when it is there, else why the tests skip. */
export function hepJsSkipReason(): string | null {
  const home = hepJsHome();
  const pkg = join(home, 'node_modules/hep-js/package.json');
  const installed = (): boolean => existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version === HEPJS_VERSION;
  mkdirSync(home, { recursive: true, mode: 0o700 });
  // Code is loaded from there: only from a directory no other user can write.
  const st = statSync(home);
  if (st.uid !== process.getuid!() || (st.mode & 0o022) !== 0) return `${home} is not ours alone (owner ${st.uid}, mode ${(st.mode & 0o777).toString(8)}); set OTUS_HEPJS_HOME`;
  if (installed()) return null;
  const r = spawnSync('npm', ['install', '--prefix', home, '--no-audit', '--no-fund', '--no-package-lock', `hep-js@${HEPJS_VERSION}`], { encoding: 'utf8', timeout: 180_000 });
  if (r.error) return `npm not found to install hep-js (${r.error.message})`;
  if (r.status !== 0 || !installed()) return `npm install hep-js@${HEPJS_VERSION} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' ')}`;
  return null;
}

/** hep-js's decapsulate: one HEP packet to its fields and payload, false when it is not HEP3. */
export function hepJsDecoder(): (packet: Buffer) => HepDecoded | false {
  const req = createRequire(join(hepJsHome(), 'package.json'));
  const hep = req('hep-js') as { decapsulate(b: Buffer): HepDecoded | false };
  return (b) => hep.decapsulate(b);
}

/** Splits a TCP stream into HEP packets by their length field (as heplify-server reads it). */
export class HepStream {
  private pending: Buffer = Buffer.alloc(0);

  push(data: Buffer): Buffer[] {
    let b = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
    const out: Buffer[] = [];
    while (b.length >= 6) {
      if (b.toString('latin1', 0, 4) !== 'HEP3') throw new Error(`not HEP3 at a packet boundary: ${b.subarray(0, 8).toString('hex')}`);
      const len = b.readUInt16BE(4);
      if (b.length < len) break;
      out.push(b.subarray(0, len));
      b = b.subarray(len);
    }
    this.pending = Buffer.from(b);
    return out;
  }
}

/** A packet's chunks in order: [type, value]; throws when lengths do not add up. */
export function chunks(p: Buffer): [number, Buffer][] {
  const out: [number, Buffer][] = [];
  if (p.toString('latin1', 0, 4) !== 'HEP3' || p.readUInt16BE(4) !== p.length) throw new Error('bad HEP3 header');
  for (let o = 6; o < p.length; ) {
    const vendor = p.readUInt16BE(o);
    const type = p.readUInt16BE(o + 2);
    const len = p.readUInt16BE(o + 4);
    if (vendor !== 0 || len < 6 || o + len > p.length) throw new Error(`bad chunk at ${o}`);
    out.push([type, p.subarray(o + 6, o + len)]);
    o += len;
  }
  return out;
}

function sipMessage(start: string, a: string, b: string, callId: string, cseq: string, body = '', ctype = 'application/sdp'): string {
  return (
    `${start}\r\nVia: SIP/2.0/UDP ${a}:5060;branch=z9hG4bK-${callId}-${cseq.replace(' ', '-')}\r\nFrom: <sip:alice@${a}>;tag=a1\r\nTo: <sip:bob@${b}>;tag=b1\r\n` +
    `Call-ID: ${callId}\r\nCSeq: ${cseq}\r\n${body ? `Content-Type: ${ctype}\r\n` : ''}Content-Length: ${body.length}\r\n\r\n${body}`
  );
}

function sdp(ip: string, port: number): string {
  return `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n`;
}

/** An RTCP sender report (RFC 3550 §6.4.1) without report blocks. */
function rtcpSr(ssrc: number, packets: number): Uint8Array {
  const b = Buffer.alloc(28);
  b[0] = 0x80;
  b[1] = 200;
  b.writeUInt16BE(6, 2);
  b.writeUInt32BE(ssrc, 4);
  b.writeUInt32BE(3_900_000_000, 8);
  b.writeUInt32BE(0x80000000, 12);
  b.writeUInt32BE(160 * packets, 16);
  b.writeUInt32BE(packets, 20);
  b.writeUInt32BE(160 * packets, 24);
  return b;
}

/** An RTCP receiver report with one report block. */
function rtcpRr(ssrc: number, of: number): Uint8Array {
  const b = Buffer.alloc(32);
  b[0] = 0x81;
  b[1] = 201;
  b.writeUInt16BE(7, 2);
  b.writeUInt32BE(ssrc, 4);
  b.writeUInt32BE(of, 8);
  b[12] = 25; // fraction lost
  b.writeUIntBE(3, 13, 3); // cumulative lost
  b.writeUInt32BE(102, 16);
  b.writeUInt32BE(17, 20); // jitter
  return b;
}

/**
 * `calls` SIP calls over UDP (10.1.x.y → 10.2.x.y): INVITE and 200 with SDP,
 * ACK, three G.711 RTP packets each way, an RTCP SR and RR on the RTP
 * ports + 1, BYE and its 200. Frames, in order.
 */
export function sipCallFrames(calls: number): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let c = 0; c < calls; c++) {
    const a = `10.1.${(c >> 8) & 255}.${c & 255}`;
    const b = `10.2.${(c >> 8) & 255}.${c & 255}`;
    const id = `call-${c}@otus`;
    const pa = 20000 + 2 * (c % 10000);
    const pb = 40000 + 2 * (c % 10000);
    frames.push(udpFrame(a, b, 5060, 5060, sipMessage('INVITE sip:bob@x SIP/2.0', a, b, id, '1 INVITE', sdp(a, pa))));
    frames.push(udpFrame(b, a, 5060, 5060, sipMessage('SIP/2.0 200 OK', b, a, id, '1 INVITE', sdp(b, pb))));
    frames.push(udpFrame(a, b, 5060, 5060, sipMessage('ACK sip:bob@x SIP/2.0', a, b, id, '1 ACK')));
    for (let i = 0; i < 3; i++) {
      frames.push(udpFrame(a, b, pa, pb, rtpPacket(8, i, 160 * i, 0x1000 + c)));
      frames.push(udpFrame(b, a, pb, pa, rtpPacket(8, i, 160 * i, 0x2000 + c)));
    }
    frames.push(udpFrame(a, b, pa + 1, pb + 1, rtcpSr(0x1000 + c, 3)));
    frames.push(udpFrame(b, a, pb + 1, pa + 1, rtcpRr(0x2000 + c, 0x1000 + c)));
    frames.push(udpFrame(a, b, 5060, 5060, sipMessage('BYE sip:bob@x SIP/2.0', a, b, id, '2 BYE')));
    frames.push(udpFrame(b, a, 5060, 5060, sipMessage('SIP/2.0 200 OK', b, a, id, '2 BYE')));
  }
  return frames;
}

/** `n` SIP MESSAGE requests with distinct Call-IDs `m-0`..., about 500 bytes each. */
export function sipMessageFrames(n: number): Uint8Array[] {
  const body = 'x'.repeat(200);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    frames.push(udpFrame('10.3.0.1', '10.3.0.2', 5060, 5060, sipMessage('MESSAGE sip:bob@x SIP/2.0', '10.3.0.1', '10.3.0.2', `m-${i}`, '1 MESSAGE', body, 'text/plain')));
  }
  return frames;
}
