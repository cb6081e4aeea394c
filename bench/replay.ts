// Replay benchmark: unmatched forwarding through the real multi-process path
// (capture processes → shared-memory ring → sender → /dev/null), with 1 and
// 2 capture processes. Prints packets per capture-process CPU-second (CPU
// measured in each capture process from its first frame to its last commit)
// and the aggregate rate, for JSON and protobuf records.
//
//   node dist/bench/replay.js [--packets N] [--flows F] [--workers 1,2] [--format json,protobuf]
//
// Input: a pcap written here: the sample's RTP frame repeated N times over F
// flows (source port and address varied), so the flow hash spreads it.

import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatSummary, runReplay } from '../src/supervisor/replay.js';

const args = process.argv.slice(2);
const opt = (k: string, d: string): string => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const packets = Number(opt('--packets', '2000000'));
const flows = Number(opt('--flows', '1000'));
const workerList = opt('--workers', '1,2').split(',').map(Number);
const formats = opt('--format', 'json,protobuf').split(',');

const sample = readFileSync(fileURLToPath(new URL('../../samples/rtp-g711a.pcap', import.meta.url)));
// First record: 24-byte global header, 16-byte record header, frame.
const caplen = sample.readUInt32LE(24 + 8);
const frame = sample.subarray(24 + 16, 24 + 16 + caplen);
const dir = mkdtempSync(join(os.tmpdir(), 'otus-bench-replay-'));
const pcap = join(dir, 'flows.pcap');
{
  const fd = openSync(pcap, 'w');
  writeSync(fd, sample.subarray(0, 24));
  const rec = Buffer.alloc(16 + caplen);
  frame.copy(rec, 16);
  const chunk: Buffer[] = [];
  for (let i = 0; i < packets; i++) {
    const r = Buffer.from(rec);
    r.writeUInt32LE(1_700_000_000 + Math.floor(i / 50_000), 0);
    r.writeUInt32LE((i * 20) % 1_000_000, 4);
    r.writeUInt32LE(caplen, 8);
    r.writeUInt32LE(caplen, 12);
    const f = i % flows;
    // Ethernet 14 + IPv4: source address low byte at 14+15, UDP source port at 14+20.
    r[16 + 14 + 15] = f & 0xff;
    r.writeUInt16BE(10_000 + (f >> 8), 16 + 14 + 20);
    r.writeUInt16BE(0, 16 + 14 + 20 + 6); // UDP checksum off (unchanged validity)
    chunk.push(r);
    if (chunk.length === 10_000) writeSync(fd, Buffer.concat(chunk.splice(0)));
  }
  if (chunk.length) writeSync(fd, Buffer.concat(chunk));
  closeSync(fd);
}
const task = join(dir, 'task.yml');
writeFileSync(task, 'task:\n  id: bench-replay\n  unmatched_policy: forward\n');

console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}, node ${process.version}`);
console.log(`input: ${packets} UDP frames (${caplen} bytes) over ${flows} flows`);
const results: Record<string, number> = {};
for (const format of formats) {
  for (const w of workerList) {
    let out = '/dev/null';
    if (format === 'protobuf') {
      writeFileSync(task, `task:\n  id: bench-replay\n  unmatched_policy: forward\n  reporter:\n    type: file\n    config: {path: /dev/null, format: protobuf}\n`);
      out = '';
    } else writeFileSync(task, 'task:\n  id: bench-replay\n  unmatched_policy: forward\n');
    const s = await runReplay({ taskFile: task, files: [pcap], workers: w, out: out || null, pluginDirs: [] });
    if (s.records !== packets) console.log(`WARNING: expected ${packets} records, got ${s.records}`);
    results[`${format}/${w}`] = s.pps_wall;
    console.log(`\n[${format}, ${w} capture process(es)]`);
    process.stdout.write(formatSummary(s));
  }
  if (workerList.includes(1) && workerList.includes(2)) {
    console.log(`${format}: 2 workers / 1 worker aggregate = ${(results[`${format}/2`] / results[`${format}/1`]).toFixed(2)}x`);
  }
}
rmSync(dir, { recursive: true, force: true });
