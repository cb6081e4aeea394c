// Memory of the agent with N active calls: `otus daemon` with one sip + rtp
// task of --workers capture processes on a veth, fed by tcpreplay with the
// call generator's N calls (bench/gen-calls.ts: INVITE with SDP, 100, 180,
// 200 with SDP, ACK, then --rtp RTP packets each way, and no BYE, so every
// call is still up), then RSS and PSS (/proc/PID/smaps_rollup) and CPU time of every
// process of the tree: the supervisor, the capture processes, the sender.
// PSS counts a shared page once over the tree (the send ring, which each
// process maps twice, and the flow registry), so the sum is what the agent
// costs; it is split by kind of mapping (bench/proc.ts pssByKind).
//
//   node dist/bench/memory.js [--calls 10000,100000] [--workers 2] [--pps 40000] [--rtp 2]
//       [--ring-bytes B] [--flow-slots S] [--buffer-bytes B] [--node-args 'FLAGS'] [--otus CLI.js] [--json]
//
// --ring-bytes, --flow-slots: the global config's resources.ring_bytes and
// .flow_registry_slots; --buffer-bytes: the task's capture.buffer_bytes.
// --flow-slots (default: the global config's) is raised for a count the
// registry cannot hold: 4 slots per call at most, as an operator would size
// it for 100 K calls. Needs root, tcpreplay.

import { benchArgs, file, flag, int, list, opt, positive, text, uint } from './cli.js';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeVethHost } from '../test/helpers/live.js';
import { callTemplate, generateCalls } from './gen-calls.js';
import { MiB, connectDaemon, cpu, freePort, mem, pssByKind } from './proc.js';

const args = process.argv.slice(2);
const o = benchArgs({
  calls: opt([10_000, 100_000], list(int)),
  workers: opt(2, int),
  pps: opt(40_000, positive),
  rtp: opt(2, uint),
  'ring-bytes': opt(null, int),
  'flow-slots': opt(null, int),
  'buffer-bytes': opt(null, int),
  // Extra node flags for the daemon (capture processes inherit them; the sender
  // all but the young generation's: senderExecArgv), e.g. --node-args=--max-semi-space-size=2.
  'node-args': opt('', text),
  // --otus: another build's CLI (dist/src/cli/otus.js), to measure a commit before against this one.
  otus: opt(fileURLToPath(new URL('../src/cli/otus.js', import.meta.url)), file),
  json: flag,
});
const { calls: CALLS, workers: WORKERS, pps: PPS, rtp: RTP, otus: OTUS } = o;
const RING = o['ring-bytes'];
const SLOTS = o['flow-slots'];
const BUFFER = o['buffer-bytes'];
const NODE_ARGS = o['node-args'].split(' ').filter((a) => a);
const DEFAULT_SLOTS = 65536;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ProcMem {
  name: string;
  rss: number;
  pss: number;
  kinds: ReturnType<typeof pssByKind>;
  /** CPU seconds since the process started (utime + stime). */
  cpu: number;
}

export interface MemoryFigures {
  calls: number;
  workers: number;
  ring_bytes: number | null;
  flow_slots: number;
  frames_sent: number;
  frames_captured: number;
  registry_entries: number;
  evictions: number;
  at_rest_pss: number;
  pss: number;
  processes: ProcMem[];
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name}\\{[^}]*\\} (\\S+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

async function measure(calls: number, dir: string): Promise<MemoryFigures> {
  const pcap = join(dir, `calls-${calls}.pcap`);
  // The call without its BYE and 200: still up when measured.
  const gen = generateCalls(pcap, { calls, rampUs: 10, template: callTemplate(RTP).slice(0, -2) });
  const slots = SLOTS ?? Math.max(DEFAULT_SLOTS, 2 ** Math.ceil(Math.log2(4 * calls)));
  const socket = join(dir, 'otus.sock');
  const port = await freePort();
  const resources = [`    max_workers: ${WORKERS}`, `    flow_registry_slots: ${slots}`, ...(RING !== null ? [`    ring_bytes: ${RING}`] : [])].join('\n');
  writeFileSync(join(dir, 'otus.yml'), `otus:\n  log:\n    level: warn\n  control:\n    socket: ${socket}\n  metrics:\n    listen: 127.0.0.1:${port}\n  resources:\n${resources}\n`);
  const veth = makeVethHost();
  const d = spawn(process.execPath, [...NODE_ARGS, OTUS, 'daemon', '--config', join(dir, 'otus.yml')], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const c = await connectDaemon(socket);
    await c.call('task.create', {
      task: { id: 'mem', capture: { interface: veth.capIf, workers: WORKERS, ...(BUFFER !== null ? { buffer_bytes: BUFFER } : {}) }, parsers: [{ plugin: 'sip' }, { plugin: 'rtp' }], reporter: { type: 'console' }, unmatched_policy: 'drop' },
    });
    interface Status {
      processes: { role: string; index: number; pid: number; state: string }[];
      counters: { frames: number; records: number };
    }
    const status = (): Promise<Status> => c.call('task.status', { id: 'mem' });
    for (let i = 0; i < 400 && !(await status()).processes.every((p) => p.state === 'running'); i++) await sleep(50);
    await sleep(1500); // every child has beaten once
    const procs = (await status()).processes;
    const tree = (): { name: string; pid: number }[] => [{ name: 'supervisor', pid: d.pid! }, ...procs.map((p) => ({ name: p.role === 'sender' ? 'sender' : `capture ${p.index}`, pid: p.pid }))];
    const atRest = tree().reduce((a, p) => a + mem(p.pid).pss, 0);
    const r = spawnSync('ip', ['netns', 'exec', veth.ns, 'tcpreplay', '-q', '-i', veth.sendIf, `--pps=${PPS}`, pcap], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tcpreplay: ${r.stderr}`);
    // Everything captured has reached the sender (or no progress for 3 s).
    let last = -1;
    for (let still = 0; still < 30; ) {
      const s = (await status()).counters;
      if (s.frames >= gen.frames && s.records >= s.frames) break;
      still = s.records === last ? still + 1 : 0;
      last = s.records;
      await sleep(100);
    }
    await sleep(1500); // the next heartbeat publishes the registry's counters
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const counters = (await status()).counters;
    c.close();
    const processes = tree().map((p) => ({ name: p.name, ...mem(p.pid), kinds: pssByKind(p.pid), cpu: cpu(p.pid) }));
    return {
      calls,
      workers: WORKERS,
      ring_bytes: RING,
      flow_slots: slots,
      frames_sent: gen.frames,
      frames_captured: counters.frames,
      registry_entries: metric(text, 'otus_flow_registry_entries'),
      evictions: metric(text, 'otus_flow_registry_evictions_total'),
      at_rest_pss: atRest,
      pss: processes.reduce((a, p) => a + p.pss, 0),
      processes,
    };
  } finally {
    d.kill('SIGTERM');
    await new Promise((r) => d.once('exit', r));
    veth.destroy();
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench/memory: needs root (AF_PACKET, ip netns)');
    process.exit(2);
  }
  const dir = mkdtempSync(join(os.tmpdir(), 'otus-bench-memory-'));
  const all: MemoryFigures[] = [];
  try {
    console.log(`# bench/memory: ${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}; command: node dist/bench/memory.js ${args.join(' ')}`.trimEnd());
    for (const n of CALLS) {
      const f = await measure(n, dir);
      all.push(f);
      console.log(`\n${n} calls (${f.frames_captured} of ${f.frames_sent} frames captured; registry ${f.registry_entries} entries of ${f.flow_slots} slots, ${f.evictions} evicted; ring ${f.ring_bytes ?? 'default'} bytes)`);
      console.log('| process | RSS | PSS | of which shared segments | packet ring | heap (anon) | code | CPU-s |');
      console.log('|---|---|---|---|---|---|---|---|');
      for (const p of f.processes) console.log(`| ${p.name} | ${MiB(p.rss)} | ${MiB(p.pss)} | ${MiB(p.kinds.shm)} | ${MiB(p.kinds.packet)} | ${MiB(p.kinds.heap)} | ${MiB(p.kinds.code)} | ${p.cpu.toFixed(2)} |`);
      console.log(`whole agent PSS: ${MiB(f.pss)} (at rest, before the calls: ${MiB(f.at_rest_pss)})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (o.json) console.log(`#figures ${JSON.stringify(all)}`);
}

await main();
