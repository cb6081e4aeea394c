// Result objects as the daemon answers them (docs/control.md), for the
// formatting and CLI tests. The counters have the shape of the
// `otus capture --task --stats-json` summary.

import type { StatsResult, StatusResult, TaskCounters, TaskListResult, TaskStatus } from '../../src/ctl/protocol.js';

/** "Now" for uptimes: 2025-03-01T12:00:00Z. */
export const NOW = Date.parse('2025-03-01T12:00:00Z');

export const LONG_ID = 'voip-monitor-carrier-interconnect-frankfurt-primary-sbc-cluster-b-0001-with-an-even-longer-suffix';

export function counters(scale = 1): TaskCounters {
  return {
    task: 'voip-monitor-01',
    workers: 2,
    capture: { interface: 'eth0', driver: 'af_packet_v3', stopped: 'running' },
    frames: 12_345_678 * scale,
    records: 1_234_567 * scale,
    drops: {
      decode: 3,
      filter: 1_200_000 * scale,
      unmatched: 0,
      parser_no_output: 17,
      processors: { filter: 4_500 },
      encode: 0,
      ring_tail: 12,
      ring_head: 0,
      ring_abandoned: 0,
      sender_expand: 0,
    },
    held_fragments: 0,
    decode_errors: { truncated: 3 },
    ip_reassembly: { fragments: 0 },
    tcp_reassembly: null,
    flow_registry: { live: 42, inserts: 900 },
    parsers: { sip: { records: 2_000, no_output: 17 } },
    unmatched_forwarded: 0,
    fast_path_records: 1_100_000,
    capture_processes: [
      { index: 0, pid: 4101, frames: 6_000_000, records: 600_000, cpu_s: 12.5, wall_s: 3600, pps_per_cpu_s: 480_000, blocks: 9_000, kernel_packets: 6_000_010, kernel_drops: 10, freezes: 0 },
      { index: 1, pid: 4102, frames: 6_345_678, records: 634_567, cpu_s: 13.1, wall_s: 3600, pps_per_cpu_s: 484_000, blocks: 9_100, kernel_packets: 6_345_678, kernel_drops: 0, freezes: 0 },
    ],
    pps_per_capture_cpu_s: 482_000,
    pps_wall: 3_429,
    sender: { records: 1_234_555, bytes: 750_000_000, cpu_s: 30.2, payload_unread: 0 },
    wall_s: 3600,
    warnings: [],
  };
}

export const taskList: TaskListResult = {
  tasks: [
    { id: 'voip-monitor-01', state: 'running', interface: 'eth0', driver: 'af_packet_v3', workers: 2, started_at: '2025-03-01T08:55:00Z', restarts: 0 },
    { id: 'dns-edge', state: 'degraded', interface: 'ens3f1np1', driver: 'xdp', workers: 4, started_at: '2025-02-27T11:00:00Z', restarts: 3 },
    { id: 'http-probe', state: 'failed', interface: 'lo', driver: 'pcap', workers: 1, started_at: null, restarts: 5 },
  ],
};

export const taskStatus: TaskStatus = {
  id: 'voip-monitor-01',
  state: 'degraded',
  interface: 'eth0',
  driver: 'af_packet_v3',
  workers: 2,
  started_at: '2025-03-01T08:55:00Z',
  restarts: 1,
  reason: 'capture process 1 is restarting (exited with code 1)',
  processes: [
    { role: 'capture', index: 0, pid: 4101, cpu: 0, state: 'running', rss_bytes: 88_290_000, cpu_s: 12.5, restarts: 0, last_exit: null, started_at: '2025-03-01T08:55:00Z' },
    { role: 'capture', index: 1, pid: null, cpu: 1, state: 'restarting', rss_bytes: null, cpu_s: null, restarts: 1, last_exit: 'exit code 1: stream failed: recvfrom on eth0: ENETDOWN (network is down)', started_at: null },
    { role: 'sender', index: 0, pid: 4100, cpu: null, state: 'running', rss_bytes: 150_000_000, cpu_s: 30.2, restarts: 1, last_exit: 'SIGKILL', started_at: '2025-03-01T08:56:00Z' },
  ],
  counters: counters(),
};

export const status: StatusResult = {
  version: '0.1.0',
  pid: 4000,
  node: { id: 'edge-fra-01', hostname: 'fra1-probe-7' },
  started_at: '2025-02-27T10:00:00Z',
  uptime_s: 180_000,
  config: { file: '/etc/otus/otus.yml', loaded_at: '2025-03-01T09:00:00Z' },
  socket: '/run/otus/otus.sock',
  tasks: { running: 1, degraded: 1, failed: 1, starting: 0, stopping: 0 },
  workers: { used: 7, max: 16 },
  command_channel: { state: 'connected' },
  log: {
    level: 'info',
    outputs: {
      stderr: { lines: 1200, errors: 0, last_error: null },
      file: { path: '/var/log/otus/otus.log', current: '/var/log/otus/otus.14.log', lines: 1200, errors: 0, last_error: null },
      loki: {
        endpoint: 'https://loki.monitoring.example.net:3100/loki/api/v1/push',
        pushes: 40,
        pushed_lines: 900,
        failed_pushes: 12,
        dropped_lines: 15_300,
        buffered_lines: 8000,
        buffered_bytes: 16_777_000,
        last_error: 'ECONNREFUSED: connect ECONNREFUSED 10.0.0.9:3100',
        last_push_at: '2025-03-01T11:00:00Z',
      },
    },
  },
};

export const stats: StatsResult = {
  tasks: { 'voip-monitor-01': counters(), 'dns-edge': counters(40), [LONG_ID]: counters() },
};
