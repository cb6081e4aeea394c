// Cross-checks `otus decode --tunnels all` against tshark on every capture
// under a directory, with the rules of test/golden/compare.ts.
//
//   node dist/scripts/corpus-check.js DIR [--json] [--jobs N] [--examples N] [--otus PATH]
//
// Walks DIR recursively for *.pcap, *.pcapng, *.cap and *.rtp. tshark's
// decode-as arguments come from DIR/README.md when it has any (see
// CorpusDecodeAs). Prints, per file, the frame count, the mismatches by key
// with a few examples, then a summary table; with --json, one JSON document.
// --otus runs another otus CLI script than this checkout's dist/src/cli/otus.js
// (it must accept `decode FILE --tunnels all`).
// Exit status: 0 when every file matches, 1 when any mismatch or failure.

import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { Mismatch } from '../test/golden/compare.js';
import { CorpusDecodeAs, checkFile, type CheckResult } from '../test/golden/harness.js';
import { tsharkVersion } from '../test/golden/tshark.js';

const EXTENSIONS = /\.(pcap|pcapng|cap|rtp)$/i;

interface FileReport {
  file: string;
  frames: number;
  malformed: number;
  mismatches: number;
  byKey: Record<string, number>;
  examples: (Mismatch & { path: string })[];
  failure: string | null;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (st.isFile() && EXTENSIONS.test(name)) out.push(p);
  }
  return out;
}

function usage(msg: string): never {
  process.stderr.write(`corpus-check: ${msg}\nusage: node dist/scripts/corpus-check.js DIR [--json] [--jobs N] [--examples N] [--otus PATH]\n`);
  process.exit(2);
}

function report(dir: string, r: CheckResult, examplesPerKey: number): FileReport {
  const byKey: Record<string, number> = {};
  const examples: FileReport['examples'] = [];
  const perKeyShown: Record<string, number> = {};
  const pathOf = new Map(r.tshark.map((t) => [t.frame, t.path]));
  for (const m of r.mismatches) {
    byKey[m.key] = (byKey[m.key] ?? 0) + 1;
    if ((perKeyShown[m.key] ?? 0) < examplesPerKey) {
      perKeyShown[m.key] = (perKeyShown[m.key] ?? 0) + 1;
      examples.push({ ...m, file: relative(dir, m.file), path: pathOf.get(m.frame) ?? '' });
    }
  }
  return {
    file: relative(dir, r.file),
    frames: r.frames,
    malformed: r.malformed,
    mismatches: r.mismatches.length,
    byKey,
    examples,
    failure: null,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let dir: string | undefined;
  let json = false;
  let jobs = Math.max(1, Math.floor(availableParallelism() / 2));
  let examplesPerKey = 3;
  let otusJs: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') json = true;
    else if (a === '--jobs') jobs = Number(args[++i]);
    else if (a === '--examples') examplesPerKey = Number(args[++i]);
    else if (a === '--otus') otusJs = resolve(args[++i] ?? usage('--otus: name the otus CLI script'));
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else if (dir === undefined) dir = a;
    else usage(`unexpected argument ${a}`);
  }
  if (dir === undefined) usage('name a directory');
  if (!Number.isInteger(jobs) || jobs < 1) usage('--jobs: expected a positive integer');
  if (!Number.isInteger(examplesPerKey) || examplesPerKey < 0) usage('--examples: expected a non-negative integer');
  dir = resolve(dir);
  const version = tsharkVersion();
  if (version === null) {
    process.stderr.write('corpus-check: tshark is not installed (or does not run); nothing to compare against\n');
    process.exit(2);
  }

  const decodeAs = CorpusDecodeAs.fromDir(dir);
  const files = walk(dir);
  const reports: FileReport[] = new Array(files.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const i = next++;
      const file = files[i]!;
      try {
        const r = await checkFile(file, { decodeAs: decodeAs.argsFor(dir!, file), otusJs });
        reports[i] = report(dir!, r, examplesPerKey);
      } catch (e) {
        reports[i] = {
          file: relative(dir!, file), frames: 0, malformed: 0, mismatches: 0, byKey: {}, examples: [],
          failure: (e as Error).message.split('\n')[0] ?? 'failed',
        };
      }
      if (!json) printFile(reports[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));

  const totals = {
    files: reports.length,
    clean: reports.filter((r) => !r.failure && r.mismatches === 0).length,
    failed: reports.filter((r) => r.failure).length,
    frames: reports.reduce((s, r) => s + r.frames, 0),
    malformed: reports.reduce((s, r) => s + r.malformed, 0),
    mismatches: reports.reduce((s, r) => s + r.mismatches, 0),
    byKey: {} as Record<string, number>,
    filesByKey: {} as Record<string, number>,
  };
  for (const r of reports) {
    for (const [k, n] of Object.entries(r.byKey)) {
      totals.byKey[k] = (totals.byKey[k] ?? 0) + n;
      totals.filesByKey[k] = (totals.filesByKey[k] ?? 0) + 1;
    }
  }
  if (json) {
    process.stdout.write(JSON.stringify({ dir, tshark: version, files: reports, totals }, null, 1) + '\n');
  } else {
    printSummary(dir, version, reports, totals);
  }
  process.exitCode = totals.mismatches > 0 || totals.failed > 0 ? 1 : 0;
}

function printFile(r: FileReport): void {
  const lines: string[] = [];
  if (r.failure) {
    lines.push(`FAIL ${r.file}: ${r.failure}`);
  } else if (r.mismatches === 0) {
    lines.push(`ok   ${r.file}: ${r.frames} frames${r.malformed ? ` (${r.malformed} malformed per tshark)` : ''}`);
  } else {
    const keys = Object.entries(r.byKey).map(([k, n]) => `${k}=${n}`).join(' ');
    lines.push(`DIFF ${r.file}: ${r.frames} frames${r.malformed ? ` (${r.malformed} malformed per tshark)` : ''}, ${r.mismatches} mismatches: ${keys}`);
    for (const e of r.examples) {
      lines.push(`       frame ${e.frame} [${e.path}] ${e.key}: otus=${JSON.stringify(e.otus)} tshark=${JSON.stringify(e.tshark)}`);
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
}

function printSummary(
  dir: string,
  version: string,
  reports: FileReport[],
  t: { files: number; clean: number; failed: number; frames: number; malformed: number; mismatches: number; byKey: Record<string, number>; filesByKey: Record<string, number> },
): void {
  const out: string[] = [];
  out.push('', `Summary: ${dir} (${version})`);
  const w = Math.max(4, ...reports.map((r) => r.file.length));
  out.push(`${'file'.padEnd(w)}  ${'frames'.padStart(7)}  ${'malf'.padStart(5)}  ${'diffs'.padStart(6)}  keys`);
  for (const r of reports) {
    if (!r.failure && r.mismatches === 0) continue;
    const keys = r.failure ? `FAILED: ${r.failure}` : Object.entries(r.byKey).map(([k, n]) => `${k}=${n}`).join(' ');
    out.push(`${r.file.padEnd(w)}  ${String(r.frames).padStart(7)}  ${String(r.malformed).padStart(5)}  ${String(r.mismatches).padStart(6)}  ${keys}`);
  }
  out.push(
    `${t.files} files: ${t.clean} match, ${t.files - t.clean - t.failed} differ, ${t.failed} failed; ` +
      `${t.frames} frames (${t.malformed} malformed per tshark, record keys only), ${t.mismatches} mismatches`,
  );
  if (t.mismatches > 0) {
    out.push('mismatches by key (frames / files):');
    for (const [k, n] of Object.entries(t.byKey).sort((a, b) => b[1] - a[1])) out.push(`  ${k.padEnd(18)} ${String(n).padStart(7)} / ${t.filesByKey[k]}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

await main();
