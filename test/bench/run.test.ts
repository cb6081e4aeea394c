// `npm run bench` as a smoke run (--quick, two steps): it writes the results
// file with the commit, the machine, Node, the command and each step's
// figures, and prints the targets table naming the file. The latency step
// measures after its warm-up: every record of the measured seconds counted.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { liveSkipReason, tempDir } from '../helpers/live.js';

const RUN = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

test('npm run bench --quick writes its results file and prints the targets table', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const r = spawnSync(process.execPath, [RUN, '--quick', '--only', 'decode-small,sip', '--out', dir], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const files = readdirSync(dir);
  assert.equal(files.length, 1);
  assert.match(files[0]!, /^\d{4}-\d\d-\d\d-[0-9a-f]{12}(-dirty)?-quick\.json$/);
  const doc = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')) as {
    commit: string;
    node: string;
    command: string;
    machine: { cpu: string; cpus: number };
    steps: { name: string; status: string; command: string; figures: Record<string, number | null> }[];
    targets: { target: string; value: number | null }[];
  };
  assert.match(doc.commit, /^[0-9a-f]{40}$/);
  assert.equal(doc.node, process.version);
  assert.match(doc.command, /run\.js --quick/);
  assert.ok(doc.machine.cpus > 0);
  assert.deepEqual(doc.steps.map((s) => [s.name, s.status]), [['decode-small', 'ok'], ['sip', 'ok']]);
  assert.ok((doc.steps[0]!.figures.mpps_per_cpu_s ?? 0) > 0, 'decode figure parsed');
  assert.ok((doc.steps[1]!.figures.sip_kpps_per_cpu_s ?? 0) > 0, 'SIP figure parsed');
  assert.ok(doc.targets.find((x) => x.target.startsWith('SIP'))?.value, 'the SIP target has its figure');
  assert.match(r.stdout, /^\| SIP ≥ 500 k packets per CPU-second \| \d+ k \| (yes|no) \|$/m);
  assert.ok(r.stdout.includes(`results: ${join(dir, files[0]!)}`));
});

test('the latency step measures the records after its warm-up', { skip: liveSkipReason() ?? false }, (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const r = spawnSync(process.execPath, [RUN, '--quick', '--only', 'latency-af_packet_v3', '--out', dir], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]!), 'utf8')) as { steps: { name: string; status: string; figures: Record<string, number | null> }[] };
  const f = doc.steps[0]!.figures;
  assert.equal(doc.steps[0]!.status, 'ok');
  // --quick: 2 s at 100 k packets/s measured; the kernel may drop some on a loaded machine.
  assert.ok((f.records ?? 0) > 100_000 && (f.records ?? 0) <= 210_000, `records ${f.records}`);
  assert.ok((f.p50_us ?? 0) > 0 && (f.p99_us ?? 0) >= (f.p50_us ?? 0) && (f.max_us ?? 0) >= (f.p99_us ?? 0), JSON.stringify(f));
});
