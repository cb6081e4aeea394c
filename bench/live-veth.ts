// Live capture benchmark: frames pushed into a veth pair as fast as this
// machine can (bench/c/veth_blast.c: sendmmsg with PACKET_QDISC_BYPASS, from
// inside a network namespace), captured on the root-namespace end by
//   c        bench/c/tpacket_v3_loop.c, the minimal C TPACKET_V3 loop (baseline)
//   walk     Otus's af_packet_v3 driver, touching each frame as the C loop does
//   decode   ... plus the core decoder (a capture process's work per frame)
//   task     the pipeline of a sip + rtp task (`otus capture --task`): the
//            sample's RTP labelled with its call, wire records into batches
//   ndjson   ... plus the `otus capture` NDJSON line (to /dev/null)
// Each trial is a fresh capture process pinned to one CPU, the sender pinned
// to another. Reports offered and captured packets per second and kernel drops
// over the whole trial, and the capture process's CPU-seconds per million
// packets (its own getrusage / process.cpuUsage: user + system, all threads)
// in steady state: from the end of a warm-up (`--warmup` seconds of traffic,
// in which Node's JIT compiles the loop on its helper threads: seconds once in
// a capture process's life, which the C loop does not pay) to the stop; the
// whole trial's figure is printed beside it.
//
//   npm run build && node dist/bench/live-veth.js [--seconds 4] [--warmup 1] [--trials 3] [--pcap FILE] [--contenders c,walk,decode,task,ndjson]
//       [--block-size 1048576] [--block-count 32]
// Needs root, ip (iproute2) and cc.
//
// Recorded 2026-11-25, `node dist/bench/live-veth.js --seconds 4 --trials 5`,
// 2 x Intel Xeon (KVM), Linux 6.18, Node 20.20.2, rtp-g711a.pcap (294-byte
// frames), machine shared with other jobs (load average ~5, so the offered
// rate swung between 0.62 and 1.38 Mpps from trial to trial); medians:
//   c       858 kpps offered, 0.0517 CPU s / M packets (1.00); dropped in 3 of 5 trials (0.7% at 0.78 Mpps,
//           1.6% and 2.2% at 1.35 Mpps), likely descheduled by the other jobs (not verified)
//   walk    761 kpps, 0.0628 (1.21 x C), no drops
//   decode  725 kpps, 0.0763 (1.47 x C), one drop in 16.5 M frames over the five trials
//   ndjson  570 kpps offered, 250 kpps captured (38% lost): 2.2 CPU s / M, the JSON text is the cost
// GC counts (added after that run; `--seconds 2 --trials 1`): walk 0 and decode 0 over 0.87 M frames each.

import { badArgument, benchArgs, file, int, list, num, oneOf, opt, positive } from './cli.js';
import { type ChildProcess, execFile as execFileCb, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { captureExecArgv } from '../src/supervisor/task-run.js';

const execFile = promisify(execFileCb);
const args = process.argv.slice(2);
const root = fileURLToPath(new URL('../../', import.meta.url));
const o = benchArgs({
  seconds: opt(4, positive),
  warmup: opt(1, num),
  trials: opt(3, int),
  pcap: opt(join(root, 'samples/rtp-g711a.pcap'), file),
  contenders: opt(['c', 'walk', 'decode', 'task', 'ndjson'], list(oneOf('c', 'walk', 'decode', 'task', 'ndjson'))),
  'block-size': opt(1 << 20, int),
  'block-count': opt(32, int),
});
const { seconds, warmup, trials, pcap, contenders } = o;
// veth_blast sends classic little-endian pcap (what the benchmark's generator writes): say so now, not after a trial started.
{
  const head = Buffer.alloc(4);
  const fd = openSync(pcap, 'r');
  readSync(fd, head, 0, 4, 0);
  closeSync(fd);
  const magic = head.toString('hex');
  if (magic !== 'd4c3b2a1' && magic !== '4d3cb2a1') throw badArgument(`--pcap ${pcap}: not a little-endian classic pcap (convert it: editcap -F pcap IN OUT)`);
}
const blockSize = o['block-size'];
const blockCount = o['block-count'];

if (process.getuid?.() !== 0) {
  console.error('bench/live-veth: needs root (AF_PACKET, ip netns)');
  process.exit(2);
}

const cpus = os.cpus();
const sendCpu = 0;
const capCpu = cpus.length > 1 ? 1 : 0;

// --- build the C programs
const tmp = mkdtempSync(join(os.tmpdir(), 'otus-bench-'));
const build = (name: string): string => {
  const out = join(tmp, name);
  execFileSync('cc', ['-O2', '-Wall', '-o', out, join(root, `bench/c/${name}.c`)], { stdio: 'inherit' });
  return out;
};
const loopBin = build('tpacket_v3_loop');
const blastBin = build('veth_blast');

// --- the veth pair
const id = Math.random().toString(16).slice(2, 8);
const ns = `otus-b-${id}`;
const capIf = `ob${id}a`;
const sendIf = `ob${id}b`;
const sh = (cmd: string, a: string[]): string => execFileSync(cmd, a, { encoding: 'utf8' });
sh('ip', ['netns', 'add', ns]);
/** The capture process of the trial running, killed if the run ends early. */
let running: ChildProcess | null = null;
const cleanup = (): void => {
  running?.kill('SIGKILL');
  try {
    sh('ip', ['netns', 'del', ns]);
  } catch {
    // already gone
  }
  rmSync(tmp, { recursive: true, force: true });
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
sh('ip', ['link', 'add', capIf, 'type', 'veth', 'peer', 'name', sendIf, 'netns', ns]);
try {
  writeFileSync(`/proc/sys/net/ipv6/conf/${capIf}/disable_ipv6`, '1');
  sh('ip', ['netns', 'exec', ns, 'sh', '-c', `echo 1 > /proc/sys/net/ipv6/conf/${sendIf}/disable_ipv6`]);
} catch {
  // no IPv6: nothing to silence
}
sh('ip', ['link', 'set', capIf, 'up']);
sh('ip', ['-n', ns, 'link', 'set', sendIf, 'up']);

interface Result {
  packets: number;
  kernel_packets: number;
  kernel_drops: number;
  cpu_s: number;
  main_thread_cpu_s?: number;
  /** From the warm-up's end (SIGUSR2) to the stop. */
  steady_packets: number;
  steady_cpu_s: number;
  steady_main_thread_cpu_s?: number;
  gcs?: number;
  /** task: RTP packets labelled with their call. */
  labelled?: number;
  /** task: SIP messages parsed. */
  sip_messages?: number;
}

async function lines(child: ChildProcess, until: (s: string) => boolean): Promise<string> {
  let acc = '';
  for await (const chunk of child.stdout!) {
    acc += String(chunk);
    if (until(acc)) return acc;
  }
  return acc;
}

async function trial(contender: string): Promise<{ offered: number; sentSeconds: number; r: Result }> {
  const child =
    contender === 'c'
      ? spawn(loopBin, [capIf, String(blockSize), String(blockCount), String(capCpu)], { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn(process.execPath, [...captureExecArgv(process.execArgv), join(root, 'dist/bench/live-veth-child.js'), capIf, contender, String(blockSize), String(blockCount), String(capCpu)], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
  running = child;
  const out = lines(child, (s) => s.includes('ready\n') && s.trim().split('\n').length >= 2);
  // wait for "ready"
  await new Promise<void>((resolve, reject) => {
    let acc = '';
    const onData = (d: Buffer): void => {
      acc += d.toString();
      if (acc.includes('ready')) {
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${contender} exited ${code} before ready`)));
  });
  const blaster = execFile('ip', ['netns', 'exec', ns, blastBin, sendIf, pcap, String(warmup + seconds), String(sendCpu)], { encoding: 'utf8' });
  const marker = setTimeout(() => child.kill('SIGUSR2'), warmup * 1000);
  const blast = JSON.parse((await blaster).stdout) as { sent: number; seconds: number };
  clearTimeout(marker);
  await new Promise((r) => setTimeout(r, 300)); // the last partly filled block retires
  child.kill('SIGTERM');
  const [text] = await Promise.all([out, once(child, 'exit')]);
  running = null;
  const r = JSON.parse(text.trim().split('\n').pop()!) as Result;
  if (r.steady_packets === 0) throw new Error(`${contender}: no packets after the warm-up`);
  return { offered: blast.sent, sentSeconds: blast.seconds, r };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const results = new Map<string, { offeredPps: number[]; capturedPps: number[]; drops: number[]; loss: number[]; cpuPerM: number[]; mainPerM: number[]; wholePerM: number[] }>();
for (const c of contenders) results.set(c, { offeredPps: [], capturedPps: [], drops: [], loss: [], cpuPerM: [], mainPerM: [], wholePerM: [] });

console.log(`# bench/live-veth: ${os.cpus().length} x ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}`);
console.log(`# command: node dist/bench/live-veth.js ${args.join(' ')}`.trimEnd());
console.log(`# traffic: ${pcap} looped by veth_blast (sendmmsg, qdisc bypass) on CPU ${sendCpu}, ${warmup} s of warm-up then ${seconds} s measured per trial; capture on CPU ${capCpu}; ring ${blockCount} x ${blockSize} B; ${trials} trials, contenders interleaved, each a fresh process`);
for (let t = 0; t < trials; t++) {
  for (const c of contenders) {
    const { offered, sentSeconds, r } = await trial(c);
    const m = results.get(c)!;
    m.offeredPps.push(offered / sentSeconds);
    m.capturedPps.push(r.packets / sentSeconds);
    m.drops.push(r.kernel_drops);
    m.loss.push(offered > 0 ? (offered - r.packets) / offered : 0);
    m.cpuPerM.push((r.steady_cpu_s / r.steady_packets) * 1e6);
    if (r.steady_main_thread_cpu_s !== undefined) m.mainPerM.push((r.steady_main_thread_cpu_s / r.steady_packets) * 1e6);
    m.wholePerM.push((r.cpu_s / Math.max(1, r.packets)) * 1e6);
    process.stderr.write(`  trial ${t + 1} ${c}: offered ${offered}, captured ${r.packets} (${r.steady_packets} after the warm-up), drops ${r.kernel_drops}, cpu ${r.cpu_s.toFixed(3)} s (${r.steady_cpu_s.toFixed(3)} s after the warm-up)${r.gcs !== undefined ? `, GCs ${r.gcs}` : ''}${r.labelled !== undefined ? `, RTP labelled with its call ${r.labelled}, SIP messages ${r.sip_messages}` : ''}\n`);
  }
}

// The C loop is the yardstick; without it among the contenders the ratio column says so.
const cLoop = results.get('c');
const base = cLoop !== undefined ? median(cLoop.cpuPerM) : NaN;
console.log('');
console.log('| capture | offered pps | captured pps | kernel drops | loss | CPU s / M packets | main thread CPU s / M | × C loop | whole trial CPU s / M |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const c of contenders) {
  const m = results.get(c)!;
  const cpu = median(m.cpuPerM);
  console.log(
    `| ${c} | ${Math.round(median(m.offeredPps)).toLocaleString('en')} | ${Math.round(median(m.capturedPps)).toLocaleString('en')} | ${median(m.drops)} | ${(median(m.loss) * 100).toFixed(4)}% | ${cpu.toFixed(4)} | ${m.mainPerM.length ? median(m.mainPerM).toFixed(4) : '-'} | ${Number.isNaN(base) ? '- (no c)' : (cpu / base).toFixed(2)} | ${median(m.wholePerM).toFixed(4)} |`,
  );
}
console.log('\n(medians over trials; loss = (offered - captured) / offered over the whole trial; CPU = user + system of the capture process from the end of the warm-up to the stop; whole trial: from ready)');
