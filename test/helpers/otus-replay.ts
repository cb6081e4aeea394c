// Running `otus replay` from tests, and tshark fields beside it.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const OTUS = join(ROOT, 'dist/src/cli/otus.js');
export const FIXTURES = join(ROOT, 'test/fixtures/captures');

export interface Rec {
  ts: string;
  protocol: string;
  flow: { src: string; dst: string; sport: number; dport: number; proto: number };
  labels: Record<string, string>;
  payload: any;
}

/** Runs otus replay with a task (YAML text) over files; returns the records and the --stats-json summary. */
export function replay(taskYaml: string, files: string[], workers = 1): { records: Rec[]; stats: any; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'otus-replay-'));
  const task = join(dir, 'task.yml');
  writeFileSync(task, taskYaml);
  const out = join(dir, 'out.ndjson');
  const st = join(dir, 'stats.json');
  const r = spawnSync(process.execPath, [OTUS, 'replay', '--task', task, '--workers', String(workers), '--out', out, '--stats-json', st, ...files], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`otus replay failed (${r.status}): ${r.stderr}`);
  const records = readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Rec);
  return { records, stats: JSON.parse(readFileSync(st, 'utf8')), stderr: r.stderr };
}

/** tshark -T fields, one array of (all occurrences, comma-joined) per frame matching `filter`. */
export function tsharkFields(file: string, filter: string, fields: string[], extra: string[] = []): string[][] {
  const args = ['-r', file, '-Y', filter, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,', ...extra, ...fields.flatMap((f) => ['-e', f])];
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 256 << 20 });
  return out.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

/**
 * A run whose reporter did not deliver `n` records (timed out, failed, held
 * at the stop deadline): exit status 4, and the last line says how many.
 */
export function assertUndelivered(r: { status: number | null; stderr: string }, n: number): void {
  assert.equal(r.status, 4, r.stderr);
  assert.match(r.stderr, new RegExp(`otus: ${n} of \\d+ records not delivered by the reporter: [^\\n]*\\[OTUS_ERR_UNDELIVERED\\]\\n$`));
}
