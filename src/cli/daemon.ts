// `otus daemon [--config FILE]`: the long-running service (src/supervisor/daemon.ts).
// Without --config it runs on built-in defaults: the control socket under
// /run/otus/, no tasks, the console reporter available (docs/config.md).

import type { CommandModule } from 'yargs';
import { runDaemon } from '../supervisor/daemon.js';

interface DaemonArgs {
  config?: string;
  socket?: string;
  'plugin-dir'?: string | string[];
}

export function daemonCommand(fail: (err: unknown) => never): CommandModule<object, DaemonArgs> {
  return {
    command: 'daemon',
    describe: 'run as a service: tasks at run time, per-process restart, otusctl over a Unix socket, sd_notify',
    builder: (y) =>
      y
        .option('config', { type: 'string', describe: 'global configuration file (docs/config.md); default: built-in defaults' })
        .option('socket', { type: 'string', describe: 'control socket path (overrides control.socket)' })
        .option('plugin-dir', { type: 'string', describe: 'load third-party plugins from DIR (repeatable)' }) as never,
    handler: async (argv) => {
      try {
        await runDaemon({ configFile: argv.config ?? null, socket: argv.socket, pluginDirs: ([] as string[]).concat(argv['plugin-dir'] ?? []) });
        process.exit(0);
      } catch (err) {
        fail(err);
      }
    },
  };
}
