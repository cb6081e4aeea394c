// The daemon's control socket (docs/control.md): JSON-RPC 2.0, one request
// per line, over a Unix stream socket. Each connection's peer credentials
// are checked when it connects; requests are size-limited; every malformed
// line, unknown method or bad parameter gets a JSON-RPC error, never a
// crash; an idle or slow client is dropped without holding up the others.

import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { OtusError } from '../util/errors.js';
import { peerCredentials } from './peer.js';

export const MAX_REQUEST_BYTES = 1 << 20;
const MAX_PENDING_OUTPUT = 16 << 20;
const IDLE_MS = 60_000;
/** Beyond this many connections, a new one closes the one idle longest: silent clients cannot lock others out. */
const MAX_CONNECTIONS = 256;

export interface ControlAccess {
  socket: string;
  mode: number;
  group: string | number | null;
  allowedUids: number[];
  allowedGids: number[];
}

/** A method: params in, result out; throw OtusError to refuse (-32000), RpcError for a protocol error. */
export type Handler = (params: Record<string, unknown>) => unknown;

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The gid of a group name (from /etc/group), or the number itself. */
function gidOf(group: string | number): number {
  if (typeof group === 'number') return group;
  if (/^\d+$/.test(group)) return Number(group);
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === group) return Number(f[2]);
  }
  throw new OtusError('OTUS_ERR_CONFIG', `control.group: no group ${JSON.stringify(group)} on this host`);
}

/**
 * mkdir -p, one level at a time: Node 20's recursive mkdirSync never returns
 * for a path under /proc (it retries ENOENT forever), and the daemon hung there.
 */
function mkdirs(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) mkdirs(parent);
  mkdirSync(dir, { mode: 0o755 });
}

/** The supplementary groups of a process (its /proc status), empty when it is gone. */
function groupsOf(pid: number): number[] {
  try {
    const m = /^Groups:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? m[1]!.trim().split(/\s+/).filter(Boolean).map(Number) : [];
  } catch {
    return [];
  }
}

export class ControlServer {
  private server: Server | null = null;
  /** The socket file's group: its members may connect by its mode, so they are served. */
  private socketGid = -1;
  /** Open connections and when each last sent a byte. */
  private readonly sockets = new Map<Socket, number>();
  /** Requests served and refused, for status. */
  readonly stats = { connections: 0, refusedPeers: 0, requests: 0, errors: 0 };

  constructor(
    private access: ControlAccess,
    private readonly handlers: Record<string, Handler>,
    private readonly log: Logger,
  ) {}

  /** A reloaded configuration's allowed uids and gids (the socket's path, mode and group need a restart). */
  setAccess(a: ControlAccess): void {
    this.access = { ...this.access, allowedUids: a.allowedUids, allowedGids: a.allowedGids };
  }

  async listen(): Promise<void> {
    const path = this.access.socket;
    try {
      mkdirs(dirname(path));
    } catch (e) {
      throw new OtusError('OTUS_ERR_CONFIG', `control.socket ${path}: cannot create its directory (${(e as Error).message})`);
    }
    await removeStaleSocket(path);
    const server = createServer((s) => this.accept(s));
    // No one but us may connect between bind and chmod.
    const mask = process.umask(0o177);
    try {
      await new Promise<void>((res, rej) => {
        server.once('error', rej);
        server.listen(path, () => {
          server.off('error', rej);
          res();
        });
      });
    } catch (e) {
      throw new OtusError('OTUS_ERR_CONFIG', `control.socket ${path}: cannot listen (${(e as Error).message})`);
    } finally {
      process.umask(mask);
    }
    if (this.access.group !== null) chownSync(path, -1, gidOf(this.access.group));
    chmodSync(path, this.access.mode);
    this.socketGid = statSync(path).gid;
    server.on('error', (e) => this.log.error({ err: e.message }, 'control socket error'));
    this.server = server;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    for (const c of this.sockets.keys()) c.destroy();
    await new Promise<void>((res) => s.close(() => res()));
    rmSync(this.access.socket, { force: true });
  }

  private allowed(uid: number, gid: number, pid: number): boolean {
    const a = this.access;
    if (uid === 0 || uid === process.getuid?.() || a.allowedUids.includes(uid)) return true;
    const gids = [this.socketGid, ...a.allowedGids];
    return gids.includes(gid) || groupsOf(pid).some((g) => gids.includes(g));
  }

  private accept(sock: Socket): void {
    this.stats.connections++;
    let peer: { pid: number; uid: number; gid: number };
    try {
      peer = peerCredentials(sock);
    } catch {
      sock.destroy();
      return;
    }
    sock.on('error', () => undefined);
    if (!this.allowed(peer.uid, peer.gid, peer.pid)) {
      this.stats.refusedPeers++;
      this.log.warn({ peer }, 'control socket: peer not allowed');
      sock.end(reply(null, { code: -32001, message: `permission denied: uid ${peer.uid} is not allowed on this socket` }));
      return;
    }
    if (this.sockets.size >= MAX_CONNECTIONS) this.evictIdlest();
    this.sockets.set(sock, Date.now());
    sock.on('close', () => this.sockets.delete(sock));
    sock.setTimeout(IDLE_MS, () => sock.destroy());
    let chunks: Buffer[] = [];
    let held = 0;
    let chain: Promise<void> = Promise.resolve();
    sock.on('data', (d: Buffer) => {
      this.sockets.set(sock, Date.now());
      let from = 0;
      for (let nl = d.indexOf(10, from); nl >= 0; nl = d.indexOf(10, from)) {
        chunks.push(d.subarray(from, nl));
        const size = held + nl - from;
        const line = size > MAX_REQUEST_BYTES ? null : Buffer.concat(chunks).toString('utf8');
        chunks = [];
        held = 0;
        from = nl + 1;
        if (line === null) return this.tooLarge(sock);
        chain = chain.then(() => this.serve(sock, line, peer));
      }
      if (from < d.length) {
        chunks.push(d.subarray(from));
        held += d.length - from;
        if (held > MAX_REQUEST_BYTES) this.tooLarge(sock);
      }
    });
  }

  private evictIdlest(): void {
    let oldest: Socket | null = null;
    let at = Infinity;
    for (const [s, t] of this.sockets) if (t < at) [oldest, at] = [s, t];
    oldest?.destroy();
  }

  private tooLarge(sock: Socket): void {
    this.stats.errors++;
    sock.removeAllListeners('data');
    sock.end(reply(null, { code: -32600, message: `request larger than ${MAX_REQUEST_BYTES} bytes` }), () => sock.destroy());
  }

  private async serve(sock: Socket, line: string, peer: { pid: number; uid: number }): Promise<void> {
    if (line.trim() === '') return;
    this.stats.requests++;
    const out = await this.answer(line);
    if (this.log.isLevelEnabled('debug')) {
      // The method only: params may carry a configuration and its secrets.
      const method = /"method"\s*:\s*"([^"\\]{1,64})"/.exec(line)?.[1] ?? null;
      const error = (JSON.parse(out) as { error?: { code: number } }).error?.code ?? null;
      this.log.debug({ method, uid: peer.uid, peer_pid: peer.pid, error }, 'control request');
    }
    if (sock.destroyed) return;
    // A client that does not read its answers is dropped before it costs us memory.
    if (sock.writableLength > MAX_PENDING_OUTPUT) return void sock.destroy();
    sock.write(out);
  }

  private async answer(line: string): Promise<string> {
    let req: unknown;
    try {
      req = JSON.parse(line);
    } catch (e) {
      this.stats.errors++;
      return reply(null, { code: -32700, message: `parse error: ${(e as Error).message}` });
    }
    const r = req as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
    const id = typeof r?.id === 'string' || typeof r?.id === 'number' ? r.id : null;
    if (r === null || typeof r !== 'object' || Array.isArray(r) || r.jsonrpc !== '2.0' || typeof r.method !== 'string') {
      this.stats.errors++;
      return reply(id, { code: -32600, message: 'invalid request: expected {"jsonrpc":"2.0","id":…,"method":"…","params":{…}}' });
    }
    const h = Object.hasOwn(this.handlers, r.method) ? this.handlers[r.method] : undefined;
    if (!h) {
      this.stats.errors++;
      return reply(id, { code: -32601, message: `method not found: ${r.method.slice(0, 100)} (methods: ${Object.keys(this.handlers).join(', ')})` });
    }
    if (r.params !== undefined && (r.params === null || typeof r.params !== 'object' || Array.isArray(r.params))) {
      this.stats.errors++;
      return reply(id, { code: -32602, message: 'invalid params: expected an object' });
    }
    try {
      return reply(id, undefined, await h((r.params ?? {}) as Record<string, unknown>));
    } catch (e) {
      this.stats.errors++;
      if (e instanceof RpcError) return reply(id, { code: e.code, message: e.message });
      if (e instanceof OtusError) return reply(id, { code: -32000, message: e.message, data: { code: e.code } });
      this.log.error({ method: r.method, err: e instanceof Error ? e.stack : String(e) }, 'control method failed');
      return reply(id, { code: -32000, message: `internal error in ${r.method}: ${e instanceof Error ? e.message : String(e)}`, data: { code: 'OTUS_ERR_INTERNAL' } });
    }
  }
}

function reply(id: string | number | null, error?: { code: number; message: string; data?: unknown }, result?: unknown): string {
  return JSON.stringify(error ? { jsonrpc: '2.0', id, error } : { jsonrpc: '2.0', id, result: result ?? null }) + '\n';
}

/** A socket file left by a daemon that died is removed; one that answers belongs to a live daemon: refuse to start. */
async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new OtusError('OTUS_ERR_CONFIG', `control.socket ${path}: exists and is not a socket`);
  const live = await new Promise<boolean>((res) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      res(true);
    });
    c.once('error', () => res(false));
  });
  if (live) throw new OtusError('OTUS_ERR_CONFIG', `control.socket ${path}: another daemon is listening there`);
  rmSync(path, { force: true });
}
