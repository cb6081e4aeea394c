// otusctl top's model and screen, from task.status results as the daemon
// answers them: rates between samples (a capture process's by its own
// clock), restarts and re-created tasks, sorting, and 80 columns.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StatusResult, TaskStatus } from '../../src/ctl/protocol.js';
import { renderTop, TopModel, WINDOW_MS } from '../../src/ctl/top.js';
import { LONG_ID, NOW, status as daemonStatus } from './results.js';

interface Cap {
  frames: number;
  wall: number;
  kernelDrops?: number;
}

/** A task.status result: capture processes' counters as of their last copy (frames, wall_s), the sender's records. */
function task(id: string, o: { caps: Cap[]; records: number; filter?: number; ringHead?: number; pids?: number[]; cpu?: number[]; startedAt?: string; ringUsed?: number; live?: number }): TaskStatus {
  const frames = o.caps.reduce((a, c) => a + c.frames, 0);
  const pids = o.pids ?? [100, ...o.caps.map((_, i) => 101 + i)];
  const cpu = o.cpu ?? pids.map(() => 1);
  return {
    id,
    state: 'running',
    interface: 'eth0',
    driver: 'af_packet_v3',
    workers: o.caps.length,
    started_at: o.startedAt ?? '2025-03-01T11:00:00Z',
    restarts: 0,
    reason: null,
    processes: [
      { role: 'sender', index: -1, pid: pids[0]!, cpu: null, state: 'running', rss_bytes: 80 << 20, cpu_s: cpu[0]!, restarts: 0, last_exit: null, started_at: null },
      ...o.caps.map((_, i) => ({ role: 'capture', index: i, pid: pids[i + 1]!, cpu: i, state: 'running', rss_bytes: (200 + i) << 20, cpu_s: cpu[i + 1]!, restarts: 0, last_exit: null, started_at: null })),
    ],
    counters: {
      frames,
      records: o.records,
      drops: { decode: 0, filter: o.filter ?? 0, unmatched: 0, parser_no_output: 0, processors: {}, encode: 0, ring_tail: 0, ring_head: o.ringHead ?? 0, ring_abandoned: 0, sender_expand: 0 },
      capture_processes: o.caps.map((c, i) => ({ index: i, frames: c.frames, records: c.frames, wall_s: c.wall, kernel_drops: c.kernelDrops ?? 0 })),
      sender: { records: o.records, bytes: o.records * 100 },
      flow_registry: { capacity: 65536, live: o.live ?? 0 },
    },
    ring: { data_bytes: 64 << 20, used_bytes: o.ringUsed ?? 0 },
  };
}

const status: StatusResult = { ...daemonStatus, tasks: { running: 2, degraded: 0, failed: 0, starting: 0, stopping: 0 } };

describe('otusctl top', () => {
  it("rates: a capture process's by its own clock at its beat, the task's and the sender's over the time between samples", () => {
    const m = new TopModel();
    m.add({ at: 0, status, tasks: [task('voip', { caps: [{ frames: 0, wall: 10 }, { frames: 0, wall: 10 }], records: 0, cpu: [1, 1, 1] })] });
    const first = m.view();
    assert.equal(first.tasks[0]!.pps, null, 'one sample: no rate yet');
    assert.equal(first.tasks[0]!.procs[1]!.pps, null);
    // One second later; process 0 beat 0.5 s after its last one, process 1 not at all since.
    m.add({ at: 1000, status, tasks: [task('voip', { caps: [{ frames: 800, wall: 10.5, kernelDrops: 8 }, { frames: 0, wall: 10 }], records: 700, filter: 100, ringHead: 50, cpu: [1.25, 1.5, 1] })] });
    const v = m.view();
    const t = v.tasks[0]!;
    assert.equal(v.windowS, 1);
    assert.equal(t.pps, 800);
    assert.equal(t.recordsPs, 700);
    assert.deepEqual(t.dropsByLayer, [['filter', 100], ['ring_head', 50], ['kernel', 8]], 'by layer, largest first');
    assert.equal(t.dropsPs, 158);
    const [sender, c0, c1] = t.procs;
    assert.deepEqual([sender!.name, sender!.pps, sender!.total], ['sender', 700, 700]);
    assert.deepEqual([c0!.name, c0!.pps, c0!.dropsPs, c0!.total], ['capture 0', 1600, 16, 800], 'frames over its own 0.5 s');
    assert.equal(c1!.pps, 0, 'no beat since: nothing new');
    assert.deepEqual([c0!.cpuPct, sender!.cpuPct], [50, 25]);
  });

  it('the window: rates span the last 5 s, from the newest sample older than that', () => {
    const m = new TopModel();
    for (let s = 0; s <= 10; s++) m.add({ at: s * 1000, status, tasks: [task('voip', { caps: [{ frames: s * s * 100, wall: s }], records: s * 100 })] });
    const v = m.view();
    assert.equal(v.windowS, WINDOW_MS / 1000);
    assert.equal(v.tasks[0]!.pps, (10000 - 2500) / 5, 'frames from 5 s to 10 s over 5 s');
    assert.equal(v.tasks[0]!.procs[1]!.pps, 1500);
  });

  it('a restarted process has no CPU% across its pid change; a task stopped and created again starts afresh', () => {
    const m = new TopModel();
    m.add({ at: 0, status, tasks: [task('voip', { caps: [{ frames: 5000, wall: 50 }], records: 5000, pids: [100, 101], cpu: [5, 9] })] });
    m.add({ at: 1000, status, tasks: [task('voip', { caps: [{ frames: 5100, wall: 50.5 }], records: 5100, pids: [100, 202], cpu: [5.1, 0.2] })] });
    const p = m.view().tasks[0]!.procs[1]!;
    assert.equal(p.pid, 202);
    assert.equal(p.cpuPct, null);
    assert.equal(p.pps, 200);
    m.add({ at: 2000, status, tasks: [task('voip', { caps: [{ frames: 10, wall: 1 }], records: 10, startedAt: '2025-03-01T11:59:00Z' })] });
    const t = m.view().tasks[0]!;
    assert.deepEqual([t.pps, t.recordsPs, t.procs[1]!.pps], [null, null, null], 'no rate against the old task');
  });

  it('the screen: 80 columns, each task with its rates, fills and processes; sort keys; cut to the terminal height', () => {
    const m = new TopModel();
    const tasks = (k: number): TaskStatus[] => [
      task('voip', { caps: [{ frames: 1000 * k, wall: k }, { frames: 3000 * k, wall: k }], records: 3900 * k, ringUsed: 16 << 20, live: 6554 }),
      task(LONG_ID, { caps: [{ frames: 50_000 * k, wall: k, kernelDrops: 120 * k }], records: 50_000 * k, pids: [300, 301] }),
    ];
    m.add({ at: 0, status, tasks: tasks(1) });
    m.add({ at: 1000, status, tasks: tasks(2) });
    const out = renderTop(m.view(), { width: 80, height: 0, sort: 'name', now: NOW });
    for (const l of out) assert.ok(l.length <= 80, `${l.length} columns: ${l}`);
    assert.deepEqual(out.slice(0, 3), [
      'otus top  edge-fra-01  up 2d02h  tasks 2 running  workers 7/16  12:00:00',
      'keys: n name  p pkts/s  d drops/s  c cpu  m rss  r restarts  q quit',
      'sorted by name; rates over the last 1 s',
    ]);
    const voip = out.indexOf('TASK voip  running  eth0 (af_packet_v3)  up 1h00m  restarts 0');
    assert.ok(voip > 0, out.join('\n'));
    assert.equal(out[voip + 1], '  4000 pkts/s  3900 rec/s  0 drops/s  ring 25.0%  registry 10.0% of 65.5k');
    assert.match(out[voip + 2]!, /^ {2}PROCESS +PID +STATE +PKTS\/S +DROPS\/S +TOTAL +CPU% +RSS +RESTARTS$/);
    assert.match(out[voip + 3]!, /^ {2}sender +100 +running +3900 +0 +7800 +0\.0 +80M +0$/);
    assert.match(out[voip + 4]!, /^ {2}capture 0 +101 +running +1000 +0 +2000 +0\.0 +200M +0$/);
    assert.match(out[voip + 5]!, /^ {2}capture 1 +102 +running +3000 +0 +6000 +0\.0 +201M +0$/);
    const long = out.findIndex((l) => l.startsWith('TASK voip-monitor-carrier'));
    assert.ok(long > voip, 'sorted by name: voip-monitor-carrier… after voip');
    assert.ok(out[long]!.endsWith('…'), 'a long id is cut to the width');
    assert.equal(out[long + 2], '  drops/s by layer: kernel 120');
    assert.match(out[long + 5]!, /^ {2}capture 0 +301 +running +50\.0k +120 +100k /);

    const byPps = renderTop(m.view(), { width: 80, height: 0, sort: 'pps', now: NOW });
    assert.ok(byPps.findIndex((l) => l.startsWith('TASK voip-monitor-carrier')) < byPps.findIndex((l) => l.startsWith('TASK voip ')), 'the busiest task first');
    const v = byPps.findIndex((l) => l.startsWith('TASK voip '));
    assert.match(byPps[v + 3]!, /^ {2}sender /, 'within a task too: the sender (3900/s), capture 1 (3000/s), capture 0 (1000/s)');
    assert.match(byPps[v + 4]!, /^ {2}capture 1 /);
    assert.match(byPps[2]!, /^sorted by pps;/);

    const short = renderTop(m.view(), { width: 80, height: 10, sort: 'name', now: NOW });
    assert.equal(short.length, 10);
    assert.match(short[9]!, /^… \d+ more lines/);
    assert.deepEqual(renderTop(new TopModel().view(), { width: 80, height: 0, sort: 'name', now: NOW }).slice(2), ['sorted by name', '', 'no tasks']);
  });
});
