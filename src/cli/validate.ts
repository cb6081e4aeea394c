// `otus validate [--config FILE] [--task FILE] [--json]`: checks the global
// configuration and/or a task file as the daemon would (src/config/effective.ts)
// and prints the effective form, defaults filled: `{otus: ...}` for the
// configuration, `{task: ...}` for a task, both keys when both are given.
// A task is checked under the given configuration (its reporters), else
// under the built-in defaults. Errors: the coded message, exit 2.

import { stringify } from 'yaml';
import type { CommandModule } from 'yargs';
import { effectiveConfig, effectiveTask } from '../config/effective.js';
import { loadGlobalConfig } from '../config/global.js';
import { loadTaskFile } from '../config/task.js';
import { createRegistry } from '../plugin/builtins.js';
import { OtusError } from '../util/errors.js';

interface ValidateArgs {
  config?: string;
  task?: string;
  json: boolean;
  'plugin-dir'?: string | string[];
}

export function validateCommand(fail: (err: unknown) => never): CommandModule<object, ValidateArgs> {
  return {
    command: 'validate',
    describe: 'check a global configuration (docs/config.md) and/or a task file; print the effective form with defaults filled',
    builder: (y) =>
      y
        .option('config', { type: 'string', describe: 'global configuration file' })
        .option('task', { type: 'string', describe: "task file (checked against --config's reporters, else the defaults)" })
        .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of YAML' })
        .option('plugin-dir', { type: 'string', describe: 'load third-party plugins from DIR (repeatable)' }) as never,
    handler: async (argv) => {
      try {
        if (argv.config === undefined && argv.task === undefined) {
          throw new OtusError('OTUS_ERR_BAD_ARGUMENT', 'name what to check: --config FILE, --task FILE, or both');
        }
        const global = loadGlobalConfig(argv.config ?? null);
        const registry = await createRegistry(([] as string[]).concat(argv['plugin-dir'] ?? []));
        const out: Record<string, unknown> = argv.config !== undefined ? { otus: await effectiveConfig(registry, global) } : {};
        if (argv.task !== undefined) out.task = (await effectiveTask(registry, global, loadTaskFile(argv.task))).effective;
        process.stdout.write(argv.json ? `${JSON.stringify(out, null, 2)}\n` : stringify(out, { lineWidth: 0 }));
      } catch (err) {
        fail(err);
      }
    },
  };
}
