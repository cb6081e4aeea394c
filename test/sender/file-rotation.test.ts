// The file reporter's rotating files (docs/reporters.md, "Rotating files").
// A replay of about a million records into gzip files: every file is at most
// max_bytes uncompressed and all but the last within a record of it, every
// record is in exactly one file, and no file is ever seen under its final
// name before it is complete (the directory is listed every few ms while the
// replay runs: a final name's size never changes after it appears). In
// process: retention keeps the newest `keep`, a file is closed by age with
// no record after it, a temporary file a killed sender left is completed at
// start, names and modes are as documented.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { rtpCallsCapture } from '../../bench/captures.js';
import type { EncodedRecord } from '../../src/plugin/types.js';
import { type FdReporter, fileReporter } from '../../src/sender-proc/reporters.js';
import { waitFor } from '../helpers/live.js';
import { OTUS } from '../helpers/otus-replay.js';

const dir = mkdtempSync(join(tmpdir(), 'otus-rotation-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const FINAL = /^otus-rot-\d{8}T\d{6}Z-(\d{6,})\.ndjson(\.gz)?$/;

/** Runs `otus replay`, listing `out` every few ms meanwhile: each final name's size when first seen. */
async function replayWatching(task: string, capture: string, out: string): Promise<{ code: number; stderr: string; seen: Map<string, number> }> {
  const seen = new Map<string, number>();
  const look = (): void => {
    for (const n of readdirSync(out)) {
      if (n.startsWith('.') || seen.has(n)) continue;
      try {
        seen.set(n, statSync(join(out, n)).size);
      } catch {
        // removed between the listing and the stat
      }
    }
  };
  const p = spawn(process.execPath, [OTUS, 'replay', '--task', task, capture], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const t = setInterval(look, 3);
  const code = await new Promise<number>((r) => p.on('exit', (c) => r(c ?? -1)));
  clearInterval(t);
  look();
  return { code, stderr, seen };
}

describe('file reporter: rotating files', () => {
  it('a replay of about a million records: configured sizes, every record exactly once across the gzip files, none seen before complete', async () => {
    // 102 000 frames (1000 calls' SIP, 100 000 RTP), ten copies each shifted 10 s later (editcap), end to end (mergecap):
    // every frame has its own timestamp, so a record's `ts` names it.
    const base = join(dir, 'base.pcap');
    const per = rtpCallsCapture(base, 1000, 100_000);
    const copies: string[] = [];
    for (let i = 0; i < 10; i++) {
      const c = join(dir, `copy${i}.pcap`);
      execFileSync('editcap', ['-t', String(i * 10), base, c]);
      copies.push(c);
    }
    const big = join(dir, 'big.pcap');
    execFileSync('mergecap', ['-a', '-w', big, ...copies]);
    for (const c of [base, ...copies]) rmSync(c);
    const total = per * 10;
    const out = join(dir, 'gz');
    mkdirSync(out, { mode: 0o750 });
    const maxBytes = 32 << 20;
    const task = join(dir, 'gz.yml');
    writeFileSync(task, `task:\n  id: rot\n  parsers: [{plugin: sip}, {plugin: rtp}]\n  reporter:\n    type: file\n    config: {dir: ${out}, max_bytes: ${maxBytes}, max_age: 0, keep: 0, gzip: true, gzip_level: 1}\n`);
    const r = await replayWatching(task, big, out);
    rmSync(big);
    assert.equal(r.code, 0, r.stderr);
    const names = readdirSync(out).sort();
    assert.deepEqual(names.filter((n) => !FINAL.test(n) || !n.endsWith('.gz')), [], 'only completed .gz files are left');
    for (const [n, size] of r.seen) {
      assert.match(n, FINAL, `${n}: only final names appear`);
      assert.equal(statSync(join(out, n)).size, size, `${n} changed after it appeared under its final name`);
    }
    const bySeq = names.map((n) => ({ n, seq: Number(FINAL.exec(n)![1]) })).sort((a, b) => a.seq - b.seq);
    assert.ok(bySeq.length >= 15, `${bySeq.length} files`);
    const ts = new Set<string>();
    let lines = 0;
    bySeq.forEach(({ n }, i) => {
      assert.equal(statSync(join(out, n)).mode & 0o777, 0o640, `${n}: mode`);
      const text = gunzipSync(readFileSync(join(out, n)));
      assert.ok(text.length <= maxBytes, `${n}: ${text.length} bytes, over max_bytes`);
      // A record is about 600 bytes: a file is closed only when the next one would not fit.
      if (i < bySeq.length - 1) assert.ok(text.length > maxBytes - 2048, `${n}: ${text.length} bytes, closed early`);
      assert.equal(text[text.length - 1], 0x0a, `${n} ends with a whole record`);
      const s = text.toString('latin1');
      for (let o = 0; o < s.length; ) {
        const e = s.indexOf('\n', o);
        assert.equal(s.startsWith('{"ts":"', o), true);
        ts.add(s.slice(o + 7, s.indexOf('"', o + 7)));
        lines++;
        o = e + 1;
      }
    });
    assert.equal(lines, total, 'records written');
    assert.equal(ts.size, total, 'each record once');
  });

  const rec = (s: string): EncodedRecord => {
    const b = Buffer.from(s);
    return { format: 'json', buf: b, off: 0, len: b.length };
  };
  const open = (out: string, config: Record<string, unknown>): FdReporter =>
    fileReporter.init({ config: { dir: out, format: 'json', mode: '0640', prefix: 'otus-rot', ...config }, node: {}, taskId: 't', worker: -1, where: 'test' }) as FdReporter;

  it('retention keeps the newest files; a temporary file a killed sender left is completed at start', async () => {
    const out = join(dir, 'keep');
    mkdirSync(out, { mode: 0o750 });
    writeFileSync(join(out, '.otus-rot-20260101T000000Z-000007.ndjson.tmp'), '{"left":1}\n');
    writeFileSync(join(out, '.otus-rot-20260101T000000Z-000006.ndjson.gz.tmp'), 'half a gzip');
    const r = open(out, { max_bytes: 4096, keep: 3, max_age: 0 });
    // 1000 records of 99 bytes: 41 per file, 25 files.
    for (let i = 0; i < 1000; i++) r.report(rec(`{"n":"${String(i).padStart(4, '0')}","pad":"${'x'.repeat(77)}"}\n`));
    await r.flush();
    await r.stop();
    const names = readdirSync(out).sort();
    assert.equal(names.length, 3, names.join(' '));
    const seqs = names.map((n) => Number(FINAL.exec(n)![1]));
    assert.ok(seqs.every((s) => s > 7), `new files count on after the leftover's sequence: ${seqs}`);
    const got = names.flatMap((n) => readFileSync(join(out, n), 'utf8').split('\n').filter(Boolean).map((l) => Number(JSON.parse(l).n)));
    assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => 1000 - got.length + i), 'the newest records, in order');
    assert.equal(Math.max(...seqs), 7 + 25);
    assert.equal(r.rotation()!.removed, 25 + 1 - 3, 'the leftover and the oldest new files removed');
  });

  it('a file is completed by age when no record follows it', async () => {
    const out = join(dir, 'age');
    mkdirSync(out, { mode: 0o750 });
    const r = open(out, { max_age: 0.2 });
    r.report(rec('{"n":1}\n'));
    assert.ok(await waitFor(() => readdirSync(out).some((n) => FINAL.test(n)), 10_000), 'completed without another record');
    const [n] = readdirSync(out).filter((x) => FINAL.test(x));
    assert.equal(readFileSync(join(out, n!), 'utf8'), '{"n":1}\n');
    await r.stop();
    assert.deepEqual(readdirSync(out), [n]);
  });

  it('path and dir together, or neither, are refused; so is a directory every user may write to', () => {
    assert.throws(() => fileReporter.init({ config: { format: 'json', mode: '0640' }, node: {}, taskId: 't', worker: -1, where: 'test' }), /exactly one of path .* and dir/);
    assert.throws(() => open(join(dir, 'absent'), {}), /OTUS_ERR_CONFIG|ENOENT/);
    const open777 = join(dir, 'open');
    mkdirSync(open777);
    execFileSync('chmod', ['777', open777]);
    assert.throws(() => open(open777, {}), /writable by every user and not sticky/);
  });
});
