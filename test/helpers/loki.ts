// A stand-in for Loki's push API (POST /loki/api/v1/push, JSON), on a local
// port: it keeps every push it accepted, and can answer with an error
// status or be closed and opened again on the same port.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LokiPushBody {
  streams: { stream: Record<string, string>; values: [string, string][] }[];
}

export interface LokiReceiver {
  port: number;
  url: string;
  /** Every accepted push, parsed, with its request headers. */
  pushes: { body: LokiPushBody; headers: IncomingMessage['headers'] }[];
  /** Requests answered with an error status (see `failWith`). */
  refused: number;
  /** Answer every push with this status (0: accept, 204). */
  failWith: number;
  /** Every line accepted, in order. */
  lines(): string[];
  close(): Promise<void>;
  /** Listens again on the same port. */
  reopen(): Promise<void>;
}

export async function startLokiReceiver(port = 0): Promise<LokiReceiver> {
  let server: Server | null = null;
  const r: LokiReceiver = {
    port,
    url: '',
    pushes: [],
    refused: 0,
    failWith: 0,
    lines: () => r.pushes.flatMap((p) => p.body.streams.flatMap((s) => s.values.map((v) => v[1]))),
    close: () =>
      new Promise<void>((res) => {
        if (server === null) return res();
        server.closeAllConnections();
        server.close(() => res());
        server = null;
      }),
    reopen: () => listen(r.port),
  };
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/loki/api/v1/push' || req.headers['content-type'] !== 'application/json') {
        res.writeHead(400).end(`unexpected ${req.method} ${req.url} ${req.headers['content-type']}`);
        return;
      }
      if (r.failWith !== 0) {
        r.refused++;
        res.writeHead(r.failWith).end('refused by the test');
        return;
      }
      r.pushes.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as LokiPushBody, headers: req.headers });
      res.writeHead(204).end();
    });
  };
  const listen = (p: number): Promise<void> =>
    new Promise((res, rej) => {
      const s = createServer(handle);
      s.once('error', rej);
      s.listen(p, '127.0.0.1', () => {
        server = s;
        r.port = (s.address() as AddressInfo).port;
        r.url = `http://127.0.0.1:${r.port}/loki/api/v1/push`;
        res();
      });
    });
  await listen(port);
  return r;
}
