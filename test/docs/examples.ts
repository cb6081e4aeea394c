// The shell examples of README.md and docs/*.md, as commands a test can run:
// every line of a fenced `sh` (bash, shell, console) block, and every inline
// `Try \`...\`` example. A synopsis line (`[--opt X]`, `A | B`, `FILE...`)
// becomes concrete variants: its required part alone, every option at once,
// and one variant per further alternative of a value (`--driver
// af_packet_v3|pcap|xdp|file`: pcap, xdp and file too). Placeholders
// (IFACE, FILE, TASK.yml, N, ...) are replaced by the caller.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface Example {
  /** `README.md:42`. */
  where: string;
  /** The line as written (comment dropped; one command of an `a && b` line). */
  text: string;
}

const SHELL_INFO = /^(sh|bash|shell|console)$/;

/** `README.md` and every `docs/*.md` of the repository at `root`. */
export function docFiles(root: string): string[] {
  return ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
}

/** A trailing `# comment` (a `#` after whitespace, outside quotes) dropped. */
function withoutComment(line: string): string {
  let q: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (q !== null) {
      if (c === q) q = null;
    } else if (c === '"' || c === "'") q = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

/** Every example of one Markdown file, in document order. */
export function examplesOf(root: string, file: string): Example[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n');
  const out: { line: number; text: string }[] = [];
  let fence: boolean | null = null; // null: outside; true: a shell block; false: another block
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const m = /^\s*```\s*(\S*)/.exec(l);
    if (m) {
      fence = fence === null ? SHELL_INFO.test(m[1]!) : null;
      continue;
    }
    if (fence === true) {
      const cmd = withoutComment(l).trim();
      if (cmd !== '') for (const part of cmd.split(/\s+&&\s+/)) out.push({ line: i + 1, text: part });
    } else if (fence === null) {
      for (const t of l.matchAll(/\bTry `([^`]+)`/g)) out.push({ line: i + 1, text: t[1]! });
    }
  }
  return out.map((e) => ({ where: `${file}:${e.line}`, text: e.text }));
}

/** A synopsis rather than a command: optional groups, alternatives or a repeated argument. */
export function isSynopsis(text: string): boolean {
  return /\[|\s\|\s|\.\.\./.test(text);
}

/** Splits at top-level occurrences of `sep` (outside [...]). */
function splitTop(s: string, sep: RegExp): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '[') depth++;
    else if (s[i] === ']') depth--;
    else if (depth === 0) {
      sep.lastIndex = i;
      const m = sep.exec(s);
      if (m && m.index === i) {
        out.push(s.slice(start, i));
        start = i + m[0].length;
        i = start - 1;
      }
    }
  }
  out.push(s.slice(start));
  return out.map((x) => x.trim());
}

/** `otusctl status | stats | reload` → three commands; an alternative starting with `-` keeps the first one's command words. */
function alternatives(text: string): string[] {
  const alts = splitTop(text, / \| /y);
  if (alts.length === 1) return alts;
  const words = alts[0]!.split(/\s+/);
  const program = words[0]!;
  const firstOption = words.findIndex((w) => w.startsWith('-'));
  const command = words.slice(0, firstOption < 0 ? words.length : firstOption).join(' ');
  return alts.map((a, i) => (i === 0 ? a : a.startsWith('-') ? `${command} ${a}` : `${program} ${a}`));
}

/** Concrete variants of one synopsis alternative: required alone, everything, each further value alternative. */
function variantsOf(alt: string): string[] {
  const parts = splitTop(alt.replace(/\.\.\./g, ''), /\s+/y).filter((p) => p !== '');
  const required = parts.filter((p) => !p.startsWith('['));
  const groups = parts.filter((p) => p.startsWith('[')).map((g) => g.slice(1, -1).trim());
  const first = (s: string): string => s.split(/\s+/).map((w) => w.split('|')[0]!).join(' ');
  const out = [required.map(first).join(' '), [...required, ...groups].map(first).join(' ')];
  const withAlt = (units: string[], at: number, pick: string): string => units.map((u, k) => (k === at ? u.split(/\s+/).map((w) => (w.includes('|') ? pick : w)).join(' ') : first(u))).join(' ');
  // Value alternatives of a required part, or of a group added alone to the required part.
  required.forEach((u, k) => {
    for (const w of u.split(/\s+/)) if (w.includes('|')) for (const a of w.split('|').slice(1)) out.push(withAlt(required, k, a));
  });
  groups.forEach((g) => {
    for (const w of g.split(/\s+/)) if (w.includes('|')) for (const a of w.split('|').slice(1)) out.push(withAlt([...required, g], required.length, a));
  });
  return [...new Set(out)];
}

/** The commands an example stands for: itself, or a synopsis's variants. */
export function expand(text: string): string[] {
  if (!isSynopsis(text)) return [text];
  return alternatives(text).flatMap(variantsOf);
}
