// Runs `otus decode` and tshark on one capture and compares them. Shared by
// the golden test (decode-vs-tshark.test.ts) and scripts/corpus-check.ts.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compare, parseNdjson, type CompareResult, type KnownDifference, type OtusRecord } from './compare.js';
import { runTshark, type TsharkFrame } from './tshark.js';

/** The repository root (this file runs as dist/test/golden/harness.js). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const OTUS_JS = join(REPO_ROOT, 'dist', 'src', 'cli', 'otus.js');

/** Runs `node dist/src/cli/otus.js decode FILE --tunnels all [extra]` and parses its NDJSON. */
export function runOtus(file: string, extra: readonly string[] = [], otusJs = OTUS_JS): Promise<OtusRecord[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [otusJs, 'decode', file, '--tunnels', 'all', ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => { if (err.length < 4000) err += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`otus decode exited ${code} on ${file}: ${err.trim()}`));
        return;
      }
      try {
        resolve(parseNdjson(Buffer.concat(out).toString('utf8')));
      } catch (e) {
        reject(new Error(`otus decode printed bad NDJSON for ${file}: ${(e as Error).message}`));
      }
    });
  });
}

export interface CheckOptions {
  /** tshark decode-as arguments, e.g. ['-d', 'udp.port==8472,vxlan']. */
  decodeAs?: readonly string[];
  /** Extra `otus decode` arguments (default: derived from decodeAs, see otusArgsFor). */
  otusArgs?: readonly string[];
  known?: readonly KnownDifference[];
  /** The otus CLI script to run (default: this checkout's dist/src/cli/otus.js). */
  otusJs?: string;
}

export interface CheckResult extends CompareResult {
  file: string;
  otus: OtusRecord[];
  tshark: TsharkFrame[];
}

export async function checkFile(file: string, o: CheckOptions = {}): Promise<CheckResult> {
  const [otus, tshark] = await Promise.all([
    runOtus(file, o.otusArgs ?? otusArgsFor(o.decodeAs ?? []), o.otusJs ?? OTUS_JS),
    runTshark(file, o.decodeAs ?? []),
  ]);
  return { file, otus, tshark, ...compare(file, otus, tshark, o.known ?? []) };
}

/** The `otus decode` options that mirror tshark decode-as rules: VXLAN on other UDP ports. */
export function otusArgsFor(decodeAs: readonly string[]): string[] {
  const ports = ['4789'];
  for (const spec of decodeAs) {
    const m = /^udp\.port==(\d+),vxlan$/.exec(spec);
    if (m) ports.push(m[1]!);
  }
  return ports.length > 1 ? ['--vxlan-ports', ports.join(',')] : [];
}

/**
 * Decode-as arguments for a file of a corpus directory, from what the
 * corpus README says: every backquoted `-d …` is applied to all files (they
 * name ports nothing else uses), and a table row "| path | … VXLAN (UDP
 * N, decode-as) |" adds `-d udp.port==N,vxlan` for that file.
 */
export class CorpusDecodeAs {
  private readonly global: string[] = [];
  private readonly perFile = new Map<string, string[]>();

  constructor(readmeText: string) {
    for (const m of readmeText.matchAll(/`(-d [^`]+)`/g)) {
      const spec = m[1]!.slice(3).trim();
      if (!this.global.includes(spec)) this.global.push(spec);
    }
    for (const line of readmeText.split('\n')) {
      const cells = line.split('|').map((c) => c.trim());
      if (cells.length < 3 || !cells[1]) continue;
      for (const m of line.matchAll(/VXLAN \(UDP (\d+), decode-as\)/g)) {
        const list = this.perFile.get(cells[1]) ?? [];
        list.push(`udp.port==${m[1]},vxlan`);
        this.perFile.set(cells[1], list);
      }
    }
  }

  static fromDir(dir: string): CorpusDecodeAs {
    const readme = join(dir, 'README.md');
    return new CorpusDecodeAs(existsSync(readme) ? readFileSync(readme, 'utf8') : '');
  }

  /** tshark arguments for `file` (a path under `dir`). */
  argsFor(dir: string, file: string): string[] {
    const rel = relative(dir, file).split(sep).join('/');
    const specs = [...this.global, ...(this.perFile.get(rel) ?? [])];
    return specs.flatMap((s) => ['-d', s]);
  }
}

