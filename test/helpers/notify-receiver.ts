// A systemd notify socket for tests: a python3 receiver (Node cannot bind
// Unix datagram sockets) prints each datagram as a JSON line with its
// CLOCK_MONOTONIC arrival time in µs, as systemd's manager would read it.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const RECEIVER = `
import json, socket, sys, time
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + addr[1:] if addr.startswith('@') else addr)
print(json.dumps({'data': None, 'mono_us': time.monotonic_ns() // 1000}), flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps({'data': data.decode('utf-8', 'replace'), 'mono_us': time.monotonic_ns() // 1000}), flush=True)
`;

export const python = spawnSync('python3', ['-c', 'import socket; socket.AF_UNIX'], { stdio: 'ignore' }).status === 0;
export const notifySkip = python ? false : 'needs python3 with AF_UNIX (scripts/setup.sh installs it)';

export interface Datagram {
  data: string;
  monoUs: number;
}

/** A bound datagram socket and the datagrams it has received, in order. */
export class Receiver {
  readonly got: Datagram[] = [];
  /** CLOCK_MONOTONIC µs once bound: before anything was sent to it. */
  boundUs = 0;
  private waiters: Array<() => void> = [];
  private constructor(private readonly proc: ChildProcess) {}

  static async start(address: string): Promise<Receiver> {
    const proc = spawn('python3', ['-u', '-c', RECEIVER, address], { stdio: ['ignore', 'pipe', 'inherit'] });
    const r = new Receiver(proc);
    const bound = new Promise<void>((resolve, reject) => {
      proc.once('exit', (code) => reject(new Error(`receiver exited (${code}) before binding ${address}`)));
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        const m = JSON.parse(line) as { data: string | null; mono_us: number };
        if (m.data === null) {
          r.boundUs = m.mono_us;
          resolve();
          return;
        }
        r.got.push({ data: m.data, monoUs: m.mono_us });
        for (const w of r.waiters.splice(0)) w();
      });
    });
    await bound;
    return r;
  }

  /** Resolves once `count` datagrams have arrived in all. */
  async until(count: number): Promise<Datagram[]> {
    while (this.got.length < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.got;
  }

  /** Resolves once a datagram `data` has arrived. */
  async untilData(data: string): Promise<void> {
    while (!this.got.some((d) => d.data === data)) await this.until(this.got.length + 1);
  }

  stop(): void {
    this.proc.removeAllListeners('exit');
    this.proc.kill();
  }
}

