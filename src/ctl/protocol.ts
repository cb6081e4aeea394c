// The results of the control socket's methods (docs/control.md), as otusctl
// reads them. Fields the daemon may leave out or set to null are optional
// here, so the formatters say "-" instead of failing on a newer daemon.

export interface StatusResult {
  version: string;
  pid: number;
  node: { id: string; hostname: string };
  started_at: string;
  uptime_s: number;
  config: { file: string; loaded_at: string };
  socket: string;
  tasks: { running: number; degraded: number; failed: number; starting: number; stopping: number };
  workers: { used: number; max: number };
  /** `state` only when disabled; the rest when enabled (docs/commands.md). */
  command_channel: {
    state: string;
    last_error?: string | null;
    since?: string;
    brokers?: string[];
    topic?: string;
    status_topic?: string;
    group_id?: string;
    signed?: boolean;
    commands?: Record<string, number>;
    published?: number;
    publish_errors?: number;
  };
  /** The log's level and each output's counters (`loki`: pushes, failed_pushes, dropped_lines, buffered_bytes...). */
  log?: { level: string; outputs: Record<string, Record<string, unknown>> };
}

export interface LogLevelResult {
  level: string;
  previous: string;
}

/** The `otus capture --task` summary (`--stats-json`); only what otusctl prints is named. */
export interface TaskCounters {
  frames: number;
  records: number;
  /** Per layer; `processors` is per processor. */
  drops: Record<string, number | Record<string, number>>;
  capture_processes?: ({ index: number; frames: number; records: number; kernel_drops?: number } & Record<string, unknown>)[];
  sender?: { records: number; bytes: number } & Record<string, unknown>;
  /** Each sender's own figures (`senders` in the task); `sender` is their sum. */
  senders?: ({ index: number; records: number; acked: number; in_flight: number } & Record<string, number>)[];
  [key: string]: unknown;
}

export interface StatsResult {
  tasks: Record<string, TaskCounters>;
}

export interface ReloadResult {
  applied: string[];
  needs_restart: string[];
}

export type TaskState = 'starting' | 'running' | 'degraded' | 'failed' | 'stopping' | 'stopped';

export interface TaskBrief {
  id: string;
  state: TaskState | string;
  interface: string;
  driver: string;
  workers: number;
  started_at: string | null;
  restarts: number;
}

export interface TaskListResult {
  tasks: TaskBrief[];
}

export interface ProcessStatus {
  role: 'capture' | 'sender' | string;
  index: number;
  pid: number | null;
  /** The CPU it is pinned to, or null. */
  cpu: number | null;
  state: string;
  rss_bytes: number | null;
  cpu_s: number | null;
  restarts: number;
  /** How it last ended: null if never, else the daemon's text ("SIGKILL", "exit code 1: ...") or `{code, signal, reason}`. */
  last_exit: unknown;
  started_at: string | null;
  /** A sender's reporter: false while its output fails (a Kafka broker down, a full disk), null when not known yet. */
  reporter_healthy?: boolean | null;
}

export interface TaskStatus extends TaskBrief {
  reason: string | null;
  processes: ProcessStatus[];
  counters: TaskCounters | null;
  /** The send ring: data bytes and bytes not yet read by the sender. */
  ring?: { data_bytes: number; used_bytes: number } | null;
}

export interface TaskCreateResult {
  id: string;
  state: string;
}

export interface TaskStopResult {
  id: string;
  state: string;
  counters: TaskCounters | null;
}

export interface ValidateResult {
  effective: unknown;
}
