// `npm start`: the main job on an embedded default, no external service.
// Starts `otus daemon` on its built-in defaults (its control socket in a
// temporary directory, so it never meets an installed daemon), creates one
// task on the loopback interface through the control socket (sip, rtp, rtcp
// and dns parsers, console reporter), sends itself a few SIP requests and
// DNS queries so there is something to see, then stops the task and prints
// its summary. `npm start -- --follow` keeps the daemon running until Ctrl-C.
// Needs root (or CAP_NET_RAW) for the capture socket.

import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../src/ctl/client.js';
import { formatSummary, type TaskSummary } from '../src/supervisor/task-run.js';

const OTUS = fileURLToPath(new URL('../src/cli/otus.js', import.meta.url));
const follow = process.argv.includes('--follow');
const dir = mkdtempSync(join(tmpdir(), 'otus-quickstart-'));
const socket = join(dir, 'otus.sock');

const daemon = spawn(process.execPath, [OTUS, 'daemon', '--socket', socket], { stdio: ['ignore', 'inherit', 'inherit'] });
let exited = false;
daemon.on('exit', (code) => {
  exited = true;
  rmSync(dir, { recursive: true, force: true });
  process.exit(code ?? 1);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  for (let i = 0; i < 300 && !existsSync(socket); i++) await sleep(50);
  if (exited) return;
  const c = await ControlClient.connect(socket, { timeoutMs: 60_000 });
  await c.call('task.create', {
    task: {
      id: 'quickstart',
      capture: { interface: 'lo', workers: 1 },
      filter: { protocol: 'udp', ports: [5060, 53] },
      parsers: [{ plugin: 'sip' }, { plugin: 'rtp' }, { plugin: 'rtcp' }, { plugin: 'dns' }],
      reporter: { type: 'console' },
      unmatched_policy: 'drop',
    },
  });
  process.stderr.write(`otus quickstart: task "quickstart" captures on lo; sending a few SIP OPTIONS and DNS queries to 127.0.0.1\n`);
  await sendTraffic();
  if (follow) {
    process.stderr.write(`otus quickstart: the daemon runs on (socket ${socket}: otusctl --socket ${socket} task status --id quickstart); Ctrl-C stops it\n`);
    c.close();
    process.on('SIGINT', () => daemon.kill('SIGTERM'));
    return;
  }
  await sleep(1000);
  const stopped = (await c.call('task.stop', { id: 'quickstart' })) as { counters: TaskSummary };
  c.close();
  process.stderr.write(formatSummary(stopped.counters));
  daemon.kill('SIGTERM');
}

function sendTraffic(): Promise<void> {
  const sock = createSocket('udp4');
  sock.on('error', () => undefined); // nothing listens on 5060 or 53: the ICMP errors are expected
  let i = 0;
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const sip =
        `OPTIONS sip:otus@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-${i}\r\n` +
        `From: <sip:demo@127.0.0.1>;tag=${i}\r\nTo: <sip:otus@127.0.0.1>\r\nCall-ID: quickstart-${i}\r\nCSeq: ${i + 1} OPTIONS\r\nContent-Length: 0\r\n\r\n`;
      sock.send(sip, 5060, '127.0.0.1');
      sock.send(dnsQuery(i, 'otus.example'), 53, '127.0.0.1');
      if (++i === 5) {
        clearInterval(timer);
        setTimeout(() => {
          sock.close();
          resolve();
        }, 100);
      }
    }, 200);
  });
}

/** A DNS query for an A record (RFC 1035 §4.1). */
function dnsQuery(id: number, name: string): Buffer {
  const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
  return Buffer.from([id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
}

main().catch((e: unknown) => {
  process.stderr.write(`otus quickstart: ${e instanceof Error ? e.message : String(e)}\n`);
  daemon.kill('SIGTERM');
  process.exitCode = 1;
});
