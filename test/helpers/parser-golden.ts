// Shared by the parsers' golden tests (plugins/parser/*/golden.test.ts):
// run `otus replay` with a task over fixture captures, run tshark -T fields
// on the same files, and join the two by capture time and ports.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const OTUS = join(ROOT, 'dist/src/cli/otus.js');
export const FIXTURES = join(ROOT, 'test/fixtures/captures');

export interface JsonRecord {
  ts: string;
  protocol: string;
  flow: { src: string; dst: string; sport: number; dport: number; proto: number };
  labels: Record<string, string>;
  payload: any;
  /** Set by join(). */
  matched?: boolean;
  /** Set by replay(): the capture file it came from is not known, so callers key by time and ports. */
}

/** Why tshark cannot be used, or null when it can. */
export function tsharkMissing(): string | null {
  const r = spawnSync('tshark', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? null : 'tshark is not installed (apt-get install tshark)';
}

/** Runs `otus replay --task <yaml> --workers N --out FILE files...`; returns its records and the --stats-json summary. */
export function replay(taskYaml: string, files: string[], workers = 1): { records: JsonRecord[]; stats: any } {
  const dir = mkdtempSync(join(tmpdir(), 'otus-golden-'));
  const task = join(dir, 'task.yml');
  writeFileSync(task, taskYaml);
  const out = join(dir, 'out.ndjson');
  const stats = join(dir, 'stats.json');
  const r = spawnSync(process.execPath, [OTUS, 'replay', '--task', task, '--workers', String(workers), '--out', out, '--stats-json', stats, ...files], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`otus replay exited ${r.status}: ${r.stderr}`);
  const records = readFileSync(out, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as JsonRecord);
  return { records, stats: JSON.parse(readFileSync(stats, 'utf8')) };
}

/** Separates the occurrences of a field with occurrence 'a' (URIs may hold commas). */
export const AGG = '\u001f';

/** tshark -T fields (first occurrence of each field, or all AGG-separated with occurrence 'a'), `|`-separated; frame.time_epoch, udp/tcp ports are prepended. */
export function tsharkFields(file: string, filter: string, fields: string[], extra: string[] = [], occurrence: 'f' | 'a' = 'f'): { frame: number; key: string; f: string[] }[] {
  const r = spawnSync(
    'tshark',
    ['-r', file, ...extra, '-Y', filter, '-T', 'fields', '-E', `occurrence=${occurrence}`, '-E', `aggregator=${AGG}`, '-E', 'separator=|',
      '-e', 'frame.number', '-e', 'frame.time_epoch', '-e', 'udp.srcport', '-e', 'udp.dstport', '-e', 'tcp.srcport', '-e', 'tcp.dstport',
      ...fields.flatMap((x) => ['-e', x])],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  if (r.status !== 0) throw new Error(`tshark failed on ${file}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const c = l.split('|');
      const [sec, frac = ''] = c[1].split('.');
      const sport = c[2] || c[4];
      const dport = c[3] || c[5];
      return { frame: Number(c[0]), key: `${sec}${(frac + '000000000').slice(0, 6)}:${sport}:${dport}`, f: c.slice(6) };
    });
}

/** Each frame's capture time as join keys spell it (seconds and six fraction digits), by frame number. */
export function frameTimes(file: string): Map<number, string> {
  const r = spawnSync('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', '-e', 'frame.number', '-e', 'frame.time_epoch'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`tshark failed on ${file}: ${r.stderr}`);
  const m = new Map<number, string>();
  for (const l of r.stdout.split('\n')) {
    if (l === '') continue;
    const [n, t] = l.split('|');
    const [sec, frac = ''] = t.split('.');
    m.set(Number(n), `${sec}${(frac + '000000000').slice(0, 6)}`);
  }
  return m;
}

/**
 * A message's join key by its first byte (records carry that capture time):
 * tshark reports a reassembled message at the frame that completes it and
 * lists its segments' frames in tcp.segment; the first of them holds its
 * first byte. `segments` is that field (AGG-separated), '' for a message in
 * one frame.
 */
export function firstByteKey(row: { frame: number; key: string }, segments: string, times: Map<number, string>): string {
  const first = segments === '' ? row.frame : Number(segments.split(AGG)[0]);
  return `${times.get(first)}${row.key.slice(row.key.indexOf(':'))}`;
}

/** The join key of a record: capture time in µs and ports (as tsharkFields makes them). */
export function recordKey(r: JsonRecord): string {
  const m = /\.(\d+)Z$/.exec(r.ts);
  const frac = ((m ? m[1] : '') + '000000000').slice(0, 6);
  return `${Math.floor(Date.parse(r.ts) / 1000)}${frac}:${r.flow.sport}:${r.flow.dport}`;
}

/** Records by join key, in output order (several records may share a key: several PDUs in one packet). */
export function byKey(records: JsonRecord[]): Map<string, JsonRecord[]> {
  const m = new Map<string, JsonRecord[]>();
  for (const r of records) {
    const k = recordKey(r);
    const l = m.get(k);
    if (l) l.push(r);
    else m.set(k, [r]);
  }
  return m;
}
