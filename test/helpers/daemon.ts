// A real `otus daemon` for tests: started as its own process on a temporary
// socket and configuration, driven with `otusctl` as an operator would.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './live.js';

export const OTUS = fileURLToPath(new URL('../../src/cli/otus.js', import.meta.url));
export const OTUSCTL = fileURLToPath(new URL('../../src/ctl/main.js', import.meta.url));

export interface CtlResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed, with --json; null otherwise or when it is not JSON. */
  json: any;
}

/** Runs otusctl as its own process (asynchronously: the test's event loop keeps reading the daemon's output). */
export function ctl(socket: string, args: string[], opts: { json?: boolean; uid?: string; gid?: string; timeoutMs?: number } = {}): Promise<CtlResult> {
  const json = opts.json ?? true;
  const argv = [OTUSCTL, '--socket', socket, ...(json ? ['--json'] : []), ...args];
  const [cmd, cmdArgs] = opts.uid ? ['setpriv', [`--reuid=${opts.uid}`, `--regid=${opts.gid ?? (opts.uid === 'nobody' ? 'nogroup' : opts.uid)}`, '--clear-groups', process.execPath, ...argv]] : [process.execPath, argv];
  return new Promise((resolve) => {
    const p = spawn(cmd as string, cmdArgs as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    p.on('close', (status) => {
      clearTimeout(t);
      let parsed: unknown = null;
      if (json) {
        try {
          parsed = JSON.parse(stdout);
        } catch {
          parsed = null;
        }
      }
      resolve({ status, stdout, stderr, json: parsed });
    });
  });
}

export interface Daemon {
  proc: ChildProcess;
  socket: string;
  /** Its stdout (the console reporter's records) and stderr (its pino JSON log lines). */
  out: string;
  err: string;
  exited: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The log lines parsed. */
  logs(): Record<string, unknown>[];
  stop(): Promise<void>;
}

/** Starts `otus daemon --config` on a configuration written into `dir`; resolves once its socket answers. */
export async function startDaemon(dir: string, configYaml: string, env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
  const cfg = join(dir, `otus-${Date.now()}.yml`);
  writeFileSync(cfg, configYaml);
  const socket = /socket:\s*(\S+)/.exec(configYaml)![1]!;
  const proc = spawn(process.execPath, [OTUS, 'daemon', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const d: Daemon = {
    proc,
    socket,
    out: '',
    err: '',
    exited: false,
    code: null,
    signal: null,
    logs: () =>
      d.err
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: async () => {
      if (d.exited) return;
      proc.kill('SIGTERM');
      if (!(await waitFor(() => d.exited, 60_000))) proc.kill('SIGKILL');
    },
  };
  proc.stdout!.on('data', (b: Buffer) => (d.out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (d.err += b.toString()));
  proc.on('exit', (code, sig) => {
    d.exited = true;
    d.code = code;
    d.signal = sig;
  });
  const up = await waitFor(() => d.exited || (existsSync(socket) && d.err.includes('otus daemon ready')), 60_000);
  if (!up || d.exited) throw new Error(`daemon did not start (exited ${d.exited}, code ${d.code}):\n${d.err}\n${d.out}`);
  return d;
}
