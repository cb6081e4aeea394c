// otusctl's tables and summaries from realistic result objects: aligned
// columns, 80-column width held with long ids, numbers humanised.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import {
  dropsByLayer,
  formatReload,
  formatStats,
  formatLogLevel,
  formatStatus,
  formatTaskList,
  formatTaskStatus,
  formatTaskStop,
  formatValidate,
  humanBytes,
  humanCount,
  humanDuration,
  lastExit,
  table,
} from '../../src/ctl/format.js';
import { counters, LONG_ID, NOW, stats, status, taskList, taskStatus } from './results.js';

function lines(s: string): string[] {
  assert.ok(s.endsWith('\n'), 'output ends with a newline');
  return s.slice(0, -1).split('\n');
}

function assertWidth(s: string, width: number): void {
  for (const l of lines(s)) assert.ok(l.length <= width, `line over ${width} columns (${l.length}): ${JSON.stringify(l)}`);
}

/** The column where each header starts, and that each row's cell (left-aligned) starts there too. */
function columnStart(out: string, header: string): number {
  const at = lines(out)[0].indexOf(header);
  assert.ok(at >= 0, `header ${header} in ${lines(out)[0]}`);
  return at;
}

describe('humanised values', () => {
  it('counts: exact below 10000, then k, M, G with at most 3 significant digits', () => {
    assert.equal(humanCount(0), '0');
    assert.equal(humanCount(9_999), '9999');
    assert.equal(humanCount(12_345), '12.3k');
    assert.equal(humanCount(456_789), '457k');
    assert.equal(humanCount(999_999), '1.0M');
    assert.equal(humanCount(12_345_678), '12.3M');
    assert.equal(humanCount(123_456_789), '123M');
    assert.equal(humanCount(2_500_000_000), '2.5G');
    assert.equal(humanCount(null), '-');
    assert.equal(humanCount(Number.NaN), '-');
  });
  it('bytes as KiB, MiB, GiB', () => {
    assert.equal(humanBytes(512 * 1024), '512 KiB');
    assert.equal(humanBytes(88_290_000), '84.2 MiB');
    assert.equal(humanBytes(150_000_000), '143 MiB');
    assert.equal(humanBytes(3 * 1024 ** 3), '3.0 GiB');
    assert.equal(humanBytes(null), '-');
  });
  it('durations', () => {
    assert.equal(humanDuration(42), '42s');
    assert.equal(humanDuration(252), '4m12s');
    assert.equal(humanDuration(11_100), '3h05m');
    assert.equal(humanDuration(183_600), '2d03h');
    assert.equal(humanDuration(-1), '-');
  });
  it("last exit: the daemon's text, or code, signal and reason", () => {
    assert.equal(lastExit(null), '-');
    assert.equal(lastExit('no heartbeat for 3000 ms'), 'no heartbeat for 3000 ms');
    assert.equal(lastExit({ code: 1, signal: null }), 'code 1');
    assert.equal(lastExit({ code: null, signal: 'SIGKILL', reason: 'out of memory' }), 'SIGKILL: out of memory');
  });
});

describe('table', () => {
  it('cuts the widest shrinkable column first, never below its header, and aligns numbers right', () => {
    const cols = [{ header: 'NAME', shrink: true }, { header: 'N', right: true }, { header: 'NOTE', shrink: true }];
    const rows = [
      ['a'.repeat(30), '1', 'b'.repeat(10)],
      ['c', '12345', 'd'],
    ];
    // Natural widths 30, 5, 10 (49 with the gaps): NAME alone is cut, to 11.
    assert.equal(table(cols, rows, 30), ['NAME             N  NOTE', `${'a'.repeat(10)}…      1  ${'b'.repeat(10)}`, 'c            12345  d', ''].join('\n'));
    // Narrower: both are cut, down to their headers; then the line runs over rather than cutting numbers.
    assert.equal(table(cols, rows, 10), ['NAME      N  NOTE', 'aaa…      1  bbb…', 'c     12345  d', ''].join('\n'));
  });
});

describe('task list', () => {
  it('one aligned row per task with humanised uptimes', () => {
    const out = formatTaskList(taskList, { now: NOW });
    assertWidth(out, 80);
    const ls = lines(out);
    assert.equal(ls.length, 4);
    assert.match(ls[0], /^ID +STATE +IFACE +DRIVER +WORKERS +RESTARTS +UPTIME$/);
    const state = columnStart(out, 'STATE');
    const iface = columnStart(out, 'IFACE');
    assert.deepEqual(ls.slice(1).map((l) => l.slice(state).split(' ')[0]), ['running', 'degraded', 'failed']);
    assert.deepEqual(ls.slice(1).map((l) => l.slice(iface).split(' ')[0]), ['eth0', 'ens3f1np1', 'lo']);
    assert.match(ls[1], /voip-monitor-01 +running .* 2 +0 +3h05m$/);
    assert.match(ls[2], /2d01h$/);
    assert.match(ls[3], / -$/, 'no start time: "-"');
  });
  it('a long task id is cut with … and the table stays within 80 columns', () => {
    const out = formatTaskList({ tasks: [...taskList.tasks, { ...taskList.tasks[0], id: LONG_ID, interface: 'a-very-long-interface-name-0' }] }, { now: NOW });
    assertWidth(out, 80);
    const last = lines(out)[4];
    assert.ok(last.startsWith(LONG_ID.slice(0, 8)), last);
    assert.match(last, /^\S+… /, 'the id ends with …');
    assert.match(last, /running .* 3h05m$/, 'the other columns are whole');
    // The same table on a wide terminal keeps the id whole.
    assert.ok(formatTaskList({ tasks: [{ ...taskList.tasks[0], id: LONG_ID }] }, { now: NOW, width: 200 }).includes(LONG_ID));
  });
  it('no tasks', () => {
    assert.equal(formatTaskList({ tasks: [] }), 'no tasks\n');
  });
  it('control characters from the daemon do not reach the terminal', () => {
    const out = formatTaskList({ tasks: [{ ...taskList.tasks[0], id: 'evil\u001b[2Jid' }] }, { now: NOW });
    assert.ok(!out.includes('\u001b'));
    assert.ok(out.includes('evil?[2Jid'));
  });
});

describe('task status', () => {
  it('a header, the process table, then frames, records and drops by layer', () => {
    const out = formatTaskStatus(taskStatus, { now: NOW });
    assertWidth(out, 80);
    const ls = lines(out);
    assert.equal(ls[0], 'task voip-monitor-01: degraded');
    assert.match(ls[1], /eth0 \(af_packet_v3\), 2 workers, up 3h05m since 2025-03-01T08:55:00Z, 1 restart$/);
    assert.match(ls[2], /reason: capture process 1 is restarting/);
    const head = ls.findIndex((l) => l.startsWith('ROLE'));
    assert.match(ls[head], /^ROLE +INDEX +PID +CPU +STATE +RSS +CPU-S +RESTARTS +LAST EXIT$/);
    const procs = ls.slice(head + 1, head + 4);
    assert.match(procs[0], /^capture +0 +4101 +0 +running +84\.2 MiB +12\.5 +0 +-$/);
    assert.match(procs[1], /^capture +1 +- +1 +restarting +- +- +1 +exit code 1: …$/, 'cut to fit');
    assert.match(procs[2], /^sender +0 +4100 +- +running +143 MiB +30\.2 +1 +SIGKILL$/);
    // The cut one whole under the table (the one that fits is not repeated).
    assert.deepEqual(ls.slice(head + 4, head + 7), ['capture 1 last exit: exit code 1: stream failed: recvfrom on eth0: ENETDOWN', '    (network is down)', '']);
    // Numbers end under their header.
    const pidEnd = ls[head].indexOf('PID') + 3;
    for (const p of procs) assert.equal(p[pidEnd - 1] !== ' ', true, `PID right-aligned in ${p}`);
    assert.ok(ls.includes('frames 12.3M, records 1.2M, drops 1.2M'), out);
    // Largest first, wrapped at 80 columns.
    assert.deepEqual(ls.slice(ls.indexOf('frames 12.3M, records 1.2M, drops 1.2M') + 1), [
      'drops by layer: filter 1.2M, processor:filter 4500, parser_no_output 17,',
      '    ring_tail 12, kernel 10, decode 3',
    ]);
  });
  it("says so under the header when a sender's reporter cannot reach its destination", () => {
    const ok = formatTaskStatus({ ...taskStatus, processes: taskStatus.processes.map((p) => (p.role === 'sender' ? { ...p, reporter_healthy: true } : p)) }, { now: NOW });
    assert.ok(!ok.includes('unhealthy'), ok);
    const out = formatTaskStatus({ ...taskStatus, reason: null, processes: taskStatus.processes.map((p) => (p.role === 'sender' ? { ...p, reporter_healthy: false } : p)) }, { now: NOW });
    assertWidth(out, 80);
    const ls = lines(out);
    assert.match(ls[2]!, /^ {2}reporter: unhealthy \(sender 0\): its output fails;/);
    assert.match(ls[3]!, /^ {4}.*\(the log has the last error\)$/);
  });
  it('stays within 80 columns with a long id and a long last-exit reason', () => {
    const long = { ...taskStatus, id: LONG_ID, reason: 'x'.repeat(200) };
    assert.match(formatTaskStatus({ ...taskStatus, reason: 'capture process 1 failed: ' + 'why '.repeat(28) + 'end' }, { now: NOW }), /\n {2}reason: capture process 1 failed: why why[ why]+\n {4}why[ why]+ end\n\n/);
    long.processes = [{ ...taskStatus.processes[1], last_exit: 'exit code 1: the kernel said: ' + 'word '.repeat(40) + 'end' }];
    const out = formatTaskStatus(long, { now: NOW });
    assertWidth(out, 80);
    assert.match(out, /^task voip-monitor-carrier\S+…\n/);
    // Reasons are wrapped, not lost (a word longer than the line is cut).
    assert.match(out, /\n {2}reason: x+…\n\n/);
    assert.match(out, /\ncapture 1 last exit: exit code 1: the kernel said: word word[ word]+(\n {4}word[ word]+)+ end\n/);
  });
  it('drops by layer: the kernel (summed over capture processes), then the pipeline, processors by name', () => {
    const d = dropsByLayer(counters());
    assert.deepEqual(d.slice(0, 3), [['kernel', 10], ['decode', 3], ['filter', 1_200_000]]);
    assert.deepEqual(d.find(([k]) => k === 'processor:filter'), ['processor:filter', 4_500]);
    assert.deepEqual(dropsByLayer({ frames: 1, records: 1, drops: { decode: 1 } }), [['decode', 1]], 'no capture processes, no kernel entry');
  });
});

describe('stats, status, reload, stop, validate', () => {
  it('stats: one row per task, drops by layer largest first, 80 columns with a long id', () => {
    const out = formatStats(stats);
    assertWidth(out, 80);
    const ls = lines(out);
    assert.match(ls[0], /^TASK +FRAMES +RECORDS +DROPS +DROPS BY LAYER$/);
    assert.match(ls[1], /^voip-monitor-01 +12\.3M +1\.2M +1\.2M +filter 1\.2M, processor:fil…$/);
    assert.match(formatStats(stats, { width: 300 }), /\nvoip-monitor-01 +12\.3M +1\.2M +1\.2M +filter 1\.2M, processor:filter 4500, parser_no_output 17, ring_tail 12, kernel 10, decode 3\n/);
    assert.match(ls[2], /^dns-edge +494M +49\.4M +48\.0M +filter 48\.0M,/);
    assert.match(ls[3], /^voip-monitor-carrier\S*… +12\.3M /);
    assert.equal(formatStats({ tasks: {} }), 'no tasks\n');
  });
  it('status: a few lines', () => {
    const out = formatStatus(status);
    assertWidth(out, 80);
    const ls = lines(out);
    assert.equal(ls[0], 'otus:     0.1.0, pid 4000, up 2d02h since 2025-02-27T10:00:00Z');
    assert.equal(ls[1], 'node:     edge-fra-01 (fra1-probe-7)');
    assert.ok(ls.includes('tasks:    1 running, 1 degraded, 1 failed, 0 starting, 0 stopping'));
    assert.ok(ls.includes('workers:  7 of 16 used'));
    assert.ok(ls.includes('command channel: connected'));
    // The log: each output on its line, a failing one with what failed, wrapped.
    const log = ls.slice(ls.indexOf('log:      info'));
    assert.deepEqual(log.slice(0, 3), ['log:      info', '  stderr', '  file /var/log/otus/otus.log']);
    assert.equal(
      log.slice(3).join(' ').replace(/ +/g, ' '),
      ' loki https://loki.monitoring.example.net:3100/loki/api/v1/push: 12 failed pushes, 15.3k lines dropped, 16.0 MiB held, last error: ECONNREFUSED: connect ECONNREFUSED 10.0.0.9:3100',
    );
    assert.equal(formatStatus({ ...status, log: undefined }).includes('log:'), false, 'an older daemon says nothing of its log');
  });
  it('status: the command channel, its messages, and its last error when it is not ready, wrapped', () => {
    const commands = { ok: 1200, error: 2, duplicate: 0, replayed: 0, other_node: 40, malformed: 10000, unknown_command: 0, bad_version: 0, unsigned: 3, bad_signature: 0, stale: 0 };
    const cc = { state: 'error', last_error: 'listing topics: Local: Broker transport failure (kafka-1.example.net:9092 refused the connection)', since: '2025-03-01T12:00:00Z', brokers: ['kafka-1.example.net:9092'], topic: 'otus-commands', status_topic: 'otus-status', group_id: 'otus-edge', signed: true, commands, published: 9, publish_errors: 0 };
    const out = formatStatus({ ...status, command_channel: cc, log: undefined });
    assertWidth(out, 80);
    const ls = lines(out);
    const at = ls.findIndex((l) => l.startsWith('command channel:'));
    assert.equal(ls[at], 'command channel: error, otus-commands at kafka-1.example.net:9092, signed');
    assert.equal(ls[at + 1], '  messages: 1200 ok, 2 error, 40 other_node, 10.0k malformed, 3 unsigned');
    assert.equal(ls.slice(at + 2).join(' ').replace(/ +/g, ' '), ' last error: listing topics: Local: Broker transport failure (kafka-1.example.net:9092 refused the connection)');
    const ready = lines(formatStatus({ ...status, command_channel: { ...cc, state: 'ready', commands: { ...commands, ok: 0, error: 0, other_node: 0, malformed: 0, unsigned: 0 } }, log: undefined }));
    assert.equal(ready[ready.length - 1], 'command channel: ready, otus-commands at kafka-1.example.net:9092, signed', 'no messages yet, no error shown');
  });
  it('log-level: the new level and the one before', () => {
    assert.equal(formatLogLevel({ level: 'debug', previous: 'info' }), 'log level: debug (was info)\n');
  });
  it('reload: applied and needs-restart lists', () => {
    assert.equal(formatReload({ applied: ['task dns-edge', 'log.level'], needs_restart: [] }), 'applied (2):\n  task dns-edge\n  log.level\nneeds restart: nothing\n');
    assert.equal(formatReload({ applied: [], needs_restart: ['control.socket'] }), 'applied: nothing\nneeds restart (1):\n  control.socket\n');
  });
  it('task stop: the state and the final counters', () => {
    const out = formatTaskStop({ id: 'dns-edge', state: 'stopped', counters: counters() });
    assert.match(out, /^task dns-edge: stopped\nframes 12\.3M, records 1\.2M, drops 1\.2M\ndrops by layer: /);
  });
  it('validate: the effective configuration as YAML', () => {
    const effective = { control: { socket: '/run/otus/otus.sock', mode: '0660' }, tasks: [{ id: 't', workers: 2 }] };
    const out = formatValidate({ effective });
    assert.deepEqual(parse(out), effective);
    assert.match(out, /^control:\n {2}socket: \/run\/otus\/otus\.sock\n/);
  });
});
