// docs/records.md shows records as `otus replay` writes them: each example
// names a capture and which record it is (`<!-- example: FILE, PROTOCOL[/KIND] N -->`, PROTOCOL
// `rtp.stats` too);
// this replays the capture under the page's task and compares, field for
// field (`, envelope`: the envelope only). The task must validate too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OTUS, ROOT } from './helpers.js';

type Rec = { protocol: string; labels: Record<string, string> } & Record<string, unknown>;

test('docs/records.md: every example record is what otus replay writes for its capture', () => {
  const doc = readFileSync(join(ROOT, 'docs/records.md'), 'utf8');
  const task = /```yaml\n(task:[\s\S]*?)```/.exec(doc)![1];
  const dir = mkdtempSync(join(tmpdir(), 'otus-recdoc-'));
  try {
    const taskFile = join(dir, 'task.yml');
    writeFileSync(taskFile, task);
    const v = spawnSync(process.execPath, [OTUS, 'validate', '--task', taskFile], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    const replayed = new Map<string, Rec[]>();
    const records = (file: string): Rec[] => {
      let rs = replayed.get(file);
      if (rs === undefined) {
        const r = spawnSync(process.execPath, [OTUS, 'replay', '--task', taskFile, '--workers', '1', '--out=-', join(ROOT, file)], { encoding: 'utf8', maxBuffer: 64 << 20 });
        assert.equal(r.status, 0, r.stderr);
        rs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Rec);
        replayed.set(file, rs);
      }
      return rs;
    };
    const examples = [...doc.matchAll(/<!-- example: (\S+), ([a-z.]+)(?:\/([a-z-]+))? (\d+)(, envelope)? -->\n\n```json\n([\s\S]*?)\n```/g)];
    assert.equal(examples.length, (doc.match(/<!-- example:/g) ?? []).length, 'every example marker is followed by its JSON');
    assert.ok(examples.length >= 10, `${examples.length} examples`);
    for (const [, file, protocol, kind, n, envelope, json] of examples) {
      const of = records(file).filter((r) => r.protocol === protocol && (kind === undefined || r.labels['webrtc.kind'] === kind));
      const rec = of[Number(n) - 1];
      assert.ok(rec, `${file}: fewer than ${n} ${protocol} records`);
      const got = envelope ? Object.fromEntries(Object.entries(rec).filter(([k]) => k !== 'labels' && k !== 'payload')) : rec;
      assert.deepEqual(got, JSON.parse(json), `${file}, ${protocol} ${n}`);
    }
    // Every protocol the page has a section for has an example.
    for (const p of ['sip', 'sip.call', 'rtp', 'rtp.stats', 'rtcp', 'dns', 'http', 'webrtc']) assert.ok(examples.some((e) => e[2] === p), p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
