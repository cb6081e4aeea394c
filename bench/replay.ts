// Replay benchmark: a task through the real multi-process path of
// `otus replay` (capture processes → batched wire records in the shared
// send ring → sender expanding them → /dev/null), with 1 and 2 capture
// processes. Prints packets per capture-process CPU-second (CPU measured in
// each capture process from its first frame to its last commit), the
// aggregate rate, and the sender's CPU.
//
//   node dist/bench/replay.js [--mode rtp,unmatched] [--packets N] [--flows F] [--workers 1,2] [--format json,protobuf]
//
// Modes, each on a pcap written here:
//   rtp        the RTP fast path: F calls (SIP INVITE and 200 with SDP), then
//              N G.711 RTP packets over their media, both ways; task sip + rtp,
//              every RTP packet labelled from the flow registry.
//   unmatched  unmatched forwarding: the sample's RTP frame N times over F
//              flows, no parser; task unmatched_policy: forward.

import { benchArgs, int, list, oneOf, opt } from './cli.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { formatSummary, runReplay } from '../src/supervisor/replay.js';
import { addr, rtpCallsCapture } from './captures.js';
import { writePcap } from '../test/helpers/live.js';
import { rtpPacket, udpFrame } from '../test/helpers/udp-frames.js';

const o = benchArgs({
  mode: opt(['rtp', 'unmatched'], list(oneOf('rtp', 'unmatched'))),
  packets: opt(2_000_000, int),
  flows: opt(1000, int),
  workers: opt([1, 2], list(int)),
  format: opt(['json', 'protobuf'], list(oneOf('json', 'protobuf'))),
});
const { mode: modes, packets, flows, workers: workerList, format: formats } = o;

const dir = mkdtempSync(join(os.tmpdir(), 'otus-bench-replay-'));

/** N frames of one UDP flow shape over F flows (source address and port varied). */
function unmatchedCapture(file: string): number {
  const voice = new Uint8Array(160).fill(0xd5);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < packets; i++) frames.push(udpFrame(addr(3, i % flows), '10.4.0.1', 10000 + (i % flows), 30000, rtpPacket(8, i & 0xffff, i * 160, 7, voice)));
  writePcap(file, frames);
  return frames.length;
}

console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}, node ${process.version}, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
for (const mode of modes) {
  const pcap = join(dir, `${mode}.pcap`);
  const frames = mode === 'rtp' ? rtpCallsCapture(pcap, flows, packets) : unmatchedCapture(pcap);
  const expected = mode === 'rtp' ? frames : packets;
  console.log(`\n=== ${mode}: ${frames} frames (${packets} ${mode === 'rtp' ? 'RTP packets of' : 'UDP frames over'} ${flows} ${mode === 'rtp' ? 'calls' : 'flows'})`);
  const results: Record<string, number> = {};
  for (const format of formats) {
    for (const w of workerList) {
      const reporter = format === 'protobuf' ? '  reporter:\n    type: file\n    config: {path: /dev/null, format: protobuf}\n' : '';
      const body = mode === 'rtp' ? '  parsers:\n    - plugin: sip\n    - plugin: rtp\n  unmatched_policy: drop\n' : '  unmatched_policy: forward\n';
      const task = join(dir, 'task.yml');
      writeFileSync(task, `task:\n  id: bench-replay\n${body}${reporter}`);
      const s = await runReplay({ taskFile: task, files: [pcap], workers: w, out: format === 'protobuf' ? null : '/dev/null', pluginDirs: [] });
      if (s.records !== expected) console.log(`WARNING: expected ${expected} records, got ${s.records}`);
      const rtp = s.parsers.rtp?.counters as { correlated?: number } | undefined;
      if (mode === 'rtp' && rtp?.correlated !== packets) console.log(`WARNING: ${rtp?.correlated} of ${packets} RTP packets correlated`);
      results[`${format}/${w}`] = s.pps_wall;
      console.log(`\n[${mode}, ${format}, ${w} capture process(es)]`);
      process.stdout.write(formatSummary(s));
    }
    if (workerList.includes(1) && workerList.includes(2)) {
      console.log(`${mode}/${format}: 2 workers / 1 worker aggregate = ${(results[`${format}/2`] / results[`${format}/1`]).toFixed(2)}x`);
    }
  }
}
rmSync(dir, { recursive: true, force: true });
