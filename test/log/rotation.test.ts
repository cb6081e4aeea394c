// The file output: pino-roll rolls it at size_bytes, `count` rolled files
// are kept besides the current one (across a restart too, which goes on
// numbering), every file is mode 0640, and no line is lost or torn between
// the files kept. Text format and the JSON → text line.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LogHub, type LogSettings, rolledFiles, textLine } from '../../src/log/logger.js';
import { OtusError } from '../../src/util/errors.js';
import { waitFor } from '../helpers/live.js';

const dir = mkdtempSync(join(tmpdir(), 'otus-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fileSettings(path: string, sizeBytes: number, count: number, format: 'json' | 'text' = 'json'): LogSettings {
  return { level: 'info', format, rateLimitMs: 60_000, outputs: { file: { path, sizeBytes, intervalMs: null, count } } };
}

/** The numbered files of `path`, oldest first. */
function rolled(path: string): { n: number; file: string; size: number; mode: number }[] {
  const names = rolledFiles(path);
  const d = join(path, '..');
  return readdirSync(d)
    .map((f) => ({ f, n: names.number(f) }))
    .filter((x): x is { f: string; n: number } => x.n !== null)
    .sort((a, b) => a.n - b.n)
    .map(({ f, n }) => {
      const st = statSync(join(d, f));
      return { n, file: join(d, f), size: st.size, mode: st.mode & 0o777 };
    });
}

test('files roll at size_bytes, count rolled files are kept besides the current one, mode 0640, lines whole and in order', async () => {
  const path = join(dir, 'a', 'otus.log');
  const size = 4096;
  const count = 3;
  const hub = await LogHub.open(fileSettings(path, size, count), 'n1');
  const log = hub.logger('supervisor');
  const N = 400;
  for (let i = 0; i < N; i++) {
    log.info({ i, pad: 'y'.repeat(40 + (i % 50)) }, 'rolling');
    // Lines a millisecond apart, as a daemon's come (each from its own event): writes, rolls and pruning interleave.
    await new Promise((r) => setTimeout(r, 1));
  }
  await hub.close();
  assert.ok(await waitFor(() => rolled(path).length === count + 1, 5000), `files: ${rolled(path).map((f) => f.n)}`);
  const files = rolled(path);
  // A file rolls once it has reached the size; lines written while it switches files still go to it (pino-roll).
  for (const f of files.slice(0, -1)) assert.ok(f.size >= size && f.size < 2 * size, `${f.file}: ${f.size} bytes, rolled at ${size}`);
  assert.ok(files.at(-1)!.size < 2 * size);
  process.stderr.write(`# rolled file sizes at size_bytes ${size}: ${files.map((f) => f.size).join(', ')}\n`);
  for (const f of files) assert.equal(f.mode, 0o640, f.file);
  assert.ok(files[0]!.n > 1, 'older files were removed');
  // Consecutive numbers: nothing in the middle went missing.
  assert.deepEqual(files.map((f) => f.n), files.map((_, k) => files[0]!.n + k));
  assert.equal(readlinkSync(join(dir, 'a', 'current.log')), `otus.${files.at(-1)!.n}.log`);
  const lines = files.flatMap((f) => readFileSync(f.file, 'utf8').split('\n').filter(Boolean)).map((l) => JSON.parse(l) as { i: number; component: string });
  const first = lines[0]!.i;
  assert.deepEqual(lines.map((l) => l.i), Array.from({ length: N - first }, (_, k) => first + k), 'the files kept hold the newest lines, whole, none missing');
  assert.equal(lines[0]!.component, 'supervisor');

  // A restart: numbering goes on from the highest, and the count holds over both runs' files.
  const last = files.at(-1)!.n;
  const hub2 = await LogHub.open(fileSettings(path, size, count), 'n1');
  for (let i = 0; i < 100; i++) {
    hub2.logger('supervisor').info({ i, pad: 'z'.repeat(60) }, 'after a restart');
    await new Promise((r) => setTimeout(r, 1));
  }
  await hub2.close();
  // ~12 KiB more: the current file goes on, then at least two rolls.
  assert.ok(await waitFor(() => rolled(path).length === count + 1 && rolled(path).at(-1)!.n >= last + 2, 5000), `files after the restart: ${rolled(path).map((f) => f.n)} (last before: ${last})`);
  const again = rolled(path);
  assert.deepEqual(again.map((f) => f.n), again.map((_, k) => again[0]!.n + k));
});

test('a file that cannot be opened is a configuration error naming the key and the path', async () => {
  const refused = async (path: string, why: RegExp): Promise<void> => {
    await assert.rejects(LogHub.open(fileSettings(path, 4096, 2), 'n1'), (e: unknown) => {
      assert.ok(e instanceof OtusError);
      assert.equal(e.code, 'OTUS_ERR_CONFIG');
      assert.equal(e.message.startsWith(`log.outputs.file.path ${path}: cannot open (`), true, e.message);
      assert.match(e.message, why);
      return true;
    });
  };
  await refused('/proc/version/otus.log', /EEXIST/); // its directory is a file
  // The directory is there; the file to open is a directory.
  mkdirSync(join(dir, 'c', 'otus.1.log'), { recursive: true });
  await refused(join(dir, 'c', 'otus.log'), /EISDIR/);
});

test('text format: one readable line per entry; JSON lines as they are otherwise', async () => {
  const path = join(dir, 'b', 'otus.log');
  const hub = await LogHub.open(fileSettings(path, 1 << 20, 2, 'text'), 'n1');
  hub.logger('supervisor').child({ task: 'voip' }).warn({ why: 'exit code 1', restarts: 2 }, 'child exited');
  hub.write(JSON.stringify({ level: 30, time: 0, node: 'n1', pid: 7, component: 'capture', task: 'voip', index: 1, msg: 'capture process started' }));
  await hub.close();
  const text = readFileSync(rolled(path)[0]!.file, 'utf8').split('\n').filter(Boolean);
  assert.match(text[0]!, /^\d{4}-\d\d-\d\dT[\d:.]+Z WARN  supervisor task=voip pid=\d+: child exited why="exit code 1" restarts=2$/);
  assert.equal(text[1], '1970-01-01T00:00:00.000Z INFO  capture task=voip pid=7: capture process started index=1');
  assert.equal(textLine('not json'), 'not json\n');
  assert.equal(textLine('{"level":50,"time":0,"component":"sender","pid":1,"msg":"a\\u001b[2Jb","err":"x\\u0007"}'), '1970-01-01T00:00:00.000Z ERROR sender pid=1: a\\u001b[2Jb err="x\\u0007"\n', 'control characters stay escaped');
});
