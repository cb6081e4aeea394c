// The call generator: one SIP + RTP call (a template) scaled to N concurrent,
// interleaved calls, so that every benchmark is measured on the same
// realistic input. Each copy gets its own addresses, media ports, Call-ID and
// SSRCs, rewritten in the frames and in the SIP text (Via, Contact, SDP
// c=/o=/m= lines, Content-Length fixed up); copy i starts `rampUs` after copy
// i - 1, so with a ramp shorter than the call every call is active at once.
//
//   node dist/bench/gen-calls.js --calls N [--template FILE] [--rtp P] [--ramp-us U] --out FILE
//
// Template: the frames of a pcap of one call over IPv4/UDP (other frames are
// left out); by default callTemplate(), a call written here: INVITE with SDP,
// 100, 180, 200 with SDP, ACK, P G.711 packets each way at 20 ms, BYE, 200.

import { badArgument, benchArgs, file, int, num, opt, text, uint } from './cli.js';
import { closeSync, openSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openCapture } from '../src/capture-file/open.js';
import { rtpPacket, udpFrame } from '../test/helpers/udp-frames.js';

/** One frame of a template, `us` µs after the call's first. */
export interface TemplateFrame {
  us: number;
  frame: Uint8Array;
}

const SIP_PORT = 5060;

function sipMessage(start: string, from: string, to: string, callId: string, cseq: string, body = ''): string {
  // The INVITE opens the dialogue: its To has no tag yet.
  const toTag = start.startsWith('INVITE') ? '' : ';tag=b1';
  return (
    `${start}\r\nVia: SIP/2.0/UDP ${from}:5060;branch=z9hG4bK-${cseq.replace(' ', '-')}\r\nFrom: <sip:alice@${from}>;tag=a1\r\nTo: <sip:bob@${to}>${toTag}\r\n` +
    `Call-ID: ${callId}\r\nCSeq: ${cseq}\r\nContact: <sip:alice@${from}:5060>\r\nMax-Forwards: 70\r\n` +
    (body ? `Content-Type: application/sdp\r\n` : '') +
    `Content-Length: ${body.length}\r\n\r\n${body}`
  );
}

function sdpBody(ip: string, port: number): string {
  return `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n`;
}

/** One call between 192.168.1.10 and 192.168.2.20: its SIP dialogue and `rtp` G.711 packets each way, 20 ms apart. */
export function callTemplate(rtp = 50): TemplateFrame[] {
  const a = '192.168.1.10';
  const b = '192.168.2.20';
  const id = 'tmpl-3f1c9a@192.168.1.10';
  const [pa, pb] = [16384, 20000];
  const out: TemplateFrame[] = [];
  const sip = (us: number, fromA: boolean, text: string): void => {
    out.push({ us, frame: fromA ? udpFrame(a, b, SIP_PORT, SIP_PORT, text) : udpFrame(b, a, SIP_PORT, SIP_PORT, text) });
  };
  sip(0, true, sipMessage('INVITE sip:bob@192.168.2.20 SIP/2.0', a, b, id, '1 INVITE', sdpBody(a, pa)));
  sip(2_000, false, sipMessage('SIP/2.0 100 Trying', a, b, id, '1 INVITE'));
  sip(50_000, false, sipMessage('SIP/2.0 180 Ringing', a, b, id, '1 INVITE'));
  sip(1_000_000, false, sipMessage('SIP/2.0 200 OK', a, b, id, '1 INVITE', sdpBody(b, pb)));
  sip(1_002_000, true, sipMessage('ACK sip:bob@192.168.2.20 SIP/2.0', a, b, id, '1 ACK'));
  const voice = new Uint8Array(160).fill(0xd5);
  const t0 = 1_010_000;
  for (let k = 0; k < rtp; k++) {
    out.push({ us: t0 + k * 20_000, frame: udpFrame(a, b, pa, pb, rtpPacket(8, k, k * 160, 0x11223344, voice, k === 0)) });
    out.push({ us: t0 + k * 20_000 + 7_000, frame: udpFrame(b, a, pb, pa, rtpPacket(8, 1000 + k, 5000 + k * 160, 0x55667788, voice, k === 0)) });
  }
  const end = t0 + rtp * 20_000;
  sip(end, true, sipMessage('BYE sip:bob@192.168.2.20 SIP/2.0', a, b, id, '2 BYE'));
  sip(end + 3_000, false, sipMessage('SIP/2.0 200 OK', a, b, id, '2 BYE'));
  return out;
}

/** The IPv4/UDP frames of a one-call capture, timed from its first frame. */
export function readTemplate(file: string): TemplateFrame[] {
  const r = openCapture(file);
  const out: TemplateFrame[] = [];
  let first = -1;
  while (r.next()) {
    const f = r.frame;
    const b = f.buf.subarray(f.off, f.off + f.caplen);
    if (f.linkType !== 1 || b.length < 42 || b[12] !== 0x08 || b[13] !== 0x00 || b[23] !== 17 || (b[14]! & 0x0f) !== 5) continue;
    const us = f.tsSec * 1e6 + Math.floor(f.tsNsec / 1000);
    if (first < 0) first = us;
    out.push({ us: us - first, frame: b.slice() });
  }
  return out;
}

const dotted = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/**
 * The template's parts that copies rewrite: its IPv4 addresses (in order of
 * first appearance), its media ports (every UDP port but the SIP ones, paired
 * RTP/RTCP as even/odd), its Call-IDs.
 */
interface Plan {
  addrs: Map<number, number>;
  mediaPorts: Map<number, number>;
  callIds: string[];
}

function plan(t: TemplateFrame[]): Plan {
  const addrs = new Map<number, number>();
  const mediaPorts = new Map<number, number>();
  const callIds = new Set<string>();
  for (const { frame: f } of t) {
    const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
    for (const o of [26, 30]) if (!addrs.has(v.getUint32(o))) addrs.set(v.getUint32(o), addrs.size);
    for (const o of [34, 36]) {
      const p = v.getUint16(o) & ~1;
      if (!isSipPort(v.getUint16(o)) && !mediaPorts.has(p)) mediaPorts.set(p, mediaPorts.size);
    }
    if (isSipPort(v.getUint16(34)) || isSipPort(v.getUint16(36))) {
      const m = /^(?:Call-ID|i)\s*:\s*(\S+)/im.exec(Buffer.from(f.subarray(42)).toString('latin1'));
      if (m) callIds.add(m[1]!);
    }
  }
  if (addrs.size > 16) throw new Error(`template: ${addrs.size} IPv4 addresses, at most 16`);
  return { addrs, mediaPorts, callIds: [...callIds] };
}

const isSipPort = (p: number): boolean => p === 5060 || p === 5061;

/** Address k of the template in copy i: 10.(16k + n / 65536).(n / 256).(n) with n = i + 1, distinct for up to 1 M copies. */
const copyAddr = (k: number, i: number): number => ((10 << 24) | (((k << 4) + (((i + 1) >>> 16) & 15)) << 16) | ((i + 1) & 0xffff)) >>> 0;

/** Media port of slot j in copy i: even, 10000..59999, distinct per copy within 25000 / (slots) copies. */
function copyPort(p: Plan, port: number, i: number): number {
  const j = p.mediaPorts.get(port & ~1);
  if (j === undefined) return port;
  return 10000 + ((2 * (i * p.mediaPorts.size + j)) % 50000) + (port & 1);
}

/** Frame `f` of the template as copy `i` has it. */
function rewrite(p: Plan, f: Uint8Array, i: number): Uint8Array {
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const sport = v.getUint16(34);
  const dport = v.getUint16(36);
  let payload = f.subarray(42, 14 + v.getUint16(16));
  if (isSipPort(sport) || isSipPort(dport)) {
    let text = Buffer.from(payload).toString('latin1');
    // Call-IDs first: one may hold an address the next step rewrites.
    for (const id of p.callIds) text = text.split(id).join(`c${i}-${id}`);
    text = text.replace(/\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b/g, (s, a, b, c, d) => {
      const k = p.addrs.get((((+a << 24) | (+b << 16) | (+c << 8) | +d) >>> 0));
      return k === undefined ? s : dotted(copyAddr(k, i));
    });
    text = text.replace(/^(m=\w+ )(\d+)/gm, (_s, m, port) => `${m}${copyPort(p, +port, i)}`);
    text = text.replace(/^(a=rtcp:)(\d+)/gm, (_s, m, port) => `${m}${copyPort(p, +port, i)}`);
    const split = text.indexOf('\r\n\r\n');
    if (split >= 0) {
      const bodyLen = Buffer.byteLength(text.slice(split + 4), 'latin1');
      text = text.replace(/^((?:Content-Length|l)\s*:\s*)\d+/im, (_s, h) => `${h}${bodyLen}`);
    }
    payload = Buffer.from(text, 'latin1');
  } else if (payload.length >= 12 && payload[0]! >> 6 === 2) {
    payload = payload.slice();
    const pv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    // RTP's SSRC at 8; RTCP (PT 200-204) has its sender's SSRC at 4.
    const at = payload[1]! >= 200 && payload[1]! <= 204 ? 4 : 8;
    pv.setUint32(at, (pv.getUint32(at) + Math.imul(i + 1, 0x9e3779b1)) >>> 0);
  }
  const out = new Uint8Array(42 + payload.length);
  out.set(f.subarray(0, 42));
  out.set(payload, 42);
  const o = new DataView(out.buffer);
  o.setUint16(16, 28 + payload.length);
  for (const at of [26, 30]) {
    const k = p.addrs.get(v.getUint32(at));
    if (k !== undefined) o.setUint32(at, copyAddr(k, i));
  }
  o.setUint16(34, isSipPort(sport) ? sport : copyPort(p, sport, i));
  o.setUint16(36, isSipPort(dport) ? dport : copyPort(p, dport, i));
  o.setUint16(38, 8 + payload.length);
  o.setUint16(40, 0); // UDP checksum: none
  o.setUint16(24, 0);
  let sum = 0;
  for (let b = 14; b < 34; b += 2) sum += o.getUint16(b);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  o.setUint16(24, ~sum & 0xffff);
  return out;
}

export interface GenerateOptions {
  /** Copies of the template. */
  calls: number;
  /** Start of copy i is i × rampUs µs (default 100). */
  rampUs?: number;
  template?: TemplateFrame[];
}

export interface Generated {
  frames: number;
  calls: number;
  /** µs from the first frame to the last. */
  spanUs: number;
  callIds: string[];
}

/**
 * Writes `o.calls` copies of the template, interleaved in time order, to
 * `file` as a microsecond pcap (LINKTYPE_ETHERNET), streaming (a 100 K-call
 * file is not held in memory as frames, only as an index).
 */
export function generateCalls(file: string, o: GenerateOptions): Generated {
  const t = o.template ?? callTemplate();
  if (t.length === 0) throw new Error('template: no IPv4/UDP frames');
  const p = plan(t);
  const ramp = o.rampUs ?? 100;
  const n = o.calls;
  // Every (copy, frame) pair ordered by time: copy-major keys sorted by start time plus the template offset.
  const order = new Uint32Array(n * t.length);
  const at = new Float64Array(n * t.length);
  for (let i = 0, k = 0; i < n; i++) for (let j = 0; j < t.length; j++, k++) {
    order[k] = k;
    at[k] = i * ramp + t[j]!.us;
  }
  order.sort((x, y) => at[x]! - at[y]! || x - y);
  const fd = openSync(file, 'w');
  const buf = Buffer.alloc(1 << 20);
  let len = 0;
  const flush = (): void => {
    writeSync(fd, buf, 0, len);
    len = 0;
  };
  buf.writeUInt32LE(0xa1b2c3d4, 0);
  buf.writeUInt16LE(2, 4);
  buf.writeUInt16LE(4, 6);
  buf.writeUInt32LE(0, 8);
  buf.writeUInt32LE(0, 12);
  buf.writeUInt32LE(262144, 16);
  buf.writeUInt32LE(1, 20);
  len = 24;
  const base = 1_700_000_000;
  try {
    for (let k = 0; k < order.length; k++) {
      const key = order[k]!;
      const f = rewrite(p, t[key % t.length]!.frame, Math.floor(key / t.length));
      if (len + 16 + f.length > buf.length) flush();
      const us = Math.round(at[key]!);
      buf.writeUInt32LE(base + Math.floor(us / 1e6), len);
      buf.writeUInt32LE(us % 1e6, len + 4);
      buf.writeUInt32LE(f.length, len + 8);
      buf.writeUInt32LE(f.length, len + 12);
      buf.set(f, len + 16);
      len += 16 + f.length;
    }
    flush();
  } finally {
    closeSync(fd);
  }
  const span = at[order[order.length - 1]!]! - at[order[0]!]!;
  return { frames: order.length, calls: n, spanUs: span, callIds: p.callIds };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const o = benchArgs({ calls: opt(1000, int), template: opt('', file), rtp: opt(50, uint), 'ramp-us': opt(null, num), out: opt('', text) });
  const out = o.out;
  if (!out) throw badArgument('--out FILE is required (usage: node dist/bench/gen-calls.js --calls N [--template FILE] [--rtp P] [--ramp-us U] --out FILE)');
  const g = generateCalls(out, {
    calls: o.calls,
    rampUs: o['ramp-us'] ?? undefined,
    template: o.template ? readTemplate(o.template) : callTemplate(o.rtp),
  });
  console.log(`${out}: ${g.calls} calls, ${g.frames} frames over ${(g.spanUs / 1e6).toFixed(2)} s`);
}
