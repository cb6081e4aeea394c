// Parser benchmark: the dns, webrtc and http parsers in one process, on the
// frames of their fixture captures held in memory and replayed in a loop.
// Two figures per parser: the parser alone (handle/handleStream on the L4
// payloads: "parse rate"), and the whole in-process pipeline (decode →
// parser → JSON encode → an always-empty sink). CPU time and GC count are
// per phase, in this process (run each in a fresh one for clean numbers).
//
//   node --expose-gc dist/bench/parsers.js [--messages N] [--parser dns|webrtc|http]

import { benchArgs, int, oneOf, opt } from './cli.js';
import os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCapture } from '../src/capture-file/open.js';
import { Decoder } from '../src/decode/decoder.js';
import { DecodedPacket } from '../src/decode/packet.js';
import { defaultDecoderOptions } from '../src/decode/options.js';
import { ENCODERS } from '../src/pipeline/codec.js';
import { Pipeline } from '../src/pipeline/pipeline.js';
import { OutputRecord } from '../src/pipeline/record.js';
import type { RecordSink } from '../src/pipeline/sink.js';
import type { Parser } from '../src/plugin/types.js';
import { DnsParser } from '../plugins/parser/dns/index.js';
import { HttpParser } from '../plugins/parser/http/index.js';
import { HTTP_FILES } from '../plugins/parser/http/fixtures.js';
import { WebrtcParser } from '../plugins/parser/webrtc/index.js';

const o = benchArgs({ messages: opt(2_000_000, int), parser: opt('', oneOf('dns', 'webrtc', 'http')) });
const total = o.messages;
const only = o.parser;
const FIX = fileURLToPath(new URL('../../test/fixtures/captures/', import.meta.url));

class EmptySink implements RecordSink {
  readonly u8 = new Uint8Array(1 << 20);
  reserve(len: number): number {
    return len <= this.u8.length ? 0 : -1;
  }
  commit(): void {}
}

let gcs = 0;
new PerformanceObserver((l) => (gcs += l.getEntries().length)).observe({ entryTypes: ['gc'] });

interface Frame {
  buf: Uint8Array;
  view: DataView;
  linkType: number;
  sec: number;
  nsec: number;
}

function frames(files: string[]): Frame[] {
  const out: Frame[] = [];
  for (const f of files) {
    const r = openCapture(join(FIX, f));
    while (r.next()) {
      const fr = r.frame;
      const buf = fr.buf.slice(fr.off, fr.off + fr.caplen);
      out.push({ buf, view: new DataView(buf.buffer), linkType: fr.linkType, sec: fr.tsSec, nsec: fr.tsNsec });
    }
  }
  return out;
}

function measure(name: string, n: number, fn: () => number): void {
  (globalThis as { gc?: () => void }).gc?.();
  const g0 = gcs;
  const c0 = process.cpuUsage();
  const done = fn();
  const c = process.cpuUsage(c0);
  const sec = (c.user + c.system) / 1e6;
  console.log(`${name.padEnd(44)} ${String(done).padStart(9)} in ${sec.toFixed(2)} CPU-s: ${((done / sec) / 1e3).toFixed(0).padStart(6)} k/CPU-s, ${gcs - g0} GCs`);
  void n;
}

/** The parser alone: handle() + payload JSON on pre-decoded packets. */
function parserOnly(p: Parser, fs: Frame[], n: number, json = true): number {
  const dec = new Decoder(defaultDecoderOptions());
  const pkts: DecodedPacket[] = [];
  for (const f of fs) {
    const d = dec.decodeBytes(f.buf, f.view, 0, f.buf.length, f.buf.length, f.linkType, f.sec, f.nsec, true);
    if (d.error === 0 && !d.held && p.canHandle(d)) {
      const c = new DecodedPacket();
      Object.assign(c, d);
      c.payloadBuf = d.payloadBuf.slice();
      pkts.push(c);
    }
  }
  const rec = new OutputRecord();
  const out = new Uint8Array(1 << 20);
  let done = 0;
  for (let i = 0; done < n; i = i + 1 === pkts.length ? 0 : i + 1) {
    rec.reset();
    if (p.handle(pkts[i], rec, true, 6) && json) rec.payload!.writeJson(out, 0, out.length);
    done++;
  }
  return done;
}

/** The whole in-process pipeline over the frames in a loop (flushed between rounds, so TCP connections restart). */
function pipeline(p: Parser, fs: Frame[], n: number): number {
  const pl = new Pipeline({ decoder: new Decoder(defaultDecoderOptions()), parsers: [p], processors: [], unmatched: 'drop', encode: ENCODERS.json, sink: new EmptySink() });
  let done = 0;
  while (done < n) {
    for (const f of fs) pl.processBytes(f.buf, f.view, 0, f.buf.length, f.buf.length, f.linkType, f.sec, f.nsec, true, 6);
    pl.flush();
    done += fs.length;
  }
  return done;
}

console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
const DNS = ['PcapPlusPlus--DnsPackets.pcap', 'tcpdump--dnssec.pcap', 'tcpdump--edns-opts.pcap', 'zeek--dns-https.pcap', 'zeek--dns-long-connection.pcap'];
const WEBRTC = ['zeek--tls-webrtc-stun.pcap', 'zeek--tls-dtls1_2.pcap', 'zeek--tls-dtls13-cid.pcap', 'packetnet--ipv6_rtp.pcap'];
if (only === '' || only === 'dns') {
  const fs = frames(DNS);
  measure('dns: parse + labels (UDP messages)', total, () => parserOnly(new DnsParser({ ports: [53], tcp: true }), fs, total, false));
  measure('dns: parse + labels + JSON payload', total, () => parserOnly(new DnsParser({ ports: [53], tcp: true }), fs, total));
  measure('dns: pipeline, frames (all of them DNS)', total, () => pipeline(new DnsParser({ ports: [53], tcp: true }), fs, total));
}
if (only === '' || only === 'webrtc') {
  const fs = frames(WEBRTC);
  const cfg = { ports: [43044, 4400, 11111, 6000], port_ranges: [] as [number, number][], registered: false };
  measure('webrtc: parse + labels (datagrams)', total, () => parserOnly(new WebrtcParser(cfg), fs, total, false));
  measure('webrtc: parse + labels + JSON payload', total, () => parserOnly(new WebrtcParser(cfg), fs, total));
  measure('webrtc: pipeline, frames', total, () => pipeline(new WebrtcParser(cfg), fs, total));
}
if (only === '' || only === 'http') {
  const fs = frames(HTTP_FILES);
  const p = new HttpParser({ ports: [80, 1234], body_max: 1024, header_max: 16384 });
  const n = Math.max(fs.length, Math.floor(total / 4));
  const c0 = process.cpuUsage();
  measure('http: pipeline, frames (TCP reassembly)', n, () => pipeline(p, fs, n));
  const c = process.cpuUsage(c0);
  console.log(`http: ${p.stats.messages} messages in those frames: ${((p.stats.messages / ((c.user + c.system) / 1e6)) / 1e3).toFixed(0)} k messages/CPU-s`);
}
