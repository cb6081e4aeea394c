// RateLimitedLog: a storm of one condition is its first line, then one
// summary per interval that adds up what it held back; nothing is lost
// from the counts, and a later occurrence is logged in full again.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Logger, pino } from 'pino';
import { RateLimitedLog } from '../../src/log/rate-limit.js';
import { waitFor } from '../helpers/live.js';

interface Line {
  level: number;
  msg: string;
  key?: string;
  count?: number;
  window_s?: number;
  [k: string]: unknown;
}

function collector(): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  return { log, lines };
}

test('a storm of 10000 occurrences is one line and a summary that adds up the rest', async () => {
  const { log, lines } = collector();
  const r = new RateLimitedLog(log, 300);
  for (let i = 0; i < 10_000; i++) r.warn('malformed', 2, { code: 'ipv4_bad_version' }, 'malformed packets');
  assert.equal(lines.length, 1, 'only the first is logged while the window is open');
  assert.deepEqual([lines[0]!.msg, lines[0]!.count, lines[0]!.code, lines[0]!.level], ['malformed packets', 2, 'ipv4_bad_version', 40]);
  assert.ok(await waitFor(() => lines.length === 2, 5000), 'the summary comes when the window ends');
  assert.equal(lines[1]!.count, 9_999 * 2);
  assert.match(lines[1]!.msg, /^malformed packets: 19998 more in the last [\d.]+ s$/);
  assert.ok(lines[1]!.window_s! >= 0.3, String(lines[1]!.window_s));
  // The storm is over: the window closes empty, and the next occurrence is a full line again.
  await new Promise((res) => setTimeout(res, 700));
  assert.equal(lines.length, 2, 'an empty window says nothing');
  r.warn('malformed', 5, { code: 'udp_truncated' }, 'malformed packets');
  assert.equal(lines.length, 3);
  assert.deepEqual([lines[2]!.count, lines[2]!.code], [5, 'udp_truncated']);
  r.flush();
});

test('a storm that goes on: one summary per interval; keys are limited apart; flush says what is pending at once', async () => {
  const { log, lines } = collector();
  const r = new RateLimitedLog(log, 200);
  let sent = 0;
  const t0 = Date.now();
  // 1 s of occurrences every 5 ms: about 200 of each key.
  while (Date.now() - t0 < 1000) {
    r.warn('kernel_drops', 3, {}, 'the kernel dropped packets');
    r.error('reporter', 1, {}, 'reporter failed');
    sent++;
    await new Promise((res) => setTimeout(res, 5));
  }
  r.flush();
  const of = (key: string): Line[] => lines.filter((l) => l.key === key);
  for (const [key, n] of [['kernel_drops', 3], ['reporter', 1]] as const) {
    const ls = of(key);
    assert.ok(ls.length >= 3 && ls.length <= 8, `${key}: ${ls.length} lines for ${sent} occurrences in 1 s with a 200 ms window`);
    assert.equal(ls.reduce((a, l) => a + l.count!, 0), sent * n, `${key}: the counts add up to every occurrence`);
  }
  assert.ok(of('reporter').every((l) => l.level === 50), 'the level of the key is kept in its summaries');
  const before = lines.length;
  r.flush();
  assert.equal(lines.length, before, 'a second flush has nothing to say');
});
