// The file capture driver: a capture file through the live capture path
// (`otus capture --driver file`), as fast as possible or at recorded speed.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FileCapturer } from '../../src/capture/file.js';
import { defaultCaptureOptions } from '../../src/capture/capturer.js';
import { OtusError } from '../../src/util/errors.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const OTUS = join(ROOT, 'dist/src/cli/otus.js');
const SAMPLE = join(ROOT, 'samples/rtp-g711a.pcap');
const TASK = join(ROOT, 'configs/task-voip.yml');
const NATIVE = join(ROOT, 'dist/src/native.js');

function otus(...args: string[]): { out: string; err: string; status: number | null } {
  const r = spawnSync(process.execPath, [OTUS, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { out: r.stdout, err: r.stderr, status: r.status };
}

const withoutTs = (line: string) => {
  const o = JSON.parse(line);
  delete o.ts;
  return o;
};

/** A microsecond pcap of `n` small Ethernet frames `gapMs` apart. */
function pacedPcap(path: string, n: number, gapMs: number): void {
  const parts: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(65535, 16);
  gh.writeUInt32LE(1, 20);
  parts.push(gh);
  for (let i = 0; i < n; i++) {
    const us = i * gapMs * 1000;
    const h = Buffer.alloc(16);
    h.writeUInt32LE(1_700_000_000 + Math.floor(us / 1e6), 0);
    h.writeUInt32LE(us % 1e6, 4);
    h.writeUInt32LE(60, 8);
    h.writeUInt32LE(60, 12);
    const f = Buffer.alloc(60);
    f.writeUInt16BE(0x0806, 12); // ARP-typed filler
    parts.push(h, f);
  }
  writeFileSync(path, Buffer.concat(parts));
}

describe('file driver', () => {
  it('prints what otus decode prints, frame for frame, then stops at end of file', () => {
    const live = otus('capture', '--driver', 'file', '-i', SAMPLE);
    const dec = otus('decode', SAMPLE);
    assert.equal(live.status, 0, live.err);
    const a = live.out.trim().split('\n').map(withoutTs);
    const b = dec.out.trim().split('\n').map(withoutTs);
    assert.equal(a.length, 230);
    assert.deepEqual(a, b);
    assert.match(live.err, /stopped: end of file/);
  });

  it('with several pipelines, every frame once (flow-hash dispatch)', () => {
    const r = otus('capture', '--driver', 'file', '-i', SAMPLE, '--workers', '2');
    assert.equal(r.status, 0, r.err);
    // Each pipeline writes its own batches, so lines interleave by batch, not by frame.
    const frames = r.out.trim().split('\n').map((l) => JSON.parse(l).frame as number).sort((x, y) => x - y);
    assert.deepEqual(frames, Array.from({ length: 230 }, (_, i) => i + 1));
  });

  it('--realtime paces frames by their timestamps', () => {
    const dir = mkdtempSync(join(tmpdir(), 'otus-file-'));
    try {
      const file = join(dir, 'paced.pcap');
      pacedPcap(file, 4, 400); // 1.2 s from first to last
      const t0 = Date.now();
      const r = otus('capture', '--driver', 'file', '-i', file, '--realtime');
      const ms = Date.now() - t0;
      assert.equal(r.status, 0, r.err);
      assert.equal(r.out.trim().split('\n').length, 4);
      assert.ok(ms >= 1100, `took ${ms} ms, expected at least the recorded 1200 ms`);
      const fast = Date.now();
      otus('capture', '--driver', 'file', '-i', file);
      assert.ok(Date.now() - fast < ms, 'without --realtime it does not wait');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--count N: the stream hands over N frames, and its summary says so (not the batch it read)', () => {
    for (const workers of ['1', '2']) {
      const r = otus('capture', '--driver', 'file', '-i', SAMPLE, '--count', '3', '--workers', workers);
      assert.equal(r.status, 0, r.err);
      assert.equal(r.out.trim().split('\n').length, 3);
      assert.match(r.err, /: 3 frames; stopped: count 3\n/);
      assert.match(r.err, /stream 0: frames=3 kernel_packets=3 /, r.err);
      if (workers === '2') {
        const piped = [...r.err.matchAll(/pipeline \d: frames=(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
        assert.equal(piped, 3, r.err);
      }
    }
  });

  it('a FIFO with no writer is refused at once (open() would wait for a writer forever)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'otus-fifo-'));
    try {
      const fifo = join(dir, 'capture.pcap');
      execFileSync('mkfifo', [fifo]);
      for (const args of [['decode', fifo], ['capture', '--driver', 'file', '-i', fifo], ['replay', '--task', TASK, fifo]]) {
        const r = otus(...args);
        assert.equal(r.status, 2, `otus ${args.join(' ')}: ${r.err}`);
        assert.equal(r.err, `otus: ${fifo}: cannot read capture file: it is a FIFO, not a regular file (capture files are read in place: write the capture to a file first) [OTUS_ERR_CAPTURE_IO]\n`);
      }
      // The addon itself, whatever JS checked before: a FIFO is never opened blocking.
      const m = spawnSync(process.execPath, ['--input-type=module', '-e', `const { native } = await import(${JSON.stringify(NATIVE)}); try { native.mapFile(${JSON.stringify(fifo)}); } catch (e) { console.log(e.message); }`], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(m.signal, null, 'mapFile returned');
      assert.equal(m.stdout.trim(), `map ${fifo}: Invalid argument`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses filters and non-captures with coded errors', () => {
    const o = defaultCaptureOptions(SAMPLE);
    o.filter = 'udp';
    assert.throws(() => new FileCapturer(o).init(), (e: unknown) => e instanceof OtusError && e.code === 'OTUS_ERR_UNSUPPORTED');
    const r = otus('capture', '--driver', 'file', '-i', '/etc/hostname');
    assert.equal(r.status, 2);
    assert.match(r.err, /OTUS_ERR_NOT_A_CAPTURE/);
  });
});
