// Records per sender CPU-second of the file and pcap reporters
// (docs/reporters.md, "Measured"): `otus replay` of bench/captures' calls
// (SIP, then G.711 RTP round-robin over the calls: every RTP record labelled
// with its call) into each contender, one capture process; the figure is the
// sender's records over its CPU time from the summary (process-wide, so
// zlib's thread-pool work for gzip is in it). Contenders run interleaved,
// each trial a fresh `otus replay`.
//
//   node dist/bench/file-reporters.js [--records N] [--calls C] [--trials T]
//        [--contenders file-json,file-pb,rotate-json,rotate-gzip,pcap,pcap-rotate,pcap-calls]

import { benchArgs, int, list, oneOf, opt } from './cli.js';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rtpCallsCapture } from './captures.js';

const OTUS = fileURLToPath(new URL('../src/cli/otus.js', import.meta.url));

/** Each contender's task body after `parsers`, given its output directory. */
const CONTENDERS: Record<string, (out: string) => string> = {
  'file-json': (o) => `  reporter: {type: file, config: {path: ${o}/out.ndjson}}\n`,
  'file-pb': (o) => `  reporter: {type: file, config: {path: ${o}/out.pb, format: protobuf}}\n`,
  'rotate-json': (o) => `  reporter: {type: file, config: {dir: ${o}, max_bytes: 67108864, keep: 0}}\n`,
  'rotate-gzip': (o) => `  reporter: {type: file, config: {dir: ${o}, max_bytes: 67108864, keep: 0, gzip: true, gzip_level: 1}}\n`,
  pcap: (o) => `  raw: true\n  reporter: {type: pcap, config: {path: ${o}/out.pcap}}\n`,
  'pcap-rotate': (o) => `  raw: true\n  reporter: {type: pcap, config: {dir: ${o}, max_bytes: 67108864, keep: 0}}\n`,
  'pcap-calls': (o) => `  raw: true\n  reporter: {type: pcap, config: {dir: ${o}, per_call: true, keep: 0}}\n`,
};

const names = Object.keys(CONTENDERS);
const o = benchArgs({ records: opt(1_000_000, int), calls: opt(1000, int), trials: opt(3, int), contenders: opt(names, list(oneOf(...names))) });
const { records, calls, trials } = o;

const dir = mkdtempSync(join(os.tmpdir(), 'otus-bench-files-'));
try {
  const capture = join(dir, 'calls.pcap');
  const frames = rtpCallsCapture(capture, calls, records - 2 * calls);
  console.log(`# ${frames} frames (${calls} calls), ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), load ${os.loadavg()[0]!.toFixed(1)}, node ${process.version}`);
  const results = new Map<string, number[]>(o.contenders.map((n) => [n, []]));
  for (let t = 0; t < trials; t++) {
    for (const name of o.contenders) {
      const out = join(dir, `${name}-${t}`);
      mkdirSync(out, { mode: 0o750 });
      const task = join(dir, 'task.yml');
      writeFileSync(task, `task:\n  id: bench\n  parsers: [{plugin: sip}, {plugin: rtp}]\n${CONTENDERS[name]!(out)}`);
      const stats = join(dir, 'stats.json');
      const r = spawnSync(process.execPath, [OTUS, 'replay', '--task', task, '--stats-json', stats, capture], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
      const s = JSON.parse(readFileSync(stats, 'utf8')) as { sender: { records: number; cpu_s: number }; reporter: { acked: number } | null };
      if (s.reporter !== null && s.reporter.acked !== s.sender.records) throw new Error(`${name}: ${s.reporter.acked} of ${s.sender.records} written`);
      results.get(name)!.push(s.sender.records / s.sender.cpu_s);
      rmSync(out, { recursive: true, force: true });
    }
  }
  console.log('contender        records per sender CPU-second (each trial)');
  for (const [name, v] of results) console.log(`${name.padEnd(16)} ${v.map((x) => `${(x / 1000).toFixed(0)} k`).join('  ')}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
