// `otusctl top` in a real terminal: tmux runs it at 80 columns against a
// daemon whose task captures paced traffic on a veth; the pane is read
// with `tmux capture-pane` and checked against the task's own counters.
// Then the keys: a sort, Ctrl-C (the terminal is given back, status 0);
// and a daemon that goes away under it (status 3, the reason).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { removeAllStaleSegments } from '../../src/shm/segment.js';
import { ctl, type Daemon, OTUSCTL, startDaemon } from '../helpers/daemon.js';
import { ipv4Frame, liveSkipReason, makeVethHost, removeStaleNamespaces, tempDir, type VethHost, waitFor, writePcap } from '../helpers/live.js';

const tmuxMissing = spawnSync('sh', ['-c', 'command -v tmux']).status !== 0 ? 'needs tmux (scripts/setup.sh --test installs it)' : null;
const skip = liveSkipReason() ?? tmuxMissing;

const SERVER = `otus-top-${process.pid}`;
const tmux = (...args: string[]): string => {
  const r = spawnSync('tmux', ['-L', SERVER, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
/** The visible screen, wrapped lines joined. */
const pane = (target: string): string[] => tmux('capture-pane', '-p', '-J', '-t', target).split('\n');

/** A process row of the screen: PROCESS PID STATE PKTS/S DROPS/S TOTAL CPU% RSS RESTARTS. */
interface Row {
  name: string;
  pid: number;
  state: string;
  pps: string;
  total: string;
  restarts: number;
}

function rows(screen: string[]): Row[] {
  const out: Row[] = [];
  for (const l of screen) {
    const m = /^ {2}(sender|capture \d+) +(\d+) +(\S+) +(\S+) +(\S+) +(\S+) +(\S+) +(\S+) +(\d+)$/.exec(l);
    if (m) out.push({ name: m[1]!, pid: Number(m[2]), state: m[3]!, pps: m[4]!, total: m[6]!, restarts: Number(m[9]) });
  }
  return out;
}

/** 950, 12.3k, 1.2M as a number. */
function count(s: string): number {
  const m = /^([\d.]+)([kMG]?)$/.exec(s);
  if (!m) return NaN;
  return Number(m[1]) * { '': 1, k: 1e3, M: 1e6, G: 1e9 }[m[2] as '' | 'k' | 'M' | 'G'];
}

interface Status {
  processes: { role: string; index: number; pid: number }[];
  counters: { capture_processes: { index: number; frames: number; wall_s: number }[] };
}

describe('otusctl top under tmux', { skip: skip ?? false }, () => {
  let tmp: ReturnType<typeof tempDir>;
  let host: VethHost;
  let d: Daemon;
  let socket = '';
  const PPS = 400;
  const FRAMES = 4000;

  const status = async (): Promise<Status> => {
    const r = await ctl(socket, ['task', 'status', '--id', 'top']);
    assert.equal(r.status, 0, r.stderr);
    return r.json;
  };
  const runTop = (name: string): void => {
    // The shell says how top ended once it has given the terminal back.
    tmux('new-session', '-d', '-s', name, '-x', '80', '-y', '30', `${process.execPath} ${OTUSCTL} --socket ${socket} top; echo "top exited $?"; sleep 600`);
  };

  before(async () => {
    removeStaleNamespaces();
    tmp = tempDir();
    host = makeVethHost();
    socket = join(tmp.dir, 'otus.sock');
    const config =
      `otus:\n  node:\n    id: top-node\n  control:\n    socket: ${socket}\n  resources:\n    max_workers: 4\n` +
      `  supervisor:\n    heartbeat_ms: 200\n    watchdog_ms: 2000\n  reporters:\n    file: {}\n`;
    d = await startDaemon(tmp.dir, config);
    writeFileSync(
      join(tmp.dir, 'top.yml'),
      `task:\n  id: top\n  capture:\n    interface: ${host.capIf}\n    workers: 2\n  reporter:\n    type: file\n    config:\n      path: ${join(tmp.dir, 'out.ndjson')}\n  unmatched_policy: forward\n`,
    );
    const c = await ctl(socket, ['task', 'create', '--file', join(tmp.dir, 'top.yml')]);
    assert.equal(c.status, 0, c.stderr);
    // 64 flows: the fanout hash gives both capture processes a share.
    writePcap(join(tmp.dir, 'paced.pcap'), Array.from({ length: FRAMES }, (_, i) => ipv4Frame({ src: [10, 9, 0, 1], dst: [10, 9, 0, 2], sport: 10000 + (i % 64), dport: 20000 }, 64, i)));
  });

  after(async () => {
    spawnSync('tmux', ['-L', SERVER, 'kill-server']);
    await d?.stop();
    // The last test kills the daemon: what it owned is left for the next one to clear, or for us.
    await waitFor(() => {
      removeAllStaleSegments();
      return !readdirSync('/dev/shm').some((e) => e.startsWith('otus-top.'));
    }, 10_000);
    host?.destroy();
    tmp?.cleanup();
  });

  test("the pane shows the task's processes and rates that match its counters; sort keys; Ctrl-C gives the terminal back", async () => {
    runTop('main');
    const replay = host.startReplay(join(tmp.dir, 'paced.pcap'), ['--pps', String(PPS)]);
    const ended = new Promise((res) => replay.once('exit', res));
    const st = await status();
    const pids = new Map(st.processes.map((p) => [p.role === 'sender' ? 'sender' : `capture ${p.index}`, p.pid]));

    // A full 5 s window of steady traffic (10 s of it in all).
    let screen: string[] = [];
    assert.ok(
      await waitFor(() => {
        screen = pane('main');
        const caps = rows(screen).filter((r) => r.name.startsWith('capture'));
        return screen.some((l) => l.includes('rates over the last 5 s')) && caps.length === 2 && caps.every((r) => count(r.pps) > 0);
      }, 15_000),
      screen.join('\n'),
    );
    // The counters' own rate over the same stretch, from two task.status answers (each process's clock at its beat).
    const a = await status();
    await new Promise((r) => setTimeout(r, 2000));
    const b = await status();
    screen = pane('main');
    process.stderr.write(`# otusctl top, during ${PPS} packets/s:\n${screen.filter((l) => l.trim() !== '').map((l) => `# ${l}`).join('\n')}\n`);
    for (const l of screen) assert.ok(l.length <= 80, l);
    assert.ok(screen.some((l) => /^TASK top {2}running {2}ot\w+ \(af_packet_v3\)/.test(l)), screen.join('\n'));
    const shown = rows(screen);
    assert.deepEqual(shown.map((r) => [r.name, r.pid, r.state]), [...pids].map(([n, pid]) => [n, pid, 'running']), 'every process of the task, with its pid');
    let sum = 0;
    for (const r of shown.filter((x) => x.name.startsWith('capture'))) {
      const i = Number(r.name.split(' ')[1]);
      const at = (s: Status): { frames: number; wall_s: number } => s.counters.capture_processes.find((c) => c.index === i)!;
      const counted = (at(b).frames - at(a).frames) / (at(b).wall_s - at(a).wall_s);
      const onScreen = count(r.pps);
      sum += onScreen;
      assert.ok(Math.abs(onScreen - counted) <= 0.25 * counted + 5, `${r.name}: ${onScreen} packets/s on the screen, ${counted.toFixed(1)} from its counters`);
    }
    assert.ok(sum > PPS * 0.7 && sum < PPS * 1.3, `${sum} packets/s on the screen for ${PPS} sent`);

    tmux('send-keys', '-t', 'main', 'p');
    assert.ok(await waitFor(() => pane('main').some((l) => l.startsWith('sorted by pps')), 5000), 'p sorts by packets/s at once');

    // Traffic over and the window past: rates 0, totals equal to the counters.
    await ended;
    let want: Map<string, number> = new Map();
    assert.ok(
      await waitFor(() => {
        screen = pane('main');
        const caps = rows(screen).filter((r) => r.name.startsWith('capture'));
        return caps.length === 2 && caps.every((r) => r.pps === '0');
      }, 15_000),
      screen.join('\n'),
    );
    const fin = await status();
    want = new Map(fin.counters.capture_processes.map((c) => [`capture ${c.index}`, c.frames]));
    assert.equal([...want.values()].reduce((x, y) => x + y, 0), FRAMES, 'every frame counted');
    assert.ok(
      await waitFor(() => rows(pane('main')).filter((r) => r.name.startsWith('capture')).every((r) => Number(r.total) === want.get(r.name)), 5000),
      `totals on the screen ${JSON.stringify(rows(pane('main')))}, counters ${JSON.stringify([...want])}`,
    );

    tmux('send-keys', '-t', 'main', 'C-c');
    assert.ok(await waitFor(() => pane('main').some((l) => l === 'top exited 0'), 10_000), pane('main').join('\n'));
    assert.ok(!pane('main').some((l) => l.startsWith('TASK ')), 'the alternate screen is gone: the shell has its terminal back');
  });

  test('the daemon going away ends top with status 3 and why', async () => {
    runTop('gone');
    assert.ok(await waitFor(() => pane('gone').some((l) => l.startsWith('TASK top')), 10_000), pane('gone').join('\n'));
    d.proc.kill('SIGKILL');
    assert.ok(await waitFor(() => pane('gone').some((l) => l === 'top exited 3'), 15_000), pane('gone').join('\n'));
    const text = pane('gone').join('\n');
    assert.match(text, /otusctl: the daemon closed the connection on \S+otus\.sock/);
  });
});
