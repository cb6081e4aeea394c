// One capture process for bench/live-veth: Otus's af_packet_v3 driver on one
// interface, pinned, doing one of three amounts of work per frame:
//   walk    touch the frame (as the C baseline does)
//   decode  the core decoder (what every capture process does)
//   ndjson  decoder + the `otus capture` NDJSON line, written to /dev/null
// Prints "ready" once the socket is bound; on SIGTERM prints one JSON line of
// counts and the CPU time used since "ready", then exits.
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

const sink = mode === 'walk' ? walk : mode === 'decode' ? decode : ndjson;
let gcs = 0;
new PerformanceObserver((list) => void (gcs += list.getEntries().length)).observe({ entryTypes: ['gc'] });
const c0 = process.cpuUsage();
const t0 = native.threadCpuNs();
stream.start(sink);
process.stdout.write('ready\n');

process.on('SIGTERM', () => {
  const c = process.cpuUsage(c0);
  const mainThread = (native.threadCpuNs() - t0) / 1e9;
  const st = stream.stats();
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
      gcs,
      touch,
    }) + '\n',
  );
  process.exit(0);
});
