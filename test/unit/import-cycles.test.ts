// The layering holds: no module of src/ or plugins/ imports, even for types
// only, a module of another folder that imports it back. Such a cycle makes
// two layers one unit that neither can be read or changed alone
// (docs/architecture.md, the layout). Within a folder a cycle may stand: the
// decoder's layer functions name the Decoder that calls them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../helpers/otus-replay.js';

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative imports of a module, as source paths (`x.js` → `x.ts`). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\b[^'";]*?from\s+'(\.[^']+)'/gm)) {
    out.push(resolve(dirname(file), m[1].replace(/\.js$/, '.ts')));
  }
  return out;
}

/** Strongly connected components of more than one module (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (new Set(scc.map((f) => dirname(f))).size > 1) found.push(scc.map((f) => relative(ROOT, f)).sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

test('no import cycle across the folders of src/ and plugins/', () => {
  const graph = new Map<string, string[]>();
  for (const f of [...sources(join(ROOT, 'src')), ...sources(join(ROOT, 'plugins'))]) graph.set(f, importsOf(f));
  assert.ok(graph.size > 100, `found ${graph.size} modules: the scan looks in the wrong place`);
  assert.deepEqual(cycles(graph), []);
});

test('the cycle finder finds a cycle', () => {
  const g = new Map([['/x/a', ['/y/b']], ['/y/b', ['/x/c']], ['/x/c', ['/x/a']], ['/x/d', ['/x/a']], ['/z/e', ['/z/f']], ['/z/f', ['/z/e']]]);
  assert.equal(cycles(g).length, 1, 'one cycle across folders; the one within /z stands');
  assert.equal(cycles(g)[0].length, 3);
});
