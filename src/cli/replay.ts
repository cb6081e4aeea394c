// `otus replay --task TASK.yml [--workers N] [--out FILE|-] [--stats-json FILE] CAPTURE...`:
// a task over recorded traffic through the real multi-process path
// (src/supervisor/replay.ts). Records go to --out (NDJSON) or the task's
// reporter; the summary goes to stderr, and as JSON to --stats-json.
// SIGTERM or SIGINT stops the run: the children are stopped, the shared
// memory removed, and the command exits 128 + the signal's number (143, 130)
// with OTUS_ERR_INTERRUPTED on stderr. A capture file that cannot be read
// to its end (a corrupt or truncated record) is replayed up to there, named
// in the summary's warnings, and the command exits 3
// (OTUS_ERR_CAPTURE_INCOMPLETE). A reporter that did not deliver every
// record (a broker down, a collector refusing) makes it exit 4
// (OTUS_ERR_UNDELIVERED). `--out - | head`: ends quietly, status 0.

import { writeFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { formatSummary, runReplay } from '../supervisor/replay.js';
import { type TaskSummary, undeliveredError } from '../supervisor/task-run.js';
import { OtusError } from '../util/errors.js';

/** Exit status when a capture file could not be read to its end (its frames up to there were replayed). */
export const EXIT_INCOMPLETE = 3;

/** Exit status when the run finished but its reporter did not deliver every record (task-run.ts undelivered(): timed out, refused, held at the stop deadline). */
export const EXIT_UNDELIVERED = 4;

/** Writes the coded line of a run whose reporter lost records and gives its exit status; null when it lost none. */
export function undeliveredExit(summary: TaskSummary): number | null {
  const e = undeliveredError(summary);
  if (e === null) return null;
  process.stderr.write(`otus: ${e.message} [${e.code}]\n`);
  return EXIT_UNDELIVERED;
}

/** Exit status after a stop by signal: 128 + its number, as a shell reports a process the signal killed. */
export const SIGNAL_EXIT: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };

/** `--out FILE` or `--out -` (stdout); null without it. A bare `--out` is refused. */
export function outOption(v: string | undefined): string | null {
  if (v === undefined) return null;
  if (v === '') throw new OtusError('OTUS_ERR_BAD_ARGUMENT', '--out: give a FILE, or - for standard output');
  return v;
}

interface ReplayArgs {
  task: string;
  captures: string[];
  workers?: number;
  out?: string;
  'stats-json'?: string;
  'plugin-dir'?: string | string[];
  ordered: boolean;
}

export function replayCommand(fail: (err: unknown) => never): CommandModule<object, ReplayArgs> {
  return {
    command: 'replay <captures..>',
    describe:
      'run a task (YAML) over pcap/pcapng files through capture processes, the send ring and a sender. ' +
      'Exit status: 0 done, 2 error (coded message on stderr), 3 a capture file could not be read to its end (corrupt or truncated; replayed up to there), 4 the reporter did not deliver every record, 130/143 stopped by SIGINT/SIGTERM (children stopped, shared memory removed)',
    builder: (y) =>
      y
        .positional('captures', { type: 'string', array: true, demandOption: true, describe: 'capture files' })
        .option('task', { type: 'string', demandOption: true, describe: 'task file (docs/task-format.md)' })
        .option('workers', { type: 'number', describe: 'capture processes (default: task.capture.workers, else 1)' })
        .option('out', { type: 'string', describe: 'write NDJSON records to FILE, or - for stdout (default: the task reporter)' })
        .option('stats-json', { type: 'string', describe: 'also write the summary as JSON to FILE' })
        .option('ordered', { type: 'boolean', default: true, describe: 'capture processes keep capture order, so SIP read on one labels RTP on another (--no-ordered: as fast as each can)' })
        // Not `array: true`: that would swallow the capture files after it. Repeating the flag gives an array.
        .option('plugin-dir', { type: 'string', describe: 'load third-party plugins from DIR (repeatable)' }) as never,
    handler: async (argv) => {
      const ac = new AbortController();
      const onSignal = (sig: NodeJS.Signals): void => ac.abort(sig);
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        if (argv.workers !== undefined && (!Number.isInteger(argv.workers) || argv.workers < 1)) {
          throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--workers: expected a positive integer, got ${argv.workers}`);
        }
        const summary = await runReplay({
          taskFile: argv.task,
          files: argv.captures,
          workers: argv.workers ?? null,
          out: outOption(argv.out),
          pluginDirs: ([] as string[]).concat(argv['plugin-dir'] ?? []),
          ordered: argv.ordered,
          signal: ac.signal,
        });
        process.stderr.write(formatSummary(summary));
        if (argv['stats-json'] !== undefined) writeFileSync(argv['stats-json'], JSON.stringify(summary, null, 2) + '\n');
        const incomplete = summary.incomplete_files ?? [];
        if (incomplete.length > 0) {
          // The records of what could be read are out; the status says the input was not whole.
          const e = new OtusError('OTUS_ERR_CAPTURE_INCOMPLETE', `${incomplete.map((f) => `${f.file}: stopped: ${f.stopped}`).join('; ')}: replayed up to there`);
          process.stderr.write(`otus: ${e.message} [${e.code}]\n`);
        }
        // The input's status first: a script learns the file was not whole either way, and both lines are printed.
        const lost = undeliveredExit(summary);
        if (incomplete.length > 0) process.exit(EXIT_INCOMPLETE);
        if (lost !== null) process.exit(lost);
      } catch (err) {
        // As `otus decode | head`: a reader that has what it wanted is not an error.
        if (err instanceof OtusError && err.code === 'OTUS_ERR_OUTPUT_CLOSED') process.exit(0);
        if (err instanceof OtusError && err.code === 'OTUS_ERR_INTERRUPTED') {
          process.stderr.write(`otus: ${err.message} [${err.code}]\n`);
          process.exit(SIGNAL_EXIT[String(ac.signal.reason)] ?? 130);
        }
        fail(err);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    },
  };
}
