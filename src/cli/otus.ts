#!/usr/bin/env node
// The `otus` command line.

import './heap.js';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { defaultDecoderOptions, parsePortList, parseTunnelList } from '../decode/options.js';
import { dashValues } from '../util/argv.js';
import { asOtusError, OtusError } from '../util/errors.js';
import { runDecode } from './decode.js';
import { captureCommand } from './capture.js';
import { replayCommand } from './replay.js';
import { daemonCommand } from './daemon.js';
import { validateCommand } from './validate.js';

/** Exit status of a run that ended with a coded error (docs: README.md, "Exit status"). */
export const EXIT_ERROR = 2;

/** Prints any error as one coded line (never a stack or the usage) and exits 2. */
function fail(err: unknown): never {
  const e = asOtusError(err);
  process.stderr.write(`otus: ${e.message} [${e.code}]\n`);
  process.exit(EXIT_ERROR);
}

// `otus decode ... | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

// `--out -`: yargs would read the lone `-` as an unknown positional argument.
await yargs(dashValues(hideBin(process.argv), ['--out']))
  .scriptName('otus')
  .command(
    'decode <file>',
    'decode every frame of a pcap/pcapng file to NDJSON (docs/decode-output.md)',
    (y) =>
      y
        .positional('file', { type: 'string', demandOption: true, describe: 'capture file' })
        .option('tunnels', { type: 'string', default: '', describe: 'decapsulate: vxlan,gre,erspan,geneve,ipip or all' })
        .option('vxlan-ports', { type: 'string', default: '4789', describe: 'UDP ports decoded as VXLAN (with --tunnels vxlan)' })
        .option('geneve-ports', { type: 'string', default: '6081', describe: 'UDP ports decoded as Geneve (with --tunnels geneve)' })
        .option('limit', { type: 'number', default: 0, describe: 'stop after N frames (0 = all)' }),
    async (argv) => {
      try {
        if (!Number.isInteger(argv.limit) || argv.limit < 0) {
          throw new OtusError('OTUS_ERR_BAD_ARGUMENT', `--limit: expected a non-negative integer, got ${argv.limit}`);
        }
        const decoder = defaultDecoderOptions();
        decoder.tunnels = parseTunnelList(argv.tunnels);
        decoder.vxlanPorts = parsePortList(argv['vxlan-ports'], '--vxlan-ports');
        decoder.genevePorts = parsePortList(argv['geneve-ports'], '--geneve-ports');
        await runDecode({ file: argv.file, limit: argv.limit, decoder, out: process.stdout, err: process.stderr });
      } catch (err) {
        fail(err);
      }
    },
  )
  .command(captureCommand(fail))
  .command(replayCommand(fail))
  .command(daemonCommand(fail))
  .command(validateCommand(fail))
  .demandCommand(1, 'name a command: decode, capture, replay, daemon, validate')
  .strict()
  .help()
  .fail((msg, err) => {
    // A handler's own error, or a usage error from yargs (an unknown flag, a missing argument): one coded line.
    if (err !== undefined && err !== null && !msg) fail(err);
    fail(new OtusError('OTUS_ERR_BAD_ARGUMENT', `${msg || err?.message || 'bad usage'} (otus --help)`));
  })
  .parseAsync();
