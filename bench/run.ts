// `npm run bench`: every benchmark of bench/, one after another, each in its
// own process, on inputs made once by the call generator (bench/gen-calls.ts);
// then the figures against their targets as a table, and all of it (machine,
// Node, commit, command, each step's command, output and figures) written to
// bench/results/<date>-<commit>.json. A step that needs what is missing
// (root, Go, a Kafka broker's Java) is skipped with the reason; one that
// fails is recorded as failed and the run goes on.
//
//   npm run build && npm run bench [-- --only a,b] [--skip a,b] [--quick] [--out DIR]
//
// --quick: small inputs and short runs (a smoke run of the tooling, figures
// not comparable). Each step's command is printed, so any figure can be
// measured again alone.

import { benchArgs, flag, list, oneOf, opt, text } from './cli.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callTemplate, generateCalls } from './gen-calls.js';
import { captureExecArgv } from '../src/supervisor/task-run.js';

// --only and --skip name steps: checked against STEPS in main(), before anything runs.
const o = benchArgs({ only: opt(null, list(text)), skip: opt([], list(text)), quick: flag, out: opt(null, text) });
const QUICK = o.quick;
const { only, skip } = o;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIST = join(ROOT, 'dist/bench');
const OTUS = join(ROOT, 'dist/src/cli/otus.js');
const OUT_DIR = o.out ?? join(ROOT, 'bench/results');
const CACHE = join(process.env.XDG_CACHE_HOME ?? join(os.homedir(), '.cache'), 'otus-bench');
const CPU = os.cpus().length > 1 ? 1 : 0;

type Figures = Record<string, number | null>;

interface Step {
  name: string;
  /** What it measures, for the results file. */
  what: string;
  argv: () => string[];
  timeoutS: number;
  /** Why it cannot run here, or null. */
  needs?: () => string | null;
  /** The step's figures, from its stdout (or files it wrote). */
  figures: (stdout: string) => Figures;
}

interface StepResult {
  name: string;
  what: string;
  command: string;
  status: 'ok' | 'failed' | 'skipped' | 'timeout';
  reason?: string;
  seconds: number;
  figures: Figures;
  output: string;
}

const num = (re: RegExp, s: string, scale = 1): number | null => {
  const m = re.exec(s);
  return m ? Number(m[1]!.replace(/,/g, '')) * scale : null;
};

/**
 * bench/rtp-calls' best steady pass with w workers (the first pass, JIT
 * warm-up, is not matched): per pass the slowest worker's packets per
 * CPU-second, M.
 */
function steadyRate(o: string, w: number): number | null {
  const r = [...o.matchAll(new RegExp(`^${w} worker\\(s\\), pass (\\d+): packets per CPU-second ([^;]+);`, 'gm'))].map((m) => Math.min(...m[2]!.split(',').map((x) => parseFloat(x))));
  return r.length ? Math.max(...r) : null;
}

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const root = (): string | null => (process.getuid?.() === 0 ? null : 'needs root (AF_PACKET sockets, network namespaces)');
const rootAnd = (...tools: string[]) => (): string | null => root() ?? (tools.find((t) => !has(t)) ? `needs ${tools.filter((t) => !has(t)).join(', ')}` : null);
const pin = (argv: string[]): string[] => (has('taskset') ? ['taskset', '-c', String(CPU), ...argv] : argv);
const node = (...a: string[]): string[] => [process.execPath, ...a];
/** node with a capture process's V8 flags (captureExecArgv), for the benchmarks that stand in for one. */
const captureNode = (...a: string[]): string[] => [process.execPath, ...captureExecArgv([]), ...a];

// ------------------------------------------------------------ the inputs

const work = mkdtempSync(join(os.tmpdir(), 'otus-bench-run-'));
/** The large capture: 1000 concurrent calls (2 M packets; --quick: 100 calls, 20 K). */
const LARGE = join(work, 'calls-large.pcap');
/** The live benchmarks' traffic: 200 calls, looped or paced; 4 s of RTP each, so SIP is 1 % of the frames (a call of minutes has less). */
const LIVE = join(work, 'calls-live.pcap');
const LIVE_RTP = 200;
const TASK = join(work, 'task.yml');
const large = QUICK ? { calls: 100, rtp: 100 } : { calls: 1000, rtp: 1000 };

function makeInputs(): Record<string, unknown> {
  const t0 = performance.now();
  const g = generateCalls(LARGE, { calls: large.calls, template: callTemplate(large.rtp) });
  const l = generateCalls(LIVE, { calls: 200, template: callTemplate(LIVE_RTP) });
  writeFileSync(TASK, 'task:\n  id: bench\n  parsers:\n    - plugin: sip\n    - plugin: rtp\n  unmatched_policy: drop\n');
  return {
    large: { file: 'calls-large.pcap', calls: g.calls, frames: g.frames, rtp_per_direction: large.rtp, seconds: (performance.now() - t0) / 1000 },
    live: { file: 'calls-live.pcap', calls: l.calls, frames: l.frames, rtp_per_direction: LIVE_RTP },
  };
}

// ------------------------------------------------------------ gopacket

function buildGopacket(): string | null {
  if (!has('go')) return null;
  const bin = join(CACHE, 'gopacket-anchor');
  mkdirSync(CACHE, { recursive: true });
  const r = spawnSync('go', ['build', '-o', bin, '.'], { cwd: join(ROOT, 'bench/anchors/gopacket'), encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=mod' } });
  if (r.status !== 0) throw new Error(`go build: ${r.stderr}`);
  return bin;
}
let gopacketBin: string | null = null;

// ------------------------------------------------------------ replay, whole tree

/** `otus replay` under bash, whose `times` gives the CPU of the whole tree it started. */
function replayArgv(workers: number, stats: string): string[] {
  const cmd = `"${process.execPath}" "${OTUS}" replay --task "${TASK}" --workers ${workers} --out /dev/null --stats-json "${stats}" "${LARGE}" && times`;
  return ['bash', '-c', cmd];
}

function replayFigures(out: string, stats: string): Figures {
  // `times`: the shell's own line, then its children's: "0m1.234s 0m0.567s".
  const t = [...out.matchAll(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/g)].pop();
  const tree = t ? Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4]) : null;
  const s = JSON.parse(readFileSync(stats, 'utf8')) as { capture_processes: { cpu_s: number; wall_s: number }[]; sender: { cpu_s: number }; frames: number };
  const capture = s.capture_processes.reduce((a, c) => a + c.cpu_s, 0);
  const wall = Math.max(...s.capture_processes.map((c) => c.wall_s));
  return {
    frames: s.frames,
    tree_cpu_s: tree,
    capture_cpu_s: capture,
    sender_cpu_s: s.sender.cpu_s,
    tree_over_workers: tree === null ? null : tree / (capture + s.sender.cpu_s),
    capture_wall_s: wall,
  };
}

// ------------------------------------------------------------ the steps

const STEPS: Step[] = [
  {
    name: 'decode-large',
    what: 'the core decoder over the large capture in memory, pinned to one CPU (cache-cold: the file does not fit in cache)',
    argv: () => pin(captureNode('--expose-gc', join(DIST, 'decode.js'), LARGE, '--packets', QUICK ? '1000000' : '20000000')),
    timeoutS: 180,
    figures: (o) => ({ mpps_per_cpu_s: num(/packets per CPU-second: ([\d.]+) M/, o), ns_per_packet: num(/ns per packet \(wall\): ([\d.]+)/, o) }),
  },
  {
    name: 'gopacket-large',
    what: "gopacket's DecodingLayerParser over the same capture, pinned to the same CPU (bench/anchors/gopacket)",
    needs: () => (has('go') ? null : 'Go is not installed: the gopacket anchor is not measured'),
    argv: () => pin([gopacketBin ?? 'gopacket-anchor', LARGE, QUICK ? '1000000' : '20000000']),
    timeoutS: 180,
    figures: (o) => {
      const j = JSON.parse(o.trim().split('\n').pop() ?? '{}') as { packets_per_cpu_s?: number };
      return { mpps_per_cpu_s: j.packets_per_cpu_s === undefined ? null : j.packets_per_cpu_s / 1e6 };
    },
  },
  {
    name: 'decode-small',
    what: 'the core decoder over the RTP sample (cache-warm)',
    argv: () => pin(captureNode('--expose-gc', join(DIST, 'decode.js'), '--packets', QUICK ? '1000000' : '20000000')),
    timeoutS: 120,
    figures: (o) => ({ mpps_per_cpu_s: num(/packets per CPU-second: ([\d.]+) M/, o) }),
  },
  {
    name: 'rtp-calls',
    what: 'the RTP fast path of capture processes (sip + rtp), 1000 calls, 1 and 2 workers, no sender',
    // 8 passes: with 2 workers each sees half of a pass's packets, and their rate still climbed until the 5th pass
    // (JIT tiers, by time and calls); with 3 the row compared a warm worker with two warming ones.
    argv: () => node(join(DIST, 'rtp-calls.js'), '--packets', QUICK ? '200000' : '2000000', '--passes', QUICK ? '2' : '8'),
    timeoutS: 300,
    figures: (o) => ({
      one_worker_mpps_per_cpu_s: steadyRate(o, 1),
      two_worker_mpps_per_cpu_s: steadyRate(o, 2),
      two_over_one: num(/2 workers \/ 1 worker, best steady pass: ([\d.]+)x/, o),
    }),
  },
  {
    name: 'rtp-stats',
    what: 'rtp-calls with rtp.stats on (every packet sent too), 1 worker: the cost of the statistics against rtp-calls',
    argv: () => node(join(DIST, 'rtp-calls.js'), '--workers', '1', '--stats', 'on', '--packets', QUICK ? '200000' : '2000000', '--passes', QUICK ? '2' : '8'),
    timeoutS: 300,
    figures: (o) => ({ one_worker_mpps_per_cpu_s: steadyRate(o, 1) }),
  },
  {
    name: 'sip',
    what: 'one capture-process pipeline in process: the SIP call mix, then the RTP fast path',
    argv: () => captureNode('--expose-gc', join(DIST, 'sip.js'), ...(QUICK ? ['--calls', '2000', '--rtp', '200000'] : [])),
    timeoutS: 180,
    figures: (o) => ({ sip_kpps_per_cpu_s: num(/^SIP call mix[^:]*:.* (\d+) k packets per CPU-second/m, o), rtp_kpps_per_cpu_s: num(/^RTP fast path[^:]*:.* (\d+) k packets per CPU-second/m, o) }),
  },
  {
    name: 'live-veth',
    what: 'live capture on a veth: the C TPACKET_V3 loop, the decoder, the sip + rtp task; CPU per packet',
    needs: rootAnd('cc', 'ip'),
    argv: () => node(join(DIST, 'live-veth.js'), '--seconds', QUICK ? '1' : '3', '--trials', QUICK ? '1' : '3', '--contenders', 'c,decode,task', '--pcap', LIVE),
    timeoutS: 240,
    figures: (o) => {
      const row = (c: string): number | null => num(new RegExp(`^\\| ${c} \\|(?:[^|]*\\|){6} ([\\d.]+) \\|`, 'm'), o);
      const cpu = (c: string): number | null => num(new RegExp(`^\\| ${c} \\|(?:[^|]*\\|){4} ([\\d.]+) \\|`, 'm'), o);
      return { c_cpu_s_per_m: cpu('c'), decode_cpu_s_per_m: cpu('decode'), task_cpu_s_per_m: cpu('task'), decode_x_c: row('decode'), task_x_c: row('task') };
    },
  },
  ...['af_packet_v3', 'xdp'].map(
    (driver): Step => ({
      name: `latency-${driver}`,
      what: `capture → sender latency (kernel timestamp to the sender's read), ${driver}, 100 k packets/s of the live calls on a veth, after a warm-up`,
      needs: rootAnd('ip', 'tcpreplay'),
      argv: () => node(join(DIST, 'latency.js'), '--driver', driver, '--pcap', LIVE, '--warmup', QUICK ? '1' : '3', '--seconds', QUICK ? '2' : '5', '--json'),
      timeoutS: 90,
      figures: (o) => {
        const line = o.split('\n').find((l) => l.startsWith('#figures '));
        const f = line === undefined ? null : (JSON.parse(line.slice('#figures '.length)) as { records: number; p50_us: number | null; p99_us: number | null; max_bucket_us: number | null });
        return { records: f?.records ?? null, p50_us: f?.p50_us ?? null, p99_us: f?.p99_us ?? null, max_us: f?.max_bucket_us ?? null };
      },
    }),
  ),
  ...[1, 2].map(
    (w): Step => ({
      name: `replay-${w}`,
      what: `otus replay of the large capture, ${w} capture process(es): CPU of the whole tree (bash times) against its capture processes and sender`,
      argv: () => replayArgv(w, join(work, `replay-${w}.json`)),
      timeoutS: 240,
      figures: (o) => replayFigures(o, join(work, `replay-${w}.json`)),
    }),
  ),
  {
    name: 'replay',
    what: 'bench/replay: the RTP fast path through the multi-process path of otus replay (json), 1 and 2 workers',
    argv: () => node(join(DIST, 'replay.js'), '--mode', 'rtp', '--format', 'json', '--packets', QUICK ? '200000' : '1000000'),
    timeoutS: 300,
    figures: (o) => ({ two_over_one: num(/2 workers \/ 1 worker aggregate = ([\d.]+)x/, o) }),
  },
  {
    name: 'memory',
    what: 'RSS and PSS of the daemon, one sip + rtp task of 2 capture processes, with 10 K and 100 K active calls',
    needs: rootAnd('ip', 'tcpreplay'),
    argv: () => node(join(DIST, 'memory.js'), '--calls', QUICK ? '1000' : '10000,100000', '--json'),
    timeoutS: 300,
    figures: (o) => {
      const line = o.split('\n').find((l) => l.startsWith('#figures '));
      if (!line) return {};
      const all = JSON.parse(line.slice(9)) as { calls: number; pss: number; at_rest_pss: number }[];
      const f: Figures = {};
      for (const m of all) {
        f[`pss_mib_${m.calls}`] = m.pss / 2 ** 20;
        f[`at_rest_pss_mib_${m.calls}`] = m.at_rest_pss / 2 ** 20;
      }
      return f;
    },
  },
  {
    name: 'kafka',
    what: 'the sender into a real Kafka broker on this machine (scripts/kafka.sh), protobuf: labels as headers, packed in one header, or none; and a plain producer of the same messages',
    needs: () => (has('java') ? null : 'needs Java 17 for the Kafka broker (scripts/kafka.sh)'),
    argv: () => node(join(DIST, 'kafka.js'), '--records', QUICK ? '50000' : '500000', '--contenders', 'otus,otus-packed,otus-bare,plain', '--formats', 'protobuf'),
    timeoutS: 600,
    figures: (o) => {
      const k = (c: string): number | null => num(new RegExp(`^${c}\\s+protobuf\\s*:.*\\((\\d+) k per CPU-second\\)`, 'm'), o);
      return { otus_krecords_per_cpu_s: k('otus'), packed_krecords_per_cpu_s: k('otus-packed'), bare_krecords_per_cpu_s: k('otus-bare'), plain_krecords_per_cpu_s: k('plain') };
    },
  },
  {
    name: 'ring',
    what: 'the send ring: records per second from 1 and 2 producers, commit → read latency',
    argv: () => node('--expose-gc', join(DIST, 'ring.js'), ...(QUICK ? ['--records', '200000'] : [])),
    timeoutS: 180,
    figures: (o) => ({ p99_us: num(/p99 ([\d.]+) µs/, o) }),
  },
  {
    name: 'registry',
    what: 'flow registry lookups, ns per hit and miss',
    argv: () => node('--expose-gc', join(DIST, 'registry.js'), ...(QUICK ? ['--lookups', '200000'] : [])),
    timeoutS: 120,
    figures: (o) => ({ ipv4_endpoint_hit_ns: num(/: hit ([\d.]+) ns/, o) }),
  },
  {
    name: 'pipeline-fastpath',
    what: 'decode → parser → encode in process, RTP-style fast path and unmatched forwarding',
    argv: () => captureNode(join(DIST, 'pipeline-fastpath.js'), ...(QUICK ? ['--packets', '200000'] : [])),
    timeoutS: 120,
    figures: (o) => ({ json_rtp_mpps_per_cpu_s: num(/^json\s+rtp fast path\s+([\d.]+) M/m, o) }),
  },
  {
    name: 'parsers',
    what: 'the dns, webrtc and http parsers alone and in the pipeline',
    argv: () => captureNode('--expose-gc', join(DIST, 'parsers.js'), ...(QUICK ? ['--messages', '20000'] : [])),
    timeoutS: 180,
    figures: () => ({}),
  },
  {
    name: 'stats',
    what: "what a capture process's counters in the stats segment cost",
    argv: () => node(join(DIST, 'stats.js')),
    timeoutS: 120,
    figures: (o) => ({ per_block_ns: num(/per ring block or batch: ([\d.]+) ns/, o) }),
  },
  {
    name: 'daemon',
    what: 'the daemon idle and with one task (RSS, PSS), and kill -9 → successor capturing',
    needs: root,
    argv: () => node(join(DIST, 'daemon.js'), '--kills', QUICK ? '3' : '20'),
    timeoutS: 180,
    figures: (o) => ({ whole_agent_pss_mib: num(/whole agent PSS: ([\d.]+) MiB/, o), restart_median_ms: num(/median (\d+) ms/, o) }),
  },
  {
    name: 'metrics',
    what: 'what a Prometheus scrape costs the supervisor',
    needs: root,
    argv: () => node(join(DIST, 'metrics.js'), '--scrapes', QUICK ? '50' : '300'),
    timeoutS: 180,
    figures: (o) => ({ supervisor_cpu_ms_per_scrape: num(/supervisor CPU per scrape ([\d.]+) ms/, o) }),
  },
];

// ------------------------------------------------------------ targets

interface Target {
  target: string;
  value: (f: (step: string, key: string) => number | null) => number | null;
  unit: string;
  /** null: a figure shown for what it is, with no target. */
  ok: ((v: number) => boolean) | null;
}

const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);

const TARGETS: Target[] = [
  { target: "decode ≥ gopacket on the large capture (Otus / gopacket, same CPU)", value: (f) => ratio(f('decode-large', 'mpps_per_cpu_s'), f('gopacket-large', 'mpps_per_cpu_s')), unit: '×', ok: (v) => v >= 1 },
  { target: 'RTP fast path ≥ 5 M packets per capture-process CPU-second', value: (f) => f('rtp-calls', 'one_worker_mpps_per_cpu_s'), unit: 'M', ok: (v) => v >= 5 },
  {
    target: 'rtp.stats on (every packet sent too) ≥ 0.85 × stats off, fast path per CPU-second (rtp-stats against rtp-calls, 1 worker)',
    value: (f) => ratio(f('rtp-stats', 'one_worker_mpps_per_cpu_s'), f('rtp-calls', 'one_worker_mpps_per_cpu_s')),
    unit: '×',
    ok: (v) => v >= 0.85,
  },
  { target: 'SIP ≥ 500 k packets per CPU-second', value: (f) => f('sip', 'sip_kpps_per_cpu_s'), unit: 'k', ok: (v) => v >= 500 },
  { target: 'live decode ≤ 1.5 × the C ring loop (CPU per packet)', value: (f) => f('live-veth', 'decode_x_c'), unit: '×', ok: (v) => v <= 1.5 },
  { target: 'p99 capture → sender < 200 µs at 100 k packets/s, xdp', value: (f) => f('latency-xdp', 'p99_us'), unit: 'µs', ok: (v) => v < 200 },
  { target: 'p99 capture → sender at 100 k packets/s, af_packet_v3 (retire 10 ms)', value: (f) => f('latency-af_packet_v3', 'p99_us'), unit: 'µs', ok: null },
  {
    target: '2 workers ≥ 1.9 × one per CPU-second (rtp-calls: twice the slower worker beside the other, against one alone)',
    value: (f) => {
      const r = ratio(f('rtp-calls', 'two_worker_mpps_per_cpu_s'), f('rtp-calls', 'one_worker_mpps_per_cpu_s'));
      return r === null ? null : 2 * r;
    },
    unit: '×',
    ok: (v) => v >= 1.9,
  },
  { target: 'the same in packets per wall second (rtp-calls aggregate; one worker alone has its JIT and GC threads on the other core)', value: (f) => f('rtp-calls', 'two_over_one'), unit: '×', ok: (v) => v >= 1.9 },
  { target: '2 workers finish the large capture in ≤ 0.6 × the wall time of 1 (otus replay)', value: (f) => ratio(f('replay-2', 'capture_wall_s'), f('replay-1', 'capture_wall_s')), unit: '×', ok: (v) => v <= 0.6 },
  { target: 'replay whole-tree CPU ≤ 1.5 × (capture processes + sender), 1 worker', value: (f) => f('replay-1', 'tree_over_workers'), unit: '×', ok: (v) => v <= 1.5 },
  { target: 'PSS ≤ 256 MiB, supervisor + 2 capture processes + sender, 10 K calls', value: (f) => f('memory', 'pss_mib_10000'), unit: 'MiB', ok: (v) => v <= 256 },
  { target: 'PSS with 100 K calls (registry sized for them)', value: (f) => f('memory', 'pss_mib_100000'), unit: 'MiB', ok: null },
  { target: 'Kafka sender ≥ 300 k protobuf records per CPU-second, labels as headers', value: (f) => f('kafka', 'otus_krecords_per_cpu_s'), unit: 'k', ok: (v) => v >= 300 },
  { target: 'the same, labels packed in one header (headers: packed)', value: (f) => f('kafka', 'packed_krecords_per_cpu_s'), unit: 'k', ok: (v) => v >= 300 },
  { target: 'the same, without headers (headers: false)', value: (f) => f('kafka', 'bare_krecords_per_cpu_s'), unit: 'k', ok: (v) => v >= 300 },
];

// ------------------------------------------------------------ run

function git(...a: string[]): string {
  const r = spawnSync('git', a, { cwd: ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

function runStep(s: Step): StepResult {
  const base = { name: s.name, what: s.what, figures: {}, output: '' };
  const reason = s.needs?.() ?? null;
  const argv = s.argv();
  const command = argv.map((a) => (/[\s"$;&|]/.test(a) ? `'${a.replace(/'/g, "'\\''")}'` : a)).join(' ');
  if (reason) return { ...base, command, status: 'skipped', reason, seconds: 0 };
  process.stderr.write(`[bench] ${s.name}: ${command.length > 200 ? `${command.slice(0, 200)}…` : command}\n`);
  const t0 = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: s.timeoutS * 1000, killSignal: 'SIGTERM', maxBuffer: 64 << 20, cwd: ROOT });
  const seconds = (performance.now() - t0) / 1000;
  // Logs on stderr can be long: its tail is enough to say why a step failed.
  const output = `${r.stdout ?? ''}${r.stderr ? `\n--- stderr (tail)\n${r.stderr.slice(-3000)}` : ''}`;
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') return { ...base, command, status: 'timeout', reason: `over ${s.timeoutS} s`, seconds, output };
  if (r.status !== 0) return { ...base, command, status: 'failed', reason: `exit ${r.status ?? r.signal}`, seconds, output };
  let figures: Figures = {};
  try {
    figures = s.figures(r.stdout);
  } catch (e) {
    return { ...base, command, status: 'failed', reason: `figures not found: ${(e as Error).message}`, seconds, output };
  }
  return { ...base, command, status: 'ok', seconds, figures, output };
}

const fmt = (v: number | null, unit: string): string => (v === null || !Number.isFinite(v) ? '—' : `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${unit}`);

function main(): void {
  if (!existsSync(join(DIST, 'decode.js'))) {
    console.error('bench/run: build first (npm run build)');
    process.exit(2);
  }
  const started = new Date();
  const commit = git('rev-parse', 'HEAD');
  const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
  const load0 = os.loadavg();
  const results: StepResult[] = [];
  let inputs: Record<string, unknown> = {};
  try {
    const step = oneOf(...STEPS.map((s) => s.name));
    for (const n of only ?? []) step(n, '--only');
    for (const n of skip) step(n, '--skip');
    process.stderr.write('[bench] generating the calls\n');
    inputs = makeInputs();
    const steps = STEPS.filter((s) => (only ? only.includes(s.name) : true) && !skip.includes(s.name));
    if (steps.some((s) => s.name === 'gopacket-large')) {
      try {
        gopacketBin = buildGopacket();
      } catch (e) {
        process.stderr.write(`[bench] gopacket anchor not built: ${(e as Error).message}\n`);
      }
    }
    for (const s of steps) {
      const r = s.name === 'gopacket-large' && has('go') && gopacketBin === null ? { name: s.name, what: s.what, command: '', status: 'failed' as const, reason: 'go build failed', seconds: 0, figures: {}, output: '' } : runStep(s);
      results.push(r);
      process.stderr.write(`[bench] ${s.name}: ${r.status}${r.reason ? ` (${r.reason})` : ''}, ${r.seconds.toFixed(1)} s ${JSON.stringify(r.figures)}\n`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const fig = (step: string, key: string): number | null => results.find((r) => r.name === step)?.figures[key] ?? null;
  const table = TARGETS.map((t) => {
    const v = t.value(fig);
    return { target: t.target, value: v, unit: t.unit, met: v === null || t.ok === null ? null : t.ok(v) };
  });
  const cpus = os.cpus();
  const doc = {
    date: started.toISOString(),
    commit,
    dirty,
    command: `node ${process.argv.slice(1).join(' ')}`,
    machine: { cpu: cpus[0]?.model ?? 'unknown', cpus: cpus.length, memory_mib: Math.round(os.totalmem() / 2 ** 20), kernel: os.release(), load_average_at_start: load0, load_average_at_end: os.loadavg() },
    node: process.version,
    quick: QUICK,
    inputs,
    seconds: (Date.now() - started.getTime()) / 1000,
    targets: table,
    steps: results,
  };
  mkdirSync(OUT_DIR, { recursive: true });
  const file = join(OUT_DIR, `${started.toISOString().slice(0, 10)}-${commit.slice(0, 12) || 'nocommit'}${dirty ? '-dirty' : ''}${QUICK ? '-quick' : ''}.json`);
  // The results are committed: they name the checkout, the work directory and node by role, not by this machine's paths.
  const scrub = (text: string): string =>
    text.split(ROOT).join('').split(work).join('$WORK').split(process.execPath).join('node').split(os.homedir()).join('~');
  writeFileSync(file, `${scrub(JSON.stringify(doc, null, 2))}\n`);

  console.log(`# ${doc.machine.cpu} x${doc.machine.cpus}, ${doc.machine.memory_mib} MiB, Linux ${doc.machine.kernel}, Node ${doc.node}; commit ${commit.slice(0, 12)}${dirty ? ' (dirty)' : ''}; load ${load0.map((x) => x.toFixed(1)).join(' ')}; ${doc.seconds.toFixed(0)} s${QUICK ? '; --quick: figures not comparable' : ''}`);
  console.log('');
  console.log('| target | measured | met |');
  console.log('|---|---|---|');
  for (const t of table) console.log(`| ${t.target} | ${fmt(t.value, t.unit)} | ${t.met === null ? '—' : t.met ? 'yes' : 'no'} |`);
  console.log('');
  for (const r of results) if (r.status !== 'ok') console.log(`${r.name}: ${r.status}${r.reason ? `: ${r.reason}` : ''}`);
  console.log(`results: ${file}`);
}

main();
