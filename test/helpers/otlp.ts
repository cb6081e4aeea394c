// Real OTLP receivers for the otlp reporter's tests: an HTTP server
// (POST /v1/logs) and a @grpc/grpc-js server (LogsService/Export) that
// decode ExportLogsServiceRequest with protobufjs from the official
// opentelemetry-proto definitions (proto/opentelemetry/). Each answers what
// its `answer` says, one answer per request in turn (then 200 / OK).

import http from 'node:http';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { ROOT } from './otus-replay.js';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(ROOT, 'proto', target);
root.loadSync('opentelemetry/proto/collector/logs/v1/logs_service.proto');
export const ExportRequest = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
const ExportResponse = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse');

// google.rpc.Status and RetryInfo, for a gRPC error's grpc-status-details-bin.
const rpc = protobuf.parse(`syntax = "proto3";
package google.rpc;
message Any { string type_url = 1; bytes value = 2; }
message Duration { int64 seconds = 1; int32 nanos = 2; }
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
message RetryInfo { Duration retry_delay = 1; }`).root;

export interface LogRecord {
  /** Nanoseconds, exact. */
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  eventName: string;
  body: string;
  attributes: Record<string, string>;
}

export interface Received {
  resource: Record<string, string>;
  scope: { name: string; version: string };
  records: LogRecord[];
}

function kv(list: any[] | undefined): Record<string, string> {
  const o: Record<string, string> = {};
  for (const a of list ?? []) o[a.key] = a.value?.stringValue;
  return o;
}

/** A decoded request, flattened: its one resource and scope, its log records. */
export function decodeRequest(b: Uint8Array): Received {
  const m = ExportRequest.toObject(ExportRequest.decode(b), { longs: String }) as any;
  const rl = m.resourceLogs;
  if (rl.length !== 1 || rl[0].scopeLogs.length !== 1) throw new Error(`expected one resource and one scope, got ${JSON.stringify(m).slice(0, 200)}`);
  const sl = rl[0].scopeLogs[0];
  return {
    resource: kv(rl[0].resource.attributes),
    scope: { name: sl.scope.name, version: sl.scope.version },
    records: sl.logRecords.map((r: any) => ({
      timeUnixNano: BigInt(r.timeUnixNano ?? 0),
      observedTimeUnixNano: BigInt(r.observedTimeUnixNano ?? 0),
      eventName: r.eventName,
      body: r.body.stringValue,
      attributes: kv(r.attributes),
    })),
  };
}

/** HTTP: a status (and headers); gRPC: a status code, with a RetryInfo delay in ms or none. */
export type Answer = { http: number; headers?: Record<string, string> } | { grpc: grpc.status; retryMs?: number };

export class OtlpReceiver {
  /** Requests taken (answered 200 / OK), decoded. */
  readonly accepted: Received[] = [];
  /** Every request, answered or refused. */
  requests = 0;
  /** When each request arrived (ms). */
  readonly times: number[] = [];
  private close_: () => void = () => undefined;

  constructor(readonly answers: Answer[] = []) {}

  get records(): LogRecord[] {
    return this.accepted.flatMap((r) => r.records);
  }

  private next(): Answer | undefined {
    this.times.push(performance.timeOrigin + performance.now());
    this.requests++;
    return this.answers[this.requests - 1];
  }

  async http(): Promise<string> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        const a = this.next() as { http: number; headers?: Record<string, string> } | undefined;
        if (req.url !== '/v1/logs' || req.method !== 'POST' || req.headers['content-type'] !== 'application/x-protobuf') {
          res.writeHead(404).end();
          return;
        }
        if (a !== undefined && a.http !== 200) {
          res.writeHead(a.http, { 'content-type': 'application/x-protobuf', ...a.headers }).end();
          return;
        }
        this.accepted.push(decodeRequest(Buffer.concat(chunks)));
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.from(ExportResponse.encode({}).finish()));
      });
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    this.close_ = () => server.close();
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  async grpc(): Promise<string> {
    const server = new grpc.Server();
    server.addService(
      {
        Export: {
          path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (m: object) => Buffer.from(ExportResponse.encode(ExportResponse.fromObject(m)).finish()),
          responseDeserialize: (b: Buffer) => b,
        },
      } as grpc.ServiceDefinition,
      {
        Export: (call: grpc.ServerUnaryCall<Buffer, object>, cb: grpc.sendUnaryData<object>) => {
          const a = this.next() as { grpc: grpc.status; retryMs?: number } | undefined;
          if (a !== undefined && a.grpc !== grpc.status.OK) {
            const metadata = new grpc.Metadata();
            if (a.retryMs !== undefined) {
              const info = rpc.lookupType('google.rpc.RetryInfo');
              const value = info.encode({ retryDelay: { seconds: Math.floor(a.retryMs / 1000), nanos: (a.retryMs % 1000) * 1e6 } }).finish();
              const st = rpc.lookupType('google.rpc.Status');
              metadata.set('grpc-status-details-bin', Buffer.from(st.encode({ code: a.grpc, message: 'busy', details: [{ typeUrl: 'type.googleapis.com/google.rpc.RetryInfo', value }] }).finish()));
            }
            cb({ code: a.grpc, details: 'refused by the test', metadata });
            return;
          }
          this.accepted.push(decodeRequest(call.request));
          cb(null, {});
        },
      },
    );
    const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    this.close_ = () => server.forceShutdown();
    return `127.0.0.1:${port}`;
  }

  close(): void {
    this.close_();
  }
}
