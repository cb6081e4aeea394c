// One capture process for bench/live-veth: Otus's af_packet_v3 driver on one
// interface, pinned, doing one of three amounts of work per frame:
//   walk    touch the frame (as the C baseline does)
//   decode  the core decoder (what every capture process does)
//   ndjson  decoder + the `otus capture` NDJSON line, written to /dev/null
//   task    the pipeline of a sip + rtp task, as `otus capture --task` runs it:
//           the sample's RTP flow announced first by an INVITE and a 200 with
//           SDP, then every captured packet decoded, looked up in the flow
//           registry, labelled with its call and written as a wire record
//           into batches, committed to a ring that always has room (the
//           sender's side is not this process's CPU); its counters kept in a
//           stats segment as a capture process keeps them (the pipeline's at
//           the end of each block, everything once a second)
// Prints "ready" once the socket is bound; SIGUSR2 marks the end of the
// warm-up; on SIGTERM prints one JSON line of counts and the CPU time used
// since "ready" and since the mark, then exits.
//
//   node dist/bench/live-veth-child.js IFACE MODE BLOCK_SIZE BLOCK_COUNT CPU

import { openSync, writeSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { AfPacketCapturer } from '../src/capture/afpacket.js';
import { defaultCaptureOptions, type FrameSink } from '../src/capture/capturer.js';
import { NdjsonSink } from '../src/capture-proc/sink.js';
import { Decoder } from '../src/decode/decoder.js';
import { defaultDecoderOptions } from '../src/decode/options.js';
import { native } from '../src/native.js';
import { parseTask } from '../src/config/task.js';
import { BatchSink } from '../src/pipeline/batch-sink.js';
import { instantiateTaskPlugins, pipelineForTask } from '../src/pipeline/from-task.js';
import type { RecordSink } from '../src/pipeline/sink.js';
import { createRegistry } from '../src/plugin/builtins.js';
import { FlowRegistry } from '../src/shm/registry.js';
import { captureSlot, StatsSegment, StatsWriter } from '../src/shm/stats.js';
import { CaptureStats, pipelineCounters } from '../src/capture-proc/counters.js';
import { NodeProcessStats } from '../src/util/node-stats.js';
import type { RtpParser } from '../plugins/parser/rtp/index.js';
import { udpFrame } from '../test/helpers/udp-frames.js';

const [iface = 'lo', mode = 'walk', bs = String(1 << 20), bn = '32', cpuArg = '-1'] = process.argv.slice(2);
const cpu = Number(cpuArg);
if (cpu >= 0) native.setAffinity(cpu);

const o = { ...defaultCaptureOptions(iface), blockSize: Number(bs), blockCount: Number(bn) };
const cap = new AfPacketCapturer(o);
const stream = cap.capture(0);

let touch = 0;
let bytes = 0;
const walk: FrameSink = {
  frame(buf, _view, off, caplen) {
    touch = (touch + buf[off]!) | 0;
    bytes += caplen;
  },
};
const decoder = new Decoder(defaultDecoderOptions());
const decode: FrameSink = {
  frame(buf, view, off, caplen, len, linkType, sec, nsec) {
    const p = decoder.decodeBytes(buf, view, off, caplen, len, linkType, sec, nsec, true);
    touch = (touch + p.payloadLen) | 0;
    bytes += caplen;
  },
};
const devnull = openSync('/dev/null', 'w');
const ndjson = new NdjsonSink(defaultDecoderOptions(), { write: (s: string) => (writeSync(devnull, s), true), once: () => undefined }, 0, () => {});

// task: samples/rtp-g711a.pcap's RTP goes from 10.1.6.18:2006 to 127.0.0.1:2008.
const flows = mode === 'task' ? FlowRegistry.create(`benchlive${process.pid}`, { capacity: 65536 }) : null;
const statsSeg = mode === 'task' ? StatsSegment.create(`benchlive${process.pid}`, 2) : null;
process.on('exit', () => {
  flows?.close();
  statsSeg?.close();
});
async function taskSink(): Promise<{ sink: FrameSink; labelled: () => number; sipMessages: () => number }> {
  const task = parseTask('task:\n  id: bench-live\n  parsers:\n    - plugin: sip\n    - plugin: rtp\n  unmatched_policy: forward\n', 'bench');
  const plugins = await instantiateTaskPlugins(await createRegistry([]), task, {}, 0, flows);
  const ring: RecordSink = { u8: new Uint8Array(1 << 20), reserve: (n) => (n <= 1 << 20 ? 0 : -1), commit: () => undefined };
  const batch = new BatchSink(ring, 256 * 1024);
  const pl = pipelineForTask(task, plugins, batch, 'json', { userFilter: false });
  const stats = new CaptureStats(StatsWriter.open(`benchlive${process.pid}`, captureSlot(0)), pl, batch);
  const node = new NodeProcessStats();
  const t0 = process.hrtime.bigint();
  setInterval(() => {
    const st = stream.stats();
    const c = process.cpuUsage();
    const d = {
      type: 'done' as const,
      index: 0,
      pid: process.pid,
      cpu,
      why: 'running',
      failure: null,
      counters: pipelineCounters(pl, plugins.parsers, batch),
      stream: { frames: st.frames, blocks: st.batches, kernelPackets: st.kernelPackets, kernelDrops: st.kernelDrops, freezes: st.freezes, ifDrops: st.ifDrops, outgoingSkipped: st.outgoingSkipped, interfaceWaits: 0, interfaceWaitMs: 0 },
      catchUp: null,
      cpuSec: (c.user + c.system) / 1e6,
      wallSec: Number(process.hrtime.bigint() - t0) / 1e9,
    };
    stats.publish(d, node.sample());
  }, 1000).unref();
  const sdp = (ip: string, port: number): string => `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n`;
  const sip = (start: string, body: string): string =>
    `${start}\r\nVia: SIP/2.0/UDP 10.1.6.18:5060;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: live-bench@otus\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  for (const f of [udpFrame('10.1.6.18', '127.0.0.1', 5060, 5060, sip('INVITE sip:b@x SIP/2.0', sdp('10.1.6.18', 2006))), udpFrame('127.0.0.1', '10.1.6.18', 5060, 5060, sip('SIP/2.0 200 OK', sdp('127.0.0.1', 2008)))]) {
    pl.processBytes(f, new DataView(f.buffer), 0, f.length, f.length, 1, Date.now() / 1000, 0, true, 9);
  }
  const rtp = plugins.parsers[1] as RtpParser;
  const base = rtp.stats.correlated;
  const sink: FrameSink = {
    frame(buf, view, off, caplen, len, linkType, sec, nsec) {
      pl.processBytes(buf, view, off, caplen, len, linkType, sec, nsec, true, 9);
      bytes += caplen;
    },
    batchEnd: () => {
      pl.batchEnd();
      stats.block();
    },
  };
  const sipMessages = (): number => (plugins.parsers[0]!.counters!() as { messages: number }).messages;
  const sipBase = sipMessages();
  return { sink, labelled: () => rtp.stats.correlated - base, sipMessages: () => sipMessages() - sipBase };
}
const task = mode === 'task' ? await taskSink() : null;

const sink = task !== null ? task.sink : mode === 'walk' ? walk : mode === 'decode' ? decode : ndjson;
let gcs = 0;
new PerformanceObserver((list) => void (gcs += list.getEntries().length)).observe({ entryTypes: ['gc'] });
const c0 = process.cpuUsage();
const t0 = native.threadCpuNs();
stream.start(sink);
process.stdout.write('ready\n');

let mark: { cpu: NodeJS.CpuUsage; thread: number; frames: number } | null = null;
process.on('SIGUSR2', () => {
  mark ??= { cpu: process.cpuUsage(), thread: native.threadCpuNs(), frames: stream.stats().frames };
});

process.on('SIGTERM', () => {
  const c = process.cpuUsage(c0);
  const thread = native.threadCpuNs();
  const mainThread = (thread - t0) / 1e9;
  const st = stream.stats();
  const steady = mark === null ? null : process.cpuUsage(mark.cpu);
  stream.stop();
  process.stdout.write(
    JSON.stringify({
      packets: st.frames,
      bytes,
      blocks: st.batches,
      kernel_packets: st.kernelPackets,
      kernel_drops: st.kernelDrops,
      freezes: st.freezes,
      cpu_s: (c.user + c.system) / 1e6,
      main_thread_cpu_s: mainThread,
      steady_packets: mark === null ? 0 : st.frames - mark.frames,
      steady_cpu_s: steady === null ? 0 : (steady.user + steady.system) / 1e6,
      steady_main_thread_cpu_s: mark === null ? 0 : (thread - mark.thread) / 1e9,
      gcs,
      touch,
      ...(task !== null ? { labelled: task.labelled(), sip_messages: task.sipMessages() } : {}),
    }) + '\n',
  );
  process.exit(0);
});
