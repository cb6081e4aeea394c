// A real @grpc/grpc-js server of otus.v1.Reporter (proto/otus_report.proto)
// for the grpc reporter's tests: it decodes each RecordBatch with protobufjs
// from the .proto, keeps its records, and acknowledges it.

import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { ROOT } from './otus-replay.js';

const root = protobuf.loadSync(join(ROOT, 'proto/otus_report.proto'));
const RecordBatch = root.lookupType('otus.v1.RecordBatch');
const BatchAck = root.lookupType('otus.v1.BatchAck');

export interface ReportServerOptions {
  port?: number;
  /** Server credentials (TLS); plaintext without. */
  creds?: grpc.ServerCredentials;
}

export class ReportServer {
  /** Every record received, in order (a batch sent again appears twice). */
  readonly records: Buffer[] = [];
  readonly seqs: number[] = [];
  readonly metadata: Record<string, string>[] = [];

  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  static async start(o: ReportServerOptions = {}): Promise<ReportServer> {
    const server = new grpc.Server();
    let self: ReportServer | null = null;
    server.addService(
      {
        Report: {
          path: '/otus.v1.Reporter/Report',
          requestStream: true,
          responseStream: true,
          requestSerialize: (m: unknown) => Buffer.from(RecordBatch.encode(m as protobuf.Message).finish()),
          requestDeserialize: (b: Buffer) => RecordBatch.toObject(RecordBatch.decode(b), { longs: Number }),
          responseSerialize: (m: { seq: number }) => Buffer.from(BatchAck.encode(BatchAck.fromObject(m)).finish()),
          responseDeserialize: (b: Buffer) => BatchAck.decode(b),
        },
      } as grpc.ServiceDefinition,
      {
        Report: (call: grpc.ServerDuplexStream<{ seq: number; records?: Uint8Array[] }, { seq: number }>) => {
          const md: Record<string, string> = {};
          for (const [k, v] of Object.entries(call.metadata.getMap())) md[k] = String(v);
          self!.metadata.push(md);
          call.on('data', (b) => {
            for (const r of b.records ?? []) self!.records.push(Buffer.from(r));
            self!.seqs.push(b.seq);
            call.write({ seq: b.seq });
          });
          call.on('end', () => call.end());
          call.on('error', () => undefined);
        },
      },
    );
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync(`127.0.0.1:${o.port ?? 0}`, o.creds ?? grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    self = new ReportServer(server, port);
    return self;
  }

  /** Gone at once, connections cut (a crashed server). */
  kill(): void {
    this.server.forceShutdown();
  }
}
