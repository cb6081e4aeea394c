// `otus replay` over a capture file it cannot read to its end (a corrupt
// record header, a truncated tail): the frames before it are replayed, the
// reader's reason (the one `otus decode` prints as `stopped:`) is in the
// summary's warnings and `incomplete_files`, and the command exits 3 with
// OTUS_ERR_CAPTURE_INCOMPLETE. It used to say nothing and exit 0.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ipv4Frame, writePcap } from '../helpers/live.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const OTUS = join(ROOT, 'dist/src/cli/otus.js');
const PCAPNG = join(ROOT, 'test/fixtures/captures/rtpproxy--dtmf.pcapng');

function otus(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [OTUS, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What `otus decode` says about where and why the file stopped. */
function decodeStopped(file: string): string {
  const m = /; stopped: (.*)\n/.exec(otus(['decode', file]).stderr);
  assert.ok(m, 'otus decode says where the file stopped');
  return m[1]!;
}

describe('otus replay: a capture file that cannot be read to its end', () => {
  let dir = '';
  let task = '';
  let clean = '';
  let corrupt = '';
  let truncatedNg = '';
  const N = 1000;
  const BAD = 500;
  const RECORD = 16 + 14 + 20 + 8 + 20; // pcap record header + the frame

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'otus-incomplete-'));
    task = join(dir, 'fwd.yml');
    writeFileSync(task, 'task:\n  id: incomplete\n  unmatched_policy: forward\n');
    clean = join(dir, 'clean.pcap');
    writePcap(clean, Array.from({ length: N }, (_, i) => ipv4Frame({ src: [10, 0, 0, 1 + (i % 7)], dst: [10, 0, 1, 1], sport: 5000 + (i % 13), dport: 9999 }, 20, i)));
    // A mutated record header: caplen 0xffffffff at record BAD.
    const b = readFileSync(clean);
    b.writeUInt32LE(0xffffffff, 24 + BAD * RECORD + 8);
    corrupt = join(dir, 'corrupt.pcap');
    writeFileSync(corrupt, b);
    // A pcapng cut in the middle of a block.
    const ng = readFileSync(PCAPNG);
    truncatedNg = join(dir, 'truncated.pcapng');
    writeFileSync(truncatedNg, ng.subarray(0, Math.floor(ng.length / 2) + 3));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const workers of ['1', '2']) {
    it(`a corrupt record header, ${workers} capture process(es): replayed up to it, the reason in the warnings, exit 3`, () => {
      const stats = join(dir, `stats-${workers}.json`);
      const out = join(dir, `out-${workers}.ndjson`);
      const r = otus(['replay', '--task', task, '--workers', workers, '--out', out, '--stats-json', stats, corrupt]);
      assert.equal(r.status, 3, r.stderr);
      const why = decodeStopped(corrupt);
      assert.equal(why, `absurd caplen 4294967295 at byte ${24 + BAD * RECORD}`);
      const s = JSON.parse(readFileSync(stats, 'utf8'));
      assert.equal(s.frames, BAD);
      assert.equal(s.records, BAD);
      assert.equal(readFileSync(out, 'utf8').trim().split('\n').length, BAD);
      assert.deepEqual(s.incomplete_files, [{ file: corrupt, stopped: why, frames: BAD, bytes_read: 24 + BAD * RECORD, file_size: 24 + N * RECORD }]);
      assert.deepEqual(s.warnings, [`${corrupt}: stopped: ${why}; ${BAD} frames before it were replayed, the last ${(N - BAD) * RECORD} of ${24 + N * RECORD} bytes were not`]);
      assert.match(r.stderr, new RegExp(`  warning: ${corrupt.replace(/[.]/g, '\\.')}: stopped: ${why}`));
      const last = r.stderr.trim().split('\n').pop();
      assert.equal(last, `otus: ${corrupt}: stopped: ${why}: replayed up to there [OTUS_ERR_CAPTURE_INCOMPLETE]`);
    });
  }

  it('a pcapng cut mid-block: the same, with the pcapng reader\'s reason', () => {
    const stats = join(dir, 'stats-ng.json');
    const r = otus(['replay', '--task', task, '--out', '/dev/null', '--stats-json', stats, truncatedNg]);
    assert.equal(r.status, 3, r.stderr);
    const s = JSON.parse(readFileSync(stats, 'utf8'));
    assert.equal(s.incomplete_files.length, 1);
    assert.equal(s.incomplete_files[0].stopped, decodeStopped(truncatedNg));
    assert.ok(s.frames > 0 && s.frames < 196, `${s.frames} frames before the cut`);
  });

  it('several files, one whole: only the incomplete one is named; a whole file alone exits 0 with no warning', () => {
    const stats = join(dir, 'stats-both.json');
    const r = otus(['replay', '--task', task, '--out', '/dev/null', '--stats-json', stats, clean, corrupt]);
    assert.equal(r.status, 3, r.stderr);
    const s = JSON.parse(readFileSync(stats, 'utf8'));
    assert.equal(s.frames, N + BAD);
    assert.deepEqual(s.incomplete_files.map((f: { file: string }) => f.file), [corrupt]);
    const ok = otus(['replay', '--task', task, '--out', '/dev/null', '--stats-json', stats, clean]);
    assert.equal(ok.status, 0, ok.stderr);
    const s2 = JSON.parse(readFileSync(stats, 'utf8'));
    assert.deepEqual([s2.warnings, s2.incomplete_files, s2.frames], [[], [], N]);
  });
});
