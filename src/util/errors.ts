// Control-plane errors: thrown, with a stable code and a message naming the
// offending file, key or argument. The packet path never throws; it counts.

export type OtusErrorCode =
  | 'OTUS_ERR_NOT_A_CAPTURE'
  | 'OTUS_ERR_CAPTURE_IO'
  | 'OTUS_ERR_BAD_ARGUMENT'
  | 'OTUS_ERR_CONFIG'
  | 'OTUS_ERR_SYSCALL'
  | 'OTUS_ERR_FILTER'
  | 'OTUS_ERR_UNSUPPORTED'
  // Plugins (src/plugin/): each message names the plugin (kind "name" (source)).
  /** Metadata missing or malformed (name, version, kind, labels, configSchema, init). */
  | 'OTUS_ERR_PLUGIN_METADATA'
  /** The plugin's config JSON Schema does not compile. */
  | 'OTUS_ERR_PLUGIN_SCHEMA'
  /** A task's config for the plugin fails the plugin's schema. */
  | 'OTUS_ERR_PLUGIN_CONFIG'
  /** The plugin's init threw, or returned something that is not an instance of its kind. */
  | 'OTUS_ERR_PLUGIN_INIT'
  /** A task names a plugin that no built-in or plugin directory provides. */
  | 'OTUS_ERR_PLUGIN_NOT_FOUND'
  /** Two plugins of one kind with one name. */
  | 'OTUS_ERR_PLUGIN_DUPLICATE'
  /** A third-party plugin file could not be imported, or exports no plugin. */
  | 'OTUS_ERR_PLUGIN_LOAD'
  /** A plugin directory, or something in it, others could have written (another owner, group- or world-writable), or an entry resolving outside it. */
  | 'OTUS_ERR_PLUGIN_UNSAFE'
  /** A task file: unreadable, not YAML, or a key that fails the task schema (message: FILE:LINE: key path). */
  | 'OTUS_ERR_TASK'
  /** A capture or sender process of `otus replay` failed. */
  | 'OTUS_ERR_WORKER'
  /** otusctl cannot talk to the daemon: no socket, not allowed, nothing listening, closed or silent mid-call, a bad response. */
  | 'OTUS_ERR_CTL_UNREACHABLE'
  /** The daemon answered an otusctl request with a JSON-RPC error (the daemon's own code is in `otusCode`). */
  | 'OTUS_ERR_CTL_REFUSED'
  /** A shared-memory segment name is already taken (another process created it). */
  | 'OTUS_ERR_SHM_EXISTS'
  /** A run was stopped by SIGTERM or SIGINT before it finished (`otus replay` exits 128 + the signal's number). */
  | 'OTUS_ERR_INTERRUPTED'
  /** The process lacks a privilege the operation needs (root, or a capability such as CAP_NET_RAW). */
  | 'OTUS_ERR_PERMISSION'
  /** A capture file could not be read to its end (a corrupt or truncated record): `otus replay` exits 3. */
  | 'OTUS_ERR_CAPTURE_INCOMPLETE'
  /** A run's reporter did not deliver every record (timed out, refused, or still held at the stop deadline): `otus replay` and `otus capture --task` exit 4. */
  | 'OTUS_ERR_UNDELIVERED'
  /** The reader of a run's standard output went away (`otus replay --out - | head`): the run stopped early; exit status 0, nothing printed. */
  | 'OTUS_ERR_OUTPUT_CLOSED'
  /** A command-channel message the daemon will not act on: an unknown version or command, a payload without what the command needs. */
  | 'OTUS_ERR_COMMAND'
  /** A command refused while a command key is set: unsigned, badly signed, stale (timestamp outside the window) or replayed. */
  | 'OTUS_ERR_COMMAND_AUTH'
  /** Something that should not happen did (a bug): reported as one line; OTUS_DEBUG=1 adds the stack. */
  | 'OTUS_ERR_INTERNAL';

export class OtusError extends Error {
  readonly code: OtusErrorCode;
  constructor(code: OtusErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OtusError';
    this.code = code;
  }
}

/**
 * Any thrown value as an OtusError, for the last line a command prints: the
 * addon's errors (`{code: 'OTUS_ERR_SYSCALL', errno}`, not OtusError) keep
 * their code, Node's system errors (ENOENT, EACCES...) become
 * OTUS_ERR_SYSCALL, anything else OTUS_ERR_INTERNAL. Never a stack trace
 * unless OTUS_DEBUG is set.
 */
export function asOtusError(err: unknown): OtusError {
  if (err instanceof OtusError) return err;
  const e = (err !== null && typeof err === 'object' ? err : {}) as { code?: unknown; message?: unknown; syscall?: unknown; stack?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (typeof e.code === 'string' && /^OTUS_ERR_[A-Z_]+$/.test(e.code)) return new OtusError(e.code as OtusErrorCode, message, { cause: err });
  if (typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) && typeof e.syscall === 'string') return new OtusError('OTUS_ERR_SYSCALL', message, { cause: err });
  const debug = process.env.OTUS_DEBUG && typeof e.stack === 'string' ? `\n${e.stack}` : '';
  return new OtusError('OTUS_ERR_INTERNAL', `internal error: ${message} (a bug: please report it with the command line; OTUS_DEBUG=1 shows where)${debug}`, { cause: err });
}
