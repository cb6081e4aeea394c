// The sender's cost with the hep reporter: `otus replay` of generated SIP
// calls (test/helpers/hep.ts sipCallFrames: per call 5 SIP messages, two with
// SDP, 6 G.711 RTP packets, an RTCP SR and RR: 13 records) into a collector in this
// process that counts what arrives, over UDP and TCP; beside it the file
// reporter (NDJSON) on the same replay. Prints the sender's records per
// CPU-second (its own summary: records handed to the reporter and the
// process's CPU time) and what the collector got. RTP records are skipped
// by the hep reporter (counted) and cost it next to nothing, so the SIP-only
// line (sipMessageFrames: SIP MESSAGE requests of ~500 bytes) is its cost
// per HEP packet.
//
//   node dist/bench/hep.js [--calls N] [--messages N] [--trials T]

import { benchArgs, int, opt } from './cli.js';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { writePcap } from '../test/helpers/live.js';
import { sipCallFrames, sipMessageFrames } from '../test/helpers/hep.js';
import { OTUS } from '../test/helpers/otus-replay.js';

const { calls, messages, trials } = benchArgs({ calls: opt(20000, int), messages: opt(200000, int), trials: opt(2, int) });

const dir = mkdtempSync(join(os.tmpdir(), 'otus-bench-hep-'));

interface Sender {
  records: number;
  cpu_s: number;
}

/** Runs the replay in a child, asynchronously: the collectors live in this process. */
function replay(reporter: string, parsers: string, file: string): Promise<{ sender: Sender; reporter: unknown }> {
  const task = join(dir, 'task.yml');
  writeFileSync(task, `task:\n  id: bench-hep\n  parsers:\n${parsers}  reporter: ${reporter}\n`);
  const st = join(dir, 'stats.json');
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [OTUS, 'replay', '--task', task, '--stats-json', st, file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => {
      if (code !== 0) return rej(new Error(`otus replay exited ${code}: ${err}`));
      res(JSON.parse(readFileSync(st, 'utf8')) as { sender: Sender; reporter: unknown });
    });
  });
}

async function udpCollector(): Promise<{ port: number; count: () => number; close: () => void }> {
  const s = createSocket('udp4');
  let n = 0;
  s.on('message', () => n++);
  await new Promise<void>((res) => s.bind(0, '127.0.0.1', () => res()));
  s.setRecvBufferSize(32 << 20);
  return { port: s.address().port, count: () => n, close: () => s.close() };
}

async function tcpCollector(): Promise<{ port: number; count: () => number; close: () => void }> {
  let bytes = 0;
  const s = createServer((c) => c.on('data', (d: Buffer) => (bytes += d.length)).on('error', () => undefined));
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', () => res()));
  return { port: (s.address() as AddressInfo).port, count: () => bytes, close: () => s.close() };
}

async function main(): Promise<void> {
  const callsFile = join(dir, 'calls.pcap');
  const msgFile = join(dir, 'messages.pcap');
  writePcap(callsFile, sipCallFrames(calls));
  writePcap(msgFile, sipMessageFrames(messages));
  const cpus = os.cpus();
  console.log(`# ${cpus.length} × ${cpus[0]?.model ?? '?'}, node ${process.version}; ${calls} calls (${calls * 13} records), ${messages} SIP messages`);
  const all = '    - plugin: sip\n    - plugin: rtp\n    - plugin: rtcp\n';
  const sipOnly = '    - plugin: sip\n';
  for (let t = 0; t < trials; t++) {
    for (const [name, parsers, file] of [
      ['calls', all, callsFile],
      ['sip-messages', sipOnly, msgFile],
    ] as const) {
      for (const transport of ['udp', 'tcp', 'file'] as const) {
        let c: { port: number; count: () => number; close: () => void } | null = null;
        let rep: string;
        if (transport === 'file') rep = `{type: file, config: {path: ${join(dir, 'out.ndjson')}}}`;
        else {
          c = transport === 'udp' ? await udpCollector() : await tcpCollector();
          rep = `{type: hep, config: {address: "127.0.0.1:${c.port}", transport: ${transport}, queue_max_messages: 10000}}`;
        }
        const s = await replay(rep, parsers, file);
        await new Promise((res) => setTimeout(res, 200)); // the last datagrams reach the collector
        const got = c?.count() ?? 0;
        c?.close();
        const perCpu = s.sender.records / s.sender.cpu_s;
        console.log(
          `${name.padEnd(13)} ${transport.padEnd(4)} ${String(s.sender.records).padStart(8)} records, sender ${s.sender.cpu_s.toFixed(2)} CPU-s, ` +
            `${(perCpu / 1000).toFixed(0)} k records per sender CPU-second` +
            (c ? `; collector got ${got} ${transport === 'udp' ? 'packets' : 'bytes'}; reporter ${JSON.stringify(s.reporter)}` : ''),
        );
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

await main();
