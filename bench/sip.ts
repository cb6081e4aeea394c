// SIP and RTP benchmark, one capture-process pipeline in this process (the
// pipeline loop a capture process runs: decode → sip/rtp/rtcp parsers →
// wire record → a sink that always has room; no ring, no sender), packets
// per CPU-second and GC counts, then the sender's cost of expanding those
// records into JSON:
//   1. a realistic call mix from one call: INVITE with SDP, 100, 180, 200
//      with SDP, ACK, BYE, 200 (7 messages), Call-IDs varied per call, SDP
//      registered in a real flow registry each call;
//   2. the RTP fast path of such a call (registry hit, labels from the slot),
//      with the sip and rtcp parsers loaded before and after rtp.
// With --tcp, the call mix goes over TCP instead: one message per segment,
// one connection per Call-ID template, through the TCP reassembler.
//
//   node --expose-gc dist/bench/sip.js [--calls N] [--rtp N] [--tcp] [--call-records]

import { benchArgs, flag, int, opt } from './cli.js';
import os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { Decoder } from '../src/decode/decoder.js';
import { defaultDecoderOptions } from '../src/decode/options.js';
import { wireEncoder } from '../src/pipeline/codec.js';
import { RecordExpander } from '../src/pipeline/expand.js';
import { LOCAL_KEYS } from '../src/pipeline/label-keys.js';
import { RtpPayloadReader } from '../plugins/parser/rtp/payload.js';
import { Pipeline } from '../src/pipeline/pipeline.js';
import type { RecordSink } from '../src/pipeline/sink.js';
import { BatchSink } from '../src/pipeline/batch-sink.js';
import { FlowRegistry } from '../src/shm/registry.js';
import { SipParser } from '../plugins/parser/sip/index.js';
import { RtpParser } from '../plugins/parser/rtp/index.js';
import { RtcpParser } from '../plugins/parser/rtcp/index.js';
import { MediaCorrelator } from '../plugins/parser/rtp/correlate.js';
import { tcpFrame } from '../test/helpers/bytes.js';
import { rtpPacket, udpFrame } from '../test/helpers/udp-frames.js';

const o = benchArgs({ calls: opt(100_000, int), rtp: opt(10_000_000, int), tcp: flag, 'call-records': flag });
const calls = o.calls;
const rtpN = o.rtp;

let gcs = 0;
new PerformanceObserver((l) => (gcs += l.getEntries().length)).observe({ entryTypes: ['gc'] });

const flows = FlowRegistry.create(`benchsip${process.pid}`, { capacity: 1 << 18 });
// --call-records: the sip parser's call records on (one sip.call record per call, at its BYE).
const sip = new SipParser({ ports: [5060], heuristic: true, track_media: process.env.NO_MEDIA ? false : true, media_ttl: 60, bye_grace: 1, max_message: 65536, calls: o['call-records'] }, flows);
const rtp = new RtpParser({ ports: [], heuristic: false, learn_nat: true, nat_ttl: 60, event_payload_types: [101], raw: false }, new MediaCorrelator(flows, true));
const rtcp = new RtcpParser({ ports: [], heuristic: false, learn_nat: false, nat_ttl: 60 }, new MediaCorrelator(flows, false));
// The capture process's sink: records batched (BatchSink) into a "ring" that always has room.
const ringMem: RecordSink = { u8: new Uint8Array(1 << 20), reserve: (n) => (n <= 1 << 20 ? 0 : -1), commit: () => undefined };
const sink = new BatchSink(ringMem, 256 * 1024);
const pl = new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers: [sip, rtp, rtcp], processors: [], unmatched: 'drop', encode: wireEncoder('json', sink.keys), sink, fastPath: true });

const A = '192.0.2.10';
const B = '198.51.100.20';
const sdp = (ip: string, port: number): string => `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n`;
function msg(start: string, cseq: string, call: string, toTag: boolean, body = ''): string {
  return `${start}\r\nVia: SIP/2.0/UDP ${A}:5060;branch=z9hG4bK-${call}\r\nMax-Forwards: 70\r\nFrom: "Alice" <sip:alice@example.com>;tag=1928301774\r\nTo: <sip:bob@example.com>${toTag ? ';tag=a6c85cf' : ''}\r\nCall-ID: ${call}\r\nCSeq: ${cseq}\r\nContact: <sip:alice@${A}:5060>\r\nUser-Agent: Otus-bench/1.0\r\nAllow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\n${body ? 'Content-Type: application/sdp\r\n' : ''}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}
// Call-ID varies per call: 64 templates, so SDP registrations hit distinct keys (media port varies too).
const TEMPLATES = 64;
const frames: Uint8Array[] = [];
for (let t = 0; t < TEMPLATES; t++) {
  const id = `${t}f81d4fae-7dec-11d0-a765-00a0c91e6bf6@${A}`;
  const pa = 10000 + 2 * t;
  const pb = 20000 + 2 * t;
  frames.push(
    udpFrame(A, B, 5060, 5060, msg('INVITE sip:bob@example.com SIP/2.0', '1 INVITE', id, false, sdp(A, pa))),
    udpFrame(B, A, 5060, 5060, msg('SIP/2.0 100 Trying', '1 INVITE', id, false)),
    udpFrame(B, A, 5060, 5060, msg('SIP/2.0 180 Ringing', '1 INVITE', id, true)),
    udpFrame(B, A, 5060, 5060, msg('SIP/2.0 200 OK', '1 INVITE', id, true, sdp(B, pb))),
    udpFrame(A, B, 5060, 5060, msg('ACK sip:bob@example.com SIP/2.0', '1 ACK', id, true)),
    udpFrame(A, B, 5060, 5060, msg('BYE sip:bob@example.com SIP/2.0', '2 BYE', id, true)),
    udpFrame(B, A, 5060, 5060, msg('SIP/2.0 200 OK', '2 BYE', id, true)),
  );
}
// Over TCP: the same messages in segments between a client port per template and 5060; each frame's
// connection direction, and where its sequence number goes (advanced as the frames repeat, so no segment is a retransmission).
const tcp = o.tcp;
const TCP_SEQ = 14 + 20 + 4;
const seqOf = new Uint32Array(2 * TEMPLATES);
const streamOf: number[] = [];
if (tcp) {
  frames.forEach((f, k) => {
    const t = Math.floor(k / 7);
    const udp = new DataView(f.buffer, f.byteOffset + 14 + 20);
    const toServer = f[14 + 12] === 192; // from A, the caller
    const payload = f.subarray(14 + 20 + 8, 14 + 20 + udp.getUint16(4));
    frames[k] = toServer ? tcpFrame(40000 + t, 5060, 0, 0x18, payload, 5060) : tcpFrame(5060, 40000 + t, 0, 0x18, payload, 5060);
    streamOf[k] = 2 * t + (toServer ? 0 : 1);
  });
}
const views = frames.map((f) => new DataView(f.buffer, f.byteOffset, f.byteLength));

/** `shift`: capture time advances one second every 2^shift packets. */
function run(label: string, n: number, frame: (i: number) => number, list: Uint8Array[], vs: DataView[], segments = false, shift = 10): void {
  const g0 = gcs;
  const r0 = pl.stats.records;
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const k = frame(i);
    const f = list[k];
    if (segments) {
      const s = streamOf[k];
      vs[k].setUint32(TCP_SEQ, seqOf[s]);
      seqOf[s] += f.length - TCP_SEQ - 16;
    }
    pl.processBytes(f, vs[k], 0, f.length, f.length, 1, 1_700_000_000 + (i >>> shift), 0, true, 6);
  }
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  console.log(`${label}: ${n} packets, ${pl.stats.records - r0} records, ${cpu.toFixed(2)} CPU-s, ${((n / cpu) / 1e3).toFixed(0)} k packets per CPU-second, ${gcs - g0} GCs`);
}

console.log(`# ${os.cpus()[0].model}, ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, node ${process.version}`);
const mix = calls * 7;
// The templates repeat every 448 messages, byte for byte: a second of capture time every 8 messages keeps a
// repeat 56 s after the last (not a retransmission: those are resent within 32 s).
run('warm-up', 50_000, (i) => i % frames.length, frames, views, tcp, 3);
run(`SIP call mix (INVITE+SDP, 100, 180, 200+SDP, ACK, BYE, 200)${tcp ? ' over TCP' : ''}`, mix, (i) => i % frames.length, frames, views, tcp, 3);
console.log(`  sip: ${JSON.stringify(sip.stats.toJSON())}`);

// RTP: one call's media, both directions, registered by a last INVITE/200 (no BYE).
const id = `rtp-bench@${A}`;
for (const f of [udpFrame(A, B, 5060, 5060, msg('INVITE sip:bob@example.com SIP/2.0', '1 INVITE', id, false, sdp(A, 40000))), udpFrame(B, A, 5060, 5060, msg('SIP/2.0 200 OK', '1 INVITE', id, true, sdp(B, 50000)))]) {
  pl.processBytes(f, new DataView(f.buffer), 0, f.length, f.length, 1, 1, 0, true, 6);
}
const media = [udpFrame(A, B, 40000, 50000, rtpPacket(8, 1, 160, 0x1234)), udpFrame(B, A, 50000, 40000, rtpPacket(8, 9, 160, 0x5678))];
const mviews = media.map((f) => new DataView(f.buffer));
run('warm-up', 200_000, (i) => i & 1, media, mviews);
run('RTP fast path (registry hit, sip+rtp+rtcp loaded)', rtpN, (i) => i & 1, media, mviews);
// The last RTP wire record, taken from the batch (its length before it).
const probe = new BatchSink(ringMem, 256 * 1024);
const probePl = new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers: [sip, rtp, rtcp], processors: [], unmatched: 'drop', encode: wireEncoder('json', probe.keys), sink: probe });
probePl.processBytes(media[1], mviews[1], 0, media[1].length, media[1].length, 1, 1_700_000_000, 0, true, 6);
const lastLen = probePl.stats.bytes;
const wireRec = probe.u8.slice(8, 8 + lastLen); // after the batch header and the record length
console.log(`  rtp: correlated ${rtp.stats.correlated}, labels ${JSON.stringify(pl.record.labels.toObject())}, wire record ${lastLen} bytes`);

// The sender's side: the last RTP wire record expanded into JSON, as the sender does per ring record.
const expander = new RecordExpander('json', [new RtpPayloadReader()]);
const out = new Uint8Array(1 << 16);
const expandN = Math.min(rtpN, 2_000_000);
let jsonLen = 0;
for (let i = 0; i < 100_000; i++) jsonLen = expander.expand(wireRec, 0, wireRec.length, LOCAL_KEYS, out, 0, out.length);
const g0 = gcs;
const c0 = process.cpuUsage();
for (let i = 0; i < expandN; i++) jsonLen = expander.expand(wireRec, 0, wireRec.length, LOCAL_KEYS, out, 0, out.length);
const c = process.cpuUsage(c0);
const cpu = (c.user + c.system) / 1e6;
console.log(`sender: RTP wire record → JSON (${jsonLen} bytes): ${((expandN / cpu) / 1e3).toFixed(0)} k records per CPU-second, ${gcs - g0} GCs`);
flows.close();
