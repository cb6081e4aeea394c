// `otus capture -i IFACE`: live capture printing the same NDJSON as
// `otus decode`, then per-stream statistics on stderr. One worker captures
// in this process; N workers are N capture processes (src/capture-proc/),
// each one fanout member pinned to its CPU, whose lines this process merges
// and renumbers in arrival order.
// `otus capture --task TASK.yml`: the task on live traffic, through capture
// processes, the send ring and the sender (src/supervisor/live.ts).

import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { StatsMessage, ChildMessage, StartMessage } from '../capture-proc/main.js';
import { NdjsonSink } from '../capture-proc/sink.js';
import type { CommandModule } from 'yargs';
import { type CaptureOptions, allowedCpus, checkCpus, checkWorkers, cpuFor, createCapturer, defaultCaptureOptions, type FanoutMode } from '../capture/index.js';
import type { StructuredFilter } from '../capture/filter.js';
import { DECODE_ERROR_NAMES } from '../decode/errors.js';
import { type DecoderOptions, defaultDecoderOptions, parseTunnelList } from '../decode/options.js';
import { native } from '../native.js';
import { FlowDispatcher } from '../capture/flowhash.js';
import { OtusError } from '../util/errors.js';
import { removeAllStaleSegments } from '../shm/segment.js';
import { runLiveTask } from '../supervisor/live.js';
import { outOption, undeliveredExit } from './replay.js';
import { formatSummary } from '../supervisor/task-run.js';

export interface CaptureCommandOptions {
  iface: string;
  driver: string;
  workers: number;
  filter: string | StructuredFilter | null;
  /** Stop after N frames (0 = never). */
  count: number;
  /** Stop after S seconds (0 = never). */
  duration: number;
  /** 'auto' = stream index over the allowed CPUs; 'off'; or one CPU per worker. */
  cpus: 'auto' | 'off' | number[];
  decoder: DecoderOptions;
  capture: CaptureOptions;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Aborting stops the capture as SIGINT does (the CLI wires the signals to it). */
  signal?: AbortSignal;
}

const CHILD = fileURLToPath(new URL('../capture-proc/main.js', import.meta.url));

export function parseCpus(s: string): 'auto' | 'off' | number[] {
  if (s === 'auto' || s === 'off') return s;
  const cpus = s.split(',').map((x) => Number(x.trim()));
  if (cpus.length === 0 || cpus.some((c) => !Number.isInteger(c) || c < 0 || c > 4095)) {
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--cpus: expected auto, off or a list of CPU numbers, got "${s}"`);
  }
  return cpus;
}

/** Resolves when any of: count reached, duration over, signal aborted. */
function stopWhen(o: CaptureCommandOptions): { promise: Promise<string>; stop: (why: string) => void; dispose: () => void } {
  let stop!: (why: string) => void;
  const promise = new Promise<string>((r) => (stop = r));
  const timer = o.duration > 0 ? setTimeout(() => stop(`duration ${o.duration}s`), o.duration * 1000) : null;
  const onAbort = (): void => stop('signal');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) stop('signal');
  return {
    promise,
    stop,
    dispose: () => {
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** lo: the kernel's count includes the outgoing copy of each packet, which the stream skips; say how many. */
const outgoing = (n: number): string => (n > 0 ? ` outgoing_skipped=${n}` : '');

function validate(o: CaptureCommandOptions): void {
  if (!Number.isInteger(o.workers) || o.workers < 1 || o.workers > 1024) {
    throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--workers: expected an integer in 1..1024, got ${o.workers}`);
  }
  // Forking drivers: one pinned capture process per worker (pcap and file feed N pipelines in this process).
  if (o.workers > 1 && o.driver !== 'pcap' && o.driver !== 'file') checkWorkers(o.workers);
  if (Array.isArray(o.cpus)) checkCpus(o.cpus, '--cpus');
  if (!Number.isInteger(o.count) || o.count < 0) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--count: expected a non-negative integer, got ${o.count}`);
  if (!(o.duration >= 0)) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--duration: expected a non-negative number of seconds, got ${o.duration}`);
}

export async function runCapture(o: CaptureCommandOptions): Promise<void> {
  validate(o);
  o.capture.streams = o.workers;
  o.capture.filter = o.filter;
  if (o.workers === 1) return runInProcess(o);
  if (o.driver === 'pcap' || o.driver === 'file') return runSingleStreamPipelines(o);
  // Fail here, with a coded error, on a bad interface, filter or driver before any child starts.
  createCapturer(o.driver, o.capture).init();
  return runWorkers(o);
}

async function runInProcess(o: CaptureCommandOptions): Promise<void> {
  const capturer = createCapturer(o.driver, o.capture);
  capturer.init();
  const cpu = o.cpus === 'auto' || o.cpus === 'off' ? -1 : o.cpus[0]!;
  if (cpu >= 0) native.setAffinity(cpu);
  const stream = capturer.capture(0);
  const w = stopWhen(o);
  let failure: string | null = null;
  const sink = new NdjsonSink(o.decoder, o.out, o.count, () => w.stop(`count ${o.count}`), (_i, message) => {
    failure = message;
    w.stop(`error: ${message}`);
  });
  sink.onEnd = () => w.stop('end of file');
  sink.attach(stream);
  stream.start(sink);
  o.err.write(`otus capture: ${o.iface} (${capturer.name}, 1 stream): capturing\n`);
  const why = await w.promise;
  w.dispose();
  await stream.drain(); // frames the kernel already took are walked (or counted) before the socket closes
  stream.stop();
  sink.flush();
  const st = stream.stats();
  const errors: string[] = [];
  const de = sink.decoder.stats.errors;
  for (let i = 1; i < de.length; i++) if (de[i]! > 0) errors.push(`${DECODE_ERROR_NAMES[i]}=${de[i]}`);
  const cpuLabel = cpu >= 0 ? ` cpu ${cpu}` : '';
  o.err.write(
    `otus capture: ${o.iface} (${capturer.name}): ${sink.n} frames; stopped: ${why}\n` +
      `  stream 0${cpuLabel}: frames=${st.frames} kernel_packets=${st.kernelPackets}${outgoing(st.outgoingSkipped)} kernel_drops=${st.kernelDrops}` +
      (capturer.name === 'af_packet_v3' ? ` freezes=${st.freezes} blocks=${st.batches}` : capturer.name === 'pcap' ? ` if_drops=${st.ifDrops} batches=${st.batches}` : ` batches=${st.batches}`) +
      `\n  decode errors: ${errors.length ? errors.join(' ') : 'none'}\n`,
  );
  if (failure) throw new OtusError('OTUS_ERR_CAPTURE_IO', `${o.iface}: ${failure}`);
}

/**
 * pcap and file have one stream: N pipelines are fed by a user-space flow
 * hash (docs/architecture.md, "Processes"), each with its own decoder (and so its own
 * reassembly), in this process. Flows stay whole per pipeline; there is no
 * CPU parallelism: for that, use af_packet_v3, whose workers are separate
 * pinned processes.
 */
async function runSingleStreamPipelines(o: CaptureCommandOptions): Promise<void> {
  const capturer = createCapturer(o.driver, { ...o.capture, streams: 1 });
  capturer.init();
  const stream = capturer.capture(0);
  const w = stopWhen(o);
  let failure: string | null = null;
  const seq = { n: 0 };
  const onError = (_i: number, message: string): void => {
    failure = message;
    w.stop(`error: ${message}`);
  };
  const sinks = Array.from({ length: o.workers }, () => new NdjsonSink(o.decoder, o.out, o.count, () => w.stop(`count ${o.count}`), onError, seq));
  for (const s of sinks) {
    s.attach(stream);
    s.onEnd = () => w.stop('end of file');
  }
  const dispatcher = new FlowDispatcher(sinks);
  stream.start(dispatcher);
  o.err.write(`otus capture: ${o.iface} (${o.driver}, 1 stream, ${o.workers} pipelines by flow hash): capturing\n`);
  const why = await w.promise;
  w.dispose();
  await stream.drain();
  stream.stop();
  for (const s of sinks) s.flush();
  const st = stream.stats();
  let report =
    `otus capture: ${o.iface} (${o.driver}): ${Math.min(seq.n, o.count || seq.n)} frames; stopped: ${why}\n` +
    `  stream 0: frames=${st.frames} kernel_packets=${st.kernelPackets} kernel_drops=${st.kernelDrops} if_drops=${st.ifDrops} batches=${st.batches}\n`;
  sinks.forEach((s, i) => {
    let errs = 0;
    for (const e of s.decoder.stats.errors) errs += e;
    report += `  pipeline ${i}: frames=${dispatcher.counts[i]} decoded=${s.decoder.stats.frames} decode_errors=${errs}\n`;
  });
  o.err.write(report);
  if (failure) throw new OtusError('OTUS_ERR_CAPTURE_IO', `${o.iface}: ${failure}`);
}

async function runWorkers(o: CaptureCommandOptions): Promise<void> {
  const allowed = allowedCpus();
  const w = stopWhen(o);
  const opts: CaptureOptions = { ...o.capture, fanout: true };
  const children: ChildProcess[] = [];
  const stats: (StatsMessage | null)[] = new Array(o.workers).fill(null);
  let n = 0;
  let done = false;
  let failure: OtusError | null = null;
  let ready = 0;
  let outBlocked = false;

  const emit = (lines: string): void => {
    if (!o.out.write(lines) && !outBlocked) {
      outBlocked = true;
      for (const c of children) c.stdout?.pause(); // children block on their pipe; their rings fill; the kernel counts drops
      o.out.once('drain', () => {
        outBlocked = false;
        for (const c of children) c.stdout?.resume();
      });
    }
  };

  for (let i = 0; i < o.workers; i++) {
    const child = fork(CHILD, [], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], serialization: 'json' });
    children.push(child);
    child.on('error', () => {}); // IPC write errors: the 'exit' handler reports a lost worker
    let rest = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (data: string) => {
      if (done) return;
      const text = rest + data;
      const last = text.lastIndexOf('\n');
      if (last < 0) {
        rest = text;
        return;
      }
      rest = text.slice(last + 1);
      let out = '';
      let start = 0;
      while (start <= last) {
        const end = text.indexOf('\n', start);
        // Every line starts {"frame":N, — renumber in arrival order.
        out += `{"frame":${++n}${text.slice(text.indexOf(',', start), end + 1)}`;
        start = end + 1;
        if (o.count > 0 && n >= o.count) {
          done = true;
          w.stop(`count ${o.count}`);
          break;
        }
      }
      emit(out);
    });
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') {
        if (++ready === o.workers) o.err.write(`otus capture: ${o.iface} (${o.driver}, ${o.workers} streams, fanout ${opts.fanoutMode} group ${opts.fanoutGroup}): capturing\n`);
      } else if (m.type === 'stats') {
        stats[m.index] = m;
        if (m.error && !done) {
          failure ??= new OtusError('OTUS_ERR_CAPTURE_IO', `${o.iface}: stream ${m.index}: ${m.error}`);
          w.stop(`error: stream ${m.index}: ${m.error}`);
        }
      } else if (m.type === 'error') {
        failure ??= new OtusError(m.code.startsWith('OTUS_ERR_') ? (m.code as OtusError['code']) : 'OTUS_ERR_SYSCALL', `worker ${i}: ${m.message}`);
        w.stop('worker failed');
      }
    });
    child.on('exit', (code) => {
      if (!done && stats[i] === null && failure === null) {
        failure = new OtusError('OTUS_ERR_SYSCALL', `worker ${i} exited unexpectedly (code ${code})`);
        w.stop('worker failed');
      }
    });
    const start: StartMessage = { type: 'start', driver: o.driver, options: opts, index: i, cpu: cpuFor(o.cpus, i, allowed), decoder: o.decoder };
    child.send(start);
  }

  const why = await w.promise;
  w.dispose();
  done = o.count > 0 && n >= o.count ? true : done;
  // A child that stopped on its own (socket error) may already have closed its channel.
  for (const c of children) if (c.connected) c.send({ type: 'stop' }, () => {});
  // Escalate: stop over IPC, then SIGKILL whoever has not exited after 5 s.
  const exits = children.map((c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : once(c, 'exit').then(() => {})));
  const killer = setTimeout(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }, 5000);
  await Promise.all(exits);
  clearTimeout(killer);
  done = true;

  let report = `otus capture: ${o.iface} (${o.driver}, ${o.workers} streams): ${n} frames; stopped: ${why}\n`;
  let totalDrops = 0;
  for (let i = 0; i < o.workers; i++) {
    const s = stats[i];
    if (!s) {
      report += `  stream ${i}: no statistics (worker lost)\n`;
      continue;
    }
    totalDrops += s.kernelDrops;
    report +=
      `  stream ${i}${s.cpu >= 0 ? ` cpu ${s.cpu}` : ''}: frames=${s.frames} kernel_packets=${s.kernelPackets}${outgoing(s.outgoingSkipped)} kernel_drops=${s.kernelDrops}` +
      ` freezes=${s.freezes} blocks=${s.batches} decode_errors=${s.decodeErrors} cpu_s=${((s.cpuUserUs + s.cpuSystemUs) / 1e6).toFixed(3)}\n`;
  }
  report += `  kernel drops, all streams: ${totalDrops}\n`;
  o.err.write(report);
  if (failure) throw failure;
}


// ------------------------------------------------------------- the command


interface CaptureArgs {
  interface?: string;
  driver?: string;
  workers?: number;
  task?: string;
  out?: string;
  'stats-json'?: string;
  'plugin-dir'?: string | string[];
  filter?: string;
  'filter-json'?: string;
  count: number;
  duration: number;
  tunnels: string;
  snaplen: number;
  promisc: boolean;
  'fanout-mode': string;
  'fanout-group'?: number;
  defrag: boolean;
  cpus: string;
  'block-size': number;
  'block-count'?: number;
  'retire-ms': number | undefined;
  'xdp-mode': string;
  'xdp-zero-copy': boolean;
  'xdp-steal': boolean;
  realtime: boolean;
}

/** The `capture` command for the yargs CLI (src/cli/otus.ts); `fail` prints coded errors and exits. */
export function captureCommand(fail: (err: unknown) => never): CommandModule<object, CaptureArgs> {
  return {
    command: 'capture',
    describe: 'capture live from an interface and print NDJSON as `otus decode` does, then per-stream statistics; with --task, run a task on the live traffic',
    builder: (y) =>
      y
        .option('interface', { alias: 'i', type: 'string', describe: 'interface to capture on (with --driver file: a pcap/pcapng file; with --task: default task.capture.interface)' })
        .option('driver', { type: 'string', describe: 'af_packet_v3 (default) | pcap | xdp | file (xdp takes the frames away from the host stack: mirror ports only; file replays a capture file)' })
        .option('workers', { type: 'number', describe: 'capture processes (fanout members), each pinned to a CPU (default 1; with --task: task.capture.workers)' })
        .option('task', { type: 'string', describe: 'run this task (docs/task-format.md): its filter, parsers, processors and reporter, through capture processes, the send ring and the sender' })
        .option('out', { type: 'string', describe: '--task: write NDJSON records to FILE, or - for stdout (default: the task reporter)' })
        .option('stats-json', { type: 'string', describe: '--task: also write the summary as JSON to FILE' })
        .option('plugin-dir', { type: 'string', describe: '--task: load third-party plugins from DIR (repeatable)' })
        .option('filter', { type: 'string', describe: 'BPF filter text (libpcap syntax)' })
        .option('filter-json', { type: 'string', describe: 'structured task filter: {"src_ip":[..],"dst_ip":[..],"ports":[..],"port_range":"A-B","protocol":"udp|tcp|any"}' })
        .option('count', { alias: 'c', type: 'number', default: 0, describe: 'stop after N frames (0 = never)' })
        .option('duration', { type: 'number', default: 0, describe: 'stop after S seconds (0 = never)' })
        .option('tunnels', { type: 'string', default: '', describe: 'decapsulate: vxlan,gre,erspan,geneve,ipip or all' })
        .option('snaplen', { type: 'number', default: 262144, describe: 'bytes kept of each frame' })
        .option('promisc', { type: 'boolean', default: true, describe: 'promiscuous mode (--no-promisc to disable)' })
        .option('fanout-mode', { type: 'string', default: 'hash', describe: 'af_packet_v3 fanout: hash | cpu | lb | qm' })
        .option('fanout-group', { type: 'number', describe: 'fanout group id (default: derived from the pid)' })
        .option('defrag', { type: 'boolean', default: true, describe: 'fanout defragments IPv4 first, so fragments stay on one stream' })
        .option('cpus', { type: 'string', default: 'auto', describe: 'pin workers: auto (stream index over allowed CPUs), off, or a list' })
        .option('block-size', { type: 'number', default: 1 << 20, describe: 'af_packet_v3 ring block bytes (power of two)' })
        .option('block-count', { type: 'number', describe: 'af_packet_v3 ring blocks per stream (default: task.capture.buffer_bytes / block size, else 32)' })
        .option('retire-ms', { type: 'number', describe: 'af_packet_v3: a partly filled block is handed over after this (default: task.capture.retire_ms, else 10)' })
        .option('xdp-mode', { type: 'string', default: 'auto', describe: 'xdp: auto | native | generic (copy mode works on any driver)' })
        .option('xdp-zero-copy', { type: 'boolean', default: false, describe: 'xdp: zero copy (the NIC driver must support it)' })
        .option('xdp-steal', { type: 'boolean', default: false, describe: "xdp on an interface that carries this host's traffic (lo, an address, a bridge port): take it away from the host's stack anyway (refused without)" })
        .option('realtime', { type: 'boolean', default: false, describe: 'file: replay at the recorded speed (default: as fast as possible)' }) as never,
    handler: async (argv) => {
      const ac = new AbortController();
      const onSignal = (): void => ac.abort();
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        if (argv.filter !== undefined && argv['filter-json'] !== undefined) {
          throw new OtusError('OTUS_ERR_BAD_ARGUMENT', '--filter and --filter-json: give one');
        }
        let filter: string | StructuredFilter | null = argv.filter ?? null;
        if (argv['filter-json'] !== undefined) {
          try {
            filter = JSON.parse(argv['filter-json']) as StructuredFilter;
          } catch (e) {
            throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--filter-json: not JSON: ${(e as Error).message}`);
          }
        }
        if (argv.task === undefined && argv.interface === undefined) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', '-i IFACE: required (or --task TASK.yml naming task.capture.interface)');
        for (const k of ['out', 'stats-json', 'plugin-dir'] as const) {
          if (argv.task === undefined && argv[k] !== undefined) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--${k}: only with --task`);
        }
        const decoder = defaultDecoderOptions();
        decoder.tunnels = parseTunnelList(argv.tunnels);
        const capture = defaultCaptureOptions(argv.interface ?? '');
        capture.snaplen = argv.snaplen;
        capture.promisc = argv.promisc;
        capture.fanoutMode = argv['fanout-mode'] as FanoutMode;
        if (argv['fanout-group'] !== undefined) capture.fanoutGroup = argv['fanout-group'];
        capture.fanoutDefrag = argv.defrag;
        capture.blockSize = argv['block-size'];
        if (argv['block-count'] !== undefined) capture.blockCount = argv['block-count'];
        if (argv['retire-ms'] !== undefined) capture.retireMs = argv['retire-ms'];
        capture.xdpMode = argv['xdp-mode'] as CaptureOptions['xdpMode'];
        capture.xdpZeroCopy = argv['xdp-zero-copy'];
        capture.xdpSteal = argv['xdp-steal'];
        capture.realtime = argv.realtime;
        if (argv.task !== undefined) {
          if (filter !== null) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', '--filter with --task: the task file\'s filter section applies');
          if (argv.count > 0) throw new OtusError('OTUS_ERR_BAD_ARGUMENT', '--count with --task: stop with --duration or a signal');
          if (argv.tunnels !== '') throw new OtusError('OTUS_ERR_BAD_ARGUMENT', '--tunnels with --task: a task decodes as `otus replay` does (tunnels off)');
          if (argv.workers !== undefined && argv.workers > 1) checkWorkers(argv.workers);
          // Segments of runs that died without cleaning up (killed, crashed).
          removeAllStaleSegments();
          // The ring's size from the task (capture.buffer_bytes) unless --block-count gives it.
          const { iface: _i, streams: _s, filter: _f, fanout: _fo, blockCount: _bc, bufferBytes: _bb, retireMs: _r, ...rest } = capture;
          const { summary, failure } = await runLiveTask({
            taskFile: argv.task,
            iface: argv.interface ?? null,
            driver: argv.driver ?? null,
            workers: argv.workers ?? null,
            out: outOption(argv.out),
            pluginDirs: ([] as string[]).concat(argv['plugin-dir'] ?? []),
            duration: argv.duration,
            signal: ac.signal,
            cpus: parseCpus(argv.cpus),
            capture: { ...rest, ...(argv['block-count'] !== undefined ? { blockCount: argv['block-count'] } : {}), ...(argv['retire-ms'] !== undefined ? { retireMs: argv['retire-ms'] } : {}) },
            onCapturing: (what) => process.stderr.write(`otus capture: task ${argv.task}: ${what}: capturing\n`),
          });
          process.stderr.write(formatSummary(summary));
          if (argv['stats-json'] !== undefined) writeFileSync(argv['stats-json'], JSON.stringify(summary, null, 2) + '\n');
          if (failure) throw failure;
          const lost = undeliveredExit(summary);
          if (lost !== null) process.exit(lost);
          return;
        }
        await runCapture({
          iface: argv.interface!,
          driver: argv.driver ?? 'af_packet_v3',
          workers: argv.workers ?? 1,
          filter,
          count: argv.count,
          duration: argv.duration,
          cpus: parseCpus(argv.cpus),
          decoder,
          capture,
          out: process.stdout,
          err: process.stderr,
          signal: ac.signal,
        });
      } catch (err) {
        fail(err);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    },
  };
}
