// The built-in reporters never block the sender's event loop: a FIFO nobody
// reads, or a reader that stops, makes `blocked` true with a bounded amount
// held while timers keep firing, and abandon() gives it up at once, even with
// a write stuck in the kernel. With a reader that keeps up, every record
// arrives, in order. Output errors are counted drops, never exceptions. The
// file reporter's path: mode 0640 (or its `mode`), no symlinks, no directory
// every user may write to without the sticky bit.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { EncodedRecord, Reporter } from '../../src/plugin/types.js';
import { FdReporter, PENDING_MAX, fileReporter } from '../../src/sender-proc/reporters.js';

const dir = mkdtempSync(join(tmpdir(), 'otus-reporters-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
const path = (name: string): string => join(dir, `${name}-${seq++}`);
function fifo(): string {
  const p = path('fifo');
  assert.equal(spawnSync('mkfifo', ['-m', '600', p]).status, 0);
  return p;
}

/** Line i of the test output: a JSON record of 64 to ~1100 bytes (some records are 1.5 MiB: one chunk is 1 MiB). */
function line(i: number): Buffer {
  const pad = i % 997 === 0 ? 1.5 * (1 << 20) : 40 + ((i * 7919) % 1024);
  return Buffer.from(`{"n":${i},"pad":"${'x'.repeat(pad)}"}\n`);
}
const rec = (b: Buffer): EncodedRecord => ({ format: 'json', buf: b, off: 0, len: b.length });

function openFile(p: string, mode?: string): FdReporter {
  return fileReporter.init({ config: { path: p, format: 'json', mode: mode ?? '0640' }, node: {}, taskId: 't', worker: -1, where: 'test' }) as FdReporter;
}

const cat = (from: string, to: string): ChildProcess => {
  const c = spawn('sh', ['-c', 'exec cat "$0" > "$1"', from, to], { stdio: 'ignore' });
  children.push(c);
  return c;
};
const exited = (c: ChildProcess): Promise<void> =>
  c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', () => r()));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail('condition not reached');
    await sleep(10);
  }
}

/** Offers records until the reporter says it is blocked (or `max`); returns how many were offered. report() must return each time. */
function fillUntilBlocked(r: Reporter, max = 200_000): number {
  let i = 0;
  while (!r.blocked && i < max) r.report(rec(line(1 + (i++ % 996))));
  return i;
}

/** Counts timer callbacks while `fn` runs: a blocked event loop counts none. */
async function ticking<T>(fn: () => Promise<T>): Promise<{ value: T; ticks: number }> {
  let ticks = 0;
  const t = setInterval(() => ticks++, 5);
  try {
    const value = await fn();
    return { value, ticks };
  } finally {
    clearInterval(t);
  }
}

describe('reporters', () => {
  it('a small chunk is written without flush() (it waits for more only briefly), and flush() writes it at once', async () => {
    const p = path('small');
    const r = openFile(p);
    const a = line(1);
    r.report(rec(a));
    await until(() => existsSync(p) && statSync(p).size === a.length);
    assert.equal(r.pendingBytes, 0);
    assert.equal(r.written, 1);
    const b = line(2);
    r.report(rec(b));
    await r.flush();
    assert.equal(readFileSync(p).length, a.length + b.length, 'flush() resolves once the small chunk is written');
    await r.stop?.();
    assert.deepEqual(readFileSync(p), Buffer.concat([a, b]));
  });

  it('a FIFO nobody reads: report() keeps returning, blocked with a bounded amount held, the loop runs, abandon() gives it all up at once', async () => {
    const r = openFile(fifo());
    const offered = fillUntilBlocked(r);
    assert.equal(r.blocked, true);
    assert.ok(r.pendingBytes >= PENDING_MAX && r.pendingBytes <= PENDING_MAX + (2 << 20), `held ${r.pendingBytes}`);
    // Records offered past `blocked` are refused, counted: the hold stays bounded.
    for (let i = 0; i < 5000; i++) r.report(rec(line(1)));
    assert.ok(r.pendingBytes <= PENDING_MAX + (2 << 20));
    assert.equal(r.records + r.dropped, offered + 5000);
    const { ticks } = await ticking(() => Promise.race([r.writable(), sleep(300)]));
    assert.ok(ticks >= 10, `${ticks} timer ticks while blocked`);
    assert.equal(r.blocked, true, 'still nobody reading');
    const waiting = r.writable();
    const t0 = performance.now();
    const n = r.abandon();
    // Prompt: it waits for no write (the FIFO has no reader: one would wait for ever); 1 s is for a loaded CI machine.
    assert.ok(performance.now() - t0 < 1000, 'abandon() is prompt');
    assert.equal(n, r.records, 'every accepted record was still pending');
    assert.equal(r.dropped, offered + 5000);
    assert.equal(r.pendingBytes, 0);
    assert.equal(r.blocked, false);
    await waiting; // writable() waiters are let go
    await r.stop?.();
  });

  it('a reader that stops reading: blocked, bounded, the loop runs; abandon() is prompt though a write is stuck in the kernel', async () => {
    for (const kind of ['file reporter (non-blocking FIFO)', 'blocking pipe'] as const) {
      const p = fifo();
      const out = path('out');
      const reader = cat(p, out);
      let r: FdReporter;
      if (kind === 'blocking pipe') {
        // Opened blocking (it waits for cat): a full pipe holds the write in a thread-pool thread.
        r = new FdReporter({ fd: openSync(p, constants.O_WRONLY), close: true }, 'json');
      } else r = openFile(p);
      // Let the reader take some, then stop it.
      let i = 0;
      while (!existsSync(out) || statSync(out).size < 200_000) {
        r.report(rec(line(1 + (i++ % 996))));
        if (r.blocked) await r.writable();
        else if (i % 100 === 0) await sleep(1);
      }
      reader.kill('SIGSTOP');
      const offered = i + fillUntilBlocked(r);
      const { value: stillBlocked, ticks } = await ticking(async () => {
        await Promise.race([r.writable(), sleep(300)]);
        return r.blocked;
      });
      assert.equal(stillBlocked, true, `${kind}: blocked while the reader is stopped (${r.lastError} dropped ${r.dropped} written ${r.written} held ${r.pendingBytes})`);
      assert.ok(ticks >= 10, `${kind}: ${ticks} timer ticks while blocked`);
      assert.ok(r.pendingBytes <= PENDING_MAX + (2 << 20), `${kind}: held ${r.pendingBytes}`);
      const t0 = performance.now();
      const n = r.abandon();
      // It waits for no write (the reader is stopped: one would wait for ever); 1 s is for a loaded CI machine.
      assert.ok(performance.now() - t0 < 1000, `${kind}: abandon() is prompt`);
      assert.ok(n > 0);
      assert.equal(r.written + r.dropped, offered, `${kind}: every record written or counted dropped`);
      const stopped = r.stop!();
      await ticking(() => Promise.race([stopped, sleep(100)]));
      reader.kill('SIGKILL');
      await exited(reader);
      await stopped;
    }
  });

  it('a reader that keeps up gets every record, in order (JSON and length-delimited protobuf), with backpressure', async () => {
    for (const format of ['json', 'protobuf'] as const) {
      const p = fifo();
      const out = path('out');
      const reader = cat(p, out);
      const r = fileReporter.init({ config: { path: p, format, mode: '0640' }, node: {}, taskId: 't', worker: -1, where: 'test' }) as FdReporter;
      const want: Buffer[] = [];
      let blockedSeen = 0;
      for (let i = 0; i < 30_000; i++) {
        const b = line(i);
        r.report(rec(b));
        if (format === 'protobuf') {
          const len: number[] = [];
          for (let v = b.length; ; v >>>= 7) {
            if (v < 0x80) {
              len.push(v);
              break;
            }
            len.push((v & 0x7f) | 0x80);
          }
          want.push(Buffer.from(len));
        }
        want.push(b);
        if (r.blocked) {
          blockedSeen++;
          await r.writable();
        }
      }
      await r.flush();
      await r.stop!();
      await exited(reader);
      assert.equal(r.dropped, 0);
      assert.equal(r.written, 30_000);
      assert.ok(blockedSeen > 0, 'the bound was reached and waited out');
      assert.ok(readFileSync(out).equals(Buffer.concat(want)), `${format}: output is every record in order`);
    }
  });

  it('counts output errors as dropped records and never throws them (ENOSPC, EPIPE)', async () => {
    const full = openFile('/dev/full');
    for (let i = 0; i < 3000; i++) full.report(rec(line(1 + (i % 996))));
    await full.flush();
    assert.equal(full.dropped, 3000);
    assert.equal(full.written, 0);
    assert.match(full.lastError ?? '', /ENOSPC/);
    await full.stop!();

    const p = fifo();
    const rd = openSync(p, constants.O_RDONLY | constants.O_NONBLOCK);
    const wr = openSync(p, constants.O_WRONLY | constants.O_NONBLOCK);
    closeSync(rd); // the reader goes away
    const pipe = new FdReporter({ fd: wr, close: true }, 'json');
    for (let i = 0; i < 100; i++) pipe.report(rec(line(1)));
    await pipe.flush();
    assert.equal(pipe.dropped, 100);
    assert.match(pipe.lastError ?? '', /EPIPE/);
    await pipe.stop!();
  });

  it('file: renamed (logrotate) or deleted under the reporter, it is made again at its path; every record is in one of the files', async () => {
    const a = path('out');
    const r = openFile(a);
    let n = 0;
    const write = async (k: number): Promise<void> => {
      for (let i = 0; i < k; i++) r.report(rec(line(++n % 996)));
      await r.flush!();
    };
    const count = (p: string): number => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).length : 0);
    await write(100);
    renameSync(a, `${a}.1`);
    // The next check (at most a second) makes a new file; what is written meanwhile goes to the renamed one.
    await until(() => existsSync(a), 5000);
    await write(50);
    assert.equal(count(`${a}.1`), 100, 'the renamed file has what came before');
    assert.equal(count(a), 50, 'the new file what came after');
    assert.equal(statSync(a).mode & 0o777, 0o640, 'made with the configured mode');
    unlinkSync(a);
    await until(() => existsSync(a), 5000);
    await write(25);
    assert.equal(count(a), 25);
    assert.equal(r.reopened, 2);
    assert.equal(r.dropped, 0);
    await r.stop!();
  });

  it('file: mode 0640 by default (or `mode`), truncated; a symlink and a world-writable non-sticky directory are refused', async () => {
    const a = path('out');
    const r = openFile(a);
    r.report(rec(line(1)));
    await r.stop!();
    assert.equal(statSync(a).mode & 0o777, 0o640);
    assert.ok(readFileSync(a).equals(line(1)));

    const b = path('out');
    writeFileSync(b, 'old contents, older mode');
    chmodSync(b, 0o666);
    const r2 = openFile(b, '0600');
    await r2.stop!();
    assert.equal(statSync(b).mode & 0o777, 0o600);
    assert.equal(readFileSync(b, 'utf8'), '', 'truncated');

    const target = path('target');
    writeFileSync(target, 'keep');
    const link = path('link');
    symlinkSync(target, link);
    assert.throws(() => openFile(link), (e: { code?: string; message: string }) => {
      assert.equal(e.code, 'OTUS_ERR_CONFIG');
      assert.ok(e.message.includes(link), e.message);
      assert.match(e.message, /symbolic link/);
      return true;
    });
    assert.equal(readFileSync(target, 'utf8'), 'keep');

    const open = mkdtempSync(join(dir, 'world-'));
    chmodSync(open, 0o777);
    const inOpen = join(open, 'out.ndjson');
    assert.throws(() => openFile(inOpen), (e: { code?: string; message: string }) => {
      assert.equal(e.code, 'OTUS_ERR_CONFIG');
      assert.ok(e.message.includes(inOpen), e.message);
      assert.match(e.message, /writable by every user and not sticky/);
      return true;
    });
    assert.ok(!existsSync(inOpen), 'nothing created');
    chmodSync(open, 0o1777); // sticky, as /tmp: allowed
    const r3 = openFile(inOpen);
    await r3.stop!();
    assert.ok(existsSync(inOpen));
  });
});
