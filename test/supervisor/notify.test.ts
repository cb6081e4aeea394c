// SdNotify against a real AF_UNIX datagram socket (test/helpers/notify-receiver.ts).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SdNotify } from '../../src/supervisor/notify.js';
import { notifySkip as skip, Receiver } from '../helpers/notify-receiver.js';

const dir = mkdtempSync(join(tmpdir(), 'otus-notify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('SdNotify', { skip }, () => {
  test('sends the sd_notify(3) assignments, one datagram per message, to a socket path', { timeout: 30_000 }, async () => {
    const path = join(dir, 'notify.sock');
    const rx = await Receiver.start(path);
    try {
      const n = SdNotify.fromEnv({ NOTIFY_SOCKET: path });
      assert.equal(n.enabled, true);
      assert.equal(n.watchdogUsec, 0);
      n.status('loading configuration');
      n.ready();
      n.ready('2 tasks running');
      n.status('line one\nline two\r\n\0three\n');
      n.reloading();
      n.stopping();
      const got = await rx.until(6);
      assert.deepEqual(
        got.slice(0, 4).map((d) => d.data),
        ['STATUS=loading configuration', 'READY=1', 'READY=1\nSTATUS=2 tasks running', 'STATUS=line one line two three'],
      );
      const m = /^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(got[4].data);
      assert.ok(m, `reloading sent ${JSON.stringify(got[4].data)}`);
      // The receiver reads CLOCK_MONOTONIC itself: the stamp lies between its bind and the arrival.
      const usec = Number(m[1]);
      assert.ok(usec >= rx.boundUs && usec <= got[4].monoUs, `MONOTONIC_USEC ${usec} not within [${rx.boundUs}, ${got[4].monoUs}]`);
      assert.equal(got[5].data, 'STOPPING=1');
      assert.equal(n.failures, 0);
    } finally {
      rx.stop();
    }
  });

  test("an abstract address ('@name') reaches the socket bound to NUL+name", { timeout: 30_000 }, async () => {
    const address = `@otus-notify-test-${randomBytes(6).toString('hex')}`;
    const rx = await Receiver.start(address);
    try {
      const n = SdNotify.fromEnv({ NOTIFY_SOCKET: address });
      n.ready('up');
      const got = await rx.until(1);
      assert.equal(got[0].data, 'READY=1\nSTATUS=up');
      assert.equal(n.failures, 0);
    } finally {
      rx.stop();
    }
  });

  test('a long status is cut to fit systemd’s 4096-byte notification buffer', { timeout: 30_000 }, async () => {
    const path = join(dir, 'long.sock');
    const rx = await Receiver.start(path);
    try {
      SdNotify.fromEnv({ NOTIFY_SOCKET: path }).status('é'.repeat(5000));
      const [d] = await rx.until(1);
      assert.ok(Buffer.byteLength(d.data) < 4096, `${Buffer.byteLength(d.data)} bytes`);
      assert.match(d.data, /^STATUS=é+$/);
    } finally {
      rx.stop();
    }
  });

  test('watchdog: WATCHDOG=1 every half interval while healthy, none while not, none after stop', { timeout: 60_000 }, async () => {
    const path = join(dir, 'watchdog.sock');
    const rx = await Receiver.start(path);
    const intervalUs = 400_000;
    try {
      const n = SdNotify.fromEnv({ NOTIFY_SOCKET: path, WATCHDOG_USEC: String(intervalUs), WATCHDOG_PID: String(process.pid) });
      assert.equal(n.watchdogUsec, intervalUs);
      let healthy = true;
      let trueCalls = 0;
      let falseCalls = 0;
      let onCall: (() => void) | null = null;
      const stop = n.startWatchdog(() => {
        if (healthy) trueCalls++;
        else falseCalls++;
        onCall?.();
        return healthy;
      });
      const called = (enough: () => boolean) =>
        new Promise<void>((resolve) => {
          onCall = () => enough() && resolve();
        });

      // The first ping goes at once, then one per half interval.
      const pings = await rx.until(5);
      assert.ok(pings.every((d) => d.data === 'WATCHDOG=1'));
      for (let i = 2; i < 5; i++) {
        const gap = pings[i].monoUs - pings[i - 1].monoUs;
        // Timers never fire early (1 ms of rounding); late, on a busy machine, but
        // the pings must still come well inside the watchdog's interval.
        assert.ok(gap >= intervalUs / 2 - 5_000, `ping ${i} came ${gap} µs after the one before`);
      }
      const mean = (pings[4].monoUs - pings[1].monoUs) / 3;
      assert.ok(mean < intervalUs, `mean gap ${mean} µs is not within the ${intervalUs} µs watchdog`);

      // Unhealthy: healthy() is still asked, but no ping goes; healthy again: pings resume.
      healthy = false;
      await called(() => falseCalls >= 3);
      healthy = true;
      const resumed = trueCalls;
      await called(() => trueCalls > resumed);
      stop();
      // Datagrams on a Unix socket arrive in order: once this marker is in, every ping is.
      n.status('stopped');
      await rx.untilData('STATUS=stopped');
      const watchdogs = rx.got.filter((d) => d.data === 'WATCHDOG=1').length;
      assert.equal(watchdogs, trueCalls, `${watchdogs} pings for ${trueCalls} healthy and ${falseCalls} unhealthy checks`);

      // Stopped: proving an absence needs a wait, two ping intervals.
      const calls = trueCalls + falseCalls;
      const sent = rx.got.length;
      await new Promise((resolve) => setTimeout(resolve, intervalUs / 1000));
      assert.equal(trueCalls + falseCalls, calls, 'healthy() was asked after stop()');
      assert.equal(rx.got.length, sent);
      assert.equal(n.failures, 0);
    } finally {
      rx.stop();
    }
  });

  test('the watchdog timer does not keep a process alive', { timeout: 30_000 }, async () => {
    const path = join(dir, 'unref.sock');
    const rx = await Receiver.start(path);
    try {
      const notifyJs = fileURLToPath(new URL('../../src/supervisor/notify.js', import.meta.url));
      const script = `const { SdNotify } = await import(${JSON.stringify(notifyJs)}); SdNotify.fromEnv().startWatchdog(() => true);`;
      const env: NodeJS.ProcessEnv = { ...process.env, NOTIFY_SOCKET: path, WATCHDOG_USEC: '60000000' };
      delete env.WATCHDOG_PID;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env, stdio: 'inherit' });
      const code = await new Promise((resolve) => child.once('exit', (c, sig) => resolve(sig ?? c)));
      assert.equal(code, 0);
      // It did start: the first ping went before it exited.
      assert.equal((await rx.until(1))[0].data, 'WATCHDOG=1');
    } finally {
      rx.stop();
    }
  });
});

test('WATCHDOG_USEC counts only for the process WATCHDOG_PID names', () => {
  const base = { NOTIFY_SOCKET: join(dir, 'none.sock'), WATCHDOG_USEC: '30000000' };
  assert.equal(SdNotify.fromEnv(base).watchdogUsec, 30_000_000);
  assert.equal(SdNotify.fromEnv({ ...base, WATCHDOG_PID: String(process.pid) }).watchdogUsec, 30_000_000);
  assert.equal(SdNotify.fromEnv({ ...base, WATCHDOG_PID: String(process.pid + 1) }).watchdogUsec, 0);
  assert.equal(SdNotify.fromEnv({ ...base, WATCHDOG_USEC: '30s' }).watchdogUsec, 0);
  assert.equal(SdNotify.fromEnv({ ...base, WATCHDOG_USEC: '-5' }).watchdogUsec, 0);
});

test('without NOTIFY_SOCKET nothing is sent and nothing fails', () => {
  const n = SdNotify.fromEnv({ WATCHDOG_USEC: '30000000' });
  assert.equal(n.enabled, false);
  assert.equal(n.watchdogUsec, 0);
  n.ready('x');
  n.status('x');
  n.reloading();
  n.stopping();
  let asked = 0;
  n.startWatchdog(() => ++asked > 0)();
  assert.equal(asked, 0);
  assert.equal(n.failures, 0);
});

test('an unreachable socket is counted in failures, never thrown', () => {
  for (const address of [join(dir, 'missing', 'notify.sock'), join(dir, 'nobody-bound.sock'), 'relative/notify.sock', '@']) {
    const n = SdNotify.fromEnv({ NOTIFY_SOCKET: address });
    assert.equal(n.enabled, true);
    n.ready();
    n.status('still here');
    n.stopping();
    assert.equal(n.failures, 3, address);
  }
});
