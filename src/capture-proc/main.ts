// A capture process: one stream of a capture driver (one AF_PACKET fanout
// member), pinned to its CPU, decoding every frame and writing NDJSON lines
// to stdout (a pipe to the parent, which merges the streams). Controlled over
// the IPC channel: {type:'start'} → {type:'ready'}; {type:'stop'} or a lost
// parent → the stream drained (what the kernel took is walked) →
// {type:'stats'} and exit. SIGINT/SIGTERM from the terminal's process group
// are left to the parent, which stops every child in order.

import { type CaptureOptions, createCapturer } from '../capture/index.js';
import type { DecoderOptions } from '../decode/options.js';
import { native } from '../native.js';
import { NdjsonSink } from './sink.js';

export interface StartMessage {
  type: 'start';
  driver: string;
  options: CaptureOptions;
  index: number;
  /** CPU to pin to, or -1. */
  cpu: number;
  decoder: DecoderOptions;
}

export interface StatsMessage {
  type: 'stats';
  index: number;
  cpu: number;
  frames: number;
  batches: number;
  kernelPackets: number;
  /** lo: outgoing copies skipped, counted by the kernel in kernelPackets. */
  outgoingSkipped: number;
  kernelDrops: number;
  freezes: number;
  decodeErrors: number;
  cpuUserUs: number;
  cpuSystemUs: number;
  /** The stream failed (socket error), or null. */
  error: string | null;
}

export type ChildMessage = { type: 'ready'; index: number; cpu: number } | StatsMessage | { type: 'error'; message: string; code: string };

function send(m: ChildMessage): void {
  process.send?.(m);
}

/** The last message: disconnect once it is out (disconnecting with it still queued crashed inside Node's child_process). */
function sendLast(m: ChildMessage): void {
  if (process.connected) process.send!(m, () => process.disconnect());
}

process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.stdout.on('error', () => process.exit(0));

process.once('message', (m: StartMessage) => {
  let stopped = false;
  try {
    if (m.cpu >= 0) native.setAffinity(m.cpu);
    const capturer = createCapturer(m.driver, m.options);
    capturer.init();
    const stream = capturer.capture(m.index);
    let failure: string | null = null;
    const sink = new NdjsonSink(m.decoder, process.stdout, 0, () => {}, (_i, message) => {
      failure = message;
      void stop();
    });
    sink.attach(stream);
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      // What the kernel already took is walked (or counted) before the socket closes: frames + drops = kernel packets.
      await stream.drain();
      stream.stop();
      sink.flush();
      const st = stream.stats();
      const cpu = process.cpuUsage();
      let decodeErrors = 0;
      for (const e of sink.decoder.stats.errors) decodeErrors += e;
      sendLast({
        type: 'stats',
        index: m.index,
        cpu: m.cpu,
        frames: st.frames,
        batches: st.batches,
        kernelPackets: st.kernelPackets,
        outgoingSkipped: st.outgoingSkipped,
        kernelDrops: st.kernelDrops,
        freezes: st.freezes,
        decodeErrors,
        cpuUserUs: cpu.user,
        cpuSystemUs: cpu.system,
        error: failure,
      });
    };
    process.on('message', (msg: { type: string }) => {
      if (msg.type === 'stop') void stop();
    });
    process.on('disconnect', () => void stop());
    stream.start(sink);
    send({ type: 'ready', index: m.index, cpu: m.cpu });
  } catch (err) {
    const e = err as { message?: string; code?: string };
    sendLast({ type: 'error', message: e.message ?? String(err), code: e.code ?? 'OTUS_ERR_SYSCALL' });
    process.exitCode = 2;
  }
});
