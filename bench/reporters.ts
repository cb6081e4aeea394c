// The sender's cost into the grpc and otlp reporters (and file, for
// reference): records per CPU-second of the process that sends, on
// bench/captures' calls (the records bench/kafka.ts uses: SIP, then G.711
// RTP, every RTP record with call-id, codec and media labels), through the
// sender's loop (bench/sender-loop.ts). The receivers run in this process,
// each trial's sender in a fresh one; they acknowledge without decoding
// (their cost is not the sender's):
//   grpc        otus.v1.Reporter/Report, json and protobuf records;
//   otlp-http   OTLP/HTTP protobuf, POST /v1/logs, answered 200;
//   otlp-grpc   OTLP/gRPC LogsService/Export, answered OK;
//   file        the file reporter into a temporary file (json, protobuf).
//
//   node dist/bench/reporters.js [--records N] [--calls C] [--contenders grpc,otlp-http,otlp-grpc,file] [--trials T]

import { benchArgs, int, list, oneOf, opt } from './cli.js';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import type { RecordFormat } from '../src/plugin/types.js';
import { type LoopResult, runSenderLoop, wireBatches } from './sender-loop.js';

const args = process.argv.slice(2);
// --trial JSON: one trial, in a process of its own (runTrial).
const o = benchArgs(
  {
    records: opt(1_000_000, int),
    calls: opt(1000, int),
    contenders: opt(['grpc', 'otlp-http', 'otlp-grpc', 'file'], list(oneOf('grpc', 'otlp-http', 'otlp-grpc', 'file'))),
    trials: opt(1, int),
  },
  { internal: ['--trial'] },
);

interface Trial {
  contender: string;
  format: RecordFormat;
  records: number;
  calls: number;
  endpoint: string;
}

async function trial(t: Trial): Promise<LoopResult> {
  const dir = mkdtempSync(join(os.tmpdir(), 'otus-bench-rep-'));
  try {
    const { u8, batches } = await wireBatches(t.calls, t.records, t.format, dir);
    if (t.contender === 'grpc') return await runSenderLoop('grpc', { endpoint: t.endpoint, format: t.format }, t.format, u8, batches);
    if (t.contender === 'file') return await runSenderLoop('file', { path: join(dir, 'out'), format: t.format }, t.format, u8, batches);
    const protocol = t.contender === 'otlp-grpc' ? 'grpc' : 'http/protobuf';
    return await runSenderLoop('otlp', { protocol, endpoint: t.endpoint }, 'json', u8, batches);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runTrial(t: Trial): Promise<LoopResult> {
  return new Promise((res, rej) => {
    const k = fork(fileURLToPath(import.meta.url), ['--trial', JSON.stringify(t)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let r: LoopResult | null = null;
    k.on('message', (m) => (r = m as LoopResult));
    k.on('exit', (code) => (code === 0 && r ? res(r) : rej(new Error(`trial ${t.contender} ${t.format} exited with ${code}`))));
  });
}

/** A gRPC server of both services, acknowledging without decoding records. */
async function grpcServer(): Promise<{ port: number; stop: () => void }> {
  const id = (b: Buffer): Buffer => b;
  const server = new grpc.Server();
  server.addService(
    {
      Report: { path: '/otus.v1.Reporter/Report', requestStream: true, responseStream: true, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
      Export: { path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
    } as grpc.ServiceDefinition,
    {
      Report: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        // BatchAck{seq}: the same bytes as the batch's first field.
        call.on('data', (b: Buffer) => call.write(Buffer.from([0x08, ...b.subarray(1, 1 + varintLen(b, 1))])));
        call.on('end', () => call.end());
        call.on('error', () => undefined);
      },
      Export: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.alloc(0)),
    },
  );
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { port, stop: () => server.forceShutdown() };
}

function varintLen(b: Buffer, o: number): number {
  let n = 1;
  while (b[o + n - 1]! >= 0x80) n++;
  return n;
}

async function httpServer(): Promise<{ port: number; stop: () => void }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  server.keepAliveTimeout = 60000;
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return { port: (server.address() as { port: number }).port, stop: () => server.close() };
}

async function main(): Promise<void> {
  const { records, calls, trials, contenders } = o;
  const g = await grpcServer();
  const h = await httpServer();
  try {
    console.log(`# ${os.cpus()[0].model}, ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, node ${process.version}; receivers in the parent process`);
    console.log(`# ${records} records, ${calls} calls`);
    for (let n = 0; n < trials; n++) {
      for (const contender of contenders) {
        const formats: RecordFormat[] = contender.startsWith('otlp') ? ['json'] : ['json', 'protobuf'];
        for (const format of formats) {
          const endpoint = contender === 'otlp-http' ? `http://127.0.0.1:${h.port}` : `127.0.0.1:${g.port}`;
          const r = await runTrial({ contender, format, records, calls, endpoint });
          console.log(
            `${contender.padEnd(9)} ${format.padEnd(8)}: ${r.records} records (${(r.bytes / r.records).toFixed(0)} B), ` +
              `${(r.records / r.wallSec / 1e3).toFixed(0)} k records/s, ${((r.cpuSec * 1e6) / r.records).toFixed(2)} CPU-s per million ` +
              `(${(r.records / r.cpuSec / 1e3).toFixed(0)} k per CPU-second); acked ${r.acked}, dropped ${r.dropped}`,
          );
        }
      }
    }
  } finally {
    g.stop();
    h.stop();
  }
}

if (args[0] === '--trial') {
  trial(JSON.parse(args[1]) as Trial).then(
    (r) => process.send!(r, () => process.exit(0)),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
} else await main();
