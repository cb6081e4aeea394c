// Capture → sender latency of a live task in steady state: `otus daemon`
// with one sip + rtp task (1 capture process) on a veth, tcpreplay of the
// live calls at --pps, first --warmup seconds unmeasured, then --seconds
// measured: p50 and p99 come from the difference of the daemon's
// otus_processing_latency_seconds histogram (kernel timestamp of a record's
// packet to the sender reading its batch) before and after the measured
// traffic. A freshly started capture process runs its first few thousand
// frames in V8's interpreter (the call set-ups at the start are SIP, ~100 µs
// a frame); at 100 k packets/s that backlog alone was the p99 of a 5 s run.
//
//   node dist/bench/latency.js [--driver af_packet_v3|xdp] [--pps 100000] [--warmup 3] [--seconds 5]
//       [--pcap FILE] [--otus CLI.js] [--json]
//
// Without --pcap, the call generator's 200 calls of 200 RTP packets each way.
// af_packet_v3 runs with its default block retire timeout (10 ms), which a
// task cannot change. Needs root, tcpreplay.

import { benchArgs, file, flag, int, oneOf, opt, positive } from './cli.js';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeVethHost } from '../test/helpers/live.js';
import { callTemplate, generateCalls } from './gen-calls.js';
import { connectDaemon, freePort } from './proc.js';

const args = process.argv.slice(2);
const o = benchArgs({
  driver: opt('af_packet_v3', oneOf('af_packet_v3', 'xdp')),
  pps: opt(100_000, positive),
  warmup: opt(3, int),
  seconds: opt(5, int),
  pcap: opt('', file),
  otus: opt(fileURLToPath(new URL('../src/cli/otus.js', import.meta.url)), file),
  json: flag,
});
const { driver: DRIVER, pps: PPS, warmup: WARMUP, seconds: SECONDS, pcap: PCAP, otus: OTUS } = o;

const q0 = (b: Map<number, number>): number => b.get(Infinity) ?? 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The histogram's cumulative buckets: upper edge in seconds (Infinity for +Inf) → count. */
function buckets(text: string): Map<number, number> {
  const m = new Map<number, number>();
  for (const line of text.split('\n')) {
    const b = /^otus_processing_latency_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)/.exec(line);
    if (b) m.set(b[1] === '+Inf' ? Infinity : Number(b[1]), (m.get(b[1] === '+Inf' ? Infinity : Number(b[1])) ?? 0) + Number(b[2]));
  }
  return m;
}

/** Each child's CPU seconds (otus_process_cpu_seconds_total), by role: sender, capture. */
function cpuByRole(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const c = /^otus_process_cpu_seconds_total\{([^}]*)\} (\S+)/.exec(line);
    if (!c) continue;
    const role = /sender/.test(c[1]!) ? 'sender' : /capture/.test(c[1]!) ? 'capture' : null;
    if (role !== null) m.set(role, (m.get(role) ?? 0) + Number(c[2]));
  }
  return m;
}

export interface LatencyFigures {
  driver: string;
  pps: number;
  records: number;
  p50_us: number | null;
  p99_us: number | null;
  /** The upper edge of the highest bucket with a record in it. */
  max_bucket_us: number | null;
  warmup_records: number;
  /** CPU seconds per million records measured, of the sender and of the capture process. */
  sender_cpu_s_per_m: number | null;
  capture_cpu_s_per_m: number | null;
}

/** Quantiles of the records counted between two scrapes. */
export function quantiles(before: Map<number, number>, after: Map<number, number>): { records: number; p50: number | null; p99: number | null; maxEdge: number | null } {
  const edges = [...after.keys()].sort((a, b) => a - b);
  const cum = edges.map((e) => (after.get(e) ?? 0) - (before.get(e) ?? 0));
  const n = cum.at(-1) ?? 0;
  const q = (f: number): number | null => {
    if (n === 0) return null;
    const i = cum.findIndex((c) => c >= f * n);
    return edges[i]! * 1e6;
  };
  let maxEdge: number | null = null;
  for (let i = 0; i < edges.length; i++) if (cum[i]! > (i > 0 ? cum[i - 1]! : 0)) maxEdge = edges[i]! * 1e6;
  return { records: n, p50: q(0.5), p99: q(0.99), maxEdge };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench/latency: needs root (AF_PACKET, ip netns)');
    process.exit(2);
  }
  const dir = mkdtempSync(join(os.tmpdir(), 'otus-bench-latency-'));
  const veth = makeVethHost();
  let d: ReturnType<typeof spawn> | null = null;
  try {
    console.log(`# bench/latency: ${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}, load ${os.loadavg()[0]!.toFixed(1)}; command: node dist/bench/latency.js ${args.join(' ')}`.trimEnd());
    const pcap = PCAP || join(dir, 'calls.pcap');
    if (!PCAP) generateCalls(pcap, { calls: 200, template: callTemplate(200) });
    const socket = join(dir, 'otus.sock');
    const port = await freePort();
    writeFileSync(join(dir, 'otus.yml'), `otus:\n  log:\n    level: warn\n  control:\n    socket: ${socket}\n  metrics:\n    listen: 127.0.0.1:${port}\n`);
    d = spawn(process.execPath, [OTUS, 'daemon', '--config', join(dir, 'otus.yml')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const c = await connectDaemon(socket);
    const capture = { interface: veth.capIf, driver: DRIVER, workers: 1 };
    await c.call('task.create', { task: { id: 'lat', capture, parsers: [{ plugin: 'sip' }, { plugin: 'rtp' }], reporter: { type: 'console' }, unmatched_policy: 'drop' } });
    const running = async (): Promise<boolean> => ((await c.call('task.status', { id: 'lat' })) as { processes: { state: string }[] }).processes.every((p) => p.state === 'running');
    for (let i = 0; i < 400 && !(await running()); i++) await sleep(50);
    let cpu = new Map<string, number>();
    const scrape = async (): Promise<Map<number, number>> => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      cpu = cpuByRole(text);
      return buckets(text);
    };
    // Until the sender has published every record read (its slot is copied at heartbeat rate).
    const settled = async (): Promise<Map<number, number>> => {
      let last = -1;
      for (let still = 0; ; ) {
        const b = await scrape();
        const n = b.get(Infinity) ?? 0;
        still = n === last ? still + 1 : 0;
        if (still >= 8) return b;
        last = n;
        await sleep(250);
      }
    };
    const replay = (seconds: number): void => {
      const r = spawnSync('ip', ['netns', 'exec', veth.ns, 'tcpreplay', '-q', '-i', veth.sendIf, `--pps=${PPS}`, '--loop=0', `--duration=${seconds}`, pcap], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`tcpreplay: ${r.stderr}`);
    };
    replay(WARMUP);
    const before = await settled();
    const cpu0 = cpu;
    replay(SECONDS);
    const after = await settled();
    const perM = (role: string): number | null => (cpu.has(role) && q0(after) > 0 ? ((cpu.get(role)! - (cpu0.get(role) ?? 0)) * 1e6) / (q0(after) - q0(before)) : null);
    c.close();
    const q = quantiles(before, after);
    const f: LatencyFigures = { driver: DRIVER, pps: PPS, records: q.records, p50_us: q.p50, p99_us: q.p99, max_bucket_us: q.maxEdge, warmup_records: before.get(Infinity) ?? 0, sender_cpu_s_per_m: perM('sender'), capture_cpu_s_per_m: perM('capture') };
    const us = (v: number | null): string => (v === null ? '-' : v >= 1000 ? `${(v / 1000).toFixed(1)} ms` : `${Math.round(v)} µs`);
    console.log(`${DRIVER}, ${PPS} packets/s: ${f.records} records measured after ${f.warmup_records} of warm-up; p50 ${us(f.p50_us)}, p99 ${us(f.p99_us)}, max ≤ ${us(f.max_bucket_us)}; CPU-s per million records: sender ${f.sender_cpu_s_per_m?.toFixed(2) ?? '-'}, capture ${f.capture_cpu_s_per_m?.toFixed(2) ?? '-'} (load ${os.loadavg()[0]!.toFixed(1)})`);
    if (o.json) console.log(`#figures ${JSON.stringify(f)}`);
  } finally {
    if (d !== null) {
      d.kill('SIGTERM');
      await new Promise((r) => d!.once('exit', r));
    }
    veth.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
