// pino-roll (with date-fns, ~300 modules, ~5 MiB of heap and code) is loaded
// only when a file output is opened: not by a child's logger, nor by a
// supervisor that logs to stderr. Checked in a fresh node through
// require.cache, which lists the CommonJS modules an ES module imported too.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const dir = mkdtempSync(join(tmpdir(), 'otus-lazy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `body` (ES module source, `L` the logger module) in a fresh node; returns the packages in require.cache after it. */
function packagesAfter(body: string): Set<string> {
  const logger = new URL('../../src/log/logger.js', import.meta.url).href;
  const script = `const L = await import(${JSON.stringify(logger)});
    ${body}
    const { createRequire } = await import('node:module');
    const names = Object.keys(createRequire(import.meta.url).cache).map((k) => /node_modules\\/((@[^/]+\\/)?[^/]+)/.exec(k)?.[1]).filter(Boolean);
    process.stdout.write(JSON.stringify([...new Set(names)]));
    process.exit(0);`;
  return new Set(JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[]);
}

const settings = (outputs: string): string => `{ level: 'info', format: 'json', rateLimitMs: 60000, outputs: ${outputs} }`;

test("a child's logger and a hub writing to stderr do not load pino-roll", () => {
  const child = packagesAfter(`L.childLogger({ level: 'info', node: 'n', task: 't', rateLimitMs: 1000 }, 'capture').info('x');`);
  assert.ok(child.has('pino'), 'pino is loaded');
  assert.ok(!child.has('pino-roll') && !child.has('date-fns'), [...child].join(' '));
  const hub = packagesAfter(`const h = await L.LogHub.open(${settings('{ stderr: {} }')}, 'n'); h.logger('supervisor').info('x');`);
  assert.ok(!hub.has('pino-roll') && !hub.has('date-fns'), [...hub].join(' '));
});

test('a file output loads pino-roll', () => {
  const file = JSON.stringify(join(dir, 'otus.log'));
  const hub = packagesAfter(`const h = await L.LogHub.open(${settings(`{ file: { path: ${file}, sizeBytes: 1 << 20, intervalMs: null, count: 1 } }`)}, 'n'); h.logger('supervisor').info('x'); await h.close();`);
  assert.ok(hub.has('pino-roll'), [...hub].join(' '));
});
