// Decode benchmark: a capture loaded into memory, decoded in a loop.
// Prints packets per CPU-second, ns per packet and GC counts in steady state.
//
//   npm run bench:decode [-- [FILE] [--packets N]]
//
// Default input: G.711 A-law RTP (PT 8) with a few RTCP packets, from rtpproxy's tests.

import { badArgument, benchArgs, int, opt } from './cli.js';
import os from 'node:os';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { PageAhead } from '../src/capture/page-ahead.js';
import { openCapture } from '../src/capture-file/open.js';
import { Decoder } from '../src/decode/decoder.js';
import { defaultDecoderOptions } from '../src/decode/options.js';

const o = benchArgs({ packets: opt(20_000_000, int) }, { positionals: 'FILE' });
const total = o.packets;
const file = o._[0] ?? fileURLToPath(new URL('../../samples/rtp-g711a.pcap', import.meta.url));

// Frame table: offsets into the one file buffer, as a ring block would give.
const reader = openCapture(file);
const offs: number[] = [];
const lens: number[] = [];
let linkType = 1;
while (reader.next()) {
  offs.push(reader.frame.off);
  lens.push(reader.frame.caplen);
  linkType = reader.frame.linkType;
}
const buf = reader.frame.buf;
const view = reader.frame.view;
const off = Int32Array.from(offs);
const len = Int32Array.from(lens);
const n = off.length;
if (n === 0) throw badArgument(`${file}: no frames`);

const opts = defaultDecoderOptions();
const decoder = new Decoder(opts);
let sink = 0;

// The ring walk's reading ahead (src/capture/page-ahead.ts): this loop stands in for that walk.
const ahead = new PageAhead();

function run(count: number): void {
  for (let i = 0, j = 0; i < count; i++) {
    ahead.at(buf, off[j], buf.length);
    const p = decoder.decodeBytes(buf, view, off[j], len[j], len[j], linkType, 1_700_000_000, i, true);
    sink = (sink + p.payloadLen) | 0; // int32: a growing double would allocate
    if (++j === n) j = 0;
  }
}

let minor = 0;
let major = 0;
const obs = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
    else major++;
  }
});

run(2_000_000); // warm up: let the JIT settle
obs.observe({ entryTypes: ['gc'] });
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
run(total);
const wallNs = Number(process.hrtime.bigint() - t0);
const c = process.cpuUsage(c0);
await new Promise((r) => setTimeout(r, 100)); // the GC observer delivers asynchronously
obs.disconnect();

const cpuSec = (c.user + c.system) / 1e6;
console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}, node ${process.version}`);
console.log(`input: ${file} (${n} frames, link type ${linkType}), decoded ${total} packets in a loop`);
console.log(`packets per CPU-second: ${(total / cpuSec / 1e6).toFixed(2)} M`);
console.log(`ns per packet (wall): ${(wallNs / total).toFixed(1)}`);
console.log(`GC during measurement: minor ${minor}, major ${major}`);
console.log(`decode errors: ${decoder.stats.errors.reduce((a, b) => a + b, 0)} (checksum ${sink}, ${ahead.sum})`);
