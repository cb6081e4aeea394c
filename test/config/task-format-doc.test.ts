// docs/task-format.md is the reference of task files: every task it shows
// must pass `otus validate`, and every error example must give exactly the
// line shown under it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const OTUS = join(ROOT, 'dist/src/cli/otus.js');

/** The fenced blocks of a markdown file, with their language and whether they come after the heading `after`. */
export function fencedBlocks(file: string, after: string | null = null): { lang: string; text: string; late: boolean }[] {
  const out: { lang: string; text: string; late: boolean }[] = [];
  let late = false;
  let open: { lang: string; lines: string[] } | null = null;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (open === null) {
      if (after !== null && line === after) late = true;
      const m = /^```(\w*)$/.exec(line);
      if (m) open = { lang: m[1], lines: [] };
    } else if (line === '```') {
      out.push({ lang: open.lang, text: `${open.lines.join('\n')}\n`, late });
      open = null;
    } else open.lines.push(line);
  }
  return out;
}

const validate = (args: string[], cwd: string): { status: number | null; stdout: string; stderr: string } =>
  spawnSync(process.execPath, [OTUS, 'validate', ...args], { cwd, encoding: 'utf8' });

test('docs/task-format.md: every task shown validates, every error example gives its line', () => {
  const blocks = fencedBlocks(join(ROOT, 'docs/task-format.md'), '## Errors');
  const dir = mkdtempSync(join(tmpdir(), 'otus-taskdoc-'));
  try {
    writeFileSync(join(dir, 'otus.yml'), 'otus:\n  reporters: {console: {}, file: {}}\n');
    const tasks = blocks.filter((b) => b.lang === 'yaml' && !b.late);
    assert.ok(tasks.length >= 4, `${tasks.length} example tasks`);
    for (const b of tasks) {
      writeFileSync(join(dir, 'task.yml'), b.text);
      const r = validate(['--config', 'otus.yml', '--task', 'task.yml', '--json'], dir);
      assert.equal(r.status, 0, `${b.text}\n${r.stderr}`);
      const id = /^ {2}id: (\S+)/m.exec(b.text)![1];
      assert.equal((JSON.parse(r.stdout) as { task: { id: string } }).task.id, id);
    }
    let errors = 0;
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i];
      if (!b.late || b.lang !== 'yaml') continue;
      const want = blocks[i + 1];
      assert.equal(want?.lang, 'text', `the error example\n${b.text}has no text block after it`);
      writeFileSync(join(dir, 'task.yml'), b.text);
      const r = validate(['--task', 'task.yml'], dir);
      assert.equal(r.status, 2, b.text);
      assert.equal(r.stderr, want.text, b.text);
      errors++;
    }
    assert.ok(errors >= 8, `${errors} error examples`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
