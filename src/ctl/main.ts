#!/usr/bin/env node
// `otusctl`: the operator's client of the daemon's control socket
// (docs/control.md). Exit status: 0 done; 1 the daemon refused; 2 usage (bad
// flags, an unreadable or oversized file); 3 the daemon cannot be reached.

import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { LineCounter, parseDocument } from 'yaml';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commandKey, commandShapeError, COMMAND_VERSION, readKeyFile, signCommand } from '../supervisor/command-message.js';
import { dashValues } from '../util/argv.js';
import { asOtusError, OtusError } from '../util/errors.js';
import { ControlClient, CtlRefused, CtlUnreachable, DEFAULT_TIMEOUT_MS } from './client.js';
import * as fmt from './format.js';
import { topLoop } from './top.js';
import type * as rpc from './protocol.js';

const DEFAULT_SOCKET = '/run/otus/otus.sock';
/** task create waits until every process captures, task stop until the sender has drained, reload for both. */
const LONG_TIMEOUT_MS = 60_000;
/** Task and configuration files are small; a larger one is a mistake (and the daemon takes 1 MiB per request). */
const MAX_FILE_BYTES = 1024 * 1024;

const EXIT_REFUSED = 1;
const EXIT_USAGE = 2;
const EXIT_UNREACHABLE = 3;
/** setTimeout's longest delay; a longer one would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

interface Globals {
  socket: string;
  json: boolean;
  timeout?: number;
}

function usage(message: string): OtusError {
  return new OtusError('OTUS_ERR_BAD_ARGUMENT', message);
}

/** Prints an error the way every otusctl error is printed, and sets the exit status. */
function report(err: unknown): void {
  if (err instanceof CtlRefused) {
    process.stderr.write(`otusctl: ${err.message} [${err.otusCode ?? `JSON-RPC ${err.rpcCode}`}]\n`);
    process.exitCode = EXIT_REFUSED;
  } else if (err instanceof CtlUnreachable) {
    process.stderr.write(`otusctl: ${err.message}\n`);
    process.exitCode = EXIT_UNREACHABLE;
  } else if (err instanceof OtusError) {
    process.stderr.write(`otusctl: ${err.message} [${err.code}]\n`);
    process.exitCode = EXIT_USAGE;
  } else {
    // A bug of otusctl's own, or a system error: still one coded line, no stack.
    const e = asOtusError(err);
    process.stderr.write(`otusctl: ${e.message} [${e.code}]\n`);
    process.exitCode = EXIT_REFUSED;
  }
}

/** One string flag: yargs makes an array of a repeated flag, and `-` arrives as ''. */
function oneString(v: unknown, flag: string, allowStdin = false): string {
  if (Array.isArray(v)) throw usage(`${flag}: give it once`);
  if (typeof v !== 'string' && typeof v !== 'number') throw usage(`${flag}: a value is required`);
  const s = String(v);
  if (s === '' && allowStdin) return '-';
  if (s === '') throw usage(`${flag}: a value is required`);
  return s;
}

/** Reads FILE (or stdin for `-`), refusing more than 1 MiB. */
async function readInput(file: string, flag: string): Promise<string> {
  const where = file === '-' ? 'stdin' : file;
  const stream: Readable = file === '-' ? process.stdin : createReadStream(file);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > MAX_FILE_BYTES) {
        stream.destroy();
        throw usage(`${flag} ${where}: larger than 1 MiB, refused`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (e) {
    if (e instanceof OtusError) throw e;
    throw usage(`${flag} ${where}: cannot read (${(e as Error).message})`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The task file's YAML as an object (the daemon validates it; here only "is it YAML"). */
function parseTaskYaml(text: string, where: string): Record<string, unknown> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw usage(`${where}:${lc.linePos(e.pos[0]).line}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  let v: unknown;
  try {
    v = doc.toJS();
  } catch (e) {
    throw usage(`${where}: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw usage(`${where}: not a task (expected a mapping with task: {...})`);
  return v as Record<string, unknown>;
}

function terminalWidth(): number {
  return process.stdout.isTTY && process.stdout.columns ? process.stdout.columns : 80;
}

/** Connects, makes one call, prints its result (as JSON with --json), and sets the exit status on failure. */
async function run<T>(argv: Globals, method: string, params: () => Promise<object | undefined>, human: (r: T, o: fmt.FormatOptions) => string, long = false): Promise<void> {
  try {
    if (argv.timeout !== undefined && (!Number.isInteger(argv.timeout) || argv.timeout <= 0 || argv.timeout > MAX_TIMEOUT_MS)) {
      throw usage(`--timeout: expected a positive number of milliseconds, got ${argv.timeout}`);
    }
    const socket = oneString(argv.socket, '--socket');
    const p = await params();
    const client = await ControlClient.connect(socket, { timeoutMs: argv.timeout ?? (long ? LONG_TIMEOUT_MS : DEFAULT_TIMEOUT_MS) });
    let result: T;
    try {
      result = await client.call<T>(method, p);
    } finally {
      client.close();
    }
    process.stdout.write(argv.json ? JSON.stringify(result, null, 2) + '\n' : human(result, { width: terminalWidth() }));
  } catch (err) {
    report(err);
  }
}

const none = async (): Promise<undefined> => undefined;

/**
 * `otusctl sign-command FILE`: a command message for the Kafka command
 * channel (docs/commands.md), completed and signed, printed as one JSON line.
 * Needs no daemon: the key is the one in the daemon's command_channel.auth.
 */
async function signCommandFile(a: { file?: unknown; keyFile?: unknown; keepTimestamp?: boolean }): Promise<void> {
  try {
    const file = oneString(a.file, 'FILE', true);
    const where = file === '-' ? 'stdin' : file;
    let msg: unknown;
    try {
      msg = JSON.parse(await readInput(file, 'FILE'));
    } catch (e) {
      if (e instanceof OtusError) throw e;
      throw usage(`${where}: not JSON (${(e as Error).message})`);
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) throw usage(`${where}: a command message is a JSON object`);
    const m = msg as Record<string, unknown>;
    let key: Buffer;
    if (a.keyFile !== undefined) key = readKeyFile(oneString(a.keyFile, '--key-file'), '--key-file');
    else if (process.env.OTUS_COMMAND_KEY) key = commandKey(process.env.OTUS_COMMAND_KEY, 'OTUS_COMMAND_KEY');
    else throw usage('no key: give --key-file FILE or set OTUS_COMMAND_KEY');
    m.version ??= COMMAND_VERSION;
    m.request_id ??= randomUUID();
    if (!a.keepTimestamp || m.timestamp === undefined) m.timestamp = new Date().toISOString();
    delete m.signature;
    const shape = commandShapeError(m);
    if (shape !== null) throw usage(`${where}: ${shape}`);
    m.signature = signCommand(m, key);
    process.stdout.write(JSON.stringify(m) + '\n');
  } catch (err) {
    // Key and usage errors alike: nothing was sent anywhere.
    report(err instanceof OtusError && err.code === 'OTUS_ERR_CONFIG' ? usage(err.message) : err);
  }
}

/** `otusctl top`: one connection for the whole view; the daemon going away ends it with status 3. */
async function runTop(argv: Globals & { interval: number; iterations: number }): Promise<void> {
  try {
    if (!Number.isInteger(argv.interval) || argv.interval < 100 || argv.interval > 3_600_000) throw usage(`--interval: expected 100 to 3600000 milliseconds, got ${argv.interval}`);
    if (!Number.isInteger(argv.iterations) || argv.iterations < 0) throw usage(`--iterations: expected a whole number (0: until q), got ${argv.iterations}`);
    if (argv.json) throw usage('--json: top is a terminal view; for JSON, poll `otusctl --json task status --id ID`');
    const client = await ControlClient.connect(oneString(argv.socket, '--socket'), { timeoutMs: argv.timeout ?? DEFAULT_TIMEOUT_MS });
    try {
      await topLoop(client, { intervalMs: argv.interval, iterations: argv.iterations });
    } finally {
      client.close();
    }
  } catch (err) {
    report(err);
  }
  // stdin was read raw: nothing else may keep the process.
  process.exit();
}

// `otusctl status | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  report(err);
  process.exit();
});

function taskCommands(y: Argv<Globals>): Argv<Globals> {
  return y
    .command(
      'create',
      'start a task from a task YAML file (waits until it captures)',
      (c) => c.option('file', { alias: 'f', type: 'string', demandOption: true, describe: 'task YAML file, or - for stdin' }),
      (a) =>
        run<rpc.TaskCreateResult>(
          a,
          'task.create',
          async () => {
            const file = oneString(a.file, '--file', true);
            const where = file === '-' ? 'stdin' : file;
            const text = await readInput(file, '--file');
            return { task: parseTaskYaml(text, where), text, file: where };
          },
          fmt.formatTaskCreate,
          true,
        ),
    )
    .command('list', 'list the tasks', (c) => c, (a) => run<rpc.TaskListResult>(a, 'task.list', none, fmt.formatTaskList))
    .command(
      'stop',
      'stop a task (waits until its records are sent) and print its final counters',
      (c) => c.option('id', { type: 'string', demandOption: true, describe: 'task id' }),
      (a) => run<rpc.TaskStopResult>(a, 'task.stop', async () => ({ id: oneString(a.id, '--id') }), fmt.formatTaskStop, true),
    )
    .command(
      'status',
      "a task's state, processes and counters",
      (c) => c.option('id', { type: 'string', demandOption: true, describe: 'task id' }),
      (a) => run<rpc.TaskStatus>(a, 'task.status', async () => ({ id: oneString(a.id, '--id') }), fmt.formatTaskStatus),
    )
    .demandCommand(1, 'name a task command: create, list, stop, status');
}

await yargs(dashValues(hideBin(process.argv), ['--file', '-f', '--config', '--task']))
  .scriptName('otusctl')
  .usage('$0 <command> [options]: control a running `otus daemon` over its socket')
  .option('socket', {
    type: 'string',
    default: process.env.OTUS_SOCKET || DEFAULT_SOCKET,
    defaultDescription: `$OTUS_SOCKET, else ${DEFAULT_SOCKET}`,
    describe: "the daemon's control socket",
    global: true,
  })
  .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON (for scripts)', global: true })
  .option('timeout', {
    type: 'number',
    defaultDescription: `${DEFAULT_TIMEOUT_MS}; task create, task stop, reload: ${LONG_TIMEOUT_MS}`,
    describe: 'give up after MS milliseconds without an answer',
    global: true,
  })
  .command('status', "the daemon's version, uptime, tasks and workers", (y) => y, (a) => run<rpc.StatusResult>(a, 'status', none, fmt.formatStatus))
  .command('stats', "every task's frames, records and drops", (y) => y, (a) => run<rpc.StatsResult>(a, 'stats', none, fmt.formatStats))
  .command('reload', 're-read the configuration file; print what was applied and what needs a restart', (y) => y, (a) =>
    run<rpc.ReloadResult>(a, 'reload', none, fmt.formatReload, true),
  )
  .command(
    'log-level <level>',
    "set the log level of the daemon and its children until the next restart (or a reload that changes log.level)",
    (y) => y.positional('level', { type: 'string', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], describe: 'the new level' }),
    (a) => run<rpc.LogLevelResult>(a, 'log.level', async () => ({ level: oneString(a.level, 'LEVEL') }), fmt.formatLogLevel),
  )
  .command(
    'top',
    'a live view of every task: packets/s, drops/s by layer, ring and registry fill, CPU, RSS, restarts (q quits)',
    (y) =>
      y
        .option('interval', { type: 'number', default: 1000, describe: 'refresh every MS milliseconds' })
        .option('iterations', { alias: 'n', type: 'number', default: 0, describe: 'stop after N refreshes (0: until q or Ctrl-C)' }),
    (a) => runTop(a),
  )
  .command('task', 'create, list, stop and inspect tasks', taskCommands as (y: Argv) => Argv<Globals>)
  .command(
    'sign-command <file>',
    'complete and sign a Kafka command message (JSON, or - for stdin) with the command key; print it as one line',
    (y) =>
      y
        .positional('file', { type: 'string', describe: 'the message: version, target, command, payload (request_id and timestamp are filled in)' })
        .option('key-file', { type: 'string', describe: 'the key (default: $OTUS_COMMAND_KEY)' })
        .option('keep-timestamp', { type: 'boolean', default: false, describe: "keep the file's timestamp instead of now" }),
    (a) => signCommandFile(a),
  )
  .command(
    'validate',
    'check a configuration or task file with the daemon; print the effective configuration',
    (y) =>
      y
        .option('config', { type: 'string', describe: 'global configuration YAML file, or -' })
        .option('task', { type: 'string', describe: 'task YAML file, or -' })
        .conflicts('config', 'task')
        .check((a) => {
          if (a.config === undefined && a.task === undefined) throw new Error('give --config FILE or --task FILE');
          return true;
        }),
    (a) =>
      run<rpc.ValidateResult>(
        a,
        'config.validate',
        async () => {
          const flag = a.config !== undefined ? '--config' : '--task';
          const file = oneString(a.config ?? a.task, flag, true);
          const key = flag.slice(2);
          return { [key]: await readInput(file, flag), [`${key}_file`]: file === '-' ? 'stdin' : file };
        },
        fmt.formatValidate,
      ),
  )
  .completion('completion', 'print a bash completion script (append it to ~/.bashrc)')
  .demandCommand(1, 'name a command: status, stats, top, reload, log-level, task, validate, sign-command, completion')
  .recommendCommands()
  .strict()
  .help()
  .alias('help', 'h')
  .version(false)
  .wrap(Math.min(100, terminalWidth()))
  .fail((msg, err) => {
    // Usage errors from yargs (unknown command or flag, a missing --id): one line, status 2.
    process.stderr.write(`otusctl: ${msg || err?.message || 'bad usage'} (otusctl --help)\n`);
    process.exit(EXIT_USAGE);
  })
  .parseAsync();
