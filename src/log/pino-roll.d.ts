// Types for pino-roll (it ships none): what src/log/logger.ts uses.

declare module 'pino-roll' {
  import type { EventEmitter } from 'node:events';

  /** A SonicBoom stream that reopens itself on the next numbered file when it rolls. */
  export interface RollStream extends EventEmitter {
    write(line: string): boolean;
    end(): void;
    flushSync(): void;
    /** The file being written now. */
    readonly file: string;
    readonly destroyed: boolean;
  }

  export interface RollOptions {
    file: string;
    /** `1024b`, `10k`, `10m`; a bare number is MiB. */
    size?: string | number;
    /** Milliseconds, `hourly` or `daily`. */
    frequency?: number | 'hourly' | 'daily';
    limit?: { count: number; removeOtherLogFiles?: boolean };
    symlink?: boolean;
    mkdir?: boolean;
    mode?: number;
    sync?: boolean;
  }

  export default function build(options: RollOptions): Promise<RollStream>;
}
