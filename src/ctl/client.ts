// A client of the daemon's control socket (docs/control.md): JSON-RPC 2.0,
// one request per line over a Unix stream socket. Every way of not getting an
// answer is a CtlUnreachable naming the socket and why; an answer that is a
// JSON-RPC error is a CtlRefused carrying the daemon's codes and message.

import { statSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { OtusError } from '../util/errors.js';

/** A response line longer than this is refused (a task's counters are a few KiB). */
export const MAX_RESPONSE_LINE = 16 * 1024 * 1024;
/** The daemon refuses request lines longer than this; the client refuses to send them. */
export const MAX_REQUEST_LINE = 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 10_000;

/** JSON-RPC code of a peer the daemon does not serve (docs/control.md). */
const RPC_NOT_ALLOWED = -32001;

export type UnreachableReason = 'absent' | 'denied' | 'stale' | 'not_socket' | 'busy' | 'timeout' | 'closed' | 'protocol' | 'io';

export class CtlUnreachable extends OtusError {
  readonly reason: UnreachableReason;
  readonly socketPath: string;
  constructor(socketPath: string, reason: UnreachableReason, message: string) {
    super('OTUS_ERR_CTL_UNREACHABLE', message);
    this.name = 'CtlUnreachable';
    this.reason = reason;
    this.socketPath = socketPath;
  }
}

export class CtlRefused extends OtusError {
  /** The JSON-RPC error code (-32000: the daemon refused; -326xx: the request was bad). */
  readonly rpcCode: number;
  /** `error.data.code`: the daemon's Otus error code, when it sent one. */
  readonly otusCode: string | null;
  readonly data: unknown;
  constructor(rpcCode: number, otusCode: string | null, message: string, data: unknown) {
    super('OTUS_ERR_CTL_REFUSED', message);
    this.name = 'CtlRefused';
    this.rpcCode = rpcCode;
    this.otusCode = otusCode;
    this.data = data;
  }
}

function deniedMessage(path: string): string {
  return `permission denied on ${path} (your uid ${process.getuid?.() ?? '?'} is not allowed: run as root or ask for control.allowed_uids/allowed_gids)`;
}

function connectError(path: string, e: NodeJS.ErrnoException): CtlUnreachable {
  switch (e.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new CtlUnreachable(path, 'absent', `no daemon socket at ${path} (is otus daemon running? --socket / OTUS_SOCKET)`);
    case 'EACCES':
    case 'EPERM':
      return new CtlUnreachable(path, 'denied', deniedMessage(path));
    case 'ECONNREFUSED': {
      // Linux also answers ECONNREFUSED for a path that is not a socket at all.
      let isSocket = true;
      try {
        isSocket = statSync(path).isSocket();
      } catch {
        // gone since: still nothing listening
      }
      return isSocket
        ? new CtlUnreachable(path, 'stale', `nothing listening on ${path} (stale socket: the daemon is not running)`)
        : new CtlUnreachable(path, 'not_socket', `${path} is not a socket (--socket / OTUS_SOCKET)`);
    }
    case 'EAGAIN':
      return new CtlUnreachable(path, 'busy', `the daemon is not accepting connections on ${path} (its queue is full)`);
    default:
      return new CtlUnreachable(path, 'io', `cannot connect to ${path}: ${e.message}`);
  }
}

interface Pending {
  method: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface RpcError {
  code?: unknown;
  message?: unknown;
  data?: unknown;
}

function refusal(err: RpcError): CtlRefused {
  const code = typeof err.code === 'number' ? err.code : 0;
  const message = typeof err.message === 'string' && err.message !== '' ? err.message : `JSON-RPC error ${code}`;
  const d = err.data as { code?: unknown } | null | undefined;
  const otus = d !== null && typeof d === 'object' && typeof d.code === 'string' ? d.code : null;
  return new CtlRefused(code, otus, message, err.data);
}

export class ControlClient {
  readonly path: string;
  private readonly sock: Socket;
  private readonly timeoutMs: number;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Bytes of an incomplete response line. */
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Set once the connection is unusable; every later call fails with it. */
  private dead: CtlUnreachable | null = null;

  private constructor(sock: Socket, path: string, timeoutMs: number) {
    this.sock = sock;
    this.path = path;
    this.timeoutMs = timeoutMs;
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', (e: NodeJS.ErrnoException) => this.fail(new CtlUnreachable(path, 'closed', `the connection to ${path} failed${this.during()}: ${e.code ?? e.message}`)));
    sock.on('close', () => this.fail(new CtlUnreachable(path, 'closed', `the daemon closed the connection on ${path}${this.during()}`)));
  }

  /** Connects to the daemon's socket; `timeoutMs` (default 10 s) bounds the connect and each call. */
  static connect(path: string, opts: { timeoutMs?: number } = {}): Promise<ControlClient> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const sock = createConnection({ path });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new CtlUnreachable(path, 'timeout', `no connection to ${path} in ${timeoutMs} ms`));
      }, timeoutMs);
      const onError = (e: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        sock.destroy();
        reject(connectError(path, e));
      };
      sock.once('error', onError);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.off('error', onError);
        resolve(new ControlClient(sock, path, timeoutMs));
      });
    });
  }

  /** Sends one request and resolves with its result. */
  call<T>(method: string, params?: object): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const line = JSON.stringify(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params }) + '\n';
    const size = Buffer.byteLength(line);
    if (size > MAX_REQUEST_LINE) {
      return Promise.reject(new OtusError('OTUS_ERR_BAD_ARGUMENT', `${method}: the request is ${size} bytes; the daemon takes at most ${MAX_REQUEST_LINE} per request`));
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CtlUnreachable(this.path, 'timeout', `no answer from the daemon on ${this.path} to ${method} in ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject, timer });
      this.sock.write(line);
    });
  }

  close(): void {
    if (!this.dead) this.fail(new CtlUnreachable(this.path, 'closed', `the connection to ${this.path} is closed`));
    this.sock.destroy();
  }

  private during(): string {
    const first = this.pending.values().next();
    return first.done ? '' : ` before answering ${first.value.method}`;
  }

  private fail(e: CtlUnreachable): void {
    if (this.dead) return;
    this.dead = e;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
    this.chunks = [];
    this.buffered = 0;
  }

  private protocolError(what: string): void {
    this.fail(new CtlUnreachable(this.path, 'protocol', `bad response from the daemon on ${this.path}: ${what}`));
    this.sock.destroy();
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    while (!this.dead) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      const part = chunk.subarray(start, nl);
      start = nl + 1;
      let line = part;
      if (this.buffered > 0) {
        this.chunks.push(part);
        line = Buffer.concat(this.chunks, this.buffered + part.length);
        this.chunks = [];
        this.buffered = 0;
      }
      if (line.length > MAX_RESPONSE_LINE) return this.protocolError(`a line of more than ${MAX_RESPONSE_LINE} bytes`);
      this.onLine(line);
    }
    if (this.dead || start >= chunk.length) return;
    this.buffered += chunk.length - start;
    if (this.buffered > MAX_RESPONSE_LINE) return this.protocolError(`a line of more than ${MAX_RESPONSE_LINE} bytes`);
    this.chunks.push(chunk.subarray(start));
  }

  private onLine(line: Buffer): void {
    let msg: { id?: unknown; result?: unknown; error?: RpcError };
    try {
      msg = JSON.parse(line.toString('utf8'));
    } catch {
      return this.protocolError('a line that is not JSON');
    }
    if (msg === null || typeof msg !== 'object') return this.protocolError('a line that is not a JSON-RPC response');
    const err = msg.error !== null && typeof msg.error === 'object' ? msg.error : null;
    if (typeof msg.id !== 'number') {
      // No id: the daemon answers a peer it does not serve, or a line it could not read.
      if (err?.code === RPC_NOT_ALLOWED) {
        this.fail(new CtlUnreachable(this.path, 'denied', deniedMessage(this.path)));
        return;
      }
      if (err) {
        const e = refusal(err);
        for (const p of this.pending.values()) {
          clearTimeout(p.timer);
          p.reject(e);
        }
        this.pending.clear();
        return;
      }
      return this.protocolError('a response without an id');
    }
    const p = this.pending.get(msg.id);
    if (!p) return; // the answer to a call that timed out
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (err) {
      if (err.code === RPC_NOT_ALLOWED) p.reject(new CtlUnreachable(this.path, 'denied', deniedMessage(this.path)));
      else p.reject(refusal(err));
    } else if ('result' in msg) {
      p.resolve(msg.result);
    } else {
      p.reject(new CtlUnreachable(this.path, 'protocol', `bad response from the daemon on ${this.path}: neither result nor error for ${p.method}`));
    }
  }
}
