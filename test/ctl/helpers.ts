// A small JSON-RPC server on a real Unix socket (line-delimited, as
// docs/control.md), and otusctl run as a real process against it.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CTL_MAIN = fileURLToPath(new URL('../../src/ctl/main.js', import.meta.url));

export interface RpcRequest {
  jsonrpc: string;
  id: number;
  method: string;
  params?: Record<string, unknown>;
}

/** What the server does with a request: answer it, close the connection, never answer, or write raw bytes. */
export type RpcAction =
  | { result: unknown }
  | { error: { code: number; message: string; data?: unknown } }
  | 'close'
  | 'hang'
  | { raw: string };

export interface RpcServer {
  path: string;
  /** Every request line received, parsed, in order. */
  requests: RpcRequest[];
  /** Connections accepted. */
  connections: number;
  /** Writes a message (JSON, one line) to every open connection: a late or unasked-for answer. */
  send(msg: unknown): void;
  close(): Promise<void>;
}

export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'otusctl-t-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Serves `path`; `onConnect` may write to a fresh connection first (e.g. a -32001 refusal). */
export async function startRpcServer(
  path: string,
  handle: (req: RpcRequest) => RpcAction,
  onConnect?: (conn: Socket) => void,
): Promise<RpcServer> {
  const conns = new Set<Socket>();
  const s: RpcServer = {
    path,
    requests: [],
    connections: 0,
    send: (msg) => {
      for (const c of conns) c.write(JSON.stringify(msg) + '\n');
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((conn) => {
    s.connections++;
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    conn.on('error', () => {});
    if (onConnect) onConnect(conn);
    let buf = '';
    conn.on('data', (d) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const req = JSON.parse(buf.slice(0, nl)) as RpcRequest;
        buf = buf.slice(nl + 1);
        s.requests.push(req);
        const a = handle(req);
        if (a === 'close') conn.destroy();
        else if (a === 'hang') continue;
        else if ('raw' in a) conn.write(a.raw);
        else conn.write(JSON.stringify({ jsonrpc: '2.0', id: req.id, ...a }) + '\n');
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return s;
}

export interface CtlRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs `node main.js ...args` (asynchronously: the test's own server must keep
 * answering meanwhile). `prefix` runs it under another command (setpriv ...).
 */
export function runCtl(args: string[], o: { env?: NodeJS.ProcessEnv; input?: string; prefix?: string[]; killAfterMs?: number } = {}): Promise<CtlRun> {
  const t0 = Date.now();
  const argv = [...(o.prefix ?? []), process.execPath, CTL_MAIN, ...args];
  const env = { ...process.env, ...o.env };
  if (o.env?.OTUS_SOCKET === undefined) delete env.OTUS_SOCKET;
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.on('error', () => {});
  child.stdin.end(o.input ?? '');
  // A guard against a hung otusctl, far beyond any timeout a test sets.
  const guard = setTimeout(() => child.kill('SIGKILL'), o.killAfterMs ?? 30_000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

/** A stack trace's "    at f (file:line)" lines must never reach the user. */
export const STACK_LINE = /^\s+at .+[:(]/m;
