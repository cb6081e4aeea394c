// `otus replay` whose reporter cannot deliver (no server at its endpoint):
// the run finishes, every record is counted, and the command exits 4 with
// OTUS_ERR_UNDELIVERED and the count, so a script knows its output is not
// whole. It used to exit 0. With a capture file that stopped early too, both
// lines are printed and the status is 3 (the input's).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ipv4Frame, writePcap } from '../helpers/live.js';
import { freePort } from '../helpers/metrics.js';
import { assertUndelivered, OTUS } from '../helpers/otus-replay.js';

const N = 200;
const RECORD = 16 + 14 + 20 + 8 + 20; // pcap record header + the frame

function otus(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [OTUS, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stderr: r.stderr };
}

describe('otus replay: a reporter that delivers nothing', () => {
  let dir = '';
  let down = '';
  let ok = '';
  let clean = '';
  let corrupt = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'otus-undelivered-'));
    const port = await freePort(); // nothing listens there
    down = join(dir, 'down.yml');
    writeFileSync(down, `task:\n  id: undelivered\n  unmatched_policy: forward\n  reporter: {type: grpc, config: {endpoint: "127.0.0.1:${port}", format: json, timeout_ms: 500}}\n`);
    ok = join(dir, 'ok.yml');
    writeFileSync(ok, `task:\n  id: delivered\n  unmatched_policy: forward\n  reporter: {type: file, config: {path: ${join(dir, 'out.ndjson')}}}\n`);
    clean = join(dir, 'clean.pcap');
    writePcap(clean, Array.from({ length: N }, (_, i) => ipv4Frame({ src: [10, 0, 0, 1], dst: [10, 0, 1, 1], sport: 5000 + (i % 13), dport: 9999 }, 20, i)));
    const b = readFileSync(clean);
    b.writeUInt32LE(0xffffffff, 24 + (N / 2) * RECORD + 8); // caplen of record N/2
    corrupt = join(dir, 'corrupt.pcap');
    writeFileSync(corrupt, b);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('every record timed out: counted in the summary, the last line says how many, exit 4', () => {
    const stats = join(dir, 'down.json');
    const r = otus(['replay', '--task', down, '--stats-json', stats, clean]);
    assertUndelivered(r, N);
    assert.match(r.stderr, new RegExp(`otus: ${N} of ${N} records not delivered by the reporter: ${N} timed out \\[OTUS_ERR_UNDELIVERED\\]\\n$`));
    const s = JSON.parse(readFileSync(stats, 'utf8'));
    assert.equal(s.drops.reporter_timeout, N);
    assert.deepEqual(s.reporter, { acked: 0, timeout: N, errors: {}, queued: 0 });
  });

  it('the same task delivering to a file: exit 0, no such line', () => {
    const r = otus(['replay', '--task', ok, clean]);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /OTUS_ERR_UNDELIVERED/);
    assert.equal(readFileSync(join(dir, 'out.ndjson'), 'utf8').trim().split('\n').length, N);
  });

  it('and a capture file that stopped early: both lines, exit 3', () => {
    const r = otus(['replay', '--task', down, corrupt]);
    assert.equal(r.status, 3, r.stderr);
    const last = r.stderr.trim().split('\n').slice(-2);
    assert.match(last[0]!, /^otus: .*corrupt\.pcap: stopped: absurd caplen 4294967295 at byte \d+: replayed up to there \[OTUS_ERR_CAPTURE_INCOMPLETE\]$/);
    assert.equal(last[1], `otus: ${N / 2} of ${N / 2} records not delivered by the reporter: ${N / 2} timed out [OTUS_ERR_UNDELIVERED]`);
  });
});
